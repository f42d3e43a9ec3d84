"""Snapshots API (docs/snapshots.md).

- Collection snapshots: create, list, download, delete, recover from a location (a file or
  an http(s) URL), upload (collection/snapshots.py, storage/toc.py).
- Full snapshots, `/snapshots`: every collection and the aliases in one tar
  (storage/full_snapshots.py).
- Shard snapshots, `/collections/{name}/shards/{shard_id}/snapshots`: every shard the
  collection has (shard 0 of a one-shard collection, each shard of a sharded one); any
  other id is Qdrant's 404 (storage/shard_snapshots.py).

`wait` defaults to true here, as in Qdrant; `wait=false` answers 202 `"status": "accepted"`
and runs the work in the storage nursery (its errors are logged).
"""

from __future__ import annotations

import hashlib
import logging
import re
import uuid
from pathlib import Path
from urllib.parse import quote, urlparse

import trio
from quart import Blueprint, current_app, request
from quart.helpers import send_file
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.http import parse_options_header
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

from pydrant.collection import snapshots
from pydrant.errors import BadInput, NotFound, ValidationFailed
from pydrant.http import spec_models as models
from pydrant.http.context import check_write_allowed, toc
from pydrant.http.envelope import elapsed, json_from_bytes, json_response, off_loop, ok, query_bool, query_enum, raw_body
from pydrant.http.validation import deserialize
from pydrant.storage import full_snapshots, shard_snapshots

log = logging.getLogger("pydrant.http.snapshots")

blueprint = Blueprint("snapshots", __name__)

PRIORITIES = ("replica", "snapshot", "no_sync")
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")


@blueprint.get("/collections/<name>/snapshots")
async def list_snapshots(name: str):
    directory = toc().snapshots_dir(name)
    return ok(await off_loop(snapshots.list_snapshots, directory))


@blueprint.post("/collections/<name>/snapshots")
async def create_snapshot(name: str):
    wait = query_bool("wait", True)
    check_write_allowed()
    toc().get(name)  # 404 before anything starts
    if not wait:
        return _in_background(f"snapshot of {name}", toc().create_snapshot, name)
    return ok(await toc().create_snapshot(name))


@blueprint.get("/collections/<name>/snapshots/<snapshot_name>")
async def download_snapshot(name: str, snapshot_name: str):
    directory = toc().snapshots_dir(name)
    path = await off_loop(snapshots.snapshot_path, directory, snapshot_name)
    return await _send_snapshot(path, snapshot_name)


async def _send_snapshot(path: Path, snapshot_name: str):
    """The snapshot file as the answer, streamed in chunks, with Content-Length. Quart reads
    8 KiB per chunk, each a worker-thread hop (24-48 MB/s for a 342 MB snapshot on the
    machine of docs/benchmarks.md); 1 MiB chunks send it at over 1 GB/s."""
    response = await send_file(path, mimetype="application/octet-stream", as_attachment=True, attachment_filename=snapshot_name)
    if hasattr(response.response, "buffer_size"):
        response.response.buffer_size = snapshots.CHUNK
    return response


@blueprint.delete("/collections/<name>/snapshots/<snapshot_name>")
async def delete_snapshot(name: str, snapshot_name: str):
    wait = query_bool("wait", True)
    check_write_allowed()
    directory = toc().snapshots_dir(name)
    snapshots.check_name(snapshot_name)
    if not wait:
        await off_loop(snapshots.snapshot_path, directory, snapshot_name)  # 404 now, not later
        return _in_background(f"deleting snapshot {snapshot_name}", off_loop, snapshots.delete_snapshot, directory, snapshot_name)
    await off_loop(snapshots.delete_snapshot, directory, snapshot_name)
    return ok(True)


@blueprint.put("/collections/<name>/snapshots/recover")
async def recover_from_snapshot(name: str):
    wait = query_bool("wait", True)
    data = json_from_bytes(await raw_body())
    if isinstance(data, dict) and isinstance(data.get("location"), str) and data["location"].startswith("/"):
        data["location"] = "file://" + quote(data["location"])  # a plain absolute path
    recover = deserialize(models.SnapshotRecover, data)
    check_write_allowed()
    location = str(recover.location)
    expected = recover.checksum
    if urlparse(location).scheme in ("http", "https"):
        # Downloaded first (in the wait=false task too, as Qdrant), then recovered as a file.
        if not wait:
            return _in_background(f"recovery of {name} from {location}", _recover_url, name, location, recover.api_key, expected)
        await _recover_url(name, location, recover.api_key, expected)
        return ok(True)
    path = await off_loop(snapshots.local_path, location)
    if not wait:
        return _in_background(f"recovery of {name}", _recover_checked, name, path, expected, "recover")
    await _recover_checked(name, path, expected, "recover")
    return ok(True)


