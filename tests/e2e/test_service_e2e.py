"""`GET /`, `/telemetry` and `/metrics` of a real server, read with plain HTTP and with
qdrant-client 1.15 (docs/observability.md)."""

from __future__ import annotations

import json
import re

import pytest
from prometheus_client.parser import text_string_to_metric_families
from qdrant_client import models as qm
from qdrant_client.http import models

from pydrant import QDRANT_API_VERSION, __version__

pytestmark = pytest.mark.e2e

COLLECTION = "service_e2e"


@pytest.fixture(scope="module")
def filled(server):
    from qdrant_client import QdrantClient

    c = QdrantClient(url=server.url, timeout=30, check_compatibility=True)
    try:
        c.create_collection(COLLECTION, vectors_config=qm.VectorParams(size=4, distance=qm.Distance.COSINE))
        c.upsert(COLLECTION, [qm.PointStruct(id=i, vector=[1.0, i, 0.5, 0.25]) for i in range(1, 11)], wait=True)
        c.query_points(COLLECTION, query=[1.0, 2.0, 0.5, 0.25], limit=3)
        c.scroll(COLLECTION, limit=5)
    finally:
        c.close()
    return server


def test_root_bytes_have_only_qdrants_keys(http):
    r = http.get("/")
    body = json.loads(r.content)
    assert list(body) == ["title", "version", "commit"]
    assert body["title"] == "qdrant - vector search engine" and body["version"] == QDRANT_API_VERSION
    assert r.headers["x-pydrant-version"] == __version__


def test_client_compatibility_check_passes(filled, client):
    assert COLLECTION in {c.name for c in client.get_collections().collections}


def test_client_reads_telemetry_at_every_level(filled, client, http):
    for level in (0, 1, 2, 3, 4):
        result = client.http.service_api.telemetry(details_level=level).result
        assert isinstance(result, models.TelemetryData)
        assert result.app.name == "pydrant" and result.app.version == __version__
        raw = http.get("/telemetry", params={"details_level": level}).json()["result"]
        models.TelemetryData.model_validate(raw)
        collections = raw["collections"].get("collections")
        if level == 0:
            assert collections is None
        elif level == 1:
            assert collections[0]["vectors"] == 10
        else:
            (mine,) = [c for c in collections if c["id"] == COLLECTION]
            assert ("shards" in mine) == (level >= 3)
    responses = raw["requests"]["rest"]["responses"]
    assert responses["POST /collections/{name}/points/query"]["200"]["count"] == 1
    assert responses["PUT /collections/{name}/points"]["200"]["count"] == 1
    assert not any(COLLECTION in key for key in responses)


def test_anonymized_telemetry_names_no_collection(filled, http):
    raw = http.get("/telemetry", params={"details_level": 3, "anonymize": "true"}).json()["result"]
    models.TelemetryData.model_validate(raw)
    assert COLLECTION not in json.dumps(raw)
    assert all(re.fullmatch(r"\d+", c["id"]) for c in raw["collections"]["collections"])


def test_metrics_parse_and_carry_qdrants_families(filled, http):
    r = http.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(r.text)}
    for name in ("app_info", "app_status_recovery_mode", "collections_total", "collections_vector_total",
                 "cluster_enabled", "rest_responses", "rest_responses_fail", "rest_responses_avg_duration_seconds",
                 "rest_responses_duration_seconds", "memory_resident_bytes", "pydrant_info",
                 "pydrant_collection_points"):
        assert name in families, name
    assert "# HELP app_info information about qdrant server\n# TYPE app_info gauge\n" in r.text
    assert "# TYPE rest_responses_duration_seconds histogram\n" in r.text
    endpoints = {s.labels["endpoint"] for s in families["rest_responses"].samples}
    assert {"/collections/{name}/points/query", "/collections/{name}/points/scroll",
            "/collections/{name}/points"} <= endpoints
    assert not any(COLLECTION in e for e in endpoints)
    points = {s.labels["collection"]: s.value for s in families["pydrant_collection_points"].samples}
    assert points[COLLECTION] == 10
    assert "collections_total" in http.get("/metrics", params={"anonymize": "true"}).text
