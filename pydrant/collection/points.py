"""Turning request points (plain JSON) into validated engine vectors, before anything is logged.

Everything that can be wrong with a point's vectors is caught here: unknown vector name,
wrong dimension, non-finite values, malformed sparse or multi vectors. A request with any
bad point is rejected whole, so nothing of it reaches the WAL. Dense vectors become numpy
arrays in the vector's storage datatype; Cosine vectors are normalised (as Qdrant does on
insert), so what is logged is exactly what is stored.
"""

from __future__ import annotations

import numpy as np

from pydrant.collection import bm25
from pydrant.errors import BadInput
from pydrant.segments.ids import normalize_id
from pydrant.segments.scoring import cosine_normalised
from pydrant.segments.types import DEFAULT_VECTOR, DenseVectorSpec, VectorSchema

INFERENCE_KEYS = ("text", "image", "object")


def prepare_upsert(schema: VectorSchema, body: dict) -> dict:
    """An `upsert` operation from a `PointInsertOperations` body (`points` or `batch` form).

    Vectors may be lists, or float ndarrays where the HTTP layer parsed them straight into
    numpy (pydrant/http/bulk_json.py): 1-d for a point's vector, 2-d for a batch column.
    """
    points: list | None
    if "batch" in body and body["batch"] is not None:
        points = list(_points_from_batch(body["batch"]))
    else:
        points = body.get("points")
        if not isinstance(points, list):
            raise BadInput("Format error in JSON body: `points` or `batch` must be given")
    prepared = _prepare_unnamed_bulk(schema, points)
    if prepared is None:
        prepared = [prepare_point(schema, p, where=f"points[{i}]") for i, p in enumerate(points)]
    return {"type": "upsert", "points": prepared}


def _prepare_unnamed_bulk(schema: VectorSchema, points: list) -> list | None:
    """The common bulk upsert (every point has a plain list for the unnamed dense vector)
    checked as one matrix: a few numpy calls instead of a dozen per point. None when the
    request is of another shape or anything is wrong with it; the per-point path then
    prepares it, or rejects it with a message naming the point."""
    spec = schema.dense.get(DEFAULT_VECTOR)
    if spec is None or spec.multivector or len(points) < 2:
        return None
    values = []
    for point in points:
        if type(point) is not dict or type(point.get("vector")) not in (list, np.ndarray):
            return None
        payload = point.get("payload")
        if payload is not None and type(payload) is not dict:
            return None
        values.append(point["vector"])
    matrix = _numeric_matrix(values, spec.size)
    if matrix is None:
        return None
    rows = to_storage(spec, matrix)
    return [
        {"id": normalize_id(point.get("id")), "vectors": {DEFAULT_VECTOR: row}, "payload": point.get("payload")}
        for point, row in zip(points, rows)
    ]


def _numeric_matrix(values: list, size: int) -> np.ndarray | None:
    """`values` as an (n, size) float32 matrix of finite numbers, else None."""
    try:
        matrix = np.asarray(values)  # dtype inferred, so strings and ragged rows show
    except (TypeError, ValueError):
        return None
    if matrix.dtype.kind not in "fiu" or matrix.ndim != 2 or matrix.shape[1] != size:
        return None
    if any(type(row) is list and _has_bool(row) for row in values):
        return None
    matrix = matrix.astype(np.float32, copy=False)
    return matrix if np.isfinite(matrix).all() else None


def _points_from_batch(batch: dict):
    ids = batch.get("ids") or []
    vectors = batch.get("vectors")
    payloads = batch.get("payloads")
    if payloads is not None and len(payloads) != len(ids):
        raise BadInput("Wrong input: number of payloads does not match number of ids")
    if isinstance(vectors, dict):
        for name, column in vectors.items():
            if len(column) != len(ids):
                raise BadInput(f"Wrong input: number of vectors `{name}` does not match number of ids")
        per_point: list | np.ndarray = [{name: column[i] for name, column in vectors.items()} for i in range(len(ids))]
    elif isinstance(vectors, (list, np.ndarray)):
        if len(vectors) != len(ids):
            raise BadInput("Wrong input: number of vectors does not match number of ids")
        per_point = vectors
    else:
        raise BadInput("Format error in JSON body: batch.vectors must be a list or an object")
    for i, point_id in enumerate(ids):
        yield {"id": point_id, "vector": per_point[i], "payload": payloads[i] if payloads is not None else None}


