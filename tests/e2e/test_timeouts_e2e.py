"""Read timeouts end to end: a deliberately slow read (a batch of exact searches, each its
own full scan of 20k x 256 vectors) is cut off after its `timeout` with Qdrant's 408 and
message, promptly, and the server keeps answering other requests while it runs and after;
the cut-off read's thread stops working soon after (the process's CPU time stops growing).
Through raw HTTP and qdrant-client 1.15.1.
"""

from __future__ import annotations

import os
import threading
import time

import httpx
import numpy as np
import pytest
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import UnexpectedResponse

from serverproc import ServerProcess

DIM = 256
POINTS = 20_000
SLOW = "slow"
SAME_SHAPE = "same-shape"
TIMEOUT_MESSAGE = "Timeout: Timeout error: Operation 'Search' timed out after 1 seconds"
WORK_SECONDS = 8.0  # how long the slow batch would run uncut, at least
# "Promptly": the answer comes within the timeout plus this slack (well below WORK_SECONDS,
# so an uncut read fails the test). Generous because CI shares 2 cores with other work:
# an event loop or a client delayed by a loaded machine must not fail a correct cut-off.
SLACK = 2.0


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("timeouts")
    proc = ServerProcess(root / "storage").start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server.url, timeout=60) as h:
        yield h


@pytest.fixture(scope="module")
def slow(http):
    """A collection without indexing (every search is an exact scan) and the number of
    searches one batch needs to keep the server busy for about WORK_SECONDS."""
    body = {
        "vectors": {"size": DIM, "distance": "Dot"},
        "optimizers_config": {"indexing_threshold": 0},
        "hnsw_config": {"m": 0},
    }
    assert http.put(f"/collections/{SLOW}", json=body).status_code == 200
    rng = np.random.default_rng(7)
    step = 5_000
    for start in range(0, POINTS, step):
        vectors = np.round(rng.standard_normal((step, DIM)), 3).tolist()
        batch = {"ids": list(range(start, start + step)), "vectors": vectors}
        r = http.put(f"/collections/{SLOW}/points?wait=true", json={"batch": batch})
        assert r.status_code == 200, r.text
    assert http.put("/collections/tiny", json={"vectors": {"size": 4, "distance": "Dot"}}).status_code == 200
    # the same shape with a handful of points: what reading and answering a batch costs
    assert http.put(f"/collections/{SAME_SHAPE}", json={"vectors": {"size": DIM, "distance": "Dot"}}).status_code == 200
    few = {"ids": list(range(10)), "vectors": np.round(rng.standard_normal((10, DIM)), 3).tolist()}
    assert http.put(f"/collections/{SAME_SHAPE}/points?wait=true", json={"batch": few}).status_code == 200
    points = [{"id": i, "vector": [1.0, float(i), 0.0, 1.0]} for i in range(10)]
    assert http.put("/collections/tiny/points?wait=true", json={"points": points}).status_code == 200
    # calibrate: seconds per exact search of the whole collection, on this machine now
    # (the first batch warms the kernels and caches up)
    for _ in range(2):
        started = time.monotonic()
        r = http.post(f"/collections/{SLOW}/points/search/batch", json={"searches": _searches(rng, 40)})
        assert r.status_code == 200, r.text[:300]
        per_search = (time.monotonic() - started) / 40
    return max(3000, int(WORK_SECONDS / per_search)), rng


def _searches(rng, count: int) -> list[dict]:
    # distinct `params` so that no two searches share a scan (each is a full exact scan)
    queries = np.round(rng.standard_normal((count, DIM)), 3).tolist()
    return [{"vector": q, "limit": 5, "params": {"exact": True, "hnsw_ef": 1 + i}} for i, q in enumerate(queries)]


