"""The payload indexes of an immutable segment as files (issue 17, step P4i;
docs/design/on-disk-segments.md §2.5, §2.6).

An immutable segment keeps one pack file per indexed field and one small JSON table that
names them:

    <segment dir>/payload_index/<hex(key)>.<schema hash>.pack    arrays of one field's index
    <segment dir>/payload_indexes.json                          {"format": 1, "indexes": {key: {
        "schema": ..., "pack": "<file name>", "table": PackTable.to_json(), "meta": reader meta}}}

The arrays and the reader meta are those of `disk_index_postings` (keyword, uuid, bool,
text) and `disk_index_runs` (integer, float, datetime, geo); this module only chooses the
builder per schema, writes and names the packs, and opens them again:

    build:  DiskPayloadIndexBuilder(segment_dir, fields).add(slot, payload) ... .finish(n)
    open:   open_disk_indexes(segment_dir, n) -> DiskPayloadIndexes
    change: DiskPayloadIndexes.update(fields, payloads)     (an index declared or dropped later)

`DiskPayloadIndexes` has the reader surface of `field_index.PayloadIndexes` (`gen`,
`by_key`, `by_path`, `for_path`, `info`, `differences`, truthiness), so `filter_plan` and a
segment's read paths use either kind alike; `gen` is all zeros and the disk readers ignore it
(an immutable segment never rewrites a payload in place).

Contracts and the decisions behind them:

- **The JSON table is the commit point.** A pack is written (fsynced) before any table
  names it, the table is replaced atomically (temporary file, fsync, rename, directory
  fsync: `fsutil.write_json_atomic`), and a pack is unlinked only after the table that
  named it has been replaced. A crash at any moment leaves the old table or the new one,
  each naming only complete packs. Packs no table names (a crash between writing a pack and
  replacing the table, or between the replacement and the unlink) are ignored by the open
  and removed by the next `update`, which must be able to reuse their names.
- **Opening is O(files).** Parse the table, check every entry (format, names, tables,
  meta), map each pack once (`packfile.open_pack`: one fstat against the table, one mmap,
  one file descriptor), construct each reader (O(1) shape checks). No array is read. A bad
  table, a missing or resized pack or a reader refusing its arrays is a `CorruptPack`
  naming the file (the table for JSON problems, the pack for everything about a pack).
  Checksums and structure are checked later, in the background: `verification_steps`.
- **Unlinking a mapped pack is safe.** An `update` that drops or replaces an index unlinks
  its pack at once, not after a grace period (the design's first sketch): on POSIX a
  mapping keeps its inode alive, so a query still holding the old reader keeps reading the
  old arrays; a checkpoint that hard-linked the pack keeps its own link.
- **Swaps are one assignment.** `update` builds the new readers first and then replaces one
  immutable snapshot (`_Snapshot`) of table, readers by key and by path, so a reader on
  another thread sees either the old set or the new one, never a mix. `update` itself is
  not reentrant: one writer at a time (the collection's update worker), as for the
  in-memory indexes.
- **`on_disk` is honoured as residency, not as a different format.** Every index is the
  same mapped pack; `on_disk: true` in its schema means "mapped and left to the page cache"
  (pages fault in on use, the kernel may evict them), otherwise the index is meant to be
  resident: `resident_regions()` lists its arrays for the node's background worker (P7) to
  populate (`madvise(MADV_WILLNEED)` and a touch) after the collection is ready. Nothing is
  read at open either way, so `on_disk` changes no open time. `info()` reports as
  `ram_bytes` the bytes meant to be resident (0 for an `on_disk` index), the mapped size
  otherwise.
- **File names**: `hex(key)` (UTF-8, surrogatepass) keeps any key a valid, distinct name;
  keys longer than 48 bytes are cut to 48 bytes of hex plus 16 hex digits of their sha256,
  so a name stays far below the 255-byte limit. The schema hash is 12 hex digits of the
  sha256 of the schema's canonical JSON (sorted keys, no spaces): a changed schema gets a
  new file, so the old pack stays intact until the new table is committed. The table, not
  the name, is the authority (a name is never parsed back).

Building is CPU work in Python per payload (~1-2 us per field and point, the text analyzer
more) and writing is disk work: call the builder, `update` and `verification_steps` from a
worker thread, never the event loop.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from pydrant.errors import BadInput
from pydrant.fsutil import fsync_dir, write_json_atomic
from pydrant.segments.disk_index_postings import POSTINGS_TYPES, PostingsIndexBuilder, open_postings_index
from pydrant.segments.disk_index_runs import RUN_TYPES, RunIndexBuilder, open_run_index
from pydrant.segments.field_index import schema_type
from pydrant.segments.packfile import CorruptPack, PackTable, PackWriter, open_pack, verify_pack

INDEX_DIR = "payload_index"  # <segment dir>/payload_index/<hex(key)>.<schema hash>.pack
INDEX_TABLE = "payload_indexes.json"  # <segment dir>/payload_indexes.json, atomically replaced
FORMAT = 1  # of payload_indexes.json; a newer number is refused at open

PACK_SUFFIX = ".pack"
_KEY_NAME_BYTES = 48  # key bytes spelled out in a file name before it is cut and hashed
_ENTRY_FIELDS = frozenset({"schema", "pack", "table", "meta"})
_VALUE_TYPES = ("keyword", "uuid", "bool", "integer")  # the types with per-value postings

Builder = PostingsIndexBuilder | RunIndexBuilder


# ---------------------------------------------------------------------------------------
# Names
# ---------------------------------------------------------------------------------------


def schema_hash(schema: object) -> str:
    """12 hex digits identifying a field schema: sha256 of its canonical JSON (sorted keys,
    no whitespace), so equal schemas hash alike whatever their key order."""
    canonical = json.dumps(schema, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()[:12]


def pack_name(key: str, schema: object) -> str:
    """The file name (inside INDEX_DIR) of `key`'s index built with `schema`."""
    raw = key.encode("utf-8", "surrogatepass")
    spelled = raw.hex() if len(raw) <= _KEY_NAME_BYTES else f"{raw[:_KEY_NAME_BYTES].hex()}-{hashlib.sha256(raw).hexdigest()[:16]}"
    return f"{spelled}.{schema_hash(schema)}{PACK_SUFFIX}"


