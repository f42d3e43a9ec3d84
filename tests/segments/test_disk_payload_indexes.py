"""The payload indexes of an immutable segment as files (segments/disk_payload_indexes.py).

The heart is differential: random payloads over all eight index types (wrong-kind values,
arrays, nested paths, missing keys) are indexed by `DiskPayloadIndexBuilder` into packs,
reopened with `open_disk_indexes`, and compared with `field_index.PayloadIndexes` built
over the same payloads: whole filters through `filter_plan.evaluate` / `split`, facets,
tenant postings and `info`, under one random live mask. Then the file life cycle: update
(add, change, drop), crashes at each step of an update, corrupt tables and packs, file
descriptors, residency.
"""

from __future__ import annotations

import gc
import mmap
import os
import random
import tempfile
from pathlib import Path

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pydrant.errors import BadInput
from pydrant.segments import disk_payload_indexes as dpi
from pydrant.segments import filter_plan
from pydrant.segments.disk_payload_indexes import (
    INDEX_DIR,
    INDEX_TABLE,
    DiskPayloadIndexBuilder,
    open_disk_indexes,
    pack_name,
    schema_hash,
)
from pydrant.segments.field_index import PayloadIndexes, build_indexes, schema_type
from pydrant.segments.filters import compile_filter
from pydrant.segments.packfile import CorruptPack, PackTable, PackWriter
from pydrant.segments.payload import parse_path
from pydrant.segments.text_analyzer import TextAnalyzer
from pydrant.segments.types import PointContext

UUID = "550e8400-e29b-41d4-a716-446655440000"
UUIDS = [UUID, UUID.upper(), "6ba7b8109dad11d180b400c04fd430c8", "not-a-uuid"]
DATES = ["2024-01-01T00:00:00Z", "2024-06-01", "2024-06-01T12:00:00+02:00", "1969-12-31T23:59:59.999999Z"]
WORDS = ["red", "fox", "the", "jumps", "Red", "foxes"]
HUGE = [2**53, 2**53 + 1, -(2**53) - 1, 2**60]
TYPES = ("keyword", "uuid", "bool", "text", "integer", "float", "datetime", "geo")


# ---------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------


def memory_indexes(fields: dict, payloads: list[dict]) -> PayloadIndexes:
    indexes = PayloadIndexes(len(payloads))
    indexes.install(build_indexes(fields, enumerate(payloads), indexes.gen), [])
    return indexes


def build_on_disk(segment_dir: Path, fields: dict, payloads: list[dict], order: list[int] | None = None) -> None:
    builder = DiskPayloadIndexBuilder(segment_dir, fields)
    for slot in order if order is not None else range(len(payloads)):
        builder.add(slot, payloads[slot])
    builder.finish(len(payloads))


class View:
    """`filter_plan.IndexView` over a set of indexes, as appendable's `_SegmentView`."""

    def __init__(self, indexes, n: int, live: np.ndarray):
        self.indexes, self.n, self.gen, self.live = indexes, n, indexes.gen, live

    def index_for(self, path: tuple):
        return self.indexes.for_path(path)

    def ids_mask(self, ids):
        return None

    def vector_mask(self, name):
        return None


def on_live(mask, live: np.ndarray) -> list[bool]:
    """A mask restricted to live slots: on-disk run readers may include dead slots in an
    answer (filter_plan.split ANDs `live` once), so answers compare there."""
    return (filter_plan.as_array(mask, len(live)) & live).tolist()


def pack_paths(segment_dir: Path) -> set[str]:
    return {p.name for p in (segment_dir / INDEX_DIR).iterdir()}


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


# ---------------------------------------------------------------------------------------
# Strategies: where each field lives, what a payload holds there, and filters over them.
# ---------------------------------------------------------------------------------------

