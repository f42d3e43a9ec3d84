"""Pack files: many numpy arrays in one file, mapped once and viewed without copies.

An immutable segment (docs/design/on-disk-segments.md §2.1) stores each structure (ids,
payloads, one vector, one graph, ...) as one pack: its arrays one after the other, each at
an offset that is a multiple of `ALIGNMENT` (4 KiB: page-aligned, so every view starts on
its own page and the kernels get aligned data), zero bytes in the gaps. The file has no
header. What is where lives in a `PackTable` that the segment keeps in its `segment.json`
(`PackTable.to_json` / `from_json`):

    {"bytes": 8200, "arrays": {"int_ids": {"dtype": "<u8", "shape": [1000], "offset": 0,
                                           "crc32c": "1a2b3c4d"}, ...}}

Keeping the table outside the file is what lets `PackWriter` stream an array whose length
it learns only at the end (1.5 GB of vectors) with plain sequential writes, and it puts
every shape, dtype and checksum of a segment in one small file that is parsed once.

Contracts:

- dtypes are fixed-size, little-endian numbers or bools (`STORAGE_DTYPES`); the writer
  converts big-endian input, refuses anything else (objects, strings, structured).
- `open_pack` maps the file once (`mmap`, read-only) and returns read-only, C-contiguous
  views of it: zero copies, one file descriptor per pack (CPython's mmap keeps a duplicate
  of the descriptor; ours is closed). The mapping and its descriptor are released when
  the last view is dropped. It checks the file's size against the table (O(1)), never the
  data: verifying every checksum reads the whole file, which `verify_pack` does in the
  background (§2.3).
- Every array has a crc32c (Castagnoli, the WAL's checksum: `google_crc32c`, already a
  dependency) of its bytes, computed from the writer's buffers while writing (no read-back).
  Gap bytes are not covered: nothing reads them. `google_crc32c` accepts only `bytes`
  (not memoryviews), so data goes through `bytes` chunks of `_CHUNK`; the same chunk is
  written and checksummed, and the writer's extra memory stays at one chunk whatever the
  array's size.
- `PackWriter.finish` fsyncs the file. Making its directory entry durable is the caller's
  job (`fsutil.fsync_dir`, once for a directory of packs, before `segment.json`).

Corruption found at open (a missing or resized file, a table that does not describe a
valid layout) raises `CorruptPack`, a `ServiceError` (500) whose message names the file.
"""

from __future__ import annotations

import math
import mmap
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import google_crc32c
import numpy as np

from pydrant.errors import ServiceError

ALIGNMENT = 4096
# Bytes per write() and checksum step. Large enough that the per-call overhead is noise
# (~1 ms of checksum per chunk), small enough to be an irrelevant amount of extra RAM.
_CHUNK = 8 << 20
_ZEROS = bytes(ALIGNMENT)

# Every dtype a pack may hold, as `np.dtype.str`: "|" for one byte (no byte order), "<" for
# little-endian. What the segment layout uses: bool flags, uint8 codes, uint16 float16-bit
# patterns, int32/uint32 slots and links, int64/uint64 offsets and ids, float16/32/64 values.
STORAGE_DTYPES = frozenset(
    np.dtype(code).str for code in ("?", "i1", "u1", "<i2", "<u2", "<i4", "<u4", "<i8", "<u8", "<f2", "<f4", "<f8")
)
_ENTRY_KEYS = frozenset({"dtype", "shape", "offset", "crc32c"})


class CorruptPack(ServiceError):
    """A pack file does not match its table (missing, wrong size) or the table is invalid.

    `path` is the file; the message names it, so the 500 a reader gets says which file of
    which segment to look at.
    """

    def __init__(self, path: Path | str, reason: str):
        super().__init__(f"pack file {path} is damaged: {reason}")
        self.path = Path(path)
        self.reason = reason


def storage_dtype(dtype: Any) -> np.dtype:
    """The little-endian dtype a pack stores `dtype` as; ValueError if a pack cannot hold it."""
    resolved = np.dtype(dtype)
    if resolved.byteorder == ">":
        resolved = resolved.newbyteorder("<")
    if resolved.str not in STORAGE_DTYPES:
        raise ValueError(f"dtype {resolved} cannot be stored in a pack file (allowed: {sorted(STORAGE_DTYPES)})")
    return resolved


