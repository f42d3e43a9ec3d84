"""On-disk integer, float, datetime and geo payload indexes of immutable segments (issue 17, P3b).

The in-memory indexes of `field_index.py` are rebuilt from every payload each time a segment
opens. An immutable segment's payloads never change, so its indexes are built once, by the
optimizer, into a handful of plain numpy arrays that a pack file stores and a reader maps
back without any per-point work (docs/design/on-disk-segments.md §2.5). This module builds
those arrays and reads them; it knows nothing about files:

    build:  RunIndexBuilder(key, schema).add(slot, payload) ... .finish(n) -> (arrays, meta)
            build_run_index(key, schema, [(slot, payload), ...], n)        (the same, at once)
    read:   open_run_index(meta, arrays) -> IntegerRunIndex | FloatRunIndex |
                                            DatetimeRunIndex | GeoBandIndex

`arrays` is a dict of little-endian numpy arrays with fixed dtypes (any C-contiguous view,
typically read-only views of one mapped pack); `meta` is a small JSON-able dict (format,
type, key, schema, counts) that tells the reader what shapes to expect.

Layout (E = entries: one per distinct accepted value of a slot; n = segment slots):

    every type   present  bool (n,)   slot holds a value this index holds
                 other    bool (n,)   slot holds a value this index cannot hold
    integer      values   <f8 (E,)    sorted by (value, slot); integers |v| <= 2**53 as today
    float        slots    <u4 (E,)
    datetime     values   <i8 (E,)    microseconds since the epoch, sorted by (value, slot)
                 slots    <u4 (E,)
    integer +    distinct          <f8 (D,)   the distinct values, ascending
      lookup     distinct_offsets  <u8 (D+1,) entries of distinct[i]: distinct_offsets[i:i+2]
    geo          band_offsets  <u8 (182,)  entries of band b: band_offsets[b:b+2]
                 lat, lon      <f8 (E,)    sorted by (band, lat, slot, lon)
                 slots         <u4 (E,)

Readers offer the interface `filter_plan.evaluate` and the segment read paths use with the
in-memory classes (`answer(condition, gen, live, n)`, `points`, `other_mask`, `facet_counts`,
`ordered_entries`, `nbytes`, `data_type`, `params`, `schema`, `path`, `has_lookup`,
`has_range`), with `gen` ignored (an immutable segment rewrites no payload in place), plus
`ordered_prefix`: the block-wise walk `order_by` needs, and `orderable`/`facetable`. They
answer exactly what the in-memory index over the same payloads answers once both are
restricted to live slots: answers and `other_mask` may include dead slots, as the in-memory
run's answers do (`filter_plan.split` ANDs `live`; one AND per query, not one per index);
`points` and facets exclude them. Readers hold no mutable state, so any number of threads may use one. Masks
they return may be read-only views of the mapped arrays: callers combine them into new
arrays and never write them (as `filter_plan` does).

Decisions taken where the design (§2.5) was open, and why:

- **Acceptance is the in-memory index's.** The builder asks `field_index.make_index`'s
  index which values it holds (`_accept`) and dedupes per slot as `FieldIndex.add` does, so
  the two index kinds cannot drift apart on what goes into `other`.
- **Datetimes are int64 microseconds**, not float64: exact at any year the parser accepts.
  The in-memory index (float64) merges microseconds past 2255 (float64 steps by 2 to 32 µs
  there) and then disagrees with the payload scan; this one agrees with the scan. Ranges
  search the int64 run with integer bounds (a float key would make numpy convert the whole
  run). Values handed to `order_by` are float64, as today.
- **Integer matches of |v| > 2**53 are not rounded.** The in-memory index answers
  `match: {value: 2**53 + 1}` from float64 entries (it finds 2**53 and misses the point
  holding 2**53 + 1, which sits in `other`); the index holds only |v| <= 2**53, so such a
  value matches no entry and only `other` may hold it: `(None, other)`. `any` and `except`
  likewise. The answers then agree with the scan (and with the in-memory index everywhere
  else).
- **NaN floats match no range** (a float payload value can be NaN only from outside JSON:
  orjson refuses it). The in-memory index counts NaN entries in a range without an upper
  bound; the scan does not, nor does this one. `order_by` without `start_from` lists them
  as today (last ascending, first descending).
- **Geo bands get an extra band 180** for entries whose lon is not in [-180, 180] or lat not
  in [-90, 90] (payload geo values are not range-checked). Such entries are always scanned:
  an invalid latitude makes the haversine formula non-metric, so no longitude bound would be
  safe for them. Every other entry lives in band floor((lon + 180) / 2) (lon 180 in 179).
  On such entries this index answers as the in-memory one, and both differ from the scan
  (a latitude past 90 folds over the pole; the scan's scalar haversine turns NaN into half
  the globe): a pre-existing inconsistency of `field_index.py`/`filters.py`, not fixed here.
- **A circle's longitude bands** come from the widest circle the in-memory index's "maybe"
  test admits (radius (1 + 1e-9) + 1e-6 m): half-width asin(sin δ / cos φ) plus 0.01°, all
  bands when the cap reaches a pole; the same latitude band as today's. So the candidates
  are a superset of what today's band-and-test keeps, and the per-entry tests are today's:
  the answers are identical, from fewer candidates.
- **`distinct` + `distinct_offsets`** (not `distinct_counts`): the offsets give the counts
  and the `np.add.reduceat` starts for facets with deletions or a filter, without a cumsum
  per call. Built only with `lookup` (only then does an integer index facet).
- **`present`/`other` are stored bool masks** with their counts in `meta`, so `other_mask`
  and `points` need no per-query work beyond one AND with `live`.
- No Numba: every operation is a few numpy calls over slices (binary searches, gathers,
  `reduceat`); nothing loops per entry in Python.

`check()` (O(E + n), for the background verification of §2.3; `check_steps(chunk)` is the
same a chunk at a time, for a throttled verifier) raises ValueError for structural damage
the O(1) checks at open cannot see: unsorted runs, entries in the wrong band, out-of-range
slots, masks or distinct values that disagree with the entries. A damaged index cannot
crash the process (numpy bounds-checks every gather), only answer wrongly, which is why the
verification runs at all. Building is Python per point (~1 µs per point and field at 1M,
payload walk included): call it from a worker thread, never the event loop.
The argument order `(meta, arrays)` and the raising `check()` follow the other array-level
structures (`disk_index_postings`, `QuantizedVectors.from_arrays`, `HnswIndex.check`).
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable, Iterable, Iterator
from typing import NoReturn

import numpy as np

from pydrant.errors import BadInput
from pydrant.segments.field_index import _REJECT  # the in-memory index's "not held" marker
from pydrant.segments.field_index import _or, _tighter_high, _tighter_low  # the same mask and bound rules
from pydrant.segments.field_index import Mask, make_index, schema_params, schema_type, slots_mask
from pydrant.segments.geo import EARTH_RADIUS_M, haversine_m_array
from pydrant.segments.ids import id_sort_key
from pydrant.segments.payload import field_values, parse_path
from pydrant.segments.types import PointId

FORMAT = 1
RUN_TYPES = ("integer", "float", "datetime", "geo")
ORDER_BLOCK = 4096  # entries examined by the first step of an ordered read
CHECK_CHUNK = 1 << 20  # entries per step of check(): bounded temporaries at any size

_MAX_EXACT_INT = 1 << 53  # the in-memory integer index holds |v| <= this (field_index.py)
_I64_MIN, _I64_MAX = -(1 << 63), (1 << 63) - 1

_BAND_DEGREES = 2.0
_BANDS = 180  # longitude bands of 2 degrees: band b covers [-180 + 2b, -178 + 2b)
_OUTSIDE_BAND = _BANDS  # entries with a lon or lat out of range (or NaN): always scanned
_BAND_COUNT = _BANDS + 1
_ALL_BANDS = ((0, _BANDS - 1),)
_CIRCLE_LON_PAD = 0.01  # degrees added to a circle's longitude half-width (rounding slack)
_POLE_SLACK = 1e-12  # radians: a cap this close to a pole is treated as containing it

_BOOL = np.dtype(np.bool_)
_F8 = np.dtype("<f8")
_I8 = np.dtype("<i8")
_U4 = np.dtype("<u4")
_U8 = np.dtype("<u8")

Arrays = dict[str, np.ndarray]

# The builder's slot buffers are array("I") viewed as uint32: true wherever C's unsigned int
# is 4 bytes (every platform pydrant runs on); a slot that does not fit raises OverflowError.
assert array("I").itemsize == 4


def is_run_index(field_schema) -> bool:
    """Whether this module builds `field_schema`'s index (integer, float, datetime, geo)."""
    return schema_type(field_schema) in RUN_TYPES


