"""Payload field indexes of one segment: keyword, integer, float, bool, datetime, uuid, geo, text.

Every index maps a field's values to the segment's slots and answers filter conditions
with slot masks (see `filter_plan.py` for how answers combine). The rules that keep them
simple and cheap to maintain:

- Append-only entries. An index never removes an entry. Each entry records the slot's
  payload generation (`PayloadIndexes.gen[slot]`) when it was added; a payload changed in
  place bumps the generation and adds new entries, so old entries stop counting. Dead
  slots (deleted or moved points) are masked by the segment's `live` array. Entries that no
  longer count are dropped lazily when a posting list or sorted run is rebuilt.
- Same values as a scan. An index sees exactly the values a filter condition compares: what
  the key path reaches, with arrays opened one level (`field_values`). Values the index
  cannot hold (an integer under a keyword index, a string that is no UUID under a uuid
  index, ...) are remembered per slot in `other`, so a condition that such values could
  satisfy is answered with "maybe" for those slots and checked on the payload.
- An answer is a pair of masks over slots, (yes, upper): slots in `yes` certainly match,
  slots outside `upper` certainly do not, and the rest need a payload check. An index that
  cannot say anything useful returns None.

All structures live in memory and are rebuilt from the stored payloads when a segment
opens (docs/filtering.md says why and what it costs).
"""

from __future__ import annotations

import gc
import uuid as uuid_module
from typing import TypeAlias
from collections.abc import Iterable

import numpy as np

from pydrant.errors import BadInput
from pydrant.segments.filter_datetime import parse_payload_datetime
from pydrant.segments.geo import haversine_m_array
from pydrant.segments.payload import field_values, parse_path

_MAX_EXACT_INT = 1 << 53  # integers beyond this are not exact as float64: left to the scan

Mask: TypeAlias = "np.ndarray | bool | None"  # a bool array over slots; True = every slot, None = none


# ---------------------------------------------------------------------------------------
# Storage pieces: posting lists and sorted runs of (value, slot, generation).
# ---------------------------------------------------------------------------------------


class _Posting:
    """Slots (with the generation of their payload) that hold one value; append-only."""

    __slots__ = ("slots", "gens", "_new_slots", "_new_gens")

    def __init__(self):
        self.slots = np.empty(0, dtype=np.int32)
        self.gens = np.empty(0, dtype=np.uint32)
        self._new_slots: list[int] = []
        self._new_gens: list[int] = []

    def append(self, slot: int, gen: int) -> None:
        self._new_slots.append(slot)
        self._new_gens.append(gen)

    def _consolidate(self) -> None:
        if self._new_slots:
            self.slots = np.concatenate([self.slots, np.asarray(self._new_slots, dtype=np.int32)])
            self.gens = np.concatenate([self.gens, np.asarray(self._new_gens, dtype=np.uint32)])
            self._new_slots, self._new_gens = [], []

    def valid_slots(self, gen: np.ndarray, live: np.ndarray) -> np.ndarray:
        """Slots whose entry is current; drops the stale ones for good when they are many."""
        self._consolidate()
        slots = self.slots
        if not len(slots):
            return slots
        ok = (gen[slots] == self.gens) & live[slots]
        kept = int(np.count_nonzero(ok))
        if kept == len(slots):
            return slots
        if kept * 2 < len(slots):  # mostly stale: compact (a dead or rewritten slot never comes back)
            self.slots, self.gens = slots[ok], self.gens[ok]
            return self.slots
        return slots[ok]

    def nbytes(self) -> int:
        return self.slots.nbytes + self.gens.nbytes + 16 * len(self._new_slots) + 64


