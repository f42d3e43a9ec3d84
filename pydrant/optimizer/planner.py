"""Which optimization a collection needs next (pure: facts in, a plan out; no I/O).

Qdrant's optimizers, in the order they are considered here:

  vacuum           a segment whose dead share (deleted or moved points' slots) exceeds
                   `deleted_threshold`, once it has at least `vacuum_min_vector_number` slots
  config mismatch  an indexed segment built with other hnsw / quantization / on-disk
                   settings than the collection now has (after a PATCH)
  indexing         an appendable segment whose largest vector storage has reached
                   `indexing_threshold` kB (0 disables indexing)
  merge            more segments than `default_segment_number` (0: one per CPU): the
                   smallest ones but the writable segment (segments/base.py), two or three
                   at a time, while their sum stays within `max_segment_size` kB

`max_optimization_threads: 0` disables every optimizer. Sizes are of vectors, in kB, as
Qdrant counts them (1 kB = one 256-d float32 vector).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from pydrant.config import DEFAULTS
from pydrant.segments.base import Segment, writable_index

# Qdrant picks max_segment_size from the CPU count when it is not set.
AUTO_MAX_SEGMENT_KB_PER_CPU = 200_000
MAX_MERGE_SOURCES = 3


@dataclass
class SegmentFacts:
    """What the planner needs to know of one segment."""

    segment: Segment
    appendable: bool
    indexed: bool
    vector_kb: float  # the largest vector storage (kB) of its live points
    slots_used: int
    slots_dead: int
    settings: dict | None  # an indexed segment's build settings


@dataclass
class Plan:
    kind: str  # "vacuum" | "config_mismatch" | "indexing" | "merge"
    sources: list[Segment]  # the segments to replace
    indexed: bool  # whether the replacement gets indexes

    def describe(self) -> str:
        return f"{self.kind} of {len(self.sources)} segment(s) into a{'n indexed' if self.indexed else ' plain'} one"


def facts_of(segment: Segment) -> SegmentFacts:
    used, dead = segment.slot_counts()
    sizes = segment.vector_bytes()
    appendable = segment.is_appendable
    return SegmentFacts(
        segment=segment,
        appendable=appendable,
        indexed=not appendable,
        vector_kb=max(sizes.values(), default=0) / 1024,
        slots_used=used,
        slots_dead=dead,
        settings=None if appendable else segment.build_settings,
    )


def next_plan(facts: list[SegmentFacts], optimizer_config: dict, wanted_settings: dict) -> Plan | None:
    """The optimization to run next, or None when the collection is optimized. `facts`
    are of the collection's segments in their order (the writable one last)."""
    if optimizer_config.get("max_optimization_threads") == 0:
        return None
    indexing_kb = optimizer_config.get("indexing_threshold")
    if indexing_kb is None:
        indexing_kb = DEFAULTS.storage.optimizers.indexing_threshold_kb
        assert indexing_kb is not None  # the server default is a number (10000 kB)

    def should_index(size_kb: float) -> bool:
        return indexing_kb > 0 and size_kb >= indexing_kb

    for fact in facts:
        if _needs_vacuum(fact, optimizer_config):
            return Plan("vacuum", [fact.segment], fact.indexed or should_index(fact.vector_kb))
    for fact in facts:
        if fact.indexed and fact.settings != wanted_settings:
            return Plan("config_mismatch", [fact.segment], True)
    for fact in facts:
        if fact.appendable and should_index(fact.vector_kb):
            return Plan("indexing", [fact.segment], True)
    return _merge_plan(facts, optimizer_config, should_index)


def _needs_vacuum(fact: SegmentFacts, config: dict) -> bool:
    threshold = config.get("deleted_threshold")
    threshold = DEFAULTS.storage.optimizers.deleted_threshold if threshold is None else threshold
    minimum = config.get("vacuum_min_vector_number")
    minimum = DEFAULTS.storage.optimizers.vacuum_min_vector_number if minimum is None else minimum
    if fact.slots_used < minimum or fact.slots_dead == 0:
        return False
    return fact.slots_dead / fact.slots_used > threshold


def _merge_plan(facts: list[SegmentFacts], config: dict, should_index) -> Plan | None:
    target = config.get("default_segment_number") or (os.cpu_count() or 1)
    if len(facts) <= max(target, 1):
        return None
    max_kb = config.get("max_segment_size") or AUTO_MAX_SEGMENT_KB_PER_CPU * (os.cpu_count() or 1)
    # The writable segment takes new points and is never merged (segments/base.py); the
    # others are candidates, smallest first.
    writable = writable_index(facts)
    candidates = sorted((f for i, f in enumerate(facts) if i != writable), key=lambda f: f.vector_kb)
    picked: list[SegmentFacts] = []
    total = 0.0
    for fact in candidates:
        if len(picked) == MAX_MERGE_SOURCES or total + fact.vector_kb > max_kb:
            break
        picked.append(fact)
        total += fact.vector_kb
    if len(picked) < 2:
        return None
    return Plan("merge", [f.segment for f in picked], any(f.indexed for f in picked) or should_index(total))
