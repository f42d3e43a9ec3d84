"""Retention of closed WAL files by age and by size (`Wal(retain_age_sec=..., retain_bytes=...)`,
docs/wal.md "Retention"): a closed file survives `truncate_before` when any rule — the
count, the age, the size — keeps it, and a record at or above the bound is never removed."""

from __future__ import annotations

import os

import numpy as np
import pytest

from pydrant.collection import collection as collection_module
from pydrant.wal import Wal
from pydrant.wal import log as wal_log
from pydrant.wal.framing import encode_record
from pydrant.wal.scan import log_file_name, read_log

SMALL = 1024  # bytes per file: a few records each
HOUR_MS = 3_600_000


class Clock:
    """Stands in for the WAL's wall clock (commit timestamps and the age rule)."""

    def __init__(self, now_ms: int = 1_700_000_000_000):
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


@pytest.fixture
def clock(monkeypatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(wal_log, "_now_ms", fake)
    return fake


def value(op_num: int) -> dict:
    return {"type": "upsert", "points": [{"id": op_num, "vector": np.full(16, op_num, np.float32)}]}


def fill_files(wal: Wal, clock: Clock, files: int, step_ms: int) -> None:
    """Append one record at a time until the log has `files` files; the clock moves
    `step_ms` each time a file is started, so closed file i's newest record is
    committed at start + i * step_ms, and the clock ends at start + (files - 1) * step_ms."""
    op_num = (wal.last_op_num or 0) + 1
    while len(wal._files) < files:
        before = len(wal._files)
        wal.append(op_num, value(op_num))
        if before and len(wal._files) != before:
            clock.now_ms += step_ms
        op_num += 1


def file_names(wal: Wal) -> list[int]:
    return [f.name_op_num for f in wal._files]


def test_without_age_or_size_only_the_count_keeps_files(tmp_path, clock):
    with Wal(tmp_path, capacity_bytes=SMALL, retain_closed=1) as wal:
        fill_files(wal, clock, 5, HOUR_MS)
        names = file_names(wal)
        wal.truncate_before(wal.last_op_num + 1)
        assert file_names(wal) == names[-2:]  # one closed file and the last one


def test_age_keeps_closed_files_whose_newest_record_is_younger(tmp_path, clock):
    with Wal(tmp_path, capacity_bytes=SMALL, retain_closed=0, retain_age_sec=2.5 * 3600) as wal:
        fill_files(wal, clock, 6, HOUR_MS)
        newest = {f.name_op_num: f.last_timestamp for f in wal._files}
        names = file_names(wal)
        wal.truncate_before(wal.last_op_num + 1)
        kept = file_names(wal)
        assert kept[-1] == names[-1]
        oldest_wanted = clock.now_ms - int(2.5 * HOUR_MS)
        assert all(newest[n] >= oldest_wanted for n in kept[:-1])
        removed = [n for n in names if n not in kept]
        assert removed and all(newest[n] < oldest_wanted for n in removed)
        assert len(kept) == 3  # closed files 1 and 2 hours old, and the last one


def test_age_rule_counts_time_at_truncation_not_at_open(tmp_path, clock):
    with Wal(tmp_path, capacity_bytes=SMALL, retain_closed=0, retain_age_sec=3600) as wal:
        fill_files(wal, clock, 3, 60_000)
        wal.truncate_before(wal.last_op_num + 1)
        assert len(wal._files) == 3  # every closed file is minutes old
        clock.now_ms += 2 * HOUR_MS
        wal.truncate_before(wal.last_op_num + 1)
        assert len(wal._files) == 1  # two hours later none is wanted


def test_size_keeps_the_newest_closed_files_that_fit(tmp_path, clock):
    with Wal(tmp_path, capacity_bytes=SMALL, retain_closed=0, retain_bytes=3 * SMALL + SMALL // 2) as wal:
        fill_files(wal, clock, 7, 1)
        assert all(f.size == SMALL for f in wal._files[:-1])  # preallocated: the size on disk
        names = file_names(wal)
        wal.truncate_before(wal.last_op_num + 1)
        assert file_names(wal) == names[-4:]  # three closed files fit in 3.5 files' bytes


def test_size_zero_keeps_nothing_and_none_means_no_rule(tmp_path, clock):
    with Wal(tmp_path / "zero", capacity_bytes=SMALL, retain_closed=0, retain_bytes=0) as wal:
        fill_files(wal, clock, 4, 1)
        wal.truncate_before(wal.last_op_num + 1)
        assert len(wal._files) == 1


def test_a_file_is_kept_when_any_rule_keeps_it(tmp_path, clock):
    # count keeps 1, size keeps 2, age keeps the files of the last 3.5 hours (3 closed ones):
    # the union is the largest run, the age's
    with Wal(tmp_path / "a", capacity_bytes=SMALL, retain_closed=1, retain_bytes=2 * SMALL, retain_age_sec=3.5 * 3600) as wal:
        fill_files(wal, clock, 8, HOUR_MS)
        names = file_names(wal)
        wal.truncate_before(wal.last_op_num + 1)
        assert file_names(wal) == names[-4:]
    clock.now_ms += 100 * HOUR_MS
    # now the age keeps nothing: the size's two closed files stay
    with Wal(tmp_path / "b", capacity_bytes=SMALL, retain_closed=1, retain_bytes=2 * SMALL, retain_age_sec=1) as wal:
        fill_files(wal, clock, 8, HOUR_MS)
        clock.now_ms += 100 * HOUR_MS
        names = file_names(wal)
        wal.truncate_before(wal.last_op_num + 1)
        assert file_names(wal) == names[-3:]


def test_retention_never_removes_a_record_the_bound_keeps(tmp_path, clock):
    with Wal(tmp_path, capacity_bytes=SMALL, retain_closed=0, retain_bytes=0, retain_age_sec=0) as wal:
        fill_files(wal, clock, 6, HOUR_MS)
        clock.now_ms += 100 * HOUR_MS
        third = wal._files[2]
        bound = third.first_op_num + 1  # a record of the third file is still needed
        wal.truncate_before(bound)
        assert wal._files[0].name_op_num == third.name_op_num
        assert [n for n, _ in read_log(tmp_path)][0] == third.first_op_num
        assert wal.first_op_num < bound


def test_retention_survives_reopening_with_the_timestamps_on_disk(tmp_path, clock):
    with Wal(tmp_path, capacity_bytes=SMALL, retain_closed=0) as wal:
        fill_files(wal, clock, 5, HOUR_MS)
        names = file_names(wal)
    with Wal(tmp_path, capacity_bytes=SMALL, retain_closed=0, retain_age_sec=1.5 * 3600) as wal:
        assert [f.last_timestamp for f in wal._files[:-1]] == sorted(f.last_timestamp for f in wal._files[:-1])
        wal.truncate_before(wal.last_op_num + 1)
        assert file_names(wal) == names[-2:]  # the closed file written an hour ago, and the last one


def test_files_without_timestamps_are_aged_by_their_modification_time(tmp_path, clock):
    # records of the older shape ([op_num, value]) carry no commit time
    for first in (1, 3, 5):
        path = tmp_path / log_file_name(first)
        path.write_bytes(encode_record(first, "a") + encode_record(first + 1, "b"))
    old = (clock.now_ms - 10 * HOUR_MS) / 1000
    os.utime(tmp_path / log_file_name(1), (old, old))
    recent = (clock.now_ms - 60_000) / 1000
    os.utime(tmp_path / log_file_name(3), (recent, recent))
    with Wal(tmp_path, capacity_bytes=SMALL, retain_closed=0, retain_age_sec=3600) as wal:
        wal.truncate_before(100)
        assert file_names(wal) == [3, 5]


def test_negative_retention_is_refused(tmp_path):
    with pytest.raises(ValueError, match="retain_age_sec"):
        Wal(tmp_path, retain_age_sec=-1)
    with pytest.raises(ValueError, match="retain_bytes"):
        Wal(tmp_path, retain_bytes=-1)


def test_collections_open_their_wal_with_the_server_wide_retention(tmp_path, monkeypatch):
    monkeypatch.setattr(collection_module, "_WAL_RETENTION", {"age_sec": None, "size_mb": None})
    collection_module.configure_wal_retention(86_400, 64)
    wal = collection_module._open_wal(tmp_path, {"wal_config": {"wal_capacity_mb": 1, "wal_retain_closed": 3}})
    try:
        assert (wal.retain_closed, wal.retain_age_sec, wal.retain_bytes) == (3, 86_400, 64 * 1024 * 1024)
    finally:
        wal.close()
    collection_module.configure_wal_retention(None, None)
    wal = collection_module._open_wal(tmp_path, {})
    try:
        assert (wal.retain_age_sec, wal.retain_bytes) == (None, None)
    finally:
        wal.close()
