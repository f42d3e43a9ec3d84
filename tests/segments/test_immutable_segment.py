"""The immutable segment (pydrant/segments/immutable.py, immutable_build.py): differential
against an AppendableSegment holding the same points, graph and quantized search, the
deletion flags' durability, checkpoints, open-time refusals and background verification.
"""

from __future__ import annotations

import gc
import os
import uuid

import cbor2
import numpy as np
import pytest

from pydrant.errors import ServiceError
from pydrant.fsutil import read_json
from pydrant.segments import immutable as immutable_module
from pydrant.segments.appendable import AppendableSegment
from pydrant.segments.filters import compile_filter
from pydrant.segments.immutable import ImmutableSegment, open_immutable
from pydrant.segments.immutable_build import ImmutableBuilder
from pydrant.segments.packfile import CorruptPack
from pydrant.segments.scoring import ScoringQuery, VectorSpace, prepare_dense
from pydrant.segments.types import DenseVectorSpec, PointInput, SparseVector, SparseVectorSpec, VectorSchema

DIM = 8
FIELDS = {
    "color": "keyword",
    "n": {"type": "integer", "lookup": True, "range": True},
    "price": "float",
    "flag": "bool",
    "tenant": {"type": "keyword", "is_tenant": True},
}
SCHEMA = VectorSchema(
    dense={"": DenseVectorSpec(DIM, "Cosine"), "m": DenseVectorSpec(DIM, "Euclid", multivector=True)},
    sparse={"s": SparseVectorSpec()},
)
SETTINGS = {
    "dense": {"": {"hnsw": {"m": 8, "ef_construct": 32}, "quantization": None, "on_disk": False},
              "m": {"hnsw": {"m": 8, "ef_construct": 32}, "quantization": None, "on_disk": False}},
    "sparse": {"s": {"index": {}}},
}


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=-1, keepdims=True)).astype(np.float32)


def mixed_points(n: int = 400, seed: int = 3) -> list[PointInput]:
    """Integer and UUID ids, payloads for every index type (some missing, some arrays),
    the unnamed dense vector on 4 of 5 points, a multi-vector on half, sparse on a third
    (one of them empty)."""
    rng = np.random.default_rng(seed)
    points = []
    for i in range(n):
        point_id = i * 3 if i % 4 else str(uuid.UUID(int=int(rng.integers(1, 2**62)) << 64 | i))
        vectors = {}
        if i % 5:
            vectors[""] = unit(rng.normal(size=DIM))
        if i % 2:
            vectors["m"] = rng.normal(size=(1 + i % 3, DIM)).astype(np.float32)
        if i % 3 == 0:
            count = 0 if i == 30 else 1 + i % 4
            indices = np.sort(rng.choice(50, count, replace=False)).astype(np.uint32)
            vectors["s"] = SparseVector(indices, rng.random(count).astype(np.float32))
        payload = {"color": ["red", "green", "blue"][i % 3], "n": int(i % 17), "price": float(i % 23) / 2,
                   "tenant": "big" if i % 10 < 7 else f"t{i % 10}", "text": f"word{i % 5}"}
        if i % 7 == 0:
            payload["color"] = ["red", "blue"]
        if i % 11 == 0:
            del payload["n"]
        if i % 2:
            payload["flag"] = bool(i % 4 == 1)
        points.append(PointInput(point_id, vectors, payload if i % 13 else {}))
    return points


def build_pair(tmp_path, points=None, settings=SETTINGS, fields=FIELDS, batch=150):
    """(appendable, immutable) holding the same points; the immutable one built from the
    appendable one's `export_points` in batches, as the optimizer copies."""
    points = mixed_points() if points is None else points
    appendable = AppendableSegment.create(tmp_path / "plain", SCHEMA)
    appendable.upsert_points(1, points[:200])
    appendable.upsert_points(2, points[200:])
    appendable.set_payload_indexes(fields)
    builder = ImmutableBuilder(tmp_path / "imm", SCHEMA, fields)
    ids = list(appendable.iter_ids())
    for start in range(0, len(ids), batch):
        builder.add(appendable.export_points(ids[start : start + batch]))
    builder.advance_version(appendable.version)
    segment = builder.finish(settings, threads=1)
    return appendable, segment


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    appendable, segment = build_pair(tmp_path_factory.mktemp("pair"))
    yield appendable, segment
    appendable.close()
    segment.close()


