"""Shard snapshots: Qdrant's `/collections/{name}/shards/{shard_id}/snapshots`
(docs/snapshots.md "Shard snapshots").

The shards of a collection: a one-shard collection has shard 0, holding all its points; a
sharded one (collection/sharded.py) has the shards its `shards.json` lists (0..n-1 for auto
sharding, those of its shard keys for custom sharding). Any other shard id is Qdrant's
missing shard: 404 `Not found: shard <id> not found`.

A shard snapshot is one shard's cut in the collection snapshot format of version 1 (the
same tar, checked and unpacked by the same code, collection/snapshots.py) whose
`snapshot.json` adds `"shard_id"` and `"shard_key"`. They are kept where Qdrant keeps them,
`<snapshots_path>/<collection>/shards/<shard_id>/`, named
`<collection>-shard-<shard_id>-<YYYY-MM-DD-HH-MM-SS>.snapshot`.

Recovering a shard snapshot replaces that shard's data — the segments and the WAL records
the snapshot holds — and keeps what belongs to the collection, as in Qdrant, where a shard
snapshot carries no collection config: the collection's config, its payload index
declarations, its aliases and its other shards stay as they are. The collection must
exist, and its vectors config must equal the snapshot's (400 `Snapshot is not compatible
with existing collection`; Qdrant leaves this check as a TODO and would load incompatible
segments). The snapshot is unpacked and opened once under `pending/` first; then a
one-shard collection is swapped whole as a collection recovery swaps it
(TableOfContent.swap_in), and a sharded collection swaps that one shard's directory
(`ShardedCollection.replace_shard`: writes paused, the shard closed, the directories
exchanged, the new shard opened), requests to the collection waiting for the swap as they
do for a recovery's. A snapshot of another shard (or collection) may be recovered into a
shard, as Qdrant allows; its points then may not hash to it (reads find them, writes of
their ids go to the shard their hash names): a warning is logged.
"""

from __future__ import annotations

import logging
import shutil
import uuid
from pathlib import Path

import trio

from pydrant.collection import snapshots
from pydrant.collection.collection import CONFIG_FILE, Collection
from pydrant.collection.payload_index import INDEX_FILE as PAYLOAD_INDEX_FILE
from pydrant.collection.sharded import ShardedCollection
from pydrant.errors import BadInput, NotFound
from pydrant.fsutil import read_json, write_json_atomic
from pydrant.storage.toc import exchange_directories

log = logging.getLogger("pydrant.storage.shard_snapshots")

LOCAL_SHARD = 0  # the one shard of a one-shard collection


def check_shard(collection, shard_id: int) -> None:
    """A shard the collection has; any other id is Qdrant's `shard_not_found_error`."""
    exists = shard_id in collection.shards if isinstance(collection, ShardedCollection) else shard_id == LOCAL_SHARD
    if not exists:
        raise NotFound(f"Not found: shard {shard_id} not found")


def shard_of(collection, shard_id: int) -> Collection:
    """The shard `shard_id` of the collection (a one-shard collection is its own shard 0)."""
    check_shard(collection, shard_id)
    return collection.shards[shard_id] if isinstance(collection, ShardedCollection) else collection


def shard_dir(toc, name: str, shard_id: int) -> Path:
    """`<snapshots_path>/<collection>/shards/<shard_id>/` of the collection `name` (or the
    one aliased by `name`); 404 for an unknown collection, then for a shard it lacks."""
    collection = toc.get(name)  # 404, or the load failure, first
    check_shard(collection, shard_id)
    return toc.snapshots_dir(name) / snapshots.SHARDS_DIR / str(shard_id)


async def create_shard_snapshot(toc, name: str, shard_id: int) -> dict:
    """Snapshot shard `shard_id` of the collection: the shard's cut as a collection snapshot
    takes it (under the meta lock, the collection's layout lock for a sharded one, so the
    shard is not dropped or swapped meanwhile, and the shard's apply lock), tarred with no
    lock held."""
    staging = toc.pending_dir / f"snapshot-{uuid.uuid4().hex}"
    try:
        async with toc.meta_lock:
            collection = toc.get(name)
            if isinstance(collection, ShardedCollection):
                async with collection.layout_lock:
                    shard = shard_of(collection, shard_id)
                    key = collection.shard_key_of(shard_id)
                    await trio.to_thread.run_sync(_take, shard, staging, shard_id, key)
            else:
                shard = shard_of(collection, shard_id)
                await trio.to_thread.run_sync(_take, shard, staging, shard_id, None)
        directory = toc.snapshots_root / collection.name / snapshots.SHARDS_DIR / str(shard_id)
        return await trio.to_thread.run_sync(_archive, staging, directory, collection.name, shard_id)
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(shutil.rmtree, staging, True)


def _take(shard: Collection, staging: Path, shard_id: int, key) -> None:
    snapshots.take(shard, staging)
    meta = read_json(staging / snapshots.META_FILE)
    meta["shard_id"] = shard_id
    meta["shard_key"] = key
    write_json_atomic(staging / snapshots.META_FILE, meta)


def _archive(staging: Path, directory: Path, collection: str, shard_id: int) -> dict:
    name = snapshots.unique_name(directory, f"{collection}-shard-{shard_id}-{snapshots.timestamp()}")
    return snapshots.write_archive(staging, directory, name)


async def recover_shard(toc, name: str, shard_id: int, snapshot_file: Path) -> None:
    """Replace the points of shard `shard_id` with the snapshot's, keeping the collection's
    config, payload index declarations, aliases and other shards. The snapshot is unpacked
    and opened once under `pending/` before anything is replaced; a refusal changes
    nothing."""
    check_shard(toc.get(name), shard_id)
    staging = toc.pending_dir / f"recover-{uuid.uuid4().hex}"
    try:
        config = await trio.to_thread.run_sync(lambda: snapshots.unpack(snapshot_file, staging, shard=True))
        await trio.to_thread.run_sync(snapshots.validate_loadable, staging)
        async with toc.meta_lock:
            existing = toc.get(name)  # it may have been deleted or replaced meanwhile
            check_shard(existing, shard_id)
            ours = existing.config.get("params", {}).get("vectors")
            theirs = config.get("params", {}).get("vectors")
            if ours != theirs:
                raise BadInput(
                    "Wrong input: Snapshot is not compatible with existing collection: Collection vectors: "
                    f"{ours} Snapshot Vectors: {theirs}"
                )
            await trio.to_thread.run_sync(_keep_collection_files, existing, staging)
            if isinstance(existing, ShardedCollection):
                await _swap_shard(toc, existing, shard_id, staging)
            else:
                await toc.swap_in(existing.name, staging)
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(shutil.rmtree, staging, True)
    log.info("shard %d of collection %s recovered from snapshot %s", shard_id, name, snapshot_file.name)


async def _swap_shard(toc, collection: ShardedCollection, shard_id: int, staging: Path) -> None:
    """Swap one shard of a sharded collection; requests that arrive for the collection
    meanwhile wait for it (`toc.wait_for_swap`), as they do for a collection's swap."""
    done = toc.swapping[collection.name] = trio.Event()
    try:
        await collection.replace_shard(shard_id, staging, exchange_directories)
    finally:
        del toc.swapping[collection.name]
        done.set()


def _keep_collection_files(existing, staging: Path) -> None:
    """The collection's own files replace the snapshot's: its config and its payload index
    declarations (the indexes are rebuilt from them when the shard opens)."""
    write_json_atomic(staging / CONFIG_FILE, existing.config)
    write_json_atomic(staging / PAYLOAD_INDEX_FILE, {"fields": dict(existing.payload_index.fields)})
