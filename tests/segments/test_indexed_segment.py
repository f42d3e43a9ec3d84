"""The indexed segment (pydrant/segments/indexed.py): graph search planned per request,
checked against the exact scan of the same points.

Data: seeded Gaussian clusters (HNSW's realistic case); recall@10 is measured against the
exact search of the same segment (`params.exact`), which tests/segments/test_scoring_property.py
checks against a naive reference.
"""

from __future__ import annotations

import numpy as np
import pytest

from pydrant.segments.appendable import AppendableSegment
from pydrant.segments.filters import compile_filter
from pydrant.segments.indexed import IndexedSegment
from pydrant.segments.open import open_segment
from pydrant.segments.scoring import ScoringQuery, VectorSpace, prepare_dense
from pydrant.segments.types import DenseVectorSpec, Record, SparseVector, SparseVectorSpec, VectorSchema

DIM = 16
N = 3000
# MaxSim through the sub-vector graph nominates each query row's hnsw_ef nearest
# sub-vectors; these 1-3-row points need a wider beam than single vectors for 0.95.
EF_MULTI = 128
SETTINGS = {"dense": {"": {"hnsw": {"m": 16, "ef_construct": 64}, "quantization": None, "on_disk": False}}, "sparse": {}}


def clustered(n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(30, dim))
    return (centres[rng.integers(0, 30, n)] + rng.normal(scale=0.4, size=(n, dim))).astype(np.float32)


def build(path, distance="Cosine", datatype="float32", settings=SETTINGS, n=N, payload=True):
    schema = VectorSchema(dense={"": DenseVectorSpec(DIM, distance, datatype)})
    data = clustered(n, DIM, 1)
    if distance == "Cosine" and datatype != "uint8":
        data = data / np.linalg.norm(data, axis=1, keepdims=True)
    if datatype == "uint8":
        data = np.clip((data + 3) * 40, 0, 255)
    segment = IndexedSegment.create(path, schema)
    records = [Record(i, i + 1, {"group": i % 5} if payload else {}, {"": data[i].astype(schema.dense[""].dtype)}) for i in range(n)]
    segment.copy_points(records)
    segment.build_indexes(settings, threads=2)
    return segment, data


def nearest(vector, distance="Cosine", datatype="float32") -> ScoringQuery:
    return ScoringQuery("nearest", (prepare_dense(vector, distance, datatype),))


def ids_of(found) -> list:
    return [point_id for _, point_id, _ in found]


def recall(segment, queries, space, limit=10, params=None, predicate=None) -> float:
    hits = 0
    for q in queries:
        query = nearest(q, space.distance, space.datatype)
        approx = ids_of(segment.search("", [query], limit, space, predicate, params or {})[0])
        exact = ids_of(segment.search("", [query], limit, space, predicate, {"exact": True})[0])
        hits += len(set(approx) & set(exact))
    return hits / (limit * len(queries))


@pytest.mark.parametrize(
    "distance,datatype",
    [("Cosine", "float32"), ("Dot", "float32"), ("Euclid", "float32"), ("Manhattan", "float32"),
     ("Cosine", "float16"), ("Euclid", "uint8"), ("Cosine", "uint8")],
)
def test_graph_recall_matches_exact_search(tmp_path, distance, datatype):
    segment, data = build(tmp_path / "s", distance, datatype)
    space = VectorSpace(distance, datatype)
    queries = data[:50] + np.float32(0.05)
    assert recall(segment, queries, space) >= 0.95
    # scores of graph hits are the exact scores of those points
    query = nearest(queries[0], distance, datatype)
    approx = segment.search("", [query], 10, space, None, {})[0]
    exact = {pid: score for score, pid, _ in segment.search("", [query], 50, space, None, {"exact": True})[0]}
    for score, pid, _ in approx:
        if pid in exact:
            assert score == pytest.approx(exact[pid], rel=1e-4, abs=1e-4)
    segment.close()


def test_filtered_graph_search_returns_only_matching_points(tmp_path):
    segment, data = build(tmp_path / "s")
    segment.set_search_settings({"": {"full_scan_threshold": 1}})  # force the graph even for small candidate sets
    space = VectorSpace("Cosine")
    predicate = compile_filter({"must": [{"key": "group", "match": {"value": 2}}]})
    for q in data[:20]:
        found = segment.search("", [nearest(q)], 10, space, predicate, {})[0]
        assert found and all(pid % 5 == 2 for pid in ids_of(found))
    assert recall(segment, data[:30], space, predicate=predicate) >= 0.9
    segment.close()


