"""Exact scoring of stored vectors against a query: every distance, vector kind and query kind.

Qdrant's conventions (lib/segment/src/spaces, .../vector_storage/query):

- Every metric has a *similarity*, larger is closer: Cosine and Dot the dot product (Cosine
  vectors are normalised on insert and queries here, so it is the cosine), Euclid the
  negative squared distance, Manhattan the negative L1 distance. uint8 vectors are not
  normalised: their Cosine is dot / (|a| |b|), 0 when a norm is 0.
- A *nearest* query ranks by similarity and reports it post-processed: the distance itself
  for Euclid (sqrt |s|) and Manhattan (|s|), so those results read ascending.
- The other query kinds combine the similarities to their example vectors and report the
  combination as it is, larger better, whatever the metric:
    best_score  max positive p, max negative n: sigma(p) if p > n else -sigma(n)
    sum_scores  sum of positive similarities - sum of negative ones
    discover    sum over pairs of (+1 if closer to positive else -1) + sigma(target)
    context     sum over pairs of fast_sigmoid(min(pos - neg - eps, 0))
  with fast_sigmoid(x) = x / (1 + |x|) and sigma(x) = (fast_sigmoid(x) + 1) / 2.
- Sparse vectors: the dot product over shared indices; a nearest sparse search returns only
  points that share at least one index with the query. Multi-vectors: MaxSim, the sum over
  query rows of the best similarity to any of the point's rows.

Scoring is vectorised: the similarities of a block of rows to every example vector of
every query come from one matrix product (or one Numba kernel call), then each query
combines its columns. Blocks bound the memory of float16/uint8 conversion and of the
(rows x examples) similarity matrix; a running top-k per block keeps the result small.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pydrant.segments import deadline
from pydrant.segments import distance as metric
from pydrant.segments.types import SparseVector

NEAREST = "nearest"
BEST_SCORE = "best_score"
SUM_SCORES = "sum_scores"
DISCOVER = "discover"
CONTEXT = "context"
KINDS = (NEAREST, BEST_SCORE, SUM_SCORES, DISCOVER, CONTEXT)

# float32 rows are scored straight from the stored matrix in big blocks (BLAS streams
# them); other datatypes are converted to float32 a block at a time.
_F32_BLOCK_ROWS = 1 << 18
_CONVERTED_BLOCK_ROWS = 1 << 14
# Below this share of candidate rows, gathering them beats scanning everything.
_GATHER_SHARE = 0.25
# Multiply-adds of one block (rows x dimension x example vectors): 64 MB of float32 rows
# for one query, about 10 ms on one core, so a read's deadline (segments/deadline.py) is
# checked that often in a long exact scan.
_BLOCK_WORK = 1 << 24
_F32_EPSILON = metric.F32_EPSILON
_CONTEXT_MARGIN = _F32_EPSILON


@dataclass(frozen=True)
class ScoringQuery:
    """One query as the kernels see it: a kind and its example vectors, already prepared
    for the vector's metric (see `prepare_dense`).

    `examples` layout per kind: nearest [q]; best_score and sum_scores positives then
    negatives (`n_positive` of the former); discover [target, pos1, neg1, pos2, neg2, ...];
    context [pos1, neg1, pos2, neg2, ...].
    """

    kind: str
    examples: tuple
    n_positive: int = 0

    @property
    def is_nearest(self) -> bool:
        return self.kind == NEAREST


@dataclass
class VectorSpace:
    """What scoring needs to know of a stored vector: its metric and kind."""

    distance: str  # Cosine | Dot | Euclid | Manhattan ("Dot" for sparse vectors)
    datatype: str = "float32"
    kind: str = "dense"  # dense | multi | sparse
    idf: np.ndarray | None = field(default=None, repr=False)  # unused for dense


# -- preparing query vectors ----------------------------------------------------------------


def prepare_dense(array: np.ndarray, distance: str, datatype: str) -> np.ndarray:
    """A query (or example) vector in the form stored rows are compared with: float32,
    normalised for Cosine over float datatypes, then rounded to the storage type as Qdrant
    converts queries to it (float16; uint8 truncated to 0..255). Works on 1-d vectors and
    2-d multi-vectors."""
    array = np.asarray(array, dtype=np.float32)
    if datatype == "uint8":
        return np.clip(array, 0, 255).astype(np.uint8).astype(np.float32)
    if distance == "Cosine":
        array = cosine_normalised(array)
    if datatype == "float16":  # Qdrant scores a float16 vector with a float16 query
        array = array.astype(np.float16).astype(np.float32)
    return array


def cosine_normalised(array: np.ndarray) -> np.ndarray:
    """Qdrant's cosine preprocessing (spaces/simple.rs) of float32 vectors (last axis):
    divided by their length, except those whose squared length is below f32 epsilon (zero
    or tiny) or already within 1e-6 of 1, which stay as they are."""
    squared = np.einsum("...i,...i->...", array, array)[..., None]
    keep = (squared < _F32_EPSILON) | (np.abs(squared - 1.0) <= 1e-6)
    lengths = np.sqrt(np.where(keep, 1.0, squared)).astype(np.float32)
    return np.where(keep, array, array / lengths).astype(np.float32, copy=False)


# -- combining similarities into query scores -----------------------------------------------


def fast_sigmoid(x: np.ndarray) -> np.ndarray:
    return x / (1.0 + np.abs(x))


def scaled_fast_sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (fast_sigmoid(x) + 1.0)


def combine(query: ScoringQuery, sims: np.ndarray) -> np.ndarray:
    """The query's scores from the similarities of its E examples to n rows ((E, n))."""
    kind = query.kind
    if kind == NEAREST:
        return sims[0]
    if kind in (BEST_SCORE, SUM_SCORES):
        positives, negatives = sims[: query.n_positive], sims[query.n_positive :]
        if kind == SUM_SCORES:
            return positives.sum(axis=0) - negatives.sum(axis=0)
        with np.errstate(invalid="ignore"):  # sigma(-inf) of the branch not taken
            return _best_score(positives, negatives)
    if kind == DISCOVER:
        pairs = sims[1:]
        # Qdrant's ContextPair::rank_by: +1 closer to the positive, -1 to the negative, 0 on a
        # tie (`total_cmp as i32`), e.g. a sparse point sharing no index with either example.
        rank = np.sign(pairs[0::2] - pairs[1::2]).sum(axis=0)
        return (rank + scaled_fast_sigmoid(sims[0])).astype(np.float32)
    if kind == CONTEXT:
        difference = sims[0::2] - sims[1::2] - _CONTEXT_MARGIN
        return fast_sigmoid(np.minimum(difference, 0.0)).sum(axis=0)
    raise ValueError(f"unknown query kind {kind!r}")


