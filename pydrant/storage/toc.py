"""The table of content: every collection and alias of this node.

On disk under `storage_path`:
  collections/<name>/        one directory per collection (see collection/collection.py)
  aliases.json               {"alias": "collection", ...}, replaced atomically
  pending/                   collections being created or deleted (never a collection)
Creating a collection builds it in `pending/create-<random>` and renames it into
`collections/`; deleting renames it to `pending/delete-<random>` before removing it.
Whatever is in `pending/` at start is a leftover of a crash and is removed, so a collection
exists wholly or not at all. Every entry of `collections/` is a collection: a name can
never collide with a temporary (a collection may be called `.tmp-x`), and nothing in
`collections/` is ever removed without a delete request.

Each collection is its own failure domain: one that fails to load (corrupt WAL, missing
segment, bad config, a stray directory, too many open files) is reported — status red in
`GET /collections/{name}`, an issue on the board, the cause in the log — and the rest of
the node serves. A collection's runtime tasks retry their errors themselves
(collection/collection.py), so no collection's failure ends the others'.

Start-up: `run` opens every collection. One INFO line per collection says what is being opened and, once it is,
how long it took and how many WAL operations were replayed; a collection still opening after
`PROGRESS_SECONDS` is reported again every `PROGRESS_SECONDS`, so a long start is never
silent (tests/storage/test_startup_logs.py). This module imports the storage stack only,
never the web stack (tests/test_startup_imports.py).

Collections are not opened in a thread while the web stack imports, as the design of issue
17 proposed (docs/design/on-disk-segments.md, S1): measured on the benchmark machine, with
the page cache warm or cold, opening is CPU-bound Python under the GIL like the imports, so
the two did not overlap, and the thread's GIL hand-offs made a start with two collections of
100,000 x 384 points ~0.4 s slower (median of 12 interleaved starts each).
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
import uuid
from pathlib import Path

import trio

from pydrant.collection import snapshots
from pydrant.collection.collection import CONFIG_FILE, MANIFEST_FILE, Collection
from pydrant.collection.sharded import (
    SHARDS_DIR,
    ShardedCollection,
    initialise_collection,
    is_sharded,
    open_collection,
)
from pydrant.collection.config import (
    CollectionDefaults,
    apply_update,
    build_config,
    check_init_from,
    check_vector_sizes,
)
from pydrant.errors import AlreadyExists, BadInput, NotFound, ServiceError
from pydrant.fsutil import fsync_dir, mkdir_durable, read_json, write_json_atomic
from pydrant.issues import BOARD, collection_issue_id
from pydrant.segments.residency import ResidencyWorker, rate_from_env
from pydrant.storage.names import validate_name

log = logging.getLogger("pydrant.storage")

# A collection of one shard, or a sharded one (collection/sharded.py): the same face.
AnyCollection = Collection | ShardedCollection

COLLECTIONS_DIR = "collections"
ALIASES_FILE = "aliases.json"
PENDING_DIR = "pending"
LOAD_FAILED = "COLLECTION_LOAD_FAILED"
# Longest wait of a request for a collection being swapped for a recovered one (the swap
# itself takes a fraction of a second; loading a large collection can take longer).
SWAP_WAIT_SECONDS = 60
# A collection still opening after this long is logged again, and again after as long.
PROGRESS_SECONDS = 5.0


def defaults_from_settings(settings) -> CollectionDefaults:
    return CollectionDefaults.from_settings(settings)


class TableOfContent:
    """Owns the collections and aliases; every long-lived collection task runs in its nursery."""

    def __init__(self, storage_path: Path, defaults: CollectionDefaults, snapshots_path: Path | None = None):
        self.root = Path(storage_path)
        # Collection snapshots live in `<snapshots_root>/<collection>/` (collection/snapshots.py).
        self.snapshots_root = Path(snapshots_path) if snapshots_path is not None else self.root / "snapshots"
        self.defaults = defaults
        self.collections: dict[str, AnyCollection] = {}
        # Collections whose directory exists but failed to load: name -> reason. They keep
        # their names (no create over them) and are listed, in status red.
        self.failed: dict[str, str] = {}
        self.aliases: dict[str, str] = {}
        self.ready = False
        # Serialises changes to the set of collections and aliases: held while collections
        # are created, deleted, replaced or snapshotted (full_snapshots, shard_snapshots,
        # point-in-time restore take it too) and while aliases change, so whoever holds it
        # sees a fixed set of collections and aliases.
        self.meta_lock = trio.Lock()
        # Collections being swapped for recovered ones: name -> set when the swap ends.
        self.swapping: dict[str, trio.Event] = {}
        self._nursery: trio.Nursery | None = None
        # Populates and verifies immutable segments in the background (segments/residency.py):
        # paused until storage is ready so that it never slows the start, closed by `run`.
        self.residency = ResidencyWorker(rate_from_env(), paused=True)

    @classmethod
    def from_settings(cls, settings) -> TableOfContent:
        return cls(
            Path(settings.storage.storage_path), defaults_from_settings(settings), Path(settings.storage.snapshots_path)
        )

    @property
    def collections_dir(self) -> Path:
        return self.root / COLLECTIONS_DIR

    # -- lifecycle -----------------------------------------------------------------------

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Load every collection (recovering each from its WAL), then report started.

        Requests are accepted only after `started`, so no request sees a half-loaded node.
        Runs until cancelled; on cancellation every collection is flushed and closed.
        """
        began = time.monotonic()
        loaded = await trio.to_thread.run_sync(self._load_from_disk)
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                for collection in loaded:
                    await nursery.start(collection.run)
                    self.collections[collection.name] = collection
                if self.failed:
                    log.error("collections that failed to load: %s", ", ".join(sorted(self.failed)))
                self.ready = True
                self.residency.resume()
                log.info(
                    "storage ready at %s: %s%s in %.2f s",
                    self.root, _count(len(self.collections), "collection"),
                    f" ({len(self.failed)} failed)" if self.failed else "", time.monotonic() - began,
                )
                task_status.started()
                await trio.sleep_forever()
        finally:
            self.ready = False
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(self.residency.close)  # bounded join, before the segments close
                for collection in list(self.collections.values()):
                    await collection.close()

    def _load_from_disk(self) -> list[AnyCollection]:
        mkdir_durable(self.collections_dir)
        self._clear_pending()
        try:
            snapshots.remove_temporaries(self.snapshots_root)  # partial snapshots of a crash
        except OSError as exc:
            log.warning("could not clean the snapshots directory %s: %s", self.snapshots_root, exc)
        entries = sorted(self.collections_dir.iterdir())
        if entries:
            log.info("opening %s in %s", _count(len(entries), "collection"), self.collections_dir)
        loaded = []
        for entry in entries:
            collection = self._load_one(entry)
            if collection is not None:
                loaded.append(collection)
        aliases_path = self.root / ALIASES_FILE
        if aliases_path.exists():
            names = {c.name for c in loaded} | set(self.failed)
            self.aliases = {a: c for a, c in read_json(aliases_path).items() if c in names}
        return loaded

    def _load_one(self, entry: Path) -> AnyCollection | None:
        """Load one collection; a failure is recorded for it alone and the node goes on."""
        try:
            if not entry.is_dir():
                raise ServiceError(f"{entry} is not a collection directory")
            log.info("collection %s: opening %s", entry.name, _stored_layout(entry))
            began = time.monotonic()
            with _ProgressReports(entry.name, began):
                collection = open_collection(entry, self.get)
            log.info(
                "collection %s: ready in %.2f s: %s in %s, %s replayed",
                entry.name, time.monotonic() - began, _count(collection.points_count(), "point"),
                _count(len(collection.segments), "segment"), _count(_replayed_at_load(collection), "WAL operation"),
            )
            return collection
        except Exception as exc:
            log.exception("collection %s failed to load; the rest of the node serves", entry.name)
            reason = f"{type(exc).__name__}: {exc}" if not isinstance(exc, ServiceError) else exc.message
            self.failed[entry.name] = reason
            BOARD.submit(
                collection_issue_id(LOAD_FAILED, entry.name),
                f"Collection `{entry.name}` failed to load: {reason}",
                "Check the server log for the cause; fix or remove the collection directory and restart.",
            )
            return None

    @property
    def pending_dir(self) -> Path:
        return self.root / PENDING_DIR

    def _clear_pending(self) -> None:
        """Remove creations, deletions, snapshot stagings, recoveries and uploads a crash
        interrupted (never a collection). An upload is a file: rmtree would not remove it."""
        mkdir_durable(self.pending_dir)
        for entry in self.pending_dir.iterdir():
            log.warning("removing leftover %s from an interrupted operation", entry)
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)

    # -- lookups -------------------------------------------------------------------------

    def resolve_name(self, name: str) -> str:
        if name in self.collections:
            return name
        target = self.aliases.get(name)
        if target is not None and target in self.collections:
            return target
        raise NotFound(f"Not found: Collection `{name}` doesn't exist!")

    def get(self, name: str) -> AnyCollection:
        """The collection named `name` or by an alias `name`; 404 otherwise, and a service
        error naming the cause for a collection that failed to load."""
        try:
            return self.collections[self.resolve_name(name)]
        except NotFound:
            reason = self.load_failure(name)
            if reason is None:
                raise
            raise ServiceError(f"Service internal error: Collection `{name}` failed to load: {reason}") from None

    def failed_info(self, name: str) -> dict | None:
        """Collection info of a collection that failed to load (status red, the cause as
        its optimizer error), when its config is readable; None for any other name."""
        reason = self.load_failure(name)
        if reason is None:
            return None
        try:
            config = read_json(self.collections_dir / self.aliases.get(name, name) / CONFIG_FILE)
        except Exception:
            return None  # `get` answers with the cause instead
        return {
            "status": "red",
            "optimizer_status": {"error": f"Collection failed to load: {reason}"},
            "indexed_vectors_count": 0,
            "points_count": 0,
            "segments_count": 0,
            "config": config,
            "payload_schema": {},
        }

    def load_failure(self, name: str) -> str | None:
        """Why the collection named `name` (or by alias `name`) failed to load, if it did."""
        return self.failed.get(self.aliases.get(name, name)) if name not in self.collections else None

    def exists(self, name: str) -> bool:
        try:
            self.resolve_name(name)
            return True
        except NotFound:
            return False

    def list_aliases(self, collection: str | None = None) -> list[dict]:
        if collection is not None:
            collection = self.resolve_name(collection)
        return [
            {"alias_name": alias, "collection_name": target}
            for alias, target in sorted(self.aliases.items())
            if collection is None or target == collection
        ]

    # -- changes -------------------------------------------------------------------------

    async def create_collection(self, name: str, request: dict) -> None:
        """Qdrant's order of checks: the name, the request's limits (422), a collection of
        that name (409), an alias of that name (400), then `init_from`'s source (404) and
        its compatibility (400). With `init_from` the source's points are copied before the
        collection exists (`Collection.copy_points_from`), under the lock that keeps the
        source from being deleted meanwhile."""
        validate_name(name)
        check_vector_sizes(request.get("vectors"))
        async with self.meta_lock:
            if name in self.collections or name in self.failed:
                raise AlreadyExists(f"Wrong input: Collection `{name}` already exists!")
            if name in self.aliases:
                raise BadInput(
                    f"Wrong input: Can't create collection with name {name}. Alias with the same name already exists"
                )
            source = None
            if request.get("init_from") is not None:
                source = self.get(request["init_from"]["collection"])
                check_init_from(source.config, request)
            config = build_config(request, self.defaults)
            collection = await trio.to_thread.run_sync(self._create_on_disk, name, config, source)
            await self._nursery.start(collection.run)
            self.collections[name] = collection
        log.info("created collection %s", name)

    def _create_on_disk(self, name: str, config: dict, source: AnyCollection | None = None) -> AnyCollection:
        tmp = self.pending_dir / f"create-{uuid.uuid4().hex}"
        try:
            initialise_collection(tmp, name, config)
            if source is not None:
                self._copy_into(tmp, source)
            fsync_dir(self.pending_dir)
            final = self.collections_dir / name
            tmp.rename(final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)  # nothing half-made is left to find
            raise
        # The rename is durable once both directories are: the new entry, and the old
        # one's removal (else a power cut could bring back a pending copy to remove).
        fsync_dir(self.collections_dir)
        fsync_dir(self.pending_dir)
        return open_collection(final, self.get)

    def _copy_into(self, path: Path, source: AnyCollection) -> None:
        """`init_from`: fill the collection being created at `path` with the source's points."""
        target = open_collection(path, self.get)
        try:
            copied = target.copy_points_from(source)
        finally:
            target._close_files()
        log.info("collection %s: %d points copied from %s (init_from)", path.name, copied, source.name)

    async def delete_collection(self, name: str) -> bool:
        async with self.meta_lock:
            if name in self.failed:  # a collection that failed to load can still be deleted
                await trio.to_thread.run_sync(self._remove_on_disk, self.collections_dir / name)
                del self.failed[name]
                BOARD.resolve_prefix(collection_issue_id(LOAD_FAILED, name))
            else:
                collection = self.collections.get(name)
                if collection is None:
                    return False
                await collection.close()
                del self.collections[name]
                # The directory leaves `collections/` durably before anything else changes:
                # a crash from here on finds the collection gone, not half-deleted.
                try:
                    await trio.to_thread.run_sync(self._remove_on_disk, collection.path)
                except BaseException:
                    await self._serve_again(collection.path)
                    raise
            BOARD.resolve_collection(name)  # its issues go with it (Qdrant's CollectionDeletedEvent)
            dropped_aliases = [a for a, c in self.aliases.items() if c == name]
            for alias in dropped_aliases:
                del self.aliases[alias]
            if dropped_aliases:
                # A failure here leaves aliases of a gone collection, which load ignores.
                await trio.to_thread.run_sync(self._save_aliases)
        log.info("deleted collection %s", name)
        return True

    async def _serve_again(self, path: Path) -> None:
        """After a delete failed before the directory moved: the collection is intact on
        disk, so it is loaded and served again (or reported if even that fails)."""
        with trio.CancelScope(shield=True):
            if not path.exists():
                return
            collection = await trio.to_thread.run_sync(self._load_one, path)
            if collection is not None:
                await self._nursery.start(collection.run)
                self.collections[collection.name] = collection

    def _remove_on_disk(self, path: Path) -> None:
        mkdir_durable(self.pending_dir)
        doomed = self.pending_dir / f"delete-{uuid.uuid4().hex}"
        path.rename(doomed)
        fsync_dir(self.collections_dir)
        fsync_dir(self.pending_dir)
        shutil.rmtree(doomed, ignore_errors=True)

    async def update_collection(self, name: str, update: dict) -> None:
        collection = self.get(name)
        # Read, merge and write under the collection's config lock: two concurrent PATCH
        # requests must both take effect, one after the other.
        async with collection.config_lock:
            new_config = apply_update(collection.config, update)
            await collection.set_config(new_config)

    async def change_aliases(self, actions: list[dict]) -> None:
        """Apply alias actions as one change: all of them or, on any error, none."""
        async with self.meta_lock:
            aliases = dict(self.aliases)
            for action in actions:
                self._apply_alias_action(aliases, action)
            previous, self.aliases = self.aliases, aliases
            try:
                await trio.to_thread.run_sync(self._save_aliases)
            except BaseException:
                self.aliases = previous
                raise

    def _apply_alias_action(self, aliases: dict, action: dict) -> None:
        if "create_alias" in action:
            spec = action["create_alias"]
            validate_name(spec["alias_name"], "alias_name")
            target = spec["collection_name"]
            if target not in self.collections:
                raise NotFound(f"Not found: Collection `{target}` doesn't exist!")
            if spec["alias_name"] in self.collections:  # Qdrant's validate_collection_not_exists
                raise AlreadyExists(f"Wrong input: Collection `{spec['alias_name']}` already exists!")
            # Qdrant's create_alias re-points an existing alias rather than failing
            aliases[spec["alias_name"]] = target
        elif "delete_alias" in action:
            alias = action["delete_alias"]["alias_name"]
            if alias not in aliases:
                raise NotFound(f"Not found: Alias {alias} does not exists!")
            del aliases[alias]
        elif "rename_alias" in action:
            spec = action["rename_alias"]
            old, new = spec["old_alias_name"], spec["new_alias_name"]
            validate_name(new, "new_alias_name")
            if old not in aliases:
                raise NotFound(f"Not found: Alias {old} does not exists!")
            if new in self.collections:
                # Qdrant renames without this check (its alias would then shadow the
                # collection); pydrant refuses as create_alias does.
                raise AlreadyExists(f"Wrong input: Collection `{new}` already exists!")
            aliases[new] = aliases.pop(old)
        else:
            raise BadInput(f"Wrong input: unknown alias action {sorted(action)}")

    def _save_aliases(self) -> None:
        mkdir_durable(self.root)
        write_json_atomic(self.root / ALIASES_FILE, self.aliases)

    # -- snapshots (collection/snapshots.py, docs/snapshots.md) ----------------------------

    def start_soon(self, async_fn, *args) -> None:
        """Run a task in the storage nursery (work a `wait=false` request leaves running)."""
        if self._nursery is None:
            raise ServiceError("Service internal error: storage is not running")
        self._nursery.start_soon(async_fn, *args)

    def snapshots_dir(self, name: str) -> Path:
        """The snapshot directory of the collection `name` (or aliased by `name`); 404 for
        an unknown collection."""
        return self.snapshots_root / self.resolve_name(name)

    async def create_snapshot(self, name: str) -> dict:
        """Snapshot the collection: the cut is copied under the meta lock (so the collection
        cannot be deleted or replaced meanwhile) and the collection's apply lock (one flush
        and hard links; for a sharded collection every shard's, with the router's writes
        paused: format version 2), then tarred with no lock held. Returns its
        SnapshotDescription."""
        staging = self.pending_dir / f"snapshot-{uuid.uuid4().hex}"
        try:
            async with self.meta_lock:
                collection = self.get(name)
                await snapshots.cut(collection, staging)
            return await trio.to_thread.run_sync(
                snapshots.archive, staging, self.snapshots_root / collection.name, collection.name
            )
        except OSError as exc:  # a full disk, an I/O error: Qdrant's 500 names the OS error so
            raise ServiceError(f"Service internal error: File IO error: {exc.strerror or exc} (os error {exc.errno})") from exc
        finally:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(shutil.rmtree, staging, True)

    async def recover_collection(self, name: str, snapshot_file: Path) -> None:
        """Replace (or create) the collection `name` with the snapshot in `snapshot_file`.

        The snapshot is unpacked into `pending/recover-<random>`, checked and opened once
        there; only then is the old collection closed and the new directory swapped in
        with one atomic rename exchange (`renameat2(RENAME_EXCHANGE)`; two renames where the
        file system lacks it), so a failed recovery changes nothing and a crash leaves the
        old collection or the new one (whatever is in `pending/` is removed at start).
        Aliases of the collection are kept. Either layout replaces either (a sharded
        collection's snapshot is format version 2), as long as Qdrant's compatibility
        checks pass (`snapshots.check_compatible`: vectors, shard number, sharding method);
        the snapshot's config, shards and shard keys win."""
        validate_name(name)
        if name not in self.collections and name in self.aliases:
            name = self.aliases[name]  # as Qdrant: an alias recovers the collection it names
        staging = self.pending_dir / f"recover-{uuid.uuid4().hex}"
        try:
            config = await trio.to_thread.run_sync(snapshots.unpack, snapshot_file, staging)
            existing = self.collections.get(name)
            if existing is not None:
                snapshots.check_compatible(existing.config, config)
            await trio.to_thread.run_sync(snapshots.validate_loadable, staging)
            async with self.meta_lock:
                existing = self.collections.get(name)  # it may have been replaced meanwhile
                if existing is not None:
                    snapshots.check_compatible(existing.config, config)
                await self.swap_in(name, staging)
        finally:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(shutil.rmtree, staging, True)
        log.info("collection %s recovered from snapshot %s", name, snapshot_file.name)

    async def swap_in(self, name: str, staging: Path) -> None:
        """Called with the meta lock held: make `staging` the collection `name`.

        Between closing the old collection and serving the new one (a fraction of a
        second) the name is in `swapping`: requests that arrive meanwhile wait for the
        swap (`wait_for_swap`, from the app's before-request hook) instead of finding no
        collection, as Qdrant keeps a collection visible while it is recovered."""
        final = self.collections_dir / name
        done = self.swapping[name] = trio.Event()
        try:
            old = self.collections.pop(name, None)
            if old is not None:
                await old.close()
            try:
                collection = await trio.to_thread.run_sync(self._exchange_and_load, staging, final)
            except BaseException:
                if old is not None:
                    await self._serve_again(final)
                raise
            if name in self.failed:
                del self.failed[name]
                BOARD.resolve_prefix(collection_issue_id(LOAD_FAILED, name))
            await self._nursery.start(collection.run)
            self.collections[name] = collection
        finally:
            del self.swapping[name]
            done.set()

    async def wait_for_swap(self, name: str) -> None:
        """Wait (up to SWAP_WAIT_SECONDS) while the collection `name` (or aliased by
        `name`) is being swapped for a recovered one; return at once otherwise."""
        target = self.aliases.get(name, name)
        done = self.swapping.get(name, self.swapping.get(target))
        if done is not None:
            with trio.move_on_after(SWAP_WAIT_SECONDS):
                await done.wait()

    def _exchange_and_load(self, staging: Path, final: Path) -> AnyCollection:
        """Swap `staging` in at `final`; afterwards `staging` holds the old directory (if
        any), which the caller removes. Loads the new collection; if that fails the old
        directory is swapped back."""
        exchanged = False
        if final.exists():
            exchange_directories(staging, final)
            exchanged = True
        else:
            staging.rename(final)
        fsync_dir(self.collections_dir)
        fsync_dir(self.pending_dir)
        try:
            return open_collection(final, self.get)
        except BaseException:
            if exchanged:
                exchange_directories(staging, final)
            else:
                final.rename(staging)
            fsync_dir(self.collections_dir)
            fsync_dir(self.pending_dir)
            raise


