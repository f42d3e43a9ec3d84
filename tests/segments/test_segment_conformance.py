"""One suite for every segment kind, against the protocols of `segments/base.py`:

- every kind is an instance of `Segment` and of each protocol it is made of (runtime
  `isinstance`, which checks the members exist; mypy checks the signatures where a kind is
  used as a `Segment`, e.g. `open.open_segment`), and has each protocol method with the
  protocol's parameters;
- a random sequence of writes, replays and reopens, checked after every step against a
  plain-dict model of the `Segment` contract.

To cover a new kind, add a `SegmentKind` to `SEGMENT_KINDS`.
"""

from __future__ import annotations

import copy
import inspect
import tempfile
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from pydrant.segments.appendable import AppendableSegment
from pydrant.segments.base import (
    OptimizerSource,
    OptimizerTarget,
    Segment,
    SegmentLifecycle,
    SegmentReader,
    SegmentWriter,
    writable_index,
    writable_segment,
)
from pydrant.segments.indexed import IndexedSegment
from pydrant.segments.open import open_segment
from pydrant.segments.ids import id_sort_key
from pydrant.segments.types import DenseVectorSpec, PointInput, Record, SparseVector, SparseVectorSpec, VectorSchema

SCHEMA = VectorSchema(
    dense={
        "": DenseVectorSpec(2, "Dot"),
        "half": DenseVectorSpec(2, "Cosine", datatype="float16"),
        "multi": DenseVectorSpec(2, "Dot", multivector=True),
    },
    sparse={"sparse": SparseVectorSpec()},
)
VECTOR_NAMES = SCHEMA.names()
IDS = [0, 1, 7, 2**64 - 1, str(uuid.UUID(int=5)), str(uuid.UUID(int=2**127)), str(uuid.UUID(int=2**128 - 1))]
ABSENT_IDS = [3, str(uuid.UUID(int=6))]  # never written: reads must not invent them


# -- segment kinds --


class SegmentKind:
    """How the suite makes and reopens one kind of segment."""

    # Whether `flush(bound)` keeps deletions of ops above `bound` for a later flush (a
    # non-appendable kind whose deletions live apart from its data); the kinds here
    # persist everything and ignore the bound (segments/base.py, SegmentLifecycle.flush).
    honours_flush_bound = False

    def create(self, path: Path, schema: VectorSchema): ...

    def initial_points(self) -> list[ModelPoint]:
        """The points a new segment of this kind holds (the model starts with them)."""
        return []

    def reopen(self, segment, schema: VectorSchema): ...


class AppendableKind(SegmentKind):
    def create(self, path, schema):
        return AppendableSegment.create(path, schema)

    def reopen(self, segment, schema):
        segment.close()
        return AppendableSegment.open(segment.path, schema)


class IndexedKind(SegmentKind):
    """An indexed segment built empty: every point the suite writes lives past its indexed
    slots (the exactly-scanned tail), and reopening goes through `segment.json`."""

    def create(self, path, schema):
        segment = IndexedSegment.create(path, schema)
        segment.build_indexes({"dense": {name: {"hnsw": {"m": 4, "ef_construct": 8}} for name in schema.dense}, "sparse": {}})
        return segment

    def reopen(self, segment, schema):
        segment.close()
        reopened = open_segment(segment.path, schema)
        assert isinstance(reopened, IndexedSegment) and not reopened.is_appendable
        return reopened


class BuiltIndexedKind(SegmentKind):
    """An indexed segment built over points (graphs for the dense vectors, an inverted
    index for the sparse one): the suite's writes then change indexed slots as well as
    the tail. The built points come in with version 0, so every write may change them."""

    def create(self, path, schema):
        segment = IndexedSegment.create(path, schema)
        segment.copy_points([Record(p.id, p.version, p.payload, p.vectors) for p in self.initial_points()])
        segment.build_indexes({
            "dense": {name: {"hnsw": {"m": 4, "ef_construct": 8}} for name in schema.dense},
            "sparse": {name: {"index": {}} for name in schema.sparse},
        })
        return segment

    def initial_points(self) -> list[ModelPoint]:
        points = []
        for i, point_id in enumerate(IDS):
            vectors = {
                "": np.array([i, 1], np.float32),
                "half": np.array([1, i], np.float16),
                "multi": np.array([[i, 0], [0, i]], np.float32),
                "sparse": SparseVector(np.array([i], np.uint32), np.array([0.5], np.float32)),
            }
            if i % 3 == 2:
                del vectors["half"], vectors["sparse"]
            points.append(ModelPoint(point_id, 0, vectors, {"k": i % 3}))
        return points

    def reopen(self, segment, schema):
        segment.close()
        reopened = open_segment(segment.path, schema)
        assert isinstance(reopened, IndexedSegment) and not reopened.is_appendable
        return reopened


