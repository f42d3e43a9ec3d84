"""Point-in-time restore: a collection snapshot, then the retained log replayed on top of it
up to one operation (docs/point-in-time.md).

A snapshot holds the collection as of its cut (`op_num` in `snapshot.json`: the last
operation its segments hold) and the operations logged but not applied then (`wal.cbor`).
The collection's WAL, kept long enough (`wal_config.wal_retain_closed`,
`storage.wal.wal_retain_age_sec` / `wal_retain_size_mb`), holds the operations after it.
`restore` builds, in a new directory, the collection as it was right after operation
`until`:

1. Read `snapshot.json` and `wal.cbor` from the tar, and where the WAL starts and ends
   (`scan.log_bounds`); refuse at once when the log cannot reach `until` (a gap between
   the snapshot's operations and the WAL's first one, `until` past the last operation, or
   before the cut). Nothing is written until then.
2. Unpack the snapshot as recovery does (`snapshots.unpack`), with an empty WAL.
3. Replay every operation after the cut, in op_num order and without a gap, up to and
   including `until`: those only the snapshot holds first, then the WAL's, read-only
   (`scan.iter_log_records`, one file at a time), so the WAL of a running collection can be
   read without slowing its writer. An operation both hold must be the same in both (else
   the WAL is not this snapshot's history). An operation refused when it was live is
   refused again and changes nothing, as in recovery.
4. Flush every segment, mark the writable one as having seen every operation up to `until`
   (so the collection's op_nums continue after it), and close. The caller moves the
   directory into place (`pydrant restore`, `PUT /collections/{name}/snapshots/point-in-time`).

`until` is an op_num, or a time: the last operation committed at or before it (every WAL
record carries its batch's commit time, in ms since the epoch). Operations only the
snapshot holds carry no time: they were committed before the snapshot was created, and the
snapshot's creation time (whole seconds, so rounded up to the next one) stands for theirs
and for the cut's when the WAL does not reach back to the cut.

Everything here blocks: call it from a worker thread.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from pydrant.collection import apply as applying
from pydrant.collection import snapshots
from pydrant.collection.collection import WAL_DIR, Collection
from pydrant.errors import BadInput
from pydrant.segments.base import writable_segment
from pydrant.wal import codec
from pydrant.wal.scan import LogBounds, iter_log_records, log_bounds

log = logging.getLogger("pydrant.point_in_time")

MAX_META_BYTES = 1 << 20  # snapshot.json is a few hundred bytes
MS = dt.timedelta(milliseconds=1)
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
RETENTION_HINT = (
    "keep more of the log with storage.wal.wal_retain_age_sec, storage.wal.wal_retain_size_mb "
    "or wal_config.wal_retain_closed"
)

# progress(operations replayed, operations to replay at most)
Progress = Callable[[int, int], None]


class Refused(BadInput):
    """The restore cannot be done as asked; the message is one line saying why."""


@dataclass(frozen=True)
class Until:
    """Where to stop: an op_num, or a commit time in ms since the epoch (exactly one)."""

    op_num: int | None = None
    timestamp_ms: int | None = None

    def __str__(self) -> str:
        if self.op_num is not None:
            return f"operation {self.op_num}"
        return f"{format_ms(self.timestamp_ms)}"


def format_ms(ms: int | None) -> str:
    if ms is None:
        return "unknown time"
    return (EPOCH + ms * MS).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_timestamp(value: str | int) -> int:
    """ms since the epoch from an integer (ms) or an ISO-8601 text (`2026-12-03T14:05:07Z`,
    `2026-12-03T15:05:07.250+01:00`; without a zone: UTC). BadInput when it is neither."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise BadInput(f"Wrong input: timestamp {value} is negative")
        return value
    if not isinstance(value, str):
        raise BadInput(f"Wrong input: timestamp {value!r} is neither ms since the epoch nor an ISO-8601 time")
    try:
        when = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise BadInput(f"Wrong input: timestamp `{value}` is not an ISO-8601 time (e.g. 2026-12-03T14:05:07Z)") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return (when - EPOCH) // MS


