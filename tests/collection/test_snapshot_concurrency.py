"""Snapshots taken while writes run are consistent cuts (collection/snapshots.py,
docs/snapshots.md "How a snapshot is taken"), in process, no server.

A running `Collection` (update worker, flusher and optimizer: a tiny indexing threshold
keeps it building HNSW segments and swapping them in; its apply is slowed down, so
operations wait, logged and acknowledged, to be applied) takes upserts, deletes and payload
updates from several trio tasks, half of them `wait=false` (logged, applied later), while
snapshots are taken one after another in worker threads (`take` + `archive`, as the table
of content does). Every write's op_num is known, so the model of the collection at any
op_num is exact. Each snapshot must restore (`unpack`, `Collection.load`) to exactly the
model at the `op_num` its `snapshot.json` names: every point, payload and vector, nothing
more, nothing less, whatever the snapshot caught half-way.
"""

from __future__ import annotations

import json
import random
import tarfile
import threading
import time

import numpy as np
import trio

from pydrant.collection import operations, snapshots
from pydrant.collection.collection import Collection
from pydrant.collection.config import CollectionDefaults, build_config
from pydrant.collection.points import prepare_upsert
from pydrant.wal import codec

DIM = 4
WRITERS = 4
IDS_PER_WRITER = 60
OPS_PER_WRITER = 150
SNAPSHOTS = 8


def _model_at(history: list[tuple[int, str, int, object]], op_num: int) -> dict:
    """id -> (payload, vector) after every operation up to `op_num`, applied in order."""
    state: dict = {}
    for n, kind, point_id, data in sorted(history, key=lambda h: h[0]):
        if n > op_num:
            break
        if kind == "upsert":
            state[point_id] = data
        elif kind == "delete":
            state.pop(point_id, None)
        elif kind == "set_payload" and point_id in state:
            payload, vector = state[point_id]
            state[point_id] = ({**payload, **data}, vector)
    return state


def _stored(collection: Collection) -> dict:
    out, offset = {}, None
    while True:
        records, offset = collection.reads.scroll(offset, 500, None, True, True)
        for r in records:
            out[r.id] = (r.payload, [round(float(x), 4) for x in np.asarray(r.vectors[""])])
        if offset is None:
            return out


def _meta(path) -> dict:
    with tarfile.open(path) as tar:
        member = tar.extractfile(snapshots.META_FILE)
        assert member is not None
        return json.loads(member.read())


