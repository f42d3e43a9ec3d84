import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

from pydrant.errors import BadInput, ServiceError
from pydrant.segments.appendable import AppendableSegment
from pydrant.segments.base import Segment
from pydrant.segments.types import (
    DenseVectorSpec,
    PointInput,
    SparseVector,
    SparseVectorSpec,
    VectorSchema,
)

ODD_NAME = "名前 / with.dots and spaces"
SCHEMA = VectorSchema(
    dense={
        "": DenseVectorSpec(4, "Dot"),
        "half": DenseVectorSpec(3, "Cosine", datatype="float16"),
        "byte": DenseVectorSpec(3, "Euclid", datatype="uint8"),
        "multi": DenseVectorSpec(2, "Dot", multivector=True),
        ODD_NAME: DenseVectorSpec(2, "Manhattan"),
    },
    sparse={"sparse": SparseVectorSpec()},
)
UUID_A = "00000000-0000-0000-0000-00000000000a"
UUID_B = "ffffffff-0000-0000-0000-000000000000"


def dense(*values, dtype=np.float32):
    return np.array(values, dtype=dtype)


def full_vectors(seed: float) -> dict:
    return {
        "": dense(seed, 0.1, -2.5, 1e-7),
        "half": dense(seed, 0.5, -1.0, dtype=np.float16),
        "byte": dense(0, 7, 255, dtype=np.uint8),
        "multi": np.array([[seed, 1.0], [2.0, 3.0], [4.0, 5.0]], dtype=np.float32),
        ODD_NAME: dense(seed, seed),
        "sparse": SparseVector(np.array([1, 5, 4_000_000_000], dtype=np.uint32), dense(0.5, -1.0, seed)),
    }


def assert_vectors_equal(actual: dict, expected: dict):
    assert actual.keys() == expected.keys()
    for name, value in expected.items():
        if isinstance(value, SparseVector):
            assert actual[name] == value
        else:
            assert actual[name].dtype == value.dtype and np.array_equal(actual[name], value), name


@pytest.fixture
def segment(tmp_path):
    seg = AppendableSegment.create(tmp_path / "seg", SCHEMA)
    yield seg
    seg.close()


def reopen(seg: AppendableSegment) -> AppendableSegment:
    seg.close()
    return AppendableSegment.open(seg.path, SCHEMA)


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


def test_satisfies_the_segment_protocol(segment):
    assert isinstance(segment, Segment)


# -- upsert --


def test_every_vector_kind_round_trips_exactly(segment):
    vectors = full_vectors(3.25)
    assert segment.upsert_points(1, [PointInput(7, vectors, {"a": [1, {"b": None}], "f": 0.1})]) == 1
    (record,) = segment.retrieve([7], with_payload=True, with_vectors=True)
    assert (record.id, record.version) == (7, 1)
    assert record.payload == {"a": [1, {"b": None}], "f": 0.1}
    assert_vectors_equal(record.vectors, vectors)


def test_retrieve_returns_copies(segment):
    segment.upsert_points(1, [PointInput(1, full_vectors(1.0))])
    (record,) = segment.retrieve([1], with_vectors=True)
    record.vectors[""][:] = 99
    record.vectors["sparse"].values[:] = 99
    (again,) = segment.retrieve([1], with_vectors=True)
    assert_vectors_equal(again.vectors, full_vectors(1.0))


def test_upsert_replaces_the_whole_point(segment):
    segment.upsert_points(1, [PointInput(1, full_vectors(1.0), {"a": 1})])
    assert segment.upsert_points(2, [PointInput(1, {"byte": dense(1, 2, 3, dtype=np.uint8)})]) == 1
    (record,) = segment.retrieve([1], with_vectors=True)
    assert record.payload == {} and record.version == 2
    assert_vectors_equal(record.vectors, {"byte": dense(1, 2, 3, dtype=np.uint8)})
    assert segment.point_count == 1


def test_partial_named_vectors(segment):
    segment.upsert_points(1, [PointInput(1, {"half": dense(1, 2, 3, dtype=np.float16)}), PointInput(2, {})])
    assert segment.vector_names_of(1) == ["half"]
    assert segment.vector_names_of(2) == []
    assert segment.vector_names_of(3) == []
    assert segment.retrieve([2], with_vectors=True)[0].vectors == {}
    assert segment.retrieve([1], with_vectors=["half", "", "unknown"])[0].vectors.keys() == {"half"}


