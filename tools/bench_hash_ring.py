"""Ids routed per second by the hash ring (pydrant/collection/hash_ring.py).

    python tools/bench_hash_ring.py [--points N] [--shards S] [--repeat R]

Hashes N (100,000) integer ids and N random UUIDs into a ring of S (3) shards: the SipHash
kernel alone (`hash_int_ids`, `hash_uuids`) and the whole lookup (`shard_of_ids`,
`shard_of_uuids`, i.e. hash + `searchsorted`), best of R (5) runs after one warm-up (the
Numba kernels compile or load from cache first); plus `shard_of_points` on a Python list of
N mixed ids, which is what a REST upsert hands over (it includes parsing the UUID strings).
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tools"))
from benchlib import machine  # noqa: E402

from pydrant.collection.hash_ring import HashRing, hash_int_ids, hash_uuids  # noqa: E402


def best(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--shards", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    n = args.points
    rng = np.random.default_rng(1)
    ints = np.arange(n, dtype=np.uint64)
    uuids = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    mixed: list[int | str] = [int(i) for i in ints[: n // 2]] + [str(uuid.UUID(bytes=b.tobytes())) for b in uuids[: n - n // 2]]
    start = time.perf_counter()
    ring = HashRing(range(args.shards))
    ring_ms = (time.perf_counter() - start) * 1000
    print(f"machine: {machine()}")
    print(f"{n:,} ids, ring of {args.shards} shards x 100 virtual nodes (first build {ring_ms:.1f} ms, incl. JIT load)")
    rows = [
        ("int ids, SipHash only", lambda: hash_int_ids(ints)),
        ("int ids, shard_of_ids", lambda: ring.shard_of_ids(ints)),
        ("UUIDs, SipHash only", lambda: hash_uuids(uuids)),
        ("UUIDs, shard_of_uuids", lambda: ring.shard_of_uuids(uuids)),
        ("mixed list, shard_of_points", lambda: ring.shard_of_points(mixed)),
    ]
    for label, fn in rows:
        seconds = best(fn, args.repeat)
        print(f"{label:<30} {seconds * 1000:8.2f} ms  {n / seconds / 1e6:8.1f} M ids/s")


if __name__ == "__main__":
    main()
