"""Recommendation API: `POST .../points/recommend`, `/recommend/batch`, `/recommend/groups`.

Converted to universal queries (`recommend` with the same examples and strategy); the
example points are excluded from the results, as in Qdrant.
"""

from __future__ import annotations

from quart import Blueprint

from pydrant.errors import BadInput
from pydrant.http import spec_models as models
from pydrant.http.context import toc
from pydrant.http.envelope import body, ok
from pydrant.http.query import groups_json
from pydrant.http.search import COMMON_KEYS, batch_json, points_json
from pydrant.http.search_common import check_filters, read_query_params, run_off_loop
from pydrant.http.validation import to_plain
from pydrant.segments.types import DEFAULT_VECTOR

blueprint = Blueprint("recommend", __name__)


def recommend_as_query(request: dict) -> dict:
    positive = request.get("positive") or []
    negative = request.get("negative") or []
    strategy = request.get("strategy") or "average_vector"
    if not positive and not negative:
        raise BadInput("Bad request: At least one positive or negative example is required")
    if strategy == "average_vector" and not positive:
        raise BadInput("Bad request: Positive vectors should not be empty with `average` strategy")
    query = {key: request[key] for key in COMMON_KEYS if key in request}
    query["query"] = {"recommend": {"positive": positive, "negative": negative, "strategy": strategy}}
    if request.get("using") is not None:
        query["using"] = request["using"]
    lookup_from = request.get("lookup_from")
    if lookup_from is not None:  # without a `vector`: the default one, not `using` (unlike the query API)
        query["lookup_from"] = dict(lookup_from, vector=lookup_from.get("vector") or DEFAULT_VECTOR)
    return query


@blueprint.post("/collections/<name>/points/recommend")
async def recommend(name: str):
    read_query_params()
    collection = toc().get(name)
    request = recommend_as_query(to_plain(await body(models.RecommendRequest)))
    check_filters(collection, request)
    return ok(await run_off_loop(points_json, collection, request))


@blueprint.post("/collections/<name>/points/recommend/batch")
async def recommend_batch(name: str):
    read_query_params()
    collection = toc().get(name)
    requests = [recommend_as_query(r) for r in to_plain(await body(models.RecommendRequestBatch))["searches"]]
    for request in requests:
        check_filters(collection, request)
    return ok(await run_off_loop(batch_json, collection, requests))


@blueprint.post("/collections/<name>/points/recommend/groups")
async def recommend_groups(name: str):
    read_query_params()
    collection = toc().get(name)
    raw = to_plain(await body(models.RecommendGroupsRequest))
    request = recommend_as_query(raw)
    request.pop("offset", None)
    for key in ("group_by", "group_size", "with_lookup"):
        if key in raw:
            request[key] = raw[key]
    check_filters(collection, request)
    return ok(await run_off_loop(groups_json, collection, request))
