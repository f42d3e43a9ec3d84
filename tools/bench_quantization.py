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
Configs: scalar int8 with oversampling 1 and 2, binary (one_bit, binary query) with
oversampling 3, binary with a scalar8bits query (oversampling 3), product x16 with
oversampling 3. Each measurement is the best of 2 passes. RAM: `nbytes` of the codes
against the float32 vectors. The results go into docs/quantization.md between the
"bench" markers (--no-write: print only).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from pydrant.segments.hnsw import HnswIndex  # noqa: E402
from pydrant.segments.quantization import QuantizedVectors  # noqa: E402

sys.path.insert(0, str(REPO / "tools"))
from benchlib import ground_truth, load_real, machine, recall  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "data"
DOC = REPO / "docs" / "quantization.md"
START, END = "<!-- bench:start -->", "<!-- bench:end -->"
M, EF_CONSTRUCT, K = 16, 100, 10
EFS = (32, 64, 128)
PASSES = 2
CONFIGS = (
    ("scalar int8", {"scalar": {"type": "int8", "always_ram": True}}, (1, 2)),
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
    args = parser.parse_args()

    base, queries = load_real(args.data, args.points, args.queries)
    n, dim = base.shape
    truth = ground_truth(base, queries)
    print(f"{n} x {dim} points, {len(queries)} queries", flush=True)
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
    section = "\n".join(lines)
    print(section)
    if not args.no_write:
        text = DOC.read_text() if DOC.exists() else "# Quantization\n\n"
        if START in text and END in text:
            text = text[: text.index(START)] + section + text[text.index(END) + len(END):]
        else:
            text = text.rstrip("\n") + "\n\n" + section + "\n"
        DOC.write_text(text)
        print(f"written to {DOC}")


if __name__ == "__main__":
    main()
