"""Snapshots of sharded collections (collection/sharded.py), in process over HTTP
(docs/snapshots.md "Sharded collections"): collection snapshots of format version 2 round
trip with every shard's points, the shard keys of a custom collection come back, a shard
snapshot recovered alone replaces that shard only, version 1 snapshots still recover, the
compatibility checks of Qdrant refuse a snapshot of another shape, full snapshots carry
sharded collections, and a snapshot taken under concurrent multi-shard writes holds each
request wholly or not at all."""

from __future__ import annotations

import json
import logging
import tarfile
from pathlib import Path

import pytest
import trio
from inprocess import count_while_recovering, running_app
from qdrant_client.http import models

from pydrant.collection.barrier import WriteBarrier
from pydrant.collection.hash_ring import HashRing
from pydrant.collection.sharded import ShardedCollection, is_sharded, open_collection
from pydrant.storage import full_snapshots

pytestmark = pytest.mark.trio

VECTORS = {"size": 4, "distance": "Dot"}
N = 240


def _vector(i: int) -> list[float]:
    return [1.0, float(i % 7), 0.5 + (i % 3), float(i % 11) / 10]


def _points(ids, **payload) -> list[dict]:
    return [{"id": i, "vector": _vector(i), "payload": {"n": i, **payload}} for i in ids]


async def _json(response) -> dict:
    return json.loads(await response.get_data())


async def _ok(response):
    body = await _json(response)
    assert response.status_code == 200, body
    return body["result"]


def _toc(client):
    return client.app.extensions["toc"]


def _per_shard(toc, name: str) -> dict[int, int]:
    collection = toc.get(name)
    assert isinstance(collection, ShardedCollection)
    return {shard_id: shard.points_count() for shard_id, shard in sorted(collection.shards.items())}


async def _state(client, name: str) -> dict:
    result = await _ok(await client.post(f"/collections/{name}/points/scroll", json={
        "limit": 10_000, "with_payload": True, "with_vector": True}))
    page = models.ScrollResult(**result)
    return {p.id: (p.payload, [round(x, 5) for x in p.vector]) for p in page.points}


async def _search(client, name: str) -> list:
    result = await _ok(await client.post(f"/collections/{name}/points/query", json={
        "query": [0.3, 1.0, 0.2, 0.7], "limit": 25, "with_payload": True}))
    return [(p.id, round(p.score, 4)) for p in models.QueryResponse(**result).points]


async def _create(client, name: str, **params) -> None:
    assert await _ok(await client.put(f"/collections/{name}", json={"vectors": VECTORS, **params})) is True


async def _upsert(client, name: str, points: list[dict], **extra) -> None:
    await _ok(await client.put(f"/collections/{name}/points?wait=true", json={"points": points, **extra}))


async def _snapshot(client, name: str) -> tuple[dict, Path]:
    created = models.SnapshotDescription(**await _ok(await client.post(f"/collections/{name}/snapshots")))
    directory = _toc(client).snapshots_root / name
    return created.model_dump(), directory / created.name


async def _recover(client, name: str, path: Path):
    return await client.put(f"/collections/{name}/snapshots/recover", json={"location": str(path)})


def _members(path: Path) -> tuple[dict, list[str]]:
    with tarfile.open(path) as tar:
        meta = json.load(tar.extractfile("snapshot.json"))
        return meta, sorted(tar.getnames())


