"""Shard snapshots: Qdrant's `/collections/{name}/shards/{shard_id}/snapshots` on a node
whose collections each have one local shard, id 0 (docs/snapshots.md "Shard snapshots").

Shard 0 holds all of a collection's points, so a shard snapshot is a collection snapshot
(the same tar, checked and unpacked by the same code, collection/snapshots.py) whose
`snapshot.json` adds `"shard_id": 0`. They are kept where Qdrant keeps them,
`<snapshots_path>/<collection>/shards/<shard_id>/`, named
`<collection>-shard-<shard_id>-<YYYY-MM-DD-HH-MM-SS>.snapshot`. Any other shard id is
Qdrant's missing shard: 404 `Not found: shard <id> not found`.

Recovering a shard snapshot replaces the shard's data — the segments and the WAL records
the snapshot holds — and keeps what belongs to the collection, as in Qdrant, where a shard
snapshot carries no collection config: the collection's config, its payload index
declarations and its aliases stay as they are. The collection must exist, and its vectors
config must equal the snapshot's (400 `Snapshot is not compatible with existing
collection`; Qdrant leaves this check as a TODO and would load incompatible segments). The
swap is the one collection recovery makes (TableOfContent.swap_in).
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
from pydrant.errors import BadInput, NotFound
from pydrant.fsutil import read_json, write_json_atomic

log = logging.getLogger("pydrant.storage.shard_snapshots")

LOCAL_SHARD = 0


def check_shard(shard_id: int) -> None:
    """Only shard 0 exists; any other id is Qdrant's `shard_not_found_error`."""
    if shard_id != LOCAL_SHARD:
        raise NotFound(f"Not found: shard {shard_id} not found")


def shard_dir(toc, name: str, shard_id: int) -> Path:
    """`<snapshots_path>/<collection>/shards/<shard_id>/` of the collection `name` (or the
    one aliased by `name`); 404 for an unknown collection, then for another shard than 0."""
    toc.get(name)  # 404, or the load failure, first
    check_shard(shard_id)
    return toc.snapshots_dir(name) / snapshots.SHARDS_DIR / str(shard_id)


async def create_shard_snapshot(toc, name: str, shard_id: int) -> dict:
    """Snapshot shard `shard_id` of the collection: the cut as a collection snapshot takes
    it (under the meta lock and the collection's apply lock), tarred with no lock held."""
    staging = toc.pending_dir / f"snapshot-{uuid.uuid4().hex}"
    try:
        async with toc.meta_lock:
            collection = toc.get(name)
            check_shard(shard_id)
            await trio.to_thread.run_sync(_take, collection, staging, shard_id)
        directory = toc.snapshots_root / collection.name / snapshots.SHARDS_DIR / str(shard_id)
        return await trio.to_thread.run_sync(_archive, staging, directory, collection.name, shard_id)
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(shutil.rmtree, staging, True)


def _take(collection: Collection, staging: Path, shard_id: int) -> None:
    snapshots.take(collection, staging)
    meta = read_json(staging / snapshots.META_FILE)
    meta["shard_id"] = shard_id
    write_json_atomic(staging / snapshots.META_FILE, meta)


def _archive(staging: Path, directory: Path, collection: str, shard_id: int) -> dict:
    name = snapshots.unique_name(directory, f"{collection}-shard-{shard_id}-{snapshots.timestamp()}")
    return snapshots.write_archive(staging, directory, name)


async def recover_shard(toc, name: str, shard_id: int, snapshot_file: Path) -> None:
    """Replace the points of shard `shard_id` (the collection's data) with the snapshot's,
    keeping the collection's config, payload index declarations and aliases. The snapshot
    is unpacked and opened once under `pending/` before anything is replaced; a refusal
    changes nothing."""
    toc.get(name)
    check_shard(shard_id)
    staging = toc.pending_dir / f"recover-{uuid.uuid4().hex}"
    try:
        config = await trio.to_thread.run_sync(snapshots.unpack, snapshot_file, staging)
        await trio.to_thread.run_sync(snapshots.validate_loadable, staging)
        async with toc.meta_lock:
            existing = toc.get(name)  # it may have been deleted or replaced meanwhile
            ours = existing.config.get("params", {}).get("vectors")
            theirs = config.get("params", {}).get("vectors")
            if ours != theirs:
                raise BadInput(
                    "Wrong input: Snapshot is not compatible with existing collection: Collection vectors: "
                    f"{ours} Snapshot Vectors: {theirs}"
                )
            await trio.to_thread.run_sync(_keep_collection_files, existing, staging)
            await toc.swap_in(existing.name, staging)
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(shutil.rmtree, staging, True)
    log.info("shard %d of collection %s recovered from snapshot %s", shard_id, name, snapshot_file.name)


def _keep_collection_files(existing: Collection, staging: Path) -> None:
    """The collection's own files replace the snapshot's: its config and its payload index
    declarations (the indexes are rebuilt from them when the collection opens)."""
    write_json_atomic(staging / CONFIG_FILE, existing.config)
    write_json_atomic(staging / PAYLOAD_INDEX_FILE, {"fields": dict(existing.payload_index.fields)})
