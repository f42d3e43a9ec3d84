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

A sharded collection's snapshot (format version 2, collection/snapshots.py) holds every
shard's cut, and each shard has its own WAL numbering its own operations: the restore is
the one above for each shard, into `shards/<id>/` of the snapshot's layout. `until` is a
time, which cuts every shard at the same moment (each replays its operations committed at
or before it), or one op_num per shard (`Until.shard_op_nums`, the change feed's cursor);
a single op_num would mean a different moment in each shard and is refused. The log is
given as `ShardLogs`: each shard's WAL directory and shard key in the source.

Everything here blocks: call it from a worker thread.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
import tarfile
from collections.abc import Callable, Iterator
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from pydrant.collection import apply as applying
from pydrant.collection import snapshots
from pydrant.collection.collection import WAL_DIR, Collection
from pydrant.collection.sharded import SHARDS_DIR, SHARDS_FILE
from pydrant.errors import BadInput
from pydrant.fsutil import read_json
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
    """Where to stop: an op_num, a commit time in ms since the epoch, or (a sharded
    collection) one op_num per shard id (exactly one of them)."""

    op_num: int | None = None
    timestamp_ms: int | None = None
    shard_op_nums: dict[int, int] | None = None

    def __str__(self) -> str:
        if self.op_num is not None:
            return f"operation {self.op_num}"
        if self.shard_op_nums is not None:
            return f"operations {format_cursor(self.shard_op_nums)}"
        return f"{format_ms(self.timestamp_ms)}"


def format_cursor(op_nums: dict[int, int]) -> str:
    """shard id -> op_num as the change feed's cursor writes it: `0:12,1:40`."""
    return ",".join(f"{shard_id}:{op_num}" for shard_id, op_num in sorted(op_nums.items()))


def parse_cursor(text: str) -> dict[int, int]:
    """The change feed's cursor `0:12,1:40,2:7` as shard id -> op_num; BadInput otherwise."""
    op_nums: dict[int, int] = {}
    for pair in text.strip().split(","):
        matched = re.fullmatch(r"\s*([0-9]+):([0-9]+)\s*", pair)
        if matched is None:
            raise BadInput(f"Wrong input: `{text}` is not one op_num per shard, `shard:op_num` pairs separated by commas (`0:12,1:40`)")
        shard_id, op_num = int(matched.group(1)), int(matched.group(2))
        if shard_id in op_nums:
            raise BadInput(f"Wrong input: `{text}` names shard {shard_id} twice")
        op_nums[shard_id] = op_num
    return op_nums


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
    (`1764770400042ms`), an ISO-8601 time (`2026-12-03T14:05:07Z`), or one op_num per shard
    of a sharded collection, the change feed's cursor (`0:12,1:40,2:7`)."""
    text = text.strip()
    if text.isdigit():
        return Until(op_num=int(text))
    if re.fullmatch(r"[0-9]+:[0-9]+(\s*,\s*[0-9]+:[0-9]+)*", text):
        return Until(shard_op_nums=parse_cursor(text))
    if text.endswith("ms") and text[:-2].isdigit():
        return Until(timestamp_ms=int(text[:-2]))
    return Until(timestamp_ms=parse_timestamp(text))


# -- reading the snapshot's own files ----------------------------------------------------------


@dataclass
class SnapshotHead:
    """What the snapshot says about its cut (of one shard of a sharded collection), read
    without unpacking it."""

    collection: str | None
    cut: int  # the last operation its segments hold
    created_ms: int | None  # when it was taken, rounded up to the whole second
    records: list[tuple[int, object]]  # wal.cbor: logged after the cut, not applied at it


@dataclass
class ShardedHead:
    """What a sharded collection's snapshot (format version 2) says: each shard's cut."""

    collection: str | None
    created_ms: int | None
    shards: dict[int, SnapshotHead] = field(default_factory=dict)  # by shard id, in the layout's order
    keys: dict[int, Any] = field(default_factory=dict)  # shard id -> its shard key (None: auto sharding)


SHARD_RECORDS = re.compile(rf"{SHARDS_DIR}/([0-9]+)/{re.escape(snapshots.WAL_RECORDS_FILE)}")


def read_head(snapshot: Path) -> SnapshotHead | ShardedHead:
    """`snapshot.json` and the `wal.cbor` files (the root's, or each shard's of a sharded
    collection's snapshot) of a snapshot file, read from the tar without extracting
    anything else. BadInput for a file that is not a pydrant snapshot recovery reads
    (recovery checks every member again when it unpacks)."""
    meta = root_records = None
    shard_records: dict[int, object] = {}
    try:
        with tarfile.open(snapshot, mode="r:") as tar:
            for member in tar:
                name = snapshots.check_member(member)
                shard = SHARD_RECORDS.fullmatch(name)
                if not member.isfile() or (name not in (snapshots.META_FILE, snapshots.WAL_RECORDS_FILE) and not shard):
                    continue
                if name == snapshots.META_FILE and member.size > MAX_META_BYTES:
                    raise BadInput(f"Wrong input: not a pydrant collection snapshot: {name} is too large")
                source = tar.extractfile(member)
                data = source.read() if source is not None else b""
                if name == snapshots.META_FILE:
                    meta = json.loads(data)
                elif shard:
                    shard_records[int(shard.group(1))] = codec.decode(data)
                else:
                    root_records = codec.decode(data)
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
    created_ms = None
    if isinstance(meta.get("created"), str):
        try:
            created_ms = parse_timestamp(meta["created"]) // 1000 * 1000 + 999
        except BadInput:
            created_ms = None
    collection = meta.get("collection") if isinstance(meta.get("collection"), str) else None
    if meta["format_version"] == snapshots.SHARDED_VERSION:
        return _sharded_head(meta, collection, created_ms, shard_records)
    return _head(meta.get("op_num"), root_records, collection, created_ms, "")


def _head(cut, records, collection: str | None, created_ms: int | None, where: str) -> SnapshotHead:
    if not isinstance(cut, int) or isinstance(cut, bool) or cut < 0:
        raise BadInput(f"Wrong input: snapshot is damaged{where}: op_num {cut!r}")
    if not isinstance(records, list) or not all(isinstance(r, list) and len(r) == 2 and isinstance(r[0], int) for r in records):
        raise BadInput(f"Wrong input: snapshot is damaged{where}: its WAL records are missing or not [op_num, operation] pairs")
    return SnapshotHead(collection, cut, created_ms, [(int(n), op) for n, op in records if int(n) > cut])


def _sharded_head(meta: dict, collection: str | None, created_ms: int | None, records: dict[int, object]) -> ShardedHead:
    """Each shard's cut (`snapshot.json` `shards`: id, key, op_num) and its `wal.cbor`."""
    listed = meta.get("shards")
    if not isinstance(listed, list):
        raise BadInput("Wrong input: snapshot is damaged: its shards are not listed")
    head = ShardedHead(collection, created_ms)
    for shard in listed:
        shard_id = shard.get("id") if isinstance(shard, dict) else None
        if not isinstance(shard_id, int) or isinstance(shard_id, bool) or shard_id < 0 or shard_id in head.shards:
            raise BadInput(f"Wrong input: snapshot is damaged: invalid or repeated shard id {shard_id!r}")
        assert isinstance(shard, dict)
        head.shards[shard_id] = _head(shard.get("op_num"), records.get(shard_id), collection, created_ms, f" (shard {shard_id})")
        head.keys[shard_id] = shard.get("key")
    return head


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


def plan(head: SnapshotHead, until: Until, wal_dir: Path | None, *, shard: bool = False) -> Plan:
    """Check that the snapshot and the WAL in `wal_dir` reach `until`; Refused (one line)
    when they cannot. Reads only the WAL's newest file. For a `shard` of a sharded
    collection restored to a time, whether the time is beyond the end of the log is the
    caller's to judge over every shard (an idle shard's last operation may be long before
    it), and a WAL holding no record is one the shard has not written since the snapshot,
    unless its files begin after the snapshot's last operation (a gap)."""
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
    if (wal_last is not None and wal_last > snapshot_last) or (shard and wal_last is None and bounds is not None):
        assert bounds is not None
        if bounds.first_op_num is not None and bounds.first_op_num > snapshot_last + 1:
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
    if shard and bounds.first_op_num is None:
        raise Refused(f"Wrong input: the WAL directory {wal_dir} holds no log file: it is not a shard's WAL")
    if shard and (wal_last is None or bounds.last_timestamp is not None):
        return result  # the end: judged over every shard (`_plan_shards`)
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


@dataclass(frozen=True)
class ShardLogs:
    """The log of a sharded collection: each shard's WAL directory and shard key, by shard
    id (a running source's, or read from a collection directory by `shard_logs`)."""

    wals: dict[int, Path]
    keys: dict[int, Any]


def shard_logs(collection_dir: Path) -> ShardLogs | None:
    """The shards' WALs of the sharded collection directory `collection_dir` (or a copy of
    it): `shards/<id>/wal` of each shard its `shards.json` lists; None when it is not a
    sharded collection's directory."""
    layout_path = collection_dir / SHARDS_FILE
    if not layout_path.is_file():
        return None
    try:
        layout = read_json(layout_path)
        shards = [(int(shard["id"]), shard.get("key")) for shard in layout["shards"]]
    except Exception as exc:
        raise Refused(f"Wrong input: {layout_path} is not a shard layout: {type(exc).__name__}: {exc}") from exc
    return ShardLogs(
        wals={shard_id: collection_dir / SHARDS_DIR / str(shard_id) / WAL_DIR for shard_id, _ in shards},
        keys=dict(shards),
    )


def restore(snapshot: Path, target: Path, until: Until, wal_dir: Path | ShardLogs | None = None,
            progress: Progress | None = None) -> dict:
    """Build at `target` (a new directory; removed again on any error) the collection of
    `snapshot` with the log replayed up to `until`. Returns a summary: `snapshot_op_num`
    (the cut), `op_num` (the last operation applied), `timestamp` (its commit time, ms, or
    None), `replayed` (operations applied after the cut), `points`; for a sharded
    collection `timestamp` (the latest of the shards'), `replayed` and `points` summed and
    `shards`, each shard's summary with its `shard_id`. Refused (a BadInput) when the log
    does not cover the range. `wal_dir` is the WAL directory of a one-shard collection, or
    the shards' WALs (`ShardLogs`) of a sharded one."""
    head = read_head(snapshot)
    if isinstance(head, ShardedHead):
        return _restore_sharded(head, snapshot, target, until, wal_dir, progress)
    if isinstance(wal_dir, ShardLogs):
        raise Refused(
            "Wrong input: the snapshot is of a one-shard collection and the log given is a sharded collection's: "
            "that log is not this snapshot's collection's history"
        )
    if until.shard_op_nums is not None:
        # a one-shard collection is shard 0
        if set(until.shard_op_nums) != {0}:
            raise Refused(f"Wrong input: the snapshot is of a one-shard collection (shard 0): {until} names other shards")
        until = Until(op_num=until.shard_op_nums[0])
    checked = plan(head, until, wal_dir)
    cut_time = _cut_time(head, wal_dir) if wal_dir is not None else None
    _check_not_before_cut(head, until, cut_time)
    if target.exists():
        raise FileExistsError(f"{target} exists")
    try:
        snapshots.unpack(snapshot, target)
        summary = _replay(head, checked, target, wal_dir, progress, cut_time)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    log.info("point-in-time restore of %s: cut %d, %d operations replayed up to %d",
             target.name, head.cut, summary["replayed"], summary["op_num"])
    return summary


def _check_not_before_cut(head: SnapshotHead, until: Until, cut_time: int | None) -> None:
    """A restore to a time before the snapshot's cut (the commit time of its last
    operation, or its creation time when the WAL no longer holds it) is refused."""
    if until.timestamp_ms is None:
        return
    floor = 0 if head.cut == 0 else cut_time if cut_time is not None else head.created_ms
    if floor is None or until.timestamp_ms < floor:
        what = (
            f"operation {head.cut} (the snapshot's cut) was committed at {format_ms(cut_time)}"
            if cut_time is not None
            else f"the snapshot was taken at {format_ms(head.created_ms)} and the WAL no longer holds its cut"
        )
        raise Refused(f"Wrong input: {format_ms(until.timestamp_ms)} is before the snapshot's cut: {what}; use an older snapshot")


def _restore_sharded(head: ShardedHead, snapshot: Path, target: Path, until: Until,
                     logs: Path | ShardLogs | None, progress: Progress | None) -> dict:
    """Every shard restored as a one-shard collection is, into the snapshot's layout."""
    name = f"`{head.collection}`" if head.collection else "the snapshot's collection"
    if until.op_num is not None:
        raise Refused(
            f"Wrong input: {name} has {len(head.shards)} shards, each numbering its own operations: operation "
            f"{until.op_num} is a different moment in each. Restore to a time, or give one op_num per shard "
            "(the change feed's cursor, e.g. 0:12,1:40)"
        )
    if isinstance(logs, Path):
        raise Refused(
            f"Wrong input: the snapshot is of a sharded collection and {logs} is one WAL: give the source "
            "collection's directory (<storage>/collections/<name>), whose shards/<id>/wal are the shards' logs"
        )
    if until.timestamp_ms is not None and logs is None:
        raise Refused(
            "Wrong input: a restore to a time needs the WAL (--wal, or the source collection): "
            "operations in a snapshot alone carry no commit time"
        )
    checked, cut_times = _plan_shards(head, until, logs)
    if target.exists():
        raise FileExistsError(f"{target} exists")
    total = sum(shard_plan.at_most for shard_plan in checked.values())
    done = 0
    shards = []
    try:
        snapshots.unpack(snapshot, target)
        for shard_id, shard_plan in checked.items():
            def shard_progress(replayed: int, _at_most: int, before: int = done) -> None:
                if progress is not None:
                    progress(before + replayed, max(total, before + replayed))

            wal_dir = logs.wals[shard_id] if logs is not None else None
            try:
                summary = _replay(head.shards[shard_id], shard_plan, target / SHARDS_DIR / str(shard_id), wal_dir,
                                  shard_progress, cut_times[shard_id], head.collection)
            except Refused as exc:
                raise _of_shard(shard_id, exc) from None
            done += summary["replayed"]
            shards.append({"shard_id": shard_id, **summary})
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    times = [shard["timestamp"] for shard in shards if shard["timestamp"] is not None]
    log.info("point-in-time restore of %s: %d shards, %d operations replayed up to %s",
             target.name, len(shards), done, until)
    return {
        "timestamp": max(times) if times else None,
        "replayed": done,
        "points": sum(shard["points"] for shard in shards),
        "shards": shards,
    }


def _of_shard(shard_id: int, exc: Refused) -> Refused:
    return Refused(f"Wrong input: shard {shard_id}: {exc.message.removeprefix('Wrong input: ')}")


def _plan_shards(head: ShardedHead, until: Until, logs: ShardLogs | None) -> tuple[dict[int, Plan], dict[int, int | None]]:
    """Each shard's plan and cut time, every refusal naming its shard; Refused before
    anything is written. A time cuts every shard; it is beyond the end of the log only
    when it is after the last commit of every shard."""
    if logs is not None:
        for shard_id, key in head.keys.items():
            if shard_id not in logs.wals:
                raise Refused(
                    f"Wrong input: shard {shard_id} of the snapshot is not in the source collection (its shard key "
                    "deleted since?): its log is gone"
                )
            if logs.keys.get(shard_id) != key:
                raise Refused(
                    f"Wrong input: shard {shard_id} has shard key {key!r} in the snapshot and {logs.keys.get(shard_id)!r} "
                    "in the source collection: its log is not this snapshot's shard's history"
                )
    if until.shard_op_nums is not None:
        extra = sorted(set(until.shard_op_nums) - set(head.shards))
        missing = sorted(set(head.shards) - set(until.shard_op_nums))
        if extra or missing:
            ids = ", ".join(str(i) for i in head.shards)
            raise Refused(
                f"Wrong input: {until} must name every shard of the snapshot once ({ids}): "
                + (f"shard {extra[0]} is not one of them" if extra else f"shard {missing[0]} is missing")
            )
    checked: dict[int, Plan] = {}
    cut_times: dict[int, int | None] = {}
    for shard_id, shard_head in head.shards.items():
        wal_dir = logs.wals[shard_id] if logs is not None else None
        shard_until = until if until.shard_op_nums is None else Until(op_num=until.shard_op_nums[shard_id])
        try:
            checked[shard_id] = plan(shard_head, shard_until, wal_dir, shard=True)
            cut_times[shard_id] = _cut_time(shard_head, wal_dir) if wal_dir is not None else None
            _check_not_before_cut(shard_head, shard_until, cut_times[shard_id])
        except Refused as exc:
            raise _of_shard(shard_id, exc) from None
    if until.timestamp_ms is not None and checked:
        ends = [
            (shard_plan.bounds.last_timestamp, shard_plan.bounds.last_op_num, shard_id)
            for shard_id, shard_plan in checked.items()
            if shard_plan.bounds is not None and shard_plan.bounds.last_timestamp is not None
        ]
        if not ends:
            raise Refused("Wrong input: no shard's WAL holds an operation with a commit time: the log cannot place that time")
        last_time, last_op, last_shard = max(ends)
        if until.timestamp_ms > last_time:
            raise Refused(
                f"Wrong input: {format_ms(until.timestamp_ms)} is beyond the last operation in the log: "
                f"operation {last_op} of shard {last_shard}, committed at {format_ms(last_time)}"
            )
    return checked, cut_times


def _replay(head: SnapshotHead, checked: Plan, directory: Path, wal_dir: Path | None,
            progress: Progress | None, cut_time: int | None, name: str | None = None) -> dict:
    """The collection (or shard) unpacked at `directory`, its WAL replaced by the
    operations after the cut up to `until`; flushed and closed."""
    shutil.rmtree(directory / WAL_DIR)  # the snapshot's records are replayed from `head` instead
    collection = Collection.load(directory, name=name)
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
    return {
        "snapshot_op_num": head.cut,
        "op_num": last,
        "timestamp": last_time,
        "replayed": replayed,
        "points": points,
    }
