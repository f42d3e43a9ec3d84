"""Full snapshots (`/snapshots`) and restoring snapshots when the server starts
(`pydrant serve --storage-snapshot PATH | --snapshot PATH:NAME [--force-snapshot]`),
against real servers with qdrant-client 1.15.1 and raw HTTP (docs/snapshots.md)."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import tarfile
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from qdrant_client import QdrantClient, models

from serverproc import ServerProcess
from spec_check import assert_matches_spec

pytestmark = pytest.mark.e2e

DIM = 4
FULL_NAME = re.compile(r"^full-snapshot-\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}(-\d+)?\.snapshot$")


class ServerWithArgs(ServerProcess):
    """A server started with extra `pydrant serve` arguments."""

    def __init__(self, storage: Path, args: list[str] | None = None, **kwargs):
        super().__init__(storage, **kwargs)
        self.args = list(args or [])

    def command(self) -> list[str]:
        return super().command() + self.args

    def run_to_exit(self, timeout: float = 60) -> subprocess.CompletedProcess:
        """Run the command expecting it to stop by itself (a refused start)."""
        return subprocess.run(self.command(), env=self.env(), cwd=self.storage.parent, capture_output=True,
                              text=True, timeout=timeout)


@contextmanager
def _client(server: ServerProcess):
    client = QdrantClient(url=server.url, timeout=30)
    try:
        yield client
    finally:
        client.close()


def _vector(i: int) -> list[float]:
    return [float((i * 3 + k) % 7) - 3.0 for k in range(DIM)]


def _fill(client: QdrantClient, name: str, ids, sparse: bool = False) -> None:
    points = []
    for i in ids:
        vector: dict = {"dense": _vector(i)}
        if sparse:
            vector["text"] = models.SparseVector(indices=[i % 20, 30 + i % 3], values=[1.0, 0.25 * i])
        points.append(models.PointStruct(id=i, vector=vector, payload={"n": i, "tag": ["x", "y", "z"][i % 3]}))
    client.upsert(name, points, wait=True)


def _make(client: QdrantClient, name: str, sparse: bool = False, index: bool = True) -> None:
    client.create_collection(
        name,
        vectors_config={"dense": models.VectorParams(size=DIM, distance=models.Distance.EUCLID)},
        sparse_vectors_config={"text": models.SparseVectorParams()} if sparse else None,
    )
    if index:
        client.create_payload_index(name, "tag", models.PayloadSchemaType.KEYWORD, wait=True)
        client.create_payload_index(name, "n", models.PayloadSchemaType.INTEGER, wait=True)


def _state(client: QdrantClient, name: str) -> dict:
    records, _ = client.scroll(name, limit=10_000, with_payload=True, with_vectors=True)
    out = {}
    for r in records:
        vectors = {k: (v if isinstance(v, list) else (list(v.indices), list(v.values))) for k, v in r.vector.items()}
        out[r.id] = (r.payload, json.dumps(vectors, sort_keys=True))
    return out


def _describe(client: QdrantClient, name: str) -> tuple:
    info = client.get_collection(name)
    return info.config.params, sorted(info.payload_schema), info.points_count


def _aliases(client: QdrantClient) -> set:
    return {(a.alias_name, a.collection_name) for a in client.get_aliases().aliases}


def _download(http: httpx.Client, url: str, target: Path) -> Path:
    with http.stream("GET", url) as response:
        assert response.status_code == 200, response.read()
        size = int(response.headers["content-length"])
        with open(target, "wb") as out:
            for chunk in response.iter_bytes():
                out.write(chunk)
    assert target.stat().st_size == size
    return target


@pytest.fixture(scope="module")
def filled(server):
    """Two collections with payload indexes, points and aliases on the module's server."""
    with _client(server) as client:
        _fill_server(client)
    return server


def _fill_server(client: QdrantClient) -> None:
    _make(client, "full_a", sparse=True)
    _fill(client, "full_a", range(120), sparse=True)
    client.delete("full_a", models.PointIdsList(points=[3, 4]), wait=True)
    _make(client, "full_b", index=False)
    _fill(client, "full_b", range(40))
    client.update_collection_aliases(change_aliases_operations=[
        models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name="full_a", alias_name="alias_a")),
        models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name="full_b", alias_name="alias_b")),
    ])


