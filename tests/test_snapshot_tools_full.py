"""The offline tools on a full snapshot (`pydrant snapshot inspect|verify|restore`,
docs/snapshots.md "Tools"): inspect lists its collections and aliases, verify checks every
collection snapshot it holds, restore points to `serve --storage-snapshot`; a damaged
collection snapshot inside is reported. The full snapshot is taken in process."""

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


async def _take_full_snapshot(tmp_path: Path) -> Path:
    async with running_app(tmp_path) as client:
        for name, count in (("first", 5), ("second", 7)):
            r = await client.put(f"/collections/{name}", json={"vectors": {"size": 2, "distance": "Dot"}})
            assert r.status_code == 200
            points = [{"id": i, "vector": [1.0, float(i)]} for i in range(count)]
            assert (await client.put(f"/collections/{name}/points?wait=true", json={"points": points})).status_code == 200
        actions = [{"create_alias": {"collection_name": "first", "alias_name": "head"}}]
        assert (await client.post("/collections/aliases", json={"actions": actions})).status_code == 200
        r = await client.post("/snapshots")
        assert r.status_code == 200
        name = json.loads(await r.get_data())["result"]["name"]
    path = tmp_path / name
    shutil.copy(tmp_path / "snap" / name, path)
    shutil.copy(tmp_path / "snap" / (name + ".checksum"), tmp_path / (name + ".checksum"))
    return path


@pytest.fixture
def full_snapshot(tmp_path) -> Path:
    return trio.run(_take_full_snapshot, tmp_path)


def test_inspect_lists_collections_and_aliases(full_snapshot):
    report = snapshot_tools.inspect(full_snapshot)
    assert report["problems"] == []
    assert report["kind"] == "full" and report["checksum"]["status"] == "ok"
    assert report["aliases"] == {"head": "first"}
    assert {name: inner["points"] for name, inner in report["collections"].items()} == {"first": 5, "second": 7}
    text = snapshot_tools.render_inspect(report)
    assert "aliases: head -> first" in text and "collection second: 7 points" in text


def test_verify_checks_every_collection(full_snapshot, capsys):
    problems, facts = snapshot_tools.verify(full_snapshot)
    assert problems == []
    assert (facts["collections"], facts["aliases"], facts["points"]) == (2, 1, 12)
    assert cli.main(["snapshot", "verify", str(full_snapshot)]) == 0
    assert "2 collections, 1 aliases" in capsys.readouterr().out


def test_restore_points_to_storage_snapshot(full_snapshot, tmp_path, capsys):
    (tmp_path / "target").mkdir()
    assert cli.main(["snapshot", "restore", str(full_snapshot), "--into", str(tmp_path / "target")]) == 1
    assert "--storage-snapshot" in capsys.readouterr().err
    assert not (tmp_path / "target" / "collections").exists()


def test_a_damaged_collection_snapshot_inside_is_reported(full_snapshot, tmp_path):
    """One collection snapshot inside replaced by other bytes: its checksum (kept in the
    full snapshot's snapshot.json) no longer matches."""
    damaged = tmp_path / "damaged.snapshot"
    with tarfile.open(full_snapshot) as source, tarfile.open(damaged, "w") as out:
        for member in source.getmembers():
            data = source.extractfile(member).read() if member.isfile() else None
            if member.name.startswith("second-"):
                middle = len(data) // 2  # inside a member (the tail is the tar's zero padding)
                data = data[:middle] + bytes(b ^ 0xFF for b in data[middle:middle + 16]) + data[middle + 16:]
            out.addfile(member, io.BytesIO(data) if data is not None else None)
    problems, _ = snapshot_tools.verify(damaged)
    assert len(problems) == 1 and "collection `second` fails its checksum" in problems[0]
    report = snapshot_tools.inspect(damaged)
    assert any("fails its checksum" in p for p in report["problems"])
