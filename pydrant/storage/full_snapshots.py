"""Full snapshots (every collection and the aliases in one tar) and restoring snapshots
when the server starts (`pydrant serve --snapshot PATH:NAME | --storage-snapshot PATH`).

A full snapshot (docs/snapshots.md "Full snapshots") is
`<snapshots_path>/full-snapshot-<YYYY-MM-DD-HH-MM-SS>.snapshot`, its sha256 in `.checksum`
beside it, holding Qdrant's layout plus pydrant's format marker:

  snapshot.json   {"format": "pydrant-full-snapshot", "format_version": 1, "created",
                   "pydrant_version", "checksums": {file: sha256 of each collection snapshot},
                   "skipped": {collection: why}} (collections that failed to load)
  config.json     Qdrant's SnapshotConfig: {"collections_mapping": {collection: file},
                   "collections_aliases": {alias: collection}}
  <file>          one collection snapshot per collection (collection/snapshots.py): format
                  version 1 for a one-shard collection, 2 for a sharded one

Taking one: under the table of content's meta lock (no collection created, deleted or
replaced, no alias changed meanwhile) every collection's cut is taken in turn, as a
collection snapshot takes it (one flush and hard links under that collection's apply
lock; every shard's with a sharded collection's writes paused), and the aliases are
read. Each collection is consistent in itself; the set of collections and aliases is the
one of that moment. With no lock held, each cut is tarred
into a collection snapshot, then these and the two JSON files into the full snapshot, which
is written to a temporary name and renamed when complete (`snapshots.write_archive`).

Restoring at start runs before the storage loads, on a stopped storage directory: every
snapshot is checked, unpacked and opened once under `<storage>/pending/` first, and only
when all of them are good are the collections moved into `collections/` (an existing one
is swapped out with one rename exchange, only with `force`) and the aliases written. A
refusal changes nothing in `collections/` or `aliases.json`.

Everything here except `create_full_snapshot` blocks (worker threads or before trio runs).
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import trio

from pydrant import __version__
from pydrant.collection import snapshots
from pydrant.errors import BadInput, PydrantError
from pydrant.fsutil import fsync_dir, mkdir_durable, read_json, write_json_atomic
from pydrant.storage.names import validate_name
from pydrant.storage.toc import ALIASES_FILE, COLLECTIONS_DIR, PENDING_DIR, exchange_directories

log = logging.getLogger("pydrant.storage.full_snapshots")

FORMAT = "pydrant-full-snapshot"
FORMAT_VERSION = 1
FULL_SNAPSHOT_PREFIX = "full-snapshot"  # Qdrant's FULL_SNAPSHOT_FILE_NAME
CONFIG_FILE = "config.json"  # Qdrant's name for the mapping file inside a full snapshot


# -- creating -------------------------------------------------------------------------------


async def create_full_snapshot(toc) -> dict:
    """Snapshot every collection and the aliases; returns the SnapshotDescription."""
    staging = toc.pending_dir / f"full-snapshot-{uuid.uuid4().hex}"
    try:
        async with toc.meta_lock:
            collections = [toc.collections[name] for name in sorted(toc.collections)]
            skipped = {name: reason for name, reason in sorted(toc.failed.items())}
            names = [c.name for c in collections]
            aliases = {a: c for a, c in sorted(toc.aliases.items()) if c in names}
            for i, collection in enumerate(collections):
                await snapshots.cut(collection, staging / "cuts" / str(i))
        for name in skipped:
            log.warning("full snapshot: collection %s failed to load and is left out", name)
        return await trio.to_thread.run_sync(_archive_full, staging, toc.snapshots_root, names, aliases, skipped)
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(shutil.rmtree, staging, True)


def _archive_full(staging: Path, root: Path, names: list[str], aliases: dict, skipped: dict) -> dict:
    files = staging / "full"
    files.mkdir(parents=True)
    mapping: dict[str, str] = {}
    checksums: dict[str, str] = {}
    for i, name in enumerate(names):
        cut = staging / "cuts" / str(i)
        description = snapshots.archive(cut, files, name)
        (files / (description["name"] + snapshots.CHECKSUM_SUFFIX)).unlink()  # kept in snapshot.json
        shutil.rmtree(cut)  # free the hard links before the next tar
        mapping[name] = description["name"]
        checksums[description["name"]] = description["checksum"]
    write_json_atomic(files / CONFIG_FILE, {"collections_mapping": mapping, "collections_aliases": aliases})
    write_json_atomic(files / snapshots.META_FILE, {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "pydrant_version": __version__,
        "checksums": checksums,
        "skipped": skipped,
    })
    mkdir_durable(root)
    # unique_name reserves the name until write_archive ends: two in one second get `-2`.
    name = snapshots.unique_name(root, f"{FULL_SNAPSHOT_PREFIX}-{snapshots.timestamp()}")
    return snapshots.write_archive(files, root, name)


def list_full_snapshots(root: Path) -> list[dict]:
    """The full snapshots in `<snapshots_path>/` (collection snapshots are in subdirectories)."""
    return snapshots.list_snapshots(root)


# -- reading --------------------------------------------------------------------------------


@dataclass
class FullSnapshot:
    """A full snapshot extracted into a directory: the collection snapshot files by
    collection name, and the aliases."""

    directory: Path
    collections: dict[str, Path] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)


def open_full_snapshot(path: Path, target: Path, *, progress=None) -> FullSnapshot:
    """Extract the full snapshot `path` into `target` (a new directory; the caller removes
    it) with every member checked first (`snapshots.extract`), check its format version,
    mapping and the sha256 of each collection snapshot it holds. BadInput otherwise.
    `progress(done, total)` is told the bytes extracted (the offline tools show it)."""
    snapshots.extract(path, target, progress=progress)
    meta_path = target / snapshots.META_FILE
    try:
        meta = read_json(meta_path) if meta_path.is_file() else None
    except Exception as exc:
        raise BadInput(f"Wrong input: not a pydrant full snapshot: unreadable {snapshots.META_FILE}: {exc}") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else None
        hint = " (it is a collection snapshot: use --snapshot PATH:NAME)" if found == snapshots.FORMAT else ""
        raise BadInput(f"Wrong input: not a pydrant full snapshot: it has no {snapshots.META_FILE} naming `{FORMAT}`{hint}")
    problem = snapshots.version_problem(meta, FORMAT_VERSION, what="full snapshot")
    if problem is not None:
        raise BadInput(f"Wrong input: {problem}")
    try:
        config = read_json(target / CONFIG_FILE)
        mapping = config["collections_mapping"]
        aliases = config.get("collections_aliases") or {}
        if not isinstance(mapping, dict) or not isinstance(aliases, dict):
            raise ValueError("collections_mapping or collections_aliases is not an object")
    except Exception as exc:
        raise BadInput(f"Wrong input: full snapshot is damaged: its {CONFIG_FILE}: {type(exc).__name__}: {exc}") from exc
    checksums = meta.get("checksums") or {}
    result = FullSnapshot(target)
    for name, file_name in sorted(mapping.items()):
        _check_collection_name(name)
        if not isinstance(file_name, str):
            raise BadInput(f"Wrong input: full snapshot is damaged: collection `{name}` maps to {file_name!r}")
        snapshots.check_name(file_name)
        file = target / file_name
        if not file.is_file():
            raise BadInput(f"Wrong input: full snapshot is damaged: the snapshot of collection `{name}` ({file_name}) is missing")
        expected = checksums.get(file_name)
        if expected is not None and snapshots.sha256_file(file) != expected:
            raise BadInput(f"Wrong input: full snapshot is damaged: the snapshot of collection `{name}` fails its checksum")
        result.collections[name] = file
    for alias, collection in sorted(aliases.items()):
        _check_collection_name(alias, "alias")
        if collection not in result.collections:
            raise BadInput(f"Wrong input: full snapshot is damaged: alias `{alias}` names `{collection}`, which it does not hold")
        result.aliases[alias] = collection
    return result


def _check_collection_name(name, what: str = "collection") -> None:
    if not isinstance(name, str):
        raise BadInput(f"Wrong input: invalid {what} name {name!r}")
    try:
        validate_name(name)
    except PydrantError as exc:
        raise BadInput(f"Wrong input: invalid {what} name `{name}`: {exc.message}") from exc


# -- restoring at start ---------------------------------------------------------------------


class RestoreError(Exception):
    """A snapshot given at start cannot be restored; nothing was changed. One line."""


def parse_mapping(value: str) -> tuple[Path, str]:
    """`PATH:NAME` (Qdrant's `--snapshot` format) -> (path, name). The name is after the
    last `:` (a collection name cannot hold one; a path may)."""
    path, sep, name = value.rpartition(":")
    if not sep or not path or not name:
        raise RestoreError(f"--snapshot {value!r}: expected PATH:COLLECTION")
    return Path(path), name


def restore_at_start(storage: Path, mappings: list[str] | None = None, full: str | None = None,
                     force: bool = False) -> list[str]:
    """Restore collection snapshots (`PATH:NAME` each) or one full snapshot into the
    storage directory of a server that is not running yet, as Qdrant's `--snapshot`,
    `--storage-snapshot` and `--force-snapshot`. Returns the collections restored.
    RestoreError (nothing changed) for a bad path or snapshot, or an existing collection
    or alias without `force`."""
    mappings = list(mappings or [])
    if full is not None and mappings:
        # Qdrant silently ignores --snapshot when --storage-snapshot is given.
        raise RestoreError("--snapshot and --storage-snapshot cannot be combined: restore one full snapshot or collection snapshots")
    if full is None and not mappings:
        return []
    collections_dir = storage / COLLECTIONS_DIR
    pending = storage / PENDING_DIR
    wanted: list[tuple[Path, str]] = []
    if full is not None:
        full_path = Path(full)
        if not full_path.is_file():
            raise RestoreError(f"--storage-snapshot {full}: no such file")
    else:
        for value in mappings:
            path, name = parse_mapping(value)
            if not path.is_file():
                raise RestoreError(f"--snapshot {value}: {path}: no such file")
            wanted.append((path, name))
    mkdir_durable(collections_dir)
    mkdir_durable(pending)
    current_aliases = _read_aliases(storage)
    work = pending / f"restore-{uuid.uuid4().hex}"
    work.mkdir()
    try:
        new_aliases: dict[str, str] = {}
        if full is not None:
            try:
                opened = open_full_snapshot(Path(full), work / "full")
            except BadInput as exc:
                raise RestoreError(f"--storage-snapshot {full}: {_reason(exc)}") from exc
            wanted = [(file, name) for name, file in opened.collections.items()]
            new_aliases = opened.aliases
        _check_conflicts(collections_dir, wanted, current_aliases, new_aliases, force)
        staged: list[tuple[Path, str]] = []
        for i, (path, name) in enumerate(wanted):
            target = work / f"collection-{i}"
            try:
                snapshots.unpack(path, target)
                snapshots.validate_loadable(target)
            except PydrantError as exc:
                raise RestoreError(f"snapshot {path} (collection `{name}`): {_reason(exc)}") from exc
            staged.append((target, name))
        # Every snapshot is good: only now does anything in collections/ change.
        for target, name in staged:
            final = collections_dir / name
            if final.exists():
                exchange_directories(target, final)  # target now holds the old collection
                log.info("collection %s replaced from its snapshot (--force-snapshot)", name)
            else:
                target.rename(final)
            fsync_dir(collections_dir)
            fsync_dir(work)
            shutil.rmtree(target, ignore_errors=True)
        if new_aliases:
            write_json_atomic(storage / ALIASES_FILE, {**current_aliases, **new_aliases})
    finally:
        shutil.rmtree(work, ignore_errors=True)
    restored = [name for _, name in wanted]
    log.info("restored from snapshots at start: %s", ", ".join(restored) or "nothing")
    return restored


def _check_conflicts(collections_dir: Path, wanted: list[tuple[Path, str]], aliases: dict, new_aliases: dict,
                     force: bool) -> None:
    seen: set[str] = set()
    for path, name in wanted:
        try:
            _check_collection_name(name)
        except BadInput as exc:
            raise RestoreError(f"snapshot {path}: {_reason(exc)}") from exc
        if name in seen:
            raise RestoreError(f"collection `{name}` is named by two snapshots")
        seen.add(name)
        if (collections_dir / name).exists() and not force:
            raise RestoreError(f"Collection {name} already exists. Use --force-snapshot to overwrite it.")
        if name in aliases:
            raise RestoreError(f"an alias named `{name}` exists (of collection `{aliases[name]}`): "
                               "a collection cannot take its name; delete the alias first")
    for alias, collection in new_aliases.items():
        if alias in aliases and aliases[alias] != collection and not force:
            raise RestoreError(f"Alias {alias} already exists. Use --force-snapshot to overwrite it.")
        if (collections_dir / alias).exists() and alias not in seen:
            raise RestoreError(f"the snapshot's alias `{alias}` is the name of an existing collection")


def _read_aliases(storage: Path) -> dict[str, str]:
    path = storage / ALIASES_FILE
    if not path.exists():
        return {}
    try:
        aliases = read_json(path)
    except Exception as exc:
        raise RestoreError(f"cannot read {path}: {exc}") from exc
    return dict(aliases) if isinstance(aliases, dict) else {}


def _reason(exc: BaseException) -> str:
    text = exc.message if isinstance(exc, PydrantError) else str(exc)
    return " ".join(text.removeprefix("Wrong input: ").split())
