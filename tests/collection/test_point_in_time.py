"""Point-in-time restore (collection/point_in_time.py, docs/point-in-time.md), in process.

A random history of upserts, deletes and payload updates is written to a small collection
the way its update worker does it (op_num, WAL append, apply), with small WAL files and
flushes that truncate; a snapshot is taken at a random op, some operations logged but not
yet applied (they travel in the snapshot's `wal.cbor`). Restoring the snapshot with the
retained WAL up to any op_num at or after the cut must equal a dict model of the history
up to that op (points, vectors, payloads), or be refused because the log has a gap; by a
commit time, the same as by the last op committed at or before it. Refusals: a gap, an
op or time beyond the end, and before the cut.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from pydrant.collection import apply as applying
from pydrant.collection import point_in_time as pit
from pydrant.collection import snapshots
from pydrant.collection.collection import WAL_DIR, Collection
from pydrant.collection.config import CollectionDefaults, build_config
from pydrant.errors import BadInput
from pydrant.wal import Wal
from pydrant.wal import log as wal_log
from pydrant.wal.scan import read_log

DIM = 3
IDS = st.integers(min_value=0, max_value=7)
SMALL_WAL = 1500  # bytes per WAL file: a handful of operations each
STEP_MS = 1000  # the fake clock moves this much per operation


def upsert(point_id: int, vector: list[int], payload: dict) -> dict:
    return {"type": "upsert", "points": [{"id": point_id, "vectors": {"": np.asarray(vector, np.float32)}, "payload": payload}]}


def set_payload(point_id: int, payload: dict) -> dict:
    # as `Collection.submit` logs it: the point must exist when applied, else it is refused
    return {"type": "set_payload", "ids": [point_id], "payload": payload, applying.IDS_MUST_EXIST: True}


OPERATIONS = st.one_of(
    st.builds(upsert, IDS, st.lists(st.integers(-5, 5), min_size=DIM, max_size=DIM),
              st.dictionaries(st.sampled_from("ab"), st.integers(0, 9), max_size=2)),
    st.builds(lambda i: {"type": "delete_points", "ids": [i]}, IDS),
    st.builds(set_payload, IDS, st.dictionaries(st.sampled_from("bc"), st.integers(0, 9), min_size=1, max_size=2)),
)


def model_at(history: list[dict], op_num: int) -> dict:
    """id -> (vector, payload) after operations 1..op_num (op n is history[n - 1])."""
    points: dict = {}
    for op in history[:op_num]:
        if op["type"] == "upsert":
            for p in op["points"]:
                points[p["id"]] = (tuple(p["vectors"][""].tolist()), dict(p["payload"]))
        elif op["type"] == "delete_points":
            for i in op["ids"]:
                points.pop(i, None)
        elif op["type"] == "set_payload":
            for i in op["ids"]:
                if i in points:
                    points[i] = (points[i][0], {**points[i][1], **op["payload"]})
    return points


def stored(path: Path) -> dict:
    collection = Collection.load(path)
    try:
        records, _ = collection.reads.scroll(None, 1000, None, True, True)
        return {r.id: (tuple(np.asarray(r.vectors[""]).tolist()), dict(r.payload or {})) for r in records}
    finally:
        collection._close_files()


class Clock:
    def __init__(self) -> None:
        self.now_ms = time.time_ns() // 1_000_000 - 10_000_000  # hours before the snapshot is taken

    def __call__(self) -> int:
        self.now_ms += STEP_MS
        return self.now_ms


class Live:
    """A collection written as its update worker writes (op_num, WAL append, apply), with
    small WAL files; no trio needed."""

    def __init__(self, root: Path, retain_closed: int):
        config = build_config({"vectors": {"size": DIM, "distance": "Dot"}}, CollectionDefaults())
        Collection.initialise(root / "live", "live", config)
        self.collection = Collection.load(root / "live")
        self.collection.wal.close()
        self.collection.wal = Wal(root / "live" / WAL_DIR, capacity_bytes=SMALL_WAL, retain_closed=retain_closed)
        self.times: dict[int, int] = {}

    @property
    def wal_dir(self) -> Path:
        return self.collection.wal.directory

    def log(self, operation: dict) -> int:
        op_num = self.collection.next_op_num
        self.collection.next_op_num += 1
        self.collection.wal.append(op_num, operation)
        return op_num

    def apply(self, op_num: int, operation: dict) -> None:
        with self.collection.apply_lock:
            try:
                self.collection._apply(op_num, operation)
            except applying.REFUSED:
                self.collection.applied_op_num = max(self.collection.applied_op_num, op_num)

    def snapshot(self, root: Path) -> Path:
        staging = root / f"staging-{time.monotonic_ns()}"
        snapshots.take(self.collection, staging)
        description = snapshots.archive(staging, root / "snapshots", "live")
        return root / "snapshots" / description["name"]

    def close(self) -> None:
        self.collection._close_files()


def write_history(root: Path, history: list[dict], cut: int, unapplied: int, retain_closed: int, flush_every: int):
    """Operations 1..len(history); the snapshot is taken when 1..cut are applied and
    cut+1..cut+unapplied only logged. Returns (live, snapshot file)."""
    live = Live(root, retain_closed)
    snapshot = live.snapshot(root) if cut + unapplied == 0 else None
    pending: list[tuple[int, dict]] = []
    for index, operation in enumerate(history, start=1):
        op_num = live.log(operation)
        assert op_num == index
        pending.append((op_num, operation))
        if index <= cut or index > cut + unapplied:
            for n, op in pending:
                live.apply(n, op)
            pending = []
        if index == cut + unapplied:
            snapshot = live.snapshot(root)
        if index % flush_every == 0:
            live.collection.flush()  # truncates below the applied ops, as the flusher does
    assert snapshot is not None
    for n, op in pending:
        live.apply(n, op)
    live.collection.flush()
    return live, snapshot


# No shrinking: every example builds, snapshots and restores a collection, and shrinking a
# failure took minutes; the draws of a failing example are printed as they are.
@settings(max_examples=30, deadline=None, phases=[Phase.generate])
@given(
    history=st.lists(OPERATIONS, min_size=1, max_size=40),
    data=st.data(),
    retain_closed=st.sampled_from([0, 1, 100]),
    flush_every=st.integers(1, 8),
)
def test_restore_to_an_op_num_equals_the_model_or_is_refused_for_a_gap(history, data, retain_closed, flush_every):
    cut = data.draw(st.integers(0, len(history)), label="cut")
    unapplied = data.draw(st.integers(0, min(3, len(history) - cut)), label="unapplied")
    until = data.draw(st.integers(cut, len(history)), label="until")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        live, snapshot = write_history(root, history, cut, unapplied, retain_closed, flush_every)
        try:
            first_retained = next((n for n, _ in read_log(live.wal_dir)), None)
            head = pit.read_head(snapshot)
            assert head.cut == cut
            assert [n for n, _ in head.records] == list(range(cut + 1, cut + unapplied + 1))
            covered = cut + unapplied  # what the snapshot alone holds
            gap = until > covered and first_retained is not None and first_retained > covered + 1
            target = root / "restored"
            if gap:
                with pytest.raises(pit.Refused, match="gap"):
                    pit.restore(snapshot, target, pit.Until(op_num=until), live.wal_dir)
                assert not target.exists()
                return
            summary = pit.restore(snapshot, target, pit.Until(op_num=until), live.wal_dir)
            assert (summary["snapshot_op_num"], summary["op_num"], summary["replayed"]) == (cut, until, until - cut)
            assert stored(target) == model_at(history, until)
            # the restored collection goes on after `until`, and its WAL is empty
            restored = Collection.load(target)
            try:
                assert restored.next_op_num == until + 1
                assert restored.wal.last_op_num is None
            finally:
                restored._close_files()
        finally:
            live.close()


@settings(max_examples=15, deadline=None, phases=[Phase.generate])
@given(history=st.lists(OPERATIONS, min_size=2, max_size=25), data=st.data())
def test_restore_to_a_time_is_the_restore_to_the_last_op_committed_by_then(history, data):
    cut = data.draw(st.integers(0, len(history) - 1), label="cut")
    until = data.draw(st.integers(max(cut, 1), len(history)), label="until")
    # any time from op `until`'s commit to just before the next one's (the last op: exactly
    # its own, since a later time is beyond what the log can tell)
    offset = data.draw(st.integers(0, STEP_MS - 1 if until < len(history) else 0), label="offset")
    clock = Clock()
    original = wal_log._now_ms
    wal_log._now_ms = clock
    try:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            live, snapshot = write_history(root, history, cut, 0, retain_closed=1000, flush_every=3)
            try:
                times = {r.op_num: r.timestamp for r in _records(live.wal_dir)}
                summary = pit.restore(snapshot, root / "restored", pit.Until(timestamp_ms=times[until] + offset), live.wal_dir)
                assert summary["op_num"] == until and summary["timestamp"] == times[until]
                assert stored(root / "restored") == model_at(history, until)
            finally:
                live.close()
    finally:
        wal_log._now_ms = original


def _records(directory: Path):
    from pydrant.wal.scan import iter_log_records

    return list(iter_log_records(directory, 0))


# -- refusals -----------------------------------------------------------------------------------


HISTORY = [upsert(i % 5, [i, 0, 1], {"a": i}) for i in range(1, 31)]


@pytest.fixture
def written(tmp_path, monkeypatch):
    """30 operations, a snapshot at op 10 (op 11 logged but not applied), the WAL kept whole."""
    clock = Clock()
    monkeypatch.setattr(wal_log, "_now_ms", clock)
    live, snapshot = write_history(tmp_path, HISTORY, 10, 1, retain_closed=1000, flush_every=4)
    yield live, snapshot, tmp_path
    live.close()


def test_restore_to_the_cut_itself_replays_nothing(written):
    live, snapshot, root = written
    summary = pit.restore(snapshot, root / "r", pit.Until(op_num=10), live.wal_dir)
    assert (summary["op_num"], summary["replayed"]) == (10, 0)
    assert stored(root / "r") == model_at(HISTORY, 10)


def test_the_snapshot_alone_reaches_its_own_records(written):
    live, snapshot, root = written
    summary = pit.restore(snapshot, root / "r", pit.Until(op_num=11))
    assert summary["op_num"] == 11
    assert stored(root / "r") == model_at(HISTORY, 11)
    with pytest.raises(pit.Refused, match=r"operation 12 is beyond the last operation in the log: 11 \(the snapshot"):
        pit.restore(snapshot, root / "r2", pit.Until(op_num=12))


def test_beyond_the_end_is_refused_and_writes_nothing(written):
    live, snapshot, root = written
    with pytest.raises(pit.Refused, match="operation 31 is beyond the last operation in the log: 30"):
        pit.restore(snapshot, root / "r", pit.Until(op_num=31), live.wal_dir)
    last = max(r.timestamp for r in _records(live.wal_dir))
    with pytest.raises(pit.Refused, match="beyond the last operation in the log: 30, committed at"):
        pit.restore(snapshot, root / "r", pit.Until(timestamp_ms=last + 1), live.wal_dir)
    assert not (root / "r").exists()


def test_before_the_cut_is_refused(written):
    live, snapshot, root = written
    with pytest.raises(pit.Refused, match="operation 9 is before the snapshot's cut"):
        pit.restore(snapshot, root / "r", pit.Until(op_num=9), live.wal_dir)
    cut_time = {r.op_num: r.timestamp for r in _records(live.wal_dir)}[10]
    with pytest.raises(pit.Refused, match=r"before the snapshot's cut: operation 10 \(the snapshot's cut\) was committed at"):
        pit.restore(snapshot, root / "r", pit.Until(timestamp_ms=cut_time - 1), live.wal_dir)
    assert not (root / "r").exists()
    summary = pit.restore(snapshot, root / "r", pit.Until(timestamp_ms=cut_time), live.wal_dir)
    assert summary["op_num"] == 10 and summary["timestamp"] == cut_time


def test_a_snapshot_of_the_last_operation_restores_to_its_time(tmp_path, monkeypatch):
    monkeypatch.setattr(wal_log, "_now_ms", Clock())
    live, snapshot = write_history(tmp_path, HISTORY[:12], 12, 0, retain_closed=1000, flush_every=4)
    try:
        last_time = _records(live.wal_dir)[-1].timestamp
        summary = pit.restore(snapshot, tmp_path / "r", pit.Until(timestamp_ms=last_time), live.wal_dir)
        assert (summary["op_num"], summary["replayed"]) == (12, 0)
        assert stored(tmp_path / "r") == model_at(HISTORY, 12)
    finally:
        live.close()


def test_a_gap_between_the_snapshot_and_the_wal_is_refused(tmp_path):
    live, snapshot = write_history(tmp_path, HISTORY, 10, 0, retain_closed=0, flush_every=1)
    try:
        first = next(n for n, _ in read_log(live.wal_dir))
        assert first > 11  # the files holding ops 11.. were truncated
        with pytest.raises(pit.Refused, match=rf"gap: the snapshot holds operations up to 10, .* is {first}: operations 11\.\.{first - 1} are gone"):
            pit.restore(snapshot, tmp_path / "r", pit.Until(op_num=first), live.wal_dir)
        with pytest.raises(pit.Refused, match="gap"):
            pit.restore(snapshot, tmp_path / "r", pit.Until(timestamp_ms=time.time_ns() // 1_000_000), live.wal_dir)
        assert not (tmp_path / "r").exists()
        # up to the cut the WAL is not needed, gap or not
        assert pit.restore(snapshot, tmp_path / "r", pit.Until(op_num=10), live.wal_dir)["op_num"] == 10
    finally:
        live.close()


def test_a_wal_of_another_history_is_refused(tmp_path, written):
    live, snapshot, root = written
    other, _ = write_history(tmp_path / "other", [upsert(1, [9, 9, 9], {})] * 30, 5, 0, retain_closed=1000, flush_every=4)
    try:
        with pytest.raises(pit.Refused, match="operation 11 in .* differs from the snapshot's"):
            pit.restore(snapshot, root / "r", pit.Until(op_num=20), other.wal_dir)
    finally:
        other.close()


def test_a_time_needs_the_wal(written):
    live, snapshot, root = written
    with pytest.raises(pit.Refused, match="needs the WAL"):
        pit.restore(snapshot, root / "r", pit.Until(timestamp_ms=time.time_ns() // 1_000_000))


def test_the_target_must_not_exist(written):
    live, snapshot, root = written
    (root / "r").mkdir()
    with pytest.raises(FileExistsError):
        pit.restore(snapshot, root / "r", pit.Until(op_num=12), live.wal_dir)


def test_progress_counts_replayed_operations(written):
    live, snapshot, root = written
    seen: list[tuple[int, int]] = []
    pit.restore(snapshot, root / "r", pit.Until(op_num=25), live.wal_dir, progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (15, 15) and [d for d, _ in seen] == list(range(1, 16))


def test_a_snapshot_that_is_not_one_is_bad_input(tmp_path):
    path = tmp_path / "x.snapshot"
    path.write_bytes(b"not a tar" * 100)
    with pytest.raises(BadInput):
        pit.restore(path, tmp_path / "r", pit.Until(op_num=1))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("42", pit.Until(op_num=42)),
        ("1764770400042ms", pit.Until(timestamp_ms=1764770400042)),
        ("2025-12-03T14:00:00.042Z", pit.Until(timestamp_ms=1764770400042)),
        ("2025-12-03T15:00:00.042+01:00", pit.Until(timestamp_ms=1764770400042)),
        ("2025-12-03T14:00:00.042", pit.Until(timestamp_ms=1764770400042)),
    ],
)
def test_until_forms(text, expected):
    assert pit.parse_until(text) == expected


def test_an_unreadable_until_is_bad_input():
    with pytest.raises(BadInput, match="not an ISO-8601 time"):
        pit.parse_until("yesterday")
    with pytest.raises(BadInput, match="negative"):
        pit.parse_timestamp(-1)
