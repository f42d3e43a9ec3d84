"""The package's dependency rule (DESIGN.md §1, docs/architecture.md "Layers"):

    cli -> http -> storage -> collection -> {optimizer, segments, wal} -> ground floor
    optimizer -> segments

A module may import its own layer and any layer below it, never one above it, nor a
sibling it has no arrow to (`segments` and `wal` know nothing of each other; `optimizer`
knows no `wal`). The ground floor is `pydrant/__init__.py`, `config.py`, `errors.py`,
`issues.py` and `fsutil.py`; it imports nothing of the package but itself.

The check walks the AST of every `pydrant/**/*.py`: `import` and `from ... import` of
`pydrant` modules anywhere in the file (module level, inside functions, under
`if TYPE_CHECKING:`), relative imports resolved against the file's package.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import pydrant

PACKAGE_DIR = Path(pydrant.__file__).parent
REPO_DIR = PACKAGE_DIR.parent

# The arrows of the rule: each layer and the layers it may import directly. What a layer
# may import is the transitive closure of these (http may import segments, say).
ARROWS: dict[str, set[str]] = {
    "ground": set(),
    "wal": {"ground"},
    "segments": {"ground"},
    "optimizer": {"segments", "ground"},
    "collection": {"optimizer", "segments", "wal", "ground"},
    "storage": {"collection"},
    "http": {"storage"},
    "cli": {"http"},
}

# Subpackages: every module under pydrant/<name>/ belongs to that layer.
SUBPACKAGE_LAYER = {
    "wal": "wal",
    "segments": "segments",
    "optimizer": "optimizer",
    "collection": "collection",
    "storage": "storage",
    "http": "http",
}
# Modules directly under pydrant/. A new one must be given a layer here.
TOP_MODULE_LAYER = {
    "__init__": "ground",
    "config": "ground",
    "errors": "ground",
    "issues": "ground",
    "fsutil": "ground",
    "cli": "cli",
    "snapshot_tools": "cli",  # `pydrant snapshot inspect|verify|restore`, run by cli.py
    "fdlimit": "cli",  # the entry point's process setup (open-files limit); only cli.py uses it
}

# Known violations not fixed yet: (importing file, imported module) -> why, and which issue
# removes it. Keep it empty; an entry that no longer matches a violation fails the test.
ALLOWED: dict[tuple[str, str], str] = {}


def _closure(arrows: dict[str, set[str]]) -> dict[str, set[str]]:
    reach: dict[str, set[str]] = {}
    for layer in arrows:
        seen: set[str] = set()
        todo = [layer]
        while todo:
            for below in arrows[todo.pop()]:
                if below not in seen:
                    seen.add(below)
                    todo.append(below)
        reach[layer] = seen | {layer}
    return reach


MAY_IMPORT = _closure(ARROWS)


def layer_of(module: str) -> str | None:
    """The layer of a dotted `pydrant...` module name, None when it has none assigned."""
    parts = module.split(".")
    assert parts[0] == "pydrant", module
    if len(parts) == 1:
        return TOP_MODULE_LAYER["__init__"]
    if parts[1] in SUBPACKAGE_LAYER:
        return SUBPACKAGE_LAYER[parts[1]]
    return TOP_MODULE_LAYER.get(parts[1])


def module_name(relpath: str) -> str:
    """`pydrant/segments/ids.py` -> `pydrant.segments.ids`; a package's `__init__.py` -> the package."""
    parts = relpath[: -len(".py")].split("/")
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def _is_module(dotted: str, exists) -> bool:
    rel = dotted.replace(".", "/")
    return exists(rel + ".py") or exists(rel + "/__init__.py")


