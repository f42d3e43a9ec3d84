"""The universal Query API end to end: `/points/query`, `/query/batch`, `/query/groups` with
every query variant, prefetch trees, fusion (checked against a reference fused in the test
from the prefetches' own results), formulas, MMR; and bad input on every search endpoint:
Qdrant's error envelope with a 4xx code, and a server that keeps serving."""

import numpy as np
import pytest
from qdrant_client import models
from qdrant_client.http import models as rest
from qdrant_client.http.exceptions import UnexpectedResponse
from searchref import normalised, similarity, reported, sigma, pairs, ids, assert_ranked  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.filterwarnings("ignore:.*deprecated:DeprecationWarning")]

N = 80
DIM = 4
COLORS = ["red", "green", "blue"]


# -- reference computations ------------------------------------------------------------------


def assert_page(points, reference: dict, offset: int, limit: int, asc=False, rel=1e-4):
    """`points` are entries offset..offset+limit of the ranking of `reference` (ties either way)."""
    got = pairs(points)
    expected = sorted(reference.values(), reverse=not asc)[offset:offset + limit]
    assert [s for _, s in got] == pytest.approx(expected, rel=rel, abs=1e-5)
    assert all(score == pytest.approx(reference[i], rel=rel, abs=1e-5) for i, score in got)


def top(reference: dict, limit: int, asc=False) -> list:
    """The ids of the best `limit` entries of a reference, best first."""
    return [i for i, _ in sorted(reference.items(), key=lambda kv: kv[1], reverse=not asc)[:limit]]


def sparse_dot(a: dict, b: dict) -> float:
    return float(sum(v * b[k] for k, v in a.items() if k in b))


# -- data ------------------------------------------------------------------------------------


def payload_of(i):
    return {"i": i, "color": COLORS[i % 3], "n": i % 5, "tags": [f"t{i % 2}", f"t{i % 4}"], "w": i / 10}


class Data:
    def __init__(self, seed=0):
        rng = np.random.default_rng(seed)
        self.dense = rng.normal(size=(N, DIM)).astype(np.float32)
        self.euc = rng.normal(size=(N, DIM)).astype(np.float32)
        self.multi = [rng.normal(size=(int(rng.integers(1, 4)), 2)).astype(np.float32) for _ in range(N)]
        self.sparse = []
        for _ in range(N):
            k = int(rng.integers(1, 5))
            idx = rng.choice(20, size=k, replace=False)
            self.sparse.append({int(i): float(v) for i, v in zip(idx, rng.uniform(0.1, 2.0, size=k))})

    def reference(self, using, q, subset=None):
        """Nearest scores of every point (or `subset`) as reported, for vector `using`."""
        keep = list(range(N)) if subset is None else list(subset)
        if using == "dense":
            scores = similarity(self.dense, q, "Cosine")
        elif using == "euc":
            scores = reported(similarity(self.euc, q, "Euclid"), "Euclid")
        elif using == "sparse":
            return {i: sparse_dot(self.sparse[i], q) for i in keep if set(self.sparse[i]) & set(q)}
        elif using == "multi":
            q = np.asarray(q, np.float64)
            return {i: float(sum((self.multi[i].astype(np.float64) @ row).max() for row in q)) for i in keep}
        return {i: float(scores[i]) for i in keep}


@pytest.fixture
def name(request):
    return request.node.name.replace("[", "_").replace("]", "").replace("-", "_")[:60]


@pytest.fixture
def col(client, name):
    """A collection with four vectors, N points with every vector and a payload."""
    data = Data()
    client.create_collection(
        name,
        vectors_config={
            "dense": models.VectorParams(size=DIM, distance=models.Distance.COSINE),
            "euc": models.VectorParams(size=DIM, distance=models.Distance.EUCLID),
            "multi": models.VectorParams(size=2, distance=models.Distance.DOT,
                                         multivector_config=models.MultiVectorConfig(
                                             comparator=models.MultiVectorComparator.MAX_SIM)),
        },
        sparse_vectors_config={"sparse": models.SparseVectorParams()},
    )
    client.upsert(name, [
        models.PointStruct(id=i, payload=payload_of(i), vector={
            "dense": data.dense[i].tolist(), "euc": data.euc[i].tolist(), "multi": data.multi[i].tolist(),
            "sparse": models.SparseVector(indices=list(data.sparse[i]), values=list(data.sparse[i].values()))})
        for i in range(N)
    ], wait=True)
    data.name = name
    return data


def q_of(seed, size=DIM):
    return np.random.default_rng(seed).normal(size=size).astype(np.float32)


def query(http, name, body, status=200):
    r = http.post(f"/collections/{name}/points/query", json=body)
    assert r.status_code == status, r.text
    if status != 200:
        return r.json()
    return rest.QueryResponse.model_validate(r.json()["result"]).points


def red_filter():
    return models.Filter(must=[models.FieldCondition(key="color", match=models.MatchValue(value="red"))])


RED = {"must": [{"key": "color", "match": {"value": "red"}}]}
IS_RED = [i for i in range(N) if i % 3 == 0]


# -- nearest ---------------------------------------------------------------------------------


