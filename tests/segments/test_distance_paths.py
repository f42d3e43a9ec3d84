"""One score per (query, point), whichever path finds the point (pydrant/segments/distance.py).

For random vectors of every distance and datatype, on a small indexed segment:

- the exact path (`params.exact`: `scoring.search_dense`, BLAS or the reference kernel to
  rank, the reference to report), one query alone and in a batch of two;
- the graph path (HNSW with `hnsw_ef` >= the number of points, so every node is visited;
  quantized codes ignored);
- the rescoring path (scalar or binary codes, `oversampling` large enough that every point
  is a candidate, rescored on the stored vectors)

report the same float32 similarity for every point, to the bit, and that is the NumPy
reference (`distance.reference_numpy`; a nearest query's reported distance is then one
function of it, `distance.reported`, in the collection). No tolerance:
all three score a hit with `distance.reference`, a fixed-order float32 computation.

What legitimately differs, with its tolerance:

- the HNSW kernels' own similarities (`HnswIndex.search`), which rank but are not reported:
  compiled with `distance.FASTMATH` (reassociated SIMD partial sums, fused multiply-adds),
  so they equal the reference up to float32 rounding of a dim-term sum:
  |graph - reference| <= (dim + 2) * 2^-23 * (sum of |terms| + |reference|). uint8 Cosine
  graphs are built over normalised float32 copies (dot of normalised vectors instead of
  dot / (|a| |b|)): the same bound over the normalised terms (each <= 1), plus 8 ulp of 1
  for the two normalisations.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pydrant.segments import distance as metric
from pydrant.segments.indexed import IndexedSegment
from pydrant.segments.scoring import ScoringQuery, VectorSpace, cosine_normalised, prepare_dense
from pydrant.segments.types import DenseVectorSpec, Record, VectorSchema

DATATYPES = ("float32", "float16", "uint8")
F32_ULP = 2.0 ** -23
SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def stored_form(raw: np.ndarray, distance: str, datatype: str) -> np.ndarray:
    """Vectors as the write path stores them: float Cosine normalised, then the storage type."""
    if datatype == "uint8":
        return raw.astype(np.uint8)
    vectors = raw.astype(np.float32)
    if distance == "Cosine":
        vectors = cosine_normalised(vectors)
    return vectors.astype(np.float16 if datatype == "float16" else np.float32)


@st.composite
def cases(draw, distance: str, datatype: str):
    dim = draw(st.integers(1, 24))
    n = draw(st.integers(2, 40))
    if datatype == "uint8":
        element = st.integers(0, 255)
    else:
        element = st.one_of(
            st.floats(-1000, 1000, width=32, allow_subnormal=False),
            st.integers(-4, 4).map(float),  # ties and exact values
        )
    rows = draw(st.lists(st.lists(element, min_size=dim, max_size=dim), min_size=n, max_size=n))
    queries = draw(st.lists(st.lists(element, min_size=dim, max_size=dim), min_size=2, max_size=2))
    quantization = draw(st.sampled_from([{"scalar": {"type": "int8"}}, {"binary": {}}]))
    return np.array(rows, np.float64), np.array(queries, np.float64), quantization


def build(directory: Path, vectors: np.ndarray, distance: str, datatype: str, quantization: dict) -> IndexedSegment:
    dim = vectors.shape[1]
    schema = VectorSchema(dense={"": DenseVectorSpec(dim, distance, datatype)})
    segment = IndexedSegment.create(directory, schema)
    segment.copy_points([Record(i, 1, {}, {"": vectors[i]}) for i in range(len(vectors))])
    wanted = {"hnsw": {"m": 4, "ef_construct": 16}, "quantization": quantization, "on_disk": False}
    segment.build_indexes({"dense": {"": wanted}, "sparse": {}}, threads=1)
    return segment


def by_id(hits) -> dict:
    return {point_id: np.float32(score) for score, point_id, _ in hits}


def assert_same_bits(found: dict, expected: dict, path: str) -> None:
    assert found.keys() == expected.keys(), path
    for point_id, score in expected.items():
        assert found[point_id].tobytes() == score.tobytes(), (path, point_id, float(found[point_id]), float(score))


def graph_bound(rows: np.ndarray, query: np.ndarray, distance: str, reference: np.ndarray) -> np.ndarray:
    """Per row, the float32 rounding bound of a reassociated dim-term sum."""
    if distance in ("Cosine", "Dot"):
        terms = np.abs(rows * query).sum(axis=1)
    elif distance == "Euclid":
        terms = ((rows - query) ** 2).sum(axis=1)
    else:
        terms = np.abs(rows - query).sum(axis=1)
    return (rows.shape[1] + 2) * F32_ULP * (terms + np.abs(reference))


def check_paths(distance: str, datatype: str, case) -> None:
    raw_rows, raw_queries, quantization = case
    stored = stored_form(raw_rows, distance, datatype)
    n = len(stored)
    space = VectorSpace(distance, datatype)
    queries = [ScoringQuery("nearest", (prepare_dense(q, distance, datatype),)) for q in raw_queries]
    with tempfile.TemporaryDirectory() as tmp:
        segment = build(Path(tmp) / "s", stored, distance, datatype, quantization)
        try:
            exact_batch = segment.search("", queries, n, space, None, {"exact": True})
            for qi, query in enumerate(queries):
                example = query.examples[0]
                sims = metric.reference_numpy(stored, example, distance, datatype)[0]
                expected = dict(enumerate(sims))  # segments return similarities; `reported` is applied above them
                exact = segment.search("", [query], n, space, None, {"exact": True})[0]
                graph = segment.search("", [query], n, space, None, {"hnsw_ef": n, "quantization": {"ignore": True}})[0]
                rescored = segment.search(
                    "", [query], n, space, None,
                    {"hnsw_ef": n, "quantization": {"rescore": True, "oversampling": float(n)}},
                )[0]
                assert_same_bits(by_id(exact), expected, "exact")
                assert_same_bits(by_id(exact_batch[qi]), expected, "exact, batch of two")
                assert_same_bits(by_id(graph), expected, "graph")
                assert_same_bits(by_id(rescored), expected, "rescoring")

                # the HNSW kernels' own similarities: the reference up to FASTMATH rounding
                index = segment._dense[""]
                vector = metric.graph_query(example, distance, datatype)
                nodes, graph_sims = index.graph.search(vector, n, ef=n)
                assert sorted(index.rows[nodes].tolist()) == list(range(n))  # every node visited
                slots = index.rows[nodes]
                bound_rows, bound_query = index.vectors[nodes].astype(np.float64), vector.astype(np.float64)
                bound = graph_bound(bound_rows, bound_query, distance, sims[slots].astype(np.float64))
                if distance == "Cosine" and datatype == "uint8":
                    bound = bound + 8 * F32_ULP
                error = np.abs(graph_sims.astype(np.float64) - sims[slots].astype(np.float64))
                assert (error <= bound).all(), (error, bound)
        finally:
            segment.close()


@pytest.mark.parametrize("datatype", DATATYPES)
@pytest.mark.parametrize("distance", metric.DISTANCES)
def test_exact_graph_and_rescoring_paths_give_the_same_scores(distance, datatype):
    @SETTINGS
    @given(case=cases(distance, datatype))
    def run(case):
        check_paths(distance, datatype, case)

    run()


@given(
    rows=st.lists(st.lists(st.floats(-1e3, 1e3, width=32), min_size=5, max_size=5), min_size=1, max_size=30),
    query=st.lists(st.floats(-1e3, 1e3, width=32), min_size=5, max_size=5),
    distance=st.sampled_from(metric.DISTANCES),
    datatype=st.sampled_from(DATATYPES),
)
@settings(max_examples=200, deadline=None)
def test_reference_kernel_is_the_numpy_reference_to_the_bit(rows, query, distance, datatype):
    rows, query = np.array(rows, np.float32), np.array(query, np.float32)
    if datatype == "uint8":
        rows, query = np.clip(rows, 0, 255).astype(np.uint8), np.clip(query, 0, 255).astype(np.uint8)
    fast = metric.reference(rows, query, distance, datatype)
    slow = metric.reference_numpy(rows, query, distance, datatype)
    assert fast.tobytes() == slow.tobytes()
    # a pair's score does not depend on the other rows scored with it
    for i in range(len(rows)):
        assert metric.reference(rows[i : i + 1], query, distance, datatype).tobytes() == fast[:, i : i + 1].tobytes()
