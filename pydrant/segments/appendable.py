"""The appendable segment: points in RocksDB, vectors mirrored in numpy for fast scans.

On disk (one RocksDB per segment directory, `rocksdict` in raw mode; docs/segments.md):

  column family     key                          value
  ids               encode_id(id) (9/17 bytes)   offset u32 LE, version u64 LE
  payload           offset u32 BE                CBOR of the payload dict (absent = {})
  vec.<hex(name)>   offset u32 BE                the vector, raw little-endian bytes:
                                                   dense: `size` values in the spec datatype
                                                   multi: rows of `size` values, concatenated
                                                   sparse: count u32, indices u32[count],
                                                           values f32[count]
  meta              b"version"                   u64 LE: highest op_num given to a write
                    b"persisted_version"         u64 LE: version at the last flush()
                    b"next_offset"               u32 LE: first slot never used

Offsets are big-endian so a column family iterates in slot order; the vector CF name is
the hex of the UTF-8 name because names are arbitrary strings (the unnamed vector "" is
`vec.`). Every write call is one RocksDB WriteBatch (atomic) with the RocksDB WAL on but
not synced: our own WAL is what makes an operation durable, and replaying it is harmless.

In memory: the id <-> slot maps, per-slot versions and live flags, and every vector (a
growing matrix per dense vector, per-slot lists for multi and sparse vectors). Payloads
stay in RocksDB and are read on demand. Opening rebuilds all of this from RocksDB.

Opening reads each column family through one RocksDB iterator a chunk at a time (about
4 MiB of vectors, 65,536 ids), decodes a chunk with one numpy view of its joined bytes
(ids, versions, slots and dense rows; multi and sparse vectors one by one), then gives the
freed heap back with glibc's `malloc_trim(0)`. So an open costs what the segment keeps
plus about one chunk: 1M vectors of 384 float32 (1,465 MiB) open with a peak of +1.6 GiB
and stay there, where materialising whole column families peaked at +5.1 GiB and, glibc
keeping the freed blocks, stayed at +3.6 GiB (docs/design/on-disk-segments.md, step P0).
A read error (a block failing its checksum) fails the open; rocksdict's `items()` would
end the scan there silently and the open would lose the rest of the column family.
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import itertools
import os
import shutil
import struct
import threading
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, TypeGuard, cast
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence

import cbor2
import numpy as np
from rocksdict import AccessType, Checkpoint, DBCompactionStyle, Options, Rdict, ReadOptions, UniversalCompactOptions, WriteBatch, WriteOptions

from pydrant.errors import BadInput, ServiceError
from pydrant.segments import deadline, filter_plan, scoring
from pydrant.segments.base import (
    ExportedPoint,
    PayloadSelection,
    PlannedPredicate,
    Predicate,
    SegmentHit,
    VectorSelection,
)
from pydrant.segments.field_index import (
    DatetimeIndex,
    FieldIndex,
    FloatIndex,
    IntegerIndex,
    MapIndex,
    PayloadIndexes,
    build_indexes,
)
from pydrant.segments.scoring import ScoringQuery, VectorSpace
from pydrant.segments.ids import UUID_KEY_BASE, decode_id, encode_id, id_sort_key, normalize_id
from pydrant.segments.types import (
    DenseVectorSpec,
    PointContext,
    PointId,
    PointInput,
    Record,
    SparseVector,
    VectorSchema,
    VectorValue,
)

CF_IDS = "ids"
CF_PAYLOAD = "payload"
CF_META = "meta"
VECTOR_CF_PREFIX = "vec."

META_VERSION = b"version"
META_PERSISTED_VERSION = b"persisted_version"
META_NEXT_OFFSET = b"next_offset"

_ID_ENTRY = struct.Struct("<IQ")  # ids CF value: offset, version
_OFFSET_KEY = struct.Struct(">I")  # big-endian so keys sort in slot order
_U64 = struct.Struct("<Q")
_U32 = struct.Struct("<I")

_INITIAL_CAPACITY = 64
# Opening reads each column family in chunks (`_RocksStore.iter_chunks`) so that its
# transient memory is one chunk, not the whole family: dense vectors in chunks of about
# this many bytes, ids (9/17-byte keys, 12-byte values) and varying-size vectors (decoded
# one by one into objects the column keeps) in chunks of so many entries.
_LOAD_CHUNK_BYTES = 4 << 20
_ID_CHUNK_ITEMS = 65536
_LIST_CHUNK_ITEMS = 4096
# An empty payload is stored as no key at all: most points in many collections have none.
_EMPTY_PAYLOAD = b""


def vector_cf_name(name: str) -> str:
    """The column family of a named vector; hex keeps any name a valid, distinct CF name."""
    return VECTOR_CF_PREFIX + name.encode("utf-8").hex()


def _offset_key(offset: int) -> bytes:
    return _OFFSET_KEY.pack(offset)


# ---------------------------------------------------------------------------------------
# Vector columns: one per named vector, holding every slot's vector in memory.
# ---------------------------------------------------------------------------------------


class _Column(ABC):
    """One named vector across slots: a `present` flag per slot plus the values.

    Values written to a slot are never modified afterwards (a point whose vector changes
    moves to a new slot), which is what lets readers keep arrays without copying them.
    """

    def __init__(self, capacity: int):
        self.present = np.zeros(capacity, dtype=bool)

    def grow(self, capacity: int) -> None:
        # A new array, not an in-place resize: readers may still hold the old one.
        present = np.zeros(capacity, dtype=bool)
        present[: len(self.present)] = self.present
        self.present = present

    def has(self, offset: int) -> bool:
        return bool(self.present[offset])

    def set(self, offset: int, value) -> None:
        self.present[offset] = True

    def clear(self, offset: int) -> None:
        self.present[offset] = False

    def count(self, live: np.ndarray) -> int:
        n = len(live)
        return int(np.count_nonzero(self.present[:n] & live))

    @abstractmethod
    def stored_bytes(self, live: np.ndarray) -> int:
        """Bytes of the vectors of the live slots (`live` covers the used slots)."""

    @abstractmethod
    def coerce(self, name: str, value) -> VectorValue:
        """The value as this column stores it (dtype, shape); BadInput if it cannot be."""

    @abstractmethod
    def get(self, offset: int) -> VectorValue:
        """A copy of the slot's vector."""

    @abstractmethod
    def encode(self, value: Any) -> bytes:
        """The on-disk bytes of a value `coerce` returned (each column its own kind)."""

    @abstractmethod
    def load(self, slots: np.ndarray, blobs: Sequence[bytes]) -> None:
        """Fill `slots` (int64, one per blob) from their on-disk bytes: on open, called
        once per chunk of the column family."""

    @abstractmethod
    def load_chunk_items(self) -> int:
        """How many stored vectors to read per chunk on open (about `_LOAD_CHUNK_BYTES`)."""

    @abstractmethod
    def ram_bytes(self) -> int: ...


