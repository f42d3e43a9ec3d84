"""Pack files (pydrant/segments/packfile.py): arrays written sequentially at 4 KiB offsets,
mapped once, views without copies, crc32c per array, damage reported or refused."""

import errno
import gc
import mmap
import os

import google_crc32c
import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pydrant.errors import ServiceError
from pydrant.segments import packfile
from pydrant.segments.packfile import (
    ALIGNMENT,
    STORAGE_DTYPES,
    ArrayEntry,
    CorruptPack,
    PackTable,
    PackWriter,
    open_pack,
    verify_pack,
)


def sample(dtype: np.dtype, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Values of `dtype` that include its extremes (and nan/inf for floats)."""
    rng = np.random.default_rng(seed)
    count = int(np.prod(shape))
    if dtype.kind == "b":
        values = rng.random(count) < 0.5
    elif dtype.kind in "iu":
        info = np.iinfo(dtype)
        values = rng.integers(info.min, info.max, count, dtype=dtype, endpoint=True)
        values[: min(count, 2)] = [info.min, info.max][: min(count, 2)]
    else:
        values = rng.standard_normal(count).astype(dtype)
        values[: min(count, 3)] = [np.nan, np.inf, -0.0][: min(count, 3)]
    return values.astype(dtype).reshape(shape)


def same_array(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal dtype, shape and bytes (nan-safe, -0.0 distinguished)."""
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def write_pack(path, arrays: dict[str, np.ndarray]) -> PackTable:
    with PackWriter(path) as writer:
        for name, array in arrays.items():
            writer.add(name, array)
        return writer.finish()


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def mapping_of(array: np.ndarray):
    """The object at the end of the view's base chain (numpy 2 puts a memoryview of the
    buffer between the array and the buffer)."""
    base = array
    while isinstance(base, np.ndarray) and base.base is not None:
        base = base.base
    return base.obj if isinstance(base, memoryview) else base


ALL_DTYPES = sorted(STORAGE_DTYPES)


def test_every_storage_dtype_round_trips_in_every_shape(tmp_path):
    arrays = {}
    for dtype_code in ALL_DTYPES:
        dtype = np.dtype(dtype_code)
        for shape in [(1000,), (37, 5), (3, 4, 2), (), (0,), (0, 7)]:
            arrays[f"{dtype_code}{shape}"] = sample(dtype, shape, seed=len(arrays))
    table = write_pack(tmp_path / "all.pack", arrays)
    opened = open_pack(tmp_path / "all.pack", table)
    assert list(opened) == list(arrays)
    for name, array in arrays.items():
        assert same_array(opened[name], array), name
        assert not opened[name].flags.writeable and opened[name].flags.c_contiguous, name
    # the types the segment layout names, spelled as numpy spells them
    assert {"|b1", "|u1", "<u2", "<i4", "<u4", "<i8", "<u8", "<f2", "<f4", "<f8"} <= STORAGE_DTYPES


def test_layout_offsets_are_aligned_gaps_are_zero_and_the_size_is_the_file_size(tmp_path):
    arrays = {"a": np.arange(3, dtype=np.uint8), "b": np.arange(5000, dtype="<f8"), "c": np.ones(1, np.int32)}
    table = write_pack(tmp_path / "p.pack", arrays)
    raw = (tmp_path / "p.pack").read_bytes()
    assert len(raw) == table.size == os.path.getsize(tmp_path / "p.pack")
    entries = list(table.arrays.values())
    assert [e.offset for e in entries] == [0, ALIGNMENT, ALIGNMENT + 40960]
    for entry, array in zip(entries, arrays.values()):
        assert raw[entry.offset : entry.end] == array.tobytes()
        assert entry.crc32c == google_crc32c.value(array.tobytes())
    covered = np.zeros(len(raw), bool)
    for entry in entries:
        covered[entry.offset : entry.end] = True
    assert not any(np.frombuffer(raw, np.uint8)[~covered])  # padding is zeros


def test_checksum_is_crc32c_castagnoli(tmp_path):
    table = write_pack(tmp_path / "p.pack", {"digits": np.frombuffer(b"123456789", np.uint8)})
    assert table.arrays["digits"].crc32c == 0xE3069283  # the standard CRC-32C check value


def test_big_endian_input_is_stored_little_endian_with_the_same_values(tmp_path):
    values = np.arange(-5, 5, dtype=">i4")
    table = write_pack(tmp_path / "p.pack", {"v": values, "f": values.astype(">f8")})
    opened = open_pack(tmp_path / "p.pack", table)
    assert table.arrays["v"].dtype == "<i4" and table.arrays["f"].dtype == "<f8"
    assert opened["v"].tolist() == list(range(-5, 5))
    assert opened["f"].tolist() == [float(x) for x in range(-5, 5)]


def test_non_contiguous_input_is_written_in_c_order(tmp_path):
    matrix = np.arange(24, dtype=np.float32).reshape(4, 6)
    table = write_pack(tmp_path / "p.pack", {"t": matrix.T, "strided": matrix[:, ::2]})
    opened = open_pack(tmp_path / "p.pack", table)
    assert np.array_equal(opened["t"], matrix.T) and opened["t"].flags.c_contiguous
    assert np.array_equal(opened["strided"], matrix[:, ::2])


@pytest.mark.parametrize("dtype", [object, "<c8", "U4", "S3", [("a", "<i4")], "<M8[us]"])
def test_dtypes_a_pack_cannot_hold_are_refused(tmp_path, dtype):
    with PackWriter(tmp_path / "p.pack") as writer:
        with pytest.raises(ValueError, match="cannot be stored"):
            writer.add("x", np.zeros(2, dtype=dtype))
        with pytest.raises(ValueError, match="cannot be stored"):
            writer.begin("y", dtype)
    assert not (tmp_path / "p.pack").exists()


# -- streamed arrays


def test_streamed_array_equals_its_blocks_concatenated(tmp_path, monkeypatch):
    monkeypatch.setattr(packfile, "_CHUNK", 1000)  # several write/checksum steps per block
    blocks = [sample(np.dtype("<f4"), (rows, 3), seed=rows) for rows in (0, 1, 700, 3, 0, 250)]
    with PackWriter(tmp_path / "p.pack") as writer:
        writer.add("before", np.arange(3, dtype=np.uint16))
        writer.begin("rows", np.float32, (3,))
        for block in blocks:
            writer.append(block)
        entry = writer.end()
        writer.add("after", np.arange(5, dtype=np.int64))
        table = writer.finish()
    expected = np.concatenate(blocks)
    assert entry.shape == (954, 3) and entry.offset % ALIGNMENT == 0
    assert entry.crc32c == google_crc32c.value(expected.tobytes())
    opened = open_pack(tmp_path / "p.pack", table)
    assert same_array(opened["rows"], expected)
    assert opened["before"].tolist() == [0, 1, 2] and opened["after"].tolist() == list(range(5))
    assert verify_pack(tmp_path / "p.pack", table) == []


def test_streamed_1d_array_and_an_empty_stream(tmp_path):
    with PackWriter(tmp_path / "p.pack") as writer:
        writer.begin("ids", "<u8")
        writer.append(np.array([2**64 - 1, 0], np.uint64))
        writer.append(np.array([7], ">u8"))  # byte order aside, the same dtype
        writer.end()
        writer.begin("none", np.bool_, (4,))
        empty = writer.end()
        table = writer.finish()
    opened = open_pack(tmp_path / "p.pack", table)
    assert opened["ids"].tolist() == [2**64 - 1, 0, 7]
    assert empty.shape == (0, 4) and opened["none"].shape == (0, 4)


@pytest.mark.parametrize(
    "block, message",
    [
        (np.zeros((2, 3), np.float64), "dtype"),  # no silent float64 -> float32 cast
        (np.zeros((2, 4), np.float32), "does not fit"),
        (np.zeros(6, np.float32), "does not fit"),
        (np.zeros((1, 2, 3), np.float32), "does not fit"),
    ],
)
def test_blocks_that_do_not_fit_the_stream_are_refused(tmp_path, block, message):
    with PackWriter(tmp_path / "p.pack") as writer:
        writer.begin("rows", np.float32, (3,))
        with pytest.raises(ValueError, match=message):
            writer.append(block)
        writer.append(np.ones((2, 3), np.float32))  # the stream is still usable
        assert writer.end().shape == (2, 3)


def test_writer_call_order_is_enforced(tmp_path):
    with PackWriter(tmp_path / "p.pack") as writer:
        with pytest.raises(ValueError, match="no array was begun"):
            writer.append(np.zeros(1, np.uint8))
        with pytest.raises(ValueError, match="no array was begun"):
            writer.end()
        writer.add("a", np.zeros(1, np.uint8))
        with pytest.raises(ValueError, match="already in the pack"):
            writer.add("a", np.zeros(1, np.uint8))
        with pytest.raises(ValueError, match="non-empty string"):
            writer.add("", np.zeros(1, np.uint8))
        writer.begin("s", np.uint8)
        with pytest.raises(ValueError, match="begun and not ended"):
            writer.add("b", np.zeros(1, np.uint8))
        with pytest.raises(ValueError, match="begun and not ended"):
            writer.finish()
        writer.end()
        table = writer.finish()
    with pytest.raises(ValueError, match="already finished"):
        writer.add("c", np.zeros(1, np.uint8))
    assert list(table.arrays) == ["a", "s"]
    assert (tmp_path / "p.pack").exists()  # leaving the block after finish keeps the file


def test_existing_file_is_never_overwritten(tmp_path):
    (tmp_path / "p.pack").write_bytes(b"keep")
    with pytest.raises(FileExistsError):
        PackWriter(tmp_path / "p.pack")
    assert (tmp_path / "p.pack").read_bytes() == b"keep"


def test_leaving_the_block_without_finish_removes_the_file(tmp_path):
    with pytest.raises(RuntimeError, match="build stopped"):
        with PackWriter(tmp_path / "p.pack") as writer:
            writer.add("a", np.zeros(10, np.uint8))
            raise RuntimeError("build stopped")
    assert not (tmp_path / "p.pack").exists()
    with PackWriter(tmp_path / "q.pack") as writer:
        writer.add("a", np.zeros(10, np.uint8))
    assert not (tmp_path / "q.pack").exists()
    writer.abort()  # idempotent


class _FullDisk:
    """A file object whose writes fail with ENOSPC once `room` bytes were written."""

    def __init__(self, file, room: int):
        self._file, self._room = file, room

    def write(self, data: bytes) -> int:
        if len(data) > self._room:
            raise OSError(errno.ENOSPC, "No space left on device")
        self._room -= len(data)
        return self._file.write(data)

    def __getattr__(self, name):
        return getattr(self._file, name)


def test_a_failed_write_poisons_the_writer_and_abort_removes_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(packfile, "_CHUNK", 4096)
    writer = PackWriter(tmp_path / "p.pack")
    writer._file = _FullDisk(writer._file, room=10_000)
    writer.add("small", np.zeros(100, np.uint8))
    with pytest.raises(OSError, match="No space left"):
        writer.add("big", np.zeros(20_000, np.uint8))
    for call in (lambda: writer.add("next", np.zeros(1, np.uint8)), writer.finish):
        with pytest.raises(ValueError, match="earlier write .* failed"):
            call()
    writer.abort()
    assert not (tmp_path / "p.pack").exists()


# -- mapping: zero copy, one descriptor


def test_views_share_one_read_only_mapping_without_copies(tmp_path):
    vectors = sample(np.dtype("<f4"), (500, 16))
    table = write_pack(tmp_path / "p.pack", {"vectors": vectors, "slots": np.arange(500, dtype=np.int32)})
    opened = open_pack(tmp_path / "p.pack", table)
    mapping = mapping_of(opened["vectors"])
    assert isinstance(mapping, mmap.mmap)
    assert mapping_of(opened["slots"]) is mapping  # one mapping for the whole pack
    entry = table.arrays["vectors"]
    again = np.frombuffer(mapping, "<f4", entry.count, entry.offset).reshape(entry.shape)
    assert np.shares_memory(opened["vectors"], again)  # the view is the mapped bytes, not a copy
    assert opened["vectors"].ctypes.data % ALIGNMENT == 0 and opened["slots"].ctypes.data % ALIGNMENT == 0
    with pytest.raises(ValueError, match="read-only"):
        opened["slots"][0] = 1
    # a float32 C-contiguous view passes np.ascontiguousarray (what the kernels call) as is
    assert np.ascontiguousarray(opened["vectors"], dtype=np.float32) is opened["vectors"]


def test_one_file_descriptor_per_open_pack_released_with_the_views(tmp_path):
    tables = [write_pack(tmp_path / f"{i}.pack", {"a": np.arange(10 * (i + 1)), "b": np.ones(3)}) for i in range(3)]
    gc.collect()
    before = open_fds()
    packs = [open_pack(tmp_path / f"{i}.pack", table) for i, table in enumerate(tables)]
    assert open_fds() == before + 3
    assert [pack["a"].size for pack in packs] == [10, 20, 30]
    del packs
    gc.collect()
    assert open_fds() == before


def test_an_empty_pack_and_a_pack_of_empty_arrays_open(tmp_path):
    empty = write_pack(tmp_path / "e.pack", {})
    assert empty.size == 0 and open_pack(tmp_path / "e.pack", empty) == {}
    table = write_pack(tmp_path / "z.pack", {"a": np.zeros(0, np.uint32), "b": np.zeros((0, 384), np.float32)})
    assert table.size == 0
    opened = open_pack(tmp_path / "z.pack", table)
    assert opened["a"].shape == (0,) and opened["b"].shape == (0, 384) and opened["b"].dtype == np.float32
    assert verify_pack(tmp_path / "z.pack", table) == []


# -- damage


def damaged_pack(tmp_path):
    arrays = {"ids": np.arange(3000, dtype=np.uint64), "flags": np.ones(77, bool), "vectors": sample(np.dtype("<f2"), (40, 8))}
    return tmp_path / "p.pack", write_pack(tmp_path / "p.pack", arrays)


@pytest.mark.parametrize("name", ["ids", "flags", "vectors"])
@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_a_flipped_byte_is_reported_by_verify_for_its_array_only(tmp_path, name, where):
    path, table = damaged_pack(tmp_path)
    assert verify_pack(path, table) == []
    entry = table.arrays[name]
    position = {"first": entry.offset, "middle": (entry.offset + entry.end) // 2, "last": entry.end - 1}[where]
    with open(path, "r+b") as f:
        f.seek(position)
        byte = f.read(1)[0]
        f.seek(position)
        f.write(bytes([byte ^ 0x10]))
    problems = verify_pack(path, table)
    assert len(problems) == 1
    assert str(path) in problems[0] and repr(name) in problems[0] and "crc32c" in problems[0]
    assert open_pack(path, table)[name].shape == entry.shape  # opening does not read the data


@pytest.mark.parametrize("new_size", [0, 1, ALIGNMENT, "one short", "one long"])
def test_a_resized_file_is_refused_by_open_and_reported_by_verify(tmp_path, new_size):
    path, table = damaged_pack(tmp_path)
    size = {"one short": table.size - 1, "one long": table.size + 1}.get(new_size, new_size)
    os.truncate(path, size)
    with pytest.raises(CorruptPack, match=f"{path}.*has {size} bytes, its table says {table.size}") as raised:
        open_pack(path, table)
    assert isinstance(raised.value, ServiceError) and raised.value.path == path
    problems = verify_pack(path, table)
    assert problems and all(str(path) in problem for problem in problems)
    assert f"has {size} bytes" in problems[0]
    if size < table.size:  # the last array is cut off at least
        assert any("'vectors'" in problem for problem in problems[1:])


def test_a_missing_file_is_refused_and_reported(tmp_path):
    path, table = damaged_pack(tmp_path)
    path.unlink()
    with pytest.raises(CorruptPack, match="missing"):
        open_pack(path, table)
    assert verify_pack(path, table) == [f"{path}: cannot be opened (No such file or directory)"]


def test_verify_paces_every_byte_it_reads_and_can_be_stopped(tmp_path, monkeypatch):
    monkeypatch.setattr(packfile, "_CHUNK", 4096)
    path, table = damaged_pack(tmp_path)
    steps: list[int] = []
    assert verify_pack(path, table, pace=steps.append) == []
    assert sum(steps) == sum(entry.nbytes for entry in table.arrays.values()) and max(steps) <= 4096

    def stop(_n):
        raise InterruptedError("stopping")

    with pytest.raises(InterruptedError):
        verify_pack(path, table, pace=stop)


# -- the table as JSON


def test_table_survives_json(tmp_path):
    path, table = damaged_pack(tmp_path)
    text = orjson.dumps({"files": {"p.pack": table.to_json()}})
    parsed = PackTable.from_json(orjson.loads(text)["files"]["p.pack"], path)
    assert parsed == table
    assert table.to_json()["arrays"]["ids"] == {
        "dtype": "<u8", "shape": [3000], "offset": 0, "crc32c": f"{table.arrays['ids'].crc32c:08x}"
    }


def _table_json(**changes):
    table = {
        "bytes": 8192 + 40,
        "arrays": {
            "a": {"dtype": "<u8", "shape": [10], "offset": 0, "crc32c": "0000abcd"},
            "b": {"dtype": "<f4", "shape": [2, 5], "offset": 8192, "crc32c": "ffffffff"},
        },
    }
    for key, value in changes.items():
        if key == "bytes":
            table["bytes"] = value
        else:
            array, field = key.split("__")
            if value is _DROP:
                del table["arrays"][array][field]
            else:
                table["arrays"][array][field] = value
    return table


_DROP = object()


def test_a_valid_table_parses():
    table = PackTable.from_json(_table_json(), "p.pack")
    assert table.arrays["b"] == ArrayEntry("<f4", (2, 5), 8192, 0xFFFFFFFF)
    assert table.arrays["b"].end == table.size


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"a__dtype": ">u8"}, "dtype"),
        ({"a__dtype": "|O"}, "dtype"),
        ({"a__dtype": "<c8"}, "dtype"),
        ({"a__shape": [-1]}, "non-negative"),
        ({"a__shape": [True]}, "non-negative"),
        ({"a__shape": 10}, "shape must be a list"),
        ({"a__offset": 100}, "multiple of 4096"),
        ({"a__offset": -4096}, "non-negative"),
        ({"a__offset": 8192}, "overlaps"),
        ({"a__shape": [1025]}, "overlaps"),
        ({"b__shape": [2, 6]}, "past the file's"),
        ({"bytes": 8192}, "past the file's"),
        ({"bytes": "8232"}, "non-negative"),
        ({"a__crc32c": "abcd"}, "8 hex digits"),
        ({"a__crc32c": "0000abcg"}, "8 hex digits"),
        ({"a__crc32c": 43981}, "8 hex digits"),
        ({"a__crc32c": _DROP}, "exactly"),
        ({"a__extra": 1}, "exactly"),
    ],
)
def test_malformed_tables_are_refused_naming_the_file(changes, message):
    with pytest.raises(CorruptPack, match=message) as raised:
        PackTable.from_json(_table_json(**changes), "segments/7/ids.pack")
    assert "segments/7/ids.pack" in raised.value.message


