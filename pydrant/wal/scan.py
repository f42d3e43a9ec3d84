"""Read-only scan of a WAL directory: which files, which records, and what is wrong.

`scan_log` never writes. `Wal` uses it on open and then repairs a torn tail itself;
`pydrant wal inspect` uses it to report without touching anything. Both therefore judge a
directory by the same rules (docs/wal.md, "Recovery"):

- Records must have strictly increasing op_nums across the whole log, and a non-empty
  file's first record must carry the op_num its name says.
- After the last record comes either the end of the file or zeros (preallocated space).
- A bad record (short header or body, CRC mismatch, CBOR that does not decode, op_num out
  of order, or non-zero bytes after an end marker) in the LAST file, with no valid record
  anywhere after it, is a torn tail: the write that was in flight when the process died.
  It is cut on open.
- Any other bad record is corruption: opening the WAL raises CorruptWal, naming the file
  and offset. Records are never skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from pydrant.errors import CorruptWal
from pydrant.wal.framing import Record, WalRecordError, data_extent, find_valid_record, is_end_marker, read_record

LOG_FILE_PATTERN = re.compile(r"^(\d{20})\.wal$")
SPARE_FILE_PATTERN = re.compile(r"^spare-(\d{6})\.prealloc$")
FORENSIC_FILE_PATTERN = re.compile(r"^\d{20}\.wal\.tr\d+$")

CLEAN, TORN, CORRUPT = "clean", "torn", "corrupt"


def log_file_name(first_op_num: int) -> str:
    return f"{first_op_num:020d}.wal"


def spare_file_name(number: int) -> str:
    return f"spare-{number:06d}.prealloc"


@dataclass
class FileScan:
    """What one log file holds, up to its first bad record."""

    path: Path
    name_op_num: int  # the op_num in the file name
    size: int  # bytes on disk, preallocated space included
    data_end: int = 0  # offset just past the last good record: where appends continue
    records: int = 0
    first_op_num: int | None = None
    last_op_num: int | None = None
    state: str = CLEAN
    problem_offset: int | None = None  # the first bad record, if any
    problem: str | None = None
    damaged_end: int | None = None  # end of the non-zero bytes from problem_offset on

    @property
    def torn_bytes(self) -> int:
        """How many bytes a torn-tail repair saves and zeroes (trailing zeros excluded)."""
        if self.state != TORN:
            return 0
        return self.damaged_end - self.problem_offset

    def corrupt_wal(self) -> CorruptWal:
        return CorruptWal(self.path, self.problem_offset, self.problem)


@dataclass
class LogScan:
    directory: Path
    files: list[FileScan] = field(default_factory=list)
    spares: list[Path] = field(default_factory=list)
    forensic: list[Path] = field(default_factory=list)  # `.trN` files of earlier repairs

    @property
    def healthy(self) -> bool:
        """True when opening the WAL succeeds (a torn tail is repaired, not an error)."""
        return self.first_corruption() is None

    def first_corruption(self) -> FileScan | None:
        return next((f for f in self.files if f.state == CORRUPT), None)

    @property
    def records(self) -> int:
        return sum(f.records for f in self.files)

    @property
    def first_op_num(self) -> int | None:
        return next((f.first_op_num for f in self.files if f.records), None)

    @property
    def last_op_num(self) -> int | None:
        return next((f.last_op_num for f in reversed(self.files) if f.records), None)


def scan_log(directory: Path) -> LogScan:
    """Scan every file of the WAL in `directory` (which must exist). Reads only."""
    directory = Path(directory)
    scan = LogScan(directory)
    log_files: list[tuple[int, Path]] = []
    for entry in directory.iterdir():
        if not entry.is_file():
            continue
        matched = LOG_FILE_PATTERN.match(entry.name)
        if matched:
            log_files.append((int(matched.group(1)), entry))
        elif SPARE_FILE_PATTERN.match(entry.name):
            scan.spares.append(entry)
        elif FORENSIC_FILE_PATTERN.match(entry.name):
            scan.forensic.append(entry)
    log_files.sort()
    scan.spares.sort()
    scan.forensic.sort()
    previous_last_op_num = None
    for index, (name_op_num, path) in enumerate(log_files):
        is_last = index == len(log_files) - 1
        file_scan = scan_file(path, name_op_num, path.read_bytes(), previous_last_op_num, is_last)
        scan.files.append(file_scan)
        if file_scan.last_op_num is not None:
            previous_last_op_num = file_scan.last_op_num
    return scan


def scan_file(
    path: Path, name_op_num: int, data: bytes, previous_last_op_num: int | None, is_last: bool
) -> FileScan:
    """Check every record of one file's bytes and classify what follows the last good one."""
    result = FileScan(path=path, name_op_num=name_op_num, size=len(data))
    offset = 0
    last_op_num = previous_last_op_num
    while offset < len(data):
        if is_end_marker(data, offset):
            extent = data_extent(data, offset)
            if extent > offset:
                reason = f"end marker followed by non-zero bytes up to offset {extent}"
                _bad_record(result, data, offset, reason, is_last)
            break
        try:
            record = read_record(data, offset)
            _check_order(record, result, last_op_num)
        except WalRecordError as exc:
            _bad_record(result, data, offset, exc.reason, is_last)
            break
        _count(result, record)
        last_op_num = record.op_num
        offset += record.size
        result.data_end = offset
    return result


def _check_order(record: Record, result: FileScan, last_op_num: int | None) -> None:
    if result.records == 0 and record.op_num != result.name_op_num:
        raise WalRecordError(
            record.offset, f"first record has op_num {record.op_num}, the file name says {result.name_op_num}"
        )
    if last_op_num is not None and record.op_num <= last_op_num:
        raise WalRecordError(record.offset, f"op_num {record.op_num} does not follow op_num {last_op_num}")


def _count(result: FileScan, record: Record) -> None:
    if result.first_op_num is None:
        result.first_op_num = record.op_num
    result.last_op_num = record.op_num
    result.records += 1


def _bad_record(result: FileScan, data: bytes, offset: int, reason: str, is_last: bool) -> None:
    """Classify the first bad record of a file as a torn tail or as corruption."""
    extent = max(data_extent(data, offset), offset)
    result.problem_offset = offset
    result.damaged_end = extent
    if not is_last:
        result.state = CORRUPT
        result.problem = f"{reason} (in a file that is not the last one)"
        return
    valid_after = find_valid_record(data, offset + 1, extent)
    if valid_after is None:
        result.state = TORN
        result.problem = reason
    else:
        result.state = CORRUPT
        result.problem = f"{reason} (a valid record follows at offset {valid_after}, so this is not a torn tail)"


def iter_records(path: Path, data_end: int, *, from_op_num: int | None = None) -> Iterator[Record]:
    """The records in `path` before `data_end` (a scan's result), with op_num >= from_op_num.

    Re-checks every CRC: the file is read again, and a change since the scan must not turn
    into wrong data. Records below `from_op_num` are checked but their values not decoded.
    """
    with open(path, "rb") as file:
        data = file.read(data_end)
    skipping = from_op_num is not None
    offset = 0
    while offset < data_end:
        try:
            record = read_record(data, offset, decode_value=not skipping)
            if skipping and record.op_num >= from_op_num:
                skipping = False  # op_nums increase: every later record is wanted too
                record = read_record(data, offset)
        except WalRecordError as exc:
            raise CorruptWal(path, offset, f"{exc.reason} (changed since the WAL was opened)") from exc
        if not skipping:
            yield record
        offset += record.size
