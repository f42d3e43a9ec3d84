"""Points read API: retrieve by ids, get one point, scroll, count."""

from __future__ import annotations

import numpy as np
import trio
from pydrant.http import spec_models as models
from quart import Blueprint

from pydrant.errors import BadInput, NotFound
from pydrant.http.context import toc
from pydrant.http.envelope import body, ok, query_int
from pydrant.http.validation import to_plain
from pydrant.segments.filters import compile_filter
from pydrant.segments.ids import normalize_id
from pydrant.segments.types import DEFAULT_VECTOR, Record, SparseVector

blueprint = Blueprint("retrieve", __name__)


def vector_json(value):
    if isinstance(value, SparseVector):
        return {"indices": value.indices.tolist(), "values": value.values.tolist()}
    if isinstance(value, np.ndarray):
        return value.astype(np.float32).tolist() if value.dtype == np.float16 else value.tolist()
    return value


def vectors_json(vectors: dict | None):
    """Qdrant's output form: a bare list for the unnamed vector, else name -> vector."""
    if vectors is None:
        return None
    if set(vectors) == {DEFAULT_VECTOR}:
        return vector_json(vectors[DEFAULT_VECTOR])
    return {name: vector_json(v) for name, v in vectors.items()}


def record_json(record: Record) -> dict:
    return {
        "id": record.id,
        "payload": record.payload,
        "vector": vectors_json(record.vectors),
        "shard_key": None,
        "order_value": record.order_value,
    }


def vector_selector(collection, selector):
    """Validated `with_vector`: True/False or a list of existing names."""
    if isinstance(selector, list):
        known = set(collection.schema.names())
        unknown = next((n for n in selector if n not in known), None)
        if unknown is not None:
            raise BadInput(f"Wrong input: Not existing vector name error: {unknown}")
    return selector if selector is not None else False


@blueprint.post("/collections/<name>/points")
async def retrieve_points(name: str):
    query_int("timeout", minimum=1)
    collection = toc().get(name)
    request = to_plain(await body(models.PointRequest))
    ids = [normalize_id(i) for i in request["ids"]]
    with_payload = request.get("with_payload", True)
    with_vector = vector_selector(collection, request.get("with_vector", False))
    records = await trio.to_thread.run_sync(collection.reads.retrieve, ids, with_payload, with_vector)
    return ok([record_json(r) for r in records])


@blueprint.get("/collections/<name>/points/<point_id>")
async def get_point(name: str, point_id: str):
    collection = toc().get(name)
    parsed = normalize_id(int(point_id) if point_id.isdigit() else point_id)
    records = await trio.to_thread.run_sync(collection.reads.retrieve, [parsed], True, True)
    if not records:
        raise NotFound(f"Not found: Point with id {point_id} does not exists!")
    return ok(record_json(records[0]))


@blueprint.post("/collections/<name>/points/scroll")
async def scroll_points(name: str):
    query_int("timeout", minimum=1)
    collection = toc().get(name)
    request = to_plain(await body(models.ScrollRequest, optional=True)) or {}
    compile_filter(request.get("filter"))
    collection.check_filter_indexed(request.get("filter"), update=False)
    with_payload = request.get("with_payload", True)
    with_vector = vector_selector(collection, request.get("with_vector", False))
    limit = request.get("limit", 10)
    order_by = request.get("order_by")
    if order_by is not None:
        if request.get("offset") is not None:
            raise BadInput(
                "Bad request: Cannot use an `offset` when using `order_by`. The alternative for paging is to use "
                "`order_by.start_from` and a filter to exclude the IDs that you've already seen for the "
                "`order_by.start_from` value"
            )
        order_by = {"key": order_by} if isinstance(order_by, str) else order_by
        records = await trio.to_thread.run_sync(
            collection.reads.scroll_ordered, order_by, limit, request.get("filter"), with_payload, with_vector
        )
        return ok({"points": [record_json(r) for r in records], "next_page_offset": None})
    offset = normalize_id(request["offset"]) if request.get("offset") is not None else None
    records, next_offset = await trio.to_thread.run_sync(
        collection.reads.scroll, offset, limit, request.get("filter"), with_payload, with_vector
    )
    return ok({"points": [record_json(r) for r in records], "next_page_offset": next_offset})


@blueprint.post("/collections/<name>/points/count")
async def count_points(name: str):
    query_int("timeout", minimum=1)
    collection = toc().get(name)
    request = to_plain(await body(models.CountRequest, optional=True)) or {}
    compile_filter(request.get("filter"))
    collection.check_filter_indexed(request.get("filter"), update=False)
    count = await trio.to_thread.run_sync(collection.reads.count, request.get("filter"), request.get("exact", True))
    return ok({"count": count})