def parse_until(text: str) -> Until:
    """The CLI's `--until`: an op_num (`42`), ms since the epoch with the unit written
    (`1764770400042ms`), or an ISO-8601 time (`2026-12-03T14:05:07Z`)."""
    text = text.strip()
    if text.isdigit():
        return Until(op_num=int(text))
    if text.endswith("ms") and text[:-2].isdigit():
        return Until(timestamp_ms=int(text[:-2]))
    return Until(timestamp_ms=parse_timestamp(text))


# -- reading the snapshot's own files ----------------------------------------------------------


@dataclass
class SnapshotHead:
    """What the snapshot says about its cut, read without unpacking it."""

    collection: str | None
    cut: int  # the last operation its segments hold
    created_ms: int | None  # when it was taken, rounded up to the whole second
    records: list[tuple[int, object]]  # wal.cbor: logged after the cut, not applied at it


def read_head(snapshot: Path) -> SnapshotHead:
    """`snapshot.json` and `wal.cbor` of a snapshot file, read from the tar without
    extracting anything else. BadInput for a file that is not a pydrant snapshot recovery
    reads (recovery checks every member again when it unpacks)."""
    meta = records = None
    try:
        with tarfile.open(snapshot, mode="r:") as tar:
            for member in tar:
                name = snapshots.check_member(member)
                if not member.isfile() or name not in (snapshots.META_FILE, snapshots.WAL_RECORDS_FILE):
                    continue
                if name == snapshots.META_FILE and member.size > MAX_META_BYTES:
                    raise BadInput(f"Wrong input: not a pydrant collection snapshot: {name} is too large")
                source = tar.extractfile(member)
                data = source.read() if source is not None else b""
                if name == snapshots.META_FILE:
                    meta = json.loads(data)
                else:
                    records = codec.decode(data)
    except BadInput:
        raise
    except (tarfile.TarError, EOFError) as exc:
        raise BadInput(f"Wrong input: snapshot is not a valid tar archive: {exc}") from exc
    except Exception as exc:  # snapshot.json or wal.cbor that does not decode
        raise BadInput(f"Wrong input: snapshot is damaged: {type(exc).__name__}: {exc}") from exc
    if not isinstance(meta, dict) or meta.get("format") != snapshots.FORMAT:
        raise BadInput(f"Wrong input: not a pydrant collection snapshot: no {snapshots.META_FILE} naming `{snapshots.FORMAT}`")
    problem = snapshots.version_problem(meta, snapshots.FORMAT_VERSION, reader="this pydrant")
    if problem is not None:
        raise BadInput(f"Wrong input: {problem}")
    cut = meta.get("op_num")
    if not isinstance(cut, int) or isinstance(cut, bool) or cut < 0:
        raise BadInput(f"Wrong input: snapshot is damaged: op_num {cut!r}")
    if not isinstance(records, list) or not all(isinstance(r, list) and len(r) == 2 and isinstance(r[0], int) for r in records):
        raise BadInput("Wrong input: snapshot is damaged: its WAL records are missing or not [op_num, operation] pairs")
    created_ms = None
    if isinstance(meta.get("created"), str):
        try:
            created_ms = parse_timestamp(meta["created"]) // 1000 * 1000 + 999
        except BadInput:
            created_ms = None
    collection = meta.get("collection") if isinstance(meta.get("collection"), str) else None
    return SnapshotHead(collection, cut, created_ms, [(int(n), op) for n, op in records if int(n) > cut])


# -- planning: does the log reach `until`? -------------------------------------------------------


@dataclass
class Plan:
    head: SnapshotHead
    until: Until
    bounds: LogBounds | None  # of the WAL directory, when one is given
    snapshot_last: int  # the last operation the snapshot holds (cut, or its last WAL record)
    available_last: int  # the last operation the snapshot and the WAL hold together

    @property
    def at_most(self) -> int:
        """An upper bound of the operations to replay (for progress)."""
        last = self.until.op_num if self.until.op_num is not None else self.available_last
        return max(0, last - self.head.cut)


