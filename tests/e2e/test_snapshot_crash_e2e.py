"""Snapshots and SIGKILL (issue 15; docs/snapshots.md "How a snapshot is taken", "How a
collection is recovered"): a real server is killed, at random moments, while it creates
snapshots, while it recovers a collection from one, and while it takes snapshots during an
optimization — always under concurrent write load with a model of the acknowledged
writes (tests/faults/faultload.py's Worker: an answered write is in the model, one cut
off by the kill may be applied or not).

After every restart:
- every acknowledged write is there;
- no partial snapshot (`*.tmp-*`), no checksum file without its snapshot, no temporary file
  of any kind is left in the snapshots directory, and `storage/pending/` is empty;
- every listed snapshot is complete: its checksum (the listing's and the `.checksum` file)
  is the sha256 of its file, and the tar holds a snapshot;
- a recovery that was killed left the old collection whole or the new one whole, never a
  mix;
- the server serves and the collections turn green.

Cycles per scenario: PYDRANT_SNAPSHOT_CRASH_CYCLES (default 3); a long run is
`PYDRANT_SNAPSHOT_CRASH_CYCLES=50 python -m pytest tests/e2e/test_snapshot_crash_e2e.py`.
"""

from __future__ import annotations

import hashlib
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
from faultload import Worker, create_collection, wait_until  # noqa: E402

pytestmark = pytest.mark.e2e

CYCLES = int(os.environ.get("PYDRANT_SNAPSHOT_CRASH_CYCLES", "3"))
BIG = "big"  # the collection snapshotted: large enough that archiving takes a while
LOADED = "loaded"  # a second collection that only takes the write load during recoveries
BASE_ID = 1_000_000  # the bulk points' ids, above every worker's range
BULK_POINTS = 12_000
BLOB_BYTES = 2_500  # incompressible payload per bulk point: ~30 MB of data to archive
WORKERS = 3


