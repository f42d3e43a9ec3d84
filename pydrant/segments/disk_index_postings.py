"""On-disk keyword, uuid, bool and full-text payload indexes of immutable segments
(issue 17, step P3a; docs/design/on-disk-segments.md §2.5).

An immutable segment's payloads never change after its build, so its value-map and text
indexes are built once, written as plain numpy arrays (a pack file stores them, mapped
read-only) and answered straight from those arrays: opening one costs O(1), not a rebuild.
The answers are exactly those of the in-memory indexes of `field_index.py` over the same
payloads and the same `live` mask (tests/segments/test_disk_index_postings.py checks this
differentially), so `filter_plan.evaluate`, facets and tenant graphs cannot tell them apart.

Layout (one table of sorted keys with a posting list per key; every array little-endian):

    keys_blob     u1   (B,)    the distinct keys, concatenated; a key is the value's UTF-8
                               bytes (bool: b"false" / b"true"; text: the analyzer's terms)
    key_offsets   <u8  (V+1,)  key i is keys_blob[key_offsets[i]:key_offsets[i+1]];
                               keys strictly ascending bytewise (= code point order)
    post_offsets  <u8  (V+1,)  key i's posting is post_slots[post_offsets[i]:post_offsets[i+1]]
    post_slots    <u4  (P,)    slots holding the key, strictly ascending within a posting
    present       bool (n,)    the slot holds at least one value the index holds
    other         bool (n,)    the slot has a value the index cannot hold (an int under a
                               keyword index, a string that is no UUID under a uuid index)

`present` and `other` have exactly the meaning of `FieldIndex.present`/`other`. The meta
dict (JSON-able) records the format, type, key, schema and the three sizes n, V, P; the
reader checks every array's dtype and shape against it at open (O(1)), and `check()` walks
the structure (O(P + V), meant for the background verification of P7).

Decisions taken against the design's first sketch, and why:

- `match.except` is "some value of the slot is not listed" (what the in-memory index and
  Qdrant answer), i.e. the union of the postings of the *unlisted* keys -- not "present
  minus the listed postings", which drops a slot holding ["a", "b"] from `except: ["a"]`.
  Computed as an O(P) entry mask, with `present` as the shortcut when no listed key exists.
- No `counts` array: a slot appears once per key, so a key's count is its posting length
  (`np.diff(post_offsets)`), used for facets when nothing is deleted.
- Facet counts over deleted or selected slots use a cumulative sum over the posting
  entries and differences at the offsets, not `np.add.reduceat` (which returns the
  element itself, not 0, for an empty slice). Nothing is cached: a facet is one O(P) pass.
- One table layout (`keys_*`) for all four types, text included (the sketch named text's
  `terms_*`), so one reader serves lookups, facets and term postings alike.

Reading never writes into the arrays (mapped packs are read-only), and every access is
numpy indexing, which is bounds-checked: a corrupt pack can give wrong answers or an
IndexError, never a crash. Answers exclude dead slots (`live[slot]` False) like the
in-memory indexes; `gen` is accepted and ignored (no in-place payload updates).

Building (`PostingsIndexBuilder`, or `build_postings_index` for one pass over an iterable)
is CPU work in Python per point (and per string for text: the analyzer is pure Python):
call it from a worker thread, never the event loop.
"""

from __future__ import annotations

import uuid as uuid_module
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from typing import TypeAlias

import numpy as np

from pydrant.segments.field_index import _or  # the in-memory indexes' mask union
from pydrant.segments.field_index import schema_params, schema_type, slots_mask
from pydrant.segments.payload import field_values, parse_path
from pydrant.segments.text_analyzer import TextAnalyzer

FORMAT = 1  # layout version of these arrays; a reader refuses a newer one
POSTINGS_TYPES = ("keyword", "uuid", "bool", "text")

Mask: TypeAlias = "np.ndarray | bool | None"  # as field_index.Mask: None = no slot, True = every slot

