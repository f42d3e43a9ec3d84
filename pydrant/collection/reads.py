"""Point reads over all of a collection's segments: retrieve, scroll, count, facet.

Filters come compiled (`predicates.Predicate`): the engine's entry points
(collection/engine.py) compile a request's filter once and pass the predicate down.
Blocking code, called from worker threads. A read's deadline (segments/deadline.py) is
checked before each segment's part, and inside the segments' long loops. When a point is present in more than one
segment (during copy-on-write) the copy with the highest version wins.
"""

from __future__ import annotations

import dataclasses
import heapq
from typing import Any

from pydrant.collection.predicates import Predicate, conjunction, vector_predicate
from pydrant.errors import BadInput
from pydrant.segments import deadline
from pydrant.segments.filter_datetime import parse_datetime
from pydrant.segments.ids import id_sort_key
from pydrant.segments.payload import WILDCARD, parse_path
from pydrant.segments.types import Record

PayloadSelector = Any  # True | False | [keys] | {"include": [...]} | {"exclude": [...]}
VectorSelector = Any  # True | False | [names]


def select_payload(payload: dict, selector: PayloadSelector) -> dict | None:
    """Apply a `with_payload` selector to a stored payload (Qdrant's `PayloadSelector::process`).

    Like Qdrant's `JsonPath::value_filter`, the payload is walked with the path of each value
    (`a.b`, an array element's `a.b[]`): an include keeps a value whose path and a pattern agree
    on their common prefix (so `nested.arr[].x` keeps `nested`, `nested.arr`, its elements and
    their `x`); an exclude drops a value whose path starts with a pattern."""
    if selector is True:
        return payload
    if not selector:
        return None
    if isinstance(selector, list):
        patterns = [parse_path(key) for key in selector]
        return _filter_payload(payload, lambda path: any(_include_match(p, path) for p in patterns))
    if "include" in selector:
        patterns = [parse_path(key) for key in selector["include"]]
        return _filter_payload(payload, lambda path: any(_include_match(p, path) for p in patterns))
    if "exclude" in selector:
        patterns = [parse_path(key) for key in selector["exclude"]]
        return _filter_payload(payload, lambda path: not any(_exclude_match(p, path) for p in patterns))
    return payload


def _same_item(a, b) -> bool:
    return type(a) is type(b) and a == b


def _include_match(pattern: tuple, path: tuple) -> bool:
    # Qdrant's check_include_pattern: equal over the shorter of the two (a prefix either way)
    return all(_same_item(a, b) for a, b in zip(pattern, path))


def _exclude_match(pattern: tuple, path: tuple) -> bool:
    # Qdrant's check_exclude_pattern: the pattern is a prefix of the path
    return len(pattern) <= len(path) and all(_same_item(a, b) for a, b in zip(pattern, path))


def _filter_payload(payload: dict, keep) -> dict:
    result = {}
    for key, value in (payload or {}).items():
        path = (key,)
        if keep(path):
            result[key] = _filter_value(path, value, keep)
    return result


def _filter_value(path: tuple, value, keep):
    if isinstance(value, list):
        element_path = path + (WILDCARD,)
        if not keep(element_path):
            return []
        return [_filter_value(element_path, element, keep) for element in value]
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            item_path = path + (key,)
            if keep(item_path):
                out[key] = _filter_value(item_path, item, keep)
        return out
    return value


