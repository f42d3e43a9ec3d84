"""Index search without a segment (pydrant/segments/vector_search.py): what a segment kind
that keeps its vectors elsewhere relies on and `IndexedSegment` does not exercise.

- `deleted` (a mask over slots) acts exactly as the complementary `allowed` mask would, on
  every path (graph, codes through the graph, a scan of the codes, a tenant subgraph, the
  multi-vector nomination), also when graph nodes are not slots 0..k-1;
- with identity rows the flags reach the kernels as a view of the same buffer (no mask is
  built per search);
- a matrix addressed by node (`matrix_by_node`) answers as the same vectors addressed by slot.

The search paths themselves (recall, reported scores, planning through a segment) are
tests/segments/test_indexed_segment.py, test_indexed_property.py and test_distance_paths.py.
Data: seeded Gaussian clusters, 600 x 8 (small: the masks are what is checked).
"""

from __future__ import annotations

import numpy as np
import pytest

from pydrant.segments import distance as metric
from pydrant.segments import vector_search
from pydrant.segments.hnsw import HnswIndex
from pydrant.segments.quantization import QuantizedVectors
from pydrant.segments.scoring import ScoringQuery, VectorSpace, prepare_dense
from pydrant.segments.vector_search import DenseIndex, TenantGraph

N, DIM, LIMIT = 600, 8, 10
SPACE = VectorSpace("Cosine")
SCALAR = {"scalar": {"type": "int8"}}


def clustered(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(12, DIM))
    data = centres[rng.integers(0, 12, n)] + rng.normal(scale=0.3, size=(n, DIM))
    return (data / np.linalg.norm(data, axis=1, keepdims=True)).astype(np.float32)


def nearest(vector: np.ndarray) -> ScoringQuery:
    return ScoringQuery("nearest", (prepare_dense(vector, "Cosine", "float32"),))


def make_index(vectors: np.ndarray, rows: np.ndarray, graph: bool = True, codes: bool = False) -> DenseIndex:
    hnsw = HnswIndex.build(vectors, "Cosine", 8, 32, seed=0, threads=1) if graph else None
    quantized = QuantizedVectors.build(SCALAR, vectors, "Cosine") if codes else None
    return DenseIndex(rows.astype(np.int32), hnsw, vectors, quantized)


# Node layouts: every slot has the vector (identity), or only the even slots of twice as many.
LAYOUTS = {"identity": lambda n: np.arange(n), "even slots": lambda n: np.arange(0, 2 * n, 2)}
# (graph, codes, params): the three ways a dense query runs through an index
PATHS = {
    "graph": (True, False, {}),
    "codes through the graph": (True, True, {}),
    "codes scanned": (False, True, {}),
    "codes without rescoring": (True, True, {"quantization": {"rescore": False}}),
}


