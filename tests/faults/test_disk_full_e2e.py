"""A real full disk, end to end: a server whose storage is a small tmpfs mounted by the test,
under concurrent write load, while a ballast file fills the disk (docs/durability.md,
"What survives an I/O error or a full disk").

Expected: the server never dies; failing writes get 4xx/5xx in Qdrant's error envelope;
retrieve, scroll, search, query and count keep answering; GET /issues names the problem.
When the ballast is deleted, writes resume by themselves, and every acknowledged write is
there, also after a SIGKILL and restart.

Two ways of meeting the full disk:
- the guard (storage.min_free_disk_mb): writes are refused with Qdrant's 500 "No space left
  on device: WAL buffer size exceeds available disk space" before they reach the WAL, so a
  refused write is certainly not applied, and the issue DISK_ALMOST_FULL/<collection> shows;
- the guard off (0): real ENOSPC hits the WAL and RocksDB writes.

Needs root (mount); skipped with the reason where mounting a tmpfs is not permitted.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import httpx
import pytest

from faultload import (
    MB,
    fill,
    free_bytes,
    mounted_tmpfs,
    PrefixedServer,
    Worker,
    check_reads,
    create_collection,
    issues,
    probe_write,
    stored_payloads,
    wait_until,
)

pytestmark = pytest.mark.e2e

TMPFS_MB = 48
WORKERS = 4
COLLECTION = "full"
QDRANT_REFUSAL = "No space left on device: WAL buffer size exceeds available disk space"


@pytest.fixture
def tmpfs(tmp_path):
    mount_point = tmp_path / "storage"
    mount_point.mkdir()
    with mounted_tmpfs(mount_point, TMPFS_MB):
        yield mount_point


def run_disk_full(tmpfs: Path, min_free_mb: int, leave: int, seed: int):
    server = PrefixedServer(
        tmpfs,
        extra_env={
            "PYDRANT__STORAGE__WAL__WAL_CAPACITY_MB": "1",
            "PYDRANT__STORAGE__MIN_FREE_DISK_MB": str(min_free_mb),
        },
    ).start()
    try:
        create_collection(server.url, COLLECTION)
        guarded = min_free_mb > 0

        def refused_before_wal(response: httpx.Response) -> bool:
            # Qdrant's disk-full refusal, and a collection refusing writes while an
            # operation waits to be applied: both answer before the WAL is touched.
            if response.status_code != 500:
                return False
            return (guarded and QDRANT_REFUSAL in response.text) or "refuses writes until operation" in response.text

        rng = random.Random(seed)
        workers = [Worker(server.url, COLLECTION, i, rng.randrange(2**32), refused_before_wal) for i in range(WORKERS)]
        for w in workers:
            w.start()
        time.sleep(1.0)
        assert sum(w.acknowledged for w in workers) > 20, server.log_tail()
        assert not any(w.errors for w in workers), [w.errors[:3] for w in workers]

        # -- the disk fills ----------------------------------------------------------------
        ballast = fill(tmpfs, leave)
        assert wait_until(lambda: sum(len(w.errors) for w in workers) >= 10, 15), (
            "no write failed with the disk full", free_bytes(tmpfs), server.log_tail())
        time.sleep(1.0)  # keep hammering the full disk for a while
        assert server.alive(), server.log_tail()
        assert check_reads(server.url, COLLECTION) == []
        board = issues(server.url)
        if guarded:
            assert any(i["id"] == f"DISK_ALMOST_FULL/{COLLECTION}" for i in board), board
        else:
            assert any(COLLECTION in i["id"] for i in board), board
        errors = [e for w in workers for e in w.errors]
        assert [b for w in workers for b in w.bad_answers] == []
        if guarded:
            refusals = [e for e in errors if e[0] == 500 and QDRANT_REFUSAL in e[1]]
            assert len(refusals) >= len(errors) // 2, errors[:5]

        # -- space returns -----------------------------------------------------------------
        ballast.unlink()
        recovered = wait_until(lambda: probe_write(server.url, COLLECTION, 100_000).status_code == 200, 45, 0.25)
        assert recovered, (probe_write(server.url, COLLECTION, 100_000).text, issues(server.url), server.log_tail())
        before = sum(w.acknowledged for w in workers)
        time.sleep(1.0)
        for w in workers:
            w.stop.set()
        for w in workers:
            w.join(30)
        assert sum(w.acknowledged for w in workers) > before, "writes did not resume"
        assert server.alive(), server.log_tail()
        # every issue of the episode clears once space is back and the retries have run
        cleared = wait_until(lambda: not [i for i in issues(server.url) if COLLECTION in i["id"]], 30, 0.25)
        assert cleared, issues(server.url)

        stored = stored_payloads(server.url, COLLECTION)
        problems = [p for w in workers for p in w.settle(stored)]
        assert problems == [], problems[:10]

        # -- and after a crash and restart -----------------------------------------------------
        server.kill()
        server.start()
        stored = stored_payloads(server.url, COLLECTION)
        problems = [p for w in workers for p in w.settle(stored)]
        assert problems == [], problems[:10]
        info = httpx.get(f"{server.url}/collections/{COLLECTION}", timeout=30).json()["result"]
        assert info["status"] in ("green", "yellow"), info
        return errors
    finally:
        server.kill()


def test_disk_almost_full_refuses_writes_before_the_wal(tmpfs):
    # threshold 12 MB, the ballast leaves 6 MB: the guard refuses before anything runs out
    errors = run_disk_full(tmpfs, min_free_mb=12, leave=6 * MB, seed=1)
    assert all(status == 500 for status, _ in errors), errors[:5]


def test_real_enospc_with_the_guard_off(tmpfs):
    # guard off: the ballast takes every byte, so the WAL and RocksDB meet ENOSPC themselves
    errors = run_disk_full(tmpfs, min_free_mb=0, leave=0, seed=2)
    assert all(status >= 500 for status, _ in errors), errors[:5]
