"""What point-in-time restore and the change feed need from the WAL: commit timestamps on
every record (old records without one still read), closed files kept by `retain_closed`,
and `read_tail`, the read-only reader of a log's newest records."""

from __future__ import annotations

import re
import time

import numpy as np
import pytest

from pydrant.wal import Wal, codec
from pydrant.wal.framing import TIMED_RECORD_ARRAY_HEAD, encode_batch, encode_record, read_record
from pydrant.wal.inspect import format_report, inspect_wal, to_json_ready
from pydrant.wal.scan import iter_records, read_log, read_tail, scan_log

SMALL = 1024  # bytes per file: a few records each


def value(op_num: int) -> dict:
    return {"type": "upsert", "points": [{"id": op_num, "vector": np.full(16, op_num, np.float32)}]}


def fill(wal: Wal, first: int, last: int) -> None:
    for op_num in range(first, last + 1):
        wal.append(op_num, value(op_num))


def records(directory) -> list:
    scan = scan_log(directory)
    return [r for f in scan.files for r in iter_records(f.path, f.data_end)]


# --- commit timestamps ---------------------------------------------------------------------


def test_every_new_record_carries_its_batch_commit_timestamp(tmp_path):
    before = time.time_ns() // 1_000_000
    with Wal(tmp_path) as wal:
        wal.append(1, "one")
        wal.append_many([(2, "two"), (3, {"v": np.ones(3, np.float16)})])
    after = time.time_ns() // 1_000_000
    found = records(tmp_path)
    assert [r.op_num for r in found] == [1, 2, 3]
    assert all(before <= r.timestamp <= after for r in found)
    assert found[1].timestamp == found[2].timestamp  # one group commit, one time
    assert found[0].timestamp <= found[1].timestamp
    assert (found[1].batch_start, found[1].records_after) == (found[0].size, 1)


def test_the_timestamp_is_in_the_five_item_body_and_reads_without_decoding_the_value():
    frame = encode_batch([(7, "x")], timestamp=1_764_000_000_123)
    assert frame[8] == TIMED_RECORD_ARRAY_HEAD
    assert codec.decode(frame[8:]) == [7, 0, 0, 1_764_000_000_123, "x"]
    for decode in (True, False):
        record = read_record(frame, 0, decode_value=decode)
        assert (record.op_num, record.timestamp, record.ends_batch) == (7, 1_764_000_000_123, True)


def test_old_records_without_a_timestamp_still_open_and_mix_with_new_ones(tmp_path):
    """A WAL written before records carried timestamps: single and batched records of the
    older shapes. It opens, reads (timestamp None) and takes timestamped batches after."""
    old = encode_record(1, "old single") + encode_batch([(2, "old a"), (3, {"v": np.arange(4, dtype=np.uint8)})])
    (tmp_path / "00000000000000000001.wal").write_bytes(old + bytes(1000))
    with Wal(tmp_path) as wal:
        assert [op for op, _ in wal.read()] == [1, 2, 3]
        wal.append_many([(4, "new a"), (5, "new b")])
    found = records(tmp_path)
    assert [(r.op_num, r.timestamp is None) for r in found] == [(1, True), (2, True), (3, True), (4, False), (5, False)]
    assert found[2].value["v"].tolist() == [0, 1, 2, 3]
    assert [op for op, _ in read_log(tmp_path)] == [1, 2, 3, 4, 5]


def test_timestamps_never_go_back_even_when_the_clock_does(tmp_path, monkeypatch):
    clock = iter([5_000, 4_000, 6_000, 1_000])
    monkeypatch.setattr("pydrant.wal.log._now_ms", lambda: next(clock))
    with Wal(tmp_path) as wal:
        wal.append(1, "a")
        wal.append(2, "b")
    with Wal(tmp_path) as wal:  # the last timestamp is found again on open
        wal.append(3, "c")
        wal.append(4, "d")
    assert [r.timestamp for r in records(tmp_path)] == [5_000, 5_000, 6_000, 6_000]


def test_inspect_shows_the_commit_timestamp(tmp_path, monkeypatch):
    monkeypatch.setattr("pydrant.wal.log._now_ms", lambda: 1_764_770_400_042)
    (tmp_path / "00000000000000000001.wal").write_bytes(encode_record(1, "old") + bytes(100))
    with Wal(tmp_path) as wal:
        wal.append(2, "new")
    report = inspect_wal(tmp_path, include_records=True)
    assert [r["timestamp"] for r in report["record_list"]] == [None, 1_764_770_400_042]
    lines = format_report(report).splitlines()
    assert "2025-12-03T14:00:00.042Z" in lines[-1]
    assert not re.search(r"\d{4}-\d\d-\d\dT", lines[-2])  # an old record: no time to show


