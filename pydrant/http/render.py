"""Engine results as Qdrant's JSON: records, scored points, groups. Shared by every API
area (an area module never imports another: tests/http/test_http_areas.py)."""

from __future__ import annotations

import numpy as np

from pydrant.collection.engine import Groups
from pydrant.collection.query import Hit
from pydrant.segments.types import DEFAULT_VECTOR, Record, SparseVector


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


def records_json(records: list[Record]) -> list[dict]:
    return [record_json(r) for r in records]


def scored_point_json(hit: Hit) -> dict:
    return {
        "id": hit.id,
        "version": hit.version,
        "score": np.float32(hit.score),  # printed as Qdrant prints its f32 scores (shortest form)
        "payload": hit.payload,
        "vector": vectors_json(hit.vectors),
        "shard_key": None,
        "order_value": hit.order_value,
    }


def scored_points_json(hits: list[Hit]) -> list[dict]:
    return [scored_point_json(hit) for hit in hits]


def groups_json(result: Groups) -> dict:
    """`GroupsResult` JSON; with `with_lookup` each group has the looked-up record."""
    groups = []
    for group in result.groups:
        entry = {"id": group.id, "hits": scored_points_json(group.hits)}
        if result.with_lookup:
            entry["lookup"] = record_json(group.lookup) if group.lookup is not None else None
        groups.append(entry)
    return {"groups": groups}
