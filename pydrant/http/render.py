"""Engine results as Qdrant's JSON: records, scored points, groups. Shared by every API
area (an area module never imports another: tests/http/test_http_areas.py)."""

from __future__ import annotations

import numpy as np

from pydrant.collection.engine import Groups
from pydrant.collection.query import Hit
from pydrant.segments.types import DEFAULT_VECTOR, Record, SparseVector


def vector_json(value):
    """A stored vector as Qdrant prints it: f32 elements (float16 and uint8 storage too) in the
    shortest text that reads back as the same f32 (`0.15`, not `0.15000000596046448`). The
    envelope's orjson writes float32 numpy arrays that way, so vectors stay arrays here."""
    if isinstance(value, SparseVector):
        return {"indices": value.indices.tolist(), "values": _f32(value.values)}
    if isinstance(value, np.ndarray):
        return _f32(value)
    return value


def _f32(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(array, dtype=np.float32)


def vectors_json(vectors: dict | None):
    """Qdrant's output form: a bare list for the unnamed vector, else name -> vector."""
    if vectors is None:
        return None
    if set(vectors) == {DEFAULT_VECTOR}:
        return vector_json(vectors[DEFAULT_VECTOR])
    return {name: vector_json(v) for name, v in vectors.items()}


def record_json(record: Record) -> dict:
    """Qdrant's `Record`: absent payload, vector, shard_key and order_value are left out
    (`skip_serializing_if = "Option::is_none"`), not written as null."""
    return _with_present_fields({"id": record.id}, record.payload, record.vectors, record.order_value, record.shard_key)


def _with_present_fields(entry: dict, payload, vectors, order_value, shard_key=None) -> dict:
    """Adds `payload`, `vector`, `shard_key` and `order_value` to `entry` when the point
    has them (Qdrant's field order)."""
    if payload is not None:
        entry["payload"] = payload
    if vectors is not None:
        entry["vector"] = vectors_json(vectors)
    if shard_key is not None:
        entry["shard_key"] = shard_key
    if order_value is not None:
        entry["order_value"] = order_value
    return entry


def records_json(records: list[Record]) -> list[dict]:
    return [record_json(r) for r in records]


def scored_point_json(hit: Hit) -> dict:
    """Qdrant's `ScoredPoint`; like records, absent optional fields are left out."""
    entry = {
        "id": hit.id,
        "version": hit.version,
        "score": np.float32(hit.score),  # printed as Qdrant prints its f32 scores (shortest form)
    }
    return _with_present_fields(entry, hit.payload, hit.vectors, hit.order_value, hit.shard_key)


def scored_points_json(hits: list[Hit]) -> list[dict]:
    return [scored_point_json(hit) for hit in hits]


def groups_json(result: Groups) -> dict:
    """`GroupsResult` JSON; with `with_lookup` each group has the looked-up record."""
    groups = []
    for group in result.groups:
        entry = {"id": group.id, "hits": scored_points_json(group.hits)}
        if result.with_lookup:
            if group.lookup is not None:  # Qdrant leaves out a missing lookup
                entry["lookup"] = record_json(group.lookup)
        groups.append(entry)
    return {"groups": groups}