# ---------------------------------------------------------------------------------------
# Building.
# ---------------------------------------------------------------------------------------


class RunIndexBuilder:
    """Collects one field's entries slot by slot, then sorts them into the arrays once.

    Entries accumulate in `array.array`s (8-12 bytes each, not Python objects), so building
    the index of a million points costs tens of MB, not the hundreds the in-memory index
    holds. `add` may be called in any slot order, at most once per slot.
    """

    def __init__(self, key: str, field_schema):
        data_type = schema_type(field_schema)
        if data_type not in RUN_TYPES:
            raise BadInput(f"Wrong input: `{key}`: a {data_type!r} index is not a sorted-run index")
        self.key = key
        self.schema = field_schema
        self.data_type = data_type
        self.path = parse_path(key)
        # The in-memory index decides which values are held, so both kinds agree on `other`.
        self._accept = make_index(key, field_schema)._accept
        self._slots = array("I")
        self._values = array("q" if data_type == "datetime" else "d")  # geo: latitudes
        self._lons = array("d")  # geo only
        self._present = array("I")
        self._other = array("I")

    def add(self, slot: int, payload: dict) -> None:
        """Index the payload of `slot`."""
        values = field_values(payload, self.path)
        if values:
            self.add_values(slot, values)

    def add_values(self, slot: int, values: list) -> None:
        """Index the values `field_values` found for `slot` (as `FieldIndex.add` takes them)."""
        held = foreign = False
        seen = set()
        for value in values:
            item = self._accept(value)
            if item is _REJECT:
                foreign = True
            elif item not in seen:
                seen.add(item)
                held = True
                self._hold(item, slot)
        if held:
            self._present.append(slot)
        if foreign:
            self._other.append(slot)

    def _hold(self, item, slot: int) -> None:
        self._slots.append(slot)
        if self.data_type == "geo":
            lon, lat = item
            self._values.append(lat)
            self._lons.append(lon)
        else:
            self._values.append(item)  # integer: float(v), as the in-memory run holds it

    def finish(self, n: int) -> tuple[Arrays, dict]:
        """(arrays, meta) of an index over slots 0..n-1. ValueError if a slot was added
        twice or is not below `n`."""
        present = _slot_mask(np.frombuffer(self._present, dtype=np.uint32), n, "present")
        other = _slot_mask(np.frombuffer(self._other, dtype=np.uint32), n, "other")
        slots = np.frombuffer(self._slots, dtype=np.uint32)
        values = np.frombuffer(self._values, dtype=np.int64 if self.data_type == "datetime" else np.float64)
        meta = {
            "format": FORMAT,
            "type": self.data_type,
            "key": self.key,
            "schema": self.schema,
            "slots": int(n),
            "entries": len(slots),
            "present": int(np.count_nonzero(present)),
            "other": int(np.count_nonzero(other)),
        }
        arrays: Arrays = {"present": present, "other": other}
        if self.data_type == "geo":
            arrays.update(_geo_arrays(np.frombuffer(self._lons, dtype=np.float64), values, slots))
        else:
            order = np.lexsort((slots, values))
            arrays["values"] = np.ascontiguousarray(values[order], dtype=_I8 if self.data_type == "datetime" else _F8)
            arrays["slots"] = np.ascontiguousarray(slots[order], dtype=_U4)
            if self.data_type == "integer" and _has_lookup(self.schema):
                arrays.update(_distinct_arrays(arrays["values"]))
                meta["distinct"] = len(arrays["distinct"])
        return arrays, meta


