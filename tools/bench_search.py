"""Benchmark exact vector search through REST against bare NumPy on the same vectors.

    python tools/bench_search.py [--data DIR] [--points N] [--queries Q] [--batches B] [--server-env K=V]

1. Load: N points (default 100,000) of the real 384-d sentence embeddings of
   ../shared/data (base_a + base_b, float16 -> float32), ids 0..N-1, payload
   {"split": "a"/"b", "row": i}, one unnamed Cosine float32 vector, columnar `batch`
   bodies of 1,000 points, `wait=true`, one client.
2. NumPy reference, same run, in the client process: the float32 N x 384 matrix
   normalised as the server stores it (Cosine vectors are unit vectors). Single queries:
   `M @ q`, one matrix-vector product that reads the whole matrix once (the
   memory-bandwidth limit). Batches of 100: `Q @ M.T` (the same product as `M @ Q.T`,
   laid out with one contiguous score row per query) + argpartition top-10 per query +
   sort. Each REST row has its own reference, timed in ROUNDS blocks alternating with
   blocks of its REST requests (pauses between blocks), so load changes from other
   processes show on both sides; the share of CPU time other processes used during the
   measurements is printed. Standalone figures (`M @ q` + top-10, the product alone,
   `M @ Q.T` with top-10 down the columns) are printed for information.
3. REST, one keep-alive client, request bodies encoded before the clock: Q (200) single
   queries after warm-ups, `exact: true`, limit 10, via `/points/search` and
   `/points/query` (without and with payload); B (10) batches of 100 queries via
   `/points/search/batch` and `/points/query/batch`. The clock covers the whole HTTP round
   trip (send, server, receive); the answer is parsed with orjson after it. The server's
   own `time` field (handler start to response built) is reported alongside.
4. Correctness: every answer's top-10 ids are compared with NumPy's exact top 10
   (recall@10; 1.0 expected, ties at the 10th place aside) and the largest score
   difference is reported.
5. Prints a Markdown table (pydrant p50, NumPy reference, ratio, target 1.5x, pass/fail)
   with the machine, Python and numpy versions, the load average and the command.

The server is a real `pydrant serve` process on a free port with its storage in a
temporary directory. `--points 5000` makes a quick smoke run; `--server-env NAME=VALUE`
(repeatable) sets an environment variable of the server for experiments (e.g.
OPENBLAS_THREAD_TIMEOUT=4).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import orjson

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "tools"))
from benchlib import Client, machine  # noqa: E402
from serverproc import ServerProcess  # noqa: E402  (the test harness's launcher, reused)

DEFAULT_DATA = REPO.parent / "shared" / "data"
COLLECTION = "bench_search"
DIM = 384
LIMIT = 10
BATCH_SIZE = 100
TARGET_RATIO = 1.5
WARMUP = 5
ROUNDS = 5  # NumPy and REST alternate in this many blocks per table row
PHASE_PAUSE = 0.3  # s between blocks (lets busy-waiting BLAS threads go to sleep)


# -- data ------------------------------------------------------------------------------------


def load_data(data_dir: Path, points: int, queries: int) -> tuple[np.ndarray, np.ndarray, list[tuple[str, int]]]:
    """(base vectors float32, query vectors float32, (split, row) per base point)."""
    parts = [("a", data_dir / "base_a.f16.npy"), ("b", data_dir / "base_b.f16.npy")]
    extra = data_dir / "extra.f16.npy"
    missing = [str(p) for _, p in parts if not p.exists()] + ([] if extra.exists() else [str(extra)])
    if missing:
        raise SystemExit(f"data files missing: {', '.join(missing)} (pass --data DIR)")
    chunks, origin = [], []
    for split, path in parts:
        have = sum(len(c) for c in chunks)
        if have >= points:
            break
        block = np.load(path)[: points - have]
        chunks.append(block)
        origin.extend((split, row) for row in range(len(block)))
    base = np.concatenate(chunks).astype(np.float32)
    if len(base) < points:
        raise SystemExit(f"only {len(base)} base vectors in {data_dir}, asked for {points}")
    query = np.load(extra)[:queries].astype(np.float32)
    return base, query, origin


def unit(vectors: np.ndarray) -> np.ndarray:
    return (vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)).astype(np.float32)


def top_k(scores: np.ndarray, k: int = LIMIT) -> np.ndarray:
    """Indices of the k largest of a 1-d score array, best first (no negated copy)."""
    n = len(scores)
    part = np.argpartition(scores, n - k)[n - k :]
    return part[np.argsort(-scores[part], kind="stable")]


# -- loading through REST ---------------------------------------------------------------------


def load_collection(client: Client, base: np.ndarray, origin: list[tuple[str, int]], batch: int) -> float:
    body = {"vectors": {"size": DIM, "distance": "Cosine", "datatype": "float32"}}
    client.json("PUT", f"/collections/{COLLECTION}", body)
    bodies = []
    for start in range(0, len(base), batch):
        chunk = base[start : start + batch]
        ids = list(range(start, start + len(chunk)))
        payloads = [{"split": origin[i][0], "row": origin[i][1]} for i in ids]
        bodies.append(
            orjson.dumps({"batch": {"ids": ids, "vectors": chunk, "payloads": payloads}}, option=orjson.OPT_SERIALIZE_NUMPY)
        )
    started = time.perf_counter()
    for i, raw in enumerate(bodies):
        wait = "true" if i == len(bodies) - 1 else "false"
        client.call("PUT", f"/collections/{COLLECTION}/points?wait={wait}", raw)
    elapsed = time.perf_counter() - started
    # wait=true on the last batch: every earlier one is applied too (one ordered WAL);
    # the exact count proves it.
    count = client.json("POST", f"/collections/{COLLECTION}/points/count", {"exact": True})["count"]
    if count != len(base):
        raise RuntimeError(f"collection holds {count} points, expected {len(base)}")
    return elapsed


# -- timing helpers ---------------------------------------------------------------------------


def percentiles(samples: list[float]) -> dict:
    arr = np.asarray(samples) * 1000.0
    p50, p90, p99 = (float(np.percentile(arr, p)) for p in (50, 90, 99))
    return {"p50": p50, "p90": p90, "p99": p99, "n": len(arr)}


def time_calls(function, args_list: list, warmup: int = WARMUP) -> tuple[list[float], list]:
    """Wall time of function(arg) for each arg, after `warmup` untimed calls."""
    for arg in args_list[:warmup]:
        function(arg)
    times, results = [], []
    for arg in args_list:
        started = time.perf_counter()
        result = function(arg)
        times.append(time.perf_counter() - started)
        results.append(result)
    return times, results


# -- the NumPy reference -------------------------------------------------------------------------


def matvec(matrix: np.ndarray, q: np.ndarray) -> np.ndarray:
    """The single-query reference: one matrix-vector product (reads the matrix once)."""
    return matrix @ q


def matvec_topk(matrix: np.ndarray, q: np.ndarray) -> np.ndarray:
    return top_k(matrix @ q)


def matmat_topk(matrix: np.ndarray, block: np.ndarray) -> np.ndarray:
    """The batch reference: `Q @ M.T` (= (M @ Q.T).T, one contiguous score row per
    query) + argpartition top-10 along each row + sort of those 10."""
    scores = block @ matrix.T
    n = scores.shape[1]
    part = np.argpartition(scores, n - LIMIT, axis=1)[:, n - LIMIT :]
    best = np.take_along_axis(scores, part, axis=1)
    return np.take_along_axis(part, np.argsort(-best, axis=1, kind="stable"), axis=1)


def matmat_left_topk(matrix: np.ndarray, block: np.ndarray) -> np.ndarray:
    """`M @ Q.T` (N x 100) + top-10 down each column (strided)."""
    scores = matrix @ block.T
    n = len(scores)
    part = np.argpartition(scores, n - LIMIT, axis=0)[n - LIMIT :]
    best = np.take_along_axis(scores, part, axis=0)
    return np.take_along_axis(part, np.argsort(-best, axis=0, kind="stable"), axis=0).T


def matmat(matrix: np.ndarray, block: np.ndarray) -> np.ndarray:
    return block @ matrix.T


def numpy_figures(matrix: np.ndarray, queries: np.ndarray, batches: list[np.ndarray]) -> dict:
    """Standalone NumPy figures (informational; each table row times its own reference)."""
    return {
        "`M @ q`": percentiles(time_calls(lambda q: matvec(matrix, q), list(queries))[0]),
        "`M @ q` + top-10": percentiles(time_calls(lambda q: matvec_topk(matrix, q), list(queries))[0]),
        "`Q @ M.T` alone (100 queries)": percentiles(time_calls(lambda b: matmat(matrix, b), batches, warmup=2)[0]),
        "`Q @ M.T` + top-10 (100 queries)": percentiles(time_calls(lambda b: matmat_topk(matrix, b), batches, warmup=2)[0]),
        "`M @ Q.T` + top-10 down columns (100 queries)": percentiles(
            time_calls(lambda b: matmat_left_topk(matrix, b), batches, warmup=2)[0]
        ),
    }


# -- REST ---------------------------------------------------------------------------------------


def single_body(kind: str, vector: np.ndarray, with_payload: bool) -> bytes:
    key = "vector" if kind == "search" else "query"
    request = {key: vector, "limit": LIMIT, "params": {"exact": True}}
    if with_payload:
        request["with_payload"] = True
    return orjson.dumps(request, option=orjson.OPT_SERIALIZE_NUMPY)


def batch_body(kind: str, block: np.ndarray) -> bytes:
    key = "vector" if kind == "search" else "query"
    searches = [{key: v, "limit": LIMIT, "params": {"exact": True}} for v in block]
    return orjson.dumps({"searches": searches}, option=orjson.OPT_SERIALIZE_NUMPY)


def rest_run(client: Client, path: str, warm: list[bytes], bodies: list[bytes], reference, inputs: list, n_ref: int) -> dict:
    """Round-trip times, the server's own `time` and the parsed results of each body, with
    the NumPy `reference` timed on `n_ref` inputs in the same rounds.

    The requests are sent in ROUNDS blocks; before each block the reference runs on a
    block of its inputs, so both sides sample the same machine load (other processes
    come and go on a shared machine). Each block starts with one untimed call (a `warm`
    body for REST, so no query vector is timed twice) and blocks are separated by a pause:
    OpenBLAS threads busy-wait for a while after each call and sleep after that; per-request
    interleaving would make the client's and the server's BLAS threads fight over the
    cores, and the first call after a sleep pays for waking them."""
    times, ref_times, answers = [], [], []
    per_round = -(-len(bodies) // ROUNDS)
    ref_per_round = max(3, -(-n_ref // ROUNDS))
    for r in range(ROUNDS):
        block = bodies[r * per_round : (r + 1) * per_round]
        if not block:
            break
        ref_inputs = [inputs[(r * ref_per_round + i) % len(inputs)] for i in range(ref_per_round)]
        ref_times += time_calls(reference, ref_inputs, warmup=1)[0]
        time.sleep(PHASE_PAUSE)
        client.call("POST", path, warm[r % len(warm)])
        for raw in block:
            started = time.perf_counter()
            data = client.call("POST", path, raw)
            times.append(time.perf_counter() - started)
            answers.append(data)
        time.sleep(PHASE_PAUSE)
    parsed = [orjson.loads(a) for a in answers]
    return {
        "latency": percentiles(times),
        "reference": percentiles(ref_times),
        "server": percentiles([p["time"] for p in parsed]),
        "results": [p["result"] for p in parsed],
        "response_bytes": int(np.median([len(a) for a in answers])),
        "request_bytes": int(np.median([len(b) for b in bodies])),
    }


def check_answers(answers: list[list[dict]], truth_ids: np.ndarray, truth_scores: np.ndarray, origin, with_payload: bool) -> dict:
    """recall@10 and the largest |score difference| against the NumPy top 10."""
    found = 0
    worst = 0.0
    for hits, ids, scores in zip(answers, truth_ids, truth_scores):
        got = [h["id"] for h in hits]
        if len(got) != LIMIT:
            raise RuntimeError(f"expected {LIMIT} hits, got {len(got)}")
        found += len(set(got) & set(ids.tolist()))
        truth = dict(zip(ids.tolist(), scores.tolist()))
        for h in hits:
            if h["id"] in truth:
                worst = max(worst, abs(h["score"] - truth[h["id"]]))
            if with_payload:
                split, row = origin[h["id"]]
                if h["payload"] != {"split": split, "row": row}:
                    raise RuntimeError(f"point {h['id']}: payload {h['payload']!r}")
    return {"recall": found / (LIMIT * len(answers)), "max_score_diff": worst, "checked": len(answers)}


# -- machine --------------------------------------------------------------------------------------


def blas() -> str:
    try:
        info = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{info['name']} {info['version']}"
    except Exception:
        return "unknown"


def cpu_snapshot(pids: list[int]) -> tuple[int, int, int]:
    """(busy jiffies of the whole machine, all jiffies, jiffies used by `pids`) from /proc."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
        mine = 0
        for pid in pids:
            stat = Path(f"/proc/{pid}/stat").read_text()
            parts = stat[stat.rindex(")") + 2 :].split()
            mine += int(parts[11]) + int(parts[12])  # utime + stime, all threads
        return sum(fields) - fields[3] - fields[4], sum(fields), mine
    except (OSError, ValueError, IndexError):
        return 0, 0, 0


