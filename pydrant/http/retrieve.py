"""Points read API: retrieve by ids, get one point, scroll, count.

Retrieve (`POST /points`), scroll and count read the shards their `shard_key` selects
(search_common.read_engine); `GET /points/{id}` has no shard key and reads every shard."""

from __future__ import annotations

from quart import Blueprint

from pydrant.errors import NotFound
from pydrant.http import spec_models as models
from pydrant.http.context import toc
from pydrant.http.envelope import body, ok
from pydrant.http.search_common import read_engine, read_timeout, take_shard_key, timed_read
from pydrant.http.render import record_json, records_json
from pydrant.http.validation import to_plain
from pydrant.segments.ids import normalize_id

blueprint = Blueprint("retrieve", __name__)


def _records_json(engine, request: dict) -> list[dict]:
    return records_json(engine.retrieve(request))


def _scroll_json(engine, request: dict) -> dict:
    records, next_offset = engine.scroll(request)
    return {"points": records_json(records), "next_page_offset": next_offset}


@blueprint.post("/collections/<name>/points")
async def retrieve_points(name: str):
    timeout = read_timeout()
    collection = toc().get(name)
    collection.engine.check_timeout(timeout)
    request = to_plain(await body(models.PointRequest))
    engine = read_engine(collection, take_shard_key(request))
    return ok(await timed_read("retrieve", timeout, _records_json, engine, request))


@blueprint.get("/collections/<name>/points/<point_id>")
async def get_point(name: str, point_id: str):
    collection = toc().get(name)
    parsed = normalize_id(int(point_id) if point_id.isdigit() else point_id)
    request = {"ids": [parsed], "with_payload": True, "with_vector": True}
    records = await timed_read("retrieve", None, collection.engine.retrieve, request)
    if not records:
        raise NotFound(f"Not found: Point with id {point_id} does not exists!")
    return ok(record_json(records[0]))


@blueprint.post("/collections/<name>/points/scroll")
async def scroll_points(name: str):
    timeout = read_timeout()
    collection = toc().get(name)
    collection.engine.check_timeout(timeout)
    request = to_plain(await body(models.ScrollRequest, optional=True)) or {}
    engine = read_engine(collection, take_shard_key(request))
    operation = "scroll_by_field" if request.get("order_by") is not None else "scroll_by_id"
    return ok(await timed_read(operation, timeout, _scroll_json, engine, request))


@blueprint.post("/collections/<name>/points/count")
async def count_points(name: str):
    timeout = read_timeout()
    collection = toc().get(name)
    collection.engine.check_timeout(timeout)
    request = to_plain(await body(models.CountRequest, optional=True)) or {}
    engine = read_engine(collection, take_shard_key(request))
    return ok({"count": await timed_read("count", timeout, engine.count, request)})