def build_run_index(key: str, field_schema, payloads: Iterable[tuple[int, dict]], n: int) -> tuple[Arrays, dict]:
    """(arrays, meta) of `key`'s index over (slot, payload) pairs of a segment of n slots."""
    builder = RunIndexBuilder(key, field_schema)
    for slot, payload in payloads:
        builder.add(slot, payload)
    return builder.finish(n)


def _slot_mask(slots: np.ndarray, n: int, what: str) -> np.ndarray:
    if len(slots) and int(slots.max()) >= n:
        raise ValueError(f"payload index build: slot {int(slots.max())} is not below the segment's {n} slots")
    mask = np.zeros(n, dtype=_BOOL)
    mask[slots] = True
    if int(np.count_nonzero(mask)) != len(slots):
        raise ValueError(f"payload index build: a slot was added twice ({what})")
    return mask


def _has_lookup(field_schema) -> bool:
    return schema_params(field_schema).get("lookup") is not False


def _has_range(field_schema) -> bool:
    return schema_params(field_schema).get("range") is not False


def _distinct_arrays(values: np.ndarray) -> Arrays:
    """The distinct values of a sorted run and where each one's entries start."""
    if not len(values):
        return {"distinct": np.empty(0, dtype=_F8), "distinct_offsets": np.zeros(1, dtype=_U8)}
    starts = np.concatenate([[0], np.flatnonzero(values[1:] != values[:-1]) + 1])
    offsets = np.concatenate([starts, [len(values)]]).astype(_U8)
    return {"distinct": np.ascontiguousarray(values[starts], dtype=_F8), "distinct_offsets": offsets}


def _bands_of(lons: np.ndarray, lats: np.ndarray) -> np.ndarray:
    """Each entry's longitude band (0..179), or the outside band for out-of-range values."""
    valid = (lons >= -180.0) & (lons <= 180.0) & (lats >= -90.0) & (lats <= 90.0)  # NaN: False
    with np.errstate(invalid="ignore"):
        bands = np.floor((np.where(valid, lons, 0.0) + 180.0) / _BAND_DEGREES)
    bands = np.minimum(bands, _BANDS - 1).astype(np.int64)
    bands[~valid] = _OUTSIDE_BAND
    return bands


def _geo_arrays(lons: np.ndarray, lats: np.ndarray, slots: np.ndarray) -> Arrays:
    bands = _bands_of(lons, lats)
    # One slot may hold several points of equal latitude in a band (lon decides): sorting by
    # longitude last keeps the layout a function of the input alone.
    order = np.lexsort((lons, slots, lats, bands))
    offsets = np.searchsorted(bands[order], np.arange(_BAND_COUNT + 1), side="left").astype(_U8)
    return {
        "band_offsets": offsets,
        "lat": np.ascontiguousarray(lats[order], dtype=_F8),
        "lon": np.ascontiguousarray(lons[order], dtype=_F8),
        "slots": np.ascontiguousarray(slots[order], dtype=_U4),
    }


# ---------------------------------------------------------------------------------------
# Opening.
# ---------------------------------------------------------------------------------------


def open_run_index(meta: dict, arrays: Arrays) -> _DiskRunIndex:
    """The reader of an index built by `RunIndexBuilder`. O(1): checks the format, the set of
    arrays, their dtypes and shapes against `meta` (ValueError naming what is wrong); the
    O(E) structural check is `check()`."""
    version = meta.get("format")
    if version != FORMAT:
        raise ValueError(f"payload index format {version!r} is not {FORMAT} (written by a newer pydrant?)")
    data_type = meta.get("type")
    cls = _READERS.get(data_type)  # type: ignore[arg-type]
    if cls is None:
        raise ValueError(f"payload index type {data_type!r} is not a sorted-run index")
    try:
        expected = _expected_shapes(meta)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"payload index {meta.get('key')!r}: unreadable meta ({exc!r})") from None
    _check_shapes(arrays, expected, meta.get("key"))
    return cls(arrays, meta)


def _expected_shapes(meta: dict) -> dict[str, tuple[np.dtype, tuple[int, ...]]]:
    n, entries = int(meta["slots"]), int(meta["entries"])
    shapes: dict[str, tuple[np.dtype, tuple[int, ...]]] = {
        "present": (_BOOL, (n,)),
        "other": (_BOOL, (n,)),
        "slots": (_U4, (entries,)),
    }
    if meta["type"] == "geo":
        shapes.update({"band_offsets": (_U8, (_BAND_COUNT + 1,)), "lat": (_F8, (entries,)), "lon": (_F8, (entries,))})
    else:
        shapes["values"] = (_I8 if meta["type"] == "datetime" else _F8, (entries,))
    if meta["type"] == "integer" and _has_lookup(meta["schema"]):
        distinct = int(meta["distinct"])
        shapes.update({"distinct": (_F8, (distinct,)), "distinct_offsets": (_U8, (distinct + 1,))})
    return shapes