def test_vectors_given_as_lists_are_stored_in_the_spec_datatype(segment):
    # Vectors read back from the CBOR WAL arrive as plain lists.
    segment.upsert_points(
        1,
        [PointInput(1, {"": [1, 2, 3, 4], "byte": [1, 2, 3], "multi": [[1, 2]], "sparse": {"indices": [3], "values": [0.5]}})],
    )
    vectors = segment.retrieve([1], with_vectors=True)[0].vectors
    assert vectors[""].dtype == np.float32 and vectors["byte"].dtype == np.uint8
    assert vectors["multi"].shape == (1, 2)
    assert vectors["sparse"] == SparseVector(np.array([3], dtype=np.uint32), dense(0.5))


def test_duplicate_ids_in_one_upsert_last_wins(segment):
    assert segment.upsert_points(1, [PointInput(1, {}, {"n": 1}), PointInput(1, {}, {"n": 2})]) == 1
    assert segment.retrieve([1])[0].payload == {"n": 2}


def test_uuid_spellings_are_one_point(segment):
    segment.upsert_points(1, [PointInput(UUID_B.upper(), {}, {"n": 1})])
    segment.upsert_points(2, [PointInput(UUID_B.replace("-", ""), {}, {"n": 2})])
    assert segment.point_count == 1
    (record,) = segment.retrieve(["{" + UUID_B + "}"])
    assert record.id == UUID_B and record.payload == {"n": 2}


def test_unknown_vector_name_writes_nothing(segment):
    with pytest.raises(BadInput, match="Not existing vector name"):
        segment.upsert_points(1, [PointInput(1, {}), PointInput(2, {"nope": dense(1)})])
    assert segment.point_count == 0 and segment.version == 0


def test_wrong_shape_writes_nothing(segment):
    with pytest.raises(BadInput):
        segment.upsert_points(1, [PointInput(1, {"": dense(1, 2)})])
    assert segment.point_count == 0


# -- versions --


def test_replaying_an_operation_is_a_no_op(segment):
    points = [PointInput(1, full_vectors(1.0), {"a": 1}), PointInput(2, {}, None)]
    assert segment.upsert_points(5, points) == 2
    assert segment.upsert_points(5, points) == 0
    assert segment.update_payload(6, [1], lambda p: {**p, "n": p.get("n", 0) + 1}) == 1
    assert segment.update_payload(6, [1], lambda p: {**p, "n": p.get("n", 0) + 1}) == 0
    assert segment.retrieve([1])[0].payload == {"a": 1, "n": 1}
    assert segment.delete_points(7, [2]) == 1
    assert segment.delete_points(7, [2]) == 0
    assert segment.delete_vectors(8, [1], ["half"]) == 1
    assert segment.delete_vectors(8, [1], ["half"]) == 0
    assert segment.update_vectors(9, [(1, {"half": dense(9, 9, 9, dtype=np.float16)})]) == 1
    assert segment.update_vectors(9, [(1, {"half": dense(0, 0, 0, dtype=np.float16)})]) == 0


def test_an_older_operation_never_overwrites(segment):
    segment.upsert_points(5, [PointInput(1, {"": dense(5, 5, 5, 5)}, {"v": 5})])
    assert segment.upsert_points(3, [PointInput(1, {"": dense(3, 3, 3, 3)}, {"v": 3})]) == 0
    assert segment.update_payload(4, [1], lambda p: {"v": 4}) == 0
    assert segment.update_vectors(4, [(1, {"": dense(4, 4, 4, 4)})]) == 0
    assert segment.delete_vectors(4, [1], [""]) == 0
    assert segment.delete_points(4, [1]) == 0
    (record,) = segment.retrieve([1], with_vectors=True)
    assert record.version == 5 and record.payload == {"v": 5}
    assert np.array_equal(record.vectors[""], dense(5, 5, 5, 5))
    assert segment.point_version(1) == 5 and segment.point_version(2) is None


def test_version_counts_operations_that_change_nothing(segment):
    assert segment.delete_points(4, [123]) == 0
    assert segment.version == 4
    segment.upsert_points(2, [PointInput(1, {})])  # replay of an older op: version stays
    assert segment.version == 4 and segment.point_version(1) == 2


# -- delete, payload, vectors --


def test_delete_points(segment):
    segment.upsert_points(1, [PointInput(i, full_vectors(i)) for i in range(5)])
    assert segment.delete_points(2, [1, 3, 3, 99]) == 2
    assert segment.read_ids() == [0, 2, 4]
    assert not segment.has_point(1) and segment.has_point(2)
    assert segment.retrieve([1, 2, 3]) and [r.id for r in segment.retrieve([1, 2, 3])] == [2]
    # a deleted point can come back
    assert segment.upsert_points(3, [PointInput(3, {}, {"back": True})]) == 1
    assert segment.read_ids() == [0, 2, 3, 4]


