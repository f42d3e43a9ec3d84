"""Issue 2 bad input: each case gets a 4xx error envelope with a usable message and
changes nothing on disk."""

import pytest

pytestmark = pytest.mark.e2e

GOOD = {"vectors": {"size": 4, "distance": "Cosine"}}


def error_of(response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"status", "time"}
    return body["status"]["error"]


def listed(http) -> list[str]:
    return [c["name"] for c in http.get("/collections").json()["result"]["collections"]]


def test_malformed_json(http):
    message = error_of(http.put("/collections/bad_json", content=b"{not json", headers={"content-type": "application/json"}), 400)
    assert "Format error in JSON body" in message
    assert "bad_json" not in listed(http)


def test_wrong_type(http):
    message = error_of(http.put("/collections/bad_type", json={"vectors": {"size": "four", "distance": "Cosine"}}), 400)
    assert "size" in message
    assert "bad_type" not in listed(http)


def test_unknown_field_is_ignored(http):
    # Qdrant's VectorParams does not deny unknown fields: serde ignores `colour`
    response = http.put("/collections/bad_field", json={"vectors": {"size": 4, "distance": "Cosine", "colour": "red"}})
    assert response.status_code == 200, response.text
    assert "colour" not in http.get("/collections/bad_field").json()["result"]["config"]["params"]["vectors"]
    http.delete("/collections/bad_field")


@pytest.mark.parametrize("size", [0, -3])
def test_non_positive_vector_size(http, size):
    response = http.put("/collections/bad_size", json={"vectors": {"size": size, "distance": "Cosine"}})
    message = error_of(response, 422 if size == 0 else 400)
    assert "size" in message
    assert "bad_size" not in listed(http)


def test_unknown_distance(http):
    message = error_of(http.put("/collections/bad_distance", json={"vectors": {"size": 4, "distance": "Hamming"}}), 400)
    assert "distance" in message and "Cosine" in message


def test_out_of_range_hnsw(http):
    message = error_of(http.put("/collections/bad_hnsw", json={**GOOD, "hnsw_config": {"ef_construct": 1}}), 422)
    assert "hnsw_config.ef_construct" in message


@pytest.mark.parametrize("name", ["a" * 256, "with:colon", "with*star", "quote\"d"])
def test_invalid_collection_names(http, name):
    message = error_of(http.put(f"/collections/{name}", json=GOOD), 422)
    assert "collection_name" in message


def test_already_exists(http):
    assert http.put("/collections/twice", json=GOOD).status_code == 200
    message = error_of(http.put("/collections/twice", json=GOOD), 409)
    assert "already exists" in message


def test_unknown_collection(http):
    assert "doesn't exist" in error_of(http.get("/collections/nope"), 404)
    assert "doesn't exist" in error_of(http.patch("/collections/nope", json={}), 404)
    assert http.delete("/collections/nope").json()["result"] is False
    assert http.get("/collections/nope/exists").json()["result"] == {"exists": False}


def test_patch_unknown_vector_name(http):
    http.put("/collections/patch_me", json=GOOD)
    message = error_of(http.patch("/collections/patch_me", json={"vectors": {"nope": {"on_disk": True}}}), 400)
    assert "nope" in message


def test_alias_to_missing_collection(http):
    body = {"actions": [{"create_alias": {"collection_name": "missing", "alias_name": "x"}}]}
    assert "doesn't exist" in error_of(http.post("/collections/aliases", json=body), 404)


def test_oversized_body(server):
    import httpx

    from serverproc import ServerProcess

    small = ServerProcess(server.storage.parent / "small_storage", extra_env={"PYDRANT__SERVICE__MAX_REQUEST_SIZE_MB": "1"}).start()
    try:
        big = b'{"vectors": {"size": 4, "distance": "Cosine"}, "metadata": {"x": "' + b"a" * (2 * 1024 * 1024) + b'"}}'
        r = httpx.put(small.url + "/collections/huge", content=big, headers={"content-type": "application/json"})
        assert "max_request_size_mb" in error_of(r, 413)
        assert httpx.get(small.url + "/collections/huge/exists").json()["result"] == {"exists": False}
    finally:
        small.stop()


def test_unknown_endpoint_is_404_envelope(http):
    assert "no such endpoint" in error_of(http.get("/no/such/thing"), 404)
