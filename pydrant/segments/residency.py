"""The node's background residency and verification worker (issue 17, step P7a).

An immutable segment opens in O(metadata): it maps its pack files and checks their sizes,
nothing more (docs/design/on-disk-segments.md §2.7). What opening skips is queued here and
done by ONE daemon thread per node, after `/readyz`, slowly enough not to compete with
requests:

1. **populate** the structures that must be resident (§2.6): `Upkeep.resident_regions()`
   gives mapped arrays; each is read in blocks of `block_bytes` (4 MiB): for each block a
   `madvise(MADV_WILLNEED)` on the mapping behind the array, then a touch of one byte per
   page, which maps the page into the process (`RssFile` grows by the region's size; a
   WILLNEED alone would only fill the page cache).
2. **verify** (§2.3): iterate `Upkeep.verification_steps(pace)`, checksums and structure
   checks, whose failure would otherwise show as wrong answers or as a `nogil` kernel
   reading out of bounds.
3. **warm up**, when the upkeep has a `warm_up()` method (the Numba specialisations its
   searches will use: a cache load of ~0.15 s each, §6 item 5).

Contracts and decisions (where the design was silent or had to be made precise):

- **Throttle.** Both phases share one rate per job (`rate` bytes/s, default 200 MiB/s,
  `PYDRANT_RESIDENCY_RATE`, 0 = unthrottled). After each block or step the worker sleeps
  until the bytes done so far match the rate. `os.nice` would lower every thread of the
  process, so the worker throttles itself instead. A job that fell behind the rate (the
  GIL, a slow disk) is not allowed to catch up in a burst: its credit is capped at
  `MAX_CREDIT_SECONDS`. Pausing restarts the accounting, for the same reason.
- **WILLNEED per block, not per region.** One `madvise(MADV_WILLNEED)` over a 1.5 GB region
  starts reading all of it at once, at the disk's full speed: the throttle would hold only
  the touches, not the I/O. Advising each block just before touching it keeps the reads
  paced (and still gives the kernel one large read request per block).
- **What a step yields, and `pace`.** As the `check_steps` generators of P1d/P3a/P3b and
  `ImmutableSegment.verification_steps` (P4) do, each value yielded is the job's running
  total of bytes verified (or units of work counted like bytes); the worker throttles on
  the growth since the previous yield. The worker passes a `pace(n)` callback, which the
  upkeep hands to callees that read in chunks, `packfile.verify_pack` above all: it counts
  n bytes, throttles after each 8 MiB chunk and stops a cancelled job in the middle of a
  1.5 GB pack (a yield comes only after a whole array). Bytes reported through `pace` are
  usually reported again by the next yield's total; the worker counts them once (a
  yield's growth counts only for what `pace` did not already report since the previous
  yield). Called without `pace`, the same generator runs synchronously (snapshot
  verification, tests).
- **Failures.** Any exception raised by `verification_steps()` (creating it, iterating
  it) is the segment's failure: `mark_failed(reason)` (the reason is the exception's text,
  which for a `CorruptPack` names the file), an ERROR log naming the segment and the
  reason, then `on_failure(upkeep, reason)` (P7 files a collection issue there). Populate
  and warm-up errors are *not* marked failed: populating is an optimisation (a file
  truncated under its mapping is skipped rather than touched, which would SIGBUS the
  process; the verification then reports it), and a warm-up failure is a compile problem
  of this process, not damage to the segment's files; both are logged. Exceptions from
  `mark_failed` and `on_failure` themselves are logged. Nothing a job does ends the thread
  or raises into the process.
- **Cancel** (`cancel(upkeep)`): a queued job is dropped; a running one stops at its next
  block, step or `pace` call (a `BaseException`, so an upkeep's `except Exception` does not
  swallow it) and its generator is closed. The worker then holds no reference to the
  upkeep or its arrays. `cancel` does not wait; `status()` shows "cancelled" once stopped.
  Jobs are matched by identity: the same object submitted again while queued or running
  is ignored.
- **Pause** holds queued jobs and halts a running one at its next block or step; the
  server creates the worker paused and resumes it when storage is ready (storage/toc.py).
- **close(timeout)** drops the queue, stops the running job like `cancel`, and joins the
  thread for at most `timeout` seconds (the thread is a daemon: a join that times out,
  e.g. inside one long uninterruptible step, never holds the process's exit).
- The thread starts on the first `submit`, so a `TableOfContent` that never serves (tests,
  tools) costs no thread.
- `status()` is keyed by the upkeep's `name` when it has one, else its `path` (a segment's
  directory, unique on the node: `ImmutableSegment` has no name of its own); finished
  entries are kept for the last `HISTORY` jobs.

The worker never runs on the trio event loop; its blocking calls (`close`, `wait_idle`)
must be run with `trio.to_thread.run_sync` from async code.
"""

