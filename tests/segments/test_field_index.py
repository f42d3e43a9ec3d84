"""Segment-level behaviour of payload indexes: facet, ordered reads, estimates, upkeep."""

import numpy as np
import pytest

from pydrant.errors import BadInput
from pydrant.segments.appendable import AppendableSegment
from pydrant.segments.field_index import make_index
from pydrant.segments.filters import compile_filter
from pydrant.segments.types import DenseVectorSpec, PointInput, VectorSchema

SCHEMA = VectorSchema(dense={"": DenseVectorSpec(2, "Dot")})
ONE = np.ones(2, dtype=np.float32)


@pytest.fixture
def segment(tmp_path):
    seg = AppendableSegment.create(tmp_path / "s", SCHEMA)
    yield seg
    seg.close()


def put(segment, op_num, payloads: dict):
    segment.upsert_points(op_num, [PointInput(i, {"": ONE}, p) for i, p in payloads.items()])


def test_facet_follows_in_place_updates_and_deletes(segment):
    segment.set_payload_indexes({"c": "keyword", "n": "integer", "b": "bool"})
    put(segment, 1, {1: {"c": "x", "b": True}, 2: {"c": ["x", "y", "x"]}, 3: {"c": "y", "n": 5}})
    assert segment.facet("c") == {"x": 2, "y": 2}
    segment.update_payload(2, [1], lambda p: {**p, "c": "z"})
    segment.delete_points(3, [3])
    assert segment.facet("c") == {"x": 1, "y": 1, "z": 1}
    assert segment.facet("b") == {True: 1}
    assert segment.facet("c", compile_filter({"must": [{"has_id": [1]}]})) == {"z": 1}
    assert segment.facet("missing") is None
    info = segment.payload_index_info()
    assert info["c"]["points"] == 2 and info["n"]["points"] == 0 and info["c"]["ram_bytes"] > 0


def test_read_ordered_one_entry_per_value_from_start(segment):
    segment.set_payload_indexes({"n": "integer", "f": "float", "k": "keyword", "g": "geo"})
    put(segment, 1, {1: {"n": [3, 10]}, 2: {"n": 7}, 3: {"n": 7}, 4: {"n": "seven"}, 5: {"f": 2.5}})
    assert segment.read_ordered("n", False, None, 10) == [(3.0, 1), (7.0, 2), (7.0, 3), (10.0, 1)]
    assert segment.read_ordered("n", True, 7.0, 2) == [(7.0, 3), (7.0, 2)]
    assert segment.read_ordered("n", False, 4.0, 1) == [(7.0, 2)]
    only_two = compile_filter({"must": [{"has_id": [2, 1]}]})
    assert segment.read_ordered("n", False, None, 10, only_two) == [(3.0, 1), (7.0, 2), (10.0, 1)]
    assert segment.read_ordered("k", False, None, 10) is None  # no range index
    assert segment.read_ordered("g", False, None, 10) is None
    assert segment.read_ordered("f", False, None, 10) == [(2.5, 5)]


def test_estimates_bound_the_true_count(segment):
    segment.set_payload_indexes({"c": "keyword"})
    put(segment, 1, {i: {"c": "a" if i < 30 else "b", "u": i} for i in range(100)})
    indexed = compile_filter({"must": [{"key": "c", "match": {"value": "a"}}]})
    assert segment.estimate_cardinality(indexed) == (30, 30, 30)
    unindexed = compile_filter({"must": [{"key": "u", "range": {"lt": 10}}]})
    low, expected, high = segment.estimate_cardinality(unindexed)
    assert low <= segment.count(unindexed) <= high and (low, high) == (0, 100) and low <= expected <= high
    mixed = compile_filter({"must": [indexed.source["must"][0], unindexed.source["must"][0]]})
    assert segment.estimate_cardinality(mixed) == (0, 15, 30) and segment.count(mixed) == 10


def test_stale_entries_are_dropped(segment):
    segment.set_payload_indexes({"c": "keyword"})
    put(segment, 1, {1: {"c": "a"}})
    for op_num in range(2, 60):
        segment.update_payload(op_num, [1], lambda p: dict(p))  # rewritten in place each time
    posting = segment._indexes.by_key["c"].postings["a"]
    assert segment.count(compile_filter({"must": [{"key": "c", "match": {"value": "a"}}]})) == 1
    assert len(posting.slots) <= 2  # compacted on read, not 59 entries


def test_index_definitions_are_checked():
    with pytest.raises(BadInput, match="unknown payload index type"):
        make_index("a", "vector")
    with pytest.raises(BadInput, match="tokenizer"):
        make_index("a", {"type": "text", "tokenizer": "sentencepiece"})
    with pytest.raises(BadInput, match="Invalid json path"):
        make_index("a..b", "keyword")


def test_integer_matches_beyond_two_to_the_53_are_exact(segment):
    """The integer index compares as float64, where 2**53 + 1 rounds to 2**53: a condition
    naming an integer it cannot hold exactly must not match its float neighbour."""
    big = 2**53
    segment.set_payload_indexes({"n": "integer"})
    put(segment, 1, {1: {"n": big}, 2: {"n": big + 1}, 3: {"n": 5}})

    def ids(condition: dict) -> list:
        return sorted(segment.read_ids(None, None, compile_filter({"must": [{"key": "n", **condition}]})))

    assert ids({"match": {"value": big + 1}}) == [2]
    assert ids({"match": {"value": big}}) == [1]
    assert ids({"match": {"any": [big + 1, 5]}}) == [2, 3]
    assert ids({"match": {"except": [big + 1]}}) == [1, 3]
    assert ids({"match": {"except": [big]}}) == [2, 3]
