"""Collections API: create, get, list, exists, update, delete."""

from __future__ import annotations

from quart import Blueprint

from pydrant.http import spec_models as models

from pydrant.http.auth import may_read
from pydrant.http.context import check_write_allowed, toc
from pydrant.http.envelope import json_from_bytes, off_loop, ok, query_int, raw_body
from pydrant.http.validation import deserialize, to_plain
from pydrant.storage.names import validate_name

blueprint = Blueprint("collections", __name__)


@blueprint.get("/collections")
async def list_collections():
    names = sorted([*toc().collections, *toc().failed])
    names = [name for name in names if may_read(name, toc().aliases)]  # as Qdrant: what the caller may see
    return ok({"collections": [{"name": name} for name in names]})


@blueprint.get("/collections/<name>")
async def get_collection(name: str):
    failed = toc().failed_info(name)
    if failed is not None:  # status red, the cause in optimizer_status
        return ok(failed)
    collection = toc().get(name)
    return ok(await off_loop(collection.info))


@blueprint.get("/collections/<name>/exists")
async def collection_exists(name: str):
    return ok({"exists": toc().exists(name)})


@blueprint.put("/collections/<name>")
async def create_collection(name: str):
    query_int("timeout", minimum=1)
    validate_name(name)
    request = await _validated(models.CreateCollection)
    check_write_allowed()
    await toc().create_collection(name, request)
    return ok(True)


@blueprint.patch("/collections/<name>")
async def update_collection(name: str):
    query_int("timeout", minimum=1)
    request = await _validated(models.UpdateCollection)
    check_write_allowed()
    await toc().update_collection(name, request)
    return ok(True)


@blueprint.delete("/collections/<name>")
async def delete_collection(name: str):
    query_int("timeout", minimum=1)
    check_write_allowed()
    return ok(await toc().delete_collection(name))


async def _validated(model) -> dict:
    """The body validated into `model`, as plain JSON. `metadata` is taken as sent: the
    plain form leaves out null values, and in metadata a null is a value (stored as given
    on create, and removing the key when a PATCH merges it, as in Qdrant)."""
    data = json_from_bytes(await raw_body(), optional=True)
    if data is None:
        return {}
    request = to_plain(deserialize(model, data)) or {}
    if isinstance(data, dict) and isinstance(data.get("metadata"), dict):
        request["metadata"] = data["metadata"]
    return request
