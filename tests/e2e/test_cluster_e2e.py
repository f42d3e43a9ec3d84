"""The distributed API on one node, as Qdrant answers it with distributed mode off
(pydrant/http/cluster.py): cluster status `disabled`, a collection's one local shard, and
Qdrant's standalone errors for every consensus operation — after the request is
validated, so a malformed body is still a format error."""

from __future__ import annotations

import httpx
import pytest
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import UnexpectedResponse

pytestmark = pytest.mark.e2e


@pytest.fixture
def collection(client: QdrantClient) -> str:
    name = "cluster_info"
    client.delete_collection(name)
    client.create_collection(name, vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
    client.upsert(name, [models.PointStruct(id=i, vector=[float(i), 1.0]) for i in range(7)], wait=True)
    return name


def test_cluster_status_is_disabled(client):
    status = client.http.distributed_api.cluster_status().result
    assert isinstance(status, models.ClusterStatusOneOf)
    assert status.status == "disabled"


def test_collection_cluster_info_lists_the_local_shard(client, collection):
    info = client.http.distributed_api.collection_cluster_info(collection).result
    assert isinstance(info, models.CollectionClusterInfo)
    assert info.shard_count == 1
    assert [(s.shard_id, s.points_count, s.state) for s in info.local_shards] == [(0, 7, models.ReplicaState.ACTIVE)]
    assert info.remote_shards == [] and info.shard_transfers == []
    assert info.peer_id >= 1


def test_collection_cluster_info_through_an_alias_and_unknown_collection(client, http, collection):
    client.update_collection_aliases([models.CreateAliasOperation(create_alias=models.CreateAlias(
        collection_name=collection, alias_name="cluster_alias"))])
    by_alias = http.get("/collections/cluster_alias/cluster").json()["result"]
    assert by_alias["local_shards"][0]["points_count"] == 7
    missing = http.get("/collections/nope/cluster")
    assert missing.status_code == 404
    assert missing.json()["status"]["error"] == "Not found: Collection `nope` doesn't exist!"


def test_the_peer_id_survives_a_restart(fresh_server):
    created = httpx.put(f"{fresh_server.url}/collections/c", json={"vectors": {"size": 2, "distance": "Dot"}})
    assert created.status_code == 200
    first = httpx.get(f"{fresh_server.url}/collections/c/cluster").json()["result"]["peer_id"]
    fresh_server.restart()
    second = httpx.get(f"{fresh_server.url}/collections/c/cluster").json()["result"]["peer_id"]
    assert first == second and 1 <= first < 2**53


@pytest.mark.parametrize("call", [
    lambda c, n: c.create_shard_key(n, "tenant-a"),
    lambda c, n: c.delete_shard_key(n, "tenant-a"),
    lambda c, n: c.http.distributed_api.update_collection_cluster(n, cluster_operations=models.MoveShardOperation(
        move_shard=models.MoveShard(shard_id=0, to_peer_id=2, from_peer_id=1))),
])
def test_consensus_operations_are_refused_as_distributed_mode_disabled(client, collection, call):
    with pytest.raises(UnexpectedResponse) as caught:
        call(client, collection)
    assert caught.value.status_code == 400
    assert b"Bad request: Distributed mode disabled" in caught.value.content


def test_a_malformed_cluster_operation_is_a_format_error_first(http, collection):
    answer = http.post(f"/collections/{collection}/cluster", json={"move_shard": {"shard_id": 0}})
    assert answer.status_code == 400
    assert answer.json()["status"]["error"].startswith("Format error in JSON body:")
    unknown_operation = http.post(f"/collections/{collection}/cluster", json={"split_shard": {"shard_id": 0}})
    assert unknown_operation.status_code == 400
    assert unknown_operation.json()["status"]["error"].startswith("Format error in JSON body:")


def test_recover_current_peer_is_a_standalone_service_error(http):
    answer = http.post("/cluster/recover")
    assert answer.status_code == 500
    assert answer.json()["status"]["error"] == "Service internal error: Qdrant is running in standalone mode"


def test_remove_peer(client, http, collection):
    me = client.http.distributed_api.collection_cluster_info(collection).result.peer_id
    own = http.delete(f"/cluster/peer/{me}")
    assert own.status_code == 400
    assert own.json()["status"]["error"] == f"Bad request: Cannot remove peer {me} as there are shards on it"
    forced = http.delete(f"/cluster/peer/{me}?force=true")
    assert forced.json()["status"]["error"] == "Bad request: Distributed mode disabled."
    other = http.delete(f"/cluster/peer/{me + 1}")
    assert other.status_code == 400 and other.json()["status"]["error"] == "Bad request: Distributed mode disabled."
    assert http.delete("/cluster/peer/abc").status_code == 404
    assert http.delete("/cluster/peer/-1").status_code == 404
