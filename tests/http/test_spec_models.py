"""The generated request models accept every field the spec allows and keep it.

For every object schema reachable from a request body of the v1.15.5 spec, a body holding
every property (nested objects filled the same way, to a bounded depth) is validated by the
generated model and dumped back as the engine sees it (`to_plain`): every key sent must
still be there. A union alternative is an object schema of its own, so each is checked
directly. Then the unknown-field rules: ignored (dropped before the engine) everywhere but
in the structs Qdrant declares `deny_unknown_fields` (Filter, the payload selectors).
"""

import json
from pathlib import Path

import pytest

from pydrant.errors import BadInput
from pydrant.http import spec_models
from pydrant.http.validation import deserialize, to_plain

SPEC = json.loads((Path(__file__).resolve().parents[2] / "spec" / "qdrant-openapi-v1.15.5.json").read_text())
SCHEMAS = SPEC["components"]["schemas"]
MAX_DEPTH = 6


def _ref_name(node: dict) -> str | None:
    ref = node.get("$ref")
    return ref.rsplit("/", 1)[-1] if ref else None


def _refs_in(node, out: set) -> None:
    if isinstance(node, dict):
        name = _ref_name(node)
        if name and name not in out:
            out.add(name)
            _refs_in(SCHEMAS[name], out)
        for value in node.values():
            _refs_in(value, out)
    elif isinstance(node, list):
        for value in node:
            _refs_in(value, out)


def request_schemas() -> list[str]:
    names: set = set()
    for operations in SPEC["paths"].values():
        for operation in operations.values():
            if isinstance(operation, dict) and "requestBody" in operation:
                _refs_in(operation["requestBody"], names)
    return sorted(n for n in names if "properties" in SCHEMAS[n])


def _alternatives(node: dict) -> list:
    return [a for a in node.get("anyOf", node.get("oneOf", [])) if a != {"nullable": True}]


def sample(node: dict, depth: int):
    """A value of `node` (a schema), every property filled while depth allows."""
    name = _ref_name(node)
    if name == "FieldCondition" and depth >= MAX_DEPTH:  # a key alone is a 422 (Qdrant's validation)
        return {"key": "a", "is_empty": True}
    if name:
        return sample(SCHEMAS[name], depth)
    if "enum" in node:
        return node["enum"][0]
    alternatives = _alternatives(node) or node.get("allOf", [])
    if alternatives:
        if depth >= MAX_DEPTH:  # the least recursive alternative: a scalar or a leaf schema
            alternatives = sorted(alternatives, key=lambda a: "$ref" in a)
        return sample(alternatives[0], depth)
    kind = node.get("type")
    if kind == "object" or "properties" in node:
        required = set(node.get("required", []))
        props = node.get("properties", {})
        body = {k: sample(v, depth + 1) for k, v in props.items() if k in required or depth < MAX_DEPTH}
        extra = node.get("additionalProperties")
        if not props and isinstance(extra, dict):
            body["k"] = sample(extra, depth + 1)
        return body
    if kind == "array":
        return [sample(node.get("items", {}), depth + 1)] * max(1, node.get("minItems", 1))
    if kind == "string":
        fmt = node.get("format")
        if fmt == "uuid":
            return "550e8400-e29b-41d4-a716-446655440000"
        if fmt == "uri":
            return "http://localhost/snapshot"
        if fmt in ("date-time", "partial-date-time"):
            return "2020-01-01T00:00:00Z"
        return "a"
    if kind == "integer":
        return max(node.get("minimum", 1), 1)
    if kind == "number":
        return node.get("minimum", 0.5) if "maximum" not in node else node["maximum"]
    if kind == "boolean":
        return True
    return "a"


def assert_kept(sent, dumped, path="") -> None:
    if isinstance(sent, dict):
        assert isinstance(dumped, dict), f"{path}: {dumped!r}"
        for key, value in sent.items():
            assert key in dumped, f"{path}.{key} was dropped"
            assert_kept(value, dumped[key], f"{path}.{key}")
    elif isinstance(sent, list):
        assert isinstance(dumped, list) and len(dumped) == len(sent), f"{path}: {dumped!r}"
        for i, (a, b) in enumerate(zip(sent, dumped)):
            assert_kept(a, b, f"{path}[{i}]")


