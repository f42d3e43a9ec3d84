"""The contract every segment keeps: appendable and immutable (indexed) alike.

Callers (`collection/`, the optimizer, the query engine) hold segments as `Segment` and
never ask which kind they have. The contract is split by who needs what:

  SegmentReader     reads: points, ids, counts, search, facet, order_by, cardinality
                    estimates, IDF statistics, sizes and telemetry
  SegmentWriter     the logged operations (each skips points whose version is >= op_num),
                    `advance_version`, the payload index set
  OptimizerSource   what the optimizer reads of a segment it rebuilds: sizes, the live ids,
                    `export_points`, and tracking of the points changed meanwhile
  OptimizerTarget   what it writes into the copy: `import_points`, `discard_points`
  SegmentLifecycle  flush, close, drop, reopen after a storage error

`Segment` is all of them. Both kinds (`appendable.AppendableSegment`,
`indexed.IndexedSegment`, which composes an appendable store rather than subclassing it)
implement `Segment` structurally; mypy checks it where a kind is used as one, and
`tests/segments/test_segment_conformance.py` checks it at run time (`isinstance` against
each protocol) and runs one model-based behaviour suite over every kind.

The writable segment. A collection's segment list is ordered and never empty. Its last
segment is appendable and is the only one that takes new points: an upsert of an id no
segment holds, or the new copy of a point a write moves out of another segment
(copy-on-write, below). The optimizer keeps the rule: before it rebuilds the writable
segment it appends a fresh appendable one, so the last segment is still appendable,
and a rebuilt segment takes the list position of its first source, which is then never
the last; a merge never takes the writable segment. `writable_segment` /
`writable_index` below are the one place that encodes the rule; callers use them
instead of `segments[-1]`.

Copy-on-write. What a write may do in place depends on the kind:

  appendable        every write of `SegmentWriter` changes held points in place
  indexed           every write but upserts of held points (moved, below)
  immutable         only deletes (`delete_points`; `discard_points` and `import_points`
                    are the optimizer's, before the segment is listed): an immutable
                    segment's files never change under a reader, so it may refuse the
                    other writes (the immutable kind raises `ServiceError`)

so a change it does not take in place is a *move*, done by `collection/apply.py`:
`export_points` from the holder, the change applied to the exported copy,
`upsert_points(op_num)` into the writable segment, then `delete_points(op_num)` in the
holder. The new copy is written before the old one goes, so an error in between leaves
the point twice (reads take the higher version), never nowhere. Upserts move out of every
non-appendable segment; payload and vector changes move out of every one but
`IndexedSegment`, which keeps taking them in place (into its tail): its deletion is an
unsynced RocksDB write that a power cut may keep while losing the copy's
(`apply.changes_in_place`). The non-appendable kinds that refuse in-place writes must
therefore hold their deletions back until `flush(bound)`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Sized
from pathlib import Path
from typing import Protocol, TypeVar, runtime_checkable

import cbor2
import numpy as np

from pydrant.segments.scoring import ScoringQuery, VectorSpace
from pydrant.segments.types import PointContext, PointId, PointInput, Record, VectorSchema, VectorValue


@runtime_checkable
class Predicate(Protocol):
    """A compiled filter (`segments/filters.py`). Segments accept None for "every point"."""

    def matches(self, ctx: PointContext) -> bool: ...


@runtime_checkable
class PlannedPredicate(Predicate, Protocol):
    """A compiled filter with its plan (`filters.CompiledFilter`): what the payload indexes
    answer (`filter_plan.py`). Segments use the plan when there is one."""

    @property
    def plan(self) -> tuple: ...


# `with_payload` of `retrieve`: True (whole payload), False (none), or a function that
# selects from the stored payload (the collection's include/exclude selectors).
PayloadSelection = bool | Callable[[dict], dict]
# `with_vectors` of `retrieve`: True (every vector the point has), False, or names.
VectorSelection = bool | Sequence[str]
# One point as `export_points` gives it and `import_points` takes it: (id, version,
# vectors as the segment stores them, the payload's stored bytes: CBOR, b"" for {}).
ExportedPoint = tuple[PointId, int, dict[str, VectorValue], bytes]
# One search hit of a segment: (internal score, id, version); `search` returns a list of
# them per query, best first.
SegmentHit = tuple[float, PointId, int]


@runtime_checkable
class SegmentReader(Protocol):
    """Every read of a segment. See `Segment` for the contract (ordering, snapshots)."""

    @property
    def path(self) -> Path:
        """The segment's own directory."""
        ...

    @property
    def schema(self) -> VectorSchema:
        """The named vectors the segment stores."""
        ...

    @property
    def version(self) -> int:
        """The highest `op_num` given to any write (0 for a new segment)."""
        ...

    @property
    def persisted_version(self) -> int:
        """The `version` recorded by the last `flush()` (0 before the first)."""
        ...

    @property
    def point_count(self) -> int:
        """How many live points the segment holds."""
        ...

    @property
    def is_appendable(self) -> bool:
        """Whether the segment can be the writable one: False once it carries indexes."""
        ...

    def has_point(self, point_id: PointId) -> bool: ...

    def point_version(self, point_id: PointId) -> int | None:
        """The point's version, or None when the segment does not hold it."""
        ...

    def point_versions(self, ids: Sequence[PointId]) -> list[int | None]:
        """`point_version` of each of `ids`, in their order (repeats answered again), read
        as one state between whole writes: what a write asks of every segment per batch."""
        ...

    def vector_names_of(self, point_id: PointId) -> list[str]:
        """Names of the vectors the point has, in schema order; [] when not held."""
        ...

    def retrieve(
        self,
        ids: Iterable[PointId],
        with_payload: PayloadSelection = True,
        with_vectors: VectorSelection = False,
    ) -> list[Record]:
        """Records for the held ids among `ids`, in that order. Values are copies."""
        ...

    def read_ids(
        self,
        offset: PointId | None = None,
        limit: int | None = None,
        predicate: Predicate | None = None,
    ) -> list[PointId]:
        """Up to `limit` matching ids in ascending Qdrant order, from `offset` inclusive."""
        ...

    def count(self, predicate: Predicate | None = None) -> int: ...

    def iter_ids(self) -> Iterator[PointId]:
        """Every live id in ascending Qdrant order (a snapshot taken at the call)."""
        ...

    def dense_vectors(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(matrix of every used slot, bool mask of slots that are live and have `name`).

        Only for dense single vectors. Row i belongs to `offset_ids()[i]`.
        """
        ...

    def offset_ids(self) -> list[PointId | None]:
        """The id of every used slot, dead ones included (None for a slot never filled)."""
        ...

    def search(
        self,
        name: str,
        queries: list[ScoringQuery],
        limit: int,
        space: VectorSpace,
        predicate: Predicate | None = None,
        params: dict | None = None,
    ) -> list[list[SegmentHit]]:
        """Per query, the `limit` best (internal score, id, version) among live points that
        have vector `name` and match `predicate`, best first. `params` are Qdrant's
        SearchParams (`exact`, `hnsw_ef`, `quantization`): each kind plans its own search
        (an appendable segment always scans exactly). Scores are reference scores
        (`distance.reference`), whichever path found the hit."""
        ...

    def facet(self, key: str, predicate: Predicate | None = None) -> dict | None:
        """value -> count of matching points holding it; None if `key` has no value-map
        (keyword, bool, uuid, integer with `lookup`) index."""
        ...

    def read_ordered(
        self, key: str, descending: bool, start_from: float | None, limit: int, predicate: Predicate | None = None
    ) -> list[tuple[float, PointId]] | None:
        """The first `limit` (value, id) entries of matching points in the order of their
        values of `key` (a point once per value); None when `key` has no range index."""
        ...

    def estimate_cardinality(self, predicate: PlannedPredicate | None) -> tuple[int, int, int]:
        """(min, expected, max) matching points, from the payload indexes alone."""
        ...

    def sparse_statistics(self, name: str, indices: np.ndarray) -> tuple[int, np.ndarray]:
        """For the IDF modifier: live points with a non-empty sparse vector `name`, and how
        many of them have a value at each of `indices`."""
        ...

    def payload_index_info(self) -> dict:
        """field key -> {"points": points indexed, "ram_bytes": size}."""
        ...

    def vector_bytes(self) -> dict[str, int]:
        """Bytes of the live points' vectors per name (Qdrant's size thresholds count them)."""
        ...

    def slot_counts(self) -> tuple[int, int]:
        """(slots used, slots dead): how much a vacuum would reclaim."""
        ...

    @property
    def build_settings(self) -> dict | None:
        """The settings the segment's indexes were built with (`index_settings` of the
        collection at build time); None when it has no indexes."""
        ...

    def info(self) -> dict:
        """Counts and sizes for telemetry and the optimizer (see the implementation)."""
        ...


@runtime_checkable
class SegmentWriter(Protocol):
    """The writes of logged operations; each is atomic and skips points whose version is
    >= op_num (see `Segment`). Every one returns how many points it changed. Which of them
    the collection gives a non-appendable segment depends on its kind (copy-on-write,
    module docstring); an immutable segment is only given `delete_points`."""

    def upsert_points(self, op_num: int, points: Sequence[PointInput]) -> int:
        """Insert or wholly replace points (every vector and the payload; None payload is {}).

        When an id appears twice in `points` the last occurrence wins.
        """
        ...

    def delete_points(self, op_num: int, ids: Iterable[PointId]) -> int:
        """Forget these points; ids the segment does not hold are ignored."""
        ...

    def update_payload(self, op_num: int, ids: Iterable[PointId], transform: Callable[[dict], dict]) -> int:
        """Replace each held point's payload `p` with `transform(p)`.

        `transform` receives a fresh dict it may modify. If it raises, nothing is written.
        """
        ...

    def update_vectors(self, op_num: int, points: Sequence[tuple[PointId, Mapping[str, VectorValue]]]) -> int:
        """Replace only the named vectors given, for points the segment holds."""
        ...

    def delete_vectors(self, op_num: int, ids: Iterable[PointId], names: Iterable[str]) -> int:
        """Remove the named vectors from held points (their version moves even if they had none)."""
        ...

    def advance_version(self, version: int) -> None:
        """Record that the segment has seen every operation up to `version` without
        changing a point (a new segment in a collection that already has a history)."""
        ...

    def set_payload_indexes(self, fields: Mapping[str, object]) -> None:
        """Make the segment's payload indexes those of `fields` (key -> field schema):
        builds new or changed ones from the stored payloads, drops the others. Called by
        the one thread that writes; reads go on meanwhile."""
        ...


@runtime_checkable
class OptimizerSource(Protocol):
    """What the optimizer reads of a segment it copies into a new one (optimizer.py)."""

    @property
    def version(self) -> int: ...

    @property
    def is_appendable(self) -> bool: ...

    @property
    def build_settings(self) -> dict | None: ...

    def slot_counts(self) -> tuple[int, int]: ...

    def vector_bytes(self) -> dict[str, int]: ...

    def iter_ids(self) -> Iterator[PointId]: ...

    def export_points(self, ids: Iterable[PointId]) -> list[ExportedPoint]:
        """The held points among `ids` as `import_points` takes them (payloads as stored
        bytes: the copy never decodes and re-encodes them). Ids not held are left out."""
        ...

    def start_tracking(self) -> None:
        """Remember the id of every point changed from now on (the optimizer, copying this
        segment, copies those again before it swaps the copy in)."""
        ...

    def take_tracked(self, stop: bool = False) -> list[PointId]:
        """Ids changed since `start_tracking` or the last take; `stop` ends tracking."""
        ...


@runtime_checkable
class OptimizerTarget(Protocol):
    """What the optimizer writes into the copy it builds (besides the lifecycle)."""

    def import_points(self, points: Sequence[ExportedPoint]) -> int:
        """Insert `export_points` entries of a segment with the same schema, keeping their
        versions: a held copy is replaced only by a newer version. The segment's version
        becomes at least the highest version imported."""
        ...

    def discard_points(self, ids: Iterable[PointId]) -> int:
        """Forget points whatever their version (a point the source no longer holds); the
        segment's version does not move."""
        ...


