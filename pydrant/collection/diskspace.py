"""Disk almost full is a state, not a crash: refuse writes before they reach the WAL.

Qdrant v1.15 (`DiskUsageWatcher`, lib/collection/src/shards/local_shard/) checks the free
space of the shard's disk at the start of every update and refuses the update when less
than twice the collection's `wal_capacity_mb` is free, with

    500 {"status": {"error": "Service internal error: No space left on device: WAL buffer
         size exceeds available disk space"}}

pydrant does the same at the top of `Collection.update`, with the same threshold and the
same answer, so a full disk is met before the WAL, RocksDB or a manifest write runs into
ENOSPC half-way. Reads go on. The node setting `storage.min_free_disk_mb` (pydrant's own;
Qdrant has none) replaces the threshold: null keeps Qdrant's 2 x `wal_capacity_mb`, 0 turns
the check off.

While a collection's disk is below its threshold the issue board holds
`DISK_ALMOST_FULL/<collection>`. It is resolved as soon as space returns: by the next write
that finds enough, or by a watcher thread that re-reads the free space every second while any
collection is in that state, so the issue clears without a write.

The check is cheap: free space is read with `statvfs` at most once per `CHECK_INTERVAL`
per collection, and at most once per `NEAR_INTERVAL` when it is within `NEAR_MARGIN` of the
threshold (Qdrant too reads more often as the disk gets close to full). In between the last
reading answers.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from pathlib import Path
from collections.abc import Callable

from pydrant.errors import ServiceError
from pydrant.issues import BOARD, collection_issue_id

log = logging.getLogger("pydrant.diskspace")

MB = 1024 * 1024
ISSUE_CODE = "DISK_ALMOST_FULL"
# Qdrant's answer, word for word (ServiceError's text carries the "Service internal error"
# prefix itself, as everywhere in pydrant).
REFUSAL = "Service internal error: No space left on device: WAL buffer size exceeds available disk space"
CHECK_INTERVAL = 1.0  # seconds between statvfs calls when far from the threshold
NEAR_INTERVAL = 0.1  # ... and when within NEAR_MARGIN of it
NEAR_MARGIN = 256 * MB
DEFAULT_WAL_CAPACITY_MB = 32

# `storage.min_free_disk_mb` of this process; None: 2 x the collection's wal_capacity_mb.
_min_free_disk_mb: int | None = None


def configure(min_free_disk_mb: int | None) -> None:
    """Set the node's threshold (from `storage.min_free_disk_mb`); 0 disables the check."""
    global _min_free_disk_mb
    _min_free_disk_mb = min_free_disk_mb


def threshold_bytes(config: dict) -> int:
    """Free bytes a collection with `config` needs to take writes (0: no check)."""
    if _min_free_disk_mb is not None:
        return _min_free_disk_mb * MB
    wal_mb = (config.get("wal_config") or {}).get("wal_capacity_mb") or DEFAULT_WAL_CAPACITY_MB
    return 2 * wal_mb * MB


def free_bytes_of(path: Path, statvfs: Callable = os.statvfs) -> int | None:
    """Bytes an unprivileged writer may still use on `path`'s filesystem (as `fs4::available_space`
    does: f_bavail x f_frsize); None when it cannot be read."""
    try:
        st = statvfs(path)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


