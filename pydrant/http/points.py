"""Points update API: upsert, delete, vectors, payload, and batches of these.

Each handler turns the request into engine operations (collection/operations.py) — fully
validated first, so a bad request writes nothing — and hands them to the collection's
update worker. `wait=true` answers "completed" once applied; `wait=false` answers
"acknowledged" once the WAL record is durable.
"""

from __future__ import annotations

import numpy as np
from quart import Blueprint

from pydrant.http import spec_models as models

from pydrant.collection.apply import IDS_MUST_EXIST
from pydrant.collection.points import prepare_update_vectors, prepare_upsert
from pydrant.errors import BadInput
from pydrant.http.context import check_write_allowed, toc
from pydrant.http.bulk_json import parse_upsert_body
from pydrant.http.envelope import body, json_from_bytes, off_loop, ok, write_params
from pydrant.http.validation import deserialize, to_plain
from pydrant.segments.filters import compile_filter
from pydrant.segments.ids import normalize_id
from pydrant.segments.payload import parse_path

blueprint = Blueprint("points", __name__)

UPSERT_KEYS = {"points", "batch", "shard_key", "update_filter"}
POINT_KEYS = {"id", "vector", "payload"}
BATCH_KEYS = {"ids", "vectors", "payloads"}


async def _submit(collection, operations: list[dict], wait: bool) -> list[dict]:
    for operation in operations:
        collection.check_filter_indexed(operation.get("filter"), update=True)
        collection.check_filter_indexed(operation.get("update_filter"), update=True)
    _require_existing_ids(collection, operations)
    results = []
    for operation in operations:
        op_num, status = await collection.update(operation, wait=wait)
        results.append({"operation_id": op_num, "status": status})
    return results


def _require_existing_ids(collection, operations: list[dict]) -> None:
    """Payload and vector updates by id need the points to exist (404, as Qdrant). The
    update worker checks it when it applies the operation (`IDS_MUST_EXIST`), in order
    with the writes before it: a point that an acknowledged upsert creates exists by then.

    A collection that refuses writes says so before anything is queued."""
    collection.check_writable()
    for operation in operations:
        if operation["type"] in ("upsert", "delete_points"):
            continue
        if operation.get("ids") or operation.get("points"):
            operation[IDS_MUST_EXIST] = True


# -- request bodies to engine operations ---------------------------------------------------


def _check_upsert_shape(data) -> None:
    """Cheap structural checks on the upsert hot path (full pydantic validation of a large
    vector batch would cost more than the whole write); the engine checks the rest."""
    if not isinstance(data, dict):
        raise BadInput("Json deserialize error: expected an object with `points` or `batch`")
    unknown = set(data) - UPSERT_KEYS
    if unknown:
        raise BadInput(f"Json deserialize error: unknown field `{sorted(unknown)[0]}`, expected `points` or `batch`")
    if "points" in data:
        if not isinstance(data["points"], list):
            raise BadInput("Json deserialize error: `points` must be a list")
        for i, point in enumerate(data["points"]):
            if not isinstance(point, dict) or "id" not in point:
                raise BadInput(f"Json deserialize error: points[{i}]: missing field `id`")
            extra = set(point) - POINT_KEYS
            if extra:
                raise BadInput(f"Json deserialize error: points[{i}]: unknown field `{sorted(extra)[0]}`")
    elif "batch" in data:
        if not isinstance(data["batch"], dict) or "ids" not in data["batch"]:
            raise BadInput("Json deserialize error: batch: missing field `ids`")
        extra = set(data["batch"]) - BATCH_KEYS
        if extra:
            raise BadInput(f"Json deserialize error: batch: unknown field `{sorted(extra)[0]}`")
        _check_batch_columns(data["batch"])
    else:
        raise BadInput("Json deserialize error: expected `points` or `batch`")


