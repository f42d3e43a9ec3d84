"""`pydrant snapshot inspect|verify|restore` (pydrant/snapshot_tools.py, docs/snapshots.md "Tools").

One real snapshot is taken from a real server (module fixture): an HNSW-indexed segment
and an appendable one. The tests inspect and
verify it and damaged copies of it (wrong checksum, truncated, a hostile member, a newer
format version), and restore it into a fresh storage directory that a new server then
serves.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
import time
from pathlib import Path

import httpx
import pytest
from serverproc import ServerProcess

from pydrant import cli, snapshot_tools

COLLECTION = "tools_books"
INDEXED = 300  # points indexed before the snapshot (the optimizer builds an HNSW segment)
POINTS = INDEXED + 1  # and one more, in an appendable segment


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory) -> Path:
    """A snapshot of a collection of POINTS points in an indexed and an appendable segment
    (and its .checksum), copied out of the server's snapshot directory; the server is
    stopped afterwards."""
    root = tmp_path_factory.mktemp("snapshot_source")
    proc = ServerProcess(root / "storage").start()
    try:
        with httpx.Client(base_url=proc.url, timeout=60) as http:
            config = {"vectors": {"size": 4, "distance": "Cosine"}, "optimizers_config": {"indexing_threshold": 1}}
            r = http.put(f"/collections/{COLLECTION}", json=config)
            assert r.status_code == 200, r.text
            points = [
                {"id": i, "vector": [1.0, float(i), 0.5, -float(i % 3)], "payload": {"n": i}} for i in range(INDEXED)
            ]
            r = http.put(f"/collections/{COLLECTION}/points?wait=true", json={"points": points})
            assert r.status_code == 200, r.text
            deadline = time.monotonic() + 60
            while True:
                info = http.get(f"/collections/{COLLECTION}").json()["result"]
                if info["status"] == "green" and info["indexed_vectors_count"]:
                    break
                assert time.monotonic() < deadline, f"never indexed: {info}"
                time.sleep(0.1)
            extra = {"id": 1000, "vector": [1.0, 2.0, 3.0, 4.0], "payload": {"n": 1000}}
            r = http.put(f"/collections/{COLLECTION}/points?wait=true", json={"points": [extra]})
            assert r.status_code == 200, r.text
            r = http.post(f"/collections/{COLLECTION}/snapshots")
            assert r.status_code == 200, r.text
            name = r.json()["result"]["name"]
    finally:
        proc.stop()
    source = root / "snapshots" / COLLECTION / name
    out = tmp_path_factory.mktemp("snapshot_file")
    shutil.copy(source, out / name)
    shutil.copy(snapshot_tools.checksum_file(source), out / (name + ".checksum"))
    return out / name


def copy_of(snapshot: Path, tmp_path: Path, checksum: bool = True) -> Path:
    target = tmp_path / snapshot.name
    shutil.copy(snapshot, target)
    if checksum:
        shutil.copy(snapshot_tools.checksum_file(snapshot), snapshot_tools.checksum_file(target))
    return target


def rewrite(snapshot: Path, target: Path, extra: list[tarfile.TarInfo] = (), meta: dict | None = None) -> Path:
    """A copy of the snapshot's tar with `extra` members added and snapshot.json replaced."""
    with tarfile.open(snapshot) as src, tarfile.open(target, "w", format=tarfile.PAX_FORMAT) as dst:
        for member in src:
            data = src.extractfile(member) if member.isfile() else None
            if meta is not None and member.name == "snapshot.json":
                body = json.dumps(meta).encode()
                member.size = len(body)
                data = io.BytesIO(body)
            dst.addfile(member, data)
        for member in extra:
            dst.addfile(member, io.BytesIO(b"x" * member.size) if member.isfile() else None)
    return target


def run(capsys, *argv: str) -> tuple[int, str, str]:
    status = cli.main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


# --- inspect -------------------------------------------------------------------------------


def test_inspect_describes_the_snapshot(snapshot, capsys):
    status, out, err = run(capsys, "snapshot", "inspect", str(snapshot))
    assert status == 0, out
    assert f"collection: {COLLECTION}" in out
    assert "format: pydrant-collection-snapshot version 1" in out
    assert "checksum: ok" in out
    assert "vectors: (default): 4 Cosine" in out
    assert f"points in segments: {POINTS}" in out
    assert "WAL records included: 0" in out
    assert err == ""  # no progress: stderr is not a terminal


