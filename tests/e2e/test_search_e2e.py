"""The search family end to end: `/points/search` (+batch, +groups), the distance matrix,
`/points/recommend` (+batch, +groups) and `/points/discover` (+batch), through the real
server with qdrant-client 1.15.1 and raw HTTP. Expected results are computed here by brute
force with numpy, from Qdrant's definitions of every metric and query kind."""

import numpy as np
import pytest
from qdrant_client import models
from qdrant_client.http import models as rest
from searchref import ascending, assert_ranked, ids, normalised, reported, sigma, similarity  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.filterwarnings("ignore:.*deprecated:DeprecationWarning")]

N = 60
DIM = 4
COLORS = ["red", "green", "blue"]
DISTANCES = ["Cosine", "Dot", "Euclid", "Manhattan"]


# -- reference computations ------------------------------------------------------------------


def fast_sigmoid(x):
    return x / (1 + np.abs(x))


# -- data ------------------------------------------------------------------------------------


def make_data(seed=0, n=N, dim=DIM):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, dim)).astype(np.float32)


def payload_of(i):
    return {"i": i, "color": COLORS[i % 3], "n": i % 5, "tags": [f"t{i % 2}", f"t{i % 4}"], "flag": i % 2 == 0}


@pytest.fixture
def name(request):
    return request.node.name.replace("[", "_").replace("]", "").replace("-", "_")[:60]


def create_single(client, name, distance="Dot", data=None, datatype=None, payload=True):
    data = make_data() if data is None else data
    client.create_collection(
        name, vectors_config=models.VectorParams(size=data.shape[1], distance=models.Distance(distance),
                                                 datatype=datatype)
    )
    client.upsert(
        name,
        [models.PointStruct(id=i, vector=data[i].tolist(), payload=payload_of(i) if payload else None)
         for i in range(len(data))],
        wait=True,
    )
    return data


def stored_vectors(client, name, using=None):
    """The vectors as the server stores them (normalised for Cosine, rounded for float16)."""
    records, _ = client.scroll(name, limit=10_000, with_vectors=True)
    out = {}
    for r in records:
        v = r.vector if using is None else r.vector[using]
        out[r.id] = v
    return out


def dense_reference(data, q, distance, subset=None):
    sims = similarity(data, q, distance)
    scores = reported(sims, distance)
    keep = range(len(data)) if subset is None else subset
    return {i: float(scores[i]) for i in keep}


# -- /points/search --------------------------------------------------------------------------


@pytest.mark.parametrize("distance", DISTANCES)
def test_search_every_distance(client, http, name, distance):
    data = create_single(client, name, distance)
    q = np.random.default_rng(7).normal(size=DIM).astype(np.float32)
    ref = dense_reference(data, q, distance)
    hits = client.search(name, query_vector=q.tolist(), limit=7)
    assert_ranked(hits, ref, 7, asc=ascending(distance))
    scores = [h.score for h in hits]
    assert scores == (sorted(scores) if ascending(distance) else sorted(scores, reverse=True))
    r = http.post(f"/collections/{name}/points/search", json={"vector": q.tolist(), "limit": 7})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ok" and isinstance(body["time"], float)
    points = [rest.ScoredPoint.model_validate(p) for p in body["result"]]
    assert ids(points) == ids(hits)
    assert all(p.payload is None and p.vector is None and p.version >= 1 for p in points)


@pytest.mark.parametrize("distance", ["Dot", "Euclid"])
def test_search_filter_offset_threshold(client, http, name, distance):
    data = create_single(client, name, distance)
    q = data[3] * 0.5 + 0.1
    red = [i for i in range(N) if i % 3 == 0]
    ref = dense_reference(data, q, distance, subset=red)
    flt = models.Filter(must=[models.FieldCondition(key="color", match=models.MatchValue(value="red"))])
    asc = ascending(distance)
    full = client.search(name, query_vector=q.tolist(), query_filter=flt, limit=len(red))
    assert_ranked(full, ref, len(red), asc=asc)
    page = client.search(name, query_vector=q.tolist(), query_filter=flt, limit=4, offset=3)
    assert ids(page) == ids(full)[3:7]
    # the threshold keeps scores at least it (similarities) or at most it (distances)
    threshold = full[5].score
    kept = client.search(name, query_vector=q.tolist(), query_filter=flt, limit=100, score_threshold=threshold)
    expected = [i for i, s in ref.items() if (s <= threshold if asc else s >= threshold)]
    assert sorted(ids(kept)) == sorted(expected) and len(kept) == 6
    r = http.post(f"/collections/{name}/points/search", json={
        "vector": q.tolist(), "limit": 100, "score_threshold": threshold,
        "filter": {"must": [{"key": "color", "match": {"value": "red"}}]}, "offset": 2,
    })
    assert [p["id"] for p in r.json()["result"]] == ids(kept)[2:]


