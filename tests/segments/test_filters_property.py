"""Compiled filters agree with a naive interpreter of the filter language on random inputs.

The reference below is written from the rules in docs/filtering.md, independently of
`filters.py`: it re-walks the filter dict on every call, re-parses every key, and never
precomputes anything. Hypothesis generates small nested payloads and filters (clauses
nested up to depth 3 with match value/any/except, range, values_count, is_empty, is_null
in both forms, has_id, has_vector and nested) and checks the two give the same answer.
"""

import re
import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from pydrant.segments.filters import compile_filter
from pydrant.segments.types import PointContext

# --- the reference interpreter -------------------------------------------------------------

_STEP = re.compile(r"([A-Za-z0-9_-]+)|\[(\d*)\]|\.")


def ref_steps(key: str) -> list:
    steps = []
    for name, index in (m.groups() for m in _STEP.finditer(key)):
        if name is not None:
            steps.append(("key", name))
        elif index == "":
            steps.append(("all", None))
        elif index is not None:
            steps.append(("index", int(index)))
    return steps


def ref_values(payload: dict, key: str) -> list:
    """Breadth-first walk: every node the path reaches, arrays at the end kept whole."""
    nodes = [payload]
    for kind, arg in ref_steps(key):
        reached = []
        for node in nodes:
            if kind == "key" and isinstance(node, dict) and arg in node:
                reached.append(node[arg])
            elif kind == "all" and isinstance(node, list):
                reached.extend(node)
            elif kind == "index" and isinstance(node, list) and arg < len(node):
                reached.append(node[arg])
        nodes = reached
    return nodes


def is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def is_integer(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def in_bounds(x, bounds: dict) -> bool:
    checks = {
        "lt": lambda b: x < b,
        "gt": lambda b: x > b,
        "lte": lambda b: x <= b,
        "gte": lambda b: x >= b,
    }
    return all(checks[name](bound) for name, bound in bounds.items() if bound is not None)


def ref_match(match: dict, x) -> bool:
    if "value" in match:
        v = match["value"]
        return type(x) is type(v) and x == v
    if "any" in match:
        return any(type(x) is type(v) and x == v for v in match["any"])
    if "except" in match:
        listed = match["except"]
        if x is None:
            return False
        strings = all(isinstance(v, str) for v in listed)
        if strings and isinstance(x, str):
            return x not in listed
        if not strings and is_integer(x):
            return x not in listed
        return True
    raise AssertionError(match)


def ref_element(cond: dict, x) -> bool:
    """Does one element satisfy any of the value conditions of a FieldCondition?"""
    hits = []
    if cond.get("match") is not None:
        hits.append(ref_match(cond["match"], x))
    if cond.get("range") is not None:
        hits.append(is_number(x) and in_bounds(x, cond["range"]))
    return any(hits)


def ref_field(cond: dict, payload: dict) -> bool:
    values = ref_values(payload, cond["key"])
    vc, empty, null = cond.get("values_count"), cond.get("is_empty"), cond.get("is_null")
    if not values:
        if empty is not None:
            return empty
        if null is not None:
            return not null
        return False
    for v in values:
        if vc is not None:
            n = 0 if v is None else (len(v) if isinstance(v, list) else 1)
            ok = in_bounds(n, vc)
        elif empty is not None:
            ok = (v is None or v == []) if empty else not (v is None or v == [])
        elif null is not None:
            has_null = v is None or (isinstance(v, list) and None in v)
            ok = has_null if null else not has_null
        else:
            ok = any(ref_element(cond, e) for e in (v if isinstance(v, list) else [v]))
        if ok:
            return True
    return False


def canonical_id(raw):
    return raw if isinstance(raw, int) else str(uuid.UUID(raw))


def ref_condition(cond: dict, point: dict, nested: bool) -> bool:
    payload = point["payload"]
    if "key" in cond:
        return ref_field(cond, payload)
    if "is_empty" in cond:
        return all(v is None or v == [] for v in ref_values(payload, cond["is_empty"]["key"]))
    if "is_null" in cond:
        return any(v is None for v in ref_values(payload, cond["is_null"]["key"]))
    if "has_id" in cond:
        return not nested and point["id"] in {canonical_id(i) for i in cond["has_id"]}
    if "has_vector" in cond:
        return not nested and cond["has_vector"] in point["vectors"]
    if "nested" in cond:
        key = cond["nested"]["key"]
        elements = ref_values(payload, key if key.endswith("[]") else key + "[]")
        return any(
            ref_filter(cond["nested"]["filter"], {"payload": e if isinstance(e, dict) else {}}, True)
            for e in elements
        )
    return ref_filter(cond, point, nested)


def as_list(clause):
    return clause if isinstance(clause, list) else [clause]


def ref_filter(f: dict, point: dict, nested: bool = False) -> bool:
    if f.get("must") is not None:
        if not all(ref_condition(c, point, nested) for c in as_list(f["must"])):
            return False
    if f.get("should") is not None:
        if not any(ref_condition(c, point, nested) for c in as_list(f["should"])):
            return False
    if f.get("must_not") is not None:
        if any(ref_condition(c, point, nested) for c in as_list(f["must_not"])):
            return False
    if f.get("min_should") is not None:
        ms = f["min_should"]
        if sum(ref_condition(c, point, nested) for c in ms["conditions"]) < ms["min_count"]:
            return False
    return True


# --- generators ----------------------------------------------------------------------------

NAMES = ["a", "b", "c"]
STRINGS = ["x", "y"]
IDS = [1, 2, 3, "550e8400-e29b-41d4-a716-446655440000", "6ba7b810-9dad-11d1-80b4-00c04fd430c8"]
ID_SPELLINGS = {
    IDS[3]: [IDS[3], IDS[3].upper(), IDS[3].replace("-", "")],
    IDS[4]: [IDS[4], "{" + IDS[4] + "}"],
}

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-1, 1),
    st.sampled_from([0.0, 1.5]),
    st.sampled_from(STRINGS),
)
containers = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.lists(st.dictionaries(st.sampled_from(NAMES), inner, max_size=3), max_size=3),
        st.dictionaries(st.sampled_from(NAMES), inner, max_size=3),
    ),
    max_leaves=8,
)
# st.recursive alone nearly always draws containers; scalars must be common at every key.
json_values = st.one_of(scalars, scalars, containers)
payloads = st.dictionaries(st.sampled_from(NAMES), json_values, min_size=1, max_size=3)

