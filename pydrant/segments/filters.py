"""Qdrant's filter language, compiled once into a predicate that segments evaluate per point.

`compile_filter(filter_dict)` takes a filter exactly as the REST API's JSON has it (plain
dicts and lists) and returns an object whose `matches(ctx)` answers for one
`PointContext`, or None when the filter constrains nothing. All validation happens at
compile time, so a malformed filter fails with `BadInput` before any point is read, and the
per-point work is a tree of small closures: key paths are parsed, `any`/`except` lists are
frozensets, `has_id` ids are normalised, datetime bounds are parsed, geo shapes are built.

Semantics follow Qdrant 1.15 as it evaluates a point's payload without a payload index
(`docs/filtering.md` has the full list). The rules most worth knowing:

- A field condition looks at every value the key path reaches (see `payload.py`); a value
  that is an array is matched element by element, one level deep. The condition holds when
  any value (or element) matches. A path that reaches nothing matches no condition except
  `is_empty: true` and `is_null: false` on a FieldCondition.
- Values are matched by JSON type: an integer never equals a float or a boolean, a string
  never equals a number.
- `should: []` matches nothing (Qdrant), `must: []` and `must_not: []` everything.
- A FieldCondition with several conditions holds when any of them holds (Qdrant's order of
  checking: `values_count`, then `is_empty`, then `is_null` take the place of the others).
- Inside `nested`, the inner filter runs against each element of the array; `has_id` and
  `has_vector` there match no element (Qdrant does not support them inside `nested`).

Cheap conditions (`has_id`, `has_vector`) are checked before payload conditions within a
clause, so a point that fails on its id never has its payload loaded.
"""

from __future__ import annotations

from contextvars import ContextVar
from types import MappingProxyType
from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from typing import Any, TypeGuard

from pydrant.errors import BadInput
from pydrant.segments.filter_datetime import parse_datetime, parse_payload_datetime
from pydrant.segments.filter_geo import bounding_box_check, polygon_check, radius_check
from pydrant.segments.filter_plan import plan_filter
from pydrant.segments.ids import normalize_id
from pydrant.segments.payload import WILDCARD, field_values, parse_path, raw_values
from pydrant.segments.types import PointContext

_I64_MIN = -(1 << 63)
_I64_MAX = (1 << 63) - 1

FILTER_KEYS = frozenset(("must", "should", "must_not", "min_should"))
FIELD_CONDITION_KEYS = frozenset(
    ("key", "match", "range", "geo_bounding_box", "geo_radius", "geo_polygon", "values_count", "is_empty", "is_null")
)
MATCH_KINDS = ("value", "any", "except", "text", "text_any", "phrase")
BOUND_KEYS = ("lt", "gt", "gte", "lte")

_MISSING = object()
_EMPTY: dict = {}

Fn = Callable[[Any], bool]  # of a PointContext (top level) or an element dict (nested)


class CompiledFilter:
    """A compiled filter. `matches(ctx)` is a plain attribute: calling it costs one call.

    `plan` is the same filter as `filter_plan.py` evaluates it against payload indexes.
    """

    __slots__ = ("matches", "source", "plan")

    def __init__(self, matches: Callable[[PointContext], bool], source: dict, plan: tuple):
        self.matches = matches
        self.source = source
        self.plan = plan

    def __repr__(self) -> str:
        return f"CompiledFilter({self.source!r})"


def compile_filter(filter_: dict | None, text_fields: Mapping[tuple, object] | None = None) -> CompiledFilter | None:
    """Compile a Qdrant filter; None when it has no effect (None, {}, only empty must...).

    `text_fields` maps the parsed paths of fields with a full-text index to their
    `TextAnalyzer`: text conditions on those fields then follow the index's tokenizer, as
    in Qdrant, instead of substring matching.
    """
    if filter_ is None:
        return None
    token = _TEXT_FIELDS.set(text_fields or _EMPTY)
    try:
        fn, _cost = _compile_filter(filter_, "filter", nested=False)
    finally:
        _TEXT_FIELDS.reset(token)
    if fn is _always:
        return None
    return CompiledFilter(fn, filter_, plan_filter(filter_))


# The text analyzers of the filter being compiled (a context variable rather than one more
# parameter threaded through every compile function).
_TEXT_FIELDS: ContextVar[Mapping] = ContextVar("text_fields", default=MappingProxyType({}))


