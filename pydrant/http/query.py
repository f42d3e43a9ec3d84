"""Universal Query API: `POST /collections/{name}/points/query`, `/query/batch`, `/query/groups`.

The request models are the spec's; the plain request goes to the collection's engine
(collection/engine.py, collection/query.py), which every other search endpoint also ends in.
"""

from __future__ import annotations

from quart import Blueprint

from pydrant.http import spec_models as models
from pydrant.http.envelope import off_loop, ok
from pydrant.http.search_common import batch_json, groups_json, points_json, read_batch, read_request

blueprint = Blueprint("query", __name__)


@blueprint.post("/collections/<name>/points/query")
async def query_points(name: str):
    collection, query = await read_request(name, models.QueryRequest, optional=True)
    return ok({"points": await off_loop(points_json, collection, query)})


@blueprint.post("/collections/<name>/points/query/batch")
async def query_batch(name: str):
    collection, queries = await read_batch(name, models.QueryRequestBatch)
    results = await off_loop(batch_json, collection, queries)
    return ok([{"points": points} for points in results])


@blueprint.post("/collections/<name>/points/query/groups")
async def query_groups(name: str):
    collection, query = await read_request(name, models.QueryGroupsRequest)
    return ok(await off_loop(groups_json, collection, query))
