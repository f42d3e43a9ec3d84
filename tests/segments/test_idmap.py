"""The id map of immutable segments (pydrant/segments/idmap.py) against a dict model and
`id_sort_key` order: lookups both ways, absent ids, paging in Qdrant id order, versions,
the arrays written to a pack and mapped back, and the consistency check."""

import uuid

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pydrant.segments import idmap
from pydrant.segments.idmap import ARRAY_DTYPES, IdArraysBuilder, IdMap, build_id_arrays
from pydrant.segments.ids import UUID_KEY_BASE, id_from_sort_key, id_sort_key
from pydrant.segments.packfile import PackWriter, open_pack

U64_MAX = 2**64 - 1


def uuid_of(hi: int, lo: int) -> str:
    return str(uuid.UUID(int=(hi << 64) | lo))


# UUIDs share high words often (a few hi values), and ints crowd the u64 edges, so that
# runs of equal high words, the int/UUID boundary and the extremes are all exercised.
_hi_words = st.sampled_from([0, 1, 2**63, U64_MAX]) | st.integers(0, U64_MAX)
_uuids = st.builds(uuid_of, _hi_words, st.sampled_from([0, 1, U64_MAX]) | st.integers(0, U64_MAX))
_ints = st.sampled_from([0, 1, 2**63 - 1, 2**63, U64_MAX - 1, U64_MAX]) | st.integers(0, U64_MAX) | st.integers(0, 50)
_ids = st.lists(_ints | _uuids, max_size=120, unique_by=id_sort_key)


@st.composite
def _points(draw):
    """(ids in slot order, versions, ids absent from them)."""
    ids = draw(_ids)
    versions = draw(st.lists(st.integers(0, U64_MAX), min_size=len(ids), max_size=len(ids)))
    absent = draw(st.lists(_ints | _uuids, max_size=20))
    held = {id_sort_key(point_id) for point_id in ids}
    return ids, versions, [point_id for point_id in absent if id_sort_key(point_id) not in held]


def assert_answers_like_the_model(id_map: IdMap, ids, versions, absent):
    slot_by_key = {id_sort_key(point_id): slot for slot, point_id in enumerate(ids)}
    assert len(id_map) == len(ids)
    assert id_map.versions.tolist() == versions
    assert [id_map.version_of(slot) for slot in range(len(ids))] == versions
    # id -> slot, one by one and batched, held and absent ids interleaved
    for point_id in ids:
        assert id_map.slot_of(point_id) == slot_by_key[id_sort_key(point_id)]
    for point_id in absent:
        assert id_map.slot_of(point_id) is None
    queries = [q for pair in zip(ids, absent) for q in pair] + ids[len(absent) :] + absent[len(ids) :]
    expected = [slot_by_key.get(id_sort_key(q), -1) for q in queries]
    batched = id_map.slots_of(queries)
    assert batched.dtype == np.int64 and batched.tolist() == expected
    # slot -> id
    assert [id_map.id_of(slot) for slot in range(len(ids))] == ids
    assert id_map.ids_of(np.arange(len(ids))[::-1]) == ids[::-1]
    # Qdrant order, from the start and from any key (held, absent, between kinds)
    ordered = [slot for _, slot in sorted(slot_by_key.items())]
    assert _walk(id_map, None, 7) == ordered
    starts = [id_sort_key(q) for q in ids[:10] + absent[:10]] + [0, 1, UUID_KEY_BASE - 1, UUID_KEY_BASE, 2**200]
    for start in starts:
        assert _walk(id_map, start, 3) == [slot for key, slot in sorted(slot_by_key.items()) if key >= start]
    assert id_map.check() == []


def _walk(id_map: IdMap, start, chunk: int) -> list[int]:
    slots = []
    for block in id_map.iter_from(start, chunk):
        assert block.dtype == np.int64 and 1 <= block.size <= chunk
        slots.extend(block.tolist())
    return slots


@settings(max_examples=200, deadline=None)
@given(points=_points())
def test_lookups_and_order_match_a_dict_model(points):
    ids, versions, absent = points
    assert_answers_like_the_model(IdMap(build_id_arrays(ids, versions)), ids, versions, absent)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(points=_points(), batch=st.integers(1, 50))
def test_mapped_from_a_pack_and_built_in_batches_it_answers_the_same(tmp_path, points, batch):
    ids, versions, absent = points
    builder = IdArraysBuilder()
    for start in range(0, len(ids), batch):
        builder.add_many(ids[start : start + batch], np.array(versions[start : start + batch], np.uint64))
    assert len(builder) == len(ids)
    arrays = builder.finish()
    reference = build_id_arrays(ids, versions)
    assert all(np.array_equal(arrays[name], reference[name]) for name in ARRAY_DTYPES)
    path = tmp_path / f"{len(list(tmp_path.iterdir()))}.pack"
    with PackWriter(path) as writer:
        for name in ARRAY_DTYPES:
            writer.add(name, arrays[name])
        table = writer.finish()
    mapped = open_pack(path, table)
    assert not mapped["int_ids"].flags.writeable
    assert_answers_like_the_model(IdMap(mapped), ids, versions, absent)