def as_plain(records):
    out = []
    for r in records:
        vectors = {k: (v.indices.tolist(), v.values.tolist()) if isinstance(v, SparseVector) else v.tolist()
                   for k, v in (r.vectors or {}).items()}
        out.append((r.id, r.version, r.payload, vectors))
    return out


FILTERS = [
    None,
    {"must": [{"key": "color", "match": {"value": "red"}}]},
    {"must": [{"key": "n", "range": {"gte": 3, "lt": 9}}], "must_not": [{"key": "flag", "match": {"value": True}}]},
    {"should": [{"key": "price", "range": {"gt": 8}}, {"key": "color", "match": {"any": ["blue"]}}]},
    {"must": [{"key": "text", "match": {"value": "word2"}}]},  # not indexed: the payload scan
    {"must": [{"is_empty": {"key": "n"}}]},
    {"must": [{"has_vector": "s"}, {"key": "tenant", "match": {"value": "big"}}]},
]


def test_reads_equal_the_appendable_segment(pair):
    appendable, segment = pair
    ids = list(appendable.iter_ids())
    assert list(segment.iter_ids()) == ids
    assert segment.point_count == appendable.point_count == 400
    asked = ids[::-1] + [10**9, str(uuid.UUID(int=5))]
    for with_payload, with_vectors in [(True, True), (False, ["m", "s"]), (True, False)]:
        assert as_plain(segment.retrieve(asked, with_payload, with_vectors)) == as_plain(
            appendable.retrieve(asked, with_payload, with_vectors)
        )
    assert segment.point_versions(asked) == [appendable.point_version(i) for i in asked]
    assert [segment.vector_names_of(i) for i in ids[:20]] == [appendable.vector_names_of(i) for i in ids[:20]]
    assert segment.vector_bytes() == appendable.vector_bytes()
    exported = segment.export_points(ids[:30])
    assert [(p[0], p[1], p[3]) for p in exported] == [(p[0], p[1], p[3]) for p in appendable.export_points(ids[:30])]
    for spec in FILTERS:
        predicate = compile_filter(spec)
        assert segment.count(predicate) == appendable.count(predicate), spec
        for offset, limit in [(None, None), (None, 7), (ids[37], 25), (ids[350], None)]:
            assert segment.read_ids(offset, limit, predicate) == appendable.read_ids(offset, limit, predicate), (spec, offset)
        if predicate is not None:
            assert segment.estimate_cardinality(predicate) == appendable.estimate_cardinality(predicate), spec
        for key in ["color", "n", "flag", "price"]:
            assert segment.facet(key, predicate) == appendable.facet(key, predicate), (spec, key)
        for key, descending, start in [("n", False, None), ("price", True, 7.5), ("color", False, None)]:
            assert segment.read_ordered(key, descending, start, 15, predicate) == appendable.read_ordered(
                key, descending, start, 15, predicate
            ), (spec, key)


def test_exact_searches_equal_the_appendable_segment(pair):
    appendable, segment = pair
    rng = np.random.default_rng(9)
    spaces = {
        "": VectorSpace("Cosine"),
        "m": VectorSpace("Euclid", "float32", "multi"),
        "s": VectorSpace("Dot", "float32", "sparse"),
    }
    queries = {
        "": ScoringQuery("nearest", (prepare_dense(rng.normal(size=DIM), "Cosine", "float32"),)),
        "m": ScoringQuery("nearest", (rng.normal(size=(2, DIM)).astype(np.float32),)),
        "s": ScoringQuery("nearest", (SparseVector(np.array([1, 4, 9], np.uint32), np.array([0.5, 1.0, 2.0], np.float32)),)),
    }
    for name, query in queries.items():
        for spec in FILTERS[:4]:
            predicate = compile_filter(spec)
            want = appendable.search(name, [query], 12, spaces[name], predicate, {"exact": True})[0]
            got = segment.search(name, [query], 12, spaces[name], predicate, {"exact": True})[0]
            assert [(p, v) for _, p, v in got] == [(p, v) for _, p, v in want], (name, spec)
            assert np.allclose([s for s, _, _ in got], [s for s, _, _ in want], atol=1e-6)
    # the sparse inverted index (no `exact`) answers as the scan
    want = appendable.search("s", [queries["s"]], 12, spaces["s"], None, {})[0]
    assert [p for _, p, _ in segment.search("s", [queries["s"]], 12, spaces["s"], None, {})[0]] == [p for _, p, _ in want]
    indices = np.array([1, 4, 9, 49], np.uint32)
    count, freqs = segment.sparse_statistics("s", indices)
    want_count, want_freqs = appendable.sparse_statistics("s", indices)
    assert count == want_count and freqs.tolist() == want_freqs.tolist()


