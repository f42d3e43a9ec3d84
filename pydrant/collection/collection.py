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
"""

from __future__ import annotations

import logging
import math
import shutil
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import trio

from pydrant.collection import apply as applying
from pydrant.collection import diskspace
from pydrant.collection.config import search_settings, vector_schema
from pydrant.collection.payload_index import PayloadIndexTable
from pydrant.collection.reads import ReadEngine
from pydrant.errors import BadInput, ServiceError
from pydrant.optimizer.optimizer import Optimizer
from pydrant.segments.appendable import AppendableSegment
from pydrant.segments.indexed import IndexedSegment, open_segment
from pydrant.storage.files import read_json, write_json_atomic
from pydrant.wal import Wal

log = logging.getLogger("pydrant.collection")

CONFIG_FILE = "config.json"
MANIFEST_FILE = "manifest.json"
WAL_DIR = "wal"
SEGMENTS_DIR = "segments"
MAX_BATCH_OPS = 1024  # operations written by one group commit at most


@dataclass
class PendingUpdate:
    """One queued operation and the events its caller waits on."""

    operation: dict
    op_num: int = -1
    durable: trio.Event = field(default_factory=trio.Event)
    applied: trio.Event = field(default_factory=trio.Event)
    error: BaseException | None = None


class Collection:
    def __init__(self, path: Path, config: dict, wal: Wal, segments: list[AppendableSegment]):
        self.path = path
        self.name = path.name
        self.config = config
        self.schema = vector_schema(config)
        self.wal = wal
        self.segments = segments
        self.reads = ReadEngine(self)
        self.payload_index = PayloadIndexTable.load(path)
        self.next_op_num = 1 + max([wal.last_op_num or 0, *(s.version for s in segments)])
        # Held while operations are applied and while the optimizer swaps segments, so an
        # operation always sees one consistent list of segments.
        self.apply_lock = threading.Lock()
        self.applied_op_num = max([0, *(s.version for s in segments)])
        self.optimizer = Optimizer(self)
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
        write_json_atomic(path / MANIFEST_FILE, {"segments": [segment_id]})

    @classmethod
    def load(cls, path: Path) -> "Collection":
        """Open a collection and replay its WAL: afterwards every acknowledged write is visible."""
        config = read_json(path / CONFIG_FILE)
        schema = vector_schema(config)
        manifest = read_json(path / MANIFEST_FILE)
        _remove_unlisted_segments(path / SEGMENTS_DIR, set(manifest["segments"]))
        segments = [open_segment(path / SEGMENTS_DIR / sid, schema) for sid in manifest["segments"]]
        wal_config = config.get("wal_config") or {}
        wal = Wal(
            path / WAL_DIR,
            capacity_bytes=wal_config.get("wal_capacity_mb", 32) * 1024 * 1024,
            segments_ahead=wal_config.get("wal_segments_ahead", 0),
        )
        collection = cls(path, config, wal, segments)
        collection._build_payload_indexes()
        collection._replay_wal()
        return collection

    def _build_payload_indexes(self) -> None:
        # Index structures live in memory: every open rebuilds them from stored payloads,
        # before the WAL replay, which then maintains them like live writes do.
        for segment in self.segments:
            segment.set_payload_indexes(self.payload_index.fields)

    def _replay_wal(self) -> None:
        start = min(s.persisted_version for s in self.segments) + 1
        replayed = 0
        for op_num, operation in self.wal.read(start):
            self._apply(op_num, operation)
            replayed += 1
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
                    nursery.start_soon(self.optimizer.run)
                    task_status.started()
        finally:
            self._stopped.set()

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
        for segment in self.segments:
            segment.flush()
            segment.close()
        self.optimizer.close()
        self.wal.close()

    # -- updates ---------------------------------------------------------------------------

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
            await self._process_batch(batch)

    async def _process_batch(self, batch: list[PendingUpdate]) -> None:
        # Shielded: once op_nums are assigned, the WAL write and the apply must finish
        # together, or the in-memory state and the log would disagree.
        with trio.CancelScope(shield=True):
            for pending in batch:
                pending.op_num = self.next_op_num
                self.next_op_num += 1
            entries = [(p.op_num, p.operation) for p in batch]
            try:
                await trio.to_thread.run_sync(self.wal.append_many, entries)
            except BaseException as exc:  # the log could not be written: nothing is acknowledged
                log.exception("collection %s: WAL append failed", self.name)
                self.next_op_num = batch[0].op_num
                for pending in batch:
                    pending.op_num = -1
                    pending.error = ServiceError(f"Service internal error: WAL write failed: {exc}")
                    pending.durable.set()
                    pending.applied.set()
                return
            for pending in batch:
                pending.durable.set()
            await trio.to_thread.run_sync(self._apply_batch, batch)
            for pending in batch:
                pending.applied.set()
            self.optimizer.wake()

    def _apply_batch(self, batch: list[PendingUpdate]) -> None:
        with self.apply_lock:
            self._apply_each(batch)

    def _apply_each(self, batch: list[PendingUpdate]) -> None:
        for pending in batch:
            try:
                self._apply(pending.op_num, pending.operation)
            except BadInput as exc:  # e.g. a filter that only fails on stored data
                pending.error = exc
            except Exception as exc:
                log.exception("collection %s: applying op %d failed", self.name, pending.op_num)
                self.last_error = str(exc)
                pending.error = ServiceError(f"Service internal error: {exc}")

    def _apply(self, op_num: int, operation: dict) -> None:
        try:
            applying.apply_logged(self.segments, self.schema, self.payload_index, op_num, operation)
        finally:
            self.applied_op_num = max(self.applied_op_num, op_num)

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
        manifest write; the last segment stays the appendable one."""
        position = min(self.segments.index(s) for s in sources)
        kept = [s for s in self.segments if s not in sources]
        kept.insert(min(position, len(kept) - 1), replacement)
        replacement.advance_version(self.applied_op_num)
        self._write_manifest(kept)
        self.segments = kept

    def _write_manifest(self, segments: list) -> None:
        write_json_atomic(self.path / MANIFEST_FILE, {"segments": [s.path.name for s in segments]})

    def _apply_search_settings(self) -> None:
        settings = search_settings(self.config)
        for segment in self.segments:
            if isinstance(segment, IndexedSegment):
                segment.set_search_settings(settings)

    # -- flushing --------------------------------------------------------------------------

    async def _flusher(self) -> None:
        while True:
            interval = (self.config.get("optimizer_config") or {}).get("flush_interval_sec", 5)
            await trio.sleep(max(interval, 0.1))
            await trio.to_thread.run_sync(self.flush)

    def flush(self) -> int:
        """Persist every segment, then drop WAL files that only hold persisted operations."""
        persisted = min(segment.flush() for segment in list(self.segments))
        self.wal.truncate_before(persisted + 1)
        return persisted

    # -- config ----------------------------------------------------------------------------

    async def set_config(self, config: dict) -> None:
        await trio.to_thread.run_sync(write_json_atomic, self.path / CONFIG_FILE, config)
        self.config = config
        self._apply_search_settings()
        self.optimizer.wake()  # a changed index config may call for rebuilds

    # -- strict mode -----------------------------------------------------------------------

    def check_filter_indexed(self, filter_: dict | None, *, update: bool) -> None:
        """Strict mode: refuse a filter on unindexed fields when the collection forbids it
        (`unindexed_filtering_update` for writes, `unindexed_filtering_retrieve` for reads)."""
        strict = self.config.get("strict_mode_config") or {}
        setting = "unindexed_filtering_update" if update else "unindexed_filtering_retrieve"
        if not filter_ or not strict.get("enabled") or strict.get(setting) is not False:
            return
        missing = self.payload_index.missing_index(filter_)
        if missing is not None:
            key, types = missing
            shown = [t for t in types if t != "uuid"] or types
            raise BadInput(
                f'Bad request: Index required but not found for "{key}" of one of the following types: '
                f"[{', '.join(shown)}]. Help: Create an index for this key or use a different filter."
            )

    # -- info ------------------------------------------------------------------------------

    def points_count(self) -> int:
        return sum(segment.point_count for segment in self.segments)

    def info(self) -> dict:
        """Collection info (blocking: asks every segment's indexes for their point counts).

        status: red after a failed write or optimization (the error in optimizer_status),
        yellow while an optimization runs or is due, green otherwise."""
        error = self.last_error or self.optimizer.error
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


def _remove_unlisted_segments(segments_dir: Path, live: set[str]) -> None:
    """Segment directories not in the manifest are leftovers of an interrupted rebuild."""
    if not segments_dir.exists():
        return
    for entry in segments_dir.iterdir():
        if entry.name not in live:
            log.warning("removing segment %s: not in the manifest", entry)
            shutil.rmtree(entry, ignore_errors=True)