SEGMENT_KINDS = [
    pytest.param(AppendableKind(), id="appendable"),
    pytest.param(IndexedKind(), id="indexed"),
    pytest.param(BuiltIndexedKind(), id="indexed-built"),
]
PROTOCOLS = [Segment, SegmentReader, SegmentWriter, OptimizerSource, OptimizerTarget, SegmentLifecycle]


# -- the protocols --


def _protocol_members(protocol) -> dict[str, object]:
    """name -> the protocol's own function or property, for `protocol` and its bases."""
    members: dict[str, object] = {}
    for cls in reversed(protocol.__mro__):
        if cls is object or not getattr(cls, "_is_protocol", False):
            continue
        for name, member in vars(cls).items():
            if not name.startswith("_") and (inspect.isfunction(member) or isinstance(member, property)):
                members[name] = member
    return members


@pytest.mark.parametrize("kind", SEGMENT_KINDS)
def test_every_kind_implements_the_segment_protocols(kind, tmp_path):
    segment = kind.create(tmp_path / "segment", SCHEMA)
    try:
        for protocol in PROTOCOLS:
            assert isinstance(segment, protocol), protocol.__name__
        segment = kind.reopen(segment, SCHEMA)
        assert isinstance(segment, Segment)
        for name, member in _protocol_members(Segment).items():
            implemented = getattr(type(segment), name, None)
            assert implemented is not None, f"{type(segment).__name__} lacks Segment.{name}"
            if isinstance(member, property):
                assert isinstance(implemented, property), name
            else:
                wanted = list(inspect.signature(member).parameters)
                assert list(inspect.signature(implemented).parameters) == wanted, name
    finally:
        segment.drop()


def test_the_segment_protocol_has_what_callers_use():
    members = set(_protocol_members(Segment))
    used = {  # by collection/, optimizer/ and http/ (through the collection)
        "search", "facet", "read_ordered", "estimate_cardinality", "sparse_statistics", "retrieve",
        "read_ids", "count", "has_point", "point_version", "point_versions", "vector_names_of", "iter_ids",
        "upsert_points", "delete_points", "update_payload", "update_vectors", "delete_vectors",
        "advance_version", "set_payload_indexes", "export_points", "import_points", "discard_points",
        "start_tracking", "take_tracked", "slot_counts", "vector_bytes", "payload_index_info",
        "is_appendable", "build_settings", "point_count", "version", "persisted_version", "path",
        "flush", "close", "drop", "reopen_store", "info",
    }
    assert used <= members, used - members
    assert not isinstance(object(), Segment)


def test_the_writable_segment_is_the_last():
    segments = ["indexed", "plain", "appendable"]
    assert writable_index(segments) == 2 and writable_segment(segments) == "appendable"
    assert writable_segment(["only"]) == "only"
    with pytest.raises(IndexError):
        writable_segment([])


