"""`GET /`, `/telemetry` and `/metrics` as Qdrant 1.15 answers them (docs/observability.md),
in-process through Quart's test client: Qdrant's keys, sections per details level,
anonymization, metric names, HELP texts, types and labels."""

from __future__ import annotations

import json
import re
from contextlib import asynccontextmanager
from pathlib import Path

import jsonschema_rs
import pytest
from prometheus_client.parser import text_string_to_metric_families
from qdrant_client.http import models

from pydrant import QDRANT_API_VERSION, __version__
from pydrant.config import load_settings
from pydrant.http.app import create_app
from pydrant.http.metrics import (
    REST_ENDPOINT_WHITELIST,
    DurationStats,
    anonymize_count,
    format_value,
    route_pattern,
)
from pydrant.http.service import anonymize_string, siphash

SPEC = Path(__file__).resolve().parents[2] / "spec" / "qdrant-openapi-v1.15.5.json"
COLLECTION = "telemetry_c"


@asynccontextmanager
async def running_app(tmp_path: Path, **overrides):
    settings = load_settings(
        env={},
        overrides={"storage.storage_path": str(tmp_path / "storage"), "storage.snapshots_path": str(tmp_path / "snap"),
                   **overrides},
    )
    app = create_app(settings)
    async with app.test_app() as test_app:
        yield test_app.test_client()


async def json_of(response):
    return json.loads(await response.get_data())


async def with_points(client):
    r = await client.put(f"/collections/{COLLECTION}", json={"vectors": {"size": 2, "distance": "Dot"}})
    assert r.status_code == 200
    points = [{"id": i, "vector": [1.0, float(i)]} for i in range(1, 4)]
    r = await client.put(f"/collections/{COLLECTION}/points?wait=true", json={"points": points})
    assert r.status_code == 200
    r = await client.post(f"/collections/{COLLECTION}/points/search", json={"vector": [1, 1], "limit": 2})
    assert r.status_code == 200


def _openapi_to_jsonschema(node):
    """OpenAPI 3.0 `nullable: true` as JSON Schema (`type: [T, "null"]`)."""
    if isinstance(node, dict):
        node = {key: _openapi_to_jsonschema(value) for key, value in node.items()}
        if node.pop("nullable", False) and "type" in node:
            node["type"] = [node["type"], "null"]
        node.pop("example", None)
        return node
    if isinstance(node, list):
        return [_openapi_to_jsonschema(item) for item in node]
    return node


@pytest.fixture(scope="module")
def telemetry_validator():
    spec = json.loads(SPEC.read_text())
    schema = {"$ref": "#/components/schemas/TelemetryData", "components": _openapi_to_jsonschema(spec["components"])}
    return jsonschema_rs.validator_for(schema)


def check_telemetry(result: dict, validator) -> None:
    validator.validate(result)
    models.TelemetryData.model_validate(result)


# -- GET / ---------------------------------------------------------------------------------


async def test_root_has_exactly_qdrants_keys(tmp_path):
    async with running_app(tmp_path) as client:
        r = await client.get("/")
        body = await json_of(r)
    assert set(body) == {"title", "version", "commit"}
    assert body["title"] == "qdrant - vector search engine"
    assert body["version"] == QDRANT_API_VERSION == "1.15.5"
    assert body["commit"] is None or re.fullmatch(r"[0-9a-f]{7,40}", body["commit"])
    assert r.headers["x-pydrant-version"] == __version__
    models.VersionInfo.model_validate(body)


async def test_every_response_names_pydrants_version(tmp_path):
    async with running_app(tmp_path) as client:
        for path in ("/healthz", "/telemetry", "/metrics", "/collections/missing", "/no/such/route"):
            r = await client.get(path)
            assert r.headers["x-pydrant-version"] == __version__, path


# -- /telemetry ----------------------------------------------------------------------------