def test_search_with_payload_and_vector_selectors(client, http, name):
    client.create_collection(name, vectors_config={
        "a": models.VectorParams(size=2, distance=models.Distance.DOT),
        "b": models.VectorParams(size=3, distance=models.Distance.DOT),
    }, sparse_vectors_config={"s": models.SparseVectorParams()})
    client.upsert(name, [
        models.PointStruct(id=i, vector={"a": [1.0, float(i)], "b": [0.0, 1.0, 2.0],
                                         "s": models.SparseVector(indices=[i], values=[1.0])},
                           payload={"x": i, "y": {"z": i * 2, "w": "k"}, "s": "str"})
        for i in range(1, 4)
    ], wait=True)
    url = f"/collections/{name}/points/search"
    base = {"vector": {"name": "a", "vector": [0.0, 1.0]}, "limit": 1}

    def top(**extra):
        r = http.post(url, json=dict(base, **extra))
        assert r.status_code == 200, r.text
        return r.json()["result"][0]

    assert top()["id"] == 3
    assert top(with_payload=True)["payload"] == {"x": 3, "y": {"z": 6, "w": "k"}, "s": "str"}
    assert "payload" not in top(with_payload=False)  # Qdrant leaves out an absent payload
    assert top(with_payload=["x", "y.z"])["payload"] == {"x": 3, "y": {"z": 6}}
    assert top(with_payload={"include": ["s"]})["payload"] == {"s": "str"}
    assert top(with_payload={"exclude": ["y"]})["payload"] == {"x": 3, "s": "str"}
    everything = top(with_vector=True)["vector"]
    assert everything["a"] == [1.0, 3.0] and everything["b"] == [0.0, 1.0, 2.0]
    assert everything["s"] == {"indices": [3], "values": [1.0]}
    assert "vector" not in top(with_vector=False)
    assert set(top(with_vector=["b", "s"])["vector"]) == {"b", "s"}
    # the same through the client
    hit = client.search(name, query_vector=("a", [0.0, 1.0]), limit=1, with_payload=models.PayloadSelectorExclude(
        exclude=["x", "s"]), with_vectors=["a"])[0]
    assert hit.payload == {"y": {"z": 6, "w": "k"}} and hit.vector == {"a": [1.0, 3.0]}


def test_search_named_vectors(client, http, name):
    rng = np.random.default_rng(3)
    cos, euc = rng.normal(size=(30, 3)), rng.normal(size=(30, 5))
    client.create_collection(name, vectors_config={
        "cos": models.VectorParams(size=3, distance=models.Distance.COSINE),
        "euc": models.VectorParams(size=5, distance=models.Distance.EUCLID),
    })
    client.upsert(name, [models.PointStruct(id=i, vector={"cos": cos[i].tolist(), "euc": euc[i].tolist()})
                         for i in range(30)], wait=True)
    qc, qe = rng.normal(size=3), rng.normal(size=5)
    hits = client.search(name, query_vector=models.NamedVector(name="cos", vector=qc.tolist()), limit=5)
    assert_ranked(hits, dense_reference(cos, qc, "Cosine"), 5)
    hits = client.search(name, query_vector=("euc", qe.tolist()), limit=5)
    assert_ranked(hits, dense_reference(euc, qe, "Euclid"), 5, asc=True)
    r = http.post(f"/collections/{name}/points/search", json={"vector": {"name": "euc", "vector": qe.tolist()},
                                                             "limit": 5})
    assert ids(r.json()["result"]) == ids(hits)
    # the universal query's `using` reaches the same points
    r = http.post(f"/collections/{name}/points/query", json={"query": qe.tolist(), "using": "euc", "limit": 5})
    assert ids(r.json()["result"]["points"]) == ids(hits)


def test_search_batch(client, http, name):
    data = create_single(client, name, "Cosine")
    rng = np.random.default_rng(11)
    q1, q2 = rng.normal(size=DIM), rng.normal(size=DIM)
    blue = models.Filter(must=[models.FieldCondition(key="color", match=models.MatchValue(value="blue"))])
    results = client.search_batch(name, requests=[
        models.SearchRequest(vector=q1.tolist(), limit=5),
        models.SearchRequest(vector=q2.tolist(), limit=3, filter=blue, with_payload=["color"]),
        models.SearchRequest(vector=q1.tolist(), limit=4, offset=2),
        models.SearchRequest(vector=q2.tolist(), limit=3, score_threshold=0.5),
    ])
    assert len(results) == 4
    assert_ranked(results[0], dense_reference(data, q1, "Cosine"), 5)
    assert_ranked(results[1], dense_reference(data, q2, "Cosine", subset=range(2, N, 3)), 3)
    assert all(p.payload == {"color": "blue"} for p in results[1])
    assert ids(results[2]) == ids(client.search(name, query_vector=q1.tolist(), limit=6))[2:]
    ref2 = dense_reference(data, q2, "Cosine")
    assert_ranked(results[3], {i: s for i, s in ref2.items() if s >= 0.5}, 3)
    r = http.post(f"/collections/{name}/points/search/batch", json={"searches": [
        {"vector": q1.tolist(), "limit": 5}, {"vector": q2.tolist(), "limit": 2},
    ]})
    assert r.status_code == 200, r.text
    raw = r.json()["result"]
    assert [ids(x) for x in raw] == [ids(results[0]), ids(client.search(name, query_vector=q2.tolist(), limit=2))]
    assert http.post(f"/collections/{name}/points/search/batch", json={"searches": []}).json()["result"] == []


# -- datatypes, multi-vectors, sparse vectors ------------------------------------------------


def test_float16_storage(client, name):
    # values exactly representable in float16 (multiples of 1/8): only storage rounding matters
    rng = np.random.default_rng(5)
    data = (rng.integers(-16, 16, size=(40, DIM)) / 8).astype(np.float32)
    create_single(client, name, "Dot", data=data, datatype=models.Datatype.FLOAT16)
    q = (rng.integers(-16, 16, size=DIM) / 8).astype(np.float32)
    hits = client.search(name, query_vector=q.tolist(), limit=8)
    assert_ranked(hits, dense_reference(data, q, "Dot"), 8)


def test_float16_cosine(client, name):
    data = make_data(seed=8)
    create_single(client, name, "Cosine", data=data, datatype=models.Datatype.FLOAT16)
    stored = stored_vectors(client, name)
    # stored Cosine vectors are normalised then rounded to float16
    assert np.allclose(stored[4], normalised(data[4]).astype(np.float16), atol=0)
    q = np.random.default_rng(9).normal(size=DIM)
    qh = normalised(q).astype(np.float16).astype(np.float64)
    ref = {i: float(np.dot(np.asarray(v, np.float64), qh)) for i, v in stored.items()}
    # float16 precision: the query is rounded to float16 by Qdrant, see the strict test below
    assert_ranked(client.search(name, query_vector=q.tolist(), limit=10), ref, 10, rel=2e-3, abs_=2e-3)


