"""Point-in-time restore over HTTP (beyond Qdrant; docs/point-in-time.md):

    PUT /collections/{name}/snapshots/point-in-time
    {"snapshot": "<a snapshot of `source`>" | "file:///path/x.snapshot" | "/path/x.snapshot" | "http(s)://...",
     "source": "<collection whose retained WAL is replayed>",
     "until": {"op_num": 42} | {"timestamp": "2026-12-03T14:05:07Z" | 1764770400042}
              | {"op_nums": {"0": 12, "1": 40} | "0:12,1:40"}}

creates the collection `name` from the snapshot with the source's WAL replayed on top of it
up to `until` (collection/point_in_time.py). For a sharded source every shard's WAL is
replayed into that shard of the snapshot's layout: `until` is a time (every shard cut at
it) or one op_num per shard (`op_nums`, as the change feed's cursor gives them); a single
`op_num` is refused (400), each shard numbering its own operations. Not in Qdrant's spec, and no spec path takes a
PUT there (`/collections/{c}/snapshots/{snapshot_name}` has GET and DELETE only). 409 when
`name` exists, 404 for an unknown source or snapshot, 400 when the log does not cover the
range or the body is wrong; all in Qdrant's error envelope. Managing snapshots needs full
access (http/auth.py: a PUT under /collections/{name}/ other than points and indexes).

The work runs in a worker thread; the source's WAL is read with the read-only scanner
(`scan.iter_log_records`), never through the source's `Wal` and its lock, so the source
keeps taking writes at full speed meanwhile. The new collection is built in
`<storage>/pending/` and swapped in only when complete.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from urllib.parse import urlparse

import trio
from quart import Blueprint

from pydrant.collection import point_in_time as pit
from pydrant.collection import snapshots
from pydrant.collection.sharded import ShardedCollection
from pydrant.errors import AlreadyExists, BadInput
from pydrant.http.context import check_write_allowed, toc
from pydrant.http.envelope import json_from_bytes, off_loop, ok, raw_body
from pydrant.storage.names import validate_name

blueprint = Blueprint("point_in_time", __name__)


@blueprint.put("/collections/<name>/snapshots/point-in-time")
async def restore_point_in_time(name: str):
    data = json_from_bytes(await raw_body())
    snapshot, source_name, until = _parse(data)
    check_write_allowed()
    validate_name(name)
    tables = toc()
    _check_free(name)
    source = tables.get(source_name)
    downloaded = None
    if urlparse(snapshot).scheme in ("http", "https"):
        downloaded, _ = await off_loop(snapshots.download, snapshot, tables.snapshots_root / snapshots.DOWNLOADS_DIR)
        path = downloaded
    elif "/" in snapshot or "\\" in snapshot:
        path = await off_loop(_local_file, snapshot)
    else:
        path = await off_loop(snapshots.snapshot_path, tables.snapshots_dir(source.name), snapshot)
    staging = tables.pending_dir / f"point-in-time-{uuid.uuid4().hex}"
    try:
        summary = await trio.to_thread.run_sync(pit.restore, path, staging, until, _log_of(source))
        # The prepared directory becomes the collection as a recovery's does: under the
        # meta lock, with the name checked free again (it may have been taken meanwhile).
        async with tables.meta_lock:
            _check_free(name)
            await tables.swap_in(name, staging)
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(shutil.rmtree, staging, True)
            if downloaded is not None:
                await trio.to_thread.run_sync(_remove, downloaded)
    return ok({"collection": name, "source": source.name, **summary})


def _log_of(source) -> Path | pit.ShardLogs:
    """The source's WAL directory, or each shard's of a sharded source."""
    if isinstance(source, ShardedCollection):
        return pit.ShardLogs(
            wals={shard_id: shard.wal.directory for shard_id, shard in source.shards.items()},
            keys={shard_id: source.shard_key_of(shard_id) for shard_id in source.shards},
        )
    return source.wal.directory


def _check_free(name: str) -> None:
    tables = toc()
    if name in tables.collections or name in tables.failed:
        raise AlreadyExists(f"Wrong input: Collection `{name}` already exists!")
    if name in tables.aliases:
        raise BadInput(f"Wrong input: Can't create collection with name {name}. Alias with the same name already exists")


def _parse(data) -> tuple[str, str, pit.Until]:
    """(snapshot, source, until) from the body; BadInput naming what is wrong."""
    if not isinstance(data, dict):
        raise BadInput("Wrong input: the body must be an object with `snapshot`, `source` and `until`")
    for field in ("snapshot", "source"):
        if not isinstance(data.get(field), str) or not data[field]:
            raise BadInput(f"Wrong input: `{field}` must be a non-empty string")
    until = data.get("until")
    if not isinstance(until, dict) or len(until) != 1 or next(iter(until)) not in ("op_num", "timestamp", "op_nums"):
        raise BadInput(
            'Wrong input: `until` must be {"op_num": N}, {"timestamp": ISO-8601 text or ms since the epoch} or '
            '{"op_nums": {"<shard id>": N, ...}} (or the change feed\'s cursor "0:12,1:40")'
        )
    if "op_nums" in until:
        return data["snapshot"], data["source"], pit.Until(shard_op_nums=_op_nums(until["op_nums"]))
    if "op_num" in until:
        op_num = until["op_num"]
        if not isinstance(op_num, int) or isinstance(op_num, bool) or op_num < 0:
            raise BadInput(f"Wrong input: `until.op_num` must be an unsigned integer, got {op_num!r}")
        return data["snapshot"], data["source"], pit.Until(op_num=op_num)
    return data["snapshot"], data["source"], pit.Until(timestamp_ms=pit.parse_timestamp(until["timestamp"]))


def _op_nums(value) -> dict[int, int]:
    """`until.op_nums`: an object of shard id -> op_num, or the change feed's cursor text."""
    if isinstance(value, str):
        return pit.parse_cursor(value)
    wrong = BadInput('Wrong input: `until.op_nums` must be an object of shard ids to op_nums ({"0": 12, "1": 40}) '
                     'or the change feed\'s cursor ("0:12,1:40")')
    if not isinstance(value, dict) or not value:
        raise wrong
    op_nums = {}
    for shard_id, op_num in value.items():
        if not shard_id.isascii() or not shard_id.isdigit() or not isinstance(op_num, int) or isinstance(op_num, bool) or op_num < 0:
            raise wrong
        if int(shard_id) in op_nums:
            raise BadInput(f"Wrong input: `until.op_nums` names shard {int(shard_id)} twice")
        op_nums[int(shard_id)] = op_num
    return op_nums


def _local_file(location: str) -> Path:
    """A `file://` URL or an absolute path (a relative one would depend on the server's
    working directory), as recovery reads it."""
    if urlparse(location).scheme == "" and not Path(location).is_absolute():
        raise BadInput(f"Wrong input: snapshot location {location} is neither a snapshot name nor an absolute path")
    return snapshots.local_path(location)


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)
