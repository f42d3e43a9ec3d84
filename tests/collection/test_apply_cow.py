"""Copy-on-write in `collection/apply.py` (issue 17, P5): only appendable segments change
points in place; every change but a delete of a point held by a non-appendable segment
moves it into the writable segment at version `op_num`.

A model-based test drives real segments (an `IndexedSegment` built over some points, an
optional non-writable appendable one, the appendable writable one) with random logged
operations through `apply_operation`, and checks after each step against a dict model:
what the collection reads (`ReadEngine`, newest copy wins), that every point is held
once, that the indexed segment only ever lost points (never changed one in place or grew
a tail), that a point moved by the step sits in the writable segment at `op_num`, and
that replaying logged operations (one older one, or a whole suffix in order, as WAL
recovery does) changes nothing. Plus: an error between the new copy and the old copy's
deletion, the batching of moves, `IDS_MUST_EXIST`, and the single-segment fast path.
"""

from __future__ import annotations

import copy
import tempfile
import uuid
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from pydrant.collection import apply as apply_module
from pydrant.collection.apply import IDS_MUST_EXIST, REFUSED, apply_operation
from pydrant.collection.reads import ReadEngine
from pydrant.errors import NotFound, ServiceError
from pydrant.segments import payload as payload_ops
from pydrant.segments.appendable import AppendableSegment
from pydrant.segments.base import flush_order
from pydrant.segments.ids import id_sort_key
from pydrant.segments.immutable_build import ImmutableBuilder
from pydrant.segments.indexed import IndexedSegment
from pydrant.segments.types import DenseVectorSpec, PointInput, Record, SparseVector, SparseVectorSpec, VectorSchema

SCHEMA = VectorSchema(
    dense={"": DenseVectorSpec(2, "Dot"), "b": DenseVectorSpec(2, "Dot")},
    sparse={"s": SparseVectorSpec()},
)
VECTOR_NAMES = ["", "b", "s"]
INDEXED_IDS = [0, 1, 2, 3, 4, str(uuid.UUID(int=7))]
MIDDLE_IDS = [10, 11]  # held by a non-writable appendable segment in the three-segment layout
NEW_IDS = [5, 12, str(uuid.UUID(int=9))]  # held by nobody at the start
ALL_IDS = INDEXED_IDS + MIDDLE_IDS + NEW_IDS
INITIAL_VERSION = 1
BUILD_SETTINGS = {
    "dense": {name: {"hnsw": {"m": 4, "ef_construct": 8}} for name in SCHEMA.dense},
    "sparse": {name: {"index": {}} for name in SCHEMA.sparse},
}


# -- vectors and payloads as the model keeps them (plain, comparable) --


def dense_plain(value) -> tuple:
    return tuple(float(x) for x in np.asarray(value, dtype=np.float32))


def sparse_plain(value) -> tuple:
    if isinstance(value, SparseVector):
        return tuple(value.indices.tolist()), tuple(float(v) for v in value.values)
    return tuple(value["indices"]), tuple(float(v) for v in value["values"])


def plain_vectors(vectors: dict) -> dict:
    return {name: sparse_plain(v) if name == "s" else dense_plain(v) for name, v in vectors.items()}


def initial_vectors(i: int) -> dict:
    vectors = {"": [float(i), 1.0], "b": [1.0, float(i)], "s": {"indices": [i % 4], "values": [0.5]}}
    if i % 3 == 2:
        del vectors["b"], vectors["s"]
    return vectors


def initial_payload(i: int) -> dict:
    return {"k": i % 3, "x": f"p{i}"}


def engine_vectors(vectors: dict) -> dict:
    """Logged vectors (lists, sparse dicts) as a segment takes them."""
    return apply_module.decode_vectors(vectors)


# -- the model --