def test_float16_query_is_rounded_to_float16(client, name):
    data = np.array([[1.0, 1.0], [0.5, 0.25]], np.float32)
    create_single(client, name, "Dot", data=data, datatype=models.Datatype.FLOAT16)
    q = np.array([1 / 3, 2 / 3], np.float32)
    expected = float(np.dot(q.astype(np.float16).astype(np.float32), data[0]))  # 0.99975586, not 1.0
    hit = client.search(name, query_vector=q.tolist(), limit=1)[0]
    assert hit.id == 0 and hit.score == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("distance", ["Cosine", "Dot", "Euclid"])
def test_uint8_storage(client, name, distance):
    rng = np.random.default_rng(12)
    data = rng.integers(0, 256, size=(40, 6)).astype(np.float32)
    create_single(client, name, distance, data=data, datatype=models.Datatype.UINT8)
    stored = stored_vectors(client, name)
    assert stored[0] == data[0].tolist()  # uint8 vectors are not normalised, even for Cosine
    raw_q = rng.uniform(-20, 300, size=6)
    q = np.clip(raw_q, 0, 255).astype(np.uint8).astype(np.float64)  # queries are cast to the storage type
    hits = client.search(name, query_vector=raw_q.tolist(), limit=6)
    assert_ranked(hits, dense_reference(data, q, distance), 6, asc=ascending(distance))


def maxsim(doc, query, distance):
    """MaxSim: for every query row, the best similarity to a document row, summed."""
    doc, query = np.asarray(doc, np.float64), np.asarray(query, np.float64)
    return float(sum(similarity(doc, row, distance).max() for row in query))


@pytest.mark.parametrize("distance", ["Dot", "Cosine", "Euclid"])
def test_multivector_max_sim(client, http, name, distance):
    rng = np.random.default_rng(21)
    docs = [rng.normal(size=(int(rng.integers(1, 4)), 3)) for _ in range(25)]
    client.create_collection(name, vectors_config={"m": models.VectorParams(
        size=3, distance=models.Distance(distance),
        multivector_config=models.MultiVectorConfig(comparator=models.MultiVectorComparator.MAX_SIM))})
    client.upsert(name, [models.PointStruct(id=i, vector={"m": d.tolist()}) for i, d in enumerate(docs)], wait=True)
    query = rng.normal(size=(2, 3))
    # a nearest multi-vector query is post-processed like any nearest query (Qdrant's
    # `is_distance_scored`): Euclid reports sqrt(|summed similarities|), ascending
    ref = {i: float(reported(maxsim(d, query, distance), distance)) for i, d in enumerate(docs)}
    asc = ascending(distance)
    res = client.query_points(name, query=query.tolist(), using="m", limit=5)
    assert_ranked(res.points, ref, 5, asc=asc)
    r = http.post(f"/collections/{name}/points/query", json={"query": {"nearest": query.tolist()}, "using": "m",
                                                            "limit": 5})
    assert ids(r.json()["result"]["points"]) == ids(res.points)
    # a single dense vector queries a multi-vector as a one-row multi-vector
    single = client.query_points(name, query=query[0].tolist(), using="m", limit=5)
    ref1 = {i: float(reported(maxsim(d, query[:1], distance), distance)) for i, d in enumerate(docs)}
    assert_ranked(single.points, ref1, 5, asc=asc)


def sparse_dot(a: dict, b: dict) -> float:
    return float(sum(v * b[k] for k, v in a.items() if k in b))


def make_sparse(rng, n, vocab=30):
    out = []
    for _ in range(n):
        k = int(rng.integers(1, 6))
        idx = rng.choice(vocab, size=k, replace=False)
        out.append({int(i): float(v) for i, v in zip(idx, rng.uniform(0.1, 2.0, size=k))})
    return out


def upsert_sparse(client, name, docs, vector="s"):
    client.upsert(name, [
        models.PointStruct(id=i, vector={vector: models.SparseVector(indices=list(d), values=list(d.values()))})
        for i, d in enumerate(docs)
    ], wait=True)


def test_sparse_search_only_overlapping_points(client, http, name):
    rng = np.random.default_rng(31)
    docs = make_sparse(rng, 50)
    client.create_collection(name, vectors_config={}, sparse_vectors_config={"s": models.SparseVectorParams()})
    upsert_sparse(client, name, docs)
    query = {3: 1.0, 17: 0.5, 29: 2.0}
    ref = {i: sparse_dot(d, query) for i, d in enumerate(docs) if set(d) & set(query)}
    hits = client.search(name, query_vector=models.NamedSparseVector(
        name="s", vector=models.SparseVector(indices=list(query), values=list(query.values()))), limit=100)
    assert_ranked(hits, ref, 100)
    assert len(hits) == len(ref) < 50  # points sharing no index with the query are not results
    r = http.post(f"/collections/{name}/points/search", json={
        "vector": {"name": "s", "vector": {"indices": [29, 3, 17], "values": [2.0, 1.0, 0.5]}}, "limit": 3})
    assert r.status_code == 200, r.text
    assert_ranked(r.json()["result"], ref, 3)


def test_sparse_idf_modifier(client, http, name):
    rng = np.random.default_rng(32)
    docs = make_sparse(rng, 60, vocab=12)
    client.create_collection(name, vectors_config={}, sparse_vectors_config={
        "s": models.SparseVectorParams(modifier=models.Modifier.IDF)})
    upsert_sparse(client, name, docs)
    client.upsert(name, [models.PointStruct(id=1000, vector={})], wait=True)  # no sparse vector: not counted
    query = {0: 1.0, 5: 0.7, 11: 1.5}
    total = len(docs)
    idf = {k: np.log((total - sum(k in d for d in docs) + 0.5) / (sum(k in d for d in docs) + 0.5) + 1.0)
           for k in query}
    weighted = {k: v * idf[k] for k, v in query.items()}
    ref = {i: sparse_dot(d, weighted) for i, d in enumerate(docs) if set(d) & set(query)}
    res = client.query_points(name, query=models.SparseVector(indices=list(query), values=list(query.values())),
                              using="s", limit=10)
    assert_ranked(res.points, ref, 10)
    # the plain dot product would rank differently: the weights matter
    plain = {i: sparse_dot(d, query) for i, d in enumerate(docs) if set(d) & set(query)}
    assert [p.score for p in res.points] != pytest.approx(sorted(plain.values(), reverse=True)[:10], rel=1e-3)
    r = http.post(f"/collections/{name}/points/search", json={
        "vector": {"name": "s", "vector": {"indices": list(query), "values": list(query.values())}}, "limit": 10})
    assert_ranked(r.json()["result"], ref, 10)