def test_payload_index_info_and_info(pair):
    appendable, segment = pair
    assert {k: v["points"] for k, v in segment.payload_index_info().items()} == {
        k: v["points"] for k, v in appendable.payload_index_info().items()
    }
    info = segment.info()
    assert info["segment_type"] == "indexed" and info["is_appendable"] is False
    assert info["num_points"] == 400 and info["num_vectors_by_name"] == appendable.info()["num_vectors_by_name"]
    assert segment.build_settings == SETTINGS
    assert segment.slot_counts() == (400, 0)


def clustered(n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(30, dim))
    return unit(centres[rng.integers(0, 30, n)] + rng.normal(scale=0.4, size=(n, dim)))


def build_dense(tmp_path, settings, n=3000, dim=16, name="g"):
    schema = VectorSchema(dense={"": DenseVectorSpec(dim, "Cosine")})
    data = clustered(n, dim, 1)
    builder = ImmutableBuilder(tmp_path / name, schema, {})
    builder.add([(i, 1, {"": data[i]}, cbor2.dumps({"g": i % 5})) for i in range(n)])
    return builder.finish(settings, threads=2), data


def recall(segment, queries, params, limit=10) -> float:
    space = VectorSpace("Cosine")
    hits = 0
    for q in queries:
        query = ScoringQuery("nearest", (prepare_dense(q, "Cosine", "float32"),))
        approx = {p for _, p, _ in segment.search("", [query], limit, space, None, params)[0]}
        exact = {p for _, p, _ in segment.search("", [query], limit, space, None, {"exact": True})[0]}
        hits += len(approx & exact)
    return hits / (limit * len(queries))


def test_graph_recall_and_deletions_in_the_kernel_mask(tmp_path):
    settings = {"dense": {"": {"hnsw": {"m": 16, "ef_construct": 64}, "quantization": None}}, "sparse": {}}
    segment, data = build_dense(tmp_path, settings)
    queries = data[:60] + np.float32(0.05)
    assert recall(segment, queries, {}) >= 0.95
    space = VectorSpace("Cosine")
    query = ScoringQuery("nearest", (prepare_dense(data[7], "Cosine", "float32"),))
    top = [p for _, p, _ in segment.search("", [query], 5, space, None, {})[0]]
    assert top[0] == 7
    segment.delete_points(5, top[:3])
    after = [p for _, p, _ in segment.search("", [query], 5, space, None, {})[0]]
    assert not set(top[:3]) & set(after) and len(after) == 5


def test_scalar_quantized_search_rescores_with_the_original_vectors(tmp_path):
    quantization = {"scalar": {"type": "int8", "quantile": 0.99, "always_ram": True}}
    settings = {"dense": {"": {"hnsw": {"m": 16, "ef_construct": 64}, "quantization": quantization, "on_disk": True}}, "sparse": {}}
    segment, data = build_dense(tmp_path, settings)
    index = segment._dense[""]
    assert index.quantized is not None and index.uses_codes({})
    queries = data[100:160] + np.float32(0.05)
    assert recall(segment, queries, {"quantization": {"rescore": True, "oversampling": 2.0}}) >= 0.9
    space = VectorSpace("Cosine")
    query = ScoringQuery("nearest", (prepare_dense(queries[0], "Cosine", "float32"),))
    exact = {p: s for s, p, _ in segment.search("", [query], 100, space, None, {"exact": True})[0]}
    rescored = segment.search("", [query], 10, space, None, {})[0]
    assert all(abs(s - exact[p]) < 1e-5 for s, p, _ in rescored)  # reported scores are the exact ones
    raw = segment.search("", [query], 10, space, None, {"quantization": {"rescore": False}})[0]
    assert any(abs(s - exact.get(p, -9)) > 1e-5 for s, p, _ in raw)  # the codes' approximate scores
    # always_ram codes are resident although the vector is on_disk; its rows are not
    regions = segment.resident_regions()
    assert any(np.shares_memory(r, index.quantized.codes) for r in regions)
    assert not any(np.shares_memory(r, segment._vectors[""].data) for r in regions)


