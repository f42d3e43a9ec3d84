"""Benchmark pydrant's Numba HNSW (pydrant/segments/hnsw.py) against hnswlib, in one run.

    python tools/bench_hnsw.py [--data DIR] [--points N] [--queries Q] [--no-synthetic]

hnswlib is a benchmark-only dependency (`pip install hnswlib`, 0.8.0; not in pyproject).

Two data sets:

1. **real**: N (default 100,000) of the 384-d sentence embeddings of ../shared/data
   (base_a + base_b, float16 -> float32, renormalised), Cosine (hnswlib space "ip" on the
   same unit vectors); Q (default 1,000) queries from extra.f16.npy.
2. **synthetic**: N x 128 float32 Gaussian mixture, Euclid (hnswlib "l2"), seeded: 100
   centres drawn from N(0, I), each point a random centre + N(0, 0.5^2 I); Q queries drawn
   the same way. (A plain 128-d Gaussian, HNSW's worst case, stays below recall 0.9 even at
   ef 512 for both engines; clusters are closer to real embeddings.)

For each: exact ground truth with NumPy (matrix product + argpartition); graphs built with
m=16, ef_construct=100 by both engines with 1 and with 2 threads (wall time of the build
call; pydrant's graph is identical for any thread count, so the 2-thread one is searched);
then for each hnsw_ef recall@10 and single-thread queries/s of a single-query Python loop
(`HnswIndex.search(q, 10, ef)` vs `Index.knn_query(q, k=10)` with set_num_threads(1)),
the two engines interleaved, best of 3 passes each, so load from other processes hits both.
QPS at recall 0.95 is interpolated (log QPS linear in recall) between the measured efs
that bracket it. Batch throughput with 2 threads (`search_batch` / batched knn_query) is
reported for information. RAM: pydrant's graph arrays (`HnswIndex.nbytes`); hnswlib's
graph is its saved index minus the vectors and labels.

Targets (issue "Numba HNSW..."): single-thread QPS >= 0.7x hnswlib's at recall@10 0.95 on
the real set, build <= 2x hnswlib's time with the same thread count.
`--points 5000 --queries 200` makes a quick smoke run.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from pydrant.segments.hnsw import HnswIndex  # noqa: E402

sys.path.insert(0, str(REPO / "tools"))
from benchlib import ground_truth, load_real, machine, recall  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "data"
M, EF_CONSTRUCT, K, SEED = 16, 100, 10, 42
EFS = (10, 16, 24, 32, 64, 128, 256)
TARGET_RECALL = 0.95
QPS_TARGET, BUILD_TARGET = 0.7, 2.0
PASSES = 3


def synthetic(points: int, queries: int, dim: int = 128, centres: int = 100, spread: float = 0.5):
    rng = np.random.default_rng(SEED)
    centre = rng.standard_normal((centres, dim), dtype=np.float32)

    def draw(count):
        noise = rng.standard_normal((count, dim), dtype=np.float32)
        return (centre[rng.integers(0, centres, count)] + spread * noise).astype(np.float32)

    return draw(points), draw(queries)


def build_hnswlib(base, space, threads):
    import hnswlib

    index = hnswlib.Index(space=space, dim=base.shape[1])
    index.init_index(max_elements=base.shape[0], M=M, ef_construction=EF_CONSTRUCT, random_seed=SEED)
    index.set_num_threads(threads)
    start = time.perf_counter()
    index.add_items(base, np.arange(base.shape[0]))
    return index, time.perf_counter() - start


def build_pydrant(base, distance, threads):
    start = time.perf_counter()
    index = HnswIndex.build(base, distance, m=M, ef_construct=EF_CONSTRUCT, seed=SEED, threads=threads)
    return index, time.perf_counter() - start


def hnswlib_graph_bytes(index, base) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "index.bin")
        index.save_index(path)
        size = os.path.getsize(path)
    return size - base.shape[0] * (base.shape[1] * 4 + 8)


def loop_qps(search, queries, passes=PASSES):
    """(best queries/s over passes, ids of the last pass) of a single-query loop."""
    best, found = 0.0, None
    for _ in range(passes):
        start = time.perf_counter()
        found = [search(q) for q in queries]
        best = max(best, len(queries) / (time.perf_counter() - start))
    return best, found


def qps_at(curve, target):
    """Interpolated QPS at recall `target` from [(recall, qps)] sorted by ef; None if the
    curve does not reach it, the first QPS if it starts above it."""
    for (r0, q0), (r1, q1) in zip(curve, curve[1:]):
        if r0 < target <= r1:
            w = (target - r0) / (r1 - r0)
            return math.exp(math.log(q0) + w * (math.log(q1) - math.log(q0)))
    if curve and curve[0][0] >= target:
        return curve[0][1]
    return None


def run_set(name, base, queries, distance, space, efs):
    print(f"\n[{name}] {base.shape[0]:,} x {base.shape[1]}, {distance}, {queries.shape[0]:,} queries",
          flush=True)
    truth = ground_truth(base, queries, distance)
    builds = {}
    for threads in (1, 2):
        _, builds[("hnswlib", threads)] = build_hnswlib(base, space, threads)
        py, builds[("pydrant", threads)] = build_pydrant(base, distance, threads)
        print(f"  build {threads} thread(s): hnswlib {builds[('hnswlib', threads)]:.1f} s, "
              f"pydrant {builds[('pydrant', threads)]:.1f} s (load {os.getloadavg()[0]:.2f})",
              flush=True)
    peer, _ = build_hnswlib(base, space, 2)
    peer.set_num_threads(1)
    rows = []
    for ef in efs:
        peer.set_ef(ef)
        py_qps, py_found = loop_qps(lambda q, ef=ef: py.search(q, K, ef=ef)[0], queries)
        h_qps, h_found = loop_qps(lambda q: peer.knn_query(q, k=K)[0][0], queries)
        rows.append((ef, recall(py_found, truth), py_qps, recall(h_found, truth), h_qps))
        print(f"  ef {ef}: pydrant {rows[-1][1]:.4f} {py_qps:,.0f}/s, "
              f"hnswlib {rows[-1][3]:.4f} {h_qps:,.0f}/s (load {os.getloadavg()[0]:.2f})", flush=True)
    # batch throughput, 2 threads, ef 64
    peer.set_ef(64)
    peer.set_num_threads(2)
    start = time.perf_counter()
    py_ids, _ = py.search_batch(queries, K, ef=64, threads=2)
    py_batch = queries.shape[0] / (time.perf_counter() - start)
    start = time.perf_counter()
    h_ids, _ = peer.knn_query(queries, k=K)
    h_batch = queries.shape[0] / (time.perf_counter() - start)
    batch = (py_batch, recall(py_ids, truth), h_batch, recall(h_ids, truth))
    memory = (py.nbytes, hnswlib_graph_bytes(peer, base))
    return {"name": name, "shape": base.shape, "distance": distance, "builds": builds,
            "rows": rows, "batch": batch, "memory": memory, "queries": queries.shape[0]}


def versions() -> str:
    import numba

    parts = [f"Python {platform.python_version()}", f"numpy {np.__version__}", f"numba {numba.__version__}"]
    for package in ("llvmlite", "hnswlib"):
        try:
            parts.append(f"{package} {importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            parts.append(f"{package} ?")
    return ", ".join(parts)


def report(results, command, load_before, load_after) -> str:
    out = [f"Machine: {machine()}; {versions()}.",
           f"Command: `{command}`; load average (1 min) {load_before:.2f} before, {load_after:.2f} after.",
           f"m={M}, ef_construct={EF_CONSTRUCT}, k={K}, seed {SEED}.", ""]
    for res in results:
        n, dim = res["shape"]
        b = res["builds"]
        out.append(f"### {res['name']}: {n:,} x {dim}, {res['distance']}, {res['queries']:,} queries")
        out.append("")
        out.append("| build | hnswlib s | pydrant s | pydrant / hnswlib | target <= 2x |")
        out.append("|---|---|---|---|---|")
        for threads in (1, 2):
            ratio = b[("pydrant", threads)] / b[("hnswlib", threads)]
            out.append(f"| {threads} thread{'s' if threads > 1 else ''} | {b[('hnswlib', threads)]:.1f} | "
                       f"{b[('pydrant', threads)]:.1f} | {ratio:.2f} | {'pass' if ratio <= BUILD_TARGET else 'FAIL'} |")
        out.append("")
        out.append("| hnsw_ef | pydrant recall@10 | pydrant QPS | hnswlib recall@10 | hnswlib QPS | QPS ratio |")
        out.append("|---|---|---|---|---|---|")
        for ef, pr, pq, hr, hq in res["rows"]:
            out.append(f"| {ef} | {pr:.4f} | {pq:,.0f} | {hr:.4f} | {hq:,.0f} | {pq / hq:.2f} |")
        py_at = qps_at([(r[1], r[2]) for r in res["rows"]], TARGET_RECALL)
        h_at = qps_at([(r[3], r[4]) for r in res["rows"]], TARGET_RECALL)
        if py_at and h_at:
            ratio = py_at / h_at
            verdict = "pass" if ratio >= QPS_TARGET else "FAIL"
            out.append(f"| **at recall {TARGET_RECALL}** | | {py_at:,.0f} | | {h_at:,.0f} | "
                       f"**{ratio:.2f}** (target >= {QPS_TARGET}: {verdict}) |")
        else:
            out.append(f"| at recall {TARGET_RECALL} | | not reached | | | |")
        pb, pbr, hb, hbr = res["batch"]
        out.append("")
        out.append(f"Batch of {res['queries']:,} queries, 2 threads, ef 64: pydrant `search_batch` "
                   f"{pb:,.0f} queries/s (recall {pbr:.4f}), hnswlib `knn_query` {hb:,.0f}/s (recall {hbr:.4f}).  ")
        pm, hm = res["memory"]
        out.append(f"Graph RAM (vectors excluded): pydrant {pm / 2**20:.1f} MiB, hnswlib ~{hm / 2**20:.1f} MiB.")
        out.append("")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--no-synthetic", action="store_true")
    parser.add_argument("--no-real", action="store_true")
    args = parser.parse_args()
    command = " ".join(["python tools/bench_hnsw.py", *sys.argv[1:]])
    load_before = os.getloadavg()[0]

    # compile (or load the cached) kernels off the clock
    warm = np.random.default_rng(0).standard_normal((300, 8)).astype(np.float32)
    for distance in ("Cosine", "Euclid"):
        w = HnswIndex.build(warm, distance, m=M, ef_construct=20, threads=2)
        w.search(warm[0], K, ef=32)
        w.search_batch(warm[:4], K, ef=32, threads=2)

    results = []
    if not args.no_real:
        base, queries = load_real(args.data, args.points, args.queries)
        results.append(run_set("real embeddings", base, queries, "Cosine", "ip", EFS))
        del base, queries
    if not args.no_synthetic:
        base, queries = synthetic(args.points, args.queries)
        results.append(run_set("synthetic Gaussian mixture", base, queries, "Euclid", "l2", EFS))
    print()
    print(report(results, command, load_before, os.getloadavg()[0]))


if __name__ == "__main__":
    main()