# --- errors --------------------------------------------------------------------------------


def _bad(where: str, reason: str) -> BadInput:
    return BadInput(f"Bad filter at {where}: {reason}")


def _describe(value) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (dict, list)):
        return f"a JSON {'object' if isinstance(value, dict) else 'array'}"
    return repr(value)


def _is_number(value: object) -> TypeGuard[int | float]:
    return (type(value) is int or type(value) is float) and value == value


def _is_int(value: object) -> TypeGuard[int]:
    return type(value) is int


# --- boolean structure ---------------------------------------------------------------------


def _always(_ctx) -> bool:
    return True


def _never(_ctx) -> bool:
    return False


# Cost classes: ids and vectors are answered without the payload, so they go first.
_COST_ID = 0
_COST_PAYLOAD = 1


def _all_of(parts: list[tuple[Fn, int]]) -> tuple[Fn, int]:
    parts = [p for p in parts if p[0] is not _always]
    if any(fn is _never for fn, _ in parts):
        return _never, _COST_ID
    if not parts:
        return _always, _COST_ID
    parts.sort(key=lambda p: p[1])
    cost = max(c for _, c in parts)
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2:
        a, b = parts[0][0], parts[1][0]
        return (lambda ctx: a(ctx) and b(ctx)), cost
    fns = tuple(fn for fn, _ in parts)

    def all_of(ctx) -> bool:
        for fn in fns:
            if not fn(ctx):
                return False
        return True

    return all_of, cost


def _any_of(parts: list[tuple[Fn, int]]) -> tuple[Fn, int]:
    parts = [p for p in parts if p[0] is not _never]
    if any(fn is _always for fn, _ in parts):
        return _always, _COST_ID
    if not parts:
        return _never, _COST_ID  # includes `should: []`, which Qdrant matches with nothing
    parts.sort(key=lambda p: p[1])
    cost = max(c for _, c in parts)
    if len(parts) == 1:
        return parts[0]
    fns = tuple(fn for fn, _ in parts)

    def any_of(ctx) -> bool:
        for fn in fns:
            if fn(ctx):
                return True
        return False

    return any_of, cost


def _none_of(parts: list[tuple[Fn, int]]) -> tuple[Fn, int]:
    fn, cost = _any_of(parts) if parts else (_never, _COST_ID)
    if fn is _never:
        return _always, _COST_ID
    if fn is _always:
        return _never, _COST_ID
    return (lambda ctx: not fn(ctx)), cost


def _at_least(parts: list[tuple[Fn, int]], min_count: int) -> tuple[Fn, int]:
    if min_count == 0:
        return _always, _COST_ID
    if min_count == 1:
        return _any_of(parts)
    if min_count == len(parts):
        return _all_of(parts)
    if min_count > len(parts):
        return _never, _COST_ID
    parts = sorted(parts, key=lambda p: p[1])
    fns = tuple(fn for fn, _ in parts)
    cost = max(c for _, c in parts)

    def at_least(ctx) -> bool:
        hits = 0
        for fn in fns:
            if fn(ctx):
                hits += 1
                if hits >= min_count:
                    return True
        return False

    return at_least, cost


def _clause(value, where: str) -> list | None:
    """A clause is one condition, a list of them, or null."""
    if value is None:
        return None
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return value
    raise _bad(where, f"expected a condition or a list of conditions, got {_describe(value)}")


