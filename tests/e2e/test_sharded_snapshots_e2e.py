"""Snapshots of sharded collections against real servers with qdrant-client 1.15.1
(docs/snapshots.md "Sharded collections"): a 3-shard collection's snapshot recovers by
upload, by URL and with `pydrant serve --snapshot` on other servers with the same points
in the same shards and the same search answers; a full snapshot with a sharded collection
restores with `--storage-snapshot`; a shard snapshot recovered alone leaves the other
shards as they are; snapshots taken while several clients write multi-shard batches
recover with every batch whole or absent."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import pytest
from qdrant_client import QdrantClient, models

from serverproc import ServerProcess

pytestmark = pytest.mark.e2e

DIM = 4
N = 300


class ServerWithArgs(ServerProcess):
    """A server of the test's own (in a new directory), started with extra arguments."""

    def __init__(self, storage: Path, args: list[str] | None = None):
        storage.parent.mkdir(parents=True, exist_ok=True)
        super().__init__(storage)
        self.args = list(args or [])

    def command(self) -> list[str]:
        return super().command() + self.args


def _vector(i: int) -> list[float]:
    return [float((i * 7 + k) % 11) - 5.0 for k in range(DIM)]


def _fill(client: QdrantClient, name: str, ids, **payload) -> None:
    client.upsert(name, [models.PointStruct(id=i, vector=_vector(i), payload={"i": i, **payload}) for i in ids], wait=True)


def _state(client: QdrantClient, name: str) -> dict:
    records, _ = client.scroll(name, limit=100_000, with_payload=True, with_vectors=True)
    return {r.id: (r.payload, [round(x, 5) for x in r.vector]) for r in records}


def _hits(client: QdrantClient, name: str) -> list:
    found = client.query_points(name, query=[0.5, -1.0, 2.0, 0.25], limit=20,
                                query_filter=models.Filter(must=[models.FieldCondition(key="i", range=models.Range(gte=10))]))
    return [(p.id, round(p.score, 4)) for p in found.points]


def _per_shard(url: str, name: str) -> dict[int, int]:
    response = httpx.get(f"{url}/collections/{name}/cluster", timeout=30)
    assert response.status_code == 200, response.text
    return {s["shard_id"]: s["points_count"] for s in response.json()["result"]["local_shards"]}


def _make(client: QdrantClient, name: str) -> None:
    client.create_collection(name, vectors_config=models.VectorParams(size=DIM, distance=models.Distance.DOT), shard_number=3)
    client.create_payload_index(name, "i", models.PayloadSchemaType.INTEGER, wait=True)


def test_round_trip_by_upload_url_and_serve_snapshot(client, server, tmp_path):
    name = "sharded_rt"
    _make(client, name)
    _fill(client, name, range(N))
    client.delete(name, models.PointIdsList(points=[1, 2, 3]), wait=True)
    counts, state, hits = _per_shard(server.url, name), _state(client, name), _hits(client, name)
    assert len(counts) == 3 and sum(counts.values()) == N - 3 and all(counts.values())

    description = client.create_snapshot(name, wait=True)
    assert description.name.startswith(f"{name}-0-") and len(description.checksum) == 64
    url = f"{server.url}/collections/{name}/snapshots/{description.name}"
    local = tmp_path / description.name
    local.write_bytes(httpx.get(url, timeout=60).content)

    _fill(client, name, range(N, N + 40))
    client.delete(name, models.PointIdsList(points=list(range(50))), wait=True)
    assert _state(client, name) != state

    # over itself, from its own URL
    assert client.recover_snapshot(name, url, checksum=description.checksum, wait=True) is True
    assert _per_shard(server.url, name) == counts and _state(client, name) == state and _hits(client, name) == hits

    other = ServerWithArgs(tmp_path / "other" / "storage").start()
    try:
        remote = QdrantClient(url=other.url, timeout=60)
        with open(local, "rb") as f:  # qdrant-client's upload sends the same multipart body
            uploaded = httpx.post(f"{other.url}/collections/copy/snapshots/upload",
                                  params={"checksum": description.checksum}, files={"snapshot": f}, timeout=120)
        assert uploaded.status_code == 200, uploaded.text
        assert _per_shard(other.url, "copy") == counts
        assert _state(remote, "copy") == state and _hits(remote, "copy") == hits
        info = remote.get_collection("copy")
        assert info.config.params.shard_number == 3 and set(info.payload_schema) == {"i"}
        # the recovered collection takes writes routed as the source's were
        _fill(remote, "copy", range(5000, 5030))
        _fill(client, name, range(5000, 5030))
        assert _per_shard(other.url, "copy") == _per_shard(server.url, name)
        remote.close()
    finally:
        other.stop()

    restored = ServerWithArgs(tmp_path / "restored" / "storage", ["--snapshot", f"{local}:again"]).start()
    try:
        remote = QdrantClient(url=restored.url, timeout=60)
        assert _per_shard(restored.url, "again") == counts and _state(remote, "again") == state
        assert _hits(remote, "again") == hits
        remote.close()
    finally:
        restored.stop()


