"""Issue 14 category 6 over HTTP, against a real server: `init_from` (raw REST and
qdrant-client, errors, durability across a SIGKILL), per-vector configs as GET reports
them and as PATCH changes them, Qdrant's hard limits on create, alias/collection name
clashes and collection metadata merges. In-process detail: tests/storage/test_collection_parity.py."""

import warnings

import httpx
import pytest
from qdrant_client import models

pytestmark = pytest.mark.e2e

VECTORS = {"size": 4, "distance": "Cosine"}


def ok(response):
    assert response.status_code == 200, response.text
    return response.json()["result"]


def error(response, status: int) -> str:
    assert response.status_code == status, response.text
    return response.json()["status"]["error"]


def names(http) -> set[str]:
    return {c["name"] for c in ok(http.get("/collections"))["collections"]}


def scroll_all(http, name: str) -> dict:
    result = ok(http.post(f"/collections/{name}/points/scroll", json={"limit": 10_000, "with_vector": True}))
    return {p["id"]: (p.get("payload"), p.get("vector")) for p in result["points"]}


def seed(http, name: str, n: int = 300, body=None) -> None:
    ok(http.put(f"/collections/{name}", json=body or {"vectors": VECTORS}))
    points = [{"id": i, "vector": [1.0, i / 10, -1.0, 0.5], "payload": {"i": i, "even": i % 2 == 0}} for i in range(n)]
    ok(http.put(f"/collections/{name}/points?wait=true", json={"points": points}))


# -- init_from ------------------------------------------------------------------------------


def test_init_from_copies_points_payloads_and_indexes(http):
    seed(http, "par_src")
    ok(http.put("/collections/par_src/index?wait=true", json={"field_name": "i", "field_schema": "integer"}))
    assert ok(http.put("/collections/par_copy", json={"vectors": VECTORS, "init_from": {"collection": "par_src"}})) is True
    # acknowledged = copied: every point is there at once
    assert ok(http.post("/collections/par_copy/points/count", json={"exact": True}))["count"] == 300
    assert scroll_all(http, "par_copy") == scroll_all(http, "par_src")
    info = ok(http.get("/collections/par_copy"))
    assert info["payload_schema"]["i"]["data_type"] == "integer" and info["payload_schema"]["i"]["points"] == 300
    assert "init_from" not in info["config"] and "init_from" not in info["config"]["params"]
    hits = ok(http.post("/collections/par_copy/points/query", json={
        "query": [1.0, 0.0, -1.0, 0.5], "limit": 3, "filter": {"must": [{"key": "i", "range": {"lt": 50}}]}}))["points"]
    assert [h["id"] for h in hits] == [0, 1, 2]


def test_init_from_with_qdrant_client(client, http):
    seed(http, "par_client_src", n=20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # qdrant-client warns that init_from is deprecated
        assert client.create_collection(
            "par_client_copy",
            vectors_config=models.VectorParams(size=4, distance=models.Distance.COSINE),
            init_from=models.InitFrom(collection="par_client_src"),
        )
    assert client.count("par_client_copy", exact=True).count == 20
    record = client.retrieve("par_client_copy", [7], with_vectors=True)[0]
    assert record.payload == {"i": 7, "even": False}


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"vectors": VECTORS, "init_from": {"collection": "par_missing"}}, 404, "Not found: Collection `par_missing` doesn't exist!"),
        (
            {"vectors": {"size": 5, "distance": "Cosine"}, "init_from": {"collection": "par_err_src"}},
            400,
            "Wrong input: Vectors configuration is not compatible: origin vector  size: 4, while other vector size: 5",
        ),
        (
            {"vectors": {"size": 4, "distance": "Euclid"}, "init_from": {"collection": "par_err_src"}},
            400,
            "Wrong input: Vectors configuration is not compatible: origin vector  distance: Cosine, "
            "while other vector distance: Euclid",
        ),
        (
            {"vectors": {"v": VECTORS}, "init_from": {"collection": "par_err_src"}},
            400,
            "Wrong input: Vectors configuration is not compatible: origin collection have vectors [], while other vectors [v]",
        ),
    ],
)
def test_init_from_errors_create_nothing(http, body, status, message):
    if "par_err_src" not in names(http):
        seed(http, "par_err_src", n=5)
    assert error(http.put("/collections/par_err_copy", json=body), status) == message
    assert "par_err_copy" not in names(http)
    assert not ok(http.get("/collections/par_err_copy/exists"))["exists"]