from __future__ import annotations

import collections
import logging
import math
import mmap
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from pydrant.errors import PydrantError

log = logging.getLogger("pydrant.residency")

RATE_ENV = "PYDRANT_RESIDENCY_RATE"
DEFAULT_RATE = 200 << 20  # bytes per second
# Bytes populated between two throttle checks: large enough that the per-block Python is
# noise, small enough that a cancel or pause is seen within milliseconds and that the
# numpy touch (GIL released) hands the GIL back often.
BLOCK_BYTES = 4 << 20
# How far a job that fell behind its rate may run ahead to catch up, in seconds of rate.
MAX_CREDIT_SECONDS = 0.25
CLOSE_TIMEOUT_SECONDS = 5.0
HISTORY = 1000
PAGE = mmap.PAGESIZE

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"


@runtime_checkable
class Upkeep(Protocol):
    """What the worker asks of a segment (an `ImmutableSegment` implements it).

    Optional: a `name` attribute (logs and `status()` use it instead of `path`), and a
    `warm_up() -> None` method, called last.
    """

    @property
    def path(self) -> Path:
        """The segment's directory: names it in logs and `status()`."""
        ...

    def resident_regions(self) -> list[np.ndarray]:
        """Mapped arrays to make resident (§2.6); arrays not backed by an mmap are skipped."""
        ...

    def verification_steps(self, pace: Callable[[int], None] | None = None) -> Iterator[int]:
        """Checksums and structure checks, one step at a time, yielding the running total
        of bytes verified; `pace(n)` is to be called after each n bytes read inside a step
        (module docstring). Raises on damage."""
        ...

    def mark_failed(self, reason: str) -> None:
        """From now on refuse reads with a 500 naming `reason`."""
        ...


@dataclass(frozen=True)
class JobStatus:
    """Where one segment's upkeep stands. `reason` is the failure (state "failed") or a
    warm-up error (state "done"); the byte counts are what was populated and verified."""

    state: str
    reason: str | None = None
    resident_bytes: int = 0
    verified_bytes: int = 0
    seconds: float = 0.0


class _Stopped(BaseException):
    """The running job was cancelled or the worker is closing. A BaseException so that an
    upkeep's `except Exception` cannot swallow it."""


# ---------------------------------------------------------------------------------------
# Configuration.
# ---------------------------------------------------------------------------------------

def rate_from_env(environ: Mapping[str, str] = os.environ) -> int:
    """The rate in bytes/s from `PYDRANT_RESIDENCY_RATE` (a non-negative number; 0 means
    unthrottled), else `DEFAULT_RATE`. A value that is not one is logged and ignored: a
    tuning knob of background work is no reason to refuse to start."""
    text = environ.get(RATE_ENV)
    if text is None or not text.strip():
        return DEFAULT_RATE
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        log.warning("%s=%r is not a non-negative number of bytes per second; using %d", RATE_ENV, text, DEFAULT_RATE)
        return DEFAULT_RATE
    return int(value)


# ---------------------------------------------------------------------------------------
# The worker.
# ---------------------------------------------------------------------------------------


class _Pacer:
    """Holds a job to `rate` bytes/s on average: `delay(n)` after n more bytes says how long
    to sleep. Credit for time spent behind the rate is capped (no catch-up bursts)."""

    def __init__(self, rate: int):
        self.rate = rate
        self.restart()

    def restart(self) -> None:
        self._since = time.monotonic()
        self._done = 0

    def delay(self, nbytes: int) -> float:
        if self.rate <= 0:
            return 0.0
        self._done += nbytes
        ahead = self._done / self.rate - (time.monotonic() - self._since)
        if ahead < -MAX_CREDIT_SECONDS:
            self._since = time.monotonic() - MAX_CREDIT_SECONDS
            self._done = 0
        return max(0.0, ahead)