def test_small_filtered_candidate_sets_are_scanned_exactly(tmp_path):
    segment, data = build(tmp_path / "s")
    space = VectorSpace("Cosine")
    predicate = compile_filter({"must": [{"has_id": [5, 10, 15]}]})
    found = segment.search("", [nearest(data[0])], 10, space, predicate, {"hnsw_ef": 1})[0]
    assert sorted(ids_of(found)) == [5, 10, 15]


def test_deleted_and_moved_points(tmp_path):
    segment, data = build(tmp_path / "s")
    space = VectorSpace("Cosine")
    query = nearest(data[7])
    assert ids_of(segment.search("", [query], 1, space, None, {})[0]) == [7]
    segment.delete_points(10_000, [7])
    assert 7 not in ids_of(segment.search("", [query], 10, space, None, {})[0])
    # a vector update moves the point past the indexed slots; searches still find it there
    segment.update_vectors(10_001, [(8, {"": data[7]})])
    found = segment.search("", [query], 3, space, None, {})[0]
    assert found[0][1] == 8 and found[0][2] == 10_001
    assert segment.indexed_vectors() == N - 2  # 7 deleted, 8 moved off its graph node
    segment.flush()
    segment.close()
    reopened = open_segment(tmp_path / "s", segment.schema)
    assert isinstance(reopened, IndexedSegment) and not reopened.is_appendable
    found = reopened.search("", [query], 3, space, None, {})[0]
    assert found[0][1] == 8 and 7 not in ids_of(found)
    assert recall(reopened, data[100:130], space) >= 0.95
    reopened.close()


def test_on_disk_graph_is_memory_mapped_and_answers_the_same(tmp_path):
    settings = {"dense": {"": {"hnsw": {"m": 16, "ef_construct": 64, "on_disk": True}, "quantization": None, "on_disk": True}}, "sparse": {}}
    segment, data = build(tmp_path / "s", settings=settings)
    space = VectorSpace("Cosine")
    before = [segment.search("", [nearest(q)], 10, space, None, {})[0] for q in data[:10]]
    segment.flush()
    segment.close()
    reopened = open_segment(tmp_path / "s", segment.schema)
    index = reopened._dense[""]
    assert isinstance(index.vectors, np.memmap)
    after = [reopened.search("", [nearest(q)], 10, space, None, {})[0] for q in data[:10]]
    assert [ids_of(a) for a in after] == [ids_of(b) for b in before]
    reopened.close()


def test_without_segment_json_a_directory_opens_as_plain(tmp_path):
    segment, _ = build(tmp_path / "s", n=200)
    segment.flush()
    segment.close()
    (tmp_path / "s" / "segment.json").unlink()  # as if the build had been interrupted
    reopened = open_segment(tmp_path / "s", segment.schema)
    assert type(reopened) is AppendableSegment and reopened.point_count == 200
    reopened.close()


def test_copy_points_keeps_versions_and_newest_wins(tmp_path):
    schema = VectorSchema(dense={"": DenseVectorSpec(2, "Dot")})
    segment = AppendableSegment.create(tmp_path / "p", schema)
    vec = np.ones(2, np.float32)
    segment.copy_points([Record(1, 5, {"a": 1}, {"": vec}), Record(2, 9, {}, {"": vec})])
    assert segment.point_version(1) == 5 and segment.point_version(2) == 9 and segment.version == 9
    segment.copy_points([Record(1, 4, {"a": "old"}, {"": vec})])  # older: ignored
    assert segment.retrieve([1])[0].payload == {"a": 1}
    segment.start_tracking()
    segment.delete_points(20, [2])
    segment.update_payload(21, [1], lambda p: {"a": 2})
    assert sorted(segment.take_tracked(stop=True)) == [1, 2]
    segment.discard_points([1])
    assert segment.point_count == 0 and segment.version == 21
    segment.close()


