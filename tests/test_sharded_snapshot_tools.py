"""The offline tools on a sharded collection's snapshot, format version 2 (`pydrant snapshot
inspect|verify|restore`, docs/snapshots.md "Tools"): inspect shows every shard with its key,
op_num and point count, verify checks every shard, restore builds the sharded layout that a
server then serves; damaged v2 snapshots are reported. The snapshots are taken in process."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from pathlib import Path

import pytest
import trio
from inprocess import running_app

from pydrant import cli, snapshot_tools
from pydrant.collection.hash_ring import HashRing
from pydrant.collection.sharded import ShardedCollection, is_sharded, open_collection

N = 90


async def _take(tmp_path: Path) -> tuple[Path, Path]:
    """(a 3-shard collection's snapshot, a custom one's with keys "a" (2 shards) and 5)."""
    async with running_app(tmp_path) as client:
        toc = client.app.extensions["toc"]
        for name, params in (("three", {"shard_number": 3}), ("keyed", {"sharding_method": "custom"})):
            r = await client.put(f"/collections/{name}", json={"vectors": {"size": 2, "distance": "Dot"}, **params})
            assert r.status_code == 200, await r.get_data()
        await toc.get("keyed").create_shard_key("a", 2)
        await toc.get("keyed").create_shard_key(5, 1)
        points = [{"id": i, "vector": [1.0, float(i)]} for i in range(N)]
        assert (await client.put("/collections/three/points?wait=true", json={"points": points})).status_code == 200
        for key, ids in (("a", range(0, 30)), (5, range(30, 42))):
            body = {"points": [{"id": i, "vector": [1.0, float(i)]} for i in ids], "shard_key": key}
            assert (await client.put("/collections/keyed/points?wait=true", json=body)).status_code == 200
        files = []
        for name in ("three", "keyed"):
            r = await client.post(f"/collections/{name}/snapshots")
            assert r.status_code == 200
            snapshot = json.loads(await r.get_data())["result"]["name"]
            path = tmp_path / snapshot
            shutil.copy(tmp_path / "snap" / name / snapshot, path)
            shutil.copy(tmp_path / "snap" / name / (snapshot + ".checksum"), tmp_path / (snapshot + ".checksum"))
            files.append(path)
    return files[0], files[1]


@pytest.fixture
def taken(tmp_path) -> tuple[Path, Path]:
    return trio.run(_take, tmp_path)


def test_inspect_shows_every_shard(taken, capsys):
    three, keyed = taken
    report = snapshot_tools.inspect(three)
    assert report["problems"] == [] and report["checksum"]["status"] == "ok"
    assert report["format_version"] == 2 and report["format_supported"] is True
    assert report["sharding_method"] == "auto" and report["op_num"] is None
    ring = HashRing([0, 1, 2])
    expected = {s: sum(1 for i in range(N) if ring.shard_of(i) == s) for s in (0, 1, 2)}
    assert {s["id"]: s["points"] for s in report["shards"]} == expected
    assert report["points"] == N and all(s["op_num"] >= 1 and s["segments"] for s in report["shards"])
    text = snapshot_tools.render_inspect(report)
    assert "sharding: auto, 3 shards" in text
    assert f"shard 1: {expected[1]} points in 1 segments" in text

    report = snapshot_tools.inspect(keyed)
    assert report["sharding_method"] == "custom" and report["problems"] == []
    assert [(s["id"], s["key"]) for s in report["shards"]] == [(1, "a"), (2, "a"), (3, 5)]
    assert sum(s["points"] for s in report["shards"][:2]) == 30 and report["shards"][2]["points"] == 12
    assert cli.main(["snapshot", "inspect", str(keyed), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["points"] == 42
    assert cli.main(["snapshot", "inspect", str(keyed)]) == 0
    assert "shard 3 (key 5): 12 points" in capsys.readouterr().out


def test_verify_checks_every_shard(taken, capsys):
    three, keyed = taken
    problems, facts = snapshot_tools.verify(three)
    assert problems == [] and (facts["shards"], facts["points"]) == (3, N)
    assert cli.main(["snapshot", "verify", str(keyed)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ok: ") and "3 shards" in out and "42 points" in out


def _rewrite(source: Path, target: Path, change) -> Path:
    """A copy of the tar `source` with `change(name, data) -> data | None` applied to every
    member (None drops it; a directory's data is b"")."""
    with tarfile.open(source) as tar, tarfile.open(target, "w") as out:
        for member in tar:
            data = tar.extractfile(member).read() if member.isfile() else None
            if data is not None:
                data = change(member.name, data)
                if data is None:
                    continue
                member.size = len(data)
                out.addfile(member, io.BytesIO(data))
            elif change(member.name, b"") is not None:
                out.addfile(member)
    return target


def _edit_json(target: str, edit):
    """A `_rewrite` change that edits the JSON member `target` with `edit(value)`."""
    def change(name: str, data: bytes) -> bytes:
        if name != target:
            return data
        value = json.loads(data)
        edit(value)
        return json.dumps(value).encode()

    return change


def _drop_last_shard(layout: dict) -> None:
    layout["shards"].pop()


def _renumber_last_shard(layout: dict) -> None:
    layout["shards"][-1]["id"] = 9


def _custom_method(layout: dict) -> None:
    layout["sharding_method"] = "custom"


@pytest.mark.parametrize("case, change, reason, inspect_sees", [
    ("shard emptied", lambda name, data: None if name.startswith("shards/1/") else data,
     "snapshot is incomplete or damaged (shard 1)", True),
    ("shard missing", lambda name, data: None if name.startswith("shards/1") else data,
     "shard 1 listed in shards.json is missing", True),
    ("layout differs", _edit_json("shards.json", _renumber_last_shard), "list different shards", False),
    ("shard unlisted", _edit_json("shards.json", _drop_last_shard), "list different shards", False),
    ("directory unlisted", lambda name, data: _edit_json(name, _drop_last_shard)(name, data) if name in (
        "shards.json", "snapshot.json") else data, "shards/2 is not in its shards.json", False),
    ("manifest missing", lambda name, data: None if name == "shards/2/manifest.json" else data, "(shard 2)", True),
    ("bad method", _edit_json("shards.json", _custom_method), "is not the config's", False),
])
def test_verify_reports_damaged_v2(taken, tmp_path, capsys, case, change, reason, inspect_sees):
    three, _ = taken
    damaged = _rewrite(three, tmp_path / f"{case.replace(' ', '_')}.snapshot", change)
    problems, _ = snapshot_tools.verify(damaged)
    assert problems and any(reason in p for p in problems), problems
    assert cli.main(["snapshot", "verify", str(damaged)]) == 1
    assert bool(snapshot_tools.inspect(damaged)["problems"]) == inspect_sees


def test_restore_builds_the_sharded_layout(taken, tmp_path):
    three, keyed = taken
    storage = tmp_path / "offline"
    storage.mkdir()
    assert cli.main(["snapshot", "restore", str(keyed), "--into", str(storage), "--name", "copy"]) == 0
    assert cli.main(["snapshot", "restore", str(three), "--into", str(storage)]) == 0
    assert is_sharded(storage / "collections" / "copy") and is_sharded(storage / "collections" / "three")
    assert not (storage / "pending").exists() or not list((storage / "pending").iterdir())
    collection = open_collection(storage / "collections" / "copy")
    try:
        assert isinstance(collection, ShardedCollection)
        assert collection.shard_keys() == {"a": [1, 2], 5: [3]}
        assert collection.points_count() == 42 and collection.shards[3].points_count() == 12
    finally:
        collection._close_files()

    async def served():
        async with running_app(tmp_path / "served", {"storage.storage_path": str(storage)}) as client:
            r = await client.post("/collections/three/points/count", json={"exact": True})
            assert json.loads(await r.get_data())["result"]["count"] == N
            r = await client.post("/collections/copy/points/count", json={"exact": True, "shard_key": 5})
            assert json.loads(await r.get_data())["result"]["count"] == 12

    trio.run(served)
