"""A snapshot that meets a full disk (issue 15; docs/snapshots.md): the server's
snapshots path (or its storage and snapshots path both, as on a one-disk machine) is a
small tmpfs mounted by the test, filled by a ballast file until a snapshot cannot fit; the
collection takes a concurrent write load meanwhile.

Expected, as Qdrant: the create fails with a 500 in Qdrant's error envelope naming the OS
error (Qdrant: `Service internal error: File IO error: No space left on device (os error
28)`); the partial tar is removed and no checksum file is left; nothing is listed; the
staging copy in `storage/pending/` is gone; the collection keeps serving reads and writes
(on the shared disk, writes meeting the moment the partial tar holds the last free bytes
are refused by the disk-space guard, before the WAL, and accepted again after it),
every acknowledged write is there; once the ballast is deleted a snapshot succeeds and its
checksum matches. Then the same with an I/O error injected by libfiu from the moment the
partial tar appears (skipped where libfiu is not installed).

Needs root (mount); skipped with the reason where mounting a tmpfs is not permitted.
"""

from __future__ import annotations

import hashlib
import random
import shutil
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from faultload import (
    MB,
    PrefixedServer,
    Worker,
    check_reads,
    create_collection,
    fill,
    is_envelope_error,
    mounted_tmpfs,
    probe_write,
)

pytestmark = pytest.mark.e2e

TMPFS_MB = 32
COLLECTION = "snapfull"
BULK = 4000
BLOB_BYTES = 2_000  # incompressible: the snapshot is ~8 MB


@pytest.fixture(params=["snapshots", "storage+snapshots"])
def tmpfs(request, tmp_path):
    """A small tmpfs holding the snapshots path, or (the one-disk deployment) the storage
    and the snapshots path both. Yields (mount point, storage path, snapshots path)."""
    mount_point = tmp_path / ("snapshots" if request.param == "snapshots" else "disk")
    mount_point.mkdir()
    with mounted_tmpfs(mount_point, TMPFS_MB):
        # ServerProcess puts the snapshots path beside the storage: <parent>/snapshots
        storage = tmp_path / "storage" if request.param == "snapshots" else mount_point / "storage"
        yield mount_point, storage, storage.parent / "snapshots"