async def test_three_shards_round_trip(tmp_path):
    async with running_app(tmp_path) as client:
        toc = _toc(client)
        await _create(client, "c", shard_number=3)
        await _ok(await client.put("/collections/c/index?wait=true", json={"field_name": "n", "field_schema": "integer"}))
        await _upsert(client, "c", _points(range(N)))
        await _ok(await client.post("/collections/c/points/delete?wait=true", json={"points": [3, 4, 5]}))
        counts, state, hits = _per_shard(toc, "c"), await _state(client, "c"), await _search(client, "c")
        assert len(counts) == 3 and all(counts.values()) and sum(counts.values()) == N - 3

        created, path = await _snapshot(client, "c")
        meta, names = _members(path)
        assert meta["format"] == "pydrant-collection-snapshot" and meta["format_version"] == 2
        assert meta["collection"] == "c" and meta["sharding_method"] == "auto"
        assert [(s["id"], s["key"]) for s in meta["shards"]] == [(0, None), (1, None), (2, None)]
        assert all(isinstance(s["op_num"], int) and s["op_num"] >= 1 for s in meta["shards"])
        for required in ("config.json", "payload_index.json", "shards.json", "shards/0/manifest.json",
                         "shards/1/wal.cbor", "shards/2/segments"):
            assert required in names, required
        assert "manifest.json" not in names and "wal.cbor" not in names

        # after the snapshot: points added, deleted, an index dropped, the config changed
        await _upsert(client, "c", _points(range(1000, 1050)))
        await _ok(await client.post("/collections/c/points/delete?wait=true", json={"points": list(range(100))}))
        await _ok(await client.delete("/collections/c/index/n?wait=true"))
        await _ok(await client.patch("/collections/c", json={"optimizers_config": {"indexing_threshold": 777}}))
        assert _per_shard(toc, "c") != counts

        assert await _ok(await _recover(client, "c", path)) is True
        assert _per_shard(toc, "c") == counts
        assert await _state(client, "c") == state
        assert await _search(client, "c") == hits
        info = models.CollectionInfo(**await _ok(await client.get("/collections/c")))
        assert info.config.params.shard_number == 3 and info.points_count == N - 3
        assert set(info.payload_schema) == {"n"}  # the snapshot's config and indexes win
        assert info.config.optimizer_config.indexing_threshold != 777
        filtered = await _ok(await client.post("/collections/c/points/count", json={
            "exact": True, "filter": {"must": [{"key": "n", "range": {"lt": 50}}]}}))
        assert filtered["count"] == 47

        # into a new name: the sharded layout is built, and it serves writes routed by the ring
        assert await _ok(await _recover(client, "copy", path)) is True
        assert is_sharded(toc.collections_dir / "copy")
        assert _per_shard(toc, "copy") == counts and await _state(client, "copy") == state
        await _upsert(client, "copy", _points(range(2000, 2030)))
        ring = HashRing([0, 1, 2])
        for shard_id, shard in toc.get("copy").shards.items():
            assert shard.reads.existing_ids(list(range(2000, 2030))) == {i for i in range(2000, 2030) if ring.shard_of(i) == shard_id}

    # and after a restart
    async with running_app(tmp_path) as client:
        assert _per_shard(_toc(client), "c") == counts
        assert await _search(client, "c") == hits


async def test_custom_collection_with_two_keys_round_trip(tmp_path):
    async with running_app(tmp_path) as client:
        toc = _toc(client)
        await _create(client, "k", sharding_method="custom", shard_number=2)
        await toc.get("k").create_shard_key("north", 2)
        await toc.get("k").create_shard_key(7, 1)
        await _upsert(client, "k", _points(range(0, 80), side="north"), shard_key="north")
        await _upsert(client, "k", _points(range(50, 90), side="seven"), shard_key=7)
        counts = _per_shard(toc, "k")
        assert counts.keys() == {1, 2, 3} and counts[3] == 40 and counts[1] + counts[2] == 80
        state = await _state(client, "k")

        created, path = await _snapshot(client, "k")
        meta, _ = _members(path)
        assert meta["sharding_method"] == "custom"
        assert [(s["id"], s["key"]) for s in meta["shards"]] == [(1, "north"), (2, "north"), (3, 7)]

        # after it: one key dropped, another created and filled
        await toc.get("k").delete_shard_key(7)
        await toc.get("k").create_shard_key("south", 1)
        await _upsert(client, "k", _points(range(500, 520)), shard_key="south")
        assert set(toc.get("k").shard_keys()) == {"north", "south"}

        assert await _ok(await _recover(client, "k", path)) is True
        recovered = toc.get("k")
        assert recovered.shard_keys() == {"north": [1, 2], 7: [3]}
        assert _per_shard(toc, "k") == counts and await _state(client, "k") == state
        north = await _ok(await client.post("/collections/k/points/count", json={"exact": True, "shard_key": "north"}))
        seven = await _ok(await client.post("/collections/k/points/count", json={"exact": True, "shard_key": 7}))
        assert (north["count"], seven["count"]) == (80, 40)
        records = await _ok(await client.post("/collections/k/points/scroll", json={"limit": 5, "shard_key": 7}))
        assert [p["shard_key"] for p in records["points"]] == [7] * 5
        # writes route to the recovered keys; a new key takes the next id
        await _upsert(client, "k", _points([900]), shard_key=7)
        assert recovered.shards[3].reads.existing_ids([900]) == {900}
        await recovered.create_shard_key("east", 1)
        assert recovered.shard_keys()["east"] == [4]

        # a custom collection's snapshot over an auto one of the same shard number: refused
        await _create(client, "auto2", shard_number=2)
        refused = await _recover(client, "auto2", path)
        assert refused.status_code == 400
        assert "sharding method is incompatible: origin sharding method: Auto, while other sharding method: Custom" in (
            await _json(refused))["status"]["error"]


