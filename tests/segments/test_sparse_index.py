"""The sparse inverted index (pydrant/segments/sparse_index.py) against a naive dict-based
reference and against the exact search of `scoring.py`."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pydrant.segments import scoring
from pydrant.segments.sparse_index import META_FILE, SparseInvertedIndex
from pydrant.segments.types import SparseVector
from pydrant.segments.packfile import PackWriter, open_pack

DATATYPES = ("float32", "float16", "uint8")


def sv(pairs: dict) -> SparseVector:
    keys = sorted(pairs)
    return SparseVector(np.array(keys, np.uint32), np.array([pairs[d] for d in keys], np.float32))


def naive(vectors: list[SparseVector], rows, q: dict, allowed=None) -> dict[int, float]:
    """row -> float64 dot product, for the rows sharing an index with the query."""
    found = {}
    for row, vector in zip(rows, vectors):
        if allowed is not None and not allowed[row]:
            continue
        stored = dict(zip(vector.indices.tolist(), vector.values.tolist()))
        shared = stored.keys() & q.keys()
        if shared:
            found[int(row)] = sum(stored[d] * q[d] for d in shared)
        # no shared index: not found, whatever the score
    return found


def quantisation_errors(vectors: list[SparseVector], datatype: str) -> dict[int, float]:
    """dim -> bound on |stored - dequantised| for any posting of the dim."""
    lists: dict[int, list[float]] = {}
    for v in vectors:
        for d, x in zip(v.indices.tolist(), v.values.tolist()):
            lists.setdefault(d, []).append(x)
    errors = {}
    for d, xs in lists.items():
        top = max(abs(x) for x in xs)
        if datatype == "float32":
            errors[d] = 0.0
        elif datatype == "float16":
            errors[d] = top * 2.0 ** -11 + 6e-8  # round to nearest (+ the subnormal step)
        else:
            errors[d] = (max(xs) - min(xs)) / 255 / 2 * 1.001 + top * 1e-6
    return errors


def check_against_naive(index, vectors, rows, q: dict, k, n_rows, allowed, datatype):
    indices = np.array(sorted(q), np.uint32)
    values = np.array([q[d] for d in sorted(q)], np.float32)
    got_rows, got_scores = index.search(indices, values, k, n_rows, allowed)
    assert got_rows.dtype == np.int64 and got_scores.dtype == np.float32
    q32 = {d: float(np.float32(x)) for d, x in q.items()}
    expected = naive(vectors, rows, q32, allowed)
    # float32 summation noise, plus the quantisation error of every posting the query reads
    magnitude = {row: 0.0 for row in expected}
    bound = {row: 0.0 for row in expected}
    errors = quantisation_errors(vectors, datatype)
    for row, vector in zip(rows, vectors):
        if row in expected:
            for d, x in zip(vector.indices.tolist(), vector.values.tolist()):
                if d in q32:
                    magnitude[row] += abs(x * q32[d])
                    bound[row] += abs(q32[d]) * errors[d]
    tolerance = {row: 1e-5 * magnitude[row] + 1e-30 + 1.01 * bound[row] for row in expected}

    assert len(got_rows) == min(k, len(expected))
    assert len(set(got_rows.tolist())) == len(got_rows)
    assert all(got_scores[:-1] >= got_scores[1:])
    for row, score in zip(got_rows.tolist(), got_scores.tolist()):
        assert row in expected  # shares an index with the query, and allowed
        assert abs(score - expected[row]) <= tolerance[row], (row, score, expected[row])
    # rank-insensitive: the i-th best score moves by at most the largest error
    worst = max(tolerance.values(), default=0.0)
    best = sorted(expected.values(), reverse=True)[:k]
    assert np.allclose(got_scores, best, rtol=0, atol=worst) or len(best) == 0
    if datatype == "float32":
        # the top-k row set, modulo ties at the cut
        if len(best) == k and k < len(expected):
            cut = best[-1]
            sure = {row for row, s in expected.items() if s > cut + 2 * worst}
            assert sure <= set(got_rows.tolist())


vector_st = st.dictionaries(
    st.integers(0, 40),
    st.one_of(st.just(0.0), st.floats(-100, 100, allow_subnormal=False, width=32)),
    max_size=12,
)


@settings(max_examples=150, deadline=None)
@given(
    data=st.data(),
    vectors=st.lists(vector_st, max_size=40),
    query=st.dictionaries(st.integers(0, 45), st.floats(-10, 10, allow_subnormal=False, width=32), max_size=10),
    datatype=st.sampled_from(DATATYPES),
    k=st.integers(1, 50),
    extra_rows=st.integers(0, 20),
)
def test_matches_naive_reference(data, vectors, query, datatype, k, extra_rows):
    n_rows = len(vectors) + extra_rows
    rows = data.draw(st.permutations(range(n_rows)))[: len(vectors)]
    vectors = [sv(v) for v in vectors]
    use_mask = data.draw(st.booleans())
    allowed = np.array(data.draw(st.lists(st.booleans(), min_size=n_rows, max_size=n_rows)), bool) if use_mask else None
    index = SparseInvertedIndex.build(np.array(rows, np.int64), vectors, datatype)
    assert index.indexed_rows == sum(1 for v in vectors if len(v.indices))
    check_against_naive(index, vectors, rows, query, k, n_rows, allowed, datatype)


def random_vectors(rng, n, dims=500, max_len=30, empty_share=0.1):
    vectors = []
    for _ in range(n):
        length = 0 if rng.random() < empty_share else int(rng.integers(1, max_len))
        indices = np.sort(rng.choice(dims, length, replace=False)).astype(np.uint32)
        vectors.append(SparseVector(indices, rng.normal(size=length).astype(np.float32)))
    return vectors


def random_query(rng, dims=520, length=8):
    indices = np.sort(rng.choice(dims, length, replace=False)).astype(np.uint32)
    return SparseVector(indices, (rng.normal(size=length) * 2).astype(np.float32))


def test_float32_bit_identical_to_exact_search():
    """Same scores to the bit, same order (ties by row) as `scoring.search_lists`."""
    rng = np.random.default_rng(7)
    vectors = random_vectors(rng, 3000)
    rows = np.sort(rng.choice(5000, len(vectors), replace=False)).astype(np.int64)
    order = rng.permutation(len(rows))  # built from rows in any order
    index = SparseInvertedIndex.build(rows[order], [vectors[i] for i in order])
    space = scoring.VectorSpace("Dot", kind="sparse")
    queries = [random_query(rng) for _ in range(30)]
    allowed = rng.random(5000) < 0.7
    for q in queries:
        for mask in (None, allowed):
            keep = np.ones(len(rows), bool) if mask is None else mask[rows]
            kept = [v for v, ok in zip(vectors, keep) if ok]
            ref_rows, ref_scores = scoring.search_lists(
                kept, rows[keep], [scoring.ScoringQuery("nearest", (q,))], len(kept), space)[0]
            got_rows, got_scores = index.search(q.indices, q.values, len(kept) + 5, 5000, mask)
            np.testing.assert_array_equal(got_rows, ref_rows)
            np.testing.assert_array_equal(got_scores.view(np.uint32), ref_scores.view(np.uint32))
            top_rows, top_scores = index.search(q.indices, q.values, 10, 5000, mask)
            np.testing.assert_array_equal(top_rows, got_rows[:10])
            np.testing.assert_array_equal(top_scores, got_scores[:10])


def test_rows_given_in_any_order():
    rng = np.random.default_rng(1)
    vectors = random_vectors(rng, 400)
    rows = rng.permutation(1000)[:400].astype(np.int64)
    shuffled = rng.permutation(400)
    a = SparseInvertedIndex.build(rows, vectors)
    b = SparseInvertedIndex.build(rows[shuffled], [vectors[i] for i in shuffled])
    for name in ("dims", "offsets", "rows", "values"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert all((np.diff(a.rows[lo:hi]) > 0).all() for lo, hi in zip(a.offsets[:-1], a.offsets[1:]))


@pytest.mark.parametrize("datatype", DATATYPES)
@pytest.mark.parametrize("mmap", [False, True])
def test_save_load_round_trip(tmp_path, datatype, mmap):
    rng = np.random.default_rng(3)
    vectors = random_vectors(rng, 1500)
    rows = rng.permutation(2000)[:1500].astype(np.int64)
    index = SparseInvertedIndex.build(rows, vectors, datatype)
    index.save(tmp_path / "idx")
    assert (tmp_path / "idx" / META_FILE).exists()
    assert not list((tmp_path / "idx").glob("*.tmp"))
    loaded = SparseInvertedIndex.load(tmp_path / "idx", mmap=mmap)
    assert loaded.datatype == datatype
    assert loaded.indexed_rows == index.indexed_rows
    assert loaded.nbytes == index.nbytes
    if mmap:
        assert isinstance(loaded.rows, np.memmap)
    queries = [(q.indices, q.values) for q in (random_query(rng) for _ in range(20))]
    allowed = rng.random(2000) < 0.5
    for mask in (None, allowed):
        for (r1, s1), (r2, s2) in zip(index.search_many(queries, 15, 2000, mask),
                                      loaded.search_many(queries, 15, 2000, mask)):
            np.testing.assert_array_equal(r1, r2)
            np.testing.assert_array_equal(s1, s2)
    # saving again over an existing index (e.g. from the mapped copy) works too
    loaded.save(tmp_path / "copy")
    again = SparseInvertedIndex.load(tmp_path / "copy")
    np.testing.assert_array_equal(again.values, index.values)


def test_unfinished_save_is_not_loadable(tmp_path):
    index = SparseInvertedIndex.build(np.array([0]), [sv({1: 1.0})])
    index.save(tmp_path)
    (tmp_path / META_FILE).unlink()
    with pytest.raises(FileNotFoundError):
        SparseInvertedIndex.load(tmp_path)


def test_corrupt_offsets_rejected(tmp_path):
    index = SparseInvertedIndex.build(np.array([0, 1]), [sv({1: 1.0}), sv({2: 1.0, 3: 2.0})])
    index.save(tmp_path)
    np.save(tmp_path / "offsets.npy", np.array([0, 2, 1, 3], np.int64))
    with pytest.raises(ValueError):
        SparseInvertedIndex.load(tmp_path)


@pytest.mark.parametrize("datatype", DATATYPES)
def test_empty_index(tmp_path, datatype):
    for vectors in ([], [sv({}), sv({})]):
        index = SparseInvertedIndex.build(np.arange(len(vectors)), vectors, datatype)
        assert index.indexed_rows == 0 and index.n_postings == 0
        rows, scores = index.search(np.array([1, 2], np.uint32), np.array([1, 1], np.float32), 10, 5)
        assert len(rows) == 0 and len(scores) == 0
        index.save(tmp_path / datatype)
        loaded = SparseInvertedIndex.load(tmp_path / datatype, mmap=True)
        assert loaded.search(np.array([1], np.uint32), np.array([1], np.float32), 3, 5)[0].size == 0
        assert loaded.search_many([], 3, 5) == []


def test_no_overlap_returns_nothing_and_zero_scores_count():
    vectors = [sv({1: 2.0, 5: -1.0}), sv({2: 0.0}), sv({3: 4.0}), sv({})]
    index = SparseInvertedIndex.build(np.array([0, 1, 2, 3]), vectors)
    nothing = index.search(np.array([7, 8], np.uint32), np.array([1.0, 1.0], np.float32), 10, 4)
    assert nothing[0].size == 0
    assert index.search(np.array([], np.uint32), np.array([], np.float32), 10, 4)[0].size == 0
    # row 1 shares index 2 with a stored 0.0: found, score 0; row 0 found with a negative score
    rows, scores = index.search(np.array([2, 5], np.uint32), np.array([3.0, 1.0], np.float32), 10, 4)
    assert rows.tolist() == [1, 0] and scores.tolist() == [0.0, -1.0]
    # a zero query value too
    rows, scores = index.search(np.array([3], np.uint32), np.array([0.0], np.float32), 10, 4)
    assert rows.tolist() == [2] and scores.tolist() == [0.0]


def test_ties_by_row_and_k():
    vectors = [sv({1: 1.0}) for _ in range(6)]
    index = SparseInvertedIndex.build(np.array([9, 3, 7, 1, 5, 0]), vectors)
    rows, _ = index.search(np.array([1], np.uint32), np.array([1.0], np.float32), 4, 10)
    assert rows.tolist() == [0, 1, 3, 5]
    assert index.search(np.array([1], np.uint32), np.array([1.0], np.float32), 0, 10)[0].size == 0


def test_allowed_mask_and_n_rows():
    vectors = [sv({1: float(i)}) for i in range(6)]
    index = SparseInvertedIndex.build(np.arange(6), vectors)
    q = (np.array([1], np.uint32), np.array([1.0], np.float32))
    allowed = np.array([True, False, True, False, True, False])
    assert index.search(*q, 10, 6, allowed)[0].tolist() == [4, 2, 0]
    assert index.search(*q, 10, 4)[0].tolist() == [3, 2, 1, 0]  # postings past n_rows ignored
    with pytest.raises(ValueError):
        index.search(*q, 10, 6, np.ones(5, bool))


def test_unsorted_query_is_normalised():
    vectors = [sv({1: 1.0, 2: 10.0}), sv({2: 1.0})]
    index = SparseInvertedIndex.build(np.array([0, 1]), vectors)
    a = index.search(np.array([2, 1], np.uint32), np.array([1.0, 2.0], np.float32), 5, 2)
    b = index.search(np.array([1, 2], np.uint32), np.array([2.0, 1.0], np.float32), 5, 2)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_uint8_quantisation():
    vectors = [sv({1: 0.5, 2: -3.0}), sv({1: 0.5, 2: 7.0}), sv({1: 0.5, 2: 2.0})]
    index = SparseInvertedIndex.build(np.arange(3), vectors, "uint8")
    # a list with one distinct value is exact (scale 0); min and max of a list are exact
    rows, scores = index.search(np.array([1], np.uint32), np.array([2.0], np.float32), 5, 3)
    assert scores.tolist() == [1.0, 1.0, 1.0]
    rows, scores = index.search(np.array([2], np.uint32), np.array([1.0], np.float32), 5, 3)
    assert rows.tolist() == [1, 2, 0]
    assert scores[0] == 7.0 and scores[2] == -3.0 and abs(scores[1] - 2.0) <= 10 / 255 / 2 + 1e-6
    assert index.values.dtype == np.uint8 and index.quant.shape == (2, 2)


def test_float16_clips_large_values():
    index = SparseInvertedIndex.build(np.arange(2), [sv({1: 1e6}), sv({1: -1e6})], "float16")
    rows, scores = index.search(np.array([1], np.uint32), np.array([1.0], np.float32), 5, 2)
    assert rows.tolist() == [0, 1] and scores.tolist() == [65504.0, -65504.0]


def test_search_many_and_threads_agree_with_search():
    rng = np.random.default_rng(11)
    vectors = random_vectors(rng, 2000)
    index = SparseInvertedIndex.build(np.arange(2000), vectors, "float16")
    queries = [(q.indices, q.values) for q in (random_query(rng) for _ in range(40))]
    single = [index.search(i, v, 7, 2000) for i, v in queries]
    many = index.search_many(queries, 7, 2000)
    results = [None] * 4

    def work(t):
        results[t] = index.search_many(queries, 7, 2000)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for found in [many, *results]:
        for (r1, s1), (r2, s2) in zip(single, found):
            np.testing.assert_array_equal(r1, r2)
            np.testing.assert_array_equal(s1, s2)


def test_document_frequencies():
    vectors = [sv({1: 1.0, 2: 1.0}), sv({2: 0.0}), sv({}), sv({2: 5.0, 9: 1.0})]
    index = SparseInvertedIndex.build(np.array([0, 1, 2, 3]), vectors)
    dims = np.array([1, 2, 3, 9], np.uint32)
    assert index.document_frequencies(dims).tolist() == [1, 3, 0, 1]
    live = np.array([True, False, True, True])
    assert index.document_frequencies(dims, live).tolist() == [1, 2, 0, 1]


def test_bad_input():
    with pytest.raises(ValueError):
        SparseInvertedIndex.build(np.array([0]), [sv({1: 1.0})], "int8")
    with pytest.raises(ValueError):
        SparseInvertedIndex.build(np.array([0, 1]), [sv({1: 1.0})])
    with pytest.raises(ValueError):
        SparseInvertedIndex.build(np.array([-1]), [sv({1: 1.0})])


def test_huge_dimension_indices_take_the_sorting_path():
    """Hashed vocabularies: indices up to 2**32 - 1 (no count array); same layout either way."""
    rng = np.random.default_rng(5)
    small = random_vectors(rng, 300, dims=200)
    spread = np.uint32(21_000_000)  # maps 0..199 onto 0 .. 4.2e9
    huge = [SparseVector((v.indices * spread).astype(np.uint32), v.values) for v in small]
    rows = rng.permutation(300).astype(np.int64)
    a = SparseInvertedIndex.build(rows, small)
    b = SparseInvertedIndex.build(rows, huge)
    assert int(b.dims.max()) > 2**31
    np.testing.assert_array_equal(a.dims * spread, b.dims)
    for name in ("offsets", "rows", "values"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    top = SparseVector(np.array([0, 199], np.uint32) * spread, np.array([1.0, -1.0], np.float32))
    rows_b, scores_b = b.search(top.indices, top.values, 20, 300)
    rows_a, scores_a = a.search(np.array([0, 199], np.uint32), top.values, 20, 300)
    np.testing.assert_array_equal(rows_a, rows_b)
    np.testing.assert_array_equal(scores_a, scores_b)


def test_mismatched_vector_lengths_rejected():
    bad = SparseVector(np.array([1, 2], np.uint32), np.array([1.0], np.float32))
    with pytest.raises(ValueError):
        other = SparseVector(np.array([3], np.uint32), np.array([1.0, 2.0], np.float32))
        SparseInvertedIndex.build(np.array([0, 1]), [bad, other])  # same totals, per-vector mismatch


# -- array-level constructor: meta() + arrays() -> from_arrays, and the chunked check ------


def _map_like_a_pack(arrays, path):
    """The arrays written into a pack file and mapped back read-only (segments/packfile.py):
    what an immutable segment's pack gives."""
    with PackWriter(path) as writer:
        for name, array in arrays.items():
            writer.add(name, array)
        table = writer.finish()
    return open_pack(path, table)


