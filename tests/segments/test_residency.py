"""The background residency / verification worker (pydrant/segments/residency.py), driven
with real pack files and a fake segment: populating maps the pages into the process,
a damaged pack fails its segment and only it, and cancel, pause, the throttle and close
behave as the module docstring says. Files are small and rates high: these run on two
loaded cores."""

from __future__ import annotations

import gc
import os
import threading
import time
import weakref
from pathlib import Path

import numpy as np
import pytest

from pydrant.errors import ServiceError
from pydrant.segments.packfile import CorruptPack, PackTable, PackWriter, open_pack, verify_pack
from pydrant.segments.residency import (
    DEFAULT_RATE,
    RATE_ENV,
    JobStatus,
    ResidencyWorker,
    Upkeep,
    rate_from_env,
)

MiB = 1 << 20


def write_pack(path: Path, nbytes: int, seed: int = 0) -> PackTable:
    """One pack holding a `data` array of `nbytes` (uint8), fsynced and evicted from the page
    cache, so that populating it has to read it back."""
    rng = np.random.default_rng(seed)
    with PackWriter(path) as writer:
        writer.begin("data", np.uint8)
        for start in range(0, nbytes, 8 * MiB):
            writer.append(rng.integers(0, 256, min(8 * MiB, nbytes - start), dtype=np.uint8))
        writer.end()
        writer.add("small", np.arange(100, dtype="<u8"))
        table = writer.finish()
    evict(path)
    return table


def evict(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def flip_byte(path: Path, offset: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)[0]
        f.seek(offset)
        f.write(bytes([byte ^ 0x40]))


def rss_file_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssFile:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no RssFile in /proc/self/status")


class PackUpkeep:
    """A segment of one pack: its arrays resident, its checksums verified through
    `verify_pack` (paced by the worker), failures recorded."""

    def __init__(self, path: Path, table: PackTable, *, resident: bool = True, verify: bool = True):
        self.path = path
        self.name = path.name
        self.table = table
        self.arrays = open_pack(path, table)
        self.resident = resident
        self.verify = verify
        self.failures: list[str] = []
        self.regions_asked = 0
        self.warmed = 0

    def resident_regions(self) -> list[np.ndarray]:
        self.regions_asked += 1
        return list(self.arrays.values()) if self.resident else []

    def verification_steps(self, pace=None):
        if not self.verify:
            return
        problems = verify_pack(self.path, self.table, pace)
        if problems:
            raise CorruptPack(self.path, "; ".join(problems))
        yield self.table.size  # the running total, as ImmutableSegment yields it

    def mark_failed(self, reason: str) -> None:
        self.failures.append(reason)

    def warm_up(self) -> None:
        self.warmed += 1


class Failures:
    """An `on_failure` callback that records its calls."""

    def __init__(self):
        self.calls: list[tuple[object, str]] = []

    def __call__(self, upkeep, reason: str) -> None:
        self.calls.append((upkeep, reason))


@pytest.fixture
def workers():
    """Workers made by a test, closed at its end whatever happened."""
    made: list[ResidencyWorker] = []

    def make(*args, **kwargs) -> ResidencyWorker:
        worker = ResidencyWorker(*args, **kwargs)
        made.append(worker)
        return worker

    yield make
    for worker in made:
        assert worker.close(timeout=5)


def wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.005)


def state(worker: ResidencyWorker, upkeep) -> JobStatus:
    return worker.status()[upkeep.name]


def worker_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "pydrant-residency"]


# ---------------------------------------------------------------------------------------


def test_a_pack_upkeep_is_an_upkeep(tmp_path):
    upkeep = PackUpkeep(tmp_path / "a.pack", write_pack(tmp_path / "a.pack", MiB))
    assert isinstance(upkeep, Upkeep)


def test_populate_maps_every_page_of_the_regions_into_the_process(tmp_path, workers):
    size = 24 * MiB
    upkeep = PackUpkeep(tmp_path / "vectors.pack", write_pack(tmp_path / "vectors.pack", size), verify=False)
    before = rss_file_bytes()
    worker = workers(rate=0)
    assert worker.submit(upkeep)
    assert worker.wait_idle(30)
    grown = rss_file_bytes() - before
    status = state(worker, upkeep)
    assert status.state == "done"
    assert status.resident_bytes == size + 800  # both arrays, every byte counted once
    assert grown >= 0.9 * size, f"RssFile grew by {grown / MiB:.1f} MiB for a {size / MiB:.0f} MiB region"


