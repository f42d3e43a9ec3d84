"""How many optimizations run at once on this node, over every collection and shard.

A collection of N shards has N optimizers (one per shard, as Qdrant's), and a node has
many collections: without a node-wide limit, a 2-core machine would run every one of them
at once. Each optimization takes one slot before it starts (`optimization_slots`):

- `storage.performance.max_optimization_threads` > 0: that many slots (Qdrant's "max
  number of threads (jobs) for running optimizations across all collections");
- else `storage.performance.optimizer_cpu_budget`: positive, that many; negative, the CPUs
  minus that many; 0 (the default), the CPUs minus one, at least one (Qdrant's automatic
  budget keeps a CPU for search on small machines).

The server sets the numbers once before any collection runs (`configure`); the limiter
lives in the trio run (a RunVar), so every run of the event loop gets its own.
"""

from __future__ import annotations

import os

import trio
from trio.lowlevel import RunVar

_SETTINGS = {"max_optimizations": 0, "cpu_budget": 0}
_SLOTS: RunVar[trio.CapacityLimiter] = RunVar("pydrant_optimization_slots")


def configure(max_optimizations: int, cpu_budget: int) -> None:
    _SETTINGS["max_optimizations"] = max_optimizations
    _SETTINGS["cpu_budget"] = cpu_budget


def slot_count(cpus: int | None = None) -> int:
    """Optimizations allowed at once under the configured settings."""
    if _SETTINGS["max_optimizations"] > 0:
        return _SETTINGS["max_optimizations"]
    cpus = cpus or os.cpu_count() or 1
    budget = _SETTINGS["cpu_budget"]
    if budget > 0:
        return budget
    if budget < 0:
        return max(1, cpus + budget)
    return max(1, cpus - 1)


def optimization_slots() -> trio.CapacityLimiter:
    """The node's limiter of concurrent optimizations (made on first use in this run)."""
    try:
        return _SLOTS.get()
    except LookupError:
        limiter = trio.CapacityLimiter(slot_count())
        _SLOTS.set(limiter)
        return limiter
