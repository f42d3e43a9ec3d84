"""Collection snapshots: one tar of a consistent cut of a collection, and its recovery.

A snapshot (docs/snapshots.md) is a tar holding a collection directory as
`open_collection` opens it, plus files of its own. Format version 1, a one-shard
collection (and every shard snapshot, collection or shard):

  snapshot.json        {"format": "pydrant-collection-snapshot", "format_version": 1,
                        "collection", "op_num" (the last operation the segments hold),
                        "created", "pydrant_version"} (+ "shard_id", "shard_key": a shard
                        snapshot, storage/shard_snapshots.py)
  config.json          the collection config
  payload_index.json   the payload index declarations
  manifest.json        the live segments
  segments/<id>/       each segment: a RocksDB checkpoint, and an indexed segment's
                       `index/` and `segment.json`
  wal.cbor             the WAL records after `op_num` (logged, not yet applied at the cut),
                       a CBOR list of [op_num, operation]; recovery writes them to a new WAL

Format version 2, a sharded collection (collection/sharded.py):

  snapshot.json        as version 1 with "format_version": 2, no "op_num" (each shard
                       numbers its own operations), "sharding_method" and "shards":
                       [{"id", "key", "op_num", "wal_records"}]
  config.json, payload_index.json, shards.json   the router's
  shards/<id>/         what version 1 holds at its root, snapshot.json excepted

Beside it in `<snapshots_path>/<collection>/`, `<name>.checksum` holds its sha256 (hex).

Everything here blocks (call it from a worker thread), except `cut`. Creating: `cut`
copies the cut (`Collection.take_cut`, under the apply lock; every shard's with the
router's writes paused, collection/barrier.py) into a staging directory, `archive` tars it
to a temporary name, fsyncs, writes the checksum file, then renames the tar into place.
Recovering: `unpack` checks every member of the tar before extracting anything (regular
files and directories only, relative paths without `..`, bounded count and size), checks
the format version, and turns the staging directory into a collection directory of either
layout; the table of content swaps it in (storage/toc.py). `download` fetches an http(s)
`location` to a temporary file first (streamed, hashed on the way), as Qdrant's recover does.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import tarfile
import threading
import uuid
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import IO, cast
from urllib.parse import unquote, urlparse, urlsplit, urlunsplit

import httpx
import trio

from pydrant import __version__
from pydrant.collection.collection import CONFIG_FILE, MANIFEST_FILE, SEGMENTS_DIR, WAL_DIR, Collection, _open_wal
from pydrant.collection.payload_index import INDEX_FILE as PAYLOAD_INDEX_FILE
from pydrant.collection.sharded import LAYOUT_FORMAT, SHARDS_FILE, ShardedCollection, needs_router, open_collection
from pydrant.collection.sharded import SHARDS_DIR as LAYOUT_SHARDS_DIR
from pydrant.errors import BadInput, NotFound, ServiceError
from pydrant.fsutil import fsync_dir, fsync_tree, mkdir_durable, read_json, write_atomic, write_json_atomic
from pydrant.wal import codec

FORMAT = "pydrant-collection-snapshot"
ONE_SHARD_VERSION = 1  # a one-shard collection at the root (and every shard snapshot)
SHARDED_VERSION = 2  # a sharded collection: shards.json and shards/<id>/, each as version 1's root
FORMAT_VERSION = SHARDED_VERSION  # the newest: what this pydrant writes and reads up to
MAX_SHARDS = 4096  # a version 2 snapshot with more shards is refused (each opens a WAL)
META_FILE = "snapshot.json"
WAL_RECORDS_FILE = "wal.cbor"
SUFFIX = ".snapshot"
CHECKSUM_SUFFIX = ".checksum"
TMP_MARK = ".tmp-"
# Hostile archives: a tar with more members or more bytes than this is refused.
MAX_MEMBERS = 1_000_000
MAX_TOTAL_BYTES = 1 << 40
CHUNK = 1 << 20
# Downloading a snapshot from an http(s) location: the connection must be made within
# CONNECT_TIMEOUT seconds and each read or write must progress within IO_TIMEOUT seconds.
# Qdrant waits without a bound; short ones here keep a dead host from holding a request.
CONNECT_TIMEOUT = 10.0
IO_TIMEOUT = 60.0
MAX_REDIRECTS = 10  # reqwest's default, which Qdrant uses
DOWNLOADS_DIR = ".downloads"  # under snapshots_path; files carry TMP_MARK (removed at start)
SHARDS_DIR = "shards"  # <snapshots_path>/<collection>/shards/<shard_id>/: shard snapshots (as Qdrant)


# -- names and listing ----------------------------------------------------------------------


def check_name(name: str) -> None:
    """A snapshot name is one plain file name: no path separator, not `.` or `..`."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\x00" in name:
        raise BadInput(f"Wrong input: invalid snapshot name `{name}`: it must be a file name without path separators")