def _blob(i: int) -> str:
    return random.Random(i).randbytes(BLOB_BYTES // 2).hex()


def _fill_bulk(url: str, name: str) -> None:
    with httpx.Client(base_url=url, timeout=120) as http:
        for start in range(0, BULK_POINTS, 1000):
            points = [
                {"id": BASE_ID + i, "vector": [float(i % 97), float(i % 13), 1.0, float(i % 7)], "payload": {"blob": _blob(i), "i": i}}
                for i in range(start, min(start + 1000, BULK_POINTS))
            ]
            response = http.put(f"/collections/{name}/points?wait=true", json={"points": points})
            assert response.status_code == 200, response.text


def _payloads(url: str, name: str, ids: list[int]) -> dict:
    response = httpx.post(f"{url}/collections/{name}/points", json={"ids": ids, "with_payload": True}, timeout=60)
    assert response.status_code == 200, response.text
    return {p["id"]: p["payload"] for p in response.json()["result"]}


def _count(url: str, name: str) -> int:
    response = httpx.post(f"{url}/collections/{name}/points/count", json={"exact": True}, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()["result"]["count"]


class Load:
    """Workers writing to `name` (each its own ids, a model of what was acknowledged)."""

    def __init__(self, url: str, name: str, seed: int):
        rng = random.Random(seed)
        self.name = name
        self.workers = [Worker(url, name, i, rng.randrange(2**32)) for i in range(WORKERS)]

    def start(self) -> Load:
        for w in self.workers:
            w.start()
        return self

    def stop(self) -> None:
        for w in self.workers:
            w.stop.set()
        for w in self.workers:
            w.join(30)

    @property
    def acknowledged(self) -> int:
        return sum(w.acknowledged for w in self.workers)

    def check(self, url: str) -> None:
        """Every acknowledged write is stored (one cut off by the kill: before or after);
        afterwards the model holds what the server holds."""
        ids = [i for w in self.workers for i in w.ids]
        stored = _payloads(url, self.name, ids)
        problems = [p for w in self.workers for p in w.settle(stored)]
        assert problems == [], problems[:5]

    def restarted(self, url: str, seed: int) -> Load:
        """A new set of threads carrying on from the same models, against `url`."""
        fresh = Load(url, self.name, seed)
        for old, new in zip(self.workers, fresh.workers):
            new.model = old.model
        return fresh


class Snapshotter(threading.Thread):
    """Creates snapshots of `name` one after another until stopped or the server dies."""

    def __init__(self, url: str, name: str):
        super().__init__(daemon=True)
        self.url = url
        self.name = name
        self.created: list[dict] = []
        self.failures: list[str] = []
        self.stop = threading.Event()

    def run(self):
        with httpx.Client(base_url=self.url, timeout=120) as http:
            while not self.stop.is_set():
                try:
                    response = http.post(f"/collections/{self.name}/snapshots?wait=true")
                except httpx.HTTPError:
                    return  # the server was killed
                if response.status_code != 200:
                    self.failures.append(f"{response.status_code} {response.text[:300]}")
                    return
                self.created.append(response.json()["result"])


def check_snapshots_directory(server: ServerProcess, name: str) -> list[dict]:
    """No partial or temporary file anywhere under the snapshots path, nothing in
    pending/, and every listed snapshot complete with a matching checksum."""
    root = server.storage.parent / "snapshots"
    leftovers = [str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and (".tmp" in p.name)]
    assert leftovers == [], leftovers
    directory = root / name
    files = sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []
    orphans = [f for f in files if f.endswith(".checksum") and f.removesuffix(".checksum") not in files]
    assert orphans == [], orphans  # a checksum file without its snapshot
    unexpected = [f for f in files if not (f.endswith(".snapshot") or f.endswith(".snapshot.checksum"))]
    assert unexpected == [], unexpected
    pending = sorted(p.name for p in (server.storage / "pending").iterdir())
    assert pending == [], pending

    response = httpx.get(f"{server.url}/collections/{name}/snapshots", timeout=30)
    assert response.status_code == 200, response.text
    listed = response.json()["result"]
    assert sorted(s["name"] for s in listed) == sorted(f for f in files if f.endswith(".snapshot"))
    for snapshot in listed:
        path = directory / snapshot["name"]
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert snapshot["checksum"] == digest, snapshot
        assert (directory / (snapshot["name"] + ".checksum")).read_text().strip() == digest
        assert snapshot["size"] == path.stat().st_size
        with tarfile.open(path) as tar:  # the whole tar reads, and holds a snapshot
            names = {m.name for m in tar}
        assert {"snapshot.json", "manifest.json", "config.json", "wal.cbor"} <= names, snapshot
    return listed


def wait_green(url: str, name: str, timeout: float = 60) -> dict:
    def info():
        result = httpx.get(f"{url}/collections/{name}", timeout=30).json()["result"]
        return result if result["status"] == "green" else None

    result = wait_until(info, timeout, 0.2)
    assert result, httpx.get(f"{url}/collections/{name}", timeout=30).text
    return result


def timed_snapshot(url: str, name: str) -> tuple[dict, float]:
    started = time.monotonic()
    response = httpx.post(f"{url}/collections/{name}/snapshots?wait=true", timeout=120)
    assert response.status_code == 200, response.text
    return response.json()["result"], time.monotonic() - started


@pytest.fixture(scope="module")
def big_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("snapcrash")
    # uploads of the ~30 MB snapshot go through the HTTP body limit
    server = ServerProcess(root / "storage", extra_env={"PYDRANT__SERVICE__MAX_REQUEST_SIZE_MB": "256"}).start()
    create_collection(server.url, BIG, optimizers_config={"flush_interval_sec": 1, "indexing_threshold": 0})
    create_collection(server.url, LOADED)
    _fill_bulk(server.url, BIG)
    yield server
    server.kill()


def test_sigkill_while_snapshots_are_created(big_server):
    server = big_server
    _, duration = timed_snapshot(server.url, BIG)  # how long one takes here, to aim the kills
    rng = random.Random(15_001)
    load = Load(server.url, BIG, 1).start()
    completed = killed_mid_archive = 0
    for cycle in range(CYCLES):
        # two creators at once: snapshots of the same second, and one taken while another archives
        creators = [Snapshotter(server.url, BIG) for _ in range(2)]
        for c in creators:
            c.start()
        time.sleep(rng.uniform(0.05, 1.5 * duration + 0.3))
        tmp_seen = any(".tmp-" in p.name for p in (server.storage.parent / "snapshots" / BIG).iterdir())
        server.kill()
        load.stop()
        for c in creators:
            c.stop.set()
            c.join(30)
        assert [f for c in creators for f in c.failures] == []
        completed += sum(len(c.created) for c in creators)
        killed_mid_archive += tmp_seen
        server.start()
        load.check(server.url)
        listed = check_snapshots_directory(server, BIG)
        created = {s["name"]: s["checksum"] for c in creators for s in c.created}
        for snapshot in listed:  # an answered create is listed as it was answered
            if snapshot["name"] in created:
                assert snapshot["checksum"] == created.pop(snapshot["name"])
        assert created == {}, f"answered snapshots missing after the restart: {created}"
        assert _count(server.url, BIG) >= BULK_POINTS
        wait_green(server.url, BIG)
        load = load.restarted(server.url, cycle).start()
        assert wait_until(lambda running=load: running.acknowledged > 5, 15), server.log_tail()
    load.stop()
    load.check(server.url)
    # and a snapshot still works after all that, and holds the collection
    description, _ = timed_snapshot(server.url, BIG)
    check_snapshots_directory(server, BIG)
    response = httpx.put(f"{server.url}/collections/big_copy/snapshots/recover", timeout=120, json={
        "location": str(server.storage.parent / "snapshots" / BIG / description["name"]), "checksum": description["checksum"]})
    assert response.status_code == 200, response.text
    assert _count(server.url, "big_copy") == _count(server.url, BIG)
    assert httpx.delete(f"{server.url}/collections/big_copy", timeout=60).status_code == 200
    print(f"snapshot creation: {CYCLES} kills, {completed} snapshots completed, {killed_mid_archive} kills while a .tmp- file existed")


def _signature(url: str, name: str) -> tuple | None:
    """What tells the two states of `big` apart, and any mix of them: the point count, the
    count of changed points, and a sample of payloads. None: no such collection."""
    if httpx.get(f"{url}/collections/{name}", timeout=30).status_code == 404:
        return None
    response = httpx.post(f"{url}/collections/{name}/points/count", timeout=60,
                          json={"exact": True, "filter": {"must": [{"key": "changed", "match": {"value": True}}]}})
    assert response.status_code == 200, response.text
    changed = response.json()["result"]["count"]
    ids = [BASE_ID + i for i in range(0, BULK_POINTS, 97)]
    return _count(url, name), changed, _payloads(url, name, ids)


def _keep_snapshot(server: ServerProcess, name: str, into: Path) -> Path:
    """Create a snapshot of `name`, move it out of the snapshots directory into `into`
    (the name is free again then: the copy takes a name of its own)."""
    description, _ = timed_snapshot(server.url, name)
    path = into / f"{len(list(into.iterdir()))}-{description['name']}"
    path.write_bytes((server.storage.parent / "snapshots" / name / description["name"]).read_bytes())
    response = httpx.delete(f"{server.url}/collections/{name}/snapshots/{description['name']}", timeout=30)
    assert response.status_code == 200, response.text
    return path


def test_sigkill_during_recovery_leaves_old_or_new(big_server, tmp_path):
    """`big` is taken to two states, A and B, a snapshot of each kept; then, cycle after
    cycle, the one it is not in is recovered (from its path or by upload, alternately) and
    the server killed at a random moment of the recovery (receiving the upload, reading
    and extracting the tar, checking and opening it, the swap, the load). After the restart it is A or B, whole, and the write load on another
    collection lost nothing. A killed recovery into a new name leaves no collection or a
    whole one."""
    server = big_server
    state_a = _signature(server.url, BIG)
    path_a = _keep_snapshot(server, BIG, tmp_path)
    with httpx.Client(base_url=server.url, timeout=120) as http:
        response = http.post(f"/collections/{BIG}/points/payload?wait=true", json={
            "payload": {"changed": True}, "filter": {"must": [{"key": "i", "range": {"gte": 0}}]}})
        assert response.status_code == 200, response.text
        response = http.put(f"/collections/{BIG}/points?wait=true", json={"points": [
            {"id": 5_000_000 + i, "vector": [1.0, 2.0, 3.0, 4.0], "payload": {"extra": i}} for i in range(50)]})
        assert response.status_code == 200, response.text
    state_b = _signature(server.url, BIG)
    assert state_a != state_b and state_b[1] == BULK_POINTS
    path_b = _keep_snapshot(server, BIG, tmp_path)
    snapshot_of = {"A": (path_a, state_a), "B": (path_b, state_b)}

    load = Load(server.url, LOADED, 2).start()
    started = time.monotonic()  # one recovery under the load, to aim the kills
    response = httpx.put(f"{server.url}/collections/{BIG}/snapshots/recover", timeout=300, json={"location": str(path_a)})
    assert response.status_code == 200, response.text
    recovery = time.monotonic() - started
    assert _signature(server.url, BIG) == state_a
    current = "A"
    phases: dict[str, int] = {}
    rng = random.Random(15_002)
    for cycle in range(CYCLES * 2 + 1):
        fresh_name = cycle == CYCLES * 2  # the last kill: a recovery into a new name
        name = "recovered_new" if fresh_name else BIG
        target = "B" if current == "A" else "A"
        path, _ = snapshot_of[target]

        upload = cycle % 2 == 1  # every other one by upload (saved to pending/ first), else from its path

        def recover(name=name, path=path, upload=upload):
            try:
                if upload:
                    with open(path, "rb") as f:
                        httpx.post(f"{server.url}/collections/{name}/snapshots/upload", timeout=300,
                                   files={"snapshot": (path.name, f, "application/octet-stream")})
                else:
                    httpx.put(f"{server.url}/collections/{name}/snapshots/recover", timeout=300, json={"location": str(path)})
            except httpx.HTTPError:
                pass  # killed

        thread = threading.Thread(target=recover, daemon=True)
        thread.start()
        # a third of the kills early (reading, extracting), the rest late (checks, open, swap, load)
        time.sleep(recovery * (1.5 if upload else 1.0) * (rng.uniform(0.0, 0.5) if cycle % 3 == 0 else rng.uniform(0.6, 1.6)))
        staged = bool(list((server.storage / "pending").iterdir()))
        server.kill()
        thread.join(30)
        load.stop()
        server.start()
        after = _signature(server.url, name)
        if fresh_name:
            assert after in (None, snapshot_of[target][1]), "a partial collection under a new name"
            outcome = "new name: absent" if after is None else "new name: complete"
        else:
            assert after in (snapshot_of[current][1], snapshot_of[target][1]), "a mix of the old and the new collection"
            outcome = "old kept" if after == snapshot_of[current][1] else "new complete"
            current = current if after == snapshot_of[current][1] else target
        key = f"{'upload' if upload else 'path'}, {'staged' if staged else 'not staged'}, {outcome}"
        phases[key] = phases.get(key, 0) + 1
        check_snapshots_directory(server, BIG)
        wait_green(server.url, name if after is not None else BIG)
        load.check(server.url)
        load = load.restarted(server.url, 100 + cycle).start()
        assert wait_until(lambda running=load: running.acknowledged > 5, 15), server.log_tail()
    load.stop()
    load.check(server.url)
    print(f"recovery kills (one recovery: {recovery:.2f} s): {phases}")


OPT = "opt"
OPT_POINTS = 6_000


def _optimizer_running(url: str, name: str) -> bool:
    return httpx.get(f"{url}/collections/{name}", timeout=30).json()["result"]["status"] == "yellow"


def test_sigkill_while_a_snapshot_is_taken_during_an_optimization(big_server):
    """Each cycle changes the HNSW config, so the optimizer rebuilds the indexed segment,
    and snapshots are created meanwhile under the write load; the kill lands during the
    rebuild. A snapshot completed during a rebuild restores whole."""
    server = big_server
    create_collection(server.url, OPT, optimizers_config={"flush_interval_sec": 1, "indexing_threshold": 1},
                      hnsw_config={"m": 8, "ef_construct": 16})
    with httpx.Client(base_url=server.url, timeout=120) as http:
        for start in range(0, OPT_POINTS, 1000):
            response = http.put(f"/collections/{OPT}/points?wait=true", json={"points": [
                {"id": BASE_ID + i, "vector": [float(i % 89), float(i % 11), float(i % 5), 1.0], "payload": {"i": i}}
                for i in range(start, start + 1000)]})
            assert response.status_code == 200, response.text
    info = wait_green(server.url, OPT, 120)
    assert info["indexed_vectors_count"] > 0
    sample = [BASE_ID + i for i in range(0, OPT_POINTS, 61)]
    bulk = _payloads(server.url, OPT, sample)
    rng = random.Random(15_003)
    load = Load(server.url, OPT, 3).start()
    during_rebuild: list[dict] = []
    for cycle in range(CYCLES):
        response = httpx.patch(f"{server.url}/collections/{OPT}", timeout=30,
                               json={"hnsw_config": {"m": 12 if cycle % 2 == 0 else 8}})
        assert response.status_code == 200, response.text
        assert wait_until(lambda: _optimizer_running(server.url, OPT), 10), "the rebuild did not start"
        creator = Snapshotter(server.url, OPT)
        creator.start()
        time.sleep(rng.uniform(0.2, 1.5))
        rebuilding = _optimizer_running(server.url, OPT)
        server.kill()
        load.stop()
        creator.stop.set()
        creator.join(30)
        assert creator.failures == []
        if rebuilding:
            during_rebuild.extend(creator.created)
        server.start()
        load.check(server.url)
        listed = check_snapshots_directory(server, OPT)
        assert {s["name"] for s in creator.created} <= {s["name"] for s in listed}
        assert _payloads(server.url, OPT, sample) == bulk
        wait_green(server.url, OPT, 120)
        load = load.restarted(server.url, 200 + cycle).start()
        assert wait_until(lambda running=load: running.acknowledged > 5, 15), server.log_tail()
    load.stop()
    load.check(server.url)
    assert during_rebuild, "no snapshot completed while the optimizer rebuilt the segment"
    snapshot = during_rebuild[-1]
    response = httpx.put(f"{server.url}/collections/opt_copy/snapshots/recover", timeout=120, json={
        "location": str(server.storage.parent / "snapshots" / OPT / snapshot["name"]), "checksum": snapshot["checksum"]})
    assert response.status_code == 200, response.text
    assert _payloads(server.url, "opt_copy", sample) == bulk
    wait_green(server.url, "opt_copy", 120)
    hits = httpx.post(f"{server.url}/collections/opt_copy/points/query", timeout=30,
                      json={"query": [3.0, 3.0, 3.0, 1.0], "limit": 5}).json()["result"]["points"]
    assert len(hits) == 5
    print(f"optimization kills: {CYCLES}; {len(during_rebuild)} snapshots completed during a rebuild")