def test_update_payload_applies_the_transform(segment):
    segment.upsert_points(1, [PointInput(1, {}, {"a": 1}), PointInput(2, {}, None)])
    assert segment.update_payload(2, [1, 2, 3], lambda p: {**p, "b": 2}) == 2
    assert [r.payload for r in segment.retrieve([1, 2])] == [{"a": 1, "b": 2}, {"b": 2}]
    assert segment.update_payload(3, [1], lambda p: {}) == 1
    assert segment.retrieve([1])[0].payload == {}


def test_a_failing_transform_writes_nothing(segment):
    segment.upsert_points(1, [PointInput(1, {}, {"a": 1}), PointInput(2, {}, {"a": 2})])

    def transform(payload):
        if payload["a"] == 2:
            raise ValueError("boom")
        return {"a": 100}

    with pytest.raises(ValueError):
        segment.update_payload(2, [1, 2], transform)
    assert [r.payload for r in segment.retrieve([1, 2])] == [{"a": 1}, {"a": 2}]
    assert segment.point_version(1) == 1


def test_update_vectors_replaces_only_the_given_names(segment):
    segment.upsert_points(1, [PointInput(1, full_vectors(1.0), {"keep": "me"})])
    new_sparse = SparseVector(np.array([2], dtype=np.uint32), dense(7.0))
    assert segment.update_vectors(2, [(1, {"": dense(9, 9, 9, 9), "sparse": new_sparse}), (404, {"": dense(1, 1, 1, 1)})]) == 1
    (record,) = segment.retrieve([1], with_vectors=True)
    assert_vectors_equal(record.vectors, {**full_vectors(1.0), "": dense(9, 9, 9, 9), "sparse": new_sparse})
    assert record.payload == {"keep": "me"} and record.version == 2
    assert not segment.has_point(404)


def test_delete_vectors(segment):
    segment.upsert_points(1, [PointInput(1, full_vectors(1.0)), PointInput(2, {"": dense(1, 2, 3, 4)})])
    assert segment.delete_vectors(2, [1, 2], ["multi", "sparse"]) == 2
    assert segment.vector_names_of(1) == ["", "half", "byte", ODD_NAME]
    assert segment.point_version(2) == 2
    with pytest.raises(BadInput):
        segment.delete_vectors(3, [1], ["nope"])


# -- reads --


def test_read_ids_pages_in_qdrant_order(segment):
    ids = [UUID_B, 10, UUID_A, 2**64 - 1, 0, 3]
    segment.upsert_points(1, [PointInput(i, {}, {"even": isinstance(i, int) and i % 2 == 0}) for i in ids])
    ordered = [0, 3, 10, 2**64 - 1, UUID_A, UUID_B]
    assert segment.read_ids() == ordered
    assert list(segment.iter_ids()) == ordered
    assert segment.read_ids(offset=10, limit=2) == [10, 2**64 - 1]
    assert segment.read_ids(offset=4, limit=2) == [10, 2**64 - 1]  # offset need not exist
    assert segment.read_ids(offset=UUID_A.upper()) == [UUID_A, UUID_B]
    assert segment.read_ids(limit=0) == []
    assert segment.read_ids(predicate=PayloadEquals("even", True)) == [0, 10]
    assert segment.read_ids(offset=1, limit=1, predicate=PayloadEquals("even", True)) == [10]


def test_read_ids_stays_sorted_across_writes(segment):
    segment.upsert_points(1, [PointInput(i, {}) for i in range(0, 100, 2)])
    assert segment.read_ids(limit=3) == [0, 2, 4]
    segment.upsert_points(2, [PointInput(i, {}) for i in range(1, 100, 2)])
    segment.delete_points(3, [0, 1, 2])
    segment.upsert_points(4, [PointInput(2, {})])
    assert segment.read_ids() == [2, *range(3, 100)]


def test_count_with_predicates(segment):
    segment.upsert_points(1, [PointInput(1, {"": dense(1, 1, 1, 1)}, {"k": "x"}), PointInput(2, {}, {"k": "y"})])
    assert segment.count() == 2
    assert segment.count(PayloadEquals("k", "x")) == 1
    assert segment.count(HasVector("")) == 1
    assert segment.count(HasVector("unknown")) == 0


