"""powercutfs (tests/faults/powercutfs.py): its durability model, on the model alone and
through a real FUSE mount, and pydrant's WAL on it across power cuts."""

from __future__ import annotations

import fcntl
import mmap
import os
import random
import sys
import threading
import time
from pathlib import Path

import pytest

from pydrant.fsutil import fsync_dir

sys.path.insert(0, str(Path(__file__).resolve().parent))

from powercutfs import FuseUnavailable, Model, PowerCutFS, unavailable_reason  # noqa: E402

# ---- the model alone -------------------------------------------------------------------


def reboot(model: Model, mode: str = "lose", seed: int = 0) -> Model:
    return Model(model.durable_state(mode, random.Random(seed)))


def content(model: Model, path: str) -> bytes:
    return bytes(model.lookup(path).data)


def names(model: Model, path: str = "/") -> set[str]:
    return set(model.lookup(path).entries)


def new_file(model: Model, path: str, data: bytes = b"", sync: bool = False) -> int:
    node = model.add_entry(path, "f", 0o100644)
    if data:
        model.write(node, data, 0)
    if sync:
        model.fsync_inode(node.ino)
    return node.ino


def test_unsynced_write_is_lost_synced_write_is_kept():
    m = Model()
    ino = new_file(m, "/a", b"hello", sync=True)
    m.fsync_dir(1)
    m.write(m.inodes[ino], b" world", 5)
    assert content(m, "/a") == b"hello world"  # the live view
    assert content(reboot(m), "/a") == b"hello"
    m.fsync_inode(ino)
    assert content(reboot(m), "/a") == b"hello world"


def test_new_file_needs_its_directory_synced_and_comes_back_empty_without_its_own_sync():
    m = Model()
    new_file(m, "/a", b"data", sync=True)
    assert names(reboot(m)) == set()  # content synced, entry not: gone
    new_file(m, "/b", b"never synced")
    m.fsync_dir(1)
    after = reboot(m)
    assert names(after) == {"a", "b"}
    assert content(after, "/a") == b"data" and content(after, "/b") == b""


def test_rename_and_unlink_need_the_directory_sync():
    m = Model()
    new_file(m, "/old", b"1", sync=True)
    new_file(m, "/gone", b"2", sync=True)
    m.fsync_dir(1)
    m.rename("/old", "/new")
    m.remove("/gone", want_dir=False)
    assert names(reboot(m)) == {"old", "gone"}
    m.fsync_dir(1)
    assert names(reboot(m)) == {"new"}
    assert content(reboot(m), "/new") == b"1"


def test_atomic_replace_keeps_old_or_new_content_never_empty():
    m = Model()
    new_file(m, "/cfg", b"old", sync=True)
    m.fsync_dir(1)
    new_file(m, "/cfg.tmp", b"new", sync=True)
    m.rename("/cfg.tmp", "/cfg")
    assert content(reboot(m), "/cfg") == b"old"
    m.fsync_dir(1)
    assert content(reboot(m), "/cfg") == b"new"


def test_new_directory_needs_its_parent_synced():
    m = Model()
    m.add_entry("/d", "d", 0o40755)
    new_file(m, "/d/f", b"x", sync=True)
    m.fsync_dir(m.lookup("/d").ino)
    assert names(reboot(m)) == set()  # d/ itself never reached the disk
    m.fsync_dir(1)
    assert content(reboot(m), "/d/f") == b"x"


def test_rename_between_directories_is_durable_in_both_or_neither():
    m = Model()
    for d in ("/src", "/dst"):
        m.add_entry(d, "d", 0o40755)
    m.fsync_dir(1)
    new_file(m, "/src/x", b"x", sync=True)
    m.fsync_dir(m.lookup("/src").ino)
    m.rename("/src/x", "/dst/y")
    after = reboot(m)
    assert names(after, "/src") == {"x"} and names(after, "/dst") == set()
    m.fsync_dir(m.lookup("/dst").ino)  # only the destination
    after = reboot(m)
    assert names(after, "/src") == set() and names(after, "/dst") == {"y"}


def test_directory_sync_brings_the_ops_it_depends_on():
    m = Model()
    for d in ("/a", "/b"):
        m.add_entry(d, "d", 0o40755)
    m.fsync_dir(1)
    new_file(m, "/a/f", b"f", sync=True)  # the create is pending in a/
    m.rename("/a/f", "/b/f")
    m.fsync_dir(m.lookup("/b").ino)  # makes the create durable too, else a/f would come back
    after = reboot(m)
    assert names(after, "/a") == set() and names(after, "/b") == {"f"}