_DTYPES = {
    "keys_blob": np.dtype("u1"),
    "key_offsets": np.dtype("<u8"),
    "post_offsets": np.dtype("<u8"),
    "post_slots": np.dtype("<u4"),
    "present": np.dtype("bool"),
    "other": np.dtype("bool"),
}
_MAX_SLOTS = 1 << 32  # post_slots are u4
_CHECK_CHUNK = 1 << 20  # entries per step of check(): bounded temporaries at any size


# ---------------------------------------------------------------------------------------
# Which values each index holds (the rules of field_index.py's classes), and key bytes.
# ---------------------------------------------------------------------------------------


def _is_uuid_string(value) -> bool:
    if type(value) is not str:
        return False
    try:
        uuid_module.UUID(value)
    except ValueError:
        return False
    return True


# data type -> test of a payload value (and of a query value) the index holds
_HOLDS = {
    "keyword": lambda value: type(value) is str,
    "uuid": _is_uuid_string,
    "bool": lambda value: type(value) is bool,
    "text": lambda value: type(value) is str,
}


def _key_bytes(value) -> bytes:
    """A held value (or text term) as its key. UTF-8 with surrogatepass keeps bytewise order
    equal to code point order, and a lone surrogate in a payload cannot break a build."""
    if type(value) is bool:
        return b"true" if value else b"false"
    return value.encode("utf-8", "surrogatepass")


def _bool_value(key: bytes) -> bool:
    return key == b"true"


def _str_value(key: bytes) -> str:
    return key.decode("utf-8", "surrogatepass")


# ---------------------------------------------------------------------------------------
# Building
# ---------------------------------------------------------------------------------------


