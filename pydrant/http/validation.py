"""Request body parsing and validation against the spec.

Two steps, as Qdrant does them:
1. Deserialize: orjson parses the body and the request's pydantic model checks types. Unknown
   fields are ignored and dropped, as serde ignores them, except in the structs Qdrant
   declares `deny_unknown_fields` (Filter, the payload selectors), which refuse them. The
   models (spec_models.py) are generated from the vendored v1.15.5 OpenAPI spec by
   tools/gen_spec_models.py and committed; nothing reads the spec at run time. Failure is 400 "Format error in JSON body: ...".
2. Validate: the spec's numeric and length bounds (constraints.json, generated from the
   spec by tools/gen_spec_constraints.py) are checked on the validated model. Failure is
   422 "Validation error in JSON body: [path: reason]".
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from pydantic import BaseModel, TypeAdapter, ValidationError

from pydrant.errors import BadInput, ValidationFailed

_CONSTRAINTS: dict[str, dict[str, dict]] = json.loads(
    (Path(__file__).parent / "constraints.json").read_text()
)


# Qdrant parses bodies with serde_json, whose recursion limit (128) refuses a document nested
# 128 levels deep: 400 "recursion limit exceeded". orjson allows 1024, and values nested that
# deep broke what comes after the parse (pydantic's serializer, the formula compiler, CBOR
# decoding of a stored payload on every later read), so the limit is Qdrant's.
MAX_JSON_DEPTH = 127


def parse_json(raw: bytes) -> Any:
    """Parse a request body; an empty body is `None` (several endpoints allow it)."""
    if not raw or not raw.strip():
        return None
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadInput(f"Format error in JSON body: {exc}") from None
    check_depth(data)
    return data


def check_depth(value: Any) -> None:
    """BadInput when parsed JSON (plain values; numpy arrays count their dimensions) nests
    deeper than MAX_JSON_DEPTH. Iterative, and a list holding no container is skipped at C
    speed (`set(map(type, ...))`), so a body of long vectors costs little."""
    stack = [(value, 1)]
    pop, push = stack.pop, stack.append
    while stack:
        item, depth = pop()
        if type(item) is np.ndarray:
            depth += item.ndim - 1
        if depth > MAX_JSON_DEPTH:
            raise BadInput(
                f"Format error in JSON body: recursion limit exceeded: the body nests deeper than {MAX_JSON_DEPTH} levels"
            )
        if type(item) is dict:
            children = item.values()
        elif type(item) is list:
            kinds = set(map(type, item))
            if dict not in kinds and list not in kinds and np.ndarray not in kinds:
                continue
            children = item
        else:
            continue
        for child in children:
            kind = type(child)
            if kind is dict or kind is list or kind is np.ndarray:
                push((child, depth + 1))


@cache
def _adapter(model) -> TypeAdapter:
    return TypeAdapter(model)


def deserialize(model, data: Any):
    """Validate `data` (parsed JSON) into `model`; 400 with the failing field on error."""
    try:
        value = _adapter(model).validate_python(data)
    except ValidationError as exc:
        raise BadInput(f"Format error in JSON body: {describe_validation_error(exc)}") from None
    check_bounds(value)
    return value


def describe_validation_error(exc: ValidationError) -> str:
    """One line per distinct failing location, shortest first: union types make pydantic
    report every alternative, and the shortest paths are the ones a user can act on."""
    seen = []
    for err in sorted(exc.errors(), key=lambda e: len(e["loc"])):
        loc = ".".join(str(p) for p in err["loc"] if not _is_union_tag(p))
        line = f"{loc}: {err['msg']}" if loc else err["msg"]
        if line not in seen:
            seen.append(line)
    return "; ".join(seen[:3])


def _is_union_tag(part) -> bool:
    # pydantic names union alternatives by their type in `loc` ("list[float]", "VectorParams")
    return isinstance(part, str) and (part[:1].isupper() or "[" in part or part in ("str", "int", "float", "bool"))


def check_bounds(value, path: str = "") -> None:
    """Walk a validated model and check the spec's bounds; raise 422 naming the field."""
    if isinstance(value, BaseModel):
        name = type(value).__name__
        if name in _MODEL_CHECKS:
            _MODEL_CHECKS[name](value, path)
        bounds = _CONSTRAINTS.get(name, {})
        for field in type(value).model_fields:
            item = value.__dict__.get(field)  # not getattr: deprecated fields would warn on every request
            if item is None:
                continue
            field_path = f"{path}.{field}" if path else field
            if field in bounds:
                _check_one(item, bounds[field], field_path)
            check_bounds(item, field_path)
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, (BaseModel, dict, list)):
                check_bounds(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list) and value and isinstance(value[0], (BaseModel, dict, list)):
        for i, item in enumerate(value):
            check_bounds(item, f"{path}[{i}]")


