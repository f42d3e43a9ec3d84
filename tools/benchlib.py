"""Pieces the REST benchmarks share: a keep-alive client that fails loudly."""

from __future__ import annotations

import http.client
import os
import platform
import subprocess

import orjson


class Client:
    """One keep-alive HTTP connection; raises on any non-200 answer."""

    def __init__(self, port: int, timeout: float = 120):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def call(self, method: str, path: str, body: bytes | None = None) -> bytes:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        self.conn.request(method, path, body=body, headers=headers)
        response = self.conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"{method} {path}: {response.status} {data[:300]!r}")
        return data

    def json(self, method: str, path: str, body=None):
        raw = None if body is None else orjson.dumps(body)
        return orjson.loads(self.call(method, path, raw))["result"]

    def close(self) -> None:
        self.conn.close()


def machine() -> str:
    """The CPU model and count as `lscpu` reports them (AVX-512 noted: the kernels use it)."""
    model, cpus, avx512 = platform.processor() or platform.machine(), os.cpu_count(), False
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        out = ""
    for line in out.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "Model name":
            model = value.strip()
        elif key.strip() == "CPU(s)" and value.strip().isdigit():
            cpus = int(value.strip())
        elif key.strip() == "Flags":
            avx512 = "avx512f" in value.split()
    return f"{model}, {cpus} CPUs ({platform.machine()}{', AVX-512' if avx512 else ''})"


# -- the ANN benchmarks' data (bench_hnsw.py, bench_quantization.py) ---------------------------


def load_real(data, points: int, queries: int):
    """The first `points` sentence embeddings of ../shared/data (base_a, then base_b) and
    `queries` rows of extra.f16.npy, as unit float32 rows (C-contiguous)."""
    import numpy as np

    parts = [np.load(data / "base_a.f16.npy")]
    if points > parts[0].shape[0]:
        parts.append(np.load(data / "base_b.f16.npy"))
    base = np.concatenate(parts)[:points].astype(np.float32)
    extra = np.load(data / "extra.f16.npy")[:queries].astype(np.float32)

    def normalise(x):
        return np.ascontiguousarray(x / np.linalg.norm(x, axis=1, keepdims=True), dtype=np.float32)

    return normalise(base), normalise(extra)


def ground_truth(base, queries, distance: str = "Cosine", k: int = 10):
    """Exact top-k row numbers (unordered) per query, by NumPy in blocks of 250 queries."""
    import numpy as np

    truth = np.empty((queries.shape[0], k), np.int64)
    base_norms = (base.astype(np.float64) ** 2).sum(1)
    for start in range(0, queries.shape[0], 250):
        sims = queries[start : start + 250] @ base.T
        if distance == "Euclid":  # ranking only: |b|^2 - 2 q.b orders like the distance
            sims = 2 * sims - base_norms[None, :]
        truth[start : start + 250] = np.argpartition(-sims, k, axis=1)[:, :k]
    return truth


def recall(found, truth) -> float:
    """Share of the true top-k found, over all queries."""
    import numpy as np

    hits = sum(len(set(np.asarray(f).tolist()) & set(t.tolist())) for f, t in zip(found, truth))
    return hits / truth.size

