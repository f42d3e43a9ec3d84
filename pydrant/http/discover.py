"""Discovery API: `POST .../points/discover` and `/discover/batch`.

With a target: a `discover` query (context pairs rank, the target breaks ties within a
rank). Without one: a `context` query (only the pairs score); neither is a 400, as in
Qdrant's `discover_batch`. Example points are excluded.
"""

from __future__ import annotations

from quart import Blueprint

from pydrant.errors import BadInput
from pydrant.http import spec_models as models
from pydrant.http.envelope import ok
from pydrant.http.search_common import answer, batch_json, example_query_base, points_json, read_batch, read_request

blueprint = Blueprint("discover", __name__)


def discover_as_query(request: dict) -> dict:
    query = example_query_base(request)
    context = request.get("context") or []
    if request.get("target") is None and not context:
        raise BadInput("Bad request: target and/or context_pairs must be specified")
    if request.get("target") is not None:
        query["query"] = {"discover": {"target": request["target"], "context": context}}
    else:
        query["query"] = {"context": context}
    return query


@blueprint.post("/collections/<name>/points/discover")
async def discover(name: str):
    engine, query, timeout = await read_request(name, models.DiscoverRequest, discover_as_query)
    return ok(await answer(timeout, points_json, engine, query))


@blueprint.post("/collections/<name>/points/discover/batch")
async def discover_batch(name: str):
    batch, timeout = await read_batch(name, models.DiscoverRequestBatch, discover_as_query)
    return ok(await answer(timeout, batch_json, batch))
