"""The id map of an immutable segment: point id <-> slot and point versions, as sorted arrays.

An immutable segment (docs/design/on-disk-segments.md §2.2) holds n points in slots
0..n-1 and never changes which id is in which slot, so the map is a handful of arrays,
written once into `ids.pack` and mapped at open (29 bytes per point with an integer id, 37
with a UUID; no Python objects):

    int_ids      <u8 (ki,)    the integer ids, ascending
    int_slots    <u4 (ki,)    slot of int_ids[i]
    uuid_hi      <u8 (ku,)    high 64 bits of the UUID ids, ascending by (hi, lo)
    uuid_lo      <u8 (ku,)    low 64 bits
    uuid_slots   <u4 (ku,)    slot of UUID row j
    slot_key     <u8 (n,)     per slot: the integer id, or its row in the uuid arrays
    slot_is_uuid |b1 (n,)     per slot: which of the two
    versions     <u8 (n,)     per slot: the point's version

The order of (int_ids, then uuid rows) is Qdrant's id order (`ids.id_sort_key`: every
integer before every UUID, UUIDs by their 128-bit value), so paging in id order is a walk
along `int_slots` then `uuid_slots`. UUIDs are split in two u64 words because numpy has no
128-bit integer; a lookup is a `searchsorted` on `uuid_hi` and a binary search on `uuid_lo`
within the run of equal high words (one element for random UUIDs).

The map knows nothing of deletions: the segment keeps its deletion flags apart (they
change; this never does) and filters the slots it gets from here.

Decided while building (the design named only `build_id_arrays(ids_in_slot_order,
versions)`): `IdArraysBuilder.add_many` takes the points batch by batch, as the segment
builder streams them, and keeps only typed arrays (20-28 bytes per point) rather than a
list of n Python ids; `build_id_arrays` is the one-call form. `iter_from` yields *slots*
(not ids) in id order, in chunks, so a segment can mask them with its deletion flags and
filter masks vectorised before turning the few it keeps into ids with `ids_of`.
Corrupt arrays (bit rot in a mapped file) cannot crash the process here: numpy bounds-checks
every index (an IndexError at worst); `IdMap.check` finds inconsistencies for the
background verification. Single lookups pass numpy scalars to `searchsorted`: with a
Python int numpy takes ~1 ms per call on a million ids instead of ~1 µs.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from pydrant.segments.ids import U64_LIMIT, UUID_KEY_BASE, normalize_id
from pydrant.segments.types import PointId

# name -> dtype (np.dtype.str), in the order they are written into the pack.
ARRAY_DTYPES = {
    "int_ids": "<u8",
    "int_slots": "<u4",
    "uuid_hi": "<u8",
    "uuid_lo": "<u8",
    "uuid_slots": "<u4",
    "slot_key": "<u8",
    "slot_is_uuid": "|b1",
    "versions": "<u8",
}
MAX_POINTS = (1 << 31) - 1  # slots are also used as int32 (graph rows), so below 2**31
_WORD = 64
_WORD_MASK = (1 << 64) - 1
_CHECK_BLOCK = 1 << 20  # elements per step of `check`: bounds its temporaries to a few MB


def _split_uuid(value: int) -> tuple[int, int]:
    return value >> _WORD, value & _WORD_MASK


class IdArraysBuilder:
    """Collects (id, version) per slot, in slot order, and builds the map's arrays.

    Ids may be in any order (the segment builder writes each source in id order, but
    nothing relies on it) and must be unique; UUIDs in any spelling `uuid.UUID` accepts.
    """

    def __init__(self) -> None:
        self._count = 0
        # per add_many call: the batch's integer ids and their slots, its UUIDs (hi, lo)
        # and their slots, its versions
        self._int_ids: list[np.ndarray] = []
        self._int_slots: list[np.ndarray] = []
        self._uuid_words: list[np.ndarray] = []
        self._uuid_slots: list[np.ndarray] = []
        self._versions: list[np.ndarray] = []

    def __len__(self) -> int:
        return self._count

    def add_many(self, ids: Sequence[PointId], versions: Sequence[int] | np.ndarray) -> None:
        """The points of the next len(ids) slots. ValueError on an id that is not a
        point id, a version outside [0, 2**64), or lengths that differ; nothing is added
        then."""
        if len(ids) != len(versions):
            raise ValueError(f"{len(ids)} ids but {len(versions)} versions")
        if self._count + len(ids) > MAX_POINTS:
            raise ValueError(f"a segment holds at most {MAX_POINTS} points")
        batch_versions = _u64_array(versions, "version")
        int_ids, int_slots, uuid_words, uuid_slots = [], [], [], []
        for slot, point_id in enumerate(ids, self._count):
            if type(point_id) is not int and not isinstance(point_id, str):
                point_id = _canonical(point_id)
            if isinstance(point_id, str):
                uuid_words.append(_split_uuid(_uuid_int(point_id)))
                uuid_slots.append(slot)
            elif 0 <= point_id < U64_LIMIT:
                int_ids.append(point_id)
                int_slots.append(slot)
            else:
                raise ValueError(f"{point_id!r} is not a point id")
        self._int_ids.append(np.array(int_ids, np.uint64))
        self._int_slots.append(np.array(int_slots, np.uint32))
        self._uuid_words.append(np.array(uuid_words, np.uint64).reshape(-1, 2))
        self._uuid_slots.append(np.array(uuid_slots, np.uint32))
        self._versions.append(batch_versions)
        self._count += len(ids)

    def finish(self) -> dict[str, np.ndarray]:
        """The arrays of `ARRAY_DTYPES`, for `IdMap` and `ids.pack`. ValueError naming
        the id when one was added twice."""
        n = self._count
        int_ids, int_slots = _sorted_ints(_concat(self._int_ids, np.uint64), _concat(self._int_slots, np.uint32))
        words = np.concatenate(self._uuid_words) if self._uuid_words else np.zeros((0, 2), np.uint64)
        uuid_hi, uuid_lo, uuid_slots = _sorted_uuids(
            np.ascontiguousarray(words[:, 0]), np.ascontiguousarray(words[:, 1]), _concat(self._uuid_slots, np.uint32)
        )
        slot_key = np.zeros(n, np.uint64)
        slot_is_uuid = np.zeros(n, np.bool_)
        slot_key[int_slots] = int_ids
        slot_key[uuid_slots] = np.arange(uuid_slots.size, dtype=np.uint64)
        slot_is_uuid[uuid_slots] = True
        return {
            "int_ids": int_ids,
            "int_slots": int_slots,
            "uuid_hi": uuid_hi,
            "uuid_lo": uuid_lo,
            "uuid_slots": uuid_slots,
            "slot_key": slot_key,
            "slot_is_uuid": slot_is_uuid,
            "versions": _concat(self._versions, np.uint64),
        }


def build_id_arrays(ids_in_slot_order: Sequence[PointId], versions: Sequence[int] | np.ndarray) -> dict[str, np.ndarray]:
    """The map's arrays for points whose ids and versions are given in slot order."""
    builder = IdArraysBuilder()
    builder.add_many(ids_in_slot_order, versions)
    return builder.finish()


