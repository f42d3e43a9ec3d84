"""Opening an appendable segment: chunked loading, its memory, and damaged stores.

`AppendableSegment.open` reads each column family a chunk at a time (step P0 of
docs/design/on-disk-segments.md). These tests pin what that must keep: the reopened
segment equals the one closed whatever the chunk boundaries (ints and UUIDs in one chunk,
dead slots, every vector kind), the open's peak memory stays near what the segment keeps,
and a damaged store fails the open loudly and lets go of RocksDB.
"""

import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pydrant.errors import ServiceError
from pydrant.segments import appendable
from pydrant.segments.appendable import (
    CF_IDS,
    CF_META,
    META_NEXT_OFFSET,
    AppendableSegment,
    _RocksStore,
    vector_cf_name,
)
from pydrant.segments.ids import encode_id
from pydrant.segments.types import (
    DenseVectorSpec,
    PointInput,
    SparseVector,
    SparseVectorSpec,
    VectorSchema,
)

SCHEMA = VectorSchema(
    dense={
        "": DenseVectorSpec(4, "Dot"),
        "half": DenseVectorSpec(3, "Cosine", datatype="float16"),
        "multi": DenseVectorSpec(2, "Dot", multivector=True),
    },
    sparse={"sparse": SparseVectorSpec()},
)
UUIDS = [str(uuid.UUID(int=(n * 0x9E3779B97F4A7C15) % (1 << 128))) for n in range(1, 9)]


def vectors_for(n: int, names=("", "half", "multi", "sparse")) -> dict:
    every = {
        "": np.array([n, -n, 0.5, 1e-7], dtype=np.float32),
        "half": np.array([n, 1, -1], dtype=np.float16),
        "multi": np.arange(2 * (1 + n % 3), dtype=np.float32).reshape(-1, 2) + n,
        "sparse": SparseVector(np.array([n, n + 7], dtype=np.uint32), np.array([0.25, -n], dtype=np.float32)),
    }
    return {name: every[name] for name in names}


def canonical_vectors(vectors: dict) -> dict:
    """Vectors as comparable values (dtype, shape and bytes, not just equal numbers)."""
    out = {}
    for name, value in vectors.items():
        if isinstance(value, SparseVector):
            out[name] = ("sparse", value.indices.tobytes(), value.values.tobytes())
        else:
            out[name] = (str(value.dtype), value.shape, value.tobytes())
    return out


def read_state(segment: AppendableSegment) -> dict:
    """Everything a reader can see, in the segment's own order."""
    ids = segment.read_ids()
    records = segment.retrieve(ids, with_payload=True, with_vectors=True)
    matrix, present = segment.dense_vectors("")
    return {
        "versions": (segment.version, segment.persisted_version, segment.point_count),
        "ids": ids,
        "iter_ids": list(segment.iter_ids()),
        "records": [(r.id, r.version, r.payload, canonical_vectors(r.vectors)) for r in records],
        "dense_rows": matrix[present].tobytes(),
        "count_by_vector": segment.info()["num_vectors_by_name"],
        "slots_used": segment.slot_counts()[0],
    }


def slot_state(segment: AppendableSegment) -> dict:
    """The slot layout, which only two reopened segments share (a segment that never closed
    still remembers which id lived in a slot now dead)."""
    matrix, present = segment.dense_vectors("")
    return {
        "offset_ids": segment.offset_ids(),
        "slot_counts": segment.slot_counts(),
        "present": np.flatnonzero(present).tolist(),
        "rows": matrix[present].tobytes(),
    }