class _DenseColumn(_Column):
    """A single dense vector per slot: rows of one growing matrix in the spec's datatype."""

    def __init__(self, spec: DenseVectorSpec, capacity: int):
        super().__init__(capacity)
        self.spec = spec
        self.dtype = spec.dtype
        self.disk_dtype = self.dtype.newbyteorder("<")
        self.matrix = np.zeros((capacity, spec.size), dtype=self.dtype)

    def grow(self, capacity: int) -> None:
        super().grow(capacity)
        matrix = np.zeros((capacity, self.spec.size), dtype=self.dtype)
        matrix[: len(self.matrix)] = self.matrix
        self.matrix = matrix

    def coerce(self, name: str, value) -> np.ndarray:
        array = np.asarray(value, dtype=self.dtype)
        if array.shape != (self.spec.size,):
            raise BadInput(f"Wrong input: vector `{name}` must have shape ({self.spec.size},), got {array.shape}")
        return array

    def set(self, offset: int, value: np.ndarray) -> None:
        self.matrix[offset] = value
        super().set(offset, value)

    def get(self, offset: int) -> np.ndarray:
        return self.matrix[offset].copy()

    def encode(self, value: np.ndarray) -> bytes:
        return value.astype(self.disk_dtype, copy=False).tobytes()

    def load(self, slots: np.ndarray, blobs: Sequence[bytes]) -> None:
        if not len(slots):
            return
        # One copy of the chunk's bytes, viewed as rows: no per-vector array.
        joined = b"".join(blobs)
        if len(joined) != self._row_bytes() * len(slots):
            raise ServiceError(f"stored dense vectors do not have {self.spec.size} values of {self.dtype}")
        rows = np.frombuffer(joined, dtype=self.disk_dtype).reshape(len(slots), self.spec.size)
        self.matrix[slots] = rows
        self.present[slots] = True

    def load_chunk_items(self) -> int:
        return max(1, _LOAD_CHUNK_BYTES // self._row_bytes())

    def _row_bytes(self) -> int:
        return self.spec.size * self.dtype.itemsize

    def ram_bytes(self) -> int:
        return self.matrix.nbytes + self.present.nbytes

    def stored_bytes(self, live: np.ndarray) -> int:
        return self.count(live) * self.spec.size * self.dtype.itemsize


class _ListColumn(_Column):
    """Vectors of varying length (multi and sparse): one Python list entry per slot."""

    def __init__(self, capacity: int):
        super().__init__(capacity)
        self.values: list = [None] * capacity

    def grow(self, capacity: int) -> None:
        super().grow(capacity)
        self.values.extend([None] * (capacity - len(self.values)))

    def stored_bytes(self, live: np.ndarray) -> int:
        rows = np.flatnonzero(self.present[: len(live)] & live)
        return sum(_value_bytes(self.values[r]) for r in rows.tolist())

    def set(self, offset: int, value) -> None:
        self.values[offset] = value
        super().set(offset, value)

    def clear(self, offset: int) -> None:
        # The value itself stays: a reader may hold it, and it is never modified.
        super().clear(offset)

    def load(self, slots: np.ndarray, blobs: Sequence[bytes]) -> None:
        for slot, blob in zip(slots.tolist(), blobs):
            self.set(slot, self.decode(blob))

    def load_chunk_items(self) -> int:
        # Sizes vary per point; every value read is decoded into an object the column
        # keeps, so a chunk is a small share of what the column ends up holding anyway.
        return _LIST_CHUNK_ITEMS

    @abstractmethod
    def decode(self, blob: bytes) -> VectorValue: ...


class _MultiColumn(_ListColumn):
    """A multi-vector per slot: a (rows, size) array in the spec's datatype."""

    def __init__(self, spec: DenseVectorSpec, capacity: int):
        super().__init__(capacity)
        self.spec = spec
        self.dtype = spec.dtype
        self.disk_dtype = self.dtype.newbyteorder("<")

    def coerce(self, name: str, value) -> np.ndarray:
        array = np.array(value, dtype=self.dtype)  # a private copy: stored values never change
        if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] != self.spec.size:
            raise BadInput(f"Wrong input: multivector `{name}` must have shape (n, {self.spec.size}), got {array.shape}")
        return array

    def get(self, offset: int) -> np.ndarray:
        return self.values[offset].copy()

    def encode(self, value: np.ndarray) -> bytes:
        return value.astype(self.disk_dtype, copy=False).tobytes()

    def decode(self, blob: bytes) -> np.ndarray:
        flat = np.frombuffer(blob, dtype=self.disk_dtype).astype(self.dtype)
        return flat.reshape(-1, self.spec.size)

    def ram_bytes(self) -> int:
        return self.present.nbytes + sum(v.nbytes + 112 for v in self.values if v is not None)


class _SparseColumn(_ListColumn):
    """A sparse vector per slot: uint32 indices and float32 values."""

    def coerce(self, name: str, value) -> SparseVector:
        if isinstance(value, Mapping):
            indices, values = value["indices"], value["values"]
        elif isinstance(value, SparseVector):
            indices, values = value.indices, value.values
        else:
            raise BadInput(f"Wrong input: vector `{name}` is sparse: expected indices and values")
        vector = SparseVector(np.array(indices, dtype=np.uint32), np.array(values, dtype=np.float32))
        if vector.indices.ndim != 1 or vector.indices.shape != vector.values.shape:
            raise BadInput(f"Wrong input: sparse vector `{name}` needs as many indices as values")
        return vector

    def get(self, offset: int) -> SparseVector:
        vector = self.values[offset]
        return SparseVector(vector.indices.copy(), vector.values.copy())

    def encode(self, value: SparseVector) -> bytes:
        count = _U32.pack(len(value.indices))
        return count + value.indices.astype("<u4", copy=False).tobytes() + value.values.astype("<f4", copy=False).tobytes()

    def decode(self, blob: bytes) -> SparseVector:
        (count,) = _U32.unpack_from(blob)
        indices = np.frombuffer(blob, dtype="<u4", count=count, offset=4).astype(np.uint32)
        values = np.frombuffer(blob, dtype="<f4", count=count, offset=4 + 4 * count).astype(np.float32)
        return SparseVector(indices, values)

    def ram_bytes(self) -> int:
        return self.present.nbytes + sum(v.indices.nbytes + v.values.nbytes + 200 for v in self.values if v is not None)


def _value_bytes(value: VectorValue) -> int:
    return value.indices.nbytes + value.values.nbytes if isinstance(value, SparseVector) else value.nbytes


def _make_column(schema: VectorSchema, name: str, capacity: int) -> _Column:
    if name in schema.sparse:
        return _SparseColumn(capacity)
    spec = schema.dense[name]
    return _MultiColumn(spec, capacity) if spec.multivector else _DenseColumn(spec, capacity)


# ---------------------------------------------------------------------------------------
# Sorted ids, for read_ids paging.
# ---------------------------------------------------------------------------------------


class _SortedKeys:
    """The live ids' sort keys in ascending order, kept sorted lazily.

    New keys are appended and the list is re-sorted at the next read: timsort finds the
    sorted run plus the short unsorted tail, so this costs about one pass, not a full
    sort. Removed keys stay until the next rebuild; readers skip keys that are not live.
    """

    def __init__(self, sorted_keys: Iterable[int] = ()):
        self._keys = list(sorted_keys)
        self._unsorted = False
        self._removed = 0

    def add(self, key: int) -> None:
        self._keys.append(key)
        self._unsorted = True

    def remove(self, key: int) -> None:
        self._removed += 1

    def iter_from(self, start_key: int | None, live: Mapping[int, int]) -> Iterator[int]:
        """Live keys >= start_key in order. The caller holds the segment lock throughout."""
        if self._unsorted or self._removed > len(self._keys) // 2:
            self._rebuild(live)
        start = 0 if start_key is None else bisect.bisect_left(self._keys, start_key)
        return (key for key in itertools.islice(self._keys, start, None) if key in live)

    def _rebuild(self, live: Mapping[int, int]) -> None:
        self._keys.sort()
        if self._removed:
            # Drop removed keys, and the duplicate a deleted-then-reinserted id leaves
            # behind (without removals no key can be in the list twice).
            self._keys = [key for key in dict.fromkeys(self._keys) if key in live]
        self._unsorted = False
        self._removed = 0


# ---------------------------------------------------------------------------------------
# RocksDB access.
# ---------------------------------------------------------------------------------------


# Files one database keeps open (RocksDB's sharded table cache holds about
# `max_open_files - 10` SST files; a table beyond that is opened when read and closed
# again). A node opens one database per segment: several segments per collection, many
# collections. Universal compaction keeps a column family to a handful of files, so this
# cap is rarely reached; it keeps a backlog from exhausting the process's descriptors
# (docs/segments.md, "RocksDB options and open files").
_MAX_OPEN_FILES = 64
# Sorted runs (SST files) in a column family that start a compaction merging the newest.
_COMPACTION_TRIGGER = 4
# A column family with more SST files than this is compacted whole (into one file) when
# the store opens and after a flush. Universal compaction keeps far fewer; this repairs a
# database written with level compaction (one tiny file per flush left at the bottom
# level) and catches background compaction that fell behind.
_MAX_FILES_PER_CF = 32
_NUM_LEVELS = 7  # RocksDB's default num_levels


def _cf_options() -> Options:
    """The options of every column family: universal compaction, so small files merge.

    Each flush writes one small SST file per column family with writes. Keys mostly come
    in ascending order (new slots), so with level compaction those files overlap nothing
    and are moved down a level instead of merged: they piled up without bound. Universal
    compaction merges sorted runs of similar size (never a trivial move), which keeps a
    column family at about `_COMPACTION_TRIGGER` + log2(flushes) files.
    """
    options = Options(raw_mode=True)
    options.set_compaction_style(DBCompactionStyle.universal())
    universal = UniversalCompactOptions()
    universal.min_merge_width = 2
    universal.max_size_amplification_percent = 200
    options.set_universal_compaction_options(universal)
    options.set_level_zero_file_num_compaction_trigger(_COMPACTION_TRIGGER)
    return options


def _rocks_options() -> Options:
    options = _cf_options()  # also the default column family's
    options.create_if_missing(True)
    options.create_missing_column_families(True)
    options.set_max_open_files(_MAX_OPEN_FILES)
    options.set_keep_log_file_num(2)  # RocksDB's info LOG files, not its WAL
    options.set_max_log_file_size(1 << 20)
    return options


def _bulk_read_options() -> ReadOptions:
    """Read options of a scan that reads each block once: the blocks stay out of the
    block cache (RocksDB's advice for bulk scans), read ahead 2 MiB at a time."""
    options = ReadOptions()
    options.fill_cache(False)  # type: ignore[call-arg]  # the stub omits the flag
    options.set_readahead_size(2 << 20)
    return options


