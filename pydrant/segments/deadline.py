"""Deadlines of reads: how a request's `timeout` reaches the thread doing the read.

A read runs in a worker thread (and its segment searches in the shared segment pool,
collection/fanout.py); the HTTP layer cannot interrupt a thread, and a Numba kernel or a
BLAS call cannot be interrupted at all. So a read is cut off cooperatively: the HTTP layer
makes a `Deadline` (seconds from now, and the name of the operation for the error), binds
it to the thread that runs the read (`run_with`), and stops waiting when it passes; the
read calls `check()` at its safe points and raises `Timeout` once the deadline has passed
or the waiter has gone (`cancel`). A read changes nothing, so stopping it anywhere leaves
nothing half-done.

Safe points, and so the granularity of a cut-off (docs/timeouts.md):
- before each segment's part of a read (collection/fanout.py, collection/reads.py);
- between the blocks of an exact scan: a block is at most `scan_block_rows` rows, sized
  so that one block of one query is about 2^24 multiply-adds (~10 ms of BLAS on one
  core; segments/scoring.py);
- every `CHECK_EVERY_POINTS` points of a filter evaluated on stored payloads (a field
  without an index; segments/appendable.py).

The deadline is carried in a context variable, so code between the HTTP layer and the
kernels does not pass it along; a thread that runs part of a read for another thread
(the segment pool) binds the caller's deadline itself (`current()`, `run_with`).

The message is Qdrant's for `CollectionError::Timeout` through `StorageError::Timeout`
(lib/collection/src/operations/types.rs, lib/storage/src/content_manager/errors.rs),
answered with 408 (src/actix/helpers.rs).
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from pydrant.errors import Timeout

R = TypeVar("R")

# Points a payload filter is evaluated on between two checks (unindexed conditions read
# each point's payload: some microseconds a point).
CHECK_EVERY_POINTS = 2048


def timeout_message(operation: str, seconds: float) -> str:
    """Qdrant's text: `CollectionError::timeout(secs, op)` displayed through StorageError."""
    return f"Timeout: Timeout error: Operation '{operation}' timed out after {int(seconds)} seconds"


class Deadline:
    """A point in time (monotonic clock) after which a read stops at its next check."""

    __slots__ = ("seconds", "operation", "expires_at", "cancelled")

    def __init__(self, seconds: float, operation: str, clock: Callable[[], float] = time.monotonic):
        self.seconds = seconds
        self.operation = operation
        self.expires_at = clock() + seconds
        self.cancelled = False

    @property
    def message(self) -> str:
        return timeout_message(self.operation, self.seconds)

    def cancel(self) -> None:
        """The waiter has given up: the read stops at its next check, however early."""
        self.cancelled = True

    def expired(self) -> bool:
        return self.cancelled or time.monotonic() >= self.expires_at

    def remaining(self) -> float:
        return max(0.0, self.expires_at - time.monotonic())

    def check(self) -> None:
        """Raise `Timeout` (Qdrant's message) if the read must stop."""
        if self.cancelled or time.monotonic() >= self.expires_at:
            raise Timeout(self.message)


_CURRENT: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar("pydrant_read_deadline", default=None)


def current() -> Deadline | None:
    """The deadline of the read this thread is running, if any."""
    return _CURRENT.get()


def check() -> None:
    """A safe point: raise `Timeout` if this thread's read is past its deadline."""
    deadline = _CURRENT.get()
    if deadline is not None:
        deadline.check()


@contextmanager
def bound(deadline: Deadline | None) -> Iterator[None]:
    """Make `deadline` this thread's (context's) deadline for the block."""
    token = _CURRENT.set(deadline)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def run_with(deadline: Deadline | None, function: Callable[..., R], *args) -> R:
    """`function(*args)` with `deadline` bound, checked once before it starts."""
    with bound(deadline):
        if deadline is not None:
            deadline.check()
        return function(*args)