SCHEMAS = {
    "keyword": st.sampled_from(["keyword", {"type": "keyword", "is_tenant": True, "on_disk": True}]),
    "uuid": st.sampled_from(["uuid", {"type": "uuid", "is_tenant": True}]),
    "bool": st.sampled_from(["bool", {"type": "bool", "on_disk": True}]),
    "text": st.sampled_from([
        {"type": "text", "tokenizer": "word", "lowercase": True, "phrase_matching": True},
        {"type": "text", "tokenizer": "whitespace", "lowercase": False, "on_disk": True},
    ]),
    "integer": st.sampled_from(["integer", {"type": "integer", "lookup": False, "range": True},
                                {"type": "integer", "lookup": True, "range": False, "on_disk": True}]),
    "float": st.sampled_from(["float", {"type": "float", "on_disk": True}]),
    "datetime": st.sampled_from(["datetime", {"type": "datetime", "on_disk": True}]),
    "geo": st.just("geo"),
}  # fmt: skip

geo_point = st.builds(lambda lon, lat: {"lon": lon, "lat": lat}, st.floats(-6, 6), st.floats(-6, 6))
TYPED = {
    "keyword": st.sampled_from(["a", "b", "é", "", UUID]),
    "uuid": st.sampled_from(UUIDS),
    "bool": st.booleans(),
    "text": st.lists(st.sampled_from(WORDS), max_size=4).map(" ".join),
    "integer": st.one_of(st.integers(-3, 3), st.integers(-3, 3), st.sampled_from(HUGE)),
    "float": st.one_of(st.integers(-3, 3), st.floats(-4, 4, allow_nan=False), st.sampled_from([-0.0, 2**60])),
    "datetime": st.sampled_from(DATES + ["not a date"]),
    "geo": st.one_of(geo_point, geo_point, st.sampled_from([{"lon": 200.0, "lat": 1.0}, {"lon": "1", "lat": 2}])),
}
MIXED = st.sampled_from(["a", UUID, "2024-06-01", "red fox", True, 0, 2, 2**53 + 1, 1.5, {"lon": 1.0, "lat": 1.0},
                         None, [], [["a"]], {"x": 1}])  # fmt: skip


def field_value(data_type: str):
    one = st.one_of(TYPED[data_type], TYPED[data_type], MIXED)
    return st.one_of(one, one, st.lists(st.one_of(one, st.lists(one, max_size=2)), max_size=4))


def put(payload: dict, key: str, first, second) -> None:
    """Place a value at `key` (`x`, `n.x` or `arr[].x`: the array gets two elements)."""
    if key.startswith("arr[]."):
        elements = payload.setdefault("arr", [{}, {}])
        elements[0][key[6:]], elements[1][key[6:]] = first, second
    elif key.startswith("n."):
        payload.setdefault("n", {})[key[2:]] = first
    else:
        payload[key] = first


@st.composite
def segments(draw):
    """(fields: key -> schema, payloads, live): one field per type, each at a drawn place."""
    fields = {}
    for data_type in TYPES:
        place = draw(st.sampled_from(["", "n.", "arr[]."]))
        fields[f"{place}{data_type}"] = draw(SCHEMAS[data_type])
    payloads = []
    for _ in range(draw(st.integers(1, 25))):
        payload: dict = {}
        for key, schema in fields.items():
            if draw(st.integers(0, 4)):  # 1 in 5 missing
                value = field_value(schema_type(schema))
                put(payload, key, draw(value), draw(value))
        payloads.append(payload)
    live = np.array(draw(st.lists(st.booleans(), min_size=len(payloads), max_size=len(payloads))), dtype=bool)
    return fields, payloads, live


