"""Payload indexes through the real server and qdrant-client 1.15.1: every index type and
its params, filtered reads that use them, facet, order_by scroll, strict mode, bad input,
and indexes rebuilt after a restart."""

import pytest
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import UnexpectedResponse

from serverproc import ServerProcess

pytestmark = pytest.mark.e2e

CITIES = ["Berlin", "Paris", "Rome", "Oslo"]
UUIDS = [f"00000000-0000-0000-0000-00000000000{i}" for i in range(4)]


def payload_of(i: int) -> dict:
    return {
        "city": CITIES[i % 4],
        "count": i,
        "price": i * 1.5,
        "flag": i % 3 == 0,
        "when": f"2024-01-{i + 1:02d}T00:00:00Z",
        "owner": UUIDS[i % 4],
        "loc": {"lon": float(i), "lat": float(i) / 2},
        "text": ["the quick brown fox", "lazy dogs sleeping", "running foxes jump"][i % 3],
        "tags": [f"t{i % 2}", f"t{i % 5}"],
        "items": [{"qty": i}, {"qty": i + 100}],
    }


def make_collection(client: QdrantClient, name: str, n: int = 20) -> None:
    client.create_collection(name, vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
    client.upsert(name, [models.PointStruct(id=i, vector=[1, 0], payload=payload_of(i)) for i in range(n)], wait=True)


def ids_of(records) -> list:
    return sorted(r.id for r in records)


def scroll_ids(client, name, flt) -> list:
    records, _ = client.scroll(name, scroll_filter=flt, limit=1000)
    return ids_of(records)


def field(key, **kw) -> models.Filter:
    return models.Filter(must=[models.FieldCondition(key=key, **kw)])


INDEX_CASES = [
    ("city", models.KeywordIndexParams(type=models.KeywordIndexType.KEYWORD, is_tenant=True, on_disk=True),
     field("city", match=models.MatchValue(value="Rome")), [i for i in range(20) if i % 4 == 2]),
    ("count", models.IntegerIndexParams(type=models.IntegerIndexType.INTEGER, lookup=True, range=True,
                                        is_principal=True, on_disk=False),
     field("count", range=models.Range(gte=5, lt=9)), [5, 6, 7, 8]),
    ("price", models.FloatIndexParams(type=models.FloatIndexType.FLOAT, is_principal=True, on_disk=True),
     field("price", range=models.Range(gt=3.0, lte=6.0)), [3, 4]),
    ("flag", models.BoolIndexParams(type=models.BoolIndexType.BOOL, on_disk=False),
     field("flag", match=models.MatchValue(value=True)), [i for i in range(20) if i % 3 == 0]),
    ("when", models.DatetimeIndexParams(type=models.DatetimeIndexType.DATETIME, is_principal=True, on_disk=True),
     field("when", range=models.DatetimeRange(gte="2024-01-03T00:00:00Z", lt="2024-01-05")), [2, 3]),
    ("owner", models.UuidIndexParams(type=models.UuidIndexType.UUID, is_tenant=True, on_disk=True),
     field("owner", match=models.MatchAny(any=[UUIDS[1]])), [i for i in range(20) if i % 4 == 1]),
    ("loc", models.GeoIndexParams(type=models.GeoIndexType.GEO, on_disk=True),
     field("loc", geo_bounding_box=models.GeoBoundingBox(top_left=models.GeoPoint(lon=1.5, lat=10),
                                                         bottom_right=models.GeoPoint(lon=4.5, lat=-1))), [2, 3, 4]),
    ("tags", models.PayloadSchemaType.KEYWORD, field("tags", match=models.MatchValue(value="t3")), [3, 8, 13, 18]),
    ("items[].qty", models.PayloadSchemaType.INTEGER, field("items[].qty", range=models.Range(gte=115)),
     [15, 16, 17, 18, 19]),
]


@pytest.mark.parametrize("key,schema,flt,expected", INDEX_CASES, ids=[c[0] for c in INDEX_CASES])
def test_each_index_type_with_params(client, key, schema, flt, expected):
    name = "types_" + key.replace("[].", "_")
    make_collection(client, name)
    before = scroll_ids(client, name, flt)
    assert before == expected  # the scan's answer
    result = client.create_payload_index(name, key, field_schema=schema, wait=True)
    assert result.status == models.UpdateStatus.COMPLETED
    info = client.get_collection(name).payload_schema[key]
    expected_type = schema if isinstance(schema, models.PayloadSchemaType) else schema.type.value
    assert info.data_type.value == (expected_type.value if hasattr(expected_type, "value") else expected_type)
    assert info.points == 20
    if not isinstance(schema, models.PayloadSchemaType):
        assert info.params == schema
    assert scroll_ids(client, name, flt) == expected
    assert client.count(name, count_filter=flt).count == len(expected)
    # kept in step by later writes: a new matching point, a deleted one, a payload change
    client.upsert(name, [models.PointStruct(id=100, vector=[0, 1], payload=payload_of(expected[0]))], wait=True)
    client.delete(name, points_selector=models.PointIdsList(points=[expected[-1]]), wait=True)
    client.set_payload(name, payload={"unrelated": 1}, points=[expected[0]], wait=True)
    want = sorted(set(expected) - {expected[-1]} | {100})
    assert scroll_ids(client, name, flt) == want
    assert client.count(name, count_filter=flt).count == len(want)
    client.delete_collection(name)


def test_text_index_params_and_semantics(client, http):
    name = "text_idx"
    make_collection(client, name, n=6)
    # Without an index, match.text is a substring test: "fox" is inside "foxes".
    substring = field("text", match=models.MatchText(text="fox"))
    assert scroll_ids(client, name, substring) == [0, 2, 3, 5]
    params = models.TextIndexParams(
        type=models.TextIndexType.TEXT, tokenizer=models.TokenizerType.WORD, min_token_len=2, max_token_len=20,
        lowercase=True, phrase_matching=True, stopwords=models.Language.ENGLISH,
        stemmer=models.SnowballParams(type=models.Snowball.SNOWBALL, language=models.SnowballLanguage.ENGLISH),
    )
    client.create_payload_index(name, "text", field_schema=params, wait=True)
    info = client.get_collection(name).payload_schema["text"]
    assert info.data_type == models.PayloadSchemaType.TEXT and info.params == params and info.points == 6
    # With the index, terms decide: stemming makes "foxes" -> "fox" and "running" -> "run".
    assert scroll_ids(client, name, field("text", match=models.MatchText(text="FOX"))) == [0, 2, 3, 5]
    assert scroll_ids(client, name, field("text", match=models.MatchText(text="run quick"))) == []
    # qdrant-client 1.15.1 has no MatchTextAny model: raw HTTP
    text_any = {"must": [{"key": "text", "match": {"text_any": "run quick"}}]}
    response = http.post(f"/collections/{name}/points/scroll", json={"filter": text_any, "limit": 100})
    assert sorted(p["id"] for p in response.json()["result"]["points"]) == [0, 2, 3, 5]
    assert scroll_ids(client, name, field("text", match=models.MatchPhrase(phrase="quick brown"))) == [0, 3]
    assert scroll_ids(client, name, field("text", match=models.MatchPhrase(phrase="brown quick"))) == []
    # a stopword alone matches nothing; "the" is dropped from the query
    assert scroll_ids(client, name, field("text", match=models.MatchText(text="the quick"))) == [0, 3]


@pytest.mark.parametrize("tokenizer,query,expected", [
    (models.TokenizerType.WHITESPACE, "brown", [0, 3]),
    (models.TokenizerType.PREFIX, "slee", [1, 4]),
    (models.TokenizerType.MULTILINGUAL, "lazy", [1, 4]),
])
def test_text_tokenizers(client, tokenizer, query, expected):
    name = f"tok_{tokenizer.value}"
    make_collection(client, name, n=6)
    client.create_payload_index(name, "text", field_schema=models.TextIndexParams(
        type=models.TextIndexType.TEXT, tokenizer=tokenizer), wait=True)
    assert scroll_ids(client, name, field("text", match=models.MatchText(text=query))) == expected


def test_facet(client):
    name = "facet"
    make_collection(client, name, n=20)
    client.create_payload_index(name, "city", models.PayloadSchemaType.KEYWORD, wait=True)
    client.create_payload_index(name, "flag", models.PayloadSchemaType.BOOL, wait=True)
    client.create_payload_index(name, "count", models.PayloadSchemaType.INTEGER, wait=True)
    client.create_payload_index(name, "owner", models.PayloadSchemaType.UUID, wait=True)
    client.create_payload_index(name, "tags", models.PayloadSchemaType.KEYWORD, wait=True)
    client.upsert(name, [models.PointStruct(id=50, vector=[1, 1], payload={"city": "Berlin"})], wait=True)

    hits = client.facet(name, "city", exact=True).hits
    assert [(h.value, h.count) for h in hits] == [("Berlin", 6), ("Oslo", 5), ("Paris", 5), ("Rome", 5)]
    hits = client.facet(name, "city", limit=2, facet_filter=field("count", range=models.Range(lt=8))).hits
    assert [(h.value, h.count) for h in hits] == [("Berlin", 2), ("Oslo", 2)]
    assert [(h.value, h.count) for h in client.facet(name, "flag").hits] == [(False, 13), (True, 7)]
    assert client.facet(name, "count", limit=3).hits[0].count == 1
    assert {h.value for h in client.facet(name, "owner").hits} == set(UUIDS)
    # an array counts once in each of its values' groups
    tags = {h.value: h.count for h in client.facet(name, "tags", limit=10).hits}
    assert tags["t0"] == 12 and tags["t1"] == 12 and tags["t3"] == 4  # point 0 holds t0 twice: counted once

    with pytest.raises(UnexpectedResponse) as bad:
        client.facet(name, "price")
    assert bad.value.status_code == 400 and "price" in bad.value.content.decode()


def test_order_by_scroll(client):
    name = "ordered"
    make_collection(client, name, n=10)
    client.create_payload_index(name, "count", models.PayloadSchemaType.INTEGER, wait=True)
    client.create_payload_index(name, "price", models.PayloadSchemaType.FLOAT, wait=True)
    client.create_payload_index(name, "when", models.PayloadSchemaType.DATETIME, wait=True)
    client.create_payload_index(name, "items[].qty", models.PayloadSchemaType.INTEGER, wait=True)

    records, next_offset = client.scroll(name, order_by="count", limit=3)
    assert [r.id for r in records] == [0, 1, 2] and next_offset is None
    assert [r.order_value for r in records] == [0, 1, 2]
    records, _ = client.scroll(name, order_by=models.OrderBy(key="count", direction=models.Direction.DESC), limit=3)
    assert [r.id for r in records] == [9, 8, 7]
    records, _ = client.scroll(
        name, order_by=models.OrderBy(key="price", direction=models.Direction.ASC, start_from=4.5), limit=3)
    assert [r.id for r in records] == [3, 4, 5] and records[0].order_value == 4.5
    records, _ = client.scroll(
        name, order_by=models.OrderBy(key="price", direction=models.Direction.DESC, start_from=4.4), limit=2)
    assert [r.id for r in records] == [2, 1]
    records, _ = client.scroll(
        name, order_by=models.OrderBy(key="when", start_from="2024-01-08T00:00:00Z"), limit=5,
        scroll_filter=field("flag", match=models.MatchValue(value=True)))
    assert [r.id for r in records] == [9]
    # a point with several values appears once per value (Qdrant 1.15's documented behaviour)
    records, _ = client.scroll(name, order_by=models.OrderBy(key="items[].qty", start_from=8), limit=4)
    assert [(r.id, r.order_value) for r in records] == [(8, 8), (9, 9), (0, 100), (1, 101)]
    # equal values: ids ascending (descending when the order is)
    client.set_payload(name, payload={"count": 5}, points=[7, 2], wait=True)
    records, _ = client.scroll(name, order_by=models.OrderBy(key="count", start_from=5), limit=3)
    assert [r.id for r in records] == [2, 5, 7]
    records, _ = client.scroll(
        name, order_by=models.OrderBy(key="count", direction=models.Direction.DESC, start_from=5), limit=3)
    assert [r.id for r in records] == [7, 5, 2]


def test_order_by_bad_requests(http):
    http.put("/collections/ob_bad", json={"vectors": {"size": 2, "distance": "Dot"}})
    http.put("/collections/ob_bad/points?wait=true", json={"points": [{"id": 1, "vector": [1, 0], "payload": {"k": "a"}}]})
    http.put("/collections/ob_bad/index?wait=true", json={"field_name": "k", "field_schema": "keyword"})
    response = http.post("/collections/ob_bad/points/scroll", json={"order_by": "n"})
    assert response.status_code == 400 and "No range index for `order_by` key: `n`" in response.json()["status"]["error"]
    response = http.post("/collections/ob_bad/points/scroll", json={"order_by": "k"})
    assert response.status_code == 400 and "`k`" in response.json()["status"]["error"]
    http.put("/collections/ob_bad/index?wait=true", json={"field_name": "n", "field_schema": "integer"})
    response = http.post("/collections/ob_bad/points/scroll", json={"order_by": "n", "offset": 1})
    assert response.status_code == 400 and "offset" in response.json()["status"]["error"]
    no_range = {"field_name": "r", "field_schema": {"type": "integer", "range": False, "lookup": True}}
    http.put("/collections/ob_bad/index?wait=true", json=no_range)
    assert http.post("/collections/ob_bad/points/scroll", json={"order_by": "r"}).status_code == 400
    response = http.post("/collections/ob_bad/facet", json={"key": "n", "limit": 0})
    assert response.status_code == 422


def test_strict_mode_refuses_unindexed_filters(client, http):
    name = "strict"
    make_collection(client, name, n=8)
    client.update_collection(name, strict_mode_config=models.StrictModeConfig(
        enabled=True, unindexed_filtering_retrieve=False, unindexed_filtering_update=False))
    flt = field("city", match=models.MatchValue(value="Rome"))
    with pytest.raises(UnexpectedResponse) as refused:
        client.count(name, count_filter=flt)
    message = refused.value.content.decode()
    assert refused.value.status_code == 400
    assert 'Index required but not found for \\"city\\" of one of the following types: [keyword]' in message
    response = http.post(f"/collections/{name}/points/delete", json={"filter": flt.model_dump(exclude_none=True)})
    assert response.status_code == 400 and "city" in response.json()["status"]["error"]
    assert client.count(name).count == 8  # nothing was deleted

    client.create_payload_index(name, "city", models.PayloadSchemaType.KEYWORD, wait=True)
    assert client.count(name, count_filter=flt).count == 2
    # an index of the wrong kind does not serve: a range needs integer or float
    with pytest.raises(UnexpectedResponse):
        client.scroll(name, scroll_filter=field("city", range=models.Range(gte=1)))
    client.delete(name, points_selector=models.FilterSelector(filter=flt), wait=True)
    assert client.count(name).count == 6


def test_bad_index_definitions(http):
    http.put("/collections/idx_defs", json={"vectors": {"size": 2, "distance": "Dot"}})
    cases = [
        {"field_name": "a", "field_schema": "vector"},
        {"field_name": "a", "field_schema": {"type": "text", "tokenizer": "sentencepiece"}},
        {"field_name": "a", "field_schema": {"type": "text", "min_token_len": 5, "max_token_len": 2}},
        {"field_name": "a", "field_schema": {"type": "text", "stemmer": {"type": "snowball", "language": "klingon"}}},
        {"field_name": "a", "field_schema": {"type": "text", "stopwords": "klingon"}},
        {"field_name": "a..b", "field_schema": "keyword"},
    ]
    for case in cases:
        response = http.put("/collections/idx_defs/index?wait=true", json=case)
        assert response.status_code in (400, 422), (case, response.text)
        assert response.json()["status"]["error"], case
    assert http.get("/collections/idx_defs").json()["result"]["payload_schema"] == {}


def test_values_that_do_not_fit_are_stored_not_indexed(client):
    name = "misfit"
    client.create_collection(name, vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
    client.create_payload_index(name, "year", models.PayloadSchemaType.INTEGER, wait=True)
    client.upsert(name, [
        models.PointStruct(id=1, vector=[1, 0], payload={"year": 2001}),
        models.PointStruct(id=2, vector=[1, 0], payload={"year": "2001"}),
        models.PointStruct(id=3, vector=[1, 0], payload={"year": 2001.5}),
    ], wait=True)
    assert client.get_collection(name).payload_schema["year"].points == 1
    assert ids_of(client.retrieve(name, [1, 2, 3])) == [1, 2, 3]
    assert scroll_ids(client, name, field("year", match=models.MatchValue(value=2001))) == [1]
    assert scroll_ids(client, name, field("year", range=models.Range(gte=2001))) == [1, 3]


def test_indexes_rebuilt_after_restart(fresh_server):
    client = QdrantClient(url=fresh_server.url, timeout=30)
    make_collection(client, "durable", n=30)
    client.create_payload_index("durable", "city", models.PayloadSchemaType.KEYWORD, wait=True)
    client.create_payload_index("durable", "count", models.PayloadSchemaType.INTEGER, wait=True)
    client.set_payload("durable", payload={"city": "Rome"}, points=[0, 1], wait=True)
    client.delete("durable", points_selector=models.PointIdsList(points=[2]), wait=True)
    flt = models.Filter(must=[models.FieldCondition(key="city", match=models.MatchValue(value="Rome")),
                              models.FieldCondition(key="count", range=models.Range(lt=20))])
    before = scroll_ids(client, "durable", flt)
    facet_before = client.facet("durable", "city").hits
    client.close()
    fresh_server.kill()  # no flush: the WAL replay has to maintain the indexes

    restarted = ServerProcess(fresh_server.storage, port=fresh_server.port).start()
    try:
        client = QdrantClient(url=restarted.url, timeout=30)
        assert scroll_ids(client, "durable", flt) == before == [0, 1, 6, 10, 14, 18]
        assert client.facet("durable", "city").hits == facet_before
        assert client.get_collection("durable").payload_schema["city"].points == 29
        client.close()
    finally:
        restarted.kill()