def test_locked_view_holds_the_store_lock(tmp_path):
    """A segment composed on the store reads its slots through `locked_view()`: writes wait
    until the view is left, and what it reads is one state between whole writes."""
    segment = AppendableSegment.create(tmp_path / "segment", SCHEMA)
    try:
        segment.upsert_points(1, [PointInput(1, {"": np.ones(2, np.float32)}, {"k": 1})])
        writer = threading.Thread(
            target=segment.upsert_points, args=(2, [PointInput(2, {"": np.ones(2, np.float32)}, None)])
        )
        with segment.locked_view() as view:
            writer.start()
            writer.join(0.2)
            assert writer.is_alive()  # blocked on the lock
            assert view.n == 1 and view.live[:1].tolist() == [True] and view.present("")[:1].tolist() == [True]
            assert view.matrix("")[0].tolist() == [1.0, 1.0]
            assert view.matching_mask(PayloadEquals("k", 1)).tolist() == [True]
            assert view.candidates("sparse", None).tolist() == [False]
            assert view.hits([(np.array([0]), np.array([0.5], np.float32))]) == [[(0.5, 1, 1)]]
            with pytest.raises(ValueError):
                view.values("")  # a dense single vector: `matrix`
        writer.join(5)
        assert not writer.is_alive() and segment.point_count == 2
    finally:
        segment.drop()


# -- the model --


@dataclass
class ModelPoint:
    id: object
    version: int
    vectors: dict
    payload: dict = field(default_factory=dict)


class Model:
    """The Segment contract with nothing but dicts: what every kind must agree with."""

    def __init__(self):
        self.points: dict[int, ModelPoint] = {}
        self.version = 0

    def _writable(self, point_id, op_num):
        point = self.points.get(id_sort_key(point_id))
        return point if point is not None and point.version < op_num else None

    def _finish(self, op_num, changed):
        self.version = max(self.version, op_num)
        return changed

    def upsert_points(self, op_num, points):
        changed = 0
        latest = {id_sort_key(p.id): p for p in points}
        for key, p in latest.items():
            current = self.points.get(key)
            if current is not None and current.version >= op_num:
                continue
            self.points[key] = ModelPoint(p.id, op_num, dict(p.vectors), copy.deepcopy(p.payload or {}))
            changed += 1
        return self._finish(op_num, changed)

    def delete_points(self, op_num, ids):
        changed = 0
        for point_id in dict.fromkeys(ids):
            if self._writable(point_id, op_num):
                del self.points[id_sort_key(point_id)]
                changed += 1
        return self._finish(op_num, changed)

    def update_payload(self, op_num, ids, transform):
        changed = 0
        for point_id in dict.fromkeys(ids):
            point = self._writable(point_id, op_num)
            if point:
                point.payload, point.version = transform(copy.deepcopy(point.payload)), op_num
                changed += 1
        return self._finish(op_num, changed)

    def update_vectors(self, op_num, points):
        merged = {}
        for point_id, vectors in points:
            merged.setdefault(point_id, {}).update(vectors)
        changed = 0
        for point_id, vectors in merged.items():
            point = self._writable(point_id, op_num)
            if point:
                point.vectors, point.version = {**point.vectors, **vectors}, op_num
                changed += 1
        return self._finish(op_num, changed)

    def delete_vectors(self, op_num, ids, names):
        changed = 0
        for point_id in dict.fromkeys(ids):
            point = self._writable(point_id, op_num)
            if point:
                point.vectors = {n: v for n, v in point.vectors.items() if n not in names}
                point.version = op_num
                changed += 1
        return self._finish(op_num, changed)

    def sorted_points(self) -> list[ModelPoint]:
        return [self.points[key] for key in sorted(self.points)]


# -- strategies --


def floats(width):
    return st.floats(width=width, allow_nan=False, allow_infinity=False)


def dense_values(width, dtype):
    return st.lists(floats(width), min_size=2, max_size=2).map(lambda v: np.array(v, dtype=dtype))


def sparse_values():
    indices = st.lists(st.integers(0, 2**32 - 1), unique=True, max_size=3).map(sorted)
    return indices.flatmap(
        lambda idx: st.lists(floats(32), min_size=len(idx), max_size=len(idx)).map(
            lambda vals: SparseVector(np.array(idx, dtype=np.uint32), np.array(vals, dtype=np.float32))
        )
    )


