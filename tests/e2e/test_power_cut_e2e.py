"""Durability across power cuts: a real server keeps its storage on powercutfs
(tests/faults/powercutfs.py), a FUSE filesystem that loses whatever was not fsync'ed when
the power goes. Under concurrent write load the server is SIGKILLed, the power is cut
(unsynced file content and directory entries are lost, sometimes torn), the filesystem is
mounted again and the server restarted on it. After every restart every acknowledged
operation must be there (docs/durability.md: acknowledged = in the WAL and fdatasync'ed),
nothing else may come back, and the server must start. Half of the cuts are armed: the
power goes when the Nth fsync of a WAL file, of a segment file or of any file arrives
(a group commit written but not synced, a RocksDB flush, an optimizer swap's files), the
server keeps running on a dead disk until it is killed, and every write it refuses after
that moment is fine (before it, none may fail).

The load: worker threads with disjoint id ranges upsert (vector + payload, single and
multi-point, some payloads spanning several 4 KiB pages), delete and set_payload, half of
the requests with wait=true and half with wait=false; a small indexing threshold and a
1 s flush interval make the optimizer index and swap segments and the segments flush
during the run; one more thread creates, fills and deletes a second collection. The one
request each thread has in flight at the cut may show either its before or its after
state, nothing else.

PYDRANT_POWERCUT_CYCLES sets the number of cuts (default 5, CI); PYDRANT_POWERCUT_SEED
replays the same random choices (the timing of the cuts still differs).
"""

from __future__ import annotations

import os
import random
import shutil
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "faults"))

from powercutfs import FuseUnavailable, PowerCutFS, unavailable_reason  # noqa: E402
from serverproc import ServerProcess  # noqa: E402

pytestmark = pytest.mark.e2e

CYCLES = int(os.environ.get("PYDRANT_POWERCUT_CYCLES", "5"))
SEED = int(os.environ.get("PYDRANT_POWERCUT_SEED", str(random.randrange(2**31))))
WORKERS = 4
IDS_PER_WORKER = 60
DIM = 16
COLLECTION = "power"
CHURN = "churn"
CUT_MODES = ("lose", "prefix", "pages")

COLLECTION_CONFIG = {
    "vectors": {"size": DIM, "distance": "Euclid"},
    # 10 KB of vectors (160 points) make a segment worth indexing: swaps happen all the time
    "optimizers_config": {"flush_interval_sec": 1, "indexing_threshold": 10},
    # 1 MiB WAL files: the log moves to new files during the run
    "wal_config": {"wal_capacity_mb": 1},
}


class UnexpectedResponse(AssertionError):
    pass


class Worker(threading.Thread):
    """Writes to its own ids; `model` holds what was acknowledged: id -> (payload, vector)."""

    def __init__(self, url: str, index: int, model: dict, seed: int):
        super().__init__(daemon=True)
        self.url = url
        self.ids = list(range(index * IDS_PER_WORKER, (index + 1) * IDS_PER_WORKER))
        self.model = model
        self.rng = random.Random(seed)
        self.in_flight: dict | None = None  # id -> state if applied (None = deleted)
        self.acknowledged = 0
        self.error: tuple[float, str] | None = None  # (when, what) of a non-200 answer
        self.stop = threading.Event()

    def run(self):
        with httpx.Client(base_url=self.url, timeout=20) as http:
            while not self.stop.is_set():
                changes, (method, url, body) = self.next_operation()
                self.in_flight = changes
                try:
                    response = http.request(method, url, json=body)
                except httpx.HTTPError:
                    return  # the server died: the in-flight op stays unknown
                if response.status_code != 200:  # an error after the cut is expected: see the test
                    self.error = (time.time(), f"{method} {url} -> {response.status_code} {response.text[:300]}")
                    return
                for point_id, state in changes.items():
                    if state is None:
                        self.model.pop(point_id, None)
                    else:
                        self.model[point_id] = state
                self.in_flight = None
                self.acknowledged += 1

    def next_operation(self):
        rng = self.rng
        wait = "true" if rng.random() < 0.5 else "false"
        path = f"/collections/{COLLECTION}/points"
        point_id = rng.choice(self.ids)
        current = self.model.get(point_id)
        roll = rng.random()
        if current is not None and roll < 0.15:
            return {point_id: None}, ("POST", f"{path}/delete?wait={wait}", {"points": [point_id]})
        if current is not None and roll < 0.4:
            extra = {"tick": rng.randrange(10**6)}
            payload, vector = current
            return {point_id: ({**payload, **extra}, vector)}, (
                "POST", f"{path}/payload?wait={wait}", {"payload": extra, "points": [point_id]})
        ids = [point_id] if roll < 0.8 else rng.sample(self.ids, rng.randint(2, 8))
        changes, points = {}, []
        for pid in ids:
            size = rng.randrange(50) if rng.random() < 0.9 else rng.randrange(4000, 12000)
            payload = {"v": rng.randrange(10**6), "w": "x" * size}
            vector = [float(rng.randrange(100)) for _ in range(DIM)]
            changes[pid] = (payload, vector)
            points.append({"id": pid, "vector": vector, "payload": payload})
        return changes, ("PUT", f"{path}?wait={wait}", {"points": points})


