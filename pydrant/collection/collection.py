"""A collection: its config, its WAL, its segments and the one update worker that orders writes.

On disk (`<storage>/collections/<name>/`):
  config.json      the collection config (CollectionConfig shape), replaced atomically
  wal/             the write-ahead log (pydrant/wal, docs/wal.md)
  segments/<id>/   one directory per segment
  manifest.json    {"segments": [ids]}: which segment directories are live

Write path (docs/durability.md):
  request -> queue -> update worker: assign op_num, append [op_num, op] to the WAL for the
  whole queued batch with one fsync (group commit) -> acknowledge -> apply to segments ->
  mark applied. Recovery: open the segments, replay the WAL from the lowest op_num a segment
  has not persisted. Per-point versions make replaying an applied operation a no-op.

The engine boundary: reads enter through `engine` (collection/engine.py), writes through
`submit` (or `update` for one operation); both apply strict mode (collection/strict.py),
and every filter is compiled by `compile_filter`, with the collection's text analyzers.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import trio

from pydrant.collection import apply as applying
from pydrant.collection import diskspace, problems, routing, strict
from pydrant.collection.config import WAL_RETAIN_CLOSED, index_settings, indexing_threads, search_settings, vector_schema
from pydrant.collection.engine import Engine
from pydrant.collection.payload_index import INDEX_FILE as PAYLOAD_INDEX_FILE
from pydrant.collection.payload_index import INDEX_OPERATIONS as PAYLOAD_INDEX_OPERATIONS
from pydrant.collection.payload_index import PayloadIndexTable
from pydrant.collection.points import prepare_upsert
from pydrant.collection.predicates import Predicate
from pydrant.collection.reads import ReadEngine
from pydrant.config import DEFAULTS
from pydrant.errors import NotFound, ServiceError
from pydrant.fsutil import fsync_dir, read_json, write_json_atomic
from pydrant.issues import BOARD, collection_issue_id
from pydrant.optimizer.optimizer import Optimizer
from pydrant.segments.appendable import AppendableSegment
from pydrant.segments.base import Segment, flush_order
from pydrant.segments.filters import compile_filter
from pydrant.segments.indexed import IndexedSegment
from pydrant.segments.open import open_segment
from pydrant.wal import Wal

log = logging.getLogger("pydrant.collection")

CONFIG_FILE = "config.json"
MANIFEST_FILE = "manifest.json"
WAL_DIR = "wal"
SEGMENTS_DIR = "segments"
MAX_BATCH_OPS = 1024  # operations written by one group commit at most
INIT_FROM_BATCH = 256  # points read from the source and written per operation by `copy_points_from`
# Background retries (a failed apply, flush or manifest write): first after this long,
# doubling up to the maximum while the cause persists.
RETRY_FIRST_SECONDS = 0.5
RETRY_MAX_SECONDS = 30.0
# Retention of closed WAL files by age and size, server-wide (storage.wal.wal_retain_age_sec
# and wal_retain_size_mb; docs/wal.md "Retention"): set once by the server before any
# collection opens (`configure_wal_retention`), added to each collection's own
# `wal_config.wal_retain_closed` count.
_WAL_RETENTION: dict[str, int | None] = {"age_sec": None, "size_mb": None}
# Issue codes on the board (pydrant/issues.py).
WAL_WRITE_FAILED = "WAL_WRITE_FAILED"
APPLY_FAILED = "APPLY_FAILED"
FLUSH_FAILED = "FLUSH_FAILED"


@dataclass
class PendingUpdate:
    """One queued operation and the events its caller waits on."""

    operation: dict
    op_num: int = -1
    durable: trio.Event = field(default_factory=trio.Event)
    applied: trio.Event = field(default_factory=trio.Event)
    error: BaseException | None = None


# name -> Collection: how a collection finds the one a `lookup_from` or `with_lookup` names.
Lookup = Callable[[str], "Collection"]


class Collection:
    def __init__(
        self,
        path: Path,
        config: dict,
        wal: Wal,
        segments: list[Segment],
        lookup: Lookup | None = None,
        name: str | None = None,
    ):
        self.path = path
        # A shard of a sharded collection (collection/sharded.py) lives in `shards/<id>/`
        # and is named as its collection: names in logs, issues and errors are the user's.
        self.name = name or path.name
        self.config = config
        self.schema = vector_schema(config)
        self.wal = wal
        self.segments = segments
        self.reads = ReadEngine(self)
        self.payload_index = PayloadIndexTable.load(path)
        # The reads' entry points, made once. `lookup` comes from storage/ (the table of
        # content); without one, a collection finds only itself.
        self.engine = Engine(self, lookup or self._only_itself)
        self.next_op_num = 1 + max([wal.last_op_num or 0, *(s.version for s in segments)])
        # Held while operations are applied and while the optimizer swaps segments, so an
        # operation always sees one consistent list of segments.
        self.apply_lock = threading.Lock()
        self.applied_op_num = max([0, *(s.version for s in segments)])
        self.replayed_at_load = 0  # WAL records `load` replayed (the start-up log reports it)
        # Set when applying an acknowledged operation failed for a reason outside the
        # operation (an I/O error, a full disk): (op_num, reason). Until a retry has
        # applied that operation and every later one, writes are refused and the WAL is
        # kept from `op_num` on (docs/durability.md).
        self.apply_failure: tuple[int, str] | None = None
        self._apply_retry = trio.Event()
        self._reopen_needed = False  # the next retry opens the segments again first
        # Set when a manifest write failed: the manifest on disk may list the old segments
        # or the new ones, so the WAL is kept and no segment directory is removed until a
        # manifest write of the live list succeeds.
        self.manifest_unsure = False
        self.flush_error: str | None = None
        self.config_lock = trio.Lock()  # read-merge-write of config.json (PATCH)
        self.optimizer = Optimizer(self)
        # Strict mode's read and write rate limiters (in memory, full at every start).
        self.rate_limits = strict.RateLimits(config)
        self._size_stats: tuple[tuple, strict.SizeStats] | None = None
        self._send, self._receive = trio.open_memory_channel(math.inf)
        self._cancel: trio.CancelScope | None = None
        self._stopped = trio.Event()
        self._closed = False
        self.last_error: str | None = None
        self._apply_search_settings()

    # -- creation and loading (blocking: call from a worker thread) ------------------------

    @staticmethod
    def initialise(path: Path, name: str, config: dict) -> None:
        """Create the directory layout of a new, empty collection at `path`."""
        path.mkdir(parents=True)
        write_json_atomic(path / CONFIG_FILE, config)
        segment_id = uuid.uuid4().hex
        AppendableSegment.create(path / SEGMENTS_DIR / segment_id, vector_schema(config)).close()
        # The segment's entries must be durable before the manifest names it (and
        # `segments/` in the collection directory, which the manifest write syncs).
        fsync_dir(path / SEGMENTS_DIR / segment_id)
        fsync_dir(path / SEGMENTS_DIR)
        write_json_atomic(path / MANIFEST_FILE, {"segments": [segment_id]})

    @classmethod
    def load(cls, path: Path, lookup: Lookup | None = None, name: str | None = None) -> Collection:
        """Open a collection and replay its WAL: afterwards every acknowledged write is
        visible. `lookup` resolves the other collections queries name (storage/ gives it);
        `name` names a shard after its collection."""
        config = read_json(path / CONFIG_FILE)
        schema = vector_schema(config)
        manifest = read_json(path / MANIFEST_FILE)
        _remove_unlisted_segments(path / SEGMENTS_DIR, set(manifest["segments"]))
        segments = [open_segment(path / SEGMENTS_DIR / sid, schema) for sid in manifest["segments"]]
        collection = cls(path, config, _open_wal(path, config), segments, lookup, name)
        collection._build_payload_indexes()
        collection._replay_wal()
        return collection

    def copy_points_from(self, source, owned: Callable[[list], list] | None = None) -> int:
        """`init_from`: copy the source's payload indexes and points (vectors, payloads)
        into this collection, which is new and not running yet (blocking; the table of
        content calls it while the collection is still in `pending/`). Returns the points
        copied.

        The copies are applied as logged operations are (index declarations, then upserts
        of `INIT_FROM_BATCH` points, checked against this collection's vectors as any
        upsert is), bypassing the WAL, and every segment is flushed at the end: the
        collection's directory only becomes a collection after that, so once the create is
        acknowledged the copy is on disk, and a failure leaves nothing behind. Points the
        source takes meanwhile may or may not be copied (as in Qdrant). `owned` (ids ->
        a flag per id) keeps the points of one shard of a sharded collection."""
        op_num = self.next_op_num
        for field_name, field_schema in dict(source.payload_index.fields).items():
            self._apply(op_num, {"type": "create_field_index", "field_name": field_name, "field_schema": field_schema})
            op_num += 1
        copied = 0
        offset = None
        while True:
            records, offset = source.reads.scroll(offset, INIT_FROM_BATCH, None, True, True)
            if owned is not None:  # a shard copies the points that hash to it
                records = [r for r, mine in zip(records, owned([r.id for r in records])) if mine]
            if records:
                operation = prepare_upsert(self.schema, {"points": [_point_body(r) for r in records]})
                self._apply(op_num, operation)
                op_num += 1
                copied += len(records)
            if offset is None:
                break
        self.next_op_num = op_num
        for segment in flush_order(self.segments):
            segment.flush()
        return copied

    def _build_payload_indexes(self) -> None:
        # Index structures live in memory: every open rebuilds them from stored payloads,
        # before the WAL replay, which then maintains them like live writes do.
        for segment in self.segments:
            segment.set_payload_indexes(self.payload_index.fields)

    def _only_itself(self, name: str) -> Collection:
        if name == self.name:
            return self
        raise NotFound(f"Not found: Collection `{name}` doesn't exist!")

    def _replay_wal(self) -> None:
        start = min(s.persisted_version for s in self.segments) + 1
        replayed = 0
        for op_num, operation in self.wal.read(start):
            try:
                self._apply(op_num, cast(dict, operation))
            except applying.REFUSED as exc:
                # Deterministic: the live apply refused it the same way and changed nothing.
                log.info("collection %s: replayed op %d refused as it was live: %s", self.name, op_num, exc.message)
                self.applied_op_num = max(self.applied_op_num, op_num)
            replayed += 1
        self.replayed_at_load = replayed
        if replayed:
            log.info("collection %s: replayed %d WAL records from op %d", self.name, replayed, start)

    # -- running ---------------------------------------------------------------------------

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """The collection's update worker and flusher. Runs until `close()` cancels it."""
        try:
            with trio.CancelScope() as scope:
                self._cancel = scope
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._update_worker)
                    nursery.start_soon(self._flusher)
                    nursery.start_soon(self._apply_retrier)
                    nursery.start_soon(self._keep_running, "optimizer", self.optimizer.run)
                    nursery.start_soon(self._keep_running, "health watch", problems.HealthWatch(self).run)
                    task_status.started()
        finally:
            self._stopped.set()

    async def _keep_running(self, what: str, task) -> None:
        """Run a background task; an unexpected error is logged and the task restarted
        after a pause, so it never ends the collection's (or the node's) other tasks."""
        delay = RETRY_FIRST_SECONDS
        while True:
            try:
                await task()
                return
            except Exception:
                log.exception("collection %s: %s failed; restarting it in %.1f s", self.name, what, delay)
                await trio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_SECONDS)

    async def close(self) -> None:
        """Stop the worker and the optimizer (a running optimization stops at its next copy
        chunk or graph batch; quantization training runs to its end),
        flush every segment and close the files. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self.optimizer.stop()
        if self._cancel is not None:
            self._cancel.cancel()
            with trio.CancelScope(shield=True):
                await self._stopped.wait()
        await trio.to_thread.run_sync(self._close_files)

    def _close_files(self) -> None:
        with self.apply_lock:
            self._advance_segments()
        for segment in flush_order(self.segments):
            segment.flush()
            segment.close()
        self.optimizer.close()
        self.wal.close()

    # -- updates ---------------------------------------------------------------------------

    async def submit(self, operations: list[dict], *, wait: bool = True) -> list[tuple[int, str]]:
        """The writes of one request, in order: `(operation_id, status)` of each.

        Every operation passes strict mode before any is queued, and a collection that
        refuses writes says so before anything is queued. Payload and vector updates by
        id need their points to exist (404, as Qdrant): the update worker checks it when
        it applies the operation (`IDS_MUST_EXIST`), in order with the writes before it,
        so a point an acknowledged upsert creates exists by then. A one-shard collection
        has no shard keys: a write that names one is refused as Qdrant refuses it."""
        for operation in operations:
            selector = routing.take_shard_key(operation)
            if selector is not None:
                raise routing.write_key_not_found(routing.key_list(selector)[0])
        await self.check_strict_mode(operations)
        self.check_writable()
        flag_ids_must_exist(operations)
        return [await self.update(operation, wait=wait) for operation in operations]

    async def check_strict_mode(self, operations: list[dict]) -> None:
        await check_strict_writes(self, operations)

    def engine_for(self, selector) -> Engine:
        """The read engine of a request's `shard_key` selector: a one-shard collection has
        no shard keys, so any key is refused as Qdrant refuses it."""
        if selector is not None:
            raise routing.read_key_not_found(routing.key_list(selector)[0])
        return self.engine

    def local_shards(self) -> list[dict]:
        """Qdrant's LocalShardInfo of the one shard (blocking)."""
        return [{"shard_id": 0, "points_count": self.points_count(), "state": "Active"}]

    def _count_matching(self, filter_: dict) -> int:
        return self.reads.count(self.compile_filter(filter_))

    def size_stats(self) -> strict.SizeStats:
        """Estimated vector and payload storage and points (strict mode's collection size
        limits), blocking: vectors as stored for the live points, payloads as their JSON
        size. Computed again only after the collection changed."""
        segments = list(self.segments)
        key = (self.applied_op_num, tuple(id(s) for s in segments))
        if self._size_stats is not None and self._size_stats[0] == key:
            return self._size_stats[1]
        vector_bytes = sum(sum(s.vector_bytes().values()) for s in segments)
        points = sum(s.point_count for s in segments)
        payload_bytes = 0
        offset = None
        while True:
            records, offset = self.reads.scroll(offset, 1024, None, True, False)
            for record in records:
                if record.payload:
                    payload_bytes += len(json.dumps(record.payload, separators=(",", ":"), default=str).encode())
            if offset is None:
                break
        stats = strict.SizeStats(vector_bytes, payload_bytes, points)
        self._size_stats = (key, stats)
        return stats

    async def update(self, operation: dict, *, wait: bool = True) -> tuple[int, str]:
        """Queue one write and return `(operation_id, status)`.

        wait=False: answered once the operation's WAL record is written and fsync'ed; it
        survives a killed process and a power cut, and becomes visible to reads shortly
        after. Status "acknowledged".
        wait=True: answered once the operation is also applied to the segments and visible
        to every later read. Status "completed".
        Cancellation (a client that disconnects) does not withdraw a queued operation.
        """
        if self._closed:
            raise ServiceError(f"Collection `{self.name}` is closed")
        diskspace.check(self)  # disk almost full: refused before the WAL (collection/diskspace.py)
        self.check_writable()
        pending = PendingUpdate(operation)
        self._send.send_nowait(pending)
        await pending.durable.wait()
        if pending.error is not None and pending.op_num < 0:
            raise pending.error
        if not wait:
            return pending.op_num, "acknowledged"
        await pending.applied.wait()
        if pending.error is not None:
            raise pending.error
        return pending.op_num, "completed"

    async def _update_worker(self) -> None:
        async for first in self._receive:
            batch = [first]
            while len(batch) < MAX_BATCH_OPS:
                try:
                    batch.append(self._receive.receive_nowait())
                except trio.WouldBlock:
                    break
            try:
                await self._process_batch(batch)
            except Exception as exc:  # a bug: answer the batch, keep the worker serving
                log.exception("collection %s: processing a batch of updates failed", self.name)
                for pending in batch:
                    if not pending.applied.is_set():
                        pending.error = pending.error or ServiceError(f"Service internal error: {exc}")
                        pending.durable.set()
                        pending.applied.set()

    def check_writable(self) -> None:
        if self.apply_failure is not None:
            op_num, reason = self.apply_failure
            raise ServiceError(
                f"Service internal error: collection `{self.name}` refuses writes until operation {op_num} "
                f"can be applied (it is logged and will be applied when the cause is fixed): {reason}"
            )

    def _refuse(self, batch: list[PendingUpdate], error: BaseException) -> None:
        """Answer every operation of the batch with `error`; none was logged."""
        for pending in batch:
            pending.op_num = -1
            pending.error = error
            pending.durable.set()
            pending.applied.set()

    async def _process_batch(self, batch: list[PendingUpdate]) -> None:
        # Shielded: once op_nums are assigned, the WAL write and the apply must finish
        # together, or the in-memory state and the log would disagree.
        with trio.CancelScope(shield=True):
            try:
                self.check_writable()  # the failure may have come after these were queued
                if self.wal.failed:
                    await trio.to_thread.run_sync(self._reopen_wal)
            except Exception as exc:
                self._refuse(batch, exc if isinstance(exc, ServiceError) else ServiceError(
                    f"Service internal error: WAL write failed: {exc}"))
                return
            for pending in batch:
                pending.op_num = self.next_op_num
                self.next_op_num += 1
            entries = [(p.op_num, p.operation) for p in batch]
            try:
                await trio.to_thread.run_sync(self.wal.append_many, entries)
            except BaseException as exc:  # the log could not be written: nothing is acknowledged
                log.exception("collection %s: WAL append failed", self.name)
                self.next_op_num = batch[0].op_num
                self._refuse(batch, ServiceError(f"Service internal error: WAL write failed: {exc}"))
                BOARD.submit(
                    collection_issue_id(WAL_WRITE_FAILED, self.name),
                    f"Collection `{self.name}`: writing its WAL failed: {exc}",
                    "Check the disk holding the storage directory (free space, I/O errors).",
                )
                return
            BOARD.resolve(collection_issue_id(WAL_WRITE_FAILED, self.name))
            for pending in batch:
                pending.durable.set()
            await trio.to_thread.run_sync(self._apply_batch, batch)
            for pending in batch:
                pending.applied.set()
            if self.apply_failure is not None:
                self._apply_retry.set()
            self.optimizer.wake()

    def _reopen_wal(self) -> None:
        """Open the WAL again after a failed write it could not undo: the scan cuts what
        that write left, or keeps its records when they reached the disk whole. Such
        records were answered as failed but are in the log, so they are applied now (as a
        restart would) and their op_nums are not given out again."""
        with self.apply_lock:
            self.wal.close()
            self.wal = _open_wal(self.path, self.config)
            log.warning("collection %s: WAL opened again after a failed write", self.name)
            for op_num, operation in self.wal.read(self.applied_op_num + 1):
                try:
                    self._apply(op_num, cast(dict, operation))
                except applying.REFUSED:
                    self.applied_op_num = max(self.applied_op_num, op_num)
            self.next_op_num = max(self.next_op_num, (self.wal.last_op_num or 0) + 1)

    def _apply_batch(self, batch: list[PendingUpdate]) -> None:
        with self.apply_lock:
            self._apply_each(batch)

    def _apply_each(self, batch: list[PendingUpdate]) -> None:
        for pending in batch:
            if self.apply_failure is not None:
                # An earlier operation is not applied: later ones wait for the retry, which
                # applies them in order from the WAL.
                pending.error = self._unapplied_error(pending.op_num)
                continue
            try:
                self._apply(pending.op_num, pending.operation)
            except applying.REFUSED as exc:  # e.g. a filter that only fails on stored data
                pending.error = exc
                self.applied_op_num = max(self.applied_op_num, pending.op_num)
            except Exception as exc:
                log.exception("collection %s: applying op %d failed", self.name, pending.op_num)
                self._set_apply_failure(pending.op_num, exc)
                pending.error = self._unapplied_error(pending.op_num)

    def _apply(self, op_num: int, operation: dict) -> None:
        """Apply one logged operation. `applied_op_num` advances only when it succeeds: an
        operation that failed half-way is applied again, whole, by the retry (versions make
        the parts already done no-ops)."""
        applying.apply_logged(self.segments, self.schema, self.payload_index, op_num, operation)
        self.applied_op_num = max(self.applied_op_num, op_num)

    def _unapplied_error(self, op_num: int) -> ServiceError:
        """Called while `apply_failure` is set (apply lock held)."""
        reason = self.apply_failure[1] if self.apply_failure is not None else "unknown"
        return ServiceError(
            f"Service internal error: operation {op_num} is logged but could not be applied yet "
            f"({reason}); it will be applied when the cause is fixed"
        )

    def _storage_failed(self, exc: Exception) -> None:
        """A flush failed: RocksDB refuses every write after that until it is opened again,
        so writes wait for the retrier to reopen the segments and replay."""
        with self.apply_lock:
            self._reopen_needed = True
            if self.apply_failure is None:
                self._set_apply_failure(self.applied_op_num + 1, exc)

    def _set_apply_failure(self, op_num: int, exc: Exception) -> None:
        """Called with `apply_lock` held: the retrier clears the failure under it, and an
        update batch reads it under it, so none of the three can interleave."""
        reason = f"{type(exc).__name__}: {exc}"
        self.apply_failure = (op_num, reason)
        self.last_error = f"applying operation {op_num} failed: {reason}"
        BOARD.submit(
            collection_issue_id(APPLY_FAILED, self.name),
            f"Collection `{self.name}` cannot apply operation {op_num} and refuses writes: {reason}",
            "Check the disk holding the storage directory (free space, I/O errors); "
            "pydrant retries by itself and accepts writes again once the operation is applied.",
        )

    async def _apply_retrier(self) -> None:
        """Re-apply the logged operations from a failed one on, with backoff, until they
        all apply; then writes are accepted again."""
        while True:
            await self._apply_retry.wait()
            self._apply_retry = trio.Event()
            delay = RETRY_FIRST_SECONDS
            attempt = 0
            while self.apply_failure is not None:
                await trio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_SECONDS)
                await trio.to_thread.run_sync(self._retry_apply, attempt > 0 or self._reopen_needed)
                attempt += 1

    def _retry_apply(self, reopen: bool) -> None:
        """One retry. The first applies the log from the failed operation on; later ones
        first open every segment again, since RocksDB refuses all writes after a failed
        one until it is reopened, and replay the log as a start would."""
        with self.apply_lock:
            if self.apply_failure is None:
                return  # nothing left to retry
            failed_op, _ = self.apply_failure
            try:
                if reopen:
                    self._reopen_segments()
                    start = min(s.persisted_version for s in self.segments) + 1
                else:
                    start = failed_op
                for op_num, operation in self.wal.read(start):
                    try:
                        self._apply(op_num, cast(dict, operation))
                    except applying.REFUSED:
                        self.applied_op_num = max(self.applied_op_num, op_num)
            except Exception as exc:
                log.warning("collection %s: retrying operation %d failed: %s", self.name, failed_op, exc)
                self.apply_failure = (failed_op, f"{type(exc).__name__}: {exc}")
                return
            log.info("collection %s: operations %d..%d applied on retry; accepting writes", self.name, failed_op, self.applied_op_num)
            self._reopen_needed = False
            self.apply_failure = None
            self.last_error = None
            BOARD.resolve(collection_issue_id(APPLY_FAILED, self.name))

    def _reopen_segments(self) -> None:
        """Open every segment's RocksDB again, in place (apply lock held): RocksDB refuses
        all writes after a failed write or flush until it is reopened. Segments keep their
        in-memory state, so reads and a running optimization carry on."""
        for segment in self.segments:
            segment.reopen_store()
        log.warning("collection %s: segment storage opened again after a storage error", self.name)

    # -- the optimizer's host (optimizer/host.py `OptimizerHost`) ------------------------------

    def optimizer_settings(self) -> dict:
        return self.config.get("optimizer_config") or {}

    def index_settings(self) -> dict:
        return index_settings(self.config)

    def search_settings(self) -> dict:
        return search_settings(self.config)

    def indexing_threads(self) -> int | None:
        return indexing_threads(self.config)

    # -- segments (the optimizer calls these with `apply_lock` held) -------------------------

    def new_segment_path(self) -> Path:
        """A directory for a new segment (not live until a manifest lists it)."""
        return self.path / SEGMENTS_DIR / uuid.uuid4().hex

    def add_appendable_segment(self) -> AppendableSegment:
        """A fresh, empty appendable segment after the others: it takes new points from now."""
        segment = AppendableSegment.create(self.new_segment_path(), self.schema)
        segment.set_payload_indexes(self.payload_index.fields)
        segment.advance_version(self.applied_op_num)  # it has seen every operation so far
        segment.flush()
        self._write_manifest([*self.segments, segment])
        self.segments = [*self.segments, segment]
        return segment

    def replace_segments(self, sources: list, replacement) -> None:
        """Swap `sources` for `replacement` (at the first source's place) in one atomic
        manifest write; the last segment stays the appendable one.

        Every segment is flushed first. A point the sources' rebuild moved may have an old
        copy in another segment whose delete is still only in RocksDB's memory; once the
        manifest lists the replacement, the WAL record that would redo that delete is
        skipped for the point (the replacement holds it at a newer version), so the delete
        must be on disk before the swap, or a power cut brings the stale copy back."""
        position = min(self.segments.index(s) for s in sources)
        kept = [s for s in self.segments if s not in sources]
        kept.insert(min(position, len(kept) - 1), replacement)
        replacement.advance_version(self.applied_op_num)
        for segment in flush_order(self.segments):
            segment.flush()
        self._write_manifest(kept)
        self.segments = kept

    def _write_manifest(self, segments: list) -> None:
        """Make `segments` the live list on disk. Their directories are made durable in
        `segments/` first, so the manifest never names a directory a power cut can lose.
        If the write fails the manifest on disk may be either list: `manifest_unsure`
        keeps the WAL and every directory until a later write succeeds (`flush`)."""
        try:
            self._sync_segment_dirs(segments)
            write_json_atomic(self.path / MANIFEST_FILE, {"segments": [s.path.name for s in segments]})
        except BaseException:
            self.manifest_unsure = True
            raise

    def _sync_segment_dirs(self, segments: list) -> None:
        for segment in segments:
            fsync_dir(segment.path)
        fsync_dir(self.path / SEGMENTS_DIR)

    def _apply_search_settings(self) -> None:
        settings = search_settings(self.config)
        for segment in self.segments:
            if isinstance(segment, IndexedSegment):
                segment.set_search_settings(settings)

    # -- flushing --------------------------------------------------------------------------

    async def _flusher(self) -> None:
        """Flush every `flush_interval_sec`; a failed flush is reported and retried sooner,
        with backoff, and never ends the collection's other tasks."""
        delay = None
        while True:
            interval = (self.config.get("optimizer_config") or {}).get("flush_interval_sec", DEFAULTS.storage.optimizers.flush_interval_sec)
            await trio.sleep(max(interval, 0.1) if delay is None else min(delay, max(interval, 0.1)))
            try:
                await trio.to_thread.run_sync(self.flush)
            except Exception as exc:
                delay = RETRY_FIRST_SECONDS if delay is None else min(delay * 2, RETRY_MAX_SECONDS)
                self._set_flush_error(exc)
                await trio.to_thread.run_sync(self._storage_failed, exc)
                self._apply_retry.set()
            else:
                delay = None
                self._clear_flush_error()

    def _set_flush_error(self, exc: Exception) -> None:
        log.exception("collection %s: flush failed; the WAL is kept and the flush retried", self.name)
        self.flush_error = f"{type(exc).__name__}: {exc}"
        BOARD.submit(
            collection_issue_id(FLUSH_FAILED, self.name),
            f"Collection `{self.name}` cannot flush its segments: {self.flush_error}",
            "Check the disk holding the storage directory (free space, I/O errors); the WAL keeps every write meanwhile.",
        )

    def _clear_flush_error(self) -> None:
        if self.flush_error is not None:
            log.info("collection %s: flushing works again", self.name)
            self.flush_error = None
            BOARD.resolve(collection_issue_id(FLUSH_FAILED, self.name))

    def flush(self) -> int:
        """Persist every segment, then drop the WAL files whose operations are all on disk.

        The bound is the last operation applied when the flush started (taken with no
        apply running): flushing every segment then writes all of it, including in the
        segments that no write touched since their own last flush — bounding by each
        segment's own version instead kept a segment no longer written to (an indexed
        one under insert-only load) from ever letting the WAL go. An unapplied failed
        operation, or a manifest that may not be on disk, keeps the WAL."""
        with self.apply_lock:
            applied = self._advance_segments()
            segments = list(self.segments)
        for segment in flush_order(segments):
            segment.flush()
        if self.manifest_unsure:
            with self.apply_lock:
                self._write_manifest(self.segments)
                self.manifest_unsure = False
                log.info("collection %s: manifest written again after a failed write", self.name)
            return applied  # truncate from the next flush on, with the manifest settled
        with self.apply_lock:  # the WAL object is replaced under it after a failed write
            if self.apply_failure is None and not self.wal.failed:
                self.wal.truncate_before(applied + 1)
        return applied

    def _advance_segments(self) -> int:
        """Called with `apply_lock` held: record in every segment that it has seen every
        operation applied so far, and return that op number. A segment no write touches
        (an indexed one under insert-only load) otherwise keeps the version it was built
        with, and the replay at load starts from the smallest persisted version: every
        restart re-applied the whole WAL kept since then, more after each crash. Skipped
        while an operation is unapplied: the segments may refuse writes until reopened."""
        applied = self.applied_op_num
        if self.apply_failure is None and not self._reopen_needed:
            for segment in self.segments:
                if segment.version < applied:
                    segment.advance_version(applied)
        return applied

    # -- snapshots (collection/snapshots.py) -----------------------------------------------

    def take_cut(self, target: Path) -> tuple[int, list[tuple[int, object]]]:
        """Copy a consistent cut of the collection into `target` (a new directory),
        blocking: `config.json`, `payload_index.json`, `manifest.json` and every live
        segment (`segments/<id>/`). Returns the last operation the copied segments hold and
        the WAL records after it (logged, not yet applied when the cut was taken).

        Taken under the apply lock, after a flush of every segment, so the copy holds no
        half-applied operation and the segment list cannot change meanwhile; writes wait
        for the flush and the copy, which hard-links RocksDB's SST files and the index
        files rather than copying them. Searches go on."""
        (target / SEGMENTS_DIR).mkdir(parents=True)
        with self.apply_lock:
            if self.apply_failure is not None:
                raise ServiceError(
                    f"Service internal error: collection `{self.name}` cannot be snapshotted until operation "
                    f"{self.apply_failure[0]} is applied: {self.apply_failure[1]}"
                )
            for segment in flush_order(self.segments):
                segment.flush()
            cut = self.applied_op_num
            ids = []
            for segment in self.segments:
                segment.checkpoint(target / SEGMENTS_DIR / segment.path.name)
                ids.append(segment.path.name)
            write_json_atomic(target / MANIFEST_FILE, {"segments": ids})
            write_json_atomic(target / CONFIG_FILE, self.config)
            write_json_atomic(target / PAYLOAD_INDEX_FILE, {"fields": dict(self.payload_index.fields)})
            # Read whole under the lock: a flush truncates the WAL under it.
            records = list(self.wal.read(cut + 1))
        return cut, records

    # -- config ----------------------------------------------------------------------------

    async def set_config(self, config: dict) -> None:
        await trio.to_thread.run_sync(write_json_atomic, self.path / CONFIG_FILE, config)
        self.config = config
        self.rate_limits.reconfigure(config)  # new limits take effect at once
        self._apply_search_settings()
        self.optimizer.wake()  # a changed index config may call for rebuilds

    # -- filters ---------------------------------------------------------------------------

    def compile_filter(self, filter_: dict | None) -> Predicate:
        """A filter compiled for this collection: text conditions on fields with a full-text
        index follow the index's tokenizer. BadInput "Bad filter at ..." if invalid. The
        one place reads, write validation and formulas compile filters (logged writes are
        compiled again when applied, with the same analyzers: collection/apply.py)."""
        if filter_ is None:  # the common unfiltered search: no index table to consult
            return None
        return compile_filter(filter_, self.payload_index.text_analyzers())

    # -- info ------------------------------------------------------------------------------

    def points_count(self) -> int:
        return sum(segment.point_count for segment in self.segments)

    def error(self) -> str | None:
        """Why the collection is red (a failed apply, optimization or flush), or None."""
        return self.last_error or self.optimizer.error or (
            f"flushing failed: {self.flush_error}" if self.flush_error else None
        )

    def info(self) -> dict:
        """Collection info (blocking: asks every segment's indexes for their point counts).

        status: red after a failed write or optimization (the error in optimizer_status),
        yellow while an optimization runs or is due, green otherwise."""
        error = self.error()
        if error:
            status = "red"
        else:
            status = "yellow" if self.optimizer.pending() else "green"
        optimizer_status = {"error": error} if error else "ok"
        return {
            "status": status,
            "optimizer_status": optimizer_status,
            "indexed_vectors_count": sum(
                s.indexed_vectors() for s in self.segments if isinstance(s, IndexedSegment)
            ),
            "points_count": self.points_count(),
            "segments_count": len(self.segments),
            "config": self.config,
            "payload_schema": self.payload_index.describe(self.indexed_points()),
        }

    def indexed_points(self) -> dict:
        """field -> points its index holds, over all segments."""
        totals: dict = {}
        for segment in self.segments:
            for key, info in segment.payload_index_info().items():
                totals[key] = totals.get(key, 0) + info["points"]
        return totals


