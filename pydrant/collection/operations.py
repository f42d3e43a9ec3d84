"""The engine's write operations: what the update worker logs and applies, and how the
API's write bodies become them.

An operation is a plain dict with a `type` and the fields below. It is the WAL's record
format (through the CBOR codec, numpy arrays as typed arrays), so it must never depend on
the HTTP wire format. Points are selected by `ids` (normalised point ids) or by `filter`
(Qdrant filter JSON, resolved against the data when the operation is applied — as Qdrant
does, so replaying the log gives the same result).

  upsert            points: [{id, vectors: {name: array | {indices, values}}, payload}],
                    update_filter?
  delete_points     ids | filter
  set_payload       payload, key?, ids | filter
  overwrite_payload payload, ids | filter
  delete_payload    keys, ids | filter
  clear_payload     ids | filter
  update_vectors    points: [{id, vectors}], update_filter?
  delete_vectors    vectors: [names], ids | filter
  create_field_index, delete_field_index   (collection/payload_index.py)

Every builder also takes the body's `shard_key` (a ShardKeySelector: a keyword, an integer
in u64, or a list of those) and puts it on the operation under `routing.SHARD_KEY` when it
is given; the collection takes it off to route the operation (collection/routing.py), so
it is never logged.

The builders below take the plain JSON of a write body (the HTTP layer's validated
request) and check everything that could make the write fail before it is logged: point
ids, key paths, vector names and values (collection/points.py), and filters, which are
compiled by the collection (`Collection.compile_filter`) to be checked; the compiled
filter is not kept, since the log holds the filter and it is compiled again when the
operation is applied. Strict mode is applied when the operations are submitted
(`Collection.submit`).
"""

from __future__ import annotations

from typing import Any

from pydrant.collection.points import prepare_update_vectors, prepare_upsert
from pydrant.collection.routing import SHARD_KEY
from pydrant.errors import BadInput
from pydrant.segments.ids import normalize_id
from pydrant.segments.payload import parse_path


U64_MAX = (1 << 64) - 1
EMPTY_KEY_SELECTION = "Wrong input: Empty shard keys selection"


def check_shard_key(selector: Any, path: str = "shard_key") -> Any:
    """A `shard_key` as Qdrant's serde reads a ShardKeySelector (untagged: a keyword, an
    integer in u64, or a list of those); anything else is the body's format error (400).
    The request models type it already, but not the integer's range; the upsert body is
    not run through a model (points.py) and gets every check here."""
    keys = selector if isinstance(selector, list) else [selector]
    for key in keys:
        if isinstance(key, str) or (type(key) is int and 0 <= key <= U64_MAX):
            continue
        raise BadInput(f"Format error in JSON body: {path}: data did not match any variant of untagged enum ShardKeySelector")
    return selector


def _with_shard_key(operation: dict, body: dict) -> dict:
    """`operation` carrying the body's shard key selector, when it names one. An empty list
    selects no shard: Qdrant refuses it for a write (toc `_update_shard_keys`)."""
    selector = body.get("shard_key")
    if selector is not None:
        check_shard_key(selector)
        if selector == []:
            raise BadInput(EMPTY_KEY_SELECTION)
        operation[SHARD_KEY] = selector
    return operation


def upsert(collection, body: dict) -> dict:
    """An `upsert` from a `PointInsertOperations` body (its `update_filter`: below)."""
    if body.get("shard_key") is not None:
        check_shard_key(body["shard_key"])  # a format error comes before the points' errors
    return _with_shard_key(prepare_upsert(collection.schema, body), body)


def update_vectors(collection, body: dict) -> dict:
    operation = prepare_update_vectors(collection.schema, body)
    if body.get("update_filter"):
        add_update_filter(collection, operation, body["update_filter"])
    return _with_shard_key(operation, body)


def add_update_filter(collection, operation: dict, update_filter: dict) -> None:
    """An upsert's or a vector update's `update_filter`, checked: only points matching it
    are changed (new points are inserted regardless, as in Qdrant)."""
    collection.compile_filter(update_filter)
    operation["update_filter"] = update_filter


def delete_points(collection, body: dict) -> dict:
    return _with_shard_key({"type": "delete_points", **selection(collection, body)}, body)


def set_payload(collection, body: dict, overwrite: bool = False) -> dict:
    if overwrite:
        operation = {"type": "overwrite_payload", "payload": body["payload"], **selection(collection, body)}
        return _with_shard_key(operation, body)
    operation = {"type": "set_payload", "payload": body["payload"], **selection(collection, body)}
    if body.get("key") is not None:
        parse_path(body["key"])
        operation["key"] = body["key"]
    return _with_shard_key(operation, body)


def delete_payload(collection, body: dict) -> dict:
    for key in body["keys"]:
        parse_path(key)
    operation = {"type": "delete_payload", "keys": list(body["keys"]), **selection(collection, body)}
    return _with_shard_key(operation, body)


def clear_payload(collection, body: dict) -> dict:
    return _with_shard_key({"type": "clear_payload", **selection(collection, body)}, body)


def delete_vectors(collection, body: dict) -> dict:
    names = list(body["vector"])
    for name in names:
        if name not in collection.schema.dense and name not in collection.schema.sparse:
            raise BadInput(f"Wrong input: Not existing vector name error: {name}")
    return _with_shard_key({"type": "delete_vectors", "vectors": names, **selection(collection, body)}, body)


def selection(collection, selector: dict) -> dict:
    """`{"ids": [...]}` or `{"filter": {...}}` from a PointsSelector / points+filter body."""
    points = selector.get("points")
    filter_ = selector.get("filter")
    if points is not None and filter_ is not None:
        raise BadInput("Wrong input: use either `points` or `filter`, not both")
    if points is not None:
        if isinstance(points, dict):  # {"points": [...]} or {"filter": {...}} nested selector
            return selection(collection, points)
        return {"ids": [normalize_id(p) for p in points]}
    if filter_ is not None:
        collection.compile_filter(filter_)
        return {"filter": filter_}
    raise BadInput("Wrong input: either `points` or `filter` is required")
