"""I/O errors injected into a running server with libfiu (docs/durability.md, "What survives
an I/O error or a full disk").

The server runs under `fiu-run -x` (Debian packages libfiu0 and fiu-utils), which preloads
libfiu's POSIX wrappers; `fiu-ctrl` then turns failure points on and off in the running
process, each failing with a chosen errno (failinfo: 5 EIO, 28 ENOSPC):

  posix/io/rw/pwrite       the WAL's appends (pydrant writes its WAL with pwrite; RocksDB
                           appends with write)
  posix/io/sync/fdatasync  the WAL's fsync and RocksDB's syncs when it flushes
  posix/io/rw/write        RocksDB's writes (its own log and SST files) and Python file
                           writes (config.json, manifest.json, the server's log)
  posix/io/sync/fsync      the fsync of config.json / manifest.json (pydrant/fsutil.py)

Under every fault the server must keep running and answer reads; failing writes get a 5xx
in Qdrant's error envelope and GET /issues names the collection; once the fault is off,
writes are accepted again by themselves, and every acknowledged write is there, also
after a SIGKILL and restart. Skipped, with the reason, where libfiu is not installed.
"""

from __future__ import annotations

import contextlib
import json
import random
import shutil
import subprocess
import time

import httpx
from qdrant_client.http import models
import pytest

from faultload import (
    PrefixedServer,
    Worker,
    check_reads,
    create_collection,
    is_envelope_error,
    issues,
    probe_write,
    stored_payloads,
    wait_until,
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        shutil.which("fiu-run") is None or shutil.which("fiu-ctrl") is None,
        reason="libfiu not installed (Debian packages libfiu0 and fiu-utils; .ci/run installs them)",
    ),
]

COLLECTION = "faulty"
EIO, ENOSPC = 5, 28
WORKERS = 3


class FiuServer(PrefixedServer):
    def __init__(self, tmp_path, **kwargs):
        self.fifo = str(tmp_path / "fiu")
        super().__init__(tmp_path / "storage", prefix=["fiu-run", "-x", "-f", self.fifo], **kwargs)

    def fiu(self, command: str) -> None:
        result = subprocess.run(
            ["fiu-ctrl", "-f", self.fifo, "-c", command, str(self.proc.pid)],
            capture_output=True, text=True, timeout=10,
        )
        assert result.returncode == 0, (command, result.stdout, result.stderr)

    def enable(self, point: str, errno: int) -> None:
        self.fiu(f"enable name={point},failinfo={errno}")

    def disable(self, point: str) -> None:
        self.fiu(f"disable name={point}")


@pytest.fixture
def fiu_server(tmp_path):
    server = FiuServer(tmp_path).start()
    create_collection(server.url, COLLECTION)
    yield server
    server.kill()


def start_load(server, seed: int, certain_refusal=lambda r: False) -> list[Worker]:
    rng = random.Random(seed)
    workers = [Worker(server.url, COLLECTION, i, rng.randrange(2**32), certain_refusal) for i in range(WORKERS)]
    for w in workers:
        w.start()
    assert wait_until(lambda: sum(w.acknowledged for w in workers) > 20, 10), server.log_tail()
    return workers


def stop_load(workers: list[Worker]) -> None:
    for w in workers:
        w.stop.set()
    for w in workers:
        w.join(30)


def errors_of(workers) -> list[tuple[int, str]]:
    return [e for w in workers for e in w.errors]


def collection_issues(server) -> list[dict]:
    return [i for i in issues(server.url) if COLLECTION in i["id"]]


def check_history(server, workers, *, restart: bool = True) -> None:
    """Every acknowledged write is stored (an uncertain one: before or after), now and after
    a SIGKILL and restart."""
    stored = stored_payloads(server.url, COLLECTION)
    problems = [p for w in workers for p in w.settle(stored)]
    assert problems == [], problems[:10]
    if restart:
        server.kill()
        server.start()
        stored = stored_payloads(server.url, COLLECTION)
        problems = [p for w in workers for p in w.settle(stored)]
        assert problems == [], problems[:10]


def expect_progress(server, workers) -> None:
    """The load goes on after the fault: settle the points whose writes failed (they were
    left alone meanwhile), then the workers' writes must be acknowledged again.

    The check runs with every worker paused between requests, after a `wait=true` write
    has passed through the update queue: a `wait=false` write is acknowledged before it
    is visible, so a scroll racing the load would see it missing."""
    with contextlib.ExitStack() as paused:
        for w in workers:
            paused.enter_context(w.turn)
        assert probe_write(server.url, COLLECTION, 100_000).status_code == 200
        check_history(server, workers, restart=False)
    acknowledged = sum(w.acknowledged for w in workers)
    assert wait_until(lambda: sum(w.acknowledged for w in workers) > acknowledged + 10, 10), (
        errors_of(workers)[-3:], server.log_tail())