@pytest.mark.parametrize("name", request_schemas())
def test_every_property_is_accepted_and_kept(name):
    model = getattr(spec_models, name)
    body = sample(SCHEMAS[name], 0)
    assert set(body) == set(SCHEMAS[name]["properties"])
    assert_kept(body, to_plain(deserialize(model, body)), name)


def test_the_walk_covers_the_request_schemas():
    names = request_schemas()
    assert len(names) > 100
    for name in ("CreateCollection", "QueryRequest", "RecommendGroupsRequest", "WithLookup", "FormulaQuery", "Filter"):
        assert name in names


DENY_UNKNOWN_FIELDS = {"Filter", "PayloadSelectorInclude", "PayloadSelectorExclude"}


@pytest.mark.parametrize("name", request_schemas())
def test_unknown_fields_are_ignored_unless_qdrant_denies_them(name):
    model = getattr(spec_models, name)
    body = dict(sample(SCHEMAS[name], MAX_DEPTH - 1), unknown_field_xyz=1)
    if name in DENY_UNKNOWN_FIELDS:
        with pytest.raises(BadInput, match="unknown_field_xyz"):
            deserialize(model, body)
    else:
        assert "unknown_field_xyz" not in to_plain(deserialize(model, body))


def test_serde_aliases_are_accepted():
    plain = to_plain(deserialize(spec_models.SearchRequest, {"vector": [1.0], "top": 3, "with_vectors": True}))
    assert plain["limit"] == 3 and plain["with_vector"] is True and "top" not in plain
    plain = to_plain(deserialize(spec_models.WithLookup, {"collection": "c", "with_vector": True}))
    assert plain["with_vectors"] is True
    plain = to_plain(deserialize(spec_models.QueryRequest, {"with_vectors": ["a"]}))
    assert plain["with_vector"] == ["a"]
    plain = to_plain(deserialize(spec_models.PointStruct, {"id": 1, "vectors": [1.0]}))
    assert plain["vector"] == [1.0]
    with pytest.raises(BadInput, match="limit"):  # a missing field is named by its own name
        deserialize(spec_models.SearchRequest, {"vector": [1.0]})


def test_nested_unions_are_typed_not_any():
    # QueryInterface = VectorInput | Query, and Expression includes Condition
    query = {"query": {"formula": {"sum": ["$score", {"key": "a", "match": {"value": 1}}]}, "extra": 1}}
    plain = to_plain(deserialize(spec_models.QueryRequest, query))
    assert plain["query"]["formula"]["sum"][1] == {"key": "a", "match": {"value": 1}}
    assert "extra" not in plain["query"]
    with pytest.raises(BadInput):
        deserialize(spec_models.QueryRequest, {"query": {"nearest": {"no_such": 1}}})
    plain = to_plain(deserialize(spec_models.QueryRequest, {"query": {"nearest": [1.0], "mmr": {"diversity": 0.5}, "x": 1}}))
    assert plain["query"] == {"nearest": [1.0], "mmr": {"diversity": 0.5}}


def test_extra_keys_in_a_condition_are_ignored_but_not_in_a_filter():
    plain = to_plain(deserialize(spec_models.Filter, {"must": [{"key": "a", "match": {"value": 1, "x": 1}, "y": 2}]}))
    assert plain == {"must": [{"key": "a", "match": {"value": 1}}]}
    with pytest.raises(BadInput, match="Extra inputs"):
        deserialize(spec_models.Filter, {"must": [], "shuld": []})
    # a condition object matching no variant: Filter denies its unknown keys, so no variant fits
    with pytest.raises(BadInput):
        deserialize(spec_models.Filter, {"must": [{"kye": "a", "match": {"value": 1}}]})