# -- start-up helpers -------------------------------------------------------------------------


class _ProgressReports:
    """While one collection opens, log "still opening after N s" every `PROGRESS_SECONDS`
    from a thread of its own (the open itself blocks the loading thread)."""

    def __init__(self, name: str, began: float):
        self.name = name
        self.began = began
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._report, name=f"pydrant-opening-{name}", daemon=True)

    def __enter__(self) -> _ProgressReports:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()

    def _report(self) -> None:
        while not self._stop.wait(PROGRESS_SECONDS):
            log.info("collection %s: still opening after %.0f s", self.name, time.monotonic() - self.began)


def _stored_layout(path: Path) -> str:
    """What opening the collection at `path` will find, for the log: "4 segments", "6
    segments in 3 shards". Read from its manifests; a manifest that cannot be read is
    named here and left to the open to report."""
    try:
        if is_sharded(path):
            shard_dirs = sorted(p for p in (path / SHARDS_DIR).iterdir() if p.is_dir())
            segments = sum(len(read_json(shard / MANIFEST_FILE)["segments"]) for shard in shard_dirs)
            return f"{_count(segments, 'segment')} in {_count(len(shard_dirs), 'shard')}"
        return _count(len(read_json(path / MANIFEST_FILE)["segments"]), "segment")
    except Exception as exc:  # a log line must not fail the load
        return f"(its manifest is unreadable: {type(exc).__name__}: {exc})"


def _count(n: int, noun: str) -> str:
    """`1 segment`, `2 segments`, `12,000 points`."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _replayed_at_load(collection: AnyCollection) -> int:
    """WAL operations the open replayed: a sharded collection's every shard's."""
    shards = collection.shards.values() if isinstance(collection, ShardedCollection) else [collection]
    return sum(shard.replayed_at_load for shard in shards)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def exchange_directories(a: Path, b: Path) -> None:
    """Swap two directories atomically (Linux `renameat2(RENAME_EXCHANGE)`); where that is
    not available, two renames through a third name (a crash between them leaves the old
    directory in `pending/`, removed at start, and the new one not yet in place)."""
    import ctypes
    import errno

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        renameat2 = None
    if renameat2 is not None:
        if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
            return
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
            raise OSError(err, os.strerror(err), str(a), None, str(b))
    middle = a.with_name(a.name + "-swap")
    b.rename(middle)
    a.rename(b)
    middle.rename(a)
