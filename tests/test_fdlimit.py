"""`pydrant serve` raises the soft open-files limit to the hard limit (pydrant/fdlimit.py).

Each case runs in a subprocess that first lowers its own soft RLIMIT_NOFILE (always
allowed), so the test process's limit is never changed.
"""

import resource
import subprocess
import sys
import textwrap

import pytest

LOW = 256

pytestmark = pytest.mark.skipif(
    resource.getrlimit(resource.RLIMIT_NOFILE)[1] != resource.RLIM_INFINITY
    and resource.getrlimit(resource.RLIMIT_NOFILE)[1] <= LOW,
    reason="the hard open-files limit leaves no room to raise a soft limit",
)


def run(body: str) -> subprocess.CompletedProcess:
    script = textwrap.dedent(
        f"""
        import logging, resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, ({LOW}, hard))
        """
    ) + textwrap.dedent(body)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result


def expected_limit() -> int:
    from pydrant.fdlimit import MACOS_TARGET, UNLIMITED_TARGET

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY:
        return hard
    return MACOS_TARGET if sys.platform == "darwin" else UNLIMITED_TARGET


def test_the_soft_limit_is_raised_to_the_hard_limit_and_logged():
    result = run(
        """
        from pydrant.fdlimit import raise_open_files_limit
        logging.basicConfig(level=logging.INFO, format="%(name)s %(message)s")
        print(raise_open_files_limit())
        print(resource.getrlimit(resource.RLIMIT_NOFILE)[0])
        print(raise_open_files_limit())  # a second call finds it raised already
        """
    )
    target = expected_limit()
    assert result.stdout.split("\n")[:3] == [f"({LOW}, {target})", str(target), f"({target}, {target})"]
    assert f"pydrant.fdlimit open files limit (RLIMIT_NOFILE) raised from {LOW} to {target}" in result.stderr


def test_pydrant_serve_raises_the_limit_before_the_server_starts():
    result = run(
        """
        import sys, types
        from pydrant import cli
        server = types.ModuleType("pydrant.http.server")
        server.serve = lambda settings: print("serving with", resource.getrlimit(resource.RLIMIT_NOFILE)[0])
        sys.modules["pydrant.http.server"] = server
        sys.exit(cli.main(["serve"]))
        """
    )
    target = expected_limit()
    assert result.stdout.strip() == f"serving with {target}"
    assert f"open files limit (RLIMIT_NOFILE) raised from {LOW} to {target}" in result.stderr
