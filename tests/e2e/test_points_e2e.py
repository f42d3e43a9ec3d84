"""Issue 3 end to end: every point operation through qdrant-client and raw HTTP."""

import uuid

import pytest
from qdrant_client import models

pytestmark = pytest.mark.e2e


@pytest.fixture
def col(client, request):
    name = request.node.name.replace("[", "_").replace("]", "")[:60]
    client.create_collection(
        name,
        vectors_config={
            "dense": models.VectorParams(size=3, distance=models.Distance.DOT),
            "multi": models.VectorParams(
                size=2, distance=models.Distance.EUCLID,
                multivector_config=models.MultiVectorConfig(comparator=models.MultiVectorComparator.MAX_SIM),
            ),
            "half": models.VectorParams(size=2, distance=models.Distance.COSINE, datatype=models.Datatype.FLOAT16),
        },
        sparse_vectors_config={"sparse": models.SparseVectorParams()},
    )
    return name


def test_upsert_retrieve_all_vector_kinds(client, col):
    uid = str(uuid.uuid4())
    result = client.upsert(
        col,
        points=[
            models.PointStruct(
                id=1,
                vector={"dense": [1.0, 2.0, 3.0], "multi": [[1.0, 2.0], [3.0, 4.0]],
                        "sparse": models.SparseVector(indices=[7, 2], values=[0.5, 0.25]), "half": [3.0, 4.0]},
                payload={"city": "Berlin", "n": 1},
            ),
            models.PointStruct(id=uid, vector={"dense": [0.0, 1.0, 0.0]}, payload={"city": "Paris"}),
        ],
        wait=True,
    )
    assert result.status == models.UpdateStatus.COMPLETED and result.operation_id >= 1
    p1, p2 = client.retrieve(col, ids=[1, uid], with_vectors=True)
    assert p1.id == 1 and p1.payload == {"city": "Berlin", "n": 1}
    assert p1.vector["dense"] == [1.0, 2.0, 3.0]
    assert p1.vector["multi"] == [[1.0, 2.0], [3.0, 4.0]]
    assert p1.vector["sparse"].indices == [2, 7] and p1.vector["sparse"].values == [0.25, 0.5]
    assert p1.vector["half"] == pytest.approx([0.6, 0.8], abs=1e-3)  # Cosine: normalised
    assert p2.id == uid and set(p2.vector) == {"dense"}
    only = client.retrieve(col, ids=[1], with_vectors=["dense"], with_payload=["city"])[0]
    assert set(only.vector) == {"dense"} and only.payload == {"city": "Berlin"}
    assert client.retrieve(col, ids=[1], with_payload=models.PayloadSelectorExclude(exclude=["city"]))[0].payload == {"n": 1}
    assert client.retrieve(col, ids=[999]) == []


def test_uuid_spellings_are_canonical(http, client, col):
    u = uuid.uuid4()
    r = http.put(f"/collections/{col}/points?wait=true", json={"points": [{"id": u.hex.upper(), "vector": {}}]})
    assert r.status_code == 200, r.text
    assert client.retrieve(col, ids=[str(u)])[0].id == str(u)
    assert http.get(f"/collections/{col}/points/{u}").json()["result"]["id"] == str(u)


def test_batch_form_and_wait_false(http, client, col):
    r = http.put(
        f"/collections/{col}/points",
        json={"batch": {"ids": [10, 11, 12], "vectors": {"dense": [[1, 0, 0], [0, 1, 0], [0, 0, 1]]},
                        "payloads": [{"i": 0}, {"i": 1}, {"i": 2}]}},
    )
    assert r.status_code == 200 and r.json()["result"]["status"] == "acknowledged"
    # a later wait=true write is applied after it: the queue keeps order
    client.upsert(col, points=[models.PointStruct(id=13, vector={})], wait=True)
    assert client.count(col).count == 4
    assert client.retrieve(col, ids=[11], with_vectors=True)[0].vector["dense"] == [0.0, 1.0, 0.0]


def test_payload_operations(client, col):
    client.upsert(col, points=[models.PointStruct(id=i, vector={}, payload={"i": i, "tag": "a" if i % 2 else "b"}) for i in range(6)])
    client.set_payload(col, payload={"extra": True}, points=[0, 1])
    client.set_payload(col, payload={"deep": 5}, points=[0], key="nested.obj")
    assert client.retrieve(col, ids=[0])[0].payload == {"i": 0, "tag": "b", "extra": True, "nested": {"obj": {"deep": 5}}}
    client.overwrite_payload(col, payload={"only": 1}, points=[1])
    assert client.retrieve(col, ids=[1])[0].payload == {"only": 1}
    client.delete_payload(col, keys=["tag"], points=models.Filter(must=[models.FieldCondition(key="tag", match=models.MatchValue(value="a"))]))
    assert client.retrieve(col, ids=[3])[0].payload == {"i": 3}
    client.clear_payload(col, points_selector=models.FilterSelector(filter=models.Filter(must=[models.HasIdCondition(has_id=[4, 5])])))
    assert [p.payload for p in client.retrieve(col, ids=[4, 5])] == [{}, {}]
    client.set_payload(col, payload={"flag": 1}, points=models.Filter(must=[models.FieldCondition(key="i", range=models.Range(lte=2))]))
    assert sorted(p.id for p in client.scroll(col, scroll_filter=models.Filter(must=[models.FieldCondition(key="flag", match=models.MatchValue(value=1))]))[0]) == [0, 2]