keys = st.sampled_from(["a", "b", "c", "a", "b", "c", "a.b", "a[].b", "a[]", "b[0]", "c.a.b", "a[].b[]", "b[].c"])

match_values = st.one_of(st.sampled_from(STRINGS), st.integers(-1, 1), st.booleans())
value_lists = st.one_of(
    st.lists(st.sampled_from(STRINGS), max_size=2, unique=True), st.lists(st.integers(-1, 1), max_size=2, unique=True)
)
matches = st.one_of(
    st.builds(lambda v: {"value": v}, match_values),
    st.builds(lambda vs: {"any": vs}, value_lists),
    st.builds(lambda vs: {"except": vs}, value_lists),
)
bound = st.one_of(st.none(), st.integers(-1, 1), st.sampled_from([-0.5, 1.5]))
ranges = st.fixed_dictionaries({}, optional={"lt": bound, "gt": bound, "lte": bound, "gte": bound})
count_bound = st.integers(0, 3)
counts = st.fixed_dictionaries(
    {}, optional={"lt": count_bound, "gt": count_bound, "lte": count_bound, "gte": count_bound}
).filter(bool)


def one_field_condition(kind, strategy):
    return st.builds(lambda key, value: {"key": key, kind: value}, keys, strategy)


field_conditions = st.one_of(
    one_field_condition("match", matches),
    one_field_condition("match", matches),
    one_field_condition("range", ranges),
    one_field_condition("values_count", counts),
    one_field_condition("is_empty", st.booleans()),
    one_field_condition("is_null", st.booleans()),
    # Rarely, several conditions in one FieldCondition (Qdrant ORs them).
    st.fixed_dictionaries(
        {"key": keys, "match": matches},
        optional={"range": ranges, "values_count": counts, "is_empty": st.booleans(), "is_null": st.booleans()},
    ),
)

id_lists = st.lists(st.sampled_from(IDS), max_size=3).flatmap(
    lambda ids: st.tuples(*[st.sampled_from(ID_SPELLINGS.get(i, [i])) for i in ids]).map(list)
)

