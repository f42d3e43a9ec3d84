"""`shard_key` on every read and write endpoint (issue 16 item 6, step S9), in process.

- A one-shard collection and an auto-sharded one (`shard_number: 3`) have no shard keys:
  every read naming one is 400 `Bad request: Shard key "a" not found` (Qdrant's
  `select_shards`), every write 400 `Wrong input: Shard key "a" not found`
  (`split_by_shard`), and nothing is written.
- A custom collection (`sharding_method: custom`) needs a key for every write; its keys
  are created through the collection (`create_shard_key`, as the cluster API does). Writes
  land in their keys' shards only, reads with a key see those shards only, reads without
  see all, and results carry the `shard_key` of the shard each point was read from.
- A `shard_key` is a keyword, an integer in u64, or a list of those: anything else is the
  body's format error (400). An empty list selects no shard: a read answers from none, a
  write is refused (`Wrong input: Empty shard keys selection`).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from inprocess import running_app
from qdrant_client.http import models as qm

from pydrant.http.bulk_json import _BulkParse

DIM = 4
READ_KEY_A = 'Bad request: Shard key "a" not found'
READ_KEY_7 = "Bad request: Shard key 7 not found"
WRITE_KEY_A = 'Wrong input: Shard key "a" not found'
NOT_SPECIFIED = "Wrong input: Shard key not specified"
EMPTY_WRITE = "Wrong input: Empty shard keys selection"


def _vector(i: int) -> list[float]:
    return [1.0, float(i % 7), 0.5, float(i % 3)]


def _points(ids, group: str = "g") -> list[dict]:
    return [{"id": i, "vector": _vector(i), "payload": {"n": i, "g": f"{group}{i % 2}"}} for i in ids]


async def _call(client, method: str, path: str, body=None):
    response = await getattr(client, method)(path, json=body)
    return response.status_code, json.loads(await response.get_data())


async def _ok(client, method: str, path: str, body=None):
    status, data = await _call(client, method, path, body)
    assert status == 200, (method, path, body, data)
    return data["result"]


async def _error(client, method: str, path: str, body, status: int) -> str:
    got, data = await _call(client, method, path, body)
    assert got == status, (method, path, body, data)
    return data["status"]["error"]


async def _create(client, name: str, **params) -> None:
    await _ok(client, "put", f"/collections/{name}", {"vectors": {"size": DIM, "distance": "Dot"}, **params})
    await _ok(client, "put", f"/collections/{name}/index?wait=true", {"field_name": "g", "field_schema": "keyword"})


async def _dump(client, name: str, body=None) -> dict:
    """id -> (payload, vector, shard_key) of every point the scroll sees."""
    result = await _ok(client, "post", f"/collections/{name}/points/scroll",
                       {"limit": 1000, "with_payload": True, "with_vector": True, **(body or {})})
    assert result["next_page_offset"] is None
    return {p["id"]: (p.get("payload"), p.get("vector"), p.get("shard_key")) for p in result["points"]}


def _ids(points: list[dict]) -> set:
    return {p["id"] for p in points}


# -- every endpoint, with a minimal valid body -----------------------------------------------


def read_requests(example: int, other: int) -> list[tuple[str, dict, str]]:
    """(path under the collection, body, where the shard key goes: "root" or "searches")."""
    vector = _vector(1)
    return [
        ("points/search", {"vector": vector, "limit": 100}, "root"),
        ("points/search/batch", {"searches": [{"vector": vector, "limit": 100}]}, "searches"),
        ("points/search/groups", {"vector": vector, "group_by": "g", "limit": 10, "group_size": 100}, "root"),
        ("points/recommend", {"positive": [example], "limit": 100}, "root"),
        ("points/recommend/batch", {"searches": [{"positive": [example], "limit": 100}]}, "searches"),
        ("points/recommend/groups", {"positive": [example], "group_by": "g", "limit": 10, "group_size": 100}, "root"),
        ("points/discover", {"target": example, "context": [{"positive": example, "negative": other}], "limit": 100},
         "root"),
        ("points/discover/batch",
         {"searches": [{"target": example, "context": [{"positive": example, "negative": other}], "limit": 100}]},
         "searches"),
        ("points/query", {"query": vector, "limit": 100}, "root"),
        ("points/query/batch", {"searches": [{"query": vector, "limit": 100}]}, "searches"),
        ("points/query/groups", {"query": vector, "group_by": "g", "limit": 10, "group_size": 100}, "root"),
        ("points/scroll", {"limit": 100}, "root"),
        ("points/count", {}, "root"),
        ("facet", {"key": "g"}, "root"),
        ("points", {"ids": [example, other]}, "root"),
        ("points/search/matrix/pairs", {"sample": 100, "limit": 2}, "root"),
        ("points/search/matrix/offsets", {"sample": 100, "limit": 2}, "root"),
    ]


def keyed(body: dict, where: str, key) -> dict:
    if where == "searches":
        return {"searches": [{**s, "shard_key": key} for s in body["searches"]]}
    return {**body, "shard_key": key}


def write_requests(ids: list[int]) -> list[tuple[str, str, dict]]:
    """(method, path under the collection, body) of every write endpoint; each names `ids`
    or matches them by filter."""
    matching = {"must": [{"has_id": ids}]}
    return [
        ("put", "points", {"points": _points(ids, "w")}),
        ("put", "points", {"batch": {"ids": ids, "vectors": [_vector(i) for i in ids], "payloads": [{} for _ in ids]}}),
        ("post", "points/delete", {"points": ids}),
        ("post", "points/delete", {"filter": matching}),
        ("put", "points/vectors", {"points": [{"id": i, "vector": [0.0, 0.0, 0.0, 9.0]} for i in ids]}),
        ("post", "points/vectors/delete", {"points": ids, "vector": [""]}),
        ("post", "points/vectors/delete", {"filter": matching, "vector": [""]}),
        ("post", "points/payload", {"payload": {"x": 1}, "points": ids}),
        ("post", "points/payload", {"payload": {"x": 1}, "filter": matching}),
        ("put", "points/payload", {"payload": {"x": 1}, "points": ids}),
        ("post", "points/payload/delete", {"keys": ["n"], "points": ids}),
        ("post", "points/payload/delete", {"keys": ["n"], "filter": matching}),
        ("post", "points/payload/clear", {"points": ids}),
        ("post", "points/payload/clear", {"filter": matching}),
    ]


BATCH_KINDS = {
    "points/delete": "delete",
    "points/vectors": "update_vectors",
    "points/vectors/delete": "delete_vectors",
    "points/payload/delete": "delete_payload",
    "points/payload/clear": "clear_payload",
}


def batch_operation(method: str, path: str, body: dict) -> dict:
    """A write endpoint's body as an operation of `POST /points/batch`."""
    if path == "points":
        return {"upsert": body}
    if path == "points/payload":
        return {"set_payload" if method == "post" else "overwrite_payload": body}
    return {BATCH_KINDS[path]: body}