def snapshot_path(directory: Path, name: str) -> Path:
    """The file of snapshot `name` in a collection's snapshot directory; 404 if none."""
    check_name(name)
    path = directory / name
    if not name.endswith(SUFFIX) or not path.is_file():
        raise NotFound(f"Not found: Snapshot {name} not found")
    return path


def describe(path: Path) -> dict:
    """Qdrant's SnapshotDescription of a snapshot file."""
    stat = path.stat()
    created = dt.datetime.fromtimestamp(stat.st_mtime, dt.UTC).replace(tzinfo=None)
    checksum_file = path.with_name(path.name + CHECKSUM_SUFFIX)
    try:
        checksum: str | None = checksum_file.read_text().strip() or None
    except OSError:
        checksum = None
    return {
        "name": path.name,
        "creation_time": created.isoformat(timespec="seconds"),
        "size": stat.st_size,
        "checksum": checksum,
    }


def list_snapshots(directory: Path) -> list[dict]:
    if not directory.is_dir():
        return []
    found = [p for p in directory.iterdir() if p.name.endswith(SUFFIX) and TMP_MARK not in p.name and p.is_file()]
    return [describe(p) for p in sorted(found, key=lambda p: p.name)]


def delete_snapshot(directory: Path, name: str) -> None:
    path = snapshot_path(directory, name)
    path.unlink()
    try:
        path.with_name(path.name + CHECKSUM_SUFFIX).unlink()
    except FileNotFoundError:
        pass
    fsync_dir(directory)


def remove_temporaries(root: Path) -> int:
    """Remove the partial snapshots a crash left: full snapshots in `<snapshots_path>/`
    itself, collection snapshots in `<snapshots_path>/<collection>/` (and downloads in
    `.downloads/`), shard snapshots in `<snapshots_path>/<collection>/shards/<shard_id>/`."""
    if not root.is_dir():
        return 0
    removed = _remove_temporaries_in(root)
    for directory in root.iterdir():
        if not directory.is_dir():
            continue
        removed += _remove_temporaries_in(directory)
        shards = directory / SHARDS_DIR
        if shards.is_dir():
            for shard in shards.iterdir():
                if shard.is_dir():
                    removed += _remove_temporaries_in(shard)
    return removed


def _remove_temporaries_in(directory: Path) -> int:
    """Partial snapshots (`*.tmp-*`), the temporary of a checksum file being written
    (`*.checksum.<hex>.tmp`, fsutil.write_atomic's name) and a checksum file whose snapshot
    was never renamed into place (`write_archive` writes the checksum first)."""
    removed = 0
    for entry in directory.iterdir():
        name = entry.name
        orphan = name.endswith(SUFFIX + CHECKSUM_SUFFIX) and not entry.with_name(name.removesuffix(CHECKSUM_SUFFIX)).exists()
        if (TMP_MARK in name or _CHECKSUM_TMP.search(name) or orphan) and not entry.is_dir():
            entry.unlink(missing_ok=True)
            removed += 1
    return removed