def test_create_list_download_and_restore_into_a_fresh_server(filled, client, http, tmp_path):
    before = {name: (_state(client, name), _describe(client, name)) for name in ("full_a", "full_b")}
    aliases = _aliases(client)

    description = client.create_full_snapshot()
    assert FULL_NAME.match(description.name), description.name
    assert description.size > 0 and re.fullmatch(r"[0-9a-f]{64}", description.checksum)
    root = filled.storage.parent / "snapshots"
    assert (root / description.name).is_file()
    assert (root / (description.name + ".checksum")).read_text().strip() == description.checksum
    listed = client.list_full_snapshots()
    assert description.name in [s.name for s in listed]
    assert next(s for s in listed if s.name == description.name).checksum == description.checksum
    assert_matches_spec("/snapshots", "get", http.get("/snapshots"))
    # A full snapshot leaves no collection snapshot behind in the collections' directories.
    assert client.list_snapshots("full_a") == [] and client.list_snapshots("full_b") == []

    local = _download(http, f"/snapshots/{description.name}", tmp_path / description.name)
    assert hashlib.sha256(local.read_bytes()).hexdigest() == description.checksum
    with tarfile.open(local) as tar:
        meta = json.load(tar.extractfile("snapshot.json"))
        config = json.load(tar.extractfile("config.json"))
        names = set(tar.getnames())
    assert meta["format"] == "pydrant-full-snapshot" and meta["format_version"] == 1
    assert set(config["collections_mapping"]) >= {"full_a", "full_b"}
    assert config["collections_aliases"]["alias_a"] == "full_a" and config["collections_aliases"]["alias_b"] == "full_b"
    assert set(config["collections_mapping"].values()) <= names

    # Writes after the snapshot do not travel.
    _fill(client, "full_a", range(500, 510), sparse=True)

    restored = ServerWithArgs(tmp_path / "restored" / "storage", ["--storage-snapshot", str(local)])
    restored.storage.parent.mkdir()
    restored.start()
    try:
        with _client(restored) as other:
            assert {c.name for c in other.get_collections().collections} == set(config["collections_mapping"])
            for name, (state, shape) in before.items():
                assert _state(other, name) == state, name
                assert _describe(other, name) == shape, name
            assert _aliases(other) == aliases
            hits = other.query_points("alias_a", query=_vector(5), using="dense", limit=3,
                                      query_filter=models.Filter(must=[models.FieldCondition(key="tag", match=models.MatchValue(value="z"))]))
            assert hits.points and all(p.payload["tag"] == "z" for p in hits.points)
        # Restored once: a restart without the flag serves the same collections.
        restored.args = []
        restored.restart()
        with _client(restored) as other:
            assert _state(other, "full_b") == before["full_b"][0]
            assert _aliases(other) == aliases
    finally:
        restored.stop()


def test_raw_http_shapes_delete_and_unknown_names(filled, http):
    response = http.post("/snapshots")
    created = assert_matches_spec("/snapshots", "post", response)["result"]
    assert response.status_code == 200 and FULL_NAME.match(created["name"])
    # Two in the same second get different names.
    second = http.post("/snapshots").json()["result"]
    assert second["name"] != created["name"]

    missing = http.get("/snapshots/full-snapshot-1999-01-01-00-00-00.snapshot")
    assert missing.status_code == 404
    assert "not found" in assert_matches_spec("/snapshots/{snapshot_name}", "get", missing)["status"]["error"]
    assert http.delete("/snapshots/nope.snapshot").status_code == 404
    # A collection's snapshot directory is not a full snapshot.
    assert http.get("/snapshots/full_a").status_code == 404
    # Names with a path separator, `..` or a NUL are refused before any file is touched.
    for bad in ("..%5Cconfig.snapshot", "%2E%2E", "a%5Cb.snapshot", "a%00b.snapshot"):
        for response in (http.delete(f"/snapshots/{bad}"), http.get(f"/snapshots/{bad}")):
            assert response.status_code == 400, (bad, response.text)
            assert "invalid snapshot name" in response.json()["status"]["error"]

    for name in (created["name"], second["name"]):
        deleted = http.delete(f"/snapshots/{name}")
        assert assert_matches_spec("/snapshots/{snapshot_name}", "delete", deleted)["result"] is True
    root = filled.storage.parent / "snapshots"
    assert not (root / created["name"]).exists() and not (root / (created["name"] + ".checksum")).exists()
    assert created["name"] not in [s["name"] for s in http.get("/snapshots").json()["result"]]


