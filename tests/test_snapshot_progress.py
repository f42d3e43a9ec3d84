"""Progress of extraction: `snapshots.extract` / `unpack` report `(done, total)` bytes to an
optional callback, and `pydrant snapshot verify|restore|inspect` show it on stderr when
stderr is a terminal or with `--progress` (docs/snapshots.md "Tools").

In process: the snapshot is taken from a collection opened here (no server), and the chunk
size is made small so that a small snapshot gives many progress calls.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from pydrant import cli, snapshot_tools
from pydrant.collection import snapshots
from pydrant.collection.collection import Collection
from pydrant.collection.config import CollectionDefaults, build_config
from pydrant.collection.points import prepare_upsert

POINTS = 200


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    monkeypatch.setattr(snapshots, "CHUNK", 4096)
    yield
    snapshot_tools.Progress.force = False  # a --progress run must not leak into other tests


@pytest.fixture
def snapshot(tmp_path) -> Path:
    """A snapshot (with its .checksum) of a collection of POINTS 64-d points, taken in process."""
    config = build_config({"vectors": {"size": 64, "distance": "Dot"}}, CollectionDefaults())
    path = tmp_path / "storage" / "c"
    Collection.initialise(path, "c", config)
    collection = Collection.load(path)
    try:
        points = [{"id": i, "vector": [float(i % 13)] * 64, "payload": {"n": i, "text": "x" * 100}} for i in range(POINTS)]
        operation = prepare_upsert(collection.schema, {"points": points})
        collection.wal.append(1, operation)
        collection._apply(1, operation)
        staging = tmp_path / "staging"
        snapshots.take(collection, staging)
        description = snapshots.archive(staging, tmp_path / "snaps", "c")
    finally:
        collection._close_files()
    return tmp_path / "snaps" / description["name"]


def _file_bytes(snapshot: Path) -> int:
    with tarfile.open(snapshot) as tar:
        return sum(member.size for member in tar if member.isfile())


def _check_calls(calls: list[tuple[int, int]], total: int) -> None:
    assert calls[0] == (0, total)
    assert calls[-1] == (total, total)
    assert all(t == total for _, t in calls)
    done = [d for d, _ in calls]
    assert done == sorted(done), "progress never goes back"
    assert len(calls) > total // 4096, "one call per chunk written"


def test_extract_reports_every_chunk(tmp_path):
    sizes = {"a": 10_000, "dir/b": 0, "dir/c": 50_001, "d": 4096}
    tar_path = tmp_path / "plain.tar"
    with tarfile.open(tar_path, "w") as tar:
        for name, size in sizes.items():
            info = tarfile.TarInfo(name)
            info.size = size
            tar.addfile(info, io.BytesIO(bytes([7]) * size))
    calls: list[tuple[int, int]] = []
    snapshots.extract(tar_path, tmp_path / "out", progress=lambda done, total: calls.append((done, total)))
    _check_calls(calls, sum(sizes.values()))
    assert (tmp_path / "out" / "dir" / "c").stat().st_size == 50_001


def test_extract_without_progress_is_unchanged(tmp_path, snapshot):
    snapshots.extract(snapshot, tmp_path / "out")  # the default: no callback
    assert (tmp_path / "out" / snapshots.META_FILE).is_file()


def test_unpack_passes_progress_on(tmp_path, snapshot):
    calls: list[tuple[int, int]] = []
    config = snapshots.unpack(snapshot, tmp_path / "out", progress=lambda done, total: calls.append((done, total)))
    assert config["params"]["vectors"]["size"] == 64
    _check_calls(calls, _file_bytes(snapshot))


def _run(capsys, *args: str) -> tuple[int, str, str]:
    status = cli.main(list(args))
    out, err = capsys.readouterr()
    return status, out, err


def _last_line(err: str, label: str) -> str:
    """The last rendering of `label`'s progress line (lines are rewritten with \\r)."""
    shown = [part for part in err.replace("\n", "\r").split("\r") if part.startswith(label + ":")]
    assert shown, f"no {label} progress in {err!r}"
    return shown[-1]


def test_verify_shows_extraction_with_progress_flag(snapshot, capsys):
    status, out, err = _run(capsys, "snapshot", "verify", str(snapshot), "--progress")
    assert status == 0, out
    assert out.startswith("ok: ") and f"{POINTS} points" in out
    total_mib = _file_bytes(snapshot) / (1 << 20)
    assert _last_line(err, "extracting") == f"extracting: {total_mib:.1f} / {total_mib:.1f} MiB"
    assert _last_line(err, "checksum")  # the checksum pass shows progress too
    assert err.endswith("\n")


def test_verify_is_silent_without_a_terminal(snapshot, capsys):
    status, out, err = _run(capsys, "snapshot", "verify", str(snapshot))
    assert status == 0, out
    assert err == ""


def test_verify_shows_extraction_on_a_terminal(snapshot, monkeypatch, capsys):
    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    status = cli.main(["snapshot", "verify", str(snapshot)])
    assert status == 0, capsys.readouterr().out
    assert _last_line(terminal.getvalue(), "extracting").startswith("extracting: ")


def test_restore_shows_extraction(snapshot, tmp_path, capsys):
    storage = tmp_path / "target_storage"
    storage.mkdir()
    status, out, err = _run(capsys, "snapshot", "restore", str(snapshot), "--into", str(storage), "--progress")
    assert status == 0, err
    assert "restored collection `c`" in out
    total_mib = _file_bytes(snapshot) / (1 << 20)
    assert _last_line(err, "extracting") == f"extracting: {total_mib:.1f} / {total_mib:.1f} MiB"
    assert err.count("extracting") >= 1 and "\n\n" not in err  # one line ended once
    assert (storage / "collections" / "c").is_dir()


def test_inspect_shows_extraction_with_progress_flag(snapshot, capsys):
    status, out, err = _run(capsys, "snapshot", "inspect", str(snapshot), "--progress")
    assert status == 0, out
    assert f"points in segments: {POINTS}" in out
    assert _last_line(err, "extracting").startswith("extracting: ")