class PostingsIndexBuilder:
    """Accumulates one field's index from (slot, payload) pairs; `finish(n)` gives the arrays.

    Entries are kept as two flat u4 arrays (key id, slot), not a list per key, so a build
    over millions of points holds ~8 bytes per entry plus one dict entry per distinct key.
    Each slot may be added once; slots may come in any order.
    """

    def __init__(self, key: str, schema):
        data_type = schema_type(schema)
        if data_type not in POSTINGS_TYPES:
            raise ValueError(f"{data_type!r} is not a postings index type ({', '.join(POSTINGS_TYPES)})")
        self.key = key
        self.schema = schema
        self.data_type = data_type
        self.path = parse_path(key)
        # Validates the text options (BadInput naming the option) before any work is done.
        self._analyzer = TextAnalyzer.from_params(schema_params(schema)) if data_type == "text" else None
        self._holds = _HOLDS[data_type]
        self._key_ids: dict = {}  # held value (or term) -> its id in insertion order
        self._entry_keys = array("I")
        self._entry_slots = array("I")
        self._present = array("I")
        self._other = array("I")

    def add(self, slot: int, payload: dict) -> None:
        """Index one slot's payload (the values `field_values` reaches at the key path)."""
        values = field_values(payload, self.path)
        if values:
            self.add_values(slot, values)

    def add_values(self, slot: int, values: list) -> None:
        """Index the values a slot holds at the key path (as `field_values` returns them)."""
        keys: Iterable  # what the slot gets an entry under, each once
        if self._analyzer is not None:
            held = [v for v in values if type(v) is str]
            # A point's terms are the union over its strings (Qdrant's token set).
            keys = {term for text in held for _, term in self._analyzer.document_terms(text)}
        else:
            holds = self._holds
            held = [v for v in values if holds(v)]
            # one index holds one kind of value, so equality is identity for the dedupe
            keys = held if len(held) < 2 else set(held)
        if len(held) != len(values):
            self._other.append(slot)
        if not held:
            return
        self._present.append(slot)  # text: a string with no terms (only stopwords) counts too
        key_ids, entry_keys, entry_slots = self._key_ids, self._entry_keys, self._entry_slots
        for item in keys:
            key_id = key_ids.get(item)
            if key_id is None:
                key_id = key_ids[item] = len(key_ids)
            entry_keys.append(key_id)
            entry_slots.append(slot)

    def finish(self, n: int) -> tuple[dict[str, np.ndarray], dict]:
        """(arrays, meta) for a segment of `n` slots (every added slot must be below n)."""
        if not 0 <= n <= _MAX_SLOTS:
            raise ValueError(f"index {self.key!r}: {n} slots do not fit u4 slot numbers")
        keys = [_key_bytes(item) for item in self._key_ids]
        order = sorted(range(len(keys)), key=keys.__getitem__)
        rank = np.empty(len(keys), dtype=np.int64)
        rank[order] = np.arange(len(keys))
        sorted_keys = [keys[i] for i in order]

        entry_keys = rank[np.frombuffer(self._entry_keys, dtype=np.uint32)] if len(keys) else np.empty(0, np.int64)
        entry_slots = np.frombuffer(self._entry_slots, dtype=np.uint32)
        by_key_then_slot = np.lexsort((entry_slots, entry_keys))
        entry_keys, post_slots = entry_keys[by_key_then_slot], entry_slots[by_key_then_slot]
        self._check_slots(n)
        same = (entry_keys[1:] == entry_keys[:-1]) & (post_slots[1:] == post_slots[:-1])
        if same.any():
            raise ValueError(f"index {self.key!r}: slot {int(post_slots[1:][same][0])} was added twice")

        key_lengths = np.fromiter((len(k) for k in sorted_keys), dtype=np.uint64, count=len(sorted_keys))
        posting_lengths = np.bincount(entry_keys, minlength=len(keys)).astype(np.uint64)
        arrays = {
            "keys_blob": np.frombuffer(b"".join(sorted_keys), dtype=np.uint8).copy(),
            "key_offsets": _offsets(key_lengths),
            "post_offsets": _offsets(posting_lengths),
            "post_slots": post_slots.astype("<u4"),
            "present": self._slot_mask(self._present, n),
            "other": self._slot_mask(self._other, n),
        }
        meta = {
            "format": FORMAT,
            "type": self.data_type,
            "key": self.key,
            "schema": self.schema,
            "points": n,
            "values": len(keys),
            "entries": len(post_slots),
        }
        return arrays, meta

    def _check_slots(self, n: int) -> None:
        # every slot with entries is in `present`, every slot with foreign values in `other`
        for listed in (self._present, self._other):
            top = int(np.frombuffer(listed, dtype=np.uint32).max()) if len(listed) else -1
            if top >= n:
                raise ValueError(f"index {self.key!r}: slot {top} is not below n = {n}")

    @staticmethod
    def _slot_mask(slots: array, n: int) -> np.ndarray:
        mask = np.zeros(n, dtype=bool)
        mask[np.frombuffer(slots, dtype=np.uint32)] = True
        return mask


def _offsets(lengths: np.ndarray) -> np.ndarray:
    offsets = np.zeros(len(lengths) + 1, dtype="<u8")
    np.cumsum(lengths, out=offsets[1:])
    return offsets


def build_postings_index(
    key: str, schema, payloads: Iterable[tuple[int, dict]], n: int
) -> tuple[dict[str, np.ndarray], dict]:
    """(arrays, meta) of a keyword, uuid, bool or text index over (slot, payload) pairs of a
    segment of `n` slots (as `field_index.build_indexes` takes them). To build several
    indexes in one pass over the payloads, use one `PostingsIndexBuilder` per field."""
    builder = PostingsIndexBuilder(key, schema)
    for slot, payload in payloads:
        builder.add(slot, payload)
    return builder.finish(n)


# ---------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------


class _SortedKeys:
    """The key table as a sequence of bytes for `bisect` (decodes ~log2 V keys per lookup)."""

    __slots__ = ("blob", "offsets")

    def __init__(self, blob: np.ndarray, offsets: np.ndarray):
        self.blob = blob
        self.offsets = offsets

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> bytes:
        return self.blob[int(self.offsets[i]) : int(self.offsets[i + 1])].tobytes()

    def find(self, key: bytes) -> int:
        """The key's index, or -1."""
        i = bisect_left(self, key)
        return i if i < len(self) and self[i] == key else -1