@blueprint.post("/collections/<name>/snapshots/upload")
async def upload_snapshot(name: str):
    wait = query_bool("wait", True)
    query_enum("priority", PRIORITIES)
    expected = _checksum_param()
    check_write_allowed()
    return await _recover_upload(name, wait, expected)


def _checksum_param() -> str | None:
    expected = request.args.get("checksum") or None
    if expected is not None and not _SHA256.match(expected):
        raise ValidationFailed("Validation error in query parameters: [checksum: invalid sha256 hash]")
    return expected


async def _recover_upload(name: str, wait: bool, expected: str | None, recover=None):
    """Save the multipart field `snapshot` under `pending/`, recover from it (checksum
    first) and remove it."""
    root = toc().pending_dir
    saved = root / f"upload-{uuid.uuid4().hex}.snapshot"
    actual = await _receive_upload(saved, expected is not None)
    if not wait:
        async def recover_and_remove() -> None:
            try:
                await _recover_checked(name, saved, expected, "upload", actual, recover)
            finally:
                await off_loop(_remove, saved)

        return _in_background(f"recovery of {name} from an upload", recover_and_remove)
    try:
        await _recover_checked(name, saved, expected, "upload", actual, recover)
    finally:
        with trio.CancelScope(shield=True):
            await off_loop(_remove, saved)
    return ok(True)


async def _recover_url(name: str, url: str, api_key: str | None, expected: str | None, recover=None) -> None:
    """Download `url` to a temporary file under `<snapshots_path>/.downloads/`, recover from
    it, and remove it whatever happens (a crash leaves a `.tmp-` name, removed at start)."""
    directory = toc().snapshots_root / snapshots.DOWNLOADS_DIR
    path, actual = await off_loop(snapshots.download, url, directory, api_key)
    try:
        await _recover_checked(name, path, expected, "recover", actual, recover)
    finally:
        with trio.CancelScope(shield=True):
            await off_loop(_remove, path)


async def _recover_checked(name: str, path: Path, expected: str | None, how: str, actual: str | None = None,
                           recover=None) -> None:
    """Check the sha256 (`actual` when it is known already) and recover from `path` with
    `recover(name, path)` (default: the collection's recovery)."""
    if expected is not None:
        if actual is None:
            actual = await off_loop(snapshots.sha256_file, path)
        if actual.lower() != expected.lower():
            if how == "upload":  # Qdrant's two messages differ
                raise BadInput(f"Checksum mismatch: expected {actual}, actual {expected}")
            raise BadInput(f"Wrong input: Snapshot checksum mismatch: expected {expected}, got {actual}")
    await (recover or toc().recover_collection)(name, path)


# -- full snapshots (storage/full_snapshots.py) ----------------------------------------------


@blueprint.get("/snapshots")
async def list_full_snapshots():
    return ok(await off_loop(full_snapshots.list_full_snapshots, toc().snapshots_root))


@blueprint.post("/snapshots")
async def create_full_snapshot():
    wait = query_bool("wait", True)
    check_write_allowed()
    if not wait:
        return _in_background("full snapshot", full_snapshots.create_full_snapshot, toc())
    return ok(await full_snapshots.create_full_snapshot(toc()))


@blueprint.get("/snapshots/<snapshot_name>")
async def download_full_snapshot(snapshot_name: str):
    path = await off_loop(snapshots.snapshot_path, toc().snapshots_root, snapshot_name)
    return await _send_snapshot(path, snapshot_name)


@blueprint.delete("/snapshots/<snapshot_name>")
async def delete_full_snapshot(snapshot_name: str):
    wait = query_bool("wait", True)
    check_write_allowed()
    root = toc().snapshots_root
    await off_loop(snapshots.snapshot_path, root, snapshot_name)  # 400/404 now, not later
    if not wait:
        return _in_background(f"deleting full snapshot {snapshot_name}", off_loop, snapshots.delete_snapshot, root, snapshot_name)
    await off_loop(snapshots.delete_snapshot, root, snapshot_name)
    return ok(True)


# -- shard snapshots (storage/shard_snapshots.py) --------------------------------------------