def test_sparse_vectors_use_the_inverted_index(tmp_path):
    schema = VectorSchema(sparse={"s": SparseVectorSpec()})
    rng = np.random.default_rng(3)
    segment = IndexedSegment.create(tmp_path / "sp", schema)
    vectors = []
    for _ in range(500):
        indices = np.unique(rng.integers(0, 50, 6)).astype(np.uint32)
        vectors.append(SparseVector(indices, rng.random(len(indices)).astype(np.float32)))
    segment.copy_points([Record(i, 1, {}, {"s": v}) for i, v in enumerate(vectors)])
    segment.build_indexes({"dense": {}, "sparse": {"s": {"index": {}}}})
    assert "s" in segment._sparse and segment.indexed_vectors() == 500
    space = VectorSpace("Dot", "float32", "sparse")
    query = ScoringQuery("nearest", (vectors[3],))
    indexed = segment.search("s", [query], 10, space, None, {})[0]
    exact = segment.search("s", [query], 10, space, None, {"exact": True})[0]
    assert [round(s, 4) for s, _, _ in indexed] == [round(s, 4) for s, _, _ in exact]
    segment.close()


@pytest.mark.parametrize("distance", ["Cosine", "Euclid"])
def test_multivectors_search_through_the_sub_vector_graph(tmp_path, distance):
    schema = VectorSchema(dense={"m": DenseVectorSpec(DIM, distance, multivector=True)})
    rng = np.random.default_rng(5)
    base = clustered(4000, DIM, 2)
    if distance == "Cosine":
        base = base / np.linalg.norm(base, axis=1, keepdims=True)
    segment = IndexedSegment.create(tmp_path / "mv", schema)
    records, start = [], 0
    for i in range(1500):
        count = int(rng.integers(1, 4))
        records.append(Record(i, 1, {"group": i % 3}, {"m": base[start : start + count]}))
        start += count
    segment.copy_points(records)
    segment.build_indexes({"dense": {"m": {"hnsw": {"m": 16, "ef_construct": 64}}}, "sparse": {}})
    assert segment._dense["m"].multi and segment.indexed_vectors() == 1500
    space = VectorSpace(distance, "float32", "multi")
    hits = 0
    for i in range(0, 1500, 50):
        query = ScoringQuery("nearest", (prepare_dense(records[i].vectors["m"] + np.float32(0.02), distance, "float32"),))
        graph = segment.search("m", [query], 10, space, None, {"hnsw_ef": EF_MULTI})[0]
        exact = segment.search("m", [query], 10, space, None, {"exact": True})[0]
        hits += len(set(ids_of(graph)) & set(ids_of(exact)))
        exact_scores = {pid: score for score, pid, _ in exact}
        for score, pid, _ in graph:  # graph hits carry exact MaxSim scores
            if pid in exact_scores:
                assert score == pytest.approx(exact_scores[pid], rel=1e-5, abs=1e-5)
    assert hits / (10 * 30) >= 0.95
    segment.set_search_settings({"m": {"full_scan_threshold": 1}})
    predicate = compile_filter({"must": [{"key": "group", "match": {"value": 1}}]})
    query = ScoringQuery("nearest", (prepare_dense(records[4].vectors["m"], distance, "float32"),))
    found = segment.search("m", [query], 10, space, predicate, {})[0]
    assert len(found) == 10 and all(pid % 3 == 1 for pid in ids_of(found))
    segment.close()


def test_no_graph_with_quantization_ignored_falls_back_to_exact(tmp_path):
    settings = {"dense": {"": {"hnsw": {"m": 0}, "quantization": None, "on_disk": False}}, "sparse": {}}
    segment, data = build(tmp_path / "s", settings=settings, n=300)
    found = segment.search("", [nearest(data[3])], 5, VectorSpace("Cosine"), None, {"quantization": {"ignore": True}})[0]
    assert ids_of(found)[0] == 3 and len(found) == 5
    assert segment.indexed_vectors() == 0  # m = 0: no graph
    segment.close()