def _fill_collection(url: str, count: int = BULK) -> None:
    with httpx.Client(base_url=url, timeout=120) as http:
        for start in range(0, count, 1000):
            points = [
                {"id": 100_000 + i, "vector": [float(i % 17), 1.0, float(i % 5), 2.0],
                 "payload": {"blob": random.Random(i).randbytes(BLOB_BYTES // 2).hex()}}
                for i in range(start, start + 1000)
            ]
            response = http.put(f"/collections/{COLLECTION}/points?wait=true", json={"points": points})
            assert response.status_code == 200, response.text


def _listed(url: str) -> list[dict]:
    response = httpx.get(f"{url}/collections/{COLLECTION}/snapshots", timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["result"]


def _check_nothing_left(server, snapshots: Path) -> None:
    directory = snapshots / COLLECTION
    files = sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []
    assert files == [], files  # no partial tar, no checksum file
    assert _listed(server.url) == []
    assert sorted(p.name for p in (server.storage / "pending").iterdir()) == []  # the staging copy is gone


GUARD_REFUSAL = "No space left on device: WAL buffer size exceeds available disk space"


def guard_refusal(response: httpx.Response) -> bool:
    """The disk-space guard's refusal (collection/diskspace.py): answered before the WAL,
    so the write is certainly not applied."""
    return response.status_code == 500 and GUARD_REFUSAL in response.text


def _check_serving(server, workers, shared_disk: bool) -> None:
    """Reads answer; writes are acknowledged (again). On a shared disk the partial tar
    takes the last free bytes for a moment, and the disk-space guard refuses writes then,
    as it must (Qdrant's refusal, before the WAL); any other failed write is a bug."""
    assert check_reads(server.url, COLLECTION) == []
    deadline = time.monotonic() + 10
    while (probe := probe_write(server.url, COLLECTION, 90_000)).status_code != 200:
        assert shared_disk and guard_refusal(probe) and time.monotonic() < deadline, probe.text
        time.sleep(0.2)
    before = sum(w.acknowledged for w in workers)
    deadline = time.monotonic() + 10
    while sum(w.acknowledged for w in workers) < before + 10:
        assert time.monotonic() < deadline, "writes stopped being acknowledged"
        time.sleep(0.05)
    errors = [e for w in workers for e in w.errors if not (shared_disk and GUARD_REFUSAL in e[1])]
    assert errors == [], errors[:3]


def _check_history(server, workers) -> None:
    for w in workers:
        w.stop.set()
    for w in workers:
        w.join(30)
    ids = [i for w in workers for i in w.ids]
    response = httpx.post(f"{server.url}/collections/{COLLECTION}/points", json={"ids": ids, "with_payload": True}, timeout=60)
    stored = {p["id"]: p["payload"] for p in response.json()["result"]}
    problems = [p for w in workers for p in w.settle(stored)]
    assert problems == [], problems[:5]


def _snapshot_succeeds(server, snapshots: Path) -> None:
    """Once the ballast is gone a snapshot fits. The load keeps writing meanwhile, and on
    the shared disk its WAL may hold the freed room until the flusher trims it (every
    flush interval, 5 s): on a busy machine the first attempt can still meet a full disk.
    Each such attempt must fail cleanly as before, and one within 20 s must succeed."""
    deadline = time.monotonic() + 20
    while True:
        response = httpx.post(f"{server.url}/collections/{COLLECTION}/snapshots?wait=true", timeout=120)
        if response.status_code == 200 or time.monotonic() > deadline:
            break
        assert "No space left on device (os error 28)" in response.text, response.text
        _check_nothing_left(server, snapshots)
        time.sleep(1.0)
    assert response.status_code == 200, response.text
    description = response.json()["result"]
    path = snapshots / COLLECTION / description["name"]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == description["checksum"]
    assert [s["name"] for s in _listed(server.url)] == [description["name"]]
    assert _listed(server.url)[0]["checksum"] == description["checksum"]


def _start_load(url: str, seed: int) -> list[Worker]:
    rng = random.Random(seed)
    workers = [Worker(url, COLLECTION, i, rng.randrange(2**32), guard_refusal) for i in range(2)]
    for w in workers:
        w.start()
    return workers


def test_snapshot_on_a_full_disk_fails_cleanly_and_succeeds_once_space_is_back(tmpfs):
    mount_point, storage, snapshots = tmpfs
    shared_disk = storage.is_relative_to(mount_point)
    # a 1 MB WAL: the disk-space guard (2 x wal_capacity_mb free) lets writes in with the
    # room the ballast leaves, which is too little for the snapshot
    server = PrefixedServer(storage, extra_env={"PYDRANT__STORAGE__WAL__WAL_CAPACITY_MB": "1"})
    storage.mkdir(parents=True, exist_ok=True)
    server.start()
    try:
        create_collection(server.url, COLLECTION)
        _fill_collection(server.url)
        workers = _start_load(server.url, 7)
        # measure one snapshot, delete it, then leave room for half of it
        response = httpx.post(f"{server.url}/collections/{COLLECTION}/snapshots?wait=true", timeout=120)
        assert response.status_code == 200, response.text
        size = response.json()["result"]["size"]
        assert size > 4 * MB
        name = response.json()["result"]["name"]
        assert httpx.delete(f"{server.url}/collections/{COLLECTION}/snapshots/{name}", timeout=30).status_code == 200
        time.sleep(2.5)  # the flusher truncates the WAL the bulk load filled: the storage shrinks first
        ballast = fill(mount_point, size // 2)  # ~4 MB: above the guard's 2 MB, too little for the tar

        for _ in range(3):  # again and again: each failure cleans up after itself
            response = httpx.post(f"{server.url}/collections/{COLLECTION}/snapshots?wait=true", timeout=120)
            assert response.status_code == 500, response.text
            assert is_envelope_error(response), response.text
            message = response.json()["status"]["error"]
            assert message.startswith("Service internal error: File IO error: No space left on device (os error 28)"), message
            _check_nothing_left(server, snapshots)
            _check_serving(server, workers, shared_disk)
        assert server.alive(), server.log_tail()

        ballast.unlink()
        _snapshot_succeeds(server, snapshots)
        _check_serving(server, workers, shared_disk)
        _check_history(server, workers)
    finally:
        server.kill()


@pytest.mark.skipif(shutil.which("fiu-run") is None or shutil.which("fiu-ctrl") is None,
                    reason="libfiu not installed (Debian packages libfiu0 and fiu-utils; .ci/run installs them)")
def test_snapshot_with_an_injected_io_error_while_archiving_fails_cleanly(tmp_path):
    """EIO on every write(2) from the moment the partial tar appears: the tar's writes or
    the checksum file's fail (the WAL appends with pwrite, so the load goes on; RocksDB's
    own writes may fail too, and the server reopens it by itself)."""
    fifo = str(tmp_path / "fiu")
    server = PrefixedServer(tmp_path / "storage", prefix=["fiu-run", "-x", "-f", fifo]).start()
    snapshots = tmp_path / "snapshots"

    def fiu(command: str) -> None:
        result = subprocess.run(["fiu-ctrl", "-f", fifo, "-c", command, str(server.proc.pid)],
                                capture_output=True, text=True, timeout=10)
        assert result.returncode == 0, (command, result.stdout, result.stderr)

    try:
        create_collection(server.url, COLLECTION)
        _fill_collection(server.url, 3 * BULK)
        failed = None
        attempts = 0
        for _ in range(5):
            attempts += 1
            answer: list[httpx.Response] = []
            thread = threading.Thread(target=lambda into=answer: into.append(
                httpx.post(f"{server.url}/collections/{COLLECTION}/snapshots?wait=true", timeout=120)))
            thread.start()
            enabled = False
            while thread.is_alive():
                if (snapshots / COLLECTION).is_dir() and any(".tmp-" in p.name for p in (snapshots / COLLECTION).iterdir()):
                    fiu("enable name=posix/io/rw/write,failinfo=5")  # the archive is being written
                    enabled = True
                    break
                time.sleep(0.001)
            thread.join(120)
            if enabled:
                fiu("disable name=posix/io/rw/write")
            if answer[0].status_code != 200:
                failed = answer[0]
                break
            name = answer[0].json()["result"]["name"]  # archived before the fault was on: again
            assert httpx.delete(f"{server.url}/collections/{COLLECTION}/snapshots/{name}", timeout=30).status_code == 200
        assert failed is not None, "the fault never hit an archive"
        print(f"the fault hit the archive at attempt {attempts}: {failed.json()['status']['error'][:200]}")
        assert failed.status_code == 500, failed.text
        assert is_envelope_error(failed), failed.text
        assert failed.json()["status"]["error"] == "Service internal error: File IO error: Input/output error (os error 5)"
        _check_nothing_left(server, snapshots)
        workers = _start_load(server.url, 8)
        deadline = time.monotonic() + 30
        while probe_write(server.url, COLLECTION, 90_000).status_code != 200:  # RocksDB reopened if it was hit
            assert time.monotonic() < deadline, server.log_tail()
            time.sleep(0.2)
        assert check_reads(server.url, COLLECTION) == []
        _snapshot_succeeds(server, snapshots)
        _check_history(server, workers)
    finally:
        server.kill()
