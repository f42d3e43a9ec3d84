"""What the optimizer needs from the collection it optimizes: the `OptimizerHost` protocol.

The optimizer sits below `collection/` (docs/architecture.md, Layers): it defines this
protocol and `Collection` implements it, so nothing here or in `optimizer.py` imports
`collection/`. The settings come already resolved from the collection's configuration
(collection/config.py `index_settings`, `search_settings`, `indexing_threads`).

Every segment change is made with `apply_lock` held: no operation is being applied then.
Segments are seen through the `Segment` protocol (segments/base.py), whichever kind they
are; the writable one is `writable_segment(host.segments)` (the rule is in base.py).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

from pydrant.segments.base import Segment
from pydrant.segments.types import VectorSchema


class PayloadIndexFields(Protocol):
    """The collection's payload index table, as far as the optimizer reads it."""

    @property
    def fields(self) -> dict:
        """field key -> index schema: what every new segment must index."""
        ...


@runtime_checkable
class OptimizerHost(Protocol):
    """A collection, seen from its optimizer."""

    @property
    def name(self) -> str:
        """For log messages."""
        ...

    @property
    def schema(self) -> VectorSchema:
        """The vectors every new segment is created with."""
        ...

    @property
    def segments(self) -> Sequence[Segment]:
        """The live segments in order, the writable one last (`writable_segment`).
        Replaced, never mutated: a reader holding the list keeps a consistent one."""
        ...

    @property
    def apply_lock(self) -> threading.Lock:
        """Held while operations are applied; the optimizer holds it to begin and to swap."""
        ...

    @property
    def payload_index(self) -> PayloadIndexFields: ...

    @property
    def manifest_unsure(self) -> bool:
        """A manifest write failed, and the manifest on disk may list a segment that the
        collection's list does not (its directory must then be kept)."""
        ...

    def optimizer_settings(self) -> dict:
        """The collection's `optimizer_config` (thresholds of the planner)."""
        ...

    def index_settings(self) -> dict:
        """What an indexed segment is built with, per vector (collection/config.py)."""
        ...

    def search_settings(self) -> dict:
        """Vector name -> search planning settings (`full_scan_threshold`)."""
        ...

    def indexing_threads(self) -> int | None:
        """Threads for one graph build; None: every core."""
        ...

    def new_segment_path(self) -> Path:
        """A directory for a new segment (not live until a manifest lists it)."""
        ...

    def add_appendable_segment(self) -> Segment:
        """Called with `apply_lock` held: a fresh appendable segment after the others (the
        new writable segment), its version advanced to the last applied operation."""
        ...

    def replace_segments(self, sources: list[Segment], replacement: Segment) -> None:
        """Called with `apply_lock` held: swap `sources` for `replacement` in one manifest
        write. `replacement` takes the position of the first source, so the writable
        segment (never a source by then) stays last."""
        ...