def test_inspect_json(snapshot, capsys):
    status, out, _ = run(capsys, "snapshot", "inspect", str(snapshot), "--json")
    assert status == 0
    report = json.loads(out)
    assert report["collection"] == COLLECTION
    assert report["format_version"] == 1 and report["format_supported"] is True
    assert report["checksum"]["status"] == "ok"
    assert report["checksum"]["sha256"] == hashlib.sha256(snapshot.read_bytes()).hexdigest()
    assert report["size"] == snapshot.stat().st_size
    assert report["points"] == POINTS == sum(s["points"] for s in report["segments"])
    assert sorted((s["kind"], s["points"]) for s in report["segments"]) == [("appendable", 1), ("indexed", INDEXED)]
    assert report["wal_records"] == 0
    assert report["config"]["vectors"] == {"": "4 Cosine"}
    assert report["problems"] == []


def test_inspect_without_checksum_file(snapshot, tmp_path, capsys):
    bare = copy_of(snapshot, tmp_path, checksum=False)
    status, out, _ = run(capsys, "snapshot", "inspect", str(bare), "--json")
    assert status == 0
    assert json.loads(out)["checksum"]["status"] == "no checksum file"


# --- verify --------------------------------------------------------------------------------


def test_verify_good_snapshot(snapshot, capsys):
    status, out, _ = run(capsys, "snapshot", "verify", str(snapshot))
    assert status == 0, out
    assert out.startswith("ok: ") and "checksum ok" in out and f"{POINTS} points" in out


def test_verify_wrong_checksum_file(snapshot, tmp_path, capsys):
    bad = copy_of(snapshot, tmp_path)
    snapshot_tools.checksum_file(bad).write_text("0" * 64)
    status, out, _ = run(capsys, "snapshot", "verify", str(bad))
    assert status == 1
    assert out.splitlines() == [line for line in out.splitlines() if line.startswith("problem: ")]
    assert "checksum mismatch" in out


def test_verify_checksum_option(snapshot, tmp_path, capsys):
    bare = copy_of(snapshot, tmp_path, checksum=False)
    assert run(capsys, "snapshot", "verify", str(bare), "--checksum", "ab" * 32)[0] == 1
    good = hashlib.sha256(bare.read_bytes()).hexdigest()
    status, out, _ = run(capsys, "snapshot", "verify", str(bare), "--checksum", good.upper())
    assert status == 0 and "checksum ok" in out


def test_verify_truncated_tar(snapshot, tmp_path, capsys):
    truncated = tmp_path / "cut.snapshot"
    data = snapshot.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    status, out, _ = run(capsys, "snapshot", "verify", str(truncated))
    assert status == 1
    lines = out.splitlines()
    assert len(lines) == 1 and lines[0].startswith("problem: ")


def test_verify_not_a_tar(tmp_path, capsys):
    junk = tmp_path / "junk.snapshot"
    junk.write_bytes(b"hello" * 1000)
    status, out, _ = run(capsys, "snapshot", "verify", str(junk))
    assert status == 1 and out.startswith("problem: ")


@pytest.mark.parametrize("kind", ["traversal", "absolute", "symlink"])
def test_verify_hostile_member(snapshot, tmp_path, capsys, kind):
    if kind == "symlink":
        member = tarfile.TarInfo("segments/evil")
        member.type = tarfile.SYMTYPE
        member.linkname = "/etc/passwd"
    else:
        member = tarfile.TarInfo("../escaped" if kind == "traversal" else "/tmp/escaped-pydrant")
        member.size = 3
    hostile = rewrite(snapshot, tmp_path / "hostile.snapshot", extra=[member])
    status, out, _ = run(capsys, "snapshot", "verify", str(hostile))
    assert status == 1
    assert "refused" in out and len(out.splitlines()) == 1
    assert not (tmp_path.parent / "escaped").exists()
    # inspect refuses it too, and restore writes nothing
    assert run(capsys, "snapshot", "inspect", str(hostile))[0] == 1
    storage = tmp_path / "storage"
    storage.mkdir()
    assert run(capsys, "snapshot", "restore", str(hostile), "--into", str(storage))[0] == 1
    assert not (storage / "collections" / COLLECTION).exists()


