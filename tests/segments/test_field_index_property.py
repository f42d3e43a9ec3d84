"""Indexed filtering returns exactly what a full scan returns.

Two segments receive the same random writes (upserts, in-place payload updates, vector
updates that move points to new slots, deletes); one has a payload index on every field,
the other none. For random filters over those fields, `read_ids` and `count` must agree
between them and with the compiled predicate applied point by point to a dict model, and
still after the indexed segment is closed, reopened and its indexes rebuilt.

Payloads deliberately mix types under each field (strings under the keyword field, floats
and huge integers under the integer field, unparseable dates, malformed geo points,
nested arrays) because that is where an index could silently diverge from the scan.
"""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pydrant.segments.appendable import AppendableSegment
from pydrant.segments.filters import compile_filter
from pydrant.segments.text_analyzer import TextAnalyzer
from pydrant.segments.types import DenseVectorSpec, PointContext, PointInput, VectorSchema

SCHEMA = VectorSchema(dense={"": DenseVectorSpec(2, "Dot"), "v2": DenseVectorSpec(2, "Dot")})
INDEXES = {
    "k": "keyword",
    "i": {"type": "integer", "lookup": True, "range": True},
    "r": {"type": "integer", "lookup": False, "range": True},
    "f": "float",
    "d": "datetime",
    "g": "geo",
    "b": "bool",
    "u": "uuid",
    "a[].n": "integer",
    "t": {"type": "text", "tokenizer": "word", "phrase_matching": True, "stopwords": {"custom": ["the"]}},
}
TEXT_FIELDS = {("t",): TextAnalyzer.from_params(INDEXES["t"])}
WORDS = ["the", "red", "Fox", "fox", "jumps", "red-fox"]
IDS = list(range(1, 9))
UUIDS = ["550e8400-e29b-41d4-a716-446655440000", "6ba7b810-9dad-11d1-80b4-00c04fd430c8"]
DATES = ["2024-01-01T00:00:00Z", "2024-06-01", "2024-06-01T12:00:00+02:00", "not a date"]

junk = st.sampled_from([None, [], [[1]], {"x": 1}, "s", 2, 1.5, True, 2**60])
values_by_field = {
    "k": st.sampled_from(["red", "green", "blue"]),
    "i": st.one_of(st.integers(-3, 3), st.sampled_from([2.0, 2**60])),
    "r": st.integers(-3, 3),
    "f": st.one_of(st.integers(-3, 3), st.floats(-3, 3, allow_nan=False), st.just(2**60)),
    "d": st.sampled_from(DATES),
    "g": st.builds(lambda lon, lat: {"lon": lon, "lat": lat}, st.floats(-5, 5), st.floats(-5, 5)),
    "b": st.booleans(),
    "u": st.sampled_from(UUIDS + ["not-a-uuid"]),
    "t": st.lists(st.sampled_from(WORDS), max_size=4).map(" ".join),
}


def field_value(name):
    one = values_by_field[name]
    return st.one_of(one, one, st.lists(st.one_of(one, junk), max_size=3), junk)


payloads = st.fixed_dictionaries(
    {},
    optional={
        **{name: field_value(name) for name in values_by_field},
        "a": st.lists(st.fixed_dictionaries({}, optional={"n": st.one_of(st.integers(-2, 2), junk)}), max_size=3),
    },
)

