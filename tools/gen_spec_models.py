"""Generate pydrant/http/spec_models.py, the request models, from Qdrant's OpenAPI spec.

Usage: pip install -e '.[dev]'   (datamodel-code-generator and the black it formats with)
       python tools/gen_spec_models.py [SPEC_PATH] [--output PATH]

SPEC_PATH defaults to the vendored spec/qdrant-openapi-v1.15.5.json, the output to
pydrant/http/spec_models.py; tests/test_generated.py checks the committed file is current.

Why our own models: qdrant-client 1.15.1's generated models lag the v1.15.5 spec (no
collection `metadata`, `update_filter`, `copy_vectors`, `wal_retain_closed`, `text_any`,
`rrf`...), and every request the spec allows must be accepted. The spec is adjusted first
so that the models check what Qdrant's serde checks while deserializing, and nothing more:

- numeric and length bounds are removed: Qdrant checks them after deserializing (422, not
  400); pydrant checks them from constraints.json (tools/gen_spec_constraints.py);
- `{"nullable": true}` alternatives in anyOf become plain nullability (else they turn into Any);
- `uuid` and `date-time` strings stay strings: the engine parses them with Qdrant's rules
  and error messages (point ids; datetime ranges accept RFC 3339 and several looser forms);
- objects with properties forbid unknown fields, as qdrant-client's models do;
- int, float, str and bool are strict, as in qdrant-client: "5" is not a number, 1 is not a bool.

The output is committed; the server never needs the spec or the generator at run time.
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from specfile import SPEC

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "pydrant" / "http" / "spec_models.py"
BOUND_KEYS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength", "minItems", "maxItems")
LOOSE_FORMATS = ("uuid", "date-time", "partial-date-time")


def adjust(node) -> None:
    """Rewrite a spec subtree in place as the module docstring describes."""
    if isinstance(node, list):
        for item in node:
            adjust(item)
        return
    if not isinstance(node, dict):
        return
    for key in BOUND_KEYS:
        node.pop(key, None)
    if node.get("format") in LOOSE_FORMATS:
        node.pop("format")
    if "properties" in node and "additionalProperties" not in node:
        node["additionalProperties"] = False
    alternatives = node.get("anyOf")
    if isinstance(alternatives, list):
        kept = [alt for alt in alternatives if alt != {"nullable": True}]
        if len(kept) != len(alternatives):
            node["nullable"] = True
        if len(kept) == 1:
            node.pop("anyOf")
            node["allOf"] = node.get("allOf", []) + kept
        else:
            node["anyOf"] = kept
    for value in node.values():
        adjust(value)


def append_union_aliases(spec: dict, out: Path) -> None:
    """--collapse-root-models inlines union schemas (PointsSelector, Query, ...); name them
    again as type aliases so that handlers can validate a body against a union."""
    source = out.read_text()
    lines = ["", "", "# Union schemas of the spec, inlined above by --collapse-root-models."]
    for name, schema in spec["components"]["schemas"].items():
        if f"\nclass {name}(" in source:
            continue
        refs = [alt.get("$ref", "") for alt in schema.get("anyOf", schema.get("oneOf", []))]
        names = [ref.rsplit("/", 1)[-1] for ref in refs]
        if names and all(names) and all(f"\nclass {n}(" in source for n in names):
            lines.append(f"{name} = {' | '.join(names)}")
    out.write_text(source.rstrip("\n") + "\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", nargs="?", type=Path, default=SPEC, help="OpenAPI JSON of Qdrant")
    parser.add_argument("--output", type=Path, default=OUT)
    args = parser.parse_args(argv)
    spec_path, out = args.spec, args.output
    spec = json.loads(spec_path.read_text())
    adjust(spec["components"])
    with tempfile.TemporaryDirectory() as tmp:
        adjusted = Path(tmp) / "spec.json"
        adjusted.write_text(json.dumps(spec))
        subprocess.run([
            sys.executable, "-m", "datamodel_code_generator", "--input", str(adjusted), "--input-file-type", "openapi",
            "--output", str(out), "--output-model-type", "pydantic_v2.BaseModel",
            "--target-python-version", "3.11", "--disable-timestamp", "--collapse-root-models",
            "--strict-types", "str", "int", "float", "bool", "--formatters", "black",
            "--custom-file-header", f'"""Request models generated from {spec_path.name} by tools/gen_spec_models.py; do not edit."""',
        ], check=True)
    append_union_aliases(spec, out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
