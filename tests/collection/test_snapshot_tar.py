"""Tar safety of snapshot recovery (collection/snapshots.py), in process: every member is
checked before anything is extracted, and nothing is ever written outside the target."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from pydrant.collection import snapshots
from pydrant.errors import BadInput, NotFound

META = json.dumps({"format": snapshots.FORMAT, "format_version": 1}).encode()


def _info(name: str, kind=tarfile.REGTYPE, data: bytes = b"", link: str = "") -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    return info, (data if kind == tarfile.REGTYPE else None)


def _write_tar(path: Path, entries) -> Path:
    with tarfile.open(path, "w") as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


@pytest.mark.parametrize(
    "name",
    ["../x", "a/../../x", "a/b/../../../x", "/abs", "/etc/passwd", "\\windows", "C:/x", "a\\..\\x"],
)
def test_bad_paths_are_refused(name):
    with pytest.raises(BadInput):
        snapshots.check_member(_info(name)[0])


@pytest.mark.parametrize(
    "kind", [tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE]
)
def test_links_and_special_files_are_refused(kind):
    with pytest.raises(BadInput) as err:
        snapshots.check_member(_info("segments", kind, link="/etc")[0])
    assert "only files and directories" in err.value.message


@pytest.mark.parametrize("name, clean", [("./config.json", "config.json"), ("segments/a/CURRENT", "segments/a/CURRENT"), (".", "")])
def test_plain_members_pass(name, clean):
    assert snapshots.check_member(_info(name)[0]) == clean


@pytest.mark.parametrize("hostile", [
    [_info("../escaped", data=b"x")],
    [_info("/tmp/escaped-abs", data=b"x")],
    [_info("d", tarfile.SYMTYPE, link=".."), _info("d/escaped", data=b"x")],
    [_info("ok", data=b"fine"), _info("h", tarfile.LNKTYPE, link="/etc/passwd")],
])
def test_nothing_is_written_when_any_member_is_hostile(tmp_path, hostile):
    archive = _write_tar(tmp_path / "h.tar", [_info("snapshot.json", data=META), *hostile])
    target = tmp_path / "work" / "target"
    with pytest.raises(BadInput):
        snapshots.extract(archive, target)
    assert not (tmp_path / "work" / "escaped").exists()
    assert not Path("/tmp/escaped-abs").exists()
    # checked before extraction: not even the harmless members were written
    assert list(target.iterdir()) == []


def test_duplicate_member_is_refused(tmp_path):
    archive = _write_tar(tmp_path / "d.tar", [_info("a", data=b"1"), _info("a", data=b"2")])
    with pytest.raises(BadInput, match="appears twice"):
        snapshots.extract(archive, tmp_path / "t")


def test_member_count_is_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(snapshots, "MAX_MEMBERS", 10)
    archive = _write_tar(tmp_path / "many.tar", [_info(f"f{i}", data=b"") for i in range(11)])
    with pytest.raises(BadInput, match="more than 10 members"):
        snapshots.extract(archive, tmp_path / "t")


def test_not_a_tar_and_truncated(tmp_path):
    junk = tmp_path / "junk"
    junk.write_bytes(b"no tar here" * 200)
    with pytest.raises(BadInput, match="not a valid tar"):
        snapshots.extract(junk, tmp_path / "t1")
    good = _write_tar(tmp_path / "g.tar", [_info("snapshot.json", data=META), _info("big", data=b"z" * 100_000)])
    cut = tmp_path / "cut.tar"
    cut.write_bytes(good.read_bytes()[:50_000])
    with pytest.raises(BadInput):
        snapshots.extract(cut, tmp_path / "t2")


def test_unknown_format_versions_are_refused(tmp_path):
    newer = json.dumps({"format": snapshots.FORMAT, "format_version": snapshots.FORMAT_VERSION + 1, "pydrant_version": "9.9"})
    archive = _write_tar(tmp_path / "n.tar", [_info("snapshot.json", data=newer.encode())])
    with pytest.raises(BadInput, match="newer than this server reads"):
        snapshots.unpack(archive, tmp_path / "t")
    other = _write_tar(tmp_path / "o.tar", [_info("snapshot.json", data=b'{"format": "qdrant"}')])
    with pytest.raises(BadInput, match="not a pydrant collection snapshot"):
        snapshots.unpack(other, tmp_path / "t2")


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "a\\b", "x\x00y"])
def test_snapshot_names_with_separators_are_refused(tmp_path, name):
    with pytest.raises(BadInput):
        snapshots.snapshot_path(tmp_path, name)


def test_unknown_snapshot_is_not_found(tmp_path):
    (tmp_path / "other.txt").write_text("x")
    for name in ("missing.snapshot", "other.txt"):
        with pytest.raises(NotFound):
            snapshots.snapshot_path(tmp_path, name)


def test_cut_holds_applied_and_logged_operations(tmp_path):
    """In process: a cut holds the flushed segments and the WAL records logged after the
    last applied operation; the unpacked snapshot loads with every one of them."""
    from pydrant.collection.collection import Collection
    from pydrant.collection.config import CollectionDefaults, build_config
    from pydrant.collection.points import prepare_upsert

    config = build_config({"vectors": {"size": 2, "distance": "Dot"}}, CollectionDefaults())
    path = tmp_path / "storage" / "c"
    Collection.initialise(path, "c", config)
    collection = Collection.load(path)
    try:
        for op_num in (1, 2, 3):
            operation = prepare_upsert(collection.schema, {"points": [{"id": op_num, "vector": [1.0, float(op_num)], "payload": {"n": op_num}}]})
            collection.wal.append(op_num, operation)
            collection._apply(op_num, operation)
        logged = prepare_upsert(collection.schema, {"points": [{"id": 4, "vector": [0.0, 1.0]}]})
        collection.wal.append(4, logged)  # acknowledged, not applied yet
        staging = tmp_path / "staging"
        snapshots.take(collection, staging)
        description = snapshots.archive(staging, tmp_path / "snaps" / "c", "c")
    finally:
        collection._close_files()
    file = tmp_path / "snaps" / "c" / description["name"]
    assert snapshots.sha256_file(file) == description["checksum"]
    assert [s["name"] for s in snapshots.list_snapshots(tmp_path / "snaps" / "c")] == [description["name"]]
    target = tmp_path / "restored" / "c"
    snapshots.unpack(file, target)
    restored = Collection.load(target)
    try:
        assert restored.points_count() == 4
        records, _ = restored.reads.scroll(None, 10, None, True, False)
        assert sorted(r.id for r in records) == [1, 2, 3, 4]
        assert restored.next_op_num == 5
    finally:
        restored._close_files()
