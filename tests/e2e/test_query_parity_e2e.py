"""Query behaviours checked against Qdrant 1.15's source (issue 14, categories 3 and 5):
scores of queries without a vector, sample offsets, one-row multivectors, deleted named
vectors, group filling, lookup_from exclusions, facet ties, formula defaults, IDF after
deletes, and the status codes and messages Qdrant gives."""

import math

import pytest

pytestmark = [pytest.mark.e2e]


def ok(resp):
    assert resp.status_code == 200, resp.text
    return resp.json()["result"]


def error(resp, status):
    assert resp.status_code == status, resp.text
    return resp.json()["status"]["error"]


@pytest.fixture
def col(http, request):
    name = request.node.name.replace("[", "_").replace("]", "")[:60]
    http.delete(f"/collections/{name}")
    ok(http.put(f"/collections/{name}", json={
        "vectors": {
            "d": {"size": 2, "distance": "Dot"},
            "m": {"size": 2, "distance": "Dot", "multivector_config": {"comparator": "max_sim"}},
        },
        "sparse_vectors": {"s": {"modifier": "idf"}},
    }))
    points = [
        {"id": i, "vector": {"d": [1.0, i / 10], "m": [[1.0, i / 10]], "s": {"indices": [i % 4, 7], "values": [1.0, 1.0]}},
         "payload": {"g": i % 4, "x": i, "t": "a" if i % 3 else "b"}}
        for i in range(1, 41)
    ]
    ok(http.put(f"/collections/{name}/points?wait=true", json={"points": points}))
    yield name
    http.delete(f"/collections/{name}")


def query(http, name, body):
    return ok(http.post(f"/collections/{name}/points/query", json=body))["points"]


def test_queries_without_a_vector_score_one(http, col):
    # local_shard/scroll.rs query_scroll: ScoredPoint { version: 0, score: 1.0 }
    ok(http.put(f"/collections/{col}/index?wait=true", json={"field_name": "x", "field_schema": "integer"}))
    for body in ({}, {"query": {"order_by": "x"}}, {"query": {"sample": "random"}}):
        points = query(http, col, dict(body, limit=5))
        assert len(points) == 5
        assert {(p["score"], p["version"]) for p in points} == {(1.0, 0)}


def test_sample_offset(http, col):
    # collection_query.rs try_into_shard_request: a random sample without prefetches
    # ignores the offset ("output is not stable"); under a prefetch it pages
    assert len(query(http, col, {"query": {"sample": "random"}, "limit": 5, "offset": 38})) == 5
    only6 = {"must": [{"has_id": [1, 2, 3, 4, 5, 6]}]}
    body = {"prefetch": {"query": [1.0, 1.0], "using": "d", "filter": only6}, "query": {"sample": "random"}, "limit": 5, "offset": 3}
    points = query(http, col, body)
    assert len(points) == 3 and {p["id"] for p in points} <= set(range(1, 7))


def test_dense_vector_is_a_one_row_multivector(http, col):
    ok(http.put(f"/collections/{col}/points?wait=true", json={"points": [{"id": 100, "vector": {"m": [2.0, 0.5]}}]}))
    got = ok(http.post(f"/collections/{col}/points", json={"ids": [100], "with_vector": ["m"]}))
    assert got[0]["vector"]["m"] == [[2.0, 0.5]]
    ok(http.put(f"/collections/{col}/points/vectors?wait=true", json={"points": [{"id": 100, "vector": {"m": [3.0, 0.5]}}]}))
    got = ok(http.post(f"/collections/{col}/points", json={"ids": [100], "with_vector": ["m"]}))
    assert got[0]["vector"]["m"] == [[3.0, 0.5]]
    points = query(http, col, {"query": [1.0, 0.0], "using": "m", "limit": 1})
    assert points[0]["id"] == 100 and points[0]["score"] == 3.0
    msg = error(http.put(f"/collections/{col}/points?wait=true", json={"points": [{"id": 101, "vector": {"m": [1.0, 2.0, 3.0]}}]}), 400)
    assert "Vector dimension error: expected dim: 2, got 3" in msg


def test_deleted_named_vector_is_left_out(http, col):
    ok(http.post(f"/collections/{col}/points/vectors/delete?wait=true", json={"points": [2], "vector": ["m"]}))
    got = ok(http.post(f"/collections/{col}/points", json={"ids": [2], "with_vector": ["m"]}))
    assert got[0]["vector"] == {}
    got = ok(http.post(f"/collections/{col}/points/scroll", json={"filter": {"must": [{"has_id": [2]}]}, "with_vector": ["m", "d"]}))
    assert list(got["points"][0]["vector"]) == ["d"]
    points = query(http, col, {"query": [1.0, 0.2], "using": "d", "filter": {"must": [{"has_id": [2]}]}, "with_vector": ["m"]})
    assert points[0]["vector"] == {}


def test_groups_are_filled_through_prefetches(http, col):
    # grouping/group_by.rs: prefetch limits are multiplied by the groups asked for, and
    # requests are repeated leaving out grouped points and full groups
    body = {"prefetch": [{"query": [1.0, 1.0], "using": "d", "limit": 5}], "query": [1.0, 1.0], "using": "d",
            "group_by": "g", "group_size": 3, "limit": 2}
    groups = ok(http.post(f"/collections/{col}/points/query/groups", json=body))["groups"]
    assert [(g["id"], [h["id"] for h in g["hits"]]) for g in groups] == [(0, [40, 36, 32]), (3, [39, 35, 31])]


