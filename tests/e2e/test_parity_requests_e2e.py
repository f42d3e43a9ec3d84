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


def test_field_condition_with_only_a_key_is_422(http, col):
    message = error_of(http.post(f"/collections/{col}/points/scroll", json={"filter": {"must": [{"key": "k"}]}}), 422)
    assert message == "Validation error in JSON body: [filter.must[0]: At least one field condition must be specified]"


def test_sparse_indices_and_values_of_different_lengths_is_422(http, col):
    body = {"query": {"indices": [1, 2], "values": [0.5]}, "limit": 1}
    message = error_of(http.post(f"/collections/{col}/points/query", json=body), 422)
    assert message.startswith("Validation error in JSON body: [query.values: ")
    assert "must be the same length as indices" in message


@pytest.mark.parametrize("path", ["points/search", "points/query", "points/scroll", "points/count"])
def test_read_timeout_zero_is_serdes_nonzero_error(http, col, path):
    body = {"vector": [1, 0, 0, 0], "limit": 1} if path == "points/search" else {}
    message = error_of(http.post(f"/collections/{col}/{path}?timeout=0", json=body), 400)
    assert message == "Deserialize error in query parameters: timeout: invalid value: integer `0`, expected a nonzero u64"
    assert "invalid digit" in error_of(http.post(f"/collections/{col}/{path}?timeout=-1", json=body), 400)
    result_of(http.post(f"/collections/{col}/{path}?timeout=5", json=body))


def test_collection_timeout_zero_is_422(http, col):
    message = error_of(http.patch(f"/collections/{col}?timeout=0", json={}), 422)
    assert message == "Validation error in query parameters: [timeout: value 0 invalid, must be 1 or larger]"
    result_of(http.patch(f"/collections/{col}?timeout=5", json={}))


def test_long_collection_name_and_large_vector_size_are_422(http):
    message = error_of(http.put("/collections/" + "n" * 256, json={"vectors": {"size": 2, "distance": "Dot"}}), 422)
    # Qdrant names the path field `name` (CollectionPath); pydrant says `collection_name` (reported)
    assert message.startswith("Validation error in path parameters: [") and "255" in message
    message = error_of(http.put("/collections/too_big", json={"vectors": {"size": 65537, "distance": "Dot"}}), 422)
    assert "vectors.size" in message and "65536" in message