class Model:
    """The collection's points as a dict: id key -> (id, version, plain vectors, payload)."""

    def __init__(self, points):
        self.points = {id_sort_key(p[0]): list(p) for p in points}

    def matches(self, key, filter_) -> bool:
        payload = self.points[key][3]
        if "must" in filter_:
            condition = filter_["must"][0]
            return _equals(payload.get(condition["key"]), condition["match"]["value"])
        condition = filter_["must_not"][0]
        return not _equals(payload.get(condition["key"]), condition["match"]["value"])

    def selected(self, op) -> list:
        if "ids" in op:
            return [id_sort_key(i) for i in dict.fromkeys(op["ids"]) if id_sort_key(i) in self.points]
        return [key for key in self.points if self.matches(key, op["filter"])]

    def apply(self, op_num: int, op: dict) -> int:
        kind = op["type"]
        if kind == "upsert":
            latest = {id_sort_key(p["id"]): p for p in op["points"]}
            written = 0
            for key, p in latest.items():
                if key in self.points and op.get("update_filter") and not self.matches(key, op["update_filter"]):
                    continue
                self.points[key] = [p["id"], op_num, plain_vectors(p.get("vectors") or {}), copy.deepcopy(p.get("payload") or {})]
                written += 1
            return written
        if kind == "update_vectors":
            merged: dict = {}
            for p in op["points"]:
                merged.setdefault(id_sort_key(p["id"]), {}).update(plain_vectors(p["vectors"]))
            changed = 0
            for key, vectors in merged.items():
                if key not in self.points:
                    continue
                if op.get("update_filter") and not self.matches(key, op["update_filter"]):
                    continue
                point = self.points[key]
                point[1], point[2] = op_num, {**point[2], **vectors}
                changed += 1
            return changed
        keys = self.selected(op)
        for key in keys:
            point = self.points[key]
            if kind == "delete_points":
                del self.points[key]
                continue
            point[1] = op_num
            if kind == "set_payload":
                point[3] = payload_ops.set_payload(point[3], op["payload"], op.get("key"))
            elif kind == "overwrite_payload":
                point[3] = copy.deepcopy(op["payload"])
            elif kind == "delete_payload":
                point[3] = {k: v for k, v in point[3].items() if k not in op["keys"]}
            elif kind == "clear_payload":
                point[3] = {}
            elif kind == "delete_vectors":
                point[2] = {n: v for n, v in point[2].items() if n not in op["vectors"]}
        return len(keys)


def _equals(value, wanted) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value == wanted


# -- strategies --

ids = st.sampled_from(ALL_IDS)
small_ints = st.integers(-3, 3).map(float)
dense_values = st.lists(small_ints, min_size=2, max_size=2)
sparse_values = st.lists(st.integers(0, 5), min_size=1, max_size=3, unique=True).flatmap(
    lambda idx: st.lists(small_ints, min_size=len(idx), max_size=len(idx)).map(
        lambda vals: {"indices": sorted(idx), "values": vals}
    )
)
vector_dicts = st.fixed_dictionaries({}, optional={"": dense_values, "b": dense_values, "s": sparse_values})
values = st.one_of(st.integers(0, 2), st.text("ab", max_size=2))
payloads = st.dictionaries(st.sampled_from(["k", "x", "y"]), values, max_size=3)
k_payloads = st.fixed_dictionaries({"k": st.integers(0, 2)}, optional={"y": values})
filters = st.builds(
    lambda clause, value: {clause: [{"key": "k", "match": {"value": value}}]},
    st.sampled_from(["must", "must_not"]),
    st.integers(0, 2),
)
selections = st.one_of(
    st.lists(ids, min_size=1, max_size=4).map(lambda chosen: {"ids": chosen}),
    filters.map(lambda f: {"filter": f}),
)


# -- the machine --


def initial_records(point_ids) -> list[Record]:
    return [
        Record(point_id, INITIAL_VERSION, initial_payload(i), engine_vectors(initial_vectors(i)))
        for i, point_id in enumerate(point_ids)
    ]


