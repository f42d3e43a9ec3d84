"""A collection being recovered over itself stays visible: requests that arrive while the
old collection is closed and the recovered one opened wait for the swap (TableOfContent.
wait_for_swap via the app's before-request hook) instead of answering 404 or 500."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from inprocess import count_while_recovering, running_app


pytestmark = pytest.mark.trio

POINTS = 300


async def test_requests_during_a_recovery_swap_are_answered(tmp_path: Path):
    async with running_app(tmp_path) as client:
        assert (await client.put("/collections/c", json={"vectors": {"size": 4, "distance": "Dot"}})).status_code == 200
        points = [{"id": i, "vector": [1.0, float(i), 0.5, 0.0], "payload": {"n": i}} for i in range(POINTS)]
        assert (await client.put("/collections/c/points?wait=true", json={"points": points})).status_code == 200
        created = json.loads(await (await client.post("/collections/c/snapshots")).get_data())["result"]
        location = str(tmp_path / "snap" / "c" / created["name"])
        answers = await count_while_recovering(client, "c", "/collections/c/snapshots/recover", location)
    assert len(answers) > 10
    failures = [a for a in answers if a[0] != 200]
    assert not failures, failures[:3]
    assert all(json.loads(text)["result"]["count"] == POINTS for _, text in answers)