def open_postings_index(meta: dict, arrays: dict[str, np.ndarray]) -> DiskMapIndex | DiskTextIndex:
    """The reader of arrays `finish` built (possibly read-only views of a mapped pack).
    Raises ValueError naming the index and the array when a dtype, shape or end offset
    disagrees with `meta` (O(1): nothing is scanned)."""
    data_type = meta.get("type")
    if data_type == "text":
        return DiskTextIndex(meta, arrays)
    if data_type in ("keyword", "uuid", "bool"):
        return DiskMapIndex(meta, arrays)
    raise ValueError(f"payload index {meta.get('key')!r}: {data_type!r} is not a postings index type")


class DiskPostingsIndex:
    """What the four types share: the key table, postings, `present` and `other`, and the
    reader interface of `field_index.FieldIndex` that `filter_plan` and segments use.

    Contract of the reading methods: `live` is a bool array covering at least the index's
    `n` slots, masks are asked for with a length `n` (the argument) of at least that, and
    `gen` is ignored. Answers are fresh arrays (or None / True); the stored arrays are
    never written. Safe to call from several threads at once.
    """

    data_type = ""
    has_lookup = False
    has_range = False

    def __init__(self, meta: dict, arrays: dict[str, np.ndarray]):
        _check_meta(meta)
        self.key: str = meta["key"]
        if meta.get("format") != FORMAT:
            raise ValueError(f"payload index {self.key!r}: format {meta.get('format')!r}, this pydrant reads {FORMAT}")
        if meta.get("type") != self.data_type:
            raise ValueError(f"payload index {self.key!r}: type {meta.get('type')!r}, expected {self.data_type!r}")
        self.path = parse_path(self.key)
        self.schema = meta["schema"]
        self.params = schema_params(self.schema)
        self.n = int(meta["points"])
        self._arrays = _checked_arrays(self.key, meta, arrays)
        self._keys = _SortedKeys(self._arrays["keys_blob"], self._arrays["key_offsets"])
        self._post_offsets = self._arrays["post_offsets"]
        self._post_slots = self._arrays["post_slots"]
        self._present = self._arrays["present"]
        self._other = self._arrays["other"]

    # -- the FieldIndex reader interface --

    def points(self, gen, live: np.ndarray) -> int:
        """Live slots holding at least one indexed value."""
        return int(np.count_nonzero(self._present & live[: self.n]))

    def other_mask(self, gen, live: np.ndarray, n: int) -> Mask:
        return _mask_where(self._other & live[: self.n], n)

    def answer(self, condition: tuple, gen, live: np.ndarray, n: int):
        """(yes, upper) masks for a condition (see filter_plan.py), or None."""
        return None

    def nbytes(self) -> int:
        return sum(int(a.nbytes) for a in self._arrays.values())

    def arrays(self) -> dict[str, np.ndarray]:
        return dict(self._arrays)

    # -- postings --

    def _posting(self, i: int) -> np.ndarray:
        """All slots of key i (dead ones included), ascending."""
        return self._post_slots[int(self._post_offsets[i]) : int(self._post_offsets[i + 1])]

    def _posting_length(self, i: int) -> int:
        return int(self._post_offsets[i + 1]) - int(self._post_offsets[i])

    def _live_posting(self, i: int, live: np.ndarray) -> np.ndarray:
        slots = self._posting(i)
        return slots[live[slots]]

    def _union_mask(self, key_indexes: Iterable[int], live: np.ndarray, n: int) -> Mask:
        parts = [self._live_posting(i, live) for i in key_indexes]
        parts = [p for p in parts if len(p)]
        if not parts:
            return None
        return slots_mask(np.concatenate(parts) if len(parts) > 1 else parts[0], n)

    def _present_mask(self, live: np.ndarray, n: int) -> Mask:
        return _mask_where(self._present & live[: self.n], n)

    # -- verification --

    def check(self) -> None:
        """Walk the whole structure; raise ValueError naming the index and what is wrong.
        A corrupt structure cannot crash a reader (numpy indexing is bounds-checked), but it
        would answer wrongly: this is for the background verification (P7)."""
        for _ in self.check_steps():
            pass

    def check_steps(self, chunk: int | None = None) -> Iterator[int]:
        """`check()` a chunk at a time (default `_CHECK_CHUNK`), yielding the entries and
        keys checked so far after each chunk, for a verifier to throttle or cancel (as
        `HnswIndex.check_steps`). Temporaries are ~20 bytes per chunk entry; the keys take
        a Python step each (~1 us)."""
        size = _CHECK_CHUNK if chunk is None else chunk
        name = f"payload index {self.key!r}"
        for label, ends in (("key_offsets", self._keys.offsets), ("post_offsets", self._post_offsets)):
            for lo in range(0, len(ends) - 1, size):
                part = ends[lo : lo + size + 1]
                if bool((part[1:] < part[:-1]).any()):
                    raise ValueError(f"{name}: {label} decrease")
                if label == "post_offsets" and bool((part[1:] == part[:-1]).any()):
                    raise ValueError(f"{name}: a key with an empty posting")
        done = 0
        for lo in range(0, len(self._keys), size):
            self._check_keys(name, lo, min(len(self._keys), lo + size))
            done += min(len(self._keys), lo + size) - lo
            yield done
        for lo in range(0, len(self._post_slots), size):
            self._check_postings(name, lo, min(len(self._post_slots), lo + size))
            done += min(len(self._post_slots), lo + size) - lo
            yield done

    def _check_keys(self, name: str, lo: int, hi: int) -> None:
        """Keys lo..hi-1 strictly ascending (from the one before lo) and holdable."""
        keys = self._keys
        previous = keys[lo - 1] if lo else None
        for i in range(lo, hi):
            key = keys[i]
            if previous is not None and key <= previous:
                raise ValueError(f"{name}: keys not strictly ascending at key {i}")
            self._check_key_value(name, i, key)
            previous = key

    def _check_key_value(self, name: str, i: int, key: bytes) -> None:
        """Key i is a value this index can hold (overridden per type)."""

    def _check_postings(self, name: str, lo: int, hi: int) -> None:
        """Entries lo..hi-1: slots below n, marked present, rising within each posting."""
        slots, ends, n = self._post_slots, self._post_offsets, self.n
        chunk = slots[lo:hi]
        if int(chunk.max()) >= n:
            raise ValueError(f"{name}: a posting slot is not below n = {n}")
        if not bool(self._present[chunk].all()):
            raise ValueError(f"{name}: a posting slot is not marked present")
        before = slots[lo - 1 : hi - 1] if lo else np.concatenate([[0], chunk[:-1]])
        rising = chunk.astype(np.int64) > before.astype(np.int64)
        # the first entry of a posting may be anything (numpy scalars: a Python int would
        # make searchsorted convert the whole u8 array)
        first, last = np.searchsorted(ends, np.uint64(lo)), np.searchsorted(ends, np.uint64(hi))
        rising[ends[first:last].astype(np.int64) - lo] = True
        if not bool(rising.all()):
            raise ValueError(f"{name}: a posting is not strictly ascending")