# -- collections without shard keys ------------------------------------------------------------


@pytest.mark.parametrize("params", [{}, {"shard_number": 3}], ids=["one-shard", "auto-3-shards"])
async def test_collections_without_keys_refuse_every_shard_key(tmp_path: Path, params: dict):
    async with running_app(tmp_path) as client:
        await _create(client, "c", **params)
        await _ok(client, "put", "/collections/c/points?wait=true", {"points": _points(range(1, 21))})
        before = await _dump(client, "c")
        assert len(before) == 20 and all(key is None for _, _, key in before.values())

        for path, body, where in read_requests(1, 2):
            url = f"/collections/c/{path}"
            await _ok(client, "post", url, body)  # the body is fine without a key
            assert await _error(client, "post", url, keyed(body, where, "a"), 400) == READ_KEY_A, path
            assert await _error(client, "post", url, keyed(body, where, 7), 400) == READ_KEY_7, path
            assert await _error(client, "post", url, keyed(body, where, ["a", 7]), 400) == READ_KEY_A, path

        for method, path, body in write_requests([1, 2, 3]):
            url = f"/collections/c/{path}?wait=true"
            assert await _error(client, method, url, {**body, "shard_key": "a"}, 400) == WRITE_KEY_A, (path, body)
            assert await _error(client, method, url, {**body, "shard_key": 7}, 400) == "Wrong input: Shard key 7 not found"
            operation = batch_operation(method, path, {**body, "shard_key": "a"})
            error = await _error(client, "post", "/collections/c/points/batch?wait=true", {"operations": [operation]}, 400)
            assert error == WRITE_KEY_A, operation
        assert await _dump(client, "c") == before  # nothing written
        # a batch whose later operation names a key writes none of the earlier ones
        operations = [{"upsert": {"points": _points([500])}}, {"delete": {"points": [1], "shard_key": "a"}}]
        error = await _error(client, "post", "/collections/c/points/batch?wait=true", {"operations": operations}, 400)
        assert error == WRITE_KEY_A
        assert await _dump(client, "c") == before