bound = st.one_of(st.none(), st.integers(-3, 3), st.sampled_from([-0.5, 1.5]))
ranges = st.fixed_dictionaries({}, optional={"lt": bound, "gt": bound, "lte": bound, "gte": bound})
date_bound = st.one_of(st.none(), st.sampled_from(DATES[:3]))
date_ranges = st.fixed_dictionaries({}, optional={"lt": date_bound, "gt": date_bound, "gte": date_bound})
match_values = st.one_of(st.sampled_from(["red", "green", UUIDS[0], "not-a-uuid"]), st.integers(-3, 3), st.booleans())
value_lists = st.one_of(
    st.lists(st.sampled_from(["red", "green", "blue", UUIDS[1]]), max_size=2, unique=True),
    st.lists(st.integers(-3, 3), max_size=2, unique=True),
)
matches = st.one_of(
    st.builds(lambda v: {"value": v}, match_values),
    st.builds(lambda vs: {"any": vs}, value_lists),
    st.builds(lambda vs: {"except": vs}, value_lists),
)
point = st.builds(lambda lon, lat: {"lon": lon, "lat": lat}, st.floats(-5, 5), st.floats(-5, 5))
geo_conditions = st.one_of(
    st.builds(
        lambda a, b: {"top_left": {"lon": min(a["lon"], b["lon"]), "lat": max(a["lat"], b["lat"])},
                      "bottom_right": {"lon": max(a["lon"], b["lon"]), "lat": min(a["lat"], b["lat"])}},
        point, point,
    ).map(lambda box: ("geo_bounding_box", box)),
    st.builds(lambda c, r: {"center": c, "radius": r}, point, st.floats(1, 600_000)).map(lambda x: ("geo_radius", x)),
    st.just(("geo_polygon", {"exterior": {"points": [
        {"lon": -2, "lat": -2}, {"lon": 3, "lat": -2}, {"lon": 0, "lat": 4}, {"lon": -2, "lat": -2}]}})),
)
keys = st.sampled_from(list(INDEXES) + ["a[].n", "k", "i"])

field_conditions = st.one_of(
    st.builds(lambda k, m: {"key": k, "match": m}, keys, matches),
    st.builds(lambda k, r: {"key": k, "range": r}, st.sampled_from(["i", "r", "f", "d", "k", "a[].n"]), ranges),
    st.builds(lambda r: {"key": "d", "range": r}, date_ranges),
    st.builds(lambda k, g: {"key": k, g[0]: g[1]}, st.sampled_from(["g", "k"]), geo_conditions),
    st.builds(lambda k: {"key": k, "is_empty": True}, keys),
    st.builds(
        lambda kind, words: {"key": "t", "match": {kind: " ".join(words)}},
        st.sampled_from(["text", "text_any", "phrase"]),
        st.lists(st.sampled_from(WORDS), max_size=3),
    ),
)
leaves = st.one_of(
    field_conditions, field_conditions, field_conditions,
    st.builds(lambda ids: {"has_id": ids}, st.lists(st.sampled_from(IDS), max_size=3)),
    st.builds(lambda name: {"has_vector": name}, st.sampled_from(["", "v2"])),
    st.builds(lambda f: {"nested": {"key": "a", "filter": {"must": [{"key": "n", "range": f}]}}}, ranges),
)


def filters(depth: int):
    conditions = leaves if depth == 0 else st.one_of(leaves, leaves, filters(depth - 1))
    clause = st.one_of(st.none(), conditions, st.lists(conditions, max_size=3))
    min_should = st.one_of(
        st.none(),
        st.builds(lambda cs, n: {"conditions": cs, "min_count": n}, st.lists(conditions, max_size=3), st.integers(0, 3)),
    )
    return st.fixed_dictionaries({}, optional={"must": clause, "should": clause, "must_not": clause, "min_should": min_should})


operations = st.lists(
    st.one_of(
        st.tuples(st.just("upsert"), st.sampled_from(IDS), payloads, st.booleans()),
        st.tuples(st.just("set"), st.sampled_from(IDS), payloads, st.just(False)),
        st.tuples(st.just("move"), st.sampled_from(IDS), st.just({}), st.just(False)),
        st.tuples(st.just("delete"), st.sampled_from(IDS), st.just({}), st.just(False)),
    ),
    min_size=1,
    max_size=25,
)


