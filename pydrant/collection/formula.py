"""Score-boosting formulas of the universal Query API (`{"query": {"formula": ...}}`).

`Formula(expression, defaults, compile_condition)` checks and compiles the expression
once into a tree of small closures; `formula.score(point_id, payload, scores)` then
evaluates it for one point returned by the prefetches. Semantics follow Qdrant 1.15
(`lib/segment/src/index/query_optimization/rescore_formula/` and
`lib/collection/src/operations/universal_query/formula.rs`); `docs/formula.md` lists them
with their sources. The rules most worth knowing:

- Arithmetic is done in f64 and the result is rounded to f32, like Qdrant's scores.
  Constants, `by_zero_default`, `midpoint` and `scale` are f32 in Qdrant's API, so they
  are rounded to f32 when compiled (0.1 becomes 0.10000000149011612).
- `"$score"` is the point's score in prefetch 0 and `"$score[i]"` in prefetch i. A point
  missing from that prefetch takes the default for the variable, else 0.0: never an error.
- Any other string is a payload key (a JSON path). Arrays are opened one level unless the
  path ends in `[]`; no value at all falls back to `defaults`, and without a default it is
  an error, as is a value that is not a number (null, a string, or several values).
- `mult` stops at the first factor equal to 0 and `div` at a left side equal to 0: the
  rest is not evaluated, so its errors do not happen (Qdrant's shortcuts).
- Division by zero gives `by_zero_default` when set. Any operation whose result is not
  finite (division by zero without default, sqrt/ln/log10 of invalid input, overflow of
  pow/exp, and the final f32 rounding) is an error, with Qdrant's message.
- A filter condition used as an expression is 1.0 when the point matches, else 0.0.
- Datetimes (`datetime` constants, `datetime_key` payload values) become seconds since
  the Unix epoch (a float, microsecond precision). `geo_distance` is the haversine
  distance in metres on a sphere of radius 6371008.8 m (the `geo` crate's).
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

from pydrant.errors import BadInput
from pydrant.segments.filter_datetime import parse_datetime, parse_payload_datetime
from pydrant.segments.filters import CompiledFilter
from pydrant.segments.geo import EARTH_RADIUS_M, haversine_m  # noqa: F401  (EARTH_RADIUS_M re-exported)
from pydrant.segments.payload import WILDCARD, format_path, parse_path, raw_values
from pydrant.segments.types import PointContext

# A compiled expression: (payload, scores, ctx) -> float. `ctx` is the point's
# PointContext when the formula has conditions, else None.
Node = Callable[[dict, list, object], float]
# Compiles a filter (the collection's `compile_filter`): None for one every point matches.
ConditionCompiler = Callable[[dict], CompiledFilter | None]
T = TypeVar("T")

SCORE_KEYWORD = "score"
DEFAULT_SCORE = 0.0  # a missing prefetch score without default (Qdrant's DEFAULT_SCORE)
DEFAULT_DECAY_TARGET = 0.0
DEFAULT_DECAY_MIDPOINT = 0.5
DEFAULT_DECAY_SCALE = 1.0
_MAX_INDEX = (1 << 64) - 1  # a prefetch index is a usize in Qdrant

_UNARY_OPERATORS = ("neg", "abs", "sqrt", "exp", "log10", "ln")
_DECAYS = ("lin_decay", "exp_decay", "gauss_decay")
OPERATOR_KEYS = frozenset(
    ("geo_distance", "datetime", "datetime_key", "mult", "sum", "div", "pow", *_UNARY_OPERATORS, *_DECAYS)
)

_MISSING = object()
_INF = math.inf
_NAN = math.nan


class Formula:
    """A compiled formula. `score(...)` evaluates it for one point.

    `prefetch_count_needed` is 1 + the highest prefetch index a `$score` variable of the
    expression names (0 when it names none). Qdrant does not require that many
    prefetches: a score of a prefetch that does not exist is a missing score.
    """

    __slots__ = ("prefetch_count_needed", "_root", "_uses_conditions", "source")

    def __init__(self, expression, defaults: dict | None, compile_condition: ConditionCompiler):
        compiler = _Compiler(_compile_defaults(defaults), compile_condition)
        self._root: Node = compiler.compile(expression, "formula")
        self.prefetch_count_needed: int = compiler.highest_score_index + 1
        self._uses_conditions = compiler.uses_conditions
        self.source = expression

    def score(self, point_id, payload: dict | None, scores: list, has_vector: Callable[[str], bool] | None = None) -> float:
        """The point's score: a float that is exactly an f32, or BadInput (Qdrant's 400).

        `scores[i]` is the point's score in prefetch i, None when it is not in those
        results. `has_vector(name)` answers `has_vector` conditions; without it they
        match no point.
        """
        if payload is None:
            payload = {}
        ctx = None
        if self._uses_conditions:
            ctx = PointContext(point_id, lambda: payload, has_vector or _no_vector)
        value = self._root(payload, scores, ctx)
        return _to_f32_score(value)

    def __repr__(self) -> str:
        return f"Formula({self.source!r})"


def _no_vector(_name: str) -> bool:
    return False


# --- numbers as Qdrant prints and rounds them ------------------------------------------------


def _f32(value: float) -> float:
    """`value as f32` in Rust: rounded to the nearest f32, ±inf past its range."""
    try:
        return struct.unpack("<f", struct.pack("<f", value))[0]
    except OverflowError:
        return math.copysign(_INF, value)


def rust_float(value: float) -> str:
    """An f64 as Rust's `Display` prints it: shortest digits, never an exponent."""
    if value != value:
        return "NaN"
    if value in (_INF, -_INF):
        return "inf" if value > 0 else "-inf"
    text = format(Decimal(repr(float(value))), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _non_finite(expression: str) -> BadInput:
    return BadInput(f"The expression {expression} produced a non-finite number")


def _to_f32_score(value: float) -> float:
    score = _f32(value)
    if score - score != 0.0:  # inf or NaN
        raise _non_finite(f"{rust_float(value)} as f32 = {rust_float(score)}")
    return score


# --- errors ----------------------------------------------------------------------------------


def _bad(where: str, reason: str) -> BadInput:
    return BadInput(f"Bad formula at {where}: {reason}")


def _describe(value) -> str:
    if value is None:
        return "null"
    if value is True or value is False:
        return str(value).lower()
    if isinstance(value, dict):
        return "a JSON object"
    if isinstance(value, list):
        return "a JSON array"
    return repr(value)


def _variable_error(path: tuple, expected: str, description: str) -> BadInput:
    # Qdrant's OperationError::VariableTypeError, a 400 once it reaches the API
    return BadInput(
        f"Expected {expected} value for {format_path(path)} in the payload and/or in the formula defaults. "
        f"Error: {description}"
    )


def _is_number(value) -> bool:
    t = type(value)
    return t is float or t is int


# --- variables and defaults ------------------------------------------------------------------


def parse_variable(text: str) -> tuple[str, Any]:
    """A variable name as Qdrant's `VariableId::from_str` reads it.

    ("score", index) for `$score` / `$score[i]`, ("payload", parsed path) otherwise; a
    BadInput with Qdrant's wording for anything else.
    """
    if text.startswith("$"):
        try:
            path = parse_path(text[1:])
        except BadInput:
            raise BadInput(f"Invalid reserved variable: {text}") from None
        if path[0] != SCORE_KEYWORD:
            raise BadInput(f"Invalid reserved word: {text}")
        if len(path) == 1:
            return "score", 0
        if len(path) == 2 and type(path[1]) is int and path[1] <= _MAX_INDEX:
            return "score", path[1]
        raise BadInput(f"Invalid reserved variable: {text}")
    try:
        return "payload", parse_path(text)
    except BadInput:
        raise BadInput(f"Invalid payload variable: {text}") from None


def _compile_defaults(defaults) -> dict:
    """Defaults keyed as the compiler looks them up: ("score", i) or ("payload", path)."""
    if defaults is None:
        return {}
    if not isinstance(defaults, dict):
        raise BadInput(f"Bad formula defaults: expected a JSON object, got {_describe(defaults)}")
    compiled = {}
    for key, value in defaults.items():
        try:
            compiled[parse_variable(key)] = value
        except BadInput as exc:
            raise BadInput(f"Bad formula defaults: {exc.message}") from None
    return compiled


def _score_default(value) -> float:
    # Qdrant: `value.as_f64()`, and a default that is not a number counts as no default
    if _is_number(value):
        return float(value)
    return DEFAULT_SCORE


# --- reading payload values ------------------------------------------------------------------


def _payload_reader(path: tuple) -> Callable[[dict], object]:
    """A function giving the value a formula sees at `path`: `_MISSING` when there is none,
    the value when there is one, a list when there are several (Qdrant then has an array).

    Arrays are opened one level, unless the path ends in `[]` (Qdrant's
    `payload_variable_retriever`: the values are then the elements as they are).
    """
    open_arrays = path[-1] is not WILDCARD
    if len(path) == 1:
        key = path[0]

        def read_top_level(payload: dict):
            value = payload.get(key, _MISSING)
            if type(value) is list:
                if not value:
                    return _MISSING
                if len(value) == 1:
                    return value[0]
            return value

        return read_top_level

    def read(payload: dict):
        values = raw_values(payload, path)
        if open_arrays:
            opened = []
            for value in values:
                if type(value) is list:
                    opened.extend(value)
                else:
                    opened.append(value)
            values = opened
        if not values:
            return _MISSING
        if len(values) == 1:
            return values[0]
        return values

    return read


def _typed_value(path: tuple, defaults: dict, expected: str, convert: Callable[[Any], T]) -> Callable[[dict], T]:
    """A function reading the value at `path` (or its default) converted by `convert`,
    which returns the typed value or raises ValueError with Qdrant's description."""
    read = _payload_reader(path)
    default = defaults.get(("payload", path), _MISSING)

    def typed(payload: dict) -> T:
        value = read(payload)
        if value is _MISSING:
            value = default
            if value is _MISSING:
                raise _variable_error(path, expected, "No value found in a payload nor defaults")
        try:
            return convert(value)
        except ValueError as exc:
            raise _variable_error(path, expected, str(exc)) from None

    return typed


def _as_number(value) -> float:
    t = type(value)
    if t is float:
        return value
    if t is int:
        return _int_as_f64(value)
    raise ValueError("Value is not a number")


def _int_as_f64(value: int) -> float:
    try:
        return float(value)
    except OverflowError:
        return math.copysign(_INF, value)


def _serde_type(value) -> str:
    """A JSON value as serde names it in "invalid type" errors."""
    if value is None:
        return "null"
    if value is True or value is False:
        return f"boolean `{str(value).lower()}`"
    if type(value) is int:
        return f"integer `{value}`"
    if type(value) is float:
        return f"floating point `{rust_float(value)}`"
    if type(value) is str:
        return f'string "{value}"'
    if type(value) is list:
        return "sequence"
    return "map"


def _coordinate(value) -> float:
    if not _is_number(value):
        raise ValueError(f"invalid type: {_serde_type(value)}, expected f64")
    return float(value)


def _as_geo_point(value) -> tuple[float, float]:
    """(lon, lat) from a JSON value, as serde reads Qdrant's GeoPoint: an object with lon
    and lat, or (serde's sequence form of a struct) an array [lon, lat]; then in range."""
    if type(value) is dict:
        lon = value.get("lon", _MISSING)
        lat = value.get("lat", _MISSING)
        if lon is _MISSING:
            raise ValueError("missing field `lon`")
        lon = _coordinate(lon)
        if lat is _MISSING:
            raise ValueError("missing field `lat`")
        lat = _coordinate(lat)
    elif type(value) is list:
        # Several values (or `[13.4, 52.5]` opened into two) reach serde as one array.
        if len(value) != 2:
            raise ValueError(f"invalid length {len(value)}, expected struct GeoPointShadow with 2 elements")
        lon, lat = _coordinate(value[0]), _coordinate(value[1])
    else:
        raise ValueError(f"invalid type: {_serde_type(value)}, expected struct GeoPointShadow")
    if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
        raise ValueError(
            f"Wrong format of GeoPoint payload: expected `lat` = {rust_float(lat)} within [-90;90] "
            f"and `lon` = {rust_float(lon)} within [-180;180]"
        )
    return lon, lat


_DATE_PREFIX = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_PARTIAL_DATE = re.compile(r"[0-9]{0,4}(-([0-9]{0,2}(-[0-9]?)?)?)?")


def _chrono_error(text: str) -> str:
    """The chrono parse error Qdrant reports for a string that is not a datetime (an
    approximation: chrono's last attempted format is a plain date, %Y-%m-%d)."""
    if _PARTIAL_DATE.fullmatch(text):
        return "premature end of input"
    date = _DATE_PREFIX.match(text)
    if date:
        if parse_datetime(date.group(0)) is None:
            return "input is out of range"
        return "trailing input"
    return "input contains invalid characters"


def _as_timestamp(value) -> float:
    """Seconds since the epoch of a datetime string (Qdrant: micros as f64 / 1e6)."""
    if type(value) is not str:
        raise ValueError("Value is not a string")
    micros = parse_payload_datetime(value)
    if micros is None:
        raise ValueError(_chrono_error(value))
    return float(micros) / 1_000_000.0


# --- math with Qdrant's results where Python raises ------------------------------------------


def _is_odd_integer(x: float) -> bool:
    return math.isfinite(x) and x == math.floor(x) and math.fmod(x, 2.0) != 0.0


def _powf(base: float, exponent: float) -> float:
    """Rust's `f64::powf`: inf or NaN where Python's math.pow raises."""
    try:
        return math.pow(base, exponent)
    except OverflowError:
        negative = base < 0 and _is_odd_integer(exponent)
        return -_INF if negative else _INF
    except ValueError:
        if base == 0.0:  # 0 to a negative power
            negative = math.copysign(1.0, base) < 0 and _is_odd_integer(exponent)
            return -_INF if negative else _INF
        return _NAN  # a negative base to a non-integer power


def _sqrt(x: float) -> float:
    try:
        return math.sqrt(x)
    except ValueError:
        return _NAN


def _exp(x: float) -> float:
    try:
        return math.exp(x)
    except OverflowError:
        return _INF


def _log_with(log: Callable[[float], float]) -> Callable[[float], float]:
    def logarithm(x: float) -> float:
        try:
            return log(x)
        except ValueError:
            return -_INF if x == 0.0 else _NAN

    return logarithm


def _divide(left: float, right: float) -> float:
    """Rust's `left / right` for a right side that may be ±0."""
    if right != 0.0:
        return left / right
    if left != left:
        return _NAN
    return math.copysign(_INF, left) * math.copysign(1.0, right)


# --- the compiler ----------------------------------------------------------------------------


def _operator_of(method: str, name: str) -> Callable[[_Compiler, Any, str], Node]:
    """An operator table entry that calls `_Compiler.<method>(name, arg, where)`."""

    def build(compiler: _Compiler, arg, where: str) -> Node:
        return getattr(compiler, method)(name, arg, where)

    return build


class _Compiler:
    """Turns the JSON of an expression into closures, checking it on the way."""

    def __init__(self, defaults: dict, compile_condition: ConditionCompiler):
        self.defaults = defaults
        self.compile_condition = compile_condition
        self.highest_score_index = -1
        self.uses_conditions = False

    def compile(self, expr, where: str) -> Node:
        t = type(expr)
        if t is float or t is int:
            return _constant(_f32(_int_as_f64(expr) if t is int else expr))
        if t is str:
            return self._variable(expr, where)
        if t is dict:
            return self._object(expr, where)
        raise _bad(
            where, f"expected a number, a variable name or an expression object, got {_describe(expr)}"
        )

    # -- terminals --

    def _variable(self, text: str, where: str) -> Node:
        try:
            kind, ref = parse_variable(text)
        except BadInput as exc:
            raise _bad(where, exc.message) from None
        if kind == "score":
            self.highest_score_index = max(self.highest_score_index, ref)
            return _score_variable(ref, _score_default(self.defaults.get(("score", ref))))
        return _payload_number(ref, self.defaults)

    def _path(self, key, where: str) -> tuple:
        if type(key) is not str:
            raise _bad(where, f"expected a payload key, got {_describe(key)}")
        try:
            return parse_path(key)
        except BadInput as exc:
            raise _bad(where, exc.message) from None

    def _object(self, expr: dict, where: str) -> Node:
        operators = [key for key in expr if key in OPERATOR_KEYS]
        if not operators:
            return self._condition(expr, where)
        if len(expr) != 1:
            if len(operators) > 1:
                raise _bad(where, f"an expression object has one operator, got {sorted(operators)}")
            extra = sorted(set(expr) - {operators[0]})
            raise _bad(where, f"unexpected field(s) {extra} next to {operators[0]!r}")
        name = operators[0]
        return self._OPERATORS[name](self, expr[name], f"{where}.{name}")

    def _condition(self, condition: dict, where: str) -> Node:
        try:
            compiled = self.compile_condition({"must": [condition]})
        except BadInput as exc:
            raise _bad(where, f"invalid condition: {exc.message}") from None
        if compiled is None:  # a condition that holds for every point
            return _constant(1.0)
        self.uses_conditions = True
        matches = compiled.matches

        def condition_value(payload, scores, ctx) -> float:
            return 1.0 if matches(ctx) else 0.0

        return condition_value

    def _geo_distance(self, params, where: str) -> Node:
        params = _fields(params, where, required=("origin", "to"))
        origin = params["origin"]
        origin_where = f"{where}.origin"
        if type(origin) is not dict or set(origin) != {"lon", "lat"}:
            raise _bad(origin_where, f'expected {{"lon": ..., "lat": ...}}, got {_describe(origin)}')
        if not (_is_number(origin["lon"]) and _is_number(origin["lat"])):
            raise _bad(origin_where, "lon and lat must be numbers")
        lon, lat = float(origin["lon"]), float(origin["lat"])
        if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
            raise _bad(origin_where, f"lon must be within [-180;180] and lat within [-90;90], got {lon}, {lat}")
        point_at = _typed_value(self._path(params["to"], f"{where}.to"), self.defaults, "geo point", _as_geo_point)

        def geo_distance(payload, scores, ctx) -> float:
            to_lon, to_lat = point_at(payload)
            return haversine_m(lon, lat, to_lon, to_lat)

        return geo_distance

    def _datetime(self, text, where: str) -> Node:
        if type(text) is not str:
            raise _bad(where, f"expected a datetime string, got {_describe(text)}")
        micros = parse_datetime(text)
        if micros is None:
            raise _bad(where, f"'{text}' is not in a supported date/time format, please use RFC 3339")
        return _constant(float(micros) / 1_000_000.0)

    def _datetime_key(self, key, where: str) -> Node:
        timestamp_at = _typed_value(self._path(key, where), self.defaults, "datetime", _as_timestamp)

        def datetime_key(payload, scores, ctx) -> float:
            return timestamp_at(payload)

        return datetime_key

    # -- operators --

    def _list(self, exprs, where: str) -> tuple[Node, ...]:
        if type(exprs) is not list:
            raise _bad(where, f"expected a list of expressions, got {_describe(exprs)}")
        return tuple(self.compile(e, f"{where}[{i}]") for i, e in enumerate(exprs))

    def _sum(self, exprs, where: str) -> Node:
        terms = self._list(exprs, where)
        if len(terms) == 2:
            a, b = terms

            def sum_of_two(payload, scores, ctx) -> float:
                return 0.0 + a(payload, scores, ctx) + b(payload, scores, ctx)

            return sum_of_two

        def sum_all(payload, scores, ctx) -> float:
            total = 0.0
            for term in terms:
                total += term(payload, scores, ctx)
            return total

        return sum_all

    def _mult(self, exprs, where: str) -> Node:
        factors = self._list(exprs, where)

        def product(payload, scores, ctx) -> float:
            result = 1.0
            for factor in factors:
                value = factor(payload, scores, ctx)
                if value == 0.0:
                    return 0.0  # Qdrant's shortcut: later factors are not evaluated
                result *= value
            return result

        return product

    def _div(self, params, where: str) -> Node:
        params = _fields(params, where, required=("left", "right"), optional=("by_zero_default",))
        left = self.compile(params["left"], f"{where}.left")
        right = self.compile(params["right"], f"{where}.right")
        by_zero_default = params.get("by_zero_default")
        if by_zero_default is not None:
            if not _is_number(by_zero_default):
                raise _bad(f"{where}.by_zero_default", f"expected a number, got {_describe(by_zero_default)}")
            by_zero_default = _f32(float(by_zero_default))
        isfinite = math.isfinite

        def divide(payload, scores, ctx) -> float:
            numerator = left(payload, scores, ctx)
            if numerator == 0.0:
                return 0.0  # Qdrant's shortcut: the right side is not evaluated
            denominator = right(payload, scores, ctx)
            if denominator == 0.0 and by_zero_default is not None:
                return by_zero_default
            quotient = _divide(numerator, denominator)
            if isfinite(quotient):
                return quotient
            raise _non_finite(f"{rust_float(numerator)}/{rust_float(denominator)} = {rust_float(quotient)}")

        return divide

    def _pow(self, params, where: str) -> Node:
        params = _fields(params, where, required=("base", "exponent"))
        base = self.compile(params["base"], f"{where}.base")
        exponent = self.compile(params["exponent"], f"{where}.exponent")
        isfinite = math.isfinite

        def power(payload, scores, ctx) -> float:
            b = base(payload, scores, ctx)
            e = exponent(payload, scores, ctx)
            result = _powf(b, e)
            if isfinite(result):
                return result
            raise _non_finite(f"{rust_float(b)}^{rust_float(e)} = {rust_float(result)}")

        return power

    def _unary(self, name: str, arg, where: str) -> Node:
        inner = self.compile(arg, where)
        if name == "neg":
            return lambda payload, scores, ctx: -inner(payload, scores, ctx)
        if name == "abs":
            return lambda payload, scores, ctx: abs(inner(payload, scores, ctx))
        fn, label = _CHECKED_FUNCTIONS[name]
        isfinite = math.isfinite

        def checked(payload, scores, ctx) -> float:
            value = inner(payload, scores, ctx)
            result = fn(value)
            if isfinite(result):
                return result
            raise _non_finite(label.format(rust_float(value), rust_float(result)))

        return checked

    def _decay(self, name: str, params, where: str) -> Node:
        params = _fields(params, where, required=("x",), optional=("target", "scale", "midpoint"))
        lam = _decay_lambda(name, params, where)
        x = self.compile(params["x"], f"{where}.x")
        target = params.get("target")
        target_node = self.compile(target, f"{where}.target") if target is not None else None
        return _DECAY_SHAPES[name](x, target_node, lam)

    _OPERATORS = {
        "geo_distance": _geo_distance,
        "datetime": _datetime,
        "datetime_key": _datetime_key,
        "sum": _sum,
        "mult": _mult,
        "div": _div,
        "pow": _pow,
        **{name: _operator_of("_unary", name) for name in _UNARY_OPERATORS},
        **{name: _operator_of("_decay", name) for name in _DECAYS},
    }


_CHECKED_FUNCTIONS = {
    "sqrt": (_sqrt, "√{} = {}"),
    "exp": (_exp, "exp({}) = {}"),
    "log10": (_log_with(math.log10), "log10({}) = {}"),
    "ln": (_log_with(math.log), "ln({}) = {}"),
}


def _fields(params, where: str, required: tuple, optional: tuple = ()) -> dict:
    """The parameter object of an operator, with its required fields present."""
    if type(params) is not dict:
        raise _bad(where, f"expected an object with {', '.join(required + optional)}, got {_describe(params)}")
    unknown = sorted(set(params) - set(required) - set(optional))
    if unknown:
        raise _bad(where, f"unknown field(s) {unknown}; expected {', '.join(required + optional)}")
    missing = [name for name in required if params.get(name) is None]
    if missing:
        raise _bad(where, f"missing required field(s) {missing}")
    return params


def _constant(value: float) -> Node:
    def constant(payload, scores, ctx) -> float:
        return value

    return constant


def _score_variable(index: int, default: float) -> Node:
    def prefetch_score(payload, scores, ctx) -> float:
        if index < len(scores):
            score = scores[index]
            if score is not None:
                return float(score)  # a numpy float32 would make the arithmetic f32
        return default

    return prefetch_score


def _payload_number(path: tuple, defaults: dict) -> Node:
    number_at = _typed_value(path, defaults, "number", _as_number)
    if len(path) == 1:
        key = path[0]

        # The common case, a top-level number, without the general lookup.
        def top_level_number(payload, scores, ctx) -> float:
            value = payload.get(key)
            t = type(value)
            if t is float:
                return value
            if t is int:
                return _int_as_f64(value)
            return number_at(payload)

        return top_level_number

    def payload_number(payload, scores, ctx) -> float:
        return number_at(payload)

    return payload_number


# --- decays ----------------------------------------------------------------------------------


def _decay_lambda(name: str, params: dict, where: str) -> float:
    """The constant shaping a decay, from midpoint and scale (Qdrant's
    `decay_params_to_lambda`, with its validation messages)."""
    raw_midpoint, raw_scale = params.get("midpoint"), params.get("scale")
    for field, raw in (("midpoint", raw_midpoint), ("scale", raw_scale)):
        if raw is not None and not _is_number(raw):
            raise _bad(f"{where}.{field}", f"expected a number, got {_describe(raw)}")
    midpoint = _f32(float(raw_midpoint)) if raw_midpoint is not None else DEFAULT_DECAY_MIDPOINT
    scale = _f32(float(raw_scale)) if raw_scale is not None else DEFAULT_DECAY_SCALE
    if name == "lin_decay":
        if not 0.0 <= midpoint <= 1.0:
            raise BadInput(
                f"Validation failed: Linear decay midpoint should be in the range [0.0, 1.0], got {rust_float(midpoint)}."
            )
    elif midpoint <= 0.0 or midpoint >= 1.0:
        raise BadInput(f"Validation failed: Decay midpoint should be in the range (0.0, 1.0), got {rust_float(midpoint)}.")
    if scale <= 0.0:
        raise BadInput(f"Validation failed: Decay scale should be non-zero positive, got {rust_float(scale)}.")
    if name == "lin_decay":
        return (1.0 - midpoint) / scale
    if name == "exp_decay":
        return math.log(midpoint) / scale
    return math.log(midpoint) / (scale * scale)


def _target_reader(target: Node | None) -> Node:
    return target if target is not None else _constant(DEFAULT_DECAY_TARGET)


def _lin_decay(x: Node, target: Node | None, lam: float) -> Node:
    target = _target_reader(target)

    def lin_decay(payload, scores, ctx) -> float:
        value = -lam * abs(x(payload, scores, ctx) - target(payload, scores, ctx)) + 1.0
        return value if value > 0.0 else 0.0  # Rust's max(0.0), which also turns NaN to 0

    return lin_decay


def _exp_decay(x: Node, target: Node | None, lam: float) -> Node:
    target = _target_reader(target)
    exp = math.exp

    def exp_decay(payload, scores, ctx) -> float:
        return exp(lam * abs(x(payload, scores, ctx) - target(payload, scores, ctx)))

    return exp_decay


def _gauss_decay(x: Node, target: Node | None, lam: float) -> Node:
    target = _target_reader(target)
    exp = math.exp

    def gauss_decay(payload, scores, ctx) -> float:
        diff = x(payload, scores, ctx) - target(payload, scores, ctx)
        return exp(lam * diff * diff)

    return gauss_decay


_DECAY_SHAPES = {"lin_decay": _lin_decay, "exp_decay": _exp_decay, "gauss_decay": _gauss_decay}


__all__ = ["Formula", "OPERATOR_KEYS", "parse_variable", "rust_float"]
