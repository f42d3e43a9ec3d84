"""Property tests of the exact scoring kernels (pydrant/segments/scoring.py) against a naive
per-row reference written here in float64 Python/NumPy.

The reference follows Qdrant's conventions (lib/segment/src/spaces and
lib/segment/src/vector_storage/query):

- similarities: Dot and float Cosine the dot product (float Cosine rows and examples come
  normalised from insert/prepare, which this level does not see), uint8 Cosine
  dot / (|a| |b|) (0 when a norm is 0), Euclid -sum (a-b)^2, Manhattan -sum |a-b|;
- best_score: max positive p, max negative n (-inf when absent); sigma(p) if p > n else
  -sigma(n), sigma(x) = (x / (1 + |x|) + 1) / 2;
- sum_scores: sum of positive similarities - sum of negative ones;
- discover: sum over pairs of sign(sim(pos) - sim(neg)) (+1, -1, 0 on a tie: Qdrant's
  `total_cmp as i32`) + sigma(sim(target));
- context: sum over pairs of fast_sigmoid(min(sim(pos) - sim(neg) - f32::EPSILON, 0));
- sparse: dot product over shared indices; a nearest query returns only points sharing
  at least one index with it; multi-vectors: MaxSim, the sum over query rows of the best
  similarity to any of the point's rows.

Every reference score is an interval [lo, hi]: the float64 value widened by a float32
rounding allowance (relative 1e-4 of the magnitude of the computation, absolute 1e-5).
In "exact" cases (values on a 1/4 grid, uint8 integers) float32 arithmetic of Dot, Euclid
and Manhattan is exact, so the allowance is zero and strict comparisons (`>` in discover
and best_score) are tested exactly. A discontinuous step (discover's +-1, best_score's
branch) whose inputs overlap within the allowance yields the hull of both outcomes.

Results are compared tie-tolerantly: every returned row must have its reference score,
at position p no more than p rows may be strictly better, at least p + 1 rows at least as
good, and the result has min(limit, candidates) rows.

`prepare_dense` (query conversion) is checked against Qdrant's cosine_preprocess and
element-type conversion at the end.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pydrant.segments import scoring
from pydrant.segments.scoring import ScoringQuery, VectorSpace
from pydrant.segments.types import SparseVector

DISTANCES = ("Cosine", "Dot", "Euclid", "Manhattan")
DATATYPES = ("float32", "float16", "uint8")
KINDS = scoring.KINDS
REL = 1e-4
ABS = 1e-5
TINY = 2e-6  # float32 rounding of the non-linear final steps (sigmoids), relative + absolute
F32_EPS = float(np.finfo(np.float32).eps)

SETTINGS = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# -- the reference ------------------------------------------------------------------------


def fast_sigmoid(x: float) -> float:
    return x / (1.0 + abs(x))


def sigma(x: float) -> float:
    return 0.5 * (fast_sigmoid(x) + 1.0)


def allowance(scale: float, exact: bool) -> float:
    return 0.0 if exact else ABS + REL * scale


def dense_sim(row: np.ndarray, example: np.ndarray, distance: str, datatype: str, exact: bool) -> tuple:
    """Interval of the similarity of one stored row to one (prepared) example."""
    a = np.asarray(row, dtype=np.float64)
    b = np.asarray(example, dtype=np.float64)
    if distance == "Cosine" and datatype == "uint8":
        na, nb = math.sqrt(float(a @ a)), math.sqrt(float(b @ b))
        value = float(a @ b) / (na * nb) if na * nb > 0 else 0.0
        t = ABS  # sqrt and division round even on integer inputs; |cos| <= 1
        return (value - t, value + t)
    if distance in ("Cosine", "Dot"):
        value, scale = float(a @ b), float(np.abs(a * b).sum())
    elif distance == "Euclid":
        value = -float(((a - b) ** 2).sum())
        scale = -value
    else:
        value = -float(np.abs(a - b).sum())
        scale = -value
    t = allowance(scale, exact)
    return (value - t, value + t)


def multi_sim(doc: np.ndarray, query: np.ndarray, distance: str, datatype: str, exact: bool) -> tuple:
    """MaxSim: sum over query rows of the max over doc rows."""
    lo = hi = 0.0
    for q in np.atleast_2d(query):
        sims = [dense_sim(d, q, distance, datatype, exact) for d in np.atleast_2d(doc)]
        lo += max(s[0] for s in sims)
        hi += max(s[1] for s in sims)
    return (lo, hi)


def sparse_sim(doc: SparseVector, query: SparseVector, exact: bool) -> tuple:
    values = dict(zip(doc.indices.tolist(), doc.values.astype(np.float64).tolist()))
    terms = [v * values[i] for i, v in zip(query.indices.tolist(), query.values.astype(np.float64).tolist()) if i in values]
    value = float(sum(terms))
    t = allowance(float(sum(abs(x) for x in terms)), exact)
    return (value - t, value + t)


def shares_index(doc: SparseVector, query: SparseVector) -> bool:
    return bool(set(doc.indices.tolist()) & set(query.indices.tolist()))


def _hull(*intervals) -> tuple:
    return (min(i[0] for i in intervals), max(i[1] for i in intervals))


def _widen(interval: tuple) -> tuple:
    lo, hi = interval
    return (lo - TINY * (1 + abs(lo)), hi + TINY * (1 + abs(hi)))


def combine_ref(query: ScoringQuery, sims: list) -> tuple:
    """The query's score interval from the similarity intervals of one row to its examples."""
    kind = query.kind
    if kind == scoring.NEAREST:
        return _widen(sims[0])
    if kind == scoring.SUM_SCORES:
        pos, neg = sims[: query.n_positive], sims[query.n_positive :]
        lo = sum(s[0] for s in pos) - sum(s[1] for s in neg)
        hi = sum(s[1] for s in pos) - sum(s[0] for s in neg)
        return _widen((lo, hi))
    if kind == scoring.BEST_SCORE:
        pos, neg = sims[: query.n_positive], sims[query.n_positive :]
        p = (max(s[0] for s in pos), max(s[1] for s in pos)) if pos else None
        n = (max(s[0] for s in neg), max(s[1] for s in neg)) if neg else None
        positive_branch = (sigma(p[0]), sigma(p[1])) if p else None
        negative_branch = (-sigma(n[1]), -sigma(n[0])) if n else None
        if n is None or (p is not None and p[0] > n[1]):  # surely p > n
            return _widen(positive_branch)
        if p is None or p[1] <= n[0]:  # surely p <= n
            return _widen(negative_branch)
        return _widen(_hull(positive_branch, negative_branch))
    if kind == scoring.DISCOVER:
        target, pairs = sims[0], sims[1:]
        low = high = 0
        for pos, neg in zip(pairs[0::2], pairs[1::2]):
            # sign(p - n) over p in pos, n in neg: from sign(pos_lo - neg_hi) to sign(pos_hi - neg_lo)
            low += int(np.sign(pos[0] - neg[1]))
            high += int(np.sign(pos[1] - neg[0]))
        return _widen((low + sigma(target[0]), high + sigma(target[1])))
    if kind == scoring.CONTEXT:
        lo = hi = 0.0
        for pos, neg in zip(sims[0::2], sims[1::2]):
            lo += fast_sigmoid(min(pos[0] - neg[1] - F32_EPS, 0.0))
            hi += fast_sigmoid(min(pos[1] - neg[0] - F32_EPS, 0.0))
        return _widen((lo, hi))
    raise AssertionError(kind)


