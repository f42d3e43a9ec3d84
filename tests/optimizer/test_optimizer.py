"""The optimizer on a real collection (write path, WAL, segments, trio tasks), in process.

Every test drives the collection through `Collection.update` as the HTTP layer does and
compares what reads return with a dict model of the acknowledged writes, while the
optimizer indexes, merges and vacuums segments in the background.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import trio

from pydrant.collection.collection import Collection
from pydrant.collection.config import CollectionDefaults, apply_update, build_config
from pydrant.collection.points import prepare_upsert
from pydrant.collection.query import QueryEngine
from pydrant.segments.base import writable_segment
from pydrant.segments.indexed import IndexedSegment

DIM = 32
# 32 float32 = 128 bytes a vector: an indexing threshold of 64 kB is 512 vectors
THRESHOLD_KB = 64


def make_config(**optimizers) -> dict:
    request = {
        "vectors": {"size": DIM, "distance": "Cosine"},
        "hnsw_config": {"m": 8, "ef_construct": 32},
        "optimizers_config": {"indexing_threshold": THRESHOLD_KB, "default_segment_number": 2, **optimizers},
    }
    return build_config(request, CollectionDefaults())


def vectors(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    data = rng.normal(size=(n, DIM)).astype(np.float32)
    return data / np.linalg.norm(data, axis=1, keepdims=True)


async def open_collection(path: Path, config: dict | None = None) -> Collection:
    if config is not None:
        Collection.initialise(path, path.name, config)
    return await trio.to_thread.run_sync(Collection.load, path)


async def upsert(collection: Collection, ids, data: np.ndarray, payload=lambda i: {"n": i}) -> None:
    points = [{"id": int(i), "vector": data[k].tolist(), "payload": payload(int(i))} for k, i in enumerate(ids)]
    await collection.update(prepare_upsert(collection.schema, {"points": points}))


async def info(collection: Collection) -> dict:
    return await trio.to_thread.run_sync(collection.info)


async def wait_green(collection: Collection, timeout: float = 120.0) -> dict:
    with trio.fail_after(timeout):
        while True:
            current = await info(collection)
            assert current["status"] != "red", current["optimizer_status"]
            if current["status"] == "green":
                return current
            await trio.sleep(0.05)


def search_ids(collection: Collection, vector: np.ndarray, limit: int = 10, **params) -> list:
    engine = QueryEngine(collection, lambda name: collection)
    request = {"query": vector.tolist(), "limit": limit, "params": params or None}
    return [hit.id for hit in engine.query(request)]


async def test_indexing_turns_yellow_then_green_and_indexes_every_vector(tmp_path):
    collection = await open_collection(tmp_path / "c", make_config())
    data = vectors(3000, 1)
    async with trio.open_nursery() as nursery:
        await nursery.start(collection.run)
        await upsert(collection, range(3000), data)
        assert (await info(collection))["status"] == "yellow"
        done = await wait_green(collection)
        assert done["points_count"] == 3000
        assert done["indexed_vectors_count"] == 3000
        assert any(isinstance(s, IndexedSegment) for s in collection.segments)
        writable = writable_segment(collection.segments)
        assert writable is collection.segments[-1] and writable.is_appendable and writable.point_count == 0
        hits = sum(search_ids(collection, data[i], 1) == [i] for i in range(0, 3000, 30))
        assert hits >= 95  # graph search finds (nearly) every point by its own vector
        await collection.close()
        nursery.cancel_scope.cancel()
    reopened = await open_collection(tmp_path / "c")
    assert reopened.points_count() == 3000
    assert (await trio.to_thread.run_sync(reopened.info))["indexed_vectors_count"] == 3000
    reopened._close_files()


async def test_writes_during_optimizations_are_never_lost(tmp_path):
    """Upserts, re-upserts, deletes and payload updates race the optimizer (indexing and
    merges); every acknowledged point stays readable and searchable throughout, and the
    end state equals the model."""
    collection = await open_collection(tmp_path / "c", make_config())
    rng = random.Random(7)
    data = vectors(6000, 2)
    model: dict[int, int] = {}  # id -> payload "n"
    async with trio.open_nursery() as nursery:
        await nursery.start(collection.run)
        for round_ in range(30):
            ids = [rng.randrange(6000) for _ in range(200)]
            await upsert(collection, ids, data[ids], payload=lambda i, r=round_: {"n": r})
            model.update({i: round_ for i in ids})
            doomed = rng.sample(sorted(model), 20)
            await collection.update({"type": "delete_points", "ids": doomed})
            for i in doomed:
                model.pop(i)
            touched = rng.sample(sorted(model), 20)
            await collection.update({"type": "set_payload", "ids": touched, "payload": {"n": -round_}})
            model.update({i: -round_ for i in touched})
            # every acknowledged point is there, with its latest payload
            assert collection.points_count() == len(model)
            probe = rng.sample(sorted(model), 10)
            records = collection.reads.retrieve(probe)
            assert {r.id: r.payload["n"] for r in records} == {i: model[i] for i in probe}
            for i in probe[:3]:
                assert i in search_ids(collection, data[i], 5, exact=True)
            await trio.sleep(0.01)
        final = await wait_green(collection)
        assert final["points_count"] == len(model)
        records = collection.reads.retrieve(sorted(model))
        assert {r.id: r.payload["n"] for r in records} == model
        assert final["indexed_vectors_count"] > 0
        assert collection.optimizer.completed >= 3  # the writes really raced several rebuilds
        await collection.close()
        nursery.cancel_scope.cancel()
    reopened = await open_collection(tmp_path / "c")
    records = reopened.reads.retrieve(sorted(model))
    assert {r.id: r.payload["n"] for r in records} == model
    reopened._close_files()


async def test_config_change_rebuilds_and_vacuum_reclaims(tmp_path):
    collection = await open_collection(tmp_path / "c", make_config(vacuum_min_vector_number=100))
    data = vectors(2000, 3)
    async with trio.open_nursery() as nursery:
        await nursery.start(collection.run)
        await upsert(collection, range(2000), data)
        await wait_green(collection)
        indexed = [s for s in collection.segments if isinstance(s, IndexedSegment)]
        assert [s.settings["dense"][""]["hnsw"]["m"] for s in indexed] == [8]
        # PATCH hnsw m: the indexed segment is rebuilt with the new graph
        await collection.set_config(apply_update(collection.config, {"hnsw_config": {"m": 12}}))
        assert (await info(collection))["status"] == "yellow"
        await wait_green(collection)
        indexed = [s for s in collection.segments if isinstance(s, IndexedSegment)]
        assert [s.settings["dense"][""]["hnsw"]["m"] for s in indexed] == [12]
        # delete 60%: the vacuum rebuilds the segment without the dead slots
        await collection.update({"type": "delete_points", "ids": list(range(0, 2000, 5)) + list(range(1, 2000, 5)) + list(range(2, 2000, 5))})
        await wait_green(collection)
        used_dead = [s.slot_counts() for s in collection.segments]
        assert sum(dead for _, dead in used_dead) == 0
        assert collection.points_count() == 800
        assert search_ids(collection, data[3], 1) == [3]
        await collection.close()
        nursery.cancel_scope.cancel()


async def test_indexing_disabled_keeps_one_plain_segment(tmp_path):
    collection = await open_collection(tmp_path / "c", make_config(indexing_threshold=0))
    async with trio.open_nursery() as nursery:
        await nursery.start(collection.run)
        await upsert(collection, range(2000), vectors(2000, 4))
        done = await wait_green(collection)
        assert done["segments_count"] == 1 and done["indexed_vectors_count"] == 0
        await collection.close()
        nursery.cancel_scope.cancel()