def test_verify_newer_format_version(snapshot, tmp_path, capsys):
    meta = {"format": "pydrant-collection-snapshot", "format_version": 99, "collection": COLLECTION, "op_num": 0}
    newer = rewrite(snapshot, tmp_path / "newer.snapshot", meta=meta)
    status, out, _ = run(capsys, "snapshot", "verify", str(newer))
    assert status == 1 and "format version 99 is newer" in out


def test_verify_damaged_segment(snapshot, tmp_path, capsys):
    """A snapshot whose tar is sound but whose segment store is gone does not verify."""
    damaged = tmp_path / "damaged.snapshot"
    with tarfile.open(snapshot) as src, tarfile.open(damaged, "w") as dst:
        for member in src:
            if member.name.startswith("segments/") and member.name.endswith("CURRENT"):
                continue
            dst.addfile(member, src.extractfile(member) if member.isfile() else None)
    status, out, _ = run(capsys, "snapshot", "verify", str(damaged))
    assert status == 1 and out.startswith("problem: ")


# --- restore -------------------------------------------------------------------------------


def test_restore_into_fresh_storage_and_serve(snapshot, tmp_path, capsys):
    storage = tmp_path / "storage"
    storage.mkdir()
    status, out, err = run(capsys, "snapshot", "restore", str(snapshot), "--into", str(storage))
    assert status == 0, err
    assert f"restored collection `{COLLECTION}`" in out
    status, out, err = run(capsys, "snapshot", "restore", str(snapshot), "--into", str(storage), "--name", "copy")
    assert status == 0, err
    assert not list((storage / "pending").iterdir())
    proc = ServerProcess(storage).start()
    try:
        with httpx.Client(base_url=proc.url, timeout=30) as http:
            for name in (COLLECTION, "copy"):
                r = http.post(f"/collections/{name}/points/count", json={"exact": True})
                assert r.status_code == 200, r.text
                assert r.json()["result"]["count"] == POINTS
            r = http.post(f"/collections/{COLLECTION}/points", json={"ids": [7], "with_payload": True, "with_vector": True})
            assert r.json()["result"][0]["payload"] == {"n": 7}
            assert r.json()["result"][0]["vector"] == pytest.approx(
                (lambda v: [x / sum(y * y for y in v) ** 0.5 for x in v])([1.0, 7.0, 0.5, -1.0]), rel=1e-5
            )
    finally:
        proc.stop()


def test_restore_refuses_existing_collection_without_force(snapshot, tmp_path, capsys):
    storage = tmp_path / "storage"
    storage.mkdir()
    assert run(capsys, "snapshot", "restore", str(snapshot), "--into", str(storage))[0] == 0
    marker = storage / "collections" / COLLECTION / "marker"
    marker.write_text("old")
    status, _, err = run(capsys, "snapshot", "restore", str(snapshot), "--into", str(storage))
    assert status == 1 and "--force" in err
    assert marker.exists()
    status, _, err = run(capsys, "snapshot", "restore", str(snapshot), "--into", str(storage), "--force")
    assert status == 0, err
    assert not marker.exists()
    assert (storage / "collections" / COLLECTION / "config.json").is_file()
    assert not list((storage / "pending").iterdir())


def test_restore_checks_the_checksum_first(snapshot, tmp_path, capsys):
    bad = copy_of(snapshot, tmp_path)
    snapshot_tools.checksum_file(bad).write_text("1" * 64)
    storage = tmp_path / "storage"
    storage.mkdir()
    status, _, err = run(capsys, "snapshot", "restore", str(bad), "--into", str(storage))
    assert status == 1 and "checksum mismatch" in err
    assert not (storage / "collections").exists()


def test_restore_needs_an_existing_storage_dir(snapshot, tmp_path, capsys):
    status, _, err = run(capsys, "snapshot", "restore", str(snapshot), "--into", str(tmp_path / "nope"))
    assert status == 1 and "does not exist" in err


def test_snapshot_without_command_is_usage(capsys):
    assert cli.main(["snapshot"]) == 2


# --- progress ------------------------------------------------------------------------------


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_only_on_a_terminal():
    quiet = io.StringIO()
    progress = snapshot_tools.Progress("reading", 4 << 20, stream=quiet)
    progress.update(4 << 20)
    progress.done()
    assert quiet.getvalue() == ""
    tty = _Terminal()
    progress = snapshot_tools.Progress("reading", 4 << 20, stream=tty)
    progress.update(4 << 20)
    progress.done()
    assert tty.getvalue() == "\rreading: 4.0 / 4.0 MiB\n"