def flag_ids_must_exist(operations: list[dict]) -> None:
    """Payload and vector updates by id need their points to exist (checked when applied)."""
    for operation in operations:
        if operation["type"] not in ("upsert", "delete_points") and (operation.get("ids") or operation.get("points")):
            operation[applying.IDS_MUST_EXIST] = True


async def check_strict_writes(collection, operations: list[dict]) -> None:
    """Strict mode for the writes of one request, all before any is queued (nothing
    is logged when one is refused): each operation's checks, then the write rate
    limit, charged once for the request (the points they touch). `collection` is a
    collection or a sharded one (its sizes summed over its shards)."""
    config = collection.config
    if strict.active(config) is None:
        return
    stats = None
    if strict.needs_size_stats(config, operations):
        stats = await trio.to_thread.run_sync(collection.size_stats)
    multivectors = [name for name, spec in collection.schema.dense.items() if spec.multivector]
    for operation in operations:
        strict.check_write(config, collection.payload_index, operation, stats, multivectors)
    # Payload index changes are collection meta operations in Qdrant: not rate limited
    points_operations = [op for op in operations if op["type"] not in PAYLOAD_INDEX_OPERATIONS]
    if collection.rate_limits.write is not None and points_operations:
        cost = 0
        for operation in points_operations:
            if operation.get("filter") is not None:  # counting the matches reads segments
                cost += await trio.to_thread.run_sync(strict.write_cost, operation, collection._count_matching)
            else:
                cost += strict.write_cost(operation, collection._count_matching)
        collection.rate_limits.take_write(cost)