def others_share(before: tuple[int, int, int], after: tuple[int, int, int]) -> float | None:
    """Share of the machine's CPU time (all cores) used by processes other than ours."""
    total = after[1] - before[1]
    if total <= 0:
        return None
    return max(0.0, ((after[0] - before[0]) - (after[2] - before[2])) / total)


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


# -- main -------------------------------------------------------------------------------------------


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200, help="single queries timed per endpoint")
    parser.add_argument("--batches", type=int, default=10, help="batches of 100 queries timed per endpoint")
    parser.add_argument("--numpy-queries", type=int, default=200, help="NumPy reference samples per single-query row")
    parser.add_argument("--upsert-batch", type=int, default=1_000)
    parser.add_argument(
        "--server-env", action="append", default=[], metavar="NAME=VALUE",
        help="extra environment variable of the server process (repeatable), for experiments",
    )
    args = parser.parse_args(argv)

    command = "python tools/bench_search.py " + " ".join(sys.argv[1:] if argv is None else argv)
    n_queries = max(args.queries + WARMUP, args.batches * BATCH_SIZE + 2 * BATCH_SIZE)
    base, query_vectors, origin = load_data(args.data, args.points, n_queries)
    matrix = unit(base)
    queries = unit(query_vectors)
    singles = queries[: args.queries]
    batch_blocks = [queries[i * BATCH_SIZE : (i + 1) * BATCH_SIZE] for i in range(args.batches)]

    # Exact truth for every query used (matrix products in blocks, off the clock).
    truth_ids, truth_scores = [], []
    for start in range(0, max(args.queries, args.batches * BATCH_SIZE), BATCH_SIZE):
        scores = queries[start : start + BATCH_SIZE] @ matrix.T
        ids = np.stack([top_k(row) for row in scores])
        truth_ids.append(ids)
        truth_scores.append(np.take_along_axis(scores, ids, axis=1))
    truth_ids, truth_scores = np.concatenate(truth_ids), np.concatenate(truth_scores)

    print(f"machine: {machine()}")
    print(f"python {platform.python_version()}, numpy {np.__version__}, BLAS: {blas()}")
    print(f"command: {command}")
    print(f"points: {len(base)} x {DIM} float32 (from {args.data}), load average at start: {loadavg()}")

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        server_env = {"PYDRANT__LOG_LEVEL": "WARNING"}
        server_env.update(item.split("=", 1) for item in args.server_env)
        server = ServerProcess(Path(tmp) / "storage", extra_env=server_env).start()
        try:
            client = Client(server.port)
            load_s = load_collection(client, base, origin, args.upsert_batch)
            print(f"loaded {len(base)} points in {load_s:.1f} s ({len(base) / load_s:,.0f} points/s)")
            del base

            print(f"load average before measuring: {loadavg()}")
            pids = [os.getpid(), server.proc.pid]
            cpu_before = cpu_snapshot(pids)
            started = time.perf_counter()
            figures = numpy_figures(matrix, queries[: args.numpy_queries], batch_blocks)
            time.sleep(PHASE_PAUSE)

            single_cases = [
                ("search", "/points/search", False),
                ("query", "/points/query", False),
                ("search", "/points/search", True),
                ("query", "/points/query", True),
            ]
            for kind, path, with_payload in single_cases:
                bodies = [single_body(kind, q, with_payload) for q in singles]
                warm = [single_body(kind, q, with_payload) for q in queries[-WARMUP:]]
                run = rest_run(
                    client, f"/collections/{COLLECTION}{path}", warm, bodies,
                    lambda q: matvec(matrix, q), list(singles), args.numpy_queries,
                )
                answers = [r if kind == "search" else r["points"] for r in run["results"]]
                check = check_answers(answers, truth_ids[: len(singles)], truth_scores[: len(singles)], origin, with_payload)
                label = f"`{path}`, 1 query" + (", with_payload" if with_payload else "")
                rows.append((label, run, "`M @ q`", check))

            for kind, path in (("search", "/points/search/batch"), ("query", "/points/query/batch")):
                bodies = [batch_body(kind, block) for block in batch_blocks]
                warm = [batch_body(kind, queries[-BATCH_SIZE - 1 : -1])]
                run = rest_run(
                    client, f"/collections/{COLLECTION}{path}", warm, bodies,
                    lambda b: matmat_topk(matrix, b), batch_blocks, len(batch_blocks),
                )
                answers = [hits if kind == "search" else hits["points"] for result in run["results"] for hits in result]
                n = len(answers)
                check = check_answers(answers, truth_ids[:n], truth_scores[:n], origin, False)
                rows.append((f"`{path}`, {BATCH_SIZE} queries", run, "`Q @ M.T` + top-10", check))
            others = others_share(cpu_before, cpu_snapshot(pids))
            print(f"load average after measuring: {loadavg()}")
            if others is not None:
                print(
                    f"other processes used {others:.0%} of the machine's CPU time during the "
                    f"{time.perf_counter() - started:.0f} s of measurements (0% = quiet machine)"
                )
            client.close()
        finally:
            server.stop()

    print()
    print(f"NumPy alone (same run, client process, before the REST runs; {args.numpy_queries} queries, {args.batches} batches):")
    for name, figure in figures.items():
        print(f"- {name}: p50 {figure['p50']:.2f} ms, p90 {figure['p90']:.2f} ms")
    print()
    print(
        "| operation | pydrant p50 ms | p90 ms | p99 ms | server `time` p50 ms | NumPy reference | NumPy p50 ms "
        "| ratio | target | pass | recall@10 |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for label, run, ref_label, check in rows:
        lat = run["latency"]
        reference = run["reference"]["p50"]
        ratio = lat["p50"] / reference
        verdict = "pass" if ratio <= TARGET_RATIO else "**fail**"
        print(
            f"| {label} | {lat['p50']:.2f} | {lat['p90']:.2f} | {lat['p99']:.2f} | {run['server']['p50']:.2f} | "
            f"{ref_label} | {reference:.2f} | {ratio:.2f}x | ≤ {TARGET_RATIO}x | {verdict} | {check['recall']:.4f} |"
        )
    print()
    for label, run, _, check in rows:
        print(
            f"- {label}: {run['latency']['n']} timed, request {run['request_bytes']:,} B, response {run['response_bytes']:,} B, "
            f"recall@10 {check['recall']:.4f} over {check['checked']} queries, max |score diff| {check['max_score_diff']:.2e}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
