"""A collection being recovered over itself stays visible: requests that arrive while the
old collection is closed and the recovered one opened wait for the swap (TableOfContent.
wait_for_swap via the app's before-request hook) instead of answering 404 or 500."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import trio
from inprocess import running_app


pytestmark = pytest.mark.trio

POINTS = 300


async def test_requests_during_a_recovery_swap_are_answered(tmp_path: Path):
    async with running_app(tmp_path) as client:
        assert (await client.put("/collections/c", json={"vectors": {"size": 4, "distance": "Dot"}})).status_code == 200
        points = [{"id": i, "vector": [1.0, float(i), 0.5, 0.0], "payload": {"n": i}} for i in range(POINTS)]
        assert (await client.put("/collections/c/points?wait=true", json={"points": points})).status_code == 200
        created = json.loads(await (await client.post("/collections/c/snapshots")).get_data())["result"]
        location = str(tmp_path / "snap" / "c" / created["name"])
        answers: list[tuple[int, str]] = []
        recovered = trio.Event()

        async def recover_three_times():
            for _ in range(3):
                r = await client.put("/collections/c/snapshots/recover", json={"location": location})
                assert r.status_code == 200, await r.get_data()
            recovered.set()

        async def keep_counting():
            while not recovered.is_set():
                r = await client.post("/collections/c/points/count", json={"exact": True})
                answers.append((r.status_code, (await r.get_data()).decode()[:200]))
                await trio.sleep(0)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(recover_three_times)
            nursery.start_soon(keep_counting)
    assert len(answers) > 10
    failures = [a for a in answers if a[0] != 200]
    assert not failures, failures[:3]
    assert all(json.loads(text)["result"]["count"] == POINTS for _, text in answers)