class Churn(threading.Thread):
    """Creates, fills and deletes a second collection. `state` is the acknowledged number
    of points in it, or None while it does not exist."""

    def __init__(self, url: str, state: int | None, seed: int):
        super().__init__(daemon=True)
        self.url = url
        self.state = state
        self.rng = random.Random(seed)
        self.in_flight: tuple | None = None  # (state if applied,)
        self.acknowledged = 0
        self.error: tuple[float, str] | None = None  # (when, what) of a non-200 answer
        self.stop = threading.Event()

    def run(self):
        with httpx.Client(base_url=self.url, timeout=20) as http:
            while not self.stop.is_set():
                wait = "true" if self.rng.random() < 0.5 else "false"
                if self.state is None:
                    after, request = 0, ("PUT", f"/collections/{CHURN}", {
                        "vectors": {"size": 4, "distance": "Dot"}, "optimizers_config": {"indexing_threshold": 10}})
                elif self.state < 40:
                    n = self.state
                    points = [{"id": n + i, "vector": [1.0, 2.0, 3.0, float(n + i)], "payload": {"n": n + i}} for i in range(10)]
                    after, request = n + 10, ("PUT", f"/collections/{CHURN}/points?wait={wait}", {"points": points})
                else:
                    after, request = None, ("DELETE", f"/collections/{CHURN}", None)
                self.in_flight = (after,)
                method, url, body = request
                try:
                    response = http.request(method, url, json=body)
                except httpx.HTTPError:
                    return
                if response.status_code != 200:  # an error after the cut is expected: see the test
                    self.error = (time.time(), f"{method} {url} -> {response.status_code} {response.text[:300]}")
                    return
                self.state = after
                self.in_flight = None
                self.acknowledged += 1


def scroll_all(http: httpx.Client, collection: str, where: str) -> list[dict]:
    points, offset = [], None
    while True:
        body = {"limit": 500, "with_payload": True, "with_vector": True}
        if offset is not None:
            body["offset"] = offset
        response = http.post(f"/collections/{collection}/points/scroll", json=body)
        assert response.status_code == 200, f"scroll of {collection!r}: {response.text[:1000]}; {where}"
        result = response.json()["result"]
        points.extend(result["points"])
        offset = result["next_page_offset"]
        if offset is None:
            return points


def exact_count(http: httpx.Client, collection: str, where: str) -> int | None:
    """Exact number of points, None if the collection does not exist; fails on a
    collection that exists but did not load."""
    response = http.get(f"/collections/{collection}")
    if response.status_code == 404:
        return None
    assert response.status_code == 200, f"GET /collections/{collection}: {response.text[:1000]}; {where}"
    response = http.post(f"/collections/{collection}/points/count", json={"exact": True})
    assert response.status_code == 200, f"collection {collection!r} is not usable: {response.text[:1000]}; {where}"
    return response.json()["result"]["count"]


@pytest.fixture
def powercut(tmp_path):
    reason = unavailable_reason()
    if reason:
        pytest.skip(f"FUSE unavailable: {reason}")
    fs = PowerCutFS(tmp_path / "mnt", tmp_path / "powercutfs.state", tmp_path / "powercutfs.log")
    try:
        fs.mount()
    except FuseUnavailable as exc:
        pytest.skip(f"FUSE unavailable: cannot mount powercutfs: {exc}")
    yield fs
    fs.unmount()