def test_nearest_dense_plain_and_wrapped(client, http, col):
    q = q_of(1)
    ref = col.reference("dense", q)
    res = client.query_points(col.name, query=q.tolist(), using="dense", limit=6)
    assert_ranked(res.points, ref, 6)
    assert all(p.payload == payload_of(p.id) for p in res.points)  # the client asks for payloads
    raw = query(http, col.name, {"query": {"nearest": q.tolist()}, "using": "dense", "limit": 6})
    assert ids(raw) == ids(res.points) and all(p.payload is None for p in raw)  # the API's default: none
    raw = query(http, col.name, {"query": q.tolist(), "using": "euc", "limit": 6, "offset": 3,
                                 "with_vector": ["euc"], "with_payload": {"include": ["n"]}})
    ref = col.reference("euc", q)
    assert [p.id for p in raw] == top(ref, 9, asc=True)[3:]
    assert all(p.vector == {"euc": pytest.approx(col.euc[p.id].tolist())} for p in raw)
    assert all(p.payload == {"n": p.id % 5} for p in raw)


def test_nearest_threshold_and_filter(client, col):
    q = q_of(2)
    ref = col.reference("euc", q, subset=IS_RED)
    threshold = sorted(ref.values())[7]
    res = client.query_points(col.name, query=q.tolist(), using="euc", query_filter=red_filter(), limit=100,
                              score_threshold=threshold)
    assert_ranked(res.points, {i: s for i, s in ref.items() if s <= threshold}, 100, asc=True)
    assert len(res.points) == 8


def test_nearest_sparse_and_multi(client, http, col):
    sq = {1: 0.5, 4: 1.5, 19: 1.0}
    ref = col.reference("sparse", sq)
    res = client.query_points(col.name, query=models.SparseVector(indices=list(sq), values=list(sq.values())),
                              using="sparse", limit=50)
    assert_ranked(res.points, ref, 50)
    raw = query(http, col.name, {"query": {"nearest": {"indices": [19, 1, 4], "values": [1.0, 0.5, 1.5]}},
                                 "using": "sparse", "limit": 5})
    assert_ranked(raw, ref, 5)
    mq = np.random.default_rng(3).normal(size=(3, 2))
    res = client.query_points(col.name, query=mq.tolist(), using="multi", limit=5)
    assert_ranked(res.points, col.reference("multi", mq), 5)


def test_nearest_by_point_id_excludes_it(client, http, col):
    ref = col.reference("dense", col.dense[7])
    del ref[7]
    res = client.query_points(col.name, query=7, using="dense", limit=5)
    assert_ranked(res.points, ref, 5)
    raw = query(http, col.name, {"query": {"nearest": 7}, "using": "euc", "limit": 5})
    ref = col.reference("euc", col.euc[7])
    del ref[7]
    assert_ranked(raw, ref, 5, asc=True)
    # also when the id is used deep in a prefetch
    raw = query(http, col.name, {"prefetch": {"query": 7, "using": "dense", "limit": 30},
                                 "query": col.dense[7].tolist(), "using": "dense", "limit": 3})
    assert 7 not in ids(raw) and len(raw) == 3


# -- recommend / discover / context ----------------------------------------------------------


@pytest.mark.parametrize("strategy", ["average_vector", "best_score", "sum_scores"])
def test_query_recommend(client, http, col, strategy):
    stored = normalised(col.dense)
    pos, neg = [3, 5], [8]
    if strategy == "average_vector":
        qv = 2 * stored[pos].mean(axis=0) - stored[neg].mean(axis=0)
        ref = {i: float(s) for i, s in enumerate(similarity(col.dense, qv, "Cosine"))}
    else:
        ps = np.stack([stored @ stored[p] for p in pos], axis=1)
        ns = np.stack([stored @ stored[n] for n in neg], axis=1)
        if strategy == "sum_scores":
            scores = ps.sum(axis=1) - ns.sum(axis=1)
        else:
            bp, bn = ps.max(axis=1), ns.max(axis=1)
            scores = np.where(bp > bn, sigma(bp), -sigma(bn))
        ref = dict(enumerate(map(float, scores)))
    for i in pos + neg:
        del ref[i]
    res = client.query_points(col.name, query=models.RecommendQuery(recommend=models.RecommendInput(
        positive=pos, negative=neg, strategy=models.RecommendStrategy(strategy))), using="dense", limit=7)
    assert_ranked(res.points, ref, 7)
    raw = query(http, col.name, {"query": {"recommend": {"positive": pos, "negative": neg, "strategy": strategy}},
                                 "using": "dense", "limit": 7})
    assert ids(raw) == ids(res.points)