def test_uuids_sharing_high_words_are_told_apart_by_their_low_words():
    his = [7, 7, 7, 7, 2**63, 2**63, 0]
    los = [U64_MAX, 0, 2**63, 5, 1, 0, U64_MAX]
    ids = [uuid_of(hi, lo) for hi, lo in zip(his, los)] + [3, U64_MAX]
    id_map = IdMap(build_id_arrays(ids, range(len(ids))))
    arrays = build_id_arrays(ids, range(len(ids)))
    assert arrays["uuid_hi"].tolist() == [0, 7, 7, 7, 7, 2**63, 2**63]
    assert arrays["uuid_lo"].tolist() == [U64_MAX, 0, 5, 2**63, U64_MAX, 0, 1]
    for slot, point_id in enumerate(ids):
        assert id_map.slot_of(point_id) == slot
    for hi, lo in [(7, 1), (7, 6), (7, U64_MAX - 1), (8, 0), (6, U64_MAX), (2**63, 2), (U64_MAX, U64_MAX)]:
        assert id_map.slot_of(uuid_of(hi, lo)) is None
    assert id_map.slots_of([uuid_of(7, 6), uuid_of(7, 5), uuid_of(7, 4)]).tolist() == [-1, 3, -1]
    after_7_5 = [slot for block in id_map.iter_from(id_sort_key(uuid_of(7, 6))) for slot in block.tolist()]
    assert id_map.ids_of(after_7_5) == [uuid_of(7, 2**63), uuid_of(7, U64_MAX), uuid_of(2**63, 0), uuid_of(2**63, 1)]


def test_any_uuid_spelling_finds_the_point_and_ids_come_back_canonical():
    canonical = "936da01f-9abd-4d9d-80c7-02af85c822a8"
    id_map = IdMap(build_id_arrays([canonical.upper().replace("-", ""), 12], [1, 2]))
    for spelling in (canonical, canonical.upper(), "{" + canonical + "}", "urn:uuid:" + canonical):
        assert id_map.slot_of(spelling) == 0
        assert id_map.slots_of([spelling]).tolist() == [0]
    assert id_map.ids_of([0, 1]) == [canonical, 12] and id_map.id_of(0) == canonical


def test_integers_outside_u64_are_absent_not_errors():
    id_map = IdMap(build_id_arrays([0, U64_MAX], [1, 1]))
    assert id_map.slot_of(-1) is None and id_map.slot_of(2**64) is None
    assert id_map.slots_of([-1, 2**64, U64_MAX, 0]).tolist() == [-1, -1, 1, 0]


def test_an_empty_map():
    id_map = IdMap(build_id_arrays([], []))
    assert len(id_map) == 0 and id_map.slot_of(5) is None and id_map.slot_of(str(uuid.UUID(int=5))) is None
    assert id_map.slots_of([1, str(uuid.UUID(int=1))]).tolist() == [-1, -1]
    assert list(id_map.iter_from(None)) == [] and id_map.ids_of([]) == [] and id_map.check() == []


def test_only_uuids_or_only_ints():
    uuids = [str(uuid.UUID(int=i * 3)) for i in range(5, 0, -1)]
    id_map = IdMap(build_id_arrays(uuids, [0] * 5))
    assert [s for b in id_map.iter_from(None) for s in b.tolist()] == [4, 3, 2, 1, 0]
    assert id_map.slots_of([3, uuids[0]]).tolist() == [-1, 0]
    ints = IdMap(build_id_arrays([9, 4, 6], [0] * 3))
    assert ints.slot_of(uuids[0]) is None
    assert [s for b in ints.iter_from(id_sort_key(uuids[0])) for s in b.tolist()] == []
    assert [s for b in ints.iter_from(5) for s in b.tolist()] == [2, 0]


def test_iter_from_takes_a_positive_chunk():
    id_map = IdMap(build_id_arrays([1], [0]))
    with pytest.raises(ValueError, match="chunk"):
        list(id_map.iter_from(None, 0))


def test_numpy_integer_ids_are_accepted_as_their_value():
    arrays = build_id_arrays([np.uint64(U64_MAX), np.int32(3)], np.array([1, 2], np.int64))
    id_map = IdMap(arrays)
    assert id_map.ids_of([0, 1]) == [U64_MAX, 3] and id_map.versions.dtype == np.uint64


# -- refused input


@pytest.mark.parametrize(
    "ids, versions, message",
    [
        ([1, 2, 1], [0, 0, 0], "point id 1 is in slots 0 and 2"),
        ([uuid_of(5, 6), 1, uuid_of(5, 6).upper()], [0, 0, 0], f"point id {uuid_of(5, 6)} is in slots 0 and 2"),
        ([1, 2], [0], "2 ids but 1 versions"),
        ([-1], [0], "not a point id"),
        ([2**64], [0], "not a point id"),
        ([True], [0], "not a point id"),
        ([1.0], [0], "not a point id"),
        (["not-a-uuid"], [0], "not a point id"),
        ([1], [-1], "version -1"),
        ([1], [2**64], "version"),
        ([1], [1.5], "version"),
        ([1], [True], "version"),
        ([1], np.array([-1]), "version"),
        ([1], np.array([1.0]), "version"),
    ],
)
def test_bad_build_input_is_refused(ids, versions, message):
    with pytest.raises(ValueError, match=message):
        build_id_arrays(ids, versions)


