"""Applying one logged operation to the segments (the same code serves live writes and replay)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np

from pydrant.collection.payload_index import INDEX_OPERATIONS
from pydrant.errors import BadInput, NotFound
from pydrant.segments import payload as payload_ops
from pydrant.segments.base import Predicate, Segment, writable_index, writable_segment
from pydrant.segments.filters import compile_filter
from pydrant.segments.ids import id_sort_key
from pydrant.segments.types import PointId, PointInput, SparseVector, VectorSchema

# The segments an operation applies to: a collection's list in order, the writable segment
# (the one new points go to) last (segments/base.py, `writable_segment`).
Segments = Sequence[Segment]
# A filter dict compiled for the collection (its text indexes); None for no filter.
Compile = Callable[[dict | None], Predicate | None]


# Errors an operation raises because of its input or the points it names: raised before
# anything changes, the same way live and on replay (which skips such an operation).
REFUSED = (BadInput, NotFound)

# Set on a logged operation by ids that needs every id to exist (payload and vector
# updates, as Qdrant): checked when applied, in order with the writes before it, so a
# point an acknowledged but not yet applied upsert creates is found (no check-then-act).
IDS_MUST_EXIST = "ids_must_exist"


def apply_logged(segments: Segments, schema: VectorSchema, payload_index, op_num: int, operation: dict) -> None:
    """Apply any logged operation: index declarations go to the collection's
    `PayloadIndexTable`, everything else to the segments. Live writes, WAL recovery and
    `pydrant wal replay` all come through here, so they cannot disagree."""
    if operation.get("type") in INDEX_OPERATIONS:
        payload_index.apply(operation)
        for segment in segments:
            segment.set_payload_indexes(payload_index.fields)
    else:
        apply_operation(segments, schema, op_num, operation, payload_index.text_analyzers())


def apply_operation(segments: Segments, schema: VectorSchema, op_num: int, operation: dict, text_fields=None) -> int:
    """Apply `operation` logged as `op_num`; returns how many points changed.

    `text_fields` (parsed path -> TextAnalyzer) makes text conditions in the operation's
    filters follow the collection's full-text indexes, as reads do."""
    op_type = operation.get("type")
    handler = _HANDLERS.get(op_type) if isinstance(op_type, str) else None
    if handler is None:
        raise BadInput(f"unknown operation type {operation.get('type')!r}")
    if operation.get(IDS_MUST_EXIST):
        _check_ids_exist(segments, operation)
    return handler(segments, schema, op_num, operation, lambda filter_: compile_filter(filter_, text_fields))


def _check_ids_exist(segments: Segments, operation: dict) -> None:
    ids = operation.get("ids") or [p["id"] for p in operation.get("points", [])]
    missing = next((i for i in ids if not any(s.has_point(i) for s in segments)), None)
    if missing is not None:
        raise NotFound(f"Not found: No point with id {missing} found")


def decode_vectors(vectors: dict) -> dict:
    """Logged vectors to engine values: sparse dicts become SparseVector."""
    decoded = {}
    for name, value in vectors.items():
        if isinstance(value, dict):
            decoded[name] = SparseVector(
                np.asarray(value["indices"], dtype=np.uint32), np.asarray(value["values"], dtype=np.float32)
            )
        else:
            decoded[name] = value
    return decoded


def selected_ids(segments: Segments, operation: dict, compile_=compile_filter) -> list:
    """The point ids an operation applies to: its `ids`, or the points matching its `filter`
    (compiled by `compile_`, which knows the collection's text indexes)."""
    if "ids" in operation:
        return list(operation["ids"])
    predicate = compile_(operation.get("filter"))
    ids: list[PointId] = []
    for segment in segments:
        ids.extend(segment.read_ids(None, None, predicate))
    return ids


def _upsert(segments: Segments, schema: VectorSchema, op_num: int, op: dict, compile_: Compile) -> int:
    points = [PointInput(p["id"], decode_vectors(p.get("vectors") or {}), p.get("payload")) for p in op["points"]]
    if op.get("update_filter"):
        blocked = _existing_not_matching(segments, [p.id for p in points], op["update_filter"], compile_)
        points = [p for p in points if p.id not in blocked]
    writable = writable_segment(segments)
    if len(segments) == 1:
        return writable.upsert_points(op_num, points)
    holders = _holders(segments, [p.id for p in points])
    fresh = [p for p in points if not _superseded(holders.get(id_sort_key(p.id)), op_num)]
    # The new copies first, then the old ones go: an error in between leaves a point
    # twice (the newest copy wins every read, and a retry finishes the move), never gone.
    changed = writable.upsert_points(op_num, fresh)
    written = {id_sort_key(p.id) for p in fresh}
    _delete_stale(segments, op_num, holders, written_to=writable_index(segments), written=written)
    return changed