def wait_writable(server, timeout: float = 30) -> None:
    ok = wait_until(lambda: probe_write(server.url, COLLECTION, 100_000).status_code == 200, timeout, 0.2)
    assert ok, (probe_write(server.url, COLLECTION, 100_000).text, issues(server.url), server.log_tail())


def test_wal_append_failure_acknowledges_nothing(fiu_server):
    """pwrite of the WAL fails (EIO, then ENOSPC): those writes get 500 "Service internal
    error: ..." with the cause, none is acknowledged (pwrite wrote nothing, so none may show
    up later either), an issue names the collection, and the next successful append
    clears it."""
    server = fiu_server

    def refused(response):  # the append itself failed: certainly not logged
        return response.status_code == 500 and "WAL write failed" in response.text

    workers = start_load(server, seed=3, certain_refusal=refused)
    for errno, cause in ((EIO, "Input/output error"), (ENOSPC, "No space left on device")):
        seen = len(errors_of(workers))
        server.enable("posix/io/rw/pwrite", errno)
        try:
            assert wait_until(lambda seen=seen: len(errors_of(workers)) >= seen + 10, 10), server.log_tail()
            reads = check_reads(server.url, COLLECTION)
            board = collection_issues(server)
        finally:
            server.disable("posix/io/rw/pwrite")
        assert server.alive()
        assert reads == []
        assert any(i["id"].startswith("WAL_WRITE_FAILED/") for i in board), board
        errors = errors_of(workers)[seen:]
        assert [b for w in workers for b in w.bad_answers] == []
        assert all(status == 500 and "Service internal error" in text for status, text in errors), errors[:3]
        assert any(cause in text for _, text in errors), errors[:3]

        wait_writable(server, 10)
        assert wait_until(lambda: not any(i["id"].startswith("WAL_WRITE_FAILED/") for i in collection_issues(server)), 5)
        expect_progress(server, workers)
    stop_load(workers)
    check_history(server, workers)


def test_fdatasync_failure_in_the_wal_and_in_flushes(fiu_server):
    """fdatasync fails (EIO) for a while: WAL appends fail (nothing acknowledged that was not
    synced), segment flushes fail and are retried with an issue on the board, the WAL is not
    truncated past what is unflushed; the node keeps serving and recovers by itself."""
    server = fiu_server
    workers = start_load(server, seed=7)
    server.enable("posix/io/sync/fdatasync", EIO)
    assert wait_until(lambda: len(errors_of(workers)) >= 10, 10), server.log_tail()
    # the flusher runs every second: its failure shows up on the board
    assert wait_until(lambda: any(i["id"].startswith("FLUSH_FAILED/") for i in collection_issues(server)), 10), (
        issues(server.url), server.log_tail())
    assert server.alive()
    assert check_reads(server.url, COLLECTION) == []
    assert [b for w in workers for b in w.bad_answers] == []
    assert all(status >= 500 for status, _ in errors_of(workers)), errors_of(workers)[:3]

    server.disable("posix/io/sync/fdatasync")
    wait_writable(server, 30)
    assert wait_until(lambda: collection_issues(server) == [], 30, 0.25), collection_issues(server)
    expect_progress(server, workers)
    stop_load(workers)
    check_history(server, workers)


def test_segment_write_failure_turns_the_collection_red_until_a_retry_applies(fiu_server):
    """RocksDB's writes fail (write(2) of its log and tables; EIO, then ENOSPC): applying
    acknowledged operations fails, the collection turns red with the reason, an issue is
    on the board, new writes are refused with a 5xx, reads go on. Once the fault is off a
    background retry applies the logged operations and writes are accepted again; nothing
    acknowledged is lost, also after a restart."""
    server = fiu_server
    workers = start_load(server, seed=11)
    for errno in (EIO, ENOSPC):
        seen = len(errors_of(workers))
        server.enable("posix/io/rw/write", errno)
        try:
            assert wait_until(lambda seen=seen: len(errors_of(workers)) >= seen + 10, 10)
            info = httpx.get(f"{server.url}/collections/{COLLECTION}", timeout=10).json()["result"]
            telemetry = httpx.get(f"{server.url}/telemetry", params={"details_level": 3}, timeout=10).json()["result"]
            reads = check_reads(server.url, COLLECTION)
            board = collection_issues(server)
            alive = server.alive()
        finally:
            server.disable("posix/io/rw/write")  # before asserting: the server's own log needs write(2)
        models.TelemetryData.model_validate(telemetry)
        (shard,) = telemetry["collections"]["collections"][0]["shards"]
        assert shard["local"]["status"] == "red", shard
        assert shard["local"]["optimizations"]["status"]["error"], shard
        assert alive, server.log_tail()
        assert reads == []
        assert info["status"] == "red", info
        assert isinstance(info["optimizer_status"], dict) and info["optimizer_status"]["error"], info
        assert board, issues(server.url)
        assert [b for w in workers for b in w.bad_answers] == []
        assert all(status >= 500 for status, _ in errors_of(workers)), [e for e in errors_of(workers) if e[0] < 500][:3]

        wait_writable(server, 15)
        assert wait_until(lambda: collection_issues(server) == [], 15, 0.25), collection_issues(server)
        info = httpx.get(f"{server.url}/collections/{COLLECTION}", timeout=10).json()["result"]
        assert info["status"] in ("green", "yellow"), info
        expect_progress(server, workers)
    stop_load(workers)
    check_history(server, workers)