def row_interval(value, query: ScoringQuery, space: VectorSpace, exact: bool) -> tuple:
    if space.kind == "sparse":
        sims = [sparse_sim(value, e, exact) for e in query.examples]
    elif space.kind == "multi":
        sims = [multi_sim(value, e, space.distance, space.datatype, exact) for e in query.examples]
    else:
        sims = [dense_sim(value, e, space.distance, space.datatype, exact) for e in query.examples]
    return combine_ref(query, sims)


# -- comparing a top-k with the reference ----------------------------------------------------


def assert_top(rows, scores, reference: dict, limit: int, label: str = "") -> None:
    """`rows`/`scores` (best first, larger better) are a valid top `limit` of `reference`
    (row -> (lo, hi)), ties in any order."""
    rows = [int(r) for r in np.asarray(rows).tolist()]
    scores = [float(s) for s in np.asarray(scores).tolist()]
    context = f"{label} rows={rows} scores={scores} reference={reference}"
    assert len(rows) == len(scores), context
    assert len(rows) == min(limit, len(reference)), context
    assert len(set(rows)) == len(rows), context
    for position, (row, score) in enumerate(zip(rows, scores)):
        assert row in reference, f"row {row} is not a candidate; {context}"
        lo, hi = reference[row]
        assert lo <= score <= hi, f"row {row} score {score} not in [{lo}, {hi}]; {context}"
        if position:
            assert scores[position - 1] >= score, f"not sorted; {context}"
        better = sum(1 for other_lo, _ in reference.values() if other_lo > hi)
        assert better <= position, f"row {row} at {position} but {better} rows are better; {context}"
        at_least = sum(1 for _, other_hi in reference.values() if other_hi >= lo)
        assert at_least >= position + 1, f"row {row} at {position} ranks too high; {context}"