def test_vector_operations(client, col):
    client.upsert(col, points=[models.PointStruct(id=1, vector={"dense": [1, 1, 1]}, payload={"k": 1})])
    client.update_vectors(col, points=[models.PointVectors(id=1, vector={"multi": [[0.5, 0.5]]})])
    vec = client.retrieve(col, ids=[1], with_vectors=True)[0].vector
    assert vec["dense"] == [1.0, 1.0, 1.0] and vec["multi"] == [[0.5, 0.5]]
    client.delete_vectors(col, vectors=["dense"], points=[1])
    assert set(client.retrieve(col, ids=[1], with_vectors=True)[0].vector) == {"multi"}
    assert client.retrieve(col, ids=[1])[0].payload == {"k": 1}


def test_delete_by_ids_and_filter(client, col):
    client.upsert(col, points=[models.PointStruct(id=i, vector={}, payload={"g": i % 3}) for i in range(9)])
    client.delete(col, points_selector=models.PointIdsList(points=[0, 1]))
    client.delete(col, points_selector=models.Filter(must=[models.FieldCondition(key="g", match=models.MatchValue(value=2))]))
    remaining = sorted(p.id for p in client.scroll(col, limit=100)[0])
    assert remaining == [3, 4, 6, 7]


def test_batch_update_applies_in_order(client, col):
    results = client.batch_update_points(
        col,
        update_operations=[
            models.UpsertOperation(upsert=models.PointsList(points=[models.PointStruct(id=1, vector={}, payload={"a": 1})])),
            models.SetPayloadOperation(set_payload=models.SetPayload(payload={"b": 2}, points=[1])),
            models.DeletePayloadOperation(delete_payload=models.DeletePayload(keys=["a"], points=[1])),
            models.UpsertOperation(upsert=models.PointsList(points=[models.PointStruct(id=2, vector={})])),
            models.DeleteOperation(delete=models.PointIdsList(points=[2])),
        ],
    )
    assert len(results) == 5 and all(r.status == models.UpdateStatus.COMPLETED for r in results)
    ids = [r.operation_id for r in results]
    assert ids == sorted(ids) and len(set(ids)) == 5
    assert client.retrieve(col, ids=[1])[0].payload == {"b": 2}
    assert client.retrieve(col, ids=[2]) == []


def test_scroll_pages_in_id_order(client, col):
    uids = sorted(str(uuid.uuid4()) for _ in range(3))
    ids = [5, 1, 9, 3, *uids]
    client.upsert(col, points=[models.PointStruct(id=i, vector={}) for i in ids])
    page1, nxt = client.scroll(col, limit=3)
    assert [p.id for p in page1] == [1, 3, 5] and nxt == 9
    page2, nxt = client.scroll(col, limit=3, offset=nxt)
    assert [p.id for p in page2] == [9, *sorted(uids, key=lambda u: uuid.UUID(u).int)[:2]]
    page3, nxt = client.scroll(col, limit=3, offset=nxt)
    assert len(page3) == 1 and nxt is None


def test_count_exact_and_approximate(client, col):
    client.upsert(col, points=[models.PointStruct(id=i, vector={}, payload={"even": i % 2 == 0}) for i in range(10)])
    even = models.Filter(must=[models.FieldCondition(key="even", match=models.MatchValue(value=True))])
    assert client.count(col, count_filter=even, exact=True).count == 5
    assert client.count(col, count_filter=even, exact=False).count == 5
    assert client.count(col).count == 10
    assert client.get_collection(col).points_count == 10


def test_conditional_upsert_with_update_filter(http, client, col):
    client.upsert(col, points=[models.PointStruct(id=1, vector={}, payload={"v": 1}), models.PointStruct(id=2, vector={}, payload={"v": 5})])
    body = {
        "points": [{"id": 1, "vector": {}, "payload": {"v": 2}}, {"id": 2, "vector": {}, "payload": {"v": 6}}, {"id": 3, "vector": {}, "payload": {"v": 0}}],
        "update_filter": {"must": [{"key": "v", "range": {"lt": 3}}]},
    }
    assert http.put(f"/collections/{col}/points?wait=true", json=body).status_code == 200
    assert [p.payload["v"] for p in client.retrieve(col, ids=[1, 2, 3])] == [2, 5, 0]


def test_response_shapes_validate(http, col):
    r = http.put(f"/collections/{col}/points?wait=true", json={"points": [{"id": 1, "vector": {"dense": [1, 2, 3]}, "payload": {"a": 1}}]})
    models.UpdateResult.model_validate(r.json()["result"])
    r = http.post(f"/collections/{col}/points", json={"ids": [1], "with_vector": True})
    [models.Record.model_validate(x) for x in r.json()["result"]]
    models.Record.model_validate(http.get(f"/collections/{col}/points/1").json()["result"])
    models.ScrollResult.model_validate(http.post(f"/collections/{col}/points/scroll", json={}).json()["result"])
    models.CountResult.model_validate(http.post(f"/collections/{col}/points/count", json={}).json()["result"])
