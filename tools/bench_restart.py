"""Benchmark restart time and RSS of a 1M x 384 collection with five payload indexes (issue 17).

    python tools/bench_restart.py [--points N] [--restarts 3] [--out FILE]          # restart mode
    python tools/bench_restart.py --rss [--points N] [--configs float32,int8,binary] [--out FILE]

Data (tools/synth.py): points 0..99,999 are the real embeddings of ../shared/data (`--data`),
point i >= 100,000 is derived from real vector i mod 100,000 and one of its 16 nearest real
neighbours (seeded per block of 100,000; the neighbour table is cached in `--cache-dir`,
default /tmp/pydrant_synth_cache, never in the repository). Each point carries the payload of
tools/bench_payload_index.py (category, num, price, location, text; seeded per batch) and the
collection has its five indexes (keyword, integer, float, geo, text), created before the
upload. Queries: the first `--queries` rows of extra.f16.npy; exact top-10 by streaming the
blocks (Synth.ground_truth), off the clock.

Server: a real `pydrant serve` (tests/serverproc.py) on a temporary storage dir under /tmp,
removed at the end (`--keep` keeps it). Collection: Cosine, m 16, ef_construct 100, created
with `indexing_threshold: 0`, uploaded in 1,000-point batches (wait=true, one client), then
`PATCH indexing_threshold: 20000` and polled until green with every vector indexed: the
"threshold 0 then PATCH" flow of bench_server, the worst case for the optimization peak (one
1M appendable segment indexed at once). `--flow default` keeps the server's default
thresholds instead (the optimizer indexes while the upload runs).

Restart mode (default, configuration float32 in RAM): for each of SIGTERM and SIGKILL,
`--restarts` times: a WAL tail of 5,000 upserts (existing ids, new vectors, 1,000 per
request) and 100 single-point payload updates, then the signal right away (a SIGKILL loses
nothing acknowledged: the tail is replayed from the WAL), then a new server on the same
storage, timed from spawn to the first 200 of `/readyz` (polled every 10 ms) and to the
first answered search; the count, a payload update and a tail vector are checked after each
restart. The server's own "collection ...: ready in" log line is reported beside.

RSS mode (`--rss`): for each configuration (float32 in RAM; `on_disk` + int8 quantile 0.99
always_ram; `on_disk` + binary always_ram) a fresh server; VmRSS / RssAnon / RssFile of the
server are sampled every 0.25 s from /proc/<pid>/status. Reported: empty server, after the
upload, peak during the optimization (each field's own maximum over the build window),
green, after a restart (SIGTERM) and after 1,000 searches at `--ef` with the default search
params (quantization on, rescore and oversampling unset), plus recall@10 vs the exact truth
at default params and with `quantization.ignore`, the overlap of the two answers, and the
raw sizes (float32 vectors, int8 / binary codes) and the storage directory's size.

The tool refuses to start when the free disk of the storage's file system is below twice
its estimate (three float32 copies of the vectors at the optimization peak, payloads, WAL).
It prints progress lines, a markdown table at the end, and writes every figure as JSON to
`--out`. The load average is printed at each phase: the benchmark machine is shared.
"""

from __future__ import annotations

import argparse
import os
import platform
import queue
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import http.client
from pathlib import Path

import numpy as np
import orjson

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "tools"))
from bench_payload_index import INDEXES, VOCABULARY  # noqa: E402
from benchlib import Client, machine  # noqa: E402
from serverproc import ServerProcess  # noqa: E402  (the test harness's launcher, reused)
from synth import Synth, load_queries  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "data"
DEFAULT_CACHE = Path("/tmp/pydrant_synth_cache")
COLLECTION = "bench_restart"
DIM = 384
LIMIT = 10
BATCH = 1000
TAIL_UPSERTS = 5000
TAIL_PAYLOAD_UPDATES = 100
# vectors of the WAL tail come from points past the collection (never uploaded): new values
TAIL_VECTOR_OFFSET = 50_000_000
PATCH_THRESHOLD_KB = 20_000
SAMPLE_SECONDS = 0.25
READY_POLL_SECONDS = 0.01
STARTUP_TIMEOUT = 1800.0