def test_sparse_filtered_search_below_full_scan_threshold_is_exact(tmp_path):
    schema = VectorSchema(sparse={"s": SparseVectorSpec()})
    segment = IndexedSegment.create(tmp_path / "sp", schema)
    vectors = [SparseVector(np.array([i % 7, 7 + i % 3], np.uint32), np.array([1.0, 0.5 + i], np.float32)) for i in range(200)]
    segment.copy_points([Record(i, 1, {"g": i % 4}, {"s": v}) for i, v in enumerate(vectors)])
    segment.build_indexes({"dense": {}, "sparse": {"s": {"index": {}}}})
    space = VectorSpace("Dot", "float32", "sparse")
    query = ScoringQuery("nearest", (vectors[10],))
    predicate = compile_filter({"must": [{"key": "g", "match": {"value": 2}}]})
    for threshold in (1, 10_000):  # through the index, then exact: the same answer
        segment.set_search_settings({"s": {"full_scan_threshold": threshold}})
        found = segment.search("s", [query], 5, space, predicate, {})[0]
        assert all(pid % 4 == 2 for pid in ids_of(found)) and len(found) == 5
        if threshold == 1:
            via_index = found
    assert [(round(s, 4), pid) for s, pid, _ in found] == [(round(s, 4), pid) for s, pid, _ in via_index]
    segment.close()


def build_tenants(path, hnsw):
    """3000 clustered points in 3 tenants (an `is_tenant` keyword index) plus a few without."""
    schema = VectorSchema(dense={"": DenseVectorSpec(DIM, "Cosine")})
    data = clustered(3000, DIM, 4)
    data /= np.linalg.norm(data, axis=1, keepdims=True)
    segment = IndexedSegment.create(path, schema)
    segment.set_payload_indexes({"tenant": {"type": "keyword", "is_tenant": True}, "group": "integer"})
    tenants = ["a", "b", "c"]
    records = [
        Record(i, 1, {"tenant": tenants[i % 3], "group": i % 5} if i >= 30 else {}, {"": data[i]}) for i in range(3000)
    ]
    segment.copy_points(records)
    segment.set_search_settings({"": {"full_scan_threshold": 1}})  # 16 vectors: every tenant gets a subgraph
    segment.build_indexes({"dense": {"": {"hnsw": hnsw}}, "sparse": {}})
    return segment, data


@pytest.mark.parametrize("hnsw", [{"m": 16, "ef_construct": 64}, {"m": 0, "payload_m": 16, "ef_construct": 64}])
def test_tenant_subgraphs_answer_tenant_filters(tmp_path, hnsw, monkeypatch):
    segment, data = build_tenants(tmp_path / "t", hnsw)
    index = segment._dense[""]
    assert len(index.tenants) == 3
    used = []
    original = IndexedSegment._tenant_search
    monkeypatch.setattr(IndexedSegment, "_tenant_search", staticmethod(lambda *a: used.append(1) or original(*a)))
    space = VectorSpace("Cosine")
    for tenant, extra in (("b", None), ("c", {"key": "group", "match": {"value": 2}})):
        predicate = compile_filter({"must": [{"key": "tenant", "match": {"value": tenant}}, *([extra] if extra else [])]})
        hits = total = 0
        for q in data[::100]:
            query = nearest(q)
            found = segment.search("", [query], 10, space, predicate, {})[0]
            exact = segment.search("", [query], 10, space, predicate, {"exact": True})[0]
            assert all(pid >= 30 and ["a", "b", "c"][pid % 3] == tenant for pid in ids_of(found))
            if extra:
                assert all(pid % 5 == 2 for pid in ids_of(found))
            hits += len(set(ids_of(found)) & set(ids_of(exact)))
            total += len(exact)
        assert hits / total >= 0.95
    assert used  # the tenant subgraphs answered
    unfiltered = segment.search("", [nearest(data[0])], 5, space, None, {})[0]
    assert ids_of(unfiltered)[0] == 0  # m = 0: an exact scan; m = 16: the main graph
    expected_indexed = 3000 if hnsw["m"] else 2970  # m = 0: only points of a tenant are indexed
    assert segment.indexed_vectors() == expected_indexed
    segment.flush()
    segment.close()
    reopened = open_segment(tmp_path / "t", segment.schema)
    assert len(reopened._dense[""].tenants) == 3
    predicate = compile_filter({"must": [{"key": "tenant", "match": {"value": "a"}}]})
    found = reopened.search("", [nearest(data[33])], 3, space, predicate, {})[0]
    assert ids_of(found)[0] == 33
    reopened.close()
