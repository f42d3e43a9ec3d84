"""The collection's payload index table: which payload fields are declared indexed, and how.

`PUT /collections/{name}/index` and `DELETE .../index/{field}` are logged operations like
any write (so they replay in order with the points), and their effect, the table, is kept
in `payload_index.json` beside the collection's config (written atomically when it
changes, so it outlives WAL truncation). Applying an operation twice gives the same table.

This module keeps the declarations; each segment keeps the index structures
(`segments/field_index.py`) and is told the table whenever it changes
(`AppendableSegment.set_payload_indexes`). Collection info reports every index with the
number of points it holds (`payload_schema`), summed over segments.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from pydrant.errors import BadInput
from pydrant.fsutil import read_json, write_json_atomic
from pydrant.issues import BOARD, UNINDEXED_FIELD, collection_issue_id
from pydrant.segments.field_index import make_index, schema_params, schema_type
from pydrant.segments.payload import parse_path
from pydrant.segments.text_analyzer import TextAnalyzer

INDEX_FILE = "payload_index.json"
INDEX_OPERATIONS = ("create_field_index", "delete_field_index")


def create_index_operation(field_name: str, field_schema) -> dict:
    """The logged operation for a create-index request, or BadInput."""
    if not field_name or not field_name.strip():
        raise BadInput("Validation error in JSON body: [field_name: must not be empty]")
    if field_schema is None:
        raise BadInput("Wrong input: field_schema is required to create a payload index")
    # BadInput for an unknown type, a bad path or bad tokenizer options, before anything is logged
    make_index(field_name, field_schema)
    return {"type": "create_field_index", "field_name": field_name, "field_schema": field_schema}


def delete_index_operation(field_name: str) -> dict:
    return {"type": "delete_field_index", "field_name": field_name}


class PayloadIndexTable:
    """field name -> field_schema as the user gave it (a type name or an index params object)."""

    def __init__(self, path: Path, fields: dict):
        self.path = path
        self.fields = fields
        self._analyzers: dict | None = None

    @classmethod
    def load(cls, collection_dir: Path) -> PayloadIndexTable:
        path = collection_dir / INDEX_FILE
        return cls(path, read_json(path)["fields"] if path.exists() else {})

    def apply(self, operation: dict) -> None:
        """Apply a logged index operation (blocking: writes the table file when it changes)."""
        fields = dict(self.fields)
        if operation["type"] == "create_field_index":
            fields[operation["field_name"]] = operation["field_schema"]
        else:
            fields.pop(operation["field_name"], None)
        if fields != self.fields:
            write_json_atomic(self.path, {"fields": fields})
            self.fields = fields
            self._analyzers = None
        if operation["type"] == "create_field_index":  # Qdrant's IndexCreatedEvent solves the issue
            BOARD.resolve(collection_issue_id(UNINDEXED_FIELD, self.path.parent.name, operation["field_name"]))

    def data_type(self, key: str) -> str | None:
        schema = self.fields.get(key)
        return None if schema is None else schema_type(schema)

    def text_analyzers(self) -> dict:
        """Parsed path -> TextAnalyzer of every full-text index: filters compile text
        conditions on these fields with the index's tokenizer."""
        if self._analyzers is None:
            self._analyzers = {
                parse_path(key): TextAnalyzer.from_params(schema_params(schema))
                for key, schema in self.fields.items()
                if schema_type(schema) == "text"
            }
        return self._analyzers

    def missing_index(self, filter_: dict | None) -> tuple[str, list[str]] | None:
        """(key, index types that would serve, sorted) of the first field condition in
        `filter_` whose key has no index able to answer it; None when every condition is
        served (strict mode's `unindexed_filtering_*`). As Qdrant's unindexed-field check:
        a condition needs one of the index capabilities it can use, and an index has the
        capabilities of its type and parameters (an integer index without `lookup` cannot
        answer a match, without `range` a range)."""
        return self.first_unserved(filter_requirements(filter_))

    def first_unserved(self, requirements: list[tuple[str, frozenset]]) -> tuple[str, list[str]] | None:
        """(key, index types that would serve, sorted) of the first requirement no index
        of this table serves (`filter_requirements`, `formula_requirements`)."""
        for key, needs in requirements:
            if not needs & index_capabilities(self.fields.get(key)):
                return key, sorted({_CAPABILITY_TYPE[c] for c in needs})
        return None

    def describe(self, points_per_field: dict) -> dict:
        """`payload_schema` of collection info; `points_per_field[key]` counts indexed points."""
        schema = {}
        for name, field_schema in sorted(self.fields.items()):
            if isinstance(field_schema, str):
                entry = {"data_type": field_schema}
            else:
                entry = {"data_type": field_schema["type"], "params": field_schema}
            entry["points"] = points_per_field.get(name, 0)
            schema[name] = entry
        return schema


# Index capabilities (Qdrant's FieldIndexType) and the index type each belongs to.
_CAPABILITY_TYPE = {
    "int_match": "integer",
    "int_range": "integer",
    "float_range": "float",
    "keyword_match": "keyword",
    "uuid_match": "uuid",
    "datetime_range": "datetime",
    "text": "text",
    "text_phrase": "text",  # a text index with `phrase_matching`
    "bool_match": "bool",
    "geo": "geo",
}
_ANY_INDEX = frozenset(_CAPABILITY_TYPE)


def capability_types(needs: frozenset) -> set[str]:
    """The index types (field_schema names) that have one of these capabilities."""
    return {_CAPABILITY_TYPE[c] for c in needs}