# -- strategies -----------------------------------------------------------------------------


def element_strategy(datatype: str, exact: bool):
    """Stored values (before conversion to the datatype)."""
    if datatype == "uint8":
        return st.integers(0, 255).map(float)
    if exact:
        return st.integers(-32, 32).map(lambda k: k / 4)
    return st.floats(-4, 4, width=32, allow_nan=False, allow_infinity=False)


def example_element(datatype: str, exact: bool):
    """Prepared query values: uint8 queries are truncated to 0..255 by `prepare_dense`."""
    return element_strategy(datatype, exact)


def matrix_strategy(datatype: str, exact: bool, rows: int, dim: int):
    return hnp.arrays(np.float32, (rows, dim), elements=element_strategy(datatype, exact)).map(
        lambda m: m.astype(np.dtype(datatype))
    )


def vector_strategy(datatype: str, exact: bool, dim: int):
    return hnp.arrays(np.float32, (dim,), elements=example_element(datatype, exact))


@st.composite
def scoring_query(draw, example):
    """A ScoringQuery of any kind whose examples are drawn from `example`."""
    kind = draw(st.sampled_from(KINDS))
    if kind == scoring.NEAREST:
        return ScoringQuery(kind, (draw(example),))
    if kind in (scoring.BEST_SCORE, scoring.SUM_SCORES):
        n_pos = draw(st.integers(0, 3))
        n_neg = draw(st.integers(0 if n_pos else 1, 3))
        examples = tuple(draw(example) for _ in range(n_pos + n_neg))
        return ScoringQuery(kind, examples, n_positive=n_pos)
    if kind == scoring.DISCOVER:
        pairs = draw(st.integers(0, 3))
        return ScoringQuery(kind, tuple(draw(example) for _ in range(1 + 2 * pairs)))
    pairs = draw(st.integers(1, 3))
    return ScoringQuery(kind, tuple(draw(example) for _ in range(2 * pairs)))


@st.composite
def dense_case(draw):
    datatype = draw(st.sampled_from(DATATYPES))
    distance = draw(st.sampled_from(DISTANCES))
    exact = datatype == "uint8" or draw(st.booleans())
    dim = draw(st.integers(1, 6))
    n = draw(st.integers(0, 40))
    matrix = draw(matrix_strategy(datatype, exact, n, dim))
    mask = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    example = vector_strategy(datatype, exact, dim)
    queries = draw(st.lists(scoring_query(example), min_size=1, max_size=3))
    limit = draw(st.integers(1, n + 3))
    return datatype, distance, exact, matrix, mask, queries, limit


BLOCKS = st.tuples(
    st.sampled_from([1, 2, 3, 7, 1 << 18]),
    st.sampled_from([1, 2, 5, 16, 1 << 14]),
    st.sampled_from([0.0, 0.25, 0.6, 1.01]),
)


@contextmanager
def blocks(f32_rows: int, converted_rows: int, gather_share: float):
    with mock.patch.object(scoring, "_F32_BLOCK_ROWS", f32_rows), mock.patch.object(
        scoring, "_CONVERTED_BLOCK_ROWS", converted_rows
    ), mock.patch.object(scoring, "_GATHER_SHARE", gather_share):
        yield


