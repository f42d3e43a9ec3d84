"""SIGKILL during the snapshots of a sharded collection (docs/snapshots.md "Sharded
collections", "Shard snapshots"): a real server with a 3-shard collection is killed at
random moments while it creates collection snapshots (format version 2) under write load,
and while it recovers shard 1 from a shard snapshot.

After every restart:
- every acknowledged write is there (tests/faults/faultload.py's Worker model);
- no partial snapshot, temporary or orphan checksum file is left, `pending/` is empty, and
  every listed snapshot's checksum is its file's sha256 and its tar holds a v2 snapshot;
- a killed shard recovery left shard 1 old or new, whole, and shards 0 and 2 as they were;
- the collection turns green.

Cycles per scenario: PYDRANT_SNAPSHOT_CRASH_CYCLES (default 3).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import sys
import tarfile
import threading
import time
from pathlib import Path

import httpx
import pytest

from serverproc import ServerProcess

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "faults"))
from faultload import VECTOR_SIZE, Worker, stored_payloads, wait_until  # noqa: E402

pytestmark = pytest.mark.e2e

CYCLES = int(os.environ.get("PYDRANT_SNAPSHOT_CRASH_CYCLES", "3"))
NAME = "sharded_big"
BASE_ID = 1_000_000
BULK_POINTS = 9_000
BLOB_BYTES = 2_500  # incompressible payload per point: ~22 MB to archive and extract


def _blob(i: int) -> str:
    return random.Random(i).randbytes(BLOB_BYTES // 2).hex()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("shardcrash")
    proc = ServerProcess(root / "storage").start()
    with httpx.Client(base_url=proc.url, timeout=120) as http:
        response = http.put(f"/collections/{NAME}", json={
            "vectors": {"size": VECTOR_SIZE, "distance": "Dot"}, "shard_number": 3,
            "optimizers_config": {"flush_interval_sec": 1}})
        assert response.status_code == 200, response.text
        for start in range(0, BULK_POINTS, 1000):
            points = [{"id": BASE_ID + i, "vector": [float((i + k) % 13) for k in range(VECTOR_SIZE)],
                       "payload": {"blob": _blob(i), "i": i}} for i in range(start, min(start + 1000, BULK_POINTS))]
            response = http.put(f"/collections/{NAME}/points?wait=true", json={"points": points})
            assert response.status_code == 200, response.text
    yield proc
    proc.kill()
    proc.discard_storage()


def _per_shard(url: str) -> dict[int, int]:
    response = httpx.get(f"{url}/collections/{NAME}/cluster", timeout=60)
    assert response.status_code == 200, response.text
    return {s["shard_id"]: s["points_count"] for s in response.json()["result"]["local_shards"]}


def _check_directory(server: ServerProcess, directory: Path, listing: str, members: set[str]) -> None:
    root = server.storage.parent / "snapshots"
    leftovers = [str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and ".tmp" in p.name]
    assert leftovers == [], leftovers
    assert sorted(p.name for p in (server.storage / "pending").iterdir()) == []
    files = sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []
    assert [f for f in files if f.endswith(".checksum") and f.removesuffix(".checksum") not in files] == []
    listed = httpx.get(f"{server.url}{listing}", timeout=30).json()["result"]
    assert sorted(s["name"] for s in listed) == sorted(f for f in files if f.endswith(".snapshot"))
    for snapshot in listed:
        path = directory / snapshot["name"]
        assert snapshot["checksum"] == hashlib.sha256(path.read_bytes()).hexdigest()
        with tarfile.open(path) as tar:
            names = {m.name for m in tar}
            assert members <= names, (snapshot, sorted(names)[:10])


def _wait_green(url: str) -> None:
    def green():
        return httpx.get(f"{url}/collections/{NAME}", timeout=30).json()["result"]["status"] == "green"

    assert wait_until(green, 60, 0.2), httpx.get(f"{url}/collections/{NAME}", timeout=30).text


class Load:
    """Two workers upserting, updating and deleting their own points (spread over every
    shard), each with a model of what was acknowledged (tests/faults/faultload.py)."""

    def __init__(self, url: str, seed: int, models: list[dict] | None = None):
        rng = random.Random(seed)
        self.workers = [Worker(url, NAME, i, rng.randrange(2**32)) for i in range(2)]
        for worker, model in zip(self.workers, models or []):
            worker.model = model

    def start(self) -> Load:
        for worker in self.workers:
            worker.start()
        return self

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop.set()
        for worker in self.workers:
            worker.join(30)

    @property
    def acknowledged(self) -> int:
        return sum(worker.acknowledged for worker in self.workers)

    def check(self, url: str) -> None:
        """Every acknowledged write is stored (one cut off by the kill: before or after)."""
        stored = stored_payloads(url, NAME)
        problems = [p for worker in self.workers for p in worker.settle(stored)]
        assert problems == [], problems[:5]

    def restarted(self, url: str, seed: int) -> Load:
        return Load(url, seed, [worker.model for worker in self.workers])


def test_sigkill_while_sharded_snapshots_are_created(server):
    started = time.monotonic()
    response = httpx.post(f"{server.url}/collections/{NAME}/snapshots?wait=true", timeout=300)
    assert response.status_code == 200, response.text
    duration = time.monotonic() - started
    directory = server.storage.parent / "snapshots" / NAME
    rng = random.Random(16_005)
    load = Load(server.url, 1).start()
    for cycle in range(CYCLES):
        assert wait_until(lambda running=load: running.acknowledged > 5, 15), server.log_tail()

        def create():
            try:
                httpx.post(f"{server.url}/collections/{NAME}/snapshots?wait=true", timeout=300)
            except httpx.HTTPError:
                pass  # killed

        thread = threading.Thread(target=create, daemon=True)
        thread.start()
        time.sleep(duration * rng.uniform(0.1, 1.2))
        server.kill()
        thread.join(30)
        load.stop()
        server.start()
        _check_directory(server, directory, f"/collections/{NAME}/snapshots",
                         {"snapshot.json", "shards.json", "shards/0/manifest.json", "shards/2/wal.cbor"})
        load.check(server.url)
        _wait_green(server.url)
        load = load.restarted(server.url, 10 + cycle).start()
    load.stop()
    load.check(server.url)


def test_sigkill_during_a_shard_recovery_leaves_shard_1_old_or_new(server):
    created = httpx.post(f"{server.url}/collections/{NAME}/shards/1/snapshots?wait=true", timeout=300)
    assert created.status_code == 200, created.text
    name = created.json()["result"]["name"]
    snapshot_counts = _per_shard(server.url)
    # shard 1 loses some points, so its old and new states differ
    with httpx.Client(base_url=server.url, timeout=120) as http:
        response = http.post(f"/collections/{NAME}/points/delete?wait=true",
                             json={"filter": {"must": [{"key": "i", "range": {"lt": 3000}}]}})
        assert response.status_code == 200, response.text
    current = _per_shard(server.url)
    states = {"old": current[1], "new": snapshot_counts[1]}
    assert states["old"] < states["new"]
    started = time.monotonic()
    recovered = httpx.put(f"{server.url}/collections/{NAME}/shards/1/snapshots/recover", timeout=300, json={"location": name})
    assert recovered.status_code == 200, recovered.text
    duration = time.monotonic() - started
    assert _per_shard(server.url) == {0: current[0], 1: states["new"], 2: current[2]}
    outcomes: dict[str, int] = {}
    rng = random.Random(16_006)
    for cycle in range(CYCLES * 2):
        # back to the old state of shard 1 (a deletion there), then recover and kill
        with httpx.Client(base_url=server.url, timeout=120) as http:
            response = http.post(f"/collections/{NAME}/points/delete?wait=true",
                                 json={"filter": {"must": [{"key": "i", "range": {"lt": 3000}}]}})
            assert response.status_code == 200, response.text
        others = {s: c for s, c in _per_shard(server.url).items() if s != 1}
        assert _per_shard(server.url)[1] == states["old"]

        def recover():
            try:
                httpx.put(f"{server.url}/collections/{NAME}/shards/1/snapshots/recover", timeout=300,
                          json={"location": name})
            except httpx.HTTPError:
                pass  # killed

        thread = threading.Thread(target=recover, daemon=True)
        thread.start()
        time.sleep(duration * (rng.uniform(0.0, 0.5) if cycle % 2 == 0 else rng.uniform(0.5, 1.5)))
        server.kill()
        thread.join(30)
        server.start()
        after = _per_shard(server.url)
        assert after[1] in states.values(), after
        assert {s: c for s, c in after.items() if s != 1} == others
        outcome = "new" if after[1] == states["new"] else "old"
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        _check_directory(server, server.storage.parent / "snapshots" / NAME / "shards" / "1",
                         f"/collections/{NAME}/shards/1/snapshots", {"snapshot.json", "manifest.json", "wal.cbor"})
        _wait_green(server.url)
        response = httpx.post(f"{server.url}/collections/{NAME}/points/count", json={"exact": True}, timeout=60)
        assert response.json()["result"]["count"] == sum(after.values())
    print(f"shard recovery kills (one recovery: {duration:.2f} s): {json.dumps(outcomes)}")
