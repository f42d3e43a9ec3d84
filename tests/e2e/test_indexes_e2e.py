"""Payload index declarations: create, report in collection info, survive restart, delete."""

import pytest
from qdrant_client import QdrantClient, models

from serverproc import ServerProcess

pytestmark = pytest.mark.e2e


def fill(client: QdrantClient, name: str) -> None:
    client.create_collection(name, vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
    client.upsert(name, [
        models.PointStruct(id=1, vector=[1, 0], payload={"city": "Berlin", "text": "red apple"}),
        models.PointStruct(id=2, vector=[0, 1], payload={"city": ["Paris", "Rome"]}),
        models.PointStruct(id=3, vector=[1, 1], payload={"year": 2001}),
    ])


def test_payload_indexes_are_declared_reported_and_durable(fresh_server):
    client = QdrantClient(url=fresh_server.url, timeout=30)
    fill(client, "idx")
    result = client.create_payload_index("idx", "city", field_schema=models.PayloadSchemaType.KEYWORD, wait=True)
    assert result.status == models.UpdateStatus.COMPLETED
    client.create_payload_index("idx", "text", field_schema=models.TextIndexParams(
        type=models.TextIndexType.TEXT, tokenizer=models.TokenizerType.WORD, lowercase=True))
    client.create_payload_index("idx", "year", field_schema="integer", wait=True)

    schema = client.get_collection("idx").payload_schema
    assert schema["city"].data_type == models.PayloadSchemaType.KEYWORD and schema["city"].points == 2
    assert schema["text"].data_type == models.PayloadSchemaType.TEXT and schema["text"].points == 1
    assert schema["text"].params.tokenizer == models.TokenizerType.WORD
    assert schema["year"].points == 1

    client.delete_payload_index("idx", "year", wait=True)
    client.close()
    fresh_server.stop()

    restarted = ServerProcess(fresh_server.storage, port=fresh_server.port).start()
    try:
        client = QdrantClient(url=restarted.url, timeout=30)
        schema = client.get_collection("idx").payload_schema
        assert sorted(schema) == ["city", "text"]
        # filters over declared fields still answer (by scanning until issue 4's indexes)
        count = client.count("idx", count_filter=models.Filter(must=[
            models.FieldCondition(key="city", match=models.MatchValue(value="Rome"))]))
        assert count.count == 1
        client.close()
    finally:
        restarted.stop()


def test_bad_index_requests(http):
    http.put("/collections/idx_bad", json={"vectors": {"size": 2, "distance": "Dot"}})
    response = http.put("/collections/idx_bad/index", json={"field_name": "a", "field_schema": "keywrd"})
    assert response.status_code == 400
    assert "error" in response.json()["status"]
    response = http.put("/collections/idx_bad/index", json={"field_name": "a"})
    assert response.status_code == 400 and "field_schema" in response.json()["status"]["error"]
    response = http.put("/collections/missing_c/index", json={"field_name": "a", "field_schema": "keyword"})
    assert response.status_code == 404
    response = http.put("/collections/idx_bad/index?ordering=sideways", json={"field_name": "a", "field_schema": "keyword"})
    assert response.status_code == 400
    assert http.get("/collections/idx_bad").json()["result"]["payload_schema"] == {}
    # deleting an index that was never made is fine, as in Qdrant
    assert http.delete("/collections/idx_bad/index/nope?wait=true").status_code == 200