def test_query_discover_and_context(client, http, col):
    stored = normalised(col.dense)
    sims = lambda v: stored @ normalised(v)  # noqa: E731
    target = q_of(4)
    ctx = [(1, 2), (10, 20)]
    rank = sum(np.where(sims(stored[p]) > sims(stored[n]), 1, -1) for p, n in ctx)
    ref = dict(enumerate(map(float, rank + sigma(sims(target)))))
    for i in (1, 2, 10, 20):
        del ref[i]
    res = client.query_points(col.name, using="dense", limit=6, query=models.DiscoverQuery(
        discover=models.DiscoverInput(target=target.tolist(), context=[
            models.ContextPair(positive=p, negative=n) for p, n in ctx])))
    assert_ranked(res.points, ref, 6)

    eps = float(np.finfo(np.float32).eps)
    # each pair's loss: fast_sigmoid(min(sim(positive) - sim(negative) - eps, 0)), summed
    loss = sum((d := np.minimum(sims(stored[p]) - sims(stored[n]) - eps, 0)) / (1 + np.abs(d)) for p, n in ctx)
    ref = dict(enumerate(map(float, loss)))
    for i in (1, 2, 10, 20):
        del ref[i]
    raw = query(http, col.name, {"query": {"context": [{"positive": p, "negative": n} for p, n in ctx]},
                                 "using": "dense", "limit": 10})
    assert_ranked(raw, ref, 10)
    # a single pair may be given without a list
    raw = query(http, col.name, {"query": {"context": {"positive": 1, "negative": 2}}, "using": "dense", "limit": 3})
    assert len(raw) == 3 and not {1, 2} & set(ids(raw))


# -- scroll-like queries ---------------------------------------------------------------------


def test_no_query_orders_by_id(client, http, col):
    res = client.query_points(col.name, limit=5, query_filter=red_filter())
    assert ids(res.points) == IS_RED[:5] and all(p.score == 1.0 for p in res.points)
    raw = query(http, col.name, {"limit": 4, "offset": 3, "filter": RED})
    assert ids(raw) == IS_RED[3:7]
    assert ids(query(http, col.name, {})) == list(range(10))  # an empty body: 10 points by id


def test_order_by(client, http, col):
    client.create_payload_index(col.name, "w", models.PayloadSchemaType.FLOAT, wait=True)
    res = client.query_points(col.name, query=models.OrderByQuery(order_by=models.OrderBy(
        key="w", direction=models.Direction.DESC)), limit=4)
    assert ids(res.points) == [79, 78, 77, 76]
    assert [p.order_value for p in res.points] == pytest.approx([7.9, 7.8, 7.7, 7.6])
    raw = query(http, col.name, {"query": {"order_by": "w"}, "limit": 3, "filter": RED})
    assert ids(raw) == [0, 3, 6] and [p.order_value for p in raw] == pytest.approx([0.0, 0.3, 0.6])
    raw = query(http, col.name, {"query": {"order_by": {"key": "w", "start_from": 5.0}}, "limit": 2})
    assert ids(raw) == [50, 51]
    # order_by re-ranking the results of a prefetch
    q = q_of(5)
    nearest = top(col.reference("dense", q), 15)
    raw = query(http, col.name, {"prefetch": {"query": q.tolist(), "using": "dense", "limit": 15},
                                 "query": {"order_by": {"key": "w", "direction": "asc"}}, "limit": 5})
    assert ids(raw) == sorted(nearest)[:5]


def test_sample_random(client, http, col):
    res = client.query_points(col.name, query=models.SampleQuery(sample=models.Sample.RANDOM), limit=6,
                              query_filter=red_filter())
    got = ids(res.points)
    assert len(got) == 6 == len(set(got)) and set(got) <= set(IS_RED)
    seen = set()
    for _ in range(6):
        seen |= set(ids(query(http, col.name, {"query": {"sample": "random"}, "limit": 5})))
    assert len(seen) > 5  # not always the same points
    # without prefetches, a random sample has no order to page through: offset is ignored
    assert len(query(http, col.name, {"query": {"sample": "random"}, "limit": 5, "offset": 1000})) == 5
    # sampling the results of a prefetch stays within them
    nearest = top(col.reference("euc", q_of(6)), 8, asc=True)
    raw = query(http, col.name, {"prefetch": {"query": q_of(6).tolist(), "using": "euc", "limit": 8},
                                 "query": {"sample": "random"}, "limit": 20})
    assert sorted(ids(raw)) == sorted(nearest)


# -- fusion ----------------------------------------------------------------------------------


def rrf_reference(lists, k=2):
    scores = {}
    for hits in lists:
        for rank, point_id in enumerate(ids(hits)):
            scores[point_id] = scores.get(point_id, 0.0) + 1.0 / (rank + k)
    return scores


def dbsf_reference(lists):
    scores = {}
    for hits in lists:
        values = np.array([s for _, s in pairs(hits)], np.float64)
        if len(values) == 1:
            normalised_values = [0.5]
        else:
            mean, std = values.mean(), values.std(ddof=1)
            low, high = mean - 3 * std, mean + 3 * std
            normalised_values = [0.5] * len(values) if low == high else (values - low) / (high - low)
        for point_id, value in zip(ids(hits), normalised_values):
            scores[point_id] = scores.get(point_id, 0.0) + float(value)
    return scores