def _check_shapes(arrays: Arrays, expected: dict, key) -> None:
    if set(arrays) != set(expected):
        raise ValueError(f"payload index `{key}`: arrays {sorted(arrays)}, expected {sorted(expected)}")
    for name, (dtype, shape) in expected.items():
        array_ = arrays[name]
        if array_.dtype != dtype or array_.shape != shape:
            raise ValueError(f"payload index `{key}` array {name}: {array_.dtype} {array_.shape}, expected {dtype} {shape}")


# ---------------------------------------------------------------------------------------
# Readers.
# ---------------------------------------------------------------------------------------


class _DiskRunIndex:
    """What every reader shares: identity, `present`/`other`, sizes, the structural check."""

    data_type = ""
    has_lookup = False
    has_range = False

    def __init__(self, arrays: Arrays, meta: dict):
        self.key: str = meta["key"]
        self.path = parse_path(self.key)
        self.schema = meta["schema"]
        self.params = schema_params(self.schema)
        self.meta = meta
        self.n = int(meta["slots"])
        self.arrays = arrays
        self.present = arrays["present"]
        self.other = arrays["other"]
        self.slots = arrays["slots"]

    @property
    def orderable(self) -> bool:
        """Whether `order_by` may use this index (Qdrant: integer with range, float, datetime)."""
        return False

    @property
    def facetable(self) -> bool:
        """Whether `facet` may use this index (Qdrant: integer with lookup, here)."""
        return False

    def points(self, gen, live: np.ndarray) -> int:
        """Live points holding a value of this index."""
        if not self.meta["present"]:
            return 0
        return int(np.count_nonzero(self.present & live[: self.n]))

    def other_mask(self, gen, live, n: int) -> Mask:
        """Slots holding a value this index cannot hold (the payload check decides them),
        dead ones included: the caller ANDs `live` once for the whole filter."""
        return _fit(self.other, n) if self.meta["other"] else None

    def present_mask(self, n: int) -> Mask:
        return _fit(self.present, n) if self.meta["present"] else None

    def nbytes(self) -> int:
        return sum(int(a.nbytes) for a in self.arrays.values())

    def answer(self, condition: tuple, gen, live, n: int):
        """(yes, upper) masks for a condition (see filter_plan.py), or None."""
        return None

    def check(self) -> None:
        """Walk the whole structure (O(E + n)) and raise ValueError naming the index and the
        first problem: for the background verification (a corrupt index cannot crash a
        reader, but it would answer wrongly)."""
        for _ in self.check_steps():
            pass

    def check_steps(self, chunk: int | None = None) -> Iterator[int]:
        """`check()` a chunk of entries at a time (default CHECK_CHUNK), yielding how many
        entries (and distinct values) have been checked so far after each chunk, for a
        verifier to throttle or cancel (as `HnswIndex.check_steps`). Temporaries are a few
        tens of bytes per chunk entry."""
        size = CHECK_CHUNK if chunk is None else chunk
        self._check_layout()
        done = 0
        for a, b in _chunks(len(self.slots), size):
            self._check_entries(a, b)
            done = b
            yield done
        for extra in self._check_more(size):
            yield done + extra

    def _check_layout(self) -> None:
        """O(n) or less, before the entries: the mask counts against meta."""
        for name in ("present", "other"):
            count = int(np.count_nonzero(self.arrays[name]))
            if count != self.meta[name]:
                self._corrupt(f"{name}: {count} slots, meta says {self.meta[name]}")

    def _check_entries(self, a: int, b: int) -> None:
        """Entries a..b-1: slots in range and marked present (subclasses add their order)."""
        slots = self.slots[a:b]
        if int(slots.max()) >= self.n:
            self._corrupt(f"slot {int(slots.max())} out of range ({self.n} slots)")
        if not bool(self.present[slots].all()):
            self._corrupt("an entry's slot is not marked present")

    def _check_more(self, size: int) -> Iterator[int]:
        """Structures beside the entries, a chunk at a time (integer: distinct values)."""
        return iter(())

    def _corrupt(self, problem: str) -> NoReturn:
        raise ValueError(f"payload index `{self.key}`: {problem}")

