"""A collection of several local shards (collection/sharded.py), driven through its engine
boundary: writes are split by the hash ring, reads see every shard, counts add up, shard keys
route and select, and everything survives a close and a load."""

from __future__ import annotations


import numpy as np
import pytest

from pydrant.collection.collection import Collection
from pydrant.collection.config import CollectionDefaults, build_config, vector_schema
from pydrant.collection.hash_ring import HashRing
from pydrant.collection.payload_index import create_index_operation
from pydrant.collection.points import prepare_upsert
from pydrant.collection.sharded import ShardedCollection, initialise_collection, is_sharded, open_collection
from pydrant.errors import BadInput
from inprocess import running_collection as running

N = 60


def _config(**extra) -> dict:
    return build_config({"vectors": {"size": 4, "distance": "Dot"}, **extra}, CollectionDefaults())


def _upsert(ids, shard_key=None) -> dict:
    operation = prepare_upsert(
        vector_schema(_config()),
        {"points": [{"id": i, "vector": [1.0, float(n % 5), 0.5, 1.0], "payload": {"n": n}} for n, i in enumerate(ids)]},
    )
    if shard_key is not None:
        operation["shard_key"] = shard_key
    return operation




def test_layout_follows_the_config(tmp_path):
    initialise_collection(tmp_path / "one", "one", _config())
    initialise_collection(tmp_path / "three", "three", _config(shard_number=3))
    initialise_collection(tmp_path / "keyed", "keyed", _config(sharding_method="custom"))
    assert not is_sharded(tmp_path / "one")
    assert is_sharded(tmp_path / "three")
    assert sorted(p.name for p in (tmp_path / "three" / "shards").iterdir()) == ["0", "1", "2"]
    assert list((tmp_path / "keyed" / "shards").iterdir()) == []


async def test_points_are_routed_by_the_ring_and_reads_see_every_shard(tmp_path):
    path = tmp_path / "c"
    initialise_collection(path, "c", _config(shard_number=3))
    ids = list(range(N))
    async with running(path) as collection:
        assert isinstance(collection, ShardedCollection)
        (op_num, status), = await collection.submit([_upsert(ids)])
        assert status == "completed" and op_num >= 1
        ring = HashRing([0, 1, 2])
        expected = {s: sum(1 for i in ids if ring.shard_of(i) == s) for s in (0, 1, 2)}
        assert {s: shard.points_count() for s, shard in collection.shards.items()} == expected
        assert all(expected.values()), "60 ids spread over 3 shards"
        assert collection.points_count() == N
        assert collection.engine.count({}) == N
        assert collection.engine.count({"filter": {"must": [{"key": "n", "range": {"lt": 10}}]}}) == 10
        records, next_offset = collection.engine.scroll({"limit": 7, "offset": 20})
        assert [r.id for r in records] == list(range(20, 27)) and next_offset == 27
        retrieved = collection.engine.retrieve({"ids": [59, 0, 31]})
        assert [r.id for r in retrieved] == [59, 0, 31]
        hits = collection.engine.points(collection.engine.prepare({"query": [0.0, 1.0, 0.0, 0.0], "limit": 12}))
        assert {h.id for h in hits} == {i for i in ids if i % 5 == 4}
        assert collection.info()["points_count"] == N
        assert sum(s["points_count"] for s in collection.local_shards()) == N
        # a filter reaches every shard
        await collection.submit([{"type": "delete_points", "filter": {"must": [{"key": "n", "range": {"lt": 30}}]}}])
        assert collection.engine.count({}) == N - 30
        # payload updates by id reach the shard of each id
        await collection.submit([{"type": "set_payload", "payload": {"x": 1}, "ids": [30, 31, 45, 59]}])
        assert collection.engine.count({"filter": {"must": [{"key": "x", "match": {"value": 1}}]}}) == 4
    async with running(path) as reopened:
        assert reopened.engine.count({}) == N - 30
        assert reopened.engine.count({"filter": {"must": [{"key": "x", "match": {"value": 1}}]}}) == 4


async def test_index_declarations_reach_every_shard_and_the_router(tmp_path):
    path = tmp_path / "c"
    initialise_collection(path, "c", _config(shard_number=2))
    async with running(path) as collection:
        await collection.submit([_upsert(range(20))])
        await collection.submit([create_index_operation("n", "integer")])
        assert collection.payload_index.fields == {"n": "integer"}
        assert all(s.payload_index.fields == {"n": "integer"} for s in collection.shards.values())
        assert collection.info()["payload_schema"]["n"]["points"] == 20
    async with running(path) as reopened:
        assert reopened.payload_index.fields == {"n": "integer"}


async def test_one_shard_collections_refuse_shard_keys(tmp_path):
    path = tmp_path / "plain"
    initialise_collection(path, "plain", _config())
    async with running(path) as collection:
        assert isinstance(collection, Collection)
        with pytest.raises(BadInput, match='Wrong input: Shard key "a" not found'):
            await collection.submit([_upsert([1], shard_key="a")])
        with pytest.raises(BadInput, match="Bad request: Shard key 3 not found"):
            collection.engine_for(3)
        assert collection.engine.count({}) == 0


