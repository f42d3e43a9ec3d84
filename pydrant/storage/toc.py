"""The table of content: every collection and alias of this node.

On disk under `storage_path`:
  collections/<name>/        one directory per collection (see collection/collection.py)
  aliases.json               {"alias": "collection", ...}, replaced atomically
Creating a collection builds it in `collections/.tmp-<name>-<random>` and renames it into
place; deleting renames it to `.deleted-...` before removing it. Leftovers of either from a
crash are removed at start, so a collection exists wholly or not at all.
"""

from __future__ import annotations

import logging
import shutil
import uuid
from pathlib import Path

import trio

from pydrant.collection.collection import Collection
from pydrant.collection.config import CollectionDefaults, apply_update, build_config
from pydrant.errors import AlreadyExists, BadInput, NotFound
from pydrant.storage.files import fsync_dir, read_json, write_json_atomic
from pydrant.storage.names import validate_name

log = logging.getLogger("pydrant.storage")

COLLECTIONS_DIR = "collections"
ALIASES_FILE = "aliases.json"
TMP_PREFIX = ".tmp-"
DELETED_PREFIX = ".deleted-"


def defaults_from_settings(settings) -> CollectionDefaults:
    storage = settings.storage
    hnsw = storage.hnsw_index
    opt = storage.optimizers
    return CollectionDefaults(
        hnsw_config={
            "m": hnsw.m,
            "ef_construct": hnsw.ef_construct,
            "full_scan_threshold": hnsw.full_scan_threshold_kb,
            "max_indexing_threads": hnsw.max_indexing_threads,
            "on_disk": bool(hnsw.on_disk),
            **({"payload_m": hnsw.payload_m} if hnsw.payload_m is not None else {}),
        },
        optimizer_config={
            "deleted_threshold": opt.deleted_threshold,
            "vacuum_min_vector_number": opt.vacuum_min_vector_number,
            "default_segment_number": opt.default_segment_number,
            "max_segment_size": opt.max_segment_size_kb,
            "memmap_threshold": opt.memmap_threshold_kb,
            "indexing_threshold": opt.indexing_threshold_kb,
            "flush_interval_sec": opt.flush_interval_sec,
            "max_optimization_threads": opt.max_optimization_threads,
        },
        wal_config={
            "wal_capacity_mb": storage.wal.wal_capacity_mb,
            "wal_segments_ahead": storage.wal.wal_segments_ahead,
            "wal_retain_closed": 1,
        },
        on_disk_payload=storage.on_disk_payload,
        quantization_config=storage.collection.quantization,
    )


