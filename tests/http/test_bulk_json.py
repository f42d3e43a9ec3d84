"""bulk_json must read every upsert body exactly as orjson does, vectors aside."""

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pydrant.http.bulk_json import parse_upsert_body


def as_plain(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, list):
        return [as_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: as_plain(v) for k, v in value.items()}
    return value


def same_as_orjson(raw: bytes):
    expected = orjson.loads(raw)
    got = parse_upsert_body(raw)
    assert as_plain(got) == expected
    return got


numbers = st.one_of(st.integers(-1000, 1000), st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False))
scalars = st.one_of(numbers, st.booleans(), st.none(), st.text(alphabet="ab[]{}\",", max_size=5))
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(alphabet="k[", max_size=3), inner, max_size=3)), max_leaves=8)
vectors = st.one_of(st.lists(numbers, min_size=1, max_size=4), json_values)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.fixed_dictionaries({"id": st.integers(0, 99), "vector": vectors}, optional={"payload": json_values}), max_size=4))
def test_points_form_reads_like_orjson(points):
    same_as_orjson(orjson.dumps({"points": points}))


@settings(max_examples=300, deadline=None)
@given(st.lists(vectors, max_size=4), st.one_of(st.none(), st.lists(json_values, max_size=4)))
def test_batch_form_reads_like_orjson(column, payloads):
    batch = {"ids": list(range(len(column))), "vectors": column}
    if payloads is not None:
        batch["payloads"] = payloads
    same_as_orjson(orjson.dumps({"batch": batch}))


def test_flat_vectors_become_arrays():
    got = same_as_orjson(b'{"batch": {"ids": [1, 2], "vectors": [[1, 2.5], [3, 4]]}}')
    assert isinstance(got["batch"]["vectors"], np.ndarray) and got["batch"]["vectors"].shape == (2, 2)
    got = same_as_orjson(b'{"points": [{"id": 1, "vector": [0.5, 1]}]}')
    assert isinstance(got["points"][0]["vector"], np.ndarray)


@pytest.mark.parametrize("raw", [
    b'{"points": [{"id": 1, "vector": [1, [2]]}]}',  # as_buffer would flatten this to [1, 2]
    b'{"batch": {"ids": [1, 2], "vectors": [[1, [2]], [3, 4]]}}',
    b'{"batch": {"ids": [1, 2], "vectors": [[1, 2], [3]]}}',
    b'{"batch": {"ids": [1], "vectors": [[1, "2"]]}}',
    b'{"points": [{"id": 1, "vector": [1, true]}]}',
])
def test_anything_but_flat_numbers_stays_python(raw):
    got = same_as_orjson(raw)
    assert not any(isinstance(v, np.ndarray) for v in _leaves(got))


def _leaves(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _leaves(v)
    elif isinstance(value, list):
        for v in value:
            yield from _leaves(v)
    else:
        yield value


def test_invalid_json_is_left_to_orjson_errors():
    from pydrant.errors import BadInput

    with pytest.raises(BadInput, match="Format error in JSON body"):
        parse_upsert_body(b'{"points": [')
    assert parse_upsert_body(b"") is None
