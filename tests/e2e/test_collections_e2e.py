"""Issue 2 end to end: collections and aliases through qdrant-client and raw HTTP,
persisted across a restart of the real server process."""

import platform

import httpx
import pytest
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import UnexpectedResponse

pytestmark = pytest.mark.e2e

KINDS = {
    "unnamed": dict(vectors_config=models.VectorParams(size=4, distance=models.Distance.COSINE)),
    "named": dict(
        vectors_config={
            "image": models.VectorParams(size=8, distance=models.Distance.EUCLID, on_disk=True),
            "text": models.VectorParams(
                size=3, distance=models.Distance.DOT,
                hnsw_config=models.HnswConfigDiff(m=32),
                quantization_config=models.ScalarQuantization(
                    scalar=models.ScalarQuantizationConfig(type=models.ScalarType.INT8, always_ram=True)
                ),
            ),
        }
    ),
    "sparse": dict(
        vectors_config={},
        sparse_vectors_config={
            "bm25": models.SparseVectorParams(
                index=models.SparseIndexParams(on_disk=False, full_scan_threshold=500),
                modifier=models.Modifier.IDF,
            )
        },
    ),
    "multi": dict(
        vectors_config=models.VectorParams(
            size=5, distance=models.Distance.MANHATTAN,
            multivector_config=models.MultiVectorConfig(comparator=models.MultiVectorComparator.MAX_SIM),
        )
    ),
    "typed": dict(
        vectors_config={
            "u8": models.VectorParams(size=4, distance=models.Distance.DOT, datatype=models.Datatype.UINT8),
            "f16": models.VectorParams(size=4, distance=models.Distance.COSINE, datatype=models.Datatype.FLOAT16),
        }
    ),
    "tuned": dict(
        vectors_config=models.VectorParams(size=2, distance=models.Distance.EUCLID),
        shard_number=1,
        replication_factor=1,
        write_consistency_factor=1,
        on_disk_payload=False,
        hnsw_config=models.HnswConfigDiff(m=8, ef_construct=64, full_scan_threshold=2000, payload_m=4),
        optimizers_config=models.OptimizersConfigDiff(indexing_threshold=0, flush_interval_sec=1, deleted_threshold=0.5),
        wal_config=models.WalConfigDiff(wal_capacity_mb=4, wal_segments_ahead=1),
        quantization_config=models.BinaryQuantization(binary=models.BinaryQuantizationConfig(always_ram=False)),
        strict_mode_config=models.StrictModeConfig(enabled=True, max_query_limit=100),
    ),
}


def snapshot_of(client: QdrantClient) -> dict:
    """Everything a user can read about collections and aliases, for before/after checks."""
    names = sorted(c.name for c in client.get_collections().collections)
    return {
        "collections": {name: client.get_collection(name).config.model_dump() for name in names},
        "aliases": sorted((a.alias_name, a.collection_name) for a in client.get_aliases().aliases),
    }


def config_over_http(url: str, name: str) -> dict:
    response = httpx.get(f"{url}/collections/{name}")
    assert response.status_code == 200, response.text
    return response.json()["result"]["config"]


