"""`pydrant wal inspect`: reports files, records and damage, and never changes a byte."""

from __future__ import annotations

import builtins
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest

from pydrant import cli
from pydrant.wal import Wal
from pydrant.wal.framing import encode_record
from pydrant.wal.inspect import inspect_wal, main

CAPACITY = 2048
FIRST_FILE = "00000000000000000001.wal"


def operation(op_num: int) -> dict:
    return {"type": "upsert", "points": [{"id": op_num, "vectors": {"": np.full(30, op_num, np.float32)}}]}


@pytest.fixture
def wal_dir(tmp_path) -> Path:
    """A healthy WAL of 40 records over several files."""
    directory = tmp_path / "wal"
    with Wal(directory, capacity_bytes=CAPACITY) as wal:
        for op_num in range(1, 41):
            wal.append(op_num, operation(op_num))
    assert len(list(directory.glob("*.wal"))) >= 3
    return directory


def contents(directory: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def tear_last_file(directory: Path) -> Path:
    """Half-write a record after the last one, as a killed writer would."""
    last = sorted(directory.glob("*.wal"))[-1]
    data_end = len(last.read_bytes().rstrip(b"\0"))
    with open(last, "r+b") as file:
        file.seek(data_end)
        file.write(encode_record(41, operation(41))[:50])
    return last


def corrupt_first_file(directory: Path) -> None:
    path = directory / FIRST_FILE
    data = bytearray(path.read_bytes())
    data[30] ^= 0x40  # inside the first record's body
    path.write_bytes(bytes(data))


def test_a_healthy_summary(wal_dir, capsys):
    assert main([str(wal_dir)]) == 0
    out = capsys.readouterr().out
    files = len(list(wal_dir.glob("*.wal")))
    assert f"{files} files, 40 records, ops 1..40" in out and "healthy" in out
    assert FIRST_FILE in out and out.count("clean") == files


def test_json_output_lists_every_file(wal_dir, capsys):
    assert main([str(wal_dir), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["healthy"] is True
    assert (report["records"], report["first_op_num"], report["last_op_num"]) == (40, 1, 40)
    assert sum(f["records"] for f in report["files"]) == 40
    assert report["files"][0]["name"] == FIRST_FILE and report["files"][0]["first_op_num"] == 1
    assert all(f["state"] == "clean" and f["size"] == CAPACITY for f in report["files"])


def test_records_are_listed_from_an_op_with_arrays_abbreviated(wal_dir, capsys):
    assert main([str(wal_dir), "--records", "--from", "38"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip().startswith("op ")]
    assert [int(line.split()[1]) for line in lines] == [38, 39, 40]
    assert all('"upsert"' in line and "float32[30]" in line for line in lines)


def test_json_records_carry_full_values(wal_dir):
    report = inspect_wal(wal_dir, include_records=True, from_op_num=40)
    [entry] = report["record_list"]
    assert entry["op_num"] == 40
    vector = entry["value"]["points"][0]["vectors"][""]
    assert vector == {"dtype": "float32", "shape": [30], "values": [40.0] * 30}


def test_a_torn_tail_is_reported_but_healthy_and_left_in_place(wal_dir, capsys):
    last = tear_last_file(wal_dir)
    before = contents(wal_dir)
    assert main([str(wal_dir), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    torn = report["files"][-1]
    assert torn["name"] == last.name and torn["state"] == "torn" and torn["torn_bytes"] == 50
    assert contents(wal_dir) == before  # Wal() would have cut it; inspect must not


def test_corruption_exits_1_names_the_offset_and_changes_nothing(wal_dir, capsys):
    corrupt_first_file(wal_dir)
    before = contents(wal_dir)
    assert main([str(wal_dir)]) == 1
    out = capsys.readouterr().out
    assert "CORRUPT at offset 0" in out and "CRC mismatch" in out
    assert main([str(wal_dir), "--json", "--records"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["healthy"] is False and report["files"][0]["offset"] == 0
    assert report["records"] < 40
    assert contents(wal_dir) == before


def test_usage_errors_exit_2(tmp_path, capsys):
    assert main([]) == 2
    assert main([str(tmp_path / "missing")]) == 2
    assert main([str(tmp_path), "--from", "x"]) == 2
    assert "not a directory" in capsys.readouterr().err


def test_the_pydrant_command_runs_it(wal_dir, capsys):
    assert cli.main(["wal", "inspect", str(wal_dir), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["last_op_num"] == 40
    corrupt_first_file(wal_dir)
    assert cli.main(["wal", "inspect", str(wal_dir)]) == 1


def test_files_are_opened_read_only(wal_dir, monkeypatch):
    """Beyond equal bytes: no file is even opened for writing, and no mtime changes."""
    tear_last_file(wal_dir)
    mtimes = {p.name: p.stat().st_mtime_ns for p in wal_dir.iterdir()}
    opened = []
    real_io_open, real_os_open = io.open, os.open

    def checked_io_open(file, mode="r", *args, **kwargs):
        opened.append(file)
        assert not set(mode) & set("wax+"), f"{file} opened with mode {mode}"
        return real_io_open(file, mode, *args, **kwargs)

    def checked_os_open(path, flags, *args, **kwargs):
        opened.append(path)
        assert flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC) == 0, f"{path} opened for writing"
        return real_os_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(io, "open", checked_io_open)
    monkeypatch.setattr(builtins, "open", checked_io_open)
    monkeypatch.setattr(os, "open", checked_os_open)
    report = inspect_wal(wal_dir, include_records=True)
    monkeypatch.undo()
    assert len(opened) >= len(report["files"])  # the checks did see the reads
    assert {p.name: p.stat().st_mtime_ns for p in wal_dir.iterdir()} == mtimes


def test_an_incomplete_last_batch_is_reported_as_a_torn_tail_from_its_first_byte(tmp_path, capsys):
    """A power cut lost the middle of the last batch; its later records survived."""
    directory = tmp_path / "wal"
    with Wal(directory, capacity_bytes=1 << 16) as wal:
        wal.append_many([(1, operation(1)), (2, operation(2))])
        start = wal.statistics()["bytes"]
        wal.append_many([(op, operation(op)) for op in range(3, 9)])
        end = wal.statistics()["bytes"]
    path = directory / FIRST_FILE
    data = bytearray(path.read_bytes())
    data[start + 20 : start + 60] = bytes(40)  # inside the last batch's first record
    path.write_bytes(bytes(data))
    before = contents(directory)

    report = inspect_wal(directory, include_records=True)
    [torn] = report["files"]
    assert report["healthy"] is True and report["records"] == 2
    assert (torn["state"], torn["data_bytes"], torn["offset"]) == ("torn", start, start)
    assert torn["torn_bytes"] == end - start and torn["batches"] == 1
    places = [(r["op_num"], r["batch_start"], r["records_after"]) for r in report["record_list"]]
    assert places == [(1, 0, 1), (2, 0, 0)]

    assert main([str(directory), "--records"]) == 0
    out = capsys.readouterr().out
    assert f"torn tail at offset {start} ({end - start} bytes: CRC mismatch" in out
    assert "2 records      1 batch " in out and "batch@0 1 more" in out and "batch@0 last" in out
    assert contents(directory) == before


def test_a_torn_batch_whose_first_records_are_intact_names_both_offsets(tmp_path, capsys):
    directory = tmp_path / "wal"
    with Wal(directory, capacity_bytes=1 << 16) as wal:
        wal.append(1, operation(1))
        start = wal.statistics()["bytes"]
        wal.append_many([(op, operation(op)) for op in range(2, 6)])
        end = wal.statistics()["bytes"]
    path = directory / FIRST_FILE
    os.truncate(path, end - 10)  # the batch's last record is short
    assert main([str(directory)]) == 0
    out = capsys.readouterr().out
    assert f"torn tail at offset {start} (" in out  # the batch's first byte, not its bad record's
    assert "bytes: an unacknowledged batch: 3 intact records, then at offset" in out and "short body" in out
    with Wal(directory, capacity_bytes=1 << 16) as wal:
        assert [op for op, _ in wal.read()] == [1]