@runtime_checkable
class SegmentLifecycle(Protocol):
    def flush(self, bound: int | None = None) -> int:
        """Make everything applied so far durable; returns the new `persisted_version`.

        `bound` is the highest `op_num` whose deletions may be made durable (None: all).
        A non-appendable segment keeps deletions of later ops for its next flush, so a
        moved point's removal is never durable before its new copy: the collection
        flushes appendable segments first, then the others with `bound` = the last op
        applied when the flush began (docs/design/on-disk-segments.md §2.4). Appendable
        and indexed segments persist everything and ignore it."""
        ...

    def close(self) -> None:
        """Release files and locks. Idempotent. Does not flush."""
        ...

    def drop(self) -> None:
        """Close and delete the segment's directory."""
        ...

    def reopen_store(self) -> None:
        """Open the storage again in place after a failed write or flush (which makes
        RocksDB refuse every later write); in-memory state and readers carry on."""
        ...

    def checkpoint(self, target: Path) -> None:
        """Copy the flushed segment into `target` (a new directory) for a snapshot: a
        directory `open_segment` opens, holding what the segment holds now."""
        ...


@runtime_checkable
class Segment(SegmentReader, SegmentWriter, OptimizerSource, OptimizerTarget, SegmentLifecycle, Protocol):
    """A set of points, each with an id, named vectors, a JSON payload and a version.

    Versions and replay. Every write carries the `op_num` the WAL gave its operation.
    A point whose stored version is >= `op_num` is left untouched by that write; a point
    that is changed takes `op_num` as its version. Applying a WAL record twice, or applying
    an older record after a newer one, therefore changes nothing that the newer record
    wrote. A deleted point keeps no version: deletion forgets the point entirely (the
    collection replays the WAL in order, so an older upsert re-applied after the deletion
    is undone again by re-applying the deletion). Every write returns how many points it
    changed. `version` is the highest `op_num` the segment has been given, whether or not
    it changed any point, so it tells the collection that the segment has seen every
    operation up to it; `advance_version` moves it without a write.
    The optimizer's writes keep versions instead of taking an `op_num`: `import_points`
    stores each point with the version it had in its source (a held copy is replaced only
    by a newer one) and raises `version` to the highest imported; `discard_points` forgets
    points whatever their version and leaves `version` alone.

    Atomicity. Each write call is atomic: after a crash the segment holds all of its
    changes or none of them, and concurrent readers never see half of one. Input is checked
    (vector names, shapes) before anything is written; a call that raises changed nothing.
    This holds for `import_points`, `discard_points` and `advance_version` too.

    Ordering. `read_ids` and `iter_ids` list ids in Qdrant's order: every integer id before
    every UUID, integers by value, UUIDs by their 128-bit value (`ids.id_sort_key`).
    `retrieve` answers in the order of the ids asked for, skipping ids it does not hold and
    repeats; so does `export_points`. `search` lists hits best first; `read_ordered` by
    value (equal values by id), reversed when descending.

    Durability. `flush()` makes everything applied before the call durable against a
    process crash and a power cut, then records and returns `persisted_version`: every
    operation with `op_num <= persisted_version` survives reopening. Writes after the last
    flush may survive a process crash, never with half an operation, but need not survive
    a power cut; the collection replays its WAL from `persisted_version + 1`, which is
    harmless because replay is idempotent. `close()` releases files and does not move
    `persisted_version`; call `flush()` first. An indexed segment's index files are
    durable before its `segment.json` names them (written once, by the optimizer, before
    the manifest lists the segment). Tracking (`start_tracking`) is memory only.

    Concurrency. Every method may be called from any thread. Writes are serialised; reads
    run between whole writes. Arrays and lists returned are snapshots the segment never
    writes to again: `dense_vectors` returns a matrix whose rows for already-used slots are
    never overwritten (a point whose vectors change moves to a new slot), so a search may
    keep scanning it while writes go on. `search`, `facet`, `read_ordered`, `count` and
    `estimate_cardinality` each see one state between whole writes (a search takes its
    candidate mask under the segment's lock and scores outside it); `set_payload_indexes`
    builds outside the lock and installs the indexes in one step.

    Slots. Internally points live in dense integer slots ("offsets"). A slot, once used,
    is never reused while the segment is open; a deleted point or the old slot of a moved
    point is dead. `offset_ids()[i]` is the id that lives or lived in slot i, and
    `dense_vectors(name)[1][i]` says whether slot i is live and has that vector.

    The writable segment: see the module docstring and `writable_segment`.
    """


_S = TypeVar("_S")


_Flushed = TypeVar("_Flushed", bound=OptimizerSource)  # anything with `is_appendable`


def flush_order(segments: Iterable[_Flushed]) -> list[_Flushed]:
    """`segments` in the order a collection flushes them: appendable ones first, so a point
    moved out of a non-appendable segment (copy-on-write) has its new copy durable before
    its deletion can be (a power cut between two flushes must not leave it nowhere)."""
    segments = list(segments)
    return [s for s in segments if s.is_appendable] + [s for s in segments if not s.is_appendable]


def exported_payload(blob: bytes) -> dict:
    """The payload dict of an `ExportedPoint`'s stored bytes (CBOR; b"" is {})."""
    return cbor2.loads(blob) if blob else {}


def writable_index(segments: Sized) -> int:
    """The position of the writable segment in a collection's segment list: the last one
    (the rule in this module's docstring). IndexError for an empty list."""
    if not len(segments):
        raise IndexError("a collection always has a writable segment")
    return len(segments) - 1


def writable_segment(segments: Sequence[_S]) -> _S:
    """The segment of a collection's list that takes new points (module docstring)."""
    return segments[writable_index(segments)]