def test_collections_and_aliases_survive_restart(fresh_server):
    client = QdrantClient(url=fresh_server.url, timeout=30)
    for name, kwargs in KINDS.items():
        assert client.create_collection(name, **kwargs) is True
        assert client.collection_exists(name)
    # qdrant-client 1.15.1 has no `metadata` argument; the REST API has it on create and PATCH.
    meta = httpx.put(f"{fresh_server.url}/collections/with_meta", json={
        "vectors": {"size": 2, "distance": "Dot"}, "metadata": {"owner": "tests", "n": 1}})
    assert meta.status_code == 200, meta.text
    assert config_over_http(fresh_server.url, "with_meta")["metadata"] == {"owner": "tests", "n": 1}

    info = client.get_collection("named")
    assert info.status == models.CollectionStatus.GREEN
    assert info.points_count == 0
    assert info.config.params.vectors["image"].size == 8
    assert info.config.params.vectors["image"].on_disk is True
    assert info.config.params.vectors["text"].hnsw_config.m == 32
    assert client.get_collection("sparse").config.params.sparse_vectors["bm25"].modifier == models.Modifier.IDF
    assert client.get_collection("multi").config.params.vectors.multivector_config.comparator == "max_sim"
    assert client.get_collection("typed").config.params.vectors["u8"].datatype == models.Datatype.UINT8
    tuned = client.get_collection("tuned").config
    assert tuned.hnsw_config.m == 8 and tuned.hnsw_config.ef_construct == 64 and tuned.hnsw_config.payload_m == 4
    assert tuned.optimizer_config.indexing_threshold == 0 and tuned.optimizer_config.deleted_threshold == 0.5
    assert tuned.wal_config.wal_capacity_mb == 4 and tuned.wal_config.wal_segments_ahead == 1
    assert tuned.params.on_disk_payload is False
    assert tuned.strict_mode_config.enabled is True and tuned.strict_mode_config.max_query_limit == 100
    assert isinstance(tuned.quantization_config, models.BinaryQuantization)
    # defaults come from Qdrant's config
    default_cfg = client.get_collection("unnamed").config
    assert default_cfg.hnsw_config.m == 16 and default_cfg.hnsw_config.ef_construct == 100
    assert default_cfg.optimizer_config.flush_interval_sec == 5
    assert default_cfg.wal_config.wal_capacity_mb == 32

    # PATCH
    assert client.update_collection(
        "named",
        optimizers_config=models.OptimizersConfigDiff(indexing_threshold=5000),
        hnsw_config=models.HnswConfigDiff(ef_construct=200),
        vectors_config={"image": models.VectorParamsDiff(on_disk=False)},
    )
    patch = httpx.patch(f"{fresh_server.url}/collections/named", json={"metadata": {"stage": "patched"}})
    assert patch.status_code == 200, patch.text
    assert client.update_collection("sparse", sparse_vectors_config={"bm25": models.SparseVectorParams(modifier=models.Modifier.NONE)})
    assert client.update_collection(
        "unnamed",
        quantization_config=models.ScalarQuantization(scalar=models.ScalarQuantizationConfig(type=models.ScalarType.INT8, quantile=0.99)),
        strict_mode_config=models.StrictModeConfig(enabled=True, unindexed_filtering_retrieve=False),
        collection_params=models.CollectionParamsDiff(on_disk_payload=False),
    )
    patched = client.get_collection("named").config
    assert patched.optimizer_config.indexing_threshold == 5000
    assert patched.hnsw_config.ef_construct == 200 and patched.hnsw_config.m == 16
    assert patched.params.vectors["image"].on_disk is False
    assert config_over_http(fresh_server.url, "named")["metadata"] == {"stage": "patched"}
    unnamed = client.get_collection("unnamed").config
    assert unnamed.quantization_config.scalar.quantile == 0.99
    assert unnamed.strict_mode_config.unindexed_filtering_retrieve is False
    assert unnamed.params.on_disk_payload is False
    assert client.update_collection("unnamed", quantization_config=models.Disabled.DISABLED)
    assert client.get_collection("unnamed").config.quantization_config is None

    # aliases: several actions applied together
    assert client.update_collection_aliases(
        change_aliases_operations=[
            models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name="named", alias_name="a1")),
            models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name="multi", alias_name="a2")),
            models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name="typed", alias_name="gone")),
            models.RenameAliasOperation(rename_alias=models.RenameAlias(old_alias_name="a2", new_alias_name="a3")),
        ]
    )
    assert client.get_collection("a1").config.params.vectors["image"].size == 8  # alias accepted as a name
    assert sorted((a.alias_name, a.collection_name) for a in client.get_aliases().aliases) == [
        ("a1", "named"), ("a3", "multi"), ("gone", "typed")
    ]
    assert [a.alias_name for a in client.get_collection_aliases("multi").aliases] == ["a3"]
    assert client.delete_collection("typed") is True  # takes its alias with it
    assert "gone" not in {a.alias_name for a in client.get_aliases().aliases}
    assert not client.collection_exists("typed")

    before = snapshot_of(client)
    fresh_server.restart()
    client = QdrantClient(url=fresh_server.url, timeout=30)
    assert snapshot_of(client) == before
    assert client.collection_exists("a1")
    client.close()


