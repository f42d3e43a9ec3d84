"""Applying one logged operation to the segments (the same code serves live writes and replay).

Copy-on-write (segments/base.py). A point held by a segment that is not appendable is
*moved* by an upsert: exported (`export_points`), changed as a copy, upserted into the
writable segment with version `op_num`, then deleted from its holder with the same
`op_num`. Since issue 17 (P5) payload changes (set, overwrite, key deletion, clear),
vector updates and vector deletions move points too, out of every segment that cannot
change them in place safely (`changes_in_place`: all but appendable and indexed
segments, i.e. immutable ones), so immutable segments only ever take deletes. Indexed
(RocksDB) segments keep changing points in place: see `changes_in_place` for the power
cut that moving out of them lost points to.

How a changing operation runs (`_change_points`), with more than one segment:

1. `_holders`: one `point_versions` call per segment for the whole batch.
2. `_delete_stale`: every copy but the newest of each point goes (a copy a crash brought
   back: a move whose delete was lost); the newest copy is the one the change applies to.
3. A point whose newest copy is at `op_num` or later is left alone (`_superseded`: the
   operation is a replay and its effect is already there).
4. The rest are grouped by the segment holding them: holders that change in place do,
   one call each; each other holder gives one export, one upsert into the writable
   segment and one delete per `MOVE_BATCH` points (per operation, unless it selects
   more), never one round per point.

Ordering: a move writes the new copy before deleting the old one, so an error in between
leaves two copies (reads take the higher version, and the next operation on the point
or the replay of this one removes the older) and never none. Replaying an operation whose
effect is durable changes nothing (step 3); replaying an older one after a later delete
finds the point nowhere and cannot bring it back (a change applies only to held points).

No-op moves are not skipped: a `delete_payload` of a key the point lacks still moves it.
Every payload or vector change gives the point version `op_num` (as Qdrant, and visible as
a search hit's `version`) and counts it as changed, whatever kind of segment holds it; an
immutable segment cannot take a new version in place, so keeping that contract means
moving. A collection with a single segment (always the appendable writable one) skips all
of this and changes the point in place.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np

from pydrant.collection.payload_index import INDEX_OPERATIONS
from pydrant.errors import BadInput, NotFound, ServiceError
from pydrant.segments import payload as payload_ops
from pydrant.segments.base import ExportedPoint, Predicate, Segment, exported_payload, writable_index, writable_segment
from pydrant.segments.filters import compile_filter
from pydrant.segments.ids import id_sort_key
from pydrant.segments.indexed import IndexedSegment
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

# Points moved per export / upsert / delete round of a copy-on-write (`_move`): ~1.5 MiB
# of 384-dim float32 vectors per 1,024, against one round per point.
MOVE_BATCH = 1024


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
    writable = _writable(segments)
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


def _writable(segments: Segments) -> Segment:
    """The writable segment, which must be appendable: moved copies and new points go there."""
    writable = writable_segment(segments)
    if not writable.is_appendable:
        raise ServiceError(f"the writable segment {writable.path.name} is not appendable")
    return writable


def _holders(segments: Segments, ids: Iterable[PointId]) -> dict:
    """id_sort_key -> [(version, segment index, id)] of the segments holding each id, for
    the ids held by any segment. One `point_versions` call per segment."""
    unique = list({id_sort_key(point_id): point_id for point_id in ids}.values())
    found: dict = {}
    for index, segment in enumerate(segments):
        for point_id, version in zip(unique, segment.point_versions(unique)):
            if version is not None:
                found.setdefault(id_sort_key(point_id), []).append((version, index, point_id))
    return found


def _newest(copies: list) -> tuple:
    """The copy every read returns and a change applies to: the highest version, a tie
    going to the later segment (as `_delete_stale` keeps)."""
    return max(copies, key=lambda copy: (copy[0], copy[1]))


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
            keep_version, keep_index, _ = _newest(copies)
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

        def change_in_place(segment: Segment, held: list) -> int:
            return segment.update_payload(op_num, held, transform)

        def change_copy(point: PointInput) -> PointInput:
            return PointInput(point.id, point.vectors, transform(point.payload or {}))

        return _change_points(segments, op_num, ids, change_in_place, change_copy)

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
    # An id listed twice gets both vector sets, the later winning per name (as in place).
    new_vectors: dict = {}
    for point_id, vectors in points:
        new_vectors.setdefault(id_sort_key(point_id), {}).update(vectors)

    def change_in_place(segment: Segment, held: list) -> int:
        return segment.update_vectors(op_num, [(point_id, new_vectors[id_sort_key(point_id)]) for point_id in held])

    def change_copy(point: PointInput) -> PointInput:
        # a vector the point lacks is added; the others it has are kept
        return PointInput(point.id, {**point.vectors, **new_vectors[id_sort_key(point.id)]}, point.payload)

    return _change_points(segments, op_num, [pid for pid, _ in points], change_in_place, change_copy)


def _delete_vectors(segments: Segments, schema: VectorSchema, op_num: int, op: dict, compile_: Compile) -> int:
    ids = selected_ids(segments, op, compile_)
    names = list(op["vectors"])

    def change_in_place(segment: Segment, held: list) -> int:
        return segment.delete_vectors(op_num, held, names)

    def change_copy(point: PointInput) -> PointInput:
        # moved even when it has none of `names`: its version still becomes op_num
        return PointInput(point.id, {n: v for n, v in point.vectors.items() if n not in names}, point.payload)

    return _change_points(segments, op_num, ids, change_in_place, change_copy)


def _change_points(
    segments: Segments,
    op_num: int,
    ids: Sequence[PointId],
    change_in_place: Callable[[Segment, list], int],
    change_copy: Callable[[PointInput], PointInput],
) -> int:
    """Apply one change to the held points among `ids` (module docstring): in place where
    the newest copy's holder `changes_in_place`, by a move where it does not. `change_in_place`
    runs the segment's own write on the ids it holds; `change_copy` makes the new point
    from an exported one (a fresh PointInput; its payload dict may be changed). Returns how
    many points changed."""
    writable = _writable(segments)
    if len(segments) == 1:
        return change_in_place(writable, list(ids))
    holders = _holders(segments, ids)
    _delete_stale(segments, op_num, holders)
    in_place, moves = _plan_changes(segments, op_num, holders)
    changed = 0
    for index, held in in_place.items():
        changed += change_in_place(segments[index], held)
    for index, held in moves.items():
        changed += _move(writable, op_num, segments[index], held, change_copy)
    return changed


def changes_in_place(segment: Segment) -> bool:
    """Whether a payload or vector change of a point `segment` holds is made in place
    rather than by a move: appendable segments, and `IndexedSegment`.

    An indexed segment keeps its points in RocksDB like an appendable one and can change
    them in place (into its exactly-scanned tail). Moving out of it is not safe against a
    power cut: its deletion is an unsynced RocksDB write that may reach the disk while the
    copy's unsynced write to the writable segment does not (the OS writes files back in
    any order; tests/e2e/test_power_cut_e2e.py lost points this way), and the replayed
    change then finds the point nowhere. An upsert's move has no such problem (its replay
    re-creates the point). Immutable segments hold deletions in RAM until `flush(bound)`,
    after the appendable segments' flush, so moving out of them is safe."""
    return segment.is_appendable or isinstance(segment, IndexedSegment)


