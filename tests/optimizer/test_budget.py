"""The node-wide limit on concurrent optimizations (optimizer/budget.py): the shards of a
sharded collection each have an optimizer, and they take turns under the limit."""

from __future__ import annotations

import numpy as np
import pytest
import trio

from pydrant.collection.config import CollectionDefaults, build_config
from pydrant.collection.points import prepare_upsert
from pydrant.collection.sharded import initialise_collection, open_collection
from pydrant.optimizer import budget
from pydrant.segments.indexed import IndexedSegment

DIM = 16


@pytest.fixture
def configured():
    yield budget.configure
    budget.configure(0, 0)


@pytest.mark.parametrize(
    ("max_optimizations", "cpu_budget", "cpus", "slots"),
    [(0, 0, 2, 1), (0, 0, 8, 7), (0, 0, 1, 1), (3, 0, 2, 3), (0, 4, 2, 4), (0, -2, 8, 6), (0, -9, 8, 1)],
)
def test_slot_count(configured, max_optimizations, cpu_budget, cpus, slots):
    configured(max_optimizations, cpu_budget)
    assert budget.slot_count(cpus) == slots


async def test_shards_optimize_one_at_a_time_under_a_limit_of_one(tmp_path, configured):
    configured(1, 0)
    config = build_config(
        {
            "vectors": {"size": DIM, "distance": "Cosine"},
            "shard_number": 3,
            "hnsw_config": {"m": 8, "ef_construct": 32},
            "optimizers_config": {"indexing_threshold": 16, "default_segment_number": 1},
        },
        CollectionDefaults(),
    )
    initialise_collection(tmp_path / "c", "c", config)
    collection = await trio.to_thread.run_sync(open_collection, tmp_path / "c")
    most_at_once = 0
    async with trio.open_nursery() as nursery:
        await nursery.start(collection.run)

        async def watch() -> None:
            nonlocal most_at_once
            while True:
                running = sum(shard.optimizer.running is not None for shard in collection.shards.values())
                most_at_once = max(most_at_once, running)
                await trio.sleep(0.001)

        nursery.start_soon(watch)
        data = np.random.default_rng(1).normal(size=(3000, DIM)).astype(np.float32)
        points = [{"id": i, "vector": data[i].tolist()} for i in range(3000)]
        await collection.submit([prepare_upsert(collection.schema, {"points": points})])
        with trio.fail_after(120):
            while not all(
                any(isinstance(s, IndexedSegment) for s in shard.segments) for shard in collection.shards.values()
            ) or await trio.to_thread.run_sync(collection.optimizer.pending):
                await trio.sleep(0.05)
        await collection.close()
        nursery.cancel_scope.cancel()
    assert most_at_once == 1, "never two shards' optimizations at once under a limit of one"
    assert sum(shard.optimizer.completed for shard in collection.shards.values()) >= 3