# -- custom sharding --------------------------------------------------------------------------


async def _custom_collection(client, app) -> None:
    """`k` with keys "a" (one shard), "b" (two shards) and 7 (one shard): ids 1-10 in "a",
    11-20 in "b", 21-25 in 7."""
    await _create(client, "k", sharding_method="custom")
    collection = app.extensions["toc"].get("k")
    await collection.create_shard_key("a", 1)
    await collection.create_shard_key("b", 2)
    await collection.create_shard_key(7, 1)
    await _ok(client, "put", "/collections/k/points?wait=true", {"points": _points(range(1, 11), "a"), "shard_key": "a"})
    ids = list(range(11, 21))
    batch = {"ids": ids, "vectors": [_vector(i) for i in ids], "payloads": [{"n": i, "g": f"b{i % 2}"} for i in ids]}
    await _ok(client, "put", "/collections/k/points?wait=true", {"batch": batch, "shard_key": "b"})
    await _ok(client, "put", "/collections/k/points?wait=true", {"points": _points(range(21, 26), "s"), "shard_key": 7})


KEY_OF = {**{i: "a" for i in range(1, 11)}, **{i: "b" for i in range(11, 21)}, **{i: 7 for i in range(21, 26)}}


async def test_custom_writes_need_a_key_and_land_in_its_shards(tmp_path: Path):
    async with running_app(tmp_path) as client:
        app = client.app
        await _create(client, "k", sharding_method="custom")
        await app.extensions["toc"].get("k").create_shard_key("a", 1)
        for method, path, body in write_requests([1, 2]):
            url = f"/collections/k/{path}?wait=true"
            assert await _error(client, method, url, body, 400) == NOT_SPECIFIED, (path, body)
            operation = batch_operation(method, path, body)
            error = await _error(client, "post", "/collections/k/points/batch?wait=true", {"operations": [operation]}, 400)
            assert error == NOT_SPECIFIED
            assert await _error(client, method, url, {**body, "shard_key": "zz"}, 400) == 'Wrong input: Shard key "zz" not found'
        assert await _dump(client, "k") == {}

    async with running_app(tmp_path / "2") as client:
        await _custom_collection(client, client.app)
        everything = await _dump(client, "k")
        assert {i: key for i, (_, _, key) in everything.items()} == KEY_OF
        for key, ids in (("a", range(1, 11)), ("b", range(11, 21)), (7, range(21, 26))):
            seen = await _dump(client, "k", {"shard_key": key})
            assert set(seen) == set(ids)
            assert {k for _, _, k in seen.values()} == {key}
        # the shards of each key hold its points only
        shards = client.app.extensions["toc"].get("k").local_shards()
        counts = {key: sum(s["points_count"] for s in shards if s["shard_key"] == key) for key in ("a", "b", 7)}
        assert counts == {"a": 10, "b": 10, 7: 5}
        assert [s["points_count"] > 0 for s in shards if s["shard_key"] == "b"] == [True, True]  # the ring spreads them
        assert await _ok(client, "post", "/collections/k/points/count", {"shard_key": "b"}) == {"count": 10}
        assert await _ok(client, "post", "/collections/k/points/count", {}) == {"count": 25}


async def test_custom_writes_by_key_change_only_that_keys_points(tmp_path: Path):
    async with running_app(tmp_path) as client:
        await _custom_collection(client, client.app)
        # a filter matching every point, applied with key "b": only "b" changes
        everything = {"must": [{"key": "n", "range": {"gte": 0}}]}
        await _ok(client, "post", "/collections/k/points/payload?wait=true",
                  {"payload": {"tag": "B"}, "filter": everything, "shard_key": "b"})
        tagged = {i for i, (payload, _, _) in (await _dump(client, "k")).items() if payload.get("tag") == "B"}
        assert tagged == set(range(11, 21))
        # ids of another key are not found in "a": Qdrant's 404 of a payload update by id
        error = await _error(client, "post", "/collections/k/points/payload?wait=true",
                             {"payload": {"tag": "A"}, "points": [1, 12], "shard_key": "a"}, 404)
        assert "12" in error
        await _ok(client, "post", "/collections/k/points/delete?wait=true", {"filter": everything, "shard_key": 7})
        assert set(await _dump(client, "k")) == set(range(1, 21))
        # ids in a key's ring that are not there: nothing else is deleted
        await _ok(client, "post", "/collections/k/points/delete?wait=true", {"points": [1, 11, 12], "shard_key": "b"})
        assert set(await _dump(client, "k")) == set(range(1, 21)) - {11, 12}
        # a list of keys writes the point into each key's shards
        await _ok(client, "put", "/collections/k/points?wait=true",
                  {"points": _points([100]), "shard_key": ["a", "b"]})
        for key in ("a", "b"):
            assert 100 in await _dump(client, "k", {"shard_key": key})
        assert 100 not in await _dump(client, "k", {"shard_key": 7})
        # vectors and payload of one key's copy
        await _ok(client, "put", "/collections/k/points/vectors?wait=true",
                  {"points": [{"id": 100, "vector": [0.0, 0.0, 0.0, 2.0]}], "shard_key": "a"})
        assert (await _dump(client, "k", {"shard_key": "a"}))[100][1] == [0.0, 0.0, 0.0, 2.0]
        assert (await _dump(client, "k", {"shard_key": "b"}))[100][1] == _vector(100)