def plan(head: SnapshotHead, until: Until, wal_dir: Path | None) -> Plan:
    """Check that the snapshot and the WAL in `wal_dir` reach `until`; Refused (one line)
    when they cannot. Reads only the WAL's newest file."""
    cut = head.cut
    snapshot_last = head.records[-1][0] if head.records else cut
    bounds = None
    if wal_dir is not None:
        if not wal_dir.is_dir():
            raise Refused(f"Wrong input: WAL directory {wal_dir} does not exist")
        bounds = log_bounds(wal_dir)
    wal_last = bounds.last_op_num if bounds is not None and bounds.last_op_num is not None else None
    available_last = max(snapshot_last, wal_last or 0)
    result = Plan(head, until, bounds, snapshot_last, available_last)
    gap = None
    if wal_last is not None and wal_last > snapshot_last:
        assert bounds is not None and bounds.first_op_num is not None
        if bounds.first_op_num > snapshot_last + 1:
            gap = (
                f"the snapshot holds operations up to {snapshot_last}, but the oldest operation retained in "
                f"{wal_dir} is {bounds.first_op_num}: operations {snapshot_last + 1}..{bounds.first_op_num - 1} "
                f"are gone; {RETENTION_HINT}"
            )
    if until.op_num is not None:
        if until.op_num < cut:
            raise Refused(
                f"Wrong input: operation {until.op_num} is before the snapshot's cut (it holds every operation "
                f"up to {cut}): use an older snapshot"
            )
        if until.op_num > available_last:
            where = f"the WAL in {wal_dir}" if wal_dir is not None else "the snapshot (no WAL given)"
            raise Refused(
                f"Wrong input: operation {until.op_num} is beyond the last operation in the log: "
                f"{available_last} ({where})"
            )
        if gap is not None and until.op_num > snapshot_last:
            raise Refused(f"Wrong input: the log has a gap: {gap}")
        return result
    assert until.timestamp_ms is not None
    if bounds is None:
        raise Refused(
            "Wrong input: a restore to a time needs the WAL (--wal, or the source collection): "
            "operations in a snapshot alone carry no commit time"
        )
    if gap is not None:
        raise Refused(f"Wrong input: the log has a gap: {gap}")
    if bounds.last_timestamp is None or wal_last is None:
        raise Refused(
            f"Wrong input: the WAL in {wal_dir} holds no operation with a commit time: restore to an op_num instead"
        )
    if until.timestamp_ms > bounds.last_timestamp:
        raise Refused(
            f"Wrong input: {format_ms(until.timestamp_ms)} is beyond the last operation in the log: "
            f"{wal_last}, committed at {format_ms(bounds.last_timestamp)}"
        )
    return result


# -- the records to replay -----------------------------------------------------------------------


def _log_after_cut(head: SnapshotHead, wal_dir: Path | None) -> Iterator[tuple[int, object, int | None, str]]:
    """(op_num, operation, commit time or None, where from) of every operation after the
    cut, in order: the snapshot's own first, then the WAL's; Refused at a gap, or when an
    operation both hold differs."""
    expected = head.cut + 1
    wal_records = iter_log_records(wal_dir, head.cut) if wal_dir is not None else iter(())
    first = next(wal_records, None)
    snapshot_ops = dict(head.records)
    for op_num, operation in head.records:
        if first is not None and op_num >= first.op_num:
            break
        if op_num != expected:
            raise Refused(f"Wrong input: the snapshot's WAL records skip operations {expected}..{op_num - 1}")
        yield op_num, operation, None, "snapshot"
        expected = op_num + 1
    if first is not None:
        for record in _chain(first, wal_records):
            if record.op_num != expected:
                raise Refused(
                    f"Wrong input: the log has a gap: operations {expected}..{record.op_num - 1} are not in {wal_dir} "
                    f"(truncated while it was read, or never there); {RETENTION_HINT}"
                )
            if record.op_num in snapshot_ops and codec.encode(snapshot_ops[record.op_num]) != codec.encode(record.value):
                raise Refused(
                    f"Wrong input: operation {record.op_num} in {wal_dir} differs from the snapshot's: "
                    "that WAL is not this snapshot's collection's history"
                )
            yield record.op_num, record.value, record.timestamp, "wal"
            expected = record.op_num + 1
    # a WAL copy older than the snapshot's own records: the snapshot's go on
    for op_num, operation in head.records:
        if op_num < expected:
            continue
        if op_num != expected:
            raise Refused(f"Wrong input: the snapshot's WAL records skip operations {expected}..{op_num - 1}")
        yield op_num, operation, None, "snapshot"
        expected = op_num + 1


