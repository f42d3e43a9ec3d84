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

from pathlib import Path

from pydrant.errors import BadInput
from pydrant.fsutil import read_json, write_json_atomic
from pydrant.segments.field_index import INDEX_CLASSES, make_index, schema_params, schema_type
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
        """(key, index types that would serve) of the first field condition in `filter_`
        whose key has no suitable index; None when every condition is indexed (strict mode)."""
        for key, types in filter_requirements(filter_):
            if schema_type(self.fields.get(key, "")) not in types:
                return key, types
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


_ALL_TYPES = list(INDEX_CLASSES)


def filter_requirements(filter_) -> list[tuple[str, list[str]]]:
    """(key, index types that can answer it) for every field condition of a filter; nested
    keys come out as `parent[].child`."""
    found: list[tuple[str, list[str]]] = []

    def walk(node, prefix: str) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item, prefix)
            return
        if not isinstance(node, dict):
            return
        if isinstance(node.get("key"), str):
            found.append((prefix + node["key"], _types_for(node)))
        for name in ("is_empty", "is_null"):
            if isinstance(node.get(name), dict) and isinstance(node[name].get("key"), str):
                found.append((prefix + node[name]["key"], _ALL_TYPES))
        nested = node.get("nested")
        if isinstance(nested, dict) and isinstance(nested.get("key"), str):
            walk(nested.get("filter"), prefix + nested["key"].removesuffix("[]") + "[].")
        for clause in ("must", "should", "must_not"):
            walk(node.get(clause), prefix)
        if isinstance(node.get("min_should"), dict):
            walk(node["min_should"].get("conditions"), prefix)

    walk(filter_, "")
    return found


def _types_for(condition: dict) -> list[str]:
    match = condition.get("match")
    if isinstance(match, dict):
        if any(match.get(k) is not None for k in ("text", "text_any", "phrase")):
            return ["text"]
        sample = match.get("value")
        for k in ("any", "except"):
            if isinstance(match.get(k), list) and match[k]:
                sample = match[k][0]
        if type(sample) is bool:
            return ["bool"]
        if type(sample) is int:
            return ["integer"]
        return ["keyword", "uuid"]
    rng = condition.get("range")
    if isinstance(rng, dict):
        if any(isinstance(v, str) for v in rng.values()):
            return ["datetime"]
        return ["integer", "float"]
    if any(condition.get(k) is not None for k in ("geo_bounding_box", "geo_radius", "geo_polygon")):
        return ["geo"]
    return _ALL_TYPES