def test_full_snapshot_with_a_sharded_collection(client, server, tmp_path):
    name = "sharded_full"
    _make(client, name)
    _fill(client, name, range(120))
    client.update_collection_aliases(change_aliases_operations=[
        models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name=name, alias_name="sharded_full_alias")),
    ])
    counts, state = _per_shard(server.url, name), _state(client, name)
    description = client.create_full_snapshot(wait=True)
    local = tmp_path / description.name
    local.write_bytes(httpx.get(f"{server.url}/snapshots/{description.name}", timeout=120).content)
    restored = ServerWithArgs(tmp_path / "full" / "storage", ["--storage-snapshot", str(local)]).start()
    try:
        remote = QdrantClient(url=restored.url, timeout=60)
        assert _per_shard(restored.url, name) == counts
        assert _state(remote, "sharded_full_alias") == state
        remote.close()
    finally:
        restored.stop()


def test_shard_snapshot_recovered_alone(client, server):
    name = "sharded_one"
    _make(client, name)
    _fill(client, name, range(N))
    before = _per_shard(server.url, name)
    description = client.create_shard_snapshot(name, 1, wait=True)
    assert description.name.startswith(f"{name}-shard-1-")
    assert [s.name for s in client.list_shard_snapshots(name, 1)] == [description.name]

    client.delete(name, models.PointIdsList(points=list(range(0, N, 3))), wait=True)
    _fill(client, name, range(N, N + 60))
    changed = _per_shard(server.url, name)
    assert changed[1] != before[1]

    url = f"{server.url}/collections/{name}/shards/1/snapshots/{description.name}"
    assert client.recover_shard_snapshot(name, 1, location=url, checksum=description.checksum, wait=True) is True
    after = _per_shard(server.url, name)
    assert after == {0: changed[0], 1: before[1], 2: changed[2]}
    assert client.count(name, exact=True).count == changed[0] + before[1] + changed[2]
    for missing in (3, 17):
        with pytest.raises(Exception, match=f"shard {missing} not found"):
            client.create_shard_snapshot(name, missing)
    assert client.delete_shard_snapshot(name, 1, description.name) is True


def test_snapshots_under_concurrent_writes_hold_whole_batches(client, server):
    """Four clients upsert batches of 15 points spread over the three shards, each point
    tagged with its batch; six snapshots are taken meanwhile. Recovered, each holds every
    batch acknowledged before it was asked for, and every batch wholly or not at all."""
    name = "sharded_busy"
    _make(client, name)
    per_batch = 15
    acknowledged: set[int] = set()
    lock = threading.Lock()
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer(first: int, wait: bool) -> None:
        own = QdrantClient(url=server.url, timeout=60)
        batch = first
        try:
            while not stop.is_set():
                _points = [models.PointStruct(id=batch * 100 + k, vector=_vector(k), payload={"batch": batch})
                           for k in range(per_batch)]
                own.upsert(name, _points, wait=wait)
                with lock:
                    acknowledged.add(batch)
                batch += 4
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)
        finally:
            own.close()

    threads = [threading.Thread(target=writer, args=(first, first % 2 == 0)) for first in range(4)]
    for thread in threads:
        thread.start()
    taken = []
    try:
        for _ in range(6):
            stop.wait(0.15)
            with lock:
                before = set(acknowledged)
            taken.append((before, client.create_snapshot(name, wait=True)))
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
    assert not errors, errors[:1]
    assert len(acknowledged) > 20
    for i, (before, description) in enumerate(taken):
        copy = f"{name}_r{i}"
        url = f"{server.url}/collections/{name}/snapshots/{description.name}"
        assert client.recover_snapshot(copy, url, wait=True) is True
        ids = set(_state(client, copy))
        batches = {point_id // 100 for point_id in ids}
        for batch in batches:
            assert {batch * 100 + k for k in range(per_batch)} <= ids, f"snapshot {i}: batch {batch} is half in it"
        assert before <= batches, f"snapshot {i} lacks acknowledged batches {sorted(before - batches)[:5]}"
        client.delete_collection(copy)
