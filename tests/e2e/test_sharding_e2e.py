"""Local shards end to end with the official client (issue 16 item 6, docs/sharding.md):
auto sharding with `shard_number` 3 on a standalone server, and custom sharding with shard
keys on a cluster of one peer (`cluster.enabled: true`), as Qdrant serves both."""

from __future__ import annotations

import json
import random
import threading

import httpx
import numpy as np
import pytest
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import UnexpectedResponse
from serverproc import ServerProcess

from pydrant.collection.hash_ring import HashRing

pytestmark = pytest.mark.e2e

DIM = 8
POINTS = 300


def _vectors(n: int, seed: int = 7) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, DIM)).astype(np.float32)


@pytest.fixture(scope="module")
def cluster_server(tmp_path_factory):
    """A server in cluster mode: a cluster of one peer, where shard keys work."""
    root = tmp_path_factory.mktemp("cluster")
    proc = ServerProcess(root / "storage", extra_env={"PYDRANT__CLUSTER__ENABLED": "true"}).start()
    yield proc
    proc.stop()
    proc.discard_storage()


def _client(proc) -> QdrantClient:
    return QdrantClient(url=proc.url, timeout=60)


def _error(call) -> tuple[int, str]:
    with pytest.raises(UnexpectedResponse) as caught:
        call()
    return caught.value.status_code, json.loads(caught.value.content)["status"]["error"]


# -- auto sharding, standalone ----------------------------------------------------------------


def test_auto_sharding_routes_by_the_ring_and_reads_merge_every_shard(client, http):
    vectors = _vectors(POINTS)
    client.create_collection(
        "auto3", vectors_config=models.VectorParams(size=DIM, distance=models.Distance.DOT), shard_number=3
    )
    client.upsert(
        "auto3",
        [models.PointStruct(id=i, vector=vectors[i].tolist(), payload={"n": i, "g": i % 4}) for i in range(POINTS)],
        wait=True,
    )
    info = client.get_collection("auto3")
    assert info.config.params.shard_number == 3 and info.points_count == POINTS
    # every shard holds the ids Qdrant's hash ring gives it
    cluster = models.CollectionClusterInfo(**http.get("/collections/auto3/cluster").json()["result"])
    ring = HashRing([0, 1, 2])
    predicted = np.bincount(ring.shard_of_ids(np.arange(POINTS, dtype=np.uint64)), minlength=3).tolist()
    assert cluster.shard_count == 3
    assert [(s.shard_id, s.points_count) for s in cluster.local_shards] == list(zip([0, 1, 2], predicted))
    # counts add up, filters reach every shard
    assert client.count("auto3").count == POINTS
    assert client.count("auto3", count_filter=models.Filter(must=[
        models.FieldCondition(key="g", match=models.MatchValue(value=1))])).count == POINTS // 4
    # exact search equals brute force over all shards
    query = _vectors(1, seed=99)[0]
    found = client.query_points("auto3", query=query.tolist(), limit=15, search_params=models.SearchParams(exact=True))
    expected = np.argsort(-(vectors @ query), kind="stable")[:15]
    assert [p.id for p in found.points] == expected.tolist()
    # scroll pages through every id in order, across shards
    seen, offset = [], None
    while True:
        page, offset = client.scroll("auto3", limit=37, offset=offset)
        seen.extend(p.id for p in page)
        if offset is None:
            break
    assert seen == list(range(POINTS))
    # retrieve ids living in different shards, in the order asked
    assert [p.id for p in client.retrieve("auto3", ids=[299, 0, 150, 7])] == [299, 0, 150, 7]
    # by-id and by-filter updates reach the owning shards
    client.set_payload("auto3", payload={"flag": True}, points=[1, 2, 3, 250], wait=True)
    flagged = models.Filter(must=[models.FieldCondition(key="flag", match=models.MatchValue(value=True))])
    assert client.count("auto3", count_filter=flagged).count == 4
    client.delete("auto3", points_selector=models.FilterSelector(filter=models.Filter(must=[
        models.FieldCondition(key="n", range=models.Range(lt=100))])), wait=True)
    assert client.count("auto3").count == POINTS - 100
    # a payload index is declared once and built in every shard
    client.create_payload_index("auto3", "g", models.PayloadSchemaType.INTEGER, wait=True)
    info = client.get_collection("auto3")
    assert info.payload_schema["g"].points == POINTS - 100
    facet = client.facet("auto3", key="g")
    assert sorted((h.value, h.count) for h in facet.hits) == [(g, sum(1 for i in range(100, POINTS) if i % 4 == g))
                                                              for g in range(4)]