class _Job:
    """One submitted upkeep while it is queued or running; `upkeep` is dropped at its end."""

    def __init__(self, upkeep: Upkeep, rate: int):
        self.upkeep: Upkeep | None = upkeep
        self.name = _label(upkeep)
        self.pacer = _Pacer(rate)
        self.cancelled = False
        self.phase = "populate"
        self.resident_bytes = 0
        self.verified_bytes = 0
        # bytes `pace` reported since the last yielded total (counted once: module docstring)
        self.paced_since_yield = 0
        self.began = 0.0

    def status(self, state: str, reason: str | None = None) -> JobStatus:
        seconds = time.monotonic() - self.began if self.began else 0.0
        return JobStatus(state, reason, self.resident_bytes, self.verified_bytes, round(seconds, 3))


class ResidencyWorker:
    """One background thread populating, verifying and warming segments, one at a time,
    in submission order (module docstring for the contracts). Thread-safe; no method
    blocks except `close` and `wait_idle`."""

    def __init__(
        self,
        rate: int = DEFAULT_RATE,
        *,
        on_failure: Callable[[Upkeep, str], None] | None = None,
        paused: bool = False,
        block_bytes: int = BLOCK_BYTES,
    ):
        if rate < 0:
            raise ValueError(f"rate must be >= 0 bytes/s, not {rate}")
        if block_bytes < PAGE:
            raise ValueError(f"block_bytes must be at least a page ({PAGE}), not {block_bytes}")
        self.rate = int(rate)
        self.block_bytes = block_bytes - block_bytes % PAGE
        self._on_failure = on_failure
        self._cond = threading.Condition()
        self._queue: collections.deque[_Job] = collections.deque()
        self._running: _Job | None = None
        self._statuses: collections.OrderedDict[str, JobStatus] = collections.OrderedDict()
        self._paused = paused
        self._closing = False
        self._thread: threading.Thread | None = None

    # -- the interface -------------------------------------------------------------------

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def closed(self) -> bool:
        return self._closing

    def submit(self, upkeep: Upkeep) -> bool:
        """Queue `upkeep`. False when the worker is closed or the same object is already
        queued or running."""
        with self._cond:
            if self._closing:
                log.debug("residency worker closed: %s not queued", _label(upkeep))
                return False
            if any(job.upkeep is upkeep for job in self._jobs()):
                return False
            job = _Job(upkeep, self.rate)
            self._queue.append(job)
            self._record(job.name, job.status(QUEUED))
            self._start_thread()
            self._cond.notify_all()
            return True

    def cancel(self, upkeep: Upkeep) -> None:
        """Forget `upkeep` (its segment was dropped): dequeue it, or stop its running job at
        the next block or step. Does not wait; a no-op for an upkeep the worker does not hold."""
        with self._cond:
            for job in list(self._queue):
                if job.upkeep is upkeep:
                    self._queue.remove(job)
                    job.upkeep = None
                    self._record(job.name, job.status(CANCELLED))
            running = self._running
            if running is not None and running.upkeep is upkeep:
                running.cancelled = True
            self._cond.notify_all()

    def pause(self) -> None:
        """Hold queued jobs and halt the running one at its next block or step."""
        with self._cond:
            self._paused = True

    def resume(self) -> None:
        with self._cond:
            self._paused = False
            self._cond.notify_all()

    def close(self, timeout: float = CLOSE_TIMEOUT_SECONDS) -> bool:
        """Drop the queue, stop the running job and join the thread for at most `timeout`
        seconds. True when the thread has ended (or never started). Idempotent."""
        with self._cond:
            self._closing = True
            while self._queue:
                job = self._queue.popleft()
                job.upkeep = None
                self._record(job.name, job.status(CANCELLED))
            self._cond.notify_all()
            thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        if thread.is_alive():
            log.warning("residency worker still busy %.1f s after close; leaving it (a daemon thread)", timeout)
            return False
        return True

    def status(self) -> dict[str, JobStatus]:
        """Per segment name: queued / running / done / failed / cancelled, with progress."""
        with self._cond:
            statuses = dict(self._statuses)
            if self._running is not None:
                running = self._running
                statuses[running.name] = running.status(RUNNING)
            return statuses

    def wait_idle(self, timeout: float) -> bool:
        """Block until nothing is queued or running (True), or `timeout` passes (False).
        Paused work never becomes idle. For tests and tools; never on the event loop."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._queue and self._running is None, timeout)

    # -- the thread ----------------------------------------------------------------------

    def _jobs(self) -> list[_Job]:
        return [*self._queue, *([self._running] if self._running is not None else [])]

    def _record(self, name: str, status: JobStatus) -> None:
        """Caller holds the lock."""
        self._statuses[name] = status
        self._statuses.move_to_end(name)
        while len(self._statuses) > HISTORY:
            self._statuses.popitem(last=False)

    def _start_thread(self) -> None:
        """Caller holds the lock."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="pydrant-residency", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while True:
            job = self._next_job()
            if job is None:
                return
            try:
                final = self._run(job)
            except BaseException:  # a bug of this module: keep the thread, say so loudly
                log.exception("residency job for %s ended abnormally", job.name)
                final = job.status(FAILED, "internal error of the residency worker (see the log)")
            with self._cond:
                job.upkeep = None
                self._running = None
                self._record(job.name, final)
                self._cond.notify_all()

    def _next_job(self) -> _Job | None:
        with self._cond:
            self._cond.wait_for(lambda: self._closing or (not self._paused and bool(self._queue)))
            if self._closing:
                return None
            job = self._queue.popleft()
            self._running = job
            self._record(job.name, job.status(RUNNING))
            return job

    def _run(self, job: _Job) -> JobStatus:
        """Populate, verify, warm up; the job's final status. Raises nothing but bugs."""
        upkeep = job.upkeep
        assert upkeep is not None
        job.began = time.monotonic()
        try:
            self._populate(job, upkeep)
            job.phase = "verify"
            failure = self._verify(job, upkeep)
            if failure is not None:
                self._fail(upkeep, failure)
                return job.status(FAILED, failure)
            job.phase = "warm_up"
            warm_up_error = self._warm_up(job, upkeep)
        except _Stopped:
            log.info("residency of %s stopped after %.2f s (%s)", job.name, time.monotonic() - job.began, job.phase)
            return job.status(CANCELLED)
        log.info(
            "segment %s: %s resident, %s verified in %.2f s",
            job.name, _mib(job.resident_bytes), _mib(job.verified_bytes), time.monotonic() - job.began,
        )
        return job.status(DONE, warm_up_error)

    # -- checkpoints: throttle, pause, cancel

    def _progress(self, job: _Job, nbytes: int) -> None:
        """`nbytes` more done in the job's current phase: count it, then checkpoint."""
        nbytes = max(0, int(nbytes))
        if job.phase == "populate":
            job.resident_bytes += nbytes
        else:
            job.verified_bytes += nbytes
        self._checkpoint(job, nbytes)

    def _checkpoint(self, job: _Job, nbytes: int) -> None:
        """Sleep to hold the rate, wait while paused; raise _Stopped when the job is
        cancelled or the worker closing. Sleeps wake at once on cancel, close and resume."""
        delay = job.pacer.delay(nbytes)
        with self._cond:
            if delay:
                self._cond.wait_for(lambda: self._stopping(job), delay)
            if self._paused and not self._stopping(job):
                self._cond.wait_for(lambda: self._stopping(job) or not self._paused)
                job.pacer.restart()
            if self._stopping(job):
                raise _Stopped

    def _stopping(self, job: _Job) -> bool:
        return job.cancelled or self._closing

    # -- phases

    def _populate(self, job: _Job, upkeep: Upkeep) -> None:
        """Make each mapped region resident, block by block. Errors are logged, not fatal."""
        try:
            regions = upkeep.resident_regions()
        except Exception as exc:
            log.warning("segment %s: listing its resident regions failed, not populated: %s", job.name, exc)
            return
        for region in regions:
            try:
                self._populate_region(job, region)
            except _Stopped:
                raise
            except Exception as exc:
                log.warning("segment %s: populating a region failed, skipped: %s", job.name, exc)

    def _populate_region(self, job: _Job, region: np.ndarray) -> None:
        mapping = _mapping_of(region)
        if mapping is None or region.nbytes == 0:
            return  # not mapped (already in RAM) or empty: nothing to populate
        if not region.flags.c_contiguous:
            raise ValueError(f"region of shape {region.shape} is not C-contiguous")
        start = region.ctypes.data - _address_of(mapping)
        end = start + region.nbytes
        if mapping.size() < end:
            # Touching past the end of a truncated file raises SIGBUS, which would end the
            # process. The verification reports the damage.
            log.warning("segment %s: its file is shorter than a mapped region; not populated", job.name)
            return
        data = region.reshape(-1).view(np.uint8)
        for lo in range(0, data.size, self.block_bytes):
            block = data[lo : lo + self.block_bytes]
            advise_from = (start + lo) - (start + lo) % PAGE
            mapping.madvise(mmap.MADV_WILLNEED, advise_from, start + lo + block.size - advise_from)
            _touch(block)
            self._progress(job, block.size)

    def _verify(self, job: _Job, upkeep: Upkeep) -> str | None:
        """Run the verification steps; the failure's reason, or None when they all pass."""
        steps: Iterator[int] | None = None
        previous_total = 0
        try:
            steps = upkeep.verification_steps(pace=lambda nbytes: self._paced(job, nbytes))
            for total in steps:
                grown = max(0, int(total) - previous_total)
                previous_total = max(previous_total, int(total))
                unreported, job.paced_since_yield = max(0, grown - job.paced_since_yield), 0
                self._progress(job, unreported)
        except _Stopped:
            raise
        except Exception as exc:
            return _reason(exc)
        finally:
            close = getattr(steps, "close", None)
            if close is not None:
                close()  # a generator left mid-way releases its files now, not at collection
        return None

    def _paced(self, job: _Job, nbytes: int) -> None:
        """The `pace` callback handed to the upkeep: bytes read inside a step."""
        job.paced_since_yield += max(0, int(nbytes))
        self._progress(job, nbytes)

    def _warm_up(self, job: _Job, upkeep: Upkeep) -> str | None:
        """Call the upkeep's `warm_up()` if it has one; the error text if it raised."""
        warm_up = getattr(upkeep, "warm_up", None)
        if not callable(warm_up):
            return None
        self._checkpoint(job, 0)
        try:
            warm_up()
        except Exception as exc:
            log.error("segment %s: warm-up failed (searches will compile on first use): %s", job.name, _reason(exc))
            return f"warm-up failed: {_reason(exc)}"
        return None

    def _fail(self, upkeep: Upkeep, reason: str) -> None:
        """Report a verification failure: the segment, the log, the callback. Never raises."""
        label = _label(upkeep)
        log.error("segment %s failed its background verification: %s", label, reason)
        try:
            upkeep.mark_failed(reason)
        except Exception:
            log.exception("segment %s: mark_failed raised", label)
        if self._on_failure is not None:
            try:
                self._on_failure(upkeep, reason)
            except Exception:
                log.exception("segment %s: the residency failure callback raised", label)