def reopen_with_chunks(path: Path, id_items: int, list_items: int, dense_rows: int) -> AppendableSegment:
    """Open with tiny chunks: `dense_rows` rows of the 4-float vector per chunk."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(appendable, "_ID_CHUNK_ITEMS", id_items)
        patch.setattr(appendable, "_LIST_CHUNK_ITEMS", list_items)
        patch.setattr(appendable, "_LOAD_CHUNK_BYTES", dense_rows * 16)
        return AppendableSegment.open(path, SCHEMA)


# -- the reopened segment is the segment that was closed --

ID_CHOICES = st.one_of(st.integers(0, 40), st.sampled_from(UUIDS))
NAME_SETS = st.sampled_from([("", "half", "multi", "sparse"), ("",), ("half", "sparse"), ("multi",), ()])
OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("upsert"), st.lists(st.tuples(ID_CHOICES, NAME_SETS), min_size=1, max_size=12)),
        st.tuples(st.just("delete"), st.lists(ID_CHOICES, min_size=1, max_size=6)),
        st.tuples(st.just("update_vectors"), st.lists(ID_CHOICES, min_size=1, max_size=4)),
        st.tuples(st.just("delete_vectors"), st.lists(ID_CHOICES, min_size=1, max_size=4)),
        st.tuples(st.just("payload"), st.lists(ID_CHOICES, min_size=1, max_size=4)),
    ),
    min_size=1,
    max_size=10,
)


def apply(segment: AppendableSegment, op_num: int, operation) -> None:
    kind, args = operation
    if kind == "upsert":
        segment.upsert_points(op_num, [PointInput(i, vectors_for(op_num, names), {"op": op_num}) for i, names in args])
    elif kind == "delete":
        segment.delete_points(op_num, args)
    elif kind == "update_vectors":
        segment.update_vectors(op_num, [(i, vectors_for(op_num + 100, ("", "sparse"))) for i in args])
    elif kind == "delete_vectors":
        segment.delete_vectors(op_num, args, ["half", "multi"])
    else:
        segment.update_payload(op_num, args, lambda payload: {**payload, "changed": op_num})


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    operations=OPERATIONS,
    flush=st.booleans(),
    id_items=st.integers(1, 5),
    list_items=st.integers(1, 5),
    dense_rows=st.integers(0, 5),  # 0: under one row, still a chunk of one
)
def test_reopen_gives_the_closed_segment_whatever_the_chunks(tmp_path_factory, operations, flush, id_items, list_items, dense_rows):
    path = tmp_path_factory.mktemp("seg") / "seg"
    segment = AppendableSegment.create(path, SCHEMA)
    for op_num, operation in enumerate(operations, start=1):
        apply(segment, op_num, operation)
    if flush:
        segment.flush()
    expected = read_state(segment)
    segment.close()

    chunked = reopen_with_chunks(path, id_items, list_items, dense_rows)
    try:
        assert read_state(chunked) == expected
        chunked_slots = slot_state(chunked)
    finally:
        chunked.close()
    whole = AppendableSegment.open(path, SCHEMA)  # default chunks: one chunk at this size
    try:
        assert read_state(whole) == expected
        assert slot_state(whole) == chunked_slots
        # New writes go to fresh slots after a chunked open as after any other.
        whole.upsert_points(10_000, [PointInput(999, vectors_for(1))])
        assert whole.slot_counts()[0] == expected["slots_used"] + 1
    finally:
        whole.close()


def test_int_and_uuid_ids_in_one_chunk_keep_qdrant_order(tmp_path):
    path = tmp_path / "seg"
    segment = AppendableSegment.create(path, SCHEMA)
    ids = [*range(7), *UUIDS]
    segment.upsert_points(1, [PointInput(i, vectors_for(n)) for n, i in enumerate(reversed(ids))])
    expected = read_state(segment)
    segment.close()
    # 5 ids per chunk: the second chunk holds ints 5, 6 and the first three UUIDs.
    reopened = reopen_with_chunks(path, id_items=5, list_items=2, dense_rows=3)
    try:
        assert read_state(reopened) == expected
        assert reopened.read_ids()[:7] == list(range(7))
        assert reopened.read_ids()[7:] == sorted(UUIDS, key=lambda u: uuid.UUID(u).int)
        assert [reopened.point_version(i) for i in ids] == [1] * len(ids)
    finally:
        reopened.close()


def test_a_stored_vector_of_a_slot_no_id_holds_is_not_loaded(tmp_path):
    path = tmp_path / "seg"
    segment = AppendableSegment.create(path, SCHEMA)
    segment.upsert_points(1, [PointInput(i, vectors_for(i, ("",))) for i in range(4)])
    segment.delete_points(2, [1])
    segment.close()
    # Slot 1 (dead) and slot 9 (past the used slots) get a vector behind the segment's
    # back; neither may come back as a point's vector.
    store = _RocksStore(path, [vector_cf_name("")])
    batch = store.new_batch()
    for slot in (1, 9):
        store.put(batch, vector_cf_name(""), slot.to_bytes(4, "big"), np.full(4, 7, np.float32).tobytes())
    store.write(batch, sync=True)
    store.close()

    reopened = reopen_with_chunks(path, id_items=2, list_items=2, dense_rows=2)
    try:
        matrix, present = reopened.dense_vectors("")
        assert np.flatnonzero(present).tolist() == [0, 2, 3]
        assert reopened.read_ids() == [0, 2, 3]
        assert reopened.retrieve([1]) == []
        assert not (matrix == 7).all(axis=1).any()
    finally:
        reopened.close()


# -- the store's chunked scan --


def test_iter_chunks_reads_every_entry_in_key_order_in_bounded_chunks(tmp_path):
    store = _RocksStore(tmp_path / "db", ["cf", "empty"])
    try:
        batch = store.new_batch()
        entries = {n.to_bytes(4, "big"): bytes([n % 251]) * (n % 17) for n in range(1000, 0, -7)}
        for key, value in entries.items():
            store.put(batch, "cf", key, value)
        store.write(batch)
        chunks = list(store.iter_chunks("cf", 64))
        assert [len(keys) for keys, _ in chunks] == [64] * (len(entries) // 64) + [len(entries) % 64]
        assert [pair for keys, values in chunks for pair in zip(keys, values)] == sorted(entries.items())
        assert list(store.iter_chunks("empty", 64)) == []
        assert store.items("cf") == sorted(entries.items())
    finally:
        store.close()


def test_an_abandoned_scan_closed_lets_go_of_the_database(tmp_path):
    store = _RocksStore(tmp_path / "db", ["cf"])
    batch = store.new_batch()
    for n in range(100):
        store.put(batch, "cf", n.to_bytes(4, "big"), b"v")
    store.write(batch)
    chunks = store.iter_chunks("cf", 10)
    keys, _ = next(chunks)
    assert len(keys) == 10
    chunks.close()
    del keys
    store.close()
    again = _RocksStore(tmp_path / "db", ["cf"])  # the LOCK was released
    try:
        assert len(again.items("cf")) == 100
    finally:
        again.close()


# -- damaged stores --


def _segment_with_points(path: Path, count: int) -> None:
    segment = AppendableSegment.create(path, SCHEMA)
    segment.upsert_points(1, [PointInput(i, vectors_for(i, ("",)), {"i": i}) for i in range(count)])
    segment.flush()
    segment.close()


def _put_raw(path: Path, cf: str, key: bytes, value: bytes) -> None:
    store = _RocksStore(path, [cf])
    try:
        batch = store.new_batch()
        store.put(batch, cf, key, value)
        store.write(batch, sync=True)
    finally:
        store.close()


@pytest.mark.parametrize(
    ("cf", "key", "value", "message"),
    [
        (CF_IDS, encode_id(3), b"\x00" * 11, "cannot be loaded: stored id entries must be 12 bytes"),
        (CF_IDS, b"\x00\x01", (1).to_bytes(4, "little") + (1).to_bytes(8, "little"), "stored point id keys must be 9 bytes"),
        (CF_IDS, b"\x02" + b"\x00" * 16, (1).to_bytes(4, "little") + (1).to_bytes(8, "little"), "not an encoded point id"),
        (CF_IDS, encode_id(77), (500).to_bytes(4, "little") + (1).to_bytes(8, "little"), "slot 500, past the segment's 5"),
        (vector_cf_name(""), b"\x00\x00\x02", b"\x00" * 16, "stored vector keys must be 4 bytes"),
        (vector_cf_name(""), (2).to_bytes(4, "big"), b"\x00" * 15, "do not have 4 values of float32"),
    ],
)
def test_a_malformed_entry_fails_the_open_and_releases_the_store(tmp_path, cf, key, value, message):
    path = tmp_path / "seg"
    _segment_with_points(path, 5)
    _put_raw(path, cf, key, value)
    with pytest.raises(ServiceError, match=message):
        AppendableSegment.open(path, SCHEMA)
    # The failed open let go of RocksDB: opening again fails the same way, not on its LOCK,
    # and the store still holds every point (nothing was rewritten).
    with pytest.raises(ServiceError, match=message):
        AppendableSegment.open(path, SCHEMA)
    store = _RocksStore(path, [CF_IDS], read_only=True)
    try:
        assert len(store.items(CF_IDS)) == 5 + (cf == CF_IDS and key != encode_id(3))
        assert int.from_bytes(dict(store.items(CF_META))[META_NEXT_OFFSET], "little") == 5
    finally:
        store.close()


def test_a_block_failing_its_checksum_fails_the_open(tmp_path):
    """rocksdict's items() ends a scan at a corrupt block without a word; the open must
    not come back with the points (or vectors) after it missing."""
    path = tmp_path / "seg"
    segment = AppendableSegment.create(path, VectorSchema(dense={"": DenseVectorSpec(64, "Dot")}))
    segment.upsert_points(1, [PointInput(i, {"": np.full(64, i, np.float32)}) for i in range(3000)])
    segment.flush()
    segment.close()
    largest = max(path.glob("*.sst"), key=lambda p: p.stat().st_size)  # the vectors' table
    with open(largest, "r+b") as file:
        file.seek(largest.stat().st_size // 3)
        file.write(b"\xff" * 64)
    for _ in range(2):  # and the failed open released the store
        with pytest.raises(Exception, match="Corruption"):
            AppendableSegment.open(path, VectorSchema(dense={"": DenseVectorSpec(64, "Dot")}))


# -- memory of an open --

OPEN_AND_MEASURE = textwrap.dedent(
    """
    import json, sys
    from pydrant.segments.appendable import AppendableSegment
    from pydrant.segments.types import DenseVectorSpec, VectorSchema

    def status(key):
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024

    schema = VectorSchema(dense={"": DenseVectorSpec(384, "Cosine")})
    before = status("VmRSS")
    segment = AppendableSegment.open(sys.argv[1], schema)
    matrix, present = segment.dense_vectors("")
    print(json.dumps({
        "peak": status("VmHWM") - before,
        "steady": status("VmRSS") - before,
        "points": segment.point_count,
        "checksum": float(matrix[present].astype("float64").sum()),
    }))
    """
)


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads VmHWM from /proc")
def test_opening_20k_vectors_of_384_peaks_under_twice_their_size(tmp_path):
    """Materialising every stored vector, then joining them, peaked at 4.3x the vectors'
    size here (5.3 GB for 1M); chunked, the peak is the matrix plus about one chunk."""
    path = tmp_path / "seg"
    count, dim = 20_000, 384
    vectors = np.random.default_rng(5).standard_normal((count, dim), dtype=np.float32)
    segment = AppendableSegment.create(path, VectorSchema(dense={"": DenseVectorSpec(dim, "Cosine")}))
    for start in range(0, count, 2000):
        segment.upsert_points(1, [PointInput(i, {"": vectors[i]}) for i in range(start, start + 2000)])
    segment.flush()
    segment.close()

    done = subprocess.run(
        [sys.executable, "-c", OPEN_AND_MEASURE, str(path)], check=True, capture_output=True, text=True, timeout=120
    )
    measured = json.loads(done.stdout)
    vector_bytes = vectors.nbytes
    assert measured["points"] == count
    assert measured["checksum"] == pytest.approx(float(vectors.astype(np.float64).sum()))
    assert measured["peak"] < 2.0 * vector_bytes, measured
    assert measured["steady"] < 1.5 * vector_bytes, measured