def is_on_disk(schema: object) -> bool:
    """Whether an index's schema asks for `on_disk` (mapped, not kept resident)."""
    return isinstance(schema, dict) and schema.get("on_disk") is True


# ---------------------------------------------------------------------------------------
# Building
# ---------------------------------------------------------------------------------------


def _builder_for(key: str, schema: object) -> Builder:
    """The array builder of one field, chosen by the schema's type as `make_index` reads it
    (string form "keyword" or dict form {"type": "keyword", ...}). BadInput for an unknown
    type or bad text options, before any payload is read."""
    data_type = schema_type(schema)
    if data_type in POSTINGS_TYPES:
        return PostingsIndexBuilder(key, schema)
    if data_type in RUN_TYPES:
        return RunIndexBuilder(key, schema)
    raise BadInput(f"Wrong input: unknown payload index type {data_type!r} for field `{key}`")


@dataclass(frozen=True)
class _Entry:
    """One index as the table records it: its schema, pack file name (inside INDEX_DIR),
    pack table and reader meta."""

    schema: object
    pack: str
    table: PackTable
    meta: dict

    def to_json(self) -> dict:
        return {"schema": self.schema, "pack": self.pack, "table": self.table.to_json(), "meta": self.meta}


class _FieldBuilders:
    """One builder per field, fed from one pass over the payloads, written one pack each.

    What `DiskPayloadIndexBuilder` and `DiskPayloadIndexes.update` share. Packs written so
    far are listed in `written` (so a failed build can remove them); a builder is dropped as
    soon as its pack is written, so peak memory is the accumulated entries, not twice them.
    """

    def __init__(self, fields: Mapping[str, object]):
        self._builders: dict[str, Builder] = {key: _builder_for(key, schema) for key, schema in fields.items()}
        self._schemas = dict(fields)
        self.written: list[Path] = []

    def add(self, slot: int, payload: dict) -> None:
        for builder in self._builders.values():
            builder.add(slot, payload)

    def write(self, index_dir: Path, n: int, taken: Iterable[str] = ()) -> dict[str, _Entry]:
        """Write each field's pack into `index_dir` (fsynced, then the directory) and
        return their entries. `taken`: names the caller's current table uses, never reused
        (only a hash collision could ask for one)."""
        index_dir.mkdir(exist_ok=True)
        in_use = set(taken)
        entries: dict[str, _Entry] = {}
        for key in list(self._builders):
            builder = self._builders.pop(key)
            arrays, meta = builder.finish(n)
            name = _free_name(pack_name(key, self._schemas[key]), in_use)
            in_use.add(name)
            path = index_dir / name
            with PackWriter(path) as writer:
                self.written.append(path)
                for array_name, array in arrays.items():
                    writer.add(array_name, array)
                table = writer.finish()
            entries[key] = _Entry(self._schemas[key], name, table, _json_safe(meta))
        fsync_dir(index_dir)
        return entries

    def remove_written(self) -> None:
        for path in self.written:
            _unlink_quietly(path)
        self.written = []


