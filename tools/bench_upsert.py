"""Benchmark the durable write path through REST.

    python tools/bench_upsert.py [--data DIR] [--points N] [--batch B] [--clients C] [--seconds S] [--shards K]

1. Bulk: N points (default 100,000) x 384-d float32 with a small payload, upserted in
   batches of B (1,000) with `wait=true` by one client; request bodies are encoded before
   the clock starts. Reports points/s.
2. Group commit: C (64) concurrent clients, each upserting single points with `wait=true`
   for S seconds. Reports requests/s, WAL fsyncs/s and fsyncs per request (read from the
   server's /metrics, counter `pydrant_collection_wal_fsyncs_total`).

`--shards K` creates the collections with `shard_number` K (docs/sharding.md): the points of
each request are split over K shards, each with its own WAL and fsyncs (the fsyncs reported
are the sum over the shards).

Vectors are the real sentence embeddings of ../shared/data (base_a/base_b, float16 ->
float32) when present, else random unit vectors. The server is a real `pydrant serve`
process on a free port with its storage in a temporary directory.
"""

from __future__ import annotations

import argparse
import platform
import re
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import orjson

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "tools"))
from benchlib import Client  # noqa: E402
from serverproc import ServerProcess  # noqa: E402  (the test harness's launcher, reused)

DEFAULT_DATA = REPO.parent / "shared" / "data"
COLLECTION = "bench"


def load_vectors(data_dir: Path, count: int) -> tuple[np.ndarray, str]:
    parts = [data_dir / "base_a.f16.npy", data_dir / "base_b.f16.npy"]
    if all(p.exists() for p in parts):
        vectors = np.concatenate([np.load(p) for p in parts]).astype(np.float32)[:count]
        return vectors, f"real embeddings from {data_dir}"
    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((count, 384), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors, "random unit vectors (no data directory)"


def create_collection(client: Client, name: str, shards: int = 1) -> None:
    body = orjson.dumps({"vectors": {"size": 384, "distance": "Cosine"}, "shard_number": shards})
    client.call("PUT", f"/collections/{name}", body)


def encode_batches(vectors: np.ndarray, batch: int) -> list[bytes]:
    bodies = []
    for start in range(0, len(vectors), batch):
        chunk = vectors[start : start + batch]
        ids = list(range(start, start + len(chunk)))
        payloads = [{"n": i, "group": f"g{i % 100}"} for i in ids]
        bodies.append(
            orjson.dumps({"batch": {"ids": ids, "vectors": chunk, "payloads": payloads}}, option=orjson.OPT_SERIALIZE_NUMPY)
        )
    return bodies


def bench_bulk(port: int, vectors: np.ndarray, batch: int, shards: int = 1) -> dict:
    client = Client(port)
    create_collection(client, COLLECTION, shards)
    bodies = encode_batches(vectors, batch)
    started = time.perf_counter()
    for body in bodies:
        client.call("PUT", f"/collections/{COLLECTION}/points?wait=true", body)
    elapsed = time.perf_counter() - started
    count = orjson.loads(client.call("POST", f"/collections/{COLLECTION}/points/count", b'{"exact": true}'))
    assert count["result"]["count"] == len(vectors), count
    return {"points": len(vectors), "seconds": elapsed, "points_per_s": len(vectors) / elapsed}


def wal_fsyncs(client: Client, collection: str) -> float:
    text = client.call("GET", "/metrics").decode()
    match = re.search(rf'pydrant_collection_wal_fsyncs_total{{collection="{collection}"}} ([0-9.e+]+)', text)
    if match is None:
        raise RuntimeError("server's /metrics has no pydrant_collection_wal_fsyncs_total")
    return float(match.group(1))


def bench_group_commit(port: int, vectors: np.ndarray, clients: int, seconds: float, shards: int = 1) -> dict:
    name = f"{COLLECTION}_single"
    admin = Client(port)
    create_collection(admin, name, shards)
    stop = threading.Event()
    counts = [0] * clients
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        client = Client(port)
        point_id = index
        try:
            while not stop.is_set():
                vector = vectors[point_id % len(vectors)]
                body = orjson.dumps({"points": [{"id": point_id, "vector": vector}]}, option=orjson.OPT_SERIALIZE_NUMPY)
                client.call("PUT", f"/collections/{name}/points?wait=true", body)
                counts[index] += 1
                point_id += clients
        except BaseException as exc:  # reported after the run
            errors.append(exc)

    before = wal_fsyncs(admin, name)
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    fsyncs = wal_fsyncs(admin, name) - before
    requests = sum(counts)
    return {
        "clients": clients,
        "requests": requests,
        "requests_per_s": requests / elapsed,
        "fsyncs_per_s": fsyncs / elapsed,
        "fsyncs_per_request": fsyncs / requests,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--shards", type=int, default=1, help="shard_number of the collections")
    args = parser.parse_args(argv)
    vectors, source = load_vectors(args.data, args.points)
    print(f"machine: {platform.machine()} {platform.processor() or ''}, python {platform.python_version()}, data: {source}")
    print(f"shards per collection: {args.shards}")
    with tempfile.TemporaryDirectory() as tmp:
        server = ServerProcess(Path(tmp) / "storage", extra_env={"PYDRANT__LOG_LEVEL": "WARNING"}).start()
        try:
            bulk = bench_bulk(server.port, vectors, args.batch, args.shards)
            print(f"bulk upsert: {bulk['points']} points in {bulk['seconds']:.2f} s = {bulk['points_per_s']:,.0f} points/s")
            single = bench_group_commit(server.port, vectors, args.clients, args.seconds, args.shards)
            print(
                f"{single['clients']} clients, single-point upserts: {single['requests_per_s']:,.0f} requests/s, "
                f"{single['fsyncs_per_s']:,.0f} fsyncs/s, {single['fsyncs_per_request']:.3f} fsyncs per request"
            )
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