async def test_shard_snapshot_recovered_alone_leaves_the_other_shards(tmp_path, caplog):
    async with running_app(tmp_path) as client:
        toc = _toc(client)
        await _create(client, "s", shard_number=3)
        await _upsert(client, "s", _points(range(N)))
        before = _per_shard(toc, "s")
        created = models.SnapshotDescription(**await _ok(await client.post("/collections/s/shards/1/snapshots")))
        assert created.name.startswith("s-shard-1-")
        listed = await _ok(await client.get("/collections/s/shards/1/snapshots"))
        assert [s["name"] for s in listed] == [created.name]
        assert await _ok(await client.get("/collections/s/shards/0/snapshots")) == []
        path = toc.snapshots_root / "s" / "shards" / "1" / created.name
        meta, names = _members(path)
        assert meta["format_version"] == 1 and meta["shard_id"] == 1 and meta["shard_key"] is None
        assert "manifest.json" in names and "shards.json" not in names

        # every shard changes after the snapshot
        await _ok(await client.post("/collections/s/points/delete?wait=true", json={"points": list(range(0, N, 2))}))
        await _upsert(client, "s", _points(range(3000, 3060)))
        changed = _per_shard(toc, "s")
        others = {shard_id: await _shard_state(toc, "s", shard_id) for shard_id in (0, 2)}
        paths_before = {shard_id: toc.get("s").shards[shard_id] for shard_id in (0, 2)}

        recovered = await client.put("/collections/s/shards/1/snapshots/recover", json={"location": created.name})
        assert await _ok(recovered) is True
        after = _per_shard(toc, "s")
        assert after[1] == before[1]
        assert after[0] == changed[0] and after[2] == changed[2]
        for shard_id in (0, 2):
            assert toc.get("s").shards[shard_id] is paths_before[shard_id]  # not even reopened
            assert await _shard_state(toc, "s", shard_id) == others[shard_id]
        ring = HashRing([0, 1, 2])
        assert await _shard_state(toc, "s", 1) == {i for i in range(N) if ring.shard_of(i) == 1}
        # writes after the swap reach the new shard 1 and survive a reopen
        await _upsert(client, "s", _points(range(4000, 4040)))
        ones = {i for i in range(4000, 4040) if ring.shard_of(i) == 1}
        assert toc.get("s").shards[1].reads.existing_ids(list(range(4000, 4040))) == ones

        # by upload, into another shard: allowed (as Qdrant), with a warning
        with caplog.at_level(logging.WARNING, logger="pydrant.collection"):
            uploaded = await _upload(client, "/collections/s/shards/2/snapshots/upload", path)
            assert await _ok(uploaded) is True
        assert _per_shard(toc, "s")[2] == before[1]
        assert any("hash to other shards" in r.getMessage() for r in caplog.records)

        # the six operations on a shard the collection lacks: 404
        for response in (
            await client.get("/collections/s/shards/3/snapshots"),
            await client.post("/collections/s/shards/3/snapshots"),
            await client.get(f"/collections/s/shards/3/snapshots/{created.name}"),
            await client.delete(f"/collections/s/shards/3/snapshots/{created.name}"),
            await client.put("/collections/s/shards/3/snapshots/recover", json={"location": created.name}),
            await _upload(client, "/collections/s/shards/3/snapshots/upload", path),
        ):
            assert response.status_code == 404
            assert (await _json(response))["status"]["error"] == "Not found: shard 3 not found"

        # a shard snapshot of a sharded collection is not a collection snapshot, and the
        # other way round
        wrong = await _recover(client, "s", path)
        assert wrong.status_code == 400 and "is a shard snapshot of shard 1 of a sharded collection" in (
            await _json(wrong))["status"]["error"]
        _, whole = await _snapshot(client, "s")
        unchanged = _per_shard(toc, "s")
        wrong = await _upload(client, "/collections/s/shards/0/snapshots/upload", whole)
        assert wrong.status_code == 400 and "not a shard snapshot" in (await _json(wrong))["status"]["error"]
        assert _per_shard(toc, "s") == unchanged
        assert not list(toc.pending_dir.iterdir())

    async with running_app(tmp_path) as client:  # the swapped shards are what loads
        after_restart = _per_shard(_toc(client), "s")
        assert after_restart[1] == before[1] + len(ones) and after_restart[2] == before[1]