def non_appendable(kind: str, path: Path, records: list[Record]):
    """A built segment holding `records`: an `IndexedSegment` (which could still change
    points in place, so the tests see that it is not asked to) or an `ImmutableSegment`
    (which refuses every write but deletes with ServiceError)."""
    if kind == "indexed":
        segment = IndexedSegment.create(path, SCHEMA)
        segment.copy_points(records)
        segment.build_indexes(BUILD_SETTINGS)
        return segment
    staging = AppendableSegment.create(path.with_name(path.name + ".staging"), SCHEMA)
    try:
        staging.copy_points(records)
        builder = ImmutableBuilder(path, SCHEMA, {})
        builder.add(staging.export_points(list(staging.iter_ids())))
        builder.advance_version(staging.version)
        return builder.finish(BUILD_SETTINGS, threads=1)
    finally:
        staging.drop()


NON_APPENDABLE_KINDS = ["indexed", "immutable"]


class CowMachine(RuleBasedStateMachine):
    """A collection-like segment list driven through `apply_operation`."""

    def __init__(self, root: Path, kind: str, with_middle: bool):
        super().__init__()
        directory = Path(tempfile.mkdtemp(dir=root))
        # named `indexed` for short: the non-appendable segment, of either kind
        self.indexed = non_appendable(kind, directory / "indexed", initial_records(INDEXED_IDS))
        assert not self.indexed.is_appendable
        # an indexed (RocksDB) segment changes points in place (apply.changes_in_place)
        self.moves_out = kind == "immutable"
        self.segments: list = [self.indexed]
        initial = [(pid, INITIAL_VERSION, plain_vectors(initial_vectors(i)), initial_payload(i)) for i, pid in enumerate(INDEXED_IDS)]
        if with_middle:
            middle = AppendableSegment.create(directory / "middle", SCHEMA)
            middle.copy_points(initial_records(MIDDLE_IDS))
            self.segments.append(middle)
            initial += [(pid, INITIAL_VERSION, plain_vectors(initial_vectors(i)), initial_payload(i)) for i, pid in enumerate(MIDDLE_IDS)]
        self.writable = AppendableSegment.create(directory / "writable", SCHEMA)
        self.writable.advance_version(INITIAL_VERSION)
        self.segments.append(self.writable)
        self.model = Model(initial)
        self.op_num = INITIAL_VERSION
        self.history: list[tuple[int, dict]] = []
        self.built_slots = self.indexed.slot_counts()[0]
        self.initial_in_indexed = {id_sort_key(p[0]): p for p in initial[: len(INDEXED_IDS)]}

    def teardown(self):
        try:
            self.replay_from(0)
        finally:
            for segment in self.segments:
                segment.drop()

    # -- applying --

    def run(self, op: dict) -> None:
        self.op_num += 1
        in_indexed_before = {id_sort_key(i) for i in ALL_IDS if self.indexed.has_point(i)}
        changed = apply_operation(self.segments, SCHEMA, self.op_num, op)
        expected = self.model.apply(self.op_num, op)
        self.history.append((self.op_num, op))
        assert changed == expected, (op, changed, expected)
        if not self.moves_out:
            return
        for key in in_indexed_before:
            point = self.model.points.get(key)
            if point is not None and point[1] == self.op_num:  # changed now: moved out
                assert not self.indexed.has_point(point[0]), point[0]
                assert self.writable.point_version(point[0]) == self.op_num, point[0]

    def existing(self, chosen) -> bool:
        return all(id_sort_key(i) in self.model.points for i in chosen)

    @rule(points=st.lists(st.fixed_dictionaries({"id": ids, "vectors": vector_dicts, "payload": payloads}), min_size=1, max_size=3),
          update_filter=st.one_of(st.none(), filters))
    def upsert(self, points, update_filter):
        op = {"type": "upsert", "points": points}
        if update_filter:
            op["update_filter"] = update_filter
        self.run(op)

    @rule(selection=selections)
    def delete_points(self, selection):
        self.run({"type": "delete_points", **selection})

    @rule(selection=selections, payload=st.one_of(payloads, k_payloads), key=st.sampled_from([None, "obj"]), must_exist=st.booleans())
    def set_payload(self, selection, payload, key, must_exist):
        op = {"type": "set_payload", "payload": payload, **selection}
        if key:
            op["key"] = key
        self.run(self.with_must_exist(op, must_exist))

    @rule(selection=selections, payload=st.one_of(payloads, k_payloads), must_exist=st.booleans())
    def overwrite_payload(self, selection, payload, must_exist):
        self.run(self.with_must_exist({"type": "overwrite_payload", "payload": payload, **selection}, must_exist))

    @rule(selection=selections, keys=st.lists(st.sampled_from(["k", "x", "y", "absent"]), min_size=1, max_size=2))
    def delete_payload(self, selection, keys):
        self.run({"type": "delete_payload", "keys": keys, **selection})

    @rule(selection=selections)
    def clear_payload(self, selection):
        self.run({"type": "clear_payload", **selection})

    @rule(points=st.lists(st.fixed_dictionaries({"id": ids, "vectors": vector_dicts.filter(bool)}), min_size=1, max_size=3),
          update_filter=st.one_of(st.none(), filters), must_exist=st.booleans())
    def update_vectors(self, points, update_filter, must_exist):
        op = {"type": "update_vectors", "points": points}
        if update_filter:
            op["update_filter"] = update_filter
        if must_exist and self.existing([p["id"] for p in points]):
            op[IDS_MUST_EXIST] = True
        self.run(op)

    @rule(selection=selections, names=st.lists(st.sampled_from(VECTOR_NAMES), min_size=1, max_size=2, unique=True))
    def delete_vectors(self, selection, names):
        self.run({"type": "delete_vectors", "vectors": names, **selection})

    def with_must_exist(self, op: dict, must_exist: bool) -> dict:
        # Only where every id exists: a refusal is checked on its own (test below), and an
        # operation refused live but not on replay is not this module's concern.
        if must_exist and "ids" in op and self.existing(op["ids"]):
            op[IDS_MUST_EXIST] = True
        return op

    # -- replays (WAL recovery re-applies logged operations with their op_nums) --

    @precondition(lambda self: self.history)
    @rule(data=st.data())
    def replay_one_older(self, data):
        """Any logged operation but an upsert, replayed alone after later ones: changes
        nothing (an upsert alone may re-create a point a later delete removed; recovery
        replays in order, which `replay_suffix` checks)."""
        candidates = [(n, op) for n, op in self.history if op["type"] != "upsert"]
        if not candidates:
            return
        op_num, op = data.draw(st.sampled_from(candidates))
        before = self.snapshot()
        try:
            changed = apply_operation(self.segments, SCHEMA, op_num, op)
        except REFUSED:
            changed = 0
        assert changed == 0, (op_num, op)
        assert self.snapshot() == before

    @precondition(lambda self: self.history)
    @rule(data=st.data())
    def replay_suffix(self, data):
        self.replay_from(data.draw(st.integers(0, len(self.history) - 1)))

    def replay_from(self, start: int) -> None:
        before = self.snapshot()
        for op_num, op in self.history[start:]:
            try:
                apply_operation(self.segments, SCHEMA, op_num, op)
            except REFUSED:
                pass
        assert self.snapshot() == before

    def snapshot(self) -> list:
        """Per segment: (id, version, payload, plain vectors) of every held point."""
        return [
            [(r.id, r.version, r.payload, plain_vectors(r.vectors)) for r in segment.retrieve(ALL_IDS, True, True)]
            for segment in self.segments
        ]

    # -- invariants --

    @invariant()
    def reads_match_the_model(self):
        records = ReadEngine(SimpleNamespace(segments=self.segments)).retrieve(list(ALL_IDS), True, True)
        expected = [self.model.points[id_sort_key(i)] for i in ALL_IDS if id_sort_key(i) in self.model.points]
        assert [(r.id, r.version, plain_vectors(r.vectors), r.payload) for r in records] == [tuple(p) for p in expected]

    @invariant()
    def every_point_is_held_once(self):
        assert sum(segment.point_count for segment in self.segments) == len(self.model.points)

    @invariant()
    def the_indexed_segment_only_loses_points(self):
        if not self.moves_out:
            return
        held = self.indexed.retrieve(ALL_IDS, True, True)
        for record in held:
            initial = self.initial_in_indexed[id_sort_key(record.id)]
            assert (record.version, record.payload, plain_vectors(record.vectors)) == (initial[1], initial[3], initial[2])
        assert self.indexed.slot_counts()[0] == self.built_slots  # no tail: nothing written in place