class _SortedRunIndex(_DiskRunIndex):
    """Integer, float and datetime: `values` sorted by (value, slot), `slots` alongside."""

    def __init__(self, arrays: Arrays, meta: dict):
        super().__init__(arrays, meta)
        self.values = arrays["values"]
        self._exact_ints = self.values.dtype == _I8

    # -- ranges --

    def _span(self, lo, lo_strict: bool, hi, hi_strict: bool) -> tuple[int, int]:
        """[start, stop) of the entries inside the bounds (None: unbounded)."""
        if self._exact_ints:
            return self._int_span(lo, lo_strict, hi, hi_strict)
        values = self.values
        if (lo is not None and math.isnan(lo)) or (hi is not None and math.isnan(hi)):
            return 0, 0  # nothing compares with NaN
        start = 0 if lo is None else int(np.searchsorted(values, lo, side="right" if lo_strict else "left"))
        stop = self._comparable_end() if hi is None else int(np.searchsorted(values, hi, side="left" if hi_strict else "right"))
        return start, max(start, stop)

    def _comparable_end(self) -> int:
        """Entries before the NaNs (a float index may hold NaN: it sorts last and matches no bound)."""
        values = self.values
        if not len(values) or not math.isnan(values[-1]):
            return len(values)
        return int(np.searchsorted(values, np.nan, side="left"))

    def _int_span(self, lo, lo_strict: bool, hi, hi_strict: bool) -> tuple[int, int]:
        # Bounds as inclusive integers, so the binary search runs on the int64 array itself
        # (a float key would make numpy convert the whole run to float64).
        first = _I64_MIN if lo is None else _int_at_least(lo, lo_strict)
        last = _I64_MAX if hi is None else _int_at_most(hi, hi_strict)
        if first is None or last is None or first > last:
            return 0, 0
        values = self.values
        start = int(np.searchsorted(values, max(first, _I64_MIN), side="left"))
        stop = int(np.searchsorted(values, min(last, _I64_MAX), side="right"))
        return start, max(start, stop)

    def _spans_mask(self, spans: Iterable[tuple[int, int]], n: int) -> Mask:
        parts = [self.slots[a:b] for a, b in spans if b > a]
        if not parts:
            return None
        return slots_mask(np.concatenate(parts) if len(parts) > 1 else parts[0], n)

    def range_mask(self, bounds: tuple, n: int) -> Mask:
        gt, gte, lt, lte = bounds
        lo, lo_strict = _tighter_low(gt, gte)
        hi, hi_strict = _tighter_high(lt, lte)
        return self._spans_mask([self._span(lo, lo_strict, hi, hi_strict)], n)

    def _check_entries(self, a: int, b: int) -> None:
        super()._check_entries(a, b)
        c = min(b, len(self.values) - 1)  # pairs (i, i + 1) for i in a..c-1, across chunk seams
        problem = _pair_problem(self.values[a:c], self.values[a + 1 : c + 1], self.slots[a:c], self.slots[a + 1 : c + 1])
        if problem:
            self._corrupt(problem)

    # -- ordered reads --

    def ordered_entries(self, gen, live) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(values as float64, slots, gens = 0) of every entry, sorted by value then slot: the
        in-memory interface, O(E) copies. Serving code should use `ordered_prefix`."""
        values = self.values.astype(np.float64) if self._exact_ints else self.values
        return values, self.slots, np.zeros(len(self.slots), dtype=np.uint32)

    def ordered_prefix(
        self, descending: bool, start_from: float | None, limit: int, selected: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(values float64, slots int64): the first `limit` entries of `selected` slots in
        value order (reversed when descending) from `start_from` on (inclusive), plus every
        further selected entry tied with the last of them, so that the caller can break the
        tie by point id (`pick_ordered`). Exactly the entries `AppendableSegment.read_ordered`
        hands its `_first_entries`, found by walking the run from the start point in blocks
        (ORDER_BLOCK entries, doubling while few are selected) instead of a pass over all of
        it. `selected` (bool, n) must include liveness."""
        start, stop = self._order_span(descending, start_from)
        if limit <= 0 or start >= stop:
            return np.empty(0, dtype=np.float64), np.empty(0, dtype=np.int64)
        taken: list[tuple[np.ndarray, np.ndarray]] = []
        found = 0
        for a, b in _blocks(start, stop, descending):
            values, slots = self._selected(a, b, selected, descending)
            if found + len(values) < limit:
                taken.append((values, slots))
                found += len(values)
                continue
            cut = limit - found
            boundary = values[cut - 1]
            cut += _leading_equal(values[cut:], boundary)
            taken.append((values[:cut], slots[:cut]))
            if cut == len(values):  # the tie run may go on past this block
                taken.append(self._ties_beyond(a, b, start, stop, boundary, selected, descending))
            break
        values = np.concatenate([t[0] for t in taken]).astype(np.float64)
        slots = np.concatenate([t[1] for t in taken]).astype(np.int64)
        return values, slots

    def _selected(self, a: int, b: int, selected: np.ndarray, descending: bool) -> tuple[np.ndarray, np.ndarray]:
        """(values, slots) of the selected entries in [a, b), in walk order."""
        slots = self.slots[a:b]
        keep = selected[slots]
        values, slots = self.values[a:b][keep], slots[keep]
        return (values[::-1], slots[::-1]) if descending else (values, slots)

    def _ties_beyond(self, a, b, start, stop, boundary, selected, descending) -> tuple[np.ndarray, np.ndarray]:
        """Selected entries equal to `boundary` after the block [a, b) in walk order: a
        binary search bounds the tie run, so a long run of equal values costs no walk."""
        if boundary != boundary:  # NaN ties with nothing (as `_first_entries` compares)
            return np.empty(0, dtype=self.values.dtype), np.empty(0, dtype=self.slots.dtype)
        if descending:
            first = max(start, int(np.searchsorted(self.values[start:a], boundary, side="left")) + start)
            return self._selected(first, a, selected, True)
        last = int(np.searchsorted(self.values[b:stop], boundary, side="right")) + b
        return self._selected(b, last, selected, False)

    def _order_span(self, descending: bool, start_from: float | None) -> tuple[int, int]:
        """[start, stop) of the run an ordered read walks. Without `start_from` that is every
        entry (NaNs included, last ascending and first descending, as today); with it, the
        entries >= start_from (ascending) or <= start_from (descending)."""
        if start_from is None:
            return 0, len(self.values)
        if descending:
            return self._span(None, False, start_from, False)
        return self._span(start_from, False, None, False)