_CHECKSUM_TMP = re.compile(re.escape(SUFFIX + CHECKSUM_SUFFIX) + r"\.[0-9a-f]{12}\.tmp$")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _shown(url: str) -> str:
    """`url` without user:password, for messages and logs."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def download(url: str, directory: Path, api_key: str | None = None,
             connect_timeout: float = CONNECT_TIMEOUT, io_timeout: float = IO_TIMEOUT) -> tuple[Path, str]:
    """Fetch the snapshot at the http(s) `url` into a new temporary file in `directory`,
    streamed in chunks and hashed on the way; `api_key` goes as the `api-key` header (as
    Qdrant sends it). Returns the file and its sha256 (hex); the caller removes the file.
    A URL that cannot be fetched, answers other than 2xx or times out is a 400 (the
    location is the client's input) and leaves no file behind."""
    mkdir_durable(directory)
    tmp = directory / f"download{TMP_MARK}{uuid.uuid4().hex}"
    headers = {"api-key": api_key} if api_key is not None else {}
    timeout = httpx.Timeout(io_timeout, connect=connect_timeout)
    shown = _shown(url)
    digest = hashlib.sha256()
    try:
        with httpx.Client(timeout=timeout, follow_redirects=True, max_redirects=MAX_REDIRECTS, trust_env=False) as client:
            with client.stream("GET", url, headers=headers) as response:
                if not response.is_success:
                    # as reqwest shows a status: the code and its canonical reason
                    reason = f"{response.status_code} {httpx.codes.get_reason_phrase(response.status_code)}".strip()
                    raise BadInput(f"Wrong input: Failed to download snapshot from {shown}: status - {reason}")
                with open(tmp, "xb") as out:
                    for chunk in response.iter_bytes(CHUNK):
                        out.write(chunk)
                        digest.update(chunk)
    except httpx.TimeoutException as exc:
        tmp.unlink(missing_ok=True)
        raise BadInput(f"Wrong input: Failed to download snapshot from {shown}: timed out ({type(exc).__name__})") from exc
    except (httpx.HTTPError, httpx.InvalidURL, UnicodeError) as exc:  # UnicodeError: a non-ASCII api_key
        tmp.unlink(missing_ok=True)
        raise BadInput(f"Wrong input: Failed to download snapshot from {shown}: {type(exc).__name__}: {exc}") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp, digest.hexdigest()


def local_path(location: str) -> Path:
    """The file a recover `location` on this machine names: `file:///path` or a plain path
    (a Windows drive path too); 404 unless it is a regular file (not under /proc, /sys, /dev)."""
    parsed = urlparse(location)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise BadInput(f"Wrong input: Snapshot location {location} names another host")
        path = Path(unquote(parsed.path))
    elif parsed.scheme == "" or (len(parsed.scheme) == 1 and location[1:2] == ":"):
        path = Path(location)
    else:
        raise BadInput(f"Wrong input: unsupported snapshot location scheme `{parsed.scheme}`: use http(s)://, file:// or a path")
    if not path.is_file() or path.resolve().parts[1:2] in (("proc",), ("sys",), ("dev",)):
        raise NotFound(f"Not found: Snapshot file {path} does not exist")
    return path


# -- creating -------------------------------------------------------------------------------


async def cut(collection: Collection | ShardedCollection, staging: Path) -> None:
    """Copy a consistent cut of `collection` into `staging` (a new directory) with the
    snapshot's own files, in a worker thread. A sharded collection's shards are cut one
    after the other with the router's writes paused (`ShardedCollection.writes_paused`), so
    no request is in one shard's cut and not in another's."""
    if isinstance(collection, ShardedCollection):
        async with collection.writes_paused():
            await trio.to_thread.run_sync(take_sharded, collection, staging)
    else:
        await trio.to_thread.run_sync(take, collection, staging)


def take(collection: Collection, staging: Path) -> None:
    """Copy a consistent cut of the one-shard `collection` (or one shard of a sharded one)
    into `staging` (a new directory) with the snapshot's own files: format version 1.
    Blocks writes for one flush and the hard-linking."""
    op_num, records = _take_shard(collection, staging)
    _write_meta(staging, {"format_version": ONE_SHARD_VERSION, "collection": collection.name, "op_num": op_num})


def take_sharded(router: ShardedCollection, staging: Path) -> None:
    """The cut of every shard of `router` into `staging/shards/<id>/`, with the router's
    config, payload index declarations and layout: format version 2. The caller holds
    `router.writes_paused()` (`cut` does)."""
    staging.mkdir(parents=True)
    write_json_atomic(staging / CONFIG_FILE, router.config)
    write_json_atomic(staging / PAYLOAD_INDEX_FILE, {"fields": dict(router.payload_index.fields)})
    write_json_atomic(staging / SHARDS_FILE, router.layout)
    shards = []
    for shard in router.layout["shards"]:
        op_num, records = _take_shard(router.shards[shard["id"]], staging / LAYOUT_SHARDS_DIR / str(shard["id"]))
        shards.append({"id": shard["id"], "key": shard["key"], "op_num": op_num, "wal_records": len(records)})
    _write_meta(staging, {
        "format_version": SHARDED_VERSION,
        "collection": router.name,
        "sharding_method": router.sharding_method,
        "shards": shards,
    })


def _take_shard(collection: Collection, target: Path) -> tuple[int, list]:
    op_num, records = collection.take_cut(target)
    with open(target / WAL_RECORDS_FILE, "wb") as f:
        f.write(codec.encode([[n, op] for n, op in records]))
    return op_num, records


def _write_meta(staging: Path, fields: dict) -> None:
    write_json_atomic(staging / META_FILE, {
        "format": FORMAT,
        **fields,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "pydrant_version": __version__,
    })


def new_name(directory: Path, collection: str) -> str:
    """Qdrant's `<collection>-<peer>-<YYYY-MM-DD-HH-MM-SS>.snapshot` (peer 0: one node),
    with `-N` added when a snapshot of that second exists already."""
    return unique_name(directory, f"{collection}-0-{timestamp()}")


def timestamp() -> str:
    """The UTC time in snapshot names, as Qdrant writes it: `YYYY-MM-DD-HH-MM-SS`."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d-%H-%M-%S")


def unique_name(directory: Path, base: str) -> str:
    """`<base>.snapshot`, or `<base>-N.snapshot` (N = 2, 3, ...) when that name is taken:
    by a file, or by a snapshot being written (reserved here until `write_archive` ends,
    so two snapshots of the same second never share a name, one replacing the other and
    the checksum file naming either's bytes)."""
    name = base + SUFFIX
    n = 1
    with _reserved_lock:
        while (directory / name).exists() or directory / name in _reserved:
            n += 1
            name = f"{base}-{n}{SUFFIX}"
        _reserved.add(directory / name)
    return name


_reserved: set[Path] = set()  # snapshot files being written by this process
_reserved_lock = threading.Lock()


def archive(staging: Path, directory: Path, collection: str) -> dict:
    """Tar `staging` into `directory` under a new collection snapshot name (`new_name`).
    Returns its description; on any error nothing partial is left."""
    mkdir_durable(directory)
    return write_archive(staging, directory, new_name(directory, collection))


def write_archive(staging: Path, directory: Path, name: str) -> dict:
    """Tar the tree `staging` into `directory/name`: written to a temporary name while its
    sha256 is computed, fsynced, its checksum file written, then renamed into place and the
    directory fsynced. Returns its description; on any error nothing partial is left."""
    mkdir_durable(directory)
    final = directory / name
    tmp = directory / f"{name}{TMP_MARK}{uuid.uuid4().hex[:12]}"
    checksum_path = final.with_name(name + CHECKSUM_SUFFIX)
    try:
        digest = hashlib.sha256()
        with open(tmp, "wb") as raw:
            hashing = _HashingWriter(raw, digest)
            with tarfile.open(fileobj=cast(IO[bytes], hashing), mode="w|", format=tarfile.PAX_FORMAT) as tar:
                for path in sorted(_walk(staging)):
                    tar.add(path, arcname=path.relative_to(staging).as_posix(), recursive=False)
            raw.flush()
            os.fsync(raw.fileno())
        write_atomic(checksum_path, digest.hexdigest().encode())
        os.replace(tmp, final)
        fsync_dir(directory)
    except BaseException:
        tmp.unlink(missing_ok=True)
        if not final.exists():
            checksum_path.unlink(missing_ok=True)
        raise
    finally:
        with _reserved_lock:
            _reserved.discard(final)
    return describe(final)


class _HashingWriter:
    """A write-only file object that hashes what passes through it."""

    def __init__(self, raw, digest):
        self._raw = raw
        self._digest = digest

    def write(self, data) -> int:
        self._digest.update(data)
        return self._raw.write(data)

    def flush(self) -> None:
        self._raw.flush()


def _walk(root: Path):
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            yield Path(directory) / name


# -- recovering -----------------------------------------------------------------------------


def check_member(member: tarfile.TarInfo) -> str:
    """The member's safe relative path; BadInput for anything that could write outside
    the target or is not plain data (links, devices, fifos, absolute paths, `..`)."""
    name = member.name
    if not (member.isfile() or member.isdir()):
        kind = "link" if (member.issym() or member.islnk()) else "special file"
        raise BadInput(f"Wrong input: snapshot refused: member `{name}` is a {kind}; only files and directories are allowed")
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name) or "\x00" in name or "\\" in name:
        raise BadInput(f"Wrong input: snapshot refused: member `{name}` has an absolute or invalid path")
    parts = PurePosixPath(name).parts
    if ".." in parts:
        raise BadInput(f"Wrong input: snapshot refused: member `{name}` leaves the snapshot directory (`..`)")
    clean = [p for p in parts if p not in ("", ".")]
    return "/".join(clean)


def checked_members(tar: tarfile.TarFile) -> list[tuple[tarfile.TarInfo, str]]:
    """Every member checked (`check_member`), with bounded count and total size, before
    anything is extracted."""
    members: list[tuple[tarfile.TarInfo, str]] = []
    total = 0
    for member in tar:
        if len(members) >= MAX_MEMBERS:
            raise BadInput(f"Wrong input: snapshot refused: more than {MAX_MEMBERS} members")
        path = check_member(member)
        total += max(member.size, 0)
        if total > MAX_TOTAL_BYTES:
            raise BadInput("Wrong input: snapshot refused: its members are larger than 1 TiB in total")
        members.append((member, path))
    return members


def extract(snapshot: Path, target: Path, *, progress: Callable[[int, int], None] | None = None) -> None:
    """Extract the tar `snapshot` into `target` (a new directory), every member checked
    first; nothing is written outside `target`. `progress(done, total)`, if given, is
    called as the members' bytes are written (total: the bytes of all file members)."""
    target.mkdir(parents=True)
    root = target.resolve()
    try:
        with tarfile.open(snapshot, mode="r:") as tar:
            members = checked_members(tar)
            total = sum(member.size for member, _ in members if member.isfile())
            done = 0
            if progress is not None:
                progress(done, total)
            for member, path in members:
                if not path:
                    continue
                destination = (root / path).resolve()
                if root not in destination.parents:
                    raise BadInput(f"Wrong input: snapshot refused: member `{member.name}` leaves the snapshot directory")
                if member.isdir():
                    destination.mkdir(parents=True, exist_ok=True)
                    continue
                destination.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                if source is None:
                    raise BadInput(f"Wrong input: snapshot refused: member `{member.name}` cannot be read")
                # O_EXCL and O_NOFOLLOW: never through a link, never over another member
                fd = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
                with os.fdopen(fd, "wb") as out:
                    while chunk := source.read(CHUNK):
                        out.write(chunk)
                        done += len(chunk)
                        if progress is not None:
                            progress(done, total)
    except (tarfile.TarError, EOFError) as exc:
        raise BadInput(f"Wrong input: snapshot is not a valid tar archive: {exc}") from exc
    except FileExistsError as exc:
        raise BadInput(f"Wrong input: snapshot refused: member `{exc.filename}` appears twice") from exc


def unpack(snapshot: Path, target: Path, *, progress: Callable[[int, int], None] | None = None,
           shard: bool = False) -> dict:
    """Turn snapshot file `snapshot` into a collection directory at `target` (a new
    directory, left for the caller to remove on error), in the layout the snapshot has
    (version 1: one shard at the root; version 2: a sharded collection). Returns the
    snapshot's config. BadInput for a file that is not a pydrant snapshot, has a newer
    format version, is damaged, or is of the wrong kind: with `shard` (a shard recovery)
    a version 2 snapshot is refused, without it a shard snapshot of a sharded collection
    is. `progress` is passed to `extract`."""
    extract(snapshot, target, progress=progress)
    meta = read_meta(target)
    problem = version_problem(meta, FORMAT_VERSION, hint="recover it with that pydrant version or a newer one")
    if problem is not None:
        raise BadInput(f"Wrong input: {problem}")
    sharded = meta["format_version"] == SHARDED_VERSION
    try:
        config = read_json(target / CONFIG_FILE)
        if not isinstance(config, dict) or not isinstance(config.get("params"), dict):
            raise ValueError("config of the wrong shape")
        _check_wal_config(config.get("wal_config") or {})
    except Exception as exc:
        raise BadInput(f"Wrong input: snapshot is incomplete or damaged: {type(exc).__name__}: {exc}") from exc
    if sharded and shard:
        raise BadInput(
            "Wrong input: snapshot is a collection snapshot of a sharded collection (format version 2), not a shard "
            "snapshot: recover it with PUT /collections/{collection_name}/snapshots/recover, or take a shard snapshot"
        )
    if not sharded and not shard and "shard_id" in meta and needs_router(config):
        raise BadInput(
            f"Wrong input: snapshot is a shard snapshot of shard {meta['shard_id']} of a sharded collection: recover it "
            "with PUT /collections/{collection_name}/shards/{shard_id}/snapshots/recover"
        )
    if (target / WAL_DIR).exists():
        raise BadInput("Wrong input: snapshot is damaged: it holds a WAL directory")
    if sharded:
        _unpack_shards(target, config, meta)
    else:
        _unpack_shard(target, config)
    (target / META_FILE).unlink()
    fsync_tree(target)
    return config


def read_meta(target: Path) -> dict:
    """The `snapshot.json` of an extracted snapshot; BadInput if it is not a pydrant
    collection snapshot's."""
    meta_path = target / META_FILE
    if not meta_path.is_file():
        raise BadInput(f"Wrong input: not a pydrant collection snapshot: it has no {META_FILE}")
    try:
        meta = read_json(meta_path)
    except Exception as exc:
        raise BadInput(f"Wrong input: not a pydrant collection snapshot: unreadable {META_FILE}: {exc}") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise BadInput(f"Wrong input: not a pydrant collection snapshot: {META_FILE} names no `{FORMAT}` format")
    return meta


def _unpack_shard(directory: Path, config: dict, where: str = "") -> None:
    """A one-shard collection directory (a version 1 snapshot's root, or one shard of a
    version 2 one, `where` naming it in messages) checked and given a WAL holding its
    `wal.cbor` records, as the config `config` sets the WAL up."""
    try:
        manifest = read_json(directory / MANIFEST_FILE)
        segment_ids = manifest["segments"]
        if not isinstance(segment_ids, list) or not segment_ids:
            raise ValueError("manifest of the wrong shape")
        for segment_id in segment_ids:
            if not isinstance(segment_id, str) or not (directory / SEGMENTS_DIR / segment_id).is_dir():
                raise ValueError(f"segment {segment_id!r} listed in the manifest is missing")
        records = codec.decode((directory / WAL_RECORDS_FILE).read_bytes())
        if not isinstance(records, list):
            raise ValueError("WAL records are not a list")
    except Exception as exc:
        raise BadInput(f"Wrong input: snapshot is incomplete or damaged{where}: {type(exc).__name__}: {exc}") from exc
    if (directory / WAL_DIR).exists():
        raise BadInput(f"Wrong input: snapshot is damaged{where}: it holds a WAL directory")
    wal = _open_wal(directory, config)
    try:
        wal.append_many((int(n), op) for n, op in records)
    except (ValueError, TypeError) as exc:
        raise BadInput(f"Wrong input: snapshot is damaged{where}: its WAL records: {exc}") from exc
    finally:
        wal.close()
    (directory / WAL_RECORDS_FILE).unlink()


def _unpack_shards(target: Path, config: dict, meta: dict) -> None:
    """A version 2 snapshot: the layout (`shards.json`) checked against `snapshot.json` and
    the shard directories, then every shard unpacked as a version 1 root is. Each shard's
    `config.json` is the collection's (as `ShardedCollection.load` keeps it)."""
    try:
        layout = read_json(target / SHARDS_FILE)
    except Exception as exc:
        raise BadInput(f"Wrong input: snapshot is incomplete or damaged: {SHARDS_FILE}: {type(exc).__name__}: {exc}") from exc
    ids = _check_layout(layout, config)
    listed = meta.get("shards")
    if not isinstance(listed, list) or [s.get("id") if isinstance(s, dict) else None for s in listed] != ids:
        raise BadInput(f"Wrong input: snapshot is damaged: {META_FILE} and {SHARDS_FILE} list different shards")
    shards_dir = target / LAYOUT_SHARDS_DIR
    present = sorted(p.name for p in shards_dir.iterdir()) if shards_dir.is_dir() else []
    unlisted = sorted(set(present) - {str(i) for i in ids})
    if unlisted:
        raise BadInput(f"Wrong input: snapshot is damaged: shards/{unlisted[0]} is not in its {SHARDS_FILE}")
    for shard_id in ids:
        directory = shards_dir / str(shard_id)
        if not directory.is_dir():
            raise BadInput(f"Wrong input: snapshot is incomplete: shard {shard_id} listed in {SHARDS_FILE} is missing")
        write_json_atomic(directory / CONFIG_FILE, config)
        _unpack_shard(directory, config, f" (shard {shard_id})")
    if not shards_dir.is_dir():
        shards_dir.mkdir()


def _check_layout(layout, config: dict) -> list[int]:
    """The shard ids of a snapshot's `shards.json`, checked as `ShardedCollection.load`
    needs them and against the config's sharding method."""
    def damaged(why: str) -> BadInput:
        return BadInput(f"Wrong input: snapshot is damaged: its {SHARDS_FILE}: {why}")

    if not isinstance(layout, dict) or layout.get("format") != LAYOUT_FORMAT:
        raise damaged(f"not a shard layout of format {LAYOUT_FORMAT}")
    method = layout.get("sharding_method")
    if method not in ("auto", "custom") or method != (config["params"].get("sharding_method") or "auto"):
        raise damaged(f"sharding method {method!r} is not the config's")
    shards = layout.get("shards")
    if not isinstance(shards, list) or len(shards) > MAX_SHARDS:
        raise damaged(f"`shards` must be a list of at most {MAX_SHARDS}")
    ids: list[int] = []
    for shard in shards:
        shard_id = shard.get("id") if isinstance(shard, dict) else None
        key = shard.get("key") if isinstance(shard, dict) else None
        if not isinstance(shard_id, int) or isinstance(shard_id, bool) or not 0 <= shard_id < 1 << 32 or shard_id in ids:
            raise damaged(f"invalid or repeated shard id {shard_id!r}")
        if isinstance(key, bool) or not (key is None or isinstance(key, (str, int))) or (key is None) != (method == "auto"):
            raise damaged(f"shard {shard_id}: invalid shard key {key!r} for {method} sharding")
        ids.append(shard_id)
    if method == "auto" and not ids:
        raise damaged("an auto-sharded collection has no shards")
    return ids


def version_problem(meta: dict, maximum: int, *, what: str = "snapshot", reader: str = "this server",
                    hint: str | None = None) -> str | None:
    """Why `meta`'s `format_version` cannot be read (a reader of versions 1..`maximum`), or
    None. One wording for collection, shard and full snapshots and the offline tools."""
    version = meta.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        return f"{what} has an invalid format version {version!r}"
    if version > maximum:
        return (
            f"{what} format version {version} is newer than {reader} reads (up to {maximum}; "
            f"written by pydrant {meta.get('pydrant_version', '?')})" + (f": {hint}" if hint else "")
        )
    return None


def _check_wal_config(wal_config: dict) -> None:
    """The WAL is created from the snapshot's config before anything else reads it: bound
    what it would preallocate."""
    capacity = wal_config.get("wal_capacity_mb", 32)
    ahead = wal_config.get("wal_segments_ahead", 0)
    for value, low, high, what in ((capacity, 1, 1 << 16, "wal_capacity_mb"), (ahead, 0, 64, "wal_segments_ahead")):
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise ValueError(f"config {what} {value!r} is out of range {low}..{high}")


def validate_loadable(target: Path) -> None:
    """Open the unpacked collection once (every shard of a sharded one) and close it: a
    snapshot whose segments cannot be opened is refused before it replaces anything."""
    try:
        collection = open_collection(target)
    except Exception as exc:
        raise BadInput(f"Wrong input: snapshot cannot be loaded: {type(exc).__name__}: {exc}") from exc
    try:
        collection._close_files()
    except Exception as exc:
        raise ServiceError(f"Service internal error: closing the recovered collection failed: {exc}") from exc


def check_compatible(existing: dict, snapshot: dict) -> None:
    """Qdrant's checks before a collection snapshot replaces an existing collection
    (`_do_recover_from_snapshot`): the same vectors, the same `shard_number`, and the same
    sharding method (`CollectionParams::check_compatible`: "not changeable"). Everything
    else comes from the snapshot: its config wins."""
    ours, theirs = existing.get("params", {}), snapshot.get("params", {})
    prefix = "Wrong input: Snapshot is not compatible with existing collection"
    if ours.get("vectors") != theirs.get("vectors"):
        raise BadInput(f"{prefix}: Collection vectors: {ours.get('vectors')} Snapshot Vectors: {theirs.get('vectors')}")
    if (ours.get("shard_number") or 1) != (theirs.get("shard_number") or 1):
        raise BadInput(
            f"{prefix}: Collection shard number: {ours.get('shard_number') or 1} "
            f"Snapshot shard number: {theirs.get('shard_number') or 1}"
        )
    method, other = ours.get("sharding_method") or "auto", theirs.get("sharding_method") or "auto"
    if method != other:
        raise BadInput(
            f"{prefix}: sharding method is incompatible: origin sharding method: {method.capitalize()}, "
            f"while other sharding method: {other.capitalize()}"
        )
