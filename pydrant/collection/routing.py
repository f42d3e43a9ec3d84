"""Shard keys and the split of a write operation over shards (docs/sharding.md).

An operation that names its points (`points` of an upsert or a vector update, `ids` of the
others) is split by the hash ring of the shards it may go to: each shard gets the part
whose points hash to it. An operation that selects by `filter`, and every payload index
change, goes whole to each shard (Qdrant's `OperationToShard::ToAll`).

`shard_key` rides on an operation from the HTTP layer to the collection under
`SHARD_KEY`; the collection takes it off before anything is logged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydrant.collection.hash_ring import HashRing
from pydrant.collection.reads import ReadEngine
from pydrant.errors import BadInput

SHARD_KEY = "shard_key"


def display_key(key: Any) -> str:
    """A shard key as Qdrant's `Display` writes it in messages: keywords quoted."""
    return f'"{key}"' if isinstance(key, str) else str(key)


def key_list(selector: Any) -> list:
    """A ShardKeySelector (one key or a list of keys) as a list of keys, in order, unique."""
    keys = selector if isinstance(selector, list) else [selector]
    return list(dict.fromkeys(keys))


def write_key_not_found(key: Any) -> BadInput:
    # Qdrant: `ShardHolder::split_by_shard`, CollectionError::bad_input
    return BadInput(f"Wrong input: Shard key {display_key(key)} not found")


def read_key_not_found(key: Any) -> BadInput:
    # Qdrant: `ShardHolder::select_shards`, CollectionError::bad_request
    return BadInput(f"Bad request: Shard key {display_key(key)} not found")


KEY_NOT_SPECIFIED = "Wrong input: Shard key not specified"


class NoShards:
    """A collection as a read that selects no shard sees it (a `shard_key` of `[]`): no
    segments, so no points. Qdrant answers such a read from no shard (`select_shards` of
    an empty key list) rather than refusing it, whatever the collection."""

    segments: list = []

    def __init__(self, collection):
        self._collection = collection
        self.reads = ReadEngine(self)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._collection, name)


def take_shard_key(operation: dict) -> Any:
    """The operation's shard key selector (None when it has none), taken off it."""
    return operation.pop(SHARD_KEY, None)


def split(operation: dict, ring: HashRing, shard_ids: Sequence[int]) -> dict[int, dict]:
    """shard id -> the part of `operation` for it. By-point operations are split by the ring
    (a shard none of whose points hash to it gets no part); the rest go to every shard of
    `shard_ids`. An operation that names no point at all goes to the first shard, which
    answers it as a one-shard collection would."""
    if len(shard_ids) == 1:
        return {shard_ids[0]: operation}
    if isinstance(operation.get("points"), list):
        return _split_list(operation, "points", [p["id"] for p in operation["points"]], ring, shard_ids)
    if isinstance(operation.get("ids"), list):
        return _split_list(operation, "ids", operation["ids"], ring, shard_ids)
    return {shard_id: operation for shard_id in shard_ids}


def _split_list(operation: dict, field: str, ids: list, ring: HashRing, shard_ids: Sequence[int]) -> dict[int, dict]:
    if not ids:
        return {shard_ids[0]: operation}
    owners = ring.shard_of_points(ids)
    items = operation[field]
    grouped: dict[int, list] = {}
    for item, owner in zip(items, owners.tolist()):
        grouped.setdefault(int(owner), []).append(item)
    return {owner: {**operation, field: part} for owner, part in sorted(grouped.items())}
