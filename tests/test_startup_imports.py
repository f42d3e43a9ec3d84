"""Import hygiene of the start-up path, each in a fresh interpreter (http/server.py,
storage/toc.py, cli.py):

- `pydrant.storage.toc` never pulls in the web stack (tools use the storage without it);
- `pydrant.http.server` imports neither the app nor the storage: `serve` imports them with
  the garbage collector paused;
- `pydrant.cli` imports neither, so `pydrant version`/`config` stay quick;
- a module that fails to import still fails the start: `pydrant serve` exits non-zero,
  naming it, and never answers `/readyz`, whichever stack the module belongs to. Nothing
  is imported lazily at request time.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

import httpx
import pytest

from pydrant.collection.config import CollectionDefaults, build_config
from pydrant.collection.sharded import initialise_collection, open_collection
from serverproc import ServerProcess

WEB_STACK = ("quart", "quart_trio", "hypercorn", "flask", "werkzeug", "pydrant.http.app", "pydrant.http.spec_models")
STORAGE_STACK = ("pydrant.storage.toc", "pydrant.collection.collection", "pydrant.segments.appendable", "numba")


def modules_after(statement: str) -> set[str]:
    """The names in sys.modules after running `statement` in a fresh interpreter."""
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.splitlines()[-1]))


def loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(name for name in names if name in modules)


def test_the_storage_imports_no_web_stack():
    modules = modules_after("import pydrant.storage.toc")
    assert "pydrant.storage.toc" in modules  # the probe itself works
    assert loaded(modules, WEB_STACK) == []
    assert not [name for name in modules if name.startswith("pydrant.http")]


def test_the_server_module_leaves_the_imports_to_serve():
    modules = modules_after("import pydrant.http.server")
    assert "hypercorn" in modules
    assert loaded(modules, ("pydrant.http.app", "quart", "pydrant.http.spec_models", *STORAGE_STACK)) == []


def test_the_cli_imports_neither_stack():
    modules = modules_after("import pydrant.cli")
    assert loaded(modules, WEB_STACK + STORAGE_STACK + ("pydrant.http.server",)) == []


# -- a module that fails to import fails the start ------------------------------------------

REFUSING_SERVE = textwrap.dedent(
    """
    import importlib.abc, sys

    class Refuse(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name == {broken!r}:
                raise ImportError("injected failure: cannot import " + name)
            return None

    sys.meta_path.insert(0, Refuse())
    from pydrant.cli import main
    sys.exit(main(["serve"]))
    """
)


@pytest.mark.parametrize(
    "broken",
    [
        "pydrant.http.spec_models",  # web stack
        "quart_trio",  # web stack, third party
        "pydrant.collection.barrier",  # storage stack
        "hypercorn.trio",  # the server module's own import
    ],
)
def test_a_module_that_fails_to_import_fails_the_start(tmp_path, broken):
    storage = tmp_path / "storage"
    # A collection in the storage: a failed start must leave it as it was.
    initialise_collection(storage / "collections" / "kept", "kept", build_config({"vectors": {"size": 2, "distance": "Dot"}}, CollectionDefaults()))
    server = ServerProcess(storage)
    proc = subprocess.Popen(
        [sys.executable, "-c", REFUSING_SERVE.format(broken=broken)],
        env=server.env(), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    ready_seen = False
    while proc.poll() is None:
        try:
            ready_seen |= httpx.get(server.url + "/readyz", timeout=0.5).status_code == 200
        except httpx.HTTPError:
            pass
        time.sleep(0.02)
    output = proc.communicate(timeout=60)[0]
    assert proc.returncode not in (0, None), output
    assert f"injected failure: cannot import {broken}" in output
    assert not ready_seen
    # The storage is untouched: the collection opens.
    collection = open_collection(storage / "collections" / "kept")
    try:
        assert collection.points_count() == 0
    finally:
        collection._close_files()
