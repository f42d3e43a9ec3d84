"""Collection snapshots against a real server with qdrant-client 1.15.1 (issue 15, first
slice): create, list, download, delete, recover from a file location and by upload;
checksum mismatch, hostile tars and unknown names refused (docs/snapshots.md)."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import time

import httpx
import pytest
from qdrant_client import QdrantClient, models

pytestmark = pytest.mark.e2e

DIM = 8


def _vector(i: int) -> list[float]:
    return [float((i * 7 + k) % 11) - 5.0 for k in range(DIM)]


def _points(ids) -> list[models.PointStruct]:
    return [
        models.PointStruct(
            id=i,
            vector={"dense": _vector(i), "text": models.SparseVector(indices=[i % 50, 100 + i % 7], values=[1.0, 0.5 + i])},
            payload={"city": ["Berlin", "Paris", "Tokyo"][i % 3], "n": i, "nested": {"flag": i % 2 == 0}},
        )
        for i in ids
    ]


def _make_collection(client: QdrantClient, name: str, indexed: bool = False) -> None:
    client.create_collection(
        name,
        vectors_config={"dense": models.VectorParams(size=DIM, distance=models.Distance.COSINE)},
        sparse_vectors_config={"text": models.SparseVectorParams()},
        optimizers_config=models.OptimizersConfigDiff(indexing_threshold=1 if indexed else None),
    )
    client.create_payload_index(name, "city", models.PayloadSchemaType.KEYWORD, wait=True)
    client.create_payload_index(name, "n", models.PayloadSchemaType.INTEGER, wait=True)


def _state(client: QdrantClient, name: str) -> dict:
    records, _ = client.scroll(name, limit=10_000, with_payload=True, with_vectors=True)
    return {
        r.id: (
            r.payload,
            [round(x, 5) for x in r.vector["dense"]],
            (list(r.vector["text"].indices), [round(x, 5) for x in r.vector["text"].values]),
        )
        for r in records
    }


def _wait_green(client: QdrantClient, name: str) -> None:
    deadline = time.time() + 60
    while client.get_collection(name).status != models.CollectionStatus.GREEN:
        assert time.time() < deadline, "collection never turned green"
        time.sleep(0.1)


def test_round_trip_create_list_download_recover(client, http, server, tmp_path):
    name = "snap_round"
    _make_collection(client, name, indexed=True)
    client.upsert(name, _points(range(300)), wait=True)
    client.delete(name, models.PointIdsList(points=[5, 6]), wait=True)
    _wait_green(client, name)
    assert client.get_collection(name).indexed_vectors_count > 0  # an HNSW-indexed segment is in the cut
    client.upsert(name, _points(range(300, 320)), wait=True)  # and an appendable one
    before = _state(client, name)
    info_before = client.get_collection(name)

    description = client.create_snapshot(name)
    assert description.name.startswith(f"{name}-") and description.name.endswith(".snapshot")
    assert description.size > 0 and len(description.checksum) == 64
    listed = client.list_snapshots(name)
    assert [s.name for s in listed] == [description.name]
    assert listed[0].checksum == description.checksum and listed[0].size == description.size

    # Download: streamed, with Content-Length, the bytes the checksum names.
    with http.stream("GET", f"/collections/{name}/snapshots/{description.name}") as response:
        assert response.status_code == 200
        assert int(response.headers["content-length"]) == description.size
        data = b"".join(response.iter_bytes())
    assert hashlib.sha256(data).hexdigest() == description.checksum
    local = tmp_path / description.name
    local.write_bytes(data)
    with tarfile.open(local) as tar:
        names = set(tar.getnames())
    assert {"snapshot.json", "config.json", "manifest.json", "payload_index.json", "wal.cbor"} <= names
    assert any(n.startswith("segments/") and n.endswith("/segment.json") for n in names)

    # Writes after the snapshot are gone once it is recovered.
    client.upsert(name, _points(range(1000, 1010)), wait=True)
    client.delete(name, models.PointIdsList(points=[1, 2, 3]), wait=True)
    client.delete_payload_index(name, "n", wait=True)
    assert client.count(name).count != len(before)

    assert client.recover_snapshot(name, f"file://{local}", checksum=description.checksum, wait=True)
    assert _state(client, name) == before
    info = client.get_collection(name)
    assert info.points_count == len(before)
    assert set(info.payload_schema) == {"city", "n"}
    assert info.config.params == info_before.config.params
    _wait_green(client, name)
    hits = client.query_points(name, query=_vector(7), using="dense", limit=3,
                               query_filter=models.Filter(must=[models.FieldCondition(key="city", match=models.MatchValue(value="Paris"))]))
    assert hits.points and all(p.payload["city"] == "Paris" for p in hits.points)
    sparse = client.query_points(name, query=models.SparseVector(indices=[7], values=[1.0]), using="text", limit=1)
    assert sparse.points[0].id in (7, 57, 107, 157, 207, 257, 307)
    # The recovered collection takes writes and keeps them.
    client.upsert(name, _points([2000]), wait=True)
    assert client.count(name).count == len(before) + 1

    # Recovery into a new name creates the collection, by plain path too.
    response = http.put("/collections/snap_copy/snapshots/recover", json={"location": str(local)})
    assert response.status_code == 200, response.text
    assert response.json()["result"] is True
    assert _state(client, "snap_copy") == before

    # Delete.
    client.delete_snapshot(name, description.name, wait=True)
    assert client.list_snapshots(name) == []
    assert not list((server.storage.parent / "snapshots" / name).iterdir())


def test_upload_recovers_with_checksum(client, http, tmp_path):
    name = "snap_upload"
    _make_collection(client, name)
    client.upsert(name, _points(range(50)), wait=True)
    before = _state(client, name)
    description = client.create_snapshot(name)
    data = http.get(f"/collections/{name}/snapshots/{description.name}").content
    client.upsert(name, _points(range(50, 80)), wait=True)

    # wrong checksum: 400, nothing changed
    response = http.post(
        f"/collections/{name}/snapshots/upload", params={"checksum": "0" * 64},
        files={"snapshot": ("x.snapshot", data)},
    )
    assert response.status_code == 400, response.text
    assert "Checksum mismatch" in response.json()["status"]["error"]
    assert client.count(name).count == 80

    response = http.post(
        f"/collections/{name}/snapshots/upload", params={"checksum": description.checksum, "priority": "snapshot", "wait": "true"},
        files={"snapshot": ("x.snapshot", data)},
    )
    assert response.status_code == 200, response.text
    assert _state(client, name) == before

    # into a fresh collection name, through qdrant-client's upload helper
    path = tmp_path / "up.snapshot"
    path.write_bytes(data)
    with open(path, "rb") as f:
        assert client.http.snapshots_api.recover_from_uploaded_snapshot(
            collection_name="snap_upload_copy", snapshot=f, wait=True
        ).result is True
    assert _state(client, "snap_upload_copy") == before


def test_recover_checksum_mismatch_changes_nothing(client, http, tmp_path):
    name = "snap_checksum"
    _make_collection(client, name)
    client.upsert(name, _points(range(10)), wait=True)
    description = client.create_snapshot(name)
    client.upsert(name, _points(range(10, 20)), wait=True)
    path = tmp_path / "s.snapshot"
    path.write_bytes(http.get(f"/collections/{name}/snapshots/{description.name}").content)
    response = http.put(f"/collections/{name}/snapshots/recover",
                        json={"location": f"file://{path}", "checksum": "ab" * 32})
    assert response.status_code == 400
    assert response.json()["status"]["error"] == (
        f"Wrong input: Snapshot checksum mismatch: expected {'ab' * 32}, got {description.checksum}"
    )
    assert client.count(name).count == 20


def _tar_bytes(entries) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def _file(name: str, data: bytes):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def _link(name: str, target: str, kind=tarfile.SYMTYPE):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info, None


META = json.dumps({"format": "pydrant-collection-snapshot", "format_version": 1}).encode()


@pytest.mark.parametrize(
    "entries, message",
    [
        ([_file("snapshot.json", META), _file("../escaped.txt", b"x")], "`..`"),
        ([_file("snapshot.json", META), _file("/tmp/pydrant-absolute.txt", b"x")], "absolute"),
        ([_file("snapshot.json", META), _link("segments", "/etc")], "link"),
        ([_file("snapshot.json", META), _link("hard", "/etc/passwd", tarfile.LNKTYPE)], "link"),
        ([_file("snapshot.json", META), (lambda i: (setattr(i, "type", tarfile.CHRTYPE), (i, None))[1])(tarfile.TarInfo("dev"))], "special file"),
    ],
    ids=["dotdot", "absolute", "symlink", "hardlink", "device"],
)
def test_hostile_tars_are_refused(client, http, tmp_path, entries, message):
    name = "snap_hostile"
    if not client.collection_exists(name):
        _make_collection(client, name)
        client.upsert(name, _points(range(5)), wait=True)
    response = http.post(f"/collections/{name}/snapshots/upload", files={"snapshot": ("h.snapshot", _tar_bytes(entries))})
    assert response.status_code == 400, response.text
    assert message in response.json()["status"]["error"]
    assert client.count(name).count == 5
    assert not (tmp_path.parent / "escaped.txt").exists()


def test_bad_snapshots_are_refused(client, http, tmp_path):
    name = "snap_bad"
    _make_collection(client, name)
    client.upsert(name, _points(range(5)), wait=True)
    cases = {
        "not a tar": b"hello, this is not a tar archive" * 100,
        "no snapshot.json": _tar_bytes([_file("config.json", b"{}")]),
        "newer format": _tar_bytes([_file("snapshot.json", json.dumps({"format": "pydrant-collection-snapshot", "format_version": 99}).encode())]),
    }
    expected = {"not a tar": "not a valid tar", "no snapshot.json": "not a pydrant collection snapshot",
                "newer format": "format version 99 is newer"}
    for case, data in cases.items():
        response = http.post(f"/collections/{name}/snapshots/upload", files={"snapshot": ("b.snapshot", data)})
        assert response.status_code == 400, (case, response.text)
        assert expected[case] in response.json()["status"]["error"], case
    valid = http.get(f"/collections/{name}/snapshots/{client.create_snapshot(name).name}").content
    response = http.post(f"/collections/{name}/snapshots/upload", files={"snapshot": ("t.snapshot", valid[: len(valid) // 2])})
    assert response.status_code == 400, response.text
    assert client.count(name).count == 5


def test_unknown_snapshot_and_collection(client, http):
    name = "snap_unknown"
    _make_collection(client, name)
    assert http.get(f"/collections/{name}/snapshots/nope.snapshot").status_code == 404
    response = http.delete(f"/collections/{name}/snapshots/nope.snapshot")
    assert response.status_code == 404
    assert response.json()["status"]["error"] == "Not found: Snapshot nope.snapshot not found"
    assert http.get("/collections/no_such_collection/snapshots").status_code == 404
    assert http.post("/collections/no_such_collection/snapshots").status_code == 404
    assert http.get(f"/collections/{name}/snapshots/%2E%2E").status_code in (400, 404)
    assert http.delete(f"/collections/{name}/snapshots/%2E%2E").status_code in (400, 404)
    assert http.get(f"/collections/{name}/snapshots/a%5Cb.snapshot").status_code == 400
    response = http.put(f"/collections/{name}/snapshots/recover", json={"location": "file:///no/such/file.snapshot"})
    assert response.status_code == 404
    response = http.put(f"/collections/{name}/snapshots/recover", json={"location": "ftp://127.0.0.1/x.snapshot"})
    assert response.status_code == 400 and "unsupported snapshot location scheme" in response.json()["status"]["error"]
    # http(s) locations: tests/e2e/test_snapshot_url_e2e.py
    response = http.put(f"/collections/{name}/snapshots/recover", json={"location": "file:///dev/zero"})
    assert response.status_code == 404  # not a regular file


def test_wait_false_and_restart(fresh_server, tmp_path):
    client = QdrantClient(url=fresh_server.url, timeout=30)
    name = "snap_async"
    _make_collection(client, name)
    client.upsert(name, _points(range(30)), wait=True)
    with httpx.Client(base_url=fresh_server.url, timeout=30) as http:
        response = http.post(f"/collections/{name}/snapshots", params={"wait": "false"})
        assert response.status_code == 202 and response.json()["status"] == "accepted"
        deadline = time.time() + 30
        while not client.list_snapshots(name):
            assert time.time() < deadline
            time.sleep(0.05)
    # a partial snapshot a crash left is removed at start; finished ones stay
    snapshot_dir = fresh_server.storage.parent / "snapshots" / name
    (snapshot_dir / "x.snapshot.tmp-0123").write_bytes(b"partial")
    fresh_server.kill()
    fresh_server.start()
    client = QdrantClient(url=fresh_server.url, timeout=30)
    assert not (snapshot_dir / "x.snapshot.tmp-0123").exists()
    [description] = client.list_snapshots(name)
    client.upsert(name, _points(range(30, 40)), wait=True)
    assert client.recover_snapshot(name, f"file://{snapshot_dir / description.name}")
    assert client.count(name).count == 30
    # survives a restart as recovered
    fresh_server.kill()
    fresh_server.start()
    client = QdrantClient(url=fresh_server.url, timeout=30)
    assert client.count(name).count == 30
    assert set(client.get_collection(name).payload_schema) == {"city", "n"}