async def test_custom_batch_update_routes_each_operation_by_its_own_key(tmp_path: Path):
    async with running_app(tmp_path) as client:
        await _custom_collection(client, client.app)
        operations = [
            {"upsert": {"points": _points([200]), "shard_key": "a"}},
            {"upsert": {"batch": {"ids": [201], "vectors": [_vector(201)]}, "shard_key": 7}},
            {"set_payload": {"payload": {"x": 1}, "filter": {"must": [{"has_id": [1, 11, 21]}]}, "shard_key": "b"}},
            {"delete": {"points": [2], "shard_key": "a"}},
            {"clear_payload": {"points": [22], "shard_key": 7}},
            {"delete_vectors": {"points": [3], "vector": [""], "shard_key": ["a"]}},
        ]
        result = await _ok(client, "post", "/collections/k/points/batch?wait=true", {"operations": operations})
        assert [r["status"] for r in result] == ["completed"] * len(operations)
        dump = await _dump(client, "k")
        assert dump[200][2] == "a" and dump[201][2] == 7 and 2 not in dump
        assert [i for i, (payload, _, _) in dump.items() if payload.get("x") == 1] == [11]
        assert dump[22][0] == {}
        assert dump[3][1] == {}


async def test_custom_reads_see_the_keys_shards(tmp_path: Path):
    async with running_app(tmp_path) as client:
        await _custom_collection(client, client.app)
        base = "/collections/k/points"
        for key, expected in (("a", set(range(1, 11))), ("b", set(range(11, 21))), (["a", 7], set(range(1, 11)) | set(range(21, 26))), (None, set(KEY_OF))):
            body = {"vector": _vector(3), "limit": 100, "with_payload": True} | ({} if key is None else {"shard_key": key})
            hits = await _ok(client, "post", f"{base}/search", body)
            assert _ids(hits) == expected, key
            for hit in hits:
                point = qm.ScoredPoint(**hit)
                assert point.shard_key == KEY_OF[point.id]
            query = {"query": _vector(3), "limit": 100} | ({} if key is None else {"shard_key": key})
            assert _ids((await _ok(client, "post", f"{base}/query", query))["points"]) == expected
            scroll = {"limit": 100} | ({} if key is None else {"shard_key": key})
            records = (await _ok(client, "post", f"{base}/scroll", scroll))["points"]
            assert {qm.Record(**r).id for r in records} == expected
            assert all(r["shard_key"] == KEY_OF[r["id"]] for r in records)
            count = {} if key is None else {"shard_key": key}
            assert (await _ok(client, "post", f"{base}/count", count))["count"] == len(expected)
            retrieved = await _ok(client, "post", base, {"ids": [1, 11, 21]} | count)
            assert _ids(retrieved) == expected & {1, 11, 21}
            assert all(r["shard_key"] == KEY_OF[r["id"]] for r in retrieved)
            facet = await _ok(client, "post", "/collections/k/facet", {"key": "g"} | count)
            assert sum(h["count"] for h in facet["hits"]) == len(expected)
            groups = await _ok(client, "post", f"{base}/search/groups",
                               {"vector": _vector(3), "group_by": "g", "group_size": 100, "limit": 10} | count)
            grouped = [hit for group in qm.GroupsResult(**groups).groups for hit in group.hits]
            assert {h.id for h in grouped} == expected
            assert all(h.shard_key == KEY_OF[h.id] for h in grouped)
            pairs = await _ok(client, "post", f"{base}/search/matrix/pairs", {"sample": 100, "limit": 2} | count)
            assert {p["a"] for p in pairs["pairs"]} == expected
            offsets = await _ok(client, "post", f"{base}/search/matrix/offsets", {"sample": 100, "limit": 2} | count)
            assert set(offsets["ids"]) == expected


