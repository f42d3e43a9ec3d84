"""Point reads over all of a collection's segments: retrieve, scroll, count.

Blocking code: handlers call it through `trio.to_thread.run_sync`. When a point is present
in more than one segment (during copy-on-write) the copy with the highest version wins.
"""

from __future__ import annotations

import heapq
from typing import Any

from pydrant.segments.filters import compile_filter
from pydrant.segments.ids import id_sort_key
from pydrant.segments.types import Record

PayloadSelector = Any  # True | False | [keys] | {"include": [...]} | {"exclude": [...]}
VectorSelector = Any  # True | False | [names]


def select_payload(payload: dict, selector: PayloadSelector) -> dict | None:
    """Apply a `with_payload` selector to a stored payload (top-level or dotted keys)."""
    if selector is True:
        return payload
    if not selector:
        return None
    if isinstance(selector, list):
        return _include(payload, selector)
    if "include" in selector:
        return _include(payload, selector["include"])
    if "exclude" in selector:
        from pydrant.segments.payload import delete_keys

        return delete_keys(payload, selector["exclude"])
    return payload


def _include(payload: dict, keys: list[str]) -> dict:
    result = {}
    for key in keys:
        head = key.split(".", 1)[0].removesuffix("[]")
        if head not in payload:
            continue
        if "." in key:
            rest = key.split(".", 1)[1]
            value = payload[head]
            if isinstance(value, dict):
                sub = _include(value, [rest])
                if sub:
                    result.setdefault(head, {}).update(sub)
            continue
        result[head] = payload[head]
    return result


class ReadEngine:
    def __init__(self, collection):
        self.collection = collection

    @property
    def segments(self) -> list:
        return self.collection.segments

    def compile(self, filter_: dict | None):
        """A filter compiled for this collection (text conditions follow its text indexes)."""
        return compile_filter(filter_, self.collection.payload_index.text_analyzers())

    def retrieve(self, ids: list, with_payload: PayloadSelector = True, with_vector: VectorSelector = False) -> list[Record]:
        """Stored points with these ids, in the order given; missing ids are left out."""
        best: dict = {}
        load_payload = bool(with_payload)
        for segment in self.segments:
            for record in segment.retrieve(ids, load_payload, with_vector):
                current = best.get(record.id)
                if current is None or record.version > current.version:
                    best[record.id] = record
        records = []
        for point_id in dict.fromkeys(ids):
            record = best.get(point_id)
            if record is None:
                continue
            if load_payload:
                record.payload = select_payload(record.payload or {}, with_payload)
            records.append(record)
        return records

    def scroll(
        self,
        offset=None,
        limit: int = 10,
        filter: dict | None = None,
        with_payload: PayloadSelector = True,
        with_vector: VectorSelector = False,
    ) -> tuple[list[Record], Any]:
        """Up to `limit` points in id order from `offset` (inclusive), and the next offset."""
        predicate = self.compile(filter)
        per_segment = [segment.read_ids(offset, limit + 1, predicate) for segment in self.segments]
        merged = list(dict.fromkeys(heapq.merge(*per_segment, key=id_sort_key)))
        page, rest = merged[:limit], merged[limit : limit + 1]
        records = self.retrieve(page, with_payload, with_vector)
        return records, (rest[0] if rest else None)

    def count(self, filter: dict | None = None, exact: bool = True) -> int:
        predicate = self.compile(filter)
        if predicate is None:
            return sum(segment.point_count for segment in self.segments)
        return sum(segment.count(predicate) for segment in self.segments)

    def existing_ids(self, ids: list) -> set:
        return {point_id for point_id in ids if any(s.has_point(point_id) for s in self.segments)}