def _probe_writable(directory: Path) -> None:
    """Raise OSError unless a small file can be written, synced and removed in `directory`."""
    probe = directory / f".probe-{os.getpid()}-{threading.get_ident()}"
    fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, b"pydrant write probe\n" * 256)
        os.fsync(fd)
    finally:
        os.close(fd)
        try:
            os.unlink(probe)
        except OSError:
            pass


class _RocksStore:
    """One RocksDB with named column families, and the handles rocksdict needs released.

    rocksdict keeps the database (and its LOCK file) open while any column family object
    or handle is alive, so `close()` drops every one of them before closing.
    """

    def __init__(self, path: Path, cf_names: Iterable[str], read_only: bool = False):
        existing = Rdict.list_cf(str(path), Options(raw_mode=True)) if (path / "CURRENT").exists() else []
        # RocksDB refuses to open unless every existing column family is listed.
        names = dict.fromkeys([*existing, *cf_names])
        names.pop("default", None)
        access = AccessType.read_only() if read_only else AccessType.read_write()
        db = Rdict(str(path), _rocks_options(), column_families={n: _cf_options() for n in names}, access_type=access)
        self._db: Rdict | None = db  # None once closed
        self._tables = {name: db.get_column_family(name) for name in names}
        self._handles = {name: db.get_column_family_handle(name) for name in names}
        self._write_options = WriteOptions()  # RocksDB WAL on, not synced
        self._synced_write = WriteOptions()
        self._synced_write.sync = True
        if not read_only:
            self.compact_fragmented()

    def new_batch(self) -> WriteBatch:
        return WriteBatch(raw_mode=True)

    def put(self, batch: WriteBatch, cf: str, key: bytes, value: bytes) -> None:
        batch.put(key, value, self._handles[cf])

    def delete(self, batch: WriteBatch, cf: str, key: bytes) -> None:
        batch.delete(key, self._handles[cf])

    def write(self, batch: WriteBatch, sync: bool = False) -> None:
        db = self._db
        if db is None:
            raise ServiceError("the segment's RocksDB is closed")
        db.write(batch, self._synced_write if sync else self._write_options)

    def get(self, cf: str, key: bytes) -> bytes | None:
        return self._tables[cf].get(key)

    def get_many(self, cf: str, keys: list[bytes]) -> list[bytes | None]:
        if not keys:
            return []
        # Given a list, rocksdict's `get` returns a list (its stub only says Any).
        return cast("list[bytes | None]", self._tables[cf].get(cast("list[str | int | float | bytes | bool]", keys)))

    def items(self, cf: str) -> list[tuple[bytes, bytes]]:
        """Every (key, value) of a (small) column family, in key order; raises on a read
        error (rocksdict's own `items()` just ends there). Materialised so no iterator
        outlives the call (it would keep the database open)."""
        return [pair for keys, values in self.iter_chunks(cf, 65536) for pair in zip(keys, values)]

    def iter_chunks(self, cf: str, max_items: int) -> Generator[tuple[list[bytes], list[bytes]], None, None]:
        """The column family's entries in key order, as (keys, values) lists of at most
        `max_items` entries each, read through one RocksDB iterator.

        Only one chunk is materialised at a time, so reading a large column family costs
        about a chunk of memory beyond what the caller keeps (`items` holds all of it at
        once: 1M vectors of 384 floats are 1.5 GB of `bytes`). A scan stopped by a read
        error raises it rather than ending early. The iterator keeps the database open
        while it lives: exhaust the generator or `close()` it."""
        iterator = self._tables[cf].iter(_bulk_read_options())
        # rocksdict's raw iterator, not `items()`: its per-entry cost is a third of
        # items()'s on small entries (measured: 1M id entries in 0.37 s of CPU, not 1.0).
        valid, key, value, advance = iterator.valid, iterator.key, iterator.value, iterator.next
        try:
            iterator.seek_to_first()
            while valid():
                keys: list[bytes] = []
                values: list[bytes] = []
                for _ in range(max_items):
                    keys.append(key())
                    values.append(value())
                    advance()
                    if not valid():
                        break
                yield keys, values
                del keys, values  # before the next chunk is read
            iterator.status()  # an iterator also stops being valid on an I/O error
        finally:
            del iterator, valid, key, value, advance

    def flush_all(self) -> None:
        """Write every column family's memtable to SST files and wait for it."""
        for table in self._tables.values():
            table.flush(True)
        self.compact_fragmented()

    def sst_file_count(self, cf: str) -> int:
        table = self._tables[cf]
        return sum(table.property_int_value(f"rocksdb.num-files-at-level{n}") or 0 for n in range(_NUM_LEVELS))

    def compact_fragmented(self) -> None:
        """Compact, whole, each column family holding more than `_MAX_FILES_PER_CF` files."""
        for name, table in self._tables.items():
            if self.sst_file_count(name) > _MAX_FILES_PER_CF:
                table.compact_range(None, None)

    def checkpoint(self, target: Path) -> None:
        """A consistent copy of the database in `target` (which must not exist): RocksDB
        hard-links its immutable SST files and copies the rest (`Checkpoint`)."""
        if self._db is None:
            raise ServiceError("the segment's RocksDB is closed")
        Checkpoint(self._db).create_checkpoint(str(target))

    def memtable_bytes(self) -> int:
        total = 0
        for table in self._tables.values():
            total += table.property_int_value("rocksdb.cur-size-all-mem-tables") or 0
        return total

    def close(self) -> None:
        """Close the database; raises the first error, but always lets go of every handle.

        rocksdict's close flushes first, and after an I/O error that flush fails: the
        handles must still be dropped, or the database (and its LOCK) stays open in this
        process and can never be opened again to recover."""
        errors: list[Exception] = []
        try:
            for table in self._tables.values():
                try:
                    table.close()
                except Exception as exc:
                    errors.append(exc)
            try:
                if self._db is not None:
                    self._db.close()
            except Exception as exc:
                errors.append(exc)
        finally:
            self._tables.clear()
            self._handles.clear()
            self._db = None
        if errors:
            raise errors[0]


# ---------------------------------------------------------------------------------------
# The segment.
# ---------------------------------------------------------------------------------------


class _PendingWrite:
    """One write call in the making: its RocksDB batch, the in-memory changes to make once
    the batch is written, and the slots it has taken."""

    def __init__(self, store: _RocksStore, next_offset: int):
        self.store = store
        self.batch = store.new_batch()
        self.next_offset = next_offset
        self.changed = 0
        self._after_write: list[tuple[Callable, tuple]] = []

    def allocate_slot(self) -> int:
        offset = self.next_offset
        self.next_offset += 1
        return offset

    def then(self, change: Callable, *args) -> None:
        """Make `change(*args)` in memory after the batch is durable in RocksDB."""
        self._after_write.append((change, args))
        self.changed += 1

    def apply_in_memory(self) -> None:
        for change, args in self._after_write:
            change(*args)