# -- groups ----------------------------------------------------------------------------------


def expected_groups(ranked_ids, values_of, group_size, limit):
    """Qdrant's groups from hits best first: the first `limit` group values met, each with
    its best `group_size` hits; a point with several values joins each of their groups."""
    groups = {}
    for point_id in ranked_ids:
        for value in dict.fromkeys(values_of(point_id)):
            if value not in groups:
                if len(groups) >= limit:
                    continue
                groups[value] = []
            if len(groups[value]) < group_size:
                groups[value].append(point_id)
    return groups


def group_pairs(result):
    groups = result.groups if hasattr(result, "groups") else [rest.PointGroup.model_validate(g)
                                                              for g in result["groups"]]
    return [(g.id, ids(g.hits)) for g in groups]


def test_search_groups_keyword_integer_and_arrays(client, http, name):
    data = create_single(client, name, "Dot")
    q = np.random.default_rng(41).normal(size=DIM)
    ref = dense_reference(data, q, "Dot")
    ranked = sorted(ref, key=ref.get, reverse=True)

    res = client.search_groups(name, query_vector=q.tolist(), group_by="color", limit=2, group_size=4,
                               with_payload=["color"])
    want = expected_groups(ranked, lambda i: [COLORS[i % 3]], 4, 2)
    assert group_pairs(res) == list(want.items())
    assert all(h.payload == {"color": g.id} for g in res.groups for h in g.hits)
    assert_ranked(res.groups[0].hits, {i: ref[i] for i in want[res.groups[0].id]}, 4)

    res = client.search_groups(name, query_vector=q.tolist(), group_by="n", limit=10, group_size=2)
    assert group_pairs(res) == list(expected_groups(ranked, lambda i: [i % 5], 2, 10).items())
    assert {g.id for g in res.groups} == {0, 1, 2, 3, 4} and all(isinstance(g.id, int) for g in res.groups)

    # array values: a point joins the group of every value it holds
    r = http.post(f"/collections/{name}/points/search/groups", json={
        "vector": q.tolist(), "group_by": "tags", "limit": 3, "group_size": 5})
    assert r.status_code == 200, r.text
    raw = rest.GroupsResult.model_validate(r.json()["result"])
    want = expected_groups(ranked, lambda i: [f"t{i % 2}", f"t{i % 4}"], 5, 3)
    assert group_pairs(raw) == list(want.items())
    members = [h for g in raw.groups for h in ids(g.hits)]
    assert len(members) > len(set(members))  # some points are in two groups

    # a filter and a threshold restrict the hits grouped; points without the key join no group
    client.upsert(name, [models.PointStruct(id=1000, vector=(q * 10).tolist(), payload={"other": 1})], wait=True)
    flt = models.Filter(must_not=[models.FieldCondition(key="color", match=models.MatchValue(value="red"))])
    res = client.search_groups(name, query_vector=q.tolist(), group_by="color", limit=5, group_size=3,
                               query_filter=flt, score_threshold=0.0)
    kept = [i for i in ranked if i % 3 != 0 and ref[i] >= 0.0]
    assert group_pairs(res) == list(expected_groups(kept, lambda i: [COLORS[i % 3]], 3, 5).items())


def test_search_groups_with_lookup(client, http, name):
    data = create_single(client, name, "Dot")
    other = name + "_lookup"
    client.create_collection(other, vectors_config={"v": models.VectorParams(size=2, distance=models.Distance.DOT)})
    client.upsert(other, [models.PointStruct(id=n, vector={"v": [float(n), 1.0]}, payload={"label": f"n={n}"})
                          for n in range(4)], wait=True)  # no point 4: its group has no lookup
    q = np.random.default_rng(42).normal(size=DIM)
    ref = dense_reference(data, q, "Dot")
    ranked = sorted(ref, key=ref.get, reverse=True)
    want = expected_groups(ranked, lambda i: [i % 5], 2, 5)

    res = client.search_groups(name, query_vector=q.tolist(), group_by="n", limit=5, group_size=2, with_lookup=other)
    assert group_pairs(res) == list(want.items())
    for g in res.groups:
        if g.id == 4:
            assert g.lookup is None
        else:
            assert g.lookup.id == g.id and g.lookup.payload == {"label": f"n={g.id}"} and g.lookup.vector is None

    res = client.search_groups(name, query_vector=q.tolist(), group_by="n", limit=5, group_size=2,
                               with_lookup=models.WithLookup(collection=other, with_payload=False, with_vectors=True))
    looked = {g.id: g.lookup for g in res.groups}
    assert looked[2].payload is None and looked[2].vector == {"v": [2.0, 1.0]}

    r = http.post(f"/collections/{name}/points/search/groups", json={
        "vector": q.tolist(), "group_by": "n", "limit": 5, "group_size": 2,
        "with_lookup": {"collection": other, "with_payload": ["label"], "with_vectors": ["v"]}})
    raw = rest.GroupsResult.model_validate(r.json()["result"])
    assert {g.id: g.lookup.payload for g in raw.groups if g.lookup} == {n: {"label": f"n={n}"} for n in range(4)}


# -- distance matrix -------------------------------------------------------------------------