def _blocks(start: int, stop: int, descending: bool):
    """[a, b) blocks covering [start, stop) in walk order: ORDER_BLOCK entries first, then
    twice as many each step (a selective filter walks far; a plain order_by stops early)."""
    size = ORDER_BLOCK
    if descending:
        b = stop
        while b > start:
            yield max(start, b - size), b
            b -= size
            size *= 2
    else:
        a = start
        while a < stop:
            yield a, min(stop, a + size)
            a += size
            size *= 2


def _leading_equal(values: np.ndarray, boundary) -> int:
    """How many entries at the start of `values` equal `boundary` (never a NaN)."""
    if not len(values):
        return 0
    differs = values != boundary
    first = int(np.argmax(differs))
    return len(values) if not differs[first] else first


def _int_at_least(bound, strict: bool) -> int | None:
    """The least integer v with v > bound (strict) or v >= bound; None if there is none."""
    if isinstance(bound, int):
        return bound + 1 if strict else bound
    if math.isnan(bound) or bound == math.inf:
        return None
    if bound == -math.inf:
        return _I64_MIN
    return math.floor(bound) + 1 if strict else math.ceil(bound)


def _int_at_most(bound, strict: bool) -> int | None:
    """The greatest integer v with v < bound (strict) or v <= bound; None if there is none."""
    if isinstance(bound, int):
        return bound - 1 if strict else bound
    if math.isnan(bound) or bound == -math.inf:
        return None
    if bound == math.inf:
        return _I64_MAX
    return math.ceil(bound) - 1 if strict else math.floor(bound)


class IntegerRunIndex(_SortedRunIndex):
    """Integers: matches (`lookup`), ranges and order_by (`range`), facets (`lookup`)."""

    data_type = "integer"

    def __init__(self, arrays: Arrays, meta: dict):
        super().__init__(arrays, meta)
        self.has_lookup = _has_lookup(self.schema)
        self.has_range = _has_range(self.schema)
        if self.has_lookup:
            self.distinct = arrays["distinct"]
            self.distinct_offsets = arrays["distinct_offsets"]

    @property
    def orderable(self) -> bool:
        return self.has_range

    @property
    def facetable(self) -> bool:
        return self.has_lookup

    def answer(self, condition, gen, live, n):
        kind = condition[0]
        if kind == "range" and self.has_range:
            yes = self.range_mask(condition[1], n)
            return yes, _or(yes, self.other_mask(gen, live, n))  # floats are in `other`
        if kind == "value" and (self.has_lookup or self.has_range):
            if type(condition[1]) is not int:
                return None, self.other_mask(gen, live, n)
            return self._any_of([condition[1]], gen, live, n)
        if kind == "any" and self.has_lookup:
            if condition[2]:  # a list of strings: only values outside the index can match
                return None, self.other_mask(gen, live, n)
            return self._any_of(condition[1], gen, live, n)
        if kind == "except" and self.has_lookup:
            if condition[2]:  # strings listed: every held integer is "not listed"
                yes = self.present_mask(n)
            else:
                yes = self._spans_mask(_complement(self._equal_spans(condition[1]), len(self.values)), n)
            return yes, _or(yes, self.other_mask(gen, live, n))
        return None

    def _any_of(self, listed: Iterable[int], gen, live, n: int) -> tuple[Mask, Mask]:
        """Slots holding one of the integers `listed`. An integer beyond ±2**53 is no entry
        of this index (it would be in `other`), so it widens only the upper bound."""
        yes = self._spans_mask(self._equal_spans(listed), n)
        if any(abs(v) > _MAX_EXACT_INT for v in listed):
            return yes, _or(yes, self.other_mask(gen, live, n))
        return yes, yes

    def _equal_spans(self, listed: Iterable[int]) -> list[tuple[int, int]]:
        """Sorted, disjoint [start, stop) spans of the entries equal to an exact listed integer."""
        exact = sorted({float(v) for v in listed if abs(v) <= _MAX_EXACT_INT})
        if not exact:
            return []
        keys = np.asarray(exact, dtype=np.float64)
        starts = np.searchsorted(self.values, keys, side="left")
        stops = np.searchsorted(self.values, keys, side="right")
        return [(a, b) for a, b in zip(starts.tolist(), stops.tolist()) if b > a]

    def facet_counts(self, gen, live, selected: np.ndarray | None) -> dict:
        """value -> number of live (and `selected`, if given) points holding it."""
        if not len(self.values):
            return {}
        counted = live[: self.n] if selected is None else selected[: self.n] & live[: self.n]
        hits = counted[self.slots]
        counts = np.add.reduceat(hits, self.distinct_offsets[:-1].astype(np.intp), dtype=np.int64)
        nonzero = counts > 0
        return {int(v): int(c) for v, c in zip(self.distinct[nonzero].tolist(), counts[nonzero].tolist())}

    def _check_more(self, size: int) -> Iterator[int]:
        """Distinct values and offsets against the (checked) run: offsets rise from 0 to E,
        each group's first and last entries equal its value, the values rise."""
        if not self.has_lookup:
            return
        distinct, offsets, values = self.distinct, self.distinct_offsets, self.values
        if int(offsets[0]) != 0 or int(offsets[-1]) != len(values):
            self._corrupt("distinct offsets do not span the run")
        for a, b in _chunks(len(distinct), size):
            starts, ends = offsets[a:b].astype(np.int64), offsets[a + 1 : b + 1].astype(np.int64)
            if bool((ends <= starts).any()):
                self._corrupt("distinct offsets do not rise")
            group = distinct[a:b]
            if not (np.array_equal(values[starts], group) and np.array_equal(values[ends - 1], group)):
                self._corrupt("distinct values do not match the run")
            if bool((group[1:] <= group[:-1]).any()) or (a > 0 and distinct[a - 1] >= distinct[a]):
                self._corrupt("distinct values do not rise")
            yield b

