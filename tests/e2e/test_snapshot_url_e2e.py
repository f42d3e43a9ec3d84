"""Recovering a collection from an http(s) `location` (issue 15; docs/snapshots.md): the
server downloads the snapshot (here: its own download URL) to a temporary file, checks the
checksum and recovers; unreachable and non-2xx URLs are 400 and change nothing; `api_key`
is sent as the `api-key` header."""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import httpx
import pytest
from qdrant_client import QdrantClient, models

from serverproc import ServerProcess, free_port

pytestmark = pytest.mark.e2e

DIM = 4
KEY = "snapshot-url-api-key-long-enough"


def _fill(client: QdrantClient, name: str, n: int = 50) -> None:
    client.create_collection(name, vectors_config=models.VectorParams(size=DIM, distance=models.Distance.DOT))
    client.upsert(name, [models.PointStruct(id=i, vector=[float(i), 1.0, 0.0, -1.0], payload={"n": i})
                         for i in range(n)], wait=True)


def _state(client: QdrantClient, name: str) -> dict:
    records, _ = client.scroll(name, limit=10_000, with_payload=True, with_vectors=True)
    return {r.id: (r.payload, r.vector) for r in records}


def _downloads_left(server: ServerProcess) -> list[Path]:
    """The temporary download files left in `<snapshots_path>/.downloads/` (none, ever)."""
    directory = server.storage.parent / "snapshots" / ".downloads"
    return list(directory.iterdir()) if directory.is_dir() else []


def test_recover_from_own_download_url(client, http, server):
    _fill(client, "url_src")
    before = _state(client, "url_src")
    snap = client.create_snapshot("url_src")
    url = f"{server.url}/collections/url_src/snapshots/{snap.name}"

    # into another name, with the right checksum, through qdrant-client
    assert client.recover_snapshot("url_copy", url, checksum=snap.checksum, wait=True)
    assert _state(client, "url_copy") == before
    # over an existing collection that changed since: back to the snapshot's state
    client.delete("url_copy", models.PointIdsList(points=[1, 2, 3]), wait=True)
    r = http.put("/collections/url_copy/snapshots/recover", json={"location": url, "priority": "snapshot"})
    assert r.status_code == 200, r.text
    assert _state(client, "url_copy") == before
    assert _downloads_left(server) == []


def test_wrong_checksum_changes_nothing(client, http, server):
    _fill(client, "url_sum")
    snap = client.create_snapshot("url_sum")
    url = f"{server.url}/collections/url_sum/snapshots/{snap.name}"
    client.delete("url_sum", models.PointIdsList(points=[0]), wait=True)
    before = _state(client, "url_sum")
    r = http.put("/collections/url_sum/snapshots/recover", json={"location": url, "checksum": "0" * 64})
    assert r.status_code == 400, r.text
    assert "Snapshot checksum mismatch" in r.json()["status"]["error"]
    assert _state(client, "url_sum") == before
    r = http.put("/collections/url_sum_new/snapshots/recover", json={"location": url, "checksum": "0" * 64})
    assert r.status_code == 400
    assert http.get("/collections/url_sum_new").status_code == 404
    assert _downloads_left(server) == []


def test_unreachable_and_404_urls(client, http, server):
    _fill(client, "url_bad")
    before = _state(client, "url_bad")
    dead = f"http://127.0.0.1:{free_port()}/x.snapshot"  # nothing listens there
    started = time.monotonic()
    r = http.put("/collections/url_bad/snapshots/recover", json={"location": dead})
    assert time.monotonic() - started < 10
    assert r.status_code == 400, r.text
    assert r.json()["status"]["error"].startswith(f"Wrong input: Failed to download snapshot from {dead}")

    missing = f"{server.url}/collections/url_bad/snapshots/none.snapshot"
    r = http.put("/collections/url_bad/snapshots/recover", json={"location": missing})
    assert r.status_code == 400, r.text
    assert r.json()["status"]["error"] == f"Wrong input: Failed to download snapshot from {missing}: status - 404 Not Found"

    # an answer that is not a snapshot: downloaded, then refused as a tar, nothing changed
    r = http.put("/collections/url_bad/snapshots/recover", json={"location": f"{server.url}/collections"})
    assert r.status_code == 400, r.text

    for location in ("ftp://127.0.0.1/x.snapshot", "gopher://h/x"):
        r = http.put("/collections/url_bad/snapshots/recover", json={"location": location})
        assert r.status_code == 400, (location, r.text)
    assert _state(client, "url_bad") == before
    assert _downloads_left(server) == []


def test_wait_false_recovers_in_background(client, http, server):
    _fill(client, "url_async")
    before = _state(client, "url_async")
    snap = client.create_snapshot("url_async")
    url = f"{server.url}/collections/url_async/snapshots/{snap.name}"
    r = http.put("/collections/url_async_copy/snapshots/recover?wait=false", json={"location": url})
    assert r.status_code == 202 and r.json()["status"] == "accepted"
    deadline = time.time() + 30
    while http.get("/collections/url_async_copy").status_code != 200:
        assert time.time() < deadline
        time.sleep(0.1)
    assert _state(client, "url_async_copy") == before


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    root = tmp_path_factory.mktemp("snapurl-auth")
    proc = ServerProcess(root / "storage", extra_env={"PYDRANT__SERVICE__API_KEY": KEY}).start()
    yield proc
    proc.stop()


def test_api_key_protected_source(secured):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # api key over http: it is loopback
        client = QdrantClient(url=secured.url, api_key=KEY, timeout=30)
    try:
        _fill(client, "key_src")
        before = _state(client, "key_src")
        snap = client.create_snapshot("key_src")
        url = f"{secured.url}/collections/key_src/snapshots/{snap.name}"
        headers = {"api-key": KEY}
        with httpx.Client(base_url=secured.url, timeout=30, headers=headers) as http:
            # without `api_key` the source answers 401: a clear 400, nothing created
            r = http.put("/collections/key_copy/snapshots/recover", json={"location": url})
            assert r.status_code == 400, r.text
            assert r.json()["status"]["error"].endswith("status - 401 Unauthorized")
            assert http.get("/collections/key_copy").status_code == 404
            # a wrong key: the same
            r = http.put("/collections/key_copy/snapshots/recover", json={"location": url, "api_key": "wrong"})
            assert r.status_code == 400 and "401" in r.text
            # with it: recovered
            r = http.put("/collections/key_copy/snapshots/recover",
                         json={"location": url, "api_key": KEY, "checksum": snap.checksum})
            assert r.status_code == 200, r.text
        assert _state(client, "key_copy") == before
    finally:
        client.close()


def test_download_times_out_and_leaves_nothing(tmp_path):
    """A host that accepts the connection and never answers: a 400 after the read timeout
    (60 s in the server; 0.5 s here), no temporary file left."""
    import socket

    from pydrant.collection import snapshots
    from pydrant.errors import BadInput

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/x.snapshot"
        started = time.monotonic()
        with pytest.raises(BadInput, match=r"Failed to download snapshot from .*: timed out"):
            snapshots.download(url, tmp_path / "d", "key", connect_timeout=0.5, io_timeout=0.5)
        assert time.monotonic() - started < 5
    assert list((tmp_path / "d").iterdir()) == []
