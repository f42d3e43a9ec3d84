"""The Wal API: appending, rolling over files, reading across them, truncating, reopening."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from pydrant.wal import Wal

CAPACITY = 4096


def record(op_num: int) -> dict:
    """A record of ~200 bytes whose content says which op it is."""
    return {"type": "upsert", "id": op_num, "vector": np.full(40, op_num, dtype=np.float32)}


def fill(wal: Wal, first: int, last: int) -> None:
    for op_num in range(first, last + 1):
        wal.append(op_num, record(op_num))


def op_nums(wal: Wal, from_op_num=None) -> list[int]:
    return [op for op, _ in wal.read(from_op_num)]


def log_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.glob("*.wal"))


def test_an_empty_log_has_no_op_nums_and_no_files(tmp_path):
    with Wal(tmp_path / "new" / "wal") as wal:
        assert (wal.first_op_num, wal.last_op_num) == (None, None)
        assert list(wal.read()) == []
        assert wal.statistics()["records"] == 0
    assert (tmp_path / "new" / "wal").is_dir()
    assert log_files(tmp_path / "new" / "wal") == []


def test_values_read_back_equal_with_arrays_of_the_same_dtype(tmp_path):
    value = {"v": np.arange(4, dtype=np.float16), "m": np.ones((2, 3), np.uint8), "p": {"a": [1, None, "x"]}}
    with Wal(tmp_path) as wal:
        wal.append(1, value)
    with Wal(tmp_path) as wal:
        [(op_num, read)] = list(wal.read())
    assert op_num == 1 and read["p"] == {"a": [1, None, "x"]}
    assert read["v"].dtype == np.float16 and read["v"].tolist() == [0, 1, 2, 3]
    assert read["m"].dtype == np.uint8 and read["m"].shape == (2, 3)


def test_files_roll_over_at_the_capacity_and_are_named_by_their_first_op(tmp_path):
    with Wal(tmp_path, capacity_bytes=CAPACITY) as wal:
        fill(wal, 1, 100)
        assert op_nums(wal) == list(range(1, 101))
        assert (wal.first_op_num, wal.last_op_num) == (1, 100)
        stats = wal.statistics()
    names = log_files(tmp_path)
    assert len(names) == stats["files"] > 3
    firsts = [int(name.removesuffix(".wal")) for name in names]
    assert firsts[0] == 1 and firsts == sorted(firsts)
    with Wal(tmp_path, capacity_bytes=CAPACITY) as wal:
        for first, next_first in zip(firsts, firsts[1:] + [101]):
            assert op_nums(wal, first)[: next_first - first] == list(range(first, next_first))
    for name in names:
        assert os.path.getsize(tmp_path / name) == CAPACITY  # preallocated, never beyond


def test_read_from_an_op_num_starts_there_across_files(tmp_path):
    with Wal(tmp_path, capacity_bytes=CAPACITY) as wal:
        fill(wal, 1, 60)
        for start in (1, 17, 33, 60):
            got = list(wal.read(start))
            assert [op for op, _ in got] == list(range(start, 61))
            assert all(value["id"] == op and value["vector"][0] == op for op, value in got)
        assert list(wal.read(61)) == []


def test_op_nums_must_increase(tmp_path):
    with Wal(tmp_path) as wal:
        wal.append_many([(5, "a"), (6, "b")])
        for bad in ([(6, "again")], [(4, "older")], [(8, "x"), (7, "y")], [(-1, "negative")], [(True, "bool")]):
            with pytest.raises(ValueError):
                wal.append_many(bad)
        wal.append(10, "gaps are allowed")
        assert op_nums(wal) == [5, 6, 10]


def test_a_batch_is_one_fdatasync_and_a_new_file_syncs_the_directory_first(tmp_path, monkeypatch):
    events = []
    real_fdatasync, real_fsync = os.fdatasync, os.fsync

    def target(fd: int) -> str:
        return os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))

    def logged_fdatasync(fd):
        real_fdatasync(fd)
        events.append(("fdatasync", target(fd)))

    def logged_fsync(fd):
        real_fsync(fd)
        events.append(("fsync", target(fd)))

    with Wal(tmp_path / "wal") as wal:
        monkeypatch.setattr(os, "fdatasync", logged_fdatasync)
        monkeypatch.setattr(os, "fsync", logged_fsync)
        wal.append_many([(op, record(op)) for op in range(1, 101)])
        wal.append(101, "single")
        monkeypatch.undo()
        stats = wal.statistics()
    first = f"{1:020d}.wal"
    # The new file's name reaches the disk before its records; then one sync per batch.
    assert events == [("fsync", "wal"), ("fdatasync", first), ("fdatasync", first)]
    assert stats["fsyncs"] == 2 and stats["batches"] == 2 and stats["records"] == 101


def test_a_batch_bigger_than_the_capacity_gets_a_file_of_its_own(tmp_path):
    with Wal(tmp_path, capacity_bytes=CAPACITY) as wal:
        fill(wal, 1, 3)
        wal.append_many([(op, record(op)) for op in range(4, 54)])  # ~10 KiB
        wal.append(54, "small")
        assert op_nums(wal) == list(range(1, 55))
    assert log_files(tmp_path) == [f"{op:020d}.wal" for op in (1, 4, 54)]
    assert os.path.getsize(tmp_path / f"{4:020d}.wal") > CAPACITY


def test_truncate_before_drops_only_whole_files_below_the_op(tmp_path):
    with Wal(tmp_path, capacity_bytes=CAPACITY) as wal:
        fill(wal, 1, 100)
        files_before = log_files(tmp_path)
        wal.truncate_before(50)
        assert wal.first_op_num <= 50 and wal.last_op_num == 100
        assert op_nums(wal, 50) == list(range(50, 101))
        remaining = log_files(tmp_path)
        assert remaining == files_before[-len(remaining):] and len(remaining) < len(files_before)
        first_kept = int(remaining[0].removesuffix(".wal"))
        assert op_nums(wal) == list(range(first_kept, 101))
        assert wal.statistics()["truncated_files"] == len(files_before) - len(remaining)
    with Wal(tmp_path, capacity_bytes=CAPACITY) as wal:
        assert op_nums(wal) == list(range(first_kept, 101))
        fill(wal, 101, 110)
        assert wal.last_op_num == 110


def test_truncate_before_never_deletes_the_last_file(tmp_path):
    with Wal(tmp_path, capacity_bytes=CAPACITY) as wal:
        fill(wal, 1, 100)
        wal.truncate_before(1000)
        assert len(log_files(tmp_path)) == 1
        last_file_ops = op_nums(wal)
        assert last_file_ops[-1] == 100 and wal.first_op_num == last_file_ops[0]
        fill(wal, 101, 102)
    with Wal(tmp_path, capacity_bytes=CAPACITY) as wal:
        assert op_nums(wal) == last_file_ops + [101, 102]


def test_opening_and_reading_a_healthy_log_changes_no_file(tmp_path):
    with Wal(tmp_path, capacity_bytes=CAPACITY, segments_ahead=1) as wal:
        fill(wal, 1, 30)
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in tmp_path.iterdir()}
    with Wal(tmp_path, capacity_bytes=2 * CAPACITY, segments_ahead=1) as wal:
        assert op_nums(wal) == list(range(1, 31))
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in tmp_path.iterdir()} == before


def test_spare_files_are_kept_ahead_and_used_when_rolling(tmp_path):
    with Wal(tmp_path, capacity_bytes=CAPACITY, segments_ahead=2) as wal:
        assert len(list(tmp_path.glob("spare-*"))) == 2
        fill(wal, 1, 60)
        assert wal.statistics()["spare_files"] == 2
        assert op_nums(wal) == list(range(1, 61))
    assert len(list(tmp_path.glob("spare-*"))) == 2
    assert len(log_files(tmp_path)) > 2
    with Wal(tmp_path, capacity_bytes=CAPACITY, segments_ahead=0) as wal:
        assert op_nums(wal) == list(range(1, 61))
    assert list(tmp_path.glob("spare-*")) == []


def test_a_failed_write_acknowledges_nothing_and_leaves_no_trace(tmp_path, monkeypatch):
    wal = Wal(tmp_path)
    wal.append(1, "kept")
    real_fdatasync = os.fdatasync
    calls = []

    def failing_once(fd):
        calls.append(fd)
        if len(calls) == 1:
            raise OSError(5, "simulated I/O error")
        return real_fdatasync(fd)

    monkeypatch.setattr(os, "fdatasync", failing_once)
    with pytest.raises(OSError, match="simulated"):
        wal.append_many([(op, "x" * 500) for op in range(2, 12)])
    assert wal.last_op_num == 1
    wal.append(2, "the same op_num again")  # the caller may reuse the failed op_nums
    wal.close()
    monkeypatch.undo()
    with Wal(tmp_path) as reopened:
        assert list(reopened.read()) == [(1, "kept"), (2, "the same op_num again")]
        assert reopened.statistics()["torn_tails_cut"] == 0  # the failed bytes were zeroed


def test_an_unencodable_value_fails_before_anything_is_written(tmp_path):
    with Wal(tmp_path) as wal:
        with pytest.raises(TypeError):
            wal.append_many([(1, "fine"), (2, object())])
        assert wal.last_op_num is None and wal.statistics()["fsyncs"] == 0
        wal.append(1, "fine")
        assert list(wal.read()) == [(1, "fine")]


def test_close_is_idempotent_and_a_closed_log_refuses_use(tmp_path):
    wal = Wal(tmp_path)
    wal.append(1, "a")
    wal.close()
    wal.close()
    with pytest.raises(ValueError):
        wal.append(2, "b")
    with pytest.raises(ValueError):
        wal.read()


def test_appends_and_truncations_from_two_threads(tmp_path):
    """The collection appends from its update worker while its flusher truncates."""
    wal = Wal(tmp_path, capacity_bytes=CAPACITY)
    done = threading.Event()
    errors = []

    def appender():
        try:
            for first in range(1, 401, 4):  # ops 1..400 in batches of 4
                wal.append_many([(op, record(op)) for op in range(first, first + 4)])
                time.sleep(0.001)  # like a worker waiting for requests: the flusher gets turns
        except Exception as exc:  # reported below: assertion in the main thread
            errors.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=appender)
    thread.start()
    while not done.is_set():
        last = wal.last_op_num
        if last:
            wal.truncate_before(last - 20)
    thread.join()
    assert errors == []
    assert wal.statistics()["truncated_files"] > 0
    kept = op_nums(wal)
    assert kept[-1] == 400 and kept == list(range(kept[0], 401)) and kept[0] <= 380
    wal.close()
    with Wal(tmp_path, capacity_bytes=CAPACITY) as reopened:
        assert op_nums(reopened) == kept