def test_retrieve_order_missing_and_selection(segment):
    segment.upsert_points(1, [PointInput(i, {"": dense(i, 0, 0, 0)}, {"i": i, "j": 0}) for i in range(3)])
    records = segment.retrieve([2, 9, 0, 2], with_payload=False, with_vectors=False)
    assert [(r.id, r.payload, r.vectors) for r in records] == [(2, None, None), (0, None, None)]
    (record,) = segment.retrieve([1], with_payload=lambda p: {"i": p["i"]})
    assert record.payload == {"i": 1}


def test_dense_vectors_snapshot_is_never_changed_by_later_writes(segment):
    segment.upsert_points(1, [PointInput(i, {"": dense(i, i, i, i)}) for i in range(10)])
    matrix, mask = segment.dense_vectors("")
    before = matrix.copy(), mask.copy()
    slots = segment.offset_ids()
    # replace a point, delete one, and grow past the initial capacity
    segment.upsert_points(2, [PointInput(3, {"": dense(-1, -1, -1, -1)})])
    segment.delete_points(3, [4])
    segment.upsert_points(4, [PointInput(i, {"": dense(i, i, i, i)}) for i in range(10, 500)])
    assert np.array_equal(matrix, before[0]) and np.array_equal(mask, before[1])
    assert slots == list(range(10))

    matrix, mask = segment.dense_vectors("")
    ids = segment.offset_ids()
    live = {ids[i]: matrix[i] for i in np.flatnonzero(mask)}
    assert len(live) == 499 and 4 not in live
    assert np.array_equal(live[3], dense(-1, -1, -1, -1)) and np.array_equal(live[499], dense(499, 499, 499, 499))
    with pytest.raises(ValueError):
        segment.dense_vectors("multi")


def test_info_counts(segment):
    segment.upsert_points(1, [PointInput(1, full_vectors(1.0)), PointInput(2, {"": dense(1, 2, 3, 4)})])
    segment.upsert_points(2, [PointInput(2, {"half": dense(1, 2, 3, dtype=np.float16)})])
    info = segment.info()
    assert info["num_points"] == 2
    assert info["num_vectors_by_name"] == {"": 1, "half": 2, "byte": 1, "multi": 1, ODD_NAME: 1, "sparse": 1}
    assert info["slots_used"] == 3 and info["slots_dead"] == 1
    assert info["disk_usage_bytes"] > 0 and info["ram_usage_bytes"] > 0


# -- lifecycle and durability --


def test_reopen_after_close_restores_everything(segment):
    segment.upsert_points(1, [PointInput(i, full_vectors(n), {"i": n}) for n, i in enumerate([1, 2, UUID_A])])
    segment.upsert_points(2, [PointInput(i, {"": dense(i, 0, 0, 0)}) for i in range(3, 200)])
    segment.delete_points(3, [2, 5])
    segment.update_vectors(4, [(1, {"half": dense(4, 4, 4, dtype=np.float16)})])
    segment.delete_vectors(5, [UUID_A], ["sparse"])
    segment.update_payload(6, [3], lambda p: {"three": 3})
    assert segment.flush() == 6
    before = segment.retrieve(segment.read_ids(), with_payload=True, with_vectors=True)
    slots_before = segment.info()["slots_used"]

    segment = reopen(segment)
    assert segment.version == 6 and segment.persisted_version == 6
    after = segment.retrieve(segment.read_ids(), with_payload=True, with_vectors=True)
    assert [(r.id, r.version, r.payload) for r in after] == [(r.id, r.version, r.payload) for r in before]
    for a, b in zip(after, before):
        assert_vectors_equal(a.vectors, b.vectors)
    # slots keep counting from where they were: new writes never land on old slots
    segment.upsert_points(7, [PointInput(1000, {})])
    assert segment.info()["slots_used"] == slots_before + 1
    segment.close()


def test_reopen_without_flush_keeps_writes_but_not_persisted_version(segment):
    segment.upsert_points(1, [PointInput(1, {}, {"a": 1})])
    segment = reopen(segment)
    assert segment.retrieve([1])[0].payload == {"a": 1}
    assert segment.version == 1 and segment.persisted_version == 0
    segment.close()


def test_flush_returns_the_persisted_version(segment):
    assert segment.flush() == 0
    segment.upsert_points(3, [PointInput(1, {})])
    assert segment.persisted_version == 0
    assert segment.flush() == 3 and segment.persisted_version == 3
    assert segment.flush() == 3


