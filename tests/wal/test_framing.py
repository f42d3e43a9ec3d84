"""Record framing and recovery: torn tails are cut (and saved), corruption is reported.

The crash model: a process dies at any byte of a write, so the last file may end anywhere;
a bit may also flip at rest. A cut or flipped tail must lose exactly the batch it touched
(the records of one `append_many`: never acknowledged if it is incomplete) and leave a log
that takes appends; damage anywhere else must raise CorruptWal naming the file and offset,
and must not change the files. Power cuts that leave holes in the last batch are in
test_power_cut.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import google_crc32c
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pydrant.errors import CorruptWal
from pydrant.wal import Wal, codec
from pydrant.wal.framing import HEADER, WalRecordError, encode_batch, encode_record, read_record
from pydrant.wal.scan import scan_log

CAPACITY = 1 << 20  # one file for every single-file test here
FIRST_FILE = "00000000000000000001.wal"
# The commit timestamp every batch gets here (the clock is fixed), so that tests can
# compute where the Wal's frames are.
NOW_MS = 1_764_000_000_123


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch):
    monkeypatch.setattr("pydrant.wal.log._now_ms", lambda: NOW_MS)

VALUES = st.one_of(
    st.dictionaries(st.sampled_from(["type", "id", "payload"]), st.integers(-1000, 1000) | st.text(max_size=30)),
    st.lists(st.floats(-10, 10, width=32), min_size=1, max_size=40).map(
        lambda v: {"vector": np.asarray(v, np.float32)}
    ),
    st.text(max_size=60),
)
HISTORIES = st.lists(VALUES, min_size=1, max_size=12).map(lambda values: list(enumerate(values, start=1)))
# A history split into batches: the sizes of consecutive batches.
BATCHED_HISTORIES = st.lists(st.lists(VALUES, min_size=1, max_size=5), min_size=1, max_size=5).map(
    lambda batches: _numbered(batches)
)


def _numbered(batches_of_values) -> list[list[tuple[int, object]]]:
    batches, op_num = [], 1
    for values in batches_of_values:
        batches.append([(op_num + i, value) for i, value in enumerate(values)])
        op_num += len(values)
    return batches
PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def write_log(directory: Path, entries, capacity: int = CAPACITY, *, one_batch: bool = True) -> None:
    """one_batch=False appends record by record, so that small capacities roll files."""
    with Wal(directory, capacity_bytes=capacity) as wal:
        if one_batch:
            wal.append_many(entries)
        else:
            for op_num, value in entries:
                wal.append(op_num, value)


def read_all(directory: Path, capacity: int = CAPACITY) -> list:
    with Wal(directory, capacity_bytes=capacity) as wal:
        return [(op, codec.encode(value)) for op, value in wal.read()]


def encoded(entries) -> list:
    """Entries with values as CBOR bytes: comparable, arrays included."""
    return [(op, codec.encode(value)) for op, value in entries]


def write_batches(directory: Path, batches) -> None:
    with Wal(directory, capacity_bytes=CAPACITY) as wal:
        for batch in batches:
            wal.append_many(batch)


def frame_ends(entries, *, one_batch: bool = True) -> list[int]:
    """Offset just past each record's frame in a single-file log written as one batch (or,
    one_batch=False, record by record)."""
    if not one_batch:
        return list(np.cumsum([len(encode_record(op_num, value, timestamp=NOW_MS)) for op_num, value in entries]))
    data = encode_batch(entries, timestamp=NOW_MS)
    ends, offset = [], 0
    while offset < len(data):
        offset += HEADER.size + HEADER.unpack_from(data, offset)[0]
        ends.append(offset)
    return ends


def batch_ends(batches) -> list[int]:
    """Offset just past each batch in a single-file log."""
    return list(np.cumsum([len(encode_batch(batch, timestamp=NOW_MS)) for batch in batches]))


def flip_byte(path: Path, offset: int, mask: int = 0xFF) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= mask
    path.write_bytes(bytes(data))


def append_raw(path: Path, offset: int, raw: bytes) -> None:
    with open(path, "r+b") as file:
        file.seek(offset)
        file.write(raw)


# --- the frame itself ----------------------------------------------------------------------


def test_a_frame_is_length_crc32c_then_cbor_of_op_num_and_value():
    frame = encode_record(7, {"a": [1, 2]})
    length, crc = HEADER.unpack(frame[:8])
    body = frame[8:]
    assert length == len(body)
    assert crc == google_crc32c.value(body)
    assert codec.decode(body) == [7, {"a": [1, 2]}]
    record = read_record(frame + bytes(8), 0)
    assert (record.op_num, record.value, record.size) == (7, {"a": [1, 2]}, len(frame))


@pytest.mark.parametrize(
    "damage, reason",
    [
        (lambda f: f[:5], "short header"),
        (lambda f: f[:-1], "short body"),
        (lambda f: f[:-1] + bytes([f[-1] ^ 1]), "CRC mismatch"),
    ],
)
def test_read_record_names_what_is_wrong(damage, reason):
    with pytest.raises(WalRecordError, match=reason):
        read_record(damage(encode_record(3, "value")), 0)


def test_a_crc_valid_body_that_is_not_a_record_is_rejected():
    for body in (b"\xff\xff", codec.encode({"not": "a pair"})):
        with pytest.raises(WalRecordError):
            read_record(HEADER.pack(len(body), google_crc32c.value(body)) + body, 0)


def test_a_batch_marks_each_record_with_its_offset_in_the_batch_and_the_records_after_it():
    entries = [(5, "a"), (6, {"v": np.ones(4, np.float32)}), (9, [1])]
    data = encode_batch(entries) + bytes(8)
    offset, places = 0, []
    for op_num, _ in entries:
        body = data[offset + 8 : offset + 8 + HEADER.unpack_from(data, offset)[0]]
        assert body[0] == 0x84  # [op_num, batch_offset, records_after, value]
        record = read_record(data, offset)
        assert codec.decode(body)[:3] == [op_num, record.batch_offset, record.records_after]
        assert read_record(data, offset, decode_value=False).batch_offset == record.batch_offset
        places.append((record.op_num, record.batch_start, record.records_after))
        offset += record.size
    assert places == [(5, 0, 2), (6, 0, 1), (9, 0, 0)]


def test_a_batch_of_one_is_the_two_element_record_older_wals_wrote():
    assert encode_batch([(7, "x")]) == encode_record(7, "x")
    assert encode_record(7, "x")[8] == 0x82
    record = read_record(encode_record(7, "x"), 0)
    assert (record.batch_offset, record.records_after, record.ends_batch) == (0, 0, True)


def test_a_record_whose_batch_would_start_before_the_file_is_rejected():
    frame = encode_record(3, "v", batch_offset=100, records_after=0)
    with pytest.raises(WalRecordError, match="not \\[op_num, value\\]"):
        read_record(frame, 0)
    with pytest.raises(WalRecordError):
        read_record(frame, 0, decode_value=False)
    assert read_record(bytes(100) + frame, 100).batch_start == 0


def test_a_log_of_unmarked_records_opens_each_record_a_batch_of_its_own(tmp_path):
    """A WAL written before batches were marked: every record is [op_num, value], also for
    the records of one append_many. It opens unchanged, keeps whole records of a torn tail
    as it always did, and takes marked batches after them."""
    entries = [(op, f"old {op}") for op in range(1, 5)]
    old_bytes = b"".join(encode_record(op, value) for op, value in entries)
    (tmp_path / FIRST_FILE).write_bytes(old_bytes[:-3] + bytes(1000))  # the last record torn
    with Wal(tmp_path, capacity_bytes=CAPACITY) as wal:
        assert [op for op, _ in wal.read()] == [1, 2, 3]
        wal.append_many([(4, "new 4"), (5, "new 5")])
    assert read_all(tmp_path) == encoded(entries[:3] + [(4, "new 4"), (5, "new 5")])
    assert scan_log(tmp_path).files[0].batches == 4


# --- torn tails ----------------------------------------------------------------------------


@PROPERTY
@given(batches=BATCHED_HISTORIES, cut_fraction=st.floats(0, 1))
def test_a_log_cut_at_any_byte_keeps_exactly_the_whole_batches(tmp_path_factory, batches, cut_fraction):
    directory = tmp_path_factory.mktemp("cut")
    write_batches(directory, batches)
    ends = batch_ends(batches)
    cut = round(cut_fraction * (ends[-1] + 10))  # sometimes into the preallocated zeros
    os.truncate(directory / FIRST_FILE, cut)

    kept = [entry for batch, end in zip(batches, ends) if end <= cut for entry in batch]
    assert read_all(directory) == encoded(kept)

    more = [(len(kept) + 1, "after the cut"), (len(kept) + 2, {"v": np.ones(3, np.float16)})]
    with Wal(directory, capacity_bytes=CAPACITY) as wal:
        wal.append_many(more)
    assert read_all(directory) == encoded(kept + more)


@pytest.mark.parametrize("zero_filled", [False, True], ids=["file-ends-at-cut", "zeros-after-cut"])
def test_a_cut_at_every_byte_keeps_the_whole_batches(tmp_path, zero_filled):
    """Exhaustive for a small log: the file ends at the cut, or (a torn write into
    preallocated space) zeros follow it. A batch is kept whole or not at all."""
    batches = [[(1, "a")], [(2, {"v": np.arange(5, dtype=np.float32)}), (3, "c" * 30), (4, [1, 2])], [(5, "e")]]
    ends = batch_ends(batches)
    write_batches(tmp_path / "pristine", batches)
    pristine = (tmp_path / "pristine" / FIRST_FILE).read_bytes()[: ends[-1]]
    directory = tmp_path / "wal"
    directory.mkdir()
    for cut in range(len(pristine) + 1):
        for leftover in directory.iterdir():
            leftover.unlink()
        padding = bytes(len(pristine) - cut + 16) if zero_filled else b""
        (directory / FIRST_FILE).write_bytes(pristine[:cut] + padding)
        kept = [entry for batch, end in zip(batches, ends) if end <= cut for entry in batch]
        assert read_all(directory) == encoded(kept), f"cut at byte {cut}"


@PROPERTY
@given(
    entries=HISTORIES,
    split=st.floats(0, 1, exclude_max=True),
    position=st.floats(0, 1, exclude_max=True),
    mask=st.integers(1, 255),
)
def test_a_flipped_byte_in_the_last_batch_cuts_that_batch_and_saves_it(
    tmp_path_factory, entries, split, position, mask
):
    directory = tmp_path_factory.mktemp("flip")
    first_count = int(split * len(entries))  # the records before the last batch
    batches = [batch for batch in (entries[:first_count], entries[first_count:]) if batch]
    write_batches(directory, batches)
    start = batch_ends(batches)[0] if len(batches) > 1 else 0
    end = batch_ends(batches)[-1]
    flip_byte(directory / FIRST_FILE, start + int(position * (end - start)), mask)
    damaged_batch = (directory / FIRST_FILE).read_bytes()[start:end]

    assert read_all(directory) == encoded(entries[:first_count])
    saved = directory / f"{FIRST_FILE}.tr0"
    assert saved.read_bytes() == damaged_batch.rstrip(b"\0")

    with Wal(directory, capacity_bytes=CAPACITY) as wal:
        wal.append(first_count + 1, "replacement")
    assert read_all(directory) == encoded(entries[:first_count] + [(first_count + 1, "replacement")])
    assert not (directory / f"{FIRST_FILE}.tr1").exists()  # the repair was complete


@pytest.mark.parametrize(
    "tail",
    [
        pytest.param(encode_record(2, "op_num goes backwards"), id="op-num-not-increasing"),
        pytest.param(HEADER.pack(2, google_crc32c.value(b"\xff\xff")) + b"\xff\xff", id="crc-ok-cbor-bad"),
        pytest.param(bytes(64) + b"junk after the end marker", id="junk-after-zeros"),
    ],
)
def test_a_bad_last_record_of_any_kind_is_cut(tmp_path, tail):
    entries = [(1, "a"), (2, "b"), (3, "c")]
    write_log(tmp_path, entries)
    end = frame_ends(entries)[-1]
    append_raw(tmp_path / FIRST_FILE, end, tail)

    with Wal(tmp_path, capacity_bytes=CAPACITY) as wal:
        assert [op for op, _ in wal.read()] == [1, 2, 3]
        assert wal.statistics()["torn_tails_cut"] == 1
        wal.append(4, "d")
    assert read_all(tmp_path) == encoded(entries + [(4, "d")])
    assert (tmp_path / f"{FIRST_FILE}.tr0").read_bytes() == tail  # from the bad header to the last non-zero byte


def test_each_repair_saves_to_a_new_forensic_file(tmp_path):
    write_log(tmp_path, [(1, "a")])
    end = frame_ends([(1, "a")])[-1]
    for attempt in range(2):
        append_raw(tmp_path / FIRST_FILE, end, b"\x05\x00\x00\x00torn" + bytes([attempt]))
        Wal(tmp_path, capacity_bytes=CAPACITY).close()
    assert sorted(p.name for p in tmp_path.glob("*.tr*")) == [f"{FIRST_FILE}.tr0", f"{FIRST_FILE}.tr1"]
    assert (tmp_path / f"{FIRST_FILE}.tr1").read_bytes().endswith(b"torn\x01")


def test_a_torn_first_record_leaves_an_empty_file_that_takes_the_next_op(tmp_path):
    write_log(tmp_path, [(1, "a")])
    os.truncate(tmp_path / FIRST_FILE, 5)
    with Wal(tmp_path, capacity_bytes=CAPACITY) as wal:
        assert wal.first_op_num is None and wal.last_op_num is None
        wal.append(9, "nine")
    assert [p.name for p in tmp_path.glob("*.wal")] == ["00000000000000000009.wal"]
    assert read_all(tmp_path) == encoded([(9, "nine")])


# --- corruption ----------------------------------------------------------------------------


def snapshot(directory: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(record_index=st.integers(0, 9), position=st.floats(0, 1, exclude_max=True))
def test_a_flipped_byte_in_an_earlier_file_raises_corrupt_wal(tmp_path_factory, record_index, position):
    directory = tmp_path_factory.mktemp("early")
    entries = [(op, {"vector": np.full(40, op, np.float32)}) for op in range(1, 31)]
    write_log(directory, entries, capacity=2048, one_batch=False)  # ~10 records per file
    files = scan_log(directory).files
    assert len(files) >= 2
    first_file = directory / FIRST_FILE
    starts = [0] + frame_ends(entries, one_batch=False)
    index = record_index % files[0].records
    offset = starts[index] + int(position * (starts[index + 1] - starts[index]))
    flip_byte(first_file, offset)
    before = snapshot(directory)

    with pytest.raises(CorruptWal) as raised:
        Wal(directory, capacity_bytes=2048)
    assert raised.value.offset == starts[index]
    assert FIRST_FILE in str(raised.value) and f"offset {starts[index]}" in str(raised.value)
    assert snapshot(directory) == before  # nothing repaired, nothing skipped


def test_a_bad_record_followed_by_valid_ones_in_the_last_file_is_corruption(tmp_path):
    """Records 4 and 5 are batches of their own: they were written after record 3's batch
    was acknowledged, so record 3 cannot be part of an interrupted write."""
    entries = [(op, f"record {op}") for op in range(1, 6)]
    write_log(tmp_path, entries, one_batch=False)
    ends = frame_ends(entries, one_batch=False)
    flip_byte(tmp_path / FIRST_FILE, ends[1] + 10)  # inside record 3 of 5
    before = snapshot(tmp_path)

    with pytest.raises(CorruptWal, match=f"offset {ends[1]}.*valid record follows at offset {ends[2]}"):
        Wal(tmp_path, capacity_bytes=CAPACITY)
    assert snapshot(tmp_path) == before


def test_a_bad_record_in_a_batch_followed_by_a_later_batch_is_corruption(tmp_path):
    batches = [[(1, "a"), (2, "b"), (3, "c")], [(4, "d"), (5, "e")]]
    write_batches(tmp_path, batches)
    ends = frame_ends(batches[0])
    flip_byte(tmp_path / FIRST_FILE, ends[0] + 10)  # record 2, in the middle of the first batch
    before = snapshot(tmp_path)

    expected = f"offset {ends[0]}.*valid record follows at offset {ends[2]}, of another batch"
    with pytest.raises(CorruptWal, match=expected):
        Wal(tmp_path, capacity_bytes=CAPACITY)
    assert snapshot(tmp_path) == before


def test_a_bad_record_in_the_last_batch_cuts_the_batch_even_if_its_later_records_are_intact(tmp_path):
    batches = [[(1, "a")], [(2, "b"), (3, "c"), (4, "d")]]
    write_batches(tmp_path, batches)
    first_end = batch_ends(batches)[0]
    flip_byte(tmp_path / FIRST_FILE, first_end + 10)  # record 2: records 3 and 4 still valid
    with Wal(tmp_path, capacity_bytes=CAPACITY) as wal:
        assert [op for op, _ in wal.read()] == [1]
        assert wal.statistics()["torn_tails_cut"] == 1


def test_a_file_whose_first_record_disagrees_with_its_name_is_corruption(tmp_path):
    write_log(tmp_path, [(op, "x" * 100) for op in range(1, 40)], capacity=1024, one_batch=False)
    files = sorted(tmp_path.glob("*.wal"))
    assert len(files) >= 3
    files[1].rename(tmp_path / "00000000000000000002.wal")  # name no longer says its first op
    with pytest.raises(CorruptWal, match="file name says 2"):
        Wal(tmp_path, capacity_bytes=1024)