def _label(upkeep: Upkeep) -> str:
    """How logs and `status()` name an upkeep: its `name` if it has one, else its path."""
    name = getattr(upkeep, "name", None)
    return str(name) if name else str(upkeep.path)


def _mapping_of(array: np.ndarray) -> mmap.mmap | None:
    """The mmap an array views, through numpy bases and a memoryview (`np.frombuffer` on an
    mmap: packfile.open_pack; `np.memmap`, `np.load(mmap_mode=...)`), else None."""
    base: object = array
    while isinstance(base, np.ndarray):
        base = base.base
    if isinstance(base, memoryview):
        base = base.obj
    return base if isinstance(base, mmap.mmap) else None


def _address_of(mapping: mmap.mmap) -> int:
    """Address of a mapping's first byte (works for read-only mappings, unlike ctypes)."""
    return np.frombuffer(mapping, dtype=np.uint8, count=1).ctypes.data


def _touch(block: np.ndarray) -> int:
    """Read one byte per page of `block` (and its last byte, for a block not starting on a
    page) so each page is faulted into the process. numpy's reduction drops the GIL."""
    return int(block[::PAGE].max()) + int(block[-1])


def _reason(exc: BaseException) -> str:
    """An exception as a failure reason: the message (a CorruptPack's names its file),
    prefixed by the type unless it is one of pydrant's own errors."""
    text = exc.message if isinstance(exc, PydrantError) else str(exc)
    if isinstance(exc, PydrantError) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _mib(nbytes: int) -> str:
    return f"{nbytes / (1 << 20):.1f} MiB"


__all__ = [
    "DEFAULT_RATE",
    "RATE_ENV",
    "JobStatus",
    "ResidencyWorker",
    "Upkeep",
    "rate_from_env",
]
