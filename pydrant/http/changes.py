"""Change feed (beyond Qdrant): `GET /collections/{name}/changes?since=OP&limit=N&timeout=S`.

Answers newline-delimited JSON (`application/x-ndjson`): one line per committed operation
after `since`, in op_num order, `{"op_num", "timestamp", "operation"}` (the operation as
`pydrant wal inspect` renders it, vectors as plain lists; `timestamp` is the commit time in
ms since the epoch, null for records written before WAL records carried one), then
`{"next": OP}`, the `since` to ask with next. docs/wal.md, "Change feed".

Sharded collections (collection/sharded.py): every shard has its own WAL and numbers its
operations itself, as Qdrant's shards do, so an op_num means something only with its shard.
- `shard_id=N` selects one shard's feed: `since` and `next` are that shard's op_nums, and
  every line says `"shard_id"`. A one-shard collection is shard 0 (any other id: 404).
- Without `shard_id`, a sharded collection answers the merged feed of all its shards: each
  line says its `"shard_id"`, lines are ordered by commit time (per shard in op_num order),
  and `since`/`next` are a composite cursor, one op_num per shard: `0:12,1:40,2:7`
  (`since` absent, empty or `0`: every shard from its start; a shard the cursor does not
  name: from its start). A bare op_num other than 0 is refused (400): it would be one
  shard's number applied to all of them.
A one-shard collection without `shard_id` answers exactly as before sharding existed.

Long-poll rather than server-sent events: every answer is a complete, finite document a
plain HTTP client (curl, requests, qdrant-style tooling) reads in one go, resuming is just
the next request with `since=next`, and no connection is held open between changes, so a
server restart or a proxy timeout costs the reader nothing but one retry.

Readers never slow the writer: waiting polls the WALs' last acknowledged op_num (an
attribute read, no lock) every POLL_SECONDS on the event loop, and the records are read in
a worker thread by the read-only reader (`pydrant.wal.scan.read_tail`), never through the
collection's `Wal`. `read_tail` remembers where an answer ended, so a reader resuming with
`since=next` reads only the new records, not the WAL file again. Only acknowledged records
are answered (op_num at most the WAL's last one when reading began): a group commit still
in flight is not, even if its bytes are already in the file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import orjson
import trio
from quart import Blueprint, Response, current_app, request

from pydrant.collection.sharded import ShardedCollection
from pydrant.errors import BadInput, NotFound
from pydrant.http.context import toc
from pydrant.http.envelope import error, off_loop, query_int
from pydrant.wal.framing import Record
from pydrant.wal.inspect import to_json_ready
from pydrant.wal.scan import LogTail, read_tail

blueprint = Blueprint("changes", __name__)

DEFAULT_LIMIT = 1000
MAX_TIMEOUT_SECONDS = 60
POLL_SECONDS = 0.05
READ_ATTEMPTS = 5  # a concurrent truncation may delete a file while it is read: read again
NDJSON = "application/x-ndjson"
# Truthy in `app.extensions` once a stop signal arrived: waiting readers answer at once, so
# that a graceful stop does not wait for their long-polls. (Nothing sets it yet: the
# server's signal handler, pydrant/http/server.py, is to set it before draining.)
STOPPING = "stopping"
LOCAL_SHARD = 0  # the one shard of a one-shard collection


@blueprint.get("/collections/<name>/changes")
async def changes(name: str):
    limit = query_int("limit", DEFAULT_LIMIT, minimum=1)
    timeout = min(query_int("timeout", 0), MAX_TIMEOUT_SECONDS)
    shard_id = query_int("shard_id")
    assert limit is not None and timeout is not None
    collection = toc().get(name)  # 404 for an unknown collection
    if shard_id is not None:
        shard_of(collection, shard_id)  # 404 for an unknown shard
        since = query_int("since", 0)
        assert since is not None
        return await _one_feed(name, lambda: shard_of(toc().get(name), shard_id).wal, since, limit, timeout, shard_id)
    if isinstance(collection, ShardedCollection):
        cursor = parse_cursor(request.args.get("since"), collection)
        return await _merged_feed(name, cursor, limit, timeout)
    since = query_int("since", 0)
    assert since is not None
    return await _one_feed(name, lambda: toc().get(name).wal, since, limit, timeout, None)


def shard_of(collection, shard_id: int):
    """Shard `shard_id` of the collection (a one-shard collection is shard 0); 404 for any
    other id, in Qdrant's words for a missing shard."""
    if isinstance(collection, ShardedCollection):
        shard = collection.shards.get(shard_id)
        if shard is not None:
            return shard
    elif shard_id == LOCAL_SHARD:
        return collection
    raise NotFound(f"Not found: shard {shard_id} not found")


