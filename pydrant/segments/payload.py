"""Payload key paths and the pure payload transforms (set, delete) segments apply.

Key paths follow Qdrant's JSON path syntax (its `lib/segment/src/json_path`):

    path   := first item*
    first  := raw | quoted
    item   := "." raw | "." quoted | "[" digits "]" | "[]"
    raw    := one or more alphanumeric characters, "_" or "-"
    quoted := '"' any characters except '"' and '\\' '"'

so `a.b.c`, `country.cities[].population`, `tags[0]` and `meta."dotted.key"[]` are paths;
`""`, `a..b`, `a.`, `.a`, `a[`, `a[x]` and `my key` (a space needs quoting) are not.

A parsed path is a tuple: its first element is the first key (a `str`); each following
element is a `str` (object key), an `int` (array index) or `WILDCARD` (`[]`, every element).

Semantics (Qdrant's, so results match a Qdrant server):

- Reading (`get_values`): a key step only descends into an object and an index or `[]` step
  only into an array. `a.b` where `a` is an array of objects finds nothing: write `a[].b`.
- `set_payload(payload, values, key)` merges `values` into the object at `key` (the payload
  itself without a key), creating missing objects and replacing non-objects on the way. A
  `null` in `values` removes that key instead of storing null (Qdrant's merge rule).
- `delete_keys` removes each path; `a[]` at the end empties the array, an index at the end
  removes nothing (Qdrant refuses to delete array positions: it is not idempotent).

Every function here is pure: inputs are never mutated. Results copy what they change and
share unchanged sub-objects with the input, so treat stored payloads as immutable.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

from pydrant.errors import BadInput


class _Wildcard:
    """The `[]` step of a path: every element of an array."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "WILDCARD"

    def __reduce__(self):
        return "WILDCARD"


WILDCARD = _Wildcard()

PathItem = str | int | _Wildcard
ParsedPath = tuple  # (first_key: str, *items: PathItem)


def _is_raw_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_" or ch == "-"


def _bad_path(key, reason: str) -> BadInput:
    return BadInput(f"Invalid json path: '{key}': {reason}")


@functools.lru_cache(maxsize=4096)
def _parse(key: str) -> ParsedPath:
    n = len(key)
    items: list = []
    i = 0

    def read_key(i: int) -> tuple[str, int]:
        if i < n and key[i] == '"':
            end = i + 1
            while end < n and key[end] != '"':
                if key[end] == "\\":
                    raise _bad_path(key, f"backslash at position {end} inside a quoted key")
                end += 1
            if end >= n:
                raise _bad_path(key, f"quoted key opened at position {i} is not closed")
            return key[i + 1 : end], end + 1
        start = i
        while i < n and _is_raw_char(key[i]):
            i += 1
        if i == start:
            if start >= n:
                raise _bad_path(key, "a key is missing at the end")
            raise _bad_path(
                key,
                f"unexpected {key[start]!r} at position {start}; keys are letters, digits, '_' "
                "and '-', or a double-quoted string",
            )
        return key[start:i], i

    if n == 0:
        raise _bad_path(key, "the path is empty")
    first, i = read_key(0)
    items.append(first)
    while i < n:
        ch = key[i]
        if ch == ".":
            part, i = read_key(i + 1)
            items.append(part)
        elif ch == "[":
            close = key.find("]", i + 1)
            if close < 0:
                raise _bad_path(key, f"'[' at position {i} is not closed")
            inner = key[i + 1 : close]
            if inner == "":
                items.append(WILDCARD)
            elif inner.isascii() and inner.isdigit():
                items.append(int(inner))
            else:
                raise _bad_path(key, f"array step [{inner}] must be [] or [<index>]")
            i = close + 1
        else:
            raise _bad_path(key, f"unexpected {ch!r} at position {i}; expected '.', '[]' or '[<index>]'")
    return tuple(items)


def parse_path(key) -> ParsedPath:
    """The parsed form of a payload key path, or BadInput naming what is wrong."""
    if isinstance(key, tuple):
        return key
    if not isinstance(key, str):
        raise BadInput(f"Invalid json path: a payload key must be a string, got {key!r}")
    return _parse(key)


def format_path(path: ParsedPath) -> str:
    """The canonical text of a parsed path (keys quoted where they need it)."""

    def fmt_key(k: str) -> str:
        if k and all(_is_raw_char(c) for c in k):
            return k
        return f'"{k}"'

    out = [fmt_key(path[0])]
    for item in path[1:]:
        if item is WILDCARD:
            out.append("[]")
        elif isinstance(item, int):
            out.append(f"[{item}]")
        else:
            out.append("." + fmt_key(item))
    return "".join(out)


# --- reading -------------------------------------------------------------------------------


def _collect(value, items: tuple, start: int, out: list) -> None:
    for pos in range(start, len(items)):
        item = items[pos]
        if type(item) is str:
            if type(value) is not dict:
                return
            value = value.get(item, _MISSING)
            if value is _MISSING:
                return
        elif item is WILDCARD:
            if type(value) is not list:
                return
            for element in value:
                _collect(element, items, pos + 1, out)
            return
        else:
            if type(value) is not list or item >= len(value):
                return
            value = value[item]
    out.append(value)