class DiskSpaceGuard:
    """One collection's view of its disk; `check()` raises when writes must be refused."""

    def __init__(self, name: str, path: Path, threshold: Callable[[], int], *,
                 statvfs: Callable = os.statvfs, clock: Callable[[], float] = time.monotonic):
        self.name = name
        self.path = Path(path)
        self.threshold = threshold
        self.statvfs = statvfs
        self.clock = clock
        self.issue_id = collection_issue_id(ISSUE_CODE, name)
        self.full = False
        self._free: int | None = None
        self._read_at: float | None = None
        self._lock = threading.Lock()  # the watcher thread refreshes too

    def check(self) -> None:
        """Raise ServiceError (500, Qdrant's text) when free space is below the threshold."""
        limit = self.threshold()
        if limit <= 0:
            if self.full:
                self._set_full(False, None, limit)
            return
        free = self.free_bytes(limit)
        if free is None:  # unknown (an unsupported filesystem): never refuse on a guess
            return
        if free < limit:
            raise ServiceError(REFUSAL)

    def free_bytes(self, limit: int | None = None, *, fresh: bool = False) -> int | None:
        """The last reading of free space, re-read when it is older than its interval; the
        issue board follows every new reading."""
        limit = self.threshold() if limit is None else limit
        with self._lock:
            now = self.clock()
            if not fresh and self._read_at is not None and now - self._read_at < self._interval(limit):
                return self._free
            self._free = free_bytes_of(self.path, self.statvfs)
            self._read_at = now
            free = self._free
        self._set_full(free is not None and limit > 0 and free < limit, free, limit)
        return free

    def _interval(self, limit: int) -> float:
        if self._free is not None and self._free < limit + NEAR_MARGIN:
            return NEAR_INTERVAL
        return CHECK_INTERVAL

    def _set_full(self, full: bool, free: int | None, limit: int) -> None:
        if full:
            assert free is not None  # "full" is only ever concluded from a reading
            if not self.full:
                log.error(
                    "collection %s: disk almost full (%.1f MB free on %s, writes need %.1f MB): "
                    "refusing writes until space returns", self.name, free / MB, self.path, limit / MB,
                )
            BOARD.submit(
                self.issue_id,
                f"Disk almost full for collection `{self.name}`: {free / MB:.1f} MB free on the "
                f"filesystem of {self.path}, writes need at least {limit / MB:.1f} MB. Writes are "
                "refused; reads go on.",
                "Free disk space (or grow the volume); writes resume by themselves. "
                "The threshold is storage.min_free_disk_mb (default: 2 x wal_capacity_mb).",
            )
            if not self.full:
                self.full = True
                _watch(self)
        elif self.full:
            self.full = False
            BOARD.resolve(self.issue_id)
            log.warning("collection %s: disk space is back (%s MB free): writes accepted again",
                        self.name, "?" if free is None else f"{free / MB:.1f}")


# -- one guard per collection, made on first use --------------------------------------------

_guards: weakref.WeakKeyDictionary[object, DiskSpaceGuard] = weakref.WeakKeyDictionary()
_guards_lock = threading.Lock()


def guard_for(collection) -> DiskSpaceGuard:
    with _guards_lock:
        guard = _guards.get(collection)
        if guard is None:
            guard = DiskSpaceGuard(collection.name, collection.path, lambda: threshold_bytes(collection.config))
            _guards[collection] = guard
        return guard


def check(collection) -> None:
    """Refuse a write to `collection` when its disk is almost full (call before the WAL)."""
    guard_for(collection).check()


# -- the watcher: clears the issue when space returns, with no write needed ------------------

_watched: weakref.WeakSet[DiskSpaceGuard] = weakref.WeakSet()
_watcher: threading.Thread | None = None


def _watch(guard: DiskSpaceGuard) -> None:
    global _watcher
    with _guards_lock:
        _watched.add(guard)
        if _watcher is None or not _watcher.is_alive():
            _watcher = threading.Thread(target=_watch_loop, name="pydrant-diskspace", daemon=True)
            _watcher.start()


def _watch_loop() -> None:
    global _watcher
    while True:
        time.sleep(CHECK_INTERVAL)
        with _guards_lock:
            guards = [g for g in _watched if g.full]
            if not guards:
                _watched.clear()
                _watcher = None
                return
        for guard in guards:
            if not guard.path.exists():  # the collection was deleted
                guard.full = False
                BOARD.resolve(guard.issue_id)
                continue
            try:
                guard.free_bytes(fresh=True)
            except Exception:  # never let the watcher die on a surprise; try again later
                log.exception("disk space watcher: reading %s failed", guard.path)