async def _shard_state(toc, name: str, shard_id: int) -> set:
    shard = toc.get(name).shards[shard_id]
    records, _ = await trio.to_thread.run_sync(shard.reads.scroll, None, 100_000, None, False, False)
    return {r.id for r in records}


BOUNDARY = "sharded-snapshot-test"


async def _upload(client, url: str, path: Path):
    """POST the snapshot file as the multipart part `snapshot` (as qdrant-client sends it)."""
    body = (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="snapshot"; filename="{path.name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n").encode() + path.read_bytes() + f"\r\n--{BOUNDARY}--\r\n".encode()
    return await client.post(url, data=body, headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})


async def test_requests_during_a_shard_swap_are_answered(tmp_path):
    async with running_app(tmp_path) as client:
        await _create(client, "w", shard_number=3)
        await _upsert(client, "w", _points(range(N)))
        created = await _ok(await client.post("/collections/w/shards/2/snapshots"))
        answers = await count_while_recovering(client, "w", "/collections/w/shards/2/snapshots/recover", created["name"])
    assert len(answers) > 10
    assert not [a for a in answers if a[0] != 200], answers[:3]
    assert all(json.loads(text)["result"]["count"] == N for _, text in answers)


async def test_v1_snapshots_and_the_compatibility_checks(tmp_path):
    async with running_app(tmp_path) as client:
        toc = _toc(client)
        await _create(client, "plain")
        await _upsert(client, "plain", _points(range(60)))
        state = await _state(client, "plain")
        _, v1 = await _snapshot(client, "plain")
        meta, names = _members(v1)
        assert meta["format_version"] == 1 and "manifest.json" in names and "shards.json" not in names
        await _ok(await client.post("/collections/plain/points/delete?wait=true", json={"points": list(range(30))}))
        assert await _ok(await _recover(client, "plain", v1)) is True
        assert await _state(client, "plain") == state
        assert not is_sharded(toc.collections_dir / "plain")

        await _create(client, "three", shard_number=3)
        await _upsert(client, "three", _points(range(90)))
        three_state = await _state(client, "three")
        _, v2 = await _snapshot(client, "three")

        # Qdrant's check: the shard number must match, both ways; nothing changes
        refused = await _recover(client, "three", v1)
        assert refused.status_code == 400
        assert (await _json(refused))["status"]["error"] == (
            "Wrong input: Snapshot is not compatible with existing collection: "
            "Collection shard number: 3 Snapshot shard number: 1")
        refused = await _recover(client, "plain", v2)
        assert refused.status_code == 400 and "Collection shard number: 1 Snapshot shard number: 3" in (
            await _json(refused))["status"]["error"]
        assert await _state(client, "three") == three_state and await _state(client, "plain") == state
        await _create(client, "other_vectors", vectors={"size": 5, "distance": "Dot"}, shard_number=3)
        refused = await _recover(client, "other_vectors", v2)
        assert refused.status_code == 400 and "Collection vectors" in (await _json(refused))["status"]["error"]

        # a collection that is gone takes either: the snapshot's layout is built
        assert await _ok(await client.delete("/collections/three")) is True
        assert await _ok(await _recover(client, "three", v1)) is True
        assert not is_sharded(toc.collections_dir / "three") and await _state(client, "three") == state
        assert await _ok(await client.delete("/collections/three")) is True
        assert await _ok(await _recover(client, "three", v2)) is True
        assert is_sharded(toc.collections_dir / "three") and await _state(client, "three") == three_state
        # a v1 shard snapshot (of a one-shard collection) recovers into a shard of a sharded one
        plain_shard = await _ok(await client.post("/collections/plain/shards/0/snapshots"))
        shard_file = toc.snapshots_root / "plain" / "shards" / "0" / plain_shard["name"]
        assert await _ok(await _upload(client, "/collections/three/shards/0/snapshots/upload", shard_file)) is True
        assert _per_shard(toc, "three")[0] == 60