def _compile_filter(filter_, where: str, nested: bool) -> tuple[Fn, int]:
    if not isinstance(filter_, dict):
        raise _bad(where, f"a filter must be a JSON object, got {_describe(filter_)}")
    unknown = set(filter_) - FILTER_KEYS
    if unknown:
        raise _bad(
            where, f"unknown filter field(s) {sorted(unknown)}; a filter has must, should, must_not and min_should"
        )
    parts: list[tuple[Fn, int]] = []

    def compile_list(conditions: list, clause_where: str) -> list[tuple[Fn, int]]:
        return [_compile_condition(c, f"{clause_where}[{i}]", nested) for i, c in enumerate(conditions)]

    must = _clause(filter_.get("must"), f"{where}.must")
    if must is not None:
        parts.append(_all_of(compile_list(must, f"{where}.must")))
    should = _clause(filter_.get("should"), f"{where}.should")
    if should is not None:
        parts.append(_any_of(compile_list(should, f"{where}.should")))
    must_not = _clause(filter_.get("must_not"), f"{where}.must_not")
    if must_not is not None:
        parts.append(_none_of(compile_list(must_not, f"{where}.must_not")))
    min_should = filter_.get("min_should")
    if min_should is not None:
        ms_where = f"{where}.min_should"
        if not isinstance(min_should, dict):
            raise _bad(ms_where, f"expected {{conditions, min_count}}, got {_describe(min_should)}")
        unknown = set(min_should) - {"conditions", "min_count"}
        if unknown:
            raise _bad(ms_where, f"unknown field(s) {sorted(unknown)}; min_should has conditions and min_count")
        conditions = min_should.get("conditions")
        if not isinstance(conditions, list):
            raise _bad(f"{ms_where}.conditions", f"expected a list of conditions, got {_describe(conditions)}")
        min_count = min_should.get("min_count")
        if not _is_int(min_count) or min_count < 0:
            raise _bad(f"{ms_where}.min_count", f"expected an integer >= 0, got {_describe(min_count)}")
        parts.append(_at_least(compile_list(conditions, f"{ms_where}.conditions"), min_count))
    return _all_of(parts)


def _compile_condition(cond, where: str, nested: bool) -> tuple[Fn, int]:
    if not isinstance(cond, dict):
        raise _bad(where, f"a condition must be a JSON object, got {_describe(cond)}")
    if "key" in cond:
        return _lift(_compile_field_condition(cond, where, nested), nested)
    for name, compile_one in _SINGLE_KEY_CONDITIONS:
        if name in cond:
            if len(cond) != 1:
                extra = sorted(set(cond) - {name})
                raise _bad(where, f"unexpected field(s) {extra} next to {name!r}")
            return compile_one(cond[name], f"{where}.{name}", nested)
    if set(cond) <= FILTER_KEYS:
        return _compile_filter(cond, where, nested)
    raise _bad(
        where,
        f"unknown condition with fields {sorted(cond)}; expected a field condition (with 'key'), "
        "is_empty, is_null, has_id, has_vector, nested, or a filter (must/should/must_not/min_should)",
    )


def _lift(payload_fn: Callable[[dict], bool], nested: bool) -> tuple[Fn, int]:
    """A payload test as a condition: on the point's payload, or on the element (nested)."""
    if nested:
        return payload_fn, _COST_PAYLOAD
    return (lambda ctx: payload_fn(ctx.payload)), _COST_PAYLOAD


def _path(key, where: str) -> tuple:
    try:
        return parse_path(key)
    except BadInput as exc:
        raise _bad(where, exc.message) from None


def _payload_field(spec, where: str) -> tuple:
    if not isinstance(spec, dict):
        raise _bad(where, f"expected {{\"key\": ...}}, got {_describe(spec)}")
    if set(spec) != {"key"}:
        raise _bad(where, f"expected exactly the field 'key', got {sorted(spec)}")
    return _path(spec["key"], f"{where}.key")


# --- conditions that are not about one field's values --------------------------------------


def _compile_is_empty(spec, where: str, nested: bool) -> tuple[Fn, int]:
    path = _payload_field(spec, where)

    def is_empty(payload: dict) -> bool:
        for value in raw_values(payload, path):
            if value is not None and not (type(value) is list and not value):
                return False
        return True

    return _lift(is_empty, nested)


def _compile_is_null(spec, where: str, nested: bool) -> tuple[Fn, int]:
    path = _payload_field(spec, where)

    def is_null(payload: dict) -> bool:
        for value in raw_values(payload, path):
            if value is None:
                return True
        return False

    return _lift(is_null, nested)


def _compile_has_id(spec, where: str, nested: bool) -> tuple[Fn, int]:
    if not isinstance(spec, list):
        raise _bad(where, f"expected a list of point ids, got {_describe(spec)}")
    ids = set()
    for i, raw in enumerate(spec):
        try:
            ids.add(normalize_id(raw))
        except BadInput:
            raise _bad(f"{where}[{i}]", f"{_describe(raw)} is not a point id (an unsigned integer or a UUID)") from None
    if nested or not ids:
        return _never, _COST_ID
    id_set = frozenset(ids)
    return (lambda ctx: ctx.id in id_set), _COST_ID