def imports_of(relpath: str, source: str, exists) -> list[tuple[int, str, str]]:
    """(line, imported pydrant module, statement text) for every import in `source`.
    `from a.b import c` names `a.b.c` when that is a module (`exists(relpath)` says), else `a.b`."""
    tree = ast.parse(source, filename=relpath)
    package = module_name(relpath)
    if not relpath.endswith("__init__.py"):
        package = package.rpartition(".")[0]
    found: dict[tuple[int, str], str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "pydrant" or alias.name.startswith("pydrant."):
                    found[(node.lineno, alias.name)] = ast.unparse(node)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if base != "pydrant" and not base.startswith("pydrant."):
                continue
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                target = candidate if _is_module(candidate, exists) else base
                found[(node.lineno, target)] = ast.unparse(node)
    return [(line, target, statement) for (line, target), statement in sorted(found.items())]


def violations(sources: dict[str, str], exists) -> list[tuple[str, str, str]]:
    """(importing file, imported module, message) for every import that breaks the rule,
    and for every module that has no layer. `sources`: repo-relative path -> text."""
    found = []
    for relpath, source in sorted(sources.items()):
        own = layer_of(module_name(relpath))
        if own is None:
            found.append((relpath, "", f"{relpath}: module has no layer: add it to TOP_MODULE_LAYER in tests/test_layers.py"))
            continue
        for line, target, statement in imports_of(relpath, source, exists):
            theirs = layer_of(target)
            if theirs is None:
                found.append((relpath, target, f"{relpath}:{line}: `{statement}`: {target} has no layer"))
            elif theirs not in MAY_IMPORT[own]:
                allowed = ", ".join(sorted(MAY_IMPORT[own]))
                found.append(
                    (
                        relpath,
                        target,
                        f"{relpath}:{line}: `{statement}`: the {own} layer imports {target} "
                        f"({theirs} layer); {own} may import only: {allowed}",
                    )
                )
    return found


def _package_sources() -> dict[str, str]:
    return {
        path.relative_to(REPO_DIR).as_posix(): path.read_text(encoding="utf-8")
        for path in sorted(PACKAGE_DIR.rglob("*.py"))
    }


def _exists(relpath: str) -> bool:
    return (REPO_DIR / relpath).is_file()


def test_no_module_imports_a_layer_above_it():
    found = violations(_package_sources(), _exists)
    unexpected = [message for path, target, message in found if (path, target) not in ALLOWED]
    assert not unexpected, "dependency rule broken (docs/architecture.md, Layers):\n" + "\n".join(unexpected)
    stale = sorted(set(ALLOWED) - {(path, target) for path, target, _ in found})
    assert not stale, f"ALLOWED entries that no longer match a violation, remove them: {stale}"


def test_every_layer_is_a_known_name():
    assert set(SUBPACKAGE_LAYER.values()) | set(TOP_MODULE_LAYER.values()) == set(ARROWS)
    for below in ARROWS.values():
        assert below <= set(ARROWS)
    # No cycle: a layer never reaches itself through its arrows.
    for layer, below in ARROWS.items():
        assert not any(layer in MAY_IMPORT[b] for b in below), f"the arrows of {layer} lead back to it"


def test_every_subpackage_has_a_layer():
    for path in PACKAGE_DIR.iterdir():
        if path.is_dir() and (path / "__init__.py").exists():
            assert path.name in SUBPACKAGE_LAYER, f"pydrant/{path.name}/ has no layer in tests/test_layers.py"


# -- the check catches what it should (fake modules, not the package) ----------------------

FAKE_TREE = {
    "pydrant/__init__.py",
    "pydrant/errors.py",
    "pydrant/fsutil.py",
    "pydrant/collection/__init__.py",
    "pydrant/collection/config.py",
    "pydrant/segments/__init__.py",
    "pydrant/segments/ids.py",
    "pydrant/segments/fake.py",
    "pydrant/wal/__init__.py",
    "pydrant/optimizer/__init__.py",
    "pydrant/optimizer/fake.py",
    "pydrant/storage/__init__.py",
    "pydrant/storage/fake.py",
}


def fake_violations(relpath: str, source: str) -> list[str]:
    return [message for _, _, message in violations({relpath: source}, FAKE_TREE.__contains__)]


@pytest.mark.parametrize(
    "relpath, source, line, target",
    [
        ("pydrant/segments/fake.py", "from pydrant.collection.config import x\n", 1, "pydrant.collection.config"),
        ("pydrant/segments/fake.py", "import os\n\n\ndef f():\n    import pydrant.storage.toc\n", 5, "pydrant.storage.toc"),
        ("pydrant/segments/fake.py", "from pydrant import collection\n", 1, "pydrant.collection"),
        ("pydrant/segments/fake.py", "from ..collection import config\n", 1, "pydrant.collection.config"),
        ("pydrant/segments/fake.py", "from pydrant.wal import Wal\n", 1, "pydrant.wal"),  # a sibling
        ("pydrant/optimizer/fake.py", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pydrant.collection.config import c\n", 3, "pydrant.collection.config"),
        ("pydrant/fsutil.py", "from pydrant.segments.ids import parse\n", 1, "pydrant.segments.ids"),
        ("pydrant/collection/config.py", "from pydrant.storage.fake import x\n", 1, "pydrant.storage.fake"),
    ],
)
def test_an_upward_import_is_reported_with_file_line_and_statement(relpath, source, line, target):
    messages = fake_violations(relpath, source)
    assert len(messages) == 1, messages
    assert messages[0].startswith(f"{relpath}:{line}: `"), messages[0]
    assert f"imports {target} (" in messages[0], messages[0]


@pytest.mark.parametrize(
    "relpath, source",
    [
        ("pydrant/storage/fake.py", "from pydrant.collection.config import x\nfrom pydrant.segments import ids\n"),
        ("pydrant/optimizer/fake.py", "from pydrant.segments.ids import x\nfrom pydrant import fsutil, errors\n"),
        ("pydrant/segments/fake.py", "from . import ids\nfrom pydrant import __version__\n"),
        ("pydrant/collection/config.py", "import pydrant.wal\nfrom pydrant.optimizer.fake import x\n"),
    ],
)
def test_a_downward_or_same_layer_import_passes(relpath, source):
    assert fake_violations(relpath, source) == []


def test_a_module_without_a_layer_is_reported():
    messages = fake_violations("pydrant/newthing.py", "x = 1\n")
    assert messages and "has no layer" in messages[0]
