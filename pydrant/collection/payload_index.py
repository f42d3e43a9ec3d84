"""The collection's payload index table: which payload fields are declared indexed, and how.

`PUT /collections/{name}/index` and `DELETE .../index/{field}` are logged operations like
any write (so they replay in order with the points), and their effect, the table, is kept
in `payload_index.json` beside the collection's config (written atomically when it
changes, so it outlives WAL truncation). Applying an operation twice gives the same table.

This module keeps the declarations and reports them in collection info (`payload_schema`)
with the number of points that have the field. Index structures that speed up filtering
are the subject of issue 4; until then every filter is evaluated by scanning payloads.
"""

from __future__ import annotations

from pathlib import Path

from pydrant.errors import BadInput
from pydrant.storage.files import read_json, write_json_atomic

INDEX_FILE = "payload_index.json"
PAYLOAD_TYPES = ("keyword", "integer", "float", "geo", "text", "bool", "datetime", "uuid")
INDEX_OPERATIONS = ("create_field_index", "delete_field_index")


def create_index_operation(field_name: str, field_schema) -> dict:
    """The logged operation for a create-index request, or BadInput."""
    if not field_name or not field_name.strip():
        raise BadInput("Validation error in JSON body: [field_name: must not be empty]")
    if field_schema is None:
        raise BadInput("Wrong input: field_schema is required to create a payload index")
    data_type = field_schema if isinstance(field_schema, str) else field_schema.get("type")
    if data_type not in PAYLOAD_TYPES:
        raise BadInput(f"Wrong input: unknown payload index type {data_type!r}")
    return {"type": "create_field_index", "field_name": field_name, "field_schema": field_schema}


def delete_index_operation(field_name: str) -> dict:
    return {"type": "delete_field_index", "field_name": field_name}


class PayloadIndexTable:
    """field name -> field_schema as the user gave it (a type name or an index params object)."""

    def __init__(self, path: Path, fields: dict):
        self.path = path
        self.fields = fields

    @classmethod
    def load(cls, collection_dir: Path) -> "PayloadIndexTable":
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

    def describe(self, count_with_field) -> dict:
        """`payload_schema` of collection info; `count_with_field(key)` counts points having it."""
        schema = {}
        for name, field_schema in sorted(self.fields.items()):
            if isinstance(field_schema, str):
                entry = {"data_type": field_schema}
            else:
                entry = {"data_type": field_schema["type"], "params": field_schema}
            entry["points"] = count_with_field(name)
            schema[name] = entry
        return schema