CONFIGS = {
    "float32": {"vectors": {"size": DIM, "distance": "Cosine"}},
    "int8": {
        "vectors": {"size": DIM, "distance": "Cosine", "on_disk": True},
        "quantization_config": {"scalar": {"type": "int8", "quantile": 0.99, "always_ram": True}},
    },
    "binary": {
        "vectors": {"size": DIM, "distance": "Cosine", "on_disk": True},
        "quantization_config": {"binary": {"always_ram": True}},
    },
}
CONFIG_LABELS = {
    "float32": "float32 in RAM",
    "int8": "`on_disk` + int8 quantile 0.99 always_ram",
    "binary": "`on_disk` + binary always_ram",
}


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def say(text: str) -> None:
    print(text, flush=True)


# -- memory of the server ------------------------------------------------------------------------

RSS_FIELDS = ("VmRSS", "RssAnon", "RssFile")


def rss_mib(pid: int) -> dict[str, float]:
    """VmRSS, RssAnon and RssFile of `pid` in MiB (empty when the process is gone)."""
    out: dict[str, float] = {}
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return out
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        if name in RSS_FIELDS:
            out[name] = int(rest.split()[0]) / 1024
    return out


class RssSampler(threading.Thread):
    """Samples the current server's memory every SAMPLE_SECONDS; the server's pid may
    change (restarts): `pid` is read at every tick."""

    def __init__(self):
        super().__init__(daemon=True)
        self.pid: int | None = None
        self.samples: list[tuple[float, dict[str, float]]] = []
        self.stop_event = threading.Event()

    def run(self) -> None:
        while not self.stop_event.wait(SAMPLE_SECONDS):
            if self.pid is not None and (values := rss_mib(self.pid)):
                self.samples.append((time.perf_counter(), values))

    def peak(self, since: float, until: float) -> dict[str, float]:
        """Each field's own maximum over the window (they need not peak together)."""
        window = [v for t, v in self.samples if since <= t <= until]
        return {f: max((v[f] for v in window), default=float("nan")) for f in RSS_FIELDS}

    def close(self) -> None:
        self.stop_event.set()
        self.join()


# -- server --------------------------------------------------------------------------------------


class BenchServer(ServerProcess):
    """ServerProcess that times its start: spawn -> first 200 of /readyz, polled every 10 ms
    over one plain socket per poll (no client library cost in the measurement)."""

    spawned_at = 0.0
    ready_at = 0.0

    def start(self) -> BenchServer:
        self.spawned_at = time.perf_counter()
        super().start()
        return self

    def wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1.0)
                conn.request("GET", "/readyz")
                status = conn.getresponse().status
                conn.close()
                if status == 200:
                    self.ready_at = time.perf_counter()
                    return
            except OSError:
                pass
            time.sleep(READY_POLL_SECONDS)
        raise RuntimeError(f"server not ready after {STARTUP_TIMEOUT}s:\n{self.log_tail()}")

    def stop(self, timeout: float = 600.0) -> int:
        return super().stop(timeout)


READY_LINE = re.compile(r"collection (\S+): ready in ([0-9.]+) s: (.*)")


def last_ready_line(server: ServerProcess) -> str | None:
    """The server's own report of the collection's open ("ready in ... s: ..., N WAL
    operations replayed"), the last one in the log."""
    text = server.log_path.read_text(errors="replace") if server.log_path.exists() else ""
    found = [m.group(0) for m in READY_LINE.finditer(text) if m.group(1) == COLLECTION]
    return found[-1] if found else None


# -- data ----------------------------------------------------------------------------------------


def payloads(seed: int, start: int, stop: int) -> list[dict]:
    """The payloads of points start..stop-1, seeded by (seed, start): bench_payload_index's
    fields (category of 100 values, num, price, location, 3-7 words of text)."""
    rng = np.random.default_rng([seed, 7, start])
    n = stop - start
    category = rng.integers(0, 100, n).tolist()
    num = rng.integers(0, 1_000_000, n).tolist()
    price = np.round(rng.uniform(0, 1000, n), 2).tolist()
    lon = np.round(rng.uniform(-180, 180, n), 6).tolist()
    lat = np.round(rng.uniform(-90, 90, n), 6).tolist()
    lengths = rng.integers(3, 8, n)
    words = rng.integers(0, len(VOCABULARY), int(lengths.sum())).tolist()
    out, pos = [], 0
    for j in range(n):
        text = " ".join(VOCABULARY[w] for w in words[pos : pos + lengths[j]])
        pos += int(lengths[j])
        out.append(
            {
                "category": f"cat_{category[j]}",
                "num": num[j],
                "price": price[j],
                "location": {"lon": lon[j], "lat": lat[j]},
                "text": text,
            }
        )
    return out


