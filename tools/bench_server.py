"""Benchmark indexed (HNSW) search through REST on a large collection, end to end.

    python tools/bench_server.py [--data DIR] [--points N] [--queries Q] [--ef 64,128] [--server-env K=V]

1. Data (deterministic, in the client): the 100,000 real 384-d sentence embeddings of
   ../shared/data (base_a + base_b, float16 -> float32, renormalised), then perturbed
   copies up to N points (default 1,000,000): copy k (k = 1, 2, ...) of real vector j is
   id k*100,000 + j = normalise(real[j] + noise), noise ~ N(0, NOISE^2) per coordinate
   from a generator seeded with (SEED, k). With NOISE 0.025 a copy has cosine ~0.89 to its
   original and ~0.8 to the other copies of it (a real vector's nearest real neighbour:
   median cosine ~0.68). Fewer than 100,000 points take the first N real vectors only.
   Queries: the first Q (1,000) rows of extra.f16.npy (passages not in the set).
   Exact top-10 ground truth with NumPy in blocks of 100,000 rows (off the clock).
2. Server: a real `pydrant serve` (tests/serverproc.py) on a free port, storage in a
   temporary directory under /tmp (deleted at the end), log level INFO.
3. Upload: collection Cosine float32, hnsw m / ef_construct (16 / 100), with
   `optimizers_config.indexing_threshold: 0` (no indexing while loading); columnar
   `batch` bodies of 1,000 points with a small payload {"src": j, "copy": k},
   `PUT /points?wait=true` each, one connection; bodies are encoded by a producer thread
   (overlapped with the requests). Points/s and the exact count are checked.
4. Build: idle probes for a few seconds (baseline), then `PATCH /collections/{c}` with
   `indexing_threshold` 20,000 kB; until the collection is green with every vector
   indexed, a probe thread (its own connection) sends `GET /healthz` and `GET
   /collections/{c}/points/{random id}` every ~20 ms and records each latency; the main
   thread polls collection info every 0.25 s and samples the server's RSS. Build time =
   PATCH sent to green with indexed_vectors_count = N.
5. Search: `POST /collections/{c}/points/search` {"vector", "limit": 10, "params":
   {"hnsw_ef": EF}}, bodies encoded before the clock, keep-alive connections
   (tools/benchlib.py). Per EF: warm-up, then Q queries from one client (p50/p90/p99,
   QPS, recall@10 vs exact, server `time` p50, CPU ms per query of server and client);
   at the main EF (the first of --ef) also 2 clients in 2 threads, each sending all Q
   queries (total QPS; scaling = 2-client QPS / 1-client QPS). At the main EF, 1-client
   and 2-client runs alternate for --rounds (3) rounds and the median-QPS run of each
   is reported (other work on a shared machine comes and goes); the share of the
   machine's CPU that other processes used is printed for every run.
6. Prints a Markdown summary with pass/fail against the targets: single-client p50
   < 5 ms, 2-client scaling >= 1.6x, probe p99 during the build < 50 ms; plus upload
   time, build time, RSS, and the server log's optimizer / warning lines.

`--points 50000` (no copies) or `--points 100000` make quick runs.
"""

from __future__ import annotations

import argparse
import os
import platform
import queue
import random
import re
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import orjson

from pydrant.config import DEFAULTS

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "tools"))
from benchlib import Client, machine  # noqa: E402
from serverproc import ServerProcess  # noqa: E402  (the test harness's launcher, reused)

DEFAULT_DATA = REPO.parent / "shared" / "data"
COLLECTION = "bench_server"
DIM = 384
LIMIT = 10
REAL = 100_000  # real vectors per copy block
WARMUP = 50
TRUTH_BLOCK = 100_000

TARGET_P50_MS = 5.0
TARGET_SCALING = 1.6
TARGET_PROBE_P99_MS = 50.0


# -- data --------------------------------------------------------------------------------------


