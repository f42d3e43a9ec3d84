"""Snapshots API (docs/snapshots.md).

- Collection snapshots: create, list, download, delete, recover from a location (a file or
  an http(s) URL), upload (collection/snapshots.py, storage/toc.py).
- Full snapshots, `/snapshots`: every collection and the aliases in one tar
  (storage/full_snapshots.py).
- Shard snapshots, `/collections/{name}/shards/{shard_id}/snapshots`: shard 0 is the
  collection's data; any other shard is Qdrant's 404 (storage/shard_snapshots.py).

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
from quart import Blueprint, request
from quart.helpers import send_file

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
    try:
        files = await request.files
    except Exception as exc:
        raise BadInput(f"Bad request: cannot read the multipart body: {exc}") from exc
    upload = files.get("snapshot")
    if upload is None:
        raise BadInput("Bad request: the multipart body has no `snapshot` file")
    root = toc().pending_dir
    saved = root / f"upload-{uuid.uuid4().hex}.snapshot"
    actual = await off_loop(_save_upload, upload, saved, expected is not None)
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


def _save_upload(upload, target: Path, hashed: bool) -> str | None:
    """Copy the uploaded file to `target`; with `hashed`, its sha256 (hex), computed on the
    way so that a `checksum` costs no second pass over the file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256() if hashed else None
    with open(target, "wb") as out:
        while chunk := upload.stream.read(snapshots.CHUNK):
            if digest is not None:
                digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest() if digest is not None else None


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