@pytest.fixture
def hybrid(client, name):
    """A collection with a dense and a sparse vector: the usual hybrid search set-up."""
    rng = np.random.default_rng(99)
    dense = rng.normal(size=(120, 8))
    sparse = []
    for _ in range(120):
        k = int(rng.integers(2, 8))
        idx = rng.choice(50, size=k, replace=False)
        sparse.append({int(i): float(v) for i, v in zip(idx, rng.uniform(0.05, 1.0, size=k))})
    client.create_collection(name, vectors_config={"d": models.VectorParams(size=8, distance=models.Distance.COSINE)},
                             sparse_vectors_config={"s": models.SparseVectorParams()})
    client.upsert(name, [models.PointStruct(id=i, payload={"i": i, "odd": i % 2 == 1}, vector={
        "d": dense[i].tolist(), "s": models.SparseVector(indices=list(sparse[i]), values=list(sparse[i].values()))})
        for i in range(120)], wait=True)
    dq = rng.normal(size=8)
    sq = {int(i): float(v) for i, v in zip(rng.choice(50, size=6, replace=False), rng.uniform(0.1, 1.0, size=6))}
    return name, dq, sq


def hybrid_prefetches(dq, sq, limit=25):
    return [
        models.Prefetch(query=dq.tolist(), using="d", limit=limit),
        models.Prefetch(query=models.SparseVector(indices=list(sq), values=list(sq.values())), using="s", limit=limit),
    ]


@pytest.mark.parametrize("method", ["rrf", "dbsf"])
def test_hybrid_fusion(client, http, hybrid, method):
    name, dq, sq = hybrid
    fuse = rrf_reference if method == "rrf" else dbsf_reference

    def reference(limit):
        """Fused from the two prefetch result lists, each fetched on its own."""
        lists = [client.query_points(name, query=p.query, using=p.using, limit=limit).points
                 for p in hybrid_prefetches(dq, sq, limit)]
        assert all(len(hits) == limit for hits in lists)
        assert set(ids(lists[0])) != set(ids(lists[1]))
        return fuse(lists)

    prefetch = hybrid_prefetches(dq, sq, 25)
    res = client.query_points(name, prefetch=prefetch, query=models.FusionQuery(fusion=models.Fusion(method)),
                              limit=12)
    assert_ranked(res.points, reference(25), 12)
    # raw HTTP, with an offset: it is skipped at the root, and each prefetch fetches
    # `limit + offset` points (which changes DBSF's normalisation)
    body = {"prefetch": [p.model_dump(exclude_none=True) for p in prefetch], "query": {"fusion": method},
            "limit": 5, "offset": 4}
    assert_page(query(http, name, body), reference(29), offset=4, limit=5)
    # a threshold keeps the fused scores at least it
    ref = reference(25)
    values = sorted(set(ref.values()), reverse=True)
    threshold = (values[6] + values[7]) / 2
    raw = query(http, name, dict(body, offset=0, limit=100, score_threshold=threshold))
    assert_ranked(raw, {i: s for i, s in ref.items() if s >= threshold}, 100)
    assert len(raw) >= 7


def test_rrf_with_k(client, http, hybrid):
    name, dq, sq = hybrid
    prefetch = hybrid_prefetches(dq, sq, limit=15)
    lists = [client.query_points(name, query=p.query, using=p.using, limit=15).points for p in prefetch]
    body = {"prefetch": [p.model_dump(exclude_none=True) for p in prefetch], "limit": 10}
    raw = query(http, name, dict(body, query={"rrf": {"k": 5}}))
    assert_ranked(raw, rrf_reference(lists, k=5), 10)
    assert raw[0].score <= 2 / 5 + 1e-6
    raw = query(http, name, dict(body, query={"rrf": {"k": 60}}))
    assert_ranked(raw, rrf_reference(lists, k=60), 10)
    raw = query(http, name, dict(body, query={"rrf": {}}))  # k defaults to 2, as `{"fusion": "rrf"}`
    assert_ranked(raw, rrf_reference(lists, k=2), 10)
    same = query(http, name, dict(body, query={"fusion": "rrf"}))
    assert [p.score for p in raw] == [p.score for p in same]


def test_fusion_with_root_filter(client, http, hybrid):
    name, dq, sq = hybrid
    odd = {"must": [{"key": "odd", "match": {"value": True}}]}
    prefetch = hybrid_prefetches(dq, sq, limit=10)
    flt = models.Filter(**odd)
    # the root filter reaches the prefetches: each finds 10 odd points
    lists = [client.query_points(name, query=p.query, using=p.using, limit=10, query_filter=flt).points
             for p in prefetch]
    assert all(len(hits) == 10 for hits in lists)
    raw = query(http, name, {"prefetch": [p.model_dump(exclude_none=True) for p in prefetch],
                             "query": {"fusion": "rrf"}, "filter": odd, "limit": 50})
    assert_ranked(raw, rrf_reference(lists), 50)
    assert all(i % 2 == 1 for i in ids(raw))


# -- prefetch trees --------------------------------------------------------------------------


