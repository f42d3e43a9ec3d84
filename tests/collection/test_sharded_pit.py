"""Point-in-time restore of a sharded collection, in process (collection/point_in_time.py,
docs/point-in-time.md "Sharded collections").

A 3-shard collection is written through its router, snapshotted (format version 2), written
again, and restored from the snapshot with each shard's WAL: to a time (every shard cut at
it, idle shards included) or to one op_num per shard. Refusals name the shard: a gap in
one shard's log, a shard the source no longer has, a shard whose key differs, one op_num
for all shards, a one-shard snapshot with a sharded log and the reverse.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
import trio

from pydrant.collection import point_in_time as pit
from pydrant.collection import snapshots
from pydrant.collection.collection import WAL_DIR
from pydrant.collection.config import CollectionDefaults, build_config, vector_schema
from pydrant.collection.hash_ring import HashRing
from pydrant.collection.points import prepare_upsert
from pydrant.collection.sharded import initialise_collection, open_collection
from pydrant.errors import BadInput
from inprocess import running_collection as running

RING = HashRing([0, 1, 2])


def _config(dim: int = 4, **extra) -> dict:
    return build_config({"vectors": {"size": dim, "distance": "Dot"}, "wal_config": {"wal_capacity_mb": 1}, **extra},
                        CollectionDefaults())


def _upsert(ids, tag: int, dim: int = 4) -> dict:
    return prepare_upsert(vector_schema(_config(dim)), {
        "points": [{"id": i, "vector": [float(tag), float(i % 5)] + [0.5] * (dim - 2), "payload": {"tag": tag}} for i in ids],
    })




async def _snapshot(collection, directory: Path) -> Path:
    staging = directory / "staging"
    await snapshots.cut(collection, staging)
    described = await trio.to_thread.run_sync(snapshots.archive, staging, directory, collection.name)
    shutil.rmtree(staging)
    return directory / described["name"]


def _state(path: Path) -> dict:
    collection = open_collection(path)
    try:
        records, _ = collection.reads.scroll(None, 10_000, None, True, False)
        return {r.id: dict(r.payload or {}) for r in records}
    finally:
        collection._close_files()


def _now_ms() -> int:
    time.sleep(0.003)
    now = time.time_ns() // 1_000_000
    time.sleep(0.003)
    return now


def _logs(path: Path) -> pit.ShardLogs:
    logs = pit.shard_logs(path)
    assert logs is not None
    return logs


async def test_a_time_cuts_every_shard_idle_ones_included(tmp_path):
    source = tmp_path / "src"
    initialise_collection(source, "src", _config(shard_number=3))
    only_shard_0 = [i for i in range(200) if RING.shard_of_points([i]).tolist() == [0]][:20]
    async with running(source) as collection:
        await collection.submit([_upsert(range(30), 1)])
        snapshot = await _snapshot(collection, tmp_path / "snaps")
        await collection.submit([_upsert(range(30, 40), 2)])
        moment_a = _now_ms()
        # from here on, shard 0 alone is written: shards 1 and 2 end long before `moment_b`
        for tag, i in enumerate(only_shard_0, start=3):
            await collection.submit([_upsert([i], tag)])
        moment_b = _now_ms()
        await collection.submit([_upsert([only_shard_0[0]], 99)])
    expected_a = {i: {"tag": 1 if i < 30 else 2} for i in range(40)}
    expected_b = {**expected_a, **{i: {"tag": tag} for tag, i in enumerate(only_shard_0, start=3)}}

    summary = pit.restore(snapshot, tmp_path / "a", pit.Until(timestamp_ms=moment_a), _logs(source))
    assert _state(tmp_path / "a") == expected_a
    assert [s["shard_id"] for s in summary["shards"]] == [0, 1, 2] and summary["points"] == 40

    summary = pit.restore(snapshot, tmp_path / "b", pit.Until(timestamp_ms=moment_b), _logs(source))
    assert _state(tmp_path / "b") == expected_b
    replayed = {s["shard_id"]: s["replayed"] for s in summary["shards"]}
    assert replayed[0] == 1 + len(only_shard_0)  # its part of the upsert of 30..39, then its own
    assert (tmp_path / "b" / "shards.json").read_bytes() == (source / "shards.json").read_bytes()

    # one op_num per shard: the same moment, given as the shards' last operations then
    cursor = {s["shard_id"]: s["op_num"] for s in summary["shards"]}
    pit.restore(snapshot, tmp_path / "c", pit.Until(shard_op_nums=cursor), _logs(source))
    assert _state(tmp_path / "c") == expected_b


async def test_refusals_name_the_shard(tmp_path):
    source = tmp_path / "src"
    initialise_collection(source, "src", _config(dim=512, shard_number=3))
    async with running(source) as collection:
        await collection.submit([_upsert(range(100), 1, dim=512)])
        snapshot = await _snapshot(collection, tmp_path / "snaps")
        for tag in range(2, 12):  # ~2 MB a shard... enough to fill 1 MB WAL files
            await collection.submit([_upsert(range(300), tag, dim=512)])
        moment = _now_ms()
        await collection.submit([_upsert([0], 99, dim=512)])

    def refused(until: pit.Until, logs, *words: str) -> None:
        target = tmp_path / "refused"
        with pytest.raises(BadInput) as caught:
            pit.restore(snapshot, target, until, logs)
        assert all(word in caught.value.message for word in words), caught.value.message
        assert not target.exists()

    at = pit.Until(timestamp_ms=moment)
    refused(pit.Until(op_num=3), _logs(source), "3 shards, each numbering its own operations")
    refused(at, source / "shards" / "0" / WAL_DIR, "the snapshot is of a sharded collection")
    refused(at, None, "a restore to a time needs the WAL")
    refused(pit.Until(shard_op_nums={0: 1, 1: 1}), _logs(source), "shard 2 is missing")

    copy = tmp_path / "copy"
    shutil.copytree(source, copy)
    wal_files = sorted((copy / "shards" / "1" / WAL_DIR).glob("*.wal"))
    assert len(wal_files) >= 2, "the shard's log spans several files"
    wal_files[0].unlink()  # as a truncation would have: the operations after the cut are gone
    refused(at, _logs(copy), "shard 1: the log has a gap")

    logs = _logs(source)
    refused(at, pit.ShardLogs({0: logs.wals[0], 1: logs.wals[1]}, {0: None, 1: None}),
            "shard 2 of the snapshot is not in the source")
    refused(at, pit.ShardLogs(logs.wals, {**logs.keys, 2: "eu"}), "shard 2 has shard key None in the snapshot and 'eu'")

    # the source's time is fine: the restore happens
    pit.restore(snapshot, tmp_path / "ok", at, logs)
    assert _state(tmp_path / "ok") == {i: {"tag": 11} for i in range(300)}


async def test_one_shard_snapshots_and_sharded_logs_do_not_mix(tmp_path):
    one = tmp_path / "one"
    initialise_collection(one, "one", _config())
    three = tmp_path / "three"
    initialise_collection(three, "three", _config(shard_number=3))
    async with running(one) as collection:
        await collection.submit([_upsert(range(10), 1)])
        snapshot = await _snapshot(collection, tmp_path / "snaps")
        await collection.submit([_upsert(range(5), 2)])
    with pytest.raises(BadInput, match="one-shard collection and the log given is a sharded"):
        pit.restore(snapshot, tmp_path / "x", pit.Until(op_num=2), _logs(three))
    # a one-shard collection is shard 0
    pit.restore(snapshot, tmp_path / "y", pit.Until(shard_op_nums={0: 2}), one / WAL_DIR)
    assert _state(tmp_path / "y") == {i: {"tag": 2 if i < 5 else 1} for i in range(10)}
    with pytest.raises(BadInput, match="names other shards"):
        pit.restore(snapshot, tmp_path / "z", pit.Until(shard_op_nums={0: 2, 1: 1}), one / WAL_DIR)
    assert pit.shard_logs(one) is None


def test_until_takes_the_change_feeds_cursor():
    assert pit.parse_until("0:12,1:40, 2:7") == pit.Until(shard_op_nums={0: 12, 1: 40, 2: 7})
    assert pit.parse_until("12") == pit.Until(op_num=12)
    assert pit.parse_until("2026-12-03T14:05:07Z").timestamp_ms is not None
    with pytest.raises(BadInput, match="twice"):
        pit.parse_until("0:1,0:2")
    with pytest.raises(BadInput):
        pit.parse_cursor("0:1,x")
    assert str(pit.Until(shard_op_nums={1: 3, 0: 2})) == "operations 0:2,1:3"
    assert pit.parse_until("1764770400042ms") == pit.Until(timestamp_ms=1764770400042)