def test_tenant_subgraph_answers_a_tenant_filter(tmp_path):
    schema = VectorSchema(dense={"": DenseVectorSpec(16, "Cosine")})
    data = clustered(2000, 16, 4)
    fields = {"tenant": {"type": "keyword", "is_tenant": True}}
    builder = ImmutableBuilder(tmp_path / "t", schema, fields)
    builder.set_search_settings({"": {"full_scan_threshold": 10}})  # 160 vectors of 16 floats
    builder.add([(i, 1, {"": data[i]}, cbor2.dumps({"tenant": "a" if i % 4 else "b"})) for i in range(2000)])
    segment = builder.finish({"dense": {"": {"hnsw": {"m": 0, "payload_m": 8, "ef_construct": 32}}}, "sparse": {}}, threads=1)
    segment.set_search_settings({"": {"full_scan_threshold": 10}})
    index = segment._dense[""]
    assert index.graph is None and len(index.tenants) == 2
    space = VectorSpace("Cosine")
    predicate = compile_filter({"must": [{"key": "tenant", "match": {"value": "b"}}]})
    hits, want = 0, 0
    for q in data[:20]:
        query = ScoringQuery("nearest", (prepare_dense(q + 0.03, "Cosine", "float32"),))
        got = [p for _, p, _ in segment.search("", [query], 10, space, predicate, {})[0]]
        exact = [p for _, p, _ in segment.search("", [query], 10, space, predicate, {"exact": True})[0]]
        assert all(p % 4 == 0 for p in got)
        hits += len(set(got) & set(exact))
        want += 10
    assert hits / want >= 0.9


def reopen(segment):
    segment.close()
    return open_immutable(segment.path, SCHEMA)


def test_deletions_flush_with_a_bound_and_reopen(tmp_path):
    appendable, segment = build_pair(tmp_path)
    ids = list(segment.iter_ids())
    version = segment.version
    assert segment.delete_points(version + 1, ids[:5]) == 5
    assert segment.delete_points(version + 1, ids[:5]) == 0  # already gone
    assert segment.delete_points(version + 3, ids[5:8]) == 3
    assert segment.point_count == 392 and segment.retrieve(ids[:8]) == []
    assert segment.flush(bound=version + 2) == version + 2
    state = read_json(segment.path / "state.json")
    assert state["persisted_version"] == version + 2 and state["deleted_count"] == 5
    assert [p.name for p in segment.path.glob("deleted.*")] == [state["deleted_file"]]
    segment = reopen(segment)
    # the deletions of the op above the bound were not persisted: the WAL replays them
    assert segment.point_count == 395 and segment.point_versions(ids[5:8]) == [appendable.point_version(i) for i in ids[5:8]]
    assert segment.persisted_version == version + 2
    segment.delete_points(version + 3, ids[5:8])
    assert segment.flush() == version + 3
    segment = reopen(segment)
    assert segment.point_count == 392 and segment.slot_counts() == (400, 8)
    assert segment.count(compile_filter({"must": [{"has_id": ids[:10]}]})) == 2
    appendable.close()


def test_a_crash_between_the_flags_file_and_state_json_keeps_the_old_state(tmp_path, monkeypatch):
    appendable, segment = build_pair(tmp_path)
    ids = list(segment.iter_ids())
    segment.delete_points(segment.version + 1, ids[:4])
    segment.flush()
    segment.delete_points(segment.version + 1, ids[4:9])

    def crash(path, value):
        raise OSError("power cut")

    monkeypatch.setattr(immutable_module, "write_json_atomic", crash)
    with pytest.raises(OSError):
        segment.flush()
    monkeypatch.undo()
    assert len(list(segment.path.glob("deleted.*.bool"))) == 2  # the new file, never named
    segment = reopen(segment)
    assert segment.point_count == 396
    segment.delete_points(segment.version + 1, ids[4:9])
    segment.flush()
    assert len(list(segment.path.glob("deleted.*"))) == 1  # the leftover is gone
    assert reopen(segment).point_count == 391
    appendable.close()