def _point_body(record) -> dict:
    """A stored point as the body of an upsert (`copy_points_from`)."""
    vectors = {}
    for name, value in (record.vectors or {}).items():
        if hasattr(value, "indices"):
            vectors[name] = {"indices": value.indices.tolist(), "values": value.values.tolist()}
        else:
            vectors[name] = value.tolist() if hasattr(value, "tolist") else value
    return {"id": record.id, "vector": vectors, "payload": record.payload or {}}


def configure_wal_retention(age_sec: int | None, size_mb: int | None) -> None:
    """Keep closed WAL files of every collection opened from now on while they are younger
    than `age_sec` or among the newest that fit in `size_mb` (None: no such rule)."""
    _WAL_RETENTION.update(age_sec=age_sec, size_mb=size_mb)


def _open_wal(path: Path, config: dict) -> Wal:
    wal_config = config.get("wal_config") or {}
    size_mb = _WAL_RETENTION["size_mb"]
    return Wal(
        path / WAL_DIR,
        capacity_bytes=wal_config.get("wal_capacity_mb", DEFAULTS.storage.wal.wal_capacity_mb) * 1024 * 1024,
        segments_ahead=wal_config.get("wal_segments_ahead", DEFAULTS.storage.wal.wal_segments_ahead),
        retain_closed=wal_config.get("wal_retain_closed", WAL_RETAIN_CLOSED),
        retain_age_sec=_WAL_RETENTION["age_sec"],
        retain_bytes=None if size_mb is None else size_mb * 1024 * 1024,
    )


def _remove_unlisted_segments(segments_dir: Path, live: set[str]) -> None:
    """Segment directories not in the manifest are leftovers of an interrupted rebuild."""
    if not segments_dir.exists():
        return
    for entry in segments_dir.iterdir():
        if entry.name not in live:
            log.warning("removing segment %s: not in the manifest", entry)
            shutil.rmtree(entry, ignore_errors=True)
