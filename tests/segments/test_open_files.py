"""Open files stay bounded however many times a segment is flushed (docs/segments.md, RocksDB).

Every flush interval with writes turns each column family's memtable into a new SST file.
Without compaction of those small files and a cap on the files RocksDB keeps open, a
segment's SST files (and the process's file descriptors) grow with every flush until the
segment can no longer open ("Too many open files"). These soak tests flush hundreds of
times, calling `flush()` directly instead of waiting for the flush interval.
"""

import os
import subprocess
import sys
import textwrap

import numpy as np

from pydrant.segments.appendable import AppendableSegment
from pydrant.segments.types import DenseVectorSpec, PointInput, SparseVector, SparseVectorSpec, VectorSchema

SCHEMA = VectorSchema(
    dense={"": DenseVectorSpec(4, "Dot"), "img": DenseVectorSpec(2, "Cosine")},
    sparse={"sparse": SparseVectorSpec()},
)  # six column families: ids, payload, meta and one per vector

ROUNDS = 400  # flush intervals with writes
PER_ROUND = 5

# Bounds for one segment. Before the fix 400 flushes left 2,001 SST files, every one of
# them open (2,013 descriptors). With universal compaction a column family holds a few
# sorted runs (about 20 files for these six), and RocksDB keeps at most `max_open_files`
# (64) files open per database, WAL, MANIFEST and info LOG included.
MAX_SST_FILES = 60
MAX_EXTRA_FDS = 64


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def sst_files(path) -> int:
    return sum(1 for name in os.listdir(path) if name.endswith(".sst"))


def point(point_id: int) -> PointInput:
    value = float(point_id)
    vectors = {
        "": np.array([value, 1.0, -1.0, 0.5], dtype=np.float32),
        "img": np.array([1.0, value], dtype=np.float32),
        "sparse": SparseVector(np.array([point_id % 7, 100], dtype=np.uint32), np.array([value, 2.0], dtype=np.float32)),
    }
    return PointInput(point_id, vectors, {"n": point_id, "tag": f"t{point_id % 3}"})


def soak(segment: AppendableSegment, rounds: int, first_op: int = 1):
    """Inserts of new points with a flush after each; yields after every round.

    Only new ids, so every column family gets keys above all it holds: each flush's SST
    file overlaps no other, the case where RocksDB's level compaction just moves files
    down a level instead of merging them (overwrites would force real merges).
    """
    for r in range(rounds):
        op = first_op + r
        segment.upsert_points(op, [point(r * PER_ROUND + i) for i in range(PER_ROUND)])
        assert segment.flush() == op
        yield r


def check_all_points(segment: AppendableSegment, count: int) -> None:
    assert segment.point_count == count
    records = segment.retrieve(range(count), with_payload=True, with_vectors=True)
    assert len(records) == count
    for record in records:
        expected = point(record.id)
        assert record.payload == expected.payload
        assert np.array_equal(record.vectors[""], expected.vectors[""])
        assert np.array_equal(record.vectors["img"], expected.vectors["img"])
        assert record.vectors["sparse"] == expected.vectors["sparse"]


def test_open_files_and_sst_files_stay_bounded_over_hundreds_of_flushes(tmp_path):
    path = tmp_path / "seg"
    baseline = open_fds()
    segment = AppendableSegment.create(path, SCHEMA)
    peak_fds = peak_ssts = 0
    try:
        for r in soak(segment, ROUNDS):
            if r % 20 == 19:
                peak_fds = max(peak_fds, open_fds() - baseline)
                peak_ssts = max(peak_ssts, sst_files(path))
        assert peak_ssts <= MAX_SST_FILES, f"{peak_ssts} SST files after {ROUNDS} flushes"
        assert peak_fds <= MAX_EXTRA_FDS, f"{peak_fds} files open for one segment after {ROUNDS} flushes"
    finally:
        segment.close()
    assert open_fds() <= baseline + 1  # closing releases every file

    segment = AppendableSegment.open(path, SCHEMA)
    try:
        assert open_fds() - baseline <= MAX_EXTRA_FDS
        check_all_points(segment, ROUNDS * PER_ROUND)
        assert segment.persisted_version == ROUNDS
    finally:
        segment.close()


def test_segment_flushes_and_reopens_under_a_low_open_files_limit(tmp_path):
    """With a soft RLIMIT_NOFILE of 256, hundreds of flushes, a reopen and more writes work.

    Before the fix flush 48 failed: about five new SST files a flush, every one kept open.
    """
    script = textwrap.dedent(
        f"""
        import resource, sys
        sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r})
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
        from test_open_files import SCHEMA, PER_ROUND, check_all_points, soak
        from pydrant.segments.appendable import AppendableSegment

        path = {str(tmp_path / "seg")!r}
        segment = AppendableSegment.create(path, SCHEMA)
        for _ in soak(segment, 200):
            pass
        segment.close()
        segment = AppendableSegment.open(path, SCHEMA)
        check_all_points(segment, 200 * PER_ROUND)
        for _ in soak(segment, 20, first_op=201):  # same ids, newer versions
            pass
        segment.close()
        segment = AppendableSegment.open(path, SCHEMA)
        check_all_points(segment, 200 * PER_ROUND)
        assert segment.persisted_version == 220
        segment.close()
        print("ok")
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "ok"


def test_store_left_fragmented_by_level_compaction_is_compacted_when_opened(tmp_path):
    """A database written before universal compaction, one tiny file per flush, is repaired."""
    from rocksdict import Options, Rdict

    from pydrant.segments.appendable import _MAX_FILES_PER_CF, _RocksStore

    path = tmp_path / "db"
    options = Options(raw_mode=True)  # RocksDB's defaults: level compaction, all files open
    options.create_if_missing(True)
    options.create_missing_column_families(True)
    db = Rdict(str(path), options, column_families={"payload": Options(raw_mode=True)})
    table = db.get_column_family("payload")
    for n in range(100):  # ascending keys: every flush's file is moved down, never merged
        table[n.to_bytes(4, "big")] = b"x" * n
        table.flush(True)
    table.close()
    db.close()
    assert sst_files(path) >= 100

    store = _RocksStore(path, ["payload"])
    try:
        assert store.sst_file_count("payload") <= _MAX_FILES_PER_CF
        assert sst_files(path) <= _MAX_FILES_PER_CF + 1
        assert store.items("payload") == [(n.to_bytes(4, "big"), b"x" * n) for n in range(100)]
    finally:
        store.close()
