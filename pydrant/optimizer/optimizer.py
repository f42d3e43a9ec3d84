"""The optimizer of one collection: a trio task that runs the planner's optimizations.

One optimization (docs/optimizer.md):

1. *Proxy.* Under the collection's apply lock (no write is being applied): if the sources
   include the writable segment (`segments/base.py` `writable_segment`: the appendable one
   that takes new points), a fresh one is added after it and the manifest records it; each source starts tracking the points changed from now on.
   Reads and writes go on against the sources for the whole rebuild.
2. *Copy* (worker thread): every live point of the sources, newest version per id, into a
   new directory that the manifest does not list (so a crash leaves nothing behind: it is
   removed on start).
3. *Index* (worker thread, GIL-free kernels on `max_indexing_threads`): graphs, codes and
   sparse indexes; `segment.json` is written last.
4. *Swap*, under the apply lock: the points changed meanwhile are copied again (or removed
   when their source no longer holds them), the copy is flushed, and one atomic manifest
   write replaces the sources by it. The sources stay open for a grace period for the
   reads that still hold them, then their directories are deleted.

A crash before the manifest write leaves the old segments; after it, the new one. Either
way the WAL replay that follows restores every acknowledged write (idempotent by version).
"""

from __future__ import annotations

import logging
import threading
import time

import trio

from collections.abc import Sequence

from pydrant.optimizer import budget
from pydrant.optimizer.host import OptimizerHost
from pydrant.optimizer.planner import Plan, facts_of, next_plan
from pydrant.segments.appendable import AppendableSegment
from pydrant.segments.base import ExportedPoint, OptimizerSource, Segment, writable_segment
from pydrant.segments.hnsw import BuildCancelled
from pydrant.segments.indexed import IndexedSegment
from pydrant.segments.ids import id_sort_key
from pydrant.segments.types import PointId

log = logging.getLogger("pydrant.optimizer")

COPY_CHUNK = 512  # points read and written per copy step
# A pause between copy steps: the copy is Python holding the GIL, and without a gap the
# event loop's thread waits for it again and again within one request (the convoy effect
# measured as 100-200 ms request stalls while 1M points were copied).
COPY_PAUSE_SECONDS = 0.002
IDLE_CHECK_SECONDS = 5.0  # re-plan at least this often even without updates
ERROR_BACKOFF_SECONDS = 30.0
RETIRE_GRACE_SECONDS = 30.0  # sources stay open this long after a swap for running reads


class OptimizationCancelled(Exception):
    pass