async def test_details_level_adds_what_qdrant_adds(tmp_path, telemetry_validator):
    async with running_app(tmp_path) as client:
        await with_points(client)
        levels = {}
        for level in (0, 1, 2, 3, 10):
            r = await client.get(f"/telemetry?details_level={level}")
            assert r.status_code == 200
            levels[level] = (await json_of(r))["result"]
    for result in levels.values():
        check_telemetry(result, telemetry_validator)
        assert set(result) <= {"id", "app", "collections", "cluster", "requests", "memory", "hardware"}
        assert result["app"]["name"] == "pydrant" and result["app"]["version"] == __version__
        assert result["collections"]["number_of_collections"] == 1
        assert result["requests"]["grpc"] == {"responses": {}}

    zero = levels[0]
    assert set(zero) == {"id", "app", "collections", "cluster", "requests"}
    assert set(zero["app"]) == {"name", "version", "startup"}
    assert "collections" not in zero["collections"]
    assert zero["cluster"] == {"enabled": False}
    search = zero["requests"]["rest"]["responses"]["POST /collections/{name}/points/search"]["200"]
    assert set(search) == {"count", "avg_duration_micros"}  # min/max/total/last from level 1

    one = levels[1]
    assert {"features", "system"} <= set(one["app"])
    assert one["app"]["features"]["recovery_mode"] is False
    assert {"memory", "hardware"} <= set(one)
    (aggregated,) = one["collections"]["collections"]
    assert set(aggregated) == {"vectors", "optimizers_status", "params"}
    assert aggregated["vectors"] == 3 and aggregated["optimizers_status"] == "ok"
    search = one["requests"]["rest"]["responses"]["POST /collections/{name}/points/search"]["200"]
    assert {"min_duration_micros", "max_duration_micros", "total_duration_micros", "last_responded"} <= set(search)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z", search["last_responded"])

    (full,) = levels[2]["collections"]["collections"]
    assert full["id"] == COLLECTION and "shards" not in full
    assert set(full["config"]) >= {"params", "hnsw_config", "optimizer_config", "wal_config"}
    assert "config" in levels[2]["cluster"]

    for level in (3, 10):
        (full,) = levels[level]["collections"]["collections"]
        (shard,) = full["shards"]
        assert shard["local"]["num_points"] == 3 and shard["local"]["status"] == "green"
        assert full["transfers"] == [] and full["resharding"] == []


async def test_requests_are_keyed_by_route_pattern_never_the_raw_path(tmp_path):
    async with running_app(tmp_path) as client:
        await with_points(client)
        await client.get(f"/collections/{COLLECTION}/points/2")
        await client.get("/collections/absent")
        await client.get("/no/such/route")
        result = (await json_of(await client.get("/telemetry")))["result"]
    responses = result["requests"]["rest"]["responses"]
    assert responses["GET /collections/{name}/points/{id}"]["200"]["count"] == 1
    assert responses["GET /collections/{name}"]["404"]["count"] == 1
    assert "GET unknown" in responses
    assert all(COLLECTION not in key and "absent" not in key for key in responses)
    assert all(re.fullmatch(r"[A-Z]+ (/\S*|unknown)", key) for key in responses)


async def test_anonymize_hashes_names_as_qdrant_does(tmp_path, telemetry_validator):
    async with running_app(tmp_path) as client:
        await with_points(client)
        plain = (await json_of(await client.get("/telemetry?details_level=3")))["result"]
        hidden = (await json_of(await client.get("/telemetry?details_level=3&anonymize=true")))["result"]
    check_telemetry(hidden, telemetry_validator)
    assert COLLECTION not in json.dumps(hidden)
    (collection,) = hidden["collections"]["collections"]
    assert collection["id"] == anonymize_string(COLLECTION)
    assert re.fullmatch(r"\d+", collection["id"])
    assert collection["config"]["uuid"] is None and "metadata" not in collection["config"]
    # what Qdrant leaves alone: the node id, versions, endpoint names, settings
    assert hidden["id"] == plain["id"]
    assert hidden["app"]["version"] == plain["app"]["version"]
    assert set(hidden["requests"]["rest"]["responses"]) >= set(plain["requests"]["rest"]["responses"]) - {"GET /telemetry"}
    assert hidden["collections"]["number_of_collections"] == 1