@pytest.mark.parametrize("value", [None, [], {"bytes": 0}, {"bytes": 0, "arrays": []}, {"bytes": 0, "arrays": {"": {}}}])
def test_tables_of_the_wrong_shape_are_refused(value):
    with pytest.raises(CorruptPack):
        PackTable.from_json(value, "p.pack")


# -- property: any mix of arrays, added or streamed, round trips


_dtypes = st.sampled_from(ALL_DTYPES).map(np.dtype)
_shapes = st.lists(st.integers(0, 40), min_size=0, max_size=3).map(tuple)


@st.composite
def _pack_contents(draw):
    contents = []
    for i in range(draw(st.integers(0, 6))):
        dtype, shape = draw(_dtypes), draw(_shapes)
        array = sample(dtype, shape, seed=i)
        cuts = sorted(draw(st.lists(st.integers(0, shape[0]), max_size=3))) if shape else None
        contents.append((f"a{i}", array, cuts))  # cuts: stream in blocks split there
    return contents


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(contents=_pack_contents())
def test_any_mix_of_added_and_streamed_arrays_round_trips(tmp_path, contents):
    path = tmp_path / f"{len(os.listdir(tmp_path))}.pack"
    with PackWriter(path) as writer:
        for name, array, cuts in contents:
            if cuts is None:
                writer.add(name, array)
                continue
            writer.begin(name, array.dtype, array.shape[1:])
            for block in np.split(array, cuts):
                writer.append(block)
            writer.end()
        table = writer.finish()
    reparsed = PackTable.from_json(orjson.loads(orjson.dumps(table.to_json())), path)
    opened = open_pack(path, reparsed)
    for name, array, _cuts in contents:
        assert same_array(opened[name], array)
    assert verify_pack(path, reparsed) == []