def test_regions_not_backed_by_a_mapping_are_skipped(tmp_path, workers):
    upkeep = PackUpkeep(tmp_path / "a.pack", write_pack(tmp_path / "a.pack", MiB), verify=False)
    upkeep.arrays = {"in_ram": np.ones(MiB, dtype=np.uint8), **upkeep.arrays}
    worker = workers(rate=0)
    worker.submit(upkeep)
    assert worker.wait_idle(30)
    assert state(worker, upkeep).resident_bytes == MiB + 800  # the pack's arrays only


def test_a_flipped_byte_fails_that_segment_only_and_later_jobs_run(tmp_path, workers):
    bad_path, good_path = tmp_path / "bad.pack", tmp_path / "good.pack"
    bad_table = write_pack(bad_path, 2 * MiB)
    flip_byte(bad_path, bad_table.arrays["data"].offset + 12345)
    bad = PackUpkeep(bad_path, bad_table)
    good = PackUpkeep(good_path, write_pack(good_path, 2 * MiB, seed=1))
    failures = Failures()
    worker = workers(rate=0, on_failure=failures)
    worker.submit(bad)
    worker.submit(good)
    assert worker.wait_idle(30)

    assert len(bad.failures) == 1 and "bad.pack" in bad.failures[0] and "'data'" in bad.failures[0]
    assert failures.calls == [(bad, bad.failures[0])]
    assert state(worker, bad) == JobStatus("failed", bad.failures[0], 2 * MiB + 800, 2 * MiB + 800,
                                           state(worker, bad).seconds)
    assert bad.warmed == 0  # no warm-up of a failed segment
    assert state(worker, good).state == "done" and good.failures == [] and good.warmed == 1
    # the worker keeps serving
    again = PackUpkeep(tmp_path / "again.pack", write_pack(tmp_path / "again.pack", MiB, seed=2))
    worker.submit(again)
    assert worker.wait_idle(30)
    assert state(worker, again).state == "done"


class Broken:
    """An upkeep failing where `where` says, with exceptions of every kind."""

    def __init__(self, name: str, where: str, regions: list[np.ndarray] = ()):
        self.name, self.path, self.where = name, Path("/nowhere") / name, where
        self.regions = list(regions)
        self.failures: list[str] = []

    def resident_regions(self):
        if self.where == "regions":
            raise OSError("cannot list")
        return self.regions

    def verification_steps(self, pace=None):
        if self.where == "create":
            raise RuntimeError("no steps")
        if self.where == "bad_step":
            return iter(["not a number"])
        return self._steps()

    def _steps(self):
        yield 10
        if self.where in ("step", "mark_failed", "callback"):
            raise ValueError(f"corrupt structure in {self.name}")
        yield 20

    def mark_failed(self, reason: str) -> None:
        self.failures.append(reason)
        if self.where == "mark_failed":
            raise RuntimeError("mark_failed broke")

    def warm_up(self) -> None:
        if self.where == "warm_up":
            raise ImportError("numba is gone")


def test_no_exception_of_a_job_ends_the_thread(tmp_path, workers):
    def callback(upkeep, reason):
        if upkeep.where == "callback":
            raise RuntimeError("callback broke")

    worker = workers(rate=0, on_failure=callback)
    mapped = open_pack(tmp_path / "m.pack", write_pack(tmp_path / "m.pack", MiB))["data"]
    broken = [Broken(f"s-{where}", where) for where in
              ("regions", "create", "bad_step", "step", "mark_failed", "callback", "warm_up")]
    broken.insert(1, Broken("s-region", "region", [mapped[::2], mapped[:4096]]))  # a strided region fails
    for upkeep in broken:
        assert worker.submit(upkeep)
    good = PackUpkeep(tmp_path / "good.pack", write_pack(tmp_path / "good.pack", MiB))
    worker.submit(good)
    assert worker.wait_idle(30)

    states = {u.where: state(worker, u) for u in broken}
    assert states["regions"].state == "done" and states["region"].state == "done"  # populate is best effort
    assert states["region"].resident_bytes == 4096  # the failing region skipped, the next one populated
    assert states["create"].state == "failed" and states["create"].reason == "RuntimeError: no steps"
    assert states["bad_step"].state == "failed" and "ValueError" in states["bad_step"].reason
    for where in ("step", "mark_failed", "callback"):
        assert states[where].state == "failed"
        assert states[where].reason == f"ValueError: corrupt structure in s-{where}"
        assert broken[[u.where for u in broken].index(where)].failures == [states[where].reason]
    assert states["warm_up"].state == "done" and "numba is gone" in states["warm_up"].reason
    assert state(worker, good).state == "done" and good.warmed == 1
    assert len(worker_threads()) >= 1 and all(t.is_alive() for t in worker_threads())


