"""Points update API: upsert, delete, vectors, payload, and batches of these.

Each handler parses the request and has the engine turn it into operations
(collection/operations.py) — fully validated first, so a bad request writes nothing —
then submits them to the collection (`Collection.submit`: strict mode, then the update
worker). `wait=true` answers "completed" once applied; `wait=false` answers
"acknowledged" once the WAL record is durable.

A body's `shard_key` (each operation's own in a `POST /points/batch`) rides on its
operation to the collection, which routes it (collection/operations.py, routing.py): a
collection without that key refuses it, 400 `Wrong input: Shard key "k" not found`; a
custom-sharded one refuses a write without a key, `Wrong input: Shard key not specified`.
"""

from __future__ import annotations

import numpy as np
from quart import Blueprint

from pydrant.collection import operations
from pydrant.errors import BadInput
from pydrant.http import spec_models as models
from pydrant.http.bulk_json import parse_upsert_body
from pydrant.http.context import check_write_allowed, toc
from pydrant.http.envelope import body, json_from_bytes, off_loop, ok, raw_body, write_params
from pydrant.http.validation import deserialize, to_plain

blueprint = Blueprint("points", __name__)



async def _submit(collection, batch: list[dict], wait: bool) -> list[dict]:
    results = await collection.submit(batch, wait=wait)
    return [{"operation_id": op_num, "status": status} for op_num, status in results]


# -- request bodies to engine operations ---------------------------------------------------


def _check_upsert_shape(data) -> None:
    """Cheap structural checks on the upsert hot path (full pydantic validation of a large
    vector batch would cost more than the whole write); the engine checks the rest."""
    if not isinstance(data, dict):
        raise BadInput("Format error in JSON body: expected an object with `points` or `batch`")
    # Unknown keys are ignored, as Qdrant's serde structs ignore them (the engine reads only
    # the fields it knows, so nothing unknown reaches the WAL).
    if "points" in data:
        if not isinstance(data["points"], list):
            raise BadInput("Format error in JSON body: `points` must be a list")
        for i, point in enumerate(data["points"]):
            if not isinstance(point, dict) or "id" not in point:
                raise BadInput(f"Format error in JSON body: points[{i}]: missing field `id`")
            _vector_alias(point, i)
    elif "batch" in data:
        if not isinstance(data["batch"], dict) or "ids" not in data["batch"]:
            raise BadInput("Format error in JSON body: batch: missing field `ids`")
        _check_batch_columns(data["batch"])
    else:
        raise BadInput("Format error in JSON body: expected `points` or `batch`")


def _vector_alias(point: dict, i: int) -> None:
    """Qdrant's PointStruct takes `vectors` as an alias of `vector` (`#[serde(alias)]`);
    both at once is serde's duplicate-field error."""
    if "vectors" not in point:
        return
    if "vector" in point:
        raise BadInput(f"Format error in JSON body: points[{i}]: duplicate field `vector`")
    point["vector"] = point.pop("vectors")


def _check_batch_columns(batch: dict) -> None:
    """Every column of a columnar upsert is a list (the spec's `Batch`): `ids`, `payloads`
    (or null), and `vectors`, a list or an object of one list per vector name. The engine
    lines the columns up by index; what is in each cell it checks itself."""
    if "vectors" not in batch:
        raise BadInput("Format error in JSON body: batch: missing field `vectors`")
    if not isinstance(batch["ids"], list):
        raise BadInput("Format error in JSON body: batch.ids: invalid type, expected a sequence")
    payloads = batch.get("payloads")
    if payloads is not None and not isinstance(payloads, list):
        raise BadInput("Format error in JSON body: batch.payloads: invalid type, expected a sequence or null")
    vectors = batch.get("vectors")
    if isinstance(vectors, dict):
        for name, column in vectors.items():
            if not isinstance(column, (list, np.ndarray)):
                raise BadInput(f"Format error in JSON body: batch.vectors.{name}: invalid type, expected a sequence")
    elif not isinstance(vectors, (list, np.ndarray)):
        raise BadInput("Format error in JSON body: batch.vectors: invalid type, expected a sequence or a map of sequences")


def _upsert_body(raw: bytes) -> dict:
    data = parse_upsert_body(raw)
    if data is None:
        json_from_bytes(raw)  # the empty-body error
    return data


def upsert_operation(collection, data: dict) -> dict:
    _check_upsert_shape(data)
    operation = operations.upsert(collection, data)
    if data.get("update_filter"):
        deserialize(models.Filter, data["update_filter"])
        operations.add_update_filter(collection, operation, data["update_filter"])
    return operation


# -- endpoints -----------------------------------------------------------------------------