# -- dense ----------------------------------------------------------------------------------


@SETTINGS
@given(case=dense_case(), block_sizes=BLOCKS)
def test_search_dense_matches_reference(case, block_sizes):
    datatype, distance, exact, matrix, mask, queries, limit = case
    space = VectorSpace(distance, datatype)
    with blocks(*block_sizes):
        found = scoring.search_dense(matrix, mask, queries, limit, distance, datatype)
    assert len(found) == len(queries)
    candidates = np.flatnonzero(mask).tolist()
    for query, (rows, scores) in zip(queries, found):
        reference = {r: row_interval(matrix[r], query, space, exact) for r in candidates}
        assert_top(rows, scores, reference, limit, label=f"{query.kind} {distance} {datatype}")


@SETTINGS
@given(case=dense_case(), data=st.data())
def test_score_rows_dense_matches_reference(case, data):
    datatype, distance, exact, matrix, _, queries, _ = case
    n = len(matrix)
    rows = np.array(data.draw(st.lists(st.integers(0, max(n - 1, 0)), max_size=8 if n else 0)), dtype=np.int64)
    space = VectorSpace(distance, datatype)
    for query in queries:
        scores = scoring.score_rows(matrix, rows, query, space)
        assert len(scores) == len(rows)
        for row, score in zip(rows.tolist(), np.asarray(scores).tolist()):
            lo, hi = row_interval(matrix[row], query, space, exact)
            assert lo <= score <= hi, (query.kind, distance, datatype, row, score, lo, hi)


def test_search_dense_crosses_every_block_boundary():
    """A deterministic multi-block scan: 1000 uint8 rows in blocks of 7, 64 float16 rows in
    blocks of 5; the best rows sit on both sides of block edges."""
    rng = np.random.default_rng(7)
    for datatype, rows_patch in (("uint8", (1 << 18, 7, 0.0)), ("float16", (1 << 18, 5, 0.0)), ("float32", (3, 1, 0.0))):
        n = 1000 if datatype == "uint8" else 64
        matrix = rng.integers(0, 200, size=(n, 3)).astype(np.dtype(datatype))
        matrix[[6, 7, 13, 14]] = 250  # nearest to the query, around the edges of blocks of 7
        mask = np.ones(n, dtype=bool)
        query = ScoringQuery(scoring.NEAREST, (np.full(3, 250, np.float32),))
        with blocks(*rows_patch):
            (rows, scores), = scoring.search_dense(matrix, mask, [query], 6, "Euclid", datatype)
        reference = {r: row_interval(matrix[r], query, VectorSpace("Euclid", datatype), True) for r in range(n)}
        assert_top(rows, scores, reference, 6, label=datatype)
        assert set(rows[:4].tolist()) == {6, 7, 13, 14}
        assert scores[:4].tolist() == [0.0] * 4


# -- multi-vectors --------------------------------------------------------------------------


@st.composite
def multi_case(draw):
    datatype = draw(st.sampled_from(DATATYPES))
    distance = draw(st.sampled_from(DISTANCES))
    exact = datatype == "uint8" or draw(st.booleans())
    dim = draw(st.integers(1, 4))
    n = draw(st.integers(0, 12))
    docs = [draw(matrix_strategy(datatype, exact, draw(st.integers(1, 3)), dim)) for _ in range(n)]
    rows = np.array(sorted(draw(st.sets(st.integers(0, 500), min_size=n, max_size=n))), dtype=np.int64)
    example = st.integers(1, 3).flatmap(
        lambda q: hnp.arrays(np.float32, (q, dim), elements=example_element(datatype, exact))
    )
    queries = draw(st.lists(scoring_query(example), min_size=1, max_size=3))
    limit = draw(st.integers(1, n + 2))
    return datatype, distance, exact, docs, rows, queries, limit