class DiskMapIndex(DiskPostingsIndex):
    """keyword, uuid and bool: `match.value`, `any`, `except` and facets from the postings
    (the on-disk form of `field_index.MapIndex` and its subclasses)."""

    has_lookup = True

    def __init__(self, meta: dict, arrays: dict[str, np.ndarray]):
        self.data_type = meta.get("type", "")
        if self.data_type not in ("keyword", "uuid", "bool"):
            raise ValueError(f"payload index {meta.get('key')!r}: {self.data_type!r} is not a value-map index")
        super().__init__(meta, arrays)
        self._holds = _HOLDS[self.data_type]
        self._value_of_key = _bool_value if self.data_type == "bool" else _str_value

    def _key_index(self, value) -> int:
        return self._keys.find(_key_bytes(value))

    def _lookup(self, values: Iterable, live: np.ndarray, n: int) -> Mask:
        """Live slots holding any of `values` (all held kinds)."""
        found = [i for i in (self._key_index(v) for v in values) if i >= 0]
        return self._union_mask(found, live, n)

    def _list_kind_matches(self, is_strings: bool) -> bool:
        # `any`/`except` lists are strings or integers (filter_plan marks which); a bool
        # index holds neither, so it answers them as the in-memory BoolIndex does.
        return self.data_type != "bool" and is_strings

    def answer(self, condition, gen, live, n):
        kind = condition[0]
        if kind == "value":
            value = condition[1]
            if self._holds(value):
                mask = self._lookup([value], live, n)
                return mask, mask
            return None, self.other_mask(gen, live, n)
        if kind == "any":
            values, is_strings = condition[1], condition[2]
            if not self._list_kind_matches(is_strings):
                return None, self.other_mask(gen, live, n)
            held = [v for v in values if self._holds(v)]
            mask = self._lookup(held, live, n)
            if len(held) < len(values):  # uuid: a string that is no UUID may match in `other`
                return mask, _or(mask, self.other_mask(gen, live, n))
            return mask, mask
        if kind == "except":
            values, is_strings = condition[1], condition[2]
            if self._list_kind_matches(is_strings):
                yes = self._unlisted(values, live, n)
            else:  # every held value is of another kind than the list: all of them match
                yes = self._present_mask(live, n)
            return yes, _or(yes, self.other_mask(gen, live, n))
        return None

    def _unlisted(self, values: Iterable, live: np.ndarray, n: int) -> Mask:
        """Live slots holding some value that is not in `values`: the union of the other
        keys' postings, as an O(P) mask over the entries."""
        listed = [i for i in (self._key_index(v) for v in values if self._holds(v)) if i >= 0]
        if not listed:
            return self._present_mask(live, n)  # the union of every posting is `present`
        keep = np.ones(len(self._post_slots), dtype=bool)
        for i in listed:
            keep[int(self._post_offsets[i]) : int(self._post_offsets[i + 1])] = False
        slots = self._post_slots[keep]
        slots = slots[live[slots]]
        return slots_mask(slots, n) if len(slots) else None

    def facet_counts(self, gen, live: np.ndarray, selected: np.ndarray | None) -> dict:
        """value -> number of live points holding it (among `selected` slots if given);
        values with no such point are left out, as in the in-memory index."""
        ends = self._post_offsets.astype(np.int64)
        counts: np.ndarray
        if selected is None and bool(live[: self.n].all()):
            counts = np.diff(ends)
        else:
            counted = live[self._post_slots]
            if selected is not None:
                counted &= selected[self._post_slots]
            running = np.zeros(len(counted) + 1, dtype=np.int64)
            np.cumsum(counted, out=running[1:])
            counts = running[ends[1:]] - running[ends[:-1]]
        nonzero = np.flatnonzero(counts)
        return {self._value_of_key(self._keys[int(i)]): int(counts[i]) for i in nonzero}

    def value_postings(self, live: np.ndarray) -> Iterator[tuple[object, np.ndarray]]:
        """(value, live slots holding it) for every value, in key order: what tenant graphs
        are built from (`indexed.py` reads `MapIndex.postings` for the same)."""
        for i in range(len(self._keys)):
            yield self._value_of_key(self._keys[i]), self._live_posting(i, live)

    def _check_key_value(self, name: str, i: int, key: bytes) -> None:
        if self.data_type == "bool":
            if key not in (b"false", b"true"):
                raise ValueError(f"{name}: key {i} is not a bool")
            return
        try:
            value = _str_value(key)
        except UnicodeDecodeError:
            raise ValueError(f"{name}: key {i} is not UTF-8") from None
        if not self._holds(value):
            raise ValueError(f"{name}: key {i} is not a {self.data_type} value")


