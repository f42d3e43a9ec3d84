"""Quantized vectors (pydrant/segments/quantization.py) against exact NumPy search.

Data: a seeded Gaussian mixture, 6,000 x 64 float32 (clusters, like real embeddings), 60
queries drawn the same way; one HNSW graph per distance (m=16, ef_construct=64), built on
the originals and shared by the tests. "Rescore" means: take k * oversampling candidates
from the codes, order them by their exact similarity, keep k.
Recall floors are the values measured on this data minus a margin of ~0.05.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from pydrant.segments.hnsw import HnswIndex
from pydrant.segments.quantization import QuantizedVectors
from pydrant.segments.packfile import PackWriter, open_pack

N, DIM, NQ, K, EF = 6000, 64, 60, 10, 64
DISTANCES = ("Cosine", "Dot", "Euclid", "Manhattan")
SCALAR = {"scalar": {"type": "int8"}}

# (config, oversampling, recall@10 floor after rescore per distance: Cosine, Dot, Euclid,
# Manhattan): measured (graph search and scan alike) minus ~0.05. Binary codes of 64
# dimensions are coarse; with a binary query Dot ranks on the angle alone.
BINARY_CASES = {
    "one_bit": ({"binary": {"always_ram": True}}, 3, (0.45, 0.35, 0.44, 0.46)),
    "one_bit_q8": ({"binary": {"query_encoding": "scalar8bits"}}, 3, (0.54, 0.40, 0.50, 0.52)),
    "two_bits": ({"binary": {"encoding": "two_bits"}}, 3, (0.58, 0.36, 0.56, 0.58)),
    "one_and_half_q4": ({"binary": {"encoding": "one_and_half_bits",
                                    "query_encoding": "scalar4bits"}}, 3, (0.57, 0.56, 0.61, 0.61)),
}
PRODUCT_CASES = {
    "x4": ({"product": {"compression": "x4"}}, 1, (0.88, 0.89, 0.92, 0.91)),
    "x16": ({"product": {"compression": "x16"}}, 3, (0.79, 0.86, 0.84, 0.82)),
}


def _sim(distance, x, q):
    x = np.asarray(x, np.float64)
    q = np.asarray(q, np.float64)
    if distance in ("Cosine", "Dot"):
        return x @ q
    if distance == "Euclid":
        return -((x - q) ** 2).sum(axis=-1)
    return -np.abs(x - q).sum(axis=-1)


@pytest.fixture(scope="module")
def raw():
    rng = np.random.default_rng(20261126)
    centers = rng.standard_normal((40, DIM)) * 1.5

    def draw(count):
        return (centers[rng.integers(0, 40, count)]
                + rng.standard_normal((count, DIM))).astype(np.float32)

    return draw(N), draw(NQ)


_cache: dict = {}


@pytest.fixture(scope="module")
def setup(raw):
    """setup(distance) -> (vectors, queries, index, ground truth ids (NQ, K))."""

    def get(distance):
        if distance not in _cache:
            base, queries = raw
            if distance == "Cosine":
                base = (base / np.linalg.norm(base, axis=1, keepdims=True)).astype(np.float32)
                queries = (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)
            index = HnswIndex.build(base, distance, m=16, ef_construct=64, seed=1)
            exact = np.stack([_sim(distance, base, q) for q in queries])
            truth = np.argsort(-exact, axis=1, kind="stable")[:, :K]
            _cache[distance] = (base, queries, index, truth)
        return _cache[distance]

    return get


def _rescored_recall(qv, distance, base, queries, index, truth, oversampling, graph=True):
    hits = 0
    for q, t in zip(queries, truth):
        if graph:
            ids, _ = qv.graph_search(index, q, K * oversampling, EF)
        else:
            ids, _ = qv.scan(q, K * oversampling)
        top = ids[np.argsort(-_sim(distance, base[ids], q), kind="stable")[:K]]
        hits += len(set(top.tolist()) & set(t.tolist()))
    return hits / truth.size


def _plain_recall(index, queries, truth):
    hits = 0
    for q, t in zip(queries, truth):
        ids, _ = index.search(q, K, EF)
        hits += len(set(ids.tolist()) & set(t.tolist()))
    return hits / truth.size


# -- scalar ---------------------------------------------------------------------------------


@pytest.mark.parametrize("distance", DISTANCES)
def test_scalar_rescored_recall_matches_hnsw(setup, distance):
    base, queries, index, truth = setup(distance)
    qv = QuantizedVectors.build(SCALAR, base, distance)
    plain = _plain_recall(index, queries, truth)
    assert _rescored_recall(qv, distance, base, queries, index, truth, 2) >= plain - 0.01
    assert _rescored_recall(qv, distance, base, queries, index, truth, 1) >= plain - 0.06


@pytest.mark.parametrize("distance", DISTANCES)
def test_scalar_scores_close_to_exact(setup, distance):
    base, queries, index, _ = setup(distance)
    qv = QuantizedVectors.build(SCALAR, base, distance)
    for q in queries[:20]:
        for ids, approx in (qv.graph_search(index, q, K, EF), qv.scan(q, K)):
            assert ids.dtype == np.int32 and approx.dtype == np.float32
            assert np.all(np.diff(approx) <= 0)  # best first
            exact = _sim(distance, base[ids], q)
            deq = _sim(distance, qv.dequantize(ids), q)
            scale = np.abs(exact).max() + 1e-9
            # exactly the similarity to the dequantized vector (float32 rounding) ...
            np.testing.assert_allclose(approx, deq, rtol=1e-4, atol=1e-4 * scale)
            # ... which is close to the exact one
            assert np.abs(approx - exact).max() <= 0.02 * scale


def test_scalar_codes_are_a_quarter(setup):
    base = setup("Cosine")[0]
    qv = QuantizedVectors.build({"scalar": {"type": "int8", "quantile": 0.99,
                                            "always_ram": True}}, base, "Cosine")
    assert qv.kind == "scalar" and qv.always_ram
    assert qv.codes.dtype == np.uint8 and qv.codes.shape == base.shape
    assert qv.nbytes == base.nbytes // 4


def test_scalar_quantile_clips(setup):
    base = setup("Euclid")[0]
    full = QuantizedVectors.build(SCALAR, base, "Euclid")
    clipped = QuantizedVectors.build({"scalar": {"type": "int8", "quantile": 0.9}}, base, "Euclid")
    assert clipped.alpha < full.alpha
    assert np.isclose(full.lo, base.min())
    # Qdrant's range: cut = 6000 vectors * (1 - 0.9) / 2 = 300 *values* of the 384,000 at
    # each end (all are sampled here); lo and hi are the values at sorted positions cut + 1
    # and len - cut - 1, so 301 values lie below lo and 300 above hi: ~(1 - q) / (2 dim)
    hi = float(clipped.lo) + 255 * float(clipped.alpha)
    assert int((base < clipped.lo).sum()) == 301
    assert int((base > np.float32(hi) + 1e-6).sum()) in (299, 300)
    assert np.isclose(np.sort(base.reshape(-1))[301], clipped.lo)


def test_scalar_quantile_sampled_range():
    """More values than the sample holds: s = 4M / dim vectors are sampled (seeded), the cut
    is s (1 - q) / 2 values, so again ~(1 - q) / (2 dim) of all values are clipped per side
    (here 0.005 / 256 ~ 2e-5), not (1 - q) / 2 = 0.5% as a quantile of the values would."""
    x = np.random.default_rng(5).standard_normal((20_000, 256)).astype(np.float32)
    a = QuantizedVectors.build({"scalar": {"type": "int8", "quantile": 0.99}}, x, "Dot")
    b = QuantizedVectors.build({"scalar": {"type": "int8", "quantile": 0.99}}, x, "Dot")
    assert a.lo == b.lo and a.alpha == b.alpha  # seeded
    below = (x < a.lo).mean()
    assert 0.3 * 0.005 / 256 < below < 3 * 0.005 / 256
    assert a.lo < np.quantile(x, 0.001)


@pytest.mark.parametrize("quantile", [None, 0.99])
def test_scalar_non_finite_refused(quantile):
    x = np.random.default_rng(3).standard_normal((500, 16)).astype(np.float32)
    x[321, 7] = np.inf  # outside the quantile sample or not: refused either way
    with pytest.raises(ValueError, match="non-finite"):
        QuantizedVectors.build({"scalar": {"type": "int8", "quantile": quantile}}, x, "Dot")


def _outlier_clusters(seed=1, n=5000, nq=200, dim=384, clusters=500, wide=4, scale=2.0):
    """Unit vectors around many small clusters with `wide` dimensions of `scale` times the
    spread (real embedding models have a few such dimensions)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim))
    stretch = np.ones(dim)
    stretch[:wide] = scale

    def draw(count):
        v = (centres[rng.integers(0, clusters, count)] + rng.standard_normal((count, dim))) * stretch
        return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)

    return draw(n), draw(nq)