def _canonical(point_id: Any) -> PointId:
    """An id given as another integer type (numpy) made canonical; ValueError otherwise."""
    try:
        return normalize_id(point_id)
    except Exception as error:  # BadInput: here it is the builder's caller's bug
        raise ValueError(f"{point_id!r} is not a point id") from error


def _uuid_int(text: str) -> int:
    try:
        return uuid.UUID(text).int
    except ValueError:
        raise ValueError(f"{text!r} is not a point id") from None


def _u64_array(values: Sequence[int] | np.ndarray, what: str) -> np.ndarray:
    """`values` as a 1-d u64 array; ValueError unless each is an integer in [0, 2**64).

    A list is checked value by value: numpy would turn [2**64 - 1, 1] into float64."""
    if isinstance(values, np.ndarray):
        if values.ndim != 1 or values.dtype.kind not in "iu" or (values.size and values.min() < 0):
            raise ValueError(f"every {what} must be an integer in [0, 2**64), not {values.dtype} {values.shape}")
        return values.astype(np.uint64, copy=False)
    for value in values:
        if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer) or not 0 <= value < U64_LIMIT:
            raise ValueError(f"{what} {value!r} is not an integer in [0, 2**64)")
    return np.array(values, dtype=np.uint64).reshape(-1)


def _concat(parts: list[np.ndarray], dtype) -> np.ndarray:
    return np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(0, dtype)


