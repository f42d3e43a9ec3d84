"""Read-only scan of a WAL directory: which files, which records, and what is wrong.

`scan_log` never writes. `Wal` uses it on open and then repairs a torn tail itself;
`pydrant wal inspect` uses it to report without touching anything. Both therefore judge a
directory by the same rules (docs/wal.md, "Recovery"):

- Records must have strictly increasing op_nums across the whole log, and a non-empty
  file's first record must carry the op_num its name says.
- Records come in batches (one `append_many` each, see `framing`): a batch is complete
  when its records follow each other without a gap from the one at `batch_offset` 0 to
  the one with `records_after` 0. Only complete batches count.
- After the last complete batch comes either the end of the file or zeros (preallocated
  space).
- A bad record (short header or body, CRC mismatch, CBOR that does not decode, op_num out
  of order, a record out of place in its batch, an end marker or the end of the file
  before the batch's last record, or non-zero bytes after an end marker) in the LAST
  file, after which no valid record of ANOTHER batch follows, lies in the batch that was
  being written when the process died or the power went: it was never acknowledged, and
  the whole batch, from its first byte, is a torn tail that is cut on open. Its own
  records may survive behind a hole (pages reach the disk in any order).
- Any other bad record is corruption: opening the WAL raises CorruptWal, naming the file
  and offset. Records are never skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Iterator

from pydrant.errors import CorruptWal
from pydrant.wal.framing import (
    Record,
    WalRecordError,
    data_extent,
    find_record_of_another_batch,
    is_end_marker,
    read_record,
)

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
    # Offset just past the last complete batch: where appends continue and, when the file
    # is TORN, where it is cut. For a CORRUPT file: just past the last good record.
    data_end: int = 0
    records: int = 0  # in complete batches (CORRUPT: every good record before the bad one)
    batches: int = 0  # complete batches
    first_op_num: int | None = None
    last_op_num: int | None = None
    state: str = CLEAN
    problem_offset: int | None = None  # the first bad record, if any
    problem: str | None = None
    damaged_end: int | None = None  # end of the non-zero bytes from problem_offset on
    torn_records: int = 0  # TORN: good records of the incomplete batch before the bad one
    last_timestamp: int | None = None  # the latest commit timestamp of a complete batch

    @property
    def torn_bytes(self) -> int:
        """How many bytes a torn-tail repair saves and zeroes (trailing zeros excluded)."""
        if self.state != TORN:
            return 0
        assert self.damaged_end is not None, "a TORN scan records where the damage ends"
        return self.damaged_end - self.data_end

    def corrupt_wal(self) -> CorruptWal:
        assert self.problem_offset is not None and self.problem is not None, "only a scan that found a problem"
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
    batch: list[Record] = []  # the records read so far of a batch whose last one is not yet read
    while True:
        if offset >= len(data) or is_end_marker(data, offset):
            extent = data_extent(data, offset)
            if batch:
                missing = batch[-1].records_after
                where = "the file ends" if offset >= len(data) else "an end marker comes"
                reason = (
                    f"{where} before the last {missing} records of the batch that starts at offset {result.data_end}"
                )
                _bad_record(result, data, offset, reason, is_last, batch)
            elif extent > offset:
                reason = f"end marker followed by non-zero bytes up to offset {extent}"
                _bad_record(result, data, offset, reason, is_last, batch)
            break
        try:
            record = read_record(data, offset)
            _check_order(record, last_op_num)
            _check_place_in_batch(record, result, batch)
        except WalRecordError as exc:
            _bad_record(result, data, offset, exc.reason, is_last, batch)
            break
        batch.append(record)
        last_op_num = record.op_num
        offset += record.size
        if record.ends_batch:
            _count(result, batch)
            result.batches += 1
            batch = []
    return result


def _check_order(record: Record, last_op_num: int | None) -> None:
    if last_op_num is not None and record.op_num <= last_op_num:
        raise WalRecordError(record.offset, f"op_num {record.op_num} does not follow op_num {last_op_num}")


def _check_place_in_batch(record: Record, result: FileScan, batch: list[Record]) -> None:
    """The record must stand where its batch marker says: right after the previous record of
    the open batch, or (no batch open) first in a new batch that starts here."""
    batch_start = result.data_end  # the open batch starts where the complete ones end
    if record.batch_start != batch_start:
        if batch:
            raise WalRecordError(
                record.offset,
                f"the record says its batch starts at offset {record.batch_start}, but the batch "
                f"that starts at offset {batch_start} has {batch[-1].records_after} records left",
            )
        raise WalRecordError(
            record.offset,
            f"a batch starts here, but the record says its batch starts at offset {record.batch_start}",
        )
    if batch and record.records_after != batch[-1].records_after - 1:
        raise WalRecordError(
            record.offset,
            f"records_after {record.records_after} does not follow {batch[-1].records_after} in its batch",
        )
    if record.offset == 0 and record.op_num != result.name_op_num:
        raise WalRecordError(
            record.offset, f"first record has op_num {record.op_num}, the file name says {result.name_op_num}"
        )


def _count(result: FileScan, records: list[Record]) -> None:
    if not records:
        return
    if result.first_op_num is None:
        result.first_op_num = records[0].op_num
    result.last_op_num = records[-1].op_num
    result.last_timestamp = next(
        (r.timestamp for r in reversed(records) if r.timestamp is not None), result.last_timestamp
    )
    result.records += len(records)
    result.data_end = records[-1].offset + records[-1].size


def _bad_record(result: FileScan, data: bytes, offset: int, reason: str, is_last: bool, batch: list[Record]) -> None:
    """Classify the first bad record of a file: part of an incomplete last batch (a torn
    tail, cut from the batch's start) or corruption.

    `batch` holds the good records before it of the batch it belongs to (which starts at
    `result.data_end`, the end of the last complete batch).
    """
    extent = max(data_extent(data, offset), offset)
    result.problem_offset = offset
    result.damaged_end = extent
    if not is_last:
        _count(result, batch)
        result.state = CORRUPT
        result.problem = f"{reason} (in a file that is not the last one)"
        return
    other = find_record_of_another_batch(data, offset, extent, result.data_end)
    if other is None:
        result.state = TORN
        result.problem = reason
        result.torn_records = len(batch)
    else:
        _count(result, batch)
        result.state = CORRUPT
        result.problem = (
            f"{reason} (a valid record follows at offset {other}, of another batch: the batch "
            "holding this one was acknowledged before that one was written, so this is not a torn tail)"
        )


def iter_records(path: Path, data_end: int, *, from_op_num: int | None = None) -> Iterator[Record]:
    """The records in `path` before `data_end` (a scan's result), with op_num >= from_op_num.

    Re-checks every CRC: the file is read again, and a change since the scan must not turn
    into wrong data. Records below `from_op_num` are checked but their values not decoded.
    """
    with open(path, "rb") as file:
        data = file.read(data_end)
    skip_below = from_op_num  # None once the records are wanted
    offset = 0
    while offset < data_end:
        try:
            record = read_record(data, offset, decode_value=skip_below is None)
            if skip_below is not None and record.op_num >= skip_below:
                skip_below = None  # op_nums increase: every later record is wanted too
                record = read_record(data, offset)
        except WalRecordError as exc:
            raise CorruptWal(path, offset, f"{exc.reason} (changed since the WAL was opened)") from exc
        if skip_below is None:
            yield record
        offset += record.size


def read_log(directory: Path, from_op_num: int | None = None) -> Iterator[tuple[int, object]]:
    """`(op_num, value)` of every complete record in the WAL in `directory`, read-only.

    Unlike opening a `Wal`, this never cuts a torn tail, trims or creates a file: tools may
    point it at the WAL of a running collection. An incomplete last batch is left out (it
    was never acknowledged); corruption raises CorruptWal."""
    scan = scan_log(directory)
    corruption = scan.first_corruption()
    if corruption is not None:
        raise corruption.corrupt_wal()
    for file_scan in scan.files:
        if not file_scan.records:
            continue
        if from_op_num is not None and file_scan.last_op_num is not None and file_scan.last_op_num < from_op_num:
            continue
        for record in iter_records(file_scan.path, file_scan.data_end, from_op_num=from_op_num):
            yield record.op_num, record.value


@dataclass
class LogTail:
    """What `read_tail` found: the records asked for, and where the retained log starts."""

    first_op_num: int | None  # the oldest retained record (None: the log holds no file)
    records: list[Record] = field(default_factory=list)


def read_tail(directory: Path, after: int, limit: int, until: int | None = None) -> LogTail:
    """Up to `limit` complete records with `after` < op_num <= `until`, in order, read-only.

    For change-feed readers of a running collection's WAL: like `read_log` this never
    writes, and an incomplete last batch (a group commit in flight) is left out. Unlike
    it, only the files that can hold op_nums above `after` are read (a file's name is its
    first op_num, so every record of a file is below the next file's name); corruption in
    a file read raises CorruptWal. `first_op_num` is the oldest retained file's name: a
    reader whose `after` is below `first_op_num - 1` has missed records that were
    truncated. A file deleted by a concurrent truncation while this reads raises
    FileNotFoundError: the caller reads again.
    """
    directory = Path(directory)
    names = sorted(
        (int(matched.group(1)), entry)
        for entry in directory.iterdir()
        if (matched := LOG_FILE_PATTERN.match(entry.name)) and entry.is_file()
    )
    tail = LogTail(first_op_num=names[0][0] if names else None)
    start = 0
    for index in range(1, len(names)):
        if names[index][0] <= after + 1:
            start = index  # every record of the files before this one is <= after
    previous_last_op_num = None
    for index in range(start, len(names)):
        name_op_num, path = names[index]
        if until is not None and name_op_num > until:
            break
        is_last = index == len(names) - 1
        file_scan = scan_file(path, name_op_num, path.read_bytes(), previous_last_op_num, is_last)
        if file_scan.state == CORRUPT:
            raise file_scan.corrupt_wal()
        if file_scan.last_op_num is not None:
            previous_last_op_num = file_scan.last_op_num
        if not file_scan.records or file_scan.last_op_num is None or file_scan.last_op_num <= after:
            continue
        for record in iter_records(path, file_scan.data_end, from_op_num=after + 1):
            if until is not None and record.op_num > until:
                return tail
            tail.records.append(record)
            if len(tail.records) >= limit:
                return tail
    return tail


@dataclass
class LogBounds:
    """Where a log starts and ends, as far as `log_bounds` could tell without reading it all."""

    first_op_num: int | None  # the oldest file's name: its first record (None: no file)
    last_op_num: int | None  # the newest record of a complete batch (None: no record)
    last_timestamp: int | None  # its commit time (None: no record, or one of the older shapes)


def _log_names(directory: Path) -> list[tuple[int, Path]]:
    return sorted(
        (int(matched.group(1)), entry)
        for entry in directory.iterdir()
        if (matched := LOG_FILE_PATTERN.match(entry.name)) and entry.is_file()
    )


def log_bounds(directory: Path) -> LogBounds:
    """The first and last op_num of the WAL in `directory`, read-only, reading only the
    newest non-empty file (the first op_num is the oldest file's name, which is its first
    record's op_num unless that file is empty; `iter_log_records` tells the difference).
    An incomplete last batch does not count; corruption in the file read raises CorruptWal."""
    directory = Path(directory)
    names = _log_names(directory)
    bounds = LogBounds(first_op_num=names[0][0] if names else None, last_op_num=None, last_timestamp=None)
    for index in range(len(names) - 1, -1, -1):
        name_op_num, path = names[index]
        try:
            file_scan = scan_file(path, name_op_num, path.read_bytes(), None, index == len(names) - 1)
        except FileNotFoundError:
            break  # truncated meanwhile: it was older than what is left
        if file_scan.state == CORRUPT:
            raise file_scan.corrupt_wal()
        if file_scan.records:
            bounds.last_op_num = file_scan.last_op_num
            bounds.last_timestamp = file_scan.last_timestamp
            break
    return bounds


def iter_log_records(directory: Path, after: int) -> Iterator[Record]:
    """Every record of a complete batch with op_num > `after`, in order, read-only and one
    file at a time (values decoded, commit timestamps kept): for point-in-time restore,
    which may read the WAL of a running collection for a long time.

    Like `read_tail` it reads only the files that can hold op_nums above `after`, never
    writes, leaves out an incomplete last batch and raises CorruptWal for corruption in a
    file it reads. It stops at the newest file there was when it listed the directory.
    A file that a concurrent truncation deletes before it is read makes it list the
    directory again and go on from the next op_num it wants: if the records it wants were
    deleted, the next record it yields is a later one, and the caller sees the gap."""
    directory = Path(directory)
    wanted = after + 1
    while True:
        names = _log_names(directory)
        start = 0
        for index in range(1, len(names)):
            if names[index][0] <= wanted:
                start = index  # every record of the files before this one is below `wanted`
        try:
            for index in range(start, len(names)):
                name_op_num, path = names[index]
                data = path.read_bytes()
                file_scan = scan_file(path, name_op_num, data, None, index == len(names) - 1)
                if file_scan.state == CORRUPT:
                    raise file_scan.corrupt_wal()
                if not file_scan.records or file_scan.last_op_num is None or file_scan.last_op_num < wanted:
                    continue
                offset = 0
                while offset < file_scan.data_end:
                    try:
                        record = read_record(data, offset, decode_value=False)
                        if record.op_num >= wanted:
                            record = read_record(data, offset)
                    except WalRecordError as exc:  # scan_file checked these very bytes
                        raise CorruptWal(path, offset, exc.reason) from exc
                    offset += record.size
                    if record.op_num >= wanted:
                        wanted = record.op_num + 1
                        yield record
            return
        except FileNotFoundError:
            continue  # deleted by a truncation after the listing: list again
