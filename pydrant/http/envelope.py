"""Qdrant's response envelope and request helpers shared by every API module.

Success: `{"result": ..., "status": "ok", "time": seconds}`.
Error:   `{"status": {"error": message}, "time": seconds}` with Qdrant's status codes.
Async accepted writes: `{"result": ..., "status": "accepted", ...}` is not used by Qdrant's
REST; `wait=false` results carry `"status": "acknowledged"` inside `result`.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import orjson
import trio
from quart import Response, g, request

from pydrant.errors import BadInput, ValidationFailed
from pydrant.http.validation import deserialize, parse_json

_ORJSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def elapsed() -> float:
    started = getattr(g, "started", None)
    return time.perf_counter() - started if started is not None else 0.0


def _default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"cannot serialise {type(obj).__name__}")


def json_response(body: dict, status: int = 200) -> Response:
    data = orjson.dumps(body, default=_default, option=_ORJSON_OPTIONS)
    return Response(data, status=status, content_type="application/json")


def ok(result: Any, status: int = 200) -> Response:
    return json_response({"result": result, "status": "ok", "time": elapsed()}, status)


def error(status: int, message: str) -> Response:
    return json_response({"status": {"error": message}, "time": elapsed()}, status)


async def body(model, *, optional: bool = False):
    """The request body validated into `model`; `None` when empty and `optional`."""
    data = parse_json(await request.get_data(cache=False))
    if data is None:
        if optional:
            return None
        raise BadInput("Format error in JSON body: EOF while parsing a value at line 1 column 0")
    return deserialize(model, data)


async def off_loop(function, *args):
    """`function(*args)` in a worker thread: the one way handlers run blocking work (the
    engine's reads, parsing and checking a large body: 1,000 x 384 floats is ~4 MB of
    JSON, tens of ms), so the event loop never waits on RocksDB, numpy or a parser."""
    return await trio.to_thread.run_sync(function, *args)


async def raw_body() -> bytes:
    """The request body as bytes, unparsed (for bodies parsed off the loop)."""
    return await request.get_data(cache=False)


def json_from_bytes(raw: bytes, *, optional: bool = False):
    """The parsed body without model validation (for hot paths validated by the engine)."""
    data = parse_json(raw)
    if data is None and not optional:
        raise BadInput("Format error in JSON body: EOF while parsing a value at line 1 column 0")
    return data


def query_bool(name: str, default: bool | None = None) -> bool | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise BadInput(f"Deserialize error in query parameters: {name}: provided string was not `true` or `false`")


def query_int(name: str, default: int | None = None, minimum: int | None = None) -> int | None:
    """An unsigned integer query parameter, as serde_urlencoded parses a u64 (a sign is an
    "invalid digit"). Below `minimum`: Qdrant's collection-level endpoints (create, update,
    delete, aliases: `WaitTimeout` with `#[validate(range(min = 1))]`) answer 422
    "Validation error in query parameters: [timeout: value 0 invalid, must be 1 or larger]";
    the point-level ones read `timeout` as a NonZeroU64, which serde refuses (400)."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isascii() or not raw.isdigit():
        raise BadInput(f"Deserialize error in query parameters: {name}: invalid digit found in string")
    value = int(raw)
    if minimum is not None and value < minimum:
        if _collection_level_path(request.path):
            raise ValidationFailed(
                f"Validation error in query parameters: [{name}: value {value} invalid, must be {minimum} or larger]"
            )
        expected = "a nonzero u64" if minimum == 1 else f"an integer of {minimum} or larger"
        raise BadInput(f"Deserialize error in query parameters: {name}: invalid value: integer `{value}`, expected {expected}")
    return value


def _collection_level_path(path: str) -> bool:
    """/collections/{name} and /collections/aliases, not their points/facet/... sub-routes."""
    parts = [part for part in path.split("/") if part]
    return len(parts) == 2 and parts[0] == "collections"


def query_enum(name: str, allowed: tuple[str, ...], default: str | None = None) -> str | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if raw not in allowed:
        raise BadInput(
            f"Deserialize error in query parameters: {name}: unknown variant `{raw}`, expected one of "
            + ", ".join(f"`{a}`" for a in allowed)
        )
    return raw


ORDERINGS = ("weak", "medium", "strong")


def write_params() -> bool:
    """The query parameters of every write: `wait` (returned) and `ordering` (checked; one
    node has one order)."""
    wait = query_bool("wait", False)
    query_enum("ordering", ORDERINGS)
    return wait
