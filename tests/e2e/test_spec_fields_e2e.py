"""Fields of the v1.15.5 spec that qdrant-client 1.15.1's models lack, sent as raw HTTP.

The server validates requests with models generated from the spec itself
(pydrant/http/spec_models.py), so these must be accepted and must act.
"""

import pytest

pytestmark = pytest.mark.e2e


def ok(response):
    assert response.status_code == 200, response.text
    return response.json()["result"]


def test_collection_fields_newer_than_the_client(http):
    ok(http.put("/collections/spec_new", json={
        "vectors": {"size": 2, "distance": "Dot", "hnsw_config": {"copy_vectors": True}},
        "hnsw_config": {"copy_vectors": False},
        "wal_config": {"wal_retain_closed": 2},
        "strict_mode_config": {"enabled": True, "max_payload_index_count": 7},
        "metadata": {"team": "search", "tags": ["a", "b"]},
    }))
    config = ok(http.get("/collections/spec_new"))["config"]
    assert config["params"]["vectors"]["hnsw_config"]["copy_vectors"] is True
    assert config["hnsw_config"]["copy_vectors"] is False
    assert config["wal_config"]["wal_retain_closed"] == 2
    assert config["strict_mode_config"]["max_payload_index_count"] == 7
    assert config["metadata"] == {"team": "search", "tags": ["a", "b"]}

    ok(http.patch("/collections/spec_new", json={"metadata": {"owner": "x"}}))
    # Qdrant merges metadata keys on update
    assert ok(http.get("/collections/spec_new"))["config"]["metadata"] == {"team": "search", "tags": ["a", "b"], "owner": "x"}


def test_upsert_with_update_filter_only_touches_matching_points(http):
    ok(http.put("/collections/spec_cond", json={"vectors": {"size": 2, "distance": "Dot"}}))
    ok(http.put("/collections/spec_cond/points?wait=true", json={"points": [
        {"id": 1, "vector": [1, 0], "payload": {"version": 1}},
        {"id": 2, "vector": [0, 1], "payload": {"version": 5}},
    ]}))
    ok(http.put("/collections/spec_cond/points?wait=true", json={
        "points": [
            {"id": 1, "vector": [1, 1], "payload": {"version": 2}},
            {"id": 2, "vector": [1, 1], "payload": {"version": 6}},
            {"id": 3, "vector": [1, 1], "payload": {"version": 1}},
        ],
        # only overwrite stored points whose version is older; new points are inserted
        "update_filter": {"must": [{"key": "version", "range": {"lt": 3}}]},
    }))
    points = ok(http.post("/collections/spec_cond/points", json={"ids": [1, 2, 3], "with_payload": True}))
    versions = {p["id"]: p["payload"]["version"] for p in points}
    assert versions == {1: 2, 2: 5, 3: 1}


def test_match_text_any_filter(http):
    ok(http.put("/collections/spec_text", json={"vectors": {"size": 2, "distance": "Dot"}}))
    ok(http.put("/collections/spec_text/points?wait=true", json={"points": [
        {"id": 1, "vector": [1, 0], "payload": {"text": "red apple pie"}},
        {"id": 2, "vector": [0, 1], "payload": {"text": "green pear"}},
        {"id": 3, "vector": [1, 1], "payload": {"text": "blue sky"}},
    ]}))
    result = ok(http.post("/collections/spec_text/points/scroll", json={
        "filter": {"must": [{"key": "text", "match": {"text_any": "apple pear"}}]},
    }))
    assert sorted(p["id"] for p in result["points"]) == [1, 2]


def test_unknown_fields_are_ignored_as_serde_ignores_them(http):
    """Qdrant's request structs do not deny unknown fields: a misspelled key is ignored, not
    refused (only Filter and the payload selectors deny them, see test_parity_requests_e2e)."""
    response = http.put("/collections/spec_bad", json={"vectors": {"size": 2, "distance": "Dot"}, "metadta": {"a": 1}})
    assert response.status_code == 200, response.text
    info = http.get("/collections/spec_bad").json()["result"]
    assert "metadta" not in info["config"] and not info["config"].get("metadata")
    http.delete("/collections/spec_bad")