def prepare_point(schema: VectorSchema, point: dict, where: str = "point") -> dict:
    point_id = normalize_id(point.get("id"))
    payload = point.get("payload")
    if payload is not None and not isinstance(payload, dict):
        raise BadInput(f"Format error in JSON body: {where}.payload must be an object")
    vectors = prepare_vectors(schema, point.get("vector"), where)
    return {"id": point_id, "vectors": vectors, "payload": payload}


def prepare_vectors(schema: VectorSchema, vector, where: str) -> dict:
    """Named engine vectors from a request's `vector` field (list, or name -> value)."""
    if vector is None:
        return {}
    if isinstance(vector, (list, np.ndarray)):
        return {DEFAULT_VECTOR: _prepare_one(schema, DEFAULT_VECTOR, vector, where)}
    if isinstance(vector, dict):
        if _is_inference_object(vector):  # an inference object for the unnamed vector
            return {DEFAULT_VECTOR: _prepare_one(schema, DEFAULT_VECTOR, vector, where)}
        return {name: _prepare_one(schema, name, value, where) for name, value in vector.items()}
    raise BadInput(f"Format error in JSON body: {where}.vector must be a list or an object")


def _is_inference_object(value: dict) -> bool:
    return "model" in value and any(k in value for k in INFERENCE_KEYS)


def inference_unavailable() -> BadInput:
    """Qdrant answers a model it cannot run with its inference service's "not initialized"
    error (a 500 there); pydrant runs only `qdrant/bm25`, and says so with a 400, because
    the request can be fixed and nothing failed inside the server."""
    return BadInput(
        f"Wrong input: {bm25.INFERENCE_UNAVAILABLE} pydrant runs only the {bm25.MODEL_NAME} model "
        "on the server; send vectors instead of Document, Image or InferenceObject for other models"
    )


def embed_document(value: dict, *, query: bool) -> dict:
    """A Document for `qdrant/bm25` as the sparse vector Qdrant computes on the server
    (collection/bm25.py): document weights for writes, unit query weights for searches.
    Any other model or inference object: `inference_unavailable`."""
    text = value.get("text")
    if not (bm25.is_bm25(value.get("model")) and isinstance(text, str)):
        raise inference_unavailable()
    model = bm25.model_for(value.get("options"))
    indices, values = model.query(text) if query else model.document(text)
    return {"indices": indices, "values": values}


def _prepare_one(schema: VectorSchema, name: str, value, where: str):
    if isinstance(value, dict) and _is_inference_object(value):
        value = embed_document(value, query=False)
    if name in schema.dense:
        return prepare_dense(schema.dense[name], name, value, where)
    if name in schema.sparse:
        return prepare_sparse(name, value, where)
    raise BadInput(f"Wrong input: Not existing vector name error: {name}")


def prepare_dense(spec: DenseVectorSpec, name: str, value, where: str) -> np.ndarray:
    if isinstance(value, dict):
        raise BadInput(f"Wrong input: Conversion between sparse and regular vectors failed for vector `{name}`")
    if spec.multivector:
        return _prepare_multi(spec, name, value)
    if isinstance(value, np.ndarray):  # parsed straight into numpy: a flat list of numbers
        array = _finite(value.astype(np.float32), name)
    elif value and isinstance(value[0], list):
        raise BadInput(f"Wrong input: Vector `{name}` is not a multivector: expected a list of numbers")
    else:
        array = _as_float_array(value, name)
    if array.ndim != 1 or array.shape[0] != spec.size:
        raise BadInput(f"Wrong input: Vector dimension error: expected dim: {spec.size}, got {array.shape[0]}")
    return to_storage(spec, array)