def test_nested_prefetch_two_levels(client, http, col):
    qa, qe, qd = q_of(11), q_of(12), q_of(13)
    root_filter = {"must_not": [{"key": "n", "match": {"value": 0}}]}
    f1 = {"must": [{"key": "color", "match": {"any": ["red", "green"]}}]}
    f11 = {"must": [{"key": "i", "range": {"gte": 10}}]}
    ok = lambda i: i % 5 != 0 and i % 3 in (0, 1) and i >= 10  # noqa: E731
    # level 2: the 30 nearest (dense) of the points passing every filter above it
    leaf = top(col.reference("dense", qd, subset=[i for i in range(N) if ok(i)]), 30)
    # level 1: re-ranked by euc distance, 12 kept, distance at most the threshold
    mid_ref = col.reference("euc", qe, subset=leaf)
    threshold = sorted(mid_ref.values())[9]
    mid = [i for i in top(mid_ref, 12, asc=True) if mid_ref[i] <= threshold]
    assert len(mid) == 10
    # root: re-ranked by dense similarity
    ref = col.reference("dense", qa, subset=mid)
    body = {
        "prefetch": {
            "prefetch": {"query": qd.tolist(), "using": "dense", "filter": f11, "limit": 30},
            "query": qe.tolist(), "using": "euc", "filter": f1, "limit": 12, "score_threshold": threshold,
        },
        "query": qa.tolist(), "using": "dense", "filter": root_filter, "limit": 6,
    }
    raw = query(http, col.name, body)
    assert_ranked(raw, ref, 6)
    # the same through the client
    res = client.query_points(
        col.name, query=qa.tolist(), using="dense", limit=6, query_filter=models.Filter(**root_filter),
        prefetch=models.Prefetch(
            query=qe.tolist(), using="euc", filter=models.Filter(**f1), limit=12, score_threshold=threshold,
            prefetch=models.Prefetch(query=qd.tolist(), using="dense", filter=models.Filter(**f11), limit=30)))
    assert ids(res.points) == ids(raw)
    # offset: skips at the root, and every prefetch fetches `offset` more
    raw = query(http, col.name, dict(body, limit=3, offset=2))
    assert ids(raw) == top(ref, 5)[2:5]


def test_several_prefetches_rescored_by_multivector(client, http, col):
    q1, q2 = q_of(21), q_of(22)
    mq = np.random.default_rng(23).normal(size=(2, 2))
    union = set(top(col.reference("dense", q1), 10)) | set(top(col.reference("euc", q2), 10, asc=True))
    raw = query(http, col.name, {"prefetch": [
        {"query": q1.tolist(), "using": "dense", "limit": 10},
        {"query": q2.tolist(), "using": "euc", "limit": 10},
    ], "query": mq.tolist(), "using": "multi", "limit": 100})
    assert_ranked(raw, col.reference("multi", mq, subset=union), 100)


def test_prefetch_lookup_from(client, http, col):
    other = col.name + "_src"
    src = np.random.default_rng(31).normal(size=(3, DIM))
    client.create_collection(other, vectors_config={"v": models.VectorParams(size=DIM, distance=models.Distance.DOT)})
    client.upsert(other, [models.PointStruct(id=i, vector={"v": src[i].tolist()}) for i in range(3)], wait=True)
    # ids name points of the other collection: this collection's point 1 stays a result
    res = client.query_points(col.name, query=1, using="dense", limit=N,
                              lookup_from=models.LookupLocation(collection=other, vector="v"))
    assert_ranked(res.points, col.reference("dense", src[1]), N)
    raw = query(http, col.name, {"prefetch": {"query": 2, "using": "euc", "limit": 20,
                                              "lookup_from": {"collection": other, "vector": "v"}},
                                 "query": {"recommend": {"positive": [0]}}, "using": "dense",
                                 "lookup_from": {"collection": other, "vector": "v"}, "limit": 5})
    leaf = top(col.reference("euc", src[2]), 20, asc=True)
    assert_ranked(raw, col.reference("dense", src[0], subset=leaf), 5)


# -- formula and MMR -------------------------------------------------------------------------


def test_formula(client, http, col):
    q = q_of(41)
    client.set_payload(col.name, payload={"bonus": 3.0}, points=[i for i in range(N) if i % 4 == 0], wait=True)
    prefetch = {"query": q.tolist(), "using": "dense", "limit": 30}
    near = col.reference("dense", q)
    cand = top(near, 30)
    formula = {"sum": ["$score", {"mult": [0.5, "w"]}, "bonus", {"mult": [2.0, {"key": "color", "match": {
        "value": "blue"}}]}]}
    raw = query(http, col.name, {"prefetch": prefetch, "query": {"formula": formula, "defaults": {"bonus": -1.0}},
                                 "limit": 10})
    ref = {i: near[i] + 0.5 * (i / 10) + (3.0 if i % 4 == 0 else -1.0) + (2.0 if i % 3 == 2 else 0.0) for i in cand}
    assert_ranked(raw, ref, 10)
    # without the default, a point missing the variable is an error
    err = query(http, col.name, {"prefetch": prefetch, "query": {"formula": {"sum": ["$score", "bonus"]}}}, 400)
    assert "bonus" in err["status"]["error"]
    # $score[1] of a point missing from prefetch 1 is 0 (or its default)
    res = client.query_points(col.name, prefetch=[
        models.Prefetch(query=q.tolist(), using="dense", limit=10),
        models.Prefetch(query=q.tolist(), using="dense", limit=3),
    ], query=models.FormulaQuery(formula=models.SumExpression(sum=["$score", "$score[1]"])), limit=10)
    t3 = top(near, 3)
    assert_ranked(res.points, {i: near[i] * (2 if i in t3 else 1) for i in top(near, 10)}, 10)