def matrix_reference(vectors: dict, sampled, limit, distance):
    """For every sampled id: its `limit` nearest other sampled ids with reported scores."""
    out = {}
    for a in sampled:
        others = [b for b in sampled if b != a]
        sims = similarity(np.array([vectors[b] for b in others]), vectors[a], distance)
        out[a] = dict(zip(others, map(float, reported(sims, distance))))
    return out


@pytest.mark.parametrize("distance", ["Cosine", "Euclid"])
def test_matrix_pairs_and_offsets(client, http, name, distance):
    data = make_data(seed=51, n=30)
    create_single(client, name, distance, data=data)
    stored = stored_vectors(client, name)
    asc = ascending(distance)
    flt = models.Filter(must=[models.FieldCondition(key="flag", match=models.MatchValue(value=True))])
    # sample larger than the filtered set: every matching point is sampled
    res = client.search_matrix_pairs(name, query_filter=flt, sample=50, limit=3)
    by_a = {}
    for p in res.pairs:
        by_a.setdefault(p.a, []).append((p.b, p.score))
    assert sorted(by_a) == list(range(0, 30, 2))
    ref = matrix_reference(stored, sorted(by_a), 3, distance)
    for a, found in by_a.items():
        assert_ranked(found, ref[a], 3, asc=asc)

    # offsets: rows and columns index `ids`
    res = client.search_matrix_offsets(name, sample=8, limit=2)
    assert len(res.ids) == 8 and len(set(res.ids)) == 8
    assert len(res.offsets_row) == len(res.offsets_col) == len(res.scores) == 16
    ref = matrix_reference(stored, res.ids, 2, distance)
    rows = {}
    for row, col, score in zip(res.offsets_row, res.offsets_col, res.scores):
        rows.setdefault(row, []).append((res.ids[col], score))
    assert sorted(rows) == list(range(8))
    for row, found in rows.items():
        assert_ranked(found, ref[res.ids[row]], 2, asc=asc)

    r = http.post(f"/collections/{name}/points/search/matrix/offsets", json={"sample": 5, "limit": 1})
    assert r.status_code == 200, r.text
    raw = rest.SearchMatrixOffsetsResponse.model_validate(r.json()["result"])
    assert len(raw.ids) == 5 and len(raw.scores) == 5
    r = http.post(f"/collections/{name}/points/search/matrix/pairs", json={})  # defaults: sample 10, limit 3
    raw = rest.SearchMatrixPairsResponse.model_validate(r.json()["result"])
    assert len(raw.pairs) == 30 and len({p.a for p in raw.pairs}) == 10


def test_matrix_using_named_vector(client, http, name):
    rng = np.random.default_rng(52)
    a, b = rng.normal(size=(12, 2)), rng.normal(size=(12, 3))
    client.create_collection(name, vectors_config={
        "a": models.VectorParams(size=2, distance=models.Distance.DOT),
        "b": models.VectorParams(size=3, distance=models.Distance.MANHATTAN)})
    client.upsert(name, [models.PointStruct(id=i, vector={"a": a[i].tolist(), "b": b[i].tolist()}) for i in range(12)]
                  + [models.PointStruct(id=100 + i, vector={"a": [1.0, 1.0]}) for i in range(5)], wait=True)
    # only points having vector "b" are sampled
    res = client.search_matrix_pairs(name, using="b", sample=100, limit=2)
    by_a = {}
    for p in res.pairs:
        by_a.setdefault(p.a, []).append((p.b, p.score))
    assert sorted(by_a) == list(range(12))
    ref = matrix_reference({i: b[i] for i in range(12)}, list(range(12)), 2, "Manhattan")
    for point, found in by_a.items():
        assert_ranked(found, ref[point], 2, asc=True)
    r = http.post(f"/collections/{name}/points/search/matrix/pairs", json={"using": "nope"})
    assert r.status_code == 400 and "nope" in r.json()["status"]["error"]


# -- recommend -------------------------------------------------------------------------------


def reco_reference(vectors: dict, positives, negatives, strategy, distance, exclude=()):
    """Expected recommend scores of every stored point from example vectors."""
    out = {}
    pos = [np.asarray(p, np.float64) for p in positives]
    neg = [np.asarray(n, np.float64) for n in negatives]
    if strategy == "average_vector":
        q = np.mean(pos, axis=0)
        if neg:
            q = q + q - np.mean(neg, axis=0)
        for i, v in vectors.items():
            out[i] = float(reported(similarity(np.asarray(v)[None], q, distance)[0], distance))
    else:
        for i, v in vectors.items():
            v = np.asarray(v, np.float64)[None]
            ps = [similarity(v, p, distance)[0] for p in pos]
            ns = [similarity(v, n, distance)[0] for n in neg]
            if strategy == "sum_scores":
                out[i] = float(sum(ps) - sum(ns))
            else:
                bp, bn = max(ps, default=-np.inf), max(ns, default=-np.inf)
                out[i] = float(sigma(bp) if bp > bn else -sigma(bn))
    return {i: s for i, s in out.items() if i not in exclude}


@pytest.mark.parametrize("distance", ["Cosine", "Euclid"])
@pytest.mark.parametrize("strategy", ["average_vector", "best_score", "sum_scores"])
def test_recommend_by_ids(client, http, name, strategy, distance):
    create_single(client, name, distance)
    stored = stored_vectors(client, name)
    pos, neg = [1, 7, 12], [4, 30]
    ref = reco_reference(stored, [stored[i] for i in pos], [stored[i] for i in neg], strategy, distance,
                         exclude=pos + neg)
    asc = strategy == "average_vector" and ascending(distance)  # average_vector is a nearest query
    strategy_ = models.RecommendStrategy(strategy)
    hits = client.recommend(name, positive=pos, negative=neg, strategy=strategy_, limit=8)
    assert_ranked(hits, ref, 8, asc=asc)
    assert not set(ids(hits)) & set(pos + neg)  # the examples are not results
    r = http.post(f"/collections/{name}/points/recommend", json={
        "positive": pos, "negative": neg, "strategy": strategy, "limit": 8, "offset": 2, "with_payload": ["i"]})
    assert r.status_code == 200, r.text
    raw = [rest.ScoredPoint.model_validate(p) for p in r.json()["result"]]
    assert ids(raw) == ids(client.recommend(name, positive=pos, negative=neg, strategy=strategy_, limit=10))[2:]
    assert all(p.payload == {"i": p.id} for p in raw)


