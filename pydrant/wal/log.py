"""The write-ahead log: durable, ordered `(op_num, value)` records in a directory of files.

A record is acknowledged when `append_many` returns, and by then it has been written and
`fdatasync`'ed (a new file's directory entry is fsync'ed too): it survives a killed process
and a power cut. docs/wal.md describes the format, the recovery rules and the tools.

The records of one `append_many` form a batch and are marked as one (framing.py), so that
recovery can cut a batch a power cut left incomplete, holes included, without mistaking
damage in earlier, acknowledged batches for it.

Files are named after the first op_num they hold (`%020d.wal`) and preallocated to
`capacity_bytes`; a batch that does not fit in the current file starts a new one. Only the
last file is ever written. `segments_ahead` spare files (`spare-NNNNNN.prealloc`) are kept
preallocated so that starting a file is a rename.

One `Wal` may be used from several threads (the collection's update worker appends while
its flusher truncates): every method that touches files holds one lock. Two `Wal` objects
must not write the same directory.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Iterable, Iterator

from pydrant.wal.framing import MAX_OP_NUM, encode_batch
from pydrant.wal.scan import (
    SPARE_FILE_PATTERN,
    TORN,
    FileScan,
    iter_records,
    log_file_name,
    scan_log,
    spare_file_name,
)

DEFAULT_CAPACITY_BYTES = 32 * 1024 * 1024

log = logging.getLogger("pydrant.wal")


@dataclass
class _LogFile:
    """What the WAL knows about one of its files without reading it again."""

    path: Path
    name_op_num: int
    data_end: int  # where the next record goes
    records: int
    first_op_num: int | None
    last_op_num: int | None
    size: int = 0  # bytes on disk, preallocated space included (retention by size)
    # Commit time of its newest record, ms since the epoch (retention by age). For a file
    # whose records predate timestamps: its modification time, when it was last written.
    last_timestamp: int | None = None

    @classmethod
    def from_scan(cls, scan: FileScan) -> _LogFile:
        last_timestamp = scan.last_timestamp
        if last_timestamp is None and scan.records:
            last_timestamp = scan.path.stat().st_mtime_ns // 1_000_000
        return cls(
            scan.path, scan.name_op_num, scan.data_end, scan.records, scan.first_op_num, scan.last_op_num,
            size=scan.size, last_timestamp=last_timestamp,
        )

    def add_batch(self, op_nums: list[int], size: int, timestamp: int) -> None:
        if self.first_op_num is None:
            self.first_op_num = op_nums[0]
        self.last_op_num = op_nums[-1]
        self.records += len(op_nums)
        self.data_end += size
        self.size = max(self.size, self.data_end)
        self.last_timestamp = timestamp


class Wal:
    def __init__(
        self,
        path: Path | str,
        capacity_bytes: int = DEFAULT_CAPACITY_BYTES,
        segments_ahead: int = 0,
        retain_closed: int = 0,
        retain_age_sec: float | None = None,
        retain_bytes: int | None = None,
    ):
        """Open the WAL in `path` (created if missing), check it and get ready to append.

        An incomplete batch at the end of the last file (the group commit in flight when the
        process died or the power went) is saved to `<file>.trN` and cut off whole;
        anything else that is wrong raises CorruptWal (docs/wal.md, "Recovery").

        Retention: closed files (every file but the last) that `truncate_before` keeps
        although their records are all below its bound, for change-feed readers and
        point-in-time restore. A closed file is kept when ANY rule wants it:
        `retain_closed`: the newest N closed files (Qdrant's `wal_retain_closed`);
        `retain_age_sec`: every closed file whose newest record was committed less than
        that many seconds ago; `retain_bytes`: the newest closed files whose sizes on disk
        add up to at most that many bytes. None: that rule keeps nothing.
        """
        if capacity_bytes <= 0:
            raise ValueError(f"capacity_bytes must be positive, got {capacity_bytes}")
        if segments_ahead < 0:
            raise ValueError(f"segments_ahead must not be negative, got {segments_ahead}")
        if retain_closed < 0:
            raise ValueError(f"retain_closed must not be negative, got {retain_closed}")
        if retain_age_sec is not None and retain_age_sec < 0:
            raise ValueError(f"retain_age_sec must not be negative, got {retain_age_sec}")
        if retain_bytes is not None and retain_bytes < 0:
            raise ValueError(f"retain_bytes must not be negative, got {retain_bytes}")
        self.directory = Path(path)
        self.capacity_bytes = capacity_bytes
        self.segments_ahead = segments_ahead
        self.retain_closed = retain_closed
        self.retain_age_sec = retain_age_sec
        self.retain_bytes = retain_bytes
        self._lock = threading.Lock()
        self._closed = False
        self._failure: OSError | None = None  # a failed write that could not be undone
        self._fd: int | None = None  # the last file, open for writing
        self._stats = {"batches": 0, "appended_records": 0, "fsyncs": 0, "directory_fsyncs": 0, "truncated_files": 0, "torn_tails_cut": 0}
        self._create_directory()
        scan = scan_log(self.directory)
        corruption = scan.first_corruption()
        if corruption is not None:
            raise corruption.corrupt_wal()
        self._files = [_LogFile.from_scan(file_scan) for file_scan in scan.files]
        self._spares = list(scan.spares)
        # Commit timestamps never go back, even if the clock does: point-in-time restore
        # and feed readers may rely on their order.
        self._last_timestamp = max((f.last_timestamp for f in scan.files if f.last_timestamp is not None), default=0)
        try:
            if scan.files and scan.files[-1].state == TORN:
                self._cut_torn_tail(scan.files[-1])
            if self._files:
                self._fd = self._open_for_append(self._files[-1].path)
            self._keep_spares_ready()
        except BaseException:
            self._close_fd()
            raise

    # -- reading ---------------------------------------------------------------------------

    @property
    def first_op_num(self) -> int | None:
        return next((f.first_op_num for f in self._files if f.records), None)

    @property
    def last_op_num(self) -> int | None:
        return next((f.last_op_num for f in reversed(self._files) if f.records), None)

    def read(self, from_op_num: int | None = None) -> Iterator[tuple[int, object]]:
        """`(op_num, value)` of every record with op_num >= from_op_num, in order.

        Sees the records appended before the call. Must not run at the same time as a
        `truncate_before` that would delete the files it still has to read.
        """
        with self._lock:
            self._check_open()
            snapshot = [(f.path, f.data_end, f.last_op_num) for f in self._files if f.records and f.last_op_num is not None]
        return _read_files(snapshot, from_op_num)

    @property
    def failed(self) -> bool:
        """A failed write could not be undone: the WAL refuses writes until it is opened
        again (which scans the file and cuts what the failed write left)."""
        return self._failure is not None

    def statistics(self) -> dict:
        with self._lock:
            return {
                "files": len(self._files),
                "bytes": sum(f.data_end for f in self._files),
                "capacity_bytes": self.capacity_bytes,
                "spare_files": len(self._spares),
                "records": sum(f.records for f in self._files),
                "first_op_num": self.first_op_num,
                "last_op_num": self.last_op_num,
                **self._stats,
            }

    # -- appending -------------------------------------------------------------------------

    def append(self, op_num: int, value) -> None:
        self.append_many([(op_num, value)])

    def append_many(self, entries: Iterable[tuple[int, object]]) -> None:
        """Append records durably: one write and one fdatasync for the whole batch.

        op_nums must be strictly increasing and above `last_op_num` (ValueError). When this
        returns, every record is on disk. When it raises, none is acknowledged; the bytes
        written are zeroed again, so a later batch may reuse the op_nums. Every record
        carries the batch's commit timestamp (ms since the epoch, never below an earlier
        batch's).
        """
        entries = list(entries)
        with self._lock:
            self._check_writable()
            if not entries:
                return
            op_nums = [op_num for op_num, _ in entries]
            self._check_op_nums(op_nums)
            # Encode before touching any file: a value CBOR cannot carry fails cleanly. Each
            # record is marked with its place in the batch, so that recovery can tell this
            # batch, if a power cut leaves it incomplete, from the acknowledged ones before it.
            timestamp = max(_now_ms(), self._last_timestamp)
            frames = encode_batch(entries, timestamp=timestamp)
            target = self._file_for_batch(op_nums[0], len(frames))
            self._write_durably(target, frames)
            target.add_batch(op_nums, len(frames), timestamp)
            self._last_timestamp = timestamp
            self._stats["batches"] += 1
            self._stats["appended_records"] += len(op_nums)
            self._keep_spares_ready()

    def _check_op_nums(self, op_nums: list[int]) -> None:
        previous = self.last_op_num
        for op_num in op_nums:
            if not isinstance(op_num, int) or isinstance(op_num, bool) or not 0 <= op_num <= MAX_OP_NUM:
                raise ValueError(f"op_num must be an integer in 0..2**64-1, got {op_num!r}")
            if previous is not None and op_num <= previous:
                raise ValueError(f"op_num {op_num} must be greater than {previous}")
            previous = op_num

    def _file_for_batch(self, first_op_num: int, size: int) -> _LogFile:
        """The file the batch goes to, starting a new one if it does not fit.

        A batch is never split: a crash or error can then never leave part of a batch
        behind in an earlier file. A batch larger than the capacity gets a file of its own
        that grows beyond the capacity.
        """
        active = self._files[-1] if self._files else None
        if active is None:
            return self._start_file(first_op_num)
        if active.records == 0:
            if active.name_op_num != first_op_num:
                self._rename_empty_file(active, first_op_num)
            return active
        if active.data_end + size > self.capacity_bytes:
            return self._start_file(first_op_num)
        return active

    def _start_file(self, first_op_num: int) -> _LogFile:
        path = self.directory / log_file_name(first_op_num)
        fd = self._create_log_file(path)
        self._close_fd()
        self._fd = fd
        new_file = _LogFile(
            path, first_op_num, data_end=0, records=0, first_op_num=None, last_op_num=None, size=self.capacity_bytes
        )
        self._files.append(new_file)
        return new_file

    def _create_log_file(self, path: Path) -> int:
        """A new, preallocated, empty file at `path` whose name is durable; its open fd."""
        spare = self._spares.pop(0) if self._spares else None
        created = False
        try:
            if spare is not None:
                os.rename(spare, path)  # already preallocated: rolling over costs a rename
                fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
            else:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
            created = True
            try:
                _preallocate(fd, self.capacity_bytes)
                self._sync_directory()  # the new name must be on disk before any record in it
            except BaseException:
                os.close(fd)
                raise
        except BaseException:
            # Leave no file behind that the WAL does not know of: the next attempt would
            # find its name taken.
            if created or (spare is not None and not spare.exists()):
                _remove_quietly(path)
            elif spare is not None:
                self._spares.insert(0, spare)
            raise
        return fd

    def _rename_empty_file(self, active: _LogFile, first_op_num: int) -> None:
        """Name an empty last file after the op_num it will start with.

        It is empty after a crash between starting a file and writing to it, or after a
        torn first record was cut; the next op_num may differ from the one in its name.
        """
        path = self.directory / log_file_name(first_op_num)
        os.rename(active.path, path)
        self._sync_directory()
        active.path, active.name_op_num = path, first_op_num

    def _write_durably(self, target: _LogFile, frames: bytes) -> None:
        offset = target.data_end
        fd = self._append_fd()
        try:
            _pwrite_all(fd, frames, offset)
            os.fdatasync(fd)
        except OSError:
            self._undo_write(offset, len(frames))
            raise
        self._stats["fsyncs"] += 1

    def _append_fd(self) -> int:
        """The last file's descriptor: open whenever the WAL has a file to append to."""
        assert self._fd is not None, "the last WAL file is open for appending"
        return self._fd

    def _undo_write(self, offset: int, size: int) -> None:
        """Zero a failed batch's bytes so that no part of it can be read back as records.

        If even that fails, the file's end is unknown and the WAL refuses further writes
        until it is reopened (and scanned) again.
        """
        fd = self._append_fd()
        try:
            _pwrite_all(fd, bytes(size), offset)
            os.fdatasync(fd)
        except OSError as exc:
            log.error("WAL %s: could not undo a failed write at offset %d: %s", self.directory, offset, exc)
            self._failure = exc

    # -- truncation ------------------------------------------------------------------------

    def truncate_before(self, op_num: int) -> None:
        """Delete the files whose records all have op_num < `op_num`, but none that a
        retention rule keeps (`retained_from`); never the last file.

        Oldest first, with a directory fsync after each, so a crash in between leaves a
        log that starts later but has no gap.
        """
        with self._lock:
            self._check_open()
            closed = self._files[:-1]
            below = 0
            for log_file in closed:
                if log_file.last_op_num is not None and log_file.last_op_num >= op_num:
                    break
                below += 1
            removable = min(below, self._retained_from(closed, _now_ms()))
            for log_file in self._files[:removable]:
                _remove_quietly(log_file.path)
                self._sync_directory()
            del self._files[:removable]
            self._stats["truncated_files"] += removable

    def _retained_from(self, closed: list[_LogFile], now_ms: int) -> int:
        """Index of the oldest closed file a retention rule keeps (len(closed): none).

        Each rule keeps a run of the newest closed files (newer files hold newer records,
        so "younger than" and "fits in the budget, counted from the newest" are runs too),
        and a file is kept when any rule keeps it: the union of the runs is the longest.
        """
        starts = [max(0, len(closed) - self.retain_closed)]
        if self.retain_age_sec is not None:
            oldest_wanted = now_ms - int(self.retain_age_sec * 1000)
            starts.append(next(
                (i for i, f in enumerate(closed) if f.records and f.last_timestamp is not None and f.last_timestamp >= oldest_wanted),
                len(closed),
            ))
        if self.retain_bytes is not None:
            start, total = len(closed), 0
            for index in range(len(closed) - 1, -1, -1):
                total += closed[index].size
                if total > self.retain_bytes:
                    break
                start = index
            starts.append(start)
        return min(starts)

    # -- closing ---------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._close_fd()

    def __enter__(self) -> Wal:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        ops = f"{self.first_op_num}..{self.last_op_num}"
        return f"Wal({str(self.directory)!r}, ops {ops}, {len(self._files)} files)"

    # -- helpers ---------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError(f"WAL {self.directory} is closed")

    def _check_writable(self) -> None:
        self._check_open()
        if self._failure is not None:
            raise OSError(
                self._failure.errno,
                f"WAL {self.directory} refuses writes after a failed write could not be undone; reopen it",
            ) from self._failure

    def _close_fd(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _create_directory(self) -> None:
        if self.directory.is_dir():
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        _sync_directory_path(self.directory.parent)

    def _sync_directory(self) -> None:
        _sync_directory_path(self.directory)
        self._stats["directory_fsyncs"] += 1

    def _open_for_append(self, path: Path) -> int:
        # Not preallocated again: it was when created, and opening a healthy WAL (replay,
        # tools) should change no file.
        return os.open(path, os.O_RDWR | os.O_CLOEXEC)

    def _cut_torn_tail(self, torn: FileScan) -> None:
        """Save the torn bytes for forensics, then zero the file from the incomplete batch's
        first byte (`data_end`, the end of the last complete batch) on."""
        saved_to = self._save_forensic_copy(torn)
        fd = os.open(torn.path, os.O_RDWR | os.O_CLOEXEC)
        try:
            os.ftruncate(fd, torn.data_end)
            _preallocate(fd, torn.size)  # zeros again up to its former size
            os.fsync(fd)
        finally:
            os.close(fd)
        self._stats["torn_tails_cut"] += 1
        log.warning(
            "WAL %s: cut a torn tail at offset %d (an unacknowledged batch: %d intact records, "
            "then at offset %d: %s); %d bytes saved to %s",
            torn.path, torn.data_end, torn.torn_records, torn.problem_offset, torn.problem,
            torn.torn_bytes, saved_to.name,
        )

    def _save_forensic_copy(self, torn: FileScan) -> Path:
        with open(torn.path, "rb") as file:
            file.seek(torn.data_end)
            damaged = file.read(torn.torn_bytes)  # trailing zeros (preallocation) left out
        number = 0
        while (torn.path.parent / f"{torn.path.name}.tr{number}").exists():
            number += 1
        target = torn.path.parent / f"{torn.path.name}.tr{number}"
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        try:
            _pwrite_all(fd, damaged, 0)
            os.fsync(fd)
        finally:
            os.close(fd)
        self._sync_directory()  # the copy must exist on disk before the original is cut
        return target

    def _keep_spares_ready(self) -> None:
        """Create or remove spare files until there are `segments_ahead` of them.

        Runs after a batch is durable, so a failure here (a full disk) is only logged:
        the batch is acknowledged, and the next start of a file creates its file itself.
        """
        try:
            while len(self._spares) > self.segments_ahead:
                _remove_quietly(self._spares.pop())
            while len(self._spares) < self.segments_ahead:
                self._spares.append(self._create_spare())
        except OSError as exc:
            log.warning("WAL %s: could not prepare spare files: %s", self.directory, exc)

    def _create_spare(self) -> Path:
        numbers = [_spare_number(p) for p in self._spares]
        path = self.directory / spare_file_name(max(numbers, default=0) + 1)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        try:
            _preallocate(fd, self.capacity_bytes)
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            _remove_quietly(path)
            raise
        os.close(fd)
        return path


def _read_files(snapshot: list[tuple[Path, int, int]], from_op_num: int | None) -> Iterator[tuple[int, object]]:
    for path, data_end, last_op_num in snapshot:
        if from_op_num is not None and last_op_num < from_op_num:
            continue  # nothing wanted in this file: do not even read it
        for record in iter_records(path, data_end, from_op_num=from_op_num):
            yield record.op_num, record.value


def _now_ms() -> int:
    """Wall-clock milliseconds since the epoch: a batch's commit timestamp."""
    return time.time_ns() // 1_000_000


def _spare_number(path: Path) -> int:
    match = SPARE_FILE_PATTERN.match(path.name)
    assert match is not None, f"spare files are named by spare_file_name, not {path.name}"
    return int(match.group(1))


def _preallocate(fd: int, size: int) -> None:
    """Reserve `size` bytes of zeros (never shrinks). Skipped where unsupported."""
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as exc:
        if exc.errno not in (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
            raise


def _pwrite_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    written = 0
    while written < len(view):
        count = os.pwrite(fd, view[written:], offset + written)
        if count == 0:
            raise OSError(errno.EIO, "write wrote nothing")
        written += count


def _remove_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _sync_directory_path(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