CRASHING_WRITER = textwrap.dedent(
    """
    import os, sys
    import numpy as np
    from pydrant.segments.appendable import AppendableSegment
    from pydrant.segments.types import DenseVectorSpec, PointInput, VectorSchema

    schema = VectorSchema(dense={"": DenseVectorSpec(4, "Dot")})
    segment = AppendableSegment.create(sys.argv[1], schema)
    for op in range(1, 6):
        segment.upsert_points(op, [PointInput(op * 100 + i, {"": np.full(4, op, np.float32)}, {"op": op}) for i in range(50)])
    segment.flush()
    for op in range(6, 9):
        segment.upsert_points(op, [PointInput(op * 100 + i, {"": np.full(4, op, np.float32)}, {"op": op}) for i in range(50)])
    segment.delete_points(9, [100, 101])
    os._exit(0)  # no flush, no close: the process dies with RocksDB open
    """
)


def test_a_process_crash_keeps_flushed_data(tmp_path):
    path = tmp_path / "seg"
    subprocess.run([sys.executable, "-c", CRASHING_WRITER, str(path)], check=True, timeout=60)
    schema = VectorSchema(dense={"": DenseVectorSpec(4, "Dot")})
    segment = AppendableSegment.open(path, schema)
    try:
        assert segment.persisted_version == 5
        ids = set(segment.read_ids())
        assert {op * 100 + i for op in range(2, 6) for i in range(50)} <= ids
        # Unflushed operations may or may not be there, but each one wholly or not at all.
        for op in range(6, 9):
            present = {op * 100 + i for i in range(50)} & ids
            assert len(present) in (0, 50)
        for record in segment.retrieve(sorted(ids), with_vectors=True):
            op = record.payload["op"]
            assert record.version == op and np.array_equal(record.vectors[""], np.full(4, op, np.float32))
        assert segment.version >= 5
    finally:
        segment.close()


def test_close_is_idempotent_and_releases_the_database(segment):
    segment.upsert_points(1, [PointInput(1, {})])
    segment.close()
    segment.close()
    with pytest.raises(ServiceError, match="closed"):
        segment.upsert_points(2, [PointInput(2, {})])
    with pytest.raises(ServiceError, match="closed"):
        segment.retrieve([1])
    again = AppendableSegment.open(segment.path, SCHEMA)  # the RocksDB lock was released
    assert again.has_point(1)
    again.close()


def test_drop_removes_the_directory(tmp_path):
    segment = AppendableSegment.create(tmp_path / "seg", SCHEMA)
    segment.upsert_points(1, [PointInput(1, {})])
    segment.drop()
    assert not (tmp_path / "seg").exists()


def test_create_and_open_check_the_directory(tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file").write_text("x")
    with pytest.raises(FileExistsError):
        AppendableSegment.create(tmp_path / "busy", SCHEMA)
    with pytest.raises(FileNotFoundError):
        AppendableSegment.open(tmp_path / "missing", SCHEMA)


def test_reads_from_other_threads_see_whole_writes(segment):
    """Point i always has vector [i]*4 and payload {"i": i}; readers check every snapshot."""
    errors = []
    done = threading.Event()

    def writer():
        for op in range(1, 60):
            ids = range(op * 10, op * 10 + 40)  # overlapping: replaces as well as inserts
            segment.upsert_points(op, [PointInput(i, {"": np.full(4, i, np.float32)}, {"i": i}) for i in ids])
            segment.delete_points(op, [op * 10 - 5])
        done.set()

    def reader():
        try:
            while not done.is_set():
                matrix, mask = segment.dense_vectors("")
                ids = segment.offset_ids()
                for slot in np.flatnonzero(mask):
                    assert np.all(matrix[slot] == ids[slot])
                page = segment.read_ids(limit=50)
                assert page == sorted(page)
                for record in segment.retrieve(page, with_vectors=True):
                    assert record.payload == {"i": record.id}
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer), *(threading.Thread(target=reader) for _ in range(3))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert segment.point_count == len(segment.read_ids())


def test_reopen_with_a_new_vector_name_adds_it(segment):
    segment.upsert_points(1, [PointInput(1, {"": dense(1, 2, 3, 4)})])
    segment.close()
    wider = VectorSchema(dense={**SCHEMA.dense, "extra": DenseVectorSpec(2, "Dot")}, sparse=SCHEMA.sparse)
    segment = AppendableSegment.open(segment.path, wider)
    segment.upsert_points(2, [PointInput(2, {"extra": dense(5, 6)})])
    segment.close()
    segment = AppendableSegment.open(segment.path, wider)
    assert segment.vector_names_of(1) == [""] and segment.vector_names_of(2) == ["extra"]
    segment.close()
