"""Shard snapshots (`/collections/{name}/shards/{shard_id}/snapshots`) against a real server,
with raw HTTP and qdrant-client 1.15.1: shard 0 is the collection's data, any other shard
is Qdrant's 404; recovering a shard snapshot replaces the points and keeps the collection's
config, payload index declarations and aliases (docs/snapshots.md "Shard snapshots")."""

from __future__ import annotations

import hashlib
import json
import re
import tarfile
import time

import pytest
from qdrant_client import QdrantClient, models

from spec_check import assert_matches_spec

pytestmark = pytest.mark.e2e

DIM = 4
SHARD = "/collections/{collection_name}/shards/{shard_id}/snapshots"


def _vector(i: int) -> list[float]:
    return [float((i * 5 + k) % 9) - 4.0 for k in range(DIM)]


def _make(client: QdrantClient, name: str, size: int = DIM) -> None:
    client.create_collection(name, vectors_config=models.VectorParams(size=size, distance=models.Distance.COSINE))
    client.create_payload_index(name, "group", models.PayloadSchemaType.KEYWORD, wait=True)


def _fill(client: QdrantClient, name: str, ids, size: int = DIM) -> None:
    client.upsert(name, [
        models.PointStruct(id=i, vector=_vector(i)[:size] + [1.0] * max(0, size - DIM), payload={"group": f"g{i % 4}", "i": i})
        for i in ids
    ], wait=True)


def _state(client: QdrantClient, name: str) -> dict:
    records, _ = client.scroll(name, limit=10_000, with_payload=True, with_vectors=True)
    return {r.id: (r.payload, [round(x, 5) for x in r.vector]) for r in records}


def _ok(response, path: str, method: str) -> dict:
    assert response.status_code == 200, response.text
    return assert_matches_spec(path, method, response)["result"]


def test_six_operations_raw_http_round_trip(client, http, server, tmp_path):
    name = "shard_raw"
    _make(client, name)
    _fill(client, name, range(80))
    client.delete(name, models.PointIdsList(points=[7]), wait=True)
    client.update_collection_aliases(change_aliases_operations=[
        models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name=name, alias_name="shard_raw_alias")),
    ])
    before = _state(client, name)

    created = _ok(http.post(f"/collections/{name}/shards/0/snapshots"), SHARD, "post")
    assert re.fullmatch(rf"{name}-shard-0-\d{{4}}(-\d{{2}}){{5}}(-\d+)?\.snapshot", created["name"]), created["name"]
    directory = server.storage.parent / "snapshots" / name / "shards" / "0"
    assert (directory / created["name"]).is_file()
    assert (directory / (created["name"] + ".checksum")).read_text().strip() == created["checksum"]
    listed = _ok(http.get(f"/collections/{name}/shards/0/snapshots"), SHARD, "get")
    assert [s["name"] for s in listed] == [created["name"]] and listed[0]["checksum"] == created["checksum"]
    assert http.get(f"/collections/{name}/snapshots").json()["result"] == []  # not a collection snapshot

    download = http.get(f"/collections/{name}/shards/0/snapshots/{created['name']}")
    assert download.status_code == 200 and int(download.headers["content-length"]) == created["size"]
    assert hashlib.sha256(download.content).hexdigest() == created["checksum"]
    local = tmp_path / created["name"]
    local.write_bytes(download.content)
    with tarfile.open(local) as tar:
        meta = json.load(tar.extractfile("snapshot.json"))
    assert meta["format"] == "pydrant-collection-snapshot" and meta["shard_id"] == 0

    # Changes after the snapshot: points (gone after recovery), the collection's own
    # config and payload index declarations (kept: they are not the shard's).
    _fill(client, name, range(500, 520))
    client.delete(name, models.PointIdsList(points=[1, 2]), wait=True)
    client.update_collection(name, optimizers_config=models.OptimizersConfigDiff(indexing_threshold=12345))
    client.create_payload_index(name, "i", models.PayloadSchemaType.INTEGER, wait=True)

    recovered = http.put(f"/collections/{name}/shards/0/snapshots/recover", json={"location": created["name"], "checksum": created["checksum"]})
    assert _ok(recovered, SHARD + "/recover", "put") is True
    assert _state(client, name) == before
    info = client.get_collection(name)
    assert info.config.optimizer_config.indexing_threshold == 12345
    assert set(info.payload_schema) == {"group", "i"}
    assert {a.alias_name for a in client.get_collection_aliases(name).aliases} == {"shard_raw_alias"}
    hits = client.query_points("shard_raw_alias", query=_vector(3), limit=5,
                               query_filter=models.Filter(must=[models.FieldCondition(key="i", range=models.Range(lt=10))]))
    assert hits.points and all(p.payload["i"] < 10 for p in hits.points)

    # Upload: a wrong checksum changes nothing; the right one recovers.
    _fill(client, name, range(600, 610))
    wrong = http.post(f"/collections/{name}/shards/0/snapshots/upload", params={"checksum": "0" * 64},
                      files={"snapshot": ("s.snapshot", local.read_bytes())})
    assert wrong.status_code == 400 and "Checksum mismatch" in wrong.json()["status"]["error"]
    assert client.count(name).count == len(before) + 10
    uploaded = http.post(f"/collections/{name}/shards/0/snapshots/upload", params={"checksum": created["checksum"]},
                         files={"snapshot": ("s.snapshot", local.read_bytes())})
    assert _ok(uploaded, SHARD + "/upload", "post") is True
    assert _state(client, name) == before

    deleted = http.delete(f"/collections/{name}/shards/0/snapshots/{created['name']}")
    assert _ok(deleted, SHARD + "/{snapshot_name}", "delete") is True
    assert http.get(f"/collections/{name}/shards/0/snapshots").json()["result"] == []
    assert not list(directory.iterdir())


