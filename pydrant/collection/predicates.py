"""Compiled filters as the engine passes them to segments.

A request's filters are compiled once, by the collection (`Collection.compile_filter`,
with its full-text indexes' analyzers), when the request enters the engine
(collection/engine.py). The query engine then combines the compiled predicates of a query
tree's levels with `conjunction` instead of compiling merged filter JSON again: the
conditions are the same, evaluated in the same order.
"""

from __future__ import annotations

from pydrant.segments.filters import CompiledFilter, compile_filter

# A compiled filter, or None for "every point" (segments accept both).
Predicate = CompiledFilter | None


def conjunction(*predicates: Predicate) -> Predicate:
    """The predicate matching what all of `predicates` match (None: every point).

    Its `source` is the filter `{"must": [...]}` of the parts and its `plan` the planner's
    `all` node of theirs (segments/filter_plan.py), so a segment answers the combination
    from its payload indexes exactly as it would the merged filter."""
    present = [p for p in predicates if p is not None]
    if not present:
        return None
    if len(present) == 1:
        return present[0]
    checks = tuple(p.matches for p in present)
    if len(checks) == 2:
        first, second = checks

        def matches(ctx) -> bool:
            return first(ctx) and second(ctx)
    else:

        def matches(ctx) -> bool:
            return all(check(ctx) for check in checks)

    return CompiledFilter(matches, {"must": [p.source for p in present]}, ("all", [p.plan for p in present]))


def ids_predicate(ids: list, *, exclude: bool = False) -> Predicate:
    """Points whose id is (`exclude`: is not) among `ids`, for filters the engine adds."""
    condition = [{"has_id": ids}]
    return compile_filter({"must_not": condition} if exclude else {"must": condition})


def vector_predicate(name: str) -> Predicate:
    """Points that have vector `name`."""
    return compile_filter({"must": [{"has_vector": name}]})