# ---------------------------------------------------------------------------------------
# The table: where each array is.
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ArrayEntry:
    """One array of a pack: its dtype (`np.dtype.str`, in `STORAGE_DTYPES`), shape, byte
    offset in the file (a multiple of `ALIGNMENT`) and the crc32c of its bytes."""

    dtype: str
    shape: tuple[int, ...]
    offset: int
    crc32c: int

    @property
    def count(self) -> int:
        """Number of elements."""
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.count * np.dtype(self.dtype).itemsize

    @property
    def end(self) -> int:
        """Offset of the first byte after the array."""
        return self.offset + self.nbytes

    def to_json(self) -> dict[str, Any]:
        return {"dtype": self.dtype, "shape": list(self.shape), "offset": self.offset, "crc32c": f"{self.crc32c:08x}"}


@dataclass(frozen=True)
class PackTable:
    """Every array of one pack file, in file order, and the file's size in bytes."""

    size: int
    arrays: dict[str, ArrayEntry]

    def to_json(self) -> dict[str, Any]:
        """The table as stored in `segment.json`."""
        return {"bytes": self.size, "arrays": {name: entry.to_json() for name, entry in self.arrays.items()}}

    @classmethod
    def from_json(cls, value: Any, source: Path | str) -> PackTable:
        """Parse and check what `to_json` produced; `source` is the pack's path, named by
        the `CorruptPack` raised when the table is malformed or its regions are not a valid
        layout (misaligned, overlapping, or past `bytes`). O(arrays)."""
        if not isinstance(value, dict) or set(value) != {"bytes", "arrays"}:
            raise CorruptPack(source, "its table must be an object with exactly 'bytes' and 'arrays'")
        size = _non_negative_int(value["bytes"], source, "bytes")
        if not isinstance(value["arrays"], dict):
            raise CorruptPack(source, "its table's 'arrays' must be an object")
        arrays = {name: _entry_from_json(name, entry, source) for name, entry in value["arrays"].items()}
        _check_layout(arrays, size, source)
        return cls(size, arrays)


def _entry_from_json(name: Any, value: Any, source: Path | str) -> ArrayEntry:
    where = f"array {name!r}"
    if not isinstance(name, str) or not name:
        raise CorruptPack(source, f"{where}: an array name must be a non-empty string")
    if not isinstance(value, dict) or set(value) != _ENTRY_KEYS:
        raise CorruptPack(source, f"{where}: an entry must have exactly {sorted(_ENTRY_KEYS)}")
    dtype = value["dtype"]
    if dtype not in STORAGE_DTYPES:
        raise CorruptPack(source, f"{where}: dtype {dtype!r} is not one a pack stores")
    shape = value["shape"]
    if not isinstance(shape, list):
        raise CorruptPack(source, f"{where}: shape must be a list")
    dims = tuple(_non_negative_int(dim, source, f"{where} shape") for dim in shape)
    offset = _non_negative_int(value["offset"], source, f"{where} offset")
    if offset % ALIGNMENT:
        raise CorruptPack(source, f"{where}: offset {offset} is not a multiple of {ALIGNMENT}")
    crc_text = value["crc32c"]
    if not isinstance(crc_text, str) or len(crc_text) != 8:
        raise CorruptPack(source, f"{where}: crc32c must be 8 hex digits")
    try:
        crc = int(crc_text, 16)
    except ValueError:
        raise CorruptPack(source, f"{where}: crc32c must be 8 hex digits") from None
    return ArrayEntry(dtype, dims, offset, crc)


def _non_negative_int(value: Any, source: Path | str, what: str) -> int:
    if type(value) is not int or value < 0:  # bool is an int subclass: refused by `type is`
        raise CorruptPack(source, f"{what} must be a non-negative integer, not {value!r}")
    return value


def _check_layout(arrays: Mapping[str, ArrayEntry], size: int, source: Path | str) -> None:
    """Regions in increasing offset order, none overlapping the next, all inside the file."""
    previous_end, previous_name = 0, None
    for name, entry in sorted(arrays.items(), key=lambda item: (item[1].offset, item[1].nbytes)):
        if entry.offset < previous_end:
            raise CorruptPack(source, f"array {name!r} overlaps array {previous_name!r}")
        if entry.end > size:
            raise CorruptPack(source, f"array {name!r} ends at byte {entry.end}, past the file's {size} bytes")
        previous_end, previous_name = entry.end, name