def _check_batch_columns(batch: dict) -> None:
    """Every column of a columnar upsert is a list (the spec's `Batch`): `ids`, `payloads`
    (or null), and `vectors`, a list or an object of one list per vector name. The engine
    lines the columns up by index; what is in each cell it checks itself."""
    if "vectors" not in batch:
        raise BadInput("Json deserialize error: batch: missing field `vectors`")
    if not isinstance(batch["ids"], list):
        raise BadInput("Json deserialize error: batch.ids: invalid type, expected a sequence")
    payloads = batch.get("payloads")
    if payloads is not None and not isinstance(payloads, list):
        raise BadInput("Json deserialize error: batch.payloads: invalid type, expected a sequence or null")
    vectors = batch.get("vectors")
    if isinstance(vectors, dict):
        for name, column in vectors.items():
            if not isinstance(column, (list, np.ndarray)):
                raise BadInput(f"Json deserialize error: batch.vectors.{name}: invalid type, expected a sequence")
    elif not isinstance(vectors, (list, np.ndarray)):
        raise BadInput("Json deserialize error: batch.vectors: invalid type, expected a sequence or a map of sequences")


def _upsert_body(raw: bytes) -> dict:
    data = parse_upsert_body(raw)
    if data is None:
        json_from_bytes(raw)  # the empty-body error
    return data


def upsert_operation(collection, data: dict) -> dict:
    _check_upsert_shape(data)
    operation = prepare_upsert(collection.schema, data)
    if data.get("update_filter"):
        deserialize(models.Filter, data["update_filter"])
        compile_filter(data["update_filter"])
        operation["update_filter"] = data["update_filter"]
    return operation


def _selection(selector: dict) -> dict:
    """`{"ids": [...]}` or `{"filter": {...}}` from a PointsSelector / points+filter body."""
    points = selector.get("points")
    filter_ = selector.get("filter")
    if points is not None and filter_ is not None:
        raise BadInput("Wrong input: use either `points` or `filter`, not both")
    if points is not None:
        if isinstance(points, dict):  # {"points": [...]} or {"filter": {...}} nested selector
            return _selection(points)
        return {"ids": [normalize_id(p) for p in points]}
    if filter_ is not None:
        compile_filter(filter_)
        return {"filter": filter_}
    raise BadInput("Wrong input: either `points` or `filter` is required")


def delete_operation(data: dict) -> dict:
    return {"type": "delete_points", **_selection(data)}


def set_payload_operation(data: dict, overwrite: bool = False) -> dict:
    if overwrite:
        return {"type": "overwrite_payload", "payload": data["payload"], **_selection(data)}
    op = {"type": "set_payload", "payload": data["payload"], **_selection(data)}
    if data.get("key") is not None:
        parse_path(data["key"])
        op["key"] = data["key"]
    return op


def delete_payload_operation(data: dict) -> dict:
    for key in data["keys"]:
        parse_path(key)
    return {"type": "delete_payload", "keys": list(data["keys"]), **_selection(data)}


def clear_payload_operation(data: dict) -> dict:
    return {"type": "clear_payload", **_selection(data)}


def delete_vectors_operation(collection, data: dict) -> dict:
    names = list(data["vector"])
    for name in names:
        if name not in collection.schema.dense and name not in collection.schema.sparse:
            raise BadInput(f"Wrong input: Not existing vector name error: {name}")
    return {"type": "delete_vectors", "vectors": names, **_selection(data)}


def update_vectors_operation(collection, data: dict) -> dict:
    operation = prepare_update_vectors(collection.schema, data)
    if data.get("update_filter"):
        compile_filter(data["update_filter"])
        operation["update_filter"] = data["update_filter"]
    return operation


# -- endpoints -----------------------------------------------------------------------------


@blueprint.put("/collections/<name>/points")
async def upsert_points(name: str):
    wait = write_params()
    collection = toc().get(name)
    operation = await off_loop(lambda raw: upsert_operation(collection, _upsert_body(raw)))
    check_write_allowed()
    return ok((await _submit(collection, [operation], wait))[0])


