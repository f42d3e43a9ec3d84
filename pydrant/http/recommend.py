"""Recommendation API: `POST .../points/recommend`, `/recommend/batch`, `/recommend/groups`.

Converted to universal queries (`recommend` with the same examples and strategy); the
example points are excluded from the results, as in Qdrant.
"""

from __future__ import annotations

from quart import Blueprint

from pydrant.errors import BadInput
from pydrant.http import spec_models as models
from pydrant.http.envelope import ok
from pydrant.http.search_common import (
    GROUP_BY,
    answer,
    batch_json,
    example_query_base,
    groups_json,
    groups_of,
    points_json,
    read_batch,
    read_request,
)

blueprint = Blueprint("recommend", __name__)


def recommend_as_query(request: dict) -> dict:
    positive = request.get("positive") or []
    negative = request.get("negative") or []
    strategy = request.get("strategy") or "average_vector"
    if not positive and not negative:
        raise BadInput("Bad request: At least one positive or negative example is required")
    if strategy == "average_vector" and not positive:
        raise BadInput("Bad request: Positive vectors should not be empty with `average` strategy")
    query = example_query_base(request)
    query["query"] = {"recommend": {"positive": positive, "negative": negative, "strategy": strategy}}
    return query


@blueprint.post("/collections/<name>/points/recommend")
async def recommend(name: str):
    engine, query, timeout = await read_request(name, models.RecommendRequest, recommend_as_query)
    return ok(await answer(timeout, points_json, engine, query))


@blueprint.post("/collections/<name>/points/recommend/batch")
async def recommend_batch(name: str):
    batch, timeout = await read_batch(name, models.RecommendRequestBatch, recommend_as_query)
    return ok(await answer(timeout, batch_json, batch))


@blueprint.post("/collections/<name>/points/recommend/groups")
async def recommend_groups(name: str):
    engine, query, timeout = await read_request(name, models.RecommendGroupsRequest, groups_of(recommend_as_query))
    return ok(await answer(timeout, groups_json, engine, query, operation=GROUP_BY))