@pytest.mark.parametrize("datatype", DATATYPES)
def test_from_arrays_round_trip(tmp_path, datatype):
    import json

    rng = np.random.default_rng(11)
    vectors = random_vectors(rng, 1500)
    rows = rng.permutation(2000)[:1500].astype(np.int64)
    index = SparseInvertedIndex.build(rows, vectors, datatype)
    meta = json.loads(json.dumps(index.meta()))  # as a segment stores it
    assert set(index.arrays()) == ({"dims", "offsets", "rows", "values", "quant"}
                                   if datatype == "uint8" else {"dims", "offsets", "rows", "values"})
    same = SparseInvertedIndex.from_arrays(meta, index.arrays())
    assert all(np.shares_memory(a, b) for a, b in zip(same.arrays().values(), index.arrays().values()))
    mapped = SparseInvertedIndex.from_arrays(meta, _map_like_a_pack(index.arrays(), tmp_path / "s.pack"))
    assert not mapped.rows.flags.writeable
    queries = [(q.indices, q.values) for q in (random_query(rng) for _ in range(20))]
    allowed = rng.random(2000) < 0.5
    for again in (same, mapped):
        assert again.meta() == index.meta() and again.nbytes == index.nbytes
        for mask in (None, allowed):
            for (r1, s1), (r2, s2) in zip(index.search_many(queries, 15, 2000, mask),
                                          again.search_many(queries, 15, 2000, mask)):
                np.testing.assert_array_equal(r1, r2)
                np.testing.assert_array_equal(s1, s2)
        probe = np.array([3, 77, 499, 600], np.uint32)
        np.testing.assert_array_equal(again.document_frequencies(probe),
                                      index.document_frequencies(probe))