def unit(vectors: np.ndarray) -> np.ndarray:
    vectors = vectors.astype(np.float32, copy=False)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def load_data(data_dir: Path, points: int, queries: int, noise: float, seed: int):
    """(base N x 384 unit float32, queries Q x 384 unit float32)."""
    files = [data_dir / "base_a.f16.npy", data_dir / "base_b.f16.npy", data_dir / "extra.f16.npy"]
    missing = [str(p) for p in files if not p.exists()]
    if missing:
        raise SystemExit(f"data files missing: {', '.join(missing)} (pass --data DIR)")
    real = unit(np.concatenate([np.load(files[0]), np.load(files[1])]).astype(np.float32))
    if len(real) != REAL:
        raise SystemExit(f"expected {REAL} base vectors, found {len(real)}")
    base = np.empty((points, DIM), dtype=np.float32)
    first = min(points, REAL)
    base[:first] = real[:first]
    for k, start in enumerate(range(REAL, points, REAL), start=1):
        n = min(REAL, points - start)
        rng = np.random.default_rng([seed, k])
        block = real[:n] + rng.standard_normal((n, DIM), dtype=np.float32) * np.float32(noise)
        base[start : start + n] = unit(block)
    query = unit(np.load(files[2])[:queries].astype(np.float32))
    if len(query) < queries:
        raise SystemExit(f"only {len(query)} query vectors in {files[2]}")
    return base, query