def test_feed_rendering_gives_arrays_as_lists():
    rendered = to_json_ready({"v": np.array([[1, 2], [3, 4]], np.float32), 3: b"\x01"}, arrays_as_lists=True)
    assert rendered == {"v": [[1.0, 2.0], [3.0, 4.0]], "3": "01"}


# --- retain_closed -------------------------------------------------------------------------


@pytest.mark.parametrize("retain", [0, 1, 3])
def test_truncate_before_keeps_the_last_retain_closed_closed_files(tmp_path, retain):
    with Wal(tmp_path, capacity_bytes=SMALL, retain_closed=retain) as wal:
        fill(wal, 1, 60)
        files = sorted(tmp_path.glob("*.wal"))
        assert len(files) >= 6
        wal.truncate_before(61)  # every record is below the bound: only retention keeps files
        kept = sorted(tmp_path.glob("*.wal"))
        assert kept == files[len(files) - 1 - retain :]  # `retain` closed files and the last one
        assert wal.statistics()["truncated_files"] == len(files) - 1 - retain
        first = wal.first_op_num
        assert first == int(kept[0].name.split(".")[0])
        assert [op for op, _ in wal.read()] == list(range(first, 61))
        # A later flush with nothing new: retention still holds, nothing more goes.
        wal.truncate_before(61)
        assert sorted(tmp_path.glob("*.wal")) == kept
        # More closed files: the oldest go, the last `retain` stay.
        fill(wal, 61, 120)
        wal.truncate_before(121)
        assert len(list(tmp_path.glob("*.wal"))) == retain + 1
    # The feed reads what is retained.
    tail = read_tail(tmp_path, after=0, limit=1000)
    oldest = tail.first_op_num
    assert oldest is not None
    assert [r.op_num for r in read_tail(tmp_path, after=oldest - 1, limit=1000).records] == list(range(oldest, 121))


def test_retention_never_keeps_records_truncation_must_keep(tmp_path):
    """retain_closed only adds to what is kept: records >= the bound are never dropped."""
    with Wal(tmp_path, capacity_bytes=SMALL, retain_closed=1) as wal:
        fill(wal, 1, 60)
        wal.truncate_before(30)
        assert wal.first_op_num is not None and wal.first_op_num < 30
        assert [op for op, _ in wal.read(30)] == list(range(30, 61))


def test_retain_closed_must_not_be_negative(tmp_path):
    with pytest.raises(ValueError, match="retain_closed"):
        Wal(tmp_path, retain_closed=-1)


# --- read_tail -----------------------------------------------------------------------------


def test_read_tail_reads_after_since_up_to_limit_and_until(tmp_path):
    with Wal(tmp_path, capacity_bytes=SMALL) as wal:
        fill(wal, 1, 50)
    tail = read_tail(tmp_path, after=0, limit=1000)
    assert tail.first_op_num == 1 and [r.op_num for r in tail.records] == list(range(1, 51))
    assert [r.op_num for r in read_tail(tmp_path, after=20, limit=5).records] == [21, 22, 23, 24, 25]
    assert [r.op_num for r in read_tail(tmp_path, after=44, limit=100, until=47).records] == [45, 46, 47]
    assert read_tail(tmp_path, after=50, limit=10).records == []
    assert read_tail(tmp_path, after=49, limit=10).records[0].value["points"][0]["vector"].tolist() == [50.0] * 16
    assert all(r.timestamp is not None for r in tail.records)


def test_read_tail_reads_only_the_files_it_needs(tmp_path, monkeypatch):
    with Wal(tmp_path, capacity_bytes=SMALL) as wal:
        fill(wal, 1, 50)
    files = sorted(tmp_path.glob("*.wal"))
    (files[0]).write_bytes(b"garbage that is not a record" * 10)  # damage a file the tail does not need
    newest = int(files[-1].name.split(".")[0])
    assert [r.op_num for r in read_tail(tmp_path, after=newest - 1, limit=100).records] == list(range(newest, 51))


def test_read_tail_leaves_out_a_batch_in_flight_and_changes_nothing(tmp_path):
    with Wal(tmp_path) as wal:
        fill(wal, 1, 3)
    path = next(tmp_path.glob("*.wal"))
    data = path.read_bytes()
    end = sum(r.size for r in records(tmp_path))
    torn = encode_batch([(4, "in flight"), (5, "too")], timestamp=1)[:-5]
    path.write_bytes(data[:end] + torn + data[end + len(torn) :])
    before = path.read_bytes()
    assert [r.op_num for r in read_tail(tmp_path, after=0, limit=10).records] == [1, 2, 3]
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]