@SETTINGS
@given(case=multi_case())
def test_search_lists_multivector_matches_reference(case):
    datatype, distance, exact, docs, rows, queries, limit = case
    space = VectorSpace(distance, datatype, kind="multi")
    found = scoring.search_lists(docs, rows, queries, limit, space)
    assert len(found) == len(queries)
    for query, (got_rows, scores) in zip(queries, found):
        reference = {int(r): row_interval(doc, query, space, exact) for r, doc in zip(rows.tolist(), docs)}
        assert_top(got_rows, scores, reference, limit, label=f"multi {query.kind} {distance} {datatype}")
        picked = scoring.score_rows(docs, np.arange(len(docs)), query, space)
        for doc, score in zip(docs, np.asarray(picked).tolist()):
            lo, hi = row_interval(doc, query, space, exact)
            assert lo <= score <= hi


# -- sparse ---------------------------------------------------------------------------------


def sparse_strategy(exact: bool, max_size: int = 5):
    values = element_strategy("float32", exact)
    return st.dictionaries(st.integers(0, 12), values, max_size=max_size).map(
        lambda d: SparseVector(
            np.array(sorted(d), dtype=np.uint32), np.array([d[k] for k in sorted(d)], dtype=np.float32)
        )
    )


@st.composite
def sparse_case(draw):
    exact = draw(st.booleans())
    n = draw(st.integers(0, 25))
    docs = [draw(sparse_strategy(exact)) for _ in range(n)]
    rows = np.array(sorted(draw(st.sets(st.integers(0, 500), min_size=n, max_size=n))), dtype=np.int64)
    queries = draw(st.lists(scoring_query(sparse_strategy(exact, max_size=4)), min_size=1, max_size=3))
    limit = draw(st.integers(1, n + 2))
    return exact, docs, rows, queries, limit


@SETTINGS
@given(case=sparse_case())
def test_search_lists_sparse_matches_reference(case):
    exact, docs, rows, queries, limit = case
    space = VectorSpace("Dot", "float32", kind="sparse")
    found = scoring.search_lists(docs, rows, queries, limit, space)
    assert len(found) == len(queries)
    for query, (got_rows, scores) in zip(queries, found):
        reference = {
            int(r): row_interval(doc, query, space, exact)
            for r, doc in zip(rows.tolist(), docs)
            if not query.is_nearest or shares_index(doc, query.examples[0])
        }
        assert_top(got_rows, scores, reference, limit, label=f"sparse {query.kind}")


@SETTINGS
@given(case=sparse_case())
def test_score_rows_sparse_matches_reference(case):
    exact, docs, _, queries, _ = case
    space = VectorSpace("Dot", "float32", kind="sparse")
    rows = np.arange(len(docs))[::-1].copy()
    for query in queries:
        scores = scoring.score_rows(docs, rows, query, space)
        assert len(scores) == len(rows)
        for row, score in zip(rows.tolist(), np.asarray(scores).tolist()):
            lo, hi = row_interval(docs[row], query, space, exact)
            assert lo <= score <= hi, (query.kind, row, score, lo, hi)


def test_sparse_nearest_keeps_a_shared_index_with_zero_product_and_drops_disjoint_points():
    docs = [
        SparseVector(np.array([1], np.uint32), np.array([0.0], np.float32)),  # shares index 1, product 0
        SparseVector(np.array([2], np.uint32), np.array([5.0], np.float32)),  # disjoint
        SparseVector(np.array([], np.uint32), np.array([], np.float32)),  # empty
        SparseVector(np.array([1, 3], np.uint32), np.array([-1.0, 2.0], np.float32)),
    ]
    query = ScoringQuery(scoring.NEAREST, (SparseVector(np.array([1, 3], np.uint32), np.array([1.0, 1.0], np.float32)),))
    (rows, scores), = scoring.search_lists(docs, np.array([10, 11, 12, 13]), [query], 10, VectorSpace("Dot", kind="sparse"))
    assert rows.tolist() == [13, 10]
    assert scores.tolist() == [1.0, 0.0]
    # Any other kind scores every point that has the vector, the empty one included.
    other = ScoringQuery(scoring.SUM_SCORES, query.examples, n_positive=1)
    (rows, scores), = scoring.search_lists(docs, np.array([10, 11, 12, 13]), [other], 10, VectorSpace("Dot", kind="sparse"))
    assert sorted(rows.tolist()) == [10, 11, 12, 13]


# -- exact tie semantics ---------------------------------------------------------------------