class ReadEngine:
    def __init__(self, collection):
        self.collection = collection

    @property
    def segments(self) -> list:
        return self.collection.segments

    def retrieve(self, ids: list, with_payload: PayloadSelector = True, with_vector: VectorSelector = False) -> list[Record]:
        """Stored points with these ids, in the order given; missing ids are left out."""
        best: dict = {}
        load_payload = bool(with_payload)
        for segment in self.segments:
            deadline.check()
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
        predicate: Predicate = None,
        with_payload: PayloadSelector = True,
        with_vector: VectorSelector = False,
    ) -> tuple[list[Record], Any]:
        """Up to `limit` points in id order from `offset` (inclusive), and the next offset."""
        per_segment = [_checked(segment.read_ids, offset, limit + 1, predicate) for segment in self.segments]
        merged = list(dict.fromkeys(heapq.merge(*per_segment, key=id_sort_key)))
        page, rest = merged[:limit], merged[limit : limit + 1]
        records = self.retrieve(page, with_payload, with_vector)
        return records, (rest[0] if rest else None)

    def count(self, predicate: Predicate = None) -> int:
        if predicate is None:
            return sum(segment.point_count for segment in self.segments)
        return sum(_checked(segment.count, predicate) for segment in self.segments)

    def matching_ids(self, predicate: Predicate = None, vector_name: str | None = None) -> list:
        """Every point id matching `predicate` (and having vector `vector_name`), in id order."""
        if vector_name is not None:
            predicate = conjunction(predicate, vector_predicate(vector_name))
        per_segment = [_checked(segment.read_ids, None, None, predicate) for segment in self.segments]
        return list(dict.fromkeys(heapq.merge(*per_segment, key=id_sort_key)))

    def existing_ids(self, ids: list) -> set:
        return {point_id for point_id in ids if any(s.has_point(point_id) for s in self.segments)}

    # -- payload-index reads -------------------------------------------------------------

    def facet(self, key: str, predicate: Predicate = None, limit: int = 10) -> list[dict]:
        """Qdrant's facet: the `limit` most frequent values of an indexed field among the
        points matching `predicate`, with their point counts (count desc, then value)."""
        totals: dict = {}
        for segment in self.segments:
            counts = _checked(segment.facet, key, predicate)
            if counts is None:
                raise BadInput(
                    f"Wrong input: No appropriate index for faceting: `{key}`. Please create one to facet on this "
                    "field. Check https://qdrant.tech/documentation/concepts/indexing/#payload-index to see which "
                    "payload schemas support Match conditions"
                )
            for value, count in counts.items():
                totals[value] = totals.get(value, 0) + count
        hits = sorted(totals.items(), key=lambda item: (-item[1], _facet_sort_key(item[0])))
        return [{"value": value, "count": count} for value, count in hits[:limit]]

    def scroll_ordered(
        self,
        order_by: dict,
        limit: int = 10,
        predicate: Predicate = None,
        with_payload: PayloadSelector = True,
        with_vector: VectorSelector = False,
    ) -> list[Record]:
        """Scroll by a payload field's values (`order_by`: key, direction, start_from).
        Records carry `order_value`; a point with several values appears once per value."""
        key = order_by["key"]
        descending = order_by.get("direction") == "desc"
        start_from = _order_start(order_by.get("start_from"))
        entries = []
        for segment in self.segments:
            deadline.check()
            found = segment.read_ordered(key, descending, start_from, limit, predicate)
            if found is None:
                raise BadInput(
                    f"Wrong input: No range index for `order_by` key: `{key}`. Please create one to use `order_by`. "
                    "Check https://qdrant.tech/documentation/concepts/indexing/#payload-index to see which payload "
                    "schemas support Range conditions"
                )
            entries.extend(found)
        data_type = self.collection.payload_index.data_type(key)
        entries.sort(key=lambda e: (e[0], id_sort_key(e[1])), reverse=descending)
        entries = entries[:limit]
        records = {r.id: r for r in self.retrieve([point_id for _, point_id in entries], with_payload, with_vector)}
        ordered = []
        for value, point_id in entries:
            record = records.get(point_id)
            if record is not None:
                ordered.append(dataclasses.replace(record, order_value=_order_value(value, data_type)))
        return ordered


def _checked(function, *args):
    """A safe point of the read's deadline (segments/deadline.py) before one segment's part."""
    deadline.check()
    return function(*args)


def _facet_sort_key(value):
    # One index holds one kind of value; bools sort false before true, as Rust's do.
    return (str(type(value)), value)


def _order_start(start_from):
    """`start_from` as the float the range indexes compare: a number or a datetime string."""
    if start_from is None:
        return None
    if isinstance(start_from, str):
        micros = parse_datetime(start_from)
        if micros is None:
            raise BadInput(f"Wrong input: order_by.start_from {start_from!r} is not a number or an RFC 3339 datetime")
        return float(micros)
    return float(start_from)


def _order_value(value: float, data_type: str | None):
    # Qdrant's OrderValue: integers (and datetimes, as microseconds) are Int, floats Float.
    return float(value) if data_type == "float" else int(value)