def test_acknowledged_writes_survive_power_cuts(powercut):
    rng = random.Random(SEED)
    # the storage root is the mount itself, so the server's log and cwd stay outside it
    server = ServerProcess(powercut.mountpoint)
    context = f"seed={SEED}, server log {server.log_path}, fs log {powercut.log_file}"
    last_cut = powercut.state_file.with_name("last-cut.state")
    model: dict = {}  # id -> (payload, vector), acknowledged
    churn_state: int | None = None
    totals = {"acknowledged": 0, "checked_points": 0, "cuts": {m: 0 for m in CUT_MODES}, "armed": 0}
    started = time.monotonic()
    try:
        server.start()
        httpx.put(server.url + f"/collections/{COLLECTION}", json=COLLECTION_CONFIG, timeout=30).raise_for_status()
        for cycle in range(CYCLES):
            workers = [Worker(server.url, i, model, rng.randrange(2**32)) for i in range(WORKERS)]
            churn = Churn(server.url, churn_state, rng.randrange(2**32))
            threads = [*workers, churn]
            for t in threads:
                t.start()
            mode, seed = rng.choice(CUT_MODES), rng.randrange(2**32)
            if rng.random() < 0.5:
                # an armed cut: at a WAL group commit's fdatasync, at any fsync (RocksDB
                # flushes, manifest and index files of an optimizer swap), or a segment's
                time.sleep(rng.uniform(0.2, 1.5))
                powercut.arm(mode, seed, skip=rng.randrange(5), path_contains=rng.choice(("/wal/", "", "/segments/")))
                deadline = time.monotonic() + 3
                while powercut.cut_happened() is None and time.monotonic() < deadline:
                    time.sleep(0.02)
            else:
                time.sleep(rng.uniform(0.3, 2.5))
            killed_at = time.time()
            server.kill()
            for t in threads:
                t.stop.set()
                t.join(30)
            totals["acknowledged"] += sum(t.acknowledged for t in threads)
            cut = powercut.cut(mode, seed)  # if an armed cut happened, its details
            totals["cuts"][cut["mode"]] += 1
            totals["armed"] += cut["trigger"] != "command"
            # Once the power is off every write fails; before that none may.
            power_off = min(killed_at, cut["time"])
            errors = [t.error[1] for t in threads if t.error and t.error[0] < power_off]
            assert not errors, f"cycle {cycle}: the live server refused a write: {errors} ({context})"
            # what the cut left, before the restart changes it: `python tests/faults/powercutfs.py --tree FILE`
            shutil.copyfile(powercut.state_file, last_cut)
            where = f"cycle {cycle}, cut {cut}, state after the cut in {last_cut}, {context}"
            powercut.mount()
            try:
                server.start()
            except RuntimeError as exc:
                pytest.fail(f"server did not start after a power cut, {where}:\n{exc}")

            with httpx.Client(base_url=server.url, timeout=30) as http:
                stored = scroll_all(http, COLLECTION, where)
                ids = [p["id"] for p in stored]
                assert len(ids) == len(set(ids)), f"scroll returned a point twice, {where}"
                state = {p["id"]: (p["payload"], p["vector"]) for p in stored}
                unknown: dict = {}
                for w in workers:
                    unknown.update(w.in_flight or {})
                for point_id in set(state) | set(model) | set(unknown):
                    expected = [model.get(point_id)]
                    if point_id in unknown:
                        expected.append(unknown[point_id])
                    assert state.get(point_id) in expected, (
                        f"point {point_id}: stored {state.get(point_id)!r}, acknowledged history allows "
                        f"{expected!r}; {where}")
                totals["checked_points"] += len(set(state) | set(model))
                # settle the in-flight ops to what the server holds: the model stays exact
                for point_id in unknown:
                    if point_id in state:
                        model[point_id] = state[point_id]
                    else:
                        model.pop(point_id, None)
                info = http.get(f"/collections/{COLLECTION}").json()["result"]
                count = exact_count(http, COLLECTION, where)
                assert info["points_count"] == count == len(model), (
                    f"points_count {info['points_count']}, exact count {count}, live points {len(model)} "
                    f"(a resurrected or duplicated point?); {where}")

                stored_churn = exact_count(http, CHURN, where)
                allowed = [churn.state] + ([churn.in_flight[0]] if churn.in_flight else [])
                assert stored_churn in allowed, (
                    f"collection {CHURN!r}: holds {stored_churn!r} points (None = absent), acknowledged "
                    f"history allows {allowed!r}; {where}")
                churn_state = stored_churn
    finally:
        server.kill()
    elapsed = time.monotonic() - started
    print(f"\npower cut: {CYCLES} cycles, {totals['acknowledged']} acknowledged operations, "
          f"{totals['checked_points']} point checks, cuts {totals['cuts']} ({totals['armed']} at an fsync), "
          f"seed {SEED}, {elapsed:.1f} s")
    assert totals["acknowledged"] > CYCLES * 10, f"the load did not run: {totals} ({context})"


def test_a_created_collection_survives_a_power_cut(powercut):
    """The smallest case, deterministic: on fresh storage create a collection and upsert a
    point (both acknowledged), kill, cut the power (everything unsynced lost); after the
    restart both are there. Needs the storage's own directories (collections/, pending/)
    and the collection's first segment directory durable in their parents."""
    server = ServerProcess(powercut.mountpoint)
    try:
        server.start()
        httpx.put(server.url + "/collections/fresh", json={"vectors": {"size": 4, "distance": "Dot"}}).raise_for_status()
        httpx.put(server.url + "/collections/fresh/points?wait=true", json={
            "points": [{"id": 1, "vector": [1.0, 2.0, 3.0, 4.0], "payload": {"a": 1}}]}).raise_for_status()
        server.kill()
        powercut.cut("lose", 0)
        last_cut = powercut.state_file.with_name("last-cut.state")
        shutil.copyfile(powercut.state_file, last_cut)
        where = f"state after the cut in {last_cut}, server log {server.log_path}"
        powercut.mount()
        server.start()
        with httpx.Client(base_url=server.url, timeout=30) as http:
            count = exact_count(http, "fresh", where)
            assert count == 1, f"collection 'fresh' holds {count!r} points (None: it is gone), not 1; {where}"
            point = http.get("/collections/fresh/points/1").json()["result"]
            assert point["payload"] == {"a": 1}, where
    finally:
        server.kill()