def _compile_has_vector(spec, where: str, nested: bool) -> tuple[Fn, int]:
    if not isinstance(spec, str):
        raise _bad(where, f"expected a vector name (a string, \"\" for the unnamed vector), got {_describe(spec)}")
    if nested:
        return _never, _COST_ID
    name = spec
    return (lambda ctx: ctx.has_vector(name)), _COST_ID


def _compile_nested(spec, where: str, nested: bool) -> tuple[Fn, int]:
    if not isinstance(spec, dict):
        raise _bad(where, f"expected {{key, filter}}, got {_describe(spec)}")
    unknown = set(spec) - {"key", "filter"}
    if unknown:
        raise _bad(where, f"unknown field(s) {sorted(unknown)}; nested has key and filter")
    if "key" not in spec or "filter" not in spec:
        raise _bad(where, "nested needs both 'key' and 'filter'")
    path = _path(spec["key"], f"{where}.key")
    if path[-1] is not WILDCARD:
        path = path + (WILDCARD,)  # "diet" and "diet[]" both mean the elements of diet
    inner, _cost = _compile_filter(spec["filter"], f"{where}.filter", nested=True)

    def nested_match(payload: dict) -> bool:
        for element in raw_values(payload, path):
            if inner(element if type(element) is dict else _EMPTY):
                return True
        return False

    return _lift(nested_match, nested)


_SINGLE_KEY_CONDITIONS = (
    ("has_id", _compile_has_id),
    ("has_vector", _compile_has_vector),
    ("nested", _compile_nested),
    ("is_empty", _compile_is_empty),
    ("is_null", _compile_is_null),
)


# --- field conditions ----------------------------------------------------------------------


def _compile_field_condition(cond: dict, where: str, nested: bool = False) -> Callable[[dict], bool]:
    unknown = set(cond) - FIELD_CONDITION_KEYS
    if unknown:
        raise _bad(where, f"unknown field(s) {sorted(unknown)} in a field condition")
    key = cond["key"]
    path = _path(key, f"{where}.key")

    element_checks: list[Callable[[object], bool]] = []
    text_check = None
    if cond.get("match") is not None:
        analyzer = None if nested else _TEXT_FIELDS.get().get(path)
        text_check = _indexed_text_match(cond["match"], f"{where}.match", path, analyzer) if analyzer else None
        if text_check is None:
            element_checks.append(_compile_match(cond["match"], f"{where}.match"))
    if cond.get("range") is not None:
        element_checks.append(_compile_range(cond["range"], f"{where}.range"))
    if cond.get("geo_bounding_box") is not None:
        element_checks.append(_compile_geo_bounding_box(cond["geo_bounding_box"], f"{where}.geo_bounding_box"))
    if cond.get("geo_radius") is not None:
        element_checks.append(_compile_geo_radius(cond["geo_radius"], f"{where}.geo_radius"))
    if cond.get("geo_polygon") is not None:
        element_checks.append(_compile_geo_polygon(cond["geo_polygon"], f"{where}.geo_polygon"))
    values_count = None
    if cond.get("values_count") is not None:
        values_count = _compile_values_count(cond["values_count"], f"{where}.values_count")
    is_empty = cond.get("is_empty")
    if is_empty is not None and type(is_empty) is not bool:
        raise _bad(f"{where}.is_empty", f"expected true or false, got {_describe(is_empty)}")
    is_null = cond.get("is_null")
    if is_null is not None and type(is_null) is not bool:
        raise _bad(f"{where}.is_null", f"expected true or false, got {_describe(is_null)}")
    if not element_checks and text_check is None and values_count is None and is_empty is None and is_null is None:
        raise _bad(
            where,
            f"the condition on key '{key}' has nothing to check; give one of match, range, geo_bounding_box, "
            "geo_radius, geo_polygon, values_count, is_empty or is_null",
        )

    # What Qdrant answers when the path reaches no value at all.
    if is_empty is not None:
        on_missing = is_empty
    elif is_null is not None:
        on_missing = not is_null
    else:
        on_missing = False

    if text_check is not None and values_count is None and is_empty is None and is_null is None:
        if not element_checks:
            return text_check
        others = _compile_field_condition({k: v for k, v in cond.items() if k != "match"}, where)
        return lambda payload: text_check(payload) or others(payload)

    check_value = _value_checker(element_checks, values_count, is_empty, is_null)

    if len(path) == 1:
        name = path[0]

        def field_condition(payload: dict) -> bool:
            value = payload.get(name, _MISSING)
            if value is _MISSING:
                return on_missing
            return check_value(value)

    else:

        def field_condition(payload: dict) -> bool:
            values = raw_values(payload, path)
            if not values:
                return on_missing
            for value in values:
                if check_value(value):
                    return True
            return False

    return field_condition