def test_shard_keys_are_refused_in_standalone_mode(client, http):
    client.create_collection(
        "keyed_standalone", vectors_config=models.VectorParams(size=DIM, distance=models.Distance.DOT),
        sharding_method=models.ShardingMethod.CUSTOM,
    )
    assert _error(lambda: client.create_shard_key("keyed_standalone", "eu")) == (
        400, "Bad request: Distributed mode disabled")
    assert _error(lambda: client.upsert("keyed_standalone", [models.PointStruct(id=1, vector=[0.0] * DIM)])) == (
        400, "Wrong input: Shard key not specified")
    assert client.count("keyed_standalone").count == 0
    assert http.get("/cluster").json()["result"] == {"status": "disabled"}
    cluster = http.get("/collections/keyed_standalone/cluster").json()["result"]
    assert cluster["shard_count"] == 0 and cluster["local_shards"] == []


def test_auto_sharded_collection_survives_a_restart(fresh_server):
    client = _client(fresh_server)
    vectors = _vectors(120, seed=3)
    client.create_collection(
        "durable", vectors_config=models.VectorParams(size=DIM, distance=models.Distance.COSINE), shard_number=4
    )
    client.upsert("durable", [models.PointStruct(id=i, vector=vectors[i].tolist(), payload={"n": i})
                              for i in range(120)], wait=False)
    client.delete("durable", points_selector=models.PointIdsList(points=list(range(10))), wait=False)
    client.close()
    fresh_server.kill()  # SIGKILL: only what the WALs hold survives
    fresh_server.start()
    client = _client(fresh_server)
    assert client.count("durable").count == 110
    assert client.get_collection("durable").config.params.shard_number == 4
    assert [p.id for p in client.retrieve("durable", ids=[0, 10, 119])] == [10, 119]
    client.close()


def test_kill_during_multi_shard_upserts_keeps_every_acknowledged_point(fresh_server):
    """Writers upsert batches spread over 3 shards while the server is killed: every
    acknowledged batch is wholly there after the restart."""
    client = _client(fresh_server)
    client.create_collection(
        "crash", vectors_config=models.VectorParams(size=DIM, distance=models.Distance.DOT), shard_number=3
    )
    client.close()
    acknowledged: list[list[int]] = []
    stop = threading.Event()

    def writer(first: int) -> None:
        with httpx.Client(base_url=fresh_server.url, timeout=30) as h:
            batch_start = first
            while not stop.is_set():
                ids = list(range(batch_start, batch_start + 50))
                body = {"points": [{"id": i, "vector": [random.random() for _ in range(DIM)]} for i in ids]}
                try:
                    r = h.put("/collections/crash/points?wait=false", json=body)
                except httpx.HTTPError:
                    return
                if r.status_code == 200:
                    acknowledged.append(ids)
                batch_start += 50

    threads = [threading.Thread(target=writer, args=(k * 10_000_000,)) for k in range(3)]
    for t in threads:
        t.start()
    threading.Event().wait(1.5)  # let the writers run
    fresh_server.kill()
    stop.set()
    for t in threads:
        t.join()
    assert len(acknowledged) >= 3, "the writers got some batches acknowledged before the kill"
    fresh_server.start()
    client = _client(fresh_server)
    expected = [i for batch in acknowledged for i in batch]
    found = set()
    for start in range(0, len(expected), 1000):
        found.update(p.id for p in client.retrieve("crash", ids=expected[start:start + 1000], with_payload=False))
    assert found == set(expected)
    client.close()


# -- custom sharding, one-peer cluster --------------------------------------------------------


