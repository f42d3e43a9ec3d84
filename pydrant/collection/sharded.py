"""A collection of several local shards, or a custom-sharded one: the router.

A shard is what a one-shard collection is (collection/collection.py `Collection`): its own
WAL, segments, manifest, update worker, flusher and optimizer, in `shards/<id>/`. The
router owns what is collection-wide and presents the face the rest of pydrant uses
(`engine`, `submit`, `info`, `config`, `set_config`, `compile_filter`, `payload_index`,
`rate_limits`, `run`, `close`):

  collections/<name>/
    config.json          the collection config; the shards' copies follow it
    payload_index.json   the payload index declarations (also in every shard)
    shards.json          {"format", "sharding_method", "shards": [{"id", "key"}]}: the
                         commit point of the layout, replaced atomically
    shards/<id>/         one shard: a complete one-shard collection directory

Collections of one auto shard keep the one-shard layout (no router): nothing changes for
them. Sharding follows Qdrant (docs/sharding.md):
- auto sharding: `shard_number` shards, ids 0..n-1, a point goes to the shard Qdrant's hash
  ring picks for its id (collection/hash_ring.py);
- custom sharding: no shards until a shard key is created (cluster mode only, as Qdrant);
  each key has `shards_number` shards with ids counting on from the largest id ever used,
  and a ring of its own.

Writes: strict mode once for the request, then each operation is split by shard
(collection/routing.py) and its parts are queued to their shards together; the answer's
`operation_id` is the largest of the parts' (each shard numbers its own operations, as
Qdrant's do). Reads go over the segments of the selected shards (all of them without a
`shard_key`): the read engine merges segments exactly as it merges a one-shard
collection's, so counts add up and top-k merges are exact.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio

from pydrant.collection import strict
from pydrant.collection.barrier import WriteBarrier
from pydrant.collection.collection import (
    CONFIG_FILE,
    Collection,
    Lookup,
    check_strict_writes,
    flag_ids_must_exist,
)
from pydrant.collection.config import vector_schema
from pydrant.collection.engine import Engine
from pydrant.collection.hash_ring import HashRing
from pydrant.collection.payload_index import INDEX_FILE as PAYLOAD_INDEX_FILE
from pydrant.collection.payload_index import INDEX_OPERATIONS, PayloadIndexTable
from pydrant.collection.predicates import Predicate
from pydrant.collection.reads import ReadEngine
from pydrant.collection.routing import (
    KEY_NOT_SPECIFIED,
    display_key,
    key_list,
    read_key_not_found,
    split,
    take_shard_key,
    write_key_not_found,
)
from pydrant.errors import BadInput, NotFound, ServiceError
from pydrant.fsutil import fsync_dir, read_json, write_json_atomic
from pydrant.segments.filters import compile_filter
from pydrant.segments.indexed import IndexedSegment

log = logging.getLogger("pydrant.collection")

SHARDS_FILE = "shards.json"
SHARDS_DIR = "shards"
LAYOUT_FORMAT = 1
NEW_SHARD_PREFIX = ".new-"


def needs_router(config: dict) -> bool:
    """Whether a new collection with this config is sharded: more than one shard, or custom
    sharding (whose shards come and go with its keys)."""
    params = config["params"]
    return (params.get("shard_number") or 1) > 1 or params.get("sharding_method") == "custom"


def is_sharded(path: Path) -> bool:
    """Whether the collection directory at `path` has the sharded layout."""
    return (path / SHARDS_FILE).exists()


def open_collection(path: Path, lookup: Lookup | None = None) -> Collection | ShardedCollection:
    """The collection at `path`, whichever its layout (blocking)."""
    if is_sharded(path):
        return ShardedCollection.load(path, lookup)
    return Collection.load(path, lookup)


def initialise_collection(path: Path, name: str, config: dict) -> None:
    """A new, empty collection at `path`, in the layout its config calls for (blocking)."""
    if needs_router(config):
        ShardedCollection.initialise(path, name, config)
    else:
        Collection.initialise(path, name, config)


class ShardedCollection:
    def __init__(self, path: Path, config: dict, layout: dict, shards: dict[int, Collection], lookup: Lookup | None):
        self.path = path
        self.name = path.name
        self.config = config
        self.schema = vector_schema(config)
        self.layout = layout
        self.shards = shards
        self.payload_index = PayloadIndexTable.load(path)
        self.rate_limits = strict.RateLimits(config)
        self.config_lock = trio.Lock()  # read-merge-write of config.json (PATCH)
        self.layout_lock = trio.Lock()  # shard key creation and deletion
        self.write_barrier = WriteBarrier()  # writes pass it; snapshots pause it (collection/barrier.py)
        self._lookup = lookup or self._only_itself
        self.reads = ReadEngine(self)
        self.engine = ShardedEngine(self, self._lookup)
        self.optimizer = _Optimizers(self)
        self.wal = _Wals(self)
        self._rings: dict[Any, HashRing] = {}
        self._build_rings()
        self._nursery: trio.Nursery | None = None
        self._cancel: trio.CancelScope | None = None
        self._stopped = trio.Event()
        self._closed = False

    # -- creation and loading (blocking) --------------------------------------------------

    @staticmethod
    def initialise(path: Path, name: str, config: dict) -> None:
        """The directory of a new sharded collection: `shard_number` shards for auto
        sharding, none for custom sharding (they come with shard keys)."""
        path.mkdir(parents=True)
        write_json_atomic(path / CONFIG_FILE, config)
        params = config["params"]
        custom = params.get("sharding_method") == "custom"
        shards = [] if custom else [{"id": i, "key": None} for i in range(params.get("shard_number") or 1)]
        (path / SHARDS_DIR).mkdir()
        for shard in shards:
            Collection.initialise(path / SHARDS_DIR / str(shard["id"]), name, config)
        fsync_dir(path / SHARDS_DIR)
        write_json_atomic(
            path / SHARDS_FILE,
            {"format": LAYOUT_FORMAT, "sharding_method": "custom" if custom else "auto", "shards": shards},
        )

    @classmethod
    def load(cls, path: Path, lookup: Lookup | None = None) -> ShardedCollection:
        """Open every shard (each replays its own WAL). Shard directories the layout does
        not list are leftovers of an interrupted key creation or deletion: removed."""
        config = read_json(path / CONFIG_FILE)
        layout = read_json(path / SHARDS_FILE)
        if layout.get("format") != LAYOUT_FORMAT:
            raise ServiceError(f"unknown shard layout format {layout.get('format')!r} in {path / SHARDS_FILE}")
        listed = {str(shard["id"]) for shard in layout["shards"]}
        shards_dir = path / SHARDS_DIR
        for entry in sorted(shards_dir.iterdir()) if shards_dir.exists() else []:
            if entry.name not in listed:
                log.warning("collection %s: removing %s, a shard no longer in its layout", path.name, entry)
                shutil.rmtree(entry, ignore_errors=True)
        shards: dict[int, Collection] = {}
        try:
            for shard in layout["shards"]:
                shard_path = shards_dir / str(shard["id"])
                _follow_config(shard_path, config)
                shards[shard["id"]] = Collection.load(shard_path, lookup, name=path.name)
        except BaseException:
            for opened in shards.values():
                opened._close_files()
            raise
        collection = cls(path, config, layout, shards, lookup)
        collection._follow_index_declarations()
        return collection

    def copy_points_from(self, source) -> int:
        """`init_from` into a new sharded collection (blocking, before it runs): each shard
        copies the source's points that hash to it, and every index declaration. A custom
        collection has no shards yet: it takes the declarations only (Qdrant copies the
        points into the shards that exist)."""
        copied = 0
        ring = self._rings.get(None)
        for shard_id, shard in self.shards.items():
            def owned(ids: list, shard_id: int = shard_id) -> list:
                return (ring.shard_of_points(ids) == shard_id).tolist() if ring is not None and ids else []

            copied += shard.copy_points_from(source, owned)
        write_json_atomic(self.path / PAYLOAD_INDEX_FILE, {"fields": dict(source.payload_index.fields)})
        self.payload_index = PayloadIndexTable.load(self.path)
        return copied

    def _follow_index_declarations(self) -> None:
        """The router's index table is the shards' (they applied the last index change; a
        crash may have come before the router's copy was written)."""
        if not self.shards:
            return
        first = self.shards[min(self.shards)].payload_index.fields
        if first != self.payload_index.fields:
            write_json_atomic(self.path / PAYLOAD_INDEX_FILE, {"fields": dict(first)})
            self.payload_index = PayloadIndexTable.load(self.path)

    def _only_itself(self, name: str) -> Any:
        if name == self.name:
            return self
        raise NotFound(f"Not found: Collection `{name}` doesn't exist!")

    # -- layout ---------------------------------------------------------------------------

    @property
    def sharding_method(self) -> str:
        return self.layout["sharding_method"]

    @property
    def custom(self) -> bool:
        return self.sharding_method == "custom"

    def shard_key_of(self, shard_id: int) -> Any:
        return next(s["key"] for s in self.layout["shards"] if s["id"] == shard_id)

    def shard_keys(self) -> dict[Any, list[int]]:
        """key -> its shard ids, keys in creation order (None for auto sharding)."""
        keys: dict[Any, list[int]] = {}
        for shard in self.layout["shards"]:
            keys.setdefault(shard["key"], []).append(shard["id"])
        return keys

    def _build_rings(self) -> None:
        self._rings = {key: HashRing(ids) for key, ids in self.shard_keys().items()}

    def _write_targets(self, selector: Any) -> list[tuple[HashRing, list[int]]]:
        """(ring, shard ids) of each key a write selects, Qdrant's errors for the others."""
        if selector is None:
            if self.custom:
                raise BadInput(KEY_NOT_SPECIFIED)
            return [(self._rings[None], self.shard_keys()[None])]
        targets = []
        keys = self.shard_keys()
        for key in key_list(selector):
            if not self.custom or key not in keys:
                raise write_key_not_found(key)
            targets.append((self._rings[key], keys[key]))
        return targets

    def read_shards(self, selector: Any) -> list[int]:
        """The shard ids a read selects: every shard without a key, else the keys' shards."""
        if selector is None:
            return sorted(self.shards)
        keys = self.shard_keys()
        selected: list[int] = []
        for key in key_list(selector):
            if not self.custom or key not in keys:
                raise read_key_not_found(key)
            selected.extend(i for i in keys[key] if i not in selected)
        return selected

    # -- running --------------------------------------------------------------------------

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Every shard's tasks, in one nursery that also takes the shards of new keys."""
        try:
            with trio.CancelScope() as scope:
                self._cancel = scope
                async with trio.open_nursery() as nursery:
                    self._nursery = nursery
                    for shard_id in sorted(self.shards):
                        await nursery.start(self.shards[shard_id].run)
                    task_status.started()
                    await trio.sleep_forever()
        finally:
            self._stopped.set()

    async def close(self) -> None:
        """Close every shard (each flushes its segments), then stop. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for shard in list(self.shards.values()):
            await shard.close()
        if self._cancel is not None:
            self._cancel.cancel()
            with trio.CancelScope(shield=True):
                await self._stopped.wait()

    def _close_files(self) -> None:
        for shard in self.shards.values():
            shard._close_files()

    # -- writes ---------------------------------------------------------------------------

    async def submit(self, operations: list[dict], *, wait: bool = True) -> list[tuple[int, str]]:
        """The writes of one request, in order: strict mode for all of them first (over the
        whole collection), then each operation's parts queued to their shards together;
        `(largest part's op_num, status)` of each."""
        selectors = [take_shard_key(operation) for operation in operations]
        # Every operation's shard keys are checked before any is queued, so a bad key in a
        # batch writes nothing (as a bad operation in a one-shard batch writes nothing).
        for operation, selector in zip(operations, selectors):
            if operation["type"] not in INDEX_OPERATIONS:
                self._write_targets(selector)
        await check_strict_writes(self, operations)
        flag_ids_must_exist(operations)
        return [await self._submit_one(op, selector, wait) for op, selector in zip(operations, selectors)]

    async def _submit_one(self, operation: dict, selector: Any, wait: bool) -> tuple[int, str]:
        if operation["type"] in INDEX_OPERATIONS:
            parts = {shard_id: operation for shard_id in sorted(self.shards)}
        else:
            parts = {}
            for ring, shard_ids in self._write_targets(selector):
                for shard_id, part in split(operation, ring, shard_ids).items():
                    parts[shard_id] = part
        for shard_id in parts:
            self.shards[shard_id].check_writable()
        results: dict[int, tuple[int, str]] = {}
        errors: list[BaseException] = []

        async def one(shard_id: int, part: dict) -> None:
            try:
                results[shard_id] = await self.shards[shard_id].update(part, wait=wait)
            except (BadInput, NotFound, ServiceError) as exc:
                errors.append(exc)

        async with self.write_barrier.writing(), trio.open_nursery() as nursery:
            for shard_id, part in parts.items():
                nursery.start_soon(one, shard_id, part)
        if errors:
            raise errors[0]  # Qdrant answers the first error of the failed parts
        if operation["type"] in INDEX_OPERATIONS:  # the router's declarations follow its shards'
            await trio.to_thread.run_sync(self.payload_index.apply, operation)
        # no part at all: an index change on a custom collection that has no shards yet
        op_num = max((op_num for op_num, _ in results.values()), default=0)
        return op_num, "completed" if wait else "acknowledged"

    def check_writable(self) -> None:
        for shard in self.shards.values():
            shard.check_writable()

    def size_stats(self) -> strict.SizeStats:
        stats = [shard.size_stats() for shard in self.shards.values()]
        return strict.SizeStats(
            sum(s.vector_bytes for s in stats), sum(s.payload_bytes for s in stats), sum(s.points for s in stats)
        )

    def _count_matching(self, filter_: dict) -> int:
        return self.reads.count(self.compile_filter(filter_))

    # -- reads ----------------------------------------------------------------------------

    @property
    def segments(self) -> list:
        return [segment for shard_id in sorted(self.shards) for segment in self.shards[shard_id].segments]

    def engine_for(self, selector: Any) -> Engine:
        """The read engine of a request's `shard_key` selector (None: every shard)."""
        if selector is None:
            return self.engine
        return ShardedEngine(_ShardView(self, self.read_shards(selector)), self._lookup)

    def compile_filter(self, filter_: dict | None) -> Predicate:
        if filter_ is None:
            return None
        return compile_filter(filter_, self.payload_index.text_analyzers())

    def key_of_points(self, ids: Iterable, shard_ids: list[int] | None = None) -> dict:
        """point id -> the shard key of the first selected shard holding it (custom only)."""
        found: dict = {}
        wanted = list(dict.fromkeys(ids))
        for shard_id in shard_ids if shard_ids is not None else sorted(self.shards):
            if not wanted:
                break
            key = self.shard_key_of(shard_id)
            present = self.shards[shard_id].reads.existing_ids(wanted)
            for point_id in present:
                found.setdefault(point_id, key)
            wanted = [i for i in wanted if i not in found]
        return found

    # -- config ---------------------------------------------------------------------------

    async def set_config(self, config: dict) -> None:
        """The router's config.json first (the commit point: a shard whose copy a crash left
        behind follows it at the next load), then every shard's."""
        await trio.to_thread.run_sync(write_json_atomic, self.path / CONFIG_FILE, config)
        self.config = config
        self.rate_limits.reconfigure(config)
        for shard in list(self.shards.values()):
            await shard.set_config(config)

    # -- info -----------------------------------------------------------------------------

    def points_count(self) -> int:
        return sum(shard.points_count() for shard in self.shards.values())

    def error(self) -> str | None:
        for shard_id in sorted(self.shards):
            error = self.shards[shard_id].error()
            if error:
                return error if len(self.shards) == 1 else f"shard {shard_id}: {error}"
        return None

    def info(self) -> dict:
        """Collection info summed over the shards: status the worst of theirs."""
        error = self.error()
        if error:
            status = "red"
        else:
            status = "yellow" if self.optimizer.pending() else "green"
        segments = self.segments
        return {
            "status": status,
            "optimizer_status": {"error": error} if error else "ok",
            "indexed_vectors_count": sum(s.indexed_vectors() for s in segments if isinstance(s, IndexedSegment)),
            "points_count": sum(s.point_count for s in segments),
            "segments_count": len(segments),
            "config": self.config,
            "payload_schema": self.payload_index.describe(self.indexed_points()),
        }

    def indexed_points(self) -> dict:
        totals: dict = {}
        for shard in self.shards.values():
            for key, count in shard.indexed_points().items():
                totals[key] = totals.get(key, 0) + count
        return totals

    def local_shards(self) -> list[dict]:
        """Qdrant's LocalShardInfo of every shard, by id (blocking)."""
        shards = []
        for shard_id in sorted(self.shards):
            entry: dict = {"shard_id": shard_id}
            key = self.shard_key_of(shard_id)
            if key is not None:
                entry["shard_key"] = key
            entry["points_count"] = self.shards[shard_id].points_count()
            entry["state"] = "Active"
            shards.append(entry)
        return shards

    # -- shard keys (cluster mode) --------------------------------------------------------

    async def create_shard_key(self, key: Any, shards_number: int | None) -> None:
        """A new key with `shards_number` shards (default: the collection's `shard_number`),
        ids counting on from the largest ever used, every declared payload index on them.
        The shards are built beside the live ones and renamed in; `shards.json` naming them
        is the commit point."""
        if not self.custom:
            raise BadInput("Bad request: Shard Key cannot be created with Auto sharding method")
        async with self.layout_lock:
            if key in self.shard_keys():
                raise BadInput(f"Bad request: Sharding key {display_key(key)} already exists for collection {self.name}")
            count = shards_number or self.config["params"].get("shard_number") or 1
            # Qdrant's `State::max_shard_id`: ids freed by a deleted key are handed out again
            first = 1 + max([0, *(s["id"] for s in self.layout["shards"])])
            new_ids = list(range(first, first + count))
            opened = await trio.to_thread.run_sync(self._build_shards, new_ids)
            layout = {
                **self.layout,
                "shards": [*self.layout["shards"], *({"id": i, "key": key} for i in new_ids)],
            }
            try:
                await trio.to_thread.run_sync(write_json_atomic, self.path / SHARDS_FILE, layout)
            except BaseException:
                await trio.to_thread.run_sync(self._discard_built, opened)
                raise
            self.layout = layout
            for shard_id, shard in opened.items():
                self.shards[shard_id] = shard
                if self._nursery is not None:
                    await self._nursery.start(shard.run)
            self._build_rings()

    def _build_shards(self, shard_ids: list[int]) -> dict[int, Collection]:
        """New empty shards with the declared indexes, renamed into `shards/` and opened."""
        opened: dict[int, Collection] = {}
        try:
            for shard_id in shard_ids:
                staging = self.path / SHARDS_DIR / f"{NEW_SHARD_PREFIX}{shard_id}"
                shutil.rmtree(staging, ignore_errors=True)
                Collection.initialise(staging, self.name, self.config)
                write_json_atomic(staging / PAYLOAD_INDEX_FILE, {"fields": dict(self.payload_index.fields)})
                final = self.path / SHARDS_DIR / str(shard_id)
                shutil.rmtree(final, ignore_errors=True)
                staging.rename(final)
                fsync_dir(self.path / SHARDS_DIR)
                opened[shard_id] = Collection.load(final, self._lookup, name=self.name)
        except BaseException:
            self._discard_built(opened)
            raise
        return opened

    def _discard_built(self, opened: dict[int, Collection]) -> None:
        for shard_id, shard in opened.items():
            shard._close_files()
            shutil.rmtree(self.path / SHARDS_DIR / str(shard_id), ignore_errors=True)

    async def delete_shard_key(self, key: Any) -> None:
        """Drop a key and its shards' data: `shards.json` without them first (the commit
        point), then the shards are closed and their directories removed."""
        if not self.custom:
            raise BadInput("Bad request: Shard Key cannot be created with Auto sharding method")  # sic, as Qdrant
        async with self.layout_lock:
            keys = self.shard_keys()
            if key not in keys:
                raise BadInput(f"Bad request: Sharding key {display_key(key)} does not exists for collection {self.name}")
            dropped = keys[key]
            layout = {**self.layout, "shards": [s for s in self.layout["shards"] if s["key"] != key]}
            await trio.to_thread.run_sync(write_json_atomic, self.path / SHARDS_FILE, layout)
            self.layout = layout
            removed = [self.shards.pop(shard_id) for shard_id in dropped]
            self._build_rings()
            for shard in removed:
                await shard.close()
            for shard_id in dropped:
                await trio.to_thread.run_sync(shutil.rmtree, self.path / SHARDS_DIR / str(shard_id), True)

    # -- snapshots (collection/snapshots.py, storage/shard_snapshots.py) -------------------
    # Kept together at the end of the class: the write barrier a snapshot pauses, and the
    # swap of one shard's directory for a recovered one.

    @asynccontextmanager
    async def writes_paused(self) -> AsyncIterator[None]:
        """While held: no shard is added, removed or swapped, no request's parts are queued,
        and every part queued before is answered (collection/barrier.py), so cutting the
        shards one after the other cuts no request in two."""
        async with self.layout_lock, self.write_barrier.pause():
            yield

    async def replace_shard(self, shard_id: int, staging: Path, exchange: Callable[[Path, Path], None]) -> None:
        """Make `staging` (a checked one-shard collection directory on the same file system,
        holding this collection's config) shard `shard_id`: with writes paused, the shard is
        closed, `exchange(staging, shard_dir)` swaps the two directories atomically (the
        caller's: storage/toc.py `exchange_directories`), and the new shard is opened and
        run. Afterwards `staging` holds the old shard's directory, for the caller to
        remove. If the new one fails to open, the directories are swapped back and the old
        shard is opened again. The other shards, the layout and the config are untouched."""
        async with self.writes_paused():
            if shard_id not in self.shards:
                raise NotFound(f"Not found: shard {shard_id} not found")
            final = self.path / SHARDS_DIR / str(shard_id)
            old = self.shards[shard_id]
            await old.close()
            try:
                shard = await trio.to_thread.run_sync(self._exchange_shard, staging, final, exchange)
            except BaseException:
                with trio.CancelScope(shield=True):
                    shard = await trio.to_thread.run_sync(self._reopen_shard, final)
                    self.shards[shard_id] = shard
                    if self._nursery is not None:
                        await self._nursery.start(shard.run)
                raise
            self.shards[shard_id] = shard
            if self._nursery is not None:
                await self._nursery.start(shard.run)
        misplaced = await trio.to_thread.run_sync(self.misplaced_points, shard_id)
        if misplaced:
            log.warning(
                "collection %s: shard %d recovered from a snapshot holds points that hash to other shards "
                "(%d of a sample): reads find them, writes of their ids go to the other shards",
                self.name, shard_id, misplaced,
            )

    def _exchange_shard(self, staging: Path, final: Path, exchange: Callable[[Path, Path], None]) -> Collection:
        exchange(staging, final)
        fsync_dir(final.parent)
        fsync_dir(staging.parent)
        try:
            return Collection.load(final, self._lookup, name=self.name)
        except BaseException:
            exchange(staging, final)
            fsync_dir(final.parent)
            fsync_dir(staging.parent)
            raise

    def _reopen_shard(self, final: Path) -> Collection:
        return Collection.load(final, self._lookup, name=self.name)

    def misplaced_points(self, shard_id: int, sample: int = 1000) -> int:
        """How many of the first `sample` points of shard `shard_id` its key's hash ring puts
        in another shard (blocking). Not 0 after a shard snapshot of another shard (or of
        another collection) was recovered into it, which Qdrant allows."""
        shard = self.shards.get(shard_id)
        ring = self._rings.get(self.shard_key_of(shard_id)) if shard is not None else None
        if shard is None or ring is None:
            return 0
        records, _ = shard.reads.scroll(None, sample, None, False, False)
        ids = [record.id for record in records]
        if not ids:
            return 0
        return int((ring.shard_of_points(ids) != shard_id).sum())


def _follow_config(shard_path: Path, config: dict) -> None:
    """A shard's config.json as the collection's (a crash during a config change may have
    left an older copy)."""
    path = shard_path / CONFIG_FILE
    if read_json(path) != config:
        write_json_atomic(path, config)


class _ShardView:
    """The collection as a read limited to some shards sees it: their segments only."""

    def __init__(self, router: ShardedCollection, shard_ids: list[int]):
        self._router = router
        self.shard_ids = shard_ids
        self.reads = ReadEngine(self)

    @property
    def segments(self) -> list:
        shards = self._router.shards
        return [segment for shard_id in self.shard_ids if shard_id in shards for segment in shards[shard_id].segments]

    def key_of_points(self, ids: Iterable, shard_ids: list[int] | None = None) -> dict:
        return self._router.key_of_points(ids, self.shard_ids if shard_ids is None else shard_ids)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._router, name)