async def test_custom_batches_with_mixed_keys_keep_their_order(tmp_path: Path):
    async with running_app(tmp_path) as client:
        await _custom_collection(client, client.app)
        keys = ["b", None, "a", 7, "b", ["a", "b"]]
        expected = {"a": set(range(1, 11)), "b": set(range(11, 21)), 7: set(range(21, 26))}

        def wanted(key):
            if key is None:
                return set(KEY_OF)
            return set().union(*(expected[k] for k in (key if isinstance(key, list) else [key])))

        def with_key(request: dict, key) -> dict:
            return request if key is None else {**request, "shard_key": key}

        base = "/collections/k/points"
        searches = [with_key({"vector": _vector(i), "limit": 100}, key) for i, key in enumerate(keys)]
        for answer, key in zip(await _ok(client, "post", f"{base}/search/batch", {"searches": searches}), keys):
            assert _ids(answer) == wanted(key), key
        queries = [with_key({"query": _vector(i), "limit": 100}, key) for i, key in enumerate(keys)]
        for answer, key in zip(await _ok(client, "post", f"{base}/query/batch", {"searches": queries}), keys):
            assert {p.id for p in qm.QueryResponse(**answer).points} == wanted(key), key
        # example 12 lives in "b": Qdrant looks examples up in every shard, whatever the key
        recommends = [with_key({"positive": [12], "limit": 100}, key) for key in keys]
        for answer, key in zip(await _ok(client, "post", f"{base}/recommend/batch", {"searches": recommends}), keys):
            assert _ids(answer) == wanted(key) - {12}, key
        discovers = [with_key({"target": 12, "context": [{"positive": 1, "negative": 21}], "limit": 100}, key) for key in keys]
        for answer, key in zip(await _ok(client, "post", f"{base}/discover/batch", {"searches": discovers}), keys):
            assert _ids(answer) == wanted(key) - {12, 1, 21}, key
        # a key the collection does not have fails the whole batch
        searches.append({"vector": _vector(0), "limit": 3, "shard_key": "zz"})
        assert await _error(client, "post", f"{base}/search/batch", {"searches": searches}, 400) == \
            'Bad request: Shard key "zz" not found'


async def test_lookup_from_shard_key(tmp_path: Path):
    async with running_app(tmp_path) as client:
        await _custom_collection(client, client.app)
        await _create(client, "plain")
        await _ok(client, "put", "/collections/plain/points?wait=true", {"points": _points(range(1, 5))})
        base = "/collections/k/points"
        # examples from key "b"'s shards, the search over key "a"'s
        request = {"positive": [12], "limit": 100, "shard_key": "a", "lookup_from": {"collection": "k", "shard_key": "b"}}
        assert _ids(await _ok(client, "post", f"{base}/recommend", request)) == set(range(1, 11))
        query = {"query": {"recommend": {"positive": [12]}}, "limit": 100, "shard_key": "a",
                 "lookup_from": {"collection": "k", "shard_key": ["b", 7]}}
        assert _ids((await _ok(client, "post", f"{base}/query", query))["points"]) == set(range(1, 11))
        # the example is not in the looked-up key's shards
        request["lookup_from"]["shard_key"] = 7
        assert await _error(client, "post", f"{base}/recommend", request, 404) == "Not found: No point with id 12 found"
        request["lookup_from"]["shard_key"] = []
        assert await _error(client, "post", f"{base}/recommend", request, 404) == "Not found: No point with id 12 found"
        request["lookup_from"]["shard_key"] = "zz"
        assert await _error(client, "post", f"{base}/recommend", request, 400) == 'Bad request: Shard key "zz" not found'
        # a collection without keys refuses a lookup key, as it refuses a read's
        request["lookup_from"] = {"collection": "plain", "shard_key": "a"}
        assert await _error(client, "post", f"{base}/recommend", request, 400) == READ_KEY_A
        # ... but only when an example needs it (vectors given: nothing is looked up)
        query = {"query": {"recommend": {"positive": [_vector(1)]}}, "limit": 3, "lookup_from": request["lookup_from"]}
        assert len((await _ok(client, "post", f"{base}/query", query))["points"]) == 3
        # lookup_from without a key: the lookup collection's every shard
        request["lookup_from"] = {"collection": "k"}
        request["positive"] = [21]
        assert _ids(await _ok(client, "post", f"{base}/recommend", request)) == set(range(1, 11))
        # a query's prefetch lookup_from takes its own key
        query = {"prefetch": {"query": {"recommend": {"positive": [12]}}, "limit": 100,
                              "lookup_from": {"collection": "k", "shard_key": "a"}},
                 "query": _vector(1), "limit": 100}
        assert await _error(client, "post", f"{base}/query", query, 404) == "Not found: No point with id 12 found"


