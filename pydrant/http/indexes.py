"""Payload field index API: create and delete (pydrant/collection/payload_index.py)."""

from __future__ import annotations

from quart import Blueprint

from pydrant.collection.payload_index import create_index_operation, delete_index_operation
from pydrant.http import spec_models as models
from pydrant.http.context import check_write_allowed, toc
from pydrant.http.envelope import body, ok, write_params
from pydrant.http.validation import to_plain

blueprint = Blueprint("indexes", __name__)


@blueprint.put("/collections/<name>/index")
async def create_field_index(name: str):
    wait = write_params()
    collection = toc().get(name)
    request = to_plain(await body(models.CreateFieldIndex))
    operation = create_index_operation(request["field_name"], request.get("field_schema"))
    check_write_allowed()
    # submit: strict mode (max_payload_index_count, write rate limit) before it is logged
    op_num, status = (await collection.submit([operation], wait=wait))[0]
    return ok({"operation_id": op_num, "status": status})


@blueprint.delete("/collections/<name>/index/<path:field_name>")
async def delete_field_index(name: str, field_name: str):
    wait = write_params()
    collection = toc().get(name)
    check_write_allowed()
    op_num, status = (await collection.submit([delete_index_operation(field_name)], wait=wait))[0]
    return ok({"operation_id": op_num, "status": status})
