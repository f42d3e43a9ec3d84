"""A collection with a corrupt WAL (damage in the middle, valid records after it) does not
stop the node: the others serve, the broken one is listed in status red with the cause,
/issues names it, and it can be deleted and created again (reliability issue, finding 5)."""

import httpx
import pytest
from qdrant_client import QdrantClient, models

pytestmark = pytest.mark.e2e


def test_corrupt_wal_in_one_collection_leaves_the_node_serving(fresh_server):
    client = QdrantClient(url=fresh_server.url, timeout=30)
    for name in ("good", "broken"):
        client.create_collection(name, vectors_config=models.VectorParams(size=4, distance=models.Distance.DOT))
        for i in range(5):  # one WAL record each
            client.upsert(name, [models.PointStruct(id=i, vector=[1.0, 0.0, 0.0, float(i)], payload={"i": i})])
    fresh_server.kill()  # nothing flushed: the WAL is all there is

    wal_file = sorted((fresh_server.storage / "collections" / "broken" / "wal").glob("*.wal"))[0]
    data = bytearray(wal_file.read_bytes())
    data[10] ^= 0xFF  # in the first record's body; four valid records follow
    wal_file.write_bytes(bytes(data))

    fresh_server.start()
    client = QdrantClient(url=fresh_server.url, timeout=30)
    assert client.count("good").count == 5
    client.upsert("good", [models.PointStruct(id=9, vector=[0.0, 1.0, 0.0, 0.0])], wait=True)
    assert client.count("good").count == 6
    names = {c.name for c in client.get_collections().collections}
    assert names == {"good", "broken"}

    info = client.get_collection("broken")  # validates against the client's model
    assert info.status == models.CollectionStatus.RED
    assert "WAL" in info.optimizer_status.error

    with httpx.Client(base_url=fresh_server.url) as http:
        assert http.get("/readyz").status_code == 200
        issues = http.get("/issues").json()["result"]["issues"]
        assert any(issue["id"] == "COLLECTION_LOAD_FAILED/broken" for issue in issues)
        response = http.post("/collections/broken/points/scroll", json={})
        assert response.status_code == 500
        assert "failed to load" in response.json()["status"]["error"]

    assert client.delete_collection("broken")
    client.create_collection("broken", vectors_config=models.VectorParams(size=4, distance=models.Distance.DOT))
    assert client.count("broken").count == 0
    fresh_server.restart()
    client = QdrantClient(url=fresh_server.url, timeout=30)
    assert client.count("good").count == 6
    assert client.get_collection("broken").status == models.CollectionStatus.GREEN
