"""The HTTP layer's own rule (docs/search.md "The engine boundary"): each API area module
(one blueprint: points, retrieve, search, ...) imports only the shared HTTP modules, never
another area, and the shared modules import no area. What areas share — request reading,
rendering engine results, the envelope — lives in the shared modules; `app.py` assembles
the areas and `server.py` serves the app.

The check walks the AST of every `pydrant/http/*.py`: `import` and `from ... import` of
`pydrant.http` modules anywhere in the file (module level or inside functions), relative
imports resolved."""

from __future__ import annotations

import ast
from pathlib import Path

import pydrant.http

HTTP_DIR = Path(pydrant.http.__file__).parent

# Modules every area may import.
SHARED = {
    "__init__",
    "access_log",
    "access_rules",
    "auth",
    "bulk_json",
    "context",
    "envelope",
    "errors",
    "metrics",
    "render",
    "search_common",
    "spec_models",
    "validation",
}
# Modules that put the areas together: they may import every area.
ASSEMBLY = {"app", "server"}


def _modules() -> dict[str, Path]:
    return {path.stem: path for path in sorted(HTTP_DIR.glob("*.py"))}


def _is_area(path: Path) -> bool:
    """An area module defines a Quart blueprint at module level."""
    tree = ast.parse(path.read_text(), str(path))
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            func = node.value.func
            if isinstance(func, ast.Name) and func.id == "Blueprint":
                return True
    return False


def _http_imports(path: Path) -> list[tuple[int, str]]:
    """(line, module name under pydrant.http) of every import of an HTTP module."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("pydrant.http."):
                    found.append((node.lineno, alias.name.split(".")[2]))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = "pydrant.http" if node.level == 1 else "pydrant"
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            if module == "pydrant.http":  # from pydrant.http import spec_models, ...
                found.extend((node.lineno, alias.name) for alias in node.names)
            elif module.startswith("pydrant.http."):
                found.append((node.lineno, module.split(".")[2]))
    return found


def test_every_http_module_is_an_area_shared_or_assembly():
    modules = _modules()
    unclassified = [name for name, path in modules.items() if name not in SHARED | ASSEMBLY and not _is_area(path)]
    assert not unclassified, f"give these a place in SHARED or ASSEMBLY, or a blueprint: {unclassified}"
    assert not [name for name in SHARED if name in modules and _is_area(modules[name])], "a shared module is an area"


def test_areas_import_only_shared_modules_and_shared_modules_no_area():
    modules = _modules()
    violations = []
    for name, path in modules.items():
        if name in ASSEMBLY:
            continue
        for line, imported in _http_imports(path):
            if imported != name and imported not in SHARED:
                violations.append(f"pydrant/http/{name}.py:{line} imports pydrant.http.{imported}")
    assert not violations, "HTTP areas must not import each other:\n" + "\n".join(violations)


def test_the_rule_sees_every_import_form(tmp_path):
    source = tmp_path / "area.py"
    source.write_text(
        "from pydrant.http.search import x\n"
        "from pydrant.http import retrieve, envelope\n"
        "from . import facet\n"
        "from .points import y\n"
        "import pydrant.http.query\n"
        "def f():\n"
        "    from pydrant.http.discover import z\n"
    )
    imported = [m for _, m in _http_imports(source)]
    assert sorted(imported) == ["discover", "envelope", "facet", "points", "query", "retrieve", "search"]
    areas = [name for name, path in _modules().items() if name not in SHARED | ASSEMBLY and _is_area(path)]
    assert {"points", "retrieve", "search", "recommend", "discover", "query", "facet"} <= set(areas)