COW_SETTINGS = settings(
    max_examples=40,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@pytest.mark.parametrize("with_middle", [False, True], ids=["+writable", "+appendable+writable"])
@pytest.mark.parametrize("kind", NON_APPENDABLE_KINDS)
def test_changes_move_points_out_of_non_appendable_segments(kind, with_middle, tmp_path):
    run_state_machine_as_test(lambda: CowMachine(tmp_path, kind, with_middle), settings=COW_SETTINGS)


# -- single cases --


@pytest.fixture(params=["immutable"])
def two_segments(tmp_path, request):
    """[an immutable segment holding INDEXED_IDS at version 1, the empty writable one]."""
    indexed = non_appendable(request.param, tmp_path / "indexed", initial_records(INDEXED_IDS))
    writable = AppendableSegment.create(tmp_path / "writable", SCHEMA)
    writable.advance_version(INITIAL_VERSION)
    yield [indexed, writable]
    indexed.drop()
    writable.drop()


def test_an_error_between_the_new_copy_and_the_deletion_leaves_the_point_once_with_the_new_value(two_segments):
    indexed, writable = two_segments
    op = {"type": "set_payload", "payload": {"x": "new"}, "ids": [1]}

    def failing_delete(op_num, ids):
        raise OSError("injected: the disk went away")

    indexed.delete_points = failing_delete  # the instance's, for this test only
    with pytest.raises(OSError):
        apply_operation(two_segments, SCHEMA, 5, op)
    assert indexed.point_version(1) == INITIAL_VERSION and writable.point_version(1) == 5  # two copies
    reads = ReadEngine(SimpleNamespace(segments=two_segments))
    [record] = reads.retrieve([1], True, True)
    assert (record.version, record.payload) == (5, {"k": 1, "x": "new"})
    page, _ = reads.scroll(None, 10)
    assert [r.id for r in page].count(1) == 1

    del indexed.delete_points  # the disk is back: replaying the operation finishes the move
    assert apply_operation(two_segments, SCHEMA, 5, op) == 0
    assert not indexed.has_point(1) and writable.point_version(1) == 5
    assert writable.retrieve([1])[0].payload == {"k": 1, "x": "new"}


def test_a_later_operation_heals_a_copy_left_behind(two_segments):
    indexed, writable = two_segments
    original_delete = indexed.delete_points
    indexed.delete_points = lambda op_num, ids: 0  # the deletion is lost (a crash before its flush)
    apply_operation(two_segments, SCHEMA, 5, {"type": "delete_vectors", "vectors": ["b"], "ids": [0, 1]})
    indexed.delete_points = original_delete
    assert indexed.has_point(1) and writable.point_version(1) == 5
    apply_operation(two_segments, SCHEMA, 6, {"type": "clear_payload", "filter": {"must": [{"key": "x", "match": {"value": "p1"}}]}})
    # the operation touching point 1 removed its stale copy; point 0's waits for its turn
    assert not indexed.has_point(1) and indexed.point_version(0) == INITIAL_VERSION
    assert writable.point_version(1) == 6 and writable.retrieve([1])[0].payload == {}
    assert writable.vector_names_of(1) == ["", "s"]


def test_moves_are_batched_per_source_segment(two_segments):
    indexed, writable = two_segments
    calls = {"export": 0, "upsert": 0, "delete": 0}

    def counting(name, method):
        def wrapped(*args, **kwargs):
            calls[name] += 1
            return method(*args, **kwargs)

        return wrapped

    indexed.export_points = counting("export", indexed.export_points)
    indexed.delete_points = counting("delete", indexed.delete_points)
    writable.upsert_points = counting("upsert", writable.upsert_points)
    changed = apply_operation(two_segments, SCHEMA, 5, {"type": "set_payload", "payload": {"y": 1}, "filter": {"must_not": [{"key": "k", "match": {"value": 9}}]}})
    assert changed == len(INDEXED_IDS) and indexed.point_count == 0
    assert calls == {"export": 1, "upsert": 1, "delete": 1}

    # the points now live in the appendable segment: changed in place, nothing moves
    calls.update(export=0, upsert=0, delete=0)
    assert apply_operation(two_segments, SCHEMA, 6, {"type": "delete_payload", "keys": ["y"], "ids": INDEXED_IDS}) == len(INDEXED_IDS)
    assert calls == {"export": 0, "upsert": 0, "delete": 0}
    assert all(writable.point_version(i) == 6 for i in INDEXED_IDS) and writable.slot_counts() == (len(INDEXED_IDS), 0)


def test_moves_in_batches_of_move_batch(two_segments, monkeypatch):
    indexed, writable = two_segments
    monkeypatch.setattr(apply_module, "MOVE_BATCH", 4)
    exported = []
    original = indexed.export_points
    indexed.export_points = lambda ids: exported.append(list(ids)) or original(ids)
    changed = apply_operation(two_segments, SCHEMA, 5, {"type": "update_vectors", "points": [{"id": i, "vectors": {"b": [9.0, 9.0]}} for i in INDEXED_IDS]})
    assert changed == len(INDEXED_IDS) and [len(batch) for batch in exported] == [4, 2]
    records = writable.retrieve(INDEXED_IDS, False, True)
    assert [r.version for r in records] == [5] * len(INDEXED_IDS)
    assert all(dense_plain(r.vectors["b"]) == (9.0, 9.0) for r in records)
    # a vector the point lacked is added, the others kept
    assert plain_vectors(records[2].vectors) == {"": (2.0, 1.0), "b": (9.0, 9.0)}


def test_ids_must_exist_refuses_before_moving_anything(two_segments):
    indexed, writable = two_segments
    op = {"type": "set_payload", "payload": {"x": 1}, "ids": [0, 99], IDS_MUST_EXIST: True}
    with pytest.raises(NotFound):
        apply_operation(two_segments, SCHEMA, 5, op)
    assert indexed.point_version(0) == INITIAL_VERSION and writable.point_count == 0


def test_a_replayed_older_change_does_not_resurrect_a_deleted_point(two_segments):
    indexed, writable = two_segments
    set_op = {"type": "set_payload", "payload": {"x": "moved"}, "ids": [3]}
    apply_operation(two_segments, SCHEMA, 5, set_op)
    apply_operation(two_segments, SCHEMA, 6, {"type": "delete_points", "ids": [3]})
    for op_num, op in [(5, set_op), (5, {"type": "update_vectors", "points": [{"id": 3, "vectors": {"": [1.0, 1.0]}}]})]:
        assert apply_operation(two_segments, SCHEMA, op_num, op) == 0
    assert not indexed.has_point(3) and not writable.has_point(3)


def test_update_filter_leaves_non_matching_points_in_the_immutable_segment(two_segments):
    indexed, writable = two_segments
    op = {
        "type": "update_vectors",
        "points": [{"id": 0, "vectors": {"": [5.0, 5.0]}}, {"id": 1, "vectors": {"": [5.0, 5.0]}}],
        "update_filter": {"must": [{"key": "k", "match": {"value": 1}}]},
    }
    assert apply_operation(two_segments, SCHEMA, 5, op) == 1
    assert indexed.point_version(0) == INITIAL_VERSION and not indexed.has_point(1)
    assert writable.point_version(1) == 5 and not writable.has_point(0)


def test_a_single_segment_changes_in_place(tmp_path):
    writable = AppendableSegment.create(tmp_path / "only", SCHEMA)
    try:
        writable.upsert_points(1, [PointInput(1, {"": np.ones(2, np.float32)}, {"a": 1})])
        writable.export_points = None  # the fast path never exports
        assert apply_operation([writable], SCHEMA, 2, {"type": "set_payload", "payload": {"b": 2}, "ids": [1]}) == 1
        assert writable.retrieve([1])[0].payload == {"a": 1, "b": 2} and writable.slot_counts() == (1, 0)
    finally:
        del writable.export_points
        writable.drop()


def test_the_writable_segment_must_be_appendable(two_segments):
    indexed, writable = two_segments
    with pytest.raises(ServiceError, match="not appendable"):
        apply_operation([writable, indexed], SCHEMA, 5, {"type": "set_payload", "payload": {"b": 2}, "ids": [1]})
    assert indexed.point_version(1) == INITIAL_VERSION


@pytest.mark.parametrize("kind", NON_APPENDABLE_KINDS)
def test_a_replay_older_than_the_immutable_copy_moves_nothing(kind, tmp_path):
    """The optimizer built the segment after op 10 (its points carry their versions): a
    replay of op 8 must neither move them nor leave an older copy in the writable segment."""
    indexed = non_appendable(kind, tmp_path / "indexed", [Record(1, 10, {"x": "built"}, engine_vectors(initial_vectors(1)))])
    writable = AppendableSegment.create(tmp_path / "writable", SCHEMA)
    segments = [indexed, writable]
    try:
        for op in [
            {"type": "set_payload", "payload": {"x": "old"}, "ids": [1]},
            {"type": "clear_payload", "filter": {"must": [{"key": "x", "match": {"value": "built"}}]}},
            {"type": "update_vectors", "points": [{"id": 1, "vectors": {"b": [3.0, 3.0]}}]},
            {"type": "delete_vectors", "vectors": [""], "ids": [1]},
        ]:
            assert apply_operation(segments, SCHEMA, 8, op) == 0
        assert indexed.point_version(1) == 10 and writable.point_count == 0
    finally:
        indexed.drop()
        writable.drop()


def test_flush_order_puts_appendable_segments_first(two_segments, tmp_path):
    """A moved point's copy (in an appendable segment) is made durable before its deletion
    (in the segment it left) can be: `Collection` flushes in `flush_order`."""
    indexed, writable = two_segments
    middle = AppendableSegment.create(tmp_path / "middle", SCHEMA)
    try:
        assert flush_order([indexed, middle, writable]) == [middle, writable, indexed]
        assert flush_order([writable]) == [writable]
    finally:
        middle.drop()


def test_indexed_segments_change_points_in_place(tmp_path):
    """An indexed segment is RocksDB-backed: moving out of it could lose a point to a power
    cut (apply.changes_in_place), so payload and vector changes stay in it."""
    indexed = non_appendable("indexed", tmp_path / "indexed", initial_records(INDEXED_IDS))
    writable = AppendableSegment.create(tmp_path / "writable", SCHEMA)
    segments = [indexed, writable]
    try:
        assert apply_operation(segments, SCHEMA, 5, {"type": "set_payload", "payload": {"x": "new"}, "ids": [1]}) == 1
        assert apply_operation(segments, SCHEMA, 6, {"type": "delete_vectors", "vectors": ["b"], "ids": [0]}) == 1
        assert indexed.point_version(1) == 5 and indexed.point_version(0) == 6 and writable.point_count == 0
        assert indexed.retrieve([1])[0].payload == {"k": 1, "x": "new"} and indexed.vector_names_of(0) == ["", "s"]
    finally:
        indexed.drop()
        writable.drop()