def _value_checker(element_checks, values_count, is_empty, is_null) -> Callable[[object], bool]:
    """The test of one stored value (an array is one value here), in Qdrant's order."""
    if values_count is not None:
        return values_count
    if is_empty is not None:
        flag = is_empty

        def empty_check(value) -> bool:
            if value is None:
                return flag
            if type(value) is list:
                return (not value) == flag
            return not flag

        return empty_check
    if is_null is not None:
        flag = is_null

        def null_check(value) -> bool:
            if value is None:
                return flag
            if type(value) is list:
                return any(x is None for x in value) == flag
            return not flag

        return null_check

    if len(element_checks) == 1:
        match_one = element_checks[0]
    else:
        checks = tuple(element_checks)

        def match_one(x) -> bool:
            for check in checks:
                if check(x):
                    return True
            return False

    def value_check(value) -> bool:
        if type(value) is list:
            for x in value:
                if match_one(x):
                    return True
            return False
        return match_one(value)

    return value_check


def _compile_match(match, where: str) -> Callable[[object], bool]:
    if not isinstance(match, dict):
        raise _bad(where, f"expected a match object, got {_describe(match)}")
    unknown = set(match) - set(MATCH_KINDS)
    if unknown:
        raise _bad(where, f"unknown match field(s) {sorted(unknown)}; expected one of {', '.join(MATCH_KINDS)}")
    kinds = [k for k in match if match[k] is not None]
    if len(kinds) != 1:
        raise _bad(where, f"a match needs exactly one of {', '.join(MATCH_KINDS)}, got {sorted(kinds) or 'none'}")
    kind = kinds[0]
    arg = match[kind]
    if kind == "value":
        return _match_value(arg, f"{where}.value")
    if kind in ("any", "except"):
        values, is_strings = _any_variants(arg, f"{where}.{kind}")
        return _match_any(values, is_strings) if kind == "any" else _match_except(values, is_strings)
    if type(arg) is not str:
        raise _bad(f"{where}.{kind}", f"expected a string, got {_describe(arg)}")
    if kind == "text_any":
        tokens = tuple(arg.split())
        if not tokens:
            return _never
        return lambda x: type(x) is str and any(token in x for token in tokens)
    # text and phrase: without a full-text index Qdrant matches an exact substring.
    return lambda x: type(x) is str and arg in x


def _indexed_text_match(match, where: str, path: tuple, analyzer) -> Callable[[dict], bool] | None:
    """A text/text_any/phrase match on a field with a full-text index: the index's terms decide,
    over all the strings the field holds (None for other match kinds)."""
    _compile_match(match, where)  # same validation as without an index
    kind = next((k for k in ("text", "text_any", "phrase") if match.get(k) is not None), None)
    if kind is None:
        return None
    if kind == "phrase" and not analyzer.phrase_matching:
        return lambda payload: False  # Qdrant: an index without positions matches no phrase
    query = analyzer.query_terms(match[kind])
    test = {"text": analyzer.matches_all, "text_any": analyzer.matches_any, "phrase": analyzer.matches_phrase}[kind]

    def indexed_text(payload: dict) -> bool:
        strings = [v for v in field_values(payload, path) if type(v) is str]
        return bool(strings) and test(query, strings)

    return indexed_text


def _match_value(value, where: str) -> Callable[[object], bool]:
    if type(value) is str:
        return lambda x: type(x) is str and x == value
    if type(value) is bool:
        return lambda x: x is value
    if type(value) is int:
        if not _I64_MIN <= value <= _I64_MAX:
            raise _bad(where, f"integer {value} is outside the 64-bit signed range")
        return lambda x: type(x) is int and x == value
    raise _bad(where, f"expected a string, an integer or a boolean, got {_describe(value)}")


