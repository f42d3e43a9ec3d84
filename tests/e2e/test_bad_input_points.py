"""Issue 3 bad input: 4xx with a message, and nothing of the request reaches the WAL."""

import pytest

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def col(server):
    import httpx

    httpx.put(server.url + "/collections/bad_points", json={
        "vectors": {"d": {"size": 3, "distance": "Dot"}}, "sparse_vectors": {"s": {}}
    }).raise_for_status()
    httpx.put(server.url + "/collections/bad_points/points?wait=true",
              json={"points": [{"id": 1, "vector": {"d": [1, 2, 3]}, "payload": {"a": 1}}]}).raise_for_status()
    return "bad_points"


def assert_rejected(http, col, response, status, fragment):
    assert response.status_code == status, response.text
    assert fragment in response.json()["status"]["error"]
    # the stored state is unchanged: one point, as written by the fixture
    assert http.post(f"/collections/{col}/points/count", json={}).json()["result"]["count"] == 1
    point = http.get(f"/collections/{col}/points/1").json()["result"]
    assert point["payload"] == {"a": 1} and point["vector"]["d"] == [1.0, 2.0, 3.0]


def upsert(http, col, points):
    return http.put(f"/collections/{col}/points?wait=true", json={"points": points})


def test_wrong_dimension(http, col):
    assert_rejected(http, col, upsert(http, col, [{"id": 2, "vector": {"d": [1, 2]}}]), 400, "expected dim: 3, got 2")


def test_unknown_vector_name(http, col):
    assert_rejected(http, col, upsert(http, col, [{"id": 2, "vector": {"nope": [1, 2, 3]}}]), 400, "nope")


def test_duplicate_sparse_indices(http, col):
    r = upsert(http, col, [{"id": 2, "vector": {"s": {"indices": [1, 1], "values": [0.1, 0.2]}}}])
    assert_rejected(http, col, r, 400, "unique")


def test_sparse_length_mismatch(http, col):
    r = upsert(http, col, [{"id": 2, "vector": {"s": {"indices": [1, 2], "values": [0.1]}}}])
    assert_rejected(http, col, r, 400, "same length")


def test_non_finite_values(http, col):
    r = http.put(f"/collections/{col}/points?wait=true", content=b'{"points": [{"id": 2, "vector": {"d": [1, NaN, 3]}}]}',
                 headers={"content-type": "application/json"})
    assert_rejected(http, col, r, 400, "Format error in JSON body")
    r = upsert(http, col, [{"id": 2, "vector": {"d": [1, 1e39, 3]}}])  # overflows float32
    assert_rejected(http, col, r, 400, "infinite")


@pytest.mark.parametrize("bad_id", [-1, 2**64, "not-a-uuid", 1.5, True])
def test_invalid_point_ids(http, col, bad_id):
    assert_rejected(http, col, upsert(http, col, [{"id": bad_id, "vector": {}}]), 400, "id")


def test_malformed_filter(http, col):
    r = http.post(f"/collections/{col}/points/delete?wait=true", json={"filter": {"must": [{"key": "a", "match": {"bogus": 1}}]}})
    assert_rejected(http, col, r, 400, "Format error in JSON body")
    r = http.post(f"/collections/{col}/points/scroll", json={"filter": {"must": [{"key": "a", "range": {"gt": "x"}}]}})
    assert r.status_code == 400


def test_bad_payload_key_path(http, col):
    r = http.post(f"/collections/{col}/points/payload?wait=true", json={"payload": {"x": 1}, "points": [1], "key": "a..b"})
    assert_rejected(http, col, r, 400, "a..b")


def test_batch_with_one_bad_operation_is_rejected_whole(http, col):
    r = http.post(f"/collections/{col}/points/batch?wait=true", json={"operations": [
        {"upsert": {"points": [{"id": 5, "vector": {"d": [1, 1, 1]}}]}},
        {"set_payload": {"payload": {"a": 2}, "points": [1]}},
        {"upsert": {"points": [{"id": 6, "vector": {"d": [1, 1]}}]}},
    ]})
    assert_rejected(http, col, r, 400, "expected dim: 3, got 2")


def test_missing_point_for_payload_update(http, col):
    r = http.post(f"/collections/{col}/points/payload?wait=true", json={"payload": {"x": 1}, "points": [12345]})
    assert_rejected(http, col, r, 404, "12345")


def test_unknown_collection(http):
    r = http.put("/collections/no_such/points", json={"points": []})
    assert r.status_code == 404 and "doesn't exist" in r.json()["status"]["error"]


def test_unknown_fields_in_points_are_ignored_and_vectors_is_an_alias(http, col):
    both = upsert(http, col, [{"id": 4, "vector": {"d": [1, 2, 3]}, "vectors": {"d": [1, 2, 3]}}])
    assert_rejected(http, col, both, 400, "duplicate field `vector`")
    # Qdrant's PointStruct ignores unknown keys and takes `vectors` as an alias of `vector`.
    points = [{"id": 2, "vectors": {"d": [1, 2, 3]}, "colour": "red"}, {"id": 3, "vector": {"d": [1, 0, 0]}, "x": 1}]
    r = http.put(f"/collections/{col}/points?wait=true", json={"points": points, "unknown_top_level": True})
    assert r.status_code == 200, r.text
    got = http.post(f"/collections/{col}/points", json={"ids": [2, 3], "with_vector": True, "with_payload": True})
    records = got.json()["result"]
    assert [p["id"] for p in records] == [2, 3] and all(p["payload"] == {} for p in records)
    assert records[0]["vector"] == {"d": [1.0, 2.0, 3.0]}
    http.post(f"/collections/{col}/points/delete?wait=true", json={"points": [2, 3]})