"""Vector quantization for immutable segments, after Qdrant's `quantization_config`.

The codes of every point stay in RAM; the float32 originals may stay on disk. A search
scores the codes (`scan`: brute force; `graph_search`: HNSW traversal of a graph built on
the originals, see `HnswIndex.search_codes`) and returns (rows, approximate similarities);
the caller then rescores the best candidates on the originals when `rescore` is on.

Approximate similarities are in the metric's own units (dot product, -squared L2, -L1,
larger is closer, as `scoring.py`): for scalar, product and asymmetric binary they are the
exact similarity of the query to the *dequantized* vector (up to float32 rounding and, for
asymmetric binary, the rounding of the query weights), so ranking on codes agrees with
that dequantized similarity. The search kernels return a "raw" score monotone in it
(`distance.score`), turned into the similarity by `_Query.finish`.

Formats (see docs/quantization.md for the formulas):

- scalar int8: codes uint8 (n, dim), c = round((v - lo) / alpha) clipped to 0..255,
  alpha = (hi - lo) / 255, lo/hi as Qdrant's `quantile` range: about (1 - q)/2 of the
  *vectors* (not of the values) have a value cut at each end (`_quantile_range`; min and
  max without `quantile`). Dequantized: lo + alpha c.
- binary: each dimension gets 1 or 2 "thermometer" bits (bit i set when v > threshold_i,
  the second threshold above the first), packed into uint64 words (n, ceil(bits / 64)).
  one_bit: one bit per dimension, threshold 0 for Cosine/Dot (the sign, as Qdrant) and
  the dimension's mean for Euclid/Manhattan; two_bits: two bits per dimension, thresholds
  mean +- 0.6745 sd (three levels); one_and_half_bits: two bits for the half of the
  dimensions with the largest variance, one for the others. Each level dequantizes to the
  mean of the training values in it (per dimension).
- product: the dimensions are cut into m = ceil(dim / s) sub-vectors of s dimensions (s =
  1, 2, 4, 8, 16 for compression x4 ... x64, as Qdrant's bytes ratio), 256 k-means
  centroids per sub-vector (seeded, trained on a sample), one uint8 code per sub-vector.

Persistence: `meta()` (a JSON-safe dict: kind, distance, n, dim, always_ram, params) and
the `arrays` dict are everything; `from_arrays(meta, arrays)` rebuilds the object over
arrays mapped from a file without copying, `save`/`load` are that pair over `.npy` files.
The kind travels inside `meta` (issue 17's plan had `from_arrays(kind, meta, arrays)`):
one dict is what a segment stores, and the kind cannot disagree with it. Every
construction checks the dtypes, shapes and the few contents the kernels index by
(`_layout`, `_check_values`: O(dim)), so a corrupt file raises ValueError instead of
making a `nogil` kernel read out of bounds.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path

import numba
import numpy as np

from pydrant.segments.distance import DOT as _DOT, EUCLID as _EUCLID, FASTMATH, METRICS
from pydrant.segments.hnsw import _NO_ALLOWED, _NO_DELETED, _mask, scan_kernel

KINDS = ("scalar", "binary", "product")
PQ_DIMS = {"x4": 1, "x8": 2, "x16": 4, "x32": 8, "x64": 16}  # dims per one-byte sub-vector
BINARY_ENCODINGS = ("one_bit", "two_bits", "one_and_half_bits")
QUERY_ENCODINGS = ("default", "binary", "scalar4bits", "scalar8bits")
_QUERY_BITS = {"scalar4bits": 4, "scalar8bits": 8}
_GAUSS_TERTILE = 0.6745  # the quartiles of a normal distribution, in sd: 2-bit thresholds
_QUANTILE_SAMPLE = 1 << 22  # at most this many values sampled for the scalar range
_QUANTILE_VECTORS = 100_000  # and at most this many vectors (Qdrant's sample)
_QUANTILE_MIN_VECTORS = 127  # fewer vectors: min and max, as Qdrant
_PQ_TRAIN = 16384  # rows sampled to train the product centroids
_PQ_ITERS = 12
_PQ_CENTROIDS = 256
_SEED = 0
_META = "quantization.json"
_FORMAT = 1

_jit = numba.njit(nogil=True, cache=True)
_jit_math = numba.njit(nogil=True, cache=True, fastmath=FASTMATH)


# -- kernels ----------------------------------------------------------------------------------


@_jit
def _scalar_encode(vectors, lo, inv_alpha, out):
    n, dim = vectors.shape
    for i in range(n):
        for t in range(dim):
            c = np.floor((vectors[i, t] - lo) * inv_alpha + np.float32(0.5))
            if c < 0:
                c = 0
            elif c > 255:
                c = 255
            out[i, t] = np.uint8(c)


@_jit
def _binary_encode(vectors, bit_dim, bit_threshold, out):
    """Bit i of row r (word i >> 6, bit i & 63) set when vectors[r, bit_dim[i]] >
    bit_threshold[i]."""
    n = vectors.shape[0]
    nb = bit_dim.shape[0]
    for r in range(n):
        for w in range(out.shape[1]):
            word = np.uint64(0)
            for b in range(64):
                i = w * 64 + b
                if i >= nb:
                    break
                if vectors[r, bit_dim[i]] > bit_threshold[i]:
                    word |= np.uint64(1) << np.uint64(b)
            out[r, w] = word


@_jit
def _binary_level_sums(vectors, bit_dim, bit_threshold, sums, counts):
    """Per dimension, the sum and count of the training values in each level (level =
    number of the dimension's thresholds below the value; thresholds in bit order)."""
    n, dim = vectors.shape
    nb = bit_dim.shape[0]
    level = np.zeros(dim, np.int64)
    for r in range(n):
        level[:] = 0
        for i in range(nb):
            if vectors[r, bit_dim[i]] > bit_threshold[i]:
                level[bit_dim[i]] += 1
        for d in range(dim):
            sums[d, level[d]] += vectors[r, d]
            counts[d, level[d]] += 1


@_jit_math
def _pq_assign(vectors, start, stop, centroids_t, codes, col):
    """codes[:, col] = the nearest (L2) of the centroids (s, k) (transposed) to
    vectors[:, start:stop] (zero-padded up to s dims). Returns the total squared error."""
    s, k = centroids_t.shape
    n = vectors.shape[0]
    dist = np.empty(k, np.float32)
    total = 0.0
    for i in range(n):
        dist[:] = 0
        for t in range(s):
            x = vectors[i, start + t] if start + t < stop else np.float32(0.0)
            for c in range(k):
                d = x - centroids_t[t, c]
                dist[c] += d * d
        best = 0
        for c in range(1, k):
            if dist[c] < dist[best]:
                best = c
        codes[i, col] = best
        total += dist[best]
    return total


@_jit
def _pq_update(vectors, start, stop, codes, col, centroids_t, rng_rows):
    """Move each centroid to the mean of its rows; an empty one takes the next row of
    `rng_rows` (a seeded permutation) so no centroid dies."""
    s, k = centroids_t.shape
    sums = np.zeros((k, s), np.float64)
    counts = np.zeros(k, np.int64)
    n = vectors.shape[0]
    for i in range(n):
        c = codes[i, col]
        counts[c] += 1
        for t in range(s):
            if start + t < stop:
                sums[c, t] += vectors[i, start + t]
    spare = 0
    for c in range(k):
        if counts[c] > 0:
            for t in range(s):
                centroids_t[t, c] = sums[c, t] / counts[c]
        else:
            r = rng_rows[spare % rng_rows.shape[0]]
            spare += 1
            for t in range(s):
                centroids_t[t, c] = vectors[r, start + t] if start + t < stop else 0.0


def _quantile_range(vectors: np.ndarray, quantile: float) -> tuple[float, float]:
    """The scalar range (lo, hi) for `quantile` as Qdrant's `find_quantile_interval`
    computes it: over the values of a sample of s vectors, cut = max(1, floor(s (1 - q) /
    2)) values are dropped at each end -- a count of *vectors*, not of values, so only
    about (1 - q) / (2 dim) of the values are clipped on each side (at q = 0.99 and 384
    dimensions 1.3e-5, not 0.5%). Then lo and hi are the smallest and largest of the
    values strictly inside the cut (sorted positions cut + 1 and len - cut - 1, as Qdrant's
    two `select_nth_unstable` calls leave them). The sample is seeded: s = min(n, 100,000,
    4M / dim) vectors (Qdrant reads up to 100,000; the cap on values bounds the copy)."""
    n, dim = vectors.shape
    s = max(1, min(n, _QUANTILE_VECTORS, _QUANTILE_SAMPLE // max(dim, 1)))
    if s < n:  # fancy indexing copies: the copy is partitioned in place
        rng = np.random.default_rng(_SEED)
        flat = vectors[np.sort(rng.choice(n, s, replace=False))].reshape(-1)
    else:
        flat = vectors.reshape(-1).copy()
    size = flat.size
    if size < 4:
        return float(vectors.min()), float(vectors.max())
    # in float32, as Qdrant computes it (0.99 -> 0.0099999905, so 100,000 vectors cut 499)
    cut = int(np.float32(s) * (np.float32(1.0) - np.float32(quantile)) / np.float32(2.0))
    cut = max(1, min((size - 1) // 2, cut))
    low, high = cut + 1, size - cut - 1
    if high <= low:  # nothing strictly inside the cut: the whole range (Qdrant: no interval)
        return float(vectors.min()), float(vectors.max())
    flat.partition((low, high))
    return float(flat[low]), float(flat[high])


# -- validation of arrays and meta (they may come from a file) -----------------------------------


def _class_of(meta: Mapping) -> type[QuantizedVectors]:
    """The class of a saved meta's kind, after checking its format number."""
    if not isinstance(meta, Mapping):
        raise ValueError("quantization meta must be an object")
    if meta.get("format") != _FORMAT:
        raise ValueError(f"unknown quantization format {meta.get('format')!r}")
    kinds: dict[object, type[QuantizedVectors]] = {
        "scalar": ScalarQuantized, "binary": BinaryQuantized, "product": ProductQuantized}
    kind = kinds.get(meta.get("kind"))
    if kind is None:
        raise ValueError(f"unknown quantization kind {meta.get('kind')!r}")
    return kind


def _expect_array(name: str, array, dtype: type, shape: tuple[int, ...]) -> None:
    """ValueError unless `array` is a C-contiguous ndarray of that dtype and shape."""
    if not isinstance(array, np.ndarray) or array.dtype != np.dtype(dtype) \
            or array.shape != shape or not array.flags.c_contiguous:
        found = f"{array.dtype} {array.shape}" if isinstance(array, np.ndarray) else type(array).__name__
        raise ValueError(f"quantization array {name}: {found}, expected {np.dtype(dtype)} "
                         f"{shape} C-contiguous")


def _real(params: dict, name: str) -> float:
    """params[name] as a finite float, else ValueError."""
    value = params.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"quantization param {name}: {value!r} is not a finite number")
    return float(value)


# -- the base class -----------------------------------------------------------------------------


class _Query:
    """A query in the scorer's form: `qmat` for the kernels, and the map from their raw
    scores to approximate similarities (sim = a + b * raw, or a custom function)."""

    __slots__ = ("qmat", "a", "b", "fn")

    def __init__(self, qmat, a=0.0, b=1.0, fn=None):
        self.qmat, self.a, self.b, self.fn = qmat, a, b, fn

    def finish(self, raw: np.ndarray) -> np.ndarray:
        if self.fn is not None:
            return self.fn(raw).astype(np.float32)
        return (np.float32(self.a) + np.float32(self.b) * raw.astype(np.float32)).astype(np.float32)


class QuantizedVectors:
    """Quantized codes of n vectors (one row per point, in the segment's row order) and the
    tables to score a float32 query against them. Immutable; searches may run concurrently.
    Build with `QuantizedVectors.build(config, vectors, distance)`."""

    kind: str = ""
    always_ram: bool = False
    ARRAYS: tuple[str, ...] = ()

    def __init__(self, distance: str, n: int, dim: int, params: dict,
                 arrays: Mapping[str, np.ndarray], always_ram: bool = False):
        if distance not in METRICS:
            raise ValueError(f"unknown distance {distance!r}")
        self.distance = distance
        self.metric = METRICS[distance]
        self.n, self.dim = int(n), int(dim)
        if self.n < 0 or self.dim < 0:
            raise ValueError(f"bad quantized shape ({self.n}, {self.dim})")
        self.params = dict(params)
        missing = [name for name in self.ARRAYS if name not in arrays]
        if missing:
            raise ValueError(f"{self.kind} quantization arrays missing: {', '.join(missing)}")
        self.arrays = {name: arrays[name] for name in self.ARRAYS}
        self.always_ram = bool(always_ram)
        self.codes = self.arrays["codes"]
        self._check_params()
        for name, (dtype, shape) in self._layout().items():
            _expect_array(name, self.arrays[name], dtype, shape)
        self._check_values()
        self._setup()

    def _check_params(self) -> None:
        """ValueError unless `params` holds what `_setup` and `prepare` read, with sane
        values (they come from a file when loading)."""

    def _layout(self) -> dict[str, tuple[type, tuple[int, ...]]]:
        """name -> (dtype, shape) every array must have: what the kernels index by."""
        raise NotImplementedError

    def _check_values(self) -> None:
        """Checks of array *contents* the kernels rely on (O(dim), never O(n))."""

    def _setup(self) -> None:
        """Derived state after construction or load."""

    # -- building

    @classmethod
    def build(cls, config: dict, vectors: np.ndarray, distance: str) -> QuantizedVectors:
        """Quantize `vectors` (float32 (n, dim); Cosine ones normalised) per Qdrant's
        QuantizationConfig `config` ({"scalar": {...}} | {"product": {...}} | {"binary":
        {...}}). Raises ValueError on a bad config."""
        if distance not in METRICS:
            raise ValueError(f"unknown distance {distance!r}")
        if not isinstance(config, dict) or len(config) != 1:
            raise ValueError("quantization config must have exactly one of scalar, product, binary")
        (kind, body), = config.items()
        if kind not in KINDS:
            raise ValueError(f"unknown quantization {kind!r}")
        if not isinstance(body, dict):
            raise ValueError(f"{kind} quantization config must be an object")
        vectors = np.asarray(vectors)
        if vectors.ndim != 2:
            raise ValueError("vectors must be a 2-d array")
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        always_ram = body.get("always_ram")
        if always_ram is not None and not isinstance(always_ram, bool):
            raise ValueError("always_ram must be a boolean")
        sub = {"scalar": ScalarQuantized, "binary": BinaryQuantized,
               "product": ProductQuantized}[kind]
        return sub._build(body, vectors, distance, bool(always_ram))

    @classmethod
    def _build(cls, body: dict, vectors: np.ndarray, distance: str, always_ram: bool) -> QuantizedVectors:
        """One kind's codes from its config body (each subclass builds its own)."""
        raise NotImplementedError

    # -- persistence

    def save(self, directory: Path) -> None:
        """Write every array as `<name>.npy` and `quantization.json` into `directory`
        (created), each file fsynced, the json last."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for name, array in self.arrays.items():
            path = directory / f"{name}.npy"
            with open(path, "wb") as f:
                np.save(f, np.ascontiguousarray(array), allow_pickle=False)
                f.flush()
                os.fsync(f.fileno())
        meta = self.meta()
        tmp = directory / (_META + ".tmp")
        with open(tmp, "w") as f:
            json.dump(meta, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, directory / _META)
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    @classmethod
    def load(cls, directory: Path, mmap: bool = False) -> QuantizedVectors:
        """Read what `save` wrote. mmap=True memory-maps the arrays (read-only) instead of
        reading them."""
        directory = Path(directory)
        meta = json.loads((directory / _META).read_text())
        kind = _class_of(meta)
        arrays = {name: np.load(directory / f"{name}.npy", mmap_mode="r" if mmap else None,
                                allow_pickle=False) for name in kind.ARRAYS}
        return cls.from_arrays(meta, arrays)

    def meta(self) -> dict:
        """Everything but the arrays, JSON-safe: format, kind, distance, n, dim,
        always_ram and the kind's params (scalar: lo, alpha, quantile; binary: encodings,
        radius; product: compression, sub_dim). `from_arrays(meta(), arrays)` rebuilds
        this object; `save` writes it as quantization.json."""
        return {"format": _FORMAT, "kind": self.kind, "distance": self.distance, "n": self.n,
                "dim": self.dim, "always_ram": self.always_ram, "params": dict(self.params)}

    @classmethod
    def from_arrays(cls, meta: Mapping, arrays: Mapping[str, np.ndarray]) -> QuantizedVectors:
        """The quantized vectors `meta` (as `meta()` returned it) describes, over `arrays`
        (`self.arrays` of the original: saved or mapped, used as they are, never copied;
        extra names ignored). Validates the meta, every array's dtype, shape and
        contiguity, and the few values the kernels index by (binary `bit_dim`): O(dim),
        not O(n), so opening mapped codes costs nothing per point. ValueError when
        anything is off (a torn or foreign file)."""
        kind = _class_of(meta)
        if not issubclass(kind, cls):
            raise ValueError(f"{meta['kind']} quantization is not a {cls.__name__}")
        try:
            distance, n, dim = meta["distance"], int(meta["n"]), int(meta["dim"])
            params, always_ram = meta["params"], meta.get("always_ram", False)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"bad quantization meta: {exc!r}") from None
        if not isinstance(params, Mapping) or not isinstance(always_ram, bool):
            raise ValueError("bad quantization meta: params or always_ram")
        return kind(distance, n, dim, dict(params), arrays, always_ram)

    @property
    def nbytes(self) -> int:
        """Bytes of the codes and tables."""
        return int(sum(a.nbytes for a in self.arrays.values()))

    # -- search

    def prepare(self, query: np.ndarray) -> _Query:
        raise NotImplementedError

    def _query(self, query: np.ndarray) -> _Query:
        query = np.ascontiguousarray(query, dtype=np.float32)
        if query.shape != (self.dim,):
            raise ValueError(f"query must have shape ({self.dim},), not {query.shape}")
        return self.prepare(query)

    def scan(self, query: np.ndarray, k: int, allowed: np.ndarray | None = None,
             deleted: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Brute-force top k over the codes: (rows int32, approximate similarities float32),
        best first. allowed/deleted: bool masks (n,) or None."""
        q = self._query(query)
        allowed = _NO_ALLOWED if allowed is None else _mask(allowed, self.n).reshape(1, -1)
        deleted = _NO_DELETED if deleted is None else _mask(deleted, self.n)
        ids, raw = scan_kernel(self.codes, self.metric, q.qmat, int(k), allowed, deleted)
        return ids, q.finish(raw)

    def graph_search(self, index, query: np.ndarray, k: int, ef: int, allowed=None,
                     deleted=None) -> tuple[np.ndarray, np.ndarray]:
        """HNSW search of `index` (built on the original vectors of the same rows) scoring
        the codes: (rows int32, approximate similarities float32) best first; ef and the
        masks as `HnswIndex.search`."""
        if index.n != self.n:
            raise ValueError(f"index has {index.n} points, the codes {self.n}")
        q = self._query(query)
        ids, raw = index.search_codes(self.codes, q.qmat, k, ef, allowed, deleted)
        return ids, q.finish(raw)

    def dequantize(self, rows: np.ndarray | None = None) -> np.ndarray:
        """The vectors the codes stand for, float32 (len(rows), dim) (for tests and
        diagnostics)."""
        raise NotImplementedError


# -- scalar int8 ---------------------------------------------------------------------------------


class ScalarQuantized(QuantizedVectors):
    kind = "scalar"
    ARRAYS = ("codes",)

    @classmethod
    def _build(cls, body, vectors, distance, always_ram):
        kind = body.get("type", "int8")
        if kind != "int8":
            raise ValueError(f"unknown scalar type {kind!r}")
        quantile = body.get("quantile")
        if quantile is not None:
            if isinstance(quantile, bool) or not isinstance(quantile, (int, float)) \
                    or not 0.5 <= quantile <= 1.0:
                raise ValueError("quantile must be between 0.5 and 1")
        n, dim = vectors.shape
        if n == 0:
            lo, hi = 0.0, 1.0
        elif quantile is None or quantile >= 1.0 or n < _QUANTILE_MIN_VECTORS:
            lo, hi = float(vectors.min()), float(vectors.max())
        else:  # the sample may miss a non-finite value: look at all (as min/max do)
            lo, hi = _quantile_range(vectors, float(quantile))
            if not np.isfinite(vectors).all():
                lo = math.nan
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise ValueError("vectors contain non-finite values")
        if hi <= lo:
            hi = lo + max(abs(lo), 1.0) * 1e-6
        alpha = (hi - lo) / 255.0
        codes = np.empty((n, dim), np.uint8)
        _scalar_encode(vectors, np.float32(lo), np.float32(1.0 / alpha), codes)
        params = {"type": "int8", "quantile": quantile, "lo": lo, "alpha": alpha}
        return cls(distance, n, dim, params, {"codes": codes}, always_ram)

    def _check_params(self):
        if self.params.get("type", "int8") != "int8":
            raise ValueError(f"unknown scalar type {self.params.get('type')!r}")
        _real(self.params, "lo")
        if not _real(self.params, "alpha") > 0:
            raise ValueError("quantization param alpha must be positive")

    def _layout(self):
        return {"codes": (np.uint8, (self.n, self.dim))}

    def _setup(self):
        self.lo = np.float32(self.params["lo"])
        self.alpha = np.float32(self.params["alpha"])

    def prepare(self, query):
        lo, alpha = float(self.lo), float(self.alpha)
        if self.metric == _DOT:  # q . (lo + alpha c) = lo sum(q) + alpha q . c
            return _Query(query.reshape(1, -1), lo * float(query.sum(dtype=np.float64)), alpha)
        qt = ((query - np.float32(lo)) / np.float32(alpha)).astype(np.float32).reshape(1, -1)
        if self.metric == _EUCLID:  # |q - lo - alpha c|^2 = alpha^2 |q' - c|^2
            return _Query(qt, 0.0, alpha * alpha)
        return _Query(qt, 0.0, alpha)  # |q - lo - alpha c|_1 = alpha |q' - c|_1

    def dequantize(self, rows=None):
        codes = self.codes if rows is None else self.codes[rows]
        return (self.lo + self.alpha * codes.astype(np.float32)).astype(np.float32)


# -- binary --------------------------------------------------------------------------------------


class BinaryQuantized(QuantizedVectors):
    kind = "binary"
    # bit_dim int32 (bits,): the dimension of each stored bit; bit_threshold float32: set when
    # the value is above; bit_gain float32: what setting it adds to the dequantized value;
    # base float32 (dim,): the dequantized value with no bit set.
    ARRAYS = ("codes", "bit_dim", "bit_threshold", "bit_gain", "base")

    @classmethod
    def _build(cls, body, vectors, distance, always_ram):
        encoding = body.get("encoding") or "one_bit"
        if encoding not in BINARY_ENCODINGS:
            raise ValueError(f"unknown binary encoding {encoding!r}")
        query_encoding = body.get("query_encoding") or "default"
        if query_encoding not in QUERY_ENCODINGS:
            raise ValueError(f"unknown binary query_encoding {query_encoding!r}")
        n, dim = vectors.shape
        sample = vectors
        if n > 65536:
            rng = np.random.default_rng(_SEED)
            sample = np.ascontiguousarray(vectors[np.sort(rng.choice(n, 65536, replace=False))])
        mean = sample.mean(axis=0, dtype=np.float64) if n else np.zeros(dim)
        sd = sample.std(axis=0, dtype=np.float64) if n else np.ones(dim)
        metric = METRICS[distance]
        if encoding == "one_bit":
            center = np.zeros(dim) if metric == _DOT else mean
            dims, thresholds = np.arange(dim), center
        else:
            if encoding == "two_bits":
                two = np.arange(dim)
            else:  # the half of the dimensions with the largest variance get two bits
                two = np.sort(np.argsort(-sd, kind="stable")[: (dim + 1) // 2])
            low = mean - _GAUSS_TERTILE * sd
            high = mean + _GAUSS_TERTILE * sd
            first = np.where(np.isin(np.arange(dim), two), low, mean)
            # plane 0: every dimension (the low threshold for the two-bit ones), plane 1: the
            # high threshold of the two-bit dimensions
            dims = np.concatenate([np.arange(dim), two])
            thresholds = np.concatenate([first, high[two]])
        bit_dim = np.ascontiguousarray(dims, dtype=np.int32)
        bit_threshold = np.ascontiguousarray(thresholds, dtype=np.float32)
        # levels: the mean training value in each (per dimension); empty ones the threshold
        max_levels = 3
        sums = np.zeros((dim, max_levels), np.float64)
        counts = np.zeros((dim, max_levels), np.int64)
        if n:
            _binary_level_sums(sample, bit_dim, bit_threshold, sums, counts)
        bounds = [[] for _ in range(dim)]
        for i, d in enumerate(bit_dim):
            bounds[d].append(float(bit_threshold[i]))
        level_value = np.zeros((dim, max_levels), np.float64)
        for d in range(dim):
            b = bounds[d]
            # fallback for an empty level: a point beyond/between its thresholds
            span = max(sd[d], 1e-6)
            fallback = [b[0] - span] + [(b[t] + b[t + 1]) / 2 for t in range(len(b) - 1)] \
                + [b[-1] + span]
            for lv in range(len(b) + 1):
                level_value[d, lv] = sums[d, lv] / counts[d, lv] if counts[d, lv] else fallback[lv]
        base = level_value[:, 0].astype(np.float32)
        seen = np.zeros(dim, np.int64)
        bit_gain = np.empty(bit_dim.size, np.float32)
        for i, d in enumerate(bit_dim):
            lv = seen[d]
            bit_gain[i] = level_value[d, lv + 1] - level_value[d, lv]
            seen[d] += 1
        words = max(1, (bit_dim.size + 63) // 64)
        codes = np.empty((n, words), np.uint64)
        _binary_encode(vectors, bit_dim, bit_threshold, codes)
        # spread of the data around the centre, for the estimates of the binary query
        centre = np.zeros(dim) if metric == _DOT and encoding == "one_bit" else mean
        radius = float(np.sqrt(((sample - centre) ** 2).sum(axis=1).mean())) if n else 0.0
        params = {"encoding": encoding, "query_encoding": query_encoding, "radius": radius}
        arrays = {"codes": codes, "bit_dim": bit_dim, "bit_threshold": bit_threshold,
                  "bit_gain": bit_gain, "base": base}
        return cls(distance, n, dim, params, arrays, always_ram)

    def _check_params(self):
        if self.params.get("encoding") not in BINARY_ENCODINGS:
            raise ValueError(f"unknown binary encoding {self.params.get('encoding')!r}")
        if self.params.get("query_encoding") not in QUERY_ENCODINGS:
            raise ValueError(f"unknown binary query_encoding {self.params.get('query_encoding')!r}")
        if not _real(self.params, "radius") >= 0:
            raise ValueError("quantization param radius must not be negative")

    def _layout(self):
        bit_dim = self.arrays["bit_dim"]
        bits = bit_dim.shape[0] if isinstance(bit_dim, np.ndarray) and bit_dim.ndim == 1 else -1
        words = max(1, (bits + 63) // 64)  # as _build packs them
        return {"codes": (np.uint64, (self.n, words)), "bit_dim": (np.int32, (bits,)),
                "bit_threshold": (np.float32, (bits,)), "bit_gain": (np.float32, (bits,)),
                "base": (np.float32, (self.dim,))}

    def _check_values(self):
        # the query encoder reads query[bit_dim[i]], in a nogil kernel
        bit_dim = self.arrays["bit_dim"]
        if bit_dim.size and (bit_dim.min() < 0 or bit_dim.max() >= self.dim):
            raise ValueError(f"quantization array bit_dim: dimensions outside 0..{self.dim - 1}")

    def _setup(self):
        qe = self.params["query_encoding"]
        self.query_bits = _QUERY_BITS.get(qe, 0)  # 0: a binary query
        self.bits = int(self.arrays["bit_dim"].shape[0])
        self.words = int(self.codes.shape[1])
        # dequantized value before each bit, and the centre of the binary query estimate
        bit_dim = np.asarray(self.arrays["bit_dim"])
        gain = np.asarray(self.arrays["bit_gain"], np.float64)
        base = np.asarray(self.arrays["base"], np.float64)
        before = np.empty(self.bits, np.float64)
        acc = base.copy()
        for i, d in enumerate(bit_dim):
            before[i] = acc[d]
            acc[d] += gain[i]
        self._bit_dim, self._before, self._after = bit_dim, before, before + gain
        self._base = base
        first = np.zeros(self.dim, np.float64)
        seen = np.zeros(self.dim, bool)
        for i, d in enumerate(bit_dim):  # the centre: the first threshold of each dimension
            if not seen[d]:
                first[d], seen[d] = float(self.arrays["bit_threshold"][i]), True
        self._centre = first if self.params["encoding"] == "one_bit" else \
            (base + acc) / 2  # between the extreme levels for two-level thermometers

    def _level_fn(self, query64, values):
        """f_d(value) for the metric: q_d v (Dot), -(q_d - v)^2 (Euclid), -|q_d - v|."""
        q = query64
        if self.metric == _DOT:
            return q * values
        if self.metric == _EUCLID:
            return -((q - values) ** 2)
        return -np.abs(q - values)

    def prepare(self, query):
        q64 = query.astype(np.float64)
        if self.query_bits == 0:
            bits = np.empty((1, self.words), np.uint64)
            _binary_encode(query.reshape(1, -1), self.arrays["bit_dim"],
                           self.arrays["bit_threshold"], bits)
            return _Query(bits, fn=self._hamming_estimate(q64))
        # asymmetric: sim(q, x^) = sum_d f_d(base_d) + sum over set bits of w_i, with
        # w_i = f(after_i) - f(before_i) (thermometer bits telescope); the w_i rounded to
        # B-bit two's complement integers, one bit plane each
        qd = q64[self._bit_dim]
        w = self._level_fn(qd, self._after) - self._level_fn(qd, self._before)
        const = float(self._level_fn(q64, self._base).sum())
        top = (1 << (self.query_bits - 1)) - 1
        scale = float(np.abs(w).max()) / top if w.size and np.abs(w).max() > 0 else 1.0
        wi = np.rint(w / scale).astype(np.int64) & ((1 << self.query_bits) - 1)
        planes = np.zeros((self.query_bits, self.words * 64), np.uint8)
        for b in range(self.query_bits):
            planes[b, : self.bits] = (wi >> b) & 1
        packed = np.packbits(planes, axis=1, bitorder="little").view("<u8").astype(np.uint64)
        qmat = np.ascontiguousarray(packed.reshape(1, self.query_bits, self.words))
        return _Query(qmat, const, scale)

    def _hamming_estimate(self, q64):
        """Binary query: the raw score is -hamming distance h over the stored bits. The
        similarity is estimated as for random hyperplanes (SimHash): the angle between
        q - c and x - c is ~ pi h / bits, |x - c| ~ the mean radius r of the data."""
        c = self._centre
        u = q64 - c
        nu = float(np.linalg.norm(u))
        r = float(self.params["radius"])
        bits = max(1, self.bits)
        qc = float(q64 @ c)
        metric, dim = self.metric, self.dim

        def fn(raw):
            cos = np.cos(np.pi * np.minimum(-raw.astype(np.float64), bits) / bits)
            if metric == _DOT:  # q.x = q.c + (q - c).(x - c) + c.(x - c), the last ~ 0
                return qc + nu * r * cos
            sq = np.maximum(nu * nu + r * r - 2 * nu * r * cos, 0.0)
            if metric == _EUCLID:
                return -sq
            return -np.sqrt(2 * dim / np.pi * sq)  # L1 ~ sqrt(2 dim / pi) L2 (Gaussian)

        return fn

    def dequantize(self, rows=None):
        codes = self.codes if rows is None else self.codes[rows]
        bits = np.unpackbits(np.ascontiguousarray(codes).view(np.uint8), axis=1,
                             bitorder="little")[:, : self.bits].astype(np.float64)
        out = np.tile(self._base, (codes.shape[0], 1))
        np.add.at(out.T, self._bit_dim, (bits * (self._after - self._before)).T)
        return out.astype(np.float32)


# -- product ---------------------------------------------------------------------------------------


class ProductQuantized(QuantizedVectors):
    kind = "product"
    # centroids float32 (m, 256, s): sub-vector t covers dimensions t s .. t s + s - 1 (the last
    # one zero-padded past dim)
    ARRAYS = ("codes", "centroids")

    @classmethod
    def _build(cls, body, vectors, distance, always_ram):
        compression = body.get("compression")
        if compression not in PQ_DIMS:
            raise ValueError(f"unknown product compression {compression!r} "
                             f"(one of {', '.join(PQ_DIMS)})")
        n, dim = vectors.shape
        s = PQ_DIMS[compression]
        m = max(1, -(-dim // s))
        k = _PQ_CENTROIDS
        rng = np.random.default_rng(_SEED)
        train = vectors
        if n > _PQ_TRAIN:
            train = np.ascontiguousarray(vectors[np.sort(rng.choice(n, _PQ_TRAIN, replace=False))])
        nt = train.shape[0]
        centroids = np.zeros((m, k, s), np.float32)
        codes = np.zeros((n, m), np.uint8)
        train_codes = np.zeros((nt, m), np.uint8)
        for t in range(m):
            start, stop = t * s, min(dim, t * s + s)
            if nt == 0:
                break
            init = rng.choice(nt, k, replace=nt < k)
            ct = np.zeros((s, k), np.float32)
            ct[: stop - start] = train[init, start:stop].T
            order = rng.permutation(nt).astype(np.int64)
            previous = np.inf
            for _ in range(_PQ_ITERS):
                err = _pq_assign(train, start, stop, ct, train_codes, t)
                _pq_update(train, start, stop, train_codes, t, ct, order)
                if err >= previous * (1 - 1e-4):
                    break
                previous = err
            _pq_assign(vectors, start, stop, ct, codes, t)
            centroids[t] = ct.T
        params = {"compression": compression, "sub_dim": s}
        return cls(distance, n, dim, params, {"codes": codes, "centroids": centroids},
                   always_ram)

    def _check_params(self):
        compression, sub_dim = self.params.get("compression"), self.params.get("sub_dim")
        if compression not in PQ_DIMS or sub_dim != PQ_DIMS[compression] \
                or isinstance(sub_dim, bool):
            raise ValueError(f"bad product params: compression {compression!r}, "
                             f"sub_dim {sub_dim!r}")

    def _layout(self):
        s = self.params["sub_dim"]
        m = max(1, -(-self.dim // s))  # the kernel reads m lookup-table rows per code row
        return {"codes": (np.uint8, (self.n, m)), "centroids": (np.float32, (m, _PQ_CENTROIDS, s))}

    def _setup(self):
        self.sub_dim = int(self.params["sub_dim"])
        self.m = int(self.arrays["centroids"].shape[0])
        cent = np.asarray(self.arrays["centroids"], np.float32)
        self._cent = cent
        self._cent_sq = (cent.astype(np.float64) ** 2).sum(axis=2)  # (m, 256)

    def prepare(self, query):
        """The lookup table (1, m, 256): the similarity of each query sub-vector to each
        centroid; a point's approximate similarity is the sum over its codes."""
        padded = np.zeros(self.m * self.sub_dim, np.float32)
        padded[: self.dim] = query
        qs = padded.reshape(self.m, self.sub_dim)
        cent = self._cent
        if self.metric == _DOT:
            lut = np.matmul(cent, qs[:, :, None])[:, :, 0]
        elif self.metric == _EUCLID:  # -|q - c|^2 = 2 q.c - |c|^2 - |q|^2
            dots = np.matmul(cent, qs[:, :, None])[:, :, 0].astype(np.float64)
            lut = 2 * dots - self._cent_sq - (qs.astype(np.float64) ** 2).sum(axis=1)[:, None]
        else:
            lut = -np.abs(cent - qs[:, None, :]).sum(axis=2)
        return _Query(np.ascontiguousarray(lut, dtype=np.float32).reshape(1, self.m, -1))

    def dequantize(self, rows=None):
        codes = self.codes if rows is None else self.codes[rows]
        cent = self.arrays["centroids"]
        out = cent[np.arange(self.m)[None, :], codes.astype(np.int64)]  # (r, m, s)
        return out.reshape(codes.shape[0], -1)[:, : self.dim].astype(np.float32)