def test_qdrant_client_shard_methods(client, server):
    name = "shard_client"
    _make(client, name)
    _fill(client, name, range(30))
    before = _state(client, name)

    description = client.create_shard_snapshot(name, 0)
    assert description.name.startswith(f"{name}-shard-0-") and len(description.checksum) == 64
    assert [s.name for s in client.list_shard_snapshots(name, 0)] == [description.name]
    _fill(client, name, range(100, 130))
    # From the server's own download URL (downloaded, checked, then recovered)...
    url = f"{server.url}/collections/{name}/shards/0/snapshots/{description.name}"
    assert client.recover_shard_snapshot(name, 0, location=url, checksum=description.checksum, wait=True) is True
    assert _state(client, name) == before
    # ... and by its name in the shard's snapshot directory.
    _fill(client, name, range(200, 210))
    assert client.recover_shard_snapshot(name, 0, location=description.name, wait=True) is True
    assert _state(client, name) == before
    assert client.delete_shard_snapshot(name, 0, description.name) is True
    assert client.list_shard_snapshots(name, 0) == []


def test_other_shards_and_collections_are_404(client, http):
    name = "shard_missing"
    _make(client, name)
    _fill(client, name, range(5))
    created = http.post(f"/collections/{name}/shards/0/snapshots").json()["result"]
    requests = [
        ("get", SHARD, lambda base: http.get(base)),
        ("post", SHARD, lambda base: http.post(base)),
        ("get", SHARD + "/{snapshot_name}", lambda base: http.get(f"{base}/{created['name']}")),
        ("delete", SHARD + "/{snapshot_name}", lambda base: http.delete(f"{base}/{created['name']}")),
        ("put", SHARD + "/recover", lambda base: http.put(f"{base}/recover", json={"location": created["name"]})),
        ("post", SHARD + "/upload", lambda base: http.post(f"{base}/upload", files={"snapshot": ("s", b"x")})),
    ]
    for method, template, send in requests:
        response = send(f"/collections/{name}/shards/1/snapshots")
        assert response.status_code == 404, (method, template, response.text)
        assert assert_matches_spec(template, method, response)["status"]["error"] == "Not found: shard 1 not found"
        response = send("/collections/no_such_collection/shards/0/snapshots")
        assert response.status_code == 404
        assert response.json()["status"]["error"] == "Not found: Collection `no_such_collection` doesn't exist!"
    assert http.get(f"/collections/{name}/shards/x/snapshots").status_code == 404
    assert http.get(f"/collections/{name}/shards/0/snapshots/missing.snapshot").status_code == 404
    # The snapshot is still there: nothing above touched shard 0.
    assert [s["name"] for s in http.get(f"/collections/{name}/shards/0/snapshots").json()["result"]] == [created["name"]]


def test_recover_refusals_change_nothing(client, http, tmp_path):
    name, other = "shard_target", "shard_wider"
    _make(client, name)
    _fill(client, name, range(20))
    _make(client, other, size=DIM + 2)
    _fill(client, other, range(10), size=DIM + 2)
    wider = http.post(f"/collections/{other}/shards/0/snapshots").json()["result"]
    data = http.get(f"/collections/{other}/shards/0/snapshots/{wider['name']}").content
    before = _state(client, name)

    incompatible = http.post(f"/collections/{name}/shards/0/snapshots/upload", files={"snapshot": ("w.snapshot", data)})
    assert incompatible.status_code == 400
    assert "Snapshot is not compatible with existing collection" in incompatible.json()["status"]["error"]
    for location, status, message in (
        ("file:///etc/passwd", 400, "URLs with file scheme are not supported"),
        ("ftp://example.com/x.snapshot", 400, "URLs with ftp scheme are not supported"),
        ("nope.snapshot", 404, "Not found: Snapshot nope.snapshot not found"),
        ("/etc/passwd", 404, "not found"),
        ("../shard_wider/x.snapshot", 404, "not found"),
    ):
        response = http.put(f"/collections/{name}/shards/0/snapshots/recover", json={"location": location})
        assert response.status_code == status, (location, response.text)
        assert message in response.json()["status"]["error"], (location, response.text)
    not_a_tar = http.post(f"/collections/{name}/shards/0/snapshots/upload", files={"snapshot": ("x", b"garbage" * 50)})
    assert not_a_tar.status_code == 400
    assert _state(client, name) == before


def test_wait_false_answers_202(client, http):
    name = "shard_async"
    _make(client, name)
    _fill(client, name, range(10))
    accepted = http.post(f"/collections/{name}/shards/0/snapshots", params={"wait": "false"})
    assert accepted.status_code == 202
    assert assert_matches_spec(SHARD, "post", accepted, strict=False)["status"] == "accepted"
    deadline = time.time() + 60
    while not http.get(f"/collections/{name}/shards/0/snapshots").json()["result"]:
        assert time.time() < deadline, "the background shard snapshot never appeared"
        time.sleep(0.1)