class AppendableSegment:
    """A `Segment` (see `base.py` for the contract) stored in RocksDB with numpy mirrors."""

    # -- lifecycle --

    @classmethod
    def create(cls, path: str | os.PathLike, schema: VectorSchema) -> AppendableSegment:
        """A new, empty segment in `path`, which must not exist or be empty."""
        path = Path(path)
        if path.exists() and any(path.iterdir()):
            raise FileExistsError(f"segment directory {path} is not empty")
        path.mkdir(parents=True, exist_ok=True)
        segment = cls(path, schema)
        segment._write_meta_initial()
        return segment

    @classmethod
    def open(cls, path: str | os.PathLike, schema: VectorSchema) -> AppendableSegment:
        """Open an existing segment and rebuild its in-memory state from RocksDB."""
        path = Path(path)
        if not (path / "CURRENT").exists():
            raise FileNotFoundError(f"no segment in {path}")
        segment = cls(path, schema)
        try:
            segment._load()
        except BaseException:
            # Let go of RocksDB (and its LOCK) now, so the open can be retried in this
            # process; the stored data is untouched. The load's error is the one to raise.
            with contextlib.suppress(Exception):
                segment.close()
            raise
        return segment

    def __init__(self, path: Path, schema: VectorSchema):
        # Use create() or open(); this only sets up empty state and opens RocksDB.
        self._path = path
        self._schema = schema
        self._lock = threading.RLock()
        self._flush_lock = threading.Lock()  # one flush at a time; held without `_lock`
        self._reset_memory(_INITIAL_CAPACITY)
        self._store: _RocksStore | None = _RocksStore(path, self._cf_names())
        # While the optimizer rebuilds this segment elsewhere: ids of points changed since
        # it started copying them (see `start_tracking`).
        self._tracked: set | None = None
        self.writes = 0  # write calls committed; lets readers cache what writes invalidate

    def _cf_names(self) -> list[str]:
        return [CF_IDS, CF_PAYLOAD, CF_META, *(vector_cf_name(n) for n in self._schema.names())]

    def _reset_memory(self, capacity: int) -> None:
        self._version = 0
        self._persisted_version = 0
        self._next_offset = 0
        self._capacity = capacity
        self._offset_by_key: dict[int, int] = {}  # id_sort_key -> slot of the live point
        # slot -> id living (or that lived) there. Slots past `_next_offset` hold None;
        # everything here reads only used slots, so the list is typed by what those hold.
        self._ids: list[PointId] = cast("list[PointId]", [None] * capacity)
        self._versions = np.zeros(capacity, dtype=np.uint64)
        self._live = np.zeros(capacity, dtype=bool)
        self._sorted = _SortedKeys()
        self._columns: dict[str, _Column] = {n: _make_column(self._schema, n, capacity) for n in self._schema.names()}
        self._indexes = PayloadIndexes(capacity)

    def _write_meta_initial(self) -> None:
        store = self._open_store()
        batch = store.new_batch()
        for key, value in self._meta_entries(0, 0).items():
            store.put(batch, CF_META, key, value)
        store.put(batch, CF_META, META_PERSISTED_VERSION, _U64.pack(0))
        store.write(batch, sync=True)

    def _meta_entries(self, version: int, next_offset: int) -> dict[bytes, bytes]:
        return {META_VERSION: _U64.pack(version), META_NEXT_OFFSET: _U32.pack(next_offset)}

    def flush(self, bound: int | None = None) -> int:
        # `bound` limits which deletions of a non-appendable segment become durable
        # (base.SegmentLifecycle.flush); an appendable segment persists everything.
        with self._flush_lock:
            with self._lock:
                store = self._open_store()
                version = self._version
                if version == self._persisted_version:
                    return version
            # Outside the segment lock: reads and writes go on while RocksDB flushes.
            # Everything up to `version` is already in the memtables being flushed.
            store.flush_all()
            with self._lock:
                batch = store.new_batch()
                store.put(batch, CF_META, META_PERSISTED_VERSION, _U64.pack(version))
                store.write(batch, sync=True)
                self._persisted_version = version
            return version

    def close(self) -> None:
        with self._flush_lock, self._lock:
            store, self._store = self._store, None
            if store is not None:
                store.close()

    def checkpoint(self, target: Path) -> None:
        """Copy the segment's store, consistent and flushed, into `target` (which must not
        exist), for a snapshot: SST files are hard-linked, the rest copied. The caller
        holds the collection's apply lock, so no write is half-committed."""
        with self._flush_lock, self._lock:
            if self._store is None:
                raise ServiceError(f"segment {self._path.name} is closed")
            self._store.checkpoint(Path(target))

    def reopen_store(self) -> None:
        """Close RocksDB and open it again, in place: after a failed write or flush RocksDB
        refuses every later write until it is reopened. The in-memory state is kept: it
        only ever changes after a write is committed (`_commit`), so it equals what the
        reopened database recovers, and readers holding this segment carry on."""
        _probe_writable(self._path)  # still failing: keep the old store, which serves reads
        with self._flush_lock, self._lock:
            store, self._store = self._store, None
            if store is not None:
                try:
                    store.close()
                except Exception:  # the error being recovered from; every handle is let go
                    pass
            try:
                self._store = _RocksStore(self._path, self._cf_names())
            except Exception:
                # Still failing: open it read-only (no LOCK, no writes) so reads go on
                # until a later retry opens it for writing.
                try:
                    self._store = _RocksStore(self._path, self._cf_names(), read_only=True)
                except Exception:
                    pass
                raise

    def drop(self) -> None:
        self.close()
        shutil.rmtree(self._path, ignore_errors=True)

    def _open_store(self) -> _RocksStore:
        if self._store is None:
            with self._lock:  # `reopen_store` holds it while the store is swapped: wait
                if self._store is not None:
                    return self._store
            raise ServiceError(f"segment {self._path} is closed")
        return self._store

    # -- loading --

    def _load(self) -> None:
        """Rebuild the in-memory state from RocksDB, one chunk of each column family at a
        time (`_RocksStore.iter_chunks`), then give the freed heap back to the OS.

        What an open costs is what the segment keeps (the vector matrices, ~100 bytes of id
        structures per point) plus about one chunk: it used to materialise every column
        family whole, then join the vectors into one more copy, so opening 1M vectors of
        384 floats peaked at 3.5x their size and, with glibc keeping the freed blocks, the
        process stayed there (design doc on-disk-segments.md, step P0)."""
        store = self._open_store()
        meta = dict(store.items(CF_META))
        next_offset = _U32.unpack(meta[META_NEXT_OFFSET])[0]
        self._reset_memory(max(_INITIAL_CAPACITY, _next_capacity(next_offset)))
        self._next_offset = next_offset
        self._persisted_version = _U64.unpack(meta.get(META_PERSISTED_VERSION, _U64.pack(0)))[0]
        self._version = _U64.unpack(meta[META_VERSION])[0]
        try:
            self._load_ids(store)
            for name, column in self._columns.items():
                self._load_column(store, name, column)
        except ServiceError as exc:
            raise ServiceError(f"segment {self._path} cannot be loaded: {exc}") from exc
        finally:
            _release_freed_heap()

    def _load_ids(self, store: _RocksStore) -> None:
        """The id maps, versions and live flags from the ids column family, which iterates
        in encode_id order, the sort-key order."""
        sort_keys: list[int] = []
        ids_by_slot = np.full(self._capacity, None, dtype=object)
        chunks = store.iter_chunks(CF_IDS, _ID_CHUNK_ITEMS)
        try:
            for encoded_ids, entries in chunks:
                point_ids, keys = _decode_ids(encoded_ids)
                slots, versions = _decode_id_entries(entries)
                if len(slots) and int(slots.max()) >= self._next_offset:
                    raise ServiceError(
                        f"an id is stored at slot {int(slots.max())}, past the segment's {self._next_offset} used slots"
                    )
                self._versions[slots] = versions
                self._live[slots] = True
                ids_by_slot[slots] = _object_array(point_ids)
                self._offset_by_key.update(zip(keys, slots.tolist()))
                sort_keys.extend(keys)
                del encoded_ids, entries
        finally:
            chunks.close()
        self._ids = ids_by_slot.tolist()  # slots that hold no live point stay None
        self._sorted = _SortedKeys(sort_keys)

    def _load_column(self, store: _RocksStore, name: str, column: _Column) -> None:
        """A vector column's values of the live slots (a stored vector of a slot that is not
        live is skipped: deletes remove both in one batch, so none is expected)."""
        n = self._next_offset
        chunks = store.iter_chunks(vector_cf_name(name), column.load_chunk_items())
        try:
            for keys, blobs in chunks:
                slots = _decode_slot_keys(keys)
                keep = np.zeros(len(slots), dtype=bool)
                used = slots < n
                keep[used] = self._live[slots[used]]
                if not keep.all():
                    blobs = list(itertools.compress(blobs, keep.tolist()))
                    slots = slots[keep]
                column.load(slots, blobs)
                del keys, blobs  # so a chunk is let go of before the next one is read
        finally:
            chunks.close()

    # -- properties --

    @property
    def path(self) -> Path:
        return self._path

    @property
    def schema(self) -> VectorSchema:
        return self._schema

    @property
    def version(self) -> int:
        return self._version

    @property
    def persisted_version(self) -> int:
        return self._persisted_version

    @property
    def point_count(self) -> int:
        return len(self._offset_by_key)

    # -- writes --

    def upsert_points(self, op_num: int, points: Sequence[PointInput]) -> int:
        prepared = [self._prepare_point(point) for point in _last_per_id(points, lambda p: p.id)]
        with self._lock:
            pending = self._begin()
            for key, point_id, vectors, payload_blob, payload in prepared:
                old = self._offset_by_key.get(key)
                if old is not None and self._versions[old] >= op_num:
                    continue
                if old is not None and self._tracked is not None:
                    self._tracked.add(point_id)
                self._place_point(pending, op_num, key, point_id, vectors, payload_blob, old, payload)
            return self._commit(pending, op_num)

    def delete_points(self, op_num: int, ids: Iterable[PointId]) -> int:
        keys = _unique_keys(ids)
        with self._lock:
            pending = self._begin()
            for key in keys:
                offset = self._writable_slot(key, op_num)
                if offset is None:
                    continue
                pending.store.delete(pending.batch, CF_IDS, encode_id(self._ids[offset]))
                self._erase_slot_on_disk(pending, offset)
                pending.then(self._forget_point, key, offset)
            return self._commit(pending, op_num)

    def update_payload(self, op_num: int, ids: Iterable[PointId], transform: Callable[[dict], dict]) -> int:
        keys = _unique_keys(ids)
        with self._lock:
            pending = self._begin()
            offsets = [o for o in (self._writable_slot(key, op_num) for key in keys) if o is not None]
            blobs = pending.store.get_many(CF_PAYLOAD, [_offset_key(o) for o in offsets])
            for offset, blob in zip(offsets, blobs):
                payload = transform(_decode_payload(blob))
                self._put_payload_on_disk(pending, offset, _encode_payload(payload), replace=True)
                self._put_id_on_disk(pending, offset, op_num)
                pending.then(self._payload_rewritten, offset, op_num, payload)
            return self._commit(pending, op_num)

    def update_vectors(self, op_num: int, points: Sequence[tuple[PointId, Mapping[str, VectorValue]]]) -> int:
        merged: dict[int, dict[str, VectorValue]] = {}
        for point_id, vectors in points:
            merged.setdefault(id_sort_key(point_id), {}).update(self._coerce_vectors(vectors))
        with self._lock:
            pending = self._begin()
            for key, vectors in merged.items():
                old = self._writable_slot(key, op_num)
                if old is None:
                    continue
                # The point moves to a fresh slot so the old rows, which a search may be
                # reading, are never overwritten.
                all_vectors = {**self._vectors_of(old), **vectors}
                payload_blob = pending.store.get(CF_PAYLOAD, _offset_key(old)) or _EMPTY_PAYLOAD
                payload = _decode_payload(payload_blob) if self._indexes else None
                self._place_point(pending, op_num, key, self._ids[old], all_vectors, payload_blob, old, payload)
            return self._commit(pending, op_num)

    def delete_vectors(self, op_num: int, ids: Iterable[PointId], names: Iterable[str]) -> int:
        names = list(dict.fromkeys(names))
        self._check_vector_names(names)
        keys = _unique_keys(ids)
        with self._lock:
            pending = self._begin()
            for key in keys:
                offset = self._writable_slot(key, op_num)
                if offset is None:
                    continue
                # In place: only the presence flag changes, never the stored rows.
                for name in names:
                    pending.store.delete(pending.batch, vector_cf_name(name), _offset_key(offset))
                self._put_id_on_disk(pending, offset, op_num)
                pending.then(self._drop_vectors, offset, op_num, names)
            return self._commit(pending, op_num)

    # Write helpers. Each write call: _begin, add to the batch and queue the in-memory
    # changes, then _commit writes the batch and only then changes memory, so a failed
    # RocksDB write leaves memory agreeing with disk.

    def _begin(self) -> _PendingWrite:
        return _PendingWrite(self._open_store(), self._next_offset)

    def _commit(self, pending: _PendingWrite, op_num: int) -> int:
        version = max(self._version, op_num)
        store = pending.store
        for key, value in self._meta_entries(version, pending.next_offset).items():
            store.put(pending.batch, CF_META, key, value)
        store.write(pending.batch)
        self._ensure_capacity(pending.next_offset)
        pending.apply_in_memory()
        self._next_offset = pending.next_offset
        self._version = version
        self.writes += 1
        return pending.changed

    def _writable_slot(self, key: int, op_num: int) -> int | None:
        """The slot of a live point that `op_num` may change, else None."""
        offset = self._offset_by_key.get(key)
        if offset is None or self._versions[offset] >= op_num:
            return None
        if self._tracked is not None:
            self._tracked.add(self._ids[offset])
        return offset

    # -- what the optimizer does to segments (pydrant/optimizer) --

    def copy_points(self, records: Sequence[Record]) -> int:
        """Insert whole points (vectors and payload given) keeping their own versions. A
        held copy is replaced only by a newer version; the segment's version becomes at
        least the highest version copied."""
        exported = []
        for record in _last_per_id(records, lambda r: r.id):
            _, point_id, vectors, payload_blob, _ = self._prepare_point(PointInput(record.id, record.vectors or {}, record.payload))
            exported.append((point_id, record.version, vectors, payload_blob))
        return self.import_points(exported)

    def export_points(self, ids: Iterable[PointId]) -> list[ExportedPoint]:
        """(id, version, vectors, payload bytes) of the held points among `ids`: what
        `import_points` takes. The optimizer copies points this way, without decoding and
        re-encoding payloads."""
        keys = _unique_keys(ids)
        with self._lock:
            store = self._open_store()
            offsets = [o for o in (self._offset_by_key.get(key) for key in keys) if o is not None]
            blobs = store.get_many(CF_PAYLOAD, [_offset_key(o) for o in offsets])
            return [
                (self._ids[o], int(self._versions[o]), self._vectors_of(o), blob or _EMPTY_PAYLOAD)
                for o, blob in zip(offsets, blobs)
            ]

    def import_points(self, points: Sequence[ExportedPoint]) -> int:
        """Insert `export_points` entries of a segment with the same schema, keeping their
        versions (a held copy is replaced only by a newer version)."""
        with self._lock:
            pending = self._begin()
            top = 0
            for point_id, version, vectors, payload_blob in points:
                key = id_sort_key(point_id)
                old = self._offset_by_key.get(key)
                if old is not None and self._versions[old] >= version:
                    continue
                payload = _decode_payload(payload_blob) if self._indexes else None
                self._place_point(pending, version, key, point_id, vectors, payload_blob, old, payload)
                top = max(top, version)
            return self._commit(pending, top)

    def discard_points(self, ids: Iterable[PointId]) -> int:
        """Forget points whatever their version (the optimizer removing from its copy a point
        the source segment no longer holds); the segment's version does not move."""
        keys = _unique_keys(ids)
        with self._lock:
            pending = self._begin()
            for key in keys:
                offset = self._offset_by_key.get(key)
                if offset is None:
                    continue
                pending.store.delete(pending.batch, CF_IDS, encode_id(self._ids[offset]))
                self._erase_slot_on_disk(pending, offset)
                pending.then(self._forget_point, key, offset)
            return self._commit(pending, 0)

    def advance_version(self, version: int) -> None:
        """Record that the segment has seen every operation up to `version` (a new segment
        that starts empty in a collection that already has a history)."""
        with self._lock:
            self._commit(self._begin(), version)

    def start_tracking(self) -> None:
        """Remember the id of every point changed from now on (the optimizer, copying this
        segment, re-copies those before it swaps the copy in)."""
        with self._lock:
            self._tracked = set()

    def take_tracked(self, stop: bool = False) -> list[PointId]:
        """Ids changed since `start_tracking` or the last take; `stop` ends tracking."""
        with self._lock:
            tracked = list(self._tracked or ())
            self._tracked = None if stop else set()
            return tracked

    @property
    def is_appendable(self) -> bool:
        return True

    @property
    def build_settings(self) -> dict | None:
        return None  # an appendable segment has no indexes

    def locked_view(self) -> SlotView:
        """The segment's slots seen with its lock held, for a segment built on this one
        (`indexed.IndexedSegment`): `with store.locked_view() as view: ...`."""
        return SlotView(self)

    def slot_counts(self) -> tuple[int, int]:
        """(slots used, slots dead): how much a vacuum would reclaim."""
        with self._lock:
            return self._next_offset, self._next_offset - len(self._offset_by_key)

    def vector_bytes(self) -> dict[str, int]:
        """Bytes of the live points' vectors per name (what Qdrant's size thresholds count).
        Cached until the next write: the optimizer and collection info ask often."""
        with self._lock:
            cached = getattr(self, "_vector_bytes", None)
            if cached is not None and cached[0] == self.writes:
                return cached[1]
            live = self._live[: self._next_offset]
            sizes = {name: column.stored_bytes(live) for name, column in self._columns.items()}
            self._vector_bytes = (self.writes, sizes)
            return sizes

    def _place_point(self, pending, op_num, key, point_id, vectors, payload_blob, old, payload) -> None:
        """Write a whole point into a fresh slot, retiring its old slot if it had one."""
        offset = pending.allocate_slot()
        store, batch = pending.store, pending.batch
        store.put(batch, CF_IDS, encode_id(point_id), _ID_ENTRY.pack(offset, op_num))
        for name, value in vectors.items():
            store.put(batch, vector_cf_name(name), _offset_key(offset), self._columns[name].encode(value))
        self._put_payload_on_disk(pending, offset, payload_blob, replace=False)
        if old is not None:
            self._erase_slot_on_disk(pending, old)
        pending.then(self._install_point, key, point_id, offset, op_num, vectors, old, payload)

    def _put_id_on_disk(self, pending: _PendingWrite, offset: int, version: int) -> None:
        pending.store.put(pending.batch, CF_IDS, encode_id(self._ids[offset]), _ID_ENTRY.pack(offset, version))

    def _put_payload_on_disk(self, pending: _PendingWrite, offset: int, blob: bytes, replace: bool) -> None:
        if blob:
            pending.store.put(pending.batch, CF_PAYLOAD, _offset_key(offset), blob)
        elif replace:
            pending.store.delete(pending.batch, CF_PAYLOAD, _offset_key(offset))

    def _erase_slot_on_disk(self, pending: _PendingWrite, offset: int) -> None:
        store, batch = pending.store, pending.batch
        store.delete(batch, CF_PAYLOAD, _offset_key(offset))
        for name, column in self._columns.items():
            if column.has(offset):
                store.delete(batch, vector_cf_name(name), _offset_key(offset))

    # In-memory changes, run by _commit after the batch is written.

    def _install_point(self, key, point_id, offset, version, vectors, old, payload) -> None:
        if payload and self._indexes:
            self._indexes.add(offset, payload)
        self._ids[offset] = point_id
        self._versions[offset] = version
        for name, value in vectors.items():
            self._columns[name].set(offset, value)
        self._live[offset] = True
        if old is None:
            self._sorted.add(key)
        else:
            self._retire_slot(old)
        self._offset_by_key[key] = offset

    def _forget_point(self, key: int, offset: int) -> None:
        del self._offset_by_key[key]
        self._sorted.remove(key)
        self._retire_slot(offset)

    def _retire_slot(self, offset: int) -> None:
        self._live[offset] = False
        for column in self._columns.values():
            column.clear(offset)

    def _payload_rewritten(self, offset: int, version: int, payload: dict) -> None:
        self._versions[offset] = version
        self._indexes.replace(offset, payload)

    def _drop_vectors(self, offset: int, version: int, names: list[str]) -> None:
        self._versions[offset] = version
        for name in names:
            self._columns[name].clear(offset)

    def _ensure_capacity(self, needed: int) -> None:
        if needed <= self._capacity:
            return
        capacity = _next_capacity(needed)
        self._ids.extend(cast("list[PointId]", [None] * (capacity - self._capacity)))
        self._versions = _grown(self._versions, capacity)
        self._live = _grown(self._live, capacity)
        for column in self._columns.values():
            column.grow(capacity)
        self._indexes.grow(capacity)
        self._capacity = capacity

    # Input preparation, done before taking the lock.

    def _prepare_point(self, point: PointInput) -> tuple[int, PointId, dict[str, VectorValue], bytes, dict]:
        point_id = normalize_id(point.id)  # stored ids are canonical whatever spelling came in
        vectors = self._coerce_vectors(point.vectors)
        payload = point.payload or {}
        return id_sort_key(point_id), point_id, vectors, _encode_payload(payload), payload

    def _coerce_vectors(self, vectors: Mapping[str, VectorValue]) -> dict[str, VectorValue]:
        self._check_vector_names(vectors)
        return {name: self._columns[name].coerce(name, value) for name, value in vectors.items() if value is not None}

    def _check_vector_names(self, names: Iterable[str]) -> None:
        for name in names:
            if name not in self._columns:
                raise BadInput(f"Wrong input: Not existing vector name error: {name}")

    # -- reads --

    def has_point(self, point_id: PointId) -> bool:
        return id_sort_key(point_id) in self._offset_by_key

    def point_version(self, point_id: PointId) -> int | None:
        with self._lock:
            offset = self._offset_by_key.get(id_sort_key(point_id))
            return None if offset is None else int(self._versions[offset])

    def point_versions(self, ids: Sequence[PointId]) -> list[int | None]:
        keys = [id_sort_key(point_id) for point_id in ids]
        with self._lock:
            offsets = [self._offset_by_key.get(key) for key in keys]
            versions = self._versions
            return [None if offset is None else int(versions[offset]) for offset in offsets]

    def vector_names_of(self, point_id: PointId) -> list[str]:
        with self._lock:
            offset = self._offset_by_key.get(id_sort_key(point_id))
            if offset is None:
                return []
            return [name for name, column in self._columns.items() if column.has(offset)]

    def retrieve(
        self,
        ids: Iterable[PointId],
        with_payload: PayloadSelection = True,
        with_vectors: VectorSelection = False,
    ) -> list[Record]:
        keys = _unique_keys(ids)
        with self._lock:
            store = self._open_store()
            offsets = [o for o in (self._offset_by_key.get(key) for key in keys) if o is not None]
            blobs = store.get_many(CF_PAYLOAD, [_offset_key(o) for o in offsets]) if with_payload else []
            records = [self._record_without_payload(offset, with_vectors) for offset in offsets]
        # Payloads decode outside the lock: CBOR decoding is the slow part of a retrieve.
        if with_payload:
            for record, blob in zip(records, blobs):
                payload = _decode_payload(blob)
                record.payload = payload if with_payload is True else with_payload(payload)
        return records

    def _record_without_payload(self, offset: int, with_vectors: VectorSelection) -> Record:
        record = Record(id=self._ids[offset], version=int(self._versions[offset]))
        if with_vectors:
            names = self._columns if with_vectors is True else with_vectors
            record.vectors = self._vectors_of(offset, names)
        return record

    def _vectors_of(self, offset: int, names: Iterable[str] | None = None) -> dict[str, VectorValue]:
        """Copies of the point's vectors among `names` (default: all)."""
        vectors = {}
        for name in self._columns if names is None else names:
            column = self._columns.get(name)
            if column is not None and column.has(offset):
                vectors[name] = column.get(offset)
        return vectors

    def read_ids(
        self,
        offset: PointId | None = None,
        limit: int | None = None,
        predicate: Predicate | None = None,
    ) -> list[PointId]:
        start_key = None if offset is None else id_sort_key(offset)
        with self._lock:
            self._open_store()
            if predicate is None:
                keys = self._sorted.iter_from(start_key, self._offset_by_key)
                return [self._ids[self._offset_by_key[key]] for key in itertools.islice(keys, limit)]
            sure, to_check = self._split(predicate)
            candidates = sure | to_check
            found = int(np.count_nonzero(candidates))
            slots: Iterable[int]
            if found * 16 < len(self._offset_by_key):
                # Few candidates: sort just them by id instead of walking every id.
                slots = self._candidates_in_id_order(candidates, start_key)
            else:
                keys = self._sorted.iter_from(start_key, self._offset_by_key)
                slots = (slot for slot in (self._offset_by_key[key] for key in keys) if candidates[slot])
            matches = predicate.matches
            slots = (slot for slot in _with_checks(slots) if sure[slot] or matches(self._context(slot)))
            return [self._ids[slot] for slot in itertools.islice(slots, limit)]

    def _candidates_in_id_order(self, candidates: np.ndarray, start_key) -> list[int]:
        pairs = [(id_sort_key(self._ids[slot]), slot) for slot in np.flatnonzero(candidates).tolist()]
        pairs.sort()
        if start_key is not None:
            pairs = pairs[bisect.bisect_left(pairs, (start_key, -1)) :]
        return [slot for _, slot in pairs]

    def count(self, predicate: Predicate | None = None) -> int:
        with self._lock:
            if predicate is None:
                return len(self._offset_by_key)
            self._open_store()
            sure, to_check = self._split(predicate)
            matches = predicate.matches
            checked = sum(1 for slot in _with_checks(np.flatnonzero(to_check).tolist()) if matches(self._context(slot)))
            return int(np.count_nonzero(sure)) + checked

    # -- filtering with payload indexes (filter_plan.py) --

    def _split(self, predicate) -> tuple[np.ndarray, np.ndarray]:
        """(sure, to_check) slot masks of a compiled filter: certain matches per the indexes,
        and the live slots the predicate still has to decide."""
        plan = getattr(predicate, "plan", None)
        n = self._next_offset
        if plan is None:  # a bare predicate (tests, tools): check every live slot
            return np.zeros(n, dtype=bool), self._live[:n].copy()
        return filter_plan.split(plan, _SegmentView(self))

    def _matching_mask(self, predicate) -> np.ndarray:
        """Every live slot that matches (all live slots without a predicate)."""
        n = self._next_offset
        if predicate is None:
            return self._live[:n].copy()
        sure, to_check = self._split(predicate)
        matches = predicate.matches
        for slot in _with_checks(np.flatnonzero(to_check).tolist()):
            if matches(self._context(slot)):
                sure[slot] = True
        return sure

    def estimate_cardinality(self, predicate: PlannedPredicate | None) -> tuple[int, int, int]:
        with self._lock:
            if predicate is None:
                count = len(self._offset_by_key)
                return count, count, count
            return filter_plan.estimate_cardinality(predicate.plan, _SegmentView(self))

    def set_payload_indexes(self, fields: Mapping[str, object]) -> None:
        """Make the segment's field indexes those of `fields` (key -> field_schema): builds
        the new or changed ones from the stored payloads, drops the others.

        Called by the collection's update worker, the only thread that writes, so the build
        runs outside the segment lock and reads go on meanwhile.
        """
        build, drop = self._indexes.differences(dict(fields))
        if not build and not drop:
            return
        built = {}
        if build:
            with self._lock:
                store = self._open_store()
                live_slots = np.flatnonzero(self._live[: self._next_offset]).tolist()
                gen = self._indexes.gen.copy()
            built = build_indexes(build, self._iter_payloads(store, live_slots), gen)
        with self._lock:
            self._indexes.install(built, drop)

    def _iter_payloads(self, store: _RocksStore, slots: list[int]) -> Iterator[tuple[int, dict]]:
        for start in range(0, len(slots), 4096):
            chunk = slots[start : start + 4096]
            blobs = store.get_many(CF_PAYLOAD, [_offset_key(o) for o in chunk])
            for slot, blob in zip(chunk, blobs):
                if blob:
                    yield slot, _decode_payload(blob)

    def payload_index_info(self) -> dict:
        """key -> {"points": points indexed, "ram_bytes": size of the structures}."""
        with self._lock:
            return self._indexes.info(self._live[: self._next_offset])

    def facet(self, key: str, predicate: Predicate | None = None) -> dict | None:
        """value -> count of matching points holding it; None if `key` has no value-map index."""
        with self._lock:
            self._open_store()
            index = self._indexes.by_key.get(key)
            if not _facetable(index):
                return None
            selected = None if predicate is None else self._matching_mask(predicate)
            live = self._live[: self._next_offset]
            return index.facet_counts(self._indexes.gen, live, selected)

    def read_ordered(
        self, key: str, descending: bool, start_from: float | None, limit: int, predicate: Predicate | None = None
    ) -> list[tuple[float, PointId]] | None:
        """The first `limit` (value, id) entries of matching points in the order of their
        values of `key`, from `start_from` (inclusive) on; equal values in id order (reversed
        when descending). A point with several values appears once per value, as in Qdrant
        1.15. None when `key` has no range index."""
        with self._lock:
            self._open_store()
            index = self._indexes.by_key.get(key)
            if not _orderable(index):
                return None
            selected = self._matching_mask(predicate)
            values, slots, gens = index.ordered_entries(self._indexes.gen, self._live)
            ok = selected[slots] & (self._indexes.gen[slots] == gens)
            if start_from is not None:
                ok &= values <= start_from if descending else values >= start_from
            values, slots = values[ok], slots[ok]
            if descending:
                values, slots = values[::-1], slots[::-1]
            return self._first_entries(values, slots, limit, descending)

    def _first_entries(self, values: np.ndarray, slots: np.ndarray, limit: int, descending: bool) -> list:
        # The run orders equal values by slot; take entries until `limit` are found and the
        # value moves on, so every entry tied with the last one competes on id.
        if limit < len(values):
            boundary = values[limit - 1]
            stop = limit
            while stop < len(values) and values[stop] == boundary:
                stop += 1
            values, slots = values[:stop], slots[:stop]
        ids = self._ids
        picked = [(value, id_sort_key(ids[slot]), ids[slot]) for value, slot in zip(values.tolist(), slots.tolist())]
        picked.sort(key=lambda p: (p[0], p[1]), reverse=descending)
        return [(value, point_id) for value, _, point_id in picked[:limit]]

    def _context(self, offset: int) -> PointContext:
        return PointContext(
            self._ids[offset],
            lambda: self._load_payload(offset),
            lambda name: name in self._columns and self._columns[name].has(offset),
        )

    def _load_payload(self, offset: int) -> dict:
        with self._lock:
            return _decode_payload(self._open_store().get(CF_PAYLOAD, _offset_key(offset)))

    def iter_ids(self) -> Iterator[PointId]:
        with self._lock:
            keys = self._sorted.iter_from(None, self._offset_by_key)
            return iter([self._ids[self._offset_by_key[key]] for key in keys])

    def dense_vectors(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        with self._lock:
            column = self._columns.get(name)
            if not isinstance(column, _DenseColumn):
                raise ValueError(f"`{name}` is not a dense single vector of this segment")
            used = self._next_offset
            # The matrix slice is a view: rows below `used` are never written again, and
            # growth allocates a new matrix, so the view stays valid and unchanged.
            return column.matrix[:used], column.present[:used] & self._live[:used]

    def search(
        self,
        name: str,
        queries: list[ScoringQuery],
        limit: int,
        space: VectorSpace,
        predicate: Predicate | None = None,
        params: dict | None = None,
    ) -> list[list[SegmentHit]]:
        """Exact search: per query, the `limit` best (internal score, id, version) among
        live points that have vector `name` and match `predicate`, best first. `params`
        (Qdrant's SearchParams) choose nothing here; indexed segments plan with them.

        The candidate mask and the vector arrays are taken under the lock; scoring runs
        without it (rows of used slots are never rewritten), so writes go on meanwhile."""
        with self._lock:
            self._open_store()
            column = self._columns.get(name)
            if column is None:
                return [[] for _ in queries]
            n = self._next_offset
            mask = self._candidates(column, predicate)
            if isinstance(column, _DenseColumn):
                matrix = column.matrix[:n]
            else:
                assert isinstance(column, _ListColumn)
                rows = np.flatnonzero(mask)
                values = [column.values[r] for r in rows.tolist()]
        if isinstance(column, _DenseColumn):
            found = scoring.search_dense(matrix, mask, queries, limit, space.distance, space.datatype)
        else:
            found = scoring.search_lists(values, rows, queries, limit, space)
        with self._lock:
            return self._hits(found)

    def _hits(self, found: Iterable[tuple[np.ndarray, np.ndarray]]) -> list[list[SegmentHit]]:
        """(slots, scores) per query as (score, id, version) hits (call with the lock held)."""
        ids, versions = self._ids, self._versions
        return [
            [(score, ids[row], int(versions[row])) for row, score in zip(rows.tolist(), scores.tolist())]
            for rows, scores in found
        ]

    def _candidates(self, column: _Column, predicate: Predicate | None) -> np.ndarray:
        """Mask of the used slots whose point is live, has the column's vector and matches
        `predicate` (call with the lock held)."""
        n = self._next_offset
        if predicate is None:
            return self._live[:n] & column.present[:n]
        return self._matching_mask(predicate) & column.present[:n]

    def sparse_statistics(self, name: str, indices: np.ndarray) -> tuple[int, np.ndarray]:
        """For the IDF modifier: how many live points have a non-empty sparse vector `name`,
        and how many of them have a value at each of `indices`."""
        with self._lock:
            column = self._columns.get(name)
            if not isinstance(column, _SparseColumn):
                return 0, np.zeros(len(indices), np.int64)
            n = self._next_offset
            rows = np.flatnonzero(column.present[:n] & self._live[:n]).tolist()
            # An empty sparse vector is no document to IDF: Qdrant's inverted index skips it.
            stored = [indices for indices in (column.values[r].indices for r in rows) if len(indices)]
        if not stored:
            return 0, np.zeros(len(indices), np.int64)
        everything = np.sort(np.concatenate(stored))  # a point holds each index at most once
        counts = np.searchsorted(everything, indices, side="right") - np.searchsorted(everything, indices)
        return len(stored), counts

    def offset_ids(self) -> list[PointId | None]:
        with self._lock:
            return cast("list[PointId | None]", self._ids[: self._next_offset])

    def info(self) -> dict:
        with self._lock:
            store = self._open_store()
            live = self._live[: self._next_offset]
            vectors = {name: column.count(live) for name, column in self._columns.items()}
            return {
                "segment_type": "plain",
                "is_appendable": True,
                "num_points": len(self._offset_by_key),
                "num_vectors": sum(vectors.values()),
                "num_vectors_by_name": vectors,
                "slots_used": self._next_offset,
                "slots_dead": self._next_offset - len(self._offset_by_key),
                "version": self._version,
                "persisted_version": self._persisted_version,
                "ram_usage_bytes": self._ram_bytes() + store.memtable_bytes(),
                "disk_usage_bytes": _directory_size(self._path),
            }

    def _ram_bytes(self) -> int:
        # Rough: numpy buffers exactly, Python dict/list entries at typical CPython sizes.
        per_point = 64 + 8 + 40  # dict entry + list slot + id object
        arrays = self._versions.nbytes + self._live.nbytes
        columns = sum(column.ram_bytes() for column in self._columns.values())
        return arrays + columns + per_point * self._capacity


class SlotView:
    """An appendable segment's in-memory slots, read with the segment's lock held: the
    public surface a segment composed on this one (`indexed.IndexedSegment`) reads, so it
    never touches the store's private fields.

        with store.locked_view() as view:
            n, live = view.n, view.live[: view.n]

    Entering takes the segment's (re-entrant) lock, leaving releases it; writes wait
    meanwhile, so everything read inside is one state between whole writes. What it
    returns are the store's own arrays and lists, not copies (no cost per point): rows of
    used slots (below `n`) are never rewritten, so slices of `matrix` and `values` stay
    valid after the block; `live`, `present` and the payload indexes change with later
    writes, so take copies (`&`, fancy indexing) inside the block of what must not.
    """

    __slots__ = ("_segment", "n")

    def __init__(self, segment: AppendableSegment):
        self._segment = segment
        self.n = 0  # slots used (every slot below is or was a point's); set on entering

    def __enter__(self) -> SlotView:
        segment = self._segment
        segment._lock.acquire()
        self.n = segment._next_offset
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._segment._lock.release()

    def check_open(self) -> None:
        """ServiceError when the segment is closed (reads that need RocksDB or must not
        answer from a closed segment)."""
        self._segment._open_store()

    @property
    def writes(self) -> int:
        """Write calls committed so far: a cache of what writes change is valid while it
        stays the same."""
        return self._segment.writes

    @property
    def live(self) -> np.ndarray:
        """Per slot (the capacity, beyond `n` too): whether a live point is there."""
        return self._segment._live

    def present(self, name: str) -> np.ndarray:
        """Per slot: whether the slot has vector `name` (KeyError for an unknown name)."""
        return self._segment._columns[name].present

    def matrix(self, name: str) -> np.ndarray:
        """The dense single vector `name`'s matrix (rows are slots, the capacity of them)."""
        column = self._segment._columns[name]
        if not isinstance(column, _DenseColumn):
            raise ValueError(f"`{name}` is not a dense single vector of this segment")
        return column.matrix

    def values(self, name: str) -> list:
        """Per slot, the multi-vector (rows array) or SparseVector `name` (None if never set)."""
        column = self._segment._columns[name]
        if not isinstance(column, _ListColumn):
            raise ValueError(f"`{name}` is a dense single vector: use `matrix`")
        return column.values

    @property
    def payload_indexes(self) -> PayloadIndexes:
        """The segment's payload indexes (`by_key`, `gen`)."""
        return self._segment._indexes

    def matching_mask(self, predicate: Predicate | None) -> np.ndarray:
        """Per used slot: live and matching `predicate` (every live slot for None)."""
        return self._segment._matching_mask(predicate)

    def candidates(self, name: str, predicate: Predicate | None) -> np.ndarray:
        """Per used slot: live, has vector `name` and matches `predicate`."""
        return self._segment._candidates(self._segment._columns[name], predicate)

    def hits(self, found: Iterable[tuple[np.ndarray, np.ndarray]]) -> list[list[SegmentHit]]:
        """(slots, scores) per query as (score, id, version) search hits."""
        return self._segment._hits(found)


class _SegmentView:
    """What `filter_plan.evaluate` needs of a segment (call with the segment lock held)."""

    __slots__ = ("segment", "n", "gen", "live")

    def __init__(self, segment: AppendableSegment):
        self.segment = segment
        self.n = segment._next_offset
        self.gen = segment._indexes.gen
        self.live = segment._live

    def index_for(self, path: tuple):
        return self.segment._indexes.for_path(path)

    def ids_mask(self, ids: frozenset):
        by_key = self.segment._offset_by_key
        offsets = [o for o in (by_key.get(id_sort_key(i)) for i in ids) if o is not None]
        if not offsets:
            return None
        mask = np.zeros(self.n, dtype=bool)
        mask[offsets] = True
        return mask

    def vector_mask(self, name: str):
        column = self.segment._columns.get(name)
        return None if column is None else column.present[: self.n].copy()


def _orderable(index: FieldIndex | None) -> TypeGuard[IntegerIndex | FloatIndex | DatetimeIndex]:
    # Qdrant orders by integer (with `range`), float and datetime indexes.
    return index is not None and index.data_type in ("integer", "float", "datetime") and getattr(index, "has_range", True)


def _facetable(index: FieldIndex | None) -> TypeGuard[MapIndex | IntegerIndex]:
    # Qdrant facets keyword, integer (with `lookup`), bool and uuid indexes.
    if index is None:
        return False
    return index.data_type in ("keyword", "bool", "uuid") or (isinstance(index, IntegerIndex) and index.has_lookup)


def _next_capacity(needed: int) -> int:
    capacity = _INITIAL_CAPACITY
    while capacity < needed:
        capacity *= 2
    return capacity


def _grown(array: np.ndarray, capacity: int) -> np.ndarray:
    grown = np.zeros(capacity, dtype=array.dtype)
    grown[: len(array)] = array
    return grown


def _unique_keys(ids: Iterable[PointId]) -> list[int]:
    return list(dict.fromkeys(id_sort_key(point_id) for point_id in ids))


def _last_per_id(items: Iterable, id_of: Callable) -> list:
    """Items with distinct ids, keeping the last of each (a later duplicate replaces)."""
    latest: dict[int, Any] = {}
    for item in items:
        key = id_sort_key(id_of(item))
        latest.pop(key, None)  # re-insert so order follows the last occurrence
        latest[key] = item
    return list(latest.values())


def _encode_payload(payload: dict) -> bytes:
    return cbor2.dumps(payload) if payload else _EMPTY_PAYLOAD


def _decode_payload(blob: bytes | None) -> dict:
    return cbor2.loads(blob) if blob else {}


# How the ids and vector column families are laid out, read a chunk at a time on open:
# `encode_id` of an integer id, an ids CF value (= `_ID_ENTRY`), a vector CF key.
_INT_ID_KEY = np.dtype([("tag", "u1"), ("id", ">u8")])
_ID_ENTRY_RECORD = np.dtype([("slot", "<u4"), ("version", "<u8")])
_SLOT_KEY = np.dtype(">u4")
_UUID_TAG_START = b"\x01"  # encode_id: integers are tagged 0, UUIDs 1


def _decode_ids(encoded: Sequence[bytes]) -> tuple[list[PointId], list[int]]:
    """(canonical ids, their id_sort_keys) of a chunk of the ids CF's keys (in key order).

    Integer ids sort before UUIDs, so a chunk is a run of integers (decoded with one
    numpy view) followed by a run of UUIDs (decoded one by one)."""
    n_int = bisect.bisect_left(encoded, _UUID_TAG_START)
    int_ids = _fixed_records(encoded[:n_int], _INT_ID_KEY, "point id keys")["id"].tolist()
    point_ids: list[PointId] = list(int_ids)
    keys: list[int] = int_ids  # an integer id is its own sort key
    for data in encoded[n_int:]:
        try:
            point_ids.append(decode_id(data))
        except ValueError as exc:
            raise ServiceError(f"stored {exc}") from None
        keys.append(UUID_KEY_BASE + int.from_bytes(data[1:], "big"))  # = id_sort_key
    return point_ids, keys


def _decode_id_entries(entries: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """(slots int64, versions uint64) of a chunk of the ids CF's values."""
    records = _fixed_records(entries, _ID_ENTRY_RECORD, "id entries")
    return records["slot"].astype(np.int64), records["version"].astype(np.uint64)


def _decode_slot_keys(keys: Sequence[bytes]) -> np.ndarray:
    """The slots (int64) of a chunk of a vector CF's keys."""
    return _fixed_records(keys, _SLOT_KEY, "vector keys").astype(np.int64)


def _fixed_records(blobs: Sequence[bytes], dtype: np.dtype, what: str) -> np.ndarray:
    """Blobs that each hold one `dtype` record, as one array (a view of their join)."""
    if not blobs:
        return np.zeros(0, dtype=dtype)
    sizes = set(map(len, blobs))
    if sizes != {dtype.itemsize}:
        raise ServiceError(f"stored {what} must be {dtype.itemsize} bytes long, found lengths {sorted(sizes)}")
    return np.frombuffer(b"".join(blobs), dtype=dtype)


def _object_array(values: list) -> np.ndarray:
    """`values` as a 1-d object array (np.array would try to make ints a number array)."""
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


def _release_freed_heap() -> None:
    """Give the C heap's free pages back to the OS (glibc's `malloc_trim(0)`).

    glibc keeps freed small blocks (RocksDB values, Python `bytes`) for reuse instead of
    returning them, so after a load that freed a lot the process's RSS would stay at its
    peak. Where there is no `malloc_trim` (not glibc) this does nothing."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    import ctypes  # only opening a segment needs it

    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return cast("Callable[[int], int]", trim)


def _directory_size(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except FileNotFoundError:  # RocksDB deleted it meanwhile (compaction)
                pass
    return total


def _with_checks(slots: Iterable[int]) -> Iterator[int]:
    """`slots`, checking the read's deadline (segments/deadline.py) every
    CHECK_EVERY_POINTS of them: a filter evaluated on stored payloads stops there."""
    for i, slot in enumerate(slots):
        if i % deadline.CHECK_EVERY_POINTS == 0:
            deadline.check()
        yield slot