class TableOfContent:
    """Owns the collections and aliases; every long-lived collection task runs in its nursery."""

    def __init__(self, storage_path: Path, defaults: CollectionDefaults):
        self.root = Path(storage_path)
        self.defaults = defaults
        self.collections: dict[str, Collection] = {}
        self.aliases: dict[str, str] = {}
        self.ready = False
        # Serialises changes to the set of collections and aliases (create, delete, alias
        # actions), so that alias actions see no collection change between them.
        self._meta_lock = trio.Lock()
        self._nursery: trio.Nursery | None = None

    @classmethod
    def from_settings(cls, settings) -> "TableOfContent":
        return cls(Path(settings.storage.storage_path), defaults_from_settings(settings))

    @property
    def collections_dir(self) -> Path:
        return self.root / COLLECTIONS_DIR

    # -- lifecycle -----------------------------------------------------------------------

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Load every collection (recovering each from its WAL), then report started.

        Requests are accepted only after `started`, so no request sees a half-loaded node.
        Runs until cancelled; on cancellation every collection is flushed and closed.
        """
        loaded = await trio.to_thread.run_sync(self._load_from_disk)
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                for collection in loaded:
                    await nursery.start(collection.run)
                    self.collections[collection.name] = collection
                self.ready = True
                log.info("storage ready at %s: %d collections", self.root, len(self.collections))
                task_status.started()
                await trio.sleep_forever()
        finally:
            self.ready = False
            with trio.CancelScope(shield=True):
                for collection in list(self.collections.values()):
                    await collection.close()

    def _load_from_disk(self) -> list[Collection]:
        self.collections_dir.mkdir(parents=True, exist_ok=True)
        loaded = []
        for entry in sorted(self.collections_dir.iterdir()):
            if entry.name.startswith((TMP_PREFIX, DELETED_PREFIX)):
                log.warning("removing leftover %s from an interrupted create/delete", entry)
                shutil.rmtree(entry, ignore_errors=True)
            elif entry.is_dir():
                loaded.append(Collection.load(entry))
        aliases_path = self.root / ALIASES_FILE
        if aliases_path.exists():
            names = {c.name for c in loaded}
            self.aliases = {a: c for a, c in read_json(aliases_path).items() if c in names}
        return loaded

    # -- lookups -------------------------------------------------------------------------

    def resolve_name(self, name: str) -> str:
        if name in self.collections:
            return name
        target = self.aliases.get(name)
        if target is not None and target in self.collections:
            return target
        raise NotFound(f"Not found: Collection `{name}` doesn't exist!")

    def get(self, name: str) -> Collection:
        """The collection named `name` or by an alias `name`; 404 otherwise."""
        return self.collections[self.resolve_name(name)]

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
        validate_name(name)
        async with self._meta_lock:
            if name in self.collections:
                raise AlreadyExists(f"Wrong input: Collection `{name}` already exists!")
            if name in self.aliases:
                raise AlreadyExists(f"Wrong input: Alias with name `{name}` already exists!")
            config = build_config(request, self.defaults)
            collection = await trio.to_thread.run_sync(self._create_on_disk, name, config)
            await self._nursery.start(collection.run)
            self.collections[name] = collection
        log.info("created collection %s", name)

    def _create_on_disk(self, name: str, config: dict) -> Collection:
        tmp = self.collections_dir / f"{TMP_PREFIX}{name}-{uuid.uuid4().hex[:8]}"
        Collection.initialise(tmp, name, config)
        final = self.collections_dir / name
        tmp.rename(final)
        fsync_dir(self.collections_dir)
        return Collection.load(final)

    async def delete_collection(self, name: str) -> bool:
        async with self._meta_lock:
            collection = self.collections.pop(name, None)
            if collection is None:
                return False
            dropped_aliases = [a for a, c in self.aliases.items() if c == name]
            for alias in dropped_aliases:
                del self.aliases[alias]
            if dropped_aliases:
                await trio.to_thread.run_sync(self._save_aliases)
            await collection.close()
            await trio.to_thread.run_sync(self._remove_on_disk, collection.path)
        log.info("deleted collection %s", name)
        return True

    def _remove_on_disk(self, path: Path) -> None:
        doomed = self.collections_dir / f"{DELETED_PREFIX}{path.name}-{uuid.uuid4().hex[:8]}"
        path.rename(doomed)
        fsync_dir(self.collections_dir)
        shutil.rmtree(doomed, ignore_errors=True)

    async def update_collection(self, name: str, update: dict) -> None:
        collection = self.get(name)
        new_config = apply_update(collection.config, update)
        await collection.set_config(new_config)

    async def change_aliases(self, actions: list[dict]) -> None:
        """Apply alias actions as one change: all of them or, on any error, none."""
        async with self._meta_lock:
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
            if spec["alias_name"] in self.collections:
                raise BadInput(f"Wrong input: Collection `{spec['alias_name']}` already exists!")
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
                raise BadInput(f"Wrong input: Collection `{new}` already exists!")
            aliases[new] = aliases.pop(old)
        else:
            raise BadInput(f"Wrong input: unknown alias action {sorted(action)}")

    def _save_aliases(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.root / ALIASES_FILE, self.aliases)