def batch_body(ids: list[int], vectors: np.ndarray, payload: list[dict] | None) -> bytes:
    batch: dict = {"ids": ids, "vectors": vectors}
    if payload is not None:
        batch["payloads"] = payload
    return orjson.dumps({"batch": batch}, option=orjson.OPT_SERIALIZE_NUMPY)


def disk_estimate(points: int) -> int:
    """Bytes the run may hold at its peak: three float32 copies of the vectors (the
    appendable segment, the segment being built, the graph's vectors.npy), ~600 B of payload
    and index per point in RocksDB and the WAL, and 1 GiB of slack (WAL preallocation,
    compaction)."""
    return points * (3 * DIM * 4 + 600) + (1 << 30)


# -- phases --------------------------------------------------------------------------------------


def create_collection(client: Client, config: str, flow: str) -> None:
    body = dict(CONFIGS[config])
    body["hnsw_config"] = {"m": 16, "ef_construct": 100}
    if flow == "patch":
        body["optimizers_config"] = {"indexing_threshold": 0}
    client.json("PUT", f"/collections/{COLLECTION}", body)
    for field, schema in INDEXES:
        client.json("PUT", f"/collections/{COLLECTION}/index?wait=true", {"field_name": field, "field_schema": schema})


def upload(client: Client, synth: Synth, points: int, seed: int) -> float:
    """Every point with wait=true; bodies come from a producer thread (overlapped)."""
    bodies: queue.Queue = queue.Queue(maxsize=4)

    def produce() -> None:
        for start in range(0, points, BATCH):
            stop = min(points, start + BATCH)
            bodies.put(batch_body(list(range(start, stop)), synth.points(start, stop), payloads(seed, start, stop)))
        bodies.put(None)

    producer = threading.Thread(target=produce, daemon=True)
    started = time.perf_counter()
    producer.start()
    done, next_report = 0, started + 30
    while (raw := bodies.get()) is not None:
        client.call("PUT", f"/collections/{COLLECTION}/points?wait=true", raw)
        done += BATCH
        if time.perf_counter() > next_report:
            say(f"  uploaded {min(done, points):,} points, {time.perf_counter() - started:.0f} s")
            next_report += 30
    elapsed = time.perf_counter() - started
    producer.join()
    count = client.json("POST", f"/collections/{COLLECTION}/points/count", {"exact": True})["count"]
    if count != points:
        raise RuntimeError(f"collection holds {count} points, expected {points}")
    return elapsed


def wait_green(client: Client, points: int, flow: str, timeout: float) -> tuple[float, float, dict]:
    """PATCH the threshold (flow "patch") and poll until green with every vector indexed.
    Returns (window start, window end, collection info)."""
    started = time.perf_counter()
    if flow == "patch":
        client.json("PATCH", f"/collections/{COLLECTION}", {"optimizers_config": {"indexing_threshold": PATCH_THRESHOLD_KB}})
    next_report = started + 30
    while True:
        info = client.json("GET", f"/collections/{COLLECTION}")
        now = time.perf_counter()
        status, indexed = info["status"], info.get("indexed_vectors_count") or 0
        if status == "red":
            raise RuntimeError(f"collection went red: {info.get('optimizer_status')}")
        if status == "green" and indexed >= points:
            return started, now, info
        if now - started > timeout:
            raise RuntimeError(f"not green after {timeout:.0f} s: {status}, {indexed:,} indexed")
        if now > next_report:
            say(f"  building: {now - started:.0f} s, status {status}, indexed {indexed:,}")
            next_report += 30
        time.sleep(SAMPLE_SECONDS)


def search_bodies(queries: np.ndarray, ef: int, extra: dict | None = None) -> list[bytes]:
    params = {"hnsw_ef": ef, **(extra or {})}
    return [
        orjson.dumps({"vector": q, "limit": LIMIT, "params": params}, option=orjson.OPT_SERIALIZE_NUMPY) for q in queries
    ]


def run_searches(client: Client, bodies: list[bytes]) -> tuple[list[list[int]], float]:
    """(ids of each answer, queries per second)."""
    path = f"/collections/{COLLECTION}/points/search"
    found = []
    started = time.perf_counter()
    for raw in bodies:
        hits = orjson.loads(client.call("POST", path, raw))["result"]
        found.append([h["id"] for h in hits])
    return found, len(bodies) / (time.perf_counter() - started)