SHARD = "/collections/<name>/shards/<int:shard_id>/snapshots"


@blueprint.get(SHARD)
async def list_shard_snapshots(name: str, shard_id: int):
    directory = shard_snapshots.shard_dir(toc(), name, shard_id)
    return ok(await off_loop(snapshots.list_snapshots, directory))


@blueprint.post(SHARD)
async def create_shard_snapshot(name: str, shard_id: int):
    wait = query_bool("wait", True)
    check_write_allowed()
    shard_snapshots.shard_dir(toc(), name, shard_id)  # 404 before anything starts
    if not wait:
        return _in_background(f"snapshot of shard {shard_id} of {name}", shard_snapshots.create_shard_snapshot, toc(), name, shard_id)
    return ok(await shard_snapshots.create_shard_snapshot(toc(), name, shard_id))


@blueprint.get(SHARD + "/<snapshot_name>")
async def download_shard_snapshot(name: str, shard_id: int, snapshot_name: str):
    directory = shard_snapshots.shard_dir(toc(), name, shard_id)
    path = await off_loop(snapshots.snapshot_path, directory, snapshot_name)
    return await _send_snapshot(path, snapshot_name)


@blueprint.delete(SHARD + "/<snapshot_name>")
async def delete_shard_snapshot(name: str, shard_id: int, snapshot_name: str):
    wait = query_bool("wait", True)
    check_write_allowed()
    directory = shard_snapshots.shard_dir(toc(), name, shard_id)
    await off_loop(snapshots.snapshot_path, directory, snapshot_name)  # 400/404 now, not later
    if not wait:
        return _in_background(f"deleting snapshot {snapshot_name}", off_loop, snapshots.delete_snapshot, directory, snapshot_name)
    await off_loop(snapshots.delete_snapshot, directory, snapshot_name)
    return ok(True)


@blueprint.put(SHARD + "/recover")
async def recover_shard_snapshot(name: str, shard_id: int):
    """Qdrant's ShardSnapshotRecover: `location` is an http(s) URL (downloaded first) or
    the name of a snapshot in this shard's snapshot directory; other URL schemes are
    refused, as Qdrant refuses them (`file://` included)."""
    wait = query_bool("wait", True)
    recover = deserialize(models.ShardSnapshotRecover, json_from_bytes(await raw_body()))
    check_write_allowed()
    directory = shard_snapshots.shard_dir(toc(), name, shard_id)
    location = str(recover.location)
    expected = recover.checksum
    try:
        scheme = urlparse(location).scheme
    except ValueError:  # not a URL (an unclosed `[`, say): a path, as Qdrant falls back to one
        scheme = ""

    async def into_shard(collection: str, path: Path) -> None:
        await shard_snapshots.recover_shard(toc(), collection, shard_id, path)

    if scheme in ("http", "https"):
        if not wait:
            return _in_background(f"recovery of shard {shard_id} of {name} from {location}", _recover_url, name, location,
                                  recover.api_key, expected, into_shard)
        await _recover_url(name, location, recover.api_key, expected, into_shard)
        return ok(True)
    if scheme:  # a URL, as Qdrant parses `location` first
        raise BadInput(f"Wrong input: Invalid snapshot URL {location}: URLs with {scheme} scheme are not supported")
    path = await off_loop(_shard_snapshot_file, directory, location)
    if not wait:
        return _in_background(f"recovery of shard {shard_id} of {name}", _recover_checked, name, path, expected, "recover",
                              None, into_shard)
    await _recover_checked(name, path, expected, "recover", None, into_shard)
    return ok(True)


@blueprint.post(SHARD + "/upload")
async def upload_shard_snapshot(name: str, shard_id: int):
    wait = query_bool("wait", True)
    query_enum("priority", PRIORITIES)
    expected = _checksum_param()
    check_write_allowed()
    shard_snapshots.shard_dir(toc(), name, shard_id)  # 404 before the upload is stored

    async def into_shard(collection: str, path: Path) -> None:
        await shard_snapshots.recover_shard(toc(), collection, shard_id, path)

    return await _recover_upload(name, wait, expected, into_shard)


def _shard_snapshot_file(directory: Path, location: str) -> Path:
    """A path `location`: the name of a snapshot in the shard's snapshot directory (Qdrant's
    ShardSnapshotLocation::Path); anything else, or a missing file, is 404."""
    if not location or location in (".", "..") or "/" in location or "\\" in location or "\x00" in location:
        raise NotFound(f"Not found: Snapshot {location} not found")
    path = directory / location
    if not path.is_file():
        raise NotFound(f"Not found: Snapshot {location} not found")
    return path


