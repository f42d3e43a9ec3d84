"""Engine results as Qdrant prints them (http/render.py through the envelope's orjson):
f32 numbers in their shortest round-tripping form, absent optional fields left out."""

from __future__ import annotations

import numpy as np
import orjson
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pydrant.collection.query import Hit
from pydrant.http.envelope import _ORJSON_OPTIONS
from pydrant.http.render import groups_json, record_json, scored_point_json
from pydrant.segments.types import DEFAULT_VECTOR, Record, SparseVector


def dumps(value) -> bytes:
    return orjson.dumps(value, option=_ORJSON_OPTIONS)


finite_f32 = st.floats(width=32, allow_nan=False, allow_infinity=False)


@given(hnp.arrays(np.float32, st.integers(1, 16), elements=finite_f32))
def test_vectors_print_the_shortest_text_that_reads_back_as_the_same_f32(vector):
    text = dumps(record_json(Record(id=1, version=0, vectors={DEFAULT_VECTOR: vector})))
    printed = orjson.loads(text)["vector"]
    assert np.array_equal(np.array(printed, dtype=np.float32), vector)  # round trip, bit for bit
    raw = text.split(b'"vector":[', 1)[1].split(b"]", 1)[0].split(b",")
    for token, value in zip(raw, vector, strict=True):
        assert np.float32(token.decode()) == value
        # as short as the shortest round-tripping decimal (numpy's Dragon4, unique=True)
        shortest = np.format_float_scientific(value, unique=True)
        assert significant_digits(token.decode()) <= significant_digits(shortest)


def significant_digits(text: str) -> int:
    mantissa = text.lower().lstrip("-").split("e")[0].replace(".", "")
    return max(len(mantissa.strip("0")), 1)


def test_known_f32_texts():
    vector = np.array([0.15, 1.1550001, 0.1, 1.0], dtype=np.float32)
    assert dumps(record_json(Record(id=1, version=0, vectors={DEFAULT_VECTOR: vector}))) == (
        b'{"id":1,"vector":[0.15,1.1550001,0.1,1.0]}'
    )
    # float16 and uint8 storage print as f32 too (Qdrant's output vectors are f32)
    half = np.array([0.5, 2], dtype=np.float16)
    byte = np.array([1, 255], dtype=np.uint8)
    named = record_json(Record(id=2, version=0, vectors={"h": half, "b": byte}))
    assert dumps(named) == b'{"id":2,"vector":{"h":[0.5,2.0],"b":[1.0,255.0]}}'


def test_sparse_and_multivectors_print_f32():
    sparse = SparseVector(np.array([3, 7], dtype=np.uint32), np.array([0.15, 0.3], dtype=np.float32))
    multi = np.array([[0.15, 0.2], [0.3, 0.7]], dtype=np.float32)[:, ::-1]  # not C-contiguous
    out = dumps(record_json(Record(id=1, version=0, vectors={"s": sparse, "m": multi})))
    assert out == b'{"id":1,"vector":{"s":{"indices":[3,7],"values":[0.15,0.3]},"m":[[0.2,0.15],[0.7,0.3]]}}'


def test_scores_are_f32():
    out = dumps(scored_point_json(Hit(id=5, version=3, score=1.1550000905990601)))
    assert out == b'{"id":5,"version":3,"score":1.1550001}'


def test_absent_optional_fields_are_left_out_not_null():
    assert record_json(Record(id=1, version=0)) == {"id": 1}
    hit = scored_point_json(Hit(id=1, version=0, score=0.5, payload={}, order_value=None))
    assert set(hit) == {"id", "version", "score", "payload"} and hit["payload"] == {}
    ordered = record_json(Record(id=1, version=0, payload={"a": 1}, order_value=3))
    assert ordered == {"id": 1, "payload": {"a": 1}, "order_value": 3}


def test_a_group_without_its_lookup_has_no_lookup_key():
    class Group:
        id = "g"
        hits: list = []
        lookup = None

    class Result:
        groups = [Group()]
        with_lookup = True

    assert groups_json(Result()) == {"groups": [{"id": "g", "hits": []}]}