def test_failing_config_write_keeps_the_old_config(fiu_server):
    """PATCH /collections/{c} while config.json cannot be written (its fsync fails with EIO,
    then ENOSPC): the request fails cleanly in Qdrant's envelope, the config on disk stays
    the old one, whole (never empty or corrupt), no temporary file is left, the collection
    keeps the old config in memory, and a restart shows it. Once the fault is gone, the
    same PATCH works and survives a restart."""
    server = fiu_server
    config_path = server.storage / "collections" / COLLECTION / "config.json"
    before_disk = config_path.read_bytes()
    before = httpx.get(f"{server.url}/collections/{COLLECTION}", timeout=10).json()["result"]["config"]
    patch = {"optimizers_config": {"indexing_threshold": 777}}

    for errno in (EIO, ENOSPC):
        server.enable("posix/io/sync/fsync", errno)
        try:
            response = httpx.patch(f"{server.url}/collections/{COLLECTION}", json=patch, timeout=30)
        finally:
            server.disable("posix/io/sync/fsync")
        assert 500 <= response.status_code < 600 and is_envelope_error(response), response.text
        assert server.alive(), server.log_tail()
        assert config_path.read_bytes() == before_disk
        assert not list(config_path.parent.glob("config.json*.tmp")), "a temporary config file was left behind"
        now = httpx.get(f"{server.url}/collections/{COLLECTION}", timeout=10).json()["result"]["config"]
        assert now == before

    server.kill()
    server.start()
    assert json.loads(config_path.read_bytes()) == json.loads(before_disk)
    after_restart = httpx.get(f"{server.url}/collections/{COLLECTION}", timeout=10).json()["result"]["config"]
    assert after_restart == before

    response = httpx.patch(f"{server.url}/collections/{COLLECTION}", json=patch, timeout=30)
    assert response.status_code == 200, response.text
    server.kill()
    server.start()
    config = httpx.get(f"{server.url}/collections/{COLLECTION}", timeout=10).json()["result"]["config"]
    assert config["optimizer_config"]["indexing_threshold"] == 777


def test_fsync_failure_during_an_optimization_keeps_a_valid_collection(tmp_path):
    """Every fsync fails with ENOSPC for two seconds while the optimizer indexes new points
    (its segment builds and its manifest swap need fsync; RocksDB's flushes too): the
    optimization fails cleanly, the manifest on disk names only complete segment
    directories, reads go on, writes are accepted again once the fault is off, and a
    restart holds every acknowledged write. (A failing manifest write itself, step by step,
    is tests/faults/test_atomic_writes.py.)"""
    server = FiuServer(tmp_path).start()
    try:
        create_collection(server.url, COLLECTION, optimizers_config={"flush_interval_sec": 1, "indexing_threshold": 1})
        manifest = server.storage / "collections" / COLLECTION / "manifest.json"
        workers = start_load(server, seed=21)
        swaps_before = manifest.read_bytes()
        server.enable("posix/io/sync/fsync", ENOSPC)
        try:
            time.sleep(2.0)  # the optimizer plans an indexing run for the new points and fails its swap
            alive = server.alive()
            reads = check_reads(server.url, COLLECTION)
        finally:
            server.disable("posix/io/sync/fsync")
        assert alive, server.log_tail()
        assert reads == []
        listed = json.loads(manifest.read_bytes())["segments"]
        for segment in listed:
            assert (manifest.parent / "segments" / segment).is_dir(), (segment, listed)
        wait_writable(server, 30)
        expect_progress(server, workers)
        stop_load(workers)
        assert [b for w in workers for b in w.bad_answers] == []
        check_history(server, workers)
        assert swaps_before  # the manifest existed, whole, before the fault
    finally:
        server.kill()
