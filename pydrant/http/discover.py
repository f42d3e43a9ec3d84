"""Discovery API: `POST .../points/discover` and `/discover/batch`.

With a target: a `discover` query (context pairs rank, the target breaks ties within a
rank). Without one: a `context` query (only the pairs score); neither is a 400, as in
Qdrant's `discover_batch`. Example points are excluded.
"""

from __future__ import annotations

from quart import Blueprint

from pydrant.errors import BadInput
from pydrant.http import spec_models as models
from pydrant.http.context import toc
from pydrant.http.envelope import body, ok
from pydrant.http.search import COMMON_KEYS, batch_json, points_json
from pydrant.http.search_common import check_filters, read_query_params, run_off_loop
from pydrant.http.validation import to_plain
from pydrant.segments.types import DEFAULT_VECTOR

blueprint = Blueprint("discover", __name__)


def discover_as_query(request: dict) -> dict:
    query = {key: request[key] for key in COMMON_KEYS if key in request}
    context = request.get("context") or []
    if request.get("target") is None and not context:
        raise BadInput("Bad request: target and/or context_pairs must be specified")
    if request.get("target") is not None:
        query["query"] = {"discover": {"target": request["target"], "context": context}}
    else:
        query["query"] = {"context": context}
    if request.get("using") is not None:
        query["using"] = request["using"]
    lookup_from = request.get("lookup_from")
    if lookup_from is not None:  # without a `vector`: the default one, not `using` (unlike the query API)
        query["lookup_from"] = dict(lookup_from, vector=lookup_from.get("vector") or DEFAULT_VECTOR)
    return query


@blueprint.post("/collections/<name>/points/discover")
async def discover(name: str):
    read_query_params()
    collection = toc().get(name)
    request = discover_as_query(to_plain(await body(models.DiscoverRequest)))
    check_filters(collection, request)
    return ok(await run_off_loop(points_json, collection, request))


@blueprint.post("/collections/<name>/points/discover/batch")
async def discover_batch(name: str):
    read_query_params()
    collection = toc().get(name)
    requests = [discover_as_query(r) for r in to_plain(await body(models.DiscoverRequestBatch))["searches"]]
    for request in requests:
        check_filters(collection, request)
    return ok(await run_off_loop(batch_json, collection, requests))
