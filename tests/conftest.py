import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from serverproc import ServerProcess  # noqa: E402


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A real pydrant server shared by the tests of one module."""
    root = tmp_path_factory.mktemp("server")
    proc = ServerProcess(root / "storage").start()
    yield proc
    proc.stop()
    proc.discard_storage()


@pytest.fixture
def fresh_server(tmp_path):
    """A real pydrant server of the test's own, for restart and crash tests."""
    proc = ServerProcess(tmp_path / "storage").start()
    yield proc
    proc.kill()


@pytest.fixture
def client(server):
    from qdrant_client import QdrantClient

    c = QdrantClient(url=server.url, timeout=30, check_compatibility=True)
    yield c
    c.close()


@pytest.fixture
def http(server):
    import httpx

    with httpx.Client(base_url=server.url, timeout=30) as h:
        yield h