def _best_score(positives: np.ndarray, negatives: np.ndarray) -> np.ndarray:
    n = positives.shape[1]
    best_positive = positives.max(axis=0) if len(positives) else np.full(n, -np.inf, np.float32)
    best_negative = negatives.max(axis=0) if len(negatives) else np.full(n, -np.inf, np.float32)
    return np.where(
        best_positive > best_negative, scaled_fast_sigmoid(best_positive), -scaled_fast_sigmoid(best_negative)
    )


def postprocess(query: ScoringQuery, distance: str, scores: np.ndarray) -> np.ndarray:
    """Scores as reported: distances for nearest Euclid/Manhattan, else unchanged."""
    return metric.reported(distance, scores) if query.is_nearest else scores


def reported_order_ascending(query: ScoringQuery, distance: str) -> bool:
    """Whether reported scores improve downwards (nearest by a distance)."""
    return query.is_nearest and distance in metric.ASCENDING


# -- dense similarities ---------------------------------------------------------------------


def dense_similarities(rows: np.ndarray, examples: np.ndarray, distance: str, datatype: str) -> np.ndarray:
    """(E, n) float32 similarities of float32 examples to float32 rows, for ranking
    (`distance.similarities`: BLAS for Cosine/Dot, the reference kernel for Euclid/Manhattan)."""
    return metric.similarities(rows, examples, distance, datatype)