@blueprint.post("/collections/<name>/points/delete")
async def delete_points(name: str):
    wait = write_params()
    collection = toc().get(name)
    operation = delete_operation(to_plain(await body(models.PointsSelector)))
    check_write_allowed()
    return ok((await _submit(collection, [operation], wait))[0])


@blueprint.put("/collections/<name>/points/vectors")
async def update_vectors(name: str):
    wait = write_params()
    collection = toc().get(name)
    operation = update_vectors_operation(collection, to_plain(await body(models.UpdateVectors)))
    check_write_allowed()
    return ok((await _submit(collection, [operation], wait))[0])


@blueprint.post("/collections/<name>/points/vectors/delete")
async def delete_vectors(name: str):
    wait = write_params()
    collection = toc().get(name)
    operation = delete_vectors_operation(collection, to_plain(await body(models.DeleteVectors)))
    check_write_allowed()
    return ok((await _submit(collection, [operation], wait))[0])


@blueprint.post("/collections/<name>/points/payload")
async def set_payload(name: str):
    wait = write_params()
    collection = toc().get(name)
    operation = set_payload_operation(to_plain(await body(models.SetPayload)))
    check_write_allowed()
    return ok((await _submit(collection, [operation], wait))[0])


@blueprint.put("/collections/<name>/points/payload")
async def overwrite_payload(name: str):
    wait = write_params()
    collection = toc().get(name)
    operation = set_payload_operation(to_plain(await body(models.SetPayload)), overwrite=True)
    check_write_allowed()
    return ok((await _submit(collection, [operation], wait))[0])


@blueprint.post("/collections/<name>/points/payload/delete")
async def delete_payload(name: str):
    wait = write_params()
    collection = toc().get(name)
    operation = delete_payload_operation(to_plain(await body(models.DeletePayload)))
    check_write_allowed()
    return ok((await _submit(collection, [operation], wait))[0])


@blueprint.post("/collections/<name>/points/payload/clear")
async def clear_payload(name: str):
    wait = write_params()
    collection = toc().get(name)
    operation = clear_payload_operation(to_plain(await body(models.PointsSelector)))
    check_write_allowed()
    return ok((await _submit(collection, [operation], wait))[0])


def batch_operations(collection, data: dict) -> list[dict]:
    """Engine operations of a `POST /points/batch` body, all validated before any is queued."""
    if not isinstance(data, dict) or not isinstance(data.get("operations"), list):
        raise BadInput("Json deserialize error: missing field `operations`")
    operations = []
    for i, item in enumerate(data["operations"]):
        if not isinstance(item, dict) or len(item) != 1:
            raise BadInput(f"Json deserialize error: operations[{i}] must be an object with one operation")
        (kind, spec), = item.items()
        operations.append(_batch_item(collection, kind, spec, i))
    return operations


def _batch_item(collection, kind: str, spec, index: int) -> dict:
    if kind == "upsert":
        return upsert_operation(collection, spec)
    if kind == "update_vectors":
        return update_vectors_operation(collection, to_plain(deserialize(models.UpdateVectors, spec)))
    if kind == "delete_vectors":
        return delete_vectors_operation(collection, to_plain(deserialize(models.DeleteVectors, spec)))
    if kind == "delete":
        return delete_operation(to_plain(deserialize(models.PointsSelector, spec)))
    if kind in ("set_payload", "overwrite_payload"):
        return set_payload_operation(to_plain(deserialize(models.SetPayload, spec)), overwrite=kind == "overwrite_payload")
    if kind == "delete_payload":
        return delete_payload_operation(to_plain(deserialize(models.DeletePayload, spec)))
    if kind == "clear_payload":
        return clear_payload_operation(to_plain(deserialize(models.PointsSelector, spec)))
    raise BadInput(f"Json deserialize error: operations[{index}]: unknown operation `{kind}`")


@blueprint.post("/collections/<name>/points/batch")
async def batch_update(name: str):
    wait = write_params()
    collection = toc().get(name)
    operations = await off_loop(lambda raw: batch_operations(collection, json_from_bytes(raw)))
    check_write_allowed()
    return ok(await _submit(collection, operations, wait))
