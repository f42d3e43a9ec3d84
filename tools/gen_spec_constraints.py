"""Extract numeric and length bounds from the Qdrant OpenAPI spec into pydrant/http/constraints.json.

Usage: python tools/gen_spec_constraints.py [SPEC_PATH] [--output PATH]

SPEC_PATH defaults to the vendored spec/qdrant-openapi-v1.15.5.json, the output to
pydrant/http/constraints.json.

The request models (pydrant/http/spec_models.py, generated from the same spec by
tools/gen_spec_models.py) check types and forbid unknown fields, which Qdrant's serde
refuses while deserializing (400). The spec's `minimum`/`maximum`/`minLength`... bounds are
left out of them on purpose: Qdrant checks those after deserializing, with 422 "Validation
error in JSON body". The server checks validated request models against this table
(pydrant/http/validation.py). The table is committed so that the server and its tests never
need the spec file at run time; tests/test_generated.py checks it is current.
"""

import argparse
import json
from pathlib import Path

from specfile import SPEC

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", nargs="?", type=Path, default=SPEC, help="OpenAPI JSON of Qdrant")
    parser.add_argument("--output", type=Path, default=REPO / "pydrant" / "http" / "constraints.json")
    args = parser.parse_args(argv)
    table = extract(json.loads(args.spec.read_text()))
    out = args.output
    out.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n")
    print(f"wrote {out} ({len(table)} schemas with bounds)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