def test_init_from_copy_survives_sigkill(fresh_server):
    with httpx.Client(base_url=fresh_server.url, timeout=60) as http:
        seed(http, "src", n=2000)
        ok(http.put("/collections/copy", json={"vectors": VECTORS, "init_from": {"collection": "src"},
                                               "optimizers_config": {"flush_interval_sec": 3600}}))
        expected = scroll_all(http, "src")
    fresh_server.kill()  # no flush, no shutdown: only what the create made durable is left
    fresh_server.start()
    with httpx.Client(base_url=fresh_server.url, timeout=60) as http:
        assert names(http) == {"src", "copy"}
        assert scroll_all(http, "copy") == expected


# -- per-vector configs ---------------------------------------------------------------------

PER_VECTOR = {
    "vectors": {
        "dense": {
            "size": 4,
            "distance": "Dot",
            "hnsw_config": {"m": 8, "ef_construct": 32},
            "quantization_config": {"scalar": {"type": "int8", "quantile": 0.99, "always_ram": True}},
            "on_disk": True,
            "datatype": "float16",
        },
        "multi": {"size": 2, "distance": "Cosine", "multivector_config": {"comparator": "max_sim"}, "hnsw_config": {}},
    },
    "sparse_vectors": {"text": {"index": {"full_scan_threshold": 100, "on_disk": True, "datatype": "float16"}, "modifier": "idf"}},
}


def test_per_vector_configs_reported_as_qdrant_does(http, client):
    ok(http.put("/collections/par_pv", json=PER_VECTOR))
    params = ok(http.get("/collections/par_pv"))["config"]["params"]
    assert params["vectors"]["dense"] == PER_VECTOR["vectors"]["dense"]
    # an empty per-vector hnsw_config is not reported (Qdrant's is_hnsw_diff_empty)
    assert params["vectors"]["multi"] == {"size": 2, "distance": "Cosine", "multivector_config": {"comparator": "max_sim"}}
    assert params["sparse_vectors"] == PER_VECTOR["sparse_vectors"]
    info = client.get_collection("par_pv")  # and qdrant-client reads it back
    assert info.config.params.vectors["dense"].hnsw_config.m == 8
    assert info.config.params.vectors["dense"].datatype == models.Datatype.FLOAT16
    assert info.config.params.sparse_vectors["text"].index.on_disk is True


def test_per_vector_patch(http, client):
    ok(http.put("/collections/par_pv_patch", json=PER_VECTOR))
    ok(http.patch("/collections/par_pv_patch", json={"vectors": {
        "dense": {"hnsw_config": {"ef_construct": 64}, "quantization_config": "Disabled", "on_disk": False},
        "multi": {"quantization_config": {"binary": {"always_ram": True}}},
    }, "sparse_vectors": {"text": {"index": {"full_scan_threshold": 5}, "modifier": "none"}}}))
    params = ok(http.get("/collections/par_pv_patch"))["config"]["params"]
    assert params["vectors"]["dense"] == {"size": 4, "distance": "Dot", "hnsw_config": {"m": 8, "ef_construct": 64},
                                          "on_disk": False, "datatype": "float16"}
    assert params["vectors"]["multi"]["quantization_config"] == {"binary": {"always_ram": True}}
    assert params["sparse_vectors"]["text"] == {"index": {"full_scan_threshold": 5, "on_disk": True, "datatype": "float16"},
                                                "modifier": "none"}
    assert client.update_collection("par_pv_patch", vectors_config={"dense": models.VectorParamsDiff(on_disk=True)})
    assert client.get_collection("par_pv_patch").config.params.vectors["dense"].on_disk is True
    message = error(http.patch("/collections/par_pv_patch", json={"vectors": {"nope": {"on_disk": True}}}), 400)
    assert message == "Wrong input: Not existing vector name error: nope"