def slot_matrix(vectors: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The vectors at their slots (row = slot); slots without the vector hold garbage that
    must never be scored."""
    matrix = np.full((int(rows[-1]) + 1, DIM), 7.0, np.float32)
    matrix[rows] = vectors
    return matrix


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_deleted_slots_act_as_the_complementary_allowed_mask(layout, path):
    vectors = clustered(N, 1)
    rows = LAYOUTS[layout](N)
    graph, codes, params = PATHS[path]
    index = make_index(vectors, rows, graph, codes)
    matrix = slot_matrix(vectors, rows)
    rng = np.random.default_rng(2)
    deleted = np.zeros(len(matrix), bool)
    deleted[rng.choice(rows, N // 3, replace=False)] = True
    assert index.can_answer(params, None)
    unmasked_hits_deleted = 0
    for q in clustered(20, 3):
        query = nearest(q)
        by_flags = vector_search.graph_search(index, query, LIMIT, SPACE, None, params, matrix, deleted)
        by_mask = vector_search.graph_search(index, query, LIMIT, SPACE, index.node_mask(~deleted), params, matrix)
        unmasked = vector_search.graph_search(index, query, LIMIT, SPACE, None, params, matrix)
        assert len(by_flags[0]) == LIMIT and not deleted[by_flags[0]].any()
        np.testing.assert_array_equal(by_flags[0], by_mask[0])
        np.testing.assert_array_equal(by_flags[1], by_mask[1])
        unmasked_hits_deleted += int(deleted[unmasked[0]].sum())
    assert unmasked_hits_deleted > 20  # ~1/3 of 200: the flags did change the answers


def test_identity_rows_hand_the_flags_to_the_kernels_without_a_copy():
    index = make_index(clustered(N, 1), np.arange(N), graph=False)
    flags = np.zeros(N, bool)
    assert np.shares_memory(index.node_deleted(flags), flags)
    longer = np.zeros(N + 50, bool)  # a segment with more slots than this vector's nodes
    view = index.node_deleted(longer)
    assert view.shape == (N,) and np.shares_memory(view, longer) and view.flags.c_contiguous
    assert index.node_deleted(None) is None
    odd = make_index(clustered(N, 1), np.arange(1, N + 1), graph=False)
    odd_flags = np.zeros(N + 1, bool)
    odd_flags[1] = True
    np.testing.assert_array_equal(np.flatnonzero(odd.node_deleted(odd_flags)), [0])  # slot 1 is node 0


@pytest.mark.parametrize("path", PATHS)
def test_a_matrix_addressed_by_node_answers_as_one_addressed_by_slot(path):
    vectors = clustered(N, 4)
    rows = LAYOUTS["even slots"](N)
    graph, codes, params = PATHS[path]
    index = make_index(vectors, rows, graph, codes)
    by_slot = slot_matrix(vectors, rows)
    deleted = np.zeros(len(by_slot), bool)
    deleted[rows[::5]] = True
    for q in clustered(20, 5):
        query = nearest(q)
        expected = vector_search.graph_search(index, query, LIMIT, SPACE, None, params, by_slot, deleted)
        found = vector_search.graph_search(index, query, LIMIT, SPACE, None, params, vectors, deleted, matrix_by_node=True)
        np.testing.assert_array_equal(found[0], expected[0])
        np.testing.assert_array_equal(found[1], expected[1])
        if not params:  # rescored: the reported scores are the stored rows' scores
            reference = metric.rescore(by_slot[expected[0]], query.examples[0], "Cosine", "float32")
            np.testing.assert_array_equal(expected[1], reference)


def test_tenant_search_with_flags_and_a_node_addressed_matrix():
    vectors = clustered(N, 6)
    rows = LAYOUTS["even slots"](N)
    index = make_index(vectors, rows)
    nodes = np.flatnonzero(np.arange(N) % 3 == 1).astype(np.int32)  # the tenant's points
    tenant = TenantGraph(nodes, HnswIndex.build(vectors[nodes], "Cosine", 8, 32, seed=0, threads=1))
    matrix = slot_matrix(vectors, rows)
    in_tenant = np.zeros(len(matrix), bool)
    in_tenant[rows[nodes]] = True
    deleted = np.zeros(len(matrix), bool)
    deleted[rows[nodes[::4]]] = True
    for q in clustered(10, 7):
        query = nearest(q)
        by_flags = vector_search.tenant_search(index, tenant, query, LIMIT, SPACE, in_tenant, {}, matrix, deleted)
        by_mask = vector_search.tenant_search(index, tenant, query, LIMIT, SPACE, in_tenant & ~deleted, {}, matrix)
        by_node = vector_search.tenant_search(
            index, tenant, query, LIMIT, SPACE, in_tenant, {}, vectors, deleted, matrix_by_node=True
        )
        assert len(by_flags[0]) == LIMIT and in_tenant[by_flags[0]].all() and not deleted[by_flags[0]].any()
        for other in (by_mask, by_node):
            np.testing.assert_array_equal(by_flags[0], other[0])
            np.testing.assert_array_equal(by_flags[1], other[1])


@pytest.mark.parametrize("path", ["graph", "codes through the graph", "codes scanned"])
def test_multi_vector_nomination_skips_deleted_points(path):
    # three sub-vectors per point: nodes 3p..3p+2 belong to slot p
    sub = clustered(3 * 200, 8)
    rows = np.repeat(np.arange(200), 3)
    graph, codes, params = PATHS[path]
    hnsw = HnswIndex.build(sub, "Cosine", 8, 32, seed=0, threads=1) if graph else None
    quantized = QuantizedVectors.build(SCALAR, sub, "Cosine") if codes else None
    index = DenseIndex(rows.astype(np.int32), hnsw, sub, quantized, multi=True)
    deleted = np.zeros(200, bool)
    deleted[::2] = True
    query = ScoringQuery("nearest", (sub[[0, 301, 599]],))
    ef = index.ef({"hnsw_ef": 30}, LIMIT)
    everything = vector_search.nominate_multi(index, query, SPACE, ef, None, params)
    by_flags = vector_search.nominate_multi(index, query, SPACE, ef, None, params, deleted)
    by_mask = vector_search.nominate_multi(index, query, SPACE, ef, index.node_mask(~deleted), params)
    assert everything.dtype == np.int64 and deleted[everything].any()
    assert len(by_flags) == 3 * ef and not deleted[by_flags].any()
    np.testing.assert_array_equal(by_flags, by_mask)


def test_planning_rules():
    vectors = clustered(N, 9)
    graph_only = make_index(vectors, np.arange(N))
    codes_only = make_index(vectors, np.arange(N), graph=False, codes=True)
    ignore = {"quantization": {"ignore": True}}
    assert graph_only.can_answer(ignore, None) and not graph_only.uses_codes({})
    assert codes_only.can_answer({}, None) and codes_only.uses_codes({})
    assert not codes_only.can_answer(ignore, None)  # nothing left but an exact scan
    tenant = TenantGraph(np.arange(5, dtype=np.int32), HnswIndex.build(vectors[:5], "Cosine", 4, 8, seed=0, threads=1))
    assert codes_only.can_answer(ignore, tenant)
    assert graph_only.ef({}, 5) == 32 and graph_only.ef({"hnsw_ef": 4}, 5) == 5 and graph_only.ef({"hnsw_ef": 50}, 5) == 50
    assert codes_only.ef({}, 5) == vector_search.DEFAULT_EF
    # oversampling: ceil(limit * oversampling) candidates on the codes, then rescored
    vector = metric.graph_query(nearest(vectors[0]).examples[0], "Cosine", "float32")
    nodes, _, rescore = vector_search.quantized_search(codes_only, vector, 10, 64, None, {"quantization": {"oversampling": 2.5}})
    assert rescore and len(nodes) == 25
    nodes, _, rescore = vector_search.quantized_search(
        codes_only, vector, 10, 64, None, {"quantization": {"oversampling": 2.5, "rescore": False}}
    )
    assert not rescore and len(nodes) == 10
    assert vector_search.full_scan_vectors(10_000, 384) == pytest.approx(10_000 * 1024 / (384 * 4))