def test_strict_comparisons_on_exact_ties():
    """discover counts 0 for a tied pair (Qdrant's rank_by); best_score takes the negative branch
    on a tie; context's margin makes a tie score fast_sigmoid(-eps)."""
    matrix = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    e = np.array([1.0, 0.0], np.float32)
    mask = np.ones(2, bool)
    discover = ScoringQuery(scoring.DISCOVER, (e, e, e))
    best = ScoringQuery(scoring.BEST_SCORE, (e, e), n_positive=1)
    context = ScoringQuery(scoring.CONTEXT, (e, e))
    found = scoring.search_dense(matrix, mask, [discover, best, context], 2, "Dot", "float32")
    (d_rows, d_scores), (b_rows, b_scores), (c_rows, c_scores) = found
    assert d_rows.tolist() == [0, 1]
    assert d_scores.tolist() == pytest.approx([sigma(1.0), sigma(0.0)])
    assert b_rows.tolist() == [1, 0]
    assert b_scores.tolist() == pytest.approx([-sigma(0.0), -sigma(1.0)])
    assert c_scores.tolist() == pytest.approx([fast_sigmoid(-F32_EPS)] * 2, abs=1e-9)


# -- query preparation ----------------------------------------------------------------------


def cosine_preprocess(row: np.ndarray) -> np.ndarray:
    """Qdrant's `cosine_preprocess` (lib/segment/src/spaces/simple.rs): the f32 squared
    length; below f32::EPSILON (zero or tiny) or within 1e-6 of 1 the vector stays as it
    is, else it is divided by the length."""
    length = np.float32(0.0)
    for x in np.asarray(row, np.float32):
        length = np.float32(length + x * x)
    if length < np.float32(F32_EPS) or abs(float(length) - 1.0) <= 1e-6:
        return np.asarray(row, np.float64)
    return np.asarray(row, np.float64) / math.sqrt(float(length))


# Any magnitude: tiny rows (squared length below f32::EPSILON, or underflowing to 0) stay as they are.
PREPARE_ELEMENTS = st.floats(-300, 300, width=32)


@SETTINGS
@given(
    distance=st.sampled_from(DISTANCES),
    datatype=st.sampled_from(DATATYPES),
    rows=st.integers(1, 3),
    multi=st.booleans(),
    data=st.data(),
)
def test_prepare_dense_is_qdrants_query_conversion(distance, datatype, rows, multi, data):
    """Preprocess for the metric (float Cosine: Qdrant's cosine_preprocess per row), then
    convert to the storage element type as `slice_from_float_cow` does: f16 rounding, or
    Rust `as u8` (truncate toward zero, saturate at 0 and 255)."""
    shape = (rows, 3) if multi else (3,)
    raw = data.draw(hnp.arrays(np.float32, shape, elements=PREPARE_ELEMENTS))
    prepared = scoring.prepare_dense(raw, distance, datatype)
    assert prepared.dtype == np.float32 and prepared.shape == shape
    expected = raw.astype(np.float64)
    if datatype == "uint8":
        expected = np.clip(np.trunc(expected), 0, 255)
        assert np.array_equal(prepared, expected)
        return
    if distance == "Cosine":
        expected = np.array([cosine_preprocess(r) for r in np.atleast_2d(raw)]).reshape(shape)
    if datatype == "float16":
        # one f16 step of the (f32-rounded) value, whichever way the f32 normalisation rounded
        assert np.all(prepared == prepared.astype(np.float16).astype(np.float32))
        np.testing.assert_allclose(prepared, expected, rtol=2 ** -10, atol=2 ** -24)
    else:
        np.testing.assert_allclose(prepared, expected, rtol=1e-6, atol=1e-7)


def test_prepare_dense_leaves_tiny_cosine_vectors_unnormalised():
    """Qdrant's cosine_preprocess keeps a vector whose f32 squared length is below
    f32::EPSILON as it is: [1e-4, 0, 0] (squared length 1e-8) is not scaled to [1, 0, 0];
    [1.69e-37] * 3 (found by the property above), whose squared length underflows, is not
    zeroed."""
    for tiny in ([1e-4, 0, 0], [1.6857292e-37] * 3):
        tiny = np.array(tiny, np.float32)
        assert scoring.prepare_dense(tiny, "Cosine", "float32").tolist() == tiny.tolist()