leaf_conditions = st.one_of(
    field_conditions,
    field_conditions,
    field_conditions,
    st.builds(lambda k: {"is_empty": {"key": k}}, keys),
    st.builds(lambda k: {"is_null": {"key": k}}, keys),
    st.builds(lambda ids: {"has_id": ids}, id_lists),
    st.builds(lambda name: {"has_vector": name}, st.sampled_from(["", "img"])),
)


def filters(depth: int):
    if depth == 0:
        conditions = leaf_conditions
    else:
        sub = filters(depth - 1)
        conditions = st.one_of(
            leaf_conditions,
            leaf_conditions,
            sub,
            st.builds(
                lambda k, f: {"nested": {"key": k, "filter": f}}, st.sampled_from(["a", "b[]", "a[].b", "c"]), sub
            ),
        )
    clause = st.one_of(
        st.none(), st.none(), conditions, st.lists(conditions, max_size=2), st.lists(conditions, max_size=3)
    )
    min_should = st.one_of(
        st.none(),
        st.builds(
            lambda cs, n: {"conditions": cs, "min_count": n}, st.lists(conditions, max_size=4), st.integers(0, 4)
        ),
    )
    return st.fixed_dictionaries(
        {}, optional={"must": clause, "should": clause, "must_not": clause, "min_should": min_should}
    )


# Shallow filters are as likely as deep ones: deep random conjunctions are mostly false.
any_filter = st.one_of(filters(1), filters(2), filters(3))

points = st.fixed_dictionaries(
    {
        "id": st.sampled_from(IDS),
        "payload": payloads,
        "vectors": st.sets(st.sampled_from(["", "img"])),
    }
)


@settings(max_examples=200, deadline=None)
@given(any_filter, st.lists(points, min_size=1, max_size=8))
def test_compiled_filter_agrees_with_reference(filter_, points_):
    compiled = compile_filter(filter_)
    for point in points_:
        expected = ref_filter(filter_, point)
        ctx = PointContext(point["id"], lambda p=point: p["payload"], lambda name, p=point: name in p["vectors"])
        actual = True if compiled is None else compiled.matches(ctx)
        assert actual == expected, (filter_, point)


@settings(max_examples=200, deadline=None)
@given(field_conditions, st.lists(payloads, min_size=1, max_size=8))
def test_single_field_conditions_agree_with_reference(condition, payloads_):
    compiled = compile_filter({"must": [condition]})
    for payload in payloads_:
        point = {"id": 1, "payload": payload, "vectors": set()}
        assert compiled.matches(PointContext(1, lambda payload=payload: payload, lambda name: False)) == ref_filter(
            {"must": [condition]}, point
        ), (condition, payload)


# Shapes the general generator reaches only rarely: `nested` over arrays that mix objects
# and scalars (with has_id inside), and min_should with a threshold strictly between 1 and
# the number of conditions.
element_lists = st.lists(
    st.one_of(st.dictionaries(st.sampled_from(NAMES), json_values, max_size=3), scalars), max_size=4
)
array_payloads = st.fixed_dictionaries({"a": element_lists}, optional={"b": json_values, "c": json_values})
nested_filters = st.builds(
    lambda key, inner: {"must": [{"nested": {"key": key, "filter": inner}}]},
    st.sampled_from(["a", "a[]"]),
    filters(1),
)
min_should_filters = st.builds(
    lambda conditions, n: {"min_should": {"conditions": conditions, "min_count": n}},
    st.lists(leaf_conditions, min_size=3, max_size=5),
    st.integers(2, 4),
)


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(nested_filters, min_should_filters),
    st.lists(
        st.fixed_dictionaries(
            {"id": st.sampled_from(IDS), "payload": array_payloads, "vectors": st.sets(st.sampled_from(["", "img"]))}
        ),
        min_size=1,
        max_size=8,
    ),
)
def test_nested_and_min_should_agree_with_reference(filter_, points_):
    compiled = compile_filter(filter_)
    for point in points_:
        ctx = PointContext(point["id"], lambda p=point: p["payload"], lambda name, p=point: name in p["vectors"])
        actual = True if compiled is None else compiled.matches(ctx)
        assert actual == ref_filter(filter_, point), (filter_, point)
