"""The distance math, once: metric codes, the reference score of a (query, point) pair, the
fast ranking forms of it, and the Numba scorer the graph kernels inline.

Every metric has a *similarity*, larger is closer (Qdrant's `lib/segment/src/spaces`):

    Cosine     the dot product of normalised vectors (uint8: dot / (|a| |b|), 0 when a norm is 0)
    Dot        the dot product
    Euclid     -|a - b|^2      reported by a nearest query as the distance |a - b|  (ascending)
    Manhattan  -sum |a - b|    reported as the distance sum |a - b|                (ascending)

Three forms of it, for three jobs:

- `reference(rows, examples, distance, datatype)`: the score every search *reports*. float32
  arithmetic in a fixed order (strict IEEE, a sequential sum over the dimensions, no
  reassociation, no fused multiply-add), so the score of a (query, point) pair depends on
  nothing else: not on which other rows are scored with it, how many queries share the
  call, or which path (exact scan, graph, rescoring of quantized candidates) found the
  point. `reference_numpy` is the same computation in plain NumPy (slow; tests use it).
- `similarities(...)`: the same similarities for *ranking* a whole block of rows: Euclid and
  Manhattan are the reference kernel itself; Cosine and Dot are a BLAS matrix product (GIL
  released, SIMD), equal to the reference up to float32 rounding. An exact scan ranks
  with it, then scores its top k with `reference` (scoring.py).
- `score(q, qi, vectors, j, metric)`: the Numba scorer the HNSW kernels (hnsw.py) inline, for
  float vectors and every kind of quantized codes. The kernels compile it with
  `FASTMATH` (reassociation: SIMD partial sums; contraction: fused multiply-adds), so its
  float results equal the reference up to rounding: relative ~dim * 2^-24 of the sum of the
  absolute terms. Graph hits are scored again with `reference` before they are reported.

Metric codes (`METRICS`): Cosine and Dot share `DOT` (Cosine vectors are normalised on insert
and queries when prepared); the index of a distance in `DISTANCES` is what a saved graph
stores, so the order of `DISTANCES` is a file format.

Numba's cache only checks the source file of the function it compiled: the HNSW and
quantization kernels that inline `score` are not recompiled when only this file changes.
After editing `score`, clear the caches (`find pydrant -name '*.nbi' -delete`).
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic, overload

DISTANCES = ("Cosine", "Dot", "Euclid", "Manhattan")  # index stored in saved graphs: keep the order
DOT, EUCLID, MANHATTAN = 0, 1, 2  # the kernels' metric codes
METRICS = {"Cosine": DOT, "Dot": DOT, "Euclid": EUCLID, "Manhattan": MANHATTAN}
ASCENDING = frozenset(("Euclid", "Manhattan"))  # nearest queries report a distance: smaller is closer

# The graph and quantization kernels' float flags. Reassociation lets LLVM vectorise the
# float32 reductions (SIMD partial sums) and contract fuses multiply-adds; results can differ
# from the reference's sequential sum in the last bits. No "nnan"/"ninf": infinities (the
# -inf of an empty result) keep their meaning.
FASTMATH = {"reassoc", "contract", "nsz", "arcp"}

F32_EPSILON = np.float32(np.finfo(np.float32).eps)


def metric_code(distance: str) -> int:
    return METRICS[distance]


def reported(distance: str, sims: np.ndarray) -> np.ndarray:
    """Similarities as a nearest query reports them: the distance for Euclid (sqrt |s|) and
    Manhattan (|s|), unchanged for Cosine and Dot."""
    if distance == "Euclid":
        return np.sqrt(np.abs(sims))
    if distance == "Manhattan":
        return np.abs(sims)
    return sims


# -- the reference ---------------------------------------------------------------------------


@numba.njit(nogil=True, cache=True, fastmath=False)
def _pairs(rows, queries, metric):
    """(nq, n) float32 similarities of every query to every row; strict float32, each a
    sequential sum over the dimensions (so a pair's score does not depend on n or nq)."""
    n, dim = rows.shape
    nq = queries.shape[0]
    out = np.empty((nq, n), dtype=np.float32)
    if metric == DOT:
        for i in range(n):
            for j in range(nq):
                total = np.float32(0.0)
                for k in range(dim):
                    total += rows[i, k] * queries[j, k]
                out[j, i] = total
    elif metric == EUCLID:
        for i in range(n):
            for j in range(nq):
                total = np.float32(0.0)
                for k in range(dim):
                    diff = rows[i, k] - queries[j, k]
                    total += diff * diff
                out[j, i] = -total
    else:
        for i in range(n):
            for j in range(nq):
                total = np.float32(0.0)
                for k in range(dim):
                    total += abs(rows[i, k] - queries[j, k])
                out[j, i] = -total
    return out


@numba.njit(nogil=True, cache=True, fastmath=False)
def _norms(rows):
    """float32 |row| of every row: sqrt of a sequential float32 sum of squares."""
    n, dim = rows.shape
    out = np.empty(n, dtype=np.float32)
    for i in range(n):
        total = np.float32(0.0)
        for k in range(dim):
            total += rows[i, k] * rows[i, k]
        out[i] = np.sqrt(total)
    return out


def _as_f32(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(array, dtype=np.float32)


def _cosine_u8(sims: np.ndarray, row_norms: np.ndarray, example_norms: np.ndarray) -> np.ndarray:
    denominator = example_norms[:, None] * row_norms[None, :]
    return np.divide(sims, denominator, out=np.zeros_like(sims), where=denominator > 0)


def reference(rows: np.ndarray, examples: np.ndarray, distance: str, datatype: str = "float32") -> np.ndarray:
    """(E, n) float32 similarities of E prepared examples to n rows (any float/uint8 dtype,
    converted to float32): the scores searches report. See the module docstring."""
    rows, examples = _as_f32(rows), _as_f32(examples).reshape(-1, rows.shape[1])
    sims = _pairs(rows, examples, METRICS[distance])
    if distance == "Cosine" and datatype == "uint8":
        sims = _cosine_u8(sims, _norms(rows), _norms(examples))
    return sims


def reference_numpy(rows: np.ndarray, examples: np.ndarray, distance: str, datatype: str = "float32") -> np.ndarray:
    """`reference` in plain NumPy, the same float32 operations in the same order (slow)."""
    rows, examples = _as_f32(rows), _as_f32(examples).reshape(-1, rows.shape[1])
    n, dim = rows.shape
    total = np.zeros((len(examples), n), np.float32)
    for k in range(dim):
        x, q = rows[None, :, k], examples[:, k, None]
        if distance in ("Cosine", "Dot"):
            total = total + x * q
        elif distance == "Euclid":
            total = total + (x - q) * (x - q)
        else:
            total = total + np.abs(x - q)
    sims = total if distance in ("Cosine", "Dot") else -total
    if distance == "Cosine" and datatype == "uint8":
        def norms(a):
            squares = np.zeros(len(a), np.float32)
            for k in range(dim):
                squares = squares + a[:, k] * a[:, k]
            return np.sqrt(squares)
        sims = _cosine_u8(sims, norms(rows), norms(examples))
    return sims.astype(np.float32, copy=False)


def rescore(rows: np.ndarray, query: np.ndarray, distance: str, datatype: str = "float32") -> np.ndarray:
    """(n,) reference similarities of one prepared query to `rows`."""
    return reference(rows, query, distance, datatype)[0]


# -- ranking a block of rows ------------------------------------------------------------------


def similarities(rows: np.ndarray, examples: np.ndarray, distance: str, datatype: str = "float32") -> np.ndarray:
    """(E, n) float32 similarities of float32 examples to float32 rows, for ranking. Examples
    first: each example's similarities are one contiguous row, which a top-k reads without a
    strided copy. Euclid and Manhattan: the reference kernel (the |x|^2 - 2 x.q + |q|^2
    shortcut over a product loses every digit for the close points a nearest search
    returns). Cosine and Dot: BLAS."""
    if distance in ASCENDING:
        return _pairs(_as_f32(rows), _as_f32(examples), METRICS[distance])
    if len(examples) == 1:
        sims = (rows @ examples[0])[None, :]  # a matrix-vector product, the common case
    else:
        sims = examples @ rows.T
    sims = sims.astype(np.float32, copy=False)
    if distance == "Cosine" and datatype == "uint8":
        sims = _cosine_u8(sims, _norms(_as_f32(rows)), _norms(_as_f32(examples)))
    return sims


# -- the vectors a graph is built on ----------------------------------------------------------


def graph_vectors(matrix: np.ndarray, rows: np.ndarray, distance: str, datatype: str) -> np.ndarray:
    """The float32 (nodes, dim) vectors a graph is built over: the rows as float32; uint8
    Cosine rows normalised (the graph scores with a plain dot product)."""
    vectors = np.ascontiguousarray(matrix[rows], dtype=np.float32)
    if distance == "Cosine" and datatype == "uint8":
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors = np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
    return vectors


def graph_query(vector: np.ndarray, distance: str, datatype: str) -> np.ndarray:
    """A prepared query in the form `graph_vectors` are compared with."""
    if distance == "Cosine" and datatype == "uint8":
        norm = float(np.linalg.norm(vector))
        return (vector / norm).astype(np.float32) if norm > 0 else np.zeros_like(vector, np.float32)
    return np.ascontiguousarray(vector, np.float32)


# -- the graph kernels' scorer ------------------------------------------------------------------


@intrinsic
def popcount(typingctx, x):
    """The number of set bits of a uint64 (llvm.ctpop: one popcnt instruction)."""
    if x != types.uint64:
        return None
    sig = types.int64(x)

    def codegen(context, builder, signature, args):
        i64 = ir.IntType(64)
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(i64, [i64]),
                                            "llvm.ctpop.i64")
        return builder.call(fn, [args[0]])

    return sig, codegen


def score(q, qi, vectors, j, metric):
    """Similarity of query row qi of `q` to stored row j of `vectors`, larger is closer; the
    HNSW search kernels inline this. Which formula is chosen at compile time from the array
    types (the overload below), so one set of kernels serves the float vectors and every
    kind of quantized codes (pydrant/segments/quantization.py):

        vectors float (n, dim),  q float (nq, dim)        the similarity (as `reference`,
                                                          up to the callers' FASTMATH)
        vectors uint8 (n, dim),  q float32 (nq, dim)      scalar codes: that of q and the
                                                          codes as float32 (q transformed)
        vectors uint8 (n, m),    q float32 (nq, m, 256)   product codes: sum_t q[qi, t, c_t]
        vectors uint64 (n, w),   q uint64 (nq, w)         binary codes, binary query:
                                                          -popcount(q xor c)
        vectors uint64 (n, w),   q uint64 (nq, B, w)      binary codes, bit-sliced B-bit
                                                          two's complement weights:
                                                          sum_b +-2^b popcount(q_b and c)

    For codes the result is a "raw" score, monotone in the approximate similarity; the
    quantization module maps it back to the metric's units."""
    raise NotImplementedError("only callable from Numba kernels")


@overload(score, inline="always")
def _score_overload(q, qi, vectors, j, metric):
    if not (isinstance(vectors, types.Array) and vectors.ndim == 2 and isinstance(q, types.Array)):
        return None
    dt = vectors.dtype
    if isinstance(dt, types.Float):
        def score_float(q, qi, vectors, j, metric):
            dim = q.shape[1]
            acc = np.float32(0.0)
            if metric == DOT:
                for t in range(dim):
                    acc += q[qi, t] * vectors[j, t]
                return acc
            if metric == EUCLID:
                for t in range(dim):
                    d = q[qi, t] - vectors[j, t]
                    acc += d * d
                return -acc
            for t in range(dim):
                acc += abs(q[qi, t] - vectors[j, t])
            return -acc
        return score_float
    if dt == types.uint8 and q.ndim == 2:
        def score_scalar(q, qi, vectors, j, metric):
            dim = q.shape[1]
            acc = np.float32(0.0)
            if metric == DOT:
                for t in range(dim):
                    acc += q[qi, t] * np.float32(vectors[j, t])
                return acc
            if metric == EUCLID:
                for t in range(dim):
                    d = q[qi, t] - np.float32(vectors[j, t])
                    acc += d * d
                return -acc
            for t in range(dim):
                acc += abs(q[qi, t] - np.float32(vectors[j, t]))
            return -acc
        return score_scalar
    if dt == types.uint8 and q.ndim == 3:
        def score_product(q, qi, vectors, j, metric):
            acc = np.float32(0.0)
            for t in range(vectors.shape[1]):
                acc += q[qi, t, vectors[j, t]]
            return acc
        return score_product
    if dt == types.uint64 and q.dtype == types.uint64 and q.ndim == 2:
        def score_hamming(q, qi, vectors, j, metric):
            acc = 0
            for t in range(vectors.shape[1]):
                acc += popcount(q[qi, t] ^ vectors[j, t])
            return np.float32(-acc)
        return score_hamming
    if dt == types.uint64 and q.dtype == types.uint64 and q.ndim == 3:
        def score_sliced(q, qi, vectors, j, metric):
            top = q.shape[1] - 1
            acc = 0
            for t in range(vectors.shape[1]):
                x = vectors[j, t]
                part = 0
                for b in range(top):
                    part += popcount(x & q[qi, b, t]) << b
                acc += part - (popcount(x & q[qi, top, t]) << top)
            return np.float32(acc)
        return score_sliced
    return None
