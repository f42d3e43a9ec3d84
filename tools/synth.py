"""Seeded synthetic 384-d points derived from real embeddings (issue 17, B0/B1/B2).

    from synth import Synth, load_queries
    synth = Synth.from_data_dir(Path("../shared/data"), seed=1, cache_dir=Path("/tmp/synth_cache"))
    rows = synth.block(3)                     # points 300,000..399,999: float32 (100_000, 384), unit rows
    rows = synth.points(250_000, 251_000)     # any range, across blocks
    ids, scores = synth.ground_truth(queries, n_points=1_000_000, k=10)

The point set (docs/design/on-disk-segments.md, "The 10M scale run"):

- points 0 .. N_real-1 are the real vectors themselves (base_a + base_b of ../shared/data,
  float16 -> float32, renormalised);
- point i >= N_real is `normalize(x_a + t (x_b - x_a) + sigma eps)` with a = i mod N_real,
  b one of the 16 nearest real neighbours of x_a (uniformly chosen), t ~ U(0, 0.5),
  sigma = 0.02, eps ~ N(0, I): derived points lie between real neighbours instead of
  forming tight clusters of copies around each real vector (bench_server's copies).

Contracts:

- **Blocks regenerate alone.** The randomness of block j (points j*B .. (j+1)*B-1, B =
  100,000 by default) comes only from `np.random.default_rng([seed, j])`, drawn in a fixed
  order (neighbour choice, t, eps) for *every* row of the block, real rows included (their
  draws are simply unused), so a row's value depends on (seed, its block, its position),
  never on which other blocks were generated before.
- **The neighbour table is computed once and cached** under the caller's `cache_dir`
  (never in the repository), named by a fingerprint of the real vectors, so a different
  data set or a changed file never reuses a stale table. Exact cosine top-16 (self
  excluded), ties broken by the smaller row number, so the table does not depend on
  `argpartition`'s order. It is computed with float32 matrix products whose rounding may
  differ with the BLAS build or thread count; two machines may therefore pick a different
  neighbour in a near-tie. Within one cache (one machine) the data is stable.
- Importing this module touches no file: the data directory is read only when
  `Synth.from_data_dir` / `load_queries` are called, so tests run without ../shared.

Decided here (the design left it open): the first N_real points are the real vectors
(the B0 brief: "the 100k real + synth derived"), and the block size is a constructor
argument (default 100,000, the design's) so that tests can use a few hundred fake "real"
rows.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

BLOCK = 100_000
NEIGHBOURS = 16
SIGMA = 0.02
T_MAX = 0.5
# rows of the real set per matrix product while searching neighbours: 512 x 100,000 float32
# similarities = 200 MB of temporaries, small next to the 2-core machine's 24 GiB
NEIGHBOUR_CHUNK = 512
# queries per matrix product in ground_truth: bounds the (queries x block) similarity matrix
TRUTH_QUERY_CHUNK = 1000


def normalize(rows: np.ndarray) -> np.ndarray:
    """Unit-norm float32 rows, in place when `rows` is already float32 and writable."""
    rows = np.asarray(rows, dtype=np.float32)
    if not rows.flags.writeable:
        rows = rows.copy()
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return rows


def load_real(data_dir: Path) -> np.ndarray:
    """The 100,000 real embeddings (base_a then base_b) as unit float32 rows."""
    files = [Path(data_dir) / "base_a.f16.npy", Path(data_dir) / "base_b.f16.npy"]
    missing = [str(p) for p in files if not p.exists()]
    if missing:
        raise FileNotFoundError(f"real vectors missing: {', '.join(missing)} (pass --data DIR)")
    return np.ascontiguousarray(normalize(np.concatenate([np.load(p) for p in files]).astype(np.float32)))


def load_queries(data_dir: Path, count: int) -> np.ndarray:
    """The first `count` rows of extra.f16.npy (passages not among the points), unit float32."""
    path = Path(data_dir) / "extra.f16.npy"
    if not path.exists():
        raise FileNotFoundError(f"query vectors missing: {path} (pass --data DIR)")
    queries = np.load(path)[:count]
    if len(queries) < count:
        raise ValueError(f"only {len(queries)} query vectors in {path}, {count} asked")
    return np.ascontiguousarray(normalize(queries.astype(np.float32)))


def fingerprint(real: np.ndarray) -> str:
    """A short stable name for a real set: sha256 of its shape and float32 bytes."""
    digest = hashlib.sha256(repr(real.shape).encode())
    digest.update(np.ascontiguousarray(real, dtype=np.float32).tobytes())
    return digest.hexdigest()[:16]


def nearest_neighbours(real: np.ndarray, k: int = NEIGHBOURS, chunk: int = NEIGHBOUR_CHUNK) -> np.ndarray:
    """(N_real, k) int32: row r lists the k rows of `real` with the highest dot product with
    row r (row r itself excluded), best first, ties broken by the smaller row number."""
    n = real.shape[0]
    if n <= k:
        raise ValueError(f"need more than {k} real vectors to pick {k} neighbours, got {n}")
    table = np.empty((n, k), dtype=np.int32)
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        sims = real[start:stop] @ real.T
        sims[np.arange(stop - start), np.arange(start, stop)] = -np.inf  # never its own neighbour
        # k+1 candidates by argpartition, then an exact (score desc, row asc) order; a tie at
        # the k-th place beyond the candidates is broken by argpartition: negligible for real
        # data (float32 scores of distinct passages) and documented in the module docstring
        take = min(k + 1, n - 1)
        cand = np.argpartition(-sims, take - 1, axis=1)[:, :take]
        order = best_first(cand, np.take_along_axis(sims, cand, axis=1))[:, :k]
        table[start:stop] = np.take_along_axis(cand, order, axis=1)
    return table


class Synth:
    """The seeded point set over one real set; see the module docstring for the contracts."""

    def __init__(
        self,
        real: np.ndarray,
        seed: int,
        cache_dir: Path,
        block_size: int = BLOCK,
        sigma: float = SIGMA,
    ):
        if real.ndim != 2:
            raise ValueError(f"real vectors must be 2-d, got shape {real.shape}")
        # a private copy: normalising in place would change the caller's array (and a second
        # generator built from it would then see other bytes)
        self.real = normalize(np.array(real, dtype=np.float32, order="C", copy=True))
        self.seed = int(seed)
        self.cache_dir = Path(cache_dir)
        self.block_size = int(block_size)
        self.sigma = float(sigma)
        self.dim = self.real.shape[1]
        self._neighbours: np.ndarray | None = None
        self._cached_block: tuple[int, np.ndarray] | None = None  # the last block, for points()

    @classmethod
    def from_data_dir(cls, data_dir: Path, seed: int, cache_dir: Path, **kwargs) -> Synth:
        return cls(load_real(data_dir), seed, cache_dir, **kwargs)

    @property
    def n_real(self) -> int:
        return self.real.shape[0]

    # -- the neighbour table ------------------------------------------------------------------

    def neighbours_path(self) -> Path:
        return self.cache_dir / f"synth_neighbours_{fingerprint(self.real)}_k{NEIGHBOURS}.npy"

    def neighbours(self) -> np.ndarray:
        """(N_real, 16) int32, read from the cache or computed and written there once."""
        if self._neighbours is None:
            path = self.neighbours_path()
            table = None
            if path.exists():
                loaded = np.load(path)
                if loaded.shape == (self.n_real, NEIGHBOURS) and loaded.dtype == np.int32:
                    table = loaded
                # a table of the wrong shape (a truncated write by an older tool) is recomputed
            if table is None:
                table = nearest_neighbours(self.real)
                self.cache_dir.mkdir(parents=True, exist_ok=True)
                # write then rename: a concurrent or killed run never leaves a partial table
                tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
                with open(tmp, "wb") as f:
                    np.save(f, table)
                os.replace(tmp, path)
            self._neighbours = table
        return self._neighbours

    # -- blocks ----------------------------------------------------------------------------------

    def derivation(self, block: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(a, b, t, eps) of every row of `block`: the real row it starts from, the neighbour
        it moves towards, how far (t), and the float32 noise. Real rows (point < N_real) get
        draws too (unused), which keeps every row's draws tied to its position alone."""
        if block < 0:
            raise ValueError(f"block must be >= 0, got {block}")
        first = block * self.block_size
        index = np.arange(first, first + self.block_size, dtype=np.int64)
        a = index % self.n_real
        rng = np.random.default_rng([self.seed, block])
        choice = rng.integers(0, NEIGHBOURS, size=self.block_size)
        t = rng.uniform(0.0, T_MAX, size=self.block_size).astype(np.float32)
        eps = rng.standard_normal((self.block_size, self.dim), dtype=np.float32)
        b = self.neighbours()[a, choice].astype(np.int64)
        return a, b, t, eps

    def block(self, block: int) -> np.ndarray:
        """Points block*B .. (block+1)*B - 1 as float32 (B, dim) unit rows (B = block_size)."""
        a, b, t, eps = self.derivation(block)
        x_a, x_b = self.real[a], self.real[b]
        rows = x_a + t[:, None] * (x_b - x_a) + np.float32(self.sigma) * eps
        normalize(rows)
        first = block * self.block_size
        real_rows = max(0, min(self.block_size, self.n_real - first))
        if real_rows:  # the first N_real points are the real vectors themselves
            rows[:real_rows] = self.real[first : first + real_rows]
        return rows

    def points(self, start: int, stop: int) -> np.ndarray:
        """Points start .. stop-1 (any range), float32 unit rows; remembers the last block, so
        a caller walking forward in batches generates each block once."""
        if not 0 <= start <= stop:
            raise ValueError(f"bad range {start}..{stop}")
        out = np.empty((stop - start, self.dim), dtype=np.float32)
        pos = start
        while pos < stop:
            number = pos // self.block_size
            if self._cached_block is None or self._cached_block[0] != number:
                self._cached_block = (number, self.block(number))
            rows = self._cached_block[1]
            first = number * self.block_size
            take = min(stop, first + self.block_size) - pos
            out[pos - start : pos - start + take] = rows[pos - first : pos - first + take]
            pos += take
        return out

    # -- exact ground truth ----------------------------------------------------------------------

    def ground_truth(self, queries: np.ndarray, n_points: int, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-k by dot product (= cosine: every row is unit) of each query over points
        0 .. n_points-1, streamed block by block (memory: one block + the candidates).
        Returns (ids int64 (Q, k), scores float32 (Q, k)), best first, equal scores by the
        smaller id among the candidates each block contributes."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if n_points < k:
            raise ValueError(f"need at least k={k} points, got {n_points}")
        best_ids = np.empty((len(queries), 0), dtype=np.int64)
        best_scores = np.empty((len(queries), 0), dtype=np.float32)
        for number in range((n_points + self.block_size - 1) // self.block_size):
            first = number * self.block_size
            rows = self.block(number)[: n_points - first]
            id_parts, score_parts = [], []
            for q0 in range(0, len(queries), TRUTH_QUERY_CHUNK):
                sims = queries[q0 : q0 + TRUTH_QUERY_CHUNK] @ rows.T
                take = min(k, sims.shape[1])
                part = np.argpartition(-sims, take - 1, axis=1)[:, :take]
                id_parts.append(part + first)
                score_parts.append(np.take_along_axis(sims, part, axis=1))
            ids = np.concatenate([best_ids, np.concatenate(id_parts)], axis=1)
            scores = np.concatenate([best_scores, np.concatenate(score_parts)], axis=1)
            order = best_first(ids, scores)[:, :k]
            best_ids = np.take_along_axis(ids, order, axis=1)
            best_scores = np.take_along_axis(scores, order, axis=1)
        return best_ids, best_scores


def best_first(ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Per row, the column order by score descending, then id ascending."""
    return np.lexsort((ids, -scores), axis=1)
