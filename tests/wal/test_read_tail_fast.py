"""`read_tail`'s fast path (the change feed's reader) against the whole-file scan.

`read_tail` reads forward from the start of a file, or from a position an earlier call
remembered, and stops at the end of the data; `read_tail_full` scans every file it needs
whole, as opening the WAL does. For random histories (batches of random sizes, op_num
gaps, small files, truncations), random `after` / `limit` / `until`, calls interleaved
with appends so that remembered positions are used, and a batch in flight or a torn tail
at the end, both must answer exactly the same records. Then: a resuming reader reads only
what is new (bytes counted), positions of a file that was replaced are not used, and the
reader never writes.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pydrant.wal import Wal, codec, scan
from pydrant.wal.framing import encode_batch
from pydrant.wal.scan import read_tail, read_tail_full, scan_log


def value(op_num: int, size: int) -> dict:
    point = {"id": op_num, "payload": {"text": "x" * size}}
    if op_num % 3 == 0:
        point["vector"] = np.full(8, op_num, np.float32)
    return {"type": "upsert", "points": [point]}


def shape(tail) -> tuple:
    """Everything a reader sees of an answer (values compared as their CBOR bytes)."""
    return tail.first_op_num, [
        (r.op_num, r.offset, r.size, r.batch_offset, r.records_after, r.timestamp, codec.encode(r.value))
        for r in tail.records
    ]


def same_answer(directory: Path, after: int, limit: int, until: int | None) -> list[int]:
    fast = read_tail(directory, after, limit, until)
    full = read_tail_full(directory, after, limit, until)
    assert shape(fast) == shape(full), (after, limit, until)
    return [r.op_num for r in fast.records]


def data_end(directory: Path) -> tuple[Path, int]:
    last = scan_log(directory).files[-1]
    return last.path, last.data_end


def put_in_flight(directory: Path, first_op: int, sizes: list[int], keep: float, hole: tuple[float, float] | None) -> None:
    """Write part of a batch after the data of the last file, as a reader may find it
    while the writer's pwrite is under way (or after a power cut): its first `keep` share,
    and optionally with a range of it still zeros."""
    path, end = data_end(directory)
    frames = encode_batch([(first_op + i, value(first_op + i, size)) for i, size in enumerate(sizes)], timestamp=1)
    part = bytearray(frames[: max(1, int(len(frames) * keep))])
    if hole is not None:
        lo, hi = sorted(int(len(part) * x) for x in hole)
        part[lo:hi] = bytes(hi - lo)
    with open(path, "r+b") as f:
        f.seek(end)
        f.write(bytes(part))


reads = st.lists(
    st.tuples(st.floats(0, 1.05), st.integers(1, 40), st.sampled_from(["none", "last", "random"]), st.floats(0, 1)),
    min_size=1,
    max_size=4,
)
rounds = st.lists(
    st.tuples(
        st.lists(st.lists(st.integers(0, 300), min_size=1, max_size=5), min_size=0, max_size=6),  # batches: value sizes
        st.integers(1, 3),  # op_num step (gaps when > 1)
        st.booleans(),  # truncate after appending
        reads,
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    capacity=st.sampled_from([512, 1024, 4096, 256 * 1024]),
    history=rounds,
    in_flight=st.one_of(
        st.none(),
        st.tuples(
            st.lists(st.integers(0, 300), min_size=1, max_size=4),
            st.floats(0.05, 1.0),
            st.one_of(st.none(), st.tuples(st.floats(0, 1), st.floats(0, 1))),
        ),
    ),
    final_reads=reads,
)
def test_fast_path_answers_what_the_full_scan_answers(capacity, history, in_flight, final_reads):
    scan._TAIL_POSITIONS.clear()
    with tempfile.TemporaryDirectory(prefix="read-tail-") as tmp:
        directory = Path(tmp)
        next_op = 1
        with Wal(directory, capacity_bytes=capacity) as wal:
            for batches, step, truncate, round_reads in history:
                for sizes in batches:
                    entries = []
                    for size in sizes:
                        entries.append((next_op, value(next_op, size)))
                        next_op += step
                    wal.append_many(entries)
                if truncate and wal.last_op_num is not None:
                    wal.truncate_before(wal.last_op_num)
                check_reads(directory, round_reads, wal.last_op_num, next_op)
        if in_flight is not None and any(directory.glob("*.wal")):
            sizes, keep, hole = in_flight
            put_in_flight(directory, next_op, sizes, keep, hole)
        check_reads(directory, final_reads, last_committed(directory), next_op + 5)


def last_committed(directory: Path) -> int | None:
    return scan_log(directory).last_op_num


def check_reads(directory: Path, plan, committed: int | None, beyond: int) -> None:
    for where, limit, until_mode, until_at in plan:
        after = int(where * beyond)
        until = {"none": None, "last": committed, "random": int(until_at * beyond)}[until_mode]
        same_answer(directory, after, limit, until)
        # a reader that resumes where the answer ended, as the feed's `next`, twice
        for _ in range(2):
            got = same_answer(directory, after, limit, until)
            if not got:
                break
            after = got[-1]


def test_a_resuming_reader_reads_only_what_is_new(tmp_path, monkeypatch):
    """After the first answer, each `since=next` read costs about the new records, not the
    file (1 MiB preallocated, ~600 KB of records)."""
    scan._TAIL_POSITIONS.clear()
    read_bytes = []
    real_pread = os.pread

    def counting_pread(fd, n, offset):
        data = real_pread(fd, n, offset)
        read_bytes.append(len(data))
        return data

    monkeypatch.setattr(scan.os, "pread", counting_pread)
    with Wal(tmp_path, capacity_bytes=1 << 20) as wal:
        for op in range(1, 2001):
            wal.append(op, value(op, 250))
        assert len(list(tmp_path.glob("*.wal"))) == 1
        data = scan_log(tmp_path).files[-1].data_end
        assert data > 500_000
        first = read_tail(tmp_path, 0, 5000, until=wal.last_op_num)
        assert [r.op_num for r in first.records] == list(range(1, 2001))
        assert sum(read_bytes) < data + 2 * scan.TAIL_READ_CHUNK  # never the zeros after the data
        since = 2000
        for op in range(2001, 2021):
            wal.append(op, value(op, 250))
            read_bytes.clear()
            tail = read_tail(tmp_path, since, 1000, until=wal.last_op_num)
            assert [r.op_num for r in tail.records] == [op]
            since = op
            assert sum(read_bytes) < 2 * scan.TAIL_READ_CHUNK, "reads from the remembered position"
        # a reader cut by its limit inside a batch resumes inside that batch
        wal.append_many([(op, value(op, 10)) for op in range(2021, 2031)])
        page = read_tail(tmp_path, 2020, 4, until=wal.last_op_num)
        assert [r.op_num for r in page.records] == [2021, 2022, 2023, 2024]
        read_bytes.clear()
        rest = read_tail(tmp_path, 2024, 100, until=wal.last_op_num)
        assert [r.op_num for r in rest.records] == list(range(2025, 2031))
        assert sum(read_bytes) < 2 * scan.TAIL_READ_CHUNK


def test_positions_of_a_replaced_file_are_not_used(tmp_path):
    """A collection deleted and created again has a WAL with the same file names and other
    records at the same offsets: the remembered positions must not be trusted."""
    scan._TAIL_POSITIONS.clear()
    with Wal(tmp_path, capacity_bytes=1 << 16) as wal:
        for op in range(1, 41):
            wal.append(op, value(op, 20))
        assert len(read_tail(tmp_path, 0, 100, until=40).records) == 40
        assert len(read_tail(tmp_path, 30, 100, until=40).records) == 10
    for path in tmp_path.iterdir():
        path.unlink()
    with Wal(tmp_path, capacity_bytes=1 << 16) as wal:
        for op in range(1, 61):
            wal.append(op, value(op, 21))  # one byte more each: other offsets
    for after in (0, 30, 40, 45):
        fast = read_tail(tmp_path, after, 100, until=60)
        assert shape(fast) == shape(read_tail_full(tmp_path, after, 100, until=60))
        assert [r.op_num for r in fast.records] == list(range(after + 1, 61))
        assert all(r.value["points"][0]["payload"]["text"] == "x" * 21 for r in fast.records)


def test_same_size_records_at_the_same_offsets_are_still_checked(tmp_path):
    """Even when the new file's records have the same sizes, the record before a remembered
    position is read again: other contents (CRC) make the position unusable."""
    scan._TAIL_POSITIONS.clear()
    with Wal(tmp_path, capacity_bytes=1 << 16) as wal:
        for op in range(1, 21):
            wal.append(op, {"v": "a" * 30})
        read_tail(tmp_path, 0, 100, until=20)
    for path in tmp_path.iterdir():
        path.unlink()
    with Wal(tmp_path, capacity_bytes=1 << 16) as wal:
        wal.append_many([(op, {"v": "b" * 30}) for op in range(1, 21)])  # one batch: other batch marks
        wal.append(21, {"v": "b" * 30})
    fast = read_tail(tmp_path, 20, 100, until=21)
    assert shape(fast) == shape(read_tail_full(tmp_path, 20, 100, until=21))
    assert [r.op_num for r in fast.records] == [21]
    assert [r.value["v"] for r in read_tail(tmp_path, 10, 100, until=21).records] == ["b" * 30] * 11


def test_torn_tail_before_the_remembered_end_falls_back(tmp_path):
    """A batch in flight after the remembered position: left out, as the full scan does."""
    scan._TAIL_POSITIONS.clear()
    with Wal(tmp_path, capacity_bytes=1 << 16) as wal:
        for op in range(1, 11):
            wal.append(op, value(op, 50))
        assert len(read_tail(tmp_path, 0, 100, until=10).records) == 10
    put_in_flight(tmp_path, 11, [40, 40, 40], 0.7, None)
    for until in (None, 10, 12):
        fast = read_tail(tmp_path, 10, 100, until)
        assert shape(fast) == shape(read_tail_full(tmp_path, 10, 100, until))
        assert fast.records == []
    put_in_flight(tmp_path, 11, [40, 40, 40], 1.0, (0.1, 0.3))  # a hole before records of its batch
    assert shape(read_tail(tmp_path, 5, 100)) == shape(read_tail_full(tmp_path, 5, 100))
    assert [r.op_num for r in read_tail(tmp_path, 5, 100).records] == [6, 7, 8, 9, 10]


def test_corruption_in_the_bytes_read_is_reported(tmp_path):
    """A bad record the fast path meets is judged by the full scan: corruption raises."""
    scan._TAIL_POSITIONS.clear()
    with Wal(tmp_path, capacity_bytes=1 << 16) as wal:
        for op in range(1, 11):
            wal.append(op, value(op, 50))
    path = next(tmp_path.glob("*.wal"))
    records = [r for r in read_tail_full(tmp_path, 0, 100).records]
    data = bytearray(path.read_bytes())
    data[records[4].offset + 12] ^= 0xFF  # inside op 5, which later batches follow
    path.write_bytes(bytes(data))
    from pydrant.errors import CorruptWal

    with pytest.raises(CorruptWal):
        read_tail(tmp_path, 0, 100)


def test_a_file_deleted_before_it_is_opened_raises_file_not_found(tmp_path, monkeypatch):
    """The change feed reads again when a truncation deleted a file it listed (410 if its
    records are gone)."""
    with Wal(tmp_path, capacity_bytes=512) as wal:
        for op in range(1, 30):
            wal.append(op, value(op, 50))
    listed = scan._log_names(tmp_path)
    listed[0][1].unlink()
    monkeypatch.setattr(scan, "_log_names", lambda directory: listed)
    with pytest.raises(FileNotFoundError):
        read_tail(tmp_path, 0, 100)


def test_the_reader_never_writes(tmp_path, monkeypatch):
    with Wal(tmp_path, capacity_bytes=4096) as wal:
        for op in range(1, 60):
            wal.append(op, value(op, 30))
    put_in_flight(tmp_path, 60, [20, 20], 0.5, None)
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in tmp_path.iterdir()}
    real_open = open

    def read_only_open(file, mode="r", *args, **kwargs):
        assert set(mode) <= {"r", "b"}, f"opened {file} with mode {mode}"
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr("builtins.open", read_only_open)
    for after in (0, 10, 40, 58):
        read_tail(tmp_path, after, 7, until=59)
        read_tail(tmp_path, after, 100)
    monkeypatch.undo()
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in tmp_path.iterdir()} == before