def _prepare_multi(spec: DenseVectorSpec, name: str, value) -> np.ndarray:
    if isinstance(value, np.ndarray) or not value or not isinstance(value[0], list):
        # a plain vector is a multivector of one row, Qdrant's legacy form (its
        # `TryFrom<VectorInternal> for MultiDenseVectorInternal`: dim = the vector's length)
        array = _finite(value.astype(np.float32), name) if isinstance(value, np.ndarray) else _as_float_array(value, name)
        if array.ndim != 1 or array.shape[0] != spec.size:
            raise BadInput(f"Wrong input: Vector dimension error: expected dim: {spec.size}, got {array.size}")
        return to_storage(spec, array.reshape(1, -1))
    rows = [len(row) for row in value]
    bad = next((n for n in rows if n != spec.size), None)
    if bad is not None:
        raise BadInput(f"Wrong input: Vector dimension error: expected dim: {spec.size}, got {bad}")
    return to_storage(spec, _as_float_array(value, name))


def _as_float_array(value, name: str) -> np.ndarray:
    try:
        array = np.asarray(value)  # dtype inferred: a string or a bool is not a number
    except (TypeError, ValueError):
        array = None
    if array is None or array.dtype.kind not in "fiu" or _has_bool(value):
        raise BadInput(f"Format error in JSON body: vector `{name}` must contain only numbers")
    return _finite(array.astype(np.float32), name)


def _has_bool(values) -> bool:
    """numpy reads [true, 1.5] as [1.0, 1.5]; JSON booleans are not numbers to Qdrant."""
    if isinstance(values, np.ndarray):
        return False
    if values and type(values[0]) is list:  # a multi-vector
        return any(_has_bool(row) for row in values)
    return bool in set(map(type, values))


def _finite(array: np.ndarray, name: str) -> np.ndarray:
    if not np.isfinite(array).all():
        raise BadInput(f"Wrong input: vector `{name}` contains NaN or infinite values")
    return array


def to_storage(spec: DenseVectorSpec, array: np.ndarray) -> np.ndarray:
    """Normalise for Cosine (float datatypes) and cast to the storage datatype."""
    if spec.datatype == "uint8":
        # Qdrant stores uint8 vectors as given (elements expected in 0..=255); casting
        # truncates fractions and saturates at the ends like Rust's `as u8`.
        return np.clip(array, 0, 255).astype(np.uint8)
    if spec.distance == "Cosine":
        array = cosine_normalised(array.astype(np.float32, copy=False))
    return array.astype(spec.dtype, copy=False)


def prepare_sparse(name: str, value, where: str) -> dict:
    if not isinstance(value, dict) or "indices" not in value or "values" not in value:
        raise BadInput(f"Wrong input: Conversion between sparse and regular vectors failed for vector `{name}`")
    indices, values = value["indices"], value["values"]
    if len(indices) != len(values):
        raise BadInput(
            f"Validation error in JSON body: [{where}.vector.{name}: indices and values must have the same length]"
        )
    try:
        idx = np.asarray(indices, dtype=np.int64)
        vals = np.asarray(values, dtype=np.float32)
    except (TypeError, ValueError):
        raise BadInput(f"Format error in JSON body: sparse vector `{name}` must contain numbers") from None
    if idx.size and (idx.min() < 0 or idx.max() > 0xFFFFFFFF):
        raise BadInput(f"Wrong input: sparse vector `{name}` indices must be unsigned 32-bit integers")
    if len(np.unique(idx)) != len(idx):
        raise BadInput(f"Validation error in JSON body: [{where}.vector.{name}: indices must be unique]")
    if not np.isfinite(vals).all():
        raise BadInput(f"Wrong input: sparse vector `{name}` contains NaN or infinite values")
    order = np.argsort(idx, kind="stable")
    return {"indices": idx[order].astype(np.uint32), "values": vals[order]}


def prepare_update_vectors(schema: VectorSchema, body: dict) -> dict:
    points = []
    for i, point in enumerate(body.get("points") or []):
        vectors = prepare_vectors(schema, point.get("vector"), f"points[{i}]")
        if not vectors:
            raise BadInput(f"Validation error in JSON body: [points[{i}].vector: must not be empty]")
        points.append({"id": normalize_id(point.get("id")), "vectors": vectors})
    return {"type": "update_vectors", "points": points}