def test_a_refused_batch_adds_nothing():
    builder = IdArraysBuilder()
    builder.add_many([1, 2], [0, 0])
    with pytest.raises(ValueError):
        builder.add_many([3, -4], [0, 0])
    builder.add_many([3], [7])
    assert len(builder) == 3
    assert IdMap(builder.finish()).ids_of([0, 1, 2]) == [1, 2, 3]


def test_the_point_limit_is_enforced(monkeypatch):
    monkeypatch.setattr(idmap, "MAX_POINTS", 3)
    builder = IdArraysBuilder()
    builder.add_many([1, 2], [0, 0])
    with pytest.raises(ValueError, match="at most 3 points"):
        builder.add_many([3, 4], [0, 0])


def _valid_arrays():
    ids = [10, uuid_of(1, 2), 4, uuid_of(1, 1), 7, uuid_of(0, 9)]
    return {name: array.copy() for name, array in build_id_arrays(ids, range(6)).items()}


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a: a.pop("versions"), "'versions' is missing"),
        (lambda a: a.__setitem__("int_slots", a["int_slots"].astype(np.int32)), "'int_slots' is <i4"),
        (lambda a: a.__setitem__("slot_key", a["slot_key"].reshape(2, 3)), "'slot_key'.*1-d"),
        (lambda a: a.__setitem__("versions", a["versions"][:5]), "disagree on their lengths"),
        (lambda a: a.__setitem__("uuid_lo", a["uuid_lo"][:2]), "disagree on their lengths"),
        (lambda a: a.__setitem__("int_ids", a["int_ids"][:2]), "disagree on their lengths"),
    ],
)
def test_arrays_of_the_wrong_type_or_length_are_refused_at_construction(change, message):
    arrays = _valid_arrays()
    change(arrays)
    with pytest.raises(ValueError, match=message):
        IdMap(arrays)


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda a: a["int_ids"].__setitem__(slice(None), a["int_ids"][::-1].copy()), "int_ids are not strictly"),
        (lambda a: a["int_ids"].__setitem__(1, a["int_ids"][0]), "int_ids are not strictly"),
        (lambda a: a["uuid_lo"].__setitem__(2, 1), "UUIDs are not strictly"),
        (lambda a: a["uuid_hi"].__setitem__(0, 5), "UUIDs are not strictly"),
        (lambda a: a["int_slots"].__setitem__(0, 6), "int_slots has a slot >= 6"),
        (lambda a: a["uuid_slots"].__setitem__(2, 2**32 - 1), "uuid_slots has a slot >= 6"),
        (lambda a: a["int_slots"].__setitem__(0, a["int_slots"][1]), "point back to int_ids"),
        (lambda a: a["uuid_slots"].__setitem__(0, a["uuid_slots"][1]), "point back to the UUID rows"),
        (lambda a: a["slot_key"].__setitem__(0, 11), "point back to int_ids"),
        (lambda a: a["slot_is_uuid"].__setitem__(1, False), "point back to the UUID rows"),
        (lambda a: a["slot_key"].__setitem__(1, 0), "point back to the UUID rows"),
    ],
)
def test_check_reports_inconsistent_arrays(damage, message):
    arrays = _valid_arrays()
    assert IdMap(arrays).check() == []
    damage(arrays)
    problems = IdMap(arrays).check()
    assert any(message in problem for problem in problems), problems


def test_check_works_block_by_block(monkeypatch):
    monkeypatch.setattr(idmap, "_CHECK_BLOCK", 2)  # blocks smaller than every array
    ids = [id_from_sort_key(key) for key in (5, 1, 9, 3, 7, UUID_KEY_BASE + 4, UUID_KEY_BASE + 2, UUID_KEY_BASE + 8)]
    fresh = build_id_arrays(ids, range(8))
    assert IdMap(fresh).check() == []
    arrays = {name: array.copy() for name, array in fresh.items()}
    arrays["int_ids"][2] = arrays["int_ids"][1]  # rows 1 and 2 equal: a pair across blocks [0, 2) | [2, 4)
    assert IdMap(arrays).check() == [
        "int_ids are not strictly ascending",
        "slot_key / slot_is_uuid do not point back to int_ids",
    ]
    arrays = {name: array.copy() for name, array in fresh.items()}
    arrays["uuid_slots"][2] = arrays["uuid_slots"][0]  # a slot twice, seen in the second block only
    assert IdMap(arrays).check() == [
        "slot_key / slot_is_uuid do not point back to the UUID rows",
        "1 slots are listed twice or not at all",
    ]
