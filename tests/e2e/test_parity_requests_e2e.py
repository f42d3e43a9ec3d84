"""Qdrant parity of request handling on the wire (issue 14), against a real server.

Unknown fields: Qdrant's request structs do not deny unknown fields, so serde ignores a
misspelled or newer key and the request works; only Filter and the payload selectors
(`#[serde(deny_unknown_fields)]`) refuse one (400). Serde aliases (`with_vectors`, `top`,
`vectors`) are accepted. Validation failures are 422 with Qdrant's
"Validation error in <part>: [field: message]".
"""

import pytest

DIM = 4


@pytest.fixture(scope="module")
def col(server):
    import httpx

    name = "parity_req"
    with httpx.Client(base_url=server.url, timeout=30) as h:
        r = h.put(f"/collections/{name}", json={"vectors": {"size": DIM, "distance": "Dot"}, "quantization": {"x": 1}})
        assert r.status_code == 200, r.text
        points = [{"id": i, "vector": [float(i), 1.0, 0.0, 0.0], "payload": {"k": "a" if i % 2 else "b", "n": i}}
                  for i in range(1, 7)]
        r = h.put(f"/collections/{name}/points?wait=true", json={"points": points})
        assert r.status_code == 200, r.text
    return name


def error_of(response, status):
    assert response.status_code == status, response.text
    return response.json()["status"]["error"]


def result_of(response):
    assert response.status_code == 200, response.text
    return response.json()["result"]


def test_unknown_top_level_key_in_create_collection_is_ignored(http, col):
    config = result_of(http.get(f"/collections/{col}"))["config"]
    assert "quantization" not in config and config["quantization_config"] is None


@pytest.mark.parametrize("endpoint,body", [
    ("recommend", {"positive": [1], "limit": 2, "exact": True}),
    ("search", {"vector": [1, 0, 0, 0], "limit": 2, "colour": "red"}),
    ("scroll", {"limit": 2, "with_vectors": True, "unknown": {"a": 1}}),
    ("count", {"exact": True, "approx": 1}),
    ("query", {"query": {"nearest": [1, 0, 0, 0], "extra": 1}, "limit": 2}),
    ("query", {"query": {"formula": "$score", "bogus": 1}, "prefetch": {"query": [1, 0, 0, 0], "limit": 3}}),
    ("query", {"query": [1, 0, 0, 0], "filter": {"must": [{"key": "k", "match": {"value": "a", "x": 1}, "y": 2}]}}),
    ("recommend/groups", {"positive": [1], "group_by": "k", "group_size": 2, "limit": 2, "strategy": "best_score",
                          "with_lookup": {"collection": "parity_req", "with_vector": True, "extra": 1}}),
])
def test_unknown_fields_are_ignored_and_the_request_works(http, col, endpoint, body):
    result_of(http.post(f"/collections/{col}/points/{endpoint}", json=body))


def test_serde_aliases(http, col):
    hits = result_of(http.post(f"/collections/{col}/points/search", json={"vector": [1, 0, 0, 0], "top": 2,
                                                                            "with_vectors": True}))
    assert len(hits) == 2 and all("vector" in h for h in hits)
    points = result_of(http.post(f"/collections/{col}/points/query", json={"query": [1, 0, 0, 0], "limit": 1,
                                                                            "with_vectors": True}))["points"]
    assert "vector" in points[0]
    groups = result_of(http.post(f"/collections/{col}/points/search/groups", json={
        "vector": [1, 0, 0, 0], "group_by": "k", "group_size": 1, "limit": 2,
        "with_lookup": {"collection": col, "with_vector": True}}))["groups"]
    assert groups and all("vector" in g["lookup"] for g in groups if "lookup" in g)


@pytest.mark.parametrize("body,fragment", [
    ({"filter": {"must": [], "shuld": []}}, "shuld"),
    ({"with_payload": {"include": ["k"], "x": 1}}, "with_payload"),
])
def test_structs_that_deny_unknown_fields_refuse_them(http, col, body, fragment):
    assert fragment in error_of(http.post(f"/collections/{col}/points/scroll", json=body), 400)
