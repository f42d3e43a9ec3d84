"""Record framing and recovery: torn tails are cut (and saved), corruption is reported.

The crash model: a process dies at any byte of a write, so the last file may end anywhere;
a bit may also flip at rest. A cut or flipped tail must lose exactly the records it
touched and leave a log that takes appends; damage anywhere else must raise CorruptWal
naming the file and offset, and must not change the files.
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
from pydrant.wal.framing import HEADER, WalRecordError, encode_record, read_record
from pydrant.wal.scan import scan_log

CAPACITY = 1 << 20  # one file for every single-file test here
FIRST_FILE = "00000000000000000001.wal"

VALUES = st.one_of(
    st.dictionaries(st.sampled_from(["type", "id", "payload"]), st.integers(-1000, 1000) | st.text(max_size=30)),
    st.lists(st.floats(-10, 10, width=32), min_size=1, max_size=40).map(
        lambda v: {"vector": np.asarray(v, np.float32)}
    ),
    st.text(max_size=60),
)
HISTORIES = st.lists(VALUES, min_size=1, max_size=12).map(lambda values: list(enumerate(values, start=1)))
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


def frame_ends(entries) -> list[int]:
    """Offset just past each record's frame in a single-file log."""
    ends, offset = [], 0
    for op_num, value in entries:
        offset += len(encode_record(op_num, value))
        ends.append(offset)
    return ends


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


# --- torn tails ----------------------------------------------------------------------------


@PROPERTY
@given(entries=HISTORIES, cut_fraction=st.floats(0, 1))
def test_a_log_cut_at_any_byte_keeps_exactly_the_whole_records(tmp_path_factory, entries, cut_fraction):
    directory = tmp_path_factory.mktemp("cut")
    write_log(directory, entries)
    ends = frame_ends(entries)
    cut = round(cut_fraction * (ends[-1] + 10))  # sometimes into the preallocated zeros
    os.truncate(directory / FIRST_FILE, cut)

    kept = [entry for entry, end in zip(entries, ends) if end <= cut]
    assert read_all(directory) == encoded(kept)

    more = [(len(kept) + 1, "after the cut"), (len(kept) + 2, {"v": np.ones(3, np.float16)})]
    with Wal(directory, capacity_bytes=CAPACITY) as wal:
        wal.append_many(more)
    assert read_all(directory) == encoded(kept + more)


@pytest.mark.parametrize("zero_filled", [False, True], ids=["file-ends-at-cut", "zeros-after-cut"])
def test_a_cut_at_every_byte_keeps_the_whole_records(tmp_path, zero_filled):
    """Exhaustive for a small log: the file ends at the cut, or (a torn write into
    preallocated space) zeros follow it."""
    entries = [(1, "a"), (2, {"v": np.arange(5, dtype=np.float32)}), (3, "c" * 30), (4, [1, 2])]
    ends = frame_ends(entries)
    write_log(tmp_path / "pristine", entries)
    pristine = (tmp_path / "pristine" / FIRST_FILE).read_bytes()[: ends[-1]]
    directory = tmp_path / "wal"
    directory.mkdir()
    for cut in range(len(pristine) + 1):
        for leftover in directory.iterdir():
            leftover.unlink()
        padding = bytes(len(pristine) - cut + 16) if zero_filled else b""
        (directory / FIRST_FILE).write_bytes(pristine[:cut] + padding)
        kept = [entry for entry, end in zip(entries, ends) if end <= cut]
        assert read_all(directory) == encoded(kept), f"cut at byte {cut}"


@PROPERTY
@given(entries=HISTORIES, position=st.floats(0, 1, exclude_max=True), mask=st.integers(1, 255))
def test_a_flipped_byte_in_the_last_record_cuts_it_and_saves_it(tmp_path_factory, entries, position, mask):
    directory = tmp_path_factory.mktemp("flip")
    write_log(directory, entries)
    ends = frame_ends(entries)
    start = ends[-2] if len(ends) > 1 else 0
    flip_byte(directory / FIRST_FILE, start + int(position * (ends[-1] - start)), mask)
    damaged_frame = (directory / FIRST_FILE).read_bytes()[start : ends[-1]]

    assert read_all(directory) == encoded(entries[:-1])
    saved = directory / f"{FIRST_FILE}.tr0"
    assert saved.read_bytes() == damaged_frame.rstrip(b"\0")

    with Wal(directory, capacity_bytes=CAPACITY) as wal:
        wal.append(len(entries), "replacement")
    assert read_all(directory) == encoded(entries[:-1] + [(len(entries), "replacement")])
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
    starts = [0] + frame_ends(entries)
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
    entries = [(op, f"record {op}") for op in range(1, 6)]
    write_log(tmp_path, entries)
    ends = frame_ends(entries)
    flip_byte(tmp_path / FIRST_FILE, ends[1] + 10)  # inside record 3 of 5
    before = snapshot(tmp_path)

    with pytest.raises(CorruptWal, match=f"offset {ends[1]}.*valid record follows at offset {ends[2]}"):
        Wal(tmp_path, capacity_bytes=CAPACITY)
    assert snapshot(tmp_path) == before


def test_a_file_whose_first_record_disagrees_with_its_name_is_corruption(tmp_path):
    write_log(tmp_path, [(op, "x" * 100) for op in range(1, 40)], capacity=1024, one_batch=False)
    files = sorted(tmp_path.glob("*.wal"))
    assert len(files) >= 3
    files[1].rename(tmp_path / "00000000000000000002.wal")  # name no longer says its first op
    with pytest.raises(CorruptWal, match="file name says 2"):
        Wal(tmp_path, capacity_bytes=1024)