def test_discards_persist_without_a_new_version(tmp_path):
    appendable, segment = build_pair(tmp_path)
    ids = list(segment.iter_ids())
    first = segment.flush()
    segment.start_tracking()
    assert segment.discard_points(ids[:3]) == 3
    assert set(segment.take_tracked(stop=True)) == set(ids[:3])
    assert segment.flush() == first  # same version, a new flags file name
    assert reopen(segment).point_count == 397
    appendable.close()


def test_checkpoint_opens_as_an_equal_segment(tmp_path):
    appendable, segment = build_pair(tmp_path)
    ids = list(segment.iter_ids())
    segment.delete_points(segment.version + 1, ids[:6])
    segment.flush()
    segment.delete_points(segment.version + 1, ids[6:8])  # not flushed: not in the checkpoint
    segment.checkpoint(tmp_path / "copy")
    copy = open_immutable(tmp_path / "copy", SCHEMA)
    assert list(copy.iter_ids()) == ids[6:]
    assert as_plain(copy.retrieve(ids, True, True)) == as_plain(appendable.retrieve(ids[6:], True, True))
    predicate = compile_filter(FILTERS[2])
    assert copy.read_ids(None, None, predicate) == [i for i in appendable.read_ids(None, None, predicate) if i not in ids[:6]]
    assert os.stat(tmp_path / "copy" / "ids.pack").st_ino == os.stat(segment.path / "ids.pack").st_ino
    appendable.close()


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_an_open_segment_holds_few_file_descriptors(tmp_path):
    schema = VectorSchema(dense={"": DenseVectorSpec(DIM, "Cosine")})
    rng = np.random.default_rng(2)
    builder = ImmutableBuilder(tmp_path / "fd", schema, {k: v for k, v in FIELDS.items()})
    builder.add([(i, 1, {"": unit(rng.normal(size=DIM))}, cbor2.dumps(mixed_points(1)[0].payload | {"n": i}))
                 for i in range(300)])
    quantization = {"scalar": {"type": "int8", "always_ram": True}}
    builder.finish({"dense": {"": {"hnsw": {"m": 8, "ef_construct": 16}, "quantization": quantization}}, "sparse": {}}, threads=1).close()
    gc.collect()  # the built segment's mappings went with it
    before = open_fds()
    segment = ImmutableSegment.open(tmp_path / "fd", schema)
    held = open_fds() - before
    # ids, payload, vector, graph, codes, five payload-index packs: one descriptor each
    assert held == 10
    assert len(segment.payload_index_info()) == 5
    segment.close()
    gc.collect()
    assert open_fds() == before  # close lets the mappings go


def test_a_flipped_byte_fails_verification(tmp_path):
    appendable, segment = build_pair(tmp_path)
    steps = list(segment.verification_steps())
    assert steps and steps == sorted(steps)
    path = segment.path / "vectors" / "_.pack"
    table = segment._tables["vectors/_.pack"]
    offset = table.arrays["data"].offset + 17
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0x40]))
    with pytest.raises(CorruptPack, match="_.pack"):
        list(segment.verification_steps())
    segment.mark_failed("vectors/_.pack failed its checksum")
    with pytest.raises(ServiceError, match="failed its checksum"):
        segment.retrieve(list(appendable.iter_ids())[:2])
    appendable.close()


def test_a_truncated_or_missing_pack_or_newer_format_fails_open(tmp_path):
    appendable, segment = build_pair(tmp_path)
    segment.close()
    path = segment.path
    with open(path / "payload.pack", "r+b") as f:
        f.truncate(100)
    with pytest.raises(CorruptPack, match="payload.pack"):
        open_immutable(path, SCHEMA)
    os.unlink(path / "payload.pack")
    with pytest.raises(CorruptPack, match="payload.pack.*missing"):
        open_immutable(path, SCHEMA)
    meta = read_json(path / "segment.json")
    (path / "segment.json").write_text(__import__("json").dumps({**meta, "format": 3}))
    with pytest.raises(ServiceError, match="segment format 3 is newer than this pydrant"):
        open_immutable(path, SCHEMA)
    appendable.close()