def test_scalar_quantile_recall_with_wide_dimensions():
    """quantile 0.99 (Qdrant's documented recipe) with oversampling 1 and rescoring keeps
    recall@10 within 0.01 of the float graph search at the same ef. A range from the 0.5% /
    99.5% quantiles of the values clips the wide dimensions and lost ~0.02 here (0.037 on
    real embeddings); the e2e test checks the same through a server."""
    base, queries = _outlier_clusters()
    index = HnswIndex.build(base, "Cosine", m=16, ef_construct=100, seed=1)
    exact = queries @ base.T
    truth = np.argsort(-exact, axis=1, kind="stable")[:, :K]
    qv = QuantizedVectors.build({"scalar": {"type": "int8", "quantile": 0.99}}, base, "Cosine")
    for ef in (16, 32):
        plain = hits = 0
        for q, t in zip(queries, truth):
            plain += len(set(index.search(q, K, ef)[0].tolist()) & set(t.tolist()))
            ids, _ = qv.graph_search(index, q, K, ef)
            hits += len(set(ids.tolist()) & set(t.tolist()))  # rescoring K keeps the same set
        assert plain / truth.size > 0.9
        assert hits / truth.size >= plain / truth.size - 0.01, (ef, hits, plain)


# -- binary and product -----------------------------------------------------------------------


