"""The contract every segment keeps: appendable, immutable (indexed) and proxy alike.

Callers (`collection/`, the optimizer, the query engine) hold segments as `Segment` and
never ask which kind they have. `tests/segments/test_segment_conformance.py` runs one
model-based suite over every kind.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np

from pydrant.segments.types import PointContext, PointId, PointInput, Record, VectorSchema, VectorValue


@runtime_checkable
class Predicate(Protocol):
    """A compiled filter (`segments/filters.py`). Segments accept None for "every point"."""

    def matches(self, ctx: PointContext) -> bool: ...


# `with_payload` of `retrieve`: True (whole payload), False (none), or a function that
# selects from the stored payload (the collection's include/exclude selectors).
PayloadSelection = bool | Callable[[dict], dict]
# `with_vectors` of `retrieve`: True (every vector the point has), False, or names.
VectorSelection = bool | Sequence[str]


@runtime_checkable
class Segment(Protocol):
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
    operation up to it.

    Atomicity. Each write call is atomic: after a crash the segment holds all of its
    changes or none of them, and concurrent readers never see half of one. Input is checked
    (vector names, shapes) before anything is written; a call that raises changed nothing.

    Ordering. `read_ids` and `iter_ids` list ids in Qdrant's order: every integer id before
    every UUID, integers by value, UUIDs by their 128-bit value (`ids.id_sort_key`).
    `retrieve` answers in the order of the ids asked for, skipping ids it does not hold and
    repeats.

    Durability. `flush()` makes everything applied before the call durable against a
    process crash and a power cut, then records and returns `persisted_version`: every
    operation with `op_num <= persisted_version` survives reopening. Writes after the last
    flush may survive a process crash, never with half an operation, but need not survive
    a power cut; the collection replays its WAL from `persisted_version + 1`, which is
    harmless because replay is idempotent. `close()` releases files and does not move
    `persisted_version`; call `flush()` first.

    Concurrency. Every method may be called from any thread. Writes are serialised; reads
    run between whole writes. Arrays and lists returned are snapshots the segment never
    writes to again: `dense_vectors` returns a matrix whose rows for already-used slots are
    never overwritten (a point whose vectors change moves to a new slot), so a search may
    keep scanning it while writes go on.

    Slots. Internally points live in dense integer slots ("offsets"). A slot, once used,
    is never reused while the segment is open; a deleted point or the old slot of a moved
    point is dead. `offset_ids()[i]` is the id that lives or lived in slot i, and
    `dense_vectors(name)[1][i]` says whether slot i is live and has that vector.
    """

    @property
    def path(self) -> Path:
        """The segment's own directory."""

    @property
    def schema(self) -> VectorSchema:
        """The named vectors the segment stores."""

    @property
    def version(self) -> int:
        """The highest `op_num` given to any write (0 for a new segment)."""

    @property
    def persisted_version(self) -> int:
        """The `version` recorded by the last `flush()` (0 before the first)."""

    @property
    def point_count(self) -> int:
        """How many live points the segment holds."""

    # -- writes: each is atomic and skips points whose version is >= op_num --

    def upsert_points(self, op_num: int, points: Sequence[PointInput]) -> int:
        """Insert or wholly replace points (every vector and the payload; None payload is {}).

        When an id appears twice in `points` the last occurrence wins.
        """

    def delete_points(self, op_num: int, ids: Iterable[PointId]) -> int:
        """Forget these points; ids the segment does not hold are ignored."""

    def update_payload(self, op_num: int, ids: Iterable[PointId], transform: Callable[[dict], dict]) -> int:
        """Replace each held point's payload `p` with `transform(p)`.

        `transform` receives a fresh dict it may modify. If it raises, nothing is written.
        """

    def update_vectors(self, op_num: int, points: Sequence[tuple[PointId, Mapping[str, VectorValue]]]) -> int:
        """Replace only the named vectors given, for points the segment holds."""

    def delete_vectors(self, op_num: int, ids: Iterable[PointId], names: Iterable[str]) -> int:
        """Remove the named vectors from held points (their version moves even if they had none)."""

    # -- reads --

    def has_point(self, point_id: PointId) -> bool: ...

    def point_version(self, point_id: PointId) -> int | None:
        """The point's version, or None when the segment does not hold it."""

    def vector_names_of(self, point_id: PointId) -> list[str]:
        """Names of the vectors the point has, in schema order; [] when not held."""

    def retrieve(
        self,
        ids: Iterable[PointId],
        with_payload: PayloadSelection = True,
        with_vectors: VectorSelection = False,
    ) -> list[Record]:
        """Records for the held ids among `ids`, in that order. Values are copies."""

    def read_ids(
        self,
        offset: PointId | None = None,
        limit: int | None = None,
        predicate: Predicate | None = None,
    ) -> list[PointId]:
        """Up to `limit` matching ids in ascending Qdrant order, from `offset` inclusive."""

    def count(self, predicate: Predicate | None = None) -> int: ...

    def iter_ids(self) -> Iterator[PointId]:
        """Every live id in ascending Qdrant order (a snapshot taken at the call)."""

    def dense_vectors(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(matrix of every used slot, bool mask of slots that are live and have `name`).

        Only for dense single vectors. Row i belongs to `offset_ids()[i]`.
        """

    def offset_ids(self) -> list[PointId | None]:
        """The id of every used slot, dead ones included (None for a slot never filled)."""

    def info(self) -> dict:
        """Counts and sizes for telemetry and the optimizer (see the implementation)."""

    # -- lifecycle --

    def flush(self) -> int:
        """Make everything applied so far durable; returns the new `persisted_version`."""

    def close(self) -> None:
        """Release files and locks. Idempotent. Does not flush."""

    def drop(self) -> None:
        """Close and delete the segment's directory."""
