"""Extract numeric and length bounds from the Qdrant OpenAPI spec into pydrant/http/constraints.json.

Usage: python tools/gen_spec_constraints.py [SPEC_PATH]

qdrant-client's generated pydantic models check types and forbid unknown fields but carry
none of the spec's `minimum`/`maximum`/`minLength` bounds, which Qdrant enforces with 422
"Validation error in JSON body". The server checks validated request models against this
table (pydrant/http/validation.py). The table is committed so that the server and its tests
never need the spec file at run time; re-run this script when the spec changes.
"""

import json
import sys
from pathlib import Path

BOUND_KEYS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength", "minItems", "maxItems")
REPO = Path(__file__).resolve().parent.parent


def property_bounds(prop: dict) -> dict:
    """Bounds of one property, looking through `anyOf`/`allOf` wrappers and array items."""
    bounds = {k: prop[k] for k in BOUND_KEYS if k in prop}
    # Unsigned integers: Qdrant's serde refuses a negative value while deserializing (400),
    # before any range validation (422), so the table records the format separately.
    formats = [prop.get("format")]
    for wrapper in ("anyOf", "allOf", "oneOf"):
        for alt in prop.get(wrapper, []):
            bounds.update({k: alt[k] for k in BOUND_KEYS if k in alt})
            formats.append(alt.get("format"))
    unsigned = next((f for f in formats if isinstance(f, str) and f.startswith("uint")), None)
    if unsigned:
        bounds["unsigned"] = "u64" if unsigned in ("uint", "uint64") else unsigned.replace("uint", "u")
    items = prop.get("items")
    if isinstance(items, dict):
        item_bounds = {k: items[k] for k in BOUND_KEYS if k in items}
        if item_bounds:
            bounds["items"] = item_bounds
    return bounds


def extract(spec: dict) -> dict:
    table = {}
    for name, schema in spec["components"]["schemas"].items():
        fields = {}
        for field, prop in schema.get("properties", {}).items():
            bounds = property_bounds(prop)
            if bounds:
                fields[field] = bounds
        if fields:
            table[name] = fields
    return table


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    spec_path = Path(argv[0]) if argv else REPO.parent / "shared" / "qdrant-openapi-v1.15.5.json"
    table = extract(json.loads(spec_path.read_text()))
    out = REPO / "pydrant" / "http" / "constraints.json"
    out.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n")
    print(f"wrote {out} ({len(table)} schemas with bounds)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
