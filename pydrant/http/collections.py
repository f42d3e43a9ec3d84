"""Collections API: create, get, list, exists, update, delete."""

from __future__ import annotations

from quart import Blueprint

from pydrant.http import spec_models as models

from pydrant.http.context import check_write_allowed, toc
from pydrant.http.envelope import body, off_loop, ok, query_int
from pydrant.http.validation import to_plain
from pydrant.storage.names import validate_name

blueprint = Blueprint("collections", __name__)


@blueprint.get("/collections")
async def list_collections():
    names = sorted([*toc().collections, *toc().failed])
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
    request = to_plain(await body(models.CreateCollection, optional=True)) or {}
    check_write_allowed()
    await toc().create_collection(name, request)
    return ok(True)


@blueprint.patch("/collections/<name>")
async def update_collection(name: str):
    query_int("timeout", minimum=1)
    request = to_plain(await body(models.UpdateCollection, optional=True)) or {}
    check_write_allowed()
    await toc().update_collection(name, request)
    return ok(True)


@blueprint.delete("/collections/<name>")
async def delete_collection(name: str):
    query_int("timeout", minimum=1)
    check_write_allowed()
    return ok(await toc().delete_collection(name))
