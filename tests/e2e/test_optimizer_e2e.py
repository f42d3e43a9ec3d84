"""The optimizer through a real server: qdrant-client 1.15.1 and raw HTTP.

Indexing turns the collection yellow then green and fills indexed_vectors_count; searches
with hnsw_ef / exact / quantization params agree with exact search; a PATCH of the index
config rebuilds; bad index parameters are 4xx; and a SIGKILL while indexing, merging or
vacuuming leaves a collection that holds every acknowledged point after restart.
"""

from __future__ import annotations

import random
import time

import numpy as np
import orjson
import pytest
from qdrant_client import QdrantClient, models

pytestmark = pytest.mark.e2e

DIM = 32
THRESHOLD_KB = 64  # 512 vectors of 32 float32
N_CRASH = 16_000  # points of the crash tests: enough that an optimization takes a while


def vectors(n: int, seed: int) -> np.ndarray:
    """Points (and queries) around the same 20 cluster centres; `seed` draws the points."""
    centres = np.random.default_rng(0).normal(size=(20, DIM))
    rng = np.random.default_rng(seed)
    data = centres[rng.integers(0, 20, n)] + rng.normal(scale=0.5, size=(n, DIM))
    return (data / np.linalg.norm(data, axis=1, keepdims=True)).astype(np.float32)


def create(client: QdrantClient, name: str, **optimizers) -> None:
    client.create_collection(
        name,
        vectors_config=models.VectorParams(size=DIM, distance=models.Distance.COSINE),
        hnsw_config=models.HnswConfigDiff(m=8, ef_construct=32),
        optimizers_config=models.OptimizersConfigDiff(
            **{"indexing_threshold": THRESHOLD_KB, "default_segment_number": 2, **optimizers}
        ),
    )


def upload(client: QdrantClient, name: str, data: np.ndarray, start: int = 0, batch: int = 500) -> None:
    for first in range(0, len(data), batch):
        chunk = data[first : first + batch]
        client.upsert(
            name,
            points=models.Batch(
                ids=list(range(start + first, start + first + len(chunk))),
                vectors=chunk.tolist(),
                payloads=[{"n": start + first + i, "even": (start + first + i) % 2 == 0} for i in range(len(chunk))],
            ),
        )


