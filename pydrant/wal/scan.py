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

import os
import re
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import google_crc32c

from pydrant.errors import CorruptWal
from pydrant.wal.framing import (
    HEADER,
    HEADER_SIZE,
    RECORD_ARRAY_HEADS,
    SINGLE_RECORD_ARRAY_HEAD,
    Record,
    WalRecordError,
    _uint_at,
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
    writes, and an incomplete last batch (a group commit in flight) is left out. Only the
    files that can hold op_nums above `after` are read (a file's name is its first op_num,
    so every record of a file is below the next file's name), and in them only the bytes
    of records: reading goes forward from the start of a file, or from a position an
    earlier call remembered (`_TAIL_POSITIONS`), and stops at the end of the data (the
    first zero header), once `limit` records are found or past `until`, so a reader that
    resumes with `after` = the last op_num it got reads only what is new. Every record it
    passes is CRC-checked and checked in its batch; anything unusual on the way (a bad
    record, the end of the data inside a batch, non-zero bytes after an end marker) makes
    it read those files again whole with `read_tail_full`, which judges them as opening
    the WAL would (corruption raises CorruptWal, an incomplete last batch is left out).
    `first_op_num` is the oldest retained file's name: a reader whose `after` is below
    `first_op_num - 1` has missed records that were truncated. A file deleted by a
    concurrent truncation before it is opened raises FileNotFoundError: the caller reads
    again.
    """
    directory = Path(directory)
    try:
        return _read_tail_fast(directory, after, limit, until)
    except _Unusual:
        return read_tail_full(directory, after, limit, until)


def read_tail_full(directory: Path, after: int, limit: int, until: int | None = None) -> LogTail:
    """`read_tail` by scanning every file it needs whole, as opening the WAL does: the
    reference the fast path is tested against, and its fallback for anything unusual.
    Corruption in a file read raises CorruptWal."""
    directory = Path(directory)
    names = _log_names(directory)
    tail = LogTail(first_op_num=names[0][0] if names else None)
    previous_last_op_num = None
    for index in range(_first_file_index(names, after), len(names)):
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


def _first_file_index(names: list[tuple[int, Path]], after: int) -> int:
    """The first file that can hold an op_num above `after`."""
    start = 0
    for index in range(1, len(names)):
        if names[index][0] <= after + 1:
            start = index  # every record of the files before this one is <= after
    return start


# -- the fast path of read_tail -------------------------------------------------------------

TAIL_READ_CHUNK = 64 * 1024  # bytes read at a time; a record larger than this is read whole
MAX_POSITIONS_PER_FILE = 16
MAX_POSITION_DIRECTORIES = 256


class _Unusual(Exception):
    """The fast path met something only a whole-file scan can judge."""


@dataclass(frozen=True)
class _Position:
    """In one log file, a batch starts at `offset`; every record before it has op_num <=
    `op_before` and every record from it on a larger one. The record just before it (the
    last one of the batch before) is `prev_size` bytes long with CRC `prev_crc`: it is read
    again before the position is used, so a file that is not the one remembered (deleted
    and created again under its name) is never read from the middle."""

    op_before: int
    offset: int
    prev_size: int
    prev_crc: int


class _TailPositions:
    """Remembered positions of `read_tail`, per WAL directory and file, most recently used
    kept (a few per file, a bounded number of directories). Only positions at or before
    `until` (acknowledged records, which never change in place) are remembered. The lock
    is this cache's own: the WAL writer never takes it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # directory -> file name -> (inode, positions, most recently used last)
        self._entries: OrderedDict[str, dict[str, tuple[int, list[_Position]]]] = OrderedDict()

    def find(self, directory: str, name: str, inode: int, after: int) -> _Position | None:
        """The remembered position with the largest op_before <= after."""
        with self._lock:
            files = self._entries.get(directory)
            if files is None or name not in files:
                return None
            self._entries.move_to_end(directory)
            file_inode, positions = files[name]
            if file_inode != inode:
                del files[name]
                return None
            usable = [p for p in positions if p.op_before <= after]
            if not usable:
                return None
            best = max(usable, key=lambda p: p.op_before)
            positions.remove(best)
            positions.append(best)
            return best

    def remember(self, directory: str, name: str, inode: int, position: _Position) -> None:
        with self._lock:
            files = self._entries.setdefault(directory, {})
            self._entries.move_to_end(directory)
            while len(self._entries) > MAX_POSITION_DIRECTORIES:
                self._entries.popitem(last=False)
            entry = files.get(name)
            if entry is None or entry[0] != inode:
                entry = (inode, [])
                files[name] = entry
            positions = [p for p in entry[1] if p.offset != position.offset]
            positions.append(position)
            files[name] = (inode, positions[-MAX_POSITIONS_PER_FILE:])

    def forget(self, directory: str, name: str | None = None, keep: set[str] | None = None) -> None:
        """Drop one file's positions, or those of the files not in `keep` (deleted ones)."""
        with self._lock:
            files = self._entries.get(directory)
            if files is None:
                return
            for known in list(files):
                if known == name or (keep is not None and known not in keep):
                    del files[known]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_TAIL_POSITIONS = _TailPositions()


def _read_tail_fast(directory: Path, after: int, limit: int, until: int | None) -> LogTail:
    names = _log_names(directory)
    key = str(directory)
    _TAIL_POSITIONS.forget(key, keep={path.name for _, path in names})
    tail = LogTail(first_op_num=names[0][0] if names else None)
    previous_last_op_num = None
    for index in range(_first_file_index(names, after), len(names)):
        name_op_num, path = names[index]
        if until is not None and name_op_num > until:
            break
        with open(path, "rb") as file:
            reader = _ForwardReader(file.fileno(), path, name_op_num, key)
            position = _TAIL_POSITIONS.find(key, path.name, reader.inode, after)
            if position is not None and not reader.still_holds(position):
                _TAIL_POSITIONS.forget(key, path.name)
                position = None
            finished, previous_last_op_num = reader.read(
                position, previous_last_op_num, after, limit, until, tail.records
            )
        if finished:
            break
    return tail


class _ForwardReader:
    """Reads one log file forward from a batch start, checking every record as `scan_file`
    does, keeping only the bytes of the batch being read."""

    def __init__(self, fd: int, path: Path, name_op_num: int, key: str):
        self.fd, self.path, self.name_op_num, self.key = fd, path, name_op_num, key
        self.inode = os.fstat(fd).st_ino

    def still_holds(self, position: _Position) -> bool:
        """The record that ends at `position.offset` is still the one remembered."""
        start = position.offset - position.prev_size
        frame = os.pread(self.fd, position.prev_size, start)
        if len(frame) != position.prev_size:
            return False
        length, stored_crc = HEADER.unpack(frame[:HEADER_SIZE])
        body = frame[HEADER_SIZE:]
        if length != len(body) or stored_crc != position.prev_crc or google_crc32c.value(body) != stored_crc:
            return False
        head = _body_head(body)
        return head is not None and head[0] == position.op_before and head[1] == 0

    def read(
        self, position: _Position | None, last_op_num: int | None, after: int, limit: int, until: int | None,
        out: list[Record],
    ) -> tuple[bool, int | None]:
        """Append the wanted records of complete batches to `out`. Returns (done: nothing
        more to read in later files, the last op_num read). _Unusual when a whole-file scan
        must judge."""
        base = 0 if position is None else position.offset  # file offset of buf[0]
        if position is not None:
            last_op_num = position.op_before
        prev = None if position is None else (position.prev_size, position.prev_crc)
        buf = os.pread(self.fd, TAIL_READ_CHUNK, base)
        pos = 0  # where the next record starts in buf
        batch: list[tuple[Record, int]] = []  # the open batch: records (absolute offsets), CRCs
        batch_start, op_before_batch = base, last_op_num
        while True:
            if not batch:  # between batches: stop before reading what is not wanted
                if len(out) >= limit or (until is not None and last_op_num is not None and last_op_num >= until):
                    return True, last_op_num
            if len(buf) - pos < HEADER_SIZE:
                buf, base, pos = self._more(buf, base, pos, batch_start, HEADER_SIZE)
            if is_end_marker(buf, pos):
                if batch or (len(buf) - pos < HEADER_SIZE and any(buf[pos:])) or buf.count(0, pos) != len(buf) - pos:
                    raise _Unusual  # a batch cut short, or bytes after the end of the data
                return False, last_op_num
            if len(buf) - pos < HEADER_SIZE:
                raise _Unusual  # a torn header at the end of the file: the full scan judges it
            length = HEADER.unpack_from(buf, pos)[0]
            if len(buf) - pos < HEADER_SIZE + length:
                buf, base, pos = self._more(buf, base, pos, batch_start, HEADER_SIZE + length)
            try:
                record = read_record(buf, pos, decode_value=False)
                wanted = record.op_num > after and (until is None or record.op_num <= until)
                if wanted:
                    record = read_record(buf, pos)
            except WalRecordError as exc:
                raise _Unusual from exc
            offset = base + pos
            if last_op_num is not None and record.op_num <= last_op_num:
                raise _Unusual
            if offset - record.batch_offset != batch_start:
                raise _Unusual
            if batch and record.records_after != batch[-1][0].records_after - 1:
                raise _Unusual
            if offset == 0 and record.op_num != self.name_op_num:
                raise _Unusual
            if not batch and until is not None and record.op_num > until:
                return True, last_op_num  # a later batch (maybe in flight): not wanted
            crc = HEADER.unpack_from(buf, pos)[1]
            batch.append((replace(record, offset=offset), crc))
            last_op_num = record.op_num
            pos += record.size
            if not record.ends_batch:
                continue
            # the batch is complete: its wanted records count
            cut_inside = False
            for done, _ in batch:
                if done.op_num > after and (until is None or done.op_num <= until):
                    if len(out) >= limit:
                        cut_inside = True
                        break
                    out.append(done)
            if until is not None and last_op_num <= until:
                if cut_inside and prev is not None and op_before_batch is not None:
                    self._remember(_Position(op_before_batch, batch_start, *prev))
                self._remember(_Position(last_op_num, base + pos, record.size, crc))
            prev = (record.size, crc)
            batch, batch_start, op_before_batch = [], base + pos, last_op_num

    def _more(self, buf: bytes, base: int, pos: int, batch_start: int, need: int) -> tuple[bytes, int, int]:
        """At least `need` bytes from `pos` on, if the file has them; the bytes before the
        open batch are dropped."""
        keep = batch_start - base
        end = base + len(buf)
        size = os.fstat(self.fd).st_size
        want = min(max(TAIL_READ_CHUNK, need - (len(buf) - pos)), max(0, size - end))
        more = os.pread(self.fd, want, end) if want else b""
        return buf[keep:] + more, base + keep, pos - keep

    def _remember(self, position: _Position) -> None:
        _TAIL_POSITIONS.remember(self.key, self.path.name, self.inode, position)


def _body_head(body: bytes) -> tuple[int, int] | None:
    """(op_num, records_after) from the first bytes of a record body, None if it is not one."""
    try:
        if not body or body[0] not in RECORD_ARRAY_HEADS:
            return None
        op_num, position = _uint_at(body, 1, 0)
        if body[0] == SINGLE_RECORD_ARRAY_HEAD:
            return op_num, 0
        _batch_offset, position = _uint_at(body, position, 0)
        records_after, _ = _uint_at(body, position, 0)
        return op_num, records_after
    except WalRecordError:
        return None


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