class ShardedEngine(Engine):
    """The engine of a sharded collection: points of a custom collection carry the shard
    key of the shard they were read from (`shard_key` in Qdrant's results)."""

    def points(self, query):
        return self._keyed(super().points(query))

    def batch(self, queries):
        return [self._keyed(hits) for hits in super().batch(queries)]

    def groups(self, query):
        found = super().groups(query)
        for group in found.groups:
            self._keyed(group.hits)
        return found

    def retrieve(self, request):
        return self._keyed(super().retrieve(request))

    def scroll(self, request):
        records, offset = super().scroll(request)
        return self._keyed(records), offset

    def _keyed(self, points: list) -> list:
        if not self.collection.custom or not points:
            return points
        keys = self.collection.key_of_points(p.id for p in points)
        for point in points:
            point.shard_key = keys.get(point.id)
        return points


class _Optimizers:
    """The shards' optimizers seen as one: what info, telemetry and the issue board ask."""

    def __init__(self, router: ShardedCollection):
        self._router = router

    def _all(self) -> list:
        return [shard.optimizer for shard in self._router.shards.values()]

    def pending(self) -> bool:
        return any(optimizer.pending() for optimizer in self._all())

    @property
    def running(self) -> Any:
        return next((o.running for o in self._all() if o.running is not None), None)

    @property
    def completed(self) -> int:
        return sum(optimizer.completed for optimizer in self._all())

    @property
    def error(self) -> str | None:
        return next((o.error for o in self._all() if o.error), None)

    def wake(self) -> None:
        for optimizer in self._all():
            optimizer.wake()

    def stop(self) -> None:
        for optimizer in self._all():
            optimizer.stop()


class _Wals:
    """The shards' WAL statistics summed (telemetry and /metrics)."""

    def __init__(self, router: ShardedCollection):
        self._router = router

    def statistics(self) -> dict:
        totals: dict = {}
        for shard in self._router.shards.values():
            for name, value in shard.wal.statistics().items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    totals[name] = totals.get(name, 0) + value
        return totals