def _holders(segments: Segments, ids: Iterable[PointId]) -> dict:
    """id_sort_key -> [(version, segment index)] of the segments holding each id, for the
    ids held by any segment."""
    found: dict = {}
    for index, segment in enumerate(segments):
        for point_id in ids:
            version = segment.point_version(point_id)
            if version is not None:
                found.setdefault(id_sort_key(point_id), []).append((version, index, point_id))
    return found


def _superseded(copies: list | None, op_num: int) -> bool:
    """Some segment already holds the point at `op_num` or later: a replayed operation."""
    if not copies:
        return False
    return max(version for version, _, _ in copies) >= op_num


def _delete_stale(segments: Segments, op_num: int, holders: dict, written_to: int | None = None, written=()) -> None:
    """Delete every copy of a point but its newest (copy-on-write: a point lives in one
    segment). Besides the old copy an upsert moves away, this removes a stale copy that a
    crash brought back (a move's delete lost in an unflushed segment): the next operation
    on the point heals it, live or replayed."""
    stale_by_segment: dict[int, dict[int, list]] = {}
    for key, copies in holders.items():
        if key in written:
            keep_index, keep_version = written_to, op_num
        else:
            if len(copies) < 2:
                continue
            keep_version, keep_index, _ = max(copies, key=lambda c: (c[0], c[1]))
        for version, index, point_id in copies:
            if index != keep_index and version < max(keep_version, op_num):
                delete_as = max(op_num, keep_version)
                stale_by_segment.setdefault(index, {}).setdefault(delete_as, []).append(point_id)
    for index, by_version in stale_by_segment.items():
        for delete_as, ids in by_version.items():
            segments[index].delete_points(delete_as, ids)


def drop_stale_copies(segments: Segments, op_num: int, ids) -> None:
    """Before an operation changes points in place: leave one copy of each (see
    `_delete_stale`), so the change never lands on a stale copy as well and ties it."""
    if len(segments) > 1:
        _delete_stale(segments, op_num, _holders(segments, ids))


def _existing_not_matching(segments: Segments, ids: list, filter_: dict, compile_: Compile) -> set:
    """Ids of points that exist but fail `update_filter`: a conditional write leaves them be."""
    predicate = compile_(filter_)
    existing = {i for i in ids if any(s.has_point(i) for s in segments)}
    matching: set[PointId] = set()
    for segment in segments:
        matching.update(i for i in segment.read_ids(None, None, predicate) if i in existing)
    return existing - matching


def _delete_points(segments: Segments, schema: VectorSchema, op_num: int, op: dict, compile_: Compile) -> int:
    ids = selected_ids(segments, op, compile_)
    drop_stale_copies(segments, op_num, ids)
    return sum(segment.delete_points(op_num, ids) for segment in segments)


def _payload_update(transform_for: Callable[[dict], Callable[[dict], dict]]):
    def handler(segments: Segments, schema: VectorSchema, op_num: int, op: dict, compile_: Compile) -> int:
        ids = selected_ids(segments, op, compile_)
        transform = transform_for(op)
        drop_stale_copies(segments, op_num, ids)
        return sum(segment.update_payload(op_num, ids, transform) for segment in segments)

    return handler


def _set_transform(op):
    values, key = op["payload"], op.get("key")
    return lambda current: payload_ops.set_payload(current, values, key)


def _overwrite_transform(op):
    values = op["payload"]
    return lambda current: dict(values)


def _delete_keys_transform(op):
    keys = op["keys"]
    return lambda current: payload_ops.delete_keys(current, keys)


def _clear_transform(op):
    return lambda current: {}


def _update_vectors(segments: Segments, schema: VectorSchema, op_num: int, op: dict, compile_: Compile) -> int:
    points = [(p["id"], decode_vectors(p["vectors"])) for p in op["points"]]
    if op.get("update_filter"):
        blocked = _existing_not_matching(segments, [pid for pid, _ in points], op["update_filter"], compile_)
        points = [p for p in points if p[0] not in blocked]
    drop_stale_copies(segments, op_num, [pid for pid, _ in points])
    return sum(segment.update_vectors(op_num, points) for segment in segments)


def _delete_vectors(segments: Segments, schema: VectorSchema, op_num: int, op: dict, compile_: Compile) -> int:
    ids = selected_ids(segments, op, compile_)
    drop_stale_copies(segments, op_num, ids)
    return sum(segment.delete_vectors(op_num, ids, op["vectors"]) for segment in segments)


_HANDLERS = {
    "upsert": _upsert,
    "delete_points": _delete_points,
    "set_payload": _payload_update(_set_transform),
    "overwrite_payload": _payload_update(_overwrite_transform),
    "delete_payload": _payload_update(_delete_keys_transform),
    "clear_payload": _payload_update(_clear_transform),
    "update_vectors": _update_vectors,
    "delete_vectors": _delete_vectors,
}
