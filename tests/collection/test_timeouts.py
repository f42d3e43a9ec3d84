"""Cooperative cancellation of reads (segments/deadline.py, docs/timeouts.md): a read past
its deadline stops at its next safe point — between segments, between the blocks of an
exact scan, every CHECK_EVERY_POINTS points of a payload filter — with Qdrant's timeout
error, and the pool threads of a fanned-out search run under the caller's deadline.
`timed_read` (the HTTP layer's) answers at the deadline even when the read never checks."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import trio
from test_engine import DIM

from pydrant.collection import fanout
from pydrant.errors import Timeout
from pydrant.http.search_common import DEFAULT_READ_TIMEOUT_SECONDS, timed_read
from pydrant.segments import deadline, scoring
from pydrant.segments.deadline import Deadline, run_with, timeout_message
from pydrant.segments.scoring import ScoringQuery


class CountingDeadline(Deadline):
    """A deadline that expires after `allowed` checks (counts every check)."""

    def __init__(self, allowed: int = 10**9):
        super().__init__(3600, "Search")
        self.allowed = allowed
        self.checks = 0

    def check(self) -> None:
        self.checks += 1
        if self.checks > self.allowed:
            self.cancel()
        super().check()


def test_message_is_qdrants():
    assert timeout_message("Search", 1) == "Timeout: Timeout error: Operation 'Search' timed out after 1 seconds"
    assert Deadline(60, "count").message == "Timeout: Timeout error: Operation 'count' timed out after 60 seconds"
    assert DEFAULT_READ_TIMEOUT_SECONDS == 60  # Qdrant's search_timeout default


def test_expired_and_cancelled_deadlines_raise_and_unbound_checks_do_nothing():
    deadline.check()  # no read bound: nothing to stop
    expired = Deadline(0, "Search")
    with pytest.raises(Timeout) as caught:
        expired.check()
    assert caught.value.message == expired.message
    live = Deadline(60, "Search")
    live.check()
    live.cancel()
    with pytest.raises(Timeout):
        live.check()
    with pytest.raises(Timeout):
        run_with(expired, lambda: None)  # checked before the read starts
    assert deadline.current() is None  # unbound again after the raise


def test_exact_scan_checks_between_blocks_and_blocks_are_bounded():
    rows, dim = 20_000, 256
    matrix = np.random.default_rng(1).standard_normal((rows, dim)).astype(np.float32)
    mask = np.ones(rows, bool)
    queries = [ScoringQuery("nearest", (matrix[i],)) for i in range(8)]  # 8 examples: 8192-row blocks
    step = scoring.scan_block_rows(matrix, len(queries))
    assert step == 8192 and step * dim * len(queries) <= 1 << 24
    assert scoring.scan_block_rows(matrix, 1) == 65536
    assert scoring.scan_block_rows(matrix, 256) == 1024  # many examples: the smallest block
    # the scan checks once per block
    counting = CountingDeadline()
    with deadline.bound(counting):
        scoring.search_dense(matrix, mask, queries, 5, "Dot", "float32")
    assert counting.checks == 3
    # a deadline that expires after the first block stops the scan there
    stopping = CountingDeadline(allowed=1)
    with deadline.bound(stopping), pytest.raises(Timeout):
        scoring.search_dense(matrix, mask, queries, 5, "Dot", "float32")
    assert stopping.checks == 2
    # gathered rows (a selective mask) are scanned in blocks too
    sparse_mask = np.zeros(rows, bool)
    sparse_mask[::5] = True
    wide = np.repeat(matrix, 4, axis=1)  # 1024 dims x 8 examples: 2048-row blocks
    wide_queries = [ScoringQuery("nearest", (wide[i],)) for i in range(8)]
    counting = CountingDeadline()
    with deadline.bound(counting):
        scoring.search_dense(wide, sparse_mask, wide_queries, 5, "Dot", "float32")
    assert counting.checks == -(-int(sparse_mask.sum()) // scoring.scan_block_rows(wide, 8)) == 2
    # blocks or not, the answer is the same
    found = scoring.search_dense(wide, sparse_mask, wide_queries, 5, "Dot", "float32")
    rows_only = np.flatnonzero(sparse_mask)
    for query, (top, _) in zip(wide_queries, found):
        expected = rows_only[np.argsort(-(wide[rows_only] @ query.examples[0]), kind="stable")[:5]]
        assert sorted(top.tolist()) == sorted(expected.tolist())


def test_one_scan_block_takes_tens_of_milliseconds_at_most():
    """The granularity achieved for a wide float32 scan (docs/timeouts.md)."""
    dim = 256
    step = scoring.scan_block_rows(np.empty((1, dim), np.float32), 1)
    matrix = np.random.default_rng(2).standard_normal((step, dim)).astype(np.float32)
    mask = np.ones(step, bool)
    queries = [ScoringQuery("nearest", (matrix[3],))]
    scoring.search_dense(matrix, mask, queries, 10, "Dot", "float32")  # warm up
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        scoring.search_dense(matrix, mask, queries, 10, "Dot", "float32")
        timings.append(time.perf_counter() - started)
    assert min(timings) < 0.05, timings


def test_payload_filter_checks_every_chunk_of_points(built):
    b = built()
    n = 3 * deadline.CHECK_EVERY_POINTS + 100
    vectors = np.random.default_rng(3).standard_normal((n, DIM)).astype(np.float32)
    b.upsert(list(range(n)), vectors)
    engine = b.collection.engine
    unindexed = {"must": [{"key": "n", "range": {"gte": 10}}]}  # no index: every payload is read
    counting = CountingDeadline()
    with deadline.bound(counting):
        assert engine.count({"filter": unindexed}) == n - 10
    assert counting.checks >= 4  # a segment check plus one per chunk of points
    stopping = CountingDeadline(allowed=2)
    with deadline.bound(stopping), pytest.raises(Timeout):
        engine.count({"filter": unindexed})
    assert stopping.checks == 3


def test_fanned_out_segments_run_under_the_callers_deadline(monkeypatch):
    class FakeSegment:
        point_count = 10_000

    seen = []

    def read(segment):
        seen.append(deadline.current())
        return threading.get_ident()

    mine = Deadline(60, "Search")
    with deadline.bound(mine):
        threads = fanout.map_segments(read, [FakeSegment() for _ in range(4)])
    assert seen == [mine] * 4
    assert len(set(threads)) > 1  # the pool ran some of them
    with deadline.bound(Deadline(0, "Search")), pytest.raises(Timeout):
        fanout.map_segments(read, [FakeSegment() for _ in range(4)])


def _search_batch(b, count: int) -> list:
    rng = np.random.default_rng(4)
    requests = [
        {"query": {"nearest": rng.standard_normal(DIM).tolist()}, "limit": 3, "params": {"hnsw_ef": i + 1}}
        for i in range(count)
    ]
    return [b.collection.engine.prepare(r) for r in requests]


def test_a_batch_read_stops_soon_after_its_deadline_and_frees_its_thread(built):
    """A long batch run in a thread under a 0.3 s deadline raises Timeout within ~50 ms of
    it, and the thread ends then."""
    b = built()
    n = 30_000
    vectors = np.random.default_rng(5).standard_normal((n, DIM)).astype(np.float32)
    for start in range(0, n, 10_000):
        b.upsert(list(range(start, start + 10_000)), vectors[start : start + 10_000])
        b.new_segment()
    queries = _search_batch(b, 5_000)  # each its own scan of every segment: seconds of work
    outcome: dict = {}

    def run():
        limit = Deadline(0.3, "Search")
        try:
            run_with(limit, b.collection.engine.batch, queries)
            outcome["result"] = "finished"
        except Timeout as exc:
            outcome["result"] = exc.message
        outcome["ended"] = time.monotonic()

    started = time.monotonic()
    thread = threading.Thread(target=run)
    thread.start()
    thread.join(5)
    assert not thread.is_alive()
    assert outcome["result"] == "Timeout: Timeout error: Operation 'Search' timed out after 0 seconds"
    assert 0.3 <= outcome["ended"] - started < 0.3 + 0.2


def test_timed_read_answers_at_the_deadline_even_if_the_read_never_checks():
    release = threading.Event()

    def stubborn():
        release.wait(10)  # no safe point at all
        return "late"

    def checking():
        while True:
            deadline.check()
            time.sleep(0.005)

    async def main():
        started = trio.current_time()
        with pytest.raises(Timeout) as caught:
            await timed_read("count", 1, stubborn)
        assert trio.current_time() - started < 1.3
        assert caught.value.message == "Timeout: Timeout error: Operation 'count' timed out after 1 seconds"
        release.set()
        started = trio.current_time()
        with pytest.raises(Timeout):
            await timed_read("facet", 1, checking)
        assert trio.current_time() - started < 1.3
        assert await timed_read("retrieve", 5, lambda: "quick") == "quick"

    trio.run(main)


# -- every read endpoint, in-process -------------------------------------------------------

ENDPOINTS = [
    ("points", "/collections/c/points/search", {"vector": [1, 0], "limit": 1}, "Search"),
    ("batch", "/collections/c/points/search/batch", {"searches": [{"vector": [1, 0], "limit": 1}]}, "Search"),
    ("groups", "/collections/c/points/search/groups", {"vector": [1, 0], "group_by": "g", "limit": 1, "group_size": 1}, "GroupBy"),
    ("matrix", "/collections/c/points/search/matrix/pairs", {}, "Search"),
    ("points", "/collections/c/points/query", {"query": [1, 0]}, "Search"),
    ("batch", "/collections/c/points/query/batch", {"searches": [{"query": [1, 0]}]}, "Search"),
    ("groups", "/collections/c/points/query/groups", {"query": [1, 0], "group_by": "g"}, "GroupBy"),
    ("points", "/collections/c/points/recommend", {"positive": [1], "limit": 1}, "Search"),
    ("batch", "/collections/c/points/recommend/batch", {"searches": [{"positive": [1], "limit": 1}]}, "Search"),
    ("groups", "/collections/c/points/recommend/groups", {"positive": [1], "group_by": "g", "limit": 1, "group_size": 1}, "GroupBy"),
    ("points", "/collections/c/points/discover", {"target": 1, "limit": 1}, "Search"),
    ("batch", "/collections/c/points/discover/batch", {"searches": [{"target": 1, "limit": 1}]}, "Search"),
    ("count", "/collections/c/points/count", {}, "count"),
    ("facet", "/collections/c/facet", {"key": "g"}, "facet"),
    ("scroll", "/collections/c/points/scroll", {}, "scroll_by_id"),
    ("scroll", "/collections/c/points/scroll", {"order_by": "n"}, "scroll_by_field"),
    ("retrieve", "/collections/c/points", {"ids": [1]}, "retrieve"),
]


async def test_every_read_endpoint_answers_qdrants_408_with_its_operation(tmp_path, monkeypatch):
    """Each engine entry point made endless (it checks its deadline): every endpoint with a
    `timeout` answers 408 with Qdrant's message and operation name after 1 s (all at once)."""
    from pydrant.collection.engine import Engine
    from pydrant.config import load_settings
    from pydrant.http.app import create_app

    def endless(self, *args):
        stop = time.monotonic() + 10
        while time.monotonic() < stop:
            deadline.check()
            time.sleep(0.002)
        return None

    for method in {name for name, *_ in ENDPOINTS}:
        monkeypatch.setattr(Engine, method, endless)
    settings = load_settings(env={}, overrides={"storage.storage_path": str(tmp_path / "s"), "storage.snapshots_path": str(tmp_path / "n")})
    app = create_app(settings)
    async with app.test_app() as test_app:
        client = test_app.test_client()
        r = await client.put("/collections/c", json={"vectors": {"size": 2, "distance": "Dot"}})
        assert r.status_code == 200
        points = [{"id": i, "vector": [1.0, float(i)], "payload": {"g": "a", "n": i}} for i in range(1, 4)]
        assert (await client.put("/collections/c/points?wait=true", json={"points": points})).status_code == 200
        for field, schema in (("g", "keyword"), ("n", "integer")):
            r = await client.put("/collections/c/index?wait=true", json={"field_name": field, "field_schema": schema})
            assert r.status_code == 200
        answers: dict = {}

        async def call(i, path, body):
            started = trio.current_time()
            r = await client.post(path + "?timeout=1", json=body)
            answers[i] = (r.status_code, (await r.get_json())["status"], trio.current_time() - started)

        async with trio.open_nursery() as nursery:
            for i, (_, path, body, _) in enumerate(ENDPOINTS):
                nursery.start_soon(call, i, path, body)
    for i, (_, path, _, operation) in enumerate(ENDPOINTS):
        status, body, took = answers[i]
        assert (status, body) == (408, {"error": timeout_message(operation, 1)}), path
        assert took < 2.5, (path, took)