class Optimizer:
    """Runs `next_plan` until the collection is optimized; woken by every applied update.
    The collection is reached only through the `OptimizerHost` protocol (host.py)."""

    def __init__(self, collection: OptimizerHost):
        self.collection = collection
        self.running: Plan | None = None
        self.error: str | None = None
        self.completed = 0
        self._wake = trio.Event()
        self._stop = threading.Event()
        self._retired: list[tuple[float, Segment]] = []

    # -- the task -------------------------------------------------------------------------

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while True:
            self._drop_retired(time.monotonic())
            plan = await trio.to_thread.run_sync(self.plan)
            if plan is None:
                with trio.move_on_after(IDLE_CHECK_SECONDS):
                    await self._wake.wait()
                self._wake = trio.Event()
                continue
            failed = False
            async with budget.optimization_slots():  # node-wide: every shard and collection
                plan = await trio.to_thread.run_sync(self.plan)  # it may have changed meanwhile
                if plan is None:
                    continue
                self.running = plan
                try:
                    await self._execute(plan)
                    self.error = None
                    self.completed += 1
                except OptimizationCancelled:
                    return
                except Exception as exc:
                    log.exception("collection %s: %s failed", self.collection.name, plan.describe())
                    self.error = f"{plan.kind} optimization failed: {exc}"
                    failed = True
                finally:
                    self.running = None
            if failed:  # back off without holding the node's slot
                await trio.sleep(ERROR_BACKOFF_SECONDS)

    def stop(self) -> None:
        """Ask a running optimization to stop at its next copy chunk or graph batch."""
        self._stop.set()

    def close(self) -> None:
        """Drop every retired segment now (the collection is closing)."""
        self._drop_retired(float("inf"))

    # -- planning (blocking: asks the segments for their sizes) ----------------------------

    def plan(self) -> Plan | None:
        collection = self.collection
        segments = list(collection.segments)
        facts = [facts_of(segment) for segment in segments]
        return next_plan(facts, collection.optimizer_settings(), collection.index_settings())

    def pending(self) -> bool:
        """Whether an optimization runs or is due (blocking)."""
        return self.running is not None or self.plan() is not None

    # -- one optimization -----------------------------------------------------------------

    async def _execute(self, plan: Plan) -> None:
        collection = self.collection
        started = time.monotonic()
        log.info("collection %s: starting %s", collection.name, plan.describe())
        await trio.to_thread.run_sync(self._begin, plan)
        target: Segment | None = None
        try:
            target = await trio.to_thread.run_sync(self._build, plan)
            await trio.to_thread.run_sync(self._swap, plan, target)
        except BaseException:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(self._abandon, plan, target)
            raise
        for source in plan.sources:
            self._retired.append((time.monotonic() + RETIRE_GRACE_SECONDS, source))
        log.info(
            "collection %s: %s done in %.1f s (%d points)",
            collection.name, plan.describe(), time.monotonic() - started, target.point_count,
        )

    def _begin(self, plan: Plan) -> None:
        collection = self.collection
        with collection.apply_lock:
            if writable_segment(collection.segments) in plan.sources:
                collection.add_appendable_segment()  # the new writable segment
            for source in plan.sources:
                source.start_tracking()

    def _build(self, plan: Plan) -> Segment:
        collection = self.collection
        path = collection.new_segment_path()
        indexed = IndexedSegment.create(path, collection.schema) if plan.indexed else None
        target: Segment = indexed if indexed is not None else AppendableSegment.create(path, collection.schema)
        try:
            target.set_payload_indexes(collection.payload_index.fields)
            self._copy_all(plan.sources, target)
            target.advance_version(max(source.version for source in plan.sources))
            if indexed is not None:
                self._check_stop()
                indexed.set_search_settings(collection.search_settings())  # sizes tenant subgraphs
                try:
                    indexed.build_indexes(
                        collection.index_settings(), collection.indexing_threads(), self._stop.is_set
                    )
                except BuildCancelled:
                    raise OptimizationCancelled() from None
            target.flush()  # most of the copy; the swap flushes only what it re-copies
            return target
        except BaseException:
            target.drop()
            raise

    def _copy_all(self, sources: list[Segment], target: Segment) -> None:
        for source in sources:
            ids = list(source.iter_ids())
            for start in range(0, len(ids), COPY_CHUNK):
                self._check_stop()
                chunk = ids[start : start + COPY_CHUNK]
                target.import_points(_newest(sources, chunk))
                time.sleep(COPY_PAUSE_SECONDS)

    def _swap(self, plan: Plan, target: Segment) -> None:
        collection = self.collection
        with collection.apply_lock:
            changed: dict[int, PointId] = {}
            for source in plan.sources:
                for point_id in source.take_tracked(stop=True):
                    changed[id_sort_key(point_id)] = point_id
            if changed:
                ids = list(changed.values())
                points = _newest(plan.sources, ids)
                held = {id_sort_key(p[0]) for p in points}
                target.discard_points([i for i in ids if id_sort_key(i) not in held])
                target.import_points(points)
            target.set_payload_indexes(collection.payload_index.fields)
            target.advance_version(max(source.version for source in plan.sources))
            target.flush()
            collection.replace_segments(plan.sources, target)
        log.debug("collection %s: swap re-copied %d changed points", collection.name, len(changed))

    def _abandon(self, plan: Plan, target: Segment | None) -> None:
        for source in plan.sources:
            source.take_tracked(stop=True)
        if target is not None and target not in self.collection.segments:
            if self.collection.manifest_unsure:
                # The failed manifest write may have reached the disk and list the target:
                # keep its directory (removed at start once a manifest without it is written).
                target.close()
            else:
                target.drop()

    def _check_stop(self) -> None:
        if self._stop.is_set():
            raise OptimizationCancelled()

    def _drop_retired(self, now: float) -> None:
        keep: list[tuple[float, Segment]] = []
        for deadline, segment in self._retired:
            if deadline <= now:
                segment.drop()
            else:
                keep.append((deadline, segment))
        self._retired = keep


def _newest(sources: Sequence[OptimizerSource], ids: list[PointId]) -> list[ExportedPoint]:
    """Exported points (`export_points`) of `ids`, the newest version of each among the
    sources (a point the sources no longer hold is left out)."""
    if len(sources) == 1:
        return sources[0].export_points(ids)
    best: dict[int, ExportedPoint] = {}
    for source in sources:
        for point in source.export_points(ids):
            key = id_sort_key(point[0])
            current = best.get(key)
            if current is None or point[1] > current[1]:
                best[key] = point
    return list(best.values())