class DiskTextIndex(DiskPostingsIndex):
    """Full-text: term postings answer `match.text` (every term) and `text_any` (some
    term) exactly; `phrase` narrows to slots holding every phrase term and the payload
    check decides (no positions kept, as `field_index.TextIndex`)."""

    data_type = "text"

    def __init__(self, meta: dict, arrays: dict[str, np.ndarray]):
        super().__init__(meta, arrays)
        self.analyzer = TextAnalyzer.from_params(self.params)

    def _term_index(self, term: str) -> int:
        return self._keys.find(_key_bytes(term))

    def _all_terms(self, terms: list[str], live: np.ndarray, n: int) -> Mask:
        """Live slots holding every term: the postings intersected, shortest first, each step
        a binary search of the (smaller) result in the next sorted posting."""
        if not terms:
            return None
        found = [self._term_index(t) for t in set(terms)]
        if min(found) < 0:
            return None
        found.sort(key=self._posting_length)
        result = self._live_posting(found[0], live)
        for i in found[1:]:
            if not len(result):
                return None
            posting = self._posting(i)
            if not len(posting):  # only a corrupt table has an empty posting
                return None
            at = np.minimum(np.searchsorted(posting, result), len(posting) - 1)
            result = result[posting[at] == result]
        return slots_mask(result, n) if len(result) else None

    def answer(self, condition, gen, live, n):
        kind = condition[0]
        if kind not in ("text", "text_any", "phrase"):
            return None
        terms = self.analyzer.query_terms(condition[1])
        if kind == "phrase":
            if not self.analyzer.phrase_matching:  # Qdrant: no positions kept, no phrase matches
                return None, None
            return None, self._all_terms(list(terms.phrase), live, n)
        if kind == "text":
            mask = self._all_terms(terms, live, n)
            return mask, mask
        found = [i for i in (self._term_index(t) for t in set(terms)) if i >= 0]
        mask = self._union_mask(found, live, n)
        return mask, mask

    def _check_key_value(self, name: str, i: int, key: bytes) -> None:
        try:
            _str_value(key)
        except UnicodeDecodeError:
            raise ValueError(f"{name}: term {i} is not UTF-8") from None