def _sparse_refusals():
    """name -> change(meta, arrays) breaking one thing; (check_only: refused by check(),
    accepted with check=False)."""
    def put(name, fn):
        return lambda meta, arrays: arrays.__setitem__(name, fn(arrays[name].copy()))

    def setitem(index, value):
        def fn(a):
            a[index] = value
            return a
        return fn

    def top(key, value):
        return lambda meta, arrays: meta.__setitem__(key, value)

    return {
        # O(1) checks, always made
        "format": (False, top("format", 2)),
        "datatype": (False, top("datatype", "int4")),
        "indexed_rows negative": (False, top("indexed_rows", -1)),
        "indexed_rows not an int": (False, top("indexed_rows", "7")),
        "n_dims": (False, top("n_dims", 3)),
        "n_postings": (False, top("n_postings", 5)),
        "missing rows": (False, lambda meta, arrays: arrays.pop("rows")),
        "missing quant": (False, lambda meta, arrays: arrays.pop("quant")),
        "rows int64": (False, put("rows", lambda a: a.astype(np.int64))),
        "values short": (False, put("values", lambda a: a[:-1].copy())),
        "quant shape": (False, put("quant", lambda a: a[:-1].copy())),
        "offsets start": (False, put("offsets", setitem(0, 1))),
        "offsets end": (False, put("offsets", setitem(-1, 10**9))),
        # O(D) checks: check() only, in the last block of lists
        "offsets decrease": (True, put("offsets", setitem(-2, 10**9))),
        "dims repeat": (True, put("dims", lambda a: setitem(-1, a[-2])(a))),
        "dims descend": (True, put("dims", setitem(-1, 0))),
    }