def mmr_reference(vectors, q, limit, candidates, diversity):
    """Qdrant's MMR over the `candidates` nearest: the most relevant first, then greedily
    lambda * relevance - (1 - lambda) * (highest similarity to those chosen)."""
    unit = normalised(vectors)
    relevance = unit @ normalised(q)
    pool = list(np.argsort(-relevance, kind="stable")[:candidates])
    lam = 1 - diversity
    chosen = [pool.pop(0)]
    while len(chosen) < limit and pool:
        marginal = [lam * relevance[c] - (1 - lam) * max(unit[c] @ unit[s] for s in chosen) for c in pool]
        chosen.append(pool.pop(int(np.argmax(marginal))))
    return [int(c) for c in chosen], relevance


@pytest.mark.parametrize("diversity", [0.0, 0.5, 0.9])
def test_mmr(client, http, col, diversity):
    q = q_of(51)
    expected, relevance = mmr_reference(col.dense, q, 6, 25, diversity)
    raw = query(http, col.name, {"query": {"nearest": q.tolist(), "mmr": {"diversity": diversity,
                                                                          "candidates_limit": 25}},
                                 "using": "dense", "limit": 6})
    assert ids(raw) == expected
    # the hits keep their similarity to the query as score
    assert [p.score for p in raw] == pytest.approx([relevance[i] for i in expected], rel=1e-4)
    if diversity == 0.0:
        assert expected == top(col.reference("dense", q), 6)
    res = client.query_points(col.name, query=models.NearestQuery(nearest=q.tolist(), mmr=models.Mmr(
        diversity=diversity, candidates_limit=25)), using="dense", limit=6)
    assert ids(res.points) == expected


def test_mmr_default_pool_is_limit(client, http, col):
    q = q_of(52)
    raw = query(http, col.name, {"query": {"nearest": q.tolist(), "mmr": {}}, "using": "dense", "limit": 5})
    assert sorted(ids(raw)) == sorted(top(col.reference("dense", q), 5))  # a pool of `limit`: the same points
    assert ids(raw) == mmr_reference(col.dense, q, 5, 5, 0.5)[0]


# -- batch and groups ------------------------------------------------------------------------


def test_query_batch(client, http, col):
    q1, q2 = q_of(61), q_of(62)
    results = client.query_batch_points(col.name, requests=[
        models.QueryRequest(query=q1.tolist(), using="dense", limit=4),
        models.QueryRequest(query=q2.tolist(), using="euc", limit=3, filter=red_filter()),
        models.QueryRequest(query=q1.tolist(), using="dense", limit=2, offset=2, with_payload=True),
        models.QueryRequest(query=5, using="dense", limit=3),
        models.QueryRequest(limit=2),
    ])
    assert len(results) == 5
    assert_ranked(results[0].points, col.reference("dense", q1), 4)
    assert_ranked(results[1].points, col.reference("euc", q2, subset=IS_RED), 3, asc=True)
    assert ids(results[2].points) == top(col.reference("dense", q1), 4)[2:]
    assert results[2].points[0].payload == payload_of(results[2].points[0].id)
    assert 5 not in ids(results[3].points) and len(results[3].points) == 3
    assert ids(results[4].points) == [0, 1]
    r = http.post(f"/collections/{col.name}/points/query/batch", json={"searches": [
        {"query": q1.tolist(), "using": "dense", "limit": 4}, {"query": {"fusion": "rrf"}, "prefetch": [
            {"query": q1.tolist(), "using": "dense"}, {"query": q2.tolist(), "using": "euc"}], "limit": 3}]})
    assert r.status_code == 200, r.text
    batch = [rest.QueryResponse.model_validate(x) for x in r.json()["result"]]
    assert ids(batch[0].points) == ids(results[0].points) and len(batch[1].points) == 3