def leaves(fields: dict):
    keys = st.sampled_from([*fields, "missing"])
    strings = st.sampled_from(["a", "b", "é", UUID, UUIDS[1], "not-a-uuid", "red"])
    ints = st.one_of(st.integers(-3, 3), st.sampled_from(HUGE))
    lists = st.one_of(st.lists(strings, min_size=1, max_size=3, unique=True), st.lists(ints, min_size=1, max_size=3))
    bound = st.one_of(st.none(), st.integers(-3, 3), st.sampled_from([-0.5, 1.5, 2**53]))
    date = st.one_of(st.none(), st.sampled_from(DATES))
    polygon = {"exterior": {"points": [{"lon": -2, "lat": -2}, {"lon": 3, "lat": -2}, {"lon": 0, "lat": 4},
                                       {"lon": -2, "lat": -2}]}}  # fmt: skip
    return st.one_of(
        st.builds(lambda k, v: {"key": k, "match": {"value": v}}, keys, st.one_of(strings, ints, st.booleans())),
        st.builds(lambda k, vs: {"key": k, "match": {"any": vs}}, keys, lists),
        st.builds(lambda k, vs: {"key": k, "match": {"except": vs}}, keys, lists),
        st.builds(lambda k, kind, words: {"key": k, "match": {kind: " ".join(words)}}, keys,
                  st.sampled_from(["text", "text_any", "phrase"]), st.lists(st.sampled_from(WORDS), min_size=1, max_size=3)),
        st.builds(lambda k, a, b: {"key": k, "range": {"gte": a, "lt": b}}, keys, bound, bound),
        st.builds(lambda k, a, b: {"key": k, "range": {"gt": a, "lte": b}}, keys, date, date),
        st.builds(lambda k, a, b: {"key": k, "geo_bounding_box": {
            "top_left": {"lon": min(a["lon"], b["lon"]), "lat": max(a["lat"], b["lat"])},
            "bottom_right": {"lon": max(a["lon"], b["lon"]), "lat": min(a["lat"], b["lat"])}}}, keys, geo_point, geo_point),
        st.builds(lambda k, c, r: {"key": k, "geo_radius": {"center": c, "radius": r}}, keys, geo_point,
                  st.floats(1, 900_000)),
        st.builds(lambda k: {"key": k, "geo_polygon": polygon}, keys),
    )  # fmt: skip


def filters(fields: dict):
    clause = st.lists(st.one_of(leaves(fields), leaves(fields), st.fixed_dictionaries({"must": st.lists(leaves(fields), min_size=1, max_size=2)})),
                      min_size=1, max_size=3)  # fmt: skip
    return st.fixed_dictionaries({}, optional={"must": clause, "should": clause, "must_not": clause})


# ---------------------------------------------------------------------------------------
# Differential
# ---------------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(segments(), st.data())
def test_reopened_indexes_answer_as_the_in_memory_ones(segment, data):
    fields, payloads, live = segment
    n = len(payloads)
    memory = memory_indexes(fields, payloads)
    order = data.draw(st.permutations(list(range(n))), "slot order")
    with tempfile.TemporaryDirectory() as directory:
        build_on_disk(Path(directory), fields, payloads, order)
        disk = open_disk_indexes(Path(directory), n)
        assert set(disk.by_key) == set(fields) and bool(disk)
        assert disk.differences(dict(fields)) == ({}, [])
        text_fields = {
            parse_path(key): TextAnalyzer.from_params(schema)
            for key, schema in fields.items()
            if schema_type(schema) == "text"
        }
        disk_view, memory_view = View(disk, n, live), View(memory, n, live)
        for filter_ in data.draw(st.lists(filters(fields), min_size=1, max_size=4), "filters"):
            try:
                compiled = compile_filter(filter_, text_fields)
            except BadInput:
                continue  # e.g. a date bound beside a number bound: refused before any index
            if compiled is None:
                continue
            got, want = filter_plan.evaluate(compiled.plan, disk_view), filter_plan.evaluate(compiled.plan, memory_view)
            assert on_live(got[0], live) == on_live(want[0], live), filter_
            assert on_live(got[1], live) == on_live(want[1], live), filter_
            sure, to_check = filter_plan.split(compiled.plan, disk_view)
            want_sure, want_check = filter_plan.split(compiled.plan, memory_view)
            assert sure.tolist() == want_sure.tolist() and to_check.tolist() == want_check.tolist(), filter_
            truth = np.array(
                [bool(live[s]) and compiled.matches(PointContext(s, lambda p=p: p, lambda _: False))
                 for s, p in enumerate(payloads)], dtype=bool,
            )  # fmt: skip
            assert not (sure & ~truth).any() and not (truth & ~(sure | to_check)).any(), filter_

        points = {key: info["points"] for key, info in disk.info(live).items()}
        assert points == {key: info["points"] for key, info in memory.info(live).items()}
        selected = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n), "selected"), dtype=bool)
        for key, index in memory.by_key.items():
            facetable = index.data_type in ("keyword", "uuid", "bool") or (
                index.data_type == "integer" and index.has_lookup
            )
            if not facetable:
                continue
            on_disk = disk.by_key[key]
            assert on_disk.facet_counts(disk.gen, live, None) == index.facet_counts(memory.gen, live, None), key
            assert on_disk.facet_counts(disk.gen, live, selected) == index.facet_counts(memory.gen, live, selected), key
            postings = {value: slots.tolist() for value, slots in disk.value_postings(key, live)}
            assert {v: len(s) for v, s in postings.items() if s} == index.facet_counts(memory.gen, live, None), key
            for value, slots in postings.items():
                assert slots == sorted(slots) and all(live[slots]), key
                if index.data_type != "integer":
                    assert sorted(index.postings[value].valid_slots(memory.gen, live).tolist()) == slots, key
        for _ in disk.verification_steps():
            pass


# ---------------------------------------------------------------------------------------
# Building and the files
# ---------------------------------------------------------------------------------------

SOME_FIELDS = {"k": {"type": "keyword", "is_tenant": True}, "i": "integer", "t": {"type": "text", "on_disk": True}}
SOME_PAYLOADS = [
    {"k": "a", "i": 1, "t": "red fox", "c": 10},
    {"k": ["a", "b"], "i": [2, 5], "t": "the fox", "c": 11},
    {"k": "b", "i": "x", "c": 12},
    {},
    {"k": 7, "i": 1, "t": "red", "c": 13},
]
ALL_LIVE = np.ones(len(SOME_PAYLOADS), dtype=bool)


def count(indexes, key: str, condition: dict) -> int:
    """Live points a one-condition filter surely matches through `indexes`."""
    compiled = compile_filter({"must": [{"key": key, **condition}]})
    sure, _ = filter_plan.split(compiled.plan, View(indexes, len(ALL_LIVE), ALL_LIVE))
    return int(np.count_nonzero(sure))


def test_build_writes_one_pack_per_field_and_a_table_naming_them(tmp_path):
    build_on_disk(tmp_path, SOME_FIELDS, SOME_PAYLOADS)
    table = orjson.loads((tmp_path / INDEX_TABLE).read_bytes())
    assert table["format"] == 1 and set(table["indexes"]) == set(SOME_FIELDS)
    for key, entry in table["indexes"].items():
        assert entry["schema"] == SOME_FIELDS[key] and entry["meta"]["key"] == key
        assert entry["pack"] == pack_name(key, SOME_FIELDS[key]) == f"{key.encode().hex()}.{schema_hash(SOME_FIELDS[key])}.pack"
        assert (tmp_path / INDEX_DIR / entry["pack"]).stat().st_size == entry["table"]["bytes"]
    assert pack_paths(tmp_path) == {e["pack"] for e in table["indexes"].values()}
    indexes = open_disk_indexes(tmp_path, len(SOME_PAYLOADS))
    assert {p.name for p in indexes.files()} == {INDEX_TABLE, *pack_paths(tmp_path)}
    assert count(indexes, "k", {"match": {"value": "a"}}) == 2
    assert count(indexes, "i", {"range": {"gte": 2}}) == 1
    assert count(indexes, "t", {"match": {"text": "fox"}}) == 2
    assert [(v, s.tolist()) for v, s in indexes.value_postings("k", ALL_LIVE)] == [("a", [0, 1]), ("b", [1, 2])]
    assert [(v, s.tolist()) for v, s in indexes.value_postings("i", ALL_LIVE)] == [(1, [0, 4]), (2, [1]), (5, [1])]
    with pytest.raises(ValueError, match="no per-value postings"):
        list(indexes.value_postings("t", ALL_LIVE))


def test_schema_hash_is_canonical_and_names_stay_short():
    assert schema_hash({"type": "keyword", "is_tenant": True}) == schema_hash({"is_tenant": True, "type": "keyword"})
    assert schema_hash("keyword") != schema_hash({"type": "keyword"})
    long_a, long_b = "é" * 200 + "a", "é" * 200 + "b"
    assert pack_name(long_a, "keyword") != pack_name(long_b, "keyword")
    assert len(pack_name(long_a, "keyword")) < 160
    assert pack_name("a/b\ud800", "keyword").startswith("612f62eda080.")  # any key is a plain file name


def test_no_table_means_no_indexes_and_an_empty_build_writes_one(tmp_path):
    indexes = open_disk_indexes(tmp_path, 3)
    assert not indexes and indexes.files() == [] and indexes.info(np.ones(3, bool)) == {}
    assert indexes.gen.tolist() == [0, 0, 0]
    build_on_disk(tmp_path, {}, [{}, {}, {}])
    assert orjson.loads((tmp_path / INDEX_TABLE).read_bytes()) == {"format": 1, "indexes": {}}
    assert not open_disk_indexes(tmp_path, 3)


def test_builder_refuses_unknown_types_before_any_payload_and_abort_removes_everything(tmp_path):
    with pytest.raises(BadInput, match="unknown payload index type 'vector'"):
        DiskPayloadIndexBuilder(tmp_path, {"v": "vector"})
    with pytest.raises(BadInput):
        DiskPayloadIndexBuilder(tmp_path, {"t": {"type": "text", "tokenizer": "nope"}})
    builder = DiskPayloadIndexBuilder(tmp_path, SOME_FIELDS)
    for slot, payload in enumerate(SOME_PAYLOADS):
        builder.add(slot, payload)
    builder.finish(len(SOME_PAYLOADS))
    assert (tmp_path / INDEX_TABLE).exists()
    builder.abort()
    assert list(tmp_path.iterdir()) == []
    failing = DiskPayloadIndexBuilder(tmp_path, SOME_FIELDS)
    failing.add(7, {"k": "a"})
    with pytest.raises(ValueError, match="not below"):
        failing.finish(3)  # a slot past n: the build fails and leaves nothing behind
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------
# update(): add, change, drop; crashes
# ---------------------------------------------------------------------------------------

NEW_FIELDS = {"k": "integer", "t": {"type": "text", "on_disk": True}, "c": "float"}  # k changed, i dropped, c added


def payload_source(calls: list):
    def payloads():
        calls.append(1)
        return enumerate(SOME_PAYLOADS)

    return payloads


def test_update_adds_changes_and_drops_in_one_pass(tmp_path):
    build_on_disk(tmp_path, SOME_FIELDS, SOME_PAYLOADS)
    n = len(SOME_PAYLOADS)
    indexes = open_disk_indexes(tmp_path, n)
    old = {e.pack for e in indexes._snapshot.entries.values()}
    assert indexes.differences(NEW_FIELDS) == ({"k": "integer", "c": "float"}, ["i"])
    calls: list = []
    assert indexes.update(NEW_FIELDS, payload_source(calls)) is True
    assert calls == [1]  # one pass for both new indexes
    for view in (indexes, open_disk_indexes(tmp_path, n)):
        assert set(view.by_key) == set(NEW_FIELDS)
        assert {key: index.schema for key, index in view.by_key.items()} == NEW_FIELDS
        assert view.by_key["k"].data_type == "integer" and view.for_path(("i",)) is None
        assert count(view, "k", {"match": {"value": 7}}) == 1
        assert count(view, "c", {"range": {"gt": 11.5}}) == 2
        assert count(view, "t", {"match": {"text": "red"}}) == 2
        assert view.differences(NEW_FIELDS) == ({}, [])
    assert pack_paths(tmp_path) == {p.name for p in indexes.files()[1:]}
    assert pack_name("t", NEW_FIELDS["t"]) in pack_paths(tmp_path)  # the unchanged index kept its pack
    assert not (old - {pack_name("t", NEW_FIELDS["t"])}) & pack_paths(tmp_path)  # dropped and replaced: gone
    calls.clear()
    assert indexes.update(NEW_FIELDS, payload_source(calls)) is False and calls == []
    assert indexes.update({"t": NEW_FIELDS["t"]}, payload_source(calls)) is True and calls == []  # drop only
    assert set(open_disk_indexes(tmp_path, n).by_key) == {"t"} and len(pack_paths(tmp_path)) == 1


def test_readers_of_a_replaced_index_keep_answering(tmp_path):
    """Packs are unlinked as soon as the table no longer names them: a query holding the old
    reader still reads its mapping."""
    build_on_disk(tmp_path, SOME_FIELDS, SOME_PAYLOADS)
    indexes = open_disk_indexes(tmp_path, len(SOME_PAYLOADS))
    old_k = indexes.by_key["k"]
    indexes.update(NEW_FIELDS, payload_source([]))
    assert pack_name("k", SOME_FIELDS["k"]) not in pack_paths(tmp_path)
    assert on_live(old_k.answer(("value", "b"), None, ALL_LIVE, 5)[0], ALL_LIVE) == [False, True, True, False, False]


class Crash(BaseException):
    """A process dying at this point (nothing after it runs, no except clause catches it)."""


def test_crash_before_the_table_is_replaced_keeps_the_old_set(tmp_path, monkeypatch):
    build_on_disk(tmp_path, SOME_FIELDS, SOME_PAYLOADS)
    n = len(SOME_PAYLOADS)
    before = pack_paths(tmp_path)
    indexes = open_disk_indexes(tmp_path, n)

    def crash(path, value):
        raise Crash()

    with monkeypatch.context() as patch:
        patch.setattr(dpi, "write_json_atomic", crash)
        with pytest.raises(Crash):
            indexes.update(NEW_FIELDS, payload_source([]))
    leftovers = pack_paths(tmp_path) - before
    assert leftovers == {pack_name("k", "integer"), pack_name("c", "float")}  # written, never named
    for view in (indexes, open_disk_indexes(tmp_path, n)):  # the object and a restart: the old set
        assert {key: index.schema for key, index in view.by_key.items()} == SOME_FIELDS
        assert count(view, "k", {"match": {"value": "a"}}) == 2
        assert {p.name for p in view.files()} == {INDEX_TABLE, *before}
    # The retried update reuses the leftovers' names: they are removed first.
    restarted = open_disk_indexes(tmp_path, n)
    assert restarted.update(NEW_FIELDS, payload_source([])) is True
    assert pack_paths(tmp_path) == {p.name for p in restarted.files()[1:]}
    assert count(open_disk_indexes(tmp_path, n), "k", {"match": {"value": 7}}) == 1


def test_crash_after_the_table_is_replaced_leaves_only_garbage_for_the_next_update(tmp_path, monkeypatch):
    build_on_disk(tmp_path, SOME_FIELDS, SOME_PAYLOADS)
    n = len(SOME_PAYLOADS)
    indexes = open_disk_indexes(tmp_path, n)

    def crash(path):
        raise Crash()

    with monkeypatch.context() as patch:
        patch.setattr(dpi, "_unlink_quietly", crash)
        with pytest.raises(Crash):
            indexes.update(NEW_FIELDS, payload_source([]))
    restarted = open_disk_indexes(tmp_path, n)
    assert {key: index.schema for key, index in restarted.by_key.items()} == NEW_FIELDS
    named = {p.name for p in restarted.files()[1:]}
    assert pack_paths(tmp_path) - named == {pack_name("k", SOME_FIELDS["k"]), pack_name("i", "integer")}
    assert restarted.update(NEW_FIELDS, payload_source([])) is False  # nothing to change, garbage removed
    assert pack_paths(tmp_path) == named


def test_a_failed_build_in_update_changes_nothing(tmp_path):
    build_on_disk(tmp_path, SOME_FIELDS, SOME_PAYLOADS)
    before = pack_paths(tmp_path)
    indexes = open_disk_indexes(tmp_path, len(SOME_PAYLOADS))

    def broken():
        yield 0, {"c": 1.0}
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        indexes.update({**SOME_FIELDS, "c": "float"}, broken)
    with pytest.raises(BadInput):
        indexes.update({"x": "nope"}, broken)
    assert pack_paths(tmp_path) == before and set(indexes.by_key) == set(SOME_FIELDS)


# ---------------------------------------------------------------------------------------
# Corruption
# ---------------------------------------------------------------------------------------


@pytest.fixture
def built(tmp_path) -> Path:
    build_on_disk(tmp_path, SOME_FIELDS, SOME_PAYLOADS)
    return tmp_path


def table_of(segment_dir: Path) -> dict:
    return orjson.loads((segment_dir / INDEX_TABLE).read_bytes())


def write_table(segment_dir: Path, table: dict) -> None:
    (segment_dir / INDEX_TABLE).write_bytes(orjson.dumps(table))


def test_a_truncated_or_missing_pack_fails_the_open_naming_it(built):
    pack = built / INDEX_DIR / pack_name("i", "integer")
    with open(pack, "r+b") as f:
        f.truncate(pack.stat().st_size - 1)
    with pytest.raises(CorruptPack, match=str(pack)) as caught:
        open_disk_indexes(built, len(SOME_PAYLOADS))
    assert caught.value.path == pack
    pack.unlink()
    with pytest.raises(CorruptPack, match="missing"):
        open_disk_indexes(built, len(SOME_PAYLOADS))


def mutate(table: dict, how: str) -> bytes:
    entry = table["indexes"]["k"]
    if how == "format":
        table["format"] = 2
    elif how == "pack name":
        entry["pack"] = "../" + entry["pack"]
    elif how == "field":
        del entry["meta"]
    elif how == "other key":
        table["indexes"]["z"] = entry
    elif how == "offset":
        next(iter(entry["table"]["arrays"].values()))["offset"] = 3
    elif how == "shape":
        entry["table"]["arrays"]["post_slots"]["shape"] = [1]
    elif how == "slots":
        entry["meta"]["points"] = 6
    elif how == "json":
        return b'{"format": 1, "indexes": {'
    return orjson.dumps(table)


@pytest.mark.parametrize("how, names, message", [
    ("json", INDEX_TABLE, "not valid JSON"),
    ("format", INDEX_TABLE, "format 2 is newer than this pydrant reads"),
    ("pack name", INDEX_TABLE, "is not a pack file name"),
    ("field", INDEX_TABLE, "an entry must have exactly"),
    ("other key", INDEX_TABLE, "meta is for another key"),
    ("offset", ".pack", "not a multiple of 4096"),
    ("shape", ".pack", "post_slots"),
    ("slots", ".pack", "covers 6 slots, the segment has 5"),
])  # fmt: skip
def test_a_bad_table_fails_the_open_naming_the_file(built, how, names, message):
    (built / INDEX_TABLE).write_bytes(mutate(table_of(built), how))
    with pytest.raises(CorruptPack, match=message) as caught:
        open_disk_indexes(built, len(SOME_PAYLOADS))
    assert caught.value.path.name.endswith(names) and str(caught.value.path) in str(caught.value)


def test_a_flipped_byte_is_found_by_the_verification_naming_the_pack(built):
    pack = built / INDEX_DIR / pack_name("t", SOME_FIELDS["t"])
    entry = table_of(built)["indexes"]["t"]["table"]["arrays"]["post_slots"]
    with open(pack, "r+b") as f:
        f.seek(entry["offset"])
        byte = f.read(1)
        f.seek(entry["offset"])
        f.write(bytes([byte[0] ^ 0x01]))
    indexes = open_disk_indexes(built, len(SOME_PAYLOADS))  # the open checks sizes only
    with pytest.raises(CorruptPack, match="'post_slots'.*crc32c") as caught:
        for _ in indexes.verification_steps():
            pass
    assert caught.value.path == pack


def test_structural_damage_with_good_checksums_is_found_by_the_verification(built):
    """A pack whose checksums match but whose postings are out of order (a bug, not bit
    rot): the readers' check_steps run after the checksums."""
    table = table_of(built)
    entry = table["indexes"]["k"]
    pack = built / INDEX_DIR / entry["pack"]
    indexes = open_disk_indexes(built, len(SOME_PAYLOADS))
    arrays = {name: np.array(a) for name, a in indexes.by_key["k"].arrays().items()}
    del indexes
    arrays["post_slots"][:2] = arrays["post_slots"][:2][::-1]  # "a": [0, 1] -> [1, 0]
    pack.unlink()
    with PackWriter(pack) as writer:
        for name, array in arrays.items():
            writer.add(name, array)
        entry["table"] = writer.finish().to_json()
    write_table(built, table)
    reopened = open_disk_indexes(built, len(SOME_PAYLOADS))
    progress = []
    with pytest.raises(CorruptPack, match="not strictly ascending") as caught:
        for done in reopened.verification_steps():
            progress.append(done)
    assert caught.value.path == pack
    assert progress == sorted(progress) and len(progress) > 3  # each array's checksum is one step


def test_verification_of_an_intact_segment_reports_growing_progress(built):
    indexes = open_disk_indexes(built, len(SOME_PAYLOADS))
    paced: list[int] = []
    steps = list(indexes.verification_steps(paced.append))
    assert steps == sorted(steps) and steps[-1] >= sum(paced) > 0


# ---------------------------------------------------------------------------------------
# Files, descriptors, residency
# ---------------------------------------------------------------------------------------


def test_one_file_descriptor_per_pack(tmp_path):
    fields = {f"f{i}": t for i, t in enumerate(TYPES)}
    payloads = [{f"f{i}": "a" for i in range(len(TYPES))} for _ in range(100)]
    build_on_disk(tmp_path, fields, payloads)
    gc.collect()
    before = open_fds()
    indexes = open_disk_indexes(tmp_path, len(payloads))
    assert open_fds() - before == len(TYPES)
    indexes.update({**fields, "extra": "keyword"}, lambda: enumerate(payloads))
    assert open_fds() - before == len(TYPES) + 1
    del indexes
    gc.collect()
    assert open_fds() == before


def test_resident_regions_are_the_mapped_arrays_of_indexes_not_on_disk(built):
    indexes = open_disk_indexes(built, len(SOME_PAYLOADS))
    regions = indexes.resident_regions()
    resident = [indexes.by_key["k"], indexes.by_key["i"]]  # "t" is on_disk
    expected = [a for index in resident for a in dpi._reader_arrays(index).values() if a.nbytes]
    assert len(regions) == len(expected) and all(any(r is a for a in expected) for r in regions)
    assert all(not r.flags.writeable and isinstance(dpi.mapping_of(r), mmap.mmap) for r in regions)
    assert dpi.mapping_of(np.zeros(3)) is None
    info = indexes.info(ALL_LIVE)
    assert info["t"]["ram_bytes"] == 0 and info["k"]["ram_bytes"] == indexes.by_key["k"].nbytes() > 0
    assert {key: i["points"] for key, i in info.items()} == {"k": 3, "i": 3, "t": 3}


def test_shuffled_slot_order_builds_identical_packs(tmp_path):
    """Slots in any order give byte-identical files: the layout is a function of the data."""
    payloads = [{"k": random.Random(i).choice("abc"), "g": {"lon": i % 7, "lat": i % 5}} for i in range(200)]
    fields = {"k": "keyword", "g": "geo"}
    order = list(range(200))
    random.Random(1).shuffle(order)
    for name, slots in (("a", None), ("b", order)):
        (tmp_path / name).mkdir()
        build_on_disk(tmp_path / name, fields, payloads, slots)
    for name in pack_paths(tmp_path / "a"):
        assert (tmp_path / "a" / INDEX_DIR / name).read_bytes() == (tmp_path / "b" / INDEX_DIR / name).read_bytes()
    assert table_of(tmp_path / "a") == table_of(tmp_path / "b")
    assert PackTable.from_json(table_of(tmp_path / "a")["indexes"]["k"]["table"], "x").size > 0
