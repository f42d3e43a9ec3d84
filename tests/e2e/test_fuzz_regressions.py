"""Requests that made the server answer 500, found by fuzzing (tests/fuzz): each must get a
4xx in Qdrant's error envelope, or work. One test per root cause."""

import pytest

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def cols(server):
    import httpx

    httpx.put(server.url + "/collections/fz_plain", json={"vectors": {"size": 2, "distance": "Dot"}}).raise_for_status()
    httpx.put(server.url + "/collections/fz_named", json={
        "vectors": {"image": {"size": 2, "distance": "Dot"}}, "sparse_vectors": {"sparse": {}},
    }).raise_for_status()
    httpx.put(server.url + "/collections/fz_named/points?wait=true", json={"points": [
        {"id": 1, "vector": {"image": [1, 0], "sparse": {"indices": [1], "values": [1.0]}}, "payload": {"a": 1}},
        {"id": 2, "vector": {"image": [0, 1], "sparse": {"indices": [2], "values": [1.0]}}},
    ]}).raise_for_status()
    return "fz_plain", "fz_named"


def assert_4xx(response, fragment: str = ""):
    assert 400 <= response.status_code < 500, response.text
    body = response.json()
    assert set(body) == {"status", "time"} and isinstance(body["status"]["error"], str)
    assert fragment in body["status"]["error"]


def count(http, col) -> int:
    return http.post(f"/collections/{col}/points/count", json={}).json()["result"]["count"]


# -- columnar upsert with a column that is not a list --------------------------------------

BAD_BATCHES = [
    ({"ids": [1], "vectors": [[1, 2]], "payloads": 0}, "payloads"),
    ({"ids": [1], "vectors": [[1, 2]], "payloads": "x"}, "payloads"),
    ({"ids": [1], "vectors": [[1, 2]], "payloads": {"a": 1}}, "payloads"),
    ({"ids": [1], "vectors": {"image": None}}, "image"),
    ({"ids": [1], "vectors": {"image": 5}}, "image"),
    ({"ids": [1], "vectors": {"image": {"indices": [1], "values": [1.0]}}}, "image"),
    ({"ids": 0, "vectors": [[1, 2]]}, "ids"),
    ({"ids": "ab", "vectors": [[1, 2]]}, "ids"),
    ({"ids": [1], "vectors": 7}, "vectors"),
]


@pytest.mark.parametrize("batch,fragment", BAD_BATCHES)
@pytest.mark.parametrize("which", [0, 1])
def test_batch_column_not_a_list_is_400(http, cols, which, batch, fragment):
    col = cols[which]
    before = count(http, col)
    assert_4xx(http.put(f"/collections/{col}/points?wait=true", json={"batch": batch}), fragment)
    r = http.post(f"/collections/{col}/points/batch?wait=true", json={"operations": [{"upsert": {"batch": batch}}]})
    assert_4xx(r, fragment)
    assert count(http, col) == before


def test_batch_with_null_payloads_in_the_column_still_works(http, cols):
    r = http.put("/collections/fz_plain/points?wait=true",
                 json={"batch": {"ids": [10, 11], "vectors": [[1, 2], [3, 4]], "payloads": [None, {"k": 1}]}})
    assert r.status_code == 200, r.text
    assert http.get("/collections/fz_plain/points/11").json()["result"]["payload"] == {"k": 1}


# -- a sparse (bare) query in /points/query/batch ---------------------------------------------


@pytest.mark.parametrize("query", [
    {"indices": [1, 2], "values": [0.5, 0.5]},
    {"nearest": {"indices": [1, 2], "values": [0.5, 0.5]}},
])
def test_query_batch_with_sparse_query_answers_as_query_does(http, cols, query):
    single = http.post("/collections/fz_named/points/query", json={"query": query, "using": "sparse"})
    assert single.status_code == 200, single.text
    batch = http.post("/collections/fz_named/points/query/batch",
                      json={"searches": [{"query": query, "using": "sparse"}, {"query": [1, 0], "using": "image"}]})
    assert batch.status_code == 200, batch.text
    first = batch.json()["result"][0]["points"]
    assert [(p["id"], p["score"]) for p in first] == [(p["id"], p["score"]) for p in single.json()["result"]["points"]]
    assert [p["id"] for p in first] == [1, 2]


# -- JSON nested deeper than Qdrant's parser allows -------------------------------------------
# serde_json (Qdrant's parser) stops at 128 levels: 400 "recursion limit exceeded". pydrant
# parsed up to orjson's 1024, and deep values then broke pydantic's serializer, the formula
# compiler (RecursionError) or, for a stored payload, every later read of the point.


def nested(depth: int, leaf: str = "1", key: str = "a") -> str:
    return f'{{"{key}":' * depth + leaf + "}" * depth


def post_raw(http, method, path, text):
    return http.request(method, path, content=text.encode(), headers={"content-type": "application/json"})


@pytest.mark.parametrize("method,path,body", [
    ("PUT", "/collections/fz_plain/points?wait=true", '{"points": [{"id": 7, "vector": [1, 2], "payload": %s}]}'),
    ("PUT", "/collections/fz_plain/points?wait=true", '{"batch": {"ids": [7], "vectors": [[1, 2]], "payloads": [%s]}}'),
    ("POST", "/collections/fz_plain/points/payload?wait=true", '{"points": [1], "payload": %s}'),
    ("POST", "/collections/fz_plain/points/batch?wait=true", '{"operations": [{"set_payload": {"points": [1], "payload": %s}}]}'),
    ("POST", "/collections/fz_plain/points/scroll", '{"filter": {"must": [{"key": "a", "match": {"value": 1}}]}, "x": %s}'),
])
@pytest.mark.parametrize("depth", [200, 600])
def test_json_nested_too_deep_is_400(http, cols, method, path, body, depth):
    before = count(http, "fz_plain")
    assert_4xx(post_raw(http, method, path, body % nested(depth)), "recursion limit exceeded")
    assert count(http, "fz_plain") == before


@pytest.mark.parametrize("depth", [200, 600])
def test_deep_formula_is_400(http, cols, depth):
    formula = '{"neg":' * depth + "1" + "}" * depth
    r = post_raw(http, "POST", "/collections/fz_plain/points/query",
                 '{"prefetch": {"query": [1, 2]}, "query": {"formula": ' + formula + "}}")
    assert_4xx(r, "recursion limit exceeded")


def test_payload_nested_just_within_the_limit_is_stored_and_read_back(http, cols):
    # the body's own levels: {"points": [{"payload": ...}]} is 3, so the payload may have 124
    payload = nested(123)
    r = post_raw(http, "PUT", "/collections/fz_plain/points?wait=true",
                 '{"points": [{"id": 8, "vector": [1, 2], "payload": ' + payload + "}]}")
    assert r.status_code == 200, r.text
    got = http.get("/collections/fz_plain/points/8")
    assert got.status_code == 200, got.text
    depth, value = 0, got.json()["result"]["payload"]
    while isinstance(value, dict):
        depth, value = depth + 1, value["a"]
    assert depth == 123
    r = post_raw(http, "POST", "/collections/fz_plain/points/payload?wait=true", '{"points": [8], "payload": ' + payload + "}")
    assert r.status_code == 200, r.text
    formula = '{"neg":' * 120 + "1" + "}" * 120
    r = post_raw(http, "POST", "/collections/fz_plain/points/query",
                 '{"prefetch": {"query": [1, 2]}, "query": {"formula": ' + formula + "}}")
    assert r.status_code == 200, r.text
