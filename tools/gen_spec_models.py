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
- unknown fields are ignored, as serde ignores them: only the structs Qdrant declares
  `#[serde(deny_unknown_fields)]` forbid them (Filter, PayloadSelectorInclude/Exclude; the
  spec marks them `additionalProperties: false`, which the generator turns into
  extra='forbid'); every other model says extra='ignore' explicitly, so an ignored key
  is dropped by the model and never reaches the engine (validation.to_plain dumps the model);
- a union whose alternative is itself a union schema (QueryInterface = VectorInput | Query,
  Expression's Condition, VectorInput's ExtendedPointId...) is flattened into one anyOf:
  datamodel-code-generator otherwise types the field Any or drops the inner alternatives;
- Qdrant's `#[serde(alias = ...)]` fields, which the spec does not show, accept their alias
  too (SERDE_ALIASES: `with_vectors` for `with_vector`, `top` for `limit`, `vectors` for a
  point's `vector`...);
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

# Qdrant's `#[serde(alias = "...")]` on request fields (lib/collection/src/operations/types.rs,
# lib/api/src/rest/schema.rs): schema -> {field: alias}. The field's own name stays valid.
SERDE_ALIASES = {
    "SearchRequest": {"limit": "top", "with_vector": "with_vectors"},
    "SearchGroupsRequest": {"with_vector": "with_vectors"},
    "RecommendRequest": {"limit": "top", "with_vector": "with_vectors"},
    "RecommendGroupsRequest": {"with_vector": "with_vectors"},
    "DiscoverRequest": {"with_vector": "with_vectors"},
    "PointRequest": {"with_vector": "with_vectors"},
    "ScrollRequest": {"with_vector": "with_vectors"},
    "QueryRequest": {"with_vector": "with_vectors"},
    "WithLookup": {"with_vectors": "with_vector"},
    "PointStruct": {"vector": "vectors"},
    "PointVectors": {"vector": "vectors"},
}
ALIAS_KEY = "x-validation_alias"


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


def is_union(schema: dict) -> bool:
    """A schema that is only a union of alternatives (a serde untagged enum)."""
    return any(key in schema for key in ("anyOf", "oneOf")) and set(schema) <= {"anyOf", "oneOf", "description"}


def flatten_unions(schemas: dict) -> None:
    """Inline alternatives that are themselves union schemas, recursively, in place."""

    def alternatives(name: str, seen: tuple) -> list:
        out = []
        for alt in schemas[name].get("anyOf", schemas[name].get("oneOf", [])):
            ref = alt.get("$ref", "").rsplit("/", 1)[-1]
            if ref and ref not in seen and is_union(schemas[ref]):
                out.extend(alternatives(ref, seen + (ref,)))
            elif alt not in out:
                out.append(alt)
        return out

    for name in list(schemas):
        if is_union(schemas[name]):
            key = "anyOf" if "anyOf" in schemas[name] else "oneOf"
            schemas[name] = {key: alternatives(name, (name,)), **{k: v for k, v in schemas[name].items() if k == "description"}}


def mark_aliases(schemas: dict) -> None:
    for name, fields in SERDE_ALIASES.items():
        for field, alias in fields.items():
            schemas[name]["properties"][field][ALIAS_KEY] = alias


def _class_blocks(source: str):
    """(name, start, end) of every top-level class of the generated source."""
    starts = [i + 1 for i in range(len(source)) if source.startswith("\nclass ", i)]
    for k, start in enumerate(starts):
        end = starts[k + 1] if k + 1 < len(starts) else len(source)
        yield source[start + 6:source.index("(", start)], start, end


def post_process(source: str) -> str:
    """Explicit extra='ignore' on every model without a config of its own (the spec's
    additionalProperties false/true gave 'forbid'/'allow'), and AliasChoices(field, alias)
    for the serde aliases, so that errors still name the field."""
    pieces, last = [], 0
    for name, start, end in _class_blocks(source):
        block = source[start:end]
        header = block.index("\n") + 1
        if "(BaseModel):" in block[:header] and not block[header:].startswith("    model_config"):
            block = block[:header] + "    model_config = ConfigDict(\n        extra='ignore',\n    )\n" + block[header:]
        for field, alias in SERDE_ALIASES.get(name, {}).items():
            old = f"validation_alias='{alias}'"
            assert block.count(old) == 1, (name, field, alias)
            block = block.replace(old, f"validation_alias=AliasChoices('{field}', '{alias}')")
        pieces.append(source[last:start] + block)
        last = end
    source = "".join(pieces) + source[last:]
    return source.replace("from pydantic import (\n", "from pydantic import (\n    AliasChoices,\n", 1)


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
    flatten_unions(spec["components"]["schemas"])
    mark_aliases(spec["components"]["schemas"])
    with tempfile.TemporaryDirectory() as tmp:
        adjusted = Path(tmp) / "spec.json"
        adjusted.write_text(json.dumps(spec))
        subprocess.run([
            sys.executable, "-m", "datamodel_code_generator", "--input", str(adjusted), "--input-file-type", "openapi",
            "--output", str(out), "--output-model-type", "pydantic_v2.BaseModel",
            "--target-python-version", "3.11", "--disable-timestamp", "--collapse-root-models",
            "--strict-types", "str", "int", "float", "bool", "--formatters", "black",
            "--field-extra-keys", ALIAS_KEY, "--field-extra-keys-without-x-prefix", ALIAS_KEY,
            "--custom-file-header", f'"""Request models generated from {spec_path.name} by tools/gen_spec_models.py; do not edit."""',
        ], check=True)
    out.write_text(post_process(out.read_text()))
    append_union_aliases(spec, out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
