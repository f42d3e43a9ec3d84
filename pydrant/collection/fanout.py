"""Running one read on every segment at once (DESIGN.md §4: a query runs on every segment in
worker threads, and the per-segment results are merged).

Segment searches spend their time in BLAS and Numba kernels that release the GIL, so
segments searched from several threads overlap. A search already runs in a worker thread
(the HTTP layer's one off-the-event-loop helper); `map_segments` hands every segment but
the first to a small pool shared by all collections, sized to the machine's cores, searches
the first itself, and returns the results in segment order, so merging them is exactly
what a sequential loop would merge. One segment, or too little work to pay for the
hand-offs (a few tens of microseconds each), runs in the calling thread alone.

A read's deadline (segments/deadline.py) is checked before each segment's part and bound
in the pool thread that runs it, so a read past its deadline stops between segments and
inside their scans.

The pool's threads only run segment reads: they never submit to the pool themselves, so a
full pool delays a search but cannot deadlock it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from pydrant.segments import deadline

S = TypeVar("S")
R = TypeVar("R")

# Below this many points over all the segments searched, a search is not split: scanning
# that few vectors takes about as long as handing the segments to other threads.
MIN_PARALLEL_POINTS = 4096

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _shared_pool() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        with _pool_lock:
            if _pool is None:
                _pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="pydrant-segment")
    return _pool


def _worth_splitting(segments: Sequence) -> bool:
    if len(segments) < 2:
        return False
    return sum(segment.point_count for segment in segments) >= MIN_PARALLEL_POINTS


def map_segments(function: Callable[[S], R], segments: Sequence[S]) -> list[R]:
    """`[function(s) for s in segments]`, the segments run concurrently when it pays.

    An exception is the one the sequential loop would raise: the first segment's, in
    segment order (the other segments' reads run to their end; reads change nothing)."""
    read_deadline = deadline.current()  # the pool's threads run under the caller's deadline
    if not _worth_splitting(segments):
        return [deadline.run_with(read_deadline, function, segment) for segment in segments]
    pool = _shared_pool()
    futures = [pool.submit(deadline.run_with, read_deadline, function, segment) for segment in segments[1:]]
    try:
        first = deadline.run_with(read_deadline, function, segments[0])
    except BaseException:
        for future in futures:
            future.exception()  # wait for them: nothing of a search runs after it ends
        raise
    return [first, *(future.result() for future in futures)]