VECTOR_VALUES = {
    "": dense_values(32, np.float32),
    "half": dense_values(16, np.float16),
    "multi": st.lists(st.lists(floats(32), min_size=2, max_size=2), min_size=1, max_size=3).map(
        lambda rows: np.array(rows, dtype=np.float32)
    ),
    "sparse": sparse_values(),
}
vector_dicts = st.fixed_dictionaries({}, optional=VECTOR_VALUES)
nonempty_vector_dicts = vector_dicts.filter(bool)
point_ids = st.sampled_from(IDS)
id_lists = st.lists(st.sampled_from(IDS + ABSENT_IDS), max_size=4)
json_values = st.one_of(st.none(), st.booleans(), st.integers(0, 2), st.text(max_size=3), st.lists(st.integers(0, 2), max_size=2))
payloads = st.one_of(st.none(), st.dictionaries(st.sampled_from(["k", "x", "y"]), json_values, max_size=3))


def set_key(key, value):
    def transform(payload):
        payload[key] = value
        return payload

    return transform


def delete_key(key):
    def transform(payload):
        payload.pop(key, None)
        return payload

    return transform


transforms = st.one_of(
    st.builds(set_key, st.sampled_from(["k", "x"]), json_values),
    st.builds(delete_key, st.sampled_from(["k", "x"])),
    st.just(lambda payload: {}),
)


class PayloadEquals:
    def __init__(self, key, value):
        self.key, self.value = key, value

    def matches(self, ctx):
        return ctx.payload.get(self.key) == self.value


class HasVector:
    def __init__(self, name):
        self.name = name

    def matches(self, ctx):
        return ctx.has_vector(self.name)


PREDICATES = [PayloadEquals("k", 1), PayloadEquals("x", None), HasVector("sparse"), HasVector("")]


# -- the machine --