def _chain(first, rest):
    yield first
    yield from rest


def _cut_time(head: SnapshotHead, wal_dir: Path) -> int | None:
    """The commit time of the cut's operation, if the WAL still holds it."""
    if head.cut < 1:
        return None
    record = next(iter_log_records(wal_dir, head.cut - 1), None)
    if record is not None and record.op_num == head.cut:
        return record.timestamp
    return None


# -- restoring -------------------------------------------------------------------------------------


def restore(snapshot: Path, target: Path, until: Until, wal_dir: Path | None = None,
            progress: Progress | None = None) -> dict:
    """Build at `target` (a new directory; removed again on any error) the collection of
    `snapshot` with the log replayed up to `until`. Returns a summary: `snapshot_op_num`
    (the cut), `op_num` (the last operation applied), `timestamp` (its commit time, ms, or
    None), `replayed` (operations applied after the cut), `points`. Refused (a BadInput)
    when the log does not cover the range."""
    head = read_head(snapshot)
    checked = plan(head, until, wal_dir)
    cut_time = _cut_time(head, wal_dir) if wal_dir is not None else None
    if until.timestamp_ms is not None:
        floor = 0 if head.cut == 0 else cut_time if cut_time is not None else head.created_ms
        if floor is None or until.timestamp_ms < floor:
            what = (
                f"operation {head.cut} (the snapshot's cut) was committed at {format_ms(cut_time)}"
                if cut_time is not None
                else f"the snapshot was taken at {format_ms(head.created_ms)} and the WAL no longer holds its cut"
            )
            raise Refused(f"Wrong input: {format_ms(until.timestamp_ms)} is before the snapshot's cut: {what}; use an older snapshot")
    if target.exists():
        raise FileExistsError(f"{target} exists")
    try:
        summary = _build(head, checked, snapshot, target, wal_dir, progress, cut_time)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    return summary


def _build(head: SnapshotHead, checked: Plan, snapshot: Path, target: Path, wal_dir: Path | None,
           progress: Progress | None, cut_time: int | None) -> dict:
    snapshots.unpack(snapshot, target)
    shutil.rmtree(target / WAL_DIR)  # the snapshot's records are replayed from `head` instead
    collection = Collection.load(target)
    until = checked.until
    last, last_time, replayed = head.cut, cut_time, 0
    total = checked.at_most
    try:
        with collection.apply_lock:
            after_cut = _log_after_cut(head, wal_dir) if until.op_num != head.cut else iter(())
            for op_num, operation, timestamp, source in after_cut:
                if until.op_num is not None and op_num > until.op_num:
                    break
                if until.timestamp_ms is not None:
                    if source == "wal" and timestamp is None:
                        raise Refused(
                            f"Wrong input: operation {op_num} in {wal_dir} carries no commit time (written by an "
                            "older pydrant): restore to an op_num instead"
                        )
                    # the snapshot's own operations were committed before it was created
                    if (timestamp if timestamp is not None else head.created_ms or 0) > until.timestamp_ms:
                        break
                try:
                    collection._apply(op_num, cast(dict, operation))
                except applying.REFUSED:
                    # refused the same way when it was live: it changed nothing there either
                    collection.applied_op_num = max(collection.applied_op_num, op_num)
                last, last_time = op_num, timestamp
                replayed += 1
                if progress is not None:
                    progress(replayed, max(total, replayed))
                if op_num == until.op_num:
                    break  # not one record more: what follows may be a gap it does not need
            if until.op_num is not None and last < until.op_num:
                raise Refused(
                    f"Wrong input: the log ends at operation {last}, before operation {until.op_num} "
                    "(truncated while it was read?)"
                )
            writable_segment(collection.segments).advance_version(last)
            points = collection.points_count()
    finally:
        collection._close_files()  # flushes every segment
    log.info("point-in-time restore of %s: cut %d, %d operations replayed up to %d", target.name, head.cut, replayed, last)
    return {
        "snapshot_op_num": head.cut,
        "op_num": last,
        "timestamp": last_time,
        "replayed": replayed,
        "points": points,
    }
