"""Where the generators find Qdrant's OpenAPI spec: the copy vendored in spec/, so that they
run from a plain clone (tools/gen_spec_models.py, tools/gen_spec_constraints.py,
tools/api_coverage.py)."""

from pathlib import Path

SPEC = Path(__file__).resolve().parent.parent / "spec" / "qdrant-openapi-v1.15.5.json"
