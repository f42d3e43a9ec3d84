"""The bulk upsert path must prepare exactly what the per-point path prepares, and refuse
exactly what it refuses."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pydrant.collection import points as prep
from pydrant.errors import BadInput
from pydrant.segments.types import DEFAULT_VECTOR, DenseVectorSpec, VectorSchema

SCHEMAS = {
    distance + datatype: VectorSchema(dense={DEFAULT_VECTOR: DenseVectorSpec(3, distance, datatype)})
    for distance in ("Cosine", "Dot") for datatype in ("float32", "float16", "uint8")
}

element = st.one_of(st.integers(-300, 300), st.floats(-1e3, 1e3, allow_nan=False), st.just(float("nan")),
                    st.just("1.0"), st.booleans(), st.just([1.0]))
vector = st.one_of(st.lists(st.floats(-10, 10, allow_nan=False), min_size=3, max_size=3),
                   st.lists(element, min_size=2, max_size=4))


def per_point(schema, points):
    return [prep.prepare_point(schema, p, where=f"points[{i}]") for i, p in enumerate(points)]


def outcome(function):
    try:
        return function()
    except BadInput:
        return "refused"


def same(a, b):
    if a == "refused" or b == "refused":
        return a == b
    assert [p["id"] for p in a] == [p["id"] for p in b]
    assert [p["payload"] for p in a] == [p["payload"] for p in b]
    for x, y in zip(a, b):
        assert x["vectors"].keys() == y["vectors"].keys()
        for name in x["vectors"]:
            assert x["vectors"][name].dtype == y["vectors"][name].dtype
            np.testing.assert_array_equal(x["vectors"][name], y["vectors"][name])
    return True


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(SCHEMAS)), st.lists(vector, min_size=2, max_size=5), st.booleans())
def test_bulk_equals_per_point(schema_name, vectors, as_arrays):
    schema = SCHEMAS[schema_name]
    points = [{"id": i, "vector": v, "payload": {"i": i}} for i, v in enumerate(vectors)]
    expected = outcome(lambda: per_point(schema, points))
    got = outcome(lambda: prep.prepare_upsert(schema, {"points": points})["points"])
    assert same(got, expected)


def test_bulk_path_takes_numpy_columns():
    schema = SCHEMAS["Cosinefloat32"]
    matrix = np.array([[3.0, 4.0, 0.0], [0.0, 0.0, 2.0]])
    operation = prep.prepare_upsert(schema, {"batch": {"ids": [1, 2], "vectors": matrix}})
    np.testing.assert_allclose(operation["points"][0]["vectors"][DEFAULT_VECTOR], [0.6, 0.8, 0.0])
    np.testing.assert_allclose(operation["points"][1]["vectors"][DEFAULT_VECTOR], [0.0, 0.0, 1.0])


@pytest.mark.parametrize("bad", [[1.0, "2", 3.0], [True, 1.0, 2.0], [1.0, 2.0], [1.0, float("inf"), 2.0]])
def test_bad_vectors_are_refused_in_a_batch(bad):
    schema = SCHEMAS["Dotfloat32"]
    points = [{"id": 1, "vector": [1.0, 2.0, 3.0]}, {"id": 2, "vector": bad}]
    with pytest.raises(BadInput):
        prep.prepare_upsert(schema, {"points": points})
