"""Filter planning: answering as much of a filter as possible from payload indexes.

`plan_filter(filter_dict)` turns an already validated filter (compile_filter ran first)
into a tree of plain tuples. A segment evaluates the tree bottom-up against its indexes
(`evaluate`); every node yields two slot masks:

    yes    slots that certainly match
    upper  slots that may match (yes is inside upper)

A leaf an index can answer exactly gives yes == upper; a leaf no index knows gives
(nothing, everything). Boolean nodes combine the bounds without losing correctness:

    all_of: (yes1 & yes2, upper1 & upper2)     any_of: (yes1 | yes2, upper1 | upper2)
    not:    (~upper, ~yes)                     at_least k: count(yes_i) >= k, count(upper_i) >= k

so the matching set is always between the two. The segment then takes `yes` as it is and
runs the compiled predicate (the scan, `filters.py`) only on `upper - yes`. When indexes
answer the whole filter that difference is empty and no payload is read at all; when they
answer nothing the segment scans every point, exactly as without indexes.

Why masks rather than Qdrant's "pick the most selective primary condition, then check the
rest point by point": in Python a per-point check costs microseconds while a numpy mask
operation over a million slots costs about 100 us, so combining every indexed condition
as masks and checking only what is left is the cheaper plan at any selectivity.
`estimate_cardinality` still gives Qdrant-style (min, expected, max) estimates from the
same masks, for callers that choose between plans (search: exact scan vs graph).

Masks are numpy bool arrays over slots, with two shorthands: None (no slot) and True
(every slot).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from pydrant.segments.filter_datetime import parse_datetime
from pydrant.segments.ids import normalize_id
from pydrant.segments.payload import parse_path

UNKNOWN = ("unknown",)
ALWAYS = ("always",)
NEVER = ("never",)


# --- planning --------------------------------------------------------------------------------


def plan_filter(filter_: dict) -> tuple:
    """The plan of a validated filter."""
    parts = []
    must = _clause(filter_.get("must"))
    if must is not None:
        parts.append(_all_of([plan_condition(c) for c in must]))
    should = _clause(filter_.get("should"))
    if should is not None:
        parts.append(_any_of([plan_condition(c) for c in should]))
    must_not = _clause(filter_.get("must_not"))
    if must_not is not None:
        parts.append(("not", _any_of([plan_condition(c) for c in must_not])) if must_not else ALWAYS)
    min_should = filter_.get("min_should")
    if min_should is not None:
        conditions = [plan_condition(c) for c in min_should["conditions"]]
        count = min_should["min_count"]
        if count == 0:
            parts.append(ALWAYS)
        elif count > len(conditions):
            parts.append(NEVER)
        else:
            parts.append(("at_least", conditions, count))
    return _all_of(parts)


def _clause(value) -> list | None:
    if value is None:
        return None
    return [value] if isinstance(value, dict) else value


def _all_of(parts: list) -> tuple:
    parts = [p for p in parts if p is not ALWAYS]
    if not parts:
        return ALWAYS
    return parts[0] if len(parts) == 1 else ("all", parts)


def _any_of(parts: list) -> tuple:
    if not parts:
        return NEVER
    return parts[0] if len(parts) == 1 else ("any", parts)


def plan_condition(cond: dict) -> tuple:
    if "key" in cond:
        return _plan_field_condition(cond)
    if "has_id" in cond:
        ids = frozenset(normalize_id(i) for i in cond["has_id"])
        return ("ids", ids) if ids else NEVER
    if "has_vector" in cond:
        return ("vector", cond["has_vector"])
    if set(cond) <= {"must", "should", "must_not", "min_should"}:
        return plan_filter(cond)
    return UNKNOWN  # nested, is_empty, is_null: the scan decides


def _plan_field_condition(cond: dict) -> tuple:
    if any(cond.get(k) is not None for k in ("values_count", "is_empty", "is_null")):
        return UNKNOWN
    path = parse_path(cond["key"])
    checks = []
    match = cond.get("match")
    if match is not None:
        checks.append(_match_condition(match))
    if cond.get("range") is not None:
        checks.append(_range_condition(cond["range"]))
    box = cond.get("geo_bounding_box")
    if box is not None:
        left, top = _lon_lat(box["top_left"])
        right, bottom = _lon_lat(box["bottom_right"])
        checks.append(("geo_bbox", (left, top, right, bottom)))
    radius = cond.get("geo_radius")
    if radius is not None:
        lon, lat = _lon_lat(radius["center"])
        checks.append(("geo_radius", (lon, lat, float(radius["radius"]))))
    polygon = cond.get("geo_polygon")
    if polygon is not None:
        ring = [_lon_lat(p) for p in polygon["exterior"]["points"]]
        lons, lats = [p[0] for p in ring], [p[1] for p in ring]
        checks.append(("geo_polygon", (min(lons), min(lats), max(lons), max(lats))))
    # Several checks in one field condition: any of them (the scan's rule).
    return _any_of([("field", path, check) for check in checks])


def _match_condition(match: dict) -> tuple:
    kind = next(k for k in ("value", "any", "except", "text", "text_any", "phrase") if match.get(k) is not None)
    arg = match[kind]
    if kind in ("any", "except"):
        is_strings = all(type(v) is str for v in arg)
        return (kind, frozenset(arg), is_strings)
    return (kind, arg)


def _range_condition(spec: dict) -> tuple:
    bounds = [spec.get(k) for k in ("gt", "gte", "lt", "lte")]
    if any(type(b) is str for b in bounds):
        return ("datetime_range", tuple(None if b is None else parse_datetime(b) for b in bounds))
    return ("range", tuple(None if b is None else float(b) for b in bounds))


def _lon_lat(point: dict) -> tuple[float, float]:
    return float(point["lon"]), float(point["lat"])


# --- evaluating ------------------------------------------------------------------------------


class IndexView(Protocol):
    """What a segment offers the evaluation."""

    n: int  # slots in use; masks have this length
    gen: np.ndarray
    live: np.ndarray

    def index_for(self, path: tuple): ...  # a field_index.FieldIndex or None

    def ids_mask(self, ids: frozenset): ...  # Mask of the slots of these point ids

    def vector_mask(self, name: str): ...  # Mask of slots that have this vector


def evaluate(node: tuple, view: IndexView) -> tuple:
    """(yes, upper) masks of a plan node."""
    kind = node[0]
    if kind == "field":
        return _evaluate_field(node, view)
    yes: np.ndarray | bool | None
    upper: np.ndarray | bool | None
    if kind == "all":
        yes, upper = True, True
        for child in node[1]:
            c_yes, c_upper = evaluate(child, view)
            yes, upper = _and(yes, c_yes), _and(upper, c_upper)
            if upper is None:
                break
        return yes, upper
    if kind == "any":
        yes, upper = None, None
        for child in node[1]:
            c_yes, c_upper = evaluate(child, view)
            yes, upper = _or(yes, c_yes), _or(upper, c_upper)
            if yes is True:
                break
        return yes, upper
    if kind == "not":
        yes, upper = evaluate(node[1], view)
        return _not(upper), _not(yes)
    if kind == "at_least":
        bounds = [evaluate(child, view) for child in node[1]]
        need = node[2]
        return _at_least([b[0] for b in bounds], need, view.n), _at_least([b[1] for b in bounds], need, view.n)
    if kind == "ids":
        mask = view.ids_mask(node[1])
        return mask, mask
    if kind == "vector":
        mask = view.vector_mask(node[1])
        return mask, mask
    if kind == "always":
        return True, True
    if kind == "never":
        return None, None
    return None, True  # unknown


def _evaluate_field(node: tuple, view: IndexView) -> tuple:
    _, path, condition = node
    # Only an index on the very same path: `tags[]` and `tags` differ on nested arrays.
    index = view.index_for(path)
    if index is None:
        return None, True
    answer = index.answer(condition, view.gen, view.live, view.n)
    return (None, True) if answer is None else answer


def _and(a, b):
    if a is None or b is None:
        return None
    if a is True:
        return b
    if b is True:
        return a
    return a & b


def _or(a, b):
    if a is True or b is True:
        return True
    if a is None:
        return b
    if b is None:
        return a
    return a | b


def _not(a):
    if a is None:
        return True
    if a is True:
        return None
    return ~a


def _at_least(masks: list, need: int, n: int):
    counts = np.zeros(n, dtype=np.int32)
    for mask in masks:
        if mask is True:
            counts += 1
        elif mask is not None:
            counts += mask
    result = counts >= need
    return result if result.any() else None


def as_array(mask, n: int) -> np.ndarray:
    if mask is None:
        return np.zeros(n, dtype=bool)
    if mask is True:
        return np.ones(n, dtype=bool)
    return mask


def split(plan: tuple, view: IndexView) -> tuple[np.ndarray, np.ndarray]:
    """(sure, to_check) bool arrays over live slots: matches certain, and the ones the
    predicate must decide."""
    yes, upper = evaluate(plan, view)
    live = view.live[: view.n]
    sure = as_array(yes, view.n) & live
    to_check = as_array(upper, view.n) & live & ~sure
    return sure, to_check


def estimate_cardinality(plan: tuple, view: IndexView) -> tuple[int, int, int]:
    """(min, expected, max) number of matching live points, from the index bounds alone."""
    sure, to_check = split(plan, view)
    low = int(np.count_nonzero(sure))
    unsure = int(np.count_nonzero(to_check))
    return low, low + unsure // 2, low + unsure