def apply(segment, model, op_num, op):
    kind, point_id, payload, with_v2 = op
    if kind == "upsert":
        vectors = {"": np.ones(2, dtype=np.float32)}
        if with_v2:
            vectors["v2"] = np.ones(2, dtype=np.float32)
        segment.upsert_points(op_num, [PointInput(point_id, vectors, payload)])
        model[point_id] = {"payload": payload, "vectors": set(vectors)}
    elif kind == "set" and point_id in model:
        segment.update_payload(op_num, [point_id], lambda current: {**current, **payload})
        model[point_id]["payload"] = {**model[point_id]["payload"], **payload}
    elif kind == "move" and point_id in model:
        segment.update_vectors(op_num, [(point_id, {"v2": np.zeros(2, dtype=np.float32)})])
        model[point_id]["vectors"].add("v2")
    elif kind == "delete":
        segment.delete_points(op_num, [point_id])
        model.pop(point_id, None)


def expected_ids(model, compiled):
    ids = []
    for point_id in sorted(model):
        entry = model[point_id]
        ctx = PointContext(point_id, lambda e=entry: e["payload"], lambda name, e=entry: name in e["vectors"])
        if compiled is None or compiled.matches(ctx):
            ids.append(point_id)
    return ids


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(operations, st.lists(st.one_of(filters(0), filters(1), filters(2)), min_size=1, max_size=4), st.booleans())
def test_indexed_filtering_equals_scan(tmp_path_factory, ops, filter_list, index_first):
    root = tmp_path_factory.mktemp("seg")
    indexed = AppendableSegment.create(root / "indexed", SCHEMA)
    plain = AppendableSegment.create(root / "plain", SCHEMA)
    if index_first:  # indexes maintained by every write ...
        indexed.set_payload_indexes(INDEXES)
    model: dict = {}
    plain_model: dict = {}
    try:
        for op_num, op in enumerate(ops, start=1):
            apply(indexed, model, op_num, op)
            apply(plain, plain_model, op_num, op)
        if not index_first:  # ... or built from the stored payloads
            indexed.set_payload_indexes(INDEXES)
        for filter_ in filter_list:
            compiled = compile_filter(filter_, TEXT_FIELDS)
            want = expected_ids(model, compiled)
            assert indexed.read_ids(None, None, compiled) == want, filter_
            assert plain.read_ids(None, None, compiled) == want, filter_
            assert indexed.count(compiled) == len(want), filter_
            if want:  # paging from an offset through the indexed path
                assert indexed.read_ids(want[len(want) // 2], 2, compiled) == want[len(want) // 2 :][:2]
        indexed.flush()
        indexed.close()
        reopened = AppendableSegment.open(root / "indexed", SCHEMA)
        reopened.set_payload_indexes(INDEXES)
        for filter_ in filter_list:
            compiled = compile_filter(filter_, TEXT_FIELDS)
            assert reopened.read_ids(None, None, compiled) == expected_ids(model, compiled), filter_
        reopened.close()
    finally:
        indexed.close()
        plain.close()


def test_index_answers_without_reading_payloads(tmp_path):
    """A filter the indexes answer whole never loads a payload (the point of indexing)."""
    segment = AppendableSegment.create(tmp_path / "s", SCHEMA)
    segment.set_payload_indexes({"k": "keyword", "i": "integer"})
    points = [PointInput(i, {"": np.ones(2, dtype=np.float32)}, {"k": ["red", "blue"][i % 2], "i": i}) for i in range(100)]
    segment.upsert_points(1, points)
    loads = itertools.count()
    original = segment._load_payload
    segment._load_payload = lambda offset: (next(loads), original(offset))[1]
    compiled = compile_filter({"must": [{"key": "k", "match": {"value": "red"}}, {"key": "i", "range": {"gte": 50}}]})
    assert segment.count(compiled) == 25
    assert segment.read_ids(None, 3, compiled) == [50, 52, 54]
    assert next(loads) == 0
    segment.close()