def test_lookup_from_other_collection_excludes_nothing(http, col):
    other = col + "_o"
    http.delete(f"/collections/{other}")
    ok(http.put(f"/collections/{other}", json={"vectors": {"d": {"size": 2, "distance": "Dot"}}}))
    ok(http.put(f"/collections/{other}/points?wait=true", json={"points": [{"id": i, "vector": {"d": [1.0, i / 10]}} for i in range(1, 6)]}))
    lookup = {"collection": other, "vector": "d"}
    # collection_query.rs get_referenced_point_ids_on_collection: ids looked up in another
    # collection are not excluded from this one's results
    for q in ({"recommend": {"positive": [3]}}, {"context": [{"positive": 3, "negative": 1}]},
              {"discover": {"target": 2, "context": [{"positive": 3, "negative": 1}]}}):
        ids = [p["id"] for p in query(http, col, {"query": q, "using": "d", "lookup_from": lookup, "limit": 40})]
        assert {1, 2, 3} <= set(ids)
    ids = [p["id"] for p in query(http, col, {"query": {"recommend": {"positive": [3]}}, "using": "d", "limit": 40})]
    assert 3 not in ids
    http.delete(f"/collections/{other}")


def test_facet_ties_and_matrix_nested_filter(http, col):
    ok(http.put(f"/collections/{col}/index?wait=true", json={"field_name": "g", "field_schema": "integer"}))
    hits = ok(http.post(f"/collections/{col}/facet", json={"key": "g"}))["hits"]
    assert hits == [{"value": v, "count": 10} for v in range(4)]
    ok(http.put(f"/collections/{col}/points/payload?wait=true", json={"payload": {"n": [{"v": 1}]}, "points": [1, 2, 3]}))
    body = {"sample": 10, "limit": 1, "using": "d", "filter": {"must": [{"nested": {"key": "n", "filter": {"must": [{"key": "v", "match": {"value": 1}}]}}}]}}
    pairs = ok(http.post(f"/collections/{col}/points/search/matrix/pairs", json=body))["pairs"]
    assert {p["a"] for p in pairs} == {1, 2, 3} and {p["b"] for p in pairs} <= {1, 2, 3}


def test_formula_defaults(http, col):
    prefetch = {"query": [1.0, 1.0], "using": "d", "limit": 3}
    # formula_scorer.rs: a default applies when the payload has no value
    points = query(http, col, {"prefetch": prefetch, "query": {"formula": {"sum": ["$score", "missing"]}, "defaults": {"missing": 5}}, "limit": 3})
    assert [p["score"] for p in points] == pytest.approx([10.0, 9.9, 9.8], rel=1e-5)
    # ... and a value that is not a number is an error, default or not (unindexed payload)
    msg = error(http.post(f"/collections/{col}/points/query", json={"prefetch": prefetch, "query": {"formula": {"sum": ["$score", "t"]}, "defaults": {"t": 5}}}), 400)
    assert "Value is not a number" in msg
    msg = error(http.post(f"/collections/{col}/points/query", json={"prefetch": prefetch, "query": {"formula": "missing"}}), 400)
    assert "No value found in a payload nor defaults" in msg


def test_idf_follows_deletes(http, col):
    def score():
        return query(http, col, {"query": {"indices": [7], "values": [1.0]}, "using": "s", "limit": 1})[0]["score"]

    assert score() == pytest.approx(math.log(0.5 / 40.5 + 1), rel=1e-5)
    ok(http.post(f"/collections/{col}/points/delete?wait=true", json={"points": list(range(1, 30))}))
    assert score() == pytest.approx(math.log(0.5 / 11.5 + 1), rel=1e-5)
    ok(http.put(f"/collections/{col}/points/vectors?wait=true", json={"points": [{"id": 30, "vector": {"s": {"indices": [1], "values": [1.0]}}}]}))
    assert score() == pytest.approx(math.log(1.5 / 10.5 + 1), rel=1e-5)


def test_status_codes_and_messages(http, col):
    msg = error(http.put(f"/collections/{col}/points/vectors?wait=true", json={"points": [{"id": 999, "vector": {"d": [1.0, 0.0]}}]}), 404)
    assert msg == "Not found: No point with id 999 found"
    msg = error(http.post(f"/collections/{col}/points/query", json={"query": 1, "using": "d", "lookup_from": {"collection": "nope"}}), 404)
    assert msg == "Not found: Collection nope not found"
    # no id to look up: the missing collection is never read (fetch_vectors.rs)
    query(http, col, {"query": [1.0, 0.0], "using": "d", "lookup_from": {"collection": "nope"}})
    msg = error(http.post(f"/collections/{col}/points/query/groups", json={"query": [1.0, 0.0], "using": "d", "group_by": "g", "with_lookup": "nope"}), 404)
    assert msg == "Not found: Collection nope not found"
    msg = error(http.post(f"/collections/{col}/points/query", json={"query": 1, "using": "d", "lookup_from": {"collection": col, "vector": "zz"}}), 400)
    assert msg == "Wrong input: Not existing vector name error: zz"
    msg = error(http.post(f"/collections/{col}/points/query", json={"query": [1.0, 0.0], "using": "zz"}), 400)
    assert msg == "Wrong input: Not existing vector name error: zz"
    body = {"prefetch": [{"query": [1.0, 0.0], "using": "d"}], "query": {"fusion": "rrf"}, "using": "d"}
    msg = error(http.post(f"/collections/{col}/points/query", json=body), 400)
    assert msg == "Bad request: Fusion queries cannot be combined with the 'using' field."