def test_prefix_cut_keeps_an_ordered_prefix_and_tears_the_last_write():
    m = Model()
    ino = new_file(m, "/log", b"A" * 10, sync=True)
    m.fsync_dir(1)
    m.write(m.inodes[ino], b"B" * 10, 10)
    m.write(m.inodes[ino], b"C" * 10, 20)
    seen = set()
    for seed in range(200):
        got = content(reboot(m, "prefix", seed), "/log")
        assert (b"A" * 10 + b"B" * 10 + b"C" * 10).startswith(got) and got.startswith(b"A" * 10), got
        seen.add(len(got))
    assert {10, 30} <= seen and any(10 < n < 20 or 20 < n < 30 for n in seen)  # torn ones too


def test_pages_cut_keeps_each_dirty_page_old_or_new():
    m = Model()
    page = 4096
    ino = new_file(m, "/wal", bytes(4 * page), sync=True)
    m.fsync_dir(1)
    m.write(m.inodes[ino], b"\x01" * (3 * page), page // 2)  # dirties pages 0..3
    outcomes = set()
    for seed in range(100):
        got = content(reboot(m, "pages", seed), "/wal")
        assert len(got) == 4 * page
        pattern = []
        for i in range(4):
            chunk = got[i * page : (i + 1) * page]
            live = bytes(m.inodes[ino].data[i * page : (i + 1) * page])
            assert chunk in (bytes(page), live), i
            pattern.append(chunk == live)
        outcomes.add(tuple(pattern))
    assert len(outcomes) > 8  # pages really go independently, a hole before a written page too


def test_sync_all_is_a_clean_shutdown():
    m = Model()
    m.add_entry("/d", "d", 0o40755)
    new_file(m, "/d/f", b"data")
    m.sync_all()
    assert content(reboot(m, "pages", 1), "/d/f") == b"data"


# ---- through FUSE ------------------------------------------------------------------------


@pytest.fixture
def fs(tmp_path):
    reason = unavailable_reason()
    if reason:
        pytest.skip(f"FUSE unavailable: {reason}")
    fs = PowerCutFS(tmp_path / "mnt", tmp_path / "fs.state", tmp_path / "fs.log")
    try:
        fs.mount()
    except FuseUnavailable as exc:
        pytest.skip(f"FUSE unavailable: cannot mount powercutfs: {exc}")
    yield fs
    fs.unmount()


def test_syscalls_through_fuse_follow_the_model(fs):
    root = fs.mountpoint
    (root / "dir").mkdir()
    fsync_dir(root)
    fd = os.open(root / "dir" / "wal", os.O_CREAT | os.O_RDWR, 0o644)
    try:
        os.posix_fallocate(fd, 0, 64 * 1024)
        os.pwrite(fd, b"synced", 0)
        os.fdatasync(fd)
        os.pwrite(fd, b"UNSYNCED", 6)
        assert os.pread(fd, 14, 0) == b"syncedUNSYNCED"  # visible at once
        with mmap.mmap(fd, 0, prot=mmap.PROT_READ) as view:  # mmap reads work
            assert view[:6] == b"synced"
    finally:
        os.close(fd)
    fsync_dir(root / "dir")
    (root / "dir" / "unsynced-name").write_bytes(b"x")
    lock_fd = os.open(root / "LOCK", os.O_CREAT | os.O_RDWR, 0o644)  # RocksDB's LOCK file
    fcntl.lockf(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.close(lock_fd)
    tmp = root / "cfg.tmp"
    tmp.write_bytes(b"cfg")
    os.replace(tmp, root / "cfg")  # not made durable: lost
    answer = fs.cut("lose", 1)
    assert answer["unsynced_files"] >= 1
    fs.mount()
    assert sorted(os.listdir(root)) == ["dir"]
    assert sorted(os.listdir(root / "dir")) == ["wal"]
    data = (root / "dir" / "wal").read_bytes()
    assert len(data) == 64 * 1024 and data[:14] == b"synced\0\0\0\0\0\0\0\0"


def test_truncate_unlink_and_rename_over_through_fuse(fs):
    root = fs.mountpoint
    a = root / "a"
    with open(a, "wb") as f:
        f.write(b"0123456789")
        f.flush()
        os.fsync(f.fileno())
        f.truncate(4)
        os.fsync(f.fileno())
    (root / "b").write_bytes(b"bee")
    fsync_dir(root)
    os.unlink(root / "b")
    fs.cut("lose", 2)
    fs.mount()
    assert a.read_bytes() == b"0123"
    assert (root / "b").read_bytes() == b""  # the unlink was never made durable; content never synced
    os.replace(root / "b", root / "a")
    fsync_dir(root)
    fs.unmount()  # a clean unmount keeps everything
    fs.mount()
    assert os.listdir(root) == ["a"] and a.read_bytes() == b""


def test_wal_survives_power_cuts_mid_append(fs):
    """pydrant's WAL on powercutfs: an appender thread runs until the power goes; every
    batch whose append returned is there after the cut, of the one in flight at most a
    prefix of its records, and the WAL opens every time (its pages may reach the disk in any order).
    Old records are truncated now and then, so the log moves through several files."""
    from pydrant.wal import Wal

    rng = random.Random(int(os.environ.get("PYDRANT_POWERCUT_SEED", "7")))
    wal_dir = fs.mountpoint / "wal"
    wal_dir.mkdir()
    fsync_dir(fs.mountpoint)
    acknowledged: list[tuple[int, object]] = []
    floor = 0  # records below it may have been truncated away
    cycles = int(os.environ.get("PYDRANT_POWERCUT_WAL_CYCLES", "6"))
    for cycle in range(cycles):
        try:  # opened once already since the cut: what that recovery left must open again
            wal = Wal(wal_dir, capacity_bytes=128 * 1024)
        except Exception as exc:
            pytest.fail(f"the WAL does not open a second time after a power cut (cycle {cycle}): {exc!r}")
        if len(acknowledged) > 2000:
            floor = acknowledged[-500][0]
            wal.truncate_before(floor)
            acknowledged = [r for r in acknowledged if r[0] >= floor]
        in_flight: list = []
        stop = threading.Event()
        seed = rng.random()

        def append_until_cut(wal=wal, in_flight=in_flight, stop=stop, seed=seed, acknowledged=acknowledged):
            op_num = (wal.last_op_num or 0) + 1
            local = random.Random(seed)
            while not stop.is_set():
                batch = []
                for _ in range(local.randint(1, 20)):  # up to ~60 KB: batches of many pages
                    batch.append((op_num, {"n": op_num, "pad": "p" * local.choice((10, 300, 3000))}))
                    op_num += 1
                in_flight[:] = batch
                try:
                    wal.append_many(batch)
                except OSError:
                    return  # the power went
                acknowledged.extend(batch)
                in_flight.clear()
                time.sleep(0.002)

        mode = rng.choice(("lose", "prefix", "pages"))
        armed = rng.random() < 0.75  # mostly at an fdatasync: a written, unsynced batch exists
        if armed:
            fs.arm(mode, rng.randrange(2**32), skip=rng.randrange(30), path_contains="/wal/")
        appender = threading.Thread(target=append_until_cut, daemon=True)
        appender.start()
        if armed:
            deadline = time.monotonic() + 10
            while fs.cut_happened() is None and time.monotonic() < deadline:
                time.sleep(0.01)
        else:
            time.sleep(rng.uniform(0.05, 0.4))
        cut = fs.cut(mode, rng.randrange(2**32), wait=False)
        stop.set()
        appender.join(10)
        try:
            wal.close()
        except Exception:  # noqa: BLE001  (the disk is gone: closing may fail any way)
            pass
        fs.wait_unmounted()
        fs.mount()
        where = f"cycle {cycle}, cut {cut}"
        try:
            wal = Wal(wal_dir, capacity_bytes=128 * 1024)
        except Exception as exc:
            pytest.fail(f"the WAL does not open after a power cut ({where}): {exc!r}")
        stored = [r for r in wal.read(floor) if r[0] >= floor]
        wal.close()
        assert stored[: len(acknowledged)] == acknowledged, f"acknowledged records lost or changed ({where})"
        extra = stored[len(acknowledged) :]
        # The in-flight batch was never acknowledged: any prefix of its records may be there
        # (each record whole), never a record after a missing one, never anything else.
        assert extra == in_flight[: len(extra)], f"unknown or out-of-order records came back ({where}): {[r[0] for r in extra]}"
        acknowledged.extend(extra)  # the in-flight batch made it: history now
    assert len(acknowledged) > cycles * 5