class FloatRunIndex(_SortedRunIndex):
    """Numbers as float64: ranges and order_by."""

    data_type = "float"
    has_range = True

    @property
    def orderable(self) -> bool:
        return True

    def answer(self, condition, gen, live, n):
        if condition[0] == "range":
            yes = self.range_mask(condition[1], n)
            return yes, _or(yes, self.other_mask(gen, live, n))
        return None


class DatetimeRunIndex(_SortedRunIndex):
    """Datetimes as int64 microseconds since the epoch (UTC): datetime ranges and order_by."""

    data_type = "datetime"
    has_range = True

    @property
    def orderable(self) -> bool:
        return True

    def answer(self, condition, gen, live, n):
        if condition[0] == "datetime_range":
            yes = self.range_mask(condition[1], n)  # integer microseconds: compared exactly
            return yes, yes  # nothing outside the index is a datetime
        if condition[0] == "range":
            return None, self.other_mask(gen, live, n)  # numbers live in `other`
        return None


def _pair_problem(x: np.ndarray, y: np.ndarray, x_slots: np.ndarray, y_slots: np.ndarray,
                  distinct_slots: bool = True) -> str | None:
    """What is wrong with consecutive entries (x[i], y[i]) of a run sorted by (value, slot),
    NaNs last and among themselves by slot (what `np.lexsort((slots, values))` makes), or
    None. `distinct_slots`: equal values never share a slot (true of a numeric run, whose
    entries are deduplicated per slot; not of a geo band, where one slot may hold two
    points of equal latitude)."""
    rising = x_slots < y_slots if distinct_slots else x_slots <= y_slots
    if x.dtype.kind == "f":
        x_nan, y_nan = np.isnan(x), np.isnan(y)
        ok = np.where(x_nan, y_nan & rising, y_nan | (x < y) | ((x == y) & rising))
    else:
        x_nan = y_nan = np.zeros(len(x), dtype=bool)
        ok = (x < y) | ((x == y) & rising)
    if bool(ok.all()):
        return None
    first = int(np.argmin(ok))
    tied = bool(x[first] == y[first]) or bool(x_nan[first] and y_nan[first])
    return "equal values not in slot order" if tied else "values not sorted"

def _chunks(total: int, size: int) -> Iterator[tuple[int, int]]:
    """[a, b) ranges of at most `size` covering [0, total)."""
    for a in range(0, max(total, 0), size):
        yield a, min(total, a + size)


class GeoBandIndex(_DiskRunIndex):
    """{"lon", "lat"} points by 2° longitude band, each band sorted by latitude: a shape's
    longitude span picks the bands, a binary search per band its latitude band, then the
    in-memory index's numpy tests decide."""

    data_type = "geo"

    def __init__(self, arrays: Arrays, meta: dict):
        super().__init__(arrays, meta)
        self.lat = arrays["lat"]
        self.lon = arrays["lon"]
        self.band_offsets = arrays["band_offsets"]
        self._offsets: list[int] = self.band_offsets.tolist()  # 182 ints, read once

    def _candidates(self, bands: Iterable[tuple[int, int]], lat_lo: float, lat_hi: float):
        """(slots, lons, lats) of entries in the listed band ranges (inclusive) and the outside
        band, with lat_lo <= lat <= lat_hi."""
        offsets, lat = self._offsets, self.lat
        spans = []
        for first, last in [*bands, (_OUTSIDE_BAND, _OUTSIDE_BAND)]:
            for band in range(first, last + 1):
                a, b = offsets[band], offsets[band + 1]
                if b > a:
                    run = lat[a:b]
                    lo = a + int(np.searchsorted(run, lat_lo, side="left"))
                    hi = a + int(np.searchsorted(run, lat_hi, side="right"))
                    if hi > lo:
                        spans.append((lo, hi))
        if not spans:
            empty = np.empty(0, dtype=np.float64)
            return np.empty(0, dtype=np.uint32), empty, empty
        pick = np.concatenate([np.arange(a, b) for a, b in spans])
        return self.slots[pick], self.lon[pick], self.lat[pick]

    def answer(self, condition, gen, live, n):
        kind = condition[0]
        if kind == "geo_bbox":
            left, top, right, bottom = condition[1]
            slots, lons, lats = self._candidates(_box_bands(left, right), bottom, top)
            inside = (lats > bottom) & (lats < top)
            inside &= ((lons > left) | (lons < right)) if left > right else ((lons > left) & (lons < right))
            yes = slots_mask(slots[inside], n) if inside.any() else None
            return yes, yes
        if kind == "geo_radius":
            # The in-memory index's latitude band and sure/maybe margins, from fewer candidates.
            lon, lat, radius = condition[1]
            margin = radius / 111_000.0 + 1e-6
            slots, lons, lats = self._candidates(_circle_bands(lon, lat, radius), lat - margin, lat + margin)
            d = haversine_m_array(lon, lat, lons, lats)
            sure = d < radius * (1 - 1e-9)
            maybe = d < radius * (1 + 1e-9) + 1e-6
            yes = slots_mask(slots[sure], n) if sure.any() else None
            return yes, (slots_mask(slots[maybe], n) if maybe.any() else None)
        if kind == "geo_polygon":  # the bounding box narrows, the payload check decides
            min_lon, min_lat, max_lon, max_lat = condition[1]
            eps = 1e-9
            bands = _span_bands(min_lon - eps, max_lon + eps)
            slots, lons, lats = self._candidates(bands, min_lat - eps, max_lat + eps)
            maybe = (lons >= min_lon - eps) & (lons <= max_lon + eps)
            return None, (slots_mask(slots[maybe], n) if maybe.any() else None)
        return None

    def _check_layout(self) -> None:
        super()._check_layout()
        offsets = self._offsets
        if offsets[0] != 0 or offsets[-1] != len(self.slots) or any(b < a for a, b in zip(offsets, offsets[1:])):
            self._corrupt("band offsets do not rise from 0 to the entry count")

    def _check_entries(self, a: int, b: int) -> None:
        """Each entry in the band its coordinates give, each band sorted by (lat, slot)."""
        super()._check_entries(a, b)
        c = min(b + 1, len(self.slots))  # entries a..c-1: the chunk and the next one's first
        bands = np.searchsorted(self.band_offsets, np.arange(a, c, dtype=np.uint64), side="right").astype(np.int64) - 1
        if not np.array_equal(_bands_of(self.lon[a:c], self.lat[a:c]), bands):
            self._corrupt("an entry is in the wrong longitude band")
        same_band = bands[:-1] == bands[1:]
        lat, slots = self.lat[a:c], self.slots[a:c]
        problem = _pair_problem(lat[:-1][same_band], lat[1:][same_band], slots[:-1][same_band], slots[1:][same_band],
                                distinct_slots=False)
        if problem:
            band = int(bands[:-1][same_band][0])
            self._corrupt(f"a band is not sorted by latitude (band {band} or later): {problem}")

