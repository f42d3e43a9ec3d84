"""The committed generated files are what their generators make from the vendored spec now.

pydrant/http/constraints.json, pydrant/http/spec_models.py and docs/api-coverage.md are
written by tools/ from spec/qdrant-openapi-v1.15.5.json and committed (the server never
reads the spec). Each is regenerated here into a temporary directory and compared with the
committed file, so a changed generator, COVERAGE table or spec fails until the file is
regenerated. The fix is the command in the failure message.
"""

import importlib
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TOOLS = REPO / "tools"


@pytest.fixture(scope="module")
def tools():
    sys.path.insert(0, str(TOOLS))
    try:
        yield lambda name: importlib.import_module(name)
    finally:
        sys.path.remove(str(TOOLS))


def assert_current(committed: Path, regenerated: str, command: str) -> None:
    relative = committed.relative_to(REPO)
    assert regenerated == committed.read_text(), f"{relative} is not current: run `{command}` and commit it"


def test_generators_default_to_the_vendored_spec(tools):
    spec = tools("specfile").SPEC
    assert spec.is_file() and spec.parent == REPO / "spec"


def test_constraints_json_is_current(tools, tmp_path):
    out = tmp_path / "constraints.json"
    assert tools("gen_spec_constraints").main(["--output", str(out)]) == 0
    assert_current(REPO / "pydrant/http/constraints.json", out.read_text(), "python tools/gen_spec_constraints.py")


def test_api_coverage_page_is_current(tools, capsys):
    assert tools("api_coverage").main([]) == 0
    page = capsys.readouterr().out
    assert_current(REPO / "docs/api-coverage.md", page, "python tools/api_coverage.py > docs/api-coverage.md")


def test_spec_models_are_current(tools, tmp_path):
    # datamodel-code-generator (and the black it formats with) come with the dev extra,
    # pinned, because their versions shape the output; the generator takes a few seconds.
    pytest.importorskip("datamodel_code_generator", reason="pip install -e '.[dev]' for the models' generator")
    out = tmp_path / "spec_models.py"
    assert tools("gen_spec_models").main(["--output", str(out)]) == 0
    assert_current(REPO / "pydrant/http/spec_models.py", out.read_text(), "python tools/gen_spec_models.py")