async def test_full_snapshot_restores_sharded_collections(tmp_path):
    async with running_app(tmp_path) as client:
        toc = _toc(client)
        await _create(client, "auto3", shard_number=3)
        await _upsert(client, "auto3", _points(range(N)))
        await _create(client, "keyed", sharding_method="custom")
        await toc.get("keyed").create_shard_key("a", 1)
        await toc.get("keyed").create_shard_key("b", 2)
        await _upsert(client, "keyed", _points(range(40)), shard_key="a")
        await _upsert(client, "keyed", _points(range(40, 70)), shard_key="b")
        await _create(client, "plain")
        await _upsert(client, "plain", _points(range(10)))
        expected = {"auto3": _per_shard(toc, "auto3"), "keyed": _per_shard(toc, "keyed")}
        states = {name: await _state(client, name) for name in ("auto3", "keyed", "plain")}
        full = models.SnapshotDescription(**await _ok(await client.post("/snapshots")))
        path = toc.snapshots_root / full.name

    storage = tmp_path / "restored"
    storage.mkdir()
    restored = full_snapshots.restore_at_start(storage, full=str(path))
    assert sorted(restored) == ["auto3", "keyed", "plain"]
    for name, counts in expected.items():
        collection = open_collection(storage / "collections" / name)
        try:
            assert isinstance(collection, ShardedCollection)
            assert {i: s.points_count() for i, s in sorted(collection.shards.items())} == counts
        finally:
            collection._close_files()
    async with running_app(tmp_path, {"storage.storage_path": str(storage)}) as client:
        assert _toc(client).get("keyed").shard_keys() == {"a": [1], "b": [2, 3]}
        for name, state in states.items():
            assert await _state(client, name) == state


async def test_snapshot_under_concurrent_writes_holds_whole_requests(tmp_path, monkeypatch):
    """Each request upserts points of every shard, tagged with its number; snapshots are
    taken while they run. Each snapshot, recovered, holds every request acknowledged before
    it was asked for, and each request wholly or not at all. The WAL append is slowed so a
    cut without the barrier would catch requests half logged."""
    from pydrant.wal import Wal

    append = Wal.append_many

    def slow_append(self, entries):
        import time
        time.sleep(0.003)
        return append(self, entries)

    monkeypatch.setattr(Wal, "append_many", slow_append)
    per_request = 12
    async with running_app(tmp_path) as client:
        await _create(client, "busy", shard_number=3)
        acknowledged: list[int] = []
        snapshots: list[tuple[set[int], Path]] = []
        stop = trio.Event()

        async def writer(first: int, wait: bool):
            request = first
            while not stop.is_set():
                ids = [request * 100 + k for k in range(per_request)]
                body = {"points": _points(ids, request=request)}
                response = await client.put(f"/collections/busy/points?wait={str(wait).lower()}", json=body)
                assert response.status_code == 200, await response.get_data()
                acknowledged.append(request)
                request += 4

        async def snapshotter():
            for _ in range(6):
                await trio.sleep(0.05)
                before = set(acknowledged)
                _, path = await _snapshot(client, "busy")
                snapshots.append((before, path))
            stop.set()

        async with trio.open_nursery() as nursery:
            for first, wait in ((1, True), (2, False), (3, True), (4, False)):
                nursery.start_soon(writer, first, wait)
            nursery.start_soon(snapshotter)

        ring = HashRing([0, 1, 2])
        assert all(len({ring.shard_of(r * 100 + k) for k in range(per_request)}) == 3 for r in acknowledged[:20])
        for i, (before, path) in enumerate(snapshots):
            name = f"r{i}"
            assert await _ok(await _recover(client, name, path)) is True
            ids = set((await _state(client, name)).keys())
            requests = {point_id // 100 for point_id in ids}
            for request in requests:
                whole = {request * 100 + k for k in range(per_request)}
                assert whole <= ids, f"snapshot {i}: request {request} is half in it"
            assert before <= requests, f"snapshot {i} lacks acknowledged requests {sorted(before - requests)[:5]}"
            assert await _ok(await client.delete(f"/collections/{name}")) is True
        assert len(snapshots) == 6 and len(acknowledged) > 30


async def test_write_barrier_pause_waits_for_writes_in_flight():
    barrier = WriteBarrier()
    log: list[str] = []
    release = trio.Event()

    async def write(name: str):
        async with barrier.writing():
            log.append(f"{name} in")
            await release.wait()
            log.append(f"{name} out")

    async def pause():
        async with barrier.pause():
            log.append("paused")
            assert barrier.active == 0
            await trio.sleep(0.01)
        log.append("resumed")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(write, "a")
        await trio.sleep(0.01)
        nursery.start_soon(pause)
        await trio.sleep(0.01)
        assert barrier.paused and log == ["a in"]
        nursery.start_soon(write, "b")  # waits at the gate
        await trio.sleep(0.01)
        assert log == ["a in"]
        release.set()
    assert log == ["a in", "a out", "paused", "resumed", "b in", "b out"]