@pytest.mark.parametrize("case", sorted(_sparse_refusals()))
@pytest.mark.parametrize("block_bytes", [24, 1 << 20])
def test_from_arrays_refusals(case, block_bytes):
    check_only, change = _sparse_refusals()[case]
    rng = np.random.default_rng(12)
    index = SparseInvertedIndex.build(np.arange(300), random_vectors(rng, 300), "uint8")
    assert sum(1 for _ in index.check_steps(block_bytes)) > (100 if block_bytes == 24 else 0)
    meta, arrays = index.meta(), index.arrays()
    change(meta, arrays)
    with pytest.raises(ValueError):
        SparseInvertedIndex.from_arrays(meta, arrays)
    if check_only:
        unchecked = SparseInvertedIndex.from_arrays(meta, arrays, check=False)
        with pytest.raises(ValueError, match="corrupt sparse index"):
            for _ in unchecked.check_steps(block_bytes):
                pass
    else:
        with pytest.raises(ValueError):
            SparseInvertedIndex.from_arrays(meta, arrays, check=False)


def test_check_of_four_million_lists_allocates_little():
    """check() reads offsets and dims in blocks: temporaries of a few MB for 4M posting
    lists (48 MB of dims + offsets; a whole-array np.diff alone would take 32 MB)."""
    import tracemalloc

    n = 4_000_000
    dims = np.arange(n, dtype=np.uint32) * 3
    arrays = {"dims": dims, "offsets": np.arange(n + 1, dtype=np.int64),
              "rows": np.zeros(n, np.int32), "values": np.ones(n, np.float32)}
    meta = {"format": 1, "datatype": "float32", "indexed_rows": 1, "n_dims": n, "n_postings": n}
    index = SparseInvertedIndex.from_arrays(meta, arrays, check=False)
    steps = list(index.check_steps())
    assert steps[-1] == 12 * n and steps == sorted(steps) and len(steps) > 5
    tracemalloc.start()
    try:
        index.check()
        _, peak = tracemalloc.get_traced_memory()
        dims[-1] = dims[-2]
        with pytest.raises(ValueError, match="dims"):
            index.check()
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20
