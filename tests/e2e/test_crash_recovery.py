"""Durability: SIGKILL a real server under concurrent write load, many times; after each
restart every acknowledged operation is visible and every point equals a model of the
acknowledged history (docs/durability.md).

Each worker thread owns a disjoint range of point ids, so its writes to them are ordered
and its model is exact. The one request a worker has in flight when the server dies was
never acknowledged: its point may show the state before or after it, nothing else.
"""

import os
import random
import threading
import time

import httpx
import pytest

pytestmark = pytest.mark.e2e

# A long run is one command: PYDRANT_CRASH_CYCLES=200 python -m pytest tests/e2e/test_crash_recovery.py
CYCLES = int(os.environ.get("PYDRANT_CRASH_CYCLES", "20"))
WORKERS = 6
IDS_PER_WORKER = 40
COLLECTION = "crash"


class Worker(threading.Thread):
    def __init__(self, url: str, index: int, model: dict, seed: int):
        super().__init__(daemon=True)
        self.url = url
        self.ids = list(range(index * IDS_PER_WORKER, (index + 1) * IDS_PER_WORKER))
        self.model = model  # id -> payload dict (absent = deleted/never written), acknowledged only
        self.rng = random.Random(seed)
        self.in_flight: tuple | None = None  # (id, state_if_applied)
        self.acknowledged = 0
        self.stop = threading.Event()

    def run(self):
        with httpx.Client(base_url=self.url, timeout=10) as http:
            while not self.stop.is_set():
                point_id, new_state, request = self.next_operation()
                self.in_flight = (point_id, new_state)
                try:
                    method, url, options = request
                    response = http.request(method, url, **options)
                except httpx.HTTPError:
                    return  # server died: the in-flight op stays unknown
                if response.status_code != 200:
                    return
                self.model_apply(point_id, new_state)
                self.in_flight = None
                self.acknowledged += 1

    def model_apply(self, point_id, state):
        if state is None:
            self.model.pop(point_id, None)
        else:
            self.model[point_id] = state

    def next_operation(self):
        point_id = self.rng.choice(self.ids)
        current = self.model.get(point_id)
        wait = "true" if self.rng.random() < 0.5 else "false"
        path = f"/collections/{COLLECTION}/points"
        roll = self.rng.random()
        if current is not None and roll < 0.2:
            return point_id, None, ("POST", f"{path}/delete?wait={wait}", {"json": {"points": [point_id]}})
        if current is not None and roll < 0.5:
            extra = {"tick": self.rng.randrange(10**6)}
            return point_id, {**current, **extra}, ("POST", f"{path}/payload?wait={wait}", {"json": {"payload": extra, "points": [point_id]}})
        payload = {"v": self.rng.randrange(10**6), "w": "x" * self.rng.randrange(50)}
        vector = [float(self.rng.randrange(100)) for _ in range(4)]
        body = {"points": [{"id": point_id, "vector": vector, "payload": payload}]}
        return point_id, payload, ("PUT", f"{path}?wait={wait}", {"json": body})


def stored_payloads(url: str) -> dict:
    points, offset = {}, None
    with httpx.Client(base_url=url, timeout=30) as http:
        while True:
            body = {"limit": 1000, "with_payload": True, **({"offset": offset} if offset is not None else {})}
            response = http.post(f"/collections/{COLLECTION}/points/scroll", json=body)
            assert response.status_code == 200, response.text
            result = response.json()["result"]
            points.update({p["id"]: p["payload"] for p in result["points"]})
            offset = result["next_page_offset"]
            if offset is None:
                return points


def check_against_model(stored: dict, model: dict, in_flight: list):
    unknown = {point_id: state for point_id, state in in_flight}
    for point_id in set(stored) | set(model) | set(unknown):
        expected = [model.get(point_id)]
        if point_id in unknown:
            expected.append(unknown[point_id])
        assert stored.get(point_id) in expected, (point_id, stored.get(point_id), expected)


def test_acknowledged_writes_survive_sigkill(fresh_server):
    # A tiny indexing threshold (1 kB: 64 vectors) keeps the optimizer building and
    # swapping segments under the load, so kills land inside swaps and moves too.
    httpx.put(fresh_server.url + f"/collections/{COLLECTION}", json={
        "vectors": {"size": 4, "distance": "Euclid"},
        "optimizers_config": {"flush_interval_sec": 1, "indexing_threshold": 1},
    }).raise_for_status()
    model: dict = {}
    rng = random.Random(20261124)
    total_acknowledged = 0
    for _ in range(CYCLES):
        workers = [Worker(fresh_server.url, i, model, rng.randrange(2**32)) for i in range(WORKERS)]
        for w in workers:
            w.start()
        time.sleep(rng.uniform(0.2, 1.5))
        fresh_server.kill()
        for w in workers:
            w.stop.set()
            w.join(15)
        total_acknowledged += sum(w.acknowledged for w in workers)
        fresh_server.start()
        stored = stored_payloads(fresh_server.url)
        in_flight = [w.in_flight for w in workers if w.in_flight is not None]
        check_against_model(stored, model, in_flight)
        counted = httpx.post(fresh_server.url + f"/collections/{COLLECTION}/points/count", json={"exact": True})
        assert counted.json()["result"]["count"] == len(stored)  # no point held twice
        # settle the unknowns to what the server now holds, so the model stays exact
        for point_id, _ in in_flight:
            if point_id in stored:
                model[point_id] = stored[point_id]
            else:
                model.pop(point_id, None)
    assert total_acknowledged > CYCLES * 20  # the load really ran
    print(f"crash test: {CYCLES} cycles, {total_acknowledged} acknowledged operations checked, 0 lost")
