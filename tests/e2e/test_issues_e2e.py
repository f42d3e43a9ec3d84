"""`GET/DELETE /issues` end to end (docs/observability.md "Issues"): with
`service.slow_query_secs` 0 every filtered search reports its unindexed fields in Qdrant's
IssueRecord shape, creating the index solves the issue and deleting the collection solves
its issues; a collection that failed to load is reported too. The server-wide default
strict mode (`storage.collection.strict_mode.*`) applies to collections created without
`strict_mode_config` and under a request's own fields, as Qdrant's create_collection."""

from __future__ import annotations

import httpx
import pytest
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import UnexpectedResponse

from serverproc import ServerProcess

ENV = {
    "PYDRANT__SERVICE__SLOW_QUERY_SECS": "0",
    "PYDRANT__STORAGE__COLLECTION__STRICT_MODE__ENABLED": "true",
    "PYDRANT__STORAGE__COLLECTION__STRICT_MODE__MAX_QUERY_LIMIT": "5",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("issues")
    broken = root / "storage" / "collections" / "broken"
    broken.mkdir(parents=True)
    (broken / "config.json").write_text("{not json")
    proc = ServerProcess(root / "storage", extra_env=ENV).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server.url, timeout=30) as h:
        yield h


@pytest.fixture(scope="module")
def client(server):
    c = QdrantClient(url=server.url, timeout=30, check_compatibility=False)
    yield c
    c.close()


def _issues(http) -> dict:
    r = http.get("/issues")
    assert r.status_code == 200
    return {record["id"]: record for record in r.json()["result"]["issues"]}


def _make(http, name: str) -> None:
    body = {"vectors": {"size": 2, "distance": "Dot"}, "strict_mode_config": {"enabled": False}}
    assert http.put(f"/collections/{name}", json=body).status_code == 200
    points = [{"id": i, "vector": [1.0, float(i)], "payload": {"color": "red" if i % 2 else "blue", "price": i}} for i in range(20)]
    assert http.put(f"/collections/{name}/points?wait=true", json={"points": points}).status_code == 200


def test_collection_that_failed_to_load_is_an_issue(http):
    record = _issues(http)["COLLECTION_LOAD_FAILED/broken"]
    assert set(record) == {"id", "description", "solution", "timestamp"}
    assert "broken" in record["description"]
    assert set(record["solution"]) == {"refactor"}


def test_unindexed_filter_field_reported_then_solved_by_the_index(http, client):
    _make(http, "shop")
    hits = client.query_points(
        "shop",
        query=[1.0, 0.0],
        query_filter=models.Filter(must=[models.FieldCondition(key="color", match=models.MatchValue(value="red"))]),
        limit=3,
    ).points
    assert len(hits) == 3
    record = _issues(http)["UNINDEXED_FIELD/shop/color"]
    assert record["description"] == "Unindexed field 'color' might be slowing queries down in collection 'shop'"
    assert record["solution"] == {
        "immediate": {
            "message": "Create an index on field 'color' of schema \"keyword\" in collection 'shop'. Check the "
            "documentation for more details: https://qdrant.tech/documentation/concepts/indexing/#payload-index",
            "action": {
                "method": "PUT",
                "uri": "/collections/shop/index",
                "headers": {"content-type": "application/json"},
                "body": {"field_name": "color", "field_schema": "keyword"},
            },
        }
    }
    # the solution's action, as given, solves it
    action = record["solution"]["immediate"]["action"]
    r = http.request(action["method"], action["uri"] + "?wait=true", json=action["body"], headers=action["headers"])
    assert r.status_code == 200, r.text
    assert "UNINDEXED_FIELD/shop/color" not in _issues(http)
    # an indexed field is not reported again
    client.query_points(
        "shop",
        query=[1.0, 0.0],
        query_filter=models.Filter(must=[models.FieldCondition(key="color", match=models.MatchValue(value="red"))]),
    )
    assert "UNINDEXED_FIELD/shop/color" not in _issues(http)


def test_range_gives_a_choice_and_deleting_the_collection_solves_it(http):
    _make(http, "temp")
    r = http.post("/collections/temp/points/search", json={"vector": [1, 0], "limit": 3, "filter": {"must": [{"key": "price", "range": {"gt": 2.5}}]}})
    assert r.status_code == 200
    record = _issues(http)["UNINDEXED_FIELD/temp/price"]
    choices = record["solution"]["immediate_choice"]
    assert [c["action"]["body"]["field_schema"] for c in choices] == ["integer", "float"]
    assert http.delete("/collections/temp").status_code == 200
    assert not [i for i in _issues(http) if "/temp" in i]


def test_reads_without_filters_report_nothing_and_delete_clears(http):
    _make(http, "plain")
    before = set(_issues(http))
    assert http.post("/collections/plain/points/search", json={"vector": [1, 0], "limit": 3}).status_code == 200
    assert set(_issues(http)) == before
    r = http.delete("/issues")
    assert r.status_code == 200 and r.json()["result"] is True
    assert _issues(http) == {}


def test_default_strict_mode_applies_to_new_collections(http, client):
    assert http.put("/collections/strict", json={"vectors": {"size": 2, "distance": "Dot"}}).status_code == 200
    config = http.get("/collections/strict").json()["result"]["config"]["strict_mode_config"]
    assert config == {"enabled": True, "max_query_limit": 5}
    with pytest.raises(UnexpectedResponse) as caught:
        client.query_points("strict", query=[1.0, 0.0], limit=10)
    assert caught.value.status_code == 400
    assert "limit" in caught.value.content.decode()
    assert len(client.query_points("strict", query=[1.0, 0.0], limit=5).points) == 0
    # a request's own strict_mode_config is laid over the server default
    body = {"vectors": {"size": 2, "distance": "Dot"}, "strict_mode_config": {"max_query_limit": 20, "max_timeout": 7}}
    assert http.put("/collections/strict2", json=body).status_code == 200
    config = http.get("/collections/strict2").json()["result"]["config"]["strict_mode_config"]
    assert config == {"enabled": True, "max_query_limit": 20, "max_timeout": 7}
