"""Benchmark quantized HNSW search (pydrant/segments/quantization.py) on real embeddings.

    python tools/bench_quantization.py [--data DIR] [--points N] [--queries Q] [--no-write]

Data: N (default 100,000) of the 384-d sentence embeddings of ../shared/data (base_a +
base_b, float16 -> float32, renormalised), Cosine; Q (default 1,000) queries from
extra.f16.npy. Exact ground truth with NumPy. One graph (m=16, ef_construct=100, every
core) built on the float32 vectors; the quantized codes are built from the same vectors.

For each hnsw_ef in (32, 64, 128): recall@10 and single-thread queries/s of a
single-query Python loop for
  - unquantized: `HnswIndex.search(q, 10, ef)`;
  - quantized: `QuantizedVectors.graph_search(index, q, 10 * oversampling, ef)` (ef is
    raised to the candidate count, as Qdrant does), then rescoring: the exact similarity
    of the candidates from the float32 vectors (in RAM here), the best 10 kept.
Configs: scalar int8 without and with `quantile: 0.99`, each with oversampling 1 and 2,
binary (one_bit, binary query) with oversampling 3, binary with a scalar8bits query
(oversampling 3), product x16 with oversampling 3. Each measurement is the best of 2 passes. RAM: `nbytes` of the codes
against the float32 vectors. The results go into docs/quantization.md between the
"bench" markers (--no-write: print only).

    python tools/bench_quantization.py --rest [--points N] [--queries Q] [--ef 32,64,128] [--quantile Q]

The same data through a real `pydrant serve` (tests/serverproc.py, storage in a temporary
directory under /tmp, deleted afterwards): a Cosine collection with `on_disk: true`, hnsw
m=16 / ef_construct=100 and Qdrant's documented recipe `{"scalar": {"type": "int8",
"quantile": 0.99, "always_ram": true}}` (--quantile changes it; --quantile 1 means no
quantile); upload with `indexing_threshold: 0` in 1,000-point batches (wait=true), PATCH
`indexing_threshold` 20,000 kB, wait until green with every vector indexed, restart the
server, then per hnsw_ef `POST /points/search` {"vector", "limit": 10, "params": {...}}
from one keep-alive client for: the default search params (quantization on, rescore and
oversampling unset), `quantization.ignore`, `oversampling: 2`, and `rescore: false`.
recall@10 against exact NumPy ground truth, queries/s and the server's `time` p50. The
results go into docs/quantization.md between the "rest-bench" markers.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import orjson

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from pydrant.segments.hnsw import HnswIndex  # noqa: E402
from pydrant.segments.quantization import QuantizedVectors  # noqa: E402

sys.path.insert(0, str(REPO / "tools"))
sys.path.insert(0, str(REPO / "tests"))
from benchlib import Client, ground_truth, load_real, machine, recall  # noqa: E402
from serverproc import ServerProcess  # noqa: E402  (the test harness's launcher, reused)

DEFAULT_DATA = REPO.parent / "shared" / "data"
DOC = REPO / "docs" / "quantization.md"
START, END = "<!-- bench:start -->", "<!-- bench:end -->"
REST_START, REST_END = "<!-- rest-bench:start -->", "<!-- rest-bench:end -->"
COLLECTION = "bench_quantization"
BATCH = 1000
WARMUP = 50
M, EF_CONSTRUCT, K = 16, 100, 10
EFS = (32, 64, 128)
PASSES = 2
CONFIGS = (
    ("scalar int8", {"scalar": {"type": "int8", "always_ram": True}}, (1, 2)),
    ("scalar int8, quantile 0.99",
     {"scalar": {"type": "int8", "quantile": 0.99, "always_ram": True}}, (1, 2)),
    ("binary one_bit", {"binary": {"always_ram": True}}, (3,)),
    ("binary one_bit, scalar8bits query",
     {"binary": {"always_ram": True, "query_encoding": "scalar8bits"}}, (3,)),
    ("product x16", {"product": {"compression": "x16", "always_ram": True}}, (3,)),
)


def measure(fn, queries):
    """(best queries/s over PASSES, the results of the last pass)."""
    best, results = 0.0, None
    for _ in range(PASSES):
        start = time.perf_counter()
        results = [fn(q) for q in queries]
        best = max(best, len(queries) / (time.perf_counter() - start))
    return best, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--rest", action="store_true", help="measure through a real server")
    parser.add_argument("--ef", default="32,64,128", help="hnsw_ef values of the REST run")
    parser.add_argument("--quantile", type=float, default=0.99,
                        help="scalar quantile of the REST run (1: none)")
    args = parser.parse_args()

    base, queries = load_real(args.data, args.points, args.queries)
    n, dim = base.shape
    truth = ground_truth(base, queries)
    print(f"{n} x {dim} points, {len(queries)} queries", flush=True)
    if args.rest:
        section = run_rest(args, base, queries, truth)
        write_section(section, REST_START, REST_END, args.no_write)
    else:
        section = run_kernel(base, queries, truth)
        write_section(section, START, END, args.no_write)


def write_section(section: str, start: str, end: str, no_write: bool) -> None:
    """Print `section` and put it into docs/quantization.md between its markers."""
    print(section)
    if no_write:
        return
    text = DOC.read_text() if DOC.exists() else "# Quantization\n\n"
    if start in text and end in text:
        text = text[: text.index(start)] + section + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    DOC.write_text(text)
    print(f"written to {DOC}")


def run_kernel(base: np.ndarray, queries: np.ndarray, truth: np.ndarray) -> str:
    """The kernel measurements (graph_search + rescoring in this process): the markdown."""
    n, dim = base.shape
    start = time.perf_counter()
    index = HnswIndex.build(base, "Cosine", m=M, ef_construct=EF_CONSTRUCT)
    print(f"graph built in {time.perf_counter() - start:.1f} s", flush=True)

    built = []
    for name, config, oversamplings in CONFIGS:
        start = time.perf_counter()
        qv = QuantizedVectors.build(config, base, "Cosine")
        seconds = time.perf_counter() - start
        qv.graph_search(index, queries[0], K, 32)  # compile outside the timing
        built.append((name, qv, oversamplings, seconds))
        print(f"{name}: built in {seconds:.1f} s, {qv.nbytes / 2**20:.1f} MiB", flush=True)
    index.search(queries[0], K, 32)

    rows = []
    for ef in EFS:
        qps, found = measure(lambda q, ef=ef: index.search(q, K, ef)[0].tolist(), queries)
        rows.append((ef, "unquantized", "-", recall(found, truth), qps))
        print(rows[-1], flush=True)
        for name, qv, oversamplings, _ in built:
            for over in oversamplings:
                limit = K * over

                def run(q, qv=qv, limit=limit, ef=ef):
                    ids, _ = qv.graph_search(index, q, limit, ef)
                    exact = base[ids] @ q  # rescore on the originals
                    return ids[np.argsort(-exact, kind="stable")[:K]].tolist()

                qps, found = measure(run, queries)
                rows.append((ef, name, over, recall(found, truth), qps))
                print(rows[-1], flush=True)

    lines = [
        START,
        "## Benchmark",
        "",
        f"`python tools/bench_quantization.py --points {n} --queries {len(queries)}` on "
        f"{machine()}; {n:,} x {dim} sentence embeddings (../shared/data), Cosine, "
        f"{len(queries):,} queries, m={M}, ef_construct={EF_CONSTRUCT}. Single-thread "
        "queries/s of a single-query Python loop, best of "
        f"{PASSES} passes; the quantized rows include the rescoring of "
        "k x oversampling candidates on the float32 vectors (in RAM), recall@10 after it.",
        "",
        "| hnsw_ef | vectors | oversampling | recall@10 | queries/s |",
        "|---|---|---|---|---|",
    ]
    for ef, name, over, rec, qps in rows:
        lines.append(f"| {ef} | {name} | {over} | {rec:.4f} | {qps:,.0f} |")
    lines += ["", "| vectors | RAM | vs float32 | build |", "|---|---|---|---|",
              f"| float32 | {base.nbytes / 2**20:.1f} MiB | 1 | - |"]
    for name, qv, _, seconds in built:
        lines.append(f"| {name} | {qv.nbytes / 2**20:.1f} MiB | "
                     f"1/{base.nbytes / qv.nbytes:.1f} | {seconds:.1f} s |")
    lines += ["", f"Graph (all variants share it): {index.nbytes / 2**20:.1f} MiB.", END]
    return "\n".join(lines)


# -- through REST ---------------------------------------------------------------------------------

REST_VARIANTS = (  # (label, the search params besides hnsw_ef)
    ("default params", {}),
    ("quantization.ignore", {"quantization": {"ignore": True}}),
    ("oversampling 2", {"quantization": {"oversampling": 2.0}}),
    ("rescore false", {"quantization": {"rescore": False}}),
)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def wait_green(client: Client, points: int, timeout: float = 1800.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        info = client.json("GET", f"/collections/{COLLECTION}")
        if info["status"] == "red":
            raise RuntimeError(f"collection went red: {info.get('optimizer_status')}")
        if info["status"] == "green" and (info.get("indexed_vectors_count") or 0) >= points:
            return info
        if time.monotonic() > deadline:
            raise RuntimeError(f"not green after {timeout:.0f} s: {info['status']}")
        time.sleep(0.5)


def rest_search(client: Client, queries: np.ndarray, truth: np.ndarray, params: dict) -> tuple[float, float, float]:
    """(recall@10, queries/s, server `time` p50 ms) of Q single searches, after a warm-up."""
    path = f"/collections/{COLLECTION}/points/search"
    bodies = [orjson.dumps({"vector": q, "limit": K, "params": params},
                           option=orjson.OPT_SERIALIZE_NUMPY) for q in queries]
    for raw in bodies[:WARMUP]:
        client.call("POST", path, raw)
    found, server_times = [], []
    started = time.perf_counter()
    answers = [client.call("POST", path, raw) for raw in bodies]
    elapsed = time.perf_counter() - started
    for raw in answers:
        parsed = orjson.loads(raw)
        if len(parsed["result"]) != K:
            raise RuntimeError(f"expected {K} hits, got {len(parsed['result'])}")
        found.append([hit["id"] for hit in parsed["result"]])
        server_times.append(parsed["time"])
    return recall(found, truth), len(bodies) / elapsed, float(np.median(server_times)) * 1000


def run_rest(args, base: np.ndarray, queries: np.ndarray, truth: np.ndarray) -> str:
    """The REST measurements (see the module docstring): the markdown."""
    n, dim = base.shape
    efs = [int(x) for x in args.ef.split(",")]
    scalar = {"type": "int8", "always_ram": True}
    if args.quantile < 1:
        scalar["quantile"] = args.quantile
    body = {
        "vectors": {"size": dim, "distance": "Cosine", "on_disk": True},
        "hnsw_config": {"m": M, "ef_construct": EF_CONSTRUCT},
        "optimizers_config": {"indexing_threshold": 0},
        "quantization_config": {"scalar": scalar},
    }
    tmp = Path(tempfile.mkdtemp(prefix="bench_quantization_"))
    server = ServerProcess(tmp / "storage").start()
    rows = []
    try:
        client = Client(server.port)
        client.json("PUT", f"/collections/{COLLECTION}", body)
        started = time.perf_counter()
        for start in range(0, n, BATCH):
            chunk = base[start: start + BATCH]
            batch = {"batch": {"ids": list(range(start, start + len(chunk))), "vectors": chunk}}
            client.call("PUT", f"/collections/{COLLECTION}/points?wait=true",
                        orjson.dumps(batch, option=orjson.OPT_SERIALIZE_NUMPY))
        upload_s = time.perf_counter() - started
        started = time.perf_counter()
        client.json("PATCH", f"/collections/{COLLECTION}",
                    {"optimizers_config": {"indexing_threshold": 20_000}})
        wait_green(client, n)
        build_s = time.perf_counter() - started
        print(f"uploaded in {upload_s:.1f} s, green in {build_s:.1f} s", flush=True)
        client.close()
        server.restart()
        client = Client(server.port)
        info = wait_green(client, n)
        rss = rss_mib(server.proc.pid)
        print(f"restarted: {info['segments_count']} segments, RSS {rss:,.0f} MiB", flush=True)
        for _, extra in REST_VARIANTS:  # compile every kernel before any timing
            rest_search(client, queries[:WARMUP], truth[:WARMUP], {"hnsw_ef": efs[0], **extra})
        for ef in efs:
            for label, extra in REST_VARIANTS:
                rec, qps, server_ms = rest_search(client, queries, truth, {"hnsw_ef": ef, **extra})
                rows.append((ef, label, rec, qps, server_ms))
                print(rows[-1], flush=True)
        client.close()
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    lines = [
        REST_START,
        "## Benchmark through REST",
        "",
        f"`python tools/bench_quantization.py --rest --points {n} --queries {len(queries)} "
        f"--ef {args.ef}{'' if args.quantile == 0.99 else f' --quantile {args.quantile}'}` on "
        f"{machine()}: a real `pydrant serve`, {n:,} x {dim} sentence embeddings "
        f"(../shared/data), Cosine, `on_disk: true`, m={M}, ef_construct={EF_CONSTRUCT}, "
        f"`quantization_config: {orjson.dumps({'scalar': scalar}).decode()}`; uploaded, "
        f"indexed (green, {info['segments_count']} segments), the server restarted, then "
        f"{len(queries):,} `POST /points/search` (limit {K}) from one keep-alive client per "
        "row; queries/s include HTTP and JSON on both sides (client and server share the "
        "CPUs).",
        "",
        "| hnsw_ef | search params | recall@10 | queries/s | server time p50 ms |",
        "|---|---|---|---|---|",
    ]
    for ef, label, rec, qps, server_ms in rows:
        lines.append(f"| {ef} | {label} | {rec:.4f} | {qps:,.0f} | {server_ms:.2f} |")
    lines.append(REST_END)
    return "\n".join(lines)


if __name__ == "__main__":
    main()
