"""Facet API: counts of the values of an indexed payload field (`POST /collections/{name}/facet`)."""

from __future__ import annotations

import trio
from quart import Blueprint

from pydrant.http import spec_models as models
from pydrant.http.context import toc
from pydrant.http.envelope import body, ok, query_int
from pydrant.http.validation import to_plain
from pydrant.segments.filters import compile_filter

blueprint = Blueprint("facet", __name__)


@blueprint.post("/collections/<name>/facet")
async def facet(name: str):
    query_int("timeout", minimum=1)
    collection = toc().get(name)
    request = to_plain(await body(models.FacetRequest))
    compile_filter(request.get("filter"))
    collection.check_filter_indexed(request.get("filter"), update=False)
    # Counts are always exact: the value-map indexes give them as cheaply as an estimate.
    hits = await trio.to_thread.run_sync(
        collection.reads.facet, request["key"], request.get("filter"), request.get("limit") or 10
    )
    return ok({"hits": hits})
