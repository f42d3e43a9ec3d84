"""Strict mode, every field of `strict_mode_config` (collection/strict.py, docs/strict-mode.md):
refused over the limit with Qdrant's message, accepted under it or with strict mode
disabled, changed at once by a config update (the PATCH path), and nothing logged when a
write is refused."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from pydrant.collection import strict
from pydrant.collection.collection import Collection
from pydrant.collection.config import CollectionDefaults, apply_update, build_config
from pydrant.collection.payload_index import PayloadIndexTable, create_index_operation
from pydrant.collection.points import prepare_update_vectors, prepare_upsert
from pydrant.errors import BadInput, RateLimited
from inprocess import running_collection as running

DIM = 4


def config_with(strict_mode: dict | None, **request) -> dict:
    body = {
        "vectors": {"size": DIM, "distance": "Dot"},
        "optimizers_config": {"max_optimization_threads": 0, "flush_interval_sec": 3600},
        **request,
    }
    if strict_mode is not None:
        body["strict_mode_config"] = strict_mode
    return build_config(body, CollectionDefaults())


def on(**fields) -> dict:
    return {"enabled": True, **fields}




def points(ids, payload=None, dim=DIM) -> dict:
    return {"points": [{"id": i, "vector": [0.1 * (i + 1)] * dim, "payload": payload or {"n": i}} for i in ids]}


async def upsert(collection: Collection, ids, payload=None, dim=DIM):
    return await collection.submit([prepare_upsert(collection.schema, points(ids, payload, dim))])


async def patch(collection: Collection, update: dict) -> None:
    """What `PATCH /collections/{name}` does (storage/toc.py `update_collection`)."""
    async with collection.config_lock:
        await collection.set_config(apply_update(collection.config, {"strict_mode_config": update}))


async def refused(collection: Collection, operation: dict, message: str, error=BadInput) -> None:
    """The write is refused with exactly `message` and nothing reaches the WAL."""
    before = collection.wal.last_op_num
    with pytest.raises(error) as raised:
        await collection.submit([operation])
    assert raised.value.message == message
    assert collection.wal.last_op_num == before


def limit_message(value, limit, name) -> str:
    return f'Bad request: Limit exceeded {value} > {limit} for "{name}". Help: Reduce the "{name}" parameter to or below {limit}.'


# -- max_timeout ---------------------------------------------------------------------------


async def test_max_timeout_refuses_a_longer_request_timeout(tmp_path):
    async with running(tmp_path / "c", config_with(on(max_timeout=5))) as collection:
        with pytest.raises(BadInput) as raised:
            collection.engine.check_timeout(6)
        assert raised.value.message == limit_message(6, 5, "timeout")
        collection.engine.check_timeout(5)
        collection.engine.check_timeout(None)
        await patch(collection, {"max_timeout": 10})
        collection.engine.check_timeout(6)
        await patch(collection, {"enabled": False})
        collection.engine.check_timeout(600)


# -- upsert_max_batchsize ------------------------------------------------------------------


async def test_upsert_max_batchsize_counts_points_and_batch_rows_and_vector_updates(tmp_path):
    async with running(tmp_path / "c", config_with(on(upsert_max_batchsize=2))) as collection:
        await refused(collection, prepare_upsert(collection.schema, points([1, 2, 3])), limit_message(3, 2, "upsert limit"))
        batch = {"batch": {"ids": [1, 2, 3], "vectors": [[0.1] * DIM] * 3}}
        await refused(collection, prepare_upsert(collection.schema, batch), limit_message(3, 2, "upsert limit"))
        await upsert(collection, [1, 2])
        update = prepare_update_vectors(collection.schema, {"points": [{"id": i, "vector": [0.5] * DIM} for i in (1, 2, 2)]})
        await refused(collection, update, limit_message(3, 2, "update limit"))
        await patch(collection, {"upsert_max_batchsize": 3})
        await upsert(collection, [4, 5, 6])
        await patch(collection, {"enabled": False})
        await upsert(collection, range(10, 20))
        assert collection.points_count() == 15


# -- collection sizes ----------------------------------------------------------------------


async def test_max_points_count_refuses_writes_once_reached(tmp_path):
    async with running(tmp_path / "c", config_with(on(max_points_count=3))) as collection:
        await upsert(collection, [1, 2])
        await upsert(collection, [3, 4])  # 2 < 3 before it: accepted, as in Qdrant
        message = "Bad request: Max points count limit of 3 reached!"
        await refused(collection, prepare_upsert(collection.schema, points([5])), message)
        update = prepare_update_vectors(collection.schema, {"points": [{"id": 1, "vector": [0.5] * DIM}]})
        await refused(collection, update, message)
        # deletes are never refused by size limits, and free room
        await collection.submit([{"type": "delete_points", "ids": [1, 2]}])
        await upsert(collection, [5])
        await patch(collection, {"max_points_count": 100})
        await upsert(collection, [6, 7])
        assert collection.points_count() == 5


async def test_max_collection_vector_size_bytes_estimates_stored_vectors(tmp_path):
    dim = 1024  # 4 KiB a point: 128 points are 0.5 MB
    config = config_with(on(max_collection_vector_size_bytes=512 * 1024), vectors={"size": dim, "distance": "Dot"})
    async with running(tmp_path / "c", config) as collection:
        await upsert(collection, range(127), dim=dim)
        await upsert(collection, [127], dim=dim)
        message = "Bad request: Max vector storage size limit of 0.5MB reached!"
        await refused(collection, prepare_upsert(collection.schema, points([500], dim=dim)), message)
        assert collection.size_stats().vector_bytes == 128 * dim * 4
        await patch(collection, {"max_collection_vector_size_bytes": 1024 * 1024})
        await upsert(collection, [500], dim=dim)


async def test_max_collection_payload_size_bytes_refuses_upserts_and_payload_writes(tmp_path):
    async with running(tmp_path / "c", config_with(on(max_collection_payload_size_bytes=256 * 1024))) as collection:
        big = {"text": "x" * 100_000}
        await upsert(collection, [1, 2], big)
        await upsert(collection, [3], big)  # 200 KB stored before it: under 0.25 MB
        message = "Bad request: Max payload storage size limit of 0.25MB reached!"
        await refused(collection, prepare_upsert(collection.schema, points([4])), message)
        await refused(collection, {"type": "set_payload", "payload": {"a": 1}, "ids": [1]}, message)
        await refused(collection, {"type": "overwrite_payload", "payload": {"a": 1}, "ids": [1]}, message)
        await collection.submit([{"type": "clear_payload", "ids": [1, 2]}])
        await upsert(collection, [4])
        await patch(collection, {"enabled": False})
        await upsert(collection, [5], big)


# -- filters -------------------------------------------------------------------------------


async def test_filter_max_conditions_counts_nested_and_sub_filter_conditions(tmp_path):
    async with running(tmp_path / "c", config_with(on(filter_max_conditions=2))) as collection:
        await upsert(collection, [1, 2, 3])
        three = {
            "must": [{"key": "n", "match": {"value": 1}}],
            "should": {"must": [{"has_id": [1]}, {"key": "n", "range": {"gte": 0}}]},
        }
        message = "Bad request: Filter condition limit reached (3 > 2). Help: Reduce the amount of conditions of your filter."
        with pytest.raises(BadInput) as raised:
            collection.engine.count({"filter": three})
        assert raised.value.message == message
        await refused(collection, {"type": "delete_points", "filter": three}, message)
        two = {"must": [{"nested": {"key": "a", "filter": {"must": [{"key": "b", "match": {"value": 1}}]}}}, {"has_id": [1]}]}
        assert collection.engine.count({"filter": two}) == 0
        await patch(collection, {"filter_max_conditions": 3})
        assert collection.engine.count({"filter": three}) == 1


async def test_condition_max_size_counts_match_any_except_and_has_id(tmp_path):
    async with running(tmp_path / "c", config_with(on(condition_max_size=2))) as collection:
        await upsert(collection, [1, 2, 3])
        message = "Bad request: Condition size limit reached (3 > 2). Help: Reduce the size of your condition."
        for condition in (
            {"key": "n", "match": {"any": [1, 2, 3]}},
            {"key": "n", "match": {"except": [1, 2, 3]}},
            {"has_id": [1, 2, 3]},
        ):
            with pytest.raises(BadInput) as raised:
                collection.engine.scroll({"filter": {"must_not": [condition]}})
            assert raised.value.message == message
            await refused(collection, {"type": "clear_payload", "filter": {"must": [condition]}}, message)
        assert collection.engine.count({"filter": {"must": [{"key": "n", "match": {"any": [1, 2]}}]}}) == 2
        await patch(collection, {"enabled": False})
        assert collection.engine.count({"filter": {"must": [{"has_id": [1, 2, 3]}]}}) == 3


# -- multivector_config, sparse_config -----------------------------------------------------


async def test_multivector_max_vectors_per_named_vector(tmp_path):
    config = config_with(
        on(multivector_config={"m": {"max_vectors": 2}}),
        vectors={
            "m": {"size": DIM, "distance": "Dot", "multivector_config": {"comparator": "max_sim"}},
            "d": {"size": DIM, "distance": "Dot"},
        },
    )
    async with running(tmp_path / "c", config) as collection:
        def body(rows: int) -> dict:
            return {"points": [{"id": 1, "vector": {"m": [[0.1] * DIM] * rows, "d": [0.2] * DIM}}]}

        message = "Bad request: Multivector 'm' has a limit of 2 vectors, but 3 were provided!"
        await refused(collection, prepare_upsert(collection.schema, body(3)), message)
        await collection.submit([prepare_upsert(collection.schema, body(2))])
        update = prepare_update_vectors(collection.schema, {"points": [{"id": 1, "vector": {"m": [[0.3] * DIM] * 3}}]})
        await refused(collection, update, message)
        # a config update replaces `multivector_config` whole (StrictModeConfig::update)
        await patch(collection, {"multivector_config": {"other": {"max_vectors": 1}}})
        assert collection.config["strict_mode_config"]["multivector_config"] == {"other": {"max_vectors": 1}}
        assert collection.config["strict_mode_config"]["enabled"] is True
        await collection.submit([update])


async def test_sparse_max_length_per_named_sparse_vector(tmp_path):
    config = config_with(on(sparse_config={"s": {"max_length": 2}}), vectors={}, sparse_vectors={"s": {}})
    async with running(tmp_path / "c", config) as collection:
        def body(n: int) -> dict:
            return {"points": [{"id": 1, "vector": {"s": {"indices": list(range(n)), "values": [0.5] * n}}}]}

        message = "Bad request: Sparse vector 's' has a limit of 2 indices, but 3 were provided!"
        await refused(collection, prepare_upsert(collection.schema, body(3)), message)
        await collection.submit([prepare_upsert(collection.schema, body(2))])
        update = prepare_update_vectors(collection.schema, {"points": [{"id": 1, "vector": {"s": {"indices": [1, 2, 3], "values": [1, 1, 1]}}}]})
        await refused(collection, update, message)
        await patch(collection, {"sparse_config": {"s": {"max_length": 3}}})
        await collection.submit([update])


# -- max_payload_index_count ---------------------------------------------------------------


async def test_max_payload_index_count_refuses_one_more_index(tmp_path):
    async with running(tmp_path / "c", config_with(on(max_payload_index_count=1))) as collection:
        await collection.submit([create_index_operation("a", "keyword")])
        message = (
            "Bad request: Collection already has the maximum number of payload indices (1). "
            "Help: Please delete an existing index before creating a new one."
        )
        await refused(collection, create_index_operation("b", "integer"), message)
        await collection.submit([{"type": "delete_field_index", "field_name": "a"}])
        await collection.submit([create_index_operation("b", "integer")])
        await patch(collection, {"max_payload_index_count": 2})
        await collection.submit([create_index_operation("c", "float")])
        assert set(collection.payload_index.fields) == {"b", "c"}


# -- search limits and exact ---------------------------------------------------------------


async def test_query_limit_and_exact_for_scroll_count_and_facet(tmp_path):
    async with running(tmp_path / "c", config_with(on(max_query_limit=3, search_allow_exact=False))) as collection:
        await upsert(collection, [1, 2, 3, 4])
        await collection.submit([create_index_operation("n", "integer")])
        with pytest.raises(BadInput) as raised:
            collection.engine.scroll({"limit": 4})
        assert raised.value.message == limit_message(4, 3, "limit")
        assert len(collection.engine.scroll({})[0]) == 4  # no limit given: not checked, as in Qdrant
        exact = "Bad request: Exact search disabled!. Help: Set exact=false."
        with pytest.raises(BadInput) as raised:
            collection.engine.count({})  # count is exact by default
        assert raised.value.message == exact
        assert collection.engine.count({"exact": False}) == 4
        with pytest.raises(BadInput, match=re.escape(limit_message(5, 3, "limit"))):
            collection.engine.facet({"key": "n", "limit": 5})
        with pytest.raises(BadInput, match=re.escape(exact)):
            collection.engine.facet({"key": "n", "exact": True})
        assert len(collection.engine.facet({"key": "n", "limit": 3})) == 3


async def test_query_tree_order_groups_and_matrix_limits(tmp_path):
    strict_mode = on(max_query_limit=12, unindexed_filtering_retrieve=False, search_max_hnsw_ef=10)
    async with running(tmp_path / "c", config_with(strict_mode)) as collection:
        await upsert(collection, [1, 2, 3])
        engine = collection.engine
        unindexed = {"must": [{"key": "n", "match": {"value": 1}}]}
        # prefetches first, then the root's limit before its filter, params last
        request = {
            "prefetch": {"query": [0.1] * DIM, "limit": 13},
            "query": [0.1] * DIM, "limit": 20, "filter": unindexed, "params": {"hnsw_ef": 11},
        }
        with pytest.raises(BadInput, match=re.escape(limit_message(13, 12, "limit"))):
            engine.prepare(request)
        request["prefetch"]["limit"] = 5
        with pytest.raises(BadInput, match=re.escape(limit_message(20, 12, "limit"))):
            engine.prepare(request)
        request["limit"] = 5
        with pytest.raises(BadInput, match='Index required but not found for "n"'):
            engine.prepare(request)
        del request["filter"]
        with pytest.raises(BadInput, match=re.escape(limit_message(11, 10, "hnsw_ef"))):
            engine.prepare(request)
        # an invalid filter is refused before any strict mode check
        with pytest.raises(BadInput, match="Bad filter|Format error|Wrong input"):
            engine.prepare({"query": [0.1] * DIM, "limit": 50, "filter": {"must": [{"key": "n", "range": {"gt": "x"}}]}})

        # groups: limit x group_size (defaults 10 and 3), group_by needs a match index
        groups = {"query": [0.1] * DIM, "group_by": "n", "limit": 4, "group_size": 3}
        with pytest.raises(BadInput) as raised:
            engine.prepare(groups)
        assert raised.value.message == (
            'Bad request: Index required but not found for "n". Help: Create an index supporting `match` for this key.'
        )
        await collection.submit([create_index_operation("n", "float")])
        with pytest.raises(BadInput, match=re.escape('Index of type "Float" found for "n"')):
            engine.prepare(groups)
        await collection.submit([create_index_operation("n", "integer")])
        engine.prepare(groups)
        with pytest.raises(BadInput, match=re.escape(limit_message(30, 12, "limit"))):
            engine.prepare({"query": [0.1] * DIM, "group_by": "n"})
        # distance matrix: sample x limit
        with pytest.raises(BadInput, match=re.escape(limit_message(15, 12, "limit"))):
            engine.prepare({"sample": 5, "limit": 3})
        engine.matrix(engine.prepare({"sample": 4, "limit": 3}))


async def test_full_scan_refused_without_hnsw_unless_a_tenant_filter_has_graphs(tmp_path):
    config = config_with(on(search_allow_exact=False), hnsw_config={"m": 0})
    async with running(tmp_path / "c", config) as collection:
        await upsert(collection, [1, 2, 3])
        await collection.submit([create_index_operation("tenant", {"type": "keyword", "is_tenant": True})])
        engine = collection.engine
        nearest = {"query": {"nearest": [0.1] * DIM}, "limit": 3}
        with pytest.raises(BadInput) as raised:
            engine.prepare(nearest)
        assert raised.value.message == (
            "Bad request: Request is forbidden because global vector indexing is disabled (hnsw_config.m = 0). "
            "Help: Use tenant-specific filter, enable global vector indexing or enable strict mode `search_allow_exact` option"
        )
        tenant = {**nearest, "filter": {"must": [{"key": "tenant", "match": {"value": "a"}}]}}
        with pytest.raises(BadInput, match=re.escape("(hnsw_config.m = 0 and hnsw_config.payload_m = 0)")):
            engine.prepare(tenant)  # payload_m falls back to m
        # a query that is no vector search, or rescores prefetches, is not a full scan
        engine.prepare({"query": {"order_by": "n"}, "limit": 3})
        engine.prepare({"prefetch": {"limit": 3}, "query": {"nearest": [0.1] * DIM}, "limit": 3})
        with pytest.raises(BadInput, match="global vector indexing is disabled"):
            engine.prepare({"prefetch": nearest, "query": {"fusion": "rrf"}})
    config = config_with(on(search_allow_exact=False), hnsw_config={"m": 0, "payload_m": 16})
    async with running(tmp_path / "d", config) as collection:
        await collection.submit([create_index_operation("tenant", {"type": "keyword", "is_tenant": True})])
        collection.engine.prepare({**tenant})
        await patch(collection, {"search_allow_exact": True})
        collection.engine.prepare(nearest)


# -- rate limits ---------------------------------------------------------------------------


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_write_rate_limit_costs_the_points_touched_and_refills(tmp_path):
    async with running(tmp_path / "c", config_with(on(write_rate_limit=6))) as collection:
        clock = Clock()
        collection.rate_limits = strict.RateLimits(collection.config, clock)
        await upsert(collection, [1, 2, 3, 4])  # 4 tokens of 6
        message = (
            "Rate limiting exceeded: Write rate limit exceeded: Operation requires 3 tokens but only 2.0 were "
            "available. Retry after 10s"
        )
        await refused(collection, prepare_upsert(collection.schema, points([5, 6, 7])), message, RateLimited)
        clock.now += 10  # 6 a minute: one token every 10 s
        await upsert(collection, [5, 6, 7])
        # a filtered write costs the points it matches (3 here), at least 1
        clock.now += 30
        await collection.submit([{"type": "set_payload", "payload": {"a": 1}, "filter": {"must": [{"key": "n", "range": {"gte": 5}}]}}])
        with pytest.raises(RateLimited) as raised:
            await collection.submit([{"type": "delete_points", "ids": [1]}])
        assert raised.value.retry_after_s == pytest.approx(10.0)
        big = prepare_upsert(collection.schema, points(range(100, 107)))
        await refused(
            collection,
            big,
            "Rate limiting exceeded: Write rate limit exceeded, request larger than rate limiter capacity, "
            "please try to split your request",
            RateLimited,
        )
        # payload index changes are not rate limited (collection meta operations in Qdrant)
        await collection.submit([create_index_operation("n", "integer")])
        # a config update makes new, full buckets; disabling removes them
        await patch(collection, {"write_rate_limit": 7})
        await collection.submit([big])
        await patch(collection, {"enabled": False})
        for i in range(3):
            await upsert(collection, range(200 + 10 * i, 210 + 10 * i))


async def test_read_rate_limit_costs_requests_and_filter_conditions(tmp_path):
    async with running(tmp_path / "c", config_with(on(read_rate_limit=4))) as collection:
        clock = Clock()
        collection.rate_limits = strict.RateLimits(collection.config, clock)
        await upsert(collection, [1, 2, 3])
        assert collection.engine.count({"exact": True}) == 3  # 1 token
        two_conditions = {"must": [{"key": "n", "range": {"gte": 0}}, {"has_id": [1, 2]}]}
        assert collection.engine.count({"filter": two_conditions}) == 2  # 1 + 2 tokens
        with pytest.raises(RateLimited) as raised:
            collection.engine.retrieve({"ids": [1, 2]})  # 2 tokens, none left
        assert raised.value.message == (
            "Rate limiting exceeded: Read rate limit exceeded: Operation requires 2 tokens but only 0.0 were "
            "available. Retry after 30s"
        )
        clock.now += 30  # 4 a minute: one token every 15 s
        assert len(collection.engine.retrieve({"ids": [1, 2]})) == 2
        # a search costs its query vectors plus its filters' conditions
        clock.now += 60
        query = collection.engine.prepare({"query": {"nearest": [0.1] * DIM}, "filter": two_conditions})
        collection.engine.points(query)  # 3 tokens
        with pytest.raises(RateLimited):
            collection.engine.points(query)
        await patch(collection, {"read_rate_limit": 100})
        collection.engine.points(query)


# -- unindexed filtering: the index each condition needs -----------------------------------


def table(fields: dict) -> PayloadIndexTable:
    return PayloadIndexTable(Path("/nonexistent/payload_index.json"), fields)


U = "550e8400-e29b-41d4-a716-446655440000"


@pytest.mark.parametrize(
    ("condition", "serving", "not_serving", "types"),
    [
        ({"key": "f", "match": {"value": "red"}}, ["keyword"], ["uuid", "text", "integer"], ["keyword"]),
        ({"key": "f", "match": {"value": U}}, ["keyword", "uuid"], ["text"], ["keyword", "uuid"]),
        ({"key": "f", "match": {"any": ["a", "b"]}}, ["keyword"], ["uuid"], ["keyword"]),
        ({"key": "f", "match": {"except": [1, 2]}}, ["integer"], ["float", {"type": "integer", "lookup": False, "range": True}], ["integer"]),
        ({"key": "f", "match": {"value": 3}}, ["integer"], ["keyword", "float"], ["integer"]),
        ({"key": "f", "match": {"value": True}}, ["bool"], ["keyword", "integer"], ["bool"]),
        ({"key": "f", "range": {"gte": 1.5}}, ["float", "integer"], ["keyword", {"type": "integer", "lookup": True, "range": False}], ["float", "integer"]),
        ({"key": "f", "range": {"gte": "2024-01-01T00:00:00Z"}}, ["datetime"], ["float", "keyword"], ["datetime"]),
        ({"key": "f", "geo_radius": {"center": {"lat": 0, "lon": 0}, "radius": 1}}, ["geo"], ["keyword"], ["geo"]),
        ({"key": "f", "match": {"text": "hello"}}, ["text"], ["keyword"], ["text"]),
        ({"key": "f", "match": {"phrase": "hello world"}}, [{"type": "text", "phrase_matching": True}], ["text", "keyword"], ["text"]),
        (
            {"is_empty": {"key": "f"}},
            ["keyword", "geo", "bool", "text"],
            [],
            ["bool", "datetime", "float", "geo", "integer", "keyword", "text", "uuid"],
        ),
        ({"is_null": {"key": "f"}}, ["integer", "uuid"], [], None),
        ({"key": "f", "values_count": {"gt": 1}}, ["float"], [], None),
    ],
)
def test_each_condition_needs_an_index_that_can_answer_it(condition, serving, not_serving, types):
    filter_ = {"must": [condition]}
    for schema in serving:
        assert table({"f": schema}).missing_index(filter_) is None, schema
    for schema in [None, *not_serving]:
        missing = table({} if schema is None else {"f": schema}).missing_index(filter_)
        assert missing is not None and missing[0] == "f", schema
        if types is not None:
            assert missing[1] == types


def test_has_id_needs_no_index_and_nested_keys_need_theirs():
    assert table({}).missing_index({"must": [{"has_id": [1]}, {"has_vector": "v"}]}) is None
    nested = {"must": [{"nested": {"key": "cars", "filter": {"must": [{"key": "brand", "match": {"value": "x"}}]}}}]}
    assert table({"cars[].brand": "keyword"}).missing_index(nested) is None
    assert table({"brand": "keyword"}).missing_index(nested) == ("cars[].brand", ["keyword"])


async def test_unindexed_filtering_messages_and_no_write_logged(tmp_path):
    strict_mode = on(unindexed_filtering_retrieve=False, unindexed_filtering_update=False)
    async with running(tmp_path / "c", config_with(strict_mode)) as collection:
        await upsert(collection, [1, 2])
        ranged = {"must": [{"key": "n", "range": {"gt": 0}}]}
        message = (
            'Bad request: Index required but not found for "n" of one of the following types: [float, integer]. '
            "Help: Create an index for this key or use a different filter."
        )
        with pytest.raises(BadInput) as raised:
            collection.engine.count({"filter": ranged})
        assert raised.value.message == message
        await refused(collection, {"type": "delete_points", "filter": ranged}, message)
        await collection.submit([create_index_operation("n", {"type": "integer", "lookup": True, "range": False})])
        await refused(collection, {"type": "delete_points", "filter": ranged}, message)
        await collection.submit([create_index_operation("n", "float")])
        await collection.submit([{"type": "delete_points", "filter": ranged}])
        assert collection.points_count() == 0
        await patch(collection, {"unindexed_filtering_retrieve": True})
        assert collection.engine.count({"filter": {"must": [{"key": "other", "match": {"value": 1}}]}}) == 0


async def test_formula_fields_need_indexes(tmp_path):
    async with running(tmp_path / "c", config_with(on(unindexed_filtering_retrieve=False))) as collection:
        await upsert(collection, [1, 2])
        engine = collection.engine
        formula = {
            "sum": [
                "$score",
                {"mult": ["price", 2]},
                {"exp_decay": {"x": {"geo_distance": {"origin": {"lat": 0, "lon": 0}, "to": "where"}}}},
                {"key": "tag", "match": {"value": "a"}},
            ]
        }
        request = {"prefetch": {"limit": 5}, "query": {"formula": formula}, "limit": 5}
        help_ = "Help: Create an index for this key or use a different formula expression."
        for key, types, schema in (
            ("price", "[float, integer]", {"type": "integer", "lookup": True, "range": True}),
            ("where", "[geo]", "geo"),
            ("tag", "[keyword]", "keyword"),
        ):
            with pytest.raises(BadInput) as raised:
                engine.prepare(request)
            assert raised.value.message == f'Bad request: Index required but not found for "{key}" of one of the following types: {types}. {help_}'
            await collection.submit([create_index_operation(key, schema)])
        engine.prepare(request)


def test_mb_is_printed_as_rust_prints_an_f32():
    assert strict._mb(1024 * 1024) == "1"
    assert strict._mb(512 * 1024) == "0.5"
    assert strict._mb(1_000_000) == "0.9536743"
    assert strict._mb(3 * 1024 * 1024 + 1) == "3.000001"


def test_nothing_is_checked_when_strict_mode_is_disabled(tmp_path):
    config = config_with({"enabled": False, "max_points_count": 1, "upsert_max_batchsize": 1, "max_timeout": 1})
    strict.check_timeout(config, 100)
    operation = {"type": "upsert", "points": [{"id": i, "vectors": {}} for i in range(5)]}
    strict.check_write(config, table({}), operation, strict.SizeStats(10**9, 10**9, 10**9))
    assert strict.needs_size_stats(config, [operation]) is False
    limits = strict.RateLimits(config_with({"enabled": False, "read_rate_limit": 1, "write_rate_limit": 1}))
    assert limits.read is None and limits.write is None
    for _ in range(5):
        limits.take_read(1)
        limits.take_write(1)
    assert np.isclose(strict.RateLimiter(60).per_second, 1.0)