def _stack_examples(queries: list[ScoringQuery]) -> np.ndarray:
    return np.vstack([np.asarray(e, dtype=np.float32).reshape(1, -1) for q in queries for e in q.examples])


def search_dense(
    matrix: np.ndarray,
    mask: np.ndarray,
    queries: list[ScoringQuery],
    limit: int,
    distance: str,
    datatype: str,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Top `limit` rows of `matrix` among those with `mask` set, per query: (rows, scores)
    with scores descending (internal, before `postprocess`)."""
    examples = _stack_examples(queries)
    count = int(np.count_nonzero(mask))
    if count == 0:
        return [(np.empty(0, np.int64), np.empty(0, np.float32)) for _ in queries]
    n = len(mask)
    step = scan_block_rows(matrix, len(examples))
    if count < n * _GATHER_SHARE:
        rows = np.flatnonzero(mask)
        scored = []
        for start in range(0, len(rows), step):
            deadline.check()
            block = rows[start : start + step]
            scored.append(_score_block(matrix[block], None, queries, examples, distance, datatype, limit, block))
    else:
        scored = []
        every_row = count == n
        for start in range(0, n, step):
            deadline.check()
            block_mask = None if every_row else mask[start : start + step]
            if block_mask is not None and block_mask.all():
                block_mask = None  # nothing to mask out: skip a pass over the scores
            scored.append(
                _score_block(matrix[start : start + step], block_mask, queries, examples, distance, datatype, limit, start)
            )
    if len(scored) == 1:
        found = [_finite(*found) for found in scored[0]]
    else:
        found = [_merge_blocks([block[i] for block in scored], limit) for i in range(len(queries))]
    if distance in metric.ASCENDING:
        return found  # ranked with the reference kernel itself: the scores are reported as they are
    return [_reference_scores(matrix, query, rows, distance, datatype) for query, (rows, _) in zip(queries, found)]


def scan_block_rows(matrix: np.ndarray, examples: int) -> int:
    """Rows scored per block: the datatype's block, smaller for wide vectors or many
    example vectors so that a block stays about `_BLOCK_WORK` multiply-adds (the
    deadline's granularity in an exact scan), never under 1024 rows."""
    step = _F32_BLOCK_ROWS if matrix.dtype == np.float32 else _CONVERTED_BLOCK_ROWS
    width = (matrix.shape[1] if matrix.ndim == 2 else 1) * max(1, examples)
    return max(1024, min(step, _BLOCK_WORK // max(1, width)))


def _reference_scores(matrix, query: ScoringQuery, rows: np.ndarray, distance: str, datatype: str):
    """The top rows of a query ranked by BLAS similarities, scored again with the reference
    (`distance.reference`: what every path reports for a (query, point) pair) and re-sorted."""
    if not len(rows):
        return rows, np.empty(0, np.float32)
    scores = combine(query, metric.reference(matrix[rows], _stack_examples([query]), distance, datatype))
    order = np.argsort(-scores, kind="stable")
    return rows[order], scores[order].astype(np.float32, copy=False)


def _score_block(rows, mask, queries, examples, distance, datatype, limit, where):
    """Per query (row numbers, scores) of the block's best rows, best first. `where` is
    the block's first row number, or the array of row numbers of gathered rows."""
    if rows.dtype != np.float32:
        rows = rows.astype(np.float32)
    sims = dense_similarities(rows, examples, distance, datatype)
    found = []
    first = 0
    for query in queries:
        width = len(query.examples)
        scores = combine(query, sims[first : first + width])
        first += width
        if mask is not None:
            scores = np.where(mask, scores, np.float32(-np.inf))
        top = top_k(scores, limit)
        numbers = where[top] if isinstance(where, np.ndarray) else top + where
        found.append((numbers, scores[top]))
    return found


def _finite(rows: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keep = np.isfinite(scores)
    return rows[keep].astype(np.int64, copy=False), scores[keep].astype(np.float32, copy=False)


def _merge_blocks(blocks: list[tuple[np.ndarray, np.ndarray]], limit: int) -> tuple[np.ndarray, np.ndarray]:
    rows, scores = _finite(np.concatenate([b[0] for b in blocks]), np.concatenate([b[1] for b in blocks]))
    top = top_k(scores, limit)
    return rows[top], scores[top]


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Positions of the k largest scores, best first (-inf entries may be included)."""
    n = len(scores)
    if k <= 0 or n == 0:
        return np.empty(0, dtype=np.int64)
    if k < n:
        part = np.argpartition(scores, n - k)[n - k :]  # no negated copy of the scores
    else:
        part = np.arange(n)
    return part[np.argsort(-scores[part], kind="stable")]


# -- multi-vectors and sparse vectors -------------------------------------------------------


def multi_similarity(doc: np.ndarray, query: np.ndarray, distance: str, datatype: str) -> float:
    """MaxSim: the sum over the query's rows of the best similarity to any row of `doc`."""
    sims = metric.reference(doc, query, distance, datatype)  # (q rows, doc rows)
    return float(sims.max(axis=1).sum())


def sparse_similarities(candidates: list[SparseVector], query: SparseVector) -> tuple[np.ndarray, np.ndarray]:
    """Dot products of sparse vectors with a sparse query, and whether each shares an index.

    All candidates are flattened into one index/value array; a binary search in the
    query's sorted indices finds the shared ones, and bincount sums them per candidate."""
    n = len(candidates)
    if n == 0 or len(query.indices) == 0:
        return np.zeros(n, np.float32), np.zeros(n, bool)
    lengths = np.fromiter((len(c.indices) for c in candidates), dtype=np.int64, count=n)
    if lengths.sum() == 0:
        return np.zeros(n, np.float32), np.zeros(n, bool)
    indices = np.concatenate([c.indices for c in candidates])
    values = np.concatenate([c.values for c in candidates])
    owner = np.repeat(np.arange(n), lengths)
    position = np.searchsorted(query.indices, indices)
    position_clipped = np.minimum(position, len(query.indices) - 1)
    shared = query.indices[position_clipped] == indices
    products = np.where(shared, values * query.values[position_clipped], 0.0)
    scores = np.bincount(owner, weights=products, minlength=n).astype(np.float32)
    overlaps = np.bincount(owner, weights=shared, minlength=n) > 0
    return scores, overlaps


def list_similarities(values: list, space: VectorSpace, example) -> np.ndarray:
    """Similarities of stored multi or sparse vectors (one per candidate) to one example.
    Sparse candidates sharing no index with a nearest query get -inf from `search_lists`."""
    if space.kind == "sparse":
        return sparse_similarities(values, example)[0]
    return np.fromiter(
        (multi_similarity(doc, example, space.distance, space.datatype) for doc in values),
        dtype=np.float32,
        count=len(values),
    )


def search_lists(
    values: list, rows: np.ndarray, queries: list[ScoringQuery], limit: int, space: VectorSpace
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Top `limit` of the candidates `rows` (their vectors in `values`) per query, as
    `search_dense` answers."""
    found = []
    for query in queries:
        sims = np.stack([list_similarities(values, space, example) for example in query.examples])
        scores = combine(query, sims) if len(values) else np.empty(0, np.float32)
        if space.kind == "sparse" and query.is_nearest and len(values):
            _, overlaps = sparse_similarities(values, query.examples[0])
            scores = np.where(overlaps, scores, -np.inf)
        top = top_k(scores, limit)
        top = top[np.isfinite(scores[top])]
        found.append((rows[top].astype(np.int64, copy=False), scores[top].astype(np.float32, copy=False)))
    return found


def score_rows(values, rows: np.ndarray, query: ScoringQuery, space: VectorSpace) -> np.ndarray:
    """Scores (internal) of the given rows; for dense, `values` is the matrix."""
    if space.kind == "dense":
        examples = _stack_examples([query])
        block = np.asarray(values[rows], dtype=np.float32)
        return combine(query, metric.reference(block, examples, space.distance, space.datatype))
    picked = [values[r] for r in rows.tolist()]
    if not picked:
        return np.empty(0, np.float32)
    sims = np.stack([list_similarities(picked, space, e) for e in query.examples])
    return combine(query, sims)
