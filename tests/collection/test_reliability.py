"""Regression tests for the reliability findings in the collection and optimizer (issue 12).

Each test reproduces its finding's scenario in process, on a real collection (WAL,
RocksDB segments, optimizer steps driven by hand so the interleaving is exact):

1. a stale copy of a point brought back after an optimizer swap (power cut before the
   source segment's delete was flushed),
3. a failed manifest write after the rename,
7. the WAL never truncated under insert-only load after the first swap,
9. an operation whose apply fails half-way,
10. new segment directories not fsynced into their parent before the manifest names them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import trio

from pydrant import fsutil
from pydrant.collection import apply as applying
from pydrant.collection.collection import Collection
from pydrant.collection.config import CollectionDefaults, build_config
from pydrant.collection.points import prepare_upsert
from pydrant.errors import BadInput
from pydrant.issues import BOARD
from pydrant.optimizer.planner import Plan

DIM = 8


def make_config(**wal) -> dict:
    request = {
        "vectors": {"size": DIM, "distance": "Dot"},
        "hnsw_config": {"m": 4, "ef_construct": 16},
        # optimizers driven by hand: the background task plans nothing
        "optimizers_config": {"max_optimization_threads": 0, "flush_interval_sec": 3600},
        "wal_config": wal or None,
    }
    if not wal:
        del request["wal_config"]
    return build_config(request, CollectionDefaults())


def vector(seed: int) -> list[float]:
    return np.random.default_rng(seed).normal(size=DIM).astype(np.float32).tolist()


async def open_collection(path: Path, config: dict | None = None) -> Collection:
    if config is not None:
        Collection.initialise(path, path.name, config)
    return await trio.to_thread.run_sync(Collection.load, path)


async def upsert(collection: Collection, points: dict, wait: bool = True):
    body = {"points": [{"id": i, "vector": v, "payload": {"v": tag}} for i, (v, tag) in points.items()]}
    return await collection.update(prepare_upsert(collection.schema, body), wait=wait)


async def optimize(collection: Collection, sources: list, indexed: bool = True):
    """One optimization of `sources`, step by step as Optimizer._execute runs it."""
    optimizer = collection.optimizer
    plan = Plan("indexing", sources, indexed)
    await trio.to_thread.run_sync(optimizer._begin, plan)
    target = await trio.to_thread.run_sync(optimizer._build, plan)
    await trio.to_thread.run_sync(optimizer._swap, plan, target)
    return target


def payload_of(collection: Collection, point_id) -> dict | None:
    records = collection.reads.retrieve([point_id], True, True)
    return records[0].payload if records else None


async def test_swap_makes_every_segments_deletes_durable_first(tmp_path):
    """Finding 1, first half: the delete that moved a point out of an older segment must be
    on disk before the manifest lists the rebuilt segment holding the new copy."""
    collection = await open_collection(tmp_path / "c", make_config())
    async with trio.open_nursery() as nursery:
        await nursery.start(collection.run)
        await upsert(collection, {i: (vector(i), "old") for i in range(20)})
        older = await optimize(collection, [collection.segments[-1]])
        await trio.to_thread.run_sync(collection.flush)
        _, status = await upsert(collection, {1: (vector(100), "new")})  # moves point 1 out of `older`
        assert older.version > older.persisted_version  # the delete is only in memory
        await optimize(collection, [collection.segments[-1]])
        assert older.persisted_version == older.version  # now it is on disk
        await collection.close()
        nursery.cancel_scope.cancel()


async def test_replayed_move_removes_a_resurrected_stale_copy(tmp_path):
    """Finding 1, second half: a stale copy that a power cut brought back in an older
    segment is removed by the replay of the operation that moved it (and by any later
    operation on the point), so points are counted once and reads see the newest copy."""
    collection = await open_collection(tmp_path / "c", make_config())
    async with trio.open_nursery() as nursery:
        await nursery.start(collection.run)
        await upsert(collection, {i: (vector(i), "old") for i in range(20)})
        older = await optimize(collection, [collection.segments[-1]])
        stale = older.export_points([1])  # what the power cut will bring back
        op_num, _ = await upsert(collection, {1: (vector(100), "new")})
        await optimize(collection, [collection.segments[-1]])
        operation = next(op for n, op in collection.wal.read(op_num) if n == op_num)

        older.import_points(stale)  # the power cut: the delete of the move is undone
        assert collection.points_count() == 21

        with collection.apply_lock:  # WAL replay of the move
            applying.apply_logged(collection.segments, collection.schema, collection.payload_index, op_num, operation)
        assert collection.points_count() == 20
        assert payload_of(collection, 1) == {"v": "new"}

        older.import_points(stale)  # again; now a later payload update must heal it
        await collection.update({"type": "set_payload", "ids": [1], "payload": {"w": 1}})
        assert collection.points_count() == 20
        assert payload_of(collection, 1) == {"v": "new", "w": 1}
        await collection.close()
        nursery.cancel_scope.cancel()


async def test_failed_manifest_write_after_the_rename_loses_no_segment(tmp_path, monkeypatch):
    """Finding 3: the manifest rename reached the directory but its fsync failed (EIO).
    The swap fails, the collection keeps serving from the old segments, and a restart
    finds every segment the manifest names, whichever manifest is on disk."""
    path = tmp_path / "c"
    collection = await open_collection(path, make_config())
    async with trio.open_nursery() as nursery:
        await nursery.start(collection.run)
        await upsert(collection, {i: (vector(i), "a") for i in range(30)})
        real_fsync_dir = fsutil.fsync_dir
        failing = {"armed": True}

        def fsync_dir(directory):
            if failing["armed"] and Path(directory) == path:
                failing["armed"] = False
                raise OSError(5, "Input/output error (injected)")
            return real_fsync_dir(directory)

        sources = [collection.segments[-1]]
        plan = Plan("indexing", sources, True)
        optimizer = collection.optimizer
        await trio.to_thread.run_sync(optimizer._begin, plan)
        target = await trio.to_thread.run_sync(optimizer._build, plan)
        monkeypatch.setattr(fsutil, "fsync_dir", fsync_dir)
        with pytest.raises(OSError):
            await trio.to_thread.run_sync(optimizer._swap, plan, target)
        await trio.to_thread.run_sync(optimizer._abandon, plan, target)
        assert collection.manifest_unsure
        assert target.path.exists()  # the manifest on disk may name it
        await upsert(collection, {100: (vector(100), "after")})
        assert collection.points_count() == 31
        await trio.to_thread.run_sync(collection.flush)  # writes the manifest again
        assert not collection.manifest_unsure
        await collection.close()
        nursery.cancel_scope.cancel()

    reopened = await open_collection(path)
    assert reopened.points_count() == 31
    assert payload_of(reopened, 100) == {"v": "after"}
    await reopened.close()


async def test_wal_is_truncated_under_insert_only_load_after_a_swap(tmp_path):
    """Finding 7: an indexed segment that no write touches any more must not hold the WAL
    back: after a flush the WAL starts after everything applied before it. (No closed file
    is retained for the change feed here: `wal_retain_closed: 0`, so truncation shows whole.)"""
    collection = await open_collection(tmp_path / "c", make_config(wal_capacity_mb=1, wal_retain_closed=0))
    async with trio.open_nursery() as nursery:
        await nursery.start(collection.run)
        await upsert(collection, {i: (vector(i), "a") for i in range(50)})
        await optimize(collection, [collection.segments[-1]])
        big = "x" * 20_000
        for round_ in range(120):  # ~2.4 MB of records: three WAL files
            await upsert(collection, {1000 + round_: (vector(round_), big)})
        applied = collection.applied_op_num
        await trio.to_thread.run_sync(collection.flush)
        stats = collection.wal.statistics()
        assert stats["files"] == 1, stats
        assert stats["first_op_num"] is None or stats["first_op_num"] > applied - 60, stats
        await collection.close()
        nursery.cancel_scope.cancel()
    reopened = await open_collection(tmp_path / "c")
    assert reopened.points_count() == 170
    await reopened.close()


async def test_apply_failure_refuses_writes_until_a_retry_applies_it(tmp_path, monkeypatch):
    """Finding 9: an acknowledged operation whose apply fails (an I/O error in the
    segment) is neither half-applied nor dropped: writes are refused, the collection is
    red with an issue on the board, and a background retry applies it once the cause is
    gone; then writes are accepted again and nothing is lost, also after a restart."""
    path = tmp_path / "c"
    collection = await open_collection(path, make_config())
    async with trio.open_nursery() as nursery:
        await nursery.start(collection.run)
        await upsert(collection, {i: (vector(i), "a") for i in range(10)})
        await optimize(collection, [collection.segments[-1]])  # point moves go across segments now
        writable = collection.segments[-1]
        real_upsert = writable.upsert_points
        broken = {"on": True}

        def failing_upsert(op_num, points):
            if broken["on"]:
                raise OSError(28, "No space left on device (injected)")
            return real_upsert(op_num, points)

        monkeypatch.setattr(writable, "upsert_points", failing_upsert)
        op_num, status = await upsert(collection, {3: (vector(33), "moved")}, wait=False)
        assert status == "acknowledged"
        with trio.fail_after(5):
            while collection.apply_failure is None:
                await trio.sleep(0.01)
        assert collection.points_count() == 10  # not half-applied: the old copy is still there
        assert payload_of(collection, 3) == {"v": "a"}
        info = await trio.to_thread.run_sync(collection.info)
        assert info["status"] == "red" and "No space left" in info["optimizer_status"]["error"]
        assert any(r["id"] == "APPLY_FAILED/c" for r in BOARD.report())
        with pytest.raises(Exception, match="refuses writes"):
            await upsert(collection, {50: (vector(50), "refused")})
        await trio.to_thread.run_sync(collection.flush)
        assert collection.wal.first_op_num <= op_num  # the WAL keeps the unapplied operation

        broken["on"] = False
        with trio.fail_after(10):
            while collection.apply_failure is not None:
                await trio.sleep(0.05)
        assert payload_of(collection, 3) == {"v": "moved"}
        assert collection.points_count() == 10
        assert not any(r["id"] == "APPLY_FAILED/c" for r in BOARD.report())
        await upsert(collection, {50: (vector(50), "accepted")})
        await collection.close()
        nursery.cancel_scope.cancel()
    reopened = await open_collection(path)
    assert payload_of(reopened, 3) == {"v": "moved"} and payload_of(reopened, 50) == {"v": "accepted"}
    assert reopened.points_count() == 11
    await reopened.close()


async def test_a_deterministic_apply_error_in_the_wal_does_not_stop_loading(tmp_path):
    """Finding 9, replay side: an operation refused when it was applied live (bad input
    that only shows on stored data) is refused the same way on replay, and the
    collection loads."""
    path = tmp_path / "c"
    collection = await open_collection(path, make_config())
    async with trio.open_nursery() as nursery:
        await nursery.start(collection.run)
        await upsert(collection, {1: (vector(1), "a")})
        with pytest.raises(BadInput, match="unknown operation type"):
            await collection.update({"type": "no_such_operation"})
        await upsert(collection, {2: (vector(2), "b")})
        nursery.cancel_scope.cancel()
    # a crash: nothing flushed, everything comes back from the WAL
    for segment in collection.segments:
        segment.close()
    collection.wal.close()
    reopened = await open_collection(path)
    assert reopened.points_count() == 2
    await reopened.close()


async def test_new_segment_directories_are_durable_before_the_manifest_names_them(tmp_path, monkeypatch):
    """Finding 10: the directory of a segment the manifest newly lists, and its entry in
    `segments/`, are fsynced before the manifest is written."""
    path = tmp_path / "c"
    collection = await open_collection(path, make_config())
    events: list[tuple[str, Path]] = []
    real_fsync_dir = fsutil.fsync_dir
    real_write = fsutil.write_atomic

    def fsync_dir(directory):
        events.append(("fsync", Path(directory)))
        return real_fsync_dir(directory)

    def write_atomic(target, data):
        events.append(("write", Path(target)))
        return real_write(target, data)

    monkeypatch.setattr(fsutil, "fsync_dir", fsync_dir)
    monkeypatch.setattr(fsutil, "write_atomic", write_atomic)
    import pydrant.collection.collection as collection_module

    monkeypatch.setattr(collection_module, "fsync_dir", fsync_dir)
    async with trio.open_nursery() as nursery:
        await nursery.start(collection.run)
        await upsert(collection, {i: (vector(i), "a") for i in range(10)})
        events.clear()
        target = await optimize(collection, [collection.segments[-1]])
        manifest_writes = [i for i, e in enumerate(events) if e == ("write", path / "manifest.json")]
        assert len(manifest_writes) == 2  # the new appendable segment listed, then the swap
        parent_syncs = [i for i, e in enumerate(events) if e == ("fsync", path / "segments")]
        for new_segment, listed_at in ((collection.segments[-1], manifest_writes[0]), (target, manifest_writes[1])):
            synced_at = [i for i, e in enumerate(events) if e == ("fsync", new_segment.path)]
            assert synced_at and min(synced_at) < listed_at, (new_segment.path, events)
            assert any(p < listed_at for p in parent_syncs)
        await collection.close()
        nursery.cancel_scope.cancel()


async def test_payload_update_right_after_an_unapplied_upsert_finds_the_point(tmp_path):
    """Existence is checked when an operation is applied, in order with the writes before
    it (no check-then-act): a set_payload right after an acknowledged (wait=false) upsert
    of a new point finds it; one on a point that does not exist is refused with 404 and
    changes nothing, live and on replay."""
    from pydrant.collection.apply import IDS_MUST_EXIST
    from pydrant.errors import NotFound

    path = tmp_path / "c"
    collection = await open_collection(path, make_config())
    async with trio.open_nursery() as nursery:
        await nursery.start(collection.run)
        for point_id in range(50):
            await upsert(collection, {point_id: (vector(point_id), "new")}, wait=False)
            op = {"type": "set_payload", "ids": [point_id], "payload": {"w": point_id}, IDS_MUST_EXIST: True}
            await collection.update(op, wait=True)
        with pytest.raises(NotFound, match="No point with id 999"):
            await collection.update({"type": "set_payload", "ids": [1, 999], "payload": {"x": 1}, IDS_MUST_EXIST: True})
        assert payload_of(collection, 1) == {"v": "new", "w": 1}
        nursery.cancel_scope.cancel()
    for segment in collection.segments:  # a crash: everything comes back from the WAL
        segment.close()
    collection.wal.close()
    reopened = await open_collection(path)
    assert reopened.points_count() == 50
    assert payload_of(reopened, 1) == {"v": "new", "w": 1}
    await reopened.close()


@pytest.mark.parametrize("crash", [False, True])
async def test_restart_replays_only_what_the_last_flush_missed(tmp_path, crash):
    """An indexed segment no write touches must not hold the replay start back: after a
    flush (or a clean close) every segment's persisted version is the applied op, so a
    restart replays nothing, and after a crash only what came after the last flush. Before
    the fix every restart re-applied the WAL kept since the build, more after each round."""
    path = tmp_path / "c"
    collection = await open_collection(path, make_config())
    async with trio.open_nursery() as nursery:
        await nursery.start(collection.run)
        await upsert(collection, {i: (vector(i), "a") for i in range(20)})
        indexed = await optimize(collection, [collection.segments[-1]])
        for i in range(30):  # insert-only: the indexed segment sees none of these
            await upsert(collection, {100 + i: (vector(100 + i), "b")})
        await trio.to_thread.run_sync(collection.flush)
        assert indexed.persisted_version == collection.applied_op_num
        tail = 0
        if crash:
            for i in range(5):
                await upsert(collection, {200 + i: (vector(200 + i), "c")})
            tail = 5
            collection.wal.close()  # the "crash": no close(), nothing more flushed
            for segment in collection.segments:
                segment.close()
        else:
            await collection.close()
        nursery.cancel_scope.cancel()
    reopened = await open_collection(path)
    assert reopened.replayed_at_load == tail
    assert reopened.points_count() == 50 + tail
    await reopened.close()