def _any_variants(values, where: str) -> tuple[frozenset, bool]:
    """A list of strings or of integers (an empty list counts as strings, as in Qdrant)."""
    if not isinstance(values, list):
        raise _bad(where, f"expected a list of strings or of integers, got {_describe(values)}")
    if all(type(v) is str for v in values):
        return frozenset(values), True
    if all(type(v) is int for v in values):
        for v in values:
            if not _I64_MIN <= v <= _I64_MAX:
                raise _bad(where, f"integer {v} is outside the 64-bit signed range")
        return frozenset(values), False
    raise _bad(where, "expected a list of only strings or only integers")


def _match_any(values: frozenset, is_strings: bool) -> Callable[[object], bool]:
    if not values:
        return _never
    if is_strings:
        return lambda x: type(x) is str and x in values
    return lambda x: type(x) is int and x in values


def _match_except(values: frozenset, is_strings: bool) -> Callable[[object], bool]:
    # Qdrant: a value of the listed kind matches when it is not listed; null never matches;
    # any other value (bool, object, nested array, number vs strings, float vs integers) does.
    kind = str if is_strings else int

    def except_match(x) -> bool:
        if type(x) is kind:
            return x not in values
        return x is not None

    return except_match


def _bounds(spec, where: str) -> dict:
    if not isinstance(spec, dict):
        raise _bad(where, f"expected an object with lt, gt, gte, lte, got {_describe(spec)}")
    unknown = set(spec) - set(BOUND_KEYS)
    if unknown:
        raise _bad(where, f"unknown field(s) {sorted(unknown)}; expected lt, gt, gte, lte")
    return {k: spec[k] for k in BOUND_KEYS if spec.get(k) is not None}


def _range_test(lt, gt, gte, lte) -> Callable[[object], bool]:
    """A comparison of an already typed value against the bounds that are set."""
    tests = []
    if gt is not None:
        tests.append(lambda v: v > gt)
    if gte is not None:
        tests.append(lambda v: v >= gte)
    if lt is not None:
        tests.append(lambda v: v < lt)
    if lte is not None:
        tests.append(lambda v: v <= lte)
    if not tests:
        return lambda v: True
    if len(tests) == 1:
        return tests[0]
    if len(tests) == 2:
        a, b = tests
        return lambda v: a(v) and b(v)
    all_tests = tuple(tests)
    return lambda v: all(t(v) for t in all_tests)


def _compile_range(spec, where: str) -> Callable[[object], bool]:
    bounds = _bounds(spec, where)
    if all(_is_number(v) for v in bounds.values()):
        try:
            as_floats = {k: float(v) for k, v in bounds.items()}  # Qdrant compares as f64
        except OverflowError:
            raise _bad(where, "a bound is too large for a 64-bit float") from None
        test = _range_test(*(as_floats.get(k) for k in BOUND_KEYS))

        def number_range(x) -> bool:
            t = type(x)
            return (t is int or t is float) and test(x)

        return number_range
    if all(type(v) is str for v in bounds.values()):
        parsed = {}
        for k, v in bounds.items():
            micros = parse_datetime(v)
            if micros is None:
                raise _bad(
                    f"{where}.{k}",
                    f"{v!r} is not a datetime; use RFC 3339 such as 2023-02-08T10:49:00Z, "
                    "2023-02-08T11:49:00+01:00, 2023-02-08T10:49:00 or 2023-02-08",
                )
            parsed[k] = micros
        test = _range_test(*(parsed.get(k) for k in BOUND_KEYS))

        def datetime_range(x) -> bool:
            if type(x) is not str:
                return False
            micros = parse_payload_datetime(x)
            return micros is not None and test(micros)

        return datetime_range
    bad = [k for k, v in bounds.items() if not (_is_number(v) or type(v) is str)]
    if bad:
        raise _bad(f"{where}.{bad[0]}", f"expected a number or a datetime string, got {_describe(bounds[bad[0]])}")
    raise _bad(where, "bounds must be all numbers or all datetime strings, not a mix")


def _compile_values_count(spec, where: str) -> Callable[[object], bool]:
    bounds = _bounds(spec, where)
    for k, v in bounds.items():
        if not _is_int(v) or v < 0:
            raise _bad(f"{where}.{k}", f"expected an integer >= 0, got {_describe(v)}")
    test = _range_test(*(bounds.get(k) for k in BOUND_KEYS))

    def values_count(value) -> bool:
        if value is None:
            count = 0
        elif type(value) is list:
            count = len(value)
        else:
            count = 1
        return test(count)

    return values_count