def _free_name(name: str, in_use: set[str]) -> str:
    """`name`, or `name` with a counter before the suffix if a current entry holds it."""
    if name not in in_use:
        return name
    stem = name[: -len(PACK_SUFFIX)]
    counter = 1
    while f"{stem}.{counter}{PACK_SUFFIX}" in in_use:
        counter += 1
    return f"{stem}.{counter}{PACK_SUFFIX}"


def _json_safe(meta: dict) -> dict:
    """The reader meta exactly as it will read back from the table (the readers compare it
    with the arrays at open; build it from the same JSON they will see)."""
    return orjson.loads(orjson.dumps(meta))


class DiskPayloadIndexBuilder:
    """Builds the payload indexes of a new immutable segment alongside its other files.

    `add(slot, payload)` each payload once, in any slot order; `finish(n)` writes one pack per
    field and then `payload_indexes.json` (both fsynced, as is `payload_index/`); the caller
    fsyncs the segment directory (once, with its other files) before its `segment.json`.
    `abort()` removes whatever was written (also after a failed `finish`). With no fields the
    table is still written (empty), so every immutable segment has one.
    """

    def __init__(self, segment_dir: Path, fields: Mapping[str, object]):
        self.segment_dir = Path(segment_dir)
        self._fields = _FieldBuilders(fields)
        self._table_written = False

    def add(self, slot: int, payload: dict) -> None:
        self._fields.add(slot, payload)

    def finish(self, n: int) -> None:
        try:
            entries = self._fields.write(self.segment_dir / INDEX_DIR, n)
            write_json_atomic(self.segment_dir / INDEX_TABLE, _table_json(entries))
            self._table_written = True
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Remove the packs, the table and `payload_index/` if this builder left it empty."""
        self._fields.remove_written()
        if self._table_written:
            _unlink_quietly(self.segment_dir / INDEX_TABLE)
            self._table_written = False
        try:
            (self.segment_dir / INDEX_DIR).rmdir()
        except OSError:
            pass  # absent, or holding files this builder did not write


def _table_json(entries: Mapping[str, _Entry]) -> dict:
    return {"format": FORMAT, "indexes": {key: entry.to_json() for key, entry in entries.items()}}


# ---------------------------------------------------------------------------------------
# Opening
# ---------------------------------------------------------------------------------------


def open_disk_indexes(segment_dir: Path, n: int) -> DiskPayloadIndexes:
    """The payload indexes of the segment in `segment_dir` with `n` slots: parse
    `payload_indexes.json` (absent: no indexes), check each entry, map each pack, construct
    each reader. O(files), no per-point work. CorruptPack naming the table or the pack
    for any inconsistency (bad JSON, unknown format, wrong sizes, a reader's refusal)."""
    segment_dir = Path(segment_dir)
    table_path = segment_dir / INDEX_TABLE
    try:
        raw = table_path.read_bytes()
    except FileNotFoundError:
        return DiskPayloadIndexes(segment_dir, n, {}, {})
    except OSError as error:
        raise CorruptPack(table_path, f"it cannot be read ({error.strerror})") from None
    entries = _parse_table(raw, table_path)
    readers = {key: _open_entry(segment_dir, key, entry, n) for key, entry in entries.items()}
    return DiskPayloadIndexes(segment_dir, n, entries, readers)


def _parse_table(raw: bytes, source: Path) -> dict[str, _Entry]:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise CorruptPack(source, f"it is not valid JSON ({error})") from None
    if not isinstance(value, dict) or set(value) != {"format", "indexes"}:
        raise CorruptPack(source, "it must be an object with exactly 'format' and 'indexes'")
    version = value["format"]
    if type(version) is not int or version < 1:
        raise CorruptPack(source, f"format {version!r} is not a format number")
    if version > FORMAT:
        raise CorruptPack(source, f"format {version} is newer than this pydrant reads ({FORMAT})")
    if not isinstance(value["indexes"], dict):
        raise CorruptPack(source, "'indexes' must be an object")
    return {key: _parse_entry(key, entry, source) for key, entry in value["indexes"].items()}


def _parse_entry(key: str, value: Any, source: Path) -> _Entry:
    where = f"index {key!r}"
    if not isinstance(value, dict) or set(value) != _ENTRY_FIELDS:
        raise CorruptPack(source, f"{where}: an entry must have exactly {sorted(_ENTRY_FIELDS)}")
    name = value["pack"]
    # A plain file name inside INDEX_DIR: a table must not point a reader anywhere else.
    if not isinstance(name, str) or not name.endswith(PACK_SUFFIX) or os.sep in name or name.startswith("."):
        raise CorruptPack(source, f"{where}: pack name {name!r} is not a pack file name")
    if not isinstance(value["meta"], dict):
        raise CorruptPack(source, f"{where}: meta must be an object")
    if value["meta"].get("key") != key or value["meta"].get("schema") != value["schema"]:
        raise CorruptPack(source, f"{where}: its meta is for another key or schema")
    pack_path = source.parent / INDEX_DIR / name
    table = PackTable.from_json(value["table"], pack_path)
    return _Entry(value["schema"], name, table, value["meta"])


def _open_entry(segment_dir: Path, key: str, entry: _Entry, n: int) -> object:
    pack_path = segment_dir / INDEX_DIR / entry.pack
    arrays = open_pack(pack_path, entry.table)
    meta = entry.meta
    slots = meta.get("points", meta.get("slots"))  # postings say "points", runs "slots"
    if slots != n:
        raise CorruptPack(pack_path, f"index {key!r} covers {slots!r} slots, the segment has {n}")
    data_type = schema_type(entry.schema)
    try:
        if data_type in POSTINGS_TYPES:
            return open_postings_index(meta, arrays)
        if data_type in RUN_TYPES:
            return open_run_index(meta, arrays)
    except (ValueError, KeyError, TypeError) as error:
        raise CorruptPack(pack_path, f"index {key!r}: {error}") from None
    raise CorruptPack(pack_path, f"index {key!r}: unknown index type {data_type!r}")


# ---------------------------------------------------------------------------------------
# A segment's set of indexes
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Snapshot:
    """Everything a query reads, replaced as one object by `update`."""

    entries: dict[str, _Entry]
    by_key: dict[str, Any]
    by_path: dict[tuple, Any]


class DiskPayloadIndexes:
    """The payload indexes of one immutable segment, mapped from their packs.

    The reader surface is `field_index.PayloadIndexes`' (`gen`, `by_key`, `by_path`,
    `for_path`, `info`, `differences`, truthiness); readers are the `disk_index_postings` /
    `disk_index_runs` classes. Reading methods may be called from any thread; `update` by
    one writer at a time.
    """

    def __init__(self, segment_dir: Path, n: int, entries: dict[str, _Entry], readers: dict[str, Any]):
        self.segment_dir = Path(segment_dir)
        self.n = n
        # filter_plan hands `gen` to every answer(); the disk readers ignore it.
        self.gen = np.zeros(n, dtype=np.uint32)
        self._snapshot = _snapshot(entries, readers)

    # -- the PayloadIndexes reader surface

    @property
    def by_key(self) -> dict[str, Any]:
        return self._snapshot.by_key

    @property
    def by_path(self) -> dict[tuple, Any]:
        return self._snapshot.by_path

    def __bool__(self) -> bool:
        return bool(self._snapshot.by_key)

    def for_path(self, path: tuple):
        return self._snapshot.by_path.get(path)

    def info(self, live: np.ndarray) -> dict:
        """key -> {"points": live points the index holds, "ram_bytes": bytes meant to stay
        resident (the mapped arrays; 0 for an `on_disk` index)}."""
        snapshot = self._snapshot
        return {
            key: {
                "points": index.points(self.gen, live),
                "ram_bytes": 0 if is_on_disk(snapshot.entries[key].schema) else index.nbytes(),
            }
            for key, index in snapshot.by_key.items()
        }

    def differences(self, fields: dict) -> tuple[dict, list[str]]:
        """(indexes to build: key -> schema, keys to drop) to reach `fields`."""
        current = self._snapshot.entries
        build = {key: schema for key, schema in fields.items() if key not in current or current[key].schema != schema}
        drop = [key for key in current if key not in fields]
        return build, drop

    # -- for the segment

    def value_postings(self, key: str, live: np.ndarray) -> Iterator[tuple[object, np.ndarray]]:
        """(value, live slots holding it, ascending) per value of `key`'s keyword, uuid,
        bool or integer index, in value order: what tenant graphs (`is_tenant`) are built
        from. KeyError if `key` has no index, ValueError if its type has no values
        (float, datetime, geo, text)."""
        index = self._snapshot.by_key[key]
        if index.data_type not in _VALUE_TYPES:
            raise ValueError(f"payload index {key!r} is a {index.data_type} index: it has no per-value postings")
        if index.data_type == "integer":
            return _integer_postings(index, live)
        return index.value_postings(live)

    def resident_regions(self) -> list[np.ndarray]:
        """The non-empty arrays of every index not declared `on_disk`: what the background
        worker populates after open (each a read-only view of a pack's mapping, which
        `mapping_of` finds for `madvise`)."""
        snapshot = self._snapshot
        regions: list[np.ndarray] = []
        for key, index in snapshot.by_key.items():
            if not is_on_disk(snapshot.entries[key].schema):
                regions.extend(array for array in _reader_arrays(index).values() if array.nbytes)
        return regions

    def files(self) -> list[Path]:
        """Every file a checkpoint must hard-link: the table and the packs it names (none
        when the segment has no table)."""
        table_path = self.segment_dir / INDEX_TABLE
        if not table_path.exists():
            return []
        index_dir = self.segment_dir / INDEX_DIR
        return [table_path, *(index_dir / entry.pack for entry in self._snapshot.entries.values())]

    def verification_steps(self, pace: Callable[[int], None] | None = None) -> Iterator[int]:
        """Verify every pack: the crc32c of each array region (`verify_pack`, read with
        `pread`, residency untouched), then each reader's structural `check_steps`. Yields
        the work done so far (bytes checksummed, then plus entries checked) after each array
        and each check chunk, for a background verifier to throttle or stop; `pace(bytes)`
        is passed on to `verify_pack` for a finer throttle. Raises CorruptPack naming the
        pack at the first problem."""
        snapshot = self._snapshot
        index_dir = self.segment_dir / INDEX_DIR
        done = 0
        for entry in snapshot.entries.values():
            path = index_dir / entry.pack
            for name, region in entry.table.arrays.items():
                problems = verify_pack(path, PackTable(entry.table.size, {name: region}), pace)
                if problems:
                    raise CorruptPack(path, "; ".join(problems))
                done += region.nbytes
                yield done
        for key, index in snapshot.by_key.items():
            checked = 0
            try:
                for checked in index.check_steps():
                    yield done + checked
            except ValueError as error:
                raise CorruptPack(index_dir / snapshot.entries[key].pack, str(error)) from None
            done += checked

    # -- changes after the build

    def update(self, fields: Mapping[str, object], payloads: Callable[[], Iterable[tuple[int, dict]]]) -> bool:
        """Make the indexes those of `fields` (key -> schema): build the new and changed
        ones in ONE pass over `payloads()` (called only if something is to be built) into
        new packs, drop the others, commit by replacing the table atomically, then unlink
        the packs it no longer names. Returns whether anything changed.

        Packs no table names (left by a crash) are removed first. A failure before the
        commit (a bad schema: BadInput before any payload is read; disk full while writing a
        pack) removes the new packs and leaves the indexes as they were."""
        index_dir = self.segment_dir / INDEX_DIR
        current = self._snapshot
        self._remove_unnamed_packs(index_dir, current.entries)
        build, drop = self.differences(dict(fields))
        if not build and not drop:
            return False
        builders = _FieldBuilders(build)
        try:
            if build:
                for slot, payload in payloads():
                    builders.add(slot, payload)
            built = builders.write(index_dir, self.n, (entry.pack for entry in current.entries.values()))
            readers = {key: _open_entry(self.segment_dir, key, entry, self.n) for key, entry in built.items()}
        except BaseException:
            builders.remove_written()
            raise
        entries = {key: entry for key, entry in current.entries.items() if key not in drop and key not in built}
        entries.update(built)
        # If this raises, the rename may or may not have happened (a failed directory fsync
        # comes after it): the new packs stay, named or left for the next update to remove.
        write_json_atomic(self.segment_dir / INDEX_TABLE, _table_json(entries))
        kept = {key: index for key, index in current.by_key.items() if key in entries and key not in built}
        self._snapshot = _snapshot(entries, {**kept, **readers})
        for key, entry in current.entries.items():
            if key in drop or key in built:
                _unlink_quietly(index_dir / entry.pack)
        return True

    def _remove_unnamed_packs(self, index_dir: Path, entries: Mapping[str, _Entry]) -> None:
        named = {entry.pack for entry in entries.values()}
        try:
            names = os.listdir(index_dir)
        except FileNotFoundError:
            return
        for name in names:
            if name.endswith(PACK_SUFFIX) and name not in named:
                _unlink_quietly(index_dir / name)


def mapping_of(array: np.ndarray) -> mmap.mmap | None:
    """The `mmap` a pack's array views (through numpy views and the memoryview that
    `np.frombuffer` keeps), or None for an array of no mapping (an empty pack's)."""
    base: object = array
    while base is not None:
        if isinstance(base, mmap.mmap):
            return base
        base = base.obj if isinstance(base, memoryview) else getattr(base, "base", None)
    return None


def _snapshot(entries: dict[str, _Entry], readers: dict[str, Any]) -> _Snapshot:
    by_key = {key: readers[key] for key in entries}
    return _Snapshot(entries, by_key, {index.path: index for index in by_key.values()})


def _reader_arrays(index: Any) -> dict[str, np.ndarray]:
    """The arrays a reader serves from (postings readers: `arrays()`, run readers: `arrays`)."""
    arrays = index.arrays
    return arrays() if callable(arrays) else arrays


def _integer_postings(index: Any, live: np.ndarray) -> Iterator[tuple[object, np.ndarray]]:
    """(int value, live slots) per distinct value of an integer run (sorted by value, then
    slot, so each group's slots ascend)."""
    values, slots = index.values, index.slots
    if not len(values):
        return
    starts = np.concatenate([[0], np.flatnonzero(values[1:] != values[:-1]) + 1, [len(values)]])
    for a, b in zip(starts[:-1].tolist(), starts[1:].tolist()):
        group = slots[a:b]
        yield int(values[a]), group[live[group]]


def _unlink_quietly(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass

