"""On-disk keyword / uuid / bool / text indexes answer exactly as the in-memory ones.

The heart of these tests is differential: random payloads (wrong-kind values, arrays,
nested arrays, nested paths, strings that are almost UUIDs, lone surrogates) are indexed
both by `field_index.py` and by `disk_index_postings.py`; every condition kind the planner
produces, facets, point counts and `other` masks must then be equal under the same random
`live` mask. The arrays are read back as read-only views of one buffer and the meta
through JSON, as a mapped pack file will hand them over. A filter-level test also checks
the disk indexes against the scan (the compiled predicate), not only against the
in-memory indexes.
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pydrant.errors import BadInput
from pydrant.segments import filter_plan
from pydrant.segments.disk_index_postings import (
    DiskMapIndex,
    DiskTextIndex,
    PostingsIndexBuilder,
    build_postings_index,
    open_postings_index,
)
from pydrant.segments.field_index import build_indexes
from pydrant.segments.filters import compile_filter
from pydrant.segments.payload import parse_path
from pydrant.segments.text_analyzer import TextAnalyzer
from pydrant.segments.types import PointContext

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

UUID = "550e8400-e29b-41d4-a716-446655440000"
UUIDS = [
    UUID,
    UUID.upper(),  # the same UUID, a different string: matched as the string it is
    "{" + UUID + "}",
    "urn:uuid:6ba7b810-9dad-11d1-80b4-00c04fd430c8",
    "6ba7b8109dad11d180b400c04fd430c8",
]
STRINGS = ["", "a", "b", "ab", "B", "é", "e\u0301", "😀", "\ud800", "not-a-uuid", UUID[:-1]]
KEYS = ["f", "a.b", "arr[].x"]


# ---------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------


def as_mapped(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The arrays as read-only views into one bytes buffer at 4 KiB-aligned offsets, which is
    what a mapped pack gives a reader."""
    offsets, end = {}, 0
    for name, array in arrays.items():
        offsets[name] = end
        end += -(-array.nbytes // 4096) * 4096 or 4096
    buffer = bytearray(end)
    for name, array in arrays.items():
        buffer[offsets[name] : offsets[name] + array.nbytes] = array.tobytes()
    frozen = bytes(buffer)
    return {
        name: np.frombuffer(frozen, dtype=array.dtype, count=len(array), offset=offsets[name])
        for name, array in arrays.items()
    }


def disk_index(key, schema, payloads: list[dict], n: int | None = None):
    n = len(payloads) if n is None else n
    arrays, meta = build_postings_index(key, schema, enumerate(payloads), n)
    meta = json.loads(json.dumps(meta))  # what a segment.json round trip leaves
    index = open_postings_index(meta, as_mapped(arrays))
    assert all(not a.flags.writeable for a in index.arrays().values())
    return index


def memory_index(key, schema, payloads: list[dict], capacity: int):
    gen = np.zeros(capacity, dtype=np.uint32)
    return build_indexes({key: schema}, enumerate(payloads), gen)[key], gen


def dense(mask, n: int) -> np.ndarray:
    return filter_plan.as_array(mask, n).copy()


def assert_same_answer(disk, memory, condition, gen, live, n):
    got, want = disk.answer(condition, gen, live, n), memory.answer(condition, gen, live, n)
    if want is None:
        assert got is None, condition
        return
    assert got is not None, condition
    for part, (g, w) in zip(("yes", "upper"), zip(got, want)):
        assert np.array_equal(dense(g, n), dense(w, n)), (part, condition, g, w)


def leaf(key: str, condition: dict) -> tuple:
    """The check tuple the planner makes of one field condition."""
    planned = filter_plan.plan_condition({"key": key, **condition})
    assert planned[0] == "field"
    return planned[2]


# ---------------------------------------------------------------------------------------
# Strategies. Each example draws a small pool of values that its payloads and its queries
# share: hits, misses, foreign kinds and multi-valued slots then all occur often.
# ---------------------------------------------------------------------------------------

JUNK = [None, 1.5, {"x": "a"}, [["a"]], 2**60]  # nulls vanish; the rest are foreign values
junk_payloads = st.sampled_from([{"a": 5}, {"arr": "x"}, {"arr": [1, None]}, {"f": []}, {"a": {"c": "a"}}, {"g": "a"}])


def nest(key: str, first, second) -> dict:
    """A payload holding `first` (and for `arr[].x` a second element `second`) at `key`."""
    if key == "f":
        return {"f": first}
    if key == "a.b":
        return {"a": {"b": first}}
    return {"arr": [{"x": first}, {"x": second}, {"y": first}]}


def fields_of(values):
    """One value, or an array (one level of it opened by the index; deeper ones foreign)."""
    return st.one_of(values, values, st.lists(st.one_of(values, st.lists(values, max_size=2)), max_size=4))


@st.composite
def segments(draw, key: str, field):
    """(payloads per slot, live mask, capacity >= n): some slots dead, some unused capacity."""
    slot = st.one_of(
        st.builds(nest, st.just(key), field, field), st.builds(nest, st.just(key), field, field),
        st.builds(nest, st.just(key), field, field), st.just({}), junk_payloads,
    )  # fmt: skip
    slot_payloads = draw(st.lists(slot, min_size=1, max_size=30))  # n = 0: test_empty_indexes
    n = len(slot_payloads)
    capacity = n + draw(st.integers(0, 3))
    live = np.zeros(capacity, dtype=bool)
    if draw(st.booleans()):
        live[:n] = True  # nothing deleted: the facet shortcut
    elif n:
        live[:n] = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    return slot_payloads, live, capacity


map_schemas = st.sampled_from(["keyword", {"type": "keyword", "is_tenant": True}, "uuid", "bool", {"type": "bool"}])
OTHER_KINDS = [  # conditions a postings index must leave alone (None), or answer only from `other`
    {"match": {"text": "a"}},
    {"range": {"gt": 0}},
    {"range": {"gte": "2024-01-01T00:00:00Z"}},
    {"geo_radius": {"center": {"lon": 0, "lat": 0}, "radius": 10.0}},
]


@st.composite
def value_pools(draw) -> list:
    strings = draw(st.lists(st.sampled_from(STRINGS + UUIDS), min_size=2, max_size=5, unique=True))
    others = draw(st.lists(st.sampled_from([True, False, 0, 1, -2]), max_size=3, unique=True))
    return strings + others


def map_conditions(pool: list):
    strings = [v for v in pool if type(v) is str]
    query_values = st.one_of(st.sampled_from(pool), st.sampled_from(pool), st.sampled_from(STRINGS + UUIDS + [1, True]))
    lists = st.one_of(
        st.lists(st.sampled_from(strings + ["zzz", UUIDS[-1]]), max_size=4, unique=True),
        st.lists(st.sampled_from(strings), min_size=1, max_size=4, unique=True),
        st.lists(st.integers(-2, 2), max_size=3, unique=True),
        st.lists(st.booleans(), max_size=2, unique=True),
    )
    return st.one_of(
        st.builds(lambda v: {"match": {"value": v}}, query_values),
        st.builds(lambda vs: {"match": {"any": vs}}, lists),
        st.builds(lambda vs: {"match": {"except": vs}}, lists),
        st.sampled_from(OTHER_KINDS),
    )


# ---------------------------------------------------------------------------------------
# Differential: keyword, uuid, bool
# ---------------------------------------------------------------------------------------


@SETTINGS
@given(st.data())
def test_map_indexes_answer_as_the_in_memory_ones(data):
    pool = data.draw(value_pools(), "pool")
    key, schema = data.draw(st.sampled_from(KEYS), "key"), data.draw(map_schemas, "schema")
    values = st.one_of(st.sampled_from(pool), st.sampled_from(pool), st.booleans(), st.sampled_from(JUNK))
    slot_payloads, live, capacity = data.draw(segments(key, fields_of(values)), "segment")
    n = len(slot_payloads)
    disk = disk_index(key, schema, slot_payloads)
    memory, gen = memory_index(key, schema, slot_payloads, capacity)
    assert isinstance(disk, DiskMapIndex)
    assert (disk.data_type, disk.schema, disk.path) == (memory.data_type, memory.schema, memory.path)
    assert disk.params == memory.params

    for condition in data.draw(st.lists(map_conditions(pool), min_size=1, max_size=8), "conditions"):
        assert_same_answer(disk, memory, leaf(key, condition), gen, live, n)
    for value in memory.postings:  # every stored value: the key table's binary search misses none
        assert_same_answer(disk, memory, ("value", value), gen, live, n)
        assert disk.answer(("value", value), gen, np.ones(capacity, dtype=bool), n)[0] is not None
    assert disk.points(gen, live) == memory.points(gen, live)
    assert np.array_equal(dense(disk.other_mask(gen, live, n), n), dense(memory.other_mask(gen, live, n), n))

    assert disk.facet_counts(gen, live, None) == memory.facet_counts(gen, live, None)
    selected = np.array(
        data.draw(st.lists(st.booleans(), min_size=capacity, max_size=capacity), "selected"), dtype=bool
    )
    assert disk.facet_counts(gen, live, selected) == memory.facet_counts(gen, live, selected)

    want = {value: posting.valid_slots(gen, live).tolist() for value, posting in memory.postings.items()}
    got = {value: slots.tolist() for value, slots in disk.value_postings(live)}
    assert got == want
    disk.check()


# ---------------------------------------------------------------------------------------
# Differential: text
# ---------------------------------------------------------------------------------------

WORDS = ["The", "the", "red", "Red", "fox", "foxes", "jumping", "jump", "a", "über", "Über", "don't",
         "red-fox", "hello", "help", "he", "x_y", "東京", "ab12", "ÉCOLE", "école"]  # fmt: skip


@st.composite
def text_schemas(draw):
    schema = {"type": "text", "tokenizer": draw(st.sampled_from(["word", "whitespace", "prefix", "multilingual"]))}
    for option, values in (
        ("lowercase", st.booleans()),
        ("phrase_matching", st.booleans()),
        ("stopwords", st.sampled_from([{"custom": ["the", "a"]}, "english"])),
        ("stemmer", st.just({"type": "snowball", "language": "english"})),
        ("min_token_len", st.integers(1, 3)),
        ("max_token_len", st.integers(3, 6)),
    ):
        if draw(st.booleans()):
            schema[option] = draw(values)
    return schema


def texts_of(vocabulary: list[str]):
    return st.lists(st.sampled_from(vocabulary), min_size=1, max_size=5).map(" ".join)


def text_conditions(vocabulary: list[str]):
    return st.one_of(
        st.builds(
            lambda kind, text: {"match": {kind: text}},
            st.sampled_from(["text", "text_any", "phrase"]),
            texts_of(vocabulary),
        ),
        st.builds(
            lambda kind, word: {"match": {kind: word[:2]}},
            st.sampled_from(["text", "phrase"]),
            st.sampled_from(vocabulary),
        ),
        st.builds(lambda v: {"match": {"value": v}}, st.sampled_from(vocabulary)),
        st.just({"match": {"any": ["red", "fox"]}}),
        st.just({"range": {"lt": 3}}),
    )


@SETTINGS
@given(st.data())
def test_text_index_answers_as_the_in_memory_one(data):
    vocabulary = data.draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=6, unique=True), "vocabulary")
    key, schema = data.draw(st.sampled_from(KEYS), "key"), data.draw(text_schemas(), "schema")
    values = st.one_of(texts_of(vocabulary), texts_of(vocabulary), st.sampled_from(JUNK))
    slot_payloads, live, capacity = data.draw(segments(key, fields_of(values)), "segment")
    n = len(slot_payloads)
    disk = disk_index(key, schema, slot_payloads)
    memory, gen = memory_index(key, schema, slot_payloads, capacity)
    assert isinstance(disk, DiskTextIndex)
    for condition in data.draw(st.lists(text_conditions(vocabulary), min_size=1, max_size=8), "conditions"):
        assert_same_answer(disk, memory, leaf(key, condition), gen, live, n)
    # every indexed term alone (a binary search that missed a term would answer nothing),
    # and pairs of words, which make postings intersect
    for term in memory.postings:
        assert_same_answer(disk, memory, ("text", term), gen, live, n)
        assert_same_answer(disk, memory, ("text_any", term), gen, live, n)
    for first, second in itertools.combinations(vocabulary, 2):
        for kind in ("text", "phrase", "text_any"):
            assert_same_answer(disk, memory, (kind, f"{first} {second}"), gen, live, n)
    assert disk.points(gen, live) == memory.points(gen, live)
    assert np.array_equal(dense(disk.other_mask(gen, live, n), n), dense(memory.other_mask(gen, live, n), n))
    disk.check()


# ---------------------------------------------------------------------------------------
# Whole filters: the disk indexes bound the scan's answer exactly as the in-memory ones
# ---------------------------------------------------------------------------------------

FILTER_INDEXES = {"k": "keyword", "u": "uuid", "b": "bool", "t": {"type": "text", "phrase_matching": True}}
TEXT_FIELDS = {("t",): TextAnalyzer.from_params(FILTER_INDEXES["t"])}
FILTER_STRINGS = ["a", "b", "é", UUIDS[0], UUIDS[1], "not-a-uuid"]
FILTER_WORDS = ["red", "fox", "the", "jumps"]
filter_texts = st.lists(st.sampled_from(FILTER_WORDS), max_size=4).map(" ".join)
filter_payloads = st.fixed_dictionaries(
    {},
    optional={
        "k": fields_of(st.one_of(st.sampled_from(FILTER_STRINGS), st.sampled_from([1, None, True]))),
        "u": fields_of(st.sampled_from(UUIDS[:2] + ["not-a-uuid", 1, None])),
        "b": fields_of(st.sampled_from([True, False, "true", 1])),
        "t": fields_of(st.one_of(filter_texts, st.just(3))),
    },
)
string_lists = st.lists(st.sampled_from(FILTER_STRINGS), max_size=3, unique=True)
filter_leaves = st.one_of(
    st.builds(lambda k, v: {"key": k, "match": {"value": v}}, st.sampled_from(["k", "u", "b"]),
              st.one_of(st.sampled_from(FILTER_STRINGS), st.booleans(), st.just(1))),
    st.builds(lambda k, vs: {"key": k, "match": {"any": vs}}, st.sampled_from(["k", "u", "b"]), string_lists),
    st.builds(lambda k, vs: {"key": k, "match": {"except": vs}}, st.sampled_from(["k", "u", "b"]), string_lists),
    st.builds(lambda k, vs: {"key": k, "match": {"except": vs}}, st.sampled_from(["k", "b"]), st.lists(st.integers(0, 2), max_size=2, unique=True)),
    st.builds(lambda kind, text: {"key": "t", "match": {kind: text}}, st.sampled_from(["text", "text_any", "phrase"]), filter_texts),
)  # fmt: skip


def filters(depth: int):
    conditions = filter_leaves if depth == 0 else st.one_of(filter_leaves, filters(depth - 1))
    clause = st.one_of(st.none(), st.lists(conditions, min_size=1, max_size=3))
    return st.fixed_dictionaries({}, optional={"must": clause, "should": clause, "must_not": clause})


class View:
    """The `filter_plan.IndexView` of a set of indexes over n slots."""

    def __init__(self, indexes: dict, n: int, gen: np.ndarray, live: np.ndarray):
        self.by_path = {parse_path(key): index for key, index in indexes.items()}
        self.n, self.gen, self.live = n, gen, live

    def index_for(self, path):
        return self.by_path.get(path)

    def ids_mask(self, ids):
        return None

    def vector_mask(self, name):
        return None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(filter_payloads, max_size=30),
    st.lists(st.booleans(), min_size=30, max_size=30),
    st.lists(st.one_of(filters(0), filters(1)), min_size=1, max_size=4),
)
def test_filters_bound_the_scan_as_with_in_memory_indexes(slot_payloads, live_bits, filter_list):
    n = len(slot_payloads)
    live = np.array(live_bits[:n], dtype=bool)
    gen = np.zeros(n, dtype=np.uint32)
    memory = build_indexes(FILTER_INDEXES, enumerate(slot_payloads), gen)
    disk = {key: disk_index(key, schema, slot_payloads) for key, schema in FILTER_INDEXES.items()}
    for filter_ in filter_list:
        compiled = compile_filter(filter_, TEXT_FIELDS)
        if compiled is None:
            continue
        sure, to_check = filter_plan.split(compiled.plan, View(disk, n, gen, live))
        want_sure, want_check = filter_plan.split(compiled.plan, View(memory, n, gen, live))
        assert np.array_equal(sure, want_sure) and np.array_equal(to_check, want_check), filter_
        matches = np.array(
            [
                bool(live[s]) and compiled.matches(PointContext(s, lambda p=p: p, lambda _: False))
                for s, p in enumerate(slot_payloads)
            ],
            dtype=bool,
        )
        assert not (sure & ~matches).any(), filter_  # a sure slot matches
        assert not (matches & ~(sure | to_check)).any(), filter_  # a match is never ruled out


# ---------------------------------------------------------------------------------------
# Examples
# ---------------------------------------------------------------------------------------

ALL_LIVE = np.ones(6, dtype=bool)
NO_GEN = None  # the disk indexes ignore the generation


def test_except_keeps_a_slot_holding_an_unlisted_value():
    index = disk_index("c", "keyword", [{"c": ["a", "b"]}, {"c": "a"}, {"c": "c"}, {"c": 7}, {}, {"c": ["a", 1]}])
    yes, upper = index.answer(("except", frozenset({"a"}), True), NO_GEN, ALL_LIVE, 6)
    assert yes.tolist() == [True, False, True, False, False, False]
    assert upper.tolist() == [True, False, True, True, False, True]  # 7 and 1 are not strings: maybe
    yes, upper = index.answer(("except", frozenset({"zzz"}), True), NO_GEN, ALL_LIVE, 6)
    assert yes.tolist() == [True, True, True, False, False, True]  # nothing listed is held: `present`


def test_facets_follow_deletes_and_selection():
    index = disk_index("c", "keyword", [{"c": "x"}, {"c": ["x", "y", "x"]}, {"c": "y"}, {"c": "z"}])
    live = np.array([True, True, False, True])
    assert index.facet_counts(NO_GEN, np.ones(4, bool), None) == {"x": 2, "y": 2, "z": 1}
    assert index.facet_counts(NO_GEN, live, None) == {"x": 2, "y": 1, "z": 1}
    assert index.facet_counts(NO_GEN, live, np.array([False, True, True, False])) == {"x": 1, "y": 1}
    flags = disk_index("b", "bool", [{"b": True}, {"b": [True, False]}, {"b": "true"}])
    assert flags.facet_counts(NO_GEN, np.ones(3, bool), None) == {True: 2, False: 1}
    assert flags.answer(("value", True), NO_GEN, np.ones(3, bool), 3)[0].tolist() == [True, True, False]


def test_keys_are_code_point_ordered_and_lone_surrogates_survive():
    values = ["b", "é", "a", "😀", "\ud800", "\uffff", ""]
    index = disk_index("c", "keyword", [{"c": v} for v in values])
    assert [v for v, _ in index.value_postings(np.ones(7, bool))] == sorted(values)
    for slot, value in enumerate(values):
        assert np.flatnonzero(index.answer(("value", value), NO_GEN, np.ones(7, bool), 7)[0]).tolist() == [slot]


def test_uuid_index_holds_uuid_strings_as_written():
    index = disk_index("u", "uuid", [{"u": UUID}, {"u": UUID.upper()}, {"u": "nope"}, {"u": 5}])
    live = np.ones(4, bool)
    yes, upper = index.answer(("value", UUID), NO_GEN, live, 4)
    assert yes.tolist() == [True, False, False, False] and upper is yes
    yes, upper = index.answer(("any", frozenset({UUID.upper(), "nope"}), True), NO_GEN, live, 4)
    assert yes.tolist() == [False, True, False, False]
    assert upper.tolist() == [False, True, True, True]  # "nope" might be in the slots with other values
    assert index.points(NO_GEN, live) == 2


def test_text_postings_intersect_and_unite():
    schema = {"type": "text", "phrase_matching": True}
    index = disk_index("t", schema, [{"t": "red fox"}, {"t": ["red", "fox"]}, {"t": "fox"}, {"t": "the"}, {"t": 3}])
    live = np.array([True, True, True, True, True])
    assert index.answer(("text", "fox red"), NO_GEN, live, 5)[0].tolist() == [True, True, False, False, False]
    assert index.answer(("text_any", "red cat"), NO_GEN, live, 5)[0].tolist() == [True, True, False, False, False]
    assert index.answer(("text", "red cat"), NO_GEN, live, 5) == (None, None)  # a term nobody has
    yes, upper = index.answer(("phrase", "red fox"), NO_GEN, live, 5)
    assert yes is None and upper.tolist() == [True, True, False, False, False]  # the payload check decides
    assert index.points(NO_GEN, live) == 4  # "the" has a term too; 3 is in `other`
    live[1] = False
    assert index.answer(("text", "fox red"), NO_GEN, live, 5)[0].tolist() == [True, False, False, False, False]


def test_empty_indexes():
    for schema in ("keyword", "uuid", "bool", "text"):
        for slot_payloads in ([], [{}, {"other": 1}]):
            index = disk_index("c", schema, slot_payloads)
            live = np.ones(len(slot_payloads), bool)
            n = len(slot_payloads)
            assert index.points(NO_GEN, live) == 0
            assert index.other_mask(NO_GEN, live, n) is None
            condition = ("text", "a") if schema == "text" else ("value", "a")
            assert index.answer(condition, NO_GEN, live, n)[0] is None
            if schema != "text":
                assert index.facet_counts(NO_GEN, live, None) == {}
            index.check()


def test_sizes_and_meta():
    arrays, meta = build_postings_index("c", "keyword", [(0, {"c": ["x", "y"]}), (2, {"c": "x"})], 3)
    assert meta == {
        "format": 1,
        "type": "keyword",
        "key": "c",
        "schema": "keyword",
        "points": 3,
        "values": 2,
        "entries": 3,
    }
    assert arrays["keys_blob"].tobytes() == b"xy"
    assert arrays["key_offsets"].tolist() == [0, 1, 2] and arrays["post_offsets"].tolist() == [0, 2, 3]
    assert arrays["post_slots"].tolist() == [0, 2, 0]
    assert arrays["present"].tolist() == [True, False, True]
    index = open_postings_index(meta, arrays)
    assert index.nbytes() == sum(a.nbytes for a in arrays.values())


def test_one_pass_builders_over_the_same_payloads():
    """P4 feeds one builder per field from a single pass; slots may come in any order."""
    builders = {key: PostingsIndexBuilder(key, schema) for key, schema in FILTER_INDEXES.items()}
    rows = [(2, {"k": "x", "t": "red fox"}), (0, {"k": ["y", "x"], "b": True}), (1, {"u": UUID})]
    for slot, payload in rows:
        for builder in builders.values():
            builder.add(slot, payload)
    built = {}
    for key, builder in builders.items():
        arrays, meta = builder.finish(3)
        built[key] = open_postings_index(meta, arrays)
    live = np.ones(3, bool)
    assert np.flatnonzero(built["k"].answer(("value", "x"), NO_GEN, live, 3)[0]).tolist() == [0, 2]
    assert built["b"].facet_counts(NO_GEN, live, None) == {True: 1}
    assert built["u"].points(NO_GEN, live) == 1 and built["t"].points(NO_GEN, live) == 1


# ---------------------------------------------------------------------------------------
# Bad input and corruption
# ---------------------------------------------------------------------------------------


def test_build_refusals():
    with pytest.raises(ValueError, match="not a postings index type"):
        PostingsIndexBuilder("c", "integer")
    with pytest.raises(BadInput, match="tokenizer"):
        PostingsIndexBuilder("c", {"type": "text", "tokenizer": "sentencepiece"})
    with pytest.raises(BadInput, match="Invalid json path"):
        PostingsIndexBuilder("a..b", "keyword")
    with pytest.raises(ValueError, match="added twice"):
        build_postings_index("c", "keyword", [(1, {"c": "x"}), (1, {"c": "x"})], 2)
    with pytest.raises(ValueError, match="not below n = 2"):
        build_postings_index("c", "keyword", [(2, {"c": "x"})], 2)
    with pytest.raises(ValueError, match="not below n = 2"):
        build_postings_index("c", "keyword", [(5, {"c": 1})], 2)  # only in `other`


def good_arrays():
    return build_postings_index("c", "keyword", enumerate([{"c": ["a", "b"]}, {"c": "b"}, {"c": 1}]), 3)


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda a, m: a.pop("post_slots"), "array post_slots is missing"),
        (lambda a, m: a.__setitem__("post_slots", a["post_slots"].astype(np.int64)), "array post_slots is int64"),
        (lambda a, m: a.__setitem__("present", a["present"][:2]), r"array present is bool \(2,\)"),
        (lambda a, m: m.__setitem__("entries", 4), r"array post_slots is uint32 \(3,\), expected uint32 \(4,\)"),
        (lambda a, m: a.__setitem__("other", np.zeros((3, 1), bool)), "array other"),
        (lambda a, m: a["key_offsets"].__setitem__(-1, 9), "key_offsets run from 0 to 9, expected 0 to 2"),
        (lambda a, m: a["post_offsets"].__setitem__(0, 1), "post_offsets run from 1"),
        (lambda a, m: m.__setitem__("format", 2), "format 2, this pydrant reads 1"),
        (lambda a, m: m.pop("entries"), "meta field 'entries' is None"),
        (lambda a, m: m.__setitem__("points", "3"), "meta field 'points' is '3'"),
        (lambda a, m: m.__setitem__("values", -1), "meta field 'values' is -1"),
        (lambda a, m: m.pop("schema"), "meta field 'schema' is missing"),
        (lambda a, m: m.__setitem__("type", "integer"), "'integer' is not a postings index type"),
    ],
)
def test_open_refuses_arrays_that_disagree_with_the_meta(damage, message):
    arrays, meta = good_arrays()
    damage(arrays, meta)
    with pytest.raises(ValueError, match=message):
        open_postings_index(meta, arrays)


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda a: a["post_slots"].__setitem__(2, 3), "not below n = 3"),  # slot 1 -> 3
        (lambda a: a["post_slots"].__setitem__(2, 0), "not strictly ascending"),  # b: [0, 1] -> [0, 0]
        (lambda a: a["present"].__setitem__(1, False), "not marked present"),
        (lambda a: a["keys_blob"].__setitem__(0, ord("c")), "keys not strictly ascending"),
        (lambda a: a["keys_blob"].__setitem__(1, 0xFF), "not UTF-8"),
        (lambda a: a["post_offsets"].__setitem__(1, 3), "empty posting"),
        (lambda a: a["key_offsets"].__setitem__(1, 2), "key_offsets decrease|strictly ascending"),
    ],
)
def test_check_reports_corrupt_structures(damage, message):
    arrays, meta = good_arrays()
    open_postings_index(meta, arrays).check()  # the undamaged index passes
    damage(arrays)
    with pytest.raises(ValueError, match=message):
        open_postings_index(meta, arrays).check()


def test_check_reports_keys_the_index_cannot_hold():
    arrays, meta = build_postings_index("u", "uuid", [(0, {"u": UUID})], 1)
    arrays["keys_blob"][0] = ord("x")
    with pytest.raises(ValueError, match="not a uuid value"):
        open_postings_index(meta, arrays).check()
    arrays, meta = build_postings_index("b", "bool", [(0, {"b": True})], 1)
    arrays["keys_blob"][:] = np.frombuffer(b"tru!", np.uint8)
    with pytest.raises(ValueError, match="not a bool"):
        open_postings_index(meta, arrays).check()


def test_check_steps_cover_every_chunk_and_report_progress():
    slot_payloads = [{"c": ["x", "y"] if s % 3 else "y"} for s in range(30)]  # x: 20 slots, y: 30
    arrays, meta = build_postings_index("c", "keyword", enumerate(slot_payloads), 30)
    assert list(open_postings_index(meta, arrays).check_steps(4)) == [2, *range(6, 51, 4), 52]  # 2 keys, 50 entries
    slots = arrays["post_slots"]
    slots[7], slots[8] = slots[8], slots[7]  # across the boundary of two chunks, within x's posting
    with pytest.raises(ValueError, match="not strictly ascending"):
        open_postings_index(meta, arrays).check()
    with pytest.raises(ValueError, match="not strictly ascending"):
        list(open_postings_index(meta, arrays).check_steps(4))
    slots[7], slots[8] = slots[8], slots[7]
    slots[20] = 29  # y's posting starts (entry 20) with anything, but its second entry (1) is lower
    with pytest.raises(ValueError, match="not strictly ascending"):
        list(open_postings_index(meta, arrays).check_steps(4))