@pytest.mark.parametrize("strategy", ["average_vector", "best_score", "sum_scores"])
def test_recommend_by_raw_vectors_and_mixed(client, http, name, strategy):
    data = create_single(client, name, "Dot")
    rng = np.random.default_rng(61)
    raw_pos, raw_neg = rng.normal(size=DIM), rng.normal(size=DIM)
    stored = {i: data[i] for i in range(N)}
    ref = reco_reference(stored, [raw_pos, data[5]], [raw_neg], strategy, "Dot", exclude=[5])
    hits = client.recommend(name, positive=[raw_pos.tolist(), 5], negative=[raw_neg.tolist()],
                            strategy=models.RecommendStrategy(strategy), limit=6)
    assert_ranked(hits, ref, 6)
    # only raw vectors: nothing is excluded
    ref = reco_reference(stored, [raw_pos], [raw_neg], strategy, "Dot")
    r = http.post(f"/collections/{name}/points/recommend", json={
        "positive": [raw_pos.tolist()], "negative": [raw_neg.tolist()], "strategy": strategy, "limit": 6})
    assert_ranked(r.json()["result"], ref, 6)


@pytest.mark.parametrize("distance", ["Dot", "Manhattan"])
def test_recommend_best_score_negatives_only(client, http, name, distance):
    create_single(client, name, distance)
    stored = stored_vectors(client, name)
    neg = [2, 9]
    ref = reco_reference(stored, [], [stored[i] for i in neg], "best_score", distance, exclude=neg)
    hits = client.recommend(name, negative=neg, strategy=models.RecommendStrategy.BEST_SCORE, limit=5)
    assert_ranked(hits, ref, 5)
    assert all(h.score < 0 for h in hits)  # -sigma(best negative): the farthest from both come first
    r = http.post(f"/collections/{name}/points/recommend", json={"negative": neg, "strategy": "sum_scores",
                                                                "limit": 5})
    assert_ranked(r.json()["result"], reco_reference(stored, [], [stored[i] for i in neg], "sum_scores", distance,
                                                     exclude=neg), 5)


def test_recommend_threshold_on_a_distance_metric(client, http, name):
    """best_score and sum_scores report larger-is-better scores on every metric: the
    threshold keeps scores at least it, even for Euclid."""
    create_single(client, name, "Euclid")
    stored = stored_vectors(client, name)
    ref = reco_reference(stored, [stored[1]], [stored[2]], "best_score", "Euclid", exclude=[1, 2])
    values = sorted(ref.values(), reverse=True)
    threshold = (values[4] + values[5]) / 2
    r = http.post(f"/collections/{name}/points/recommend", json={
        "positive": [1], "negative": [2], "strategy": "best_score", "limit": 50, "score_threshold": threshold})
    assert_ranked(r.json()["result"], {i: s for i, s in ref.items() if s >= threshold}, 50)
    assert len(r.json()["result"]) == 5


def test_recommend_filter_threshold_and_selectors(client, name):
    data = create_single(client, name, "Dot")
    stored = {i: data[i] for i in range(N)}
    flt = models.Filter(must=[models.FieldCondition(key="n", range=models.Range(gte=1, lte=3))])
    allowed = [i for i in range(N) if 1 <= i % 5 <= 3 and i not in (3, 8)]
    ref = reco_reference({i: stored[i] for i in allowed}, [data[3]], [data[8]], "sum_scores", "Dot")
    hits = client.recommend(name, positive=[3], negative=[8], strategy=models.RecommendStrategy.SUM_SCORES,
                            query_filter=flt, limit=50,
                            score_threshold=0.0, with_payload=models.PayloadSelectorInclude(include=["n"]),
                            with_vectors=True)
    assert_ranked(hits, {i: s for i, s in ref.items() if s >= 0.0}, 50)
    assert all(1 <= h.payload["n"] <= 3 and set(h.payload) == {"n"} and len(h.vector) == DIM for h in hits)


def test_recommend_lookup_from_other_collection(client, http, name):
    create_single(client, name, "Cosine")
    other = name + "_src"
    rng = np.random.default_rng(62)
    src = rng.normal(size=(5, DIM))
    client.create_collection(other, vectors_config={"emb": models.VectorParams(size=DIM,
                                                                               distance=models.Distance.DOT)})
    client.upsert(other, [models.PointStruct(id=i, vector={"emb": src[i].tolist()}) for i in range(5)], wait=True)
    stored = stored_vectors(client, name)
    # ids name points of the other collection (vector "emb"); this collection's 0 and 1 stay results
    ref = reco_reference(stored, [src[0]], [src[1]], "best_score", "Cosine")
    hits = client.recommend(name, positive=[0], negative=[1], strategy=models.RecommendStrategy.BEST_SCORE, limit=N,
                            lookup_from=models.LookupLocation(collection=other, vector="emb"))
    assert_ranked(hits, ref, N)
    assert {0, 1} <= set(ids(hits))
    r = http.post(f"/collections/{name}/points/recommend", json={
        "positive": [0, 2], "limit": 5, "lookup_from": {"collection": other, "vector": "emb"}})
    assert r.status_code == 200, r.text
    assert_ranked(r.json()["result"], reco_reference(stored, [src[0], src[2]], [], "average_vector", "Cosine"), 5)
    # an id missing from the other collection is an error naming it
    r = http.post(f"/collections/{name}/points/recommend", json={
        "positive": [40], "limit": 5, "lookup_from": {"collection": other, "vector": "emb"}})
    assert r.status_code == 404 and "40" in r.json()["status"]["error"]