def test_client_delete_and_wait_false(filled, client, http):
    description = client.create_full_snapshot(wait=True)
    assert client.delete_full_snapshot(description.name, wait=True) is True
    assert description.name not in [s.name for s in client.list_full_snapshots()]

    before = {s["name"] for s in http.get("/snapshots").json()["result"]}
    accepted = http.post("/snapshots", params={"wait": "false"})
    assert accepted.status_code == 202
    body = assert_matches_spec("/snapshots", "post", accepted, strict=False)
    assert body["status"] == "accepted"
    deadline = time.time() + 60
    while not ({s["name"] for s in http.get("/snapshots").json()["result"]} - before):
        assert time.time() < deadline, "the background full snapshot never appeared"
        time.sleep(0.2)
    (new,) = {s["name"] for s in http.get("/snapshots").json()["result"]} - before
    assert http.delete(f"/snapshots/{new}", params={"wait": "false"}).status_code == 202
    while new in {s["name"] for s in http.get("/snapshots").json()["result"]}:
        assert time.time() < deadline, "the background delete never happened"
        time.sleep(0.2)


def test_snapshot_flag_restores_collections_and_force_replaces(filled, client, http, tmp_path):
    description = client.create_snapshot("full_b")
    local = _download(http, f"/collections/full_b/snapshots/{description.name}", tmp_path / "b.snapshot")
    client.delete_snapshot("full_b", description.name)
    expected = _state(client, "full_b")

    server = ServerWithArgs(tmp_path / "one" / "storage", ["--snapshot", f"{local}:copy_1", "--snapshot", f"{local}:copy_2"])
    server.storage.parent.mkdir()
    server.start()
    try:
        with _client(server) as other:
            assert {c.name for c in other.get_collections().collections} == {"copy_1", "copy_2"}
            assert _state(other, "copy_1") == expected and _state(other, "copy_2") == expected
            _fill(other, "copy_1", range(900, 905))
    finally:
        server.stop()

    # The collection exists now: without --force-snapshot the start is refused, nothing changes.
    server.args = ["--snapshot", f"{local}:copy_1"]
    refused = server.run_to_exit()
    assert refused.returncode != 0
    assert "Collection copy_1 already exists. Use --force-snapshot to overwrite it." in refused.stderr

    server.args = ["--snapshot", f"{local}:copy_1", "--force-snapshot"]
    server.start()
    try:
        with _client(server) as other:
            assert _state(other, "copy_1") == expected  # the points written after are gone
    finally:
        server.stop()


def test_bad_snapshot_at_start_exits_with_an_error_and_touches_nothing(filled, client, http, tmp_path):
    server = ServerWithArgs(tmp_path / "bad" / "storage")
    server.storage.parent.mkdir()
    server.start()
    with _client(server) as other:
        _make(other, "kept", index=False)
        _fill(other, "kept", range(10))
    server.stop()
    listing = sorted(p.relative_to(server.storage).as_posix() for p in (server.storage / "collections").rglob("*"))

    junk = tmp_path / "junk.snapshot"
    junk.write_bytes(b"not a tar at all" * 100)
    collection_snapshot = client.create_snapshot("full_b")
    as_full = _download(http, f"/collections/full_b/snapshots/{collection_snapshot.name}", tmp_path / "coll.snapshot")
    cases = [
        (["--snapshot", str(tmp_path / "missing.snapshot") + ":x"], "no such file"),
        (["--snapshot", "no-colon-here"], "PATH:COLLECTION"),
        (["--snapshot", f"{junk}:fresh"], "not a valid tar"),
        (["--storage-snapshot", str(tmp_path / "missing.snapshot")], "no such file"),
        (["--storage-snapshot", str(junk)], "not a valid tar"),
        (["--storage-snapshot", str(as_full)], "collection snapshot"),
        (["--snapshot", f"{as_full}:a", "--storage-snapshot", str(as_full)], "cannot be combined"),
        (["--snapshot", f"{as_full}:kept"], "already exists"),
        (["--snapshot", f"{as_full}:bad/name"], "cannot contain"),
    ]
    for args, message in cases:
        server.args = args
        result = server.run_to_exit()
        assert result.returncode != 0, (args, result.stderr)
        assert "cannot restore snapshots at start" in result.stderr and message in result.stderr, (args, result.stderr)
        assert sorted(p.relative_to(server.storage).as_posix() for p in (server.storage / "collections").rglob("*")) == listing
        assert not list((server.storage / "pending").iterdir())

    server.args = []
    server.start()
    try:
        with _client(server) as other:
            assert [c.name for c in other.get_collections().collections] == ["kept"]
            assert other.count("kept").count == 10
    finally:
        server.stop()


