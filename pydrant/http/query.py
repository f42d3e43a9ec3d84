"""Universal Query API: `POST /collections/{name}/points/query`, `/query/batch`, `/query/groups`.

The request models are the spec's; the plain request goes to the query engine
(collection/query.py), which every other search endpoint also ends in.
"""

from __future__ import annotations

from quart import Blueprint

from pydrant.http import spec_models as models
from pydrant.http.context import toc
from pydrant.http.envelope import body, ok
from pydrant.http.search_common import (
    check_filters,
    check_queries,
    engine_of,
    grouped_json,
    read_query_params,
    run_off_loop,
    scored_points,
    selectors,
)
from pydrant.http.validation import to_plain

blueprint = Blueprint("query", __name__)


def query_points_json(collection, request: dict) -> dict:
    """Blocking: run one query and build its `QueryResponse`."""
    with_payload, with_vector = selectors(collection, request)
    hits = engine_of(collection).query(request)
    return {"points": scored_points(collection, hits, with_payload, with_vector)}


@blueprint.post("/collections/<name>/points/query")
async def query_points(name: str):
    read_query_params()
    collection = toc().get(name)
    request = to_plain(await body(models.QueryRequest, optional=True)) or {}
    check_queries(request)
    check_filters(collection, request)
    return ok(await run_off_loop(query_points_json, collection, request))


@blueprint.post("/collections/<name>/points/query/batch")
async def query_batch(name: str):
    read_query_params()
    collection = toc().get(name)
    requests = to_plain(await body(models.QueryRequestBatch))["searches"]
    for request in requests:
        check_queries(request)
        check_filters(collection, request)

    def run():
        engine = engine_of(collection)
        results = []
        for request, hits in zip(requests, engine.query_batch(requests)):
            with_payload, with_vector = selectors(collection, request)
            results.append({"points": scored_points(collection, hits, with_payload, with_vector)})
        return results

    return ok(await run_off_loop(run))


@blueprint.post("/collections/<name>/points/query/groups")
async def query_groups(name: str):
    read_query_params()
    collection = toc().get(name)
    request = to_plain(await body(models.QueryGroupsRequest))
    check_queries(request)
    check_filters(collection, request)
    return ok(await run_off_loop(groups_json, collection, request))


def groups_json(collection, request: dict) -> dict:
    """Blocking: a groups request (query, search or recommend shape, as a query) answered."""
    with_payload, with_vector = selectors(collection, request)
    group_by = request.pop("group_by")
    group_size = request.pop("group_size", None) or 3
    limit = request.pop("limit", None) or 10
    with_lookup = request.pop("with_lookup", None)
    groups = engine_of(collection).query_groups(request, group_by, group_size, limit)
    return grouped_json(collection, groups, with_payload, with_vector, with_lookup)