def _plan_changes(segments: Segments, op_num: int, holders: dict) -> tuple[dict[int, list], dict[int, list]]:
    """({segment index: ids to change in place}, {segment index: ids to move out}) for the
    points whose newest copy `op_num` may still change."""
    in_place: dict[int, list] = {}
    moves: dict[int, list] = {}
    for copies in holders.values():
        version, index, point_id = _newest(copies)
        if version >= op_num:
            continue  # a replay: this operation or a later one already changed the point
        target = in_place if changes_in_place(segments[index]) else moves
        target.setdefault(index, []).append(point_id)
    return in_place, moves


def _move(writable: Segment, op_num: int, source: Segment, ids: list, change_copy: Callable[[PointInput], PointInput]) -> int:
    """Copy-on-write for the points `source` holds among `ids`: the changed copies go into
    the writable segment at `op_num`, then `source` forgets them. Returns the copies written.

    `MOVE_BATCH` points at a time (one export, upsert and delete each), so a filter that
    selects a whole segment does not hold all of its vectors in memory at once. Each batch
    keeps the ordering guarantee; an error between batches leaves the rest unmoved and
    unchanged, which the replay of the operation finishes."""
    changed = 0
    for start in range(0, len(ids), MOVE_BATCH):
        exported = source.export_points(ids[start : start + MOVE_BATCH])
        changed += writable.upsert_points(op_num, [change_copy(_as_input(point)) for point in exported])
        source.delete_points(op_num, [point_id for point_id, *_ in exported])
    return changed


def _as_input(point: ExportedPoint) -> PointInput:
    point_id, _version, vectors, payload_blob = point
    return PointInput(point_id, dict(vectors), exported_payload(payload_blob))


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