def index_capabilities(field_schema) -> frozenset:
    """What an index of this schema can answer (nothing without an index)."""
    if field_schema is None:
        return frozenset()
    kind = schema_type(field_schema)
    if kind == "integer":
        params = schema_params(field_schema)
        found = set()
        if params.get("lookup", True) is not False:
            found.add("int_match")
        if params.get("range", True) is not False:
            found.add("int_range")
        return frozenset(found)
    if kind == "text":
        phrase = schema_params(field_schema).get("phrase_matching") is True
        return frozenset({"text", "text_phrase"} if phrase else {"text"})
    return frozenset(
        {
            "keyword": {"keyword_match"},
            "float": {"float_range"},
            "bool": {"bool_match"},
            "datetime": {"datetime_range"},
            "uuid": {"uuid_match"},
            "geo": {"geo"},
        }.get(kind, set())
    )


def filter_requirements(filter_) -> list[tuple[str, frozenset]]:
    """(key, index capabilities that can answer it) for every payload condition of a
    filter; nested keys come out as `parent[].child`. `has_id` and `has_vector` need no
    index; `is_empty`, `is_null` and `values_count` are answered by any index."""
    found: list[tuple[str, frozenset]] = []

    def walk(node, prefix: str) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item, prefix)
            return
        if not isinstance(node, dict):
            return
        if isinstance(node.get("key"), str):
            found.append((prefix + node["key"], _needs(node)))
        for name in ("is_empty", "is_null"):
            if isinstance(node.get(name), dict) and isinstance(node[name].get("key"), str):
                found.append((prefix + node[name]["key"], _ANY_INDEX))
        nested = node.get("nested")
        if isinstance(nested, dict) and isinstance(nested.get("key"), str):
            walk(nested.get("filter"), prefix + nested["key"].removesuffix("[]") + "[].")
        for clause in ("must", "should", "must_not"):
            walk(node.get(clause), prefix)
        if isinstance(node.get("min_should"), dict):
            walk(node["min_should"].get("conditions"), prefix)

    walk(filter_, "")
    return found


def is_uuid(value) -> bool:
    if not isinstance(value, str):
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _value_needs(values: list) -> set:
    """A match on these values: integers need an integer lookup, booleans a bool index,
    strings a keyword index, or a uuid one when they are UUIDs."""
    if values and all(type(v) is bool for v in values):
        return {"bool_match"}
    if values and all(type(v) is int for v in values):
        return {"int_match"}
    needs = {"keyword_match"}
    if values and all(is_uuid(v) for v in values):
        needs.add("uuid_match")
    return needs


def _needs(condition: dict) -> frozenset:
    needs: set = set()
    match = condition.get("match")
    if isinstance(match, dict):
        if match.get("phrase") is not None:
            needs.add("text_phrase")
        elif any(match.get(k) is not None for k in ("text", "text_any")):
            needs.add("text")
        elif "value" in match:
            needs |= _value_needs([match["value"]])
        else:
            values = match.get("any") if "any" in match else match.get("except")
            needs |= _value_needs(values if isinstance(values, list) else [])
    rng = condition.get("range")
    if isinstance(rng, dict):
        if any(isinstance(v, str) for v in rng.values()):
            needs.add("datetime_range")
        else:
            needs |= {"float_range", "int_range"}
    if any(condition.get(k) is not None for k in ("geo_bounding_box", "geo_radius", "geo_polygon")):
        needs.add("geo")
    if any(condition.get(k) is not None for k in ("values_count", "is_empty", "is_null")) or not needs:
        needs |= _ANY_INDEX
    return frozenset(needs)


_FORMULA_UNARY = ("neg", "abs", "sqrt", "exp", "log10", "ln")
_FORMULA_DECAYS = ("lin_decay", "exp_decay", "gauss_decay")


def formula_requirements(expression) -> list[tuple[str, frozenset]]:
    """(key, index capabilities that can serve it) for the payload fields a formula
    reads: a variable needs a numeric index, `geo_distance.to` a geo index, `datetime_key`
    a datetime index, and a condition what it would need in a filter."""
    found: list[tuple[str, frozenset]] = []

    def walk(node) -> None:
        if isinstance(node, str):
            if not node.startswith("$score"):
                found.append((node, frozenset({"int_match", "int_range", "float_range"})))
            return
        if isinstance(node, list):
            for item in node:
                walk(item)
            return
        if not isinstance(node, dict):
            return
        if "geo_distance" in node:
            to = (node["geo_distance"] or {}).get("to")
            if isinstance(to, str):
                found.append((to, frozenset({"geo"})))
        elif isinstance(node.get("datetime_key"), str):
            found.append((node["datetime_key"], frozenset({"datetime_range"})))
        elif "mult" in node or "sum" in node:
            walk(node.get("mult", node.get("sum")))
        elif "div" in node:
            walk([(node["div"] or {}).get("left"), (node["div"] or {}).get("right")])
        elif "pow" in node:
            walk([(node["pow"] or {}).get("base"), (node["pow"] or {}).get("exponent")])
        elif any(k in node for k in _FORMULA_UNARY):
            walk(next(node[k] for k in _FORMULA_UNARY if k in node))
        elif any(k in node for k in _FORMULA_DECAYS):
            params = next(node[k] for k in _FORMULA_DECAYS if k in node) or {}
            walk([params.get("x"), params.get("target")])
        elif "datetime" not in node:  # a condition
            found.extend(filter_requirements({"must": [node]}))

    walk(expression)
    return found