def test_failed_alias_batch_changes_nothing(client):
    client.create_collection("alias_atomic", vectors_config=models.VectorParams(size=2, distance="Dot"))
    with pytest.raises(UnexpectedResponse) as refused:
        client.update_collection_aliases(
            change_aliases_operations=[
                models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name="alias_atomic", alias_name="ok_alias")),
                models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name="no_such_alias")),
            ]
        )
    assert refused.value.status_code == 404, refused.value
    assert "ok_alias" not in {a.alias_name for a in client.get_aliases().aliases}


def test_responses_validate_against_models(http):
    assert http.put("/collections/shapes", json={"vectors": {"size": 3, "distance": "Cosine"}}).status_code == 200
    body = http.get("/collections/shapes").json()
    assert body["status"] == "ok" and isinstance(body["time"], float)
    models.CollectionInfo.model_validate(body["result"])
    models.CollectionsResponse.model_validate(http.get("/collections").json()["result"])
    models.CollectionExistence.model_validate(http.get("/collections/shapes/exists").json()["result"])
    models.CollectionsAliasesResponse.model_validate(http.get("/aliases").json()["result"])
    models.CollectionsAliasesResponse.model_validate(http.get("/collections/shapes/aliases").json()["result"])
    models.VersionInfo.model_validate(http.get("/").json())
    models.TelemetryData.model_validate(http.get("/telemetry", params={"details_level": 2}).json()["result"])
    models.LocksOption.model_validate(http.get("/locks").json()["result"])


def test_service_endpoints(http):
    r = http.get("/")
    root = r.json()
    # Qdrant's keys exactly; pydrant's own version travels in a header.
    assert set(root) == {"title", "version", "commit"} and root["version"] == "1.15.5"
    assert root["title"] == "qdrant - vector search engine" and r.headers["x-pydrant-version"]
    for probe in ("/healthz", "/livez", "/readyz"):
        r = http.get(probe)
        assert r.status_code == 200 and "passed" in r.text or "ready" in r.text
    http.put("/collections/metrics_c", json={"vectors": {"size": 2, "distance": "Dot"}})
    # A points request: Qdrant's rest_* metrics list the points endpoints, not collection creation.
    assert http.post("/collections/metrics_c/points/scroll", json={}).status_code == 200
    metrics = http.get("/metrics").text
    assert "collections_total" in metrics and 'pydrant_collection_points{collection="metrics_c"} 0' in metrics
    assert 'rest_responses_total{method="POST",endpoint="/collections/{name}/points/scroll",status="200"}' in metrics
    assert 'pydrant_collection_wal_fsyncs_total{collection="metrics_c"}' in metrics
    assert 'pydrant_collection_wal_appended_records_total{collection="metrics_c"} 0' in metrics
    assert http.get("/issues").json()["result"] == {"issues": []}
    assert http.delete("/issues").json()["result"] is True
    telemetry = http.get("/telemetry", params={"details_level": 1, "anonymize": "true"}).json()["result"]
    assert telemetry["collections"]["number_of_collections"] >= 1
    flags = telemetry["app"]["system"]["cpu_flags"].split(",")
    if platform.machine() == "x86_64":  # every x86_64 CPU has SSE2
        assert "sse2" in flags and set(flags) <= {"sse", "sse2", "avx", "avx2", "fma", "f16c", "avx512f"}
    assert "metrics_c" not in str(telemetry["collections"]["collections"])


def test_write_lock_refuses_writes(http):
    r = http.post("/locks", json={"write": True, "error_message": "maintenance window"})
    assert r.status_code == 200 and r.json()["result"]["write"] is False
    r = http.put("/collections/locked", json={"vectors": {"size": 2, "distance": "Dot"}})
    assert r.status_code == 403 and r.json()["status"]["error"] == "maintenance window"
    assert http.get("/locks").json()["result"] == {"write": True, "error_message": "maintenance window"}
    http.post("/locks", json={"write": False})
    assert http.put("/collections/locked", json={"vectors": {"size": 2, "distance": "Dot"}}).status_code == 200


def test_cors_headers(http):
    r = http.get("/collections", headers={"Origin": "http://example.test"})
    assert r.headers["access-control-allow-origin"] == "http://example.test"
