"""The engine boundary (collection/engine.py, docs/search.md "The engine boundary"):
filters compiled once with the collection's analyzers, strict mode applied by the engine
and by `Collection.submit`, `lookup_from` resolved through the lookup storage/ injects,
and searches fanned out over segments giving exactly the sequential answer."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from pydrant.collection import fanout
from pydrant.collection.collection import Collection
from pydrant.collection.config import CollectionDefaults, build_config
from pydrant.collection.payload_index import create_index_operation
from pydrant.collection.points import prepare_upsert
from pydrant.collection.predicates import conjunction
from pydrant.errors import BadInput, NotFound
from pydrant.segments.filters import compile_filter

DIM = 8
TIED = [0, *range(50, 55), *range(150, 153), 250, 399]


class Built:
    """A collection applied to directly (no update worker), `segments` segments deep."""

    def __init__(self, path: Path, config: dict | None = None, lookup=None):
        Collection.initialise(path, path.name, config or build_config({"vectors": {"size": DIM, "distance": "Dot"}}, CollectionDefaults()))
        self.collection = Collection.load(path, lookup)
        self.op_num = 0

    def apply(self, operation: dict) -> None:
        self.op_num += 1
        self.collection._apply(self.op_num, operation)

    def upsert(self, ids, vectors, payloads=None) -> None:
        points = [
            {"id": i, "vector": [float(x) for x in v], "payload": (payloads[k] if payloads else {"n": i, "half": i % 2})}
            for k, (i, v) in enumerate(zip(ids, vectors))
        ]
        self.apply(prepare_upsert(self.collection.schema, {"points": points}))

    def new_segment(self) -> None:
        with self.collection.apply_lock:
            self.collection.add_appendable_segment()

    def close(self) -> None:
        self.collection._close_files()


def multi_segment(built, rng) -> Built:
    """Four segments; points of the first re-written in later ones, and ties (equal
    vectors) within and across segments."""
    b = built()
    data = rng.standard_normal((400, DIM)).astype(np.float32)
    data[TIED] = data[0]  # ties, broken by id
    for part in range(4):
        ids = list(range(part * 100, part * 100 + 100))
        b.upsert(ids, data[ids])
        if part:
            rewritten = list(range(10 * part, 10 * part + 5))
            b.upsert(rewritten, data[rewritten] * 2 - 1)  # a newer version, in a later segment
        b.new_segment()
    assert len(b.collection.segments) == 5
    return b


def test_fanned_out_search_answers_as_the_sequential_one(built, monkeypatch):
    b = multi_segment(built, np.random.default_rng(7))
    engine = b.collection.engine
    rng = np.random.default_rng(8)
    requests = [
        {"query": {"nearest": rng.standard_normal(DIM).tolist()}, "limit": 25, "with_payload": True},
        {"query": {"nearest": b.collection.reads.retrieve([0], False, True)[0].vectors[""].tolist()}, "limit": 15,
         "filter": {"must": [{"has_id": [*TIED, 1, 2, 3, 120]}]}},
        {"query": {"nearest": rng.standard_normal(DIM).tolist()}, "limit": 40, "filter": {"must": [{"key": "half", "match": {"value": 1}}]}},
        {"query": {"recommend": {"positive": [3, 120], "negative": [250]}}, "limit": 10},
    ]

    def answers():
        single = [[(h.id, h.version, h.score, h.payload) for h in engine.points(engine.prepare(r))] for r in requests]
        batch = [[(h.id, h.score) for h in hits] for hits in engine.batch([engine.prepare(r) for r in requests])]
        return single, batch

    calls = []
    real_pool = fanout._shared_pool

    def counting_pool():
        calls.append(1)
        return real_pool()

    monkeypatch.setattr(fanout, "MIN_PARALLEL_POINTS", 0)
    monkeypatch.setattr(fanout, "_shared_pool", counting_pool)
    parallel = answers()
    assert calls, "the search did not fan out"
    monkeypatch.setattr(fanout, "MIN_PARALLEL_POINTS", 10**12)
    calls.clear()
    sequential = answers()
    assert not calls
    assert parallel == sequential
    found = [point_id for point_id, *_ in parallel[0][1]]
    tied = [point_id for point_id in found if point_id in TIED]
    assert tied == TIED  # equal scores: ids ascending, across segments
    start = found.index(TIED[0])
    assert found[start : start + len(TIED)] == TIED


def test_fan_out_raises_the_first_segments_error():
    class Segment:
        point_count = 10_000

        def __init__(self, n):
            self.n = n

    def read(segment):
        if segment.n in (1, 2):
            raise ValueError(f"segment {segment.n}")
        return segment.n

    assert fanout.map_segments(lambda s: s.n, [Segment(i) for i in range(4)]) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="segment 1"):
        fanout.map_segments(read, [Segment(i) for i in range(4)])


def test_a_conjunction_matches_what_the_merged_filter_matches(built):
    b = multi_segment(built, np.random.default_rng(9))
    b.apply(create_index_operation("half", "integer"))
    reads, compile_ = b.collection.reads, b.collection.compile_filter
    parts = [
        {"must": [{"key": "half", "match": {"value": 0}}]},
        {"must": [{"key": "n", "range": {"gte": 40, "lt": 330}}]},
        {"must_not": [{"has_id": [42, 44, 46, 301]}]},
    ]
    combined = conjunction(*(compile_(p) for p in parts))
    merged = compile_({"must": parts})
    assert reads.matching_ids(combined) == reads.matching_ids(merged)
    assert reads.count(combined) == reads.count(merged) == len(reads.matching_ids(merged))
    assert conjunction(None, None) is None
    single = compile_(parts[0])
    assert conjunction(None, single) is single


def test_an_invalid_filter_is_the_same_bad_input_from_every_entry_point(built):
    b = built()
    b.upsert([1, 2], np.eye(DIM, dtype=np.float32)[:2])
    engine = b.collection.engine
    bad = {"must": [{"key": "n", "match": {"value": 1.5}}]}
    with pytest.raises(BadInput) as plain:
        compile_filter(bad)
    for call in (
        lambda: engine.count({"filter": bad}),
        lambda: engine.scroll({"filter": bad}),
        lambda: engine.facet({"key": "n", "filter": bad}),
        lambda: engine.prepare({"query": {"nearest": [0.0] * DIM}, "filter": bad}),
        lambda: engine.prepare({"prefetch": [{"filter": bad}], "query": {"fusion": "rrf"}}),
    ):
        with pytest.raises(BadInput) as raised:
            call()
        assert raised.value.message == plain.value.message


def test_strict_mode_is_applied_by_the_engine_and_by_submit(built):
    config = build_config(
        {
            "vectors": {"size": DIM, "distance": "Dot"},
            "strict_mode_config": {
                "enabled": True,
                "unindexed_filtering_retrieve": False,
                "unindexed_filtering_update": False,
                "max_query_limit": 5,
            },
        },
        CollectionDefaults(),
    )
    b = built(config=config)
    engine = b.collection.engine
    unindexed = {"must": [{"key": "color", "match": {"value": "red"}}]}
    message = re.escape('Index required but not found for "color" of one of the following types: [keyword]')
    with pytest.raises(BadInput, match=message):
        engine.count({"filter": unindexed})
    with pytest.raises(BadInput, match=message):
        engine.prepare({"prefetch": {"filter": unindexed, "query": [0.0] * DIM}, "query": {"fusion": "rrf"}})
    with pytest.raises(BadInput, match='Limit exceeded 6 > 5 for "limit"'):
        engine.prepare({"prefetch": {"limit": 6}, "query": {"fusion": "rrf"}})

    import trio

    async def submit():
        await b.collection.submit([{"type": "delete_points", "filter": unindexed}])

    with pytest.raises(BadInput, match=message):
        trio.run(submit)


def test_lookup_from_resolves_through_the_injected_lookup(built):
    other = built("other")
    other.upsert([7], [np.arange(DIM, dtype=np.float32)])
    names = {"other": other.collection}
    b = built("c", lookup=lambda name: names[name] if name in names else _missing(name))
    b.upsert([1, 2], [np.arange(DIM, dtype=np.float32), -np.arange(DIM, dtype=np.float32)])
    engine = b.collection.engine
    query = engine.prepare({"query": {"nearest": 7}, "lookup_from": {"collection": "other"}, "limit": 2})
    assert [h.id for h in engine.points(query)] == [1, 2]
    groups = engine.groups(engine.prepare({"query": {"nearest": 7}, "lookup_from": {"collection": "other"},
                                           "group_by": "n", "limit": 2, "with_lookup": "other"}))
    assert [g.id for g in groups.groups] == [1, 2] and groups.with_lookup
    # a collection loaded without a lookup finds itself only
    alone = built("alone")
    alone.upsert([1, 2], [np.ones(DIM, dtype=np.float32)] * 2)
    alone_engine = alone.collection.engine
    assert [h.id for h in alone_engine.points(alone_engine.prepare(
        {"query": {"nearest": 1}, "lookup_from": {"collection": "alone"}}))] == [2]  # the example is excluded
    with pytest.raises(NotFound, match="Not found: Collection other not found"):  # Qdrant fetch_vectors.rs
        alone_engine.points(alone_engine.prepare({"query": {"nearest": 7}, "lookup_from": {"collection": "other"}}))


def _missing(name):
    raise NotFound(f"Not found: Collection `{name}` doesn't exist!")
