"""Aliases API: atomic alias actions and listings."""

from __future__ import annotations

from pydrant.http import spec_models as models
from quart import Blueprint

from pydrant.http.auth import may_read
from pydrant.http.context import check_write_allowed, toc
from pydrant.http.envelope import body, ok, query_int
from pydrant.http.validation import to_plain

blueprint = Blueprint("aliases", __name__)


@blueprint.post("/collections/aliases")
async def update_aliases():
    query_int("timeout", minimum=1)
    request = to_plain(await body(models.ChangeAliasesOperation))
    check_write_allowed()
    await toc().change_aliases(request["actions"])
    return ok(True)


@blueprint.get("/aliases")
async def list_aliases():
    # as Qdrant: aliases of the collections the caller may see, that it may use itself
    aliases = toc().aliases
    listed = [a for a in toc().list_aliases() if may_read(a["collection_name"], aliases) and may_read(a["alias_name"], aliases)]
    return ok({"aliases": listed})


@blueprint.get("/collections/<name>/aliases")
async def collection_aliases(name: str):
    aliases = toc().aliases
    return ok({"aliases": [a for a in toc().list_aliases(name) if may_read(a["alias_name"], aliases)]})
