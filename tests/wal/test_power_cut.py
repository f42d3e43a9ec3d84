"""A power cut during a group commit: the pages of the last batch reach the disk in any order.

One `append_many` is one pwrite of several pages followed by one fdatasync. Until that
fdatasync returns the batch is not acknowledged, and the kernel may have written back any
subset of its pages (or part of one) when the power goes: a lost page reads as what was
there before (zeros: files are preallocated, and the previous batch's bytes on the page
the two batches share). Recovery must cut the whole incomplete batch and keep every
earlier batch, even when a hole is followed by valid records of that same batch. Damage in
an earlier, acknowledged batch stays CorruptWal.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pydrant.errors import CorruptWal
from pydrant.wal import Wal, codec
from pydrant.wal.framing import HEADER
from pydrant.wal.scan import scan_log

PAGE = 4096
CAPACITY = 1 << 20
FIRST_FILE = "00000000000000000001.wal"


def operation(op_num: int, floats: int = 260) -> dict:
    return {"type": "upsert", "id": op_num, "vector": np.full(floats, op_num, np.float32)}


def numbered(batches_of_values, first_op_num: int = 1) -> list[list[tuple[int, object]]]:
    batches, op_num = [], first_op_num
    for values in batches_of_values:
        batches.append([(op_num + i, value) for i, value in enumerate(values)])
        op_num += len(values)
    return batches


def write_batches(directory: Path, batches, capacity: int = CAPACITY) -> tuple[Path, int, int]:
    """Append the batches; the last file and the [start, end) of the last batch in it."""
    with Wal(directory, capacity_bytes=capacity) as wal:
        for batch in batches[:-1]:
            wal.append_many(batch)
    before = scan_log(directory).files
    with Wal(directory, capacity_bytes=capacity) as wal:
        wal.append_many(batches[-1])
    after = scan_log(directory).files[-1]
    start = before[-1].data_end if before and before[-1].path == after.path else 0
    return after.path, start, after.data_end


def lose_pages(path: Path, start: int, end: int, lost_pages) -> None:
    """The pages (counted from the one holding `start`) that never reached the disk read as
    they were before the batch: zeros from `start` on."""
    data = bytearray(path.read_bytes())
    first_page = start // PAGE
    for page in lost_pages:
        lo = max(start, (first_page + page) * PAGE)
        hi = min(end, (first_page + page + 1) * PAGE)
        data[lo:hi] = bytes(max(0, hi - lo))
    path.write_bytes(bytes(data))


def pages_of(start: int, end: int) -> int:
    return (end - 1) // PAGE - start // PAGE + 1


def frame_starts(path: Path, start: int, end: int) -> list[int]:
    """Offsets of the frames in [start, end), walked through their length fields."""
    data = path.read_bytes()
    offsets, offset = [], start
    while offset < end:
        offsets.append(offset)
        offset += HEADER.size + HEADER.unpack_from(data, offset)[0]
    assert offset == end
    return offsets


def read_back(directory: Path, capacity: int = CAPACITY) -> list:
    with Wal(directory, capacity_bytes=capacity) as wal:
        return [(op, codec.encode(value)) for op, value in wal.read()]


def encoded(batches) -> list:
    return [(op, codec.encode(value)) for batch in batches for op, value in batch]


def snapshot(directory: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def assert_recovers_to(directory: Path, kept_batches, capacity: int = CAPACITY) -> None:
    """Opening keeps exactly `kept_batches`, takes a new batch, and the next open is clean."""
    expected = encoded(kept_batches)
    with Wal(directory, capacity_bytes=capacity) as wal:
        assert [(op, codec.encode(value)) for op, value in wal.read()] == expected
        next_op = (wal.last_op_num or 0) + 1
        more = [(next_op, "after the power cut"), (next_op + 1, operation(next_op + 1))]
        wal.append_many(more)
    with Wal(directory, capacity_bytes=capacity) as wal:
        assert wal.statistics()["torn_tails_cut"] == 0
        assert [(op, codec.encode(value)) for op, value in wal.read()] == expected + encoded([more])


# A small batch, a multi-page batch, a single record, then the last batch (~11 KiB, so it
# spans 3-4 pages and does not start on a page boundary).
BATCHES = numbered(
    [
        ["a", {"b": 2}, [3]],
        [operation(op) for op in range(4, 12)],
        [operation(12, 40)],
        [operation(op) for op in range(13, 23)],
    ]
)


@pytest.fixture
def log(tmp_path) -> tuple[Path, Path, int, int]:
    directory = tmp_path / "wal"
    path, start, end = write_batches(directory, BATCHES)
    assert path.name == FIRST_FILE and start % PAGE and pages_of(start, end) >= 3
    return directory, path, start, end


# --- the incomplete last batch is cut ---------------------------------------------------------


@pytest.mark.parametrize(
    "lost",
    [
        pytest.param(lambda n: [0], id="first-page-lost"),
        pytest.param(lambda n: [n // 2], id="middle-page-lost"),
        pytest.param(lambda n: [n - 1], id="last-page-lost"),
        pytest.param(lambda n: list(range(n - 1)), id="only-the-last-page-written"),
        pytest.param(lambda n: [0, n - 1], id="first-and-last-lost"),
        pytest.param(lambda n: list(range(1, n)), id="only-the-first-page-written"),
    ],
)
def test_a_lost_page_of_the_last_batch_cuts_that_batch(log, lost):
    directory, path, start, end = log
    lose_pages(path, start, end, lost(pages_of(start, end)))
    assert_recovers_to(directory, BATCHES[:-1])
    saved = directory / f"{FIRST_FILE}.tr0"
    assert saved.exists() and len(saved.read_bytes()) <= end - start  # the batch's bytes, for forensics


def test_a_torn_byte_range_in_the_last_batch_cuts_that_batch(log):
    directory, path, start, end = log
    data = bytearray(path.read_bytes())
    data[start + 5000 : start + 5300] = os.urandom(300)  # garbage, as a torn sector write leaves
    path.write_bytes(bytes(data))
    assert_recovers_to(directory, BATCHES[:-1])


def test_the_last_batch_cut_at_a_record_boundary_is_cut_whole(tmp_path):
    """Every record it holds is intact, but its end is missing: fdatasync never returned."""
    path, start, end = write_batches(tmp_path / "pristine", BATCHES)
    boundaries = frame_starts(path, start, end)
    assert len(boundaries) == len(BATCHES[-1])
    for boundary in boundaries[1:]:
        directory = tmp_path / f"cut-{boundary}"
        path, start, end = write_batches(directory, BATCHES)
        with open(path, "r+b") as file:
            file.seek(boundary)
            file.write(bytes(end - boundary))
        assert_recovers_to(directory, BATCHES[:-1])


def test_the_file_cut_short_inside_the_last_batch_cuts_that_batch(log):
    """On a filesystem without preallocation a lost page may also be a shorter file."""
    directory, path, start, end = log
    os.truncate(path, (start // PAGE + 2) * PAGE)
    assert_recovers_to(directory, BATCHES[:-1])


def test_a_last_batch_that_survived_whole_is_kept(log):
    directory, path, start, end = log
    assert_recovers_to(directory, BATCHES)


def test_a_batch_larger_than_a_file_gets_its_own_file_and_is_cut_alone(tmp_path):
    capacity = 8 * 1024
    batches = numbered([[operation(1)], [operation(op) for op in range(2, 4)], [operation(op) for op in range(4, 16)]])
    path, start, end = write_batches(tmp_path, batches, capacity)
    assert start == 0 and path.name == "00000000000000000004.wal" and end > capacity
    lose_pages(path, start, end, [1])
    assert_recovers_to(tmp_path, batches[:-1], capacity)


# --- damage in an acknowledged batch stays corruption --------------------------------------------


@pytest.mark.parametrize("last_batch", ["intact", "first-page-lost"])
def test_a_lost_page_in_an_earlier_batch_is_corruption(log, last_batch):
    directory, path, start, end = log
    files = scan_log(directory).files
    assert len(files) == 1
    earlier = frame_starts(path, 0, start)
    second_start, second_end = earlier[3], earlier[11]  # the batch of ops 4..11
    data = bytearray(path.read_bytes())
    middle = second_start + (second_end - second_start) // 2
    data[middle : middle + 200] = bytes(200)
    path.write_bytes(bytes(data))
    if last_batch == "first-page-lost":
        lose_pages(path, start, end, [0])
    before = snapshot(directory)
    with pytest.raises(CorruptWal) as raised:
        Wal(directory, capacity_bytes=CAPACITY)
    assert second_start < raised.value.offset < second_end
    assert snapshot(directory) == before  # nothing cut, nothing skipped


def test_a_flipped_byte_in_the_single_record_batch_before_the_last_is_corruption(log):
    directory, path, start, end = log
    single = frame_starts(path, 0, start)[-1]  # op 12, a batch of its own
    data = bytearray(path.read_bytes())
    data[single + 20] ^= 0x10
    path.write_bytes(bytes(data))
    lose_pages(path, start, end, [0])  # the last batch's later records still show op 12 was acknowledged
    before = snapshot(directory)
    with pytest.raises(CorruptWal, match="valid record"):
        Wal(directory, capacity_bytes=CAPACITY)
    assert snapshot(directory) == before


def test_an_incomplete_batch_in_a_file_that_is_not_the_last_is_corruption(tmp_path):
    capacity = 8 * 1024
    batches = numbered([[operation(op) for op in range(1, 5)], [operation(op) for op in range(5, 9)]])
    write_batches(tmp_path, batches, capacity)
    first = tmp_path / FIRST_FILE
    boundaries = frame_starts(first, 0, scan_log(tmp_path).files[0].data_end)
    with open(first, "r+b") as file:  # the first file loses the end of its (acknowledged) batch
        file.seek(boundaries[-1])
        file.write(bytes(capacity - boundaries[-1]))
    with pytest.raises(CorruptWal, match="not the last one"):
        Wal(tmp_path, capacity_bytes=capacity)


# --- property: any power cut during the last batch ------------------------------------------------

VALUE = st.builds(
    lambda floats, text: {"vector": np.full(floats, 0.5, np.float32), "note": text},
    st.integers(0, 700),
    st.text(max_size=20),
)
BATCH_VALUES = st.lists(st.lists(VALUE, min_size=1, max_size=10), min_size=1, max_size=6)
DAMAGE = st.one_of(
    st.tuples(st.just("pages"), st.lists(st.booleans(), min_size=1, max_size=12)),  # True: page lost
    st.tuples(st.just("torn"), st.floats(0, 1)),  # written up to a byte, zeros after it
    st.tuples(st.just("short"), st.floats(0, 1)),  # the file itself ends at a byte
    st.tuples(st.just("garbage"), st.tuples(st.floats(0, 1), st.integers(1, 600))),
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=BATCH_VALUES, damage=DAMAGE, capacity=st.sampled_from([8 * 1024, 32 * 1024, CAPACITY]))
def test_a_power_cut_keeps_exactly_the_complete_batches(tmp_path_factory, values, damage, capacity):
    directory = tmp_path_factory.mktemp("cut")
    batches = numbered(values)
    path, start, end = write_batches(directory, batches, capacity)
    original = path.read_bytes()
    kind, how = damage
    if kind == "pages":
        lost = [page for page, gone in enumerate(how) if gone and page < pages_of(start, end)]
        lose_pages(path, start, end, lost)
    elif kind == "torn":
        cut = start + round(how * (end - start))
        data = bytearray(original)
        data[cut:end] = bytes(end - cut)
        path.write_bytes(bytes(data))
    elif kind == "short":
        os.truncate(path, start + round(how * (end - start)))
    else:
        at = start + round(how[0] * (end - start))
        data = bytearray(original)
        data[at : min(end, at + how[1])] = os.urandom(len(data[at : min(end, at + how[1])]))
        path.write_bytes(bytes(data))
    damaged = path.read_bytes()
    survived = damaged[start:end] == original[start:end]

    kept = batches if survived else batches[:-1]
    assert_recovers_to(directory, kept, capacity)