async def test_auto_sharded_collections_refuse_shard_keys(tmp_path):
    path = tmp_path / "c"
    initialise_collection(path, "c", _config(shard_number=2))
    async with running(path) as collection:
        with pytest.raises(BadInput, match='Wrong input: Shard key "a" not found'):
            await collection.submit([_upsert([1], shard_key="a")])
        with pytest.raises(BadInput, match='Bad request: Shard key "a" not found'):
            collection.engine_for(["a"])
        assert collection.engine.count({}) == 0


async def test_custom_sharding_routes_and_selects_by_key(tmp_path):
    path = tmp_path / "k"
    initialise_collection(path, "k", _config(sharding_method="custom"))
    async with running(path) as collection:
        with pytest.raises(BadInput, match="Wrong input: Shard key not specified"):
            await collection.submit([_upsert([1])])
        with pytest.raises(BadInput, match='Wrong input: Shard key "eu" not found'):
            await collection.submit([_upsert([1], shard_key="eu")])
        assert collection.engine.count({}) == 0  # no shards: empty, not an error
        assert await collection.submit([create_index_operation("n", "integer")]) == [(0, "completed")]
        assert collection.payload_index.fields == {"n": "integer"}  # declared before any shard exists
        await collection.create_shard_key("eu", None)
        assert collection.shards[1].payload_index.fields == {"n": "integer"}  # a new key's shards get it
        await collection.create_shard_key(7, 2)
        assert collection.shard_keys() == {"eu": [1], 7: [2, 3]}  # ids from 1, as Qdrant's
        with pytest.raises(BadInput, match="already exists"):
            await collection.create_shard_key("eu", None)
        await collection.submit([_upsert(range(10), shard_key="eu")])
        await collection.submit([_upsert(range(100, 130), shard_key=7)])
        await collection.submit([_upsert([500], shard_key=["eu", 7])])
        assert collection.engine.count({}) == 10 + 30 + 2  # id 500 lives under both keys
        assert collection.engine_for("eu").count({}) == 11
        assert collection.engine_for(7).count({}) == 31
        assert collection.engine_for(["eu", 7]).count({}) == 42
        records, _ = collection.engine_for(7).scroll({"limit": 3})
        assert [(r.id, r.shard_key) for r in records] == [(100, 7), (101, 7), (102, 7)]
        hits = collection.engine_for("eu").points(collection.engine.prepare({"query": [1, 0, 0, 0], "limit": 3}))
        assert {h.shard_key for h in hits} == {"eu"}
        with pytest.raises(BadInput, match='Bad request: Shard key "us" not found'):
            collection.engine_for("us")
    async with running(path) as reopened:
        assert reopened.shard_keys() == {"eu": [1], 7: [2, 3]}
        assert reopened.engine_for(7).count({}) == 31
        await reopened.delete_shard_key(7)
        assert reopened.engine.count({}) == 11
        assert sorted(p.name for p in (path / "shards").iterdir()) == ["1"]
        with pytest.raises(BadInput, match="does not exist"):
            await reopened.delete_shard_key(7)
        await reopened.create_shard_key("us", None)
        assert reopened.shard_keys()["us"] == [2], "a deleted key's ids are handed out again"


async def test_creating_a_shard_key_on_auto_sharding_is_refused(tmp_path):
    path = tmp_path / "c"
    initialise_collection(path, "c", _config(shard_number=2))
    async with running(path) as collection:
        with pytest.raises(BadInput, match="Shard Key cannot be created with Auto sharding method"):
            await collection.create_shard_key("a", None)


def test_leftover_shard_directories_are_removed_at_load(tmp_path):
    path = tmp_path / "c"
    initialise_collection(path, "c", _config(shard_number=2))
    Collection.initialise(path / "shards" / ".new-5", "c", _config())
    collection = open_collection(path)
    try:
        assert sorted(collection.shards) == [0, 1]
    finally:
        collection._close_files()
    assert sorted(p.name for p in (path / "shards").iterdir()) == ["0", "1"]


def test_random_ids_spread_over_shards_like_the_ring():
    ring = HashRing([0, 1, 2, 3])
    owners = ring.shard_of_ids(np.arange(10_000, dtype=np.uint64))
    counts = np.bincount(owners, minlength=4)
    assert counts.min() > 1_500


async def test_init_from_copies_each_point_into_its_shard(tmp_path):
    initialise_collection(tmp_path / "src", "src", _config())
    async with running(tmp_path / "src") as source:
        await source.submit([_upsert(range(50))])
        await source.submit([create_index_operation("n", "integer")])
        initialise_collection(tmp_path / "dst", "dst", _config(shard_number=3))
        target = open_collection(tmp_path / "dst")
        try:
            assert target.copy_points_from(source) == 50
        finally:
            target._close_files()
    async with running(tmp_path / "dst") as copied:
        ring = HashRing([0, 1, 2])
        assert {s: shard.points_count() for s, shard in copied.shards.items()} == {
            s: sum(1 for i in range(50) if ring.shard_of(i) == s) for s in (0, 1, 2)
        }
        assert copied.payload_index.fields == {"n": "integer"}
        assert all(shard.payload_index.fields == {"n": "integer"} for shard in copied.shards.values())
        assert copied.engine.count({"filter": {"must": [{"key": "n", "range": {"gte": 25}}]}}) == 25
