"""Universal Query API: `POST /collections/{name}/points/query`, `/query/batch`, `/query/groups`.

The request models are the spec's; the plain request goes to the collection's engine
(collection/engine.py, collection/query.py), which every other search endpoint also ends in.
"""

from __future__ import annotations

from quart import Blueprint

from pydrant.http import spec_models as models
from pydrant.http.envelope import ok
from pydrant.http.search_common import GROUP_BY, answer, batch_json, groups_json, points_json, read_batch, read_request

blueprint = Blueprint("query", __name__)


@blueprint.post("/collections/<name>/points/query")
async def query_points(name: str):
    engine, query, timeout = await read_request(name, models.QueryRequest, optional=True)
    return ok({"points": await answer(timeout, points_json, engine, query)})


@blueprint.post("/collections/<name>/points/query/batch")
async def query_batch(name: str):
    batch, timeout = await read_batch(name, models.QueryRequestBatch)
    results = await answer(timeout, batch_json, batch)
    return ok([{"points": points} for points in results])


@blueprint.post("/collections/<name>/points/query/groups")
async def query_groups(name: str):
    engine, query, timeout = await read_request(name, models.QueryGroupsRequest)
    return ok(await answer(timeout, groups_json, engine, query, operation=GROUP_BY))