def _check_field_condition(condition, path: str) -> None:
    # segment/src/types.rs validate_field_condition
    if all(getattr(condition, field) is None for field in type(condition).model_fields if field != "key"):
        fail(path, "At least one field condition must be specified")


def _check_sparse_vector(vector, path: str) -> None:
    # sparse/src/common/sparse_vector.rs: an error without a message, rendered by validator's
    # Display ("Validation error: <code> [<params>]") as Qdrant's describe_error falls back to
    if len(vector.indices) != len(vector.values):
        fail(f"{path}.values" if path else "values", "Validation error: must be the same length as indices [{}]")


# Qdrant's `#[validate(...)]` checks that the spec's bounds do not express, by model name.
_MODEL_CHECKS = {"FieldCondition": _check_field_condition, "SparseVector": _check_sparse_vector}


def _check_one(value, bounds: dict, path: str) -> None:
    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        _check_number(value, bounds, path)
    elif isinstance(value, (str, list)):
        _check_length(value, bounds, path)
        if isinstance(value, list) and "items" in bounds:
            for i, item in enumerate(value):
                _check_one(item, bounds["items"], f"{path}[{i}]")


def _check_number(value, bounds: dict, path: str) -> None:
    if "unsigned" in bounds and value < 0:
        raise BadInput(f"Format error in JSON body: {path}: invalid value: integer `{value}`, expected {bounds['unsigned']}")
    if "minimum" in bounds and value < bounds["minimum"]:
        fail(path, f"value {value} invalid, must be {bounds['minimum']} or larger")
    if "maximum" in bounds and value > bounds["maximum"]:
        fail(path, f"value {value} invalid, must be {bounds['maximum']} or smaller")
    if "exclusiveMinimum" in bounds and value <= bounds["exclusiveMinimum"]:
        fail(path, f"value {value} invalid, must be larger than {bounds['exclusiveMinimum']}")
    if "exclusiveMaximum" in bounds and value >= bounds["exclusiveMaximum"]:
        fail(path, f"value {value} invalid, must be smaller than {bounds['exclusiveMaximum']}")


def _check_length(value, bounds: dict, path: str) -> None:
    size = len(value)
    if "minLength" in bounds and size < bounds["minLength"] or "minItems" in bounds and size < bounds["minItems"]:
        fail(path, f"length {size} invalid, must be at least {bounds.get('minLength', bounds.get('minItems'))}")
    if "maxLength" in bounds and size > bounds["maxLength"] or "maxItems" in bounds and size > bounds["maxItems"]:
        fail(path, f"length {size} invalid, must be at most {bounds.get('maxLength', bounds.get('maxItems'))}")


def fail(path: str, reason: str):
    raise ValidationFailed(f"Validation error in JSON body: [{path}: {reason}]")


def to_plain(model_value) -> Any:
    """A validated model as plain JSON types for the engine (aliases such as `except`)."""
    if isinstance(model_value, BaseModel):
        return model_value.model_dump(mode="json", by_alias=True, exclude_none=True)
    return _adapter(type(model_value)).dump_python(model_value, mode="json", by_alias=True, exclude_none=True)