async def _receive_upload(target: Path, hashed: bool) -> str | None:
    """Stream the multipart field `snapshot` of the request body into `target` as it
    arrives: parsed by werkzeug's sans-IO decoder on the event loop (cheap), written and
    hashed in worker threads in 1 MiB pieces. Returns its sha256 (hex) with `hashed`.
    No temporary copy first (Quart's `request.files` spooled the body to a temporary file
    with blocking writes on the event loop, then it was copied here). The body limit
    (`max_request_size_mb`) still applies, counted as the body streams. On any error the
    partial file is removed."""
    mimetype, options = parse_options_header(request.headers.get("Content-Type", ""))
    boundary = options.get("boundary")
    if mimetype != "multipart/form-data" or not boundary:
        raise BadInput("Bad request: cannot read the multipart body: expected multipart/form-data with a boundary")
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    # No max_form_memory_size: werkzeug applies it to its input buffer, which holds a whole
    # received chunk (several MB when the disk writes lag), not to a field. The body limit
    # above bounds what it can hold; max_parts bounds the work of a body of tiny parts.
    decoder = MultipartDecoder(boundary.encode("latin-1"), max_parts=_MAX_PARTS)
    upload = _UploadFile(target, hashed)
    received = 0
    try:
        try:
            async for chunk in request.body:
                received += len(chunk)
                if limit and received > limit:
                    raise RequestEntityTooLarge()
                decoder.receive_data(chunk)
                await upload.take_events(decoder)
            decoder.receive_data(None)
            await upload.take_events(decoder)
        except ValueError as exc:  # werkzeug's decoder on a malformed body
            raise BadInput(f"Bad request: cannot read the multipart body: {exc}") from exc
        if not upload.found:
            raise BadInput("Bad request: the multipart body has no `snapshot` file")
        if not upload.ended:
            raise BadInput("Bad request: cannot read the multipart body: it ends before its closing boundary")
        return await upload.close()
    except BaseException:
        with trio.CancelScope(shield=True):
            await upload.discard()
        raise


_MAX_PARTS = 1000
_WRITE_BYTES = snapshots.CHUNK  # write to disk in pieces this large


class _UploadFile:
    """The `snapshot` part of a multipart body, written off the event loop as it comes."""

    def __init__(self, target: Path, hashed: bool):
        self.target = target
        self.digest = hashlib.sha256() if hashed else None
        self.found = False  # a `snapshot` file part started
        self.ended = False  # the body's closing boundary was seen
        self._in_part = False
        self._buffer = bytearray()
        self._file = None

    async def take_events(self, decoder: MultipartDecoder) -> None:
        while True:
            event = decoder.next_event()
            if isinstance(event, NeedData):
                return
            if isinstance(event, Epilogue):
                self.ended = True
                return
            if isinstance(event, File):
                # the first file part named `snapshot`, as `request.files.get` took it
                self._in_part = event.name == "snapshot" and not self.found
                if self._in_part:
                    self.found = True
                    self._file = await off_loop(_open_new, self.target)
            elif isinstance(event, Field):
                self._in_part = False
            elif isinstance(event, Data) and self._in_part:
                self._buffer += event.data
                if len(self._buffer) >= _WRITE_BYTES or not event.more_data:
                    await self._flush()

    async def _flush(self) -> None:
        if self._buffer and self._file is not None:
            data, self._buffer = bytes(self._buffer), bytearray()
            await off_loop(self._write, data)

    def _write(self, data: bytes) -> None:
        if self.digest is not None:
            self.digest.update(data)
        self._file.write(data)

    async def close(self) -> str | None:
        await self._flush()
        if self._file is not None:
            await off_loop(self._file.close)
        return self.digest.hexdigest() if self.digest is not None else None

    async def discard(self) -> None:
        if self._file is not None:
            await off_loop(self._file.close)
        await off_loop(_remove, self.target)


def _open_new(target: Path):
    target.parent.mkdir(parents=True, exist_ok=True)
    return open(target, "wb")


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)


def _in_background(what: str, function, *args):
    """Run `function(*args)` in the storage nursery and answer 202 accepted now."""

    async def run() -> None:
        try:
            await function(*args)
        except Exception:
            log.exception("%s failed (wait=false)", what)

    toc().start_soon(run)
    return json_response({"result": None, "status": "accepted", "time": elapsed()}, 202)
