"""The split of write operations over shards (collection/routing.py)."""

from __future__ import annotations

import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from pydrant.collection import routing
from pydrant.collection.hash_ring import HashRing

RING = HashRing([0, 1, 2])
point_ids = st.one_of(st.integers(0, 2**64 - 1), st.uuids().map(str))


def test_keys_display_as_qdrant_writes_them():
    assert routing.display_key("eu") == '"eu"'
    assert routing.display_key(7) == "7"
    assert routing.write_key_not_found("eu").message == 'Wrong input: Shard key "eu" not found'
    assert routing.read_key_not_found(7).message == "Bad request: Shard key 7 not found"


def test_key_list_keeps_order_and_drops_repeats():
    assert routing.key_list("a") == ["a"]
    assert routing.key_list(["b", "a", "b", 3]) == ["b", "a", 3]


def test_take_shard_key_removes_it():
    operation = {"type": "delete_points", "ids": [1], "shard_key": "a"}
    assert routing.take_shard_key(operation) == "a"
    assert "shard_key" not in operation
    assert routing.take_shard_key(operation) is None


@settings(max_examples=50, deadline=None)
@given(st.lists(point_ids, min_size=1, max_size=60, unique=True))
def test_upsert_points_go_to_the_shard_the_ring_picks(ids):
    points = [{"id": i, "vectors": {}, "payload": {"n": n}} for n, i in enumerate(ids)]
    parts = routing.split({"type": "upsert", "points": points}, RING, [0, 1, 2])
    seen = []
    for shard_id, part in parts.items():
        assert part["type"] == "upsert"
        assert part["points"], "a shard with no points gets no part"
        for point in part["points"]:
            assert RING.shard_of(point["id"]) == shard_id
        seen.extend(p["id"] for p in part["points"])
    assert sorted(map(str, seen)) == sorted(map(str, ids))


@settings(max_examples=50, deadline=None)
@given(st.lists(point_ids, min_size=1, max_size=60))
def test_ids_are_split_keeping_their_order_per_shard(ids):
    parts = routing.split({"type": "set_payload", "payload": {"a": 1}, "ids": ids}, RING, [0, 1, 2])
    for shard_id, part in parts.items():
        assert part["payload"] == {"a": 1}
        assert part["ids"] == [i for i in ids if RING.shard_of(i) == shard_id]
    assert sum(len(p["ids"]) for p in parts.values()) == len(ids)


def test_filter_operations_go_whole_to_every_shard():
    operation = {"type": "delete_points", "filter": {"must": []}}
    parts = routing.split(operation, RING, [0, 1, 2])
    assert sorted(parts) == [0, 1, 2]
    assert all(part is operation for part in parts.values())


def test_one_target_shard_takes_the_operation_unsplit():
    operation = {"type": "upsert", "points": [{"id": 5}, {"id": str(uuid.uuid4())}]}
    assert routing.split(operation, HashRing([4]), [4]) == {4: operation}


def test_an_operation_naming_no_point_goes_to_the_first_shard():
    operation = {"type": "upsert", "points": []}
    assert routing.split(operation, RING, [0, 1, 2]) == {0: operation}