@pytest.mark.parametrize("phase", ["populate", "verify"])
def test_cancel_stops_a_long_job_promptly_and_drops_it(tmp_path, workers, phase):
    # 16 MiB at 2 MiB/s: 8 s if not stopped (verify_pack paces every 8 MiB, populate every block)
    size = 16 * MiB
    upkeep = PackUpkeep(tmp_path / "long.pack", write_pack(tmp_path / "long.pack", size),
                        resident=phase == "populate", verify=phase == "verify")
    worker = workers(rate=2 * MiB, block_bytes=256 * 1024)
    worker.submit(upkeep)
    progress = "resident_bytes" if phase == "populate" else "verified_bytes"
    wait_for(lambda: state(worker, upkeep).state == "running" and getattr(state(worker, upkeep), progress) > 0)
    began = time.monotonic()
    worker.cancel(upkeep)
    assert worker.wait_idle(5)
    assert time.monotonic() - began < 1.0
    status = state(worker, upkeep)
    assert status.state == "cancelled" and getattr(status, progress) < size
    assert upkeep.failures == [] and upkeep.warmed == 0
    # the worker holds nothing of it: the segment (and its mapping) can go
    ref = weakref.ref(upkeep)
    upkeep = None
    gc.collect()
    assert ref() is None


def test_cancel_of_a_queued_job_drops_it_before_it_runs(tmp_path, workers):
    first = PackUpkeep(tmp_path / "a.pack", write_pack(tmp_path / "a.pack", MiB))
    second = PackUpkeep(tmp_path / "b.pack", write_pack(tmp_path / "b.pack", MiB))
    worker = workers(rate=0, paused=True)
    worker.submit(first)
    worker.submit(second)
    assert not worker.submit(first)  # already queued
    worker.cancel(first)
    worker.resume()
    assert worker.wait_idle(30)
    assert state(worker, first).state == "cancelled" and first.regions_asked == 0
    assert state(worker, second).state == "done" and second.regions_asked == 1


def test_pause_holds_queued_jobs_and_halts_a_running_one(tmp_path, workers):
    held = PackUpkeep(tmp_path / "held.pack", write_pack(tmp_path / "held.pack", MiB))
    worker = workers(rate=4 * MiB, paused=True, block_bytes=256 * 1024)
    worker.submit(held)
    time.sleep(0.3)
    assert state(worker, held).state == "queued" and held.regions_asked == 0
    worker.resume()
    wait_for(lambda: state(worker, held).resident_bytes > 0)
    worker.pause()
    time.sleep(0.1)  # the next checkpoint is at most a block (~60 ms at this rate) away
    halted_at = state(worker, held)
    time.sleep(0.4)
    assert state(worker, held).state == "running"
    assert (state(worker, held).resident_bytes, state(worker, held).verified_bytes) == (
        halted_at.resident_bytes, halted_at.verified_bytes)
    worker.resume()
    assert worker.wait_idle(30)
    assert state(worker, held).state == "done" and held.warmed == 1


def test_the_throttle_holds_both_phases_to_the_rate(tmp_path, workers):
    # 32 MiB populated + 32 MiB verified at 32 MiB/s: 2 s nominal; one phase unthrottled
    # would make it about 1 s
    upkeep = PackUpkeep(tmp_path / "rate.pack", write_pack(tmp_path / "rate.pack", 32 * MiB))
    worker = workers(rate=32 * MiB)
    began = time.monotonic()
    worker.submit(upkeep)
    assert worker.wait_idle(30)
    elapsed = time.monotonic() - began
    status = state(worker, upkeep)
    assert status.state == "done"
    assert status.resident_bytes == status.verified_bytes == 32 * MiB + 800
    assert elapsed >= 1.5, f"64 MiB at 32 MiB/s took {elapsed:.2f} s"


def test_unthrottled_is_not_slowed(tmp_path, workers):
    upkeep = PackUpkeep(tmp_path / "fast.pack", write_pack(tmp_path / "fast.pack", 32 * MiB))
    worker = workers(rate=0)
    worker.submit(upkeep)
    assert worker.wait_idle(30)
    assert state(worker, upkeep).seconds < 1.5  # the same 64 MiB as above, ~0.1 s warm


def test_close_stops_the_running_job_drops_the_queue_and_joins(tmp_path, workers):
    running = PackUpkeep(tmp_path / "a.pack", write_pack(tmp_path / "a.pack", 8 * MiB))
    queued = PackUpkeep(tmp_path / "b.pack", write_pack(tmp_path / "b.pack", MiB))
    worker = workers(rate=MiB, block_bytes=256 * 1024)
    worker.submit(running)
    worker.submit(queued)
    wait_for(lambda: state(worker, running).resident_bytes > 0)
    thread = [t for t in worker_threads() if t.is_alive()][-1]
    began = time.monotonic()
    assert worker.close(timeout=5)
    assert time.monotonic() - began < 1.0
    assert not thread.is_alive()
    assert state(worker, running).state == "cancelled" and state(worker, queued).state == "cancelled"
    assert queued.regions_asked == 0
    assert not worker.submit(queued) and worker.closed
    assert worker.close()  # idempotent