def _band_of(lon: float) -> int:
    """The band of a query longitude, clipped to 0..179 (the build's arithmetic, `_bands_of`)."""
    return int(min(_BANDS - 1, max(0, math.floor((lon + 180.0) / _BAND_DEGREES))))


def _span_bands(lo: float, hi: float) -> tuple[tuple[int, int], ...]:
    """Bands holding the valid longitudes in [lo, hi] (no wrap)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return _ALL_BANDS
    if lo > hi:
        return ()
    return ((_band_of(lo), _band_of(hi)),)


def _box_bands(left: float, right: float) -> tuple[tuple[int, int], ...]:
    """Bands of a bounding box's longitudes: left < lon < right, or, when left > right (the
    box crosses the antimeridian), lon > left or lon < right."""
    if not (math.isfinite(left) and math.isfinite(right)):
        return _ALL_BANDS
    if left > right:
        return ((_band_of(left), _BANDS - 1), (0, _band_of(right)))
    return ((_band_of(left), _band_of(right)),)


def _circle_bands(lon: float, lat: float, radius: float) -> tuple[tuple[int, int], ...]:
    """Bands that can hold a point the radius test may count (distance below
    radius (1 + 1e-9) + 1e-6 m): the circle's longitude span, wrapped at ±180."""
    if not (math.isfinite(lon) and math.isfinite(lat) and math.isfinite(radius)) or abs(lat) > 90.0:
        return _ALL_BANDS
    delta = (radius * (1 + 1e-9) + 1e-6) / EARTH_RADIUS_M  # angular radius, radians
    phi = math.radians(lat)
    if abs(phi) + delta >= math.pi / 2 - _POLE_SLACK:
        return _ALL_BANDS  # the cap holds a pole: every longitude
    ratio = math.sin(delta) / math.cos(phi)
    if ratio >= 1.0:
        return _ALL_BANDS
    half = math.degrees(math.asin(ratio)) + _CIRCLE_LON_PAD
    if half >= 180.0:
        return _ALL_BANDS
    centre = (lon + 180.0) % 360.0 - 180.0  # the haversine is periodic in longitude
    lo, hi = centre - half, centre + half
    if lo < -180.0:
        return ((_band_of(lo + 360.0), _BANDS - 1), (0, _band_of(hi)))
    if hi > 180.0:
        return ((_band_of(lo), _BANDS - 1), (0, _band_of(hi - 360.0)))
    return ((_band_of(lo), _band_of(hi)),)


# ---------------------------------------------------------------------------------------
# Helpers.
# ---------------------------------------------------------------------------------------


def pick_ordered(
    values: np.ndarray, slots: np.ndarray, limit: int, descending: bool, id_of: Callable[[int], PointId]
) -> list[tuple[float, PointId]]:
    """The first `limit` (value, id) of an `ordered_prefix`, equal values in id order
    (reversed when descending): `AppendableSegment._first_entries`' tie rule."""
    picked = []
    for value, slot in zip(values.tolist(), slots.tolist()):
        point_id = id_of(slot)
        picked.append((value, id_sort_key(point_id), point_id))
    picked.sort(key=lambda p: (p[0], p[1]), reverse=descending)
    return [(value, point_id) for value, _, point_id in picked[:limit]]


def _complement(spans: list[tuple[int, int]], total: int) -> list[tuple[int, int]]:
    """The parts of [0, total) outside sorted, disjoint spans."""
    out, at = [], 0
    for a, b in spans:
        if a > at:
            out.append((at, a))
        at = max(at, b)
    if at < total:
        out.append((at, total))
    return out


def _fit(mask: np.ndarray, n: int) -> np.ndarray:
    """A stored (built-size) mask at the caller's length n."""
    if len(mask) == n:
        return mask
    fitted = np.zeros(n, dtype=bool)
    m = min(n, len(mask))
    fitted[:m] = mask[:m]
    return fitted


_READERS: dict[str, type[_DiskRunIndex]] = {
    "integer": IntegerRunIndex,
    "float": FloatRunIndex,
    "datetime": DatetimeRunIndex,
    "geo": GeoBandIndex,
}