def recall_at(found: list[list[int]], truth: np.ndarray) -> float:
    hits = sum(len(set(f) & set(t.tolist())) for f, t in zip(found, truth))
    return hits / truth.size


def overlap(a: list[list[int]], b: list[list[int]]) -> float:
    return sum(len(set(x) & set(y)) for x, y in zip(a, b)) / (LIMIT * len(a))


def dir_bytes(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
            except OSError:
                pass  # a file the server removed meanwhile
    return total


def prepare(args, synth: Synth, config: str, storage: Path, sampler: RssSampler | None) -> tuple[BenchServer, dict]:
    """A server with the collection uploaded and green; the figures of the way there."""
    storage.parent.mkdir(parents=True, exist_ok=True)  # the server's log goes beside the storage
    server = BenchServer(storage, extra_env={"PYDRANT__LOG_LEVEL": "INFO"}).start()
    try:
        return server, upload_and_index(args, synth, config, server, sampler)
    except BaseException:
        server.stop()  # a failed or interrupted run must not leave its server behind
        raise


def upload_and_index(args, synth: Synth, config: str, server: BenchServer, sampler: RssSampler | None) -> dict:
    figures: dict = {"empty_server_ready_s": server.ready_at - server.spawned_at}
    if sampler is not None:
        sampler.pid = server.proc.pid
    figures["rss_empty"] = rss_mib(server.proc.pid)
    client = Client(server.port, timeout=600)
    create_collection(client, config, args.flow)
    say(f"[{config}] uploading {args.points:,} points (load average {loadavg()})")
    figures["upload_s"] = upload(client, synth, args.points, args.seed)
    time.sleep(1.0)
    figures["rss_uploaded"] = rss_mib(server.proc.pid)
    say(f"[{config}] uploaded in {figures['upload_s']:.1f} s ({args.points / figures['upload_s']:,.0f} points/s), RSS {fmt_rss(figures['rss_uploaded'])}; building (load average {loadavg()})")
    since, until, info = wait_green(client, args.points, args.flow, args.build_timeout)
    figures["build_s"] = until - since
    figures["rss_green"] = rss_mib(server.proc.pid)
    if sampler is not None:
        figures["rss_build_peak"] = sampler.peak(since, until)
    figures["segments"] = info.get("segments_count")
    say(f"[{config}] green after {figures['build_s']:.1f} s, {figures['segments']} segments, RSS {fmt_rss(figures['rss_green'])} (load average {loadavg()})")
    client.close()
    return figures


def fmt_rss(values: dict[str, float]) -> str:
    if not values:
        return "n/a"
    return f"{values['VmRSS']:,.0f} MiB (anon {values['RssAnon']:,.0f}, file {values['RssFile']:,.0f})"


# -- restart mode ---------------------------------------------------------------------------------


def write_tail(client: Client, synth: Synth, points: int, round_no: int) -> tuple[int, int]:
    """5,000 upserts of existing ids with new vectors and 100 payload updates; returns
    (an upserted id, a payload-updated id) for the check after the restart."""
    first_id = (round_no * TAIL_UPSERTS) % max(1, points - TAIL_UPSERTS)
    for start in range(first_id, first_id + TAIL_UPSERTS, BATCH):
        ids = list(range(start, start + BATCH))
        vectors = synth.points(TAIL_VECTOR_OFFSET + start, TAIL_VECTOR_OFFSET + start + BATCH)
        client.call("PUT", f"/collections/{COLLECTION}/points?wait=true", batch_body(ids, vectors, payloads(round_no, start, start + BATCH)))
    step = max(1, points // TAIL_PAYLOAD_UPDATES)
    updated = [(k * step + round_no) % points for k in range(TAIL_PAYLOAD_UPDATES)]
    for point_id in updated:
        body = {"payload": {"tail_round": round_no}, "points": [point_id]}
        client.json("POST", f"/collections/{COLLECTION}/points/payload?wait=true", body)
    return first_id, updated[-1]


def check_after_restart(client: Client, synth: Synth, points: int, round_no: int, upserted: int, updated: int) -> None:
    count = client.json("POST", f"/collections/{COLLECTION}/points/count", {"exact": True})["count"]
    if count != points:
        raise RuntimeError(f"after restart: {count} points, expected {points}")
    point = client.json("GET", f"/collections/{COLLECTION}/points/{updated}")
    if point["payload"].get("tail_round") != round_no:
        raise RuntimeError(f"after restart: point {updated} lost its payload update: {point['payload']}")
    got = client.json("POST", f"/collections/{COLLECTION}/points", {"ids": [upserted], "with_vector": True})[0]["vector"]
    want = synth.points(TAIL_VECTOR_OFFSET + upserted, TAIL_VECTOR_OFFSET + upserted + 1)[0]
    if not np.allclose(np.asarray(got, dtype=np.float32), want, atol=1e-5):
        raise RuntimeError(f"after restart: point {upserted} does not hold its tail vector")


def timed_restart(server: BenchServer, how: str, search_body: bytes) -> dict:
    """Stop by `how` (SIGTERM: wait for the exit; SIGKILL), start, time spawn -> /readyz ->
    first search."""
    stop_started = time.perf_counter()
    if how == "SIGTERM":
        code = server.stop()
    else:
        server.proc.send_signal(signal.SIGKILL)
        code = server.proc.wait()
    stopped_s = time.perf_counter() - stop_started
    server.start()
    client = Client(server.port, timeout=600)
    client.call("POST", f"/collections/{COLLECTION}/points/search", search_body)
    first_search = time.perf_counter()
    client.close()
    return {
        "signal": how,
        "exit_code": code,
        "stop_s": stopped_s,
        "ready_s": server.ready_at - server.spawned_at,
        "first_search_s": first_search - server.spawned_at,
        "server_log": last_ready_line(server),
        "rss_after": rss_mib(server.proc.pid),
    }


def restart_mode(args, synth: Synth, queries: np.ndarray, tmp: Path) -> dict:
    server, figures = prepare(args, synth, "float32", tmp / "storage", None)
    search_body = search_bodies(queries[:1], args.ef)[0]
    runs: list[dict] = []
    try:
        # one search before the first restart, so the Numba cache holds the search kernels (a
        # fresh checkout would otherwise compile them in the first restart's first search)
        client = Client(server.port, timeout=600)
        client.call("POST", f"/collections/{COLLECTION}/points/search", search_body)
        client.close()
        round_no = 0
        for how in ("SIGTERM", "SIGKILL"):
            for _ in range(args.restarts):
                round_no += 1
                client = Client(server.port, timeout=600)
                tail_started = time.perf_counter()
                upserted, updated = write_tail(client, synth, args.points, round_no)
                tail_s = time.perf_counter() - tail_started
                client.close()
                run = timed_restart(server, how, search_body)
                run["tail_s"] = tail_s
                run["load"] = loadavg()
                client = Client(server.port, timeout=600)
                check_after_restart(client, synth, args.points, round_no, upserted, updated)
                client.close()
                runs.append(run)
                say(
                    f"  {how} #{round_no}: stop {run['stop_s']:.2f} s, ready {run['ready_s']:.2f} s, first search "
                    f"{run['first_search_s']:.2f} s, RSS {fmt_rss(run['rss_after'])}, load {run['load']} | {run['server_log']}"
                )
    finally:
        server.stop()
    figures["restarts"] = runs
    return figures


# -- rss mode --------------------------------------------------------------------------------------


def rss_config(args, synth: Synth, queries: np.ndarray, truth: np.ndarray, config: str, tmp: Path) -> dict:
    sampler = RssSampler()
    sampler.start()
    storage = tmp / config / "storage"
    server, figures = prepare(args, synth, config, storage, sampler)
    try:
        run = timed_restart(server, "SIGTERM", search_bodies(queries[:1], args.ef)[0])
        time.sleep(1.0)
        figures["restart"] = run
        figures["rss_restarted"] = rss_mib(server.proc.pid)
        say(f"[{config}] restarted: ready {run['ready_s']:.2f} s, RSS {fmt_rss(figures['rss_restarted'])}")
        client = Client(server.port, timeout=600)
        default_found, default_qps = run_searches(client, search_bodies(queries, args.ef))
        figures["rss_searched"] = rss_mib(server.proc.pid)
        ignore_found, ignore_qps = run_searches(client, search_bodies(queries, args.ef, {"quantization": {"ignore": True}}))
        figures["rss_searched_twice"] = rss_mib(server.proc.pid)
        client.close()
        figures["recall_default"] = recall_at(default_found, truth)
        figures["recall_ignore"] = recall_at(ignore_found, truth)
        figures["overlap_default_ignore"] = overlap(default_found, ignore_found)
        figures["qps_default"], figures["qps_ignore"] = default_qps, ignore_qps
        figures["rss_hwm_after_restart"] = vm_hwm(server.proc.pid)
        figures["storage_bytes"] = dir_bytes(storage)
        say(
            f"[{config}] after {len(queries)} searches RSS {fmt_rss(figures['rss_searched'])}; recall@10 default "
            f"{figures['recall_default']:.4f}, ignore {figures['recall_ignore']:.4f} (load average {loadavg()})"
        )
    finally:
        server.stop()
        sampler.close()
        if not args.keep:  # three configurations at 1M would otherwise hold ~15 GB at the end
            shutil.rmtree(storage.parent, ignore_errors=True)
    return figures


def vm_hwm(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def raw_sizes(points: int) -> dict[str, float]:
    return {
        "float32": points * DIM * 4 / 2**20,
        "int8": points * DIM / 2**20,
        "binary": points * DIM / 8 / 2**20,
    }


# -- report ------------------------------------------------------------------------------------------


def span(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} s ({min(values):.2f}–{max(values):.2f})"


def report_restart(results: dict) -> None:
    r = results["restart"]
    say("")
    say(f"| {results['points']:,} × {DIM}, five payload indexes | value |")
    say("|---|---|")
    say(f"| upload (1,000-point batches, wait=true) | {r['upload_s']:.1f} s ({results['points'] / r['upload_s']:,.0f} points/s) |")
    say(f"| indexing (PATCH to green) | {r['build_s']:.1f} s, {r['segments']} segments |")
    say(f"| empty server, spawn → `/readyz` | {r['empty_server_ready_s']:.2f} s |")
    say("")
    say("| restart after | runs | spawn → `/readyz` median (range) | spawn → first search | stop (signal → exit) | VmRSS after |")
    say("|---|---|---|---|---|---|")
    for how in ("SIGTERM", "SIGKILL"):
        runs = [x for x in r["restarts"] if x["signal"] == how]
        if not runs:
            continue
        say(
            f"| {how} + tail of {TAIL_UPSERTS:,} upserts, {TAIL_PAYLOAD_UPDATES} payload updates | {len(runs)} | "
            f"{span([x['ready_s'] for x in runs])} | {span([x['first_search_s'] for x in runs])} | "
            f"{span([x['stop_s'] for x in runs])} | {statistics.median([x['rss_after']['VmRSS'] for x in runs]):,.0f} MiB |"
        )
    for x in r["restarts"]:
        say(f"- {x['signal']}: {x['server_log']}")


def report_rss(results: dict) -> None:
    sizes = raw_sizes(results["points"])
    say("")
    say(
        f"Raw sizes for {results['points']:,} × {DIM}: float32 {sizes['float32']:,.0f} MiB, int8 codes "
        f"{sizes['int8']:,.0f} MiB, binary codes {sizes['binary']:,.0f} MiB."
    )
    say("")
    say("| MiB: VmRSS / RssAnon / RssFile | " + " | ".join(CONFIG_LABELS[c] for c in results["rss"]) + " |")
    say("|---|" + "---|" * len(results["rss"]))
    rows = [
        ("empty server", "rss_empty"),
        ("after upload", "rss_uploaded"),
        ("peak during optimization", "rss_build_peak"),
        ("green", "rss_green"),
        ("after restart", "rss_restarted"),
        (f"after {results['queries']:,} searches", "rss_searched"),
    ]
    for label, key in rows:
        cells = []
        for figures in results["rss"].values():
            v = figures.get(key) or {}
            cells.append(f"{v.get('VmRSS', float('nan')):,.0f} / {v.get('RssAnon', float('nan')):,.0f} / {v.get('RssFile', float('nan')):,.0f}")
        say(f"| {label} | " + " | ".join(cells) + " |")
    for label, key, form in (
        ("RssAnon after searches − empty server", None, None),
        (f"recall@10, hnsw_ef {results['ef']}, default params", "recall_default", "{:.4f}"),
        (f"recall@10, hnsw_ef {results['ef']}, `quantization.ignore`", "recall_ignore", "{:.4f}"),
        ("overlap of the two answers", "overlap_default_ignore", "{:.4f}"),
        ("queries/s default / ignore", None, None),
        ("spawn → `/readyz` after restart", None, None),
        ("upload / build", None, None),
        ("storage on disk", "storage_bytes", None),
    ):
        cells = []
        for figures in results["rss"].values():
            if label.startswith("RssAnon"):
                cells.append(f"{figures['rss_searched']['RssAnon'] - figures['rss_empty']['RssAnon']:,.0f}")
            elif label.startswith("queries/s"):
                cells.append(f"{figures['qps_default']:,.0f} / {figures['qps_ignore']:,.0f}")
            elif label.startswith("spawn"):
                cells.append(f"{figures['restart']['ready_s']:.2f} s")
            elif label.startswith("upload"):
                cells.append(f"{figures['upload_s']:.0f} s / {figures['build_s']:.0f} s")
            elif key == "storage_bytes":
                cells.append(f"{figures[key] / 2**20:,.0f} MiB")
            else:
                cells.append(form.format(figures[key]))
        say(f"| {label} | " + " | ".join(cells) + " |")


# -- main --------------------------------------------------------------------------------------------


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="directory of base_a/base_b/extra .f16.npy")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help="where synth caches its neighbour table")
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--ef", type=int, default=64, help="hnsw_ef of the searches")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--restarts", type=int, default=3, help="restarts per signal (restart mode)")
    parser.add_argument("--rss", action="store_true", help="RSS mode: the three configurations")
    parser.add_argument("--configs", default="float32,int8,binary", help="RSS mode: configurations, comma-separated")
    parser.add_argument("--flow", choices=("patch", "default"), default="patch")
    parser.add_argument("--build-timeout", type=float, default=3600)
    parser.add_argument("--tmp", type=Path, default=Path("/tmp"), help="parent of the temporary storage directory")
    parser.add_argument("--keep", action="store_true", help="keep the storage directory")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    # SIGTERM unwinds like Ctrl-C: the finally blocks stop the server and remove the storage
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = [c for c in configs if c not in CONFIGS]
    if unknown:
        parser.error(f"unknown configuration(s) {unknown}; known: {sorted(CONFIGS)}")
    if args.points < 100 or args.points % BATCH:
        parser.error(f"--points must be a multiple of {BATCH}")

    need = 2 * disk_estimate(args.points)
    free = shutil.disk_usage(args.tmp).free
    if free < need:
        say(f"refusing to run: {free / 2**30:.1f} GiB free under {args.tmp}, need 2 × the estimate = {need / 2**30:.1f} GiB")
        return 2

    command = "python tools/bench_restart.py " + " ".join(sys.argv[1:] if argv is None else argv)
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    say(f"machine: {machine()}, python {platform.python_version()}, numpy {np.__version__}, commit {commit}")
    say(f"command: {command}")
    import pydrant  # the code the server runs (PYTHONPATH reaches the server too)

    say(f"pydrant imported from {Path(pydrant.__file__).parent}")
    say(f"load average at start: {loadavg()}; disk free {free / 2**30:.0f} GiB (need {need / 2**30:.1f})")

    started = time.perf_counter()
    synth = Synth.from_data_dir(args.data, seed=args.seed, cache_dir=args.cache_dir)
    synth.neighbours()
    queries = load_queries(args.data, args.queries)
    say(f"data: neighbour table ready in {time.perf_counter() - started:.1f} s")
    results: dict = {
        "command": command, "machine": machine(), "commit": commit, "points": args.points, "queries": args.queries,
        "ef": args.ef, "flow": args.flow, "load_start": loadavg(), "raw_mib": raw_sizes(args.points),
    }
    tmp = Path(tempfile.mkdtemp(prefix="bench_restart_", dir=args.tmp))
    try:
        if args.rss:
            started = time.perf_counter()
            truth, _ = synth.ground_truth(queries, args.points, LIMIT)
            say(f"exact top-{LIMIT} of {args.queries} queries over {args.points:,} points in {time.perf_counter() - started:.1f} s")
            results["rss"] = {}
            for config in configs:
                results["rss"][config] = rss_config(args, synth, queries, truth, config, tmp)
                write_out(args.out, results)
        else:
            results["restart"] = restart_mode(args, synth, queries, tmp)
        results["load_end"] = loadavg()
        write_out(args.out, results)
    finally:
        if args.keep:
            say(f"storage kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    if args.rss:
        report_rss(results)
    else:
        report_restart(results)
    say(f"\nload average at start {results['load_start']}, at the end {results['load_end']}")
    return 0


def write_out(path: Path | None, results: dict) -> None:
    if path is not None:
        path.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY))


if __name__ == "__main__":
    raise SystemExit(main())