def test_a_worker_never_used_starts_no_thread_and_closes_at_once():
    before = len(worker_threads())
    worker = ResidencyWorker(paused=True)
    worker.resume()
    assert len(worker_threads()) == before
    assert worker.close(timeout=0.1)


class Paced:
    """Steps that read partly through `pace` (as verify_pack inside an array) and partly
    not (as a structure check), yielding running totals."""

    path = Path("/nowhere/paced")

    def resident_regions(self):
        return []

    def verification_steps(self, pace=None):
        for _ in range(3):
            pace(MiB)
        yield 3 * MiB  # the paced bytes again: counted once
        yield 5 * MiB  # 2 MiB not paced
        yield 4 * MiB  # a total never shrinks the count
        pace(MiB)
        yield 6 * MiB

    def mark_failed(self, reason):
        raise AssertionError(reason)


def test_bytes_reported_by_pace_and_by_the_totals_are_counted_once(workers):
    upkeep = Paced()
    worker = workers(rate=0)
    worker.submit(upkeep)
    assert worker.wait_idle(30)
    assert worker.status()["/nowhere/paced"] == JobStatus("done", None, 0, 6 * MiB,
                                                         worker.status()["/nowhere/paced"].seconds)


def test_a_real_immutable_segment_is_verified_and_failed(tmp_path, workers):
    """ImmutableSegment (P4) meets the contract: populated, verified with verify_pack paced
    by the worker, and failed with a reason naming the damaged pack, after which it
    refuses reads."""
    import cbor2

    from pydrant.segments.immutable_build import ImmutableBuilder
    from pydrant.segments.types import DenseVectorSpec, VectorSchema

    schema = VectorSchema(dense={"": DenseVectorSpec(size=16, distance="Cosine")}, sparse={})
    rng = np.random.default_rng(5)
    rows = rng.standard_normal((600, 16)).astype(np.float32)
    segments = []
    for name in ("good", "bad"):
        builder = ImmutableBuilder(tmp_path / name, schema, {})
        builder.add([(i, 1, {"": rows[i]}, cbor2.dumps({"i": i})) for i in range(len(rows))])
        segments.append(builder.finish({"dense": {"": {"hnsw": {"m": 8, "ef_construct": 32}}}, "sparse": {}},
                                       threads=1))
    good, bad = segments
    assert isinstance(good, Upkeep)
    table = bad._tables["vectors/_.pack"]
    flip_byte(bad.path / "vectors" / "_.pack", table.arrays["data"].offset + 99)
    failures = Failures()
    worker = workers(rate=0, on_failure=failures)
    worker.submit(bad)
    worker.submit(good)
    assert worker.wait_idle(30)

    bad_status, good_status = worker.status()[str(bad.path)], worker.status()[str(good.path)]
    assert good_status.state == "done" and good_status.verified_bytes > rows.nbytes
    assert good_status.resident_bytes >= rows.nbytes  # vectors not on_disk: resident
    assert bad_status.state == "failed" and "_.pack" in bad_status.reason
    assert failures.calls == [(bad, bad_status.reason)]
    with pytest.raises(ServiceError, match="_.pack"):
        bad.retrieve([1])
    assert good.retrieve([1])
    for segment in segments:
        segment.close()


@pytest.mark.parametrize(("value", "rate"), [
    (None, DEFAULT_RATE), ("", DEFAULT_RATE), ("0", 0), ("1048576", MiB), ("5e7", 50_000_000),
    ("-1", DEFAULT_RATE), ("fast", DEFAULT_RATE), ("inf", DEFAULT_RATE), ("nan", DEFAULT_RATE),
])
def test_rate_from_env(value, rate, caplog):
    environ = {} if value is None else {RATE_ENV: value}
    assert rate_from_env(environ) == rate
    if rate == DEFAULT_RATE and value:
        assert RATE_ENV in caplog.text


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError):
        ResidencyWorker(rate=-1)
    with pytest.raises(ValueError):
        ResidencyWorker(block_bytes=100)


async def test_the_server_holds_the_worker_until_ready_and_closes_it(tmp_path):
    from pydrant.collection.config import CollectionDefaults
    from pydrant.storage.toc import TableOfContent
    from tests.inprocess import running_app

    assert TableOfContent(tmp_path / "unused", CollectionDefaults()).residency.paused
    async with running_app(tmp_path) as client:
        toc = client.app.extensions["toc"]
        assert toc.ready and not toc.residency.paused and not toc.residency.closed
        r = await client.get("/readyz")
        assert r.status_code == 200
    assert toc.residency.closed
