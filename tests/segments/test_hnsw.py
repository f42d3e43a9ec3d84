"""HNSW kernels (pydrant/segments/hnsw.py) against exact NumPy search on seeded synthetic data.

Data: a Gaussian mixture (clusters like real embeddings, so recall is stable at a small n),
4,000 x 32 float32, 100 queries drawn the same way. Exact similarities follow scoring.py:
Cosine/Dot the dot product (Cosine on normalised vectors), Euclid -|a - b|^2, Manhattan
-|a - b|_1, larger is closer.
"""

from __future__ import annotations

import numpy as np
import pytest

from pydrant.segments.hnsw import HnswIndex, _make_room, draw_levels

N, DIM, NQ, K = 4000, 32, 100, 10
DISTANCES = ("Cosine", "Dot", "Euclid", "Manhattan")
# recall@10 at ef=20 is ~0.99 here (hnswlib on the same data alike); at ef=10 ~0.95
EF = 20


def _mixture(rng, n, dim, centers):
    labels = rng.integers(0, centers.shape[0], n)
    return (centers[labels] + rng.standard_normal((n, dim))).astype(np.float32)


def _normalise(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(20261125)
    centers = rng.standard_normal((40, DIM)) * 1.5
    return _mixture(rng, N, DIM, centers), _mixture(rng, NQ, DIM, centers)


def _prepare(data, distance):
    base, queries = data
    if distance == "Cosine":
        return _normalise(base), _normalise(queries)
    return base, queries


def exact_sims(base, queries, distance):
    base64, q64 = base.astype(np.float64), queries.astype(np.float64)
    if distance in ("Cosine", "Dot"):
        return q64 @ base64.T
    if distance == "Euclid":
        return -((q64[:, None, :] - base64[None, :, :]) ** 2).sum(-1)
    return -np.abs(q64[:, None, :] - base64[None, :, :]).sum(-1)


def exact_top(sims, k, allowed=None):
    sims = sims.copy()
    if allowed is not None:
        sims[:, ~allowed] = -np.inf
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    if allowed is not None:
        return [row[allowed[row]] for row in order]
    return list(order)


def recall(found, truth):
    hits = sum(len(set(f.tolist()) & set(t.tolist())) for f, t in zip(found, truth))
    return hits / sum(len(t) for t in truth)


@pytest.fixture(scope="module")
def indexes(data):
    built = {}
    for distance in DISTANCES:
        base, _ = _prepare(data, distance)
        built[distance] = HnswIndex.build(base, distance, m=16, ef_construct=100, seed=7, threads=2)
    return built


@pytest.mark.parametrize("distance", DISTANCES)
def test_recall_against_exact(data, indexes, distance):
    base, queries = _prepare(data, distance)
    index = indexes[distance]
    sims = exact_sims(base, queries, distance)
    truth = exact_top(sims, K)
    found = []
    for row, q in enumerate(queries):
        ids, scores = index.search(q, K, ef=EF)
        assert len(ids) == K and ids.dtype == np.int32 and scores.dtype == np.float32
        assert np.all(np.diff(scores) <= 0), "best first"
        np.testing.assert_allclose(scores, sims[row, ids], rtol=1e-4, atol=1e-4)
        found.append(ids)
    assert recall(found, truth) >= 0.95


def test_thread_count_does_not_change_the_graph(data, indexes):
    base, queries = _prepare(data, "Euclid")
    one = HnswIndex.build(base, "Euclid", m=16, ef_construct=100, seed=7, threads=1)
    two = indexes["Euclid"].arrays()
    for name, array in one.arrays().items():
        np.testing.assert_array_equal(array, two[name], err_msg=name)
    truth = exact_top(exact_sims(base, queries, "Euclid"), K)
    assert recall([one.search(q, K, ef=EF)[0] for q in queries], truth) >= 0.95


def test_seed_changes_levels():
    a, b = draw_levels(10_000, 16, 1), draw_levels(10_000, 16, 2)
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(a, draw_levels(10_000, 16, 1))
    # P(level >= 1) = 1/m
    assert 0.05 < (a >= 1).mean() < 0.075


@pytest.mark.parametrize("share", [0.3, 0.05])
@pytest.mark.parametrize("distance", ["Cosine", "Euclid"])
def test_filtered_search(data, indexes, distance, share):
    base, queries = _prepare(data, distance)
    index = indexes[distance]
    allowed = np.random.default_rng(3).random(N) < share
    truth = exact_top(exact_sims(base, queries, distance), K, allowed)
    found = []
    for q in queries:
        ids, _ = index.search(q, K, ef=EF, allowed=allowed)
        assert len(ids) == K
        assert allowed[ids].all()
        found.append(ids)
    assert recall(found, truth) >= 0.9
    # the batch form with the shared mask and with one mask per query
    batch_ids, _ = index.search_batch(queries, K, ef=EF, allowed=allowed, threads=2)
    np.testing.assert_array_equal(batch_ids, np.stack(found))
    per_query = np.tile(allowed, (NQ, 1))
    batch_ids, _ = index.search_batch(queries, K, ef=EF, allowed=per_query, threads=2)
    np.testing.assert_array_equal(batch_ids, np.stack(found))


def test_very_selective_filter(data, indexes):
    """20 allowed points of 4,000: the search walks most of the graph, past the candidate
    heap's capacity (2,048), where the worst candidates give way."""
    base, queries = _prepare(data, "Euclid")
    allowed = np.zeros(N, bool)
    allowed[np.random.default_rng(9).choice(N, 20, replace=False)] = True
    truth = exact_top(exact_sims(base, queries, "Euclid"), K, allowed)
    found = [indexes["Euclid"].search(q, K, ef=EF, allowed=allowed)[0] for q in queries]
    assert all(allowed[ids].all() for ids in found)
    assert recall(found, truth) >= 0.9


def test_make_room():
    rng = np.random.default_rng(11)
    keys = np.sort(rng.random(64).astype(np.float32))[::-1].copy()  # sorted desc is a max-heap
    ids = np.arange(64, dtype=np.int32)
    # dead candidates (below `lower`) are dropped, the rest stay a heap
    k, i = keys.copy(), ids.copy()
    size, keep = _make_room(k, i, 64, np.float32(keys[20]), np.float32(0.5))
    assert keep and size == 21
    assert sorted(i[:size].tolist()) == list(range(21))
    assert all(k[(j - 1) // 2] >= k[j] for j in range(1, size))
    # nothing dead: the worst gives way to a better newcomer, a worse one is refused
    k, i = keys.copy(), ids.copy()
    size, keep = _make_room(k, i, 64, np.float32(-1.0), np.float32(keys[-1] + 1e-3))
    assert keep and size == 63 and 63 not in i[:size].tolist()
    assert all(k[(j - 1) // 2] >= k[j] for j in range(1, size))
    k, i = keys.copy(), ids.copy()
    size, keep = _make_room(k, i, 64, np.float32(-1.0), np.float32(keys[-1] - 1e-3))
    assert not keep and size == 64


def test_deleted_points_never_returned(data, indexes):
    base, queries = _prepare(data, "Cosine")
    index = indexes["Cosine"]
    sims = exact_sims(base, queries, "Cosine")
    deleted = np.zeros(N, bool)
    # delete every query's 5 exact nearest points, plus a random 20%
    deleted[np.argsort(-sims, axis=1)[:, :5].ravel()] = True
    deleted |= np.random.default_rng(5).random(N) < 0.2
    truth = exact_top(sims, K, ~deleted)
    found = []
    for q in queries:
        ids, _ = index.search(q, K, ef=EF, deleted=deleted)
        assert not deleted[ids].any()
        found.append(ids)
    assert recall(found, truth) >= 0.9
    allowed = np.random.default_rng(6).random(N) < 0.5
    for q in queries[:20]:
        ids, _ = index.search(q, K, ef=EF, allowed=allowed, deleted=deleted)
        assert allowed[ids].all() and not deleted[ids].any()


def test_nothing_allowed(data, indexes):
    _, queries = _prepare(data, "Dot")
    ids, scores = indexes["Dot"].search(queries[0], K, ef=32, allowed=np.zeros(N, bool))
    assert len(ids) == 0 and len(scores) == 0


def test_search_batch_matches_single(data, indexes):
    _, queries = _prepare(data, "Manhattan")
    index = indexes["Manhattan"]
    ids, scores = index.search_batch(queries, K, ef=40, threads=2)
    assert ids.shape == (NQ, K) and scores.shape == (NQ, K)
    for row, q in enumerate(queries):
        single_ids, single_scores = index.search(q, K, ef=40)
        np.testing.assert_array_equal(ids[row], single_ids)
        np.testing.assert_array_equal(scores[row], single_scores)


def test_round_trip_through_arrays(data, indexes, tmp_path):
    base, queries = _prepare(data, "Cosine")
    index = indexes["Cosine"]
    arrays = index.arrays()
    assert set(arrays) == set(HnswIndex.ARRAY_NAMES)
    for name, array in arrays.items():
        np.save(tmp_path / f"{name}.npy", array)
    np.save(tmp_path / "vectors.npy", base)
    # read-only memory maps (their own compiled specialisation) and copy-on-write ones
    for mode in ("r", "c"):
        loaded = {name: np.load(tmp_path / f"{name}.npy", mmap_mode=mode) for name in arrays}
        again = HnswIndex.from_arrays(loaded, np.load(tmp_path / "vectors.npy", mmap_mode=mode))
        assert again.nbytes == index.nbytes and again.distance == "Cosine"
        for q in queries[:30]:
            a_ids, a_scores = index.search(q, K, ef=50)
            b_ids, b_scores = again.search(q, K, ef=50)
            np.testing.assert_array_equal(a_ids, b_ids)
            np.testing.assert_array_equal(a_scores, b_scores)
        np.testing.assert_array_equal(again.search_batch(queries, K, ef=50)[0],
                                      index.search_batch(queries, K, ef=50)[0])
    with pytest.raises(ValueError):
        HnswIndex.from_arrays(arrays, base[:-1])
    corrupt = dict(arrays, links0=arrays["links0"].copy())
    corrupt["links0"][5, 0] = N + 3
    with pytest.raises(ValueError):
        HnswIndex.from_arrays(corrupt, base)
    with pytest.raises(ValueError):
        HnswIndex.from_arrays(dict(arrays, counts0=arrays["counts0"].astype(np.int64)), base)


def test_k_larger_than_n(data):
    base, queries = _prepare(data, "Euclid")
    small = base[:50]
    index = HnswIndex.build(small, "Euclid", m=4, ef_construct=20, seed=1, threads=2)
    sims = exact_sims(small, queries[:5], "Euclid")
    for row, q in enumerate(queries[:5]):
        ids, scores = index.search(q, 80, ef=10)
        assert sorted(ids.tolist()) == list(range(50))
        np.testing.assert_array_equal(ids, exact_top(sims, 50)[row])
    allowed = np.zeros(50, bool)
    allowed[::7] = True
    ids, _ = index.search(queries[0], 80, allowed=allowed)
    assert sorted(ids.tolist()) == np.flatnonzero(allowed).tolist()
    batch_ids, batch_scores = index.search_batch(queries[:3], 60)
    assert (batch_ids[:, 50:] == -1).all() and np.isneginf(batch_scores[:, 50:]).all()
    assert (batch_ids[:, :50] >= 0).all()


@pytest.mark.parametrize("n", [0, 1, 2])
def test_tiny_and_empty_indexes(n):
    vectors = np.random.default_rng(n).standard_normal((n, 8)).astype(np.float32)
    index = HnswIndex.build(vectors, "Dot", m=16, ef_construct=10, seed=0, threads=2)
    query = np.ones(8, np.float32)
    ids, scores = index.search(query, 5)
    assert len(ids) == n and len(scores) == n
    batch_ids, _ = index.search_batch(np.ones((3, 8), np.float32), 5)
    assert batch_ids.shape == (3, 5) and (batch_ids[:, n:] == -1).all()
    restored = HnswIndex.from_arrays(index.arrays(), vectors)
    assert len(restored.search(query, 5)[0]) == n


def test_graph_invariants(indexes):
    for distance, index in indexes.items():
        g = index.arrays()
        m, n = index.m, index.n
        levels, links0, counts0 = g["levels"], g["links0"], g["counts0"]
        slots, upper, upper_counts = g["upper_slot"], g["upper_links"], g["upper_counts"]
        assert links0.shape == (n, 2 * m) and links0.dtype == np.int32
        assert (counts0 >= 1).all() and (counts0 <= 2 * m).all()
        assert levels[index.entry] == index.max_level == levels.max()
        assert (slots >= 0).sum() == (levels > 0).sum() == upper.shape[0]
        assert upper.shape[1:] == (index.max_level, m)
        for node in range(n):
            row = links0[node]
            nbs = row[: counts0[node]]
            assert (row[counts0[node]:] == -1).all()
            assert ((nbs >= 0) & (nbs < n)).all(), distance
            assert node not in nbs and len(set(nbs.tolist())) == len(nbs)
            for level in range(1, levels[node] + 1):
                count = upper_counts[slots[node], level - 1]
                assert 0 <= count <= m
                nbs = upper[slots[node], level - 1, :count]
                assert (upper[slots[node], level - 1, count:] == -1).all()
                assert node not in nbs and len(set(nbs.tolist())) == len(nbs)
                assert ((nbs >= 0) & (nbs < n)).all()
                assert (levels[nbs] >= level).all()
            assert (upper_counts[slots[node], levels[node]:] == 0).all() if levels[node] else True


def test_arguments_checked(data):
    base, _ = _prepare(data, "Dot")
    with pytest.raises(ValueError):
        HnswIndex.build(base, "Hamming")
    with pytest.raises(ValueError):
        HnswIndex.build(base, "Dot", m=1)
    index = HnswIndex.build(base[:100], "Dot", m=8, ef_construct=16, threads=1)
    with pytest.raises(ValueError):
        index.search(base[0], 5, allowed=np.ones(99, bool))
    with pytest.raises(ValueError):
        index.search(base[0, :-1], 5)
    with pytest.raises(ValueError):
        index.search_batch(base[:3, :-1], 5)
    with pytest.raises(ValueError):
        index.search_batch(base[:3], 5, allowed=np.ones((2, 100), bool))


# -- the structure check (check / check_steps): what a corrupt mapped file is refused for ---


def _corruptions(index):
    """name -> function(arrays copy) that breaks one invariant the kernels rely on, in the
    *last* node or upper row (so a check that stops before the last block misses it)."""
    n, m = index.n, index.m
    g = index.arrays()
    last_upper = g["upper_links"].shape[0] - 1
    level0_node = int(np.flatnonzero(g["levels"] == 0)[-1])
    upper_node = int(np.flatnonzero(g["upper_slot"] == last_upper)[0])

    def setter(name, where, value):
        def corrupt(a):
            a[name][where] = value
        return corrupt

    return {
        "link out of range": setter("links0", (n - 1, 0), n),
        "link below -1": setter("links0", (n - 1, 0), -2),
        "listed link is -1": setter("links0", (n - 1, 0), -1),
        "count above 2m": setter("counts0", n - 1, 2 * m + 1),
        "negative count": setter("counts0", n - 1, -1),
        "negative level": setter("levels", level0_node, -1),
        "level above the top": setter("levels", level0_node, index.max_level + 1),
        "entry below the top": setter("levels", index.entry, 0),
        "upper slot out of range": setter("upper_slot", upper_node, last_upper + 1),
        "upper slot on level 0": setter("upper_slot", level0_node, 0),
        "no upper slot above 0": setter("upper_slot", upper_node, -1),
        "upper link out of range": setter("upper_links", (last_upper, 0, 0), n),
        "listed upper link is -1": setter("upper_links", (last_upper, 0, 0), -1),
        "upper count above m": setter("upper_counts", (last_upper, 0), m + 1),
        "negative upper count": setter("upper_counts", (last_upper, 0), -1),
    }


CORRUPTIONS = ("link out of range", "link below -1", "listed link is -1", "count above 2m",
               "negative count", "negative level", "level above the top",
               "entry below the top", "upper slot out of range", "upper slot on level 0",
               "no upper slot above 0", "upper link out of range", "listed upper link is -1",
               "upper count above m", "negative upper count")


@pytest.fixture(scope="module")
def small_graph(data):
    """600 points, m = 4: several levels and upper rows, built once."""
    base, _ = _prepare(data, "Cosine")
    base = base[:600]
    index = HnswIndex.build(base, "Cosine", m=4, ef_construct=16, seed=3, threads=1)
    assert index.max_level >= 2 and index.arrays()["upper_links"].shape[0] > 1
    assert set(_corruptions(index)) == set(CORRUPTIONS)
    return base, index


@pytest.mark.parametrize("case", CORRUPTIONS)
@pytest.mark.parametrize("block_bytes", [64, 1 << 20])
def test_check_rejects_each_corruption(small_graph, case, block_bytes):
    base, index = small_graph
    steps = list(index.check_steps(block_bytes))  # the intact graph passes, in many blocks
    assert len(steps) >= (20 if block_bytes == 64 else 1)
    arrays = {name: array.copy() for name, array in index.arrays().items()}
    _corruptions(index)[case](arrays)
    with pytest.raises(ValueError, match="corrupt HNSW graph"):
        HnswIndex.from_arrays(arrays, base)
    unchecked = HnswIndex.from_arrays(arrays, base, check=False)  # shapes are fine
    with pytest.raises(ValueError, match="corrupt HNSW graph"):
        for _ in unchecked.check_steps(block_bytes):
            pass


def test_layout_refusals(data):
    base, _ = _prepare(data, "Dot")
    index = HnswIndex.build(base[:200], "Dot", m=4, ef_construct=16, seed=1, threads=1)
    arrays = index.arrays()
    bad = {
        "missing array": {k: v for k, v in arrays.items() if k != "upper_counts"},
        "meta too short": dict(arrays, meta=arrays["meta"][:7]),
        "meta of floats": dict(arrays, meta=arrays["meta"].astype(np.float64)),
        "links0 not contiguous": dict(arrays, links0=np.asfortranarray(arrays["links0"])),
        "links0 of int64": dict(arrays, links0=arrays["links0"].astype(np.int64)),
        "upper_links flattened": dict(arrays, upper_links=arrays["upper_links"].reshape(-1)),
        "entry out of range": dict(arrays, meta=np.where(np.arange(8) == 5, 200, arrays["meta"])),
    }
    for name, broken in bad.items():
        with pytest.raises(ValueError):
            HnswIndex.from_arrays(broken, base[:200], check=False)
        assert name  # every case refused without reading the graph
    extra = dict(arrays, nodes=np.arange(200, dtype=np.int32))  # other names of a pack
    assert HnswIndex.from_arrays(extra, base[:200]).n == 200


def _synthetic_graph(n, m, seed=0):
    """Valid graph arrays of n nodes with random neighbours (no build: what check() reads,
    at a size a build would take minutes for)."""
    rng = np.random.default_rng(seed)
    levels = draw_levels(n, m, seed)
    max_level = int(levels.max())
    upper_nodes = np.flatnonzero(levels > 0)
    upper_slot = np.full(n, -1, np.int32)
    upper_slot[upper_nodes] = np.arange(upper_nodes.size, dtype=np.int32)
    counts0 = rng.integers(1, 2 * m + 1, n, dtype=np.int32)
    links0 = rng.integers(0, n, (n, 2 * m), dtype=np.int32)
    links0[np.arange(2 * m)[None, :] >= counts0[:, None]] = -1
    n_upper = upper_nodes.size
    upper_counts = rng.integers(0, m + 1, (n_upper, max_level), dtype=np.int32)
    upper_counts[np.arange(max_level)[None, :] >= levels[upper_nodes][:, None]] = 0
    upper_links = rng.integers(0, n, (n_upper, max_level, m), dtype=np.int32)
    upper_links[np.arange(m)[None, None, :] >= upper_counts[:, :, None]] = -1
    entry = int(np.flatnonzero(levels == max_level)[0])
    meta = np.array([n, 4, 0, m, 100, entry, max_level, seed], np.int64)
    return {"levels": levels, "links0": links0, "counts0": counts0, "upper_slot": upper_slot,
            "upper_links": upper_links, "upper_counts": upper_counts, "meta": meta}


def test_check_of_a_million_nodes_allocates_little():
    """The check's temporaries are bounded by its block size, not by the graph: under
    64 MB for 1M nodes with m = 16 (links0 alone is 128 MB; the unchunked check allocated
    ~110 MB here)."""
    import tracemalloc

    n, m = 1_000_000, 16
    arrays = _synthetic_graph(n, m)
    index = HnswIndex.from_arrays(arrays, np.zeros((n, 4), np.float32), check=False)
    steps = list(index.check_steps())
    assert len(steps) > 10 and steps == sorted(steps)
    assert steps[-1] == index.nbytes - arrays["meta"].nbytes
    tracemalloc.start()
    try:
        index.check()
        _, peak = tracemalloc.get_traced_memory()
        arrays["links0"][n - 1, arrays["counts0"][n - 1] - 1] = -1  # the very last listed link
        with pytest.raises(ValueError, match="links0"):
            index.check()
        _, peak_failing = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 << 20 and peak_failing < 64 << 20