@blueprint.put("/collections/<name>/points")
async def upsert_points(name: str):
    wait = write_params()
    collection = toc().get(name)
    operation = await off_loop(lambda raw: upsert_operation(collection, _upsert_body(raw)), await raw_body())
    check_write_allowed()
    return ok((await _submit(collection, [operation], wait))[0])


@blueprint.post("/collections/<name>/points/delete")
async def delete_points(name: str):
    wait = write_params()
    collection = toc().get(name)
    operation = operations.delete_points(collection, to_plain(await body(models.PointsSelector)))
    check_write_allowed()
    return ok((await _submit(collection, [operation], wait))[0])


@blueprint.put("/collections/<name>/points/vectors")
async def update_vectors(name: str):
    wait = write_params()
    collection = toc().get(name)
    operation = operations.update_vectors(collection, to_plain(await body(models.UpdateVectors)))
    check_write_allowed()
    return ok((await _submit(collection, [operation], wait))[0])


@blueprint.post("/collections/<name>/points/vectors/delete")
async def delete_vectors(name: str):
    wait = write_params()
    collection = toc().get(name)
    operation = operations.delete_vectors(collection, to_plain(await body(models.DeleteVectors)))
    check_write_allowed()
    return ok((await _submit(collection, [operation], wait))[0])


@blueprint.post("/collections/<name>/points/payload")
async def set_payload(name: str):
    wait = write_params()
    collection = toc().get(name)
    operation = operations.set_payload(collection, to_plain(await body(models.SetPayload)))
    check_write_allowed()
    return ok((await _submit(collection, [operation], wait))[0])


@blueprint.put("/collections/<name>/points/payload")
async def overwrite_payload(name: str):
    wait = write_params()
    collection = toc().get(name)
    operation = operations.set_payload(collection, to_plain(await body(models.SetPayload)), overwrite=True)
    check_write_allowed()
    return ok((await _submit(collection, [operation], wait))[0])


@blueprint.post("/collections/<name>/points/payload/delete")
async def delete_payload(name: str):
    wait = write_params()
    collection = toc().get(name)
    operation = operations.delete_payload(collection, to_plain(await body(models.DeletePayload)))
    check_write_allowed()
    return ok((await _submit(collection, [operation], wait))[0])


@blueprint.post("/collections/<name>/points/payload/clear")
async def clear_payload(name: str):
    wait = write_params()
    collection = toc().get(name)
    operation = operations.clear_payload(collection, to_plain(await body(models.PointsSelector)))
    check_write_allowed()
    return ok((await _submit(collection, [operation], wait))[0])


def batch_operations(collection, data: dict) -> list[dict]:
    """Engine operations of a `POST /points/batch` body, all validated before any is queued."""
    if not isinstance(data, dict) or not isinstance(data.get("operations"), list):
        raise BadInput("Format error in JSON body: missing field `operations`")
    built = []
    for i, item in enumerate(data["operations"]):
        if not isinstance(item, dict) or len(item) != 1:
            raise BadInput(f"Format error in JSON body: operations[{i}] must be an object with one operation")
        (kind, spec), = item.items()
        built.append(_batch_item(collection, kind, spec, i))
    return built


def _batch_item(collection, kind: str, spec, index: int) -> dict:
    if kind == "upsert":
        return upsert_operation(collection, spec)
    if kind == "update_vectors":
        return operations.update_vectors(collection, to_plain(deserialize(models.UpdateVectors, spec)))
    if kind == "delete_vectors":
        return operations.delete_vectors(collection, to_plain(deserialize(models.DeleteVectors, spec)))
    if kind == "delete":
        return operations.delete_points(collection, to_plain(deserialize(models.PointsSelector, spec)))
    if kind in ("set_payload", "overwrite_payload"):
        overwrite = kind == "overwrite_payload"
        return operations.set_payload(collection, to_plain(deserialize(models.SetPayload, spec)), overwrite=overwrite)
    if kind == "delete_payload":
        return operations.delete_payload(collection, to_plain(deserialize(models.DeletePayload, spec)))
    if kind == "clear_payload":
        return operations.clear_payload(collection, to_plain(deserialize(models.PointsSelector, spec)))
    raise BadInput(f"Format error in JSON body: operations[{index}]: unknown operation `{kind}`")


@blueprint.post("/collections/<name>/points/batch")
async def batch_update(name: str):
    wait = write_params()
    collection = toc().get(name)
    batch = await off_loop(lambda raw: batch_operations(collection, json_from_bytes(raw)), await raw_body())
    check_write_allowed()
    return ok(await _submit(collection, batch, wait))