# ---------------------------------------------------------------------------------------
# Writing.
# ---------------------------------------------------------------------------------------


@dataclass
class _Stream:
    """The array `begin` started: what `append` checks blocks against, and the running
    row count and checksum."""

    name: str
    dtype: np.dtype
    row_shape: tuple[int, ...]
    offset: int
    rows: int = 0
    crc: int = 0


class PackWriter:
    """Writes one new pack file front to back: whole arrays with `add`, arrays of unknown
    length with `begin` / `append` ... / `end`, then `finish` for the table.

    The file is created exclusively (an existing file is never overwritten: a pack is
    immutable once named by a `segment.json`). Leaving a `with PackWriter(...)` block
    without `finish()` (an exception, a stopped build) closes and removes the file; so does
    `abort()`. After a failed write (disk full) every call but `abort` raises. Not
    thread-safe: one writer per file, used by one thread at a time.
    """

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self._file = open(self.path, "xb")  # closed by finish() or abort()
        self._position = 0
        self._entries: dict[str, ArrayEntry] = {}
        self._stream: _Stream | None = None
        self._table: PackTable | None = None
        self._failed = False

    def __enter__(self) -> PackWriter:
        return self

    def __exit__(self, *exc_info) -> None:
        if self._table is None:
            self.abort()

    @property
    def size(self) -> int:
        """Bytes written so far (gaps included)."""
        return self._position

    def add(self, name: str, array: Any) -> ArrayEntry:
        """Write a whole array (converted to its little-endian storage dtype, C order;
        no copy when it already is one)."""
        self._check_can_start(name)
        source = np.asarray(array)
        data = np.asarray(source, dtype=storage_dtype(source.dtype), order="C")
        offset = self._align()
        crc = self._write(data, 0)
        entry = ArrayEntry(data.dtype.str, data.shape, offset, crc)
        self._entries[name] = entry
        return entry

    def begin(self, name: str, dtype: Any, row_shape: tuple[int, ...] = ()) -> None:
        """Start an array of rows shaped `row_shape` (() for a 1-d array) whose number is
        known at `end`; nothing else can be written until then."""
        self._check_can_start(name)
        if any(type(dim) is not int or dim < 0 for dim in row_shape):
            raise ValueError(f"row shape must be non-negative integers, not {row_shape!r}")
        self._stream = _Stream(name, storage_dtype(dtype), tuple(row_shape), self._align())

    def append(self, block: Any) -> None:
        """Write the next rows of the array `begin` started. `block` has shape
        (rows, *row_shape) and the stream's dtype (byte order aside): no silent casts, a
        float64 block for a float32 stream is a caller's bug."""
        stream = self._require_stream()
        data = np.asarray(block)
        if data.shape[1:] != stream.row_shape or data.ndim != len(stream.row_shape) + 1:
            raise ValueError(f"block of shape {data.shape} does not fit rows of shape {stream.row_shape}")
        if storage_dtype(data.dtype) != stream.dtype:
            raise ValueError(f"block of dtype {data.dtype} for an array of dtype {stream.dtype}")
        data = np.asarray(data, dtype=stream.dtype, order="C")
        stream.crc = self._write(data, stream.crc)
        stream.rows += data.shape[0]

    def end(self) -> ArrayEntry:
        """Close the array `begin` started (zero rows is allowed) and return its entry."""
        stream = self._require_stream()
        entry = ArrayEntry(stream.dtype.str, (stream.rows, *stream.row_shape), stream.offset, stream.crc)
        self._entries[stream.name] = entry
        self._stream = None
        return entry

    def finish(self) -> PackTable:
        """fsync and close the file; the table describing it (for `segment.json`)."""
        self._check_usable()
        if self._stream is not None:
            raise ValueError(f"array {self._stream.name!r} was begun and not ended")
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
        except BaseException:
            self._failed = True
            raise
        self._file.close()
        self._table = PackTable(self._position, dict(self._entries))
        return self._table

    def abort(self) -> None:
        """Close and remove the file (idempotent; a no-op after `finish`)."""
        if self._table is not None:
            return
        self._file.close()
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass

    # -- internals

    def _check_usable(self) -> None:
        if self._failed:
            raise ValueError(f"an earlier write to {self.path} failed; abort() the pack")
        if self._file.closed:
            raise ValueError(f"pack {self.path} is already finished or aborted")

    def _check_can_start(self, name: str) -> None:
        self._check_usable()
        if self._stream is not None:
            raise ValueError(f"array {self._stream.name!r} was begun and not ended")
        if not isinstance(name, str) or not name:
            raise ValueError("an array name must be a non-empty string")
        if name in self._entries:
            raise ValueError(f"array {name!r} is already in the pack")

    def _require_stream(self) -> _Stream:
        self._check_usable()
        if self._stream is None:
            raise ValueError("no array was begun")
        return self._stream

    def _align(self) -> int:
        """Pad with zeros to the next multiple of ALIGNMENT; the new position."""
        padding = -self._position % ALIGNMENT
        if padding:
            self._write_bytes(_ZEROS[:padding])
        return self._position

    def _write(self, data: np.ndarray, crc: int) -> int:
        """Append a C-contiguous array's bytes; `crc` extended over them."""
        flat = data.reshape(-1).view(np.uint8)
        for start in range(0, flat.size, _CHUNK):
            piece = flat[start : start + _CHUNK].tobytes()
            self._write_bytes(piece)
            crc = google_crc32c.extend(crc, piece)
        return crc

    def _write_bytes(self, piece: bytes) -> None:
        try:
            self._file.write(piece)
        except BaseException:
            self._failed = True  # the file position is unknown now: nothing more may follow
            raise
        self._position += len(piece)