# ---------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------


def _check_meta(meta: dict) -> None:
    """The meta fields a reader needs, with their JSON types (a hand-edited or truncated
    segment.json must give a ValueError, not a KeyError deep inside)."""
    for field in ("format", "type", "key", "points", "values", "entries"):
        value = meta.get(field)
        wanted = type(value) is str if field in ("type", "key") else type(value) is int and value >= 0
        if not wanted:
            raise ValueError(f"payload index {meta.get('key')!r}: meta field {field!r} is {value!r}")
    if "schema" not in meta:
        raise ValueError(f"payload index {meta['key']!r}: meta field 'schema' is missing")


def _checked_arrays(key: str, meta: dict, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The six arrays, each with its dtype, a 1-d C-contiguous shape from `meta` and
    consistent end offsets; ValueError naming the first that is not."""
    n, values, entries = int(meta["points"]), int(meta["values"]), int(meta["entries"])
    shapes = {
        "key_offsets": values + 1,
        "post_offsets": values + 1,
        "post_slots": entries,
        "present": n,
        "other": n,
    }
    checked = {}
    for name, dtype in _DTYPES.items():
        array_ = arrays.get(name)
        if array_ is None:
            raise ValueError(f"payload index {key!r}: array {name} is missing")
        want = shapes.get(name, array_.shape[0] if array_.ndim == 1 else -1)
        if array_.dtype != dtype or array_.shape != (want,) or not array_.flags.c_contiguous:
            raise ValueError(
                f"payload index {key!r}: array {name} is {array_.dtype} {array_.shape}, "
                f"expected {dtype} ({want},) C-contiguous"
            )
        checked[name] = array_
    ends = (
        ("key_offsets", len(checked["keys_blob"])),
        ("post_offsets", entries),
    )
    for name, end in ends:
        offsets = checked[name]
        if int(offsets[0]) != 0 or int(offsets[-1]) != end:
            raise ValueError(
                f"payload index {key!r}: {name} run from {int(offsets[0])} to {int(offsets[-1])}, expected 0 to {end}"
            )
    return checked


def _mask_where(selected: np.ndarray, n: int) -> Mask:
    """`selected` (over the index's slots) as a mask of length n, None when empty."""
    if not selected.any():
        return None
    if len(selected) == n:
        return selected
    mask = np.zeros(n, dtype=bool)
    mask[: len(selected)] = selected
    return mask