def exact_top10(base: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Exact top-10 ids (best first) of each query, in blocks of TRUTH_BLOCK base rows."""
    cand_ids, cand_scores = [], []
    for start in range(0, len(base), TRUTH_BLOCK):
        scores = queries @ base[start : start + TRUTH_BLOCK].T
        k = min(LIMIT, scores.shape[1])
        part = np.argpartition(scores, scores.shape[1] - k, axis=1)[:, -k:]
        cand_ids.append(part + start)
        cand_scores.append(np.take_along_axis(scores, part, axis=1))
    ids, scores = np.concatenate(cand_ids, axis=1), np.concatenate(cand_scores, axis=1)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :LIMIT]
    return np.take_along_axis(ids, order, axis=1)


# -- small helpers -------------------------------------------------------------------------------


def pct(samples, p) -> float:
    return float(np.percentile(np.asarray(samples) * 1000.0, p)) if len(samples) else float("nan")


def summary(samples) -> str:
    if not samples:
        return "no samples"
    return (
        f"n {len(samples)}, p50 {pct(samples, 50):.2f} ms, p99 {pct(samples, 99):.2f} ms, "
        f"max {max(samples) * 1000:.1f} ms"
    )


def rss_mib(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """utime + stime of all threads of `pid`, in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    parts = stat[stat.rindex(")") + 2 :].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def machine_jiffies() -> tuple[int, int]:
    """(busy jiffies of the whole machine, all jiffies) from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    return sum(fields) - fields[3] - fields[4], sum(fields)


class OthersShare:
    """Share of the machine's CPU time (all cores) used by processes other than `pids`
    between construction and `value()` (0 = only the benchmark ran)."""

    def __init__(self, pids: list[int]):
        self.pids = pids
        self.start = (*machine_jiffies(), self._ours())

    def _ours(self) -> float:
        return sum(cpu_seconds(p) for p in self.pids) * os.sysconf("SC_CLK_TCK")

    def value(self) -> float:
        busy, total = machine_jiffies()
        ours = self._ours()
        d_total = total - self.start[1]
        if d_total <= 0:
            return float("nan")
        return max(0.0, ((busy - self.start[0]) - (ours - self.start[2])) / d_total)


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


# -- upload --------------------------------------------------------------------------------------


def create_collection(client: Client, m: int, ef_construct: int) -> None:
    body = {
        "vectors": {"size": DIM, "distance": "Cosine", "datatype": "float32"},
        "hnsw_config": {"m": m, "ef_construct": ef_construct},
        "optimizers_config": {"indexing_threshold": 0},
    }
    client.json("PUT", f"/collections/{COLLECTION}", body)


def upload(client: Client, base: np.ndarray, batch: int) -> float:
    """Upload every point with wait=true; bodies come from a producer thread."""
    bodies: queue.Queue = queue.Queue(maxsize=4)

    def produce():
        for start in range(0, len(base), batch):
            chunk = base[start : start + batch]
            ids = list(range(start, start + len(chunk)))
            payloads = [{"src": i % REAL, "copy": i // REAL} for i in ids]
            body = {"batch": {"ids": ids, "vectors": chunk, "payloads": payloads}}
            bodies.put(orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY))
        bodies.put(None)

    producer = threading.Thread(target=produce, daemon=True)
    started = time.perf_counter()
    producer.start()
    done, next_report = 0, started + 30
    while (raw := bodies.get()) is not None:
        client.call("PUT", f"/collections/{COLLECTION}/points?wait=true", raw)
        done += batch
        if time.perf_counter() > next_report:
            print(f"  uploaded {min(done, len(base)):,} points, {time.perf_counter() - started:.0f} s", flush=True)
            next_report += 30
    elapsed = time.perf_counter() - started
    producer.join()
    count = client.json("POST", f"/collections/{COLLECTION}/points/count", {"exact": True})["count"]
    if count != len(base):
        raise RuntimeError(f"collection holds {count} points, expected {len(base)}")
    return elapsed


# -- probes during the build ------------------------------------------------------------------------


class Prober(threading.Thread):
    """GET /healthz and GET one point every `interval` s on its own connection."""

    def __init__(self, port: int, points: int, interval: float):
        super().__init__(daemon=True)
        self.client = Client(port, timeout=60)
        self.points, self.interval = points, interval
        self.samples: dict[str, list[tuple[float, float]]] = {"healthz": [], "point": []}
        self.errors: list[str] = []
        self.stop_event = threading.Event()
        self.rng = random.Random(7)

    def run(self) -> None:
        next_tick = time.perf_counter()
        while not self.stop_event.is_set():
            for kind in ("healthz", "point"):
                path = "/healthz" if kind == "healthz" else f"/collections/{COLLECTION}/points/{self.rng.randrange(self.points)}"
                started = time.perf_counter()
                try:
                    self.client.call("GET", path)
                    self.samples[kind].append((started, time.perf_counter() - started))
                except Exception as exc:  # noqa: BLE001  (recorded and reported)
                    self.errors.append(f"{kind}: {exc!r}")
                    self.client.close()
                    self.client = Client(self.client.conn.port, timeout=60)
            next_tick += self.interval
            time.sleep(max(0.0, next_tick - time.perf_counter()))
            if time.perf_counter() - next_tick > 1.0:  # fell far behind: do not burst
                next_tick = time.perf_counter()

    def latencies(self, kind: str, since: float = 0.0, until: float = float("inf")) -> list[float]:
        return [lat for t, lat in self.samples[kind] if since <= t < until]

    def close(self) -> None:
        self.stop_event.set()
        self.join()
        self.client.close()


def build_index(client: Client, server_pid: int, prober: Prober, points: int, threshold: int, timeout: float) -> dict:
    """PATCH the indexing threshold and wait for green; returns timings and samples."""
    info_times, statuses, rss_peak, rss_series = [], [], 0.0, []
    patch_at = time.perf_counter()
    client.json("PATCH", f"/collections/{COLLECTION}", {"optimizers_config": {"indexing_threshold": threshold}})
    patch_s = time.perf_counter() - patch_at
    seen_yellow = None
    next_report = patch_at + 30
    while True:
        started = time.perf_counter()
        info = client.json("GET", f"/collections/{COLLECTION}")
        now = time.perf_counter()
        info_times.append(now - started)
        rss_now = rss_mib(server_pid)
        rss_peak = max(rss_peak, rss_now)
        rss_series.append((now - patch_at, rss_now))
        status, indexed = info["status"], info.get("indexed_vectors_count") or 0
        if not statuses or statuses[-1][1] != status:
            statuses.append((now - patch_at, status))
        if status == "yellow" and seen_yellow is None:
            seen_yellow = now - patch_at
        if status == "red":
            raise RuntimeError(f"collection went red: {info.get('optimizer_status')}")
        if status == "green" and indexed >= points:
            return {
                "build_s": now - patch_at,
                "patch_ms": patch_s * 1000,
                "first_yellow_s": seen_yellow,
                "statuses": statuses,
                "info_latency": info_times,
                "rss_peak_mib": rss_peak,
                "rss_series": rss_series,
                "window": (patch_at, now),
                "info": info,
            }
        if now - patch_at > timeout:
            raise RuntimeError(f"not green after {timeout:.0f} s: {status}, {indexed} indexed")
        if now > next_report:
            print(f"  building: {now - patch_at:.0f} s, status {status}, indexed {indexed:,}, server RSS {rss_mib(server_pid):,.0f} MiB", flush=True)
            next_report += 30
        time.sleep(0.25)


# -- search ------------------------------------------------------------------------------------------


def search_bodies(queries: np.ndarray, ef: int) -> list[bytes]:
    return [
        orjson.dumps({"vector": q, "limit": LIMIT, "params": {"hnsw_ef": ef}}, option=orjson.OPT_SERIALIZE_NUMPY)
        for q in queries
    ]


def run_client(port: int, path: str, bodies: list[bytes], barrier: threading.Barrier | None, out: dict) -> None:
    client = Client(port)
    for raw in bodies[:WARMUP]:
        client.call("POST", path, raw)
    if barrier is not None:
        barrier.wait()
    times, answers = [], []
    started = time.perf_counter()
    for raw in bodies:
        t0 = time.perf_counter()
        data = client.call("POST", path, raw)
        times.append(time.perf_counter() - t0)
        answers.append(data)
    out.update(start=started, end=time.perf_counter(), times=times, answers=answers)
    client.close()


def recall(answers: list[bytes], truth: np.ndarray) -> tuple[float, float]:
    """(recall@10, server `time` p50 in ms)."""
    found, server_times = 0, []
    for raw, ids in zip(answers, truth):
        parsed = orjson.loads(raw)
        hits = parsed["result"]
        if len(hits) != LIMIT:
            raise RuntimeError(f"expected {LIMIT} hits, got {len(hits)}")
        found += len({h["id"] for h in hits} & set(ids.tolist()))
        server_times.append(parsed["time"])
    return found / (LIMIT * len(truth)), float(np.median(server_times)) * 1000


def measure_single(port: int, server_pid: int, bodies: list[bytes], truth: np.ndarray) -> dict:
    path = f"/collections/{COLLECTION}/points/search"
    out: dict = {}
    # warm-up inside run_client; CPU accounting covers the timed loop and the warm-up
    cpu0 = (cpu_seconds(server_pid), time.process_time())
    others = OthersShare([server_pid, os.getpid()])
    run_client(port, path, bodies, None, out)
    cpu1 = (cpu_seconds(server_pid), time.process_time())
    others_share = others.value()
    n = len(bodies) + WARMUP
    rec, server_p50 = recall(out["answers"], truth)
    return {
        "p50": pct(out["times"], 50), "p90": pct(out["times"], 90), "p99": pct(out["times"], 99),
        "qps": len(bodies) / (out["end"] - out["start"]),
        "recall": rec, "server_p50": server_p50,
        "server_cpu_ms": (cpu1[0] - cpu0[0]) / n * 1000, "client_cpu_ms": (cpu1[1] - cpu0[1]) / n * 1000,
        "others": others_share,
    }


def measure_concurrent(port: int, server_pid: int, bodies: list[bytes], truth: np.ndarray, clients: int) -> dict:
    path = f"/collections/{COLLECTION}/points/search"
    barrier = threading.Barrier(clients)
    outs = [dict() for _ in range(clients)]
    # each client starts at another place in the query list, so they do not send the same query together
    shifted = [bodies[i * len(bodies) // clients :] + bodies[: i * len(bodies) // clients] for i in range(clients)]
    threads = [threading.Thread(target=run_client, args=(port, path, shifted[i], barrier, outs[i])) for i in range(clients)]
    cpu0 = (cpu_seconds(server_pid), time.process_time())
    others = OthersShare([server_pid, os.getpid()])
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    cpu1 = (cpu_seconds(server_pid), time.process_time())
    others_share = others.value()
    start, end = min(o["start"] for o in outs), max(o["end"] for o in outs)
    times = [t for o in outs for t in o["times"]]
    truth0 = truth  # client 0 sends the queries in order
    rec, _ = recall(outs[0]["answers"], truth0)
    total = sum(len(o["times"]) for o in outs)
    return {
        "qps": total / (end - start), "p50": pct(times, 50), "p99": pct(times, 99), "recall": rec,
        "server_cpu_ms": (cpu1[0] - cpu0[0]) / (total + clients * WARMUP) * 1000,
        "client_cpu_ms": (cpu1[1] - cpu0[1]) / (total + clients * WARMUP) * 1000,
        "others": others_share,
    }


def print_windows(prober: Prober, build: dict, width: float = 20.0) -> None:
    """p99 / max of the probes and the server RSS in windows of `width` s of the build."""
    start, end = build["window"]
    print(f"  per {width:g} s of the build: t s | healthz p99/max ms | point p99/max ms | server RSS MiB")
    t = start
    while t < end:
        h = prober.latencies("healthz", t, t + width)
        p = prober.latencies("point", t, t + width)
        rss = [r for at, r in build["rss_series"] if t - start <= at < t - start + width]
        print(
            f"    {t - start:5.0f} | {pct(h, 99):6.1f} / {max(h, default=0) * 1000:6.1f} | "
            f"{pct(p, 99):6.1f} / {max(p, default=0) * 1000:6.1f} | {max(rss, default=float('nan')):,.0f}"
        )
        t += width


def median_run(runs: list[dict]) -> dict:
    """The run with the median QPS (the middle one of an odd number of rounds)."""
    return sorted(runs, key=lambda run: run["qps"])[(len(runs) - 1) // 2]


# -- server log ---------------------------------------------------------------------------------------


def log_excerpt(text: str) -> list[str]:
    keep = re.compile(r"optimizer|indexed \d+ slots|WARNING|ERROR|Traceback|Exception|numba", re.IGNORECASE)
    return [line for line in text.splitlines() if keep.search(line)][-40:]


# -- main ------------------------------------------------------------------------------------------------


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--ef", default="64,128", help="hnsw_ef values, comma-separated; the first is the main one (2 clients)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating 1-client / 2-client rounds at the main ef")
    parser.add_argument("--m", type=int, default=DEFAULTS.storage.hnsw_index.m)
    parser.add_argument("--ef-construct", type=int, default=DEFAULTS.storage.hnsw_index.ef_construct)
    parser.add_argument("--threshold", type=int, default=20_000, help="indexing_threshold (kB) sent by the PATCH")
    parser.add_argument("--noise", type=float, default=0.025, help="std of the per-coordinate noise of the copies")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--upsert-batch", type=int, default=1000)
    parser.add_argument("--probe-interval", type=float, default=0.02)
    parser.add_argument("--build-timeout", type=float, default=3600)
    parser.add_argument("--keep-log", type=Path, help="copy the server log here at the end")
    parser.add_argument(
        "--server-env", action="append", default=[], metavar="NAME=VALUE",
        help="extra environment variable of the server process (repeatable)",
    )
    args = parser.parse_args(argv)
    efs = [int(x) for x in args.ef.split(",") if x.strip()]
    command = "python tools/bench_server.py " + " ".join(sys.argv[1:] if argv is None else argv)

    print(f"machine: {machine()}")
    print(f"python {platform.python_version()}, numpy {np.__version__}")
    print(f"command: {command}")
    print(f"load average at start: {loadavg()}", flush=True)

    t0 = time.perf_counter()
    base, queries = load_data(args.data, args.points, args.queries, args.noise, args.seed)
    gen_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    truth = exact_top10(base, queries)
    print(f"data: {len(base):,} x {DIM} ({gen_s:.1f} s), {len(queries)} queries, exact truth in {time.perf_counter() - t0:.1f} s", flush=True)

    results: dict = {"searches": {}}
    tmp = Path(tempfile.mkdtemp(prefix="bench_server_", dir="/tmp"))
    server = None
    try:
        server_env = {"PYDRANT__LOG_LEVEL": "INFO"}
        server_env.update(item.split("=", 1) for item in args.server_env)
        server = ServerProcess(tmp / "storage", extra_env=server_env).start()
        pid = server.proc.pid
        client = Client(server.port, timeout=600)
        results["rss_start"] = rss_mib(pid)

        create_collection(client, args.m, args.ef_construct)
        results["upload_s"] = upload(client, base, args.upsert_batch)
        results["rss_uploaded"] = rss_mib(pid)
        print(f"uploaded {len(base):,} points in {results['upload_s']:.1f} s ({len(base) / results['upload_s']:,.0f} points/s), server RSS {results['rss_uploaded']:,.0f} MiB", flush=True)

        prober = Prober(server.port, len(base), args.probe_interval)
        prober.start()
        time.sleep(3.0)
        idle_until = time.perf_counter()
        print(f"load average before the build: {loadavg()}", flush=True)
        cpu_build0 = cpu_seconds(pid)
        others = OthersShare([pid, os.getpid()])
        build = build_index(client, pid, prober, len(base), args.threshold, args.build_timeout)
        build["server_cpu_s"] = cpu_seconds(pid) - cpu_build0
        build["others"] = others.value()
        prober.close()
        results["build"] = build
        results["probes"] = {
            kind: {"idle": prober.latencies(kind, until=idle_until), "build": prober.latencies(kind, *build["window"])}
            for kind in ("healthz", "point")
        }
        results["probe_errors"] = prober.errors
        results["rss_green"] = rss_mib(pid)
        info = build["info"]
        print(
            f"built in {build['build_s']:.1f} s, statuses {[(round(t, 2), st) for t, st in build['statuses']]}, "
            f"indexed {info.get('indexed_vectors_count'):,}, segments {info.get('segments_count')}, "
            f"server CPU {build['server_cpu_s']:.0f} s, other processes {build['others']:.0%} of the machine, RSS {results['rss_green']:,.0f} MiB (peak sampled {build['rss_peak_mib']:,.0f})",
            flush=True,
        )
        for kind, d in results["probes"].items():
            print(f"  probe {kind}: idle {summary(d['idle'])}; during build {summary(d['build'])}")
        print(f"  collection info polls during build: {summary(build['info_latency'])}")
        print_windows(prober, build)
        if prober.errors:
            print(f"  probe errors: {prober.errors[:5]}")

        print(f"load average before searching: {loadavg()}", flush=True)
        for i, ef in enumerate(efs):
            bodies = search_bodies(queries, ef)
            rounds = args.rounds if i == 0 else 1
            singles, duos = [], []
            for r in range(rounds):
                single = measure_single(server.port, pid, bodies, truth)
                singles.append(single)
                print(
                    f"ef {ef}, 1 client (round {r + 1}): p50 {single['p50']:.2f} ms, p90 {single['p90']:.2f}, p99 {single['p99']:.2f}, "
                    f"{single['qps']:,.0f} QPS, recall@10 {single['recall']:.4f}, server time p50 {single['server_p50']:.2f} ms, "
                    f"CPU/query server {single['server_cpu_ms']:.2f} ms client {single['client_cpu_ms']:.2f} ms, "
                    f"other processes {single['others']:.0%} of the machine",
                    flush=True,
                )
                if i == 0:
                    duo = measure_concurrent(server.port, pid, bodies, truth, 2)
                    duos.append(duo)
                    print(
                        f"ef {ef}, 2 clients (round {r + 1}): {duo['qps']:,.0f} QPS total (x{duo['qps'] / single['qps']:.2f}), "
                        f"p50 {duo['p50']:.2f} ms, p99 {duo['p99']:.2f} ms, CPU/query server {duo['server_cpu_ms']:.2f} ms "
                        f"client {duo['client_cpu_ms']:.2f} ms, other processes {duo['others']:.0%} of the machine",
                        flush=True,
                    )
            results["searches"][ef] = {"single": median_run(singles)}
            if duos:
                results["searches"][ef]["duo"] = median_run(duos)
        results["rss_end"] = rss_mib(pid)
        # the replaced segment stays open RETIRE_GRACE_SECONDS (30 s) after the swap
        time.sleep(max(0.0, build["window"][1] + 40 - time.perf_counter()))
        results["rss_grace"] = rss_mib(pid)
        print(f"server RSS 40 s after green (after the retired segment's grace period): {results['rss_grace']:,.0f} MiB")
        results["rss_hwm"] = rss_mib(pid, "VmHWM")
        client.close()
    finally:
        if server is not None:
            server.stop(timeout=120)
            log_text = server.log_path.read_text(errors="replace") if server.log_path.exists() else ""
            if args.keep_log:
                args.keep_log.write_text(log_text)
            excerpt = log_excerpt(log_text)
            print("\nserver log (optimizer / warning lines):")
            for line in excerpt:
                print("  " + line)
        shutil.rmtree(tmp, ignore_errors=True)

    # -- report ------------------------------------------------------------------------------
    main_ef = efs[0]
    single = results["searches"][main_ef]["single"]
    duo = results["searches"][main_ef]["duo"]
    scaling = duo["qps"] / single["qps"]
    build = results["build"]
    probes = results["probes"]
    probe_p99 = {kind: pct(d["build"], 99) for kind, d in probes.items()}

    def verdict(ok: bool) -> str:
        return "pass" if ok else "**fail**"

    print()
    print(f"| {len(base):,} x {DIM} Cosine, m {args.m}, ef_construct {args.ef_construct} | value |")
    print("|---|---|")
    print(f"| upload ({args.upsert_batch}-point batches, wait=true, 1 client) | {results['upload_s']:.1f} s ({len(base) / results['upload_s']:,.0f} points/s) |")
    print(f"| index build (PATCH to green) | {build['build_s']:.1f} s (server CPU {build['server_cpu_s']:.0f} s) |")
    print(
        f"| server RSS: uploaded / green / after searches / 40 s after green (peak) | {results['rss_uploaded']:,.0f} / "
        f"{results['rss_green']:,.0f} / {results['rss_end']:,.0f} / {results['rss_grace']:,.0f} MiB ({results['rss_hwm']:,.0f}) |"
    )
    print()
    print("| hnsw_ef | clients | p50 ms | p99 ms | QPS | recall@10 | server `time` p50 ms | server CPU ms/query | other processes' CPU |")
    print("|---|---|---|---|---|---|---|---|---|")
    for ef, d in results["searches"].items():
        s = d["single"]
        print(f"| {ef} | 1 | {s['p50']:.2f} | {s['p99']:.2f} | {s['qps']:,.0f} | {s['recall']:.4f} | {s['server_p50']:.2f} | {s['server_cpu_ms']:.2f} | {s['others']:.0%} |")
        if "duo" in d:
            u = d["duo"]
            print(f"| {ef} | 2 | {u['p50']:.2f} | {u['p99']:.2f} | {u['qps']:,.0f} | {u['recall']:.4f} | | {u['server_cpu_ms']:.2f} | {u['others']:.0%} |")
    print()
    print("| probe (every ~20 ms) | idle p50 / p99 ms | during build p50 / p99 / max ms | samples |")
    print("|---|---|---|---|")
    for kind, d in probes.items():
        label = "`GET /healthz`" if kind == "healthz" else "`GET /collections/{c}/points/{id}`"
        print(
            f"| {label} | {pct(d['idle'], 50):.2f} / {pct(d['idle'], 99):.2f} | "
            f"{pct(d['build'], 50):.2f} / {pct(d['build'], 99):.2f} / {max(d['build'], default=0) * 1000:.1f} | {len(d['build'])} |"
        )
    print()
    print("| target | measured | result |")
    print("|---|---|---|")
    print(f"| single-client p50 < {TARGET_P50_MS:g} ms (ef {main_ef}) | {single['p50']:.2f} ms | {verdict(single['p50'] < TARGET_P50_MS)} |")
    print(f"| 2 clients >= {TARGET_SCALING}x 1-client QPS (ef {main_ef}) | {scaling:.2f}x | {verdict(scaling >= TARGET_SCALING)} |")
    for kind in ("healthz", "point"):
        print(f"| {kind} p99 < {TARGET_PROBE_P99_MS:g} ms during build | {probe_p99[kind]:.1f} ms | {verdict(probe_p99[kind] < TARGET_PROBE_P99_MS)} |")
    print(f"\nload average at the end: {loadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