@pytest.mark.parametrize("distance", DISTANCES)
@pytest.mark.parametrize("case", sorted(BINARY_CASES))
def test_binary_rescored_recall(setup, distance, case):
    config, oversampling, floors = BINARY_CASES[case]
    floor = floors[DISTANCES.index(distance)]
    base, queries, index, truth = setup(distance)
    qv = QuantizedVectors.build(config, base, distance)
    assert qv.kind == "binary"
    bits = DIM * {"one_bit": 1, "two_bits": 2}.get(config["binary"].get("encoding", "one_bit"), 1.5)
    assert qv.codes.dtype == np.uint64 and qv.codes.shape == (N, int(-(-bits // 64)))
    graph = _rescored_recall(qv, distance, base, queries, index, truth, oversampling)
    scan = _rescored_recall(qv, distance, base, queries, index, truth, oversampling, graph=False)
    assert graph >= floor and scan >= floor
    assert graph >= scan - 0.05


@pytest.mark.parametrize("distance", DISTANCES)
def test_binary_asymmetric_scores_are_dequantized(setup, distance):
    base, queries, index, _ = setup(distance)
    qv = QuantizedVectors.build({"binary": {"encoding": "two_bits", "query_encoding": "scalar8bits"}},
                                base, distance)
    for q in queries[:10]:
        ids, approx = qv.scan(q, 50)
        deq = _sim(distance, qv.dequantize(ids), q)
        # the query weights are rounded to 8 bits: a small error relative to the spread
        spread = np.abs(deq).max() + 1e-9
        assert np.abs(approx - deq).max() <= 0.02 * spread
        # the symmetric (binary query) scores are estimates, in the right units and order
    qb = QuantizedVectors.build({"binary": {}}, base, distance)
    ids, approx = qb.scan(queries[0], 50)
    assert np.all(np.diff(approx) <= 0)
    exact = _sim(distance, base[ids], queries[0])
    assert np.median(np.abs(approx - exact)) <= 0.6 * (np.abs(exact).max() + 1e-9)


@pytest.mark.parametrize("distance", DISTANCES)
@pytest.mark.parametrize("case", sorted(PRODUCT_CASES))
def test_product_rescored_recall(setup, distance, case):
    config, oversampling, floors = PRODUCT_CASES[case]
    floor = floors[DISTANCES.index(distance)]
    base, queries, index, truth = setup(distance)
    qv = QuantizedVectors.build(config, base, distance)
    sub = {"x4": 1, "x16": 4}[case]
    assert qv.codes.shape == (N, DIM // sub) and qv.codes.dtype == np.uint8
    assert _rescored_recall(qv, distance, base, queries, index, truth, oversampling) >= floor
    for q in queries[:5]:  # the LUT scores are the dequantized similarities
        ids, approx = qv.graph_search(index, q, K, EF)
        deq = _sim(distance, qv.dequantize(ids), q)
        np.testing.assert_allclose(approx, deq, rtol=1e-4, atol=1e-4 * (np.abs(deq).max() + 1e-9))


def test_product_odd_dimension():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((500, 10)).astype(np.float32)
    qv = QuantizedVectors.build({"product": {"compression": "x16"}}, x, "Euclid")
    assert qv.codes.shape == (500, 3)  # 4 + 4 + 2 (zero-padded)
    ids, approx = qv.scan(x[7], 5)
    np.testing.assert_allclose(approx, _sim("Euclid", qv.dequantize(ids), x[7]), rtol=1e-4,
                               atol=1e-4)


# -- masks, persistence, threads, config errors ------------------------------------------------

ALL_CONFIGS = {
    "scalar": SCALAR,
    "binary": {"binary": {}},
    "binary_q4": {"binary": {"encoding": "one_and_half_bits", "query_encoding": "scalar4bits"}},
    "product": {"product": {"compression": "x8"}},
}


@pytest.mark.parametrize("name", sorted(ALL_CONFIGS))
def test_masks(setup, name):
    base, queries, index, _ = setup("Euclid")
    qv = QuantizedVectors.build(ALL_CONFIGS[name], base, "Euclid")
    rng = np.random.default_rng(5)
    allowed = rng.random(N) < 0.3
    deleted = rng.random(N) < 0.2
    for q in queries[:10]:
        for ids, _ in (qv.scan(q, 20, allowed, deleted),
                       qv.graph_search(index, q, 20, EF, allowed, deleted)):
            assert len(ids) == 20
            assert allowed[ids].all() and not deleted[ids].any()
        # the masked scan is the unmasked one restricted
        full_ids, full = qv.scan(q, N)
        ok = allowed[full_ids] & ~deleted[full_ids]
        ids, sims = qv.scan(q, 20, allowed, deleted)
        np.testing.assert_allclose(sims, full[ok][:20], rtol=1e-6)
    only = np.zeros(N, bool)
    only[[3, 99]] = True
    ids, _ = qv.graph_search(index, queries[0], 10, EF, allowed=only)
    assert sorted(ids.tolist()) == [3, 99]
    ids, _ = qv.scan(queries[0], 10, deleted=np.ones(N, bool))
    assert ids.size == 0


@pytest.mark.parametrize("name", sorted(ALL_CONFIGS))
def test_save_load_round_trip(setup, tmp_path, name):
    base, queries, index, _ = setup("Cosine")
    qv = QuantizedVectors.build(ALL_CONFIGS[name], base, "Cosine")
    qv.save(tmp_path / "q")
    for mmap in (False, True):
        loaded = QuantizedVectors.load(tmp_path / "q", mmap=mmap)
        assert type(loaded) is type(qv) and loaded.kind == qv.kind
        assert loaded.nbytes == qv.nbytes and loaded.always_ram == qv.always_ram
        if mmap:
            assert isinstance(loaded.codes, np.memmap)
        for q in queries[:5]:
            for a, b in ((qv.scan(q, K), loaded.scan(q, K)),
                         (qv.graph_search(index, q, K, EF), loaded.graph_search(index, q, K, EF))):
                np.testing.assert_array_equal(a[0], b[0])
                np.testing.assert_array_equal(a[1], b[1])


def test_concurrent_searches(setup):
    base, queries, index, _ = setup("Dot")
    qv = QuantizedVectors.build(SCALAR, base, "Dot")
    expected = [qv.graph_search(index, q, K, EF) for q in queries]
    errors = []

    def work():
        try:
            for _ in range(3):
                for q, (ids, sims) in zip(queries, expected):
                    got = qv.graph_search(index, q, K, EF)
                    if not (np.array_equal(got[0], ids) and np.array_equal(got[1], sims)):
                        errors.append("mismatch")
        except Exception as exc:  # noqa: BLE001
            errors.append(repr(exc))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


@pytest.mark.parametrize("config", [
    {"scalar": {"type": "int8", "quantile": 0.4}},
    {"scalar": {"type": "int8", "quantile": 1.5}},
    {"scalar": {"type": "int4"}},
    {"product": {"compression": "x3"}},
    {"product": {}},
    {"binary": {"encoding": "three_bits"}},
    {"binary": {"query_encoding": "scalar2bits"}},
    {"binary": {"always_ram": "yes"}},
    {"turbo": {}},
    {},
    {"scalar": {}, "binary": {}},
])
def test_bad_config(config):
    x = np.ones((10, 4), np.float32)
    with pytest.raises(ValueError):
        QuantizedVectors.build(config, x, "Dot")


def test_mismatched_index_and_query(setup):
    base, queries, index, _ = setup("Euclid")
    qv = QuantizedVectors.build(SCALAR, base[:100], "Euclid")
    with pytest.raises(ValueError):
        qv.graph_search(index, queries[0], K, EF)
    with pytest.raises(ValueError):
        qv.scan(queries[0][:10], K)


def test_small_and_empty():
    x = np.random.default_rng(2).standard_normal((5, 8)).astype(np.float32)
    for config in ALL_CONFIGS.values():
        qv = QuantizedVectors.build(config, x, "Dot")
        ids, sims = qv.scan(x[0], 10)
        assert sorted(ids.tolist()) == list(range(5))
        empty = QuantizedVectors.build(config, np.zeros((0, 8), np.float32), "Dot")
        ids, sims = empty.scan(x[0], 10)
        assert ids.size == 0 and sims.size == 0


# -- array-level constructor: meta() + arrays -> from_arrays (how an immutable segment opens) --


def _map_like_a_pack(arrays, path):
    """The arrays written into a pack file and mapped back read-only (segments/packfile.py):
    what an immutable segment's pack gives."""
    with PackWriter(path) as writer:
        for name, array in arrays.items():
            writer.add(name, array)
        table = writer.finish()
    return open_pack(path, table)


@pytest.mark.parametrize("distance", ["Cosine", "Euclid"])
@pytest.mark.parametrize("name", sorted(ALL_CONFIGS))
def test_from_arrays_round_trip(setup, tmp_path, name, distance):
    import json

    base, queries, index, _ = setup(distance)
    qv = QuantizedVectors.build(ALL_CONFIGS[name], base, distance)
    meta = json.loads(json.dumps(qv.meta()))  # as stored in segment.json
    assert meta["kind"] == qv.kind and meta["n"] == N and meta["dim"] == DIM
    same = QuantizedVectors.from_arrays(meta, qv.arrays)
    assert all(np.shares_memory(same.arrays[k], qv.arrays[k]) for k in qv.arrays)  # no copy
    mapped = QuantizedVectors.from_arrays(meta, _map_like_a_pack(qv.arrays, tmp_path / "q.pack"))
    assert not mapped.codes.flags.writeable and mapped.nbytes == qv.nbytes
    for again in (same, mapped):
        assert type(again) is type(qv) and again.meta() == qv.meta()
        for q in queries[:5]:
            for a, b in ((qv.scan(q, K), again.scan(q, K)),
                         (qv.graph_search(index, q, K, EF), again.graph_search(index, q, K, EF))):
                np.testing.assert_array_equal(a[0], b[0])
                np.testing.assert_array_equal(a[1], b[1])
        np.testing.assert_array_equal(again.dequantize([0, 7]), qv.dequantize([0, 7]))


def _refusals():
    """name -> (config, change(meta, arrays)): one broken thing each."""
    def params(**changes):
        return lambda meta, arrays: meta["params"].update(changes)

    def array(name, value):
        return lambda meta, arrays: arrays.__setitem__(name, value(arrays[name]))

    def top(key, value):
        return lambda meta, arrays: meta.__setitem__(key, value)

    scalar, binary, product = SCALAR, {"binary": {}}, {"product": {"compression": "x4"}}
    return {
        "format": (scalar, top("format", 2)),
        "kind": (scalar, top("kind", "turbo")),
        "distance": (scalar, top("distance", "Hamming")),
        "n not a number": (scalar, top("n", "many")),
        "n off by one": (scalar, top("n", 41)),
        "dim off by one": (scalar, top("dim", 7)),
        "always_ram not a bool": (scalar, top("always_ram", "yes")),
        "params not an object": (scalar, top("params", [1, 2])),
        "missing codes": (scalar, lambda meta, arrays: arrays.pop("codes")),
        "codes int16": (scalar, array("codes", lambda a: a.astype(np.int16))),
        "codes transposed": (scalar, array("codes", lambda a: np.asfortranarray(a))),
        "codes one row short": (scalar, array("codes", lambda a: a[:-1].copy())),
        "scalar alpha zero": (scalar, params(alpha=0.0)),
        "scalar alpha nan": (scalar, params(alpha=float("nan"))),
        "scalar lo missing": (scalar, params(lo=None)),
        "scalar type int4": (scalar, params(type="int4")),
        "binary bit_dim out of range": (binary, array("bit_dim", lambda a: a + 1)),
        "binary bit_dim negative": (binary, array("bit_dim", lambda a: a - 1)),
        "binary threshold short": (binary, array("bit_threshold", lambda a: a[:-1].copy())),
        "binary codes too wide": (binary, array("codes", lambda a: np.hstack([a, a]))),
        "binary base short": (binary, array("base", lambda a: a[:-1].copy())),
        "binary encoding": (binary, params(encoding="three_bits")),
        "binary radius": (binary, params(radius=-1.0)),
        "product sub_dim": (product, params(sub_dim=2)),
        "product centroids": (product, array("centroids", lambda a: a[:, :128].copy())),
        "product codes narrow": (product, array("codes", lambda a: a[:, :-1].copy())),
    }


@pytest.mark.parametrize("case", sorted(_refusals()))
def test_from_arrays_refuses_what_the_kernels_cannot_take(case):
    config, change = _refusals()[case]
    x = np.random.default_rng(4).standard_normal((40, 8)).astype(np.float32)
    qv = QuantizedVectors.build(config, x, "Dot")
    meta = qv.meta()
    meta["params"] = dict(meta["params"])
    arrays = dict(qv.arrays)
    QuantizedVectors.from_arrays(meta, arrays)  # intact: accepted
    change(meta, arrays)
    with pytest.raises(ValueError):
        QuantizedVectors.from_arrays(meta, arrays)


def test_from_arrays_on_a_subclass_checks_the_kind():
    from pydrant.segments.quantization import BinaryQuantized, ScalarQuantized

    x = np.random.default_rng(5).standard_normal((40, 8)).astype(np.float32)
    qv = QuantizedVectors.build(SCALAR, x, "Dot")
    assert type(ScalarQuantized.from_arrays(qv.meta(), qv.arrays)) is ScalarQuantized
    with pytest.raises(ValueError):
        BinaryQuantized.from_arrays(qv.meta(), qv.arrays)