def test_custom_sharding_with_shard_keys_on_a_cluster_of_one(cluster_server):
    client = _client(cluster_server)
    status = client.http.distributed_api.cluster_status().result
    assert status.status == "enabled" and list(status.peers) == [str(status.peer_id)]
    assert status.raft_info.role == models.StateRole.LEADER
    client.create_collection(
        "tenants", vectors_config=models.VectorParams(size=DIM, distance=models.Distance.DOT),
        sharding_method=models.ShardingMethod.CUSTOM, shard_number=2,
    )
    assert client.create_shard_key("tenants", "eu")
    assert client.create_shard_key("tenants", 7, shards_number=1)
    assert _error(lambda: client.create_shard_key("tenants", "eu")) == (
        400, 'Bad request: Sharding key "eu" already exists for collection tenants')
    cluster = client.http.distributed_api.collection_cluster_info("tenants").result
    assert [(s.shard_id, s.shard_key) for s in cluster.local_shards] == [(1, "eu"), (2, "eu"), (3, 7)]

    eu, other = _vectors(40, seed=1), _vectors(25, seed=2)
    client.upsert("tenants", [models.PointStruct(id=i, vector=eu[i].tolist(), payload={"t": "eu"}) for i in range(40)],
                  shard_key_selector="eu", wait=True)
    client.upsert("tenants", [models.PointStruct(id=100 + i, vector=other[i].tolist(), payload={"t": "seven"})
                              for i in range(25)], shard_key_selector=7, wait=True)
    assert _error(lambda: client.upsert("tenants", [models.PointStruct(id=1, vector=[0.0] * DIM)])) == (
        400, "Wrong input: Shard key not specified")
    assert _error(lambda: client.upsert("tenants", [models.PointStruct(id=1, vector=[0.0] * DIM)],
                                        shard_key_selector="us")) == (400, 'Wrong input: Shard key "us" not found')

    assert client.count("tenants").count == 65
    assert client.count("tenants", shard_key_selector="eu").count == 40
    assert client.count("tenants", shard_key_selector=[7]).count == 25
    hits = client.query_points("tenants", query=eu[3].tolist(), limit=5, shard_key_selector=7).points
    assert {h.id for h in hits} <= set(range(100, 125)) and {h.shard_key for h in hits} == {7}
    hits = client.query_points("tenants", query=eu[3].tolist(), limit=1, shard_key_selector="eu",
                               search_params=models.SearchParams(exact=True)).points
    assert hits[0].id == int(np.argmax(eu @ eu[3])) and hits[0].shard_key == "eu"
    # across keys: a list of keys, or none (every shard)
    probe = (eu[5] + other[5]).tolist()
    both = client.query_points("tenants", query=probe, limit=65, shard_key_selector=["eu", 7],
                               search_params=models.SearchParams(exact=True)).points
    assert len(both) == 65 and {h.shard_key for h in both} == {"eu", 7}
    everywhere = client.query_points("tenants", query=probe, limit=65, search_params=models.SearchParams(exact=True))
    assert [(h.id, h.shard_key) for h in everywhere.points] == [(h.id, h.shard_key) for h in both]
    records, _ = client.scroll("tenants", limit=100, shard_key_selector="eu")
    assert len(records) == 40 and {r.shard_key for r in records} == {"eu"}
    assert _error(lambda: client.count("tenants", shard_key_selector="us")) == (
        400, 'Bad request: Shard key "us" not found')

    assert client.delete_shard_key("tenants", 7)
    assert client.count("tenants").count == 40
    assert _error(lambda: client.delete_shard_key("tenants", 7)) == (
        400, "Bad request: Sharding key 7 does not exists for collection tenants")

    cluster_server.restart()
    client = _client(cluster_server)
    assert client.count("tenants", shard_key_selector="eu").count == 40
    cluster = client.http.distributed_api.collection_cluster_info("tenants").result
    assert [(s.shard_id, s.shard_key) for s in cluster.local_shards] == [(1, "eu"), (2, "eu")]
    ring = HashRing([1, 2])
    assert [s.points_count for s in cluster.local_shards] == [
        sum(1 for i in range(40) if ring.shard_of(i) == shard_id) for shard_id in (1, 2)
    ]
    client.close()


def test_shard_keys_need_custom_sharding(cluster_server):
    client = _client(cluster_server)
    client.create_collection("autokeys", vectors_config=models.VectorParams(size=DIM, distance=models.Distance.DOT))
    assert _error(lambda: client.create_shard_key("autokeys", "eu")) == (
        400, "Bad request: Shard Key cannot be created with Auto sharding method")
    assert _error(lambda: client.create_shard_key("missing_collection", "eu"))[0] == 404
    client.close()