# -- one WAL ----------------------------------------------------------------------------------


async def _one_feed(name: str, wal_of: Callable, since: int, limit: int, timeout: int, shard_id: int | None):
    """The feed of one WAL: the collection's, or one shard's (`shard_id` on every line)."""
    committed = wal_of().last_op_num
    if committed is None or committed <= since:
        committed = await _wait(lambda: _newer(wal_of().last_op_num, since), timeout, lambda: wal_of().last_op_num)
    if committed is None or committed <= since:
        return Response(_render([], since, shard_id), status=200, content_type=NDJSON)
    tail = await off_loop(_read, wal_of().directory, since, limit, committed)
    if tail.first_op_num is not None and since + 1 < tail.first_op_num:
        return _gone(name, shard_id, since, tail.first_op_num)
    labelled = [(shard_id, record) for record in tail.records]
    return Response(await off_loop(_render, labelled, since, shard_id), status=200, content_type=NDJSON)


def _newer(committed: int | None, since: int) -> int | None:
    return committed if committed is not None and committed > since else None


async def _wait(ready: Callable, timeout: int, last: Callable):
    """`ready()` once it is not None, polled every POLL_SECONDS; else, after `timeout`
    seconds or once the server is stopping, `last()`. The collection is looked up again
    each time: it may be deleted (404), or a `Wal` object replaced after a failed write,
    or a shard added or removed with its key, meanwhile."""
    with trio.move_on_after(timeout):
        while not current_app.extensions.get(STOPPING):
            found = ready()
            if found is not None:
                return found
            await trio.sleep(POLL_SECONDS)
    return last()


def _read(directory: Path, since: int, limit: int, committed: int) -> LogTail:
    for attempt in range(READ_ATTEMPTS):
        try:
            return read_tail(directory, since, limit, until=committed)
        except FileNotFoundError:
            if attempt == READ_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def _gone(name: str, shard_id: int | None, since: int, first: int) -> Response:
    whose = f"collection `{name}`" if shard_id is None else f"shard {shard_id} of collection `{name}`"
    return error(
        410,
        f"Gone: the changes of {whose} after operation {since} are no longer retained; "
        f"the oldest operation in its WAL is {first}. Start again from a snapshot, and "
        "keep more of the log with wal_config.wal_retain_closed or the server's "
        "storage.wal.wal_retain_age_sec / wal_retain_size_mb.",
    )


def _render(records: list[tuple[int | None, Record]], next_cursor: int | str, shard_id: int | None = None,
            merged: bool = False) -> bytes:
    """One JSON line per record, then the `next` line. `shard_id` is on the lines of a
    shard's or the merged feed, not on those of a one-shard collection's plain feed."""
    lines = []
    for source, record in records:
        line: dict = {} if source is None else {"shard_id": source}
        line["op_num"] = record.op_num
        line["timestamp"] = record.timestamp
        line["operation"] = to_json_ready(record.value, arrays_as_lists=True)
        lines.append(orjson.dumps(line))
    if not merged and records:
        next_cursor = records[-1][1].op_num
    lines.append(orjson.dumps({"next": next_cursor}))
    return b"\n".join(lines) + b"\n"


# -- every shard: the merged feed -------------------------------------------------------------


