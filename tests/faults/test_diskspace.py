"""The disk-space guard (pydrant/collection/diskspace.py) with a fake statvfs and clock:
refusal below the threshold with Qdrant's text, Qdrant's default threshold, the setting,
cached readings, and the issue that comes and goes with the space."""

from __future__ import annotations

import os
import time
from types import SimpleNamespace

import pytest

from pydrant.collection import diskspace
from pydrant.collection.diskspace import MB, DiskSpaceGuard
from pydrant.config import load_settings
from pydrant.errors import ServiceError
from pydrant.http.errors import status_for
from pydrant.issues import BOARD


class FakeDisk:
    """statvfs of a disk with `free` bytes available; counts the calls."""

    def __init__(self, free: int):
        self.free = free
        self.calls = 0
        self.fail = False

    def __call__(self, path):
        self.calls += 1
        if self.fail:
            raise OSError(5, "Input/output error")
        return SimpleNamespace(f_bavail=self.free // 4096, f_frsize=4096)


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


@pytest.fixture(autouse=True)
def clean_board():
    BOARD.clear()
    diskspace.configure(None)
    yield
    diskspace.configure(None)
    BOARD.clear()


def make_guard(tmp_path, disk, clock, limit_mb=64, name="c"):
    return DiskSpaceGuard(name, tmp_path, lambda: limit_mb * MB, statvfs=disk, clock=clock)


def test_enough_space_passes_and_full_disk_is_refused_with_qdrants_text(tmp_path):
    disk, clock = FakeDisk(100 * MB), Clock()
    guard = make_guard(tmp_path, disk, clock)
    guard.check()
    assert not BOARD.has("DISK_ALMOST_FULL/c")

    disk.free = 10 * MB
    clock.now += diskspace.CHECK_INTERVAL
    with pytest.raises(ServiceError) as refused:
        guard.check()
    assert refused.value.message == (
        "Service internal error: No space left on device: WAL buffer size exceeds available disk space"
    )
    assert status_for(refused.value) == 500
    (issue,) = BOARD.report()
    assert issue["id"] == "DISK_ALMOST_FULL/c"
    assert "10.0 MB free" in issue["description"] and "64.0 MB" in issue["description"]

    disk.free = 500 * MB
    clock.now += diskspace.CHECK_INTERVAL
    guard.check()
    assert BOARD.report() == []


def test_readings_are_cached_for_the_interval(tmp_path):
    disk, clock = FakeDisk(10_000 * MB), Clock()
    guard = make_guard(tmp_path, disk, clock)
    for _ in range(1000):
        guard.check()
    assert disk.calls == 1  # one statvfs for a thousand writes within a second
    clock.now += diskspace.CHECK_INTERVAL
    guard.check()
    assert disk.calls == 2


def test_close_to_the_threshold_it_reads_more_often(tmp_path):
    disk, clock = FakeDisk(64 * MB + 10 * MB), Clock()
    guard = make_guard(tmp_path, disk, clock)
    guard.check()
    disk.free = 1 * MB  # something else filled the disk
    clock.now += diskspace.NEAR_INTERVAL * 1.01
    with pytest.raises(ServiceError):
        guard.check()
    assert disk.calls == 2


def test_stale_reading_answers_within_the_interval(tmp_path):
    disk, clock = FakeDisk(10_000 * MB), Clock()
    guard = make_guard(tmp_path, disk, clock)
    guard.check()
    disk.free = 0
    guard.check()  # still the cached reading: the margin (the threshold) covers this second
    clock.now += diskspace.CHECK_INTERVAL
    with pytest.raises(ServiceError):
        guard.check()


def test_unreadable_free_space_never_refuses(tmp_path):
    disk, clock = FakeDisk(0), Clock()
    disk.fail = True
    guard = make_guard(tmp_path, disk, clock)
    guard.check()
    assert BOARD.report() == []


def test_threshold_zero_disables_the_check(tmp_path):
    disk, clock = FakeDisk(0), Clock()
    guard = make_guard(tmp_path, disk, clock, limit_mb=0)
    guard.check()
    assert disk.calls == 0


def test_default_threshold_is_twice_the_wal_capacity_as_in_qdrant():
    assert diskspace.threshold_bytes({"wal_config": {"wal_capacity_mb": 32}}) == 64 * MB
    assert diskspace.threshold_bytes({"wal_config": {"wal_capacity_mb": 1}}) == 2 * MB
    assert diskspace.threshold_bytes({}) == 64 * MB
    diskspace.configure(5)
    assert diskspace.threshold_bytes({"wal_config": {"wal_capacity_mb": 32}}) == 5 * MB
    diskspace.configure(0)
    assert diskspace.threshold_bytes({"wal_config": {"wal_capacity_mb": 32}}) == 0


def test_setting_is_read_from_the_environment():
    assert load_settings(env={}).storage.min_free_disk_mb is None
    settings = load_settings(env={"PYDRANT__STORAGE__MIN_FREE_DISK_MB": "0"})
    assert settings.storage.min_free_disk_mb == 0
    assert "storage.min_free_disk_mb" not in settings.changed_but_not_acted_on()


def test_watcher_resolves_the_issue_when_space_returns_without_a_write(tmp_path, monkeypatch):
    monkeypatch.setattr(diskspace, "CHECK_INTERVAL", 0.05)
    disk = FakeDisk(1 * MB)
    guard = DiskSpaceGuard("w", tmp_path, lambda: 64 * MB, statvfs=disk)
    with pytest.raises(ServiceError):
        guard.check()
    assert BOARD.has("DISK_ALMOST_FULL/w")
    disk.free = 1000 * MB
    deadline = time.monotonic() + 5
    while BOARD.has("DISK_ALMOST_FULL/w") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not BOARD.has("DISK_ALMOST_FULL/w")
    assert not guard.full


def test_guard_per_collection_reads_the_real_disk(tmp_path):
    class FakeCollection:  # what the guard reads of a Collection
        name, path, config = "real", tmp_path, {"wal_config": {"wal_capacity_mb": 1}}

    collection = FakeCollection()
    diskspace.check(collection)  # the test machine has more than 2 MB free
    assert diskspace.guard_for(collection) is diskspace.guard_for(collection)
    st = os.statvfs(tmp_path)
    assert diskspace.guard_for(collection).free_bytes() == pytest.approx(st.f_bavail * st.f_frsize, rel=0.05)
