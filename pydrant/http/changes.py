"""Change feed (beyond Qdrant): `GET /collections/{name}/changes?since=OP&limit=N&timeout=S`.

Answers newline-delimited JSON (`application/x-ndjson`): one line per committed operation
after `since`, in op_num order, `{"op_num", "timestamp", "operation"}` (the operation as
`pydrant wal inspect` renders it, vectors as plain lists; `timestamp` is the commit time in
ms since the epoch, null for records written before WAL records carried one), then
`{"next": OP}`, the `since` to ask with next. docs/wal.md, "Change feed".

Long-poll rather than server-sent events: every answer is a complete, finite document a
plain HTTP client (curl, requests, qdrant-style tooling) reads in one go, resuming is just
the next request with `since=next`, and no connection is held open between changes, so a
server restart or a proxy timeout costs the reader nothing but one retry.

Readers never slow the writer: waiting polls the WAL's last acknowledged op_num (an
attribute read, no lock) every POLL_SECONDS on the event loop, and the records are read in
a worker thread by the read-only reader (`pydrant.wal.scan.read_tail`), never through the
collection's `Wal`. `read_tail` remembers where an answer ended, so a reader resuming with
`since=next` reads only the new records, not the WAL file again. Only acknowledged records are answered (op_num at most the WAL's last
one when reading began): a group commit still in flight is not, even if its bytes are
already in the file.
"""

from __future__ import annotations

import orjson
import trio
from quart import Blueprint, Response, current_app

from pydrant.http.context import toc
from pydrant.http.envelope import error, off_loop, query_int
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


@blueprint.get("/collections/<name>/changes")
async def changes(name: str):
    since = query_int("since", 0)
    limit = query_int("limit", DEFAULT_LIMIT, minimum=1)
    timeout = min(query_int("timeout", 0), MAX_TIMEOUT_SECONDS)
    assert since is not None and limit is not None and timeout is not None
    collection = toc().get(name)  # 404 for an unknown collection
    committed = collection.wal.last_op_num
    if committed is None or committed <= since:
        committed = await _wait_for_commit(name, since, timeout)
    if committed is None or committed <= since:
        return Response(_render(LogTail(first_op_num=None), since), status=200, content_type=NDJSON)
    directory = toc().get(name).wal.directory
    tail = await off_loop(_read, directory, since, limit, committed)
    if tail.first_op_num is not None and since + 1 < tail.first_op_num:
        return error(
            410,
            f"Gone: the changes of collection `{name}` after operation {since} are no longer retained; "
            f"the oldest operation in its WAL is {tail.first_op_num}. Start again from a snapshot, and "
            "keep more of the log with wal_config.wal_retain_closed or the server's "
            "storage.wal.wal_retain_age_sec / wal_retain_size_mb.",
        )
    return Response(await off_loop(_render, tail, since), status=200, content_type=NDJSON)


async def _wait_for_commit(name: str, since: int, timeout: int) -> int | None:
    """The WAL's last acknowledged op_num once it passes `since`, or when `timeout` seconds
    have passed, or the server is stopping. The collection is looked up again each time: it
    may be deleted (404) or its `Wal` object replaced after a failed write meanwhile."""
    committed = None
    with trio.move_on_after(timeout):
        while not current_app.extensions.get(STOPPING):
            committed = toc().get(name).wal.last_op_num
            if committed is not None and committed > since:
                return committed
            await trio.sleep(POLL_SECONDS)
    return toc().get(name).wal.last_op_num


def _read(directory, since: int, limit: int, committed: int) -> LogTail:
    for attempt in range(READ_ATTEMPTS):
        try:
            return read_tail(directory, since, limit, until=committed)
        except FileNotFoundError:
            if attempt == READ_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def _render(tail: LogTail, since: int) -> bytes:
    """One JSON line per record, then the `next` line."""
    lines = [
        orjson.dumps(
            {
                "op_num": record.op_num,
                "timestamp": record.timestamp,
                "operation": to_json_ready(record.value, arrays_as_lists=True),
            }
        )
        for record in tail.records
    ]
    lines.append(orjson.dumps({"next": tail.records[-1].op_num if tail.records else since}))
    return b"\n".join(lines) + b"\n"