# --- geo -----------------------------------------------------------------------------------


def _geo_point(spec, where: str) -> tuple[float, float]:
    if not isinstance(spec, dict):
        raise _bad(where, f"expected a geo point {{\"lon\": ..., \"lat\": ...}}, got {_describe(spec)}")
    unknown = set(spec) - {"lon", "lat"}
    if unknown:
        raise _bad(where, f"unknown field(s) {sorted(unknown)}; a geo point has lon and lat")
    lon, lat = spec.get("lon"), spec.get("lat")
    if not _is_number(lon):
        raise _bad(f"{where}.lon", f"expected a number, got {_describe(lon)}")
    if not _is_number(lat):
        raise _bad(f"{where}.lat", f"expected a number, got {_describe(lat)}")
    if not -180.0 <= lon <= 180.0:
        raise _bad(f"{where}.lon", f"longitude must be between -180 and 180, got {lon}")
    if not -90.0 <= lat <= 90.0:
        raise _bad(f"{where}.lat", f"latitude must be between -90 and 90, got {lat}")
    return float(lon), float(lat)


def _geo_element(check: Callable[[float, float], bool]) -> Callable[[object], bool]:
    """A test of one payload value that must look like {"lon": number, "lat": number}."""

    def geo_match(x) -> bool:
        if type(x) is not dict:
            return False
        lon: Any = x.get("lon")
        lat: Any = x.get("lat")
        t_lon, t_lat = type(lon), type(lat)
        if (t_lon is int or t_lon is float) and (t_lat is int or t_lat is float):
            return check(lon, lat)
        return False

    return geo_match


def _expect_fields(spec, where: str, required: AbstractSet[str], optional: AbstractSet[str] = frozenset()) -> dict:
    if not isinstance(spec, dict):
        raise _bad(where, f"expected an object with {', '.join(sorted(required | optional))}, got {_describe(spec)}")
    unknown = set(spec) - required - optional
    if unknown:
        raise _bad(where, f"unknown field(s) {sorted(unknown)}")
    missing = [k for k in sorted(required) if spec.get(k) is None]
    if missing:
        raise _bad(where, f"missing required field(s) {missing}")
    return spec


def _compile_geo_bounding_box(spec, where: str) -> Callable[[object], bool]:
    spec = _expect_fields(spec, where, {"top_left", "bottom_right"})
    left, top = _geo_point(spec["top_left"], f"{where}.top_left")
    right, bottom = _geo_point(spec["bottom_right"], f"{where}.bottom_right")
    return _geo_element(bounding_box_check(left, top, right, bottom))


def _compile_geo_radius(spec, where: str) -> Callable[[object], bool]:
    spec = _expect_fields(spec, where, {"center", "radius"})
    lon, lat = _geo_point(spec["center"], f"{where}.center")
    radius = spec["radius"]
    if not _is_number(radius):
        raise _bad(f"{where}.radius", f"expected a distance in metres, got {_describe(radius)}")
    return _geo_element(radius_check(lon, lat, float(radius)))


def _ring(spec, where: str) -> tuple:
    spec = _expect_fields(spec, where, {"points"})
    points = spec["points"]
    if not isinstance(points, list):
        raise _bad(f"{where}.points", f"expected a list of geo points, got {_describe(points)}")
    ring = tuple(_geo_point(p, f"{where}.points[{i}]") for i, p in enumerate(points))
    if len(ring) < 4:
        raise _bad(f"{where}.points", f"a polygon ring needs at least 4 points, got {len(ring)}")
    if ring[0] != ring[-1]:
        raise _bad(f"{where}.points", "the first and the last point must be the same to close the ring")
    return ring


def _compile_geo_polygon(spec, where: str) -> Callable[[object], bool]:
    spec = _expect_fields(spec, where, {"exterior"}, {"interiors"})
    exterior = _ring(spec["exterior"], f"{where}.exterior")
    interiors_spec = spec.get("interiors")
    if interiors_spec is None:
        interiors_spec = []
    if not isinstance(interiors_spec, list):
        raise _bad(f"{where}.interiors", f"expected a list of rings, got {_describe(interiors_spec)}")
    interiors = [_ring(r, f"{where}.interiors[{i}]") for i, r in enumerate(interiors_spec)]
    return _geo_element(polygon_check(exterior, interiors))


__all__ = ["CompiledFilter", "compile_filter"]