def test_recommend_named_vector_using(client, http, name):
    rng = np.random.default_rng(63)
    a, b = rng.normal(size=(20, 2)), rng.normal(size=(20, 3))
    client.create_collection(name, vectors_config={
        "a": models.VectorParams(size=2, distance=models.Distance.DOT),
        "b": models.VectorParams(size=3, distance=models.Distance.EUCLID)})
    client.upsert(name, [models.PointStruct(id=i, vector={"a": a[i].tolist(), "b": b[i].tolist()})
                         for i in range(20)], wait=True)
    hits = client.recommend(name, positive=[0, 1], using="b", limit=4)
    ref = reco_reference({i: b[i] for i in range(20)}, [b[0], b[1]], [], "average_vector", "Euclid", exclude=[0, 1])
    assert_ranked(hits, ref, 4, asc=True)


def test_recommend_sparse(client, name):
    rng = np.random.default_rng(64)
    docs = make_sparse(rng, 30, vocab=10)
    client.create_collection(name, vectors_config={}, sparse_vectors_config={"s": models.SparseVectorParams()})
    upsert_sparse(client, name, docs)
    hits = client.recommend(name, positive=[0, 1], negative=[2], using="s",
                            strategy=models.RecommendStrategy.SUM_SCORES, limit=5)
    ref = {i: sparse_dot(d, docs[0]) + sparse_dot(d, docs[1]) - sparse_dot(d, docs[2])
           for i, d in enumerate(docs) if i > 2}
    assert_ranked(hits, ref, 5)
    # average_vector: a nearest query on avg(positive) + (avg(positive) - avg(negative))
    merged = {}
    for d, weight in ((docs[0], 1.0), (docs[1], 1.0), (docs[2], -1.0)):
        for k, v in d.items():
            merged[k] = merged.get(k, 0.0) + weight * v
    ref = {i: sparse_dot(d, merged) for i, d in enumerate(docs) if i > 2 and set(d) & set(merged)}
    hits = client.recommend(name, positive=[0, 1], negative=[2], using="s", limit=100)
    assert_ranked(hits, ref, 100)


def test_recommend_batch(client, http, name):
    create_single(client, name, "Dot")
    stored = stored_vectors(client, name)
    results = client.recommend_batch(name, requests=[
        models.RecommendRequest(positive=[1], limit=3),
        models.RecommendRequest(positive=[2], negative=[3], strategy=models.RecommendStrategy.BEST_SCORE, limit=4),
        models.RecommendRequest(negative=[4], strategy=models.RecommendStrategy.SUM_SCORES, limit=2, with_payload=True),
    ])
    assert_ranked(results[0], reco_reference(stored, [stored[1]], [], "average_vector", "Dot", exclude=[1]), 3)
    assert_ranked(results[1], reco_reference(stored, [stored[2]], [stored[3]], "best_score", "Dot",
                                             exclude=[2, 3]), 4)
    assert_ranked(results[2], reco_reference(stored, [], [stored[4]], "sum_scores", "Dot", exclude=[4]), 2)
    assert results[2][0].payload == payload_of(results[2][0].id)
    r = http.post(f"/collections/{name}/points/recommend/batch", json={"searches": [
        {"positive": [1], "limit": 3}, {"positive": [2], "negative": [3], "strategy": "best_score", "limit": 4}]})
    assert [ids(x) for x in r.json()["result"]] == [ids(results[0]), ids(results[1])]


def test_recommend_groups(client, http, name):
    create_single(client, name, "Dot")
    stored = stored_vectors(client, name)
    ref = reco_reference(stored, [stored[0], stored[10]], [stored[20]], "best_score", "Dot", exclude=[0, 10, 20])
    ranked = sorted(ref, key=ref.get, reverse=True)
    res = client.recommend_groups(name, group_by="color", positive=[0, 10], negative=[20],
                                  strategy=models.RecommendStrategy.BEST_SCORE,
                                  limit=3, group_size=2, with_lookup=None)
    assert group_pairs(res) == list(expected_groups(ranked, lambda i: [COLORS[i % 3]], 2, 3).items())
    r = http.post(f"/collections/{name}/points/recommend/groups", json={
        "positive": [0, 10], "negative": [20], "strategy": "best_score", "group_by": "n", "limit": 2,
        "group_size": 3, "with_payload": ["n"]})
    assert r.status_code == 200, r.text
    raw = rest.GroupsResult.model_validate(r.json()["result"])
    assert group_pairs(raw) == list(expected_groups(ranked, lambda i: [i % 5], 3, 2).items())
    assert all(h.payload == {"n": g.id} for g in raw.groups for h in g.hits)


# -- discover --------------------------------------------------------------------------------


def discover_reference(vectors: dict, target, context, distance, exclude=()):
    out = {}
    for i, v in vectors.items():
        v = np.asarray(v, np.float64)[None]
        # +1 / -1 / 0 on a tie, as Qdrant's ContextPair::rank_by
        rank = sum(np.sign(similarity(v, p, distance)[0] - similarity(v, n, distance)[0]) for p, n in context)
        out[i] = float(rank + sigma(similarity(v, target, distance)[0]))
    return {i: s for i, s in out.items() if i not in exclude}


def context_reference(vectors: dict, context, distance, exclude=()):
    eps = float(np.finfo(np.float32).eps)
    out = {}
    for i, v in vectors.items():
        v = np.asarray(v, np.float64)[None]
        out[i] = float(sum(
            fast_sigmoid(min(similarity(v, p, distance)[0] - similarity(v, n, distance)[0] - eps, 0.0))
            for p, n in context))
    return {i: s for i, s in out.items() if i not in exclude}