def wait_status(client: QdrantClient, name: str, wanted: str = "green", timeout: float = 120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = client.get_collection(name)
        assert info.status != models.CollectionStatus.RED, info.optimizer_status
        if info.status == wanted:
            return info
        time.sleep(0.1)
    raise AssertionError(f"collection {name} not {wanted} after {timeout}s: {client.get_collection(name)}")


def top_ids(client, name, vector, limit=10, **params) -> list:
    hits = client.query_points(name, query=vector.tolist(), limit=limit, search_params=models.SearchParams(**params) if params else None)
    return [p.id for p in hits.points]


def test_indexing_status_and_indexed_search(client):
    name = "opt_index"
    create(client, name)
    data = vectors(3000, 1)
    upload(client, name, data, batch=3000)  # one appendable segment, indexed as a whole
    assert client.get_collection(name).status in (models.CollectionStatus.YELLOW, models.CollectionStatus.GREEN)
    info = wait_status(client, name)
    assert info.points_count == 3000
    assert info.indexed_vectors_count == 3000
    assert info.optimizer_status == models.OptimizersStatusOneOf.OK
    queries = vectors(30, 99)
    hits = 0
    for q in queries:
        exact = top_ids(client, name, q, exact=True)
        approx = top_ids(client, name, q, hnsw_ef=64)
        hits += len(set(exact) & set(approx))
    assert hits / 300 >= 0.95
    # a filtered search only returns matching points
    found = client.query_points(
        name, query=queries[0].tolist(), limit=20,
        query_filter=models.Filter(must=[models.FieldCondition(key="even", match=models.MatchValue(value=True))]),
    ).points
    assert len(found) == 20 and all(p.id % 2 == 0 for p in found)


def test_quantization_patch_rebuilds_and_search_params(client, http):
    name = "opt_quant"
    create(client, name)
    data = vectors(2000, 2)
    upload(client, name, data, batch=2000)
    wait_status(client, name)
    client.update_collection(
        name,
        quantization_config=models.ScalarQuantization(
            scalar=models.ScalarQuantizationConfig(type=models.ScalarType.INT8, quantile=0.99, always_ram=True)
        ),
    )
    info = wait_status(client, name)
    assert info.config.quantization_config.scalar.type == models.ScalarType.INT8
    assert info.indexed_vectors_count == 2000
    queries = vectors(20, 98)
    hits_rescored = hits_raw = hits_original = 0
    for q in queries:
        exact = set(top_ids(client, name, q, exact=True))
        rescored = top_ids(client, name, q, hnsw_ef=64, quantization=models.QuantizationSearchParams(rescore=True, oversampling=4.0))
        raw = top_ids(client, name, q, hnsw_ef=64, quantization=models.QuantizationSearchParams(rescore=False))
        ignored = top_ids(client, name, q, hnsw_ef=64, quantization=models.QuantizationSearchParams(ignore=True))
        hits_rescored += len(exact & set(rescored))
        hits_raw += len(exact & set(raw))
        hits_original += len(exact & set(ignored))
    # int8 codes + rescoring: recall within 0.02 of the same graph on the original vectors
    assert hits_original / 200 >= 0.9
    assert hits_rescored / 200 >= hits_original / 200 - 0.02
    assert hits_raw / 200 >= 0.8
    # bad input: out-of-range index and search parameters are 4xx, and nothing changes
    for body in (
        {"hnsw_config": {"m": -1}},
        {"hnsw_config": {"ef_construct": 2}},
        {"quantization_config": {"scalar": {"type": "int8", "quantile": 0.2}}},
        {"quantization_config": {"product": {"compression": "x3"}}},
    ):
        response = http.patch(f"/collections/{name}", json=body)
        assert 400 <= response.status_code < 500, (body, response.text)
        assert "error" in response.json()["status"]
    response = http.post(
        f"/collections/{name}/points/search",
        json={"vector": queries[0].tolist(), "limit": 3, "params": {"quantization": {"oversampling": 0.5}}},
    )
    assert 400 <= response.status_code < 500
    assert client.get_collection(name).status == models.CollectionStatus.GREEN


def test_searches_during_indexing_never_miss_an_acknowledged_point(client):
    name = "opt_live"
    create(client, name)
    data = vectors(6000, 3)
    for wave in range(6):
        upload(client, name, data[wave * 1000 : (wave + 1) * 1000], start=wave * 1000)
        acknowledged = (wave + 1) * 1000
        assert client.count(name, exact=True).count == acknowledged
        for i in random.Random(wave).sample(range(acknowledged), 5):
            assert i in top_ids(client, name, data[i], 3, exact=True)
            assert client.retrieve(name, [i])[0].payload["n"] == i
    info = wait_status(client, name)
    assert info.points_count == 6000
    # green: only what the appendable segment holds below indexing_threshold is unindexed
    assert 0 <= 6000 - info.indexed_vectors_count < THRESHOLD_KB * 1024 // (DIM * 4)


# -- crashes -------------------------------------------------------------------------------


def wait_for_log(server, text: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in server.log_path.read_text(errors="replace"):
            return
        time.sleep(0.01)
    raise AssertionError(f"{text!r} not in the server log:\n{server.log_tail()}")


def segment_dirs(server, name: str) -> set:
    return {p.name for p in (server.storage / "collections" / name / "segments").iterdir()}


def check_consistent(server, name: str, expected_ids: set) -> None:
    collection_dir = server.storage / "collections" / name
    listed = set(orjson.loads((collection_dir / "manifest.json").read_bytes())["segments"])
    unlisted = segment_dirs(server, name) - listed  # a half-built segment, or retired ones
    assert listed <= segment_dirs(server, name)
    server.start()
    client = QdrantClient(url=server.url, timeout=60)
    try:
        assert client.count(name, exact=True).count == len(expected_ids)
        stored, offset = set(), None
        while True:
            points, offset = client.scroll(name, limit=1000, offset=offset, with_payload=True)
            for p in points:
                assert p.payload["n"] == p.id
                stored.add(p.id)
            if offset is None:
                break
        assert stored == expected_ids
        info = wait_status(client, name)
        assert info.points_count == len(expected_ids)
        assert info.indexed_vectors_count == len(expected_ids)
    finally:
        client.close()
    assert not unlisted & segment_dirs(server, name)  # removed on start


@pytest.mark.parametrize("kind", ["indexing", "merge", "vacuum"])
def test_sigkill_during_optimization_leaves_a_consistent_collection(fresh_server, kind):
    name = f"crash_{kind}"
    data = vectors(N_CRASH, 4)
    client = QdrantClient(url=fresh_server.url, timeout=60)
    if kind == "indexing":
        create(client, name, indexing_threshold=0)
        upload(client, name, data)
        client.update_collection(name, optimizers_config=models.OptimizersConfigDiff(indexing_threshold=THRESHOLD_KB))
        expected = set(range(N_CRASH))
    elif kind == "merge":
        create(client, name, default_segment_number=10)
        wave = N_CRASH // 4
        for first in range(0, N_CRASH, wave):
            upload(client, name, data[first : first + wave], start=first, batch=wave)  # one segment each
            wait_status(client, name)
        client.update_collection(name, optimizers_config=models.OptimizersConfigDiff(default_segment_number=1))
        expected = set(range(N_CRASH))
    else:
        create(client, name, vacuum_min_vector_number=100)
        upload(client, name, data)
        wait_status(client, name)
        doomed = list(range(0, N_CRASH, 2))
        client.delete(name, points_selector=models.PointIdsList(points=doomed))
        expected = set(range(1, N_CRASH, 2))
    wait_for_log(fresh_server, f"starting {kind}")
    time.sleep(random.Random(kind).uniform(0.0, 0.03))
    client.close()
    fresh_server.kill()
    # the kill landed inside the optimization: it started and never finished
    log = fresh_server.log_path.read_text(errors="replace")
    assert f"starting {kind}" in log.rsplit("collection " + name + ":", 1)[-1]
    check_consistent(fresh_server, name, expected)


def test_delete_and_patch_during_an_optimization(client, http):
    """A collection deleted while it is being indexed goes away (the build stops), the
    server keeps serving, and the name can be used again; a PATCH during a build leads to
    a rebuild with the new settings."""
    name = "opt_delete"
    create(client, name, indexing_threshold=0)
    upload(client, name, vectors(N_CRASH, 5), batch=4000)
    client.update_collection(name, optimizers_config=models.OptimizersConfigDiff(indexing_threshold=THRESHOLD_KB))
    assert client.get_collection(name).status == models.CollectionStatus.YELLOW
    assert client.delete_collection(name)
    assert not client.collection_exists(name)
    assert http.get("/healthz").status_code == 200
    create(client, name)
    upload(client, name, vectors(1000, 6), batch=1000)
    wait_status(client, name)
    assert client.count(name).count == 1000
    # PATCH while yellow: the segment built with m=8 is rebuilt with m=12
    client.update_collection(name, hnsw_config=models.HnswConfigDiff(m=12))
    client.update_collection(name, hnsw_config=models.HnswConfigDiff(ef_construct=40))
    info = wait_status(client, name)
    assert info.config.hnsw_config.m == 12 and info.config.hnsw_config.ef_construct == 40
    assert info.indexed_vectors_count == 1000
    data = vectors(1000, 6)
    assert top_ids(client, name, data[7], 1) == [7]


def test_multitenancy_with_payload_m(client):
    """Qdrant's multitenancy set-up: no global graph (m = 0), per-tenant graphs (payload_m)
    over an `is_tenant` keyword index; tenant-filtered searches use them."""
    name = "opt_tenants"
    client.create_collection(
        name,
        vectors_config=models.VectorParams(size=DIM, distance=models.Distance.COSINE),
        hnsw_config=models.HnswConfigDiff(m=0, payload_m=8, ef_construct=32, full_scan_threshold=10),
        optimizers_config=models.OptimizersConfigDiff(indexing_threshold=THRESHOLD_KB),
    )
    client.create_payload_index(
        name, "tenant", field_schema=models.KeywordIndexParams(type=models.KeywordIndexType.KEYWORD, is_tenant=True)
    )
    data = vectors(3000, 7)
    client.upsert(
        name,
        points=models.Batch(ids=list(range(3000)), vectors=data.tolist(), payloads=[{"tenant": f"t{i % 3}"} for i in range(3000)]),
    )
    info = wait_status(client, name)
    assert info.indexed_vectors_count == 3000  # every point is in a tenant's graph
    tenant_filter = models.Filter(must=[models.FieldCondition(key="tenant", match=models.MatchValue(value="t1"))])
    hits = 0
    for q in vectors(20, 97):
        found = client.query_points(name, query=q.tolist(), limit=10, query_filter=tenant_filter).points
        exact = client.query_points(
            name, query=q.tolist(), limit=10, query_filter=tenant_filter, search_params=models.SearchParams(exact=True)
        ).points
        assert all(p.id % 3 == 1 for p in found)
        hits += len({p.id for p in found} & {p.id for p in exact})
    assert hits / 200 >= 0.95