async def test_every_snapshot_restores_to_the_model_at_its_op_num(tmp_path):
    config = build_config(
        {"vectors": {"size": DIM, "distance": "Dot"}, "optimizers_config": {"indexing_threshold": 1, "flush_interval_sec": 1}},
        CollectionDefaults(),
    )
    Collection.initialise(tmp_path / "live", "live", config)
    collection = await trio.to_thread.run_sync(Collection.load, tmp_path / "live")
    # A slow apply: a batch is logged and acknowledged (wait=false) well before it is
    # applied, so snapshots catch acknowledged operations that only the WAL holds yet.
    apply_batch = collection._apply_batch
    slow = random.Random(5)

    def slow_apply_batch(batch):
        time.sleep(slow.random() * 0.02)
        apply_batch(batch)

    collection._apply_batch = slow_apply_batch  # type: ignore[method-assign]
    history: list[tuple[int, str, int, object]] = []  # (op_num, kind, id, data)
    taken: list[tuple[dict, int]] = []  # (description, op_num of the last write acknowledged before the snapshot began)
    writers_done = trio.Event()

    async def writer(index: int, seed: int) -> None:
        rng = random.Random(seed)
        ids = range(index * IDS_PER_WRITER, (index + 1) * IDS_PER_WRITER)
        for _ in range(OPS_PER_WRITER):
            point_id = rng.choice(ids)
            roll = rng.random()
            if roll < 0.15:
                kind, data = "delete", None
                operation = operations.delete_points(collection, {"points": [point_id]})
            elif roll < 0.35:
                kind, data = "set_payload", {"tick": rng.randrange(1000)}
                operation = operations.set_payload(collection, {"payload": data, "points": [point_id]})
            else:
                vector = [float(rng.randrange(-20, 20)) for _ in range(DIM)]
                payload = {"v": rng.randrange(10**6), "w": index}
                kind, data = "upsert", (payload, vector)
                operation = prepare_upsert(collection.schema, {"points": [{"id": point_id, "vector": vector, "payload": payload}]})
            op_num, _status = await collection.update(operation, wait=rng.random() < 0.5)
            history.append((op_num, kind, point_id, data))
            await trio.sleep(rng.random() * 0.004)

    async def snapshotter(root) -> None:
        directory = tmp_path / "snapshots"
        n = 0
        while not writers_done.is_set() or n < 2:
            acknowledged = max((h[0] for h in history), default=0)
            staging = root / f"staging-{n}"
            await trio.to_thread.run_sync(snapshots.take, collection, staging)
            description = await trio.to_thread.run_sync(snapshots.archive, staging, directory, "live")
            taken.append((description, acknowledged))
            n += 1
            await trio.sleep(0.05 if n < SNAPSHOTS else 0.3)

    async with trio.open_nursery() as nursery:
        await nursery.start(collection.run)
        async with trio.open_nursery() as inner:
            inner.start_soon(snapshotter, tmp_path)

            async def writers() -> None:
                async with trio.open_nursery() as w:
                    for i in range(WRITERS):
                        w.start_soon(writer, i, 1000 + i)
                writers_done.set()

            inner.start_soon(writers)
        final_state = await trio.to_thread.run_sync(_stored, collection)
        optimizations = collection.optimizer.completed
        await collection.close()
        nursery.cancel_scope.cancel()

    assert len(history) == WRITERS * OPS_PER_WRITER
    assert sorted(h[0] for h in history) == list(range(1, len(history) + 1))  # every op_num known
    assert final_state == _model_at(history, len(history))
    assert optimizations > 0, "the optimizer never ran while snapshots were taken"
    assert len(taken) >= 3
    cuts = set()
    wal_records_seen = 0
    for i, (description, acknowledged) in enumerate(taken):
        path = tmp_path / "snapshots" / description["name"]
        assert snapshots.sha256_file(path) == description["checksum"]
        meta = _meta(path)
        with tarfile.open(path) as tar:
            member = tar.extractfile(snapshots.WAL_RECORDS_FILE)
            assert member is not None
            records = codec.decode(member.read())
        logged = [int(n) for n, _op in records]
        assert logged == list(range(meta["op_num"] + 1, meta["op_num"] + 1 + len(logged))), (meta["op_num"], logged)
        cut = logged[-1] if logged else meta["op_num"]
        wal_records_seen += bool(logged)
        target = tmp_path / f"restored-{i}"
        await trio.to_thread.run_sync(snapshots.unpack, path, target)
        restored = await trio.to_thread.run_sync(Collection.load, target)
        try:
            got = await trio.to_thread.run_sync(_stored, restored)
        finally:
            await trio.to_thread.run_sync(restored._close_files)
        # the cut holds every write acknowledged before the snapshot began ...
        assert cut >= acknowledged, (description["name"], meta["op_num"], logged, acknowledged)
        # ... and equals the collection at its last operation: no write half-way, none missing
        expected = _model_at(history, cut)
        assert got == expected, (description["name"], meta["op_num"], cut, sorted(set(got) ^ set(expected))[:10])
        cuts.add(cut)
    assert len(cuts) >= 3, cuts  # the snapshots really were taken at different points of the load
    print(f"{len(taken)} snapshots at op_nums {sorted(cuts)}; {wal_records_seen} carried unapplied WAL records")


def test_snapshots_archived_at_once_get_their_own_names(tmp_path):
    """Eight snapshots archived by eight threads at the same moment (the same second):
    eight files, each with the checksum of its own bytes. (Before, they could pick one
    name: a rename replaced another snapshot and the checksum file named either's bytes.)"""
    directory = tmp_path / "snapshots"
    stagings = []
    for i in range(8):
        staging = tmp_path / f"staging-{i}"
        staging.mkdir()
        (staging / "data").write_bytes(random.Random(i).randbytes(200_000))  # each tar differs
        stagings.append(staging)
    barrier = threading.Barrier(len(stagings))
    results: list[dict] = []

    def archive(staging) -> None:
        barrier.wait()
        results.append(snapshots.archive(staging, directory, "c"))

    threads = [threading.Thread(target=archive, args=(s,)) for s in stagings]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    names = sorted(r["name"] for r in results)
    assert len(set(names)) == 8, names
    assert sorted(p.name for p in directory.iterdir() if p.name.endswith(".snapshot")) == names
    for r in results:
        path = directory / r["name"]
        assert snapshots.sha256_file(path) == r["checksum"] == (directory / (r["name"] + ".checksum")).read_text()
    assert not snapshots._reserved  # every reservation let go


def test_start_up_clean_up_removes_what_a_crash_leaves(tmp_path):
    """What a kill during `write_archive` can leave: the partial tar, the checksum file's
    temporary, a checksum file written before its tar was renamed into place."""
    directory = tmp_path / "c"
    directory.mkdir()
    kept = ["c-0-2026-12-03-10-00-00.snapshot", "c-0-2026-12-03-10-00-00.snapshot.checksum"]
    left = [
        "c-0-2026-12-03-10-00-01.snapshot.tmp-0123456789ab",
        "c-0-2026-12-03-10-00-01.snapshot.checksum.0123456789ab.tmp",
        "c-0-2026-12-03-10-00-02.snapshot.checksum",  # its tar was never renamed into place
    ]
    for name in kept + left:
        (directory / name).write_text("x")
    assert snapshots.remove_temporaries(tmp_path) == len(left)
    assert sorted(p.name for p in directory.iterdir()) == kept
