"""Benchmark collection snapshots through REST, and the change feed's tail reader.

    python tools/bench_snapshot.py [--data DIR] [--points N] [--probe-seconds S] [--no-feed] [--feed-only]

1. Data: the first N (100,000) real 384-d sentence embeddings of ../shared/data (base_a +
   base_b, float16 -> float32) with their passages as payload ({"text", "source", "row"}
   from passages.jsonl.gz). Read in place, never copied.
2. Server: a real `pydrant serve` (tests/serverproc.py) on a free port, storage and
   snapshots in a temporary directory under /tmp (deleted at the end), with
   `max_request_size_mb` raised so that a snapshot can be uploaded.
3. Load: one unnamed Cosine vector, default optimizer settings; columnar `batch` bodies of
   1,000 points, `wait=true`, encoded by a producer thread; then wait until the collection
   is green with every vector indexed (the optimizer built its HNSW segments).
4. Probes: a writer (`PUT /points?wait=true`, one point, ids from 10,000,000 up) and a
   searcher (`POST /points/search`, limit 10) on their own connections, each paced at
   one request every --probe-interval s. First S seconds without a snapshot (baseline),
   then while `POST /collections/{c}/snapshots` (wait=true) runs: latency p50 / p95 /
   p99 / max of each, over the requests started in each window.
5. Snapshot: create (time, size, MB/s of the snapshot file), download (`GET`, streamed to
   a file in 1 MiB reads), recover by upload (`POST .../snapshots/upload`, multipart,
   streamed by httpx) into a new collection, recover from the file's location (`PUT
   .../snapshots/recover`, `file://`) into another one; each recovered collection's count
   is checked, then it is deleted. Offline `pydrant snapshot verify FILE --checksum HEX` in
   a subprocess.
6. In-process breakdown on the downloaded file (same machine, page cache warm): sha256
   alone, reading the tar alone, `snapshots.extract` (files written), `snapshots.archive`
   of the extracted directory (tar + sha256 + fsync) and the same tar written without
   hashing and without fsync: which part limits throughput.
7. Change feed: a collection whose WAL last file holds ~--feed-mb MiB of records (ops of
   10 points); a reader that keeps up (one new op, then `GET /changes?since=next`) and one
   catching up (pages of 100 from the oldest retained op): time per answer; plus
   `scan.read_tail` in-process on the same WAL directory (`since` = last - 1).

Prints the load average and the share of the machine's CPU used by other processes for
each phase (the machine is shared).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import http.client
import os
import platform
import queue
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import orjson

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "tools"))
from bench_server import OthersShare, loadavg, rss_mib  # noqa: E402
from benchlib import Client, machine  # noqa: E402
from serverproc import ServerProcess  # noqa: E402  (the test harness's launcher, reused)

from pydrant.collection import snapshots  # noqa: E402
from pydrant.wal import scan as wal_scan  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "data"
COLLECTION = "bench_snap"
FEED = "bench_feed"
DIM = 384
MB = 1e6
MIB = 1 << 20
PROBE_ID_BASE = 10_000_000


# -- data ----------------------------------------------------------------------------------------


def load_data(data_dir: Path, points: int) -> tuple[np.ndarray, list[dict], np.ndarray]:
    """(N x 384 float32 vectors, N payloads with the passage text, 1,000 query vectors)."""
    files = [data_dir / "base_a.f16.npy", data_dir / "base_b.f16.npy", data_dir / "extra.f16.npy", data_dir / "passages.jsonl.gz"]
    missing = [str(p) for p in files if not p.exists()]
    if missing:
        raise SystemExit(f"data files missing: {', '.join(missing)} (pass --data DIR)")
    base_a = np.load(files[0])
    parts = [base_a] if points <= len(base_a) else [base_a, np.load(files[1])]
    vectors = np.concatenate(parts)[:points].astype(np.float32)
    if len(vectors) < points:
        raise SystemExit(f"only {len(vectors)} base vectors in {data_dir}")
    offsets = {"a": 0, "b": len(base_a)}
    payloads: list[dict | None] = [None] * points
    with gzip.open(files[3], "rt") as lines:
        for line in lines:
            item = orjson.loads(line)
            if item["split"] not in offsets:
                continue
            i = offsets[item["split"]] + item["row"]
            if i < points:
                payloads[i] = {"text": item["text"], "source": item["source"], "row": i}
    if any(p is None for p in payloads):
        raise SystemExit("passages.jsonl.gz lacks the text of some base rows")
    queries = np.load(files[2])[:1000].astype(np.float32)
    return vectors, payloads, queries  # type: ignore[return-value]


# -- helpers ----------------------------------------------------------------------------------------


def pct(samples, p) -> float:
    return float(np.percentile(np.asarray(samples) * 1000.0, p)) if len(samples) else float("nan")


def lat(samples) -> str:
    if not samples:
        return "no samples"
    return (
        f"n {len(samples)}, p50 {pct(samples, 50):.1f} ms, p95 {pct(samples, 95):.1f}, "
        f"p99 {pct(samples, 99):.1f}, max {max(samples) * 1000:.1f}"
    )


def wait_green(client: Client, name: str, points: int, timeout: float = 1800) -> float:
    started = time.perf_counter()
    next_report = started + 30
    while True:
        info = client.json("GET", f"/collections/{name}")
        if info["status"] == "green" and (info.get("indexed_vectors_count") or 0) >= points:
            return time.perf_counter() - started
        if info["status"] == "red":
            raise RuntimeError(f"collection went red: {info.get('optimizer_status')}")
        now = time.perf_counter()
        if now - started > timeout:
            raise RuntimeError(f"not green after {timeout:.0f} s: {info['status']}, {info.get('indexed_vectors_count')} indexed")
        if now > next_report:
            print(f"  optimizing: {now - started:.0f} s, {info['status']}, {info.get('indexed_vectors_count'):,} indexed", flush=True)
            next_report += 30
        time.sleep(0.5)


def upload_points(client: Client, name: str, vectors: np.ndarray, payloads: list[dict], batch: int = 1000) -> float:
    bodies: queue.Queue = queue.Queue(maxsize=4)

    def produce():
        for start in range(0, len(vectors), batch):
            ids = list(range(start, min(start + batch, len(vectors))))
            body = {"batch": {"ids": ids, "vectors": vectors[start : start + batch], "payloads": payloads[start : start + batch]}}
            bodies.put(orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY))
        bodies.put(None)

    producer = threading.Thread(target=produce, daemon=True)
    started = time.perf_counter()
    producer.start()
    while (raw := bodies.get()) is not None:
        client.call("PUT", f"/collections/{name}/points?wait=true", raw)
    producer.join()
    return time.perf_counter() - started


def count(client: Client, name: str) -> int:
    return client.json("POST", f"/collections/{name}/points/count", {"exact": True})["count"]


class Probe(threading.Thread):
    """One request every `interval` s on its own connection (open loop: a slow answer does
    not make the next ones wait longer than they must)."""

    def __init__(self, port: int, kind: str, interval: float, queries: np.ndarray):
        super().__init__(daemon=True)
        self.client = Client(port, timeout=600)
        self.kind, self.interval, self.queries = kind, interval, queries
        self.samples: list[tuple[float, float]] = []
        self.errors: list[str] = []
        self.stop_event = threading.Event()

    def body(self, k: int) -> tuple[str, str, bytes]:
        q = self.queries[k % len(self.queries)]
        if self.kind == "write":
            point = {"id": PROBE_ID_BASE + k, "vector": q, "payload": {"text": "probe", "row": k}}
            return "PUT", f"/collections/{COLLECTION}/points?wait=true", orjson.dumps({"points": [point]}, option=orjson.OPT_SERIALIZE_NUMPY)
        return "POST", f"/collections/{COLLECTION}/points/search", orjson.dumps({"vector": q, "limit": 10}, option=orjson.OPT_SERIALIZE_NUMPY)

    def run(self) -> None:
        k = 0
        next_tick = time.perf_counter()
        while not self.stop_event.is_set():
            method, path, raw = self.body(k)
            k += 1
            started = time.perf_counter()
            try:
                self.client.call(method, path, raw)
                self.samples.append((started, time.perf_counter() - started))
            except Exception as exc:  # noqa: BLE001  (reported)
                self.errors.append(repr(exc))
                self.client.close()
                self.client = Client(self.client.conn.port, timeout=600)
            next_tick += self.interval
            time.sleep(max(0.0, next_tick - time.perf_counter()))
            if time.perf_counter() - next_tick > 1.0:
                next_tick = time.perf_counter()

    def window(self, start: float, end: float) -> list[float]:
        return [latency for t, latency in self.samples if start <= t < end]

    def close(self) -> None:
        self.stop_event.set()
        self.join()
        self.client.close()


def download(port: int, path: str, target: Path) -> float:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    started = time.perf_counter()
    conn.request("GET", path)
    response = conn.getresponse()
    if response.status != 200:
        raise RuntimeError(f"download: {response.status} {response.read()[:300]!r}")
    with open(target, "wb") as out:
        while chunk := response.read(MIB):
            out.write(chunk)
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(MIB):
            digest.update(chunk)
    return digest.hexdigest()


def timed(function, *args, **kwargs):
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return time.perf_counter() - started, result


def row(label: str, seconds: float, size: int) -> str:
    return f"| {label} | {seconds:.2f} | {size / MB / seconds:,.0f} |"


# -- snapshot phases --------------------------------------------------------------------------------


def snapshot_phases(server: ServerProcess, client: Client, args, queries: np.ndarray, work: Path) -> dict:
    port, pid = server.port, server.proc.pid
    out: dict = {}
    # 4. probes: baseline, then during a snapshot
    # the first HNSW search compiles the search kernels (or loads them from Numba's cache): not measured
    started = time.perf_counter()
    client.json("POST", f"/collections/{COLLECTION}/points/search", {"vector": queries[0].tolist(), "limit": 10})
    print(f"first search (kernels compiled or loaded): {time.perf_counter() - started:.1f} s", flush=True)
    writer, searcher = Probe(port, "write", args.probe_interval, queries), Probe(port, "search", args.probe_interval, queries[::-1])
    writer.start()
    searcher.start()
    time.sleep(1.0)  # warm-up
    base_start = time.perf_counter()
    others = OthersShare([pid, os.getpid()])
    time.sleep(args.probe_seconds)
    base_end = time.perf_counter()
    out["others_baseline"] = others.value()
    out["load_before_snapshot"] = loadavg()
    others = OthersShare([pid, os.getpid()])
    snap_start = time.perf_counter()
    created = client.json("POST", f"/collections/{COLLECTION}/snapshots?wait=true")
    snap_end = time.perf_counter()
    out["others_snapshot"] = others.value()
    writer.close()
    searcher.close()
    out["create_s"], out["size"], out["name"], out["checksum"] = snap_end - snap_start, created["size"], created["name"], created["checksum"]
    out["probes"] = {
        kind: {"baseline": p.window(base_start, base_end), "snapshot": p.window(snap_start, snap_end), "errors": p.errors}
        for kind, p in (("write", writer), ("search", searcher))
    }
    out["rss_after_create"] = rss_mib(pid)
    print(f"snapshot created: {created['name']}, {created['size'] / MB:,.1f} MB in {out['create_s']:.2f} s "
          f"({created['size'] / MB / out['create_s']:,.0f} MB/s); other processes {out['others_snapshot']:.0%} of the machine", flush=True)
    for kind, d in out["probes"].items():
        print(f"  {kind}: baseline {lat(d['baseline'])}; during snapshot {lat(d['snapshot'])}; errors {len(d['errors'])}")

    # 5. download, recover by upload, recover from the file's location, verify offline
    file = work / created["name"]
    out["download_s"] = download(port, f"/collections/{COLLECTION}/snapshots/{created['name']}", file)
    if sha256_of(file) != created["checksum"]:
        raise RuntimeError("downloaded snapshot does not match its checksum")
    print(f"downloaded in {out['download_s']:.2f} s ({out['size'] / MB / out['download_s']:,.0f} MB/s)", flush=True)
    expected_points = count(client, COLLECTION)
    # the probe writer's points came after the cut: the snapshot holds the loaded ones
    with httpx.Client(base_url=server.url, timeout=1800) as h, open(file, "rb") as f:
        started = time.perf_counter()
        r = h.post(f"/collections/{COLLECTION}_up/snapshots/upload", params={"wait": "true", "checksum": created["checksum"]},
                   files={"snapshot": (file.name, f, "application/octet-stream")})
        out["upload_s"] = time.perf_counter() - started
        if r.status_code != 200:
            raise RuntimeError(f"upload: {r.status_code} {r.text[:300]}")
    out["rss_after_upload"] = rss_mib(pid)
    out["hwm_after_upload"] = rss_mib(pid, "VmHWM")
    up_count = count(client, f"{COLLECTION}_up")
    print(f"recovered by upload in {out['upload_s']:.2f} s ({out['size'] / MB / out['upload_s']:,.0f} MB/s), {up_count:,} points "
          f"(source now {expected_points:,} with the probe writer's), server RSS {out['rss_after_upload']:,.0f} MiB, peak {out['hwm_after_upload']:,.0f}", flush=True)
    client.json("DELETE", f"/collections/{COLLECTION}_up")
    started = time.perf_counter()
    client.json("PUT", f"/collections/{COLLECTION}_file/snapshots/recover?wait=true",
                {"location": f"file://{file}", "checksum": created["checksum"]})
    out["recover_s"] = time.perf_counter() - started
    file_count = count(client, f"{COLLECTION}_file")
    # the snapshot holds the loaded points and the probe writer's up to the cut
    if file_count != up_count or not args.points <= up_count <= expected_points:
        raise RuntimeError(f"recovered counts {up_count} / {file_count}, expected {args.points}..{expected_points}")
    print(f"recovered from the file location in {out['recover_s']:.2f} s ({out['size'] / MB / out['recover_s']:,.0f} MB/s), {file_count:,} points", flush=True)
    client.json("DELETE", f"/collections/{COLLECTION}_file")
    out["rss_end"] = rss_mib(pid)
    started = time.perf_counter()
    verify = subprocess.run([sys.executable, "-m", "pydrant.cli", "snapshot", "verify", str(file), "--checksum", created["checksum"]],
                            capture_output=True, text=True)
    out["verify_s"] = time.perf_counter() - started
    if verify.returncode != 0:
        raise RuntimeError(f"verify failed: {verify.stdout} {verify.stderr}")
    print(f"pydrant snapshot verify: {out['verify_s']:.2f} s: {verify.stdout.strip()}", flush=True)
    out["file"] = file
    return out


def breakdown(file: Path, work: Path) -> dict:
    """In-process, on the downloaded file: which part of creating / reading a snapshot costs what."""
    size = file.stat().st_size
    out: dict = {"size": size}
    out["sha256_s"], _ = timed(sha256_of, file)

    def read_tar():
        with tarfile.open(file, mode="r:") as tar:
            for member in tar:
                if member.isfile():
                    source = tar.extractfile(member)
                    assert source is not None
                    while source.read(MIB):
                        pass

    out["read_tar_s"], _ = timed(read_tar)
    target = work / "extracted"
    out["extract_s"], _ = timed(snapshots.extract, file, target)
    out_dir = work / "archived"
    out["archive_s"], described = timed(snapshots.archive, target, out_dir, "bench")
    out["archive_size"] = described["size"]

    def plain_tar():
        with open(work / "plain.tar", "wb") as raw, tarfile.open(fileobj=raw, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            for path in sorted(p for p in target.rglob("*")):
                tar.add(path, arcname=path.relative_to(target).as_posix(), recursive=False)

    out["plain_tar_s"], _ = timed(plain_tar)

    def fsync_plain():
        with open(work / "plain.tar", "rb+") as f:
            os.fsync(f.fileno())

    out["fsync_s"], _ = timed(fsync_plain)
    shutil.rmtree(target)
    shutil.rmtree(out_dir)
    (work / "plain.tar").unlink()
    return out


# -- change feed ------------------------------------------------------------------------------------


def feed_phase(server: ServerProcess, client: Client, args, queries: np.ndarray) -> dict:
    """A collection whose last WAL file holds ~feed_mb MiB of 10-point ops; readers' cost."""
    out: dict = {}
    client.json("PUT", f"/collections/{FEED}", {"vectors": {"size": DIM, "distance": "Cosine"}, "optimizers_config": {"indexing_threshold": 0}})
    rng = np.random.default_rng(3)
    per_op = 10
    op_bytes = per_op * (DIM * 4 + 40)
    ops = int(args.feed_mb * MIB / op_bytes)
    bodies = []
    for k in range(ops):
        ids = list(range(k * per_op, (k + 1) * per_op))
        vecs = queries[rng.integers(0, len(queries), per_op)]
        bodies.append(orjson.dumps({"batch": {"ids": ids, "vectors": vecs, "payloads": [{"k": k}] * per_op}}, option=orjson.OPT_SERIALIZE_NUMPY))
    started = time.perf_counter()
    lock = threading.Lock()
    todo = list(reversed(bodies))

    def writer():
        c = Client(server.port)
        while True:
            with lock:
                if not todo:
                    break
                raw = todo.pop()
            c.call("PUT", f"/collections/{FEED}/points?wait=true", raw)
        c.close()

    threads = [threading.Thread(target=writer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out["fill_s"] = time.perf_counter() - started
    wal_dir = server.storage / "collections" / FEED / "wal"
    files = sorted(p for p in wal_dir.iterdir() if p.name.endswith(".wal"))
    out["wal_files"] = [(p.name, p.stat().st_size) for p in files]
    tail = wal_scan.read_tail(wal_dir, 0, 1)
    first = tail.first_op_num or 1
    stats = wal_scan.scan_log(wal_dir)
    out["records"], out["first_op"], out["last_op"] = stats.records, stats.first_op_num, stats.last_op_num
    out["data_bytes"] = sum(f.data_end for f in stats.files)
    print(f"change feed: {ops} ops of {per_op} points written in {out['fill_s']:.1f} s; WAL {out['records']} records "
          f"(ops {out['first_op']}..{out['last_op']}, {out['data_bytes'] / MIB:.1f} MiB of records) in {[f'{n} {s / MIB:.0f} MiB' for n, s in out['wal_files']]}", flush=True)

    conn = Client(server.port)
    feed_path = f"/collections/{FEED}/changes"

    def get(since: int, limit: int) -> tuple[float, int, int]:
        t0 = time.perf_counter()
        conn.conn.request("GET", f"{feed_path}?since={since}&limit={limit}")
        response = conn.conn.getresponse()
        data = response.read()
        elapsed = time.perf_counter() - t0
        if response.status != 200:
            raise RuntimeError(f"changes: {response.status} {data[:200]!r}")
        lines = data.splitlines()
        return elapsed, len(lines) - 1, orjson.loads(lines[-1])["next"]

    # a reader that keeps up: one new op, then the page after it
    writer_client = Client(server.port)
    since = stats.last_op_num or 0
    keep_up = []
    for k in range(args.feed_polls):
        ids = [ops * per_op + k]
        raw = orjson.dumps({"points": [{"id": ids[0], "vector": queries[k % len(queries)], "payload": {"k": k}}]}, option=orjson.OPT_SERIALIZE_NUMPY)
        writer_client.call("PUT", f"/collections/{FEED}/points?wait=true", raw)
        elapsed, n, since = get(since, 1000)
        if n != 1:
            raise RuntimeError(f"keep-up reader got {n} ops, expected 1")
        keep_up.append(elapsed)
    out["keep_up"] = keep_up
    # a reader catching up from the oldest retained op, pages of 100
    catch_up, since, total = [], first - 1, 0
    while True:
        elapsed, n, since = get(since, 100)
        if n == 0:
            break
        catch_up.append(elapsed)
        total += n
    out["catch_up"], out["catch_up_ops"] = catch_up, total
    # in process, same directory: read_tail of the newest op
    stats = wal_scan.scan_log(wal_dir)
    last_op = stats.last_op_num or 0
    positions = getattr(wal_scan, "_TAIL_POSITIONS", None)  # the remembered positions (absent before them)
    direct, cold = [], []
    for _ in range(50):
        if positions is not None:
            positions.clear()
        t0 = time.perf_counter()
        got = wal_scan.read_tail(wal_dir, last_op - 1, 1000, until=last_op)
        cold.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        got = wal_scan.read_tail(wal_dir, last_op - 1, 1000, until=last_op)
        direct.append(time.perf_counter() - t0)
        assert len(got.records) == 1
    out["direct"], out["cold"] = direct, cold
    print(f"  keep-up reader (1 new op per answer): {lat(keep_up)}")
    print(f"  catch-up reader (pages of 100, {total} ops): {lat(catch_up)}")
    print(f"  read_tail in process, since = last - 1, nothing remembered: {lat(cold)}")
    print(f"  read_tail in process, since = last - 1, again: {lat(direct)}", flush=True)
    conn.close()
    writer_client.close()
    return out


# -- main -----------------------------------------------------------------------------------------------


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--probe-seconds", type=float, default=10.0, help="baseline window of the probes")
    parser.add_argument("--probe-interval", type=float, default=0.02, help="seconds between two requests of a probe")
    parser.add_argument("--feed-mb", type=float, default=24.0, help="MiB of records in the change-feed collection's WAL")
    parser.add_argument("--feed-polls", type=int, default=200)
    parser.add_argument("--no-feed", action="store_true", help="skip the change-feed section")
    parser.add_argument("--feed-only", action="store_true", help="only the change-feed section")
    parser.add_argument("--no-breakdown", action="store_true", help="skip the in-process breakdown")
    args = parser.parse_args(argv)
    command = "python tools/bench_snapshot.py " + " ".join(sys.argv[1:] if argv is None else argv)
    print(f"machine: {machine()}, python {platform.python_version()}")
    print(f"command: {command}")
    print(f"load average at start: {loadavg()}", flush=True)

    vectors, payloads, queries = load_data(args.data, args.points)
    tmp = Path(tempfile.mkdtemp(prefix="bench_snapshot_", dir="/tmp"))
    work = tmp / "work"
    work.mkdir()
    server = None
    try:
        env = {"PYDRANT__LOG_LEVEL": "WARNING", "PYDRANT__SERVICE__MAX_REQUEST_SIZE_MB": "4096"}
        server = ServerProcess(tmp / "storage", extra_env=env).start()
        client = Client(server.port, timeout=1800)
        if not args.feed_only:
            client.json("PUT", f"/collections/{COLLECTION}", {"vectors": {"size": DIM, "distance": "Cosine"}})
            upload_s = upload_points(client, COLLECTION, vectors, payloads)
            # the default indexing threshold is 10,000 kB of vectors: smaller sets stay unindexed
            indexed = args.points if args.points * DIM * 4 > 10_000 * 1024 else 0
            green_s = wait_green(client, COLLECTION, indexed)
            info = client.json("GET", f"/collections/{COLLECTION}")
            print(f"loaded {args.points:,} points in {upload_s:.1f} s, green {green_s:.1f} s later "
                  f"({info['segments_count']} segments, {info.get('indexed_vectors_count'):,} indexed); server RSS {rss_mib(server.proc.pid):,.0f} MiB", flush=True)
            del vectors, payloads
            result = snapshot_phases(server, client, args, queries, work)
            print(f"load average after the snapshot phases: {loadavg()}", flush=True)
            if not args.no_breakdown:
                b = breakdown(result["file"], work)
                size = b["size"]
                print("\nin-process breakdown on the snapshot file (page cache warm):")
                print("| step | s | MB/s |")
                print("|---|---|---|")
                print(row("sha256 of the file (hashlib, 1 MiB reads)", b["sha256_s"], size))
                print(row("read the tar (tarfile, every member read)", b["read_tar_s"], size))
                print(row("`snapshots.extract` (checks + files written)", b["extract_s"], size))
                print(row("`snapshots.archive` (tar + sha256 + fsync + rename)", b["archive_s"], b["archive_size"]))
                print(row("tar alone (tarfile `w|`, no hash, no fsync)", b["plain_tar_s"], size))
                print(row("fsync of that tar", b["fsync_s"], size))
                print(f"load average after the breakdown: {loadavg()}", flush=True)
            r = result
            print()
            print(f"| {args.points:,} x {DIM} + text payloads; snapshot {r['size'] / MB:,.1f} MB | s | MB/s |")
            print("|---|---|---|")
            print(row("create (`POST .../snapshots`, wait=true)", r["create_s"], r["size"]))
            print(row("download (`GET .../snapshots/{name}`)", r["download_s"], r["size"]))
            print(row("recover by upload (`POST .../snapshots/upload`)", r["upload_s"], r["size"]))
            print(row("recover from file location (`PUT .../snapshots/recover`)", r["recover_s"], r["size"]))
            print(row("`pydrant snapshot verify` (offline, checksum included)", r["verify_s"], r["size"]))
            print()
            print("| probe, one request every %g ms | without snapshot p50 / p95 / p99 / max ms | during snapshot p50 / p95 / p99 / max ms | n |" % (args.probe_interval * 1000))
            print("|---|---|---|---|")
            for kind, d in r["probes"].items():
                b0, s0 = d["baseline"], d["snapshot"]
                print(f"| {kind} | {pct(b0, 50):.1f} / {pct(b0, 95):.1f} / {pct(b0, 99):.1f} / {max(b0, default=0) * 1000:.1f} | "
                      f"{pct(s0, 50):.1f} / {pct(s0, 95):.1f} / {pct(s0, 99):.1f} / {max(s0, default=0) * 1000:.1f} | {len(b0)} / {len(s0)} |")
            print(f"\nother processes' CPU: {r['others_baseline']:.0%} (baseline), {r['others_snapshot']:.0%} (during the snapshot); "
                  f"load average before the snapshot {r['load_before_snapshot']}")
            print(f"server RSS after create {r['rss_after_create']:,.0f} MiB, after upload {r['rss_after_upload']:,.0f} (peak {r['hwm_after_upload']:,.0f}), at the end {r['rss_end']:,.0f}")
        if not args.no_feed:
            feed_phase(server, client, args, queries)
        client.close()
    finally:
        if server is not None:
            server.stop(timeout=120)
            log = server.log_path.read_text(errors="replace") if server.log_path.exists() else ""
            problems = [line for line in log.splitlines() if "ERROR" in line or "Traceback" in line]
            if problems:
                print("server log errors:\n  " + "\n  ".join(problems[-20:]))
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\nload average at the end: {loadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