def test_partial_snapshots_left_by_a_crash_are_removed_at_start(tmp_path):
    storage = tmp_path / "crash" / "storage"
    root = storage.parent / "snapshots"
    shard_dir = root / "somecoll" / "shards" / "0"
    shard_dir.mkdir(parents=True)
    leftovers = [
        root / "full-snapshot-2026-01-01-00-00-00.snapshot.tmp-0123456789ab",
        root / "somecoll" / "somecoll-0-2026-01-01-00-00-00.snapshot.tmp-0123456789ab",
        shard_dir / "somecoll-shard-0-2026-01-01-00-00-00.snapshot.tmp-0123456789ab",
    ]
    for path in leftovers:
        path.write_bytes(b"half a tar")
    complete = root / "full-snapshot-2025-01-01-00-00-00.snapshot"
    complete.write_bytes(b"kept: not a temporary")
    server = ServerProcess(storage).start()
    try:
        assert not any(path.exists() for path in leftovers)
        assert complete.exists()
        listed = httpx.get(f"{server.url}/snapshots").json()["result"]
        assert [s["name"] for s in listed] == [complete.name]
    finally:
        server.stop()


def test_alias_conflicts_at_start_need_force(filled, client, http, tmp_path):
    description = client.create_full_snapshot()
    local = _download(http, f"/snapshots/{description.name}", tmp_path / "full.snapshot")
    client.delete_full_snapshot(description.name)

    server = ServerWithArgs(tmp_path / "aliases" / "storage")
    server.storage.parent.mkdir()
    server.start()
    with _client(server) as other:
        _make(other, "zzz", index=False)
        _fill(other, "zzz", range(3))
        other.update_collection_aliases(change_aliases_operations=[
            models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name="zzz", alias_name="alias_a")),
            models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name="zzz", alias_name="mine")),
        ])
    server.stop()

    server.args = ["--storage-snapshot", str(local)]
    refused = server.run_to_exit()
    assert refused.returncode != 0
    assert "Alias alias_a already exists. Use --force-snapshot to overwrite it." in refused.stderr
    assert sorted(p.name for p in (server.storage / "collections").iterdir()) == ["zzz"]

    server.args = ["--storage-snapshot", str(local), "-f"]
    server.start()
    try:
        with _client(server) as other:
            assert {c.name for c in other.get_collections().collections} == {"zzz", "full_a", "full_b"}
            assert _aliases(other) == {("alias_a", "full_a"), ("alias_b", "full_b"), ("mine", "zzz")}
            assert other.count("zzz").count == 3
    finally:
        server.stop()


def test_a_collection_that_failed_to_load_is_left_out(tmp_path):
    server = ServerWithArgs(tmp_path / "failed" / "storage")
    server.storage.parent.mkdir()
    server.start()
    with _client(server) as other:
        _make(other, "good", index=False)
        _fill(other, "good", range(5))
        _make(other, "broken", index=False)
    server.stop()
    (server.storage / "collections" / "broken" / "config.json").write_text("{ not json")
    server.start()
    try:
        response = httpx.post(f"{server.url}/snapshots", timeout=60)
        description = assert_matches_spec("/snapshots", "post", response)["result"]
        with httpx.Client(base_url=server.url, timeout=60) as http:
            local = _download(http, f"/snapshots/{description['name']}", tmp_path / "full.snapshot")
    finally:
        server.stop()
    with tarfile.open(local) as tar:
        meta = json.load(tar.extractfile("snapshot.json"))
        config = json.load(tar.extractfile("config.json"))
    assert list(config["collections_mapping"]) == ["good"]
    assert list(meta["skipped"]) == ["broken"]