def test_query_groups(client, http, col):
    q = q_of(71)
    ref = col.reference("dense", q)
    ranked = top(ref, N)
    res = client.query_points_groups(col.name, group_by="color", query=q.tolist(), using="dense", limit=2,
                                     group_size=3)
    expected = {}
    for i in ranked:
        color = COLORS[i % 3]
        if color not in expected and len(expected) == 2:
            continue
        expected.setdefault(color, [])
        if len(expected[color]) < 3:
            expected[color].append(i)
    assert [(g.id, ids(g.hits)) for g in res.groups] == list(expected.items())
    assert_ranked(res.groups[0].hits, {i: ref[i] for i in expected[res.groups[0].id]}, 3)

    other = col.name + "_lk"
    client.create_collection(other, vectors_config={})
    client.upsert(other, [models.PointStruct(id=n, vector={}, payload={"name": f"n{n}"}) for n in range(5)], wait=True)
    r = http.post(f"/collections/{col.name}/points/query/groups", json={
        "prefetch": [{"query": q.tolist(), "using": "dense", "limit": 40}], "query": {"fusion": "rrf"},
        "group_by": "n", "group_size": 2, "limit": 5, "with_lookup": other, "with_payload": ["n"]})
    assert r.status_code == 200, r.text
    raw = rest.GroupsResult.model_validate(r.json()["result"])
    # Qdrant's group_by (grouping/group_by.rs): prefetch limits times 5 groups, 10 points a
    # request; a request leaves out the points grouped and the full groups, and its RRF ranks
    # start over, so a group met in a later request can outrank the groups of the first one
    groups: dict = {}
    best: dict = {}
    for _ in range(5):
        full = {g for g, members in groups.items() if len(members) >= 2}
        found = [i for i in top(ref, N) if i % 5 not in full and all(i not in m for m in groups.values())][:10]
        for rank, i in enumerate(found):
            groups.setdefault(i % 5, {})[i] = 1 / (rank + 3)
            best[i % 5] = max(best.get(i % 5, 0), 1 / (rank + 3))
        if not found or len({g for g, m in groups.items() if len(m) >= 2}) >= 5:
            break
    want = {g: sorted(m, key=m.get, reverse=True)[:2] for g, m in groups.items()}
    assert {g.id: ids(g.hits) for g in raw.groups} == want
    assert [best[g.id] for g in raw.groups] == sorted(best.values(), reverse=True)  # best first, ties in any order
    assert all(g.lookup.payload == {"name": f"n{g.id}"} for g in raw.groups)
    assert all(h.payload == {"n": g.id} for g in raw.groups for h in g.hits)
    # array values: a point joins several groups
    r = http.post(f"/collections/{col.name}/points/query/groups", json={
        "query": q.tolist(), "using": "dense", "group_by": "tags", "group_size": 100, "limit": 10})
    raw = rest.GroupsResult.model_validate(r.json()["result"])
    assert {g.id for g in raw.groups} == {"t0", "t1", "t2", "t3"}
    by_group = {g.id: set(ids(g.hits)) for g in raw.groups}
    assert by_group["t0"] == {i for i in range(N) if i % 2 == 0} and by_group["t3"] == {i for i in range(N)
                                                                                       if i % 4 == 3}


# -- bad input -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bad(server):
    import httpx

    with httpx.Client(base_url=server.url, timeout=30) as h:
        h.put("/collections/bad_search", json={
            "vectors": {"d": {"size": 3, "distance": "Dot"}}, "sparse_vectors": {"s": {}}}).raise_for_status()
        h.put("/collections/bad_search/points?wait=true", json={"points": [
            {"id": i, "vector": {"d": [1, i, 0]}, "payload": {"k": "a", "n": i}} for i in range(1, 6)]}
        ).raise_for_status()
    return "bad_search"


