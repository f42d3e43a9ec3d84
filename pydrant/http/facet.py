"""Facet API: counts of the values of an indexed payload field (`POST /collections/{name}/facet`),
over the shards the request's `shard_key` selects (every shard without one)."""

from __future__ import annotations

from quart import Blueprint

from pydrant.http import spec_models as models
from pydrant.http.context import toc
from pydrant.http.envelope import body, ok
from pydrant.http.search_common import read_engine, read_timeout, take_shard_key, timed_read
from pydrant.http.validation import to_plain

blueprint = Blueprint("facet", __name__)


@blueprint.post("/collections/<name>/facet")
async def facet(name: str):
    timeout = read_timeout()
    collection = toc().get(name)
    collection.engine.check_timeout(timeout)
    request = to_plain(await body(models.FacetRequest))
    engine = read_engine(collection, take_shard_key(request))
    return ok({"hits": await timed_read("facet", timeout, engine.facet, request)})