async def test_bad_details_level_is_400(tmp_path):
    async with running_app(tmp_path) as client:
        assert (await client.get("/telemetry?details_level=x")).status_code == 400
        assert (await client.get("/telemetry?details_level=-1")).status_code == 400
        assert (await client.get("/telemetry?anonymize=maybe")).status_code == 400


# -- /metrics ------------------------------------------------------------------------------

QDRANT_HELP = {
    "app_info": ("information about qdrant server", "gauge"),
    "app_status_recovery_mode": ("features enabled in qdrant server", "gauge"),
    "collections_total": ("number of collections", "gauge"),
    "collections_vector_total": ("total number of vectors in all collections", "gauge"),
    "optimizer_running_processes": ("number of currently running optimization processes", "gauge"),
    "cluster_enabled": ("is cluster support enabled", "gauge"),
    "rest_responses_total": ("total number of responses", "counter"),
    "rest_responses_fail_total": ("total number of failed responses", "counter"),
    "rest_responses_avg_duration_seconds": ("average response duration", "gauge"),
    "rest_responses_min_duration_seconds": ("minimum response duration", "gauge"),
    "rest_responses_max_duration_seconds": ("maximum response duration", "gauge"),
    "rest_responses_duration_seconds": ("response duration histogram", "histogram"),
    "memory_active_bytes": ("Total number of bytes in active pages allocated by the application", "gauge"),
    "memory_allocated_bytes": ("Total number of bytes allocated by the application", "gauge"),
    "memory_metadata_bytes": ("Total number of bytes dedicated to metadata", "gauge"),
    "memory_resident_bytes": ("Maximum number of bytes in physically resident data pages mapped", "gauge"),
    "memory_retained_bytes": ("Total number of bytes in virtual memory mappings", "gauge"),
}
QDRANT_BUCKETS = ["0.001", "0.005", "0.01", "0.02", "0.05", "0.1", "0.5", "1", "5", "10", "50", "+Inf"]


def help_and_type(text: str) -> dict:
    helps = dict(re.findall(r"^# HELP (\S+) (.*)$", text, re.M))
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
    return {name: (helps[name], types[name]) for name in helps}


async def test_metrics_have_qdrants_names_help_types_and_labels(tmp_path):
    async with running_app(tmp_path) as client:
        await with_points(client)
        await client.get("/collections")  # not on Qdrant's whitelist
        r = await client.get("/metrics")
        text = (await r.get_data()).decode()
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    families = help_and_type(text)
    for name, expected in QDRANT_HELP.items():
        assert families.get(name) == expected, name
    assert list(text_string_to_metric_families(text))  # valid exposition format

    assert f'app_info{{name="pydrant",version="{__version__}"}} 1\n' in text
    assert "\ncollections_total 1\n" in text and "\ncollections_vector_total 3\n" in text
    assert "\ncluster_enabled 0\n" in text and "\napp_status_recovery_mode 0\n" in text
    labels = '{method="POST",endpoint="/collections/{name}/points/search",status="200"}'
    assert f"rest_responses_total{labels} 1\n" in text
    assert f"rest_responses_fail_total{labels} 0\n" in text
    buckets = re.findall(
        r'^rest_responses_duration_seconds_bucket\{method="POST",endpoint="/collections/\{name\}/points/search",'
        r'status="200",le="([^"]+)"\} \d+$', text, re.M)
    assert buckets == QDRANT_BUCKETS
    assert f"rest_responses_duration_seconds_count{labels} 1\n" in text
    # every endpoint label is a whitelisted route pattern, never a raw path
    endpoints = set(re.findall(r'endpoint="([^"]+)"', text))
    assert endpoints and endpoints <= REST_ENDPOINT_WHITELIST
    assert COLLECTION not in "".join(endpoints)
    assert 'endpoint="/collections"' not in text and "/metrics" not in endpoints
    # no gRPC server, no gRPC responses: Qdrant writes no grpc_* family then
    assert "grpc_" not in text
    # pydrant's own metrics carry its prefix; nothing else is unprefixed
    assert f'pydrant_info{{version="{__version__}",qdrant_api_version="{QDRANT_API_VERSION}"}} 1' in text
    assert f'pydrant_collection_points{{collection="{COLLECTION}"}} 3' in text
    assert f'pydrant_collection_wal_fsyncs_total{{collection="{COLLECTION}"}}' in text
    assert f'pydrant_collection_wal_appended_records_total{{collection="{COLLECTION}"}} 1' in text  # the upsert
    assert set(families) - set(QDRANT_HELP) == {
        "pydrant_info", "pydrant_collection_points", "pydrant_collection_wal_fsyncs_total",
        "pydrant_collection_wal_appended_records_total",
    }