# -- the selector's form --------------------------------------------------------------------


async def test_empty_key_list_reads_nothing_and_writes_are_refused(tmp_path: Path):
    async with running_app(tmp_path) as client:
        await _create(client, "c")
        await _create(client, "auto", shard_number=3)
        for name in ("c", "auto"):
            await _ok(client, "put", f"/collections/{name}/points?wait=true", {"points": _points(range(1, 11))})
        await _custom_collection(client, client.app)
        for name in ("c", "auto", "k"):
            before = await _dump(client, name)
            for path, body, where in read_requests(1, 2):
                # recommend and discover too: their examples are looked up in every shard
                result = await _ok(client, "post", f"/collections/{name}/{path}", keyed(body, where, []))
                assert result in ([], [[]], [{"points": []}], {"groups": []}, {"points": []}, {"hits": []},
                                  {"count": 0}, {"pairs": []}, {"points": [], "next_page_offset": None},
                                  {"offsets_row": [], "offsets_col": [], "scores": [], "ids": []}), (name, path, result)
            for method, path, body in write_requests([1, 2]):
                url = f"/collections/{name}/{path}?wait=true"
                assert await _error(client, method, url, {**body, "shard_key": []}, 400) == EMPTY_WRITE, (name, path)
            assert await _dump(client, name) == before


BAD_KEYS = [True, -1, 1.5, {"k": 1}, [True], ["a", -3], [["a"]], 2**64, None]


async def test_shard_key_must_be_a_keyword_or_u64(tmp_path: Path):
    async with running_app(tmp_path) as client:
        await _custom_collection(client, client.app)
        before = await _dump(client, "k")
        for bad in BAD_KEYS:
            if bad is None:
                continue  # null is no key: covered by the other tests
            raw = json.dumps(bad)
            for method, path, body in write_requests([1, 2]):
                data = json.dumps(body)[:-1] + f', "shard_key": {raw}}}'
                response = await getattr(client, method)(f"/collections/k/{path}?wait=true", data=data,
                                                       headers={"content-type": "application/json"})
                error = json.loads(await response.get_data())["status"]["error"]
                assert response.status_code == 400 and error.startswith("Format error in JSON body:"), (path, bad, error)
                assert "shard_key" in error, error
            for path, body, where in read_requests(1, 2):
                data = json.dumps(body)
                if where == "searches":
                    data = data.replace('"limit": 100}', f'"limit": 100, "shard_key": {raw}}}')
                else:
                    data = data[:-1] + f', "shard_key": {raw}}}'
                response = await client.post(f"/collections/k/{path}", data=data, headers={"content-type": "application/json"})
                error = json.loads(await response.get_data())["status"]["error"]
                assert response.status_code == 400 and error.startswith("Format error in JSON body:"), (path, bad, error)
            lookup = {"positive": [1], "limit": 10, "lookup_from": {"collection": "k", "shard_key": bad}}
            error = await _error(client, "post", "/collections/k/points/recommend", lookup, 400)
            assert error.startswith("Format error in JSON body:") and "shard_key" in error, error
        assert await _dump(client, "k") == before
        # the largest u64 is a key like any other: this collection does not have it
        error = await _error(client, "post", "/collections/k/points/count", {"shard_key": 2**64 - 1}, 400)
        assert error == f"Bad request: Shard key {2**64 - 1} not found"


def test_bulk_upsert_parse_keeps_the_shard_key():
    """The upsert's fast JSON path (http/bulk_json.py) keeps `shard_key` in every form."""
    for key in ("a", 7, ["a", 3], ["x[y", 2]):
        for body in ({"points": [{"id": 1, "vector": [1.0, 2.0]}, {"id": 2, "vector": [3.0, 4.0]}]},
                     {"batch": {"ids": [1, 2], "vectors": [[1.0, 2.0], [3.0, 4.0]]}}):
            parsed = _BulkParse().run(json.dumps({**body, "shard_key": key}).encode())
            assert parsed["shard_key"] == key