class _SortedRun:
    """(value, slot, gen) entries sorted by value for range queries, plus a small unsorted tail.

    The tail takes appends; a query merges it in once it outgrows 1/8 of the run (so the
    amortised cost of an insert stays O(log n)) and scans it with numpy otherwise.
    """

    def __init__(self, dtype=np.float64):
        self.dtype = dtype
        self.values = np.empty(0, dtype=dtype)
        self.slots = np.empty(0, dtype=np.int32)
        self.gens = np.empty(0, dtype=np.uint32)
        self.aux = np.empty(0, dtype=np.float64)  # a second value per entry (geo: longitude)
        self._tail_values: list = []
        self._tail_slots: list[int] = []
        self._tail_gens: list[int] = []
        self._tail_aux: list[float] = []

    def append(self, value, slot: int, gen: int, aux: float = 0.0) -> None:
        self._tail_values.append(value)
        self._tail_slots.append(slot)
        self._tail_gens.append(gen)
        self._tail_aux.append(aux)

    def __len__(self) -> int:
        return len(self.values) + len(self._tail_values)

    def settle(self, gen: np.ndarray, live: np.ndarray, force: bool = False) -> None:
        """Merge the tail into the sorted run when it is large (or when `force`)."""
        tail = len(self._tail_values)
        if not tail or (not force and tail < max(1024, len(self.values) // 8)):
            return
        values = np.concatenate([self.values, np.asarray(self._tail_values, dtype=self.dtype)])
        slots = np.concatenate([self.slots, np.asarray(self._tail_slots, dtype=np.int32)])
        gens = np.concatenate([self.gens, np.asarray(self._tail_gens, dtype=np.uint32)])
        aux = np.concatenate([self.aux, np.asarray(self._tail_aux, dtype=np.float64)])
        self._tail_values, self._tail_slots, self._tail_gens, self._tail_aux = [], [], [], []
        ok = (gen[slots] == gens) & live[slots]  # drop what no longer counts
        values, slots, gens, aux = values[ok], slots[ok], gens[ok], aux[ok]
        order = np.lexsort((slots, values))
        self.values, self.slots, self.gens, self.aux = values[order], slots[order], gens[order], aux[order]

    def select(self, gen: np.ndarray, live: np.ndarray, test_sorted, test_all) -> np.ndarray:
        """Current slots whose value passes: `test_sorted(values) -> slice` on the sorted run,
        `test_all(values) -> bool array` on the tail."""
        self.settle(gen, live)
        part = test_sorted(self.values)
        slots, gens = self.slots[part], self.gens[part]
        if self._tail_values:
            tail_values = np.asarray(self._tail_values, dtype=self.dtype)
            hit = test_all(tail_values)
            slots = np.concatenate([slots, np.asarray(self._tail_slots, dtype=np.int32)[hit]])
            gens = np.concatenate([gens, np.asarray(self._tail_gens, dtype=np.uint32)[hit]])
        return slots[gen[slots] == gens]

    def nbytes(self) -> int:
        arrays = self.values.nbytes + self.slots.nbytes + self.gens.nbytes + self.aux.nbytes
        return arrays + 64 * len(self._tail_values)


def slots_mask(slots: np.ndarray, n: int) -> np.ndarray:
    mask = np.zeros(n, dtype=bool)
    mask[slots] = True
    return mask


# ---------------------------------------------------------------------------------------
# Field indexes.
# ---------------------------------------------------------------------------------------


class FieldIndex:
    """One payload field's index in one segment. Subclasses say which values they hold
    (`_accept`) and which conditions they answer (`answer`)."""

    data_type = ""

    def __init__(self, key: str, params: dict):
        self.key = key
        self.path = parse_path(key)
        self.params = params
        self.schema = None  # the field_schema as declared (set by make_index)
        self.present = _Posting()  # slots with at least one indexed value
        self.other = _Posting()  # slots with a value this index does not hold

    # -- building --

    def add(self, slot: int, gen: int, values: list) -> None:
        held = False
        foreign = False
        seen = set()
        for value in values:
            item = self._accept(value)
            if item is _REJECT:
                foreign = True
            elif item not in seen:  # one index holds one kind of value, so == is identity here
                seen.add(item)
                held = True
                self._hold(item, slot, gen)
        if held:
            self.present.append(slot, gen)
        if foreign:
            self.other.append(slot, gen)

    def _accept(self, value):
        """The value as this index holds it, or _REJECT."""
        raise NotImplementedError

    def _hold(self, item, slot: int, gen: int) -> None:
        raise NotImplementedError

    # -- reading --

    def points(self, gen: np.ndarray, live: np.ndarray) -> int:
        return len(self.present.valid_slots(gen, live))

    def answer(self, condition: tuple, gen: np.ndarray, live: np.ndarray, n: int):
        """(yes, upper) masks for a condition (see filter_plan.py), or None."""
        return None

    def other_mask(self, gen, live, n) -> Mask:
        slots = self.other.valid_slots(gen, live)
        return slots_mask(slots, n) if len(slots) else None

    def nbytes(self) -> int:
        return self.present.nbytes() + self.other.nbytes()


class _Reject:
    __slots__ = ()


_REJECT = _Reject()


class MapIndex(FieldIndex):
    """value -> posting list: keyword, uuid and bool."""

    value_type: type = str

    def __init__(self, key: str, params: dict):
        super().__init__(key, params)
        self.postings: dict = {}

    def _accept(self, value):
        return value if type(value) is self.value_type else _REJECT

    def _hold(self, item, slot: int, gen: int) -> None:
        posting = self.postings.get(item)
        if posting is None:
            posting = self.postings[item] = _Posting()
        posting.append(slot, gen)

    def lookup(self, values: Iterable, gen, live, n) -> Mask:
        parts = [self.postings[v].valid_slots(gen, live) for v in values if v in self.postings]
        parts = [p for p in parts if len(p)]
        if not parts:
            return None
        return slots_mask(np.concatenate(parts) if len(parts) > 1 else parts[0], n)

    def holds_kind(self, value) -> bool:
        return type(value) is self.value_type

    def answer(self, condition, gen, live, n):
        kind = condition[0]
        if kind == "value":
            value = condition[1]
            if self.holds_kind(value):
                mask = self.lookup([value], gen, live, n)
                return mask, mask
            return None, self.other_mask(gen, live, n)
        if kind == "any":
            values, is_strings = condition[1], condition[2]
            if self._list_kind_matches(is_strings):
                mask = self.lookup(values, gen, live, n)
                return mask, mask
            return None, self.other_mask(gen, live, n)
        if kind == "except":
            values, is_strings = condition[1], condition[2]
            other = self.other_mask(gen, live, n)
            if self._list_kind_matches(is_strings):
                keep = [v for v in self.postings if v not in values]
                yes = self.lookup(keep, gen, live, n)
            else:  # every held value is of another kind than the list: all of them match
                present = self.present.valid_slots(gen, live)
                yes = slots_mask(present, n) if len(present) else None
            return yes, _or(yes, other)
        return None

    def _list_kind_matches(self, is_strings: bool) -> bool:
        return self.value_type is str and is_strings

    def facet_counts(self, gen, live, selected: np.ndarray | None) -> dict:
        """value -> number of current points holding it (among `selected` slots if given)."""
        counts = {}
        for value, posting in self.postings.items():
            slots = posting.valid_slots(gen, live)
            count = int(np.count_nonzero(selected[slots])) if selected is not None else len(slots)
            if count:
                counts[value] = count
        return counts

    def nbytes(self) -> int:
        return super().nbytes() + sum(p.nbytes() + 100 for p in self.postings.values())


class KeywordIndex(MapIndex):
    data_type = "keyword"
    value_type = str


class UuidIndex(MapIndex):
    """Strings that are UUIDs, matched as the strings they are (as an unindexed filter does)."""

    data_type = "uuid"
    value_type = str

    def _accept(self, value):
        if type(value) is not str:
            return _REJECT
        try:
            uuid_module.UUID(value)
        except ValueError:
            return _REJECT
        return value

    def holds_kind(self, value) -> bool:
        return self._accept(value) is not _REJECT

    def answer(self, condition, gen, live, n):
        if condition[0] == "any" and condition[2]:
            values = condition[1]
            if not all(self.holds_kind(v) for v in values):  # a non-UUID string could be in `other`
                mask = self.lookup([v for v in values if self.holds_kind(v)], gen, live, n)
                return mask, _or(mask, self.other_mask(gen, live, n))
        return super().answer(condition, gen, live, n)


class BoolIndex(MapIndex):
    data_type = "bool"
    value_type = bool

    def _list_kind_matches(self, is_strings: bool) -> bool:
        return False


class _RunIndex(FieldIndex):
    """An index with a `_SortedRun` of float64 values: range conditions and ordered reads
    (integer, float, datetime; geo keeps latitudes in one)."""

    def __init__(self, key: str, params: dict):
        super().__init__(key, params)
        self.run = _SortedRun()

    def nbytes(self) -> int:
        return super().nbytes() + self.run.nbytes()

    def range_slots(self, gen, live, lo, lo_strict, hi, hi_strict) -> np.ndarray:
        def sorted_part(values):
            start = 0 if lo is None else np.searchsorted(values, lo, side="right" if lo_strict else "left")
            stop = len(values) if hi is None else np.searchsorted(values, hi, side="left" if hi_strict else "right")
            return slice(int(start), int(max(start, stop)))

        def tail_part(values):
            ok = np.ones(len(values), dtype=bool)
            if lo is not None:
                ok &= values > lo if lo_strict else values >= lo
            if hi is not None:
                ok &= values < hi if hi_strict else values <= hi
            return ok

        return self.run.select(gen, live, sorted_part, tail_part)

    def range_mask(self, bounds: tuple, gen, live, n) -> Mask:
        gt, gte, lt, lte = bounds
        lo, lo_strict = _tighter_low(gt, gte)
        hi, hi_strict = _tighter_high(lt, lte)
        slots = self.range_slots(gen, live, lo, lo_strict, hi, hi_strict)
        return slots_mask(slots, n) if len(slots) else None

    def ordered_entries(self, gen, live) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(values, slots, gens) of every entry, sorted by value then slot."""
        self.run.settle(gen, live, force=True)
        return self.run.values, self.run.slots, self.run.gens


def _tighter_low(gt, gte):
    if gt is None and gte is None:
        return None, False
    if gte is None or (gt is not None and gt >= gte):
        return gt, True
    return gte, False


def _tighter_high(lt, lte):
    if lt is None and lte is None:
        return None, False
    if lte is None or (lt is not None and lt <= lte):
        return lt, True
    return lte, False


class IntegerIndex(_RunIndex):
    """Integers (not booleans) in one sorted run: `lookup` answers matches and facets from
    it (equal-value ranges), `range` answers ranges and order_by. One run rather than a
    value map as well: a map holds an object per distinct value, which at a million
    distinct integers costs ~400 MB and seconds of garbage collection for no speed gained."""

    data_type = "integer"

    def __init__(self, key: str, params: dict):
        super().__init__(key, params)
        self.has_lookup = params.get("lookup") is not False
        self.has_range = params.get("range") is not False

    def _accept(self, value):
        if type(value) is int and -_MAX_EXACT_INT <= value <= _MAX_EXACT_INT:
            return value
        return _REJECT

    def _hold(self, item, slot, gen) -> None:
        self.run.append(float(item), slot, gen)

    def _equal_to(self, values: Iterable[int], gen, live, n) -> Mask:
        mask = None
        for v in values:
            mask = _or(mask, self.range_mask((None, float(v), None, float(v)), gen, live, n))
        return mask

    def answer(self, condition, gen, live, n):
        kind = condition[0]
        if kind == "range" and self.has_range:
            yes = self.range_mask(condition[1], gen, live, n)
            return yes, _or(yes, self.other_mask(gen, live, n))  # floats are in `other`
        if kind == "value" and (self.has_lookup or self.has_range):
            if type(condition[1]) is not int or not _exact_int(condition[1]):
                return None, self.other_mask(gen, live, n)
            mask = self._equal_to([condition[1]], gen, live, n)
            return mask, mask
        if kind == "any" and self.has_lookup:
            if condition[2]:  # a list of strings: only values outside the index can match
                return None, self.other_mask(gen, live, n)
            # The run compares as float64: an integer beyond 2**53 would match its rounded
            # neighbour. Such values are never in the run (`_accept`), only in `other`.
            exact = [v for v in condition[1] if _exact_int(v)]
            mask = self._equal_to(exact, gen, live, n)
            return mask, (mask if len(exact) == len(condition[1]) else _or(mask, self.other_mask(gen, live, n)))
        if kind == "except" and self.has_lookup:
            values, slots = self._current(gen, live)
            if not condition[2]:
                listed = np.fromiter((float(v) for v in condition[1] if _exact_int(v)), dtype=np.float64)
                slots = slots[~np.isin(values, listed)]
            yes = slots_mask(slots, n) if len(slots) else None
            return yes, _or(yes, self.other_mask(gen, live, n))
        return None

    def _current(self, gen, live) -> tuple[np.ndarray, np.ndarray]:
        values, slots, gens = self.ordered_entries(gen, live)
        ok = (gen[slots] == gens) & live[slots]
        return values[ok], slots[ok]

    def facet_counts(self, gen, live, selected: np.ndarray | None) -> dict:
        values, slots = self._current(gen, live)
        if selected is not None:
            values = values[selected[slots]]
        unique, counts = np.unique(values, return_counts=True)
        return {int(v): int(c) for v, c in zip(unique.tolist(), counts.tolist())}


def _exact_int(value: int) -> bool:
    """Whether float64 holds `value` exactly (the integer index's run compares as float64)."""
    return -_MAX_EXACT_INT <= value <= _MAX_EXACT_INT


class FloatIndex(_RunIndex):
    """Numbers (integers and floats, as float64) in a sorted run."""

    data_type = "float"

    def _accept(self, value):
        t = type(value)
        if t is float or (t is int and -_MAX_EXACT_INT <= value <= _MAX_EXACT_INT):
            return float(value)
        return _REJECT

    def _hold(self, item, slot, gen) -> None:
        self.run.append(item, slot, gen)

    def answer(self, condition, gen, live, n):
        if condition[0] == "range":
            yes = self.range_mask(condition[1], gen, live, n)
            return yes, _or(yes, self.other_mask(gen, live, n))
        return None


class DatetimeIndex(_RunIndex):
    """Datetime strings as microseconds since the epoch (UTC) in a sorted run."""

    data_type = "datetime"

    def _accept(self, value):
        if type(value) is str:
            micros = parse_payload_datetime(value)
            if micros is not None:
                return micros
        return _REJECT

    def _hold(self, item, slot, gen) -> None:
        self.run.append(float(item), slot, gen)

    def answer(self, condition, gen, live, n):
        if condition[0] == "datetime_range":
            # float64 holds microseconds exactly until the year 2255
            bounds = tuple(None if b is None else float(b) for b in condition[1])
            yes = self.range_mask(bounds, gen, live, n)
            return yes, yes  # nothing outside the index is a datetime
        if condition[0] == "range":
            return None, self.other_mask(gen, live, n)  # numbers live in `other`
        return None


class GeoIndex(_RunIndex):
    """{"lon", "lat"} points sorted by latitude (the run's value; longitude is its aux):
    a band by binary search, then numpy checks."""

    data_type = "geo"

    def _accept(self, value):
        if type(value) is dict:
            lon, lat = value.get("lon"), value.get("lat")
            if type(lon) in (int, float) and type(lat) in (int, float):
                return (float(lon), float(lat))
        return _REJECT

    def _hold(self, item, slot, gen) -> None:
        lon, lat = item
        self.run.append(lat, slot, gen, lon)

    def _band(self, gen, live, lat_lo: float, lat_hi: float):
        """(slots, lons, lats) of current entries with lat_lo <= lat <= lat_hi."""
        run = self.run
        run.settle(gen, live, force=True)
        start = int(np.searchsorted(run.values, lat_lo, side="left"))
        stop = int(np.searchsorted(run.values, lat_hi, side="right"))
        slots, gens = run.slots[start:stop], run.gens[start:stop]
        ok = gen[slots] == gens
        return slots[ok], run.aux[start:stop][ok], run.values[start:stop][ok]

    def answer(self, condition, gen, live, n):
        kind = condition[0]
        if kind == "geo_bbox":
            left, top, right, bottom = condition[1]
            slots, lons, lats = self._band(gen, live, bottom, top)
            inside = (lats > bottom) & (lats < top)
            inside &= ((lons > left) | (lons < right)) if left > right else ((lons > left) & (lons < right))
            yes = slots_mask(slots[inside], n) if inside.any() else None
            return yes, yes
        if kind == "geo_radius":
            # Sure inside / sure outside by a relative margin; the few points on the rim
            # are left to the payload check so the answer equals the scan's to the last bit.
            lon, lat, radius = condition[1]
            margin = radius / 111_000.0 + 1e-6  # degrees of latitude the circle can span
            slots, lons, lats = self._band(gen, live, lat - margin, lat + margin)
            d = haversine_m_array(lon, lat, lons, lats)
            sure = d < radius * (1 - 1e-9)
            maybe = d < radius * (1 + 1e-9) + 1e-6
            yes = slots_mask(slots[sure], n) if sure.any() else None
            return yes, (slots_mask(slots[maybe], n) if maybe.any() else None)
        if kind == "geo_polygon":  # the polygon's bounding box narrows, the payload check decides
            min_lon, min_lat, max_lon, max_lat = condition[1]
            eps = 1e-9
            slots, lons, lats = self._band(gen, live, min_lat - eps, max_lat + eps)
            maybe = (lons >= min_lon - eps) & (lons <= max_lon + eps)
            return None, (slots_mask(slots[maybe], n) if maybe.any() else None)
        return None


class TextIndex(FieldIndex):
    """Full-text: term -> posting list, terms from the index's `TextAnalyzer`.

    `match.text` (every query term) and `text_any` (some term) are answered exactly from
    the postings; `phrase` narrows candidates to points holding every term, and the
    payload check compares positions (re-tokenising the stored text).
    """

    data_type = "text"

    def __init__(self, key: str, params: dict):
        super().__init__(key, params)
        from pydrant.segments.text_analyzer import TextAnalyzer

        self.analyzer = TextAnalyzer.from_params(params)
        self.postings: dict[str, _Posting] = {}

    def _accept(self, value):
        return value if type(value) is str else _REJECT

    def add(self, slot: int, gen: int, values: list) -> None:
        # A point's terms are the union over its strings: dedupe across them.
        strings = [v for v in values if type(v) is str]
        foreign = len(strings) != len(values)
        if strings:
            terms: set[str] = set()
            for text in strings:
                terms.update(term for _, term in self.analyzer.document_terms(text))
            for term in terms:
                posting = self.postings.get(term)
                if posting is None:
                    posting = self.postings[term] = _Posting()
                posting.append(slot, gen)
            self.present.append(slot, gen)
        if foreign:
            self.other.append(slot, gen)

    def _term_slots(self, term: str, gen, live) -> np.ndarray:
        posting = self.postings.get(term)
        return posting.valid_slots(gen, live) if posting is not None else np.empty(0, dtype=np.int32)

    def _all_terms(self, terms: list[str], gen, live, n) -> Mask:
        if not terms:
            return None
        ordered = sorted(set(terms), key=lambda t: len(self.postings[t].slots) if t in self.postings else 0)
        result = self._term_slots(ordered[0], gen, live)
        if not len(result):
            return None
        for term in ordered[1:]:
            slots = self._term_slots(term, gen, live)
            if not len(slots):
                return None
            # valid slots of one posting are distinct (one entry per slot and generation)
            result = np.intersect1d(result, slots, assume_unique=True)
            if not len(result):
                return None
        return slots_mask(result, n)

    def answer(self, condition, gen, live, n):
        kind = condition[0]
        if kind not in ("text", "text_any", "phrase"):
            return None
        terms = self.analyzer.query_terms(condition[1])
        if kind == "phrase":
            if not self.analyzer.phrase_matching:  # Qdrant: no positions kept, no phrase matches
                return None, None
            return None, self._all_terms(list(terms.phrase), gen, live, n)
        if kind == "text":
            mask = self._all_terms(terms, gen, live, n)
            return mask, mask
        if kind == "text_any":
            parts = [self._term_slots(t, gen, live) for t in set(terms)]
            parts = [p for p in parts if len(p)]
            mask = slots_mask(np.concatenate(parts), n) if parts else None
            return mask, mask
        return None

    def nbytes(self) -> int:
        return super().nbytes() + sum(p.nbytes() + 100 for p in self.postings.values())


def _or(a, b):
    if a is None:
        return b
    if b is None:
        return a
    if a is True or b is True:
        return True
    return a | b


INDEX_CLASSES: dict[str, type[FieldIndex]] = {
    "keyword": KeywordIndex,
    "integer": IntegerIndex,
    "float": FloatIndex,
    "bool": BoolIndex,
    "datetime": DatetimeIndex,
    "uuid": UuidIndex,
    "geo": GeoIndex,
    "text": TextIndex,
}


def schema_type(field_schema) -> str:
    return field_schema if isinstance(field_schema, str) else field_schema.get("type")


def schema_params(field_schema) -> dict:
    return {} if isinstance(field_schema, str) else dict(field_schema)


def make_index(key: str, field_schema) -> FieldIndex:
    data_type = schema_type(field_schema)
    cls = INDEX_CLASSES.get(data_type)
    if cls is None:
        raise BadInput(f"Wrong input: unknown payload index type {data_type!r} for field `{key}`")
    index = cls(key, schema_params(field_schema))
    index.schema = field_schema
    return index


# ---------------------------------------------------------------------------------------
# A segment's set of indexes.
# ---------------------------------------------------------------------------------------


class PayloadIndexes:
    """The field indexes of one segment and the per-slot payload generation they share."""

    def __init__(self, capacity: int):
        self.gen = np.zeros(capacity, dtype=np.uint32)
        self.by_key: dict[str, FieldIndex] = {}
        self.by_path: dict[tuple, FieldIndex] = {}  # the same indexes, by parsed path

    def __bool__(self) -> bool:
        return bool(self.by_key)

    def grow(self, capacity: int) -> None:
        if capacity > len(self.gen):
            gen = np.zeros(capacity, dtype=np.uint32)
            gen[: len(self.gen)] = self.gen
            self.gen = gen

    def differences(self, fields: dict) -> tuple[dict, list[str]]:
        """(indexes to build: key -> schema, keys to drop) to reach `fields`."""
        build = {k: s for k, s in fields.items() if k not in self.by_key or self.by_key[k].schema != s}
        drop = [k for k in self.by_key if k not in fields]
        return build, drop

    def install(self, built: dict[str, FieldIndex], drop: Iterable[str]) -> None:
        for key in drop:
            self.by_key.pop(key, None)
        self.by_key.update(built)
        self.by_path = {index.path: index for index in self.by_key.values()}

    def add(self, slot: int, payload: dict) -> None:
        """Index a slot's payload under its current generation."""
        _index_payload(self.by_key.values(), slot, int(self.gen[slot]), payload)

    def replace(self, slot: int, payload: dict) -> None:
        """The slot's payload changed in place: its old entries stop counting."""
        if not self.by_key:
            return
        self.gen[slot] += 1
        self.add(slot, payload)

    def for_path(self, path: tuple) -> FieldIndex | None:
        return self.by_path.get(path)

    def info(self, live: np.ndarray) -> dict:
        return {key: {"points": index.points(self.gen, live), "ram_bytes": index.nbytes()} for key, index in self.by_key.items()}


def _index_payload(indexes: Iterable[FieldIndex], slot: int, gen: int, payload: dict) -> None:
    for index in indexes:
        values = field_values(payload, index.path)
        if values:
            index.add(slot, gen, values)


def build_indexes(schemas: dict, payloads: Iterable[tuple[int, dict]], gen: np.ndarray) -> dict[str, FieldIndex]:
    """New indexes for `schemas` (key -> field_schema) filled from (slot, payload) pairs."""
    indexes = {key: make_index(key, schema) for key, schema in schemas.items()}
    targets = list(indexes.values())
    # A build makes millions of small objects that are never cyclic garbage; the cyclic
    # collector would otherwise rescan them again and again (2x the build time at 1M).
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        for slot, payload in payloads:
            _index_payload(targets, slot, int(gen[slot]), payload)
    finally:
        if was_enabled:
            gc.enable()
    return indexes