async def test_metrics_timings_only_for_status_200(tmp_path):
    async with running_app(tmp_path) as client:
        await with_points(client)
        r = await client.post("/collections/absent/points/search", json={"vector": [1, 1], "limit": 1})
        assert r.status_code == 404
        text = (await (await client.get("/metrics")).get_data()).decode()
    labels = '{method="POST",endpoint="/collections/{name}/points/search",status="404"}'
    assert f"rest_responses_total{labels} 1\n" in text
    assert f"rest_responses_avg_duration_seconds{labels}" not in text
    assert "status=\"404\",le=" not in text


async def test_fresh_server_has_no_rest_families(tmp_path):
    async with running_app(tmp_path) as client:
        text = (await (await client.get("/metrics")).get_data()).decode()
    assert "rest_responses" not in text and "\ncollections_total 0\n" in text
    assert "pydrant_collection_points" not in text  # no collections, no samples, no family


async def test_metrics_anonymize(tmp_path):
    async with running_app(tmp_path) as client:
        await with_points(client)
        r = await client.get("/metrics?anonymize=true")
        text = (await r.get_data()).decode()
    assert r.status_code == 200 and "\ncollections_vector_total 3\n" in text


# -- the pieces ----------------------------------------------------------------------------


def test_route_pattern_is_qdrants_actix_pattern():
    assert route_pattern("/collections/<name>/points/search") == "/collections/{name}/points/search"
    assert route_pattern("/collections/<name>/points/<point_id>") == "/collections/{name}/points/{id}"
    assert route_pattern("/collections/<name>/index/<path:field_name>") == "/collections/{name}/index/{field_name}"
    assert route_pattern("/") == "/"
    assert route_pattern("unmatched") == "unknown"
    assert route_pattern(None) == "unknown"


def test_siphash_matches_the_reference_and_rusts_default_hasher_variant():
    key = bytes(range(16))
    k0, k1 = int.from_bytes(key[:8], "little"), int.from_bytes(key[8:], "little")
    # SipHash-2-4 test vectors of the reference implementation
    assert siphash(b"", k0, k1, 2, 4) == 0x726FDB47DD0E0E31
    assert siphash(bytes(range(8)), k0, k1, 2, 4) == 0x93F5F5799A932462
    assert siphash(bytes(range(15)), k0, k1, 2, 4) == 0xA129CA6149BE45E5
    # Qdrant hashes a string with SipHash-1-3, zero keys, over its bytes and 0xff
    assert anonymize_string("abc") == str(siphash(b"abc\xff"))
    assert anonymize_string("abc") != anonymize_string("abd")


def test_anonymize_count_keeps_about_five_digits():
    assert anonymize_count(0) == 0
    assert anonymize_count(12345) == 12345
    assert anonymize_count(123456) == 123450
    assert anonymize_count(99999) == 99990  # log10 rounds to 5
    assert anonymize_count(98765432) == 98760000


def test_average_is_qdrants_smoothed_mean():
    stats = DurationStats()
    for seconds in (0.0001, 0.0002, 0.0003):
        stats.add(seconds)
    # sliding means (window 8): 100, 150, 200 -> mean 150
    assert stats.average_micros() == pytest.approx(150.0)
    s = stats.statistics(detailed=True)
    assert s["count"] == 3 and s["min_duration_micros"] == 100 and s["max_duration_micros"] == 300
    assert s["total_duration_micros"] == 600 and "fail_count" not in s
    assert stats.histogram()[0] == (0.001, 3)


def test_values_print_as_rust_prints_f64():
    assert [format_value(v) for v in (1, 1.0, 0.5, 0.00001, 50.0, 123456789)] == [
        "1", "1", "0.5", "0.00001", "50", "123456789",
    ]