def test_per_vector_hnsw_builds_the_graph_and_search_uses_it(http):
    # m=0 for one vector: Qdrant builds no graph for it; the other vector is indexed
    body = {"vectors": {"g": {"size": 4, "distance": "Euclid"}, "flat": {"size": 4, "distance": "Euclid", "hnsw_config": {"m": 0}}},
            "optimizers_config": {"indexing_threshold": 1}, "hnsw_config": {"full_scan_threshold": 10}}
    ok(http.put("/collections/par_graph", json=body))
    points = [{"id": i, "vector": {"g": [i, 1, 2, 3], "flat": [i, 3, 2, 1]}} for i in range(200)]
    ok(http.put("/collections/par_graph/points?wait=true", json={"points": points}))
    import time

    deadline = time.time() + 60
    while time.time() < deadline:
        info = ok(http.get("/collections/par_graph"))
        if info["status"] == "green" and info["indexed_vectors_count"] > 0:
            break
        time.sleep(0.2)
    assert info["indexed_vectors_count"] == 200  # the vector with m=0 has no graph to count
    for using, vector in (("g", [5, 1, 2, 3]), ("flat", [5, 3, 2, 1])):
        hits = ok(http.post("/collections/par_graph/points/query", json={"query": vector, "using": using, "limit": 1}))["points"]
        assert hits[0]["id"] == 5


# -- hard limits, names, aliases, metadata -------------------------------------------------


@pytest.mark.parametrize(
    ("vectors", "message"),
    [
        ({"size": 70000, "distance": "Cosine"}, "Validation error in JSON body: [vectors.size: value 70000 invalid, must be from 1 to 65536]"),
        ({"a": {"size": 65537, "distance": "Dot"}}, "Validation error in JSON body: [vectors.?.size: value 65537 invalid, must be from 1 to 65536]"),
    ],
)
def test_vector_size_limit(http, vectors, message):
    assert error(http.put("/collections/par_big", json={"vectors": vectors}), 422) == message
    assert "par_big" not in names(http)


def test_largest_vector_size_is_accepted(http):
    ok(http.put("/collections/par_max", json={"vectors": {"size": 65536, "distance": "Dot"}}))
    assert ok(http.get("/collections/par_max"))["config"]["params"]["vectors"]["size"] == 65536


@pytest.mark.parametrize(("raw", "char"), [("a%1Fb", "\x1f"), ("a%00b", "\0"), ("a%3Cb", "<")])
def test_collection_name_characters(http, raw, char):
    message = error(http.put(f"/collections/{raw}", json={"vectors": VECTORS}), 422)
    assert message == f'Validation error in path parameters: [collection_name: collection name cannot contain "{char}" char]'


def test_alias_and_collection_name_clashes(http):
    ok(http.put("/collections/par_al_one", json={"vectors": VECTORS}))
    ok(http.put("/collections/par_al_two", json={"vectors": VECTORS}))
    create = {"actions": [{"create_alias": {"collection_name": "par_al_one", "alias_name": "par_al_two"}}]}
    assert error(http.post("/collections/aliases", json=create), 409) == "Wrong input: Collection `par_al_two` already exists!"
    ok(http.post("/collections/aliases", json={"actions": [{"create_alias": {"collection_name": "par_al_one", "alias_name": "par_al"}}]}))
    message = error(http.put("/collections/par_al", json={"vectors": VECTORS}), 400)
    assert message == "Wrong input: Can't create collection with name par_al. Alias with the same name already exists"
    rename = {"actions": [{"rename_alias": {"old_alias_name": "par_al", "new_alias_name": "par_al_two"}}]}
    assert error(http.post("/collections/aliases", json=rename), 409) == "Wrong input: Collection `par_al_two` already exists!"
    assert {a["alias_name"] for a in ok(http.get("/collections/par_al_one/aliases"))["aliases"]} == {"par_al"}


def test_metadata_merges_as_qdrant(http):
    ok(http.put("/collections/par_meta", json={"vectors": VECTORS, "metadata": {"a": 1, "b": {"x": 1, "y": 2}, "c": [1]}}))
    ok(http.patch("/collections/par_meta", json={"metadata": {"b": {"x": 5}, "c": None, "d": "new"}}))
    assert ok(http.get("/collections/par_meta"))["config"]["metadata"] == {"a": 1, "b": {"x": 5}, "d": "new"}
    ok(http.patch("/collections/par_meta", json={"metadata": {}}))  # merges nothing
    assert ok(http.get("/collections/par_meta"))["config"]["metadata"] == {"a": 1, "b": {"x": 5}, "d": "new"}
    ok(http.put("/collections/par_meta_new", json={"vectors": VECTORS}))
    ok(http.patch("/collections/par_meta_new", json={"metadata": {"k": None, "v": 2}}))  # the first is stored as given
    assert ok(http.get("/collections/par_meta_new"))["config"]["metadata"] == {"k": None, "v": 2}
