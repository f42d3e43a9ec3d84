"""Check a JSON response against the response schema the vendored v1.15.5 spec gives for
that operation and status (spec/qdrant-openapi-v1.15.5.json).

The spec is OpenAPI 3.0: `nullable: true` (and an `anyOf` alternative `{"nullable": true}`)
becomes JSON Schema's `null` type, and `#/components/schemas/X` refs point into a
`definitions` block, so jsonschema_rs (Draft 7) can validate. With `strict` (the default)
every object schema that lists properties also refuses keys it does not list: a response
must hold nothing Qdrant's would not. Formats (`uint64`, `float`, ...) are not checked.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import jsonschema_rs

SPEC = json.loads((Path(__file__).resolve().parents[1] / "spec" / "qdrant-openapi-v1.15.5.json").read_text())


def _convert(node, strict: bool):
    if isinstance(node, list):
        return [_convert(item, strict) for item in node]
    if not isinstance(node, dict):
        return node
    if node == {"nullable": True}:
        return {"type": "null"}
    out = {}
    for key, value in node.items():
        if key == "$ref":
            out[key] = value.replace("#/components/schemas/", "#/definitions/")
        elif key in ("nullable", "format", "example", "description"):
            continue
        elif key == "properties":
            out[key] = {name: _convert(sub, strict) for name, sub in value.items()}
        else:
            out[key] = _convert(value, strict)
    if node.get("nullable") and "type" in node:
        out["type"] = [node["type"], "null"]
    if node.get("nullable") and "enum" in node:
        out["enum"] = [*node["enum"], None]
    if strict and "properties" in node and "additionalProperties" not in node:
        out["additionalProperties"] = False
    return out


@cache
def _validator(path: str, method: str, status: int, strict: bool):
    responses = SPEC["paths"][path][method.lower()]["responses"]
    response = responses.get(str(status)) or responses.get(f"{status // 100}XX") or responses["default"]
    schema = response["content"]["application/json"]["schema"]
    definitions = {name: _convert(s, strict) for name, s in SPEC["components"]["schemas"].items()}
    return jsonschema_rs.Draft7Validator({**_convert(schema, strict), "definitions": definitions})


def assert_matches_spec(path: str, method: str, response, strict: bool = True) -> dict:
    """`response` (an httpx response) is JSON that fits the spec's schema for `path` (the
    spec's template, e.g. `/snapshots/{snapshot_name}`), `method` and its status code (or
    the spec's `4XX` / `default` entry). Returns the parsed body."""
    body = response.json()
    errors = [str(e) for e in _validator(path, method, response.status_code, strict).iter_errors(body)]
    assert not errors, f"{method} {path} -> {response.status_code} does not fit the spec: {errors}\n{body}"
    return body