_MISSING = object()


def raw_values(payload: dict, path: ParsedPath) -> list:
    """The values at a parsed path, as stored (an array at the end stays one value)."""
    first = payload.get(path[0], _MISSING)
    if first is _MISSING:
        return []
    if len(path) == 1:
        return [first]
    out: list = []
    _collect(first, path, 1, out)
    return out


def get_values(payload: dict, key, *, flatten: bool = True) -> list:
    """All values at `key` (a path string or parsed path) in `payload`.

    With `flatten` (the default), a value that is an array contributes its elements, one
    level deep: these are the values a filter condition is matched against. With
    `flatten=False` the values are returned as stored (what `is_empty`, `is_null` and
    `values_count` look at). A missing path gives `[]`.
    """
    values = raw_values(payload, parse_path(key))
    if not flatten:
        return values
    flat: list = []
    for value in values:
        if type(value) is list:
            flat.extend(value)
        else:
            flat.append(value)
    return flat


def field_values(payload: dict, path: ParsedPath) -> list:
    """The values a condition on `path` compares, and a payload index holds: what the path
    reaches, arrays opened one level, nulls left out."""
    out: list = []
    for value in raw_values(payload, path):
        if type(value) is list:
            out.extend(x for x in value if x is not None)
        elif value is not None:
            out.append(value)
    return out


# --- writing -------------------------------------------------------------------------------


def _copy_json(value):
    """A copy of a JSON value that shares nothing mutable with the original."""
    if type(value) is dict:
        return {k: _copy_json(v) for k, v in value.items()}
    if type(value) is list:
        return [_copy_json(v) for v in value]
    return value


def _merge(dest: dict, values: dict) -> None:
    """Qdrant's merge: each key of `values` overwrites, a null value removes the key."""
    for name, value in values.items():
        if value is None:
            dest.pop(name, None)
        else:
            dest[name] = _copy_json(value)


def _set_at(node, items: tuple, pos: int, values: dict):
    """`node` with `values` merged at items[pos:]; `node` itself is not changed."""
    if pos == len(items):
        merged = dict(node) if type(node) is dict else {}
        _merge(merged, values)
        return merged
    item = items[pos]
    if type(item) is str:
        obj = dict(node) if type(node) is dict else {}
        obj[item] = _set_at(obj.get(item), items, pos + 1, values)
        return obj
    if item is WILDCARD:
        if type(node) is not list:
            return []
        return [_set_at(element, items, pos + 1, values) for element in node]
    # An index: only an existing element is set; a non-array becomes an empty array.
    if type(node) is not list:
        return []
    if item >= len(node):
        return node
    array = list(node)
    array[item] = _set_at(node[item], items, pos + 1, values)
    return array


def set_payload(payload: dict, values: dict, key=None) -> dict:
    """A new payload: `values` merged into `payload`, or into the object at path `key`.

    Without `key`, each top-level key of `values` replaces the one in `payload`. With `key`,
    the same merge happens inside the object found at that path; missing objects on the way
    are created and a non-object in the way is replaced by an object (`[]` steps apply to
    every element of an existing array). A `null` value removes its key (Qdrant's rule).
    """
    if not isinstance(values, dict):
        raise BadInput(f"payload must be a JSON object, got {type(values).__name__}")
    payload = payload or {}
    if key is None:
        result = dict(payload)
        _merge(result, values)
        return result
    return _set_at(payload, parse_path(key), 0, values)


def _delete_at(node, items: tuple, pos: int):
    """`node` without the value at items[pos:] (items[pos:] is not empty); `node` unchanged."""
    item = items[pos]
    last = pos == len(items) - 1
    if type(item) is str:
        if type(node) is not dict or item not in node:
            return node
        obj = dict(node)
        if last:
            del obj[item]
        else:
            obj[item] = _delete_at(node[item], items, pos + 1)
        return obj
    if type(node) is not list:
        return node
    if item is WILDCARD:
        if last:
            return []
        return [_delete_at(element, items, pos + 1) for element in node]
    if last or item >= len(node):
        # Deleting an array position is not idempotent; Qdrant leaves the array as is.
        return node
    array = list(node)
    array[item] = _delete_at(node[item], items, pos + 1)
    return array


def delete_keys(payload: dict, keys: Iterable[str]) -> dict:
    """A new payload without the values at each of `keys` (paths; missing ones are ignored)."""
    paths = [parse_path(key) for key in keys]
    result = payload or {}
    for path in paths:
        first = path[0]
        if first not in result:
            continue
        if len(path) == 1:
            result = {k: v for k, v in result.items() if k != first}
        else:
            new_value = _delete_at(result[first], path, 1)
            if new_value is not result[first]:
                result = dict(result)
                result[first] = new_value
    return dict(result) if result is payload else result


__all__ = [
    "WILDCARD",
    "ParsedPath",
    "parse_path",
    "format_path",
    "raw_values",
    "get_values",
    "set_payload",
    "delete_keys",
]