class SegmentMachine(RuleBasedStateMachine):
    def __init__(self, kind: SegmentKind, root: Path):
        super().__init__()
        self.kind = kind
        self.segment = kind.create(Path(tempfile.mkdtemp(dir=root)) / "segment", SCHEMA)
        self.model = Model()
        for point in kind.initial_points():
            self.model.points[id_sort_key(point.id)] = point
        self.op_num = 0
        self.history: list[tuple[int, str, tuple]] = []

    def apply(self, method: str, *args, op_num: int | None = None):
        if op_num is None:
            self.op_num += 1
            op_num = self.op_num
            self.history.append((op_num, method, args))
        changed = getattr(self.segment, method)(op_num, *args)
        expected = getattr(self.model, method)(op_num, *args)
        assert changed == expected, (method, op_num, changed, expected)

    @rule(points=st.lists(st.builds(PointInput, point_ids, vector_dicts, payloads), max_size=4))
    def upsert(self, points):
        self.apply("upsert_points", points)

    @rule(ids=id_lists)
    def delete(self, ids):
        self.apply("delete_points", ids)

    @rule(ids=id_lists, transform=transforms)
    def update_payload(self, ids, transform):
        self.apply("update_payload", ids, transform)

    @rule(points=st.lists(st.tuples(st.sampled_from(IDS + ABSENT_IDS), nonempty_vector_dicts), max_size=3))
    def update_vectors(self, points):
        self.apply("update_vectors", points)

    @rule(ids=id_lists, names=st.lists(st.sampled_from(VECTOR_NAMES), min_size=1, max_size=2))
    def delete_vectors(self, ids, names):
        self.apply("delete_vectors", ids, names)

    @precondition(lambda self: self.history)
    @rule(data=st.data())
    def replay_logged_operation(self, data):
        """Re-apply an operation already applied, with its own op_num, as WAL replay does."""
        op_num, method, args = data.draw(st.sampled_from(self.history[-5:]))
        self.apply(method, *args, op_num=op_num)

    @rule()
    def flush(self):
        assert self.segment.flush() == self.model.version
        assert self.segment.persisted_version == self.model.version

    @rule(below=st.integers(0, 3))
    def flush_with_bound(self, below):
        """`flush(bound)` with a bound at or below the last op applied, as the collection
        passes `applied_op_num` taken when its flush began."""
        bound = max(0, self.model.version - below)
        before = self.segment.persisted_version
        expected = max(before, bound) if self.kind.honours_flush_bound else self.model.version
        assert self.segment.flush(bound) == expected
        assert self.segment.persisted_version == expected
        assert self.segment.flush(bound=None) == self.model.version  # None: everything

    @rule(flush_first=st.booleans())
    def reopen(self, flush_first):
        if flush_first:
            self.segment.flush()
        persisted = self.segment.persisted_version
        self.segment = self.kind.reopen(self.segment, SCHEMA)
        assert self.segment.persisted_version == persisted

    def teardown(self):
        self.segment.drop()

    # -- invariants --

    @invariant()
    def versions_and_counts(self):
        assert self.segment.version == self.model.version
        assert self.segment.point_count == len(self.model.points)
        assert self.segment.count() == len(self.model.points)
        for predicate in PREDICATES:
            expected = sum(1 for p in self.model.points.values() if predicate.matches(_ModelContext(p)))
            assert self.segment.count(predicate) == expected

    @invariant()
    def retrieve_matches(self):
        records = self.segment.retrieve(IDS + ABSENT_IDS, with_payload=True, with_vectors=True)
        expected = [self.model.points[id_sort_key(i)] for i in IDS if id_sort_key(i) in self.model.points]
        assert [(r.id, r.version, r.payload) for r in records] == [(p.id, p.version, p.payload) for p in expected]
        for record, point in zip(records, expected):
            assert record.vectors.keys() == point.vectors.keys()
            for name, value in point.vectors.items():
                assert _same_vector(record.vectors[name], value), (record.id, name)
            assert self.segment.vector_names_of(record.id) == [n for n in VECTOR_NAMES if n in point.vectors]
            assert self.segment.point_version(record.id) == point.version
        asked = IDS + ABSENT_IDS + IDS[:2]  # repeats are answered again, in place
        expected_versions = [p.version if p else None for p in (self.model.points.get(id_sort_key(i)) for i in asked)]
        assert self.segment.point_versions(asked) == expected_versions
        assert self.segment.point_versions([]) == []
        for absent in ABSENT_IDS:
            assert not self.segment.has_point(absent) or id_sort_key(absent) in self.model.points

    @invariant()
    def read_ids_pages_in_order(self):
        expected = [p.id for p in self.model.sorted_points()]
        assert self.segment.read_ids() == expected
        assert list(self.segment.iter_ids()) == expected
        assert _scroll(self.segment, page_size=2) == expected
        matching = [p.id for p in self.model.sorted_points() if PREDICATES[0].matches(_ModelContext(p))]
        assert _scroll(self.segment, page_size=1, predicate=PREDICATES[0]) == matching

    @invariant()
    def dense_snapshot_matches(self):
        matrix, mask = self.segment.dense_vectors("")
        slot_ids = self.segment.offset_ids()
        live = {id_sort_key(slot_ids[i]): matrix[i] for i in np.flatnonzero(mask)}
        expected = {k: p.vectors[""] for k, p in self.model.points.items() if "" in p.vectors}
        assert live.keys() == expected.keys()
        assert all(np.array_equal(live[k], expected[k]) for k in expected)


class _ModelContext:
    """What a predicate sees of a model point (mirrors types.PointContext)."""

    def __init__(self, point: ModelPoint):
        self.id = point.id
        self.payload = point.payload
        self._names = point.vectors.keys()

    def has_vector(self, name):
        return name in self._names


def _same_vector(actual, expected) -> bool:
    if isinstance(expected, SparseVector):
        return actual == expected
    return actual.dtype == expected.dtype and np.array_equal(actual, expected)


def _scroll(segment, page_size: int, predicate=None) -> list:
    """Page through a segment the way the collection's scroll does (limit + 1, next offset)."""
    ids, offset = [], None
    while True:
        page = segment.read_ids(offset, page_size + 1, predicate)
        ids.extend(page[:page_size])
        if len(page) <= page_size:
            return ids
        offset = page[page_size]


CONFORMANCE_SETTINGS = settings(
    max_examples=60,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@pytest.mark.parametrize("kind", SEGMENT_KINDS)
def test_segment_behaves_like_the_model(kind, tmp_path):
    run_state_machine_as_test(lambda: SegmentMachine(kind, tmp_path), settings=CONFORMANCE_SETTINGS)