def _sorted_ints(ids: np.ndarray, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(ids, kind="stable")
    ids, slots = ids[order], slots[order]
    twice = np.flatnonzero(ids[1:] == ids[:-1])
    if twice.size:
        first = twice[0]
        raise ValueError(f"point id {int(ids[first])} is in slots {int(slots[first])} and {int(slots[first + 1])}")
    return ids, slots


def _sorted_uuids(hi: np.ndarray, lo: np.ndarray, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    order = np.lexsort((lo, hi))  # by hi, then lo: the UUIDs' 128-bit order
    hi, lo, slots = hi[order], lo[order], slots[order]
    twice = np.flatnonzero((hi[1:] == hi[:-1]) & (lo[1:] == lo[:-1]))
    if twice.size:
        first = twice[0]
        name = uuid.UUID(int=(int(hi[first]) << _WORD) | int(lo[first]))
        raise ValueError(f"point id {name} is in slots {int(slots[first])} and {int(slots[first + 1])}")
    return hi, lo, slots


def _lower_bounds(hi: np.ndarray, lo: np.ndarray, query_hi: np.ndarray, query_lo: np.ndarray) -> np.ndarray:
    """For each query (hi, lo), the first row whose (hi, lo) >= it (bisect_left over the
    128-bit order): a searchsorted for the run of equal high words, then a vectorised
    binary search on the low words inside each run."""
    left = np.searchsorted(hi, query_hi, "left")
    right = np.searchsorted(hi, query_hi, "right")
    active = np.flatnonzero(left < right)
    while active.size:
        start, stop = left[active], right[active]
        middle = (start + stop) // 2
        below = lo[middle] < query_lo[active]
        left[active] = np.where(below, middle + 1, start)
        right[active] = np.where(below, stop, middle)
        active = active[left[active] < right[active]]
    return left


class IdMap:
    """Id <-> slot lookups and versions over the arrays `build_id_arrays` made, or their
    read-only views mapped from `ids.pack`. Immutable and safe to share between threads.

    Construction checks dtypes and lengths only (O(1)): a table that does not fit raises
    ValueError. `check()` is the O(n) consistency check.
    """

    def __init__(self, arrays: Mapping[str, np.ndarray]):
        for name, dtype in ARRAY_DTYPES.items():
            array = arrays.get(name)
            if array is None:
                raise ValueError(f"id map array {name!r} is missing")
            if array.dtype.str != dtype or array.ndim != 1:
                raise ValueError(f"id map array {name!r} is {array.dtype.str} {array.shape}, not {dtype} 1-d")
        self._int_ids = arrays["int_ids"]
        self._int_slots = arrays["int_slots"]
        self._uuid_hi = arrays["uuid_hi"]
        self._uuid_lo = arrays["uuid_lo"]
        self._uuid_slots = arrays["uuid_slots"]
        self._slot_key = arrays["slot_key"]
        self._slot_is_uuid = arrays["slot_is_uuid"]
        self._versions = arrays["versions"]
        self._n = self._slot_key.size
        ki, ku = self._int_ids.size, self._uuid_hi.size
        if (
            self._int_slots.size != ki
            or self._uuid_lo.size != ku
            or self._uuid_slots.size != ku
            or self._slot_is_uuid.size != self._n
            or self._versions.size != self._n
            or ki + ku != self._n
        ):
            raise ValueError(
                f"id map arrays disagree on their lengths: {ki} integer ids, {ku} UUIDs, {self._n} slots"
            )
        if self._n > MAX_POINTS:
            raise ValueError(f"an id map holds at most {MAX_POINTS} points, not {self._n}")

    def __len__(self) -> int:
        """Number of slots (= points at build; deletions are the segment's business)."""
        return self._n

    @property
    def versions(self) -> np.ndarray:
        """Version of each slot's point, u64 (n,)."""
        return self._versions

    @property
    def nbytes(self) -> int:
        return sum(
            array.nbytes
            for array in (self._int_ids, self._int_slots, self._uuid_hi, self._uuid_lo, self._uuid_slots,
                          self._slot_key, self._slot_is_uuid, self._versions)
        )

    def version_of(self, slot: int) -> int:
        return int(self._versions[slot])

    # -- id -> slot

    def slot_of(self, point_id: PointId) -> int | None:
        """The slot of a canonical id (UUIDs in any spelling), None when not in the map.
        A few µs: one or two `searchsorted` calls, with numpy scalars (a Python int
        argument makes numpy's searchsorted ~1 ms on a million ids)."""
        if isinstance(point_id, str):
            hi, lo = _split_uuid(uuid.UUID(point_id).int)
            row = self._uuid_lower_bound(hi, lo)
            if row < self._uuid_hi.size and int(self._uuid_hi[row]) == hi and int(self._uuid_lo[row]) == lo:
                return int(self._uuid_slots[row])
            return None
        if not 0 <= point_id < U64_LIMIT:
            return None
        row = int(self._int_ids.searchsorted(np.uint64(point_id)))
        if row < self._int_ids.size and int(self._int_ids[row]) == point_id:
            return int(self._int_slots[row])
        return None

    def _uuid_lower_bound(self, hi: int, lo: int) -> int:
        """The first UUID row whose (hi, lo) >= (hi, lo): the run of rows with this high
        word, then the low words within it (ascending there)."""
        query_hi = np.uint64(hi)
        left = int(self._uuid_hi.searchsorted(query_hi, "left"))
        right = int(self._uuid_hi.searchsorted(query_hi, "right"))
        return left + int(self._uuid_lo[left:right].searchsorted(np.uint64(lo)))

    def slots_of(self, ids: Iterable[PointId]) -> np.ndarray:
        """The slot of each id, int64, -1 where the map does not hold it; vectorised (one
        Python step per id to split integers from UUIDs, the searches in numpy)."""
        int_at, int_values, uuid_at, uuid_words = [], [], [], []
        count = 0
        for count, point_id in enumerate(ids, 1):
            if isinstance(point_id, str):
                uuid_at.append(count - 1)
                uuid_words.append(_split_uuid(uuid.UUID(point_id).int))
            elif 0 <= point_id < U64_LIMIT:
                int_at.append(count - 1)
                int_values.append(point_id)
        slots = np.full(count, -1, np.int64)
        if int_values and self._int_ids.size:
            query = np.array(int_values, np.uint64)
            rows = np.minimum(np.searchsorted(self._int_ids, query), self._int_ids.size - 1)
            found = self._int_ids[rows] == query
            slots[np.array(int_at)[found]] = self._int_slots[rows[found]]
        if uuid_words and self._uuid_hi.size:
            words = np.array(uuid_words, np.uint64)
            query_hi, query_lo = np.ascontiguousarray(words[:, 0]), np.ascontiguousarray(words[:, 1])
            rows = np.minimum(_lower_bounds(self._uuid_hi, self._uuid_lo, query_hi, query_lo), self._uuid_hi.size - 1)
            found = (self._uuid_hi[rows] == query_hi) & (self._uuid_lo[rows] == query_lo)
            slots[np.array(uuid_at)[found]] = self._uuid_slots[rows[found]]
        return slots

    # -- slot -> id

    def id_of(self, slot: int) -> PointId:
        """The canonical id in `slot` (IndexError outside 0..n-1)."""
        key = int(self._slot_key[slot])
        if not self._slot_is_uuid[slot]:
            return key
        return str(uuid.UUID(int=(int(self._uuid_hi[key]) << _WORD) | int(self._uuid_lo[key])))

    def ids_of(self, slots: Sequence[int] | np.ndarray) -> list[PointId]:
        """The canonical ids in `slots`, in that order."""
        slots = np.asarray(slots, dtype=np.int64)
        keys = self._slot_key[slots]
        ids: list[PointId] = keys.tolist()
        is_uuid = self._slot_is_uuid[slots]
        if is_uuid.any():
            rows = keys[is_uuid]
            for at, hi, lo in zip(np.flatnonzero(is_uuid).tolist(), self._uuid_hi[rows].tolist(),
                                  self._uuid_lo[rows].tolist()):
                ids[at] = str(uuid.UUID(int=(hi << _WORD) | lo))
        return ids

    # -- id order

    def iter_from(self, start_key: int | None = None, chunk: int = 4096) -> Iterator[np.ndarray]:
        """Slots in Qdrant id order, from the first id whose `id_sort_key` is >= start_key
        (None: from the first id), as non-empty int64 arrays of at most `chunk` slots.
        Integer ids come first, then UUIDs; a chunk never mixes the two."""
        if chunk < 1:
            raise ValueError("chunk must be at least 1")
        int_start, uuid_start = self._start_rows(start_key)
        for slots, start in ((self._int_slots, int_start), (self._uuid_slots, uuid_start)):
            for begin in range(start, slots.size, chunk):
                yield slots[begin : begin + chunk].astype(np.int64)

    def _start_rows(self, start_key: int | None) -> tuple[int, int]:
        """(first integer row, first UUID row) at or after start_key."""
        if start_key is None or start_key <= 0:
            return 0, 0
        if start_key < UUID_KEY_BASE:
            return int(self._int_ids.searchsorted(np.uint64(start_key))), 0
        value = start_key - UUID_KEY_BASE
        if value >> 128:
            return self._int_ids.size, self._uuid_hi.size
        return self._int_ids.size, self._uuid_lower_bound(*_split_uuid(value))

    # -- verification

    def check(self) -> list[str]:
        """Inconsistencies between the arrays ([] when none): ids not strictly ascending,
        slots out of range or not each used exactly once, `slot_key`/`slot_is_uuid` not
        pointing back. O(n) in blocks of `_CHECK_BLOCK` elements (temporaries of a few MB
        whatever n); for the background verification of a mapped segment."""
        problems = []
        if not _strictly_ascending(self._int_ids, None):
            problems.append("int_ids are not strictly ascending")
        if not _strictly_ascending(self._uuid_hi, self._uuid_lo):
            problems.append("UUIDs are not strictly ascending by (uuid_hi, uuid_lo)")
        slots_ok = True
        for name, slots in (("int_slots", self._int_slots), ("uuid_slots", self._uuid_slots)):
            if any(int(slots[block].max()) >= self._n for block in _blocks(slots.size)):
                problems.append(f"{name} has a slot >= {self._n}")
                slots_ok = False
        if not slots_ok:
            return problems  # the checks below index with the slots
        seen = np.zeros(self._n, np.bool_)
        ints_point_back = uuids_point_back = True
        for block in _blocks(self._int_ids.size):
            slots = self._int_slots[block]
            seen[slots] = True
            ints_point_back &= not self._slot_is_uuid[slots].any() and np.array_equal(
                self._slot_key[slots], self._int_ids[block]
            )
        for block in _blocks(self._uuid_hi.size):
            slots = self._uuid_slots[block]
            seen[slots] = True
            rows = np.arange(block.start, block.stop, dtype=np.uint64)
            uuids_point_back &= bool(self._slot_is_uuid[slots].all()) and np.array_equal(self._slot_key[slots], rows)
        if not ints_point_back:
            problems.append("slot_key / slot_is_uuid do not point back to int_ids")
        if not uuids_point_back:
            problems.append("slot_key / slot_is_uuid do not point back to the UUID rows")
        # n slots listed in total (checked at construction) and every slot seen: each once
        if not seen.all():
            problems.append(f"{int(np.count_nonzero(~seen))} slots are listed twice or not at all")
        return problems


def _blocks(size: int) -> Iterator[slice]:
    for start in range(0, size, _CHECK_BLOCK):
        yield slice(start, min(start + _CHECK_BLOCK, size))


def _strictly_ascending(major: np.ndarray, minor: np.ndarray | None) -> bool:
    """Whether (major, minor) pairs (or major alone) strictly increase, block by block
    (each block overlaps the previous by one element)."""
    for block in _blocks(major.size):
        lo = max(block.start - 1, 0)
        a, b = major[lo : block.stop - 1], major[lo + 1 : block.stop]
        if minor is None:
            if not np.all(a < b):
                return False
            continue
        c, d = minor[lo : block.stop - 1], minor[lo + 1 : block.stop]
        if not np.all((a < b) | ((a == b) & (c < d))):
            return False
    return True