def parse_cursor(raw: str | None, collection: ShardedCollection) -> dict[int, int]:
    """The composite cursor `since` of the merged feed: shard id -> op_num, `0:12,1:40`.
    Absent, empty or `0`: every shard from its start. 400 for anything else that is not a
    list of `shard:op_num` pairs, for a shard named twice, and (auto sharding, whose shards
    never change) for a shard the collection does not have. A custom collection's cursor
    may name shards of a key deleted since: they are left out."""
    if raw is None or raw.strip() in ("", "0"):
        return {}
    raw = raw.strip()
    ids = ", ".join(str(i) for i in sorted(collection.shards)) or "none yet"
    if raw.isascii() and raw.isdigit():
        raise BadInput(
            f"Bad request: collection `{collection.name}` has {len(collection.shards)} shards ({ids}), each numbering "
            f"its own operations: `since={raw}` is one shard's op_num. Follow one shard with `shard_id=N&since=OP`, "
            "or all of them with the composite cursor each answer's `next` gives (`since=0:12,1:40,...`; no `since` "
            "to start from the beginning)"
        )
    cursor: dict[int, int] = {}
    for pair in raw.split(","):
        shard_text, _, op_text = pair.strip().partition(":")
        if not (shard_text.isascii() and shard_text.isdigit() and op_text.isascii() and op_text.isdigit()):
            raise BadInput(
                f"Bad request: `since` must be the cursor a previous answer's `next` gave, shard:op_num pairs "
                f"separated by commas (`0:12,1:40`), not `{raw}`"
            )
        shard_id, op_num = int(shard_text), int(op_text)
        if shard_id in cursor:
            raise BadInput(f"Bad request: `since` names shard {shard_id} twice")
        cursor[shard_id] = op_num
    unknown = sorted(set(cursor) - set(collection.shards))
    if unknown and not collection.custom:
        raise BadInput(
            f"Bad request: `since` names shard {unknown[0]}, which collection `{collection.name}` does not have "
            f"(its shards: {ids})"
        )
    return {shard_id: op_num for shard_id, op_num in cursor.items() if shard_id in collection.shards}


def format_cursor(cursor: dict[int, int]) -> str:
    return ",".join(f"{shard_id}:{op_num}" for shard_id, op_num in sorted(cursor.items()))


def _pending(router: ShardedCollection, cursor: dict[int, int]) -> dict[int, int]:
    """shard id -> its last acknowledged op_num, for the shards with operations after the
    cursor."""
    pending = {}
    for shard_id, shard in router.shards.items():
        committed = shard.wal.last_op_num
        if committed is not None and committed > cursor.get(shard_id, 0):
            pending[shard_id] = committed
    return pending


def _router(name: str) -> ShardedCollection:
    """The sharded collection `name`, looked up again (it may be deleted, or replaced by a
    one-shard collection of that name, while a long-poll waits)."""
    collection = toc().get(name)
    if not isinstance(collection, ShardedCollection):
        raise BadInput(f"Bad request: collection `{name}` is no longer sharded: its feed takes an op_num as `since`")
    return collection


async def _merged_feed(name: str, cursor: dict[int, int], limit: int, timeout: int):
    """Up to `limit` operations of every shard after the cursor, ordered by commit time
    (each shard's in op_num order), and the cursor after them."""
    pending = _pending(_router(name), cursor)
    if not pending:
        pending = await _wait(lambda: _pending(_router(name), cursor) or None, timeout,
                              lambda: _pending(_router(name), cursor))
    router = _router(name)
    directories = {shard_id: router.shards[shard_id].wal.directory for shard_id in pending if shard_id in router.shards}
    tails = await off_loop(_read_shards, directories, cursor, limit, pending)
    for shard_id, tail in sorted(tails.items()):
        since = cursor.get(shard_id, 0)
        if tail.first_op_num is not None and since + 1 < tail.first_op_num:
            return _gone(name, shard_id, since, tail.first_op_num)
    next_cursor = {shard_id: cursor.get(shard_id, 0) for shard_id in router.shards}
    records = merge(tails, limit)
    for shard_id, record in records:
        next_cursor[shard_id] = record.op_num
    return Response(await off_loop(_render, records, format_cursor(next_cursor), None, True),
                    status=200, content_type=NDJSON)


def _read_shards(directories: dict[int, Path], cursor: dict[int, int], limit: int,
                 committed: dict[int, int]) -> dict[int, LogTail]:
    return {
        shard_id: _read(directory, cursor.get(shard_id, 0), limit, committed[shard_id])
        for shard_id, directory in directories.items()
    }


def merge(tails: dict[int, LogTail], limit: int) -> list[tuple[int, Record]]:
    """The first `limit` records of all shards by (commit time, shard id, op_num). Each
    shard's commit times never go back, so each shard's records stay in op_num order and
    what is taken of each is a prefix of what was read: resuming after it skips nothing."""
    labelled = [(shard_id, record) for shard_id, tail in tails.items() for record in tail.records]
    labelled.sort(key=lambda item: (item[1].timestamp or 0, item[0], item[1].op_num))
    return labelled[:limit]