def test_writes_other_than_deletes_raise(pair):
    _, segment = pair
    point = segment.export_points(list(segment.iter_ids())[:1])
    before = segment.point_count
    with pytest.raises(ServiceError):
        segment.upsert_points(10**6, [PointInput(1, {}, {})])
    with pytest.raises(ServiceError):
        segment.update_payload(10**6, [point[0][0]], lambda p: {})
    with pytest.raises(ServiceError):
        segment.update_vectors(10**6, [(point[0][0], {})])
    with pytest.raises(ServiceError):
        segment.delete_vectors(10**6, [point[0][0]], [""])
    with pytest.raises(ServiceError):
        segment.import_points(point)
    assert segment.point_count == before and segment.export_points([point[0][0]])[0][1] == point[0][1]


def test_abort_and_a_failed_finish_remove_the_directory(tmp_path):
    builder = ImmutableBuilder(tmp_path / "a", SCHEMA, FIELDS)
    builder.add([(1, 1, {"": unit(np.ones(DIM))}, b"")])
    builder.abort()
    assert not (tmp_path / "a").exists()
    builder = ImmutableBuilder(tmp_path / "b", SCHEMA, {})
    builder.add([(1, 1, {"": unit(np.ones(DIM))}, b""), (1, 2, {}, b"")])  # a repeated id
    with pytest.raises(ValueError):
        builder.finish(SETTINGS)
    assert not (tmp_path / "b").exists()


def test_set_payload_indexes_builds_from_the_payload_pack(tmp_path):
    appendable, segment = build_pair(tmp_path, fields={"color": "keyword"})
    segment.delete_points(segment.version + 1, list(segment.iter_ids())[:10])
    fields = {"color": "keyword", "n": {"type": "integer", "lookup": True, "range": True}}
    segment.set_payload_indexes(fields)
    appendable.delete_points(appendable.version + 1, list(appendable.iter_ids())[:10])
    appendable.set_payload_indexes(fields)
    assert segment.facet("n") == appendable.facet("n")
    assert reopen(segment).facet("n") == appendable.facet("n")
    appendable.close()


def test_multivector_graph_search_nominates_as_exact_maxsim(tmp_path):
    schema = VectorSchema(dense={"m": DenseVectorSpec(16, "Cosine", multivector=True)})
    rng = np.random.default_rng(5)
    base = clustered(4000, 16, 2)
    points, start = [], 0
    for i in range(1500):
        count = int(rng.integers(1, 4))
        points.append((i, 1, {"m": base[start : start + count]}, b""))
        start += count
    builder = ImmutableBuilder(tmp_path / "mv", schema, {})
    builder.add(points)
    segment = builder.finish({"dense": {"m": {"hnsw": {"m": 16, "ef_construct": 64}}}, "sparse": {}}, threads=1)
    assert segment._dense["m"].graph is not None and segment._dense["m"].multi
    space = VectorSpace("Cosine", "float32", "multi")
    hits = 0
    for i in range(0, 300, 10):
        query = ScoringQuery("nearest", (prepare_dense(points[i][2]["m"] + np.float32(0.02), "Cosine", "float32"),))
        got = {p for _, p, _ in segment.search("m", [query], 10, space, None, {"hnsw_ef": 128})[0]}
        exact = {p for _, p, _ in segment.search("m", [query], 10, space, None, {"exact": True})[0]}
        hits += len(got & exact)
    assert hits / 300 >= 0.95


def test_an_empty_build_opens_and_answers_nothing(tmp_path):
    builder = ImmutableBuilder(tmp_path / "e", SCHEMA, FIELDS)
    builder.advance_version(7)
    segment = builder.finish(SETTINGS)
    assert segment.point_count == 0 and segment.version == 7 and list(segment.iter_ids()) == []
    assert segment.retrieve([1, 2]) == [] and segment.point_versions([1]) == [None]
    query = ScoringQuery("nearest", (prepare_dense(np.ones(DIM), "Cosine", "float32"),))
    assert segment.search("", [query], 5, VectorSpace("Cosine"), None, {}) == [[]]
    assert segment.facet("color") == {} and segment.read_ordered("n", False, None, 3) == []
    assert list(reopen(segment).iter_ids()) == []


def test_the_segment_meets_the_protocols(pair):
    from pydrant.segments import base

    _, segment = pair
    for protocol in (base.SegmentReader, base.SegmentWriter, base.OptimizerSource, base.OptimizerTarget, base.SegmentLifecycle):
        assert isinstance(segment, protocol), protocol.__name__