Q = [1.0, 0.0, 0.0]
BAD_CASES = [
    # (endpoint, body, status, fragment of the message)
    ("query", {"query": [1.0, 2.0], "using": "d"}, 400, "dim"),
    ("search", {"vector": {"name": "d", "vector": [1.0]}, "limit": 3}, 400, "dim"),
    ("search/batch", {"searches": [{"vector": {"name": "d", "vector": [1, 2, 3, 4]}, "limit": 3}]}, 400, "dim"),
    ("query", {"query": Q, "using": "nope"}, 400, "nope"),
    ("query", {"query": Q}, 400, "vector"),  # no default vector in this collection
    ("search", {"vector": {"name": "nope", "vector": Q}, "limit": 3}, 400, "nope"),
    ("recommend", {"positive": [1], "using": "nope", "limit": 3}, 400, "nope"),
    ("query", {"query": {"indices": [1], "values": [1.0]}, "using": "d"}, 400, "sparse"),
    ("query", {"query": Q, "using": "s"}, 400, "sparse"),
    ("query", {"query": {"fusion": "rrf"}}, 400, "prefetch"),
    ("query", {"query": {"rrf": {"k": 3}}}, 400, "prefetch"),
    ("query", {"prefetch": [{"query": Q, "using": "d"}]}, 400, "query"),
    ("query", {"query": {"order_by": "n"}, "score_threshold": 0.5}, 400, "score_threshold"),
    ("query", {"query": {"fusion": "rrf"}, "using": "d", "prefetch": [{"query": Q, "using": "d"}]}, 400, "using"),
    ("recommend", {"positive": [], "limit": 3}, 400, "positive"),
    ("recommend", {"negative": [1], "strategy": "average_vector", "limit": 3}, 400, "ositive"),
    ("recommend", {"negative": [1], "limit": 3}, 400, "ositive"),
    ("query", {"query": {"recommend": {"negative": [1]}}, "using": "d"}, 400, "ositive"),
    ("recommend", {"positive": [], "negative": [], "strategy": "best_score", "limit": 3}, 400, "negative"),
    ("discover", {"limit": 3, "using": "d"}, 400, "context"),
    ("query", {"query": 77, "using": "d"}, 404, "No point with id 77 found"),
    ("recommend", {"positive": [1, 78], "using": "d", "limit": 3}, 404, "No point with id 78 found"),
    ("discover", {"target": 79, "using": "d", "limit": 3}, 404, "No point with id 79 found"),
    ("query", {"query": {"nearest": Q}, "using": "d", "limit": 0}, 422, "limit"),
    ("search", {"vector": {"name": "d", "vector": Q}, "limit": 0}, 422, "limit"),
    ("query", {"query": Q, "using": "d", "limit": -1}, 400, "limit"),
    ("search", {"vector": {"name": "d", "vector": Q}, "limit": -5}, 400, "limit"),
    ("search/groups", {"vector": {"name": "d", "vector": Q}, "group_by": "a..b", "limit": 2, "group_size": 1},
     400, "a..b"),
    ("query/groups", {"query": Q, "using": "d", "group_by": "k[", "limit": 2}, 400, "k["),
    ("query", {"query": {"text": "hello", "model": "m"}, "using": "d"}, 400, "nference"),
    ("query", {"query": {"nearest": {"text": "hello", "model": "m"}}, "using": "d"}, 400, "nference"),
    ("query", {"prefetch": {"query": {"image": "x.png", "model": "m"}, "using": "d"}, "query": {"fusion": "rrf"}},
     400, "nference"),
    ("query", {"query": {"recommend": {"positive": [{"text": "x", "model": "m"}]}}, "using": "d"}, 400, "nference"),
    ("search/matrix/pairs", {"sample": 1}, 422, "sample"),
    ("search/matrix/offsets", {"using": "nope"}, 400, "nope"),
    ("query", {"query": {"nearest": Q, "mmr": {"diversity": 1.5}}, "using": "d"}, 422, "diversity"),
    ("query", {"query": {"nearest": Q, "mmr": {"candidates_limit": 20000}}, "using": "d"}, 422, "candidates_limit"),
    ("query", {"query": {"rrf": {"k": 0}}, "prefetch": {"query": Q, "using": "d"}}, 422, "k"),
    # malformed queries: no variant of the QueryInterface matches
    ("query", {"query": {"bogus": 1}}, 400, "query"),
    ("query", {"query": {"fusion": "median"}, "prefetch": {"query": Q, "using": "d"}}, 400, "query"),
    ("query", {"query": {"recommend": {"positive": [1], "strategy": "nope"}}, "using": "d"}, 400, "query"),
    ("query", {"query": {"sample": "sometimes"}}, 400, "query"),
    ("query", {"query": {"context": [{"positive": 1}]}, "using": "d"}, 400, "query"),
    # {"nearest": Q, "extra": 1} and {"formula": ..., "bogus": 1} are accepted, the unknown key
    # ignored: Qdrant's NearestQuery/FormulaQuery do not deny unknown fields (test_parity_requests_e2e)
    ("query", {"query": True}, 400, "query"),
    ("query/batch", {"searches": [{"query": Q, "using": "d"}, {"query": {"order_by": 5}}]}, 400, "query"),
    ("query", {"prefetch": [{"query": Q, "using": "d"}, {"query": {"nearest": "a", "mmr": 1}}],
               "query": {"fusion": "rrf"}}, 400, "query"),
]


@pytest.mark.parametrize("endpoint,body,status,fragment", BAD_CASES,
                         ids=[f"{i}-{case[0]}" for i, case in enumerate(BAD_CASES)])
def test_bad_input(http, bad, endpoint, body, status, fragment):
    r = http.post(f"/collections/{bad}/points/{endpoint}", json=body)
    assert r.status_code == status, r.text
    envelope = r.json()
    assert set(envelope) == {"status", "time"} and isinstance(envelope["time"], float)
    assert fragment in envelope["status"]["error"], envelope
    # the server keeps serving
    ok = http.post(f"/collections/{bad}/points/query", json={"query": Q, "using": "d", "limit": 2})
    assert ok.status_code == 200 and len(ok.json()["result"]["points"]) == 2


@pytest.mark.parametrize("endpoint", ["search", "search/batch", "search/groups", "search/matrix/pairs",
                                      "search/matrix/offsets", "recommend", "recommend/batch", "recommend/groups",
                                      "discover", "discover/batch", "query", "query/batch", "query/groups"])
def test_unknown_collection(http, endpoint):
    r = http.post(f"/collections/no_such_collection/points/{endpoint}", json={})
    assert r.status_code == 404, r.text
    assert "no_such_collection" in r.json()["status"]["error"] and "time" in r.json()


def test_client_raises_on_bad_input(client, bad):
    with pytest.raises(UnexpectedResponse) as info:
        client.query_points(bad, query=[1.0, 2.0], using="d")
    assert info.value.status_code == 400 and "dim" in info.value.content.decode()
    with pytest.raises(UnexpectedResponse) as info:
        client.query_points(bad, query=999, using="d")
    assert info.value.status_code == 404
    with pytest.raises(UnexpectedResponse) as info:
        client.recommend(bad, positive=[1], using="d", strategy=models.RecommendStrategy.AVERAGE_VECTOR,
                         query_filter=models.Filter(must=[models.FieldCondition(key="k", match=models.MatchValue(
                             value="a"))]), lookup_from=models.LookupLocation(collection="missing_collection"))
    assert info.value.status_code == 404 and "missing_collection" in info.value.content.decode()
    assert len(client.query_points(bad, query=[1.0, 1.0, 1.0], using="d", limit=5).points) == 5
