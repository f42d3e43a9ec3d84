"""A real `pydrant serve` restarted after SIGKILL: the start-up log names each collection
as it opens and when it is ready with the WAL operations it replayed, and every
acknowledged write is there once `/readyz` answers."""

from __future__ import annotations

import re

import httpx
import pytest

pytestmark = pytest.mark.e2e

BATCHES = 5
PER_BATCH = 10


def test_restart_after_a_crash_logs_each_collection_and_serves_every_write(fresh_server):
    with httpx.Client(base_url=fresh_server.url, timeout=30) as http:
        for name in ("first", "second"):
            body = {"vectors": {"size": 2, "distance": "Dot"}, "optimizers_config": {"flush_interval_sec": 3600}}
            assert http.put(f"/collections/{name}", json=body).status_code == 200
        for batch in range(BATCHES):  # logged, never flushed: the restart replays them
            points = [{"id": batch * PER_BATCH + i, "vector": [1.0, float(i)]} for i in range(PER_BATCH)]
            assert http.put("/collections/first/points?wait=true", json={"points": points}).status_code == 200
    fresh_server.kill()
    log_start = fresh_server.log_path.stat().st_size
    fresh_server.start()

    with httpx.Client(base_url=fresh_server.url, timeout=30) as http:
        assert http.get("/readyz").status_code == 200
        count = http.post("/collections/first/points/count", json={"exact": True}).json()["result"]["count"]
        assert count == BATCHES * PER_BATCH
    with open(fresh_server.log_path, encoding="utf-8", errors="replace") as log:
        log.seek(log_start)
        lines = [line.split(" pydrant.storage: ", 1)[1].rstrip() for line in log if " pydrant.storage: " in line]
    storage = fresh_server.storage.resolve()
    assert f"opening 2 collections in {storage / 'collections'}" in lines, lines
    assert "collection first: opening 1 segment" in lines
    assert "collection second: opening 1 segment" in lines
    first = next(line for line in lines if line.startswith("collection first: ready in "))
    replayed = re.fullmatch(r"collection first: ready in \d+\.\d\d s: 50 points in 1 segment, (\d+) WAL operations? replayed", first)
    assert replayed is not None, first
    assert int(replayed.group(1)) >= BATCHES  # at least the upserts no segment had flushed
    assert any(re.fullmatch(r"collection second: ready in \d+\.\d\d s: 0 points in 1 segment, \d+ WAL operations? replayed", line) for line in lines)
    ready = [line for line in lines if line.startswith("storage ready at ")]
    assert len(ready) == 1 and re.fullmatch(r"storage ready at .*: 2 collections in \d+\.\d\d s", ready[0])
