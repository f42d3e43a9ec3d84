"""Strict mode's search limits on the search family (raw HTTP, Qdrant's messages)."""

import pytest

pytestmark = pytest.mark.e2e

STRICT = {"enabled": True, "max_query_limit": 5, "search_allow_exact": False, "search_max_hnsw_ef": 64,
          "search_max_oversampling": 2.0}


@pytest.fixture
def strict_col(http):
    name = "strict_search"
    http.delete(f"/collections/{name}")
    assert http.put(f"/collections/{name}", json={"vectors": {"size": 2, "distance": "Dot"},
                                                  "strict_mode_config": STRICT}).status_code == 200
    points = [{"id": i, "vector": [1.0, float(i)]} for i in range(10)]
    assert http.put(f"/collections/{name}/points?wait=true", json={"points": points}).status_code == 200
    return name


@pytest.mark.parametrize(
    "path, body, message",
    [
        ("search", {"vector": [1, 0], "limit": 6}, 'Limit exceeded 6 > 5 for "limit"'),
        ("query", {"query": [1, 0], "limit": 6}, 'Limit exceeded 6 > 5 for "limit"'),
        ("query", {"prefetch": {"query": [1, 0], "limit": 50}, "query": {"fusion": "rrf"}}, 'Limit exceeded 50 > 5'),
        ("search", {"vector": [1, 0], "limit": 3, "params": {"exact": True}}, "Exact search disabled!"),
        ("recommend", {"positive": [1], "limit": 3, "params": {"hnsw_ef": 65}}, 'Limit exceeded 65 > 64 for "hnsw_ef"'),
        ("query", {"query": [1, 0], "params": {"quantization": {"oversampling": 3.0}}}, '"oversampling"'),
    ],
)
def test_strict_limits_refuse(http, strict_col, path, body, message):
    response = http.post(f"/collections/{strict_col}/points/{path}", json=body)
    assert response.status_code == 400, response.text
    assert message in response.json()["status"]["error"]


def test_strict_limits_allow_within(http, strict_col):
    response = http.post(f"/collections/{strict_col}/points/search",
                         json={"vector": [1, 0], "limit": 5, "params": {"hnsw_ef": 64}})
    assert response.status_code == 200
    assert len(response.json()["result"]) == 5