def _cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _Prober(threading.Thread):
    """Fast requests against another collection while the slow one runs: their latencies."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url = url
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as h:
            while not self.stop.is_set():
                started = time.monotonic()
                r = h.post("/collections/tiny/points/search", json={"vector": [1, 0, 0, 0], "limit": 3})
                self.latencies.append(time.monotonic() - started)
                if r.status_code != 200:
                    self.failures.append(r.text)
                time.sleep(0.05)


def test_slow_search_batch_is_cut_off_promptly_and_the_server_stays_responsive(server, http, slow):
    searches, rng = slow
    body = {"searches": _searches(rng, searches)}
    # reading, validating and preparing the body happen before the read's clock starts
    started = time.monotonic()
    assert http.post(f"/collections/{SAME_SHAPE}/points/search/batch?timeout=30", json=body).status_code == 200
    overhead = time.monotonic() - started
    prober = _Prober(server.url)
    prober.start()
    try:
        time.sleep(0.2)
        started = time.monotonic()
        r = http.post(f"/collections/{SLOW}/points/search/batch?timeout=1", json=body)
        elapsed = time.monotonic() - started
    finally:
        time.sleep(0.3)
        prober.stop.set()
        prober.join()
    assert r.status_code == 408, r.text[:300]
    assert r.json()["status"] == {"error": TIMEOUT_MESSAGE}
    assert elapsed - overhead < 1.0 + SLACK, (elapsed, overhead)
    assert not prober.failures
    assert len(prober.latencies) >= 10, prober.latencies
    assert max(prober.latencies) < SLACK, max(prober.latencies)


def test_cut_off_read_stops_working(server, http, slow):
    """The worker thread of a timed-out read stops at its next check: a second after the
    408 the process is idle again (well under one core-second over the next second)."""
    searches, rng = slow
    r = http.post(f"/collections/{SLOW}/points/search/batch?timeout=1", json={"searches": _searches(rng, searches)})
    assert r.status_code == 408, r.text[:300]
    time.sleep(0.3)
    before = _cpu_seconds(server.proc.pid)
    time.sleep(1.0)
    used = _cpu_seconds(server.proc.pid) - before
    assert used < 0.6, f"{used:.2f} s of CPU in the second after the timeout"
    # and it answers at once
    started = time.monotonic()
    assert http.post("/collections/tiny/points/search", json={"vector": [1, 0, 0, 0], "limit": 1}).status_code == 200
    assert time.monotonic() - started < 1.0


def _patient(request, call_next):
    """qdrant-client waits on the socket for `timeout` seconds too (api_client.py sets the
    httpx timeout from the parameter), so it would give up at the same moment the server
    answers: let it wait longer, to see the server's answer."""
    request.extensions["timeout"] = {"connect": 30.0, "read": 30.0, "write": 30.0, "pool": 30.0}
    return call_next(request)


def test_query_batch_timeout_through_qdrant_client(server, slow):
    searches, rng = slow
    client = QdrantClient(url=server.url, timeout=60, check_compatibility=False)
    client.http.client.middleware = _patient
    try:
        queries = np.round(rng.standard_normal((searches, DIM)), 3).tolist()
        requests = [
            models.QueryRequest(query=q, limit=5, params=models.SearchParams(exact=True, hnsw_ef=1 + i))
            for i, q in enumerate(queries)
        ]
        # what building, sending and reading such a batch costs (client and server)
        started = time.monotonic()
        assert len(client.query_batch_points(SAME_SHAPE, requests=requests, timeout=30)) == len(requests)
        overhead = time.monotonic() - started
        started = time.monotonic()
        with pytest.raises(UnexpectedResponse) as caught:
            client.query_batch_points(SLOW, requests=requests, timeout=1)
        elapsed = time.monotonic() - started
        assert elapsed - overhead < 1.0 + SLACK, (elapsed, overhead)
        assert caught.value.status_code == 408
        assert TIMEOUT_MESSAGE in caught.value.content.decode()
        # the client works as before afterwards, and a generous timeout lets a search finish
        hits = client.query_points(SLOW, query=queries[0], limit=3, timeout=30).points
        assert len(hits) == 3
    finally:
        client.close()


def test_timeout_under_the_work_answers_normally(http, slow):
    _, rng = slow
    r = http.post(f"/collections/{SLOW}/points/search/batch?timeout=30", json={"searches": _searches(rng, 5)})
    assert r.status_code == 200, r.text
    assert [len(hits) for hits in r.json()["result"]] == [5] * 5


def test_count_scroll_facet_retrieve_take_a_timeout(http, slow):
    """The other reads accept `timeout` (and answer within it); 0 is refused as Qdrant's
    NonZeroU64 refuses it."""
    assert http.post(f"/collections/{SLOW}/points/count?timeout=5", json={}).json()["result"] == {"count": POINTS}
    r = http.post(f"/collections/{SLOW}/points/scroll?timeout=5", json={"limit": 2})
    assert [p["id"] for p in r.json()["result"]["points"]] == [0, 1]
    r = http.post(f"/collections/{SLOW}/points?timeout=5", json={"ids": [3]})
    assert [p["id"] for p in r.json()["result"]] == [3]
    r = http.post(f"/collections/{SLOW}/points/count?timeout=0", json={})
    assert r.status_code == 400
    assert "expected a nonzero u64" in r.json()["status"]["error"]


def test_write_with_timeout_parameter_completes(http):
    """Qdrant 1.15's point writes take no `timeout` (UpdateParam: wait, ordering): the
    parameter is ignored and a `wait=true` write completes, all of it."""
    points = [{"id": i, "vector": [0.5, 0.5, float(i), 1.0]} for i in range(100, 200)]
    r = http.put("/collections/tiny/points?wait=true&timeout=1", json={"points": points})
    assert r.status_code == 200, r.text
    assert r.json()["result"]["status"] == "completed"
    assert http.post("/collections/tiny/points/count", json={}).json()["result"]["count"] == 110