# ---------------------------------------------------------------------------------------
# Reading and verifying.
# ---------------------------------------------------------------------------------------


def open_pack(path: Path | str, table: PackTable) -> dict[str, np.ndarray]:
    """Every array of the pack as a read-only view of one shared read-only mapping.

    Checks that the file exists and has exactly `table.size` bytes, nothing more (the
    checksums are `verify_pack`'s). CorruptPack otherwise. Cost: one open, one fstat, one
    mmap, one view per array; the descriptor the mapping keeps is the only one left open.
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise CorruptPack(path, "the file is missing") from None
    try:
        size = os.fstat(fd).st_size
        if size != table.size:
            raise CorruptPack(path, f"it has {size} bytes, its table says {table.size}")
        # mmap refuses empty files; a valid table of an empty file has only empty arrays.
        buffer: mmap.mmap | bytes = mmap.mmap(fd, 0, access=mmap.ACCESS_READ) if size else b""
    finally:
        os.close(fd)
    return {
        name: np.frombuffer(buffer, dtype=entry.dtype, count=entry.count, offset=entry.offset).reshape(entry.shape)
        for name, entry in table.arrays.items()
    }


def verify_pack(path: Path | str, table: PackTable, pace: Callable[[int], None] | None = None) -> list[str]:
    """Problems found by reading the whole file: a missing or resized file, arrays whose
    bytes do not match their crc32c. [] when the pack is intact.

    Reads with `pread` in `_CHUNK` pieces, not through a mapping: the caller's mappings
    and their residency are untouched, and a verification thread holds one chunk of RAM.
    `pace(n)` is called after each n bytes read: a background verifier sleeps there to
    throttle itself, or raises to stop. Every message names the file.
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as error:
        return [f"{path}: cannot be opened ({error.strerror})"]
    problems = []
    try:
        size = os.fstat(fd).st_size
        if size != table.size:
            problems.append(f"{path}: has {size} bytes, its table says {table.size}")
        for name, entry in table.arrays.items():
            if entry.end > size:
                problems.append(f"{path}: array {name!r} (bytes {entry.offset}..{entry.end}) is past the end of the file")
                continue
            crc = _crc_of_region(fd, entry.offset, entry.nbytes, pace)
            if crc != entry.crc32c:
                problems.append(
                    f"{path}: array {name!r} (bytes {entry.offset}..{entry.end}) has crc32c {crc:08x}, "
                    f"its table says {entry.crc32c:08x}"
                )
    finally:
        os.close(fd)
    return problems


def _crc_of_region(fd: int, offset: int, length: int, pace: Callable[[int], None] | None) -> int:
    crc = 0
    end = offset + length
    while offset < end:
        piece = os.pread(fd, min(_CHUNK, end - offset), offset)
        if not piece:  # the file shrank while being read: the caller reports the mismatch
            break
        crc = google_crc32c.extend(crc, piece)
        offset += len(piece)
        if pace is not None:
            pace(len(piece))
    return crc