@pytest.mark.parametrize("distance", ["Cosine", "Euclid"])
def test_discover_target_and_context(client, http, name, distance):
    create_single(client, name, distance)
    stored = stored_vectors(client, name)
    target, ctx = 3, [(10, 11), (12, 13)]
    ref = discover_reference(stored, stored[target], [(stored[p], stored[n]) for p, n in ctx], distance,
                             exclude=[3, 10, 11, 12, 13])
    hits = client.discover(name, target=target, context=[models.ContextExamplePair(positive=p, negative=n)
                                                         for p, n in ctx], limit=10)
    assert_ranked(hits, ref, 10)
    assert hits[0].score > 1  # the integer part is the context rank: the best points satisfy both pairs
    raw_target = np.random.default_rng(71).normal(size=DIM)
    ref = discover_reference(stored, raw_target, [(stored[10], stored[11])], distance, exclude=[10, 11])
    r = http.post(f"/collections/{name}/points/discover", json={
        "target": raw_target.tolist(), "context": [{"positive": 10, "negative": 11}], "limit": 5, "offset": 1,
        "filter": {"must_not": [{"key": "color", "match": {"value": "green"}}]}})
    assert r.status_code == 200, r.text
    filtered = {i: s for i, s in ref.items() if i % 3 != 1}
    expected = sorted(filtered, key=filtered.get, reverse=True)
    got = ids(r.json()["result"])
    assert len(got) == 5 and got == expected[1:6]


def test_discover_context_only(client, http, name):
    create_single(client, name, "Dot")
    stored = stored_vectors(client, name)
    ctx = [(1, 2), (3, 4), (5, 6)]
    ref = context_reference(stored, [(stored[p], stored[n]) for p, n in ctx], "Dot", exclude=[1, 2, 3, 4, 5, 6])
    hits = client.discover(name, context=[models.ContextExamplePair(positive=p, negative=n) for p, n in ctx],
                           limit=20)
    assert_ranked(hits, ref, 20)
    assert all(h.score <= 0.0 for h in hits)  # a loss: 0 is the best score
    raw = np.random.default_rng(72).normal(size=(2, DIM))
    r = http.post(f"/collections/{name}/points/discover", json={
        "context": [{"positive": raw[0].tolist(), "negative": raw[1].tolist()}], "limit": 10,
        "with_payload": True, "filter": {"must": [{"key": "n", "match": {"any": [0, 1]}}]}})
    assert r.status_code == 200, r.text
    ref = context_reference(stored, [(raw[0], raw[1])], "Dot")
    assert_ranked(r.json()["result"], {i: s for i, s in ref.items() if i % 5 in (0, 1)}, 10)
    assert all(p["payload"] == payload_of(p["id"]) for p in r.json()["result"])


def test_discover_lookup_from_and_batch(client, http, name):
    create_single(client, name, "Dot")
    stored = stored_vectors(client, name)
    other = name + "_src"
    src = np.random.default_rng(73).normal(size=(4, DIM))
    client.create_collection(other, vectors_config=models.VectorParams(size=DIM, distance=models.Distance.DOT))
    client.upsert(other, [models.PointStruct(id=i, vector=src[i].tolist()) for i in range(4)], wait=True)
    results = client.discover_batch(name, requests=[
        models.DiscoverRequest(target=0, context=[models.ContextExamplePair(positive=1, negative=2)], limit=4,
                               lookup_from=models.LookupLocation(collection=other)),
        models.DiscoverRequest(context=[models.ContextExamplePair(positive=1, negative=2)], limit=3),
        models.DiscoverRequest(target=7, limit=3),
    ])
    assert len(results) == 3
    assert_ranked(results[0], discover_reference(stored, src[0], [(src[1], src[2])], "Dot"), 4)
    assert_ranked(results[1], context_reference(stored, [(stored[1], stored[2])], "Dot", exclude=[1, 2]), 3)
    # a target without context: the sigmoid of the similarity, nearest first
    assert_ranked(results[2], discover_reference(stored, stored[7], [], "Dot", exclude=[7]), 3)
    r = http.post(f"/collections/{name}/points/discover/batch", json={"searches": [
        {"target": 7, "limit": 3}, {"target": 0, "context": [{"positive": 1, "negative": 2}], "limit": 4,
                                    "lookup_from": {"collection": other}}]})
    assert r.status_code == 200, r.text
    assert [ids(x) for x in r.json()["result"]] == [ids(results[2]), ids(results[0])]


def test_lookup_from_without_vector_name_reads_the_default_vector(client, http, name):
    """recommend and discover read `lookup_from.vector`, else the default vector (not
    `using`, as the query API does): Qdrant's RetrieveRequest::get_search_vector_name."""
    client.create_collection(name, vectors_config={"x": models.VectorParams(size=2, distance=models.Distance.DOT)})
    client.upsert(name, [models.PointStruct(id=i, vector={"x": [float(i), 1.0]}) for i in range(10)], wait=True)
    other = name + "_src"
    client.create_collection(other, vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
    client.upsert(other, [models.PointStruct(id=0, vector=[-1.0, 0.0])], wait=True)
    r = http.post(f"/collections/{name}/points/recommend", json={
        "positive": [0], "using": "x", "lookup_from": {"collection": other}, "limit": 3})
    assert r.status_code == 200, r.text
    assert ids(r.json()["result"]) == [0, 1, 2]  # nearest to [-1, 0]: the smallest first coordinate
    r = http.post(f"/collections/{name}/points/discover", json={
        "target": 0, "using": "x", "lookup_from": {"collection": other}, "limit": 2})
    assert r.status_code == 200, r.text
    assert ids(r.json()["result"]) == [0, 1]
    # the query API falls back to `using`, which the other collection does not have
    r = http.post(f"/collections/{name}/points/query", json={
        "query": 0, "using": "x", "lookup_from": {"collection": other}, "limit": 2})
    assert r.status_code == 400 and "x" in r.json()["status"]["error"]
