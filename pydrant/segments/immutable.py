"""The immutable segment: a directory of pack files, mapped at open, never rewritten.

Layout (docs/design/on-disk-segments.md §2; "As built, P4" there lists where this differs):

  segment.json            written once, last, by `immutable_build.ImmutableBuilder`: format,
                          points, schema, build settings, every pack's table (`files`),
                          quantization / sparse-index metas, tenant subgraph lists
  state.json              version, persisted_version, deleted_file, deleted_count
                          (rewritten atomically by `flush`)
  deleted.<v>[.<k>].bool  n bytes, the deletion flags as of persisted version v
  ids.pack                the id map (`idmap.py`)
  payload.pack            offsets <u8 (n+1), blob u1 (CBOR per slot, empty = {})
  vectors/<hex>.pack      dense:  data (rows, dim) storage dtype, slots <i4 (rows)
                          multi:  data (sub_rows, dim), offsets <u8 (n+1), sub_slots <i4,
                                  present |b1 (n)
                          sparse: indices <u4, values <f4, offsets <u8 (n+1), present |b1
  hnsw/<hex>.pack         the graph arrays (`HnswIndex.arrays()`)
  hnsw/<hex>.vectors.pack vectors_f32: the graph's float32 rows, only when the storage
                          dtype is not float32 (float16, uint8)
  quantized/<hex>.pack    the codes (`QuantizedVectors.arrays`; meta in segment.json)
  tenants/<hex>.pack      per tenant i: i.nodes, i.vectors (gathered float32), i.<graph>
  sparse_index/<hex>.pack `SparseInvertedIndex.arrays()` (meta in segment.json)
  payload_index/, payload_indexes.json   `disk_payload_indexes.py`

`<hex>` is the hex of the vector name's UTF-8 bytes, `_` for the unnamed vector.

What changes after the build is only deletions: `delete_points` / `discard_points` set a
flag in RAM (readers and the kernels see it at once: the flags array is the kernels'
`deleted` mask) and queue `(op_num, slots)`; `flush(bound)` persists the flags of ops up
to `bound` by writing a new flags file, then `state.json`, then unlinking the old file.
Every other write raises `ServiceError`: the collection moves such points out
(copy-on-write, §2.4).

Opening is O(files): two JSON files, one `open_pack` (fstat + mmap) per pack, the flags
read with `np.fromfile`. Structure checks (graph, sparse postings, id map, payload
indexes) and checksums are `verification_steps()`, run in the background by a later
step; `mark_failed` then makes every read raise naming the reason.

Decisions not in the design page (also in the As-built block): every vector pack holds
its node -> slot map (`slots`, `sub_slots`) so graph nodes are the pack's rows and the
mapped rows rescore directly (`matrix_by_node`); a graph whose storage dtype is not float32
gets its float32 rows in a pack of their own (`hnsw/<hex>.vectors.pack`), because a pack
is written once and the graph must be built over those rows mapped; multi and sparse
packs carry a `present` mask (an empty sparse vector is a vector, not an absent one).
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

import cbor2
import numpy as np

from pydrant.config import DEFAULTS, SPARSE_FULL_SCAN_THRESHOLD
from pydrant.errors import ServiceError
from pydrant.fsutil import fsync_dir, read_json, write_json_atomic
from pydrant.segments import deadline, filter_plan, scoring, vector_search
from pydrant.segments.base import (
    ExportedPoint,
    PayloadSelection,
    PlannedPredicate,
    Predicate,
    SegmentHit,
    VectorSelection,
)
from pydrant.segments.disk_index_runs import pick_ordered
from pydrant.segments.disk_payload_indexes import DiskPayloadIndexes, open_disk_indexes
from pydrant.segments.hnsw import HnswIndex
from pydrant.segments.idmap import IdMap
from pydrant.segments.ids import id_sort_key
from pydrant.segments.packfile import CorruptPack, PackTable, open_pack, verify_pack
from pydrant.segments.payload import parse_path
from pydrant.segments.quantization import QuantizedVectors
from pydrant.segments.scoring import ScoringQuery, VectorSpace
from pydrant.segments.sparse_index import SparseInvertedIndex
from pydrant.segments.types import (
    DenseVectorSpec,
    PointContext,
    PointId,
    PointInput,
    Record,
    SparseVector,
    SparseVectorSpec,
    VectorSchema,
    VectorValue,
)
from pydrant.segments.vector_search import DenseIndex, TenantGraph, value_key

log = logging.getLogger("pydrant.segments")

FORMAT = 2
SEGMENT_FILE = "segment.json"
STATE_FILE = "state.json"
IDS_PACK = "ids.pack"
PAYLOAD_PACK = "payload.pack"
_HNSW = DEFAULTS.storage.hnsw_index
_ID_CHUNK = 4096  # slots per step of an id-order walk (read_ids, iter_ids)


def name_hex(name: str) -> str:
    """A vector name as a file name: the hex of its UTF-8 bytes, `_` for the unnamed one."""
    return name.encode("utf-8").hex() or "_"


def vector_pack(name: str) -> str:
    return f"vectors/{name_hex(name)}.pack"


def graph_pack(name: str) -> str:
    return f"hnsw/{name_hex(name)}.pack"


def graph_vectors_pack(name: str) -> str:
    return f"hnsw/{name_hex(name)}.vectors.pack"


def codes_pack(name: str) -> str:
    return f"quantized/{name_hex(name)}.pack"


def tenants_pack(name: str) -> str:
    return f"tenants/{name_hex(name)}.pack"


def sparse_index_pack(name: str) -> str:
    return f"sparse_index/{name_hex(name)}.pack"


def flags_file_name(version: int, taken: str | None) -> str:
    """The flags file of persisted version `version`, never the name `taken` (the current
    file: a flush that persists only discards keeps the version, and a file is never
    rewritten in place because checkpoints hard-link it)."""
    name = f"deleted.{version}.bool"
    counter = 0
    while name == taken:
        counter += 1
        name = f"deleted.{version}.{counter}.bool"
    return name


def schema_to_json(schema: VectorSchema) -> dict:
    return {
        "dense": {
            name: {"size": s.size, "distance": s.distance, "datatype": s.datatype,
                   "multivector": s.multivector, "on_disk": s.on_disk}
            for name, s in schema.dense.items()
        },
        "sparse": {name: {"modifier": s.modifier, "on_disk": s.on_disk} for name, s in schema.sparse.items()},
    }


def schema_from_json(value: Mapping) -> VectorSchema:
    return VectorSchema(
        {name: DenseVectorSpec(**spec) for name, spec in (value.get("dense") or {}).items()},
        {name: SparseVectorSpec(**spec) for name, spec in (value.get("sparse") or {}).items()},
    )


def is_immutable_dir(path: Path) -> bool:
    """Whether `path` holds a committed immutable segment (`segment.json` of format 2)."""
    try:
        return read_json(Path(path) / SEGMENT_FILE).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def open_immutable(path: str | os.PathLike, schema: VectorSchema) -> ImmutableSegment:
    return ImmutableSegment.open(path, schema)


class _FlagsDenseIndex(DenseIndex):
    """A DenseIndex whose `deleted` mask over nodes (a gather when nodes are not slots
    0..k-1) is cached until the next deletion (`epoch` changes), so an unfiltered search
    builds no O(nodes) mask per query."""

    def __init__(self, rows, graph, vectors, quantized, multi: bool, epoch: Callable[[], int]):
        super().__init__(rows, graph, vectors, quantized, multi)
        self._epoch = epoch
        self._cached: tuple[int, np.ndarray] | None = None

    def node_deleted(self, deleted, nodes=None):
        if deleted is None or nodes is not None or self.identity:
            return super().node_deleted(deleted, nodes)
        epoch = self._epoch()  # read before the gather: a later deletion bumps it again
        cached = self._cached
        if cached is not None and cached[0] == epoch:
            return cached[1]
        mask = np.ascontiguousarray(deleted[self.rows])
        self._cached = (epoch, mask)
        return mask


class _Vector:
    """One named vector's mapped arrays. `kind`: dense | multi | sparse."""

    def __init__(self, kind: str, arrays: dict[str, np.ndarray], n: int):
        self.kind = kind
        self.arrays = arrays
        self.n = n
        if kind == "dense":
            self.data = arrays["data"]
            self.slots = arrays["slots"]
            self.identity = vector_search.is_identity(self.slots) and len(self.slots) == n
        else:
            self.offsets = arrays["offsets"]
            self.present_flags = arrays["present"]
        self._present: np.ndarray | None = None

    def present(self) -> np.ndarray:
        """bool (n,): which slots have the vector (built once for a dense vector that not
        every point has; the stored flags otherwise)."""
        if self.kind != "dense":
            return self.present_flags
        if self._present is None:
            present = np.zeros(self.n, dtype=bool)
            present[self.slots] = True
            self._present = present
        return self._present

    def row_of(self, slot: int) -> int | None:
        """The dense data row of `slot`, None when the slot has no vector."""
        if self.identity:
            return slot if slot < len(self.slots) else None
        row = int(np.searchsorted(self.slots, np.int32(slot)))
        return row if row < len(self.slots) and int(self.slots[row]) == slot else None

    def get(self, slot: int, copy: bool = True) -> VectorValue | None:
        if self.kind == "dense":
            row = self.row_of(slot)
            if row is None:
                return None
            return self.data[row].copy() if copy else self.data[row]
        if not self.present_flags[slot]:
            return None
        a, b = int(self.offsets[slot]), int(self.offsets[slot + 1])
        if self.kind == "multi":
            return self.arrays["data"][a:b].copy() if copy else self.arrays["data"][a:b]
        return SparseVector(self.arrays["indices"][a:b].astype(np.uint32), self.arrays["values"][a:b].astype(np.float32))

    def live_bytes(self, live: np.ndarray) -> int:
        if self.kind == "dense":
            return int(np.count_nonzero(live[self.slots])) * int(self.data.shape[1]) * self.data.dtype.itemsize
        lengths = np.diff(self.offsets.astype(np.int64))
        count = int(lengths[live & self.present_flags].sum())
        if self.kind == "multi":
            return count * int(self.arrays["data"].shape[1]) * self.arrays["data"].dtype.itemsize
        return count * 8


class ImmutableSegment:
    """A `Segment` (base.py) whose points live in mapped pack files (module docstring).

    Thread-safety: reads run concurrently; `_lock` guards the deletion flags, the pending
    deletions and the version; `_flush_lock` makes flushes one at a time (the file writes
    run outside `_lock`, so reads and deletes go on meanwhile)."""

    # -- opening -------------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | os.PathLike, schema: VectorSchema) -> ImmutableSegment:
        """Open a committed segment directory. O(files): no per-point work, no checksums.
        ServiceError for a format this code does not know, CorruptPack naming the file
        for a missing or resized pack or arrays that do not fit their readers."""
        path = Path(path)
        try:
            meta = read_json(path / SEGMENT_FILE)
        except FileNotFoundError:
            raise ServiceError(f"no immutable segment in {path}: {SEGMENT_FILE} is missing") from None
        except ValueError as exc:
            raise ServiceError(f"{path / SEGMENT_FILE} is not valid JSON: {exc}") from None
        fmt = meta.get("format") if isinstance(meta, dict) else None
        if fmt != FORMAT:
            if isinstance(fmt, int) and fmt > FORMAT:
                raise ServiceError(f"segment format {fmt} is newer than this pydrant (it reads format {FORMAT}): {path}")
            raise ServiceError(f"{path / SEGMENT_FILE}: unknown segment format {fmt!r}")
        segment = cls(path, schema, meta)
        segment._load()
        return segment

    def __init__(self, path: Path, schema: VectorSchema, meta: dict):
        self._path = path
        self._schema = schema
        self._meta = meta
        self.settings: dict = meta.get("settings") or {}
        self._n = int(meta["points"])
        self._tables: dict[str, PackTable] = {}
        self._packs: dict[str, dict[str, np.ndarray]] = {}
        self._lock = threading.RLock()
        self._flush_lock = threading.Lock()
        self._pending: list[tuple[int, np.ndarray]] = []  # (op_num, slots) not yet in a flags file
        self._tracked: set | None = None
        self._failed: str | None = None
        self._closed = False
        self._search_settings: dict = {}
        self.writes = 0  # deletions committed (caches of live masks key on it)
        self._live_cache: tuple[int, np.ndarray] | None = None
        self._vector_bytes_cache: tuple[int, dict] | None = None

    def _load(self) -> None:
        path = self._path
        for name, table in (self._meta.get("files") or {}).items():
            self._tables[name] = PackTable.from_json(table, path / name)
        for name, table in self._tables.items():
            self._packs[name] = open_pack(path / name, table)
        self._load_state()
        try:
            self._ids = IdMap(self._pack(IDS_PACK))
        except ValueError as exc:
            raise CorruptPack(path / IDS_PACK, str(exc)) from None
        if len(self._ids) != self._n:
            raise CorruptPack(path / IDS_PACK, f"it maps {len(self._ids)} points, segment.json says {self._n}")
        payload = self._pack(PAYLOAD_PACK)
        self._payload_offsets, self._payload_blob = payload["offsets"], payload["blob"]
        if self._payload_offsets.shape != (self._n + 1,):
            raise CorruptPack(path / PAYLOAD_PACK, f"offsets {self._payload_offsets.shape} for {self._n} points")
        self._vectors: dict[str, _Vector] = {}
        for name, entry in (self._meta.get("vectors") or {}).items():
            self._vectors[name] = _Vector(entry["kind"], self._pack(vector_pack(name)), self._n)
        self._dense: dict[str, DenseIndex] = {}
        self._sparse: dict[str, SparseInvertedIndex] = {}
        for name, vector in self._vectors.items():
            if vector.kind == "sparse":
                self._load_sparse_index(name)
            else:
                self._load_dense_index(name, vector)
        self._indexes: DiskPayloadIndexes = open_disk_indexes(path, self._n)

    def _load_state(self) -> None:
        state_path = self._path / STATE_FILE
        try:
            state = read_json(state_path)
            self._version = int(state["version"])
            self._persisted_version = int(state["persisted_version"])
            self._flags_file: str = state["deleted_file"]
        except FileNotFoundError:
            raise ServiceError(f"{state_path} is missing") from None
        except (ValueError, KeyError, TypeError) as exc:
            raise ServiceError(f"{state_path} is damaged: {exc!r}") from None
        flags_path = self._path / self._flags_file
        try:
            deleted = np.fromfile(flags_path, dtype=np.bool_)
        except FileNotFoundError:
            raise ServiceError(f"deletion flags {flags_path} named by {state_path} are missing") from None
        if deleted.shape != (self._n,):
            raise ServiceError(f"deletion flags {flags_path} hold {deleted.size} entries, the segment {self._n} points")
        self._deleted = deleted  # writable, contiguous: the kernels' `deleted` mask as it is
        self._deleted_count = int(np.count_nonzero(deleted))

    def _pack(self, name: str) -> dict[str, np.ndarray]:
        try:
            return self._packs[name]
        except KeyError:
            raise CorruptPack(self._path / name, "segment.json does not list it") from None

    def _load_dense_index(self, name: str, vector: _Vector) -> None:
        graph_meta = (self._meta.get("hnsw") or {}).get(name)
        codes_meta = (self._meta.get("quantization") or {}).get(name)
        if graph_meta is None and codes_meta is None:
            return
        multi = vector.kind == "multi"
        rows = vector.arrays["sub_slots"] if multi else vector.slots
        if graph_meta and graph_meta.get("vectors_f32"):
            graph_rows = self._pack(graph_vectors_pack(name))["vectors_f32"]
        else:
            graph_rows = vector.arrays["data"]
        where = self._path / graph_pack(name)
        try:
            graph = None
            if graph_meta and graph_meta.get("graph"):
                graph = HnswIndex.from_arrays(self._pack(graph_pack(name)), graph_rows, check=False)
            quantized = None
            if codes_meta is not None:
                where = self._path / codes_pack(name)
                quantized = QuantizedVectors.from_arrays(codes_meta, self._pack(codes_pack(name)))
            index = _FlagsDenseIndex(rows, graph, graph_rows, quantized, multi, lambda: self.writes)
            where = self._path / tenants_pack(name)
            index.tenants = self._load_tenants(name, graph_rows)
        except ValueError as exc:
            raise CorruptPack(where, str(exc)) from None
        self._dense[name] = index

    def _load_tenants(self, name: str, graph_rows: np.ndarray) -> dict:
        entries = (self._meta.get("tenants") or {}).get(name) or []
        if not entries:
            return {}
        arrays = self._pack(tenants_pack(name))
        tenants = {}
        for i, entry in enumerate(entries):
            prefix = f"{i}."
            graph_arrays = {key[len(prefix):]: array for key, array in arrays.items() if key.startswith(prefix)}
            graph = HnswIndex.from_arrays(graph_arrays, graph_arrays["vectors"], check=False)
            tenant = TenantGraph(graph_arrays["nodes"], graph)
            tenants[(parse_path(entry["key"]), value_key(entry["value"]))] = tenant
        return tenants

    def _load_sparse_index(self, name: str) -> None:
        meta = (self._meta.get("sparse_index") or {}).get(name)
        if meta is None:
            return
        try:
            self._sparse[name] = SparseInvertedIndex.from_arrays(meta, self._pack(sparse_index_pack(name)), check=False)
        except ValueError as exc:
            raise CorruptPack(self._path / sparse_index_pack(name), str(exc)) from None

    # -- facts ---------------------------------------------------------------------------

    @property
    def path(self) -> Path:
        return self._path

    @property
    def schema(self) -> VectorSchema:
        return self._schema

    @property
    def version(self) -> int:
        return self._version

    @property
    def persisted_version(self) -> int:
        return self._persisted_version

    @property
    def point_count(self) -> int:
        return self._n - self._deleted_count

    @property
    def is_appendable(self) -> bool:
        return False

    @property
    def build_settings(self) -> dict | None:
        return self.settings

    @property
    def failed(self) -> str | None:
        """Why the segment was marked failed (`mark_failed`), or None."""
        return self._failed

    def set_search_settings(self, settings: dict) -> None:
        """name -> {"full_scan_threshold": ...} from the collection's current config."""
        self._search_settings = settings

    def _check_usable(self) -> None:
        if self._failed is not None:
            raise ServiceError(f"segment {self._path} is unusable: {self._failed}")
        if self._closed:
            raise ServiceError(f"segment {self._path} is closed")

    def _live(self) -> np.ndarray:
        """bool (n,): slots whose point is not deleted; a cached array, never written."""
        with self._lock:
            cached = self._live_cache
            if cached is not None and cached[0] == self.writes:
                return cached[1]
            live = ~self._deleted
            self._live_cache = (self.writes, live)
            return live

    def _live_slots(self, ids: Iterable[PointId]) -> list[int]:
        """Slots of the held (not deleted) points among `ids`, in order, repeats dropped."""
        unique = list({id_sort_key(i): i for i in ids}.values())
        if not unique:
            return []
        slots = self._ids.slots_of(unique)
        slots = slots[slots >= 0]
        return slots[~self._deleted[slots]].tolist()

    def has_point(self, point_id: PointId) -> bool:
        return self.point_version(point_id) is not None

    def point_version(self, point_id: PointId) -> int | None:
        return self.point_versions([point_id])[0]

    def point_versions(self, ids: Sequence[PointId]) -> list[int | None]:
        """The version of each id (None when not held), vectorised: one `slots_of`."""
        self._check_usable()
        ids = list(ids)
        if not ids:
            return []
        slots = self._ids.slots_of(ids)
        found = slots >= 0
        found[found] = ~self._deleted[slots[found]]
        versions = self._ids.versions[np.where(found, slots, 0)].tolist() if self._n else [0] * len(ids)
        return [int(v) if ok else None for v, ok in zip(versions, found.tolist())]

    def vector_names_of(self, point_id: PointId) -> list[str]:
        self._check_usable()
        slots = self._live_slots([point_id])
        if not slots:
            return []
        return [name for name in self._schema.names() if name in self._vectors and self._vectors[name].present()[slots[0]]]

    # -- points --------------------------------------------------------------------------

    def _payload_bytes(self, slot: int) -> bytes:
        return self._payload_blob[int(self._payload_offsets[slot]) : int(self._payload_offsets[slot + 1])].tobytes()

    def _payload(self, slot: int) -> dict:
        blob = self._payload_bytes(slot)
        return cbor2.loads(blob) if blob else {}

    def _vectors_of(self, slot: int, names: Iterable[str] | None = None) -> dict[str, VectorValue]:
        vectors = {}
        for name in self._schema.names() if names is None else names:
            vector = self._vectors.get(name)
            if vector is not None:
                value = vector.get(slot)
                if value is not None:
                    vectors[name] = value
        return vectors

    def retrieve(
        self,
        ids: Iterable[PointId],
        with_payload: PayloadSelection = True,
        with_vectors: VectorSelection = False,
    ) -> list[Record]:
        self._check_usable()
        slots = self._live_slots(ids)
        point_ids = self._ids.ids_of(slots)
        versions = self._ids.versions[slots].tolist() if slots else []
        records = []
        for slot, point_id, version in zip(slots, point_ids, versions):
            record = Record(id=point_id, version=int(version))
            if with_vectors:
                record.vectors = self._vectors_of(slot, None if with_vectors is True else with_vectors)
            if with_payload:
                payload = self._payload(slot)
                record.payload = payload if with_payload is True else with_payload(payload)
            records.append(record)
        return records

    def export_points(self, ids: Iterable[PointId]) -> list[ExportedPoint]:
        self._check_usable()
        slots = self._live_slots(ids)
        return [
            (point_id, int(self._ids.versions[slot]), self._vectors_of(slot), self._payload_bytes(slot))
            for slot, point_id in zip(slots, self._ids.ids_of(slots))
        ]

    def iter_ids(self) -> Iterator[PointId]:
        self._check_usable()
        live = self._live()
        ids: list[PointId] = []
        for chunk in self._ids.iter_from(None, _ID_CHUNK):
            ids.extend(self._ids.ids_of(chunk[live[chunk]]))
        return iter(ids)

    def read_ids(
        self,
        offset: PointId | None = None,
        limit: int | None = None,
        predicate: Predicate | None = None,
    ) -> list[PointId]:
        self._check_usable()
        start_key = None if offset is None else id_sort_key(offset)
        if limit is not None and limit <= 0:
            return []
        live = self._live()
        sure, to_check = (live, None) if predicate is None else self._split(predicate)
        candidates = sure if to_check is None else sure | to_check
        found: list[PointId] = []
        checked = 0
        for chunk in self._ids.iter_from(start_key, _ID_CHUNK):
            slots = chunk[candidates[chunk]]
            if to_check is not None and to_check[slots].any():
                kept = []
                for slot in slots.tolist():
                    if checked % deadline.CHECK_EVERY_POINTS == 0:
                        deadline.check()
                    checked += 1
                    if sure[slot] or predicate.matches(self._context(slot)):  # type: ignore[union-attr]
                        kept.append(slot)
                        if limit is not None and len(found) + len(kept) >= limit:
                            break
                slots = np.asarray(kept, np.int64)
            found.extend(self._ids.ids_of(slots))
            if limit is not None and len(found) >= limit:
                return found[:limit]
        return found

    def count(self, predicate: Predicate | None = None) -> int:
        self._check_usable()
        if predicate is None:
            return self.point_count
        return int(np.count_nonzero(self._matching_mask(predicate)))

    def offset_ids(self) -> list[PointId | None]:
        self._check_usable()
        return list(self._ids.ids_of(np.arange(self._n)))

    def dense_vectors(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(matrix by slot, live-and-present mask). The mapped rows themselves when every
        point has the vector; otherwise a slot-addressed copy (O(n dim); only tests and
        tools call this)."""
        self._check_usable()
        vector = self._vectors.get(name)
        spec = self._schema.dense.get(name)
        if spec is None or spec.multivector:
            raise ValueError(f"`{name}` is not a dense single vector of this segment")
        if vector is None:
            return np.zeros((self._n, spec.size), spec.dtype), np.zeros(self._n, bool)
        mask = vector.present() & self._live()
        if vector.identity:
            return vector.data, mask
        matrix = np.zeros((self._n, vector.data.shape[1]), vector.data.dtype)
        matrix[vector.slots] = vector.data
        return matrix, mask

    # -- filtering -----------------------------------------------------------------------

    def _context(self, slot: int) -> PointContext:
        return PointContext(
            self._ids.id_of(slot),
            lambda: self._payload(slot),
            lambda name: name in self._vectors and bool(self._vectors[name].present()[slot]),
        )

    def _split(self, predicate) -> tuple[np.ndarray, np.ndarray]:
        plan = getattr(predicate, "plan", None)
        if plan is None:
            return np.zeros(self._n, dtype=bool), self._live().copy()
        return filter_plan.split(plan, _IndexView(self))

    def _matching_mask(self, predicate) -> np.ndarray:
        """bool (n,): live slots matching `predicate` (every live slot for None); a new array."""
        if predicate is None:
            return self._live().copy()
        sure, to_check = self._split(predicate)
        sure = sure.copy()
        for i, slot in enumerate(np.flatnonzero(to_check).tolist()):
            if i % deadline.CHECK_EVERY_POINTS == 0:
                deadline.check()
            if predicate.matches(self._context(slot)):
                sure[slot] = True
        return sure

    def estimate_cardinality(self, predicate: PlannedPredicate | None) -> tuple[int, int, int]:
        self._check_usable()
        if predicate is None:
            count = self.point_count
            return count, count, count
        return filter_plan.estimate_cardinality(predicate.plan, _IndexView(self))

    def facet(self, key: str, predicate: Predicate | None = None) -> dict | None:
        self._check_usable()
        index = self._indexes.by_key.get(key)
        if index is None or not _facetable(index):
            return None
        selected = None if predicate is None else self._matching_mask(predicate)
        return index.facet_counts(self._indexes.gen, self._live(), selected)

    def read_ordered(
        self, key: str, descending: bool, start_from: float | None, limit: int, predicate: Predicate | None = None
    ) -> list[tuple[float, PointId]] | None:
        self._check_usable()
        index = self._indexes.by_key.get(key)
        if index is None or not getattr(index, "orderable", False):
            return None
        selected = self._matching_mask(predicate)
        values, slots = index.ordered_prefix(descending, start_from, limit, selected)
        return pick_ordered(values, slots, limit, descending, self._ids.id_of)

    def payload_index_info(self) -> dict:
        self._check_usable()
        return self._indexes.info(self._live())

    def set_payload_indexes(self, fields: Mapping[str, object]) -> None:
        """Build the indexes `fields` adds (from payload.pack, live slots only) and drop the
        ones it leaves out (`DiskPayloadIndexes.update`)."""
        self._check_usable()

        def payloads() -> Iterator[tuple[int, dict]]:
            live = self._live()
            for slot in np.flatnonzero(live).tolist():
                blob = self._payload_bytes(slot)
                if blob:
                    yield slot, cbor2.loads(blob)

        self._indexes.update(fields, payloads)

    # -- search --------------------------------------------------------------------------

    def search(
        self,
        name: str,
        queries: list[ScoringQuery],
        limit: int,
        space: VectorSpace,
        predicate: Predicate | None = None,
        params: dict | None = None,
    ) -> list[list[SegmentHit]]:
        """Planned as IndexedSegment.search (its docstring), with the deletion flags as the
        kernels' `deleted` mask: an unfiltered search builds no mask at all."""
        self._check_usable()
        params = params or {}
        vector = self._vectors.get(name)
        if vector is None:
            return [[] for _ in queries]
        if params.get("exact") or not all(q.is_nearest for q in queries):
            return self._exact(name, vector, queries, limit, space, self._candidates(vector, predicate))
        if space.kind == "sparse":
            return self._search_sparse(name, vector, queries, limit, space, predicate)
        index = self._dense.get(name)
        tenant = index.tenant_for(predicate) if index is not None and predicate is not None else None
        if index is None or not index.can_answer(params, tenant):
            return self._exact(name, vector, queries, limit, space, self._candidates(vector, predicate))
        mask = None
        allowed = None
        if predicate is not None:
            mask = self._candidates(vector, predicate)
            if int(np.count_nonzero(mask)) < self._full_scan_vectors(name):
                return self._exact(name, vector, queries, limit, space, mask)
            if tenant is None:
                allowed = index.node_mask(mask)
        deleted = self._deleted
        if index.multi:
            return self._search_multi(name, vector, index, queries, limit, space, allowed, params)
        matrix = vector.data
        if tenant is not None:
            assert mask is not None
            found = [
                vector_search.tenant_search(index, tenant, q, limit, space, mask, params, matrix, deleted, matrix_by_node=True)
                for q in queries
            ]
        else:
            found = [
                vector_search.graph_search(index, q, limit, space, allowed, params, matrix, deleted, matrix_by_node=True)
                for q in queries
            ]
        return self._hits(found)

    def _candidates(self, vector: _Vector, predicate: Predicate | None) -> np.ndarray:
        """bool (n,): live slots that have the vector and match `predicate`."""
        return self._matching_mask(predicate) & vector.present()

    def _full_scan_vectors(self, name: str) -> float:
        threshold_kb = (self._search_settings.get(name) or {}).get("full_scan_threshold", _HNSW.full_scan_threshold_kb)
        return vector_search.full_scan_vectors(threshold_kb, self._schema.dense[name].size)

    def _exact(self, name, vector: _Vector, queries, limit, space, candidates: np.ndarray) -> list[list[SegmentHit]]:
        if vector.kind == "dense":
            row_mask = candidates[: len(vector.slots)] if vector.identity else candidates[vector.slots]
            found = scoring.search_dense(vector.data, row_mask, queries, limit, space.distance, space.datatype)
            if not vector.identity:
                found = [(vector.slots[rows].astype(np.int64), scores) for rows, scores in found]
            return self._hits(found)
        slots = np.flatnonzero(candidates)
        values = [vector.get(slot, copy=False) for slot in slots.tolist()]
        return self._hits(scoring.search_lists(values, slots, queries, limit, space))

    def _search_multi(self, name, vector: _Vector, index: DenseIndex, queries, limit, space, allowed, params):
        """MaxSim through the sub-vector graph: each query row's `ef` nearest sub-vectors
        nominate their points, which are scored exactly (IndexedSegment._search_multi)."""
        ef = index.ef(params, limit)
        found = []
        for query in queries:
            nominated = vector_search.nominate_multi(index, query, space, ef, allowed, params, self._deleted)
            candidates = np.unique(nominated)
            candidates = candidates[~self._deleted[candidates]]
            picked = [vector.get(slot, copy=False) for slot in candidates.tolist()]
            found.append(scoring.search_lists(picked, candidates, [query], limit, space)[0])
        return self._hits(found)

    def _search_sparse(self, name, vector: _Vector, queries, limit, space, predicate):
        inverted = self._sparse.get(name)
        mask = self._candidates(vector, predicate)
        threshold = (self._search_settings.get(name) or {}).get("full_scan_threshold", SPARSE_FULL_SCAN_THRESHOLD)
        if inverted is None or (predicate is not None and int(np.count_nonzero(mask)) < threshold):
            return self._exact(name, vector, queries, limit, space, mask)
        found = []
        for query in queries:
            example = query.examples[0]
            rows, scores = inverted.search(example.indices, example.values, limit, self._n, mask)
            found.append((np.asarray(rows, np.int64), np.asarray(scores, np.float32)))
        return self._hits(found)

    def _hits(self, found: Iterable[tuple[np.ndarray, np.ndarray]]) -> list[list[SegmentHit]]:
        hits = []
        for slots, scores in found:
            slots = np.asarray(slots, np.int64)
            ids = self._ids.ids_of(slots)
            versions = self._ids.versions[slots].tolist()
            hits.append([(score, point_id, int(v)) for score, point_id, v in zip(np.asarray(scores).tolist(), ids, versions)])
        return hits

    def sparse_statistics(self, name: str, indices: np.ndarray) -> tuple[int, np.ndarray]:
        self._check_usable()
        vector = self._vectors.get(name)
        if vector is None or vector.kind != "sparse":
            return 0, np.zeros(len(indices), np.int64)
        live = self._live()
        lengths = np.diff(vector.offsets.astype(np.int64))
        documents = live & vector.present_flags & (lengths > 0)
        count = int(np.count_nonzero(documents))
        if not count:
            return 0, np.zeros(len(indices), np.int64)
        inverted = self._sparse.get(name)
        if inverted is not None:
            return count, inverted.document_frequencies(np.asarray(indices), live).astype(np.int64)
        rows = np.flatnonzero(documents)
        stored = np.sort(np.concatenate([vector.arrays["indices"][vector.offsets[r] : vector.offsets[r + 1]] for r in rows]))
        wanted = np.asarray(indices, np.uint32)
        return count, (np.searchsorted(stored, wanted, side="right") - np.searchsorted(stored, wanted)).astype(np.int64)

    # -- sizes and telemetry -------------------------------------------------------------

    def vector_bytes(self) -> dict[str, int]:
        self._check_usable()
        with self._lock:
            cached = self._vector_bytes_cache
            if cached is not None and cached[0] == self.writes:
                return cached[1]
        live = self._live()
        sizes = {name: (self._vectors[name].live_bytes(live) if name in self._vectors else 0) for name in self._schema.names()}
        self._vector_bytes_cache = (self.writes, sizes)
        return sizes

    def slot_counts(self) -> tuple[int, int]:
        return self._n, self._deleted_count

    def indexed_vectors(self) -> int:
        """Live vectors reachable through an index (Qdrant's indexed_vectors_count)."""
        live = self._live()
        total = 0
        for name, index in self._dense.items():
            present = self._vectors[name].present() & live
            if index.graph is not None or index.quantized is not None:
                total += int(np.count_nonzero(present))
            elif index.tenants:
                nodes = np.unique(np.concatenate([t.nodes for t in index.tenants.values()]))
                total += int(np.count_nonzero(present[index.rows[nodes]]))
        for name in self._sparse:
            total += int(np.count_nonzero(self._vectors[name].present() & live))
        return total

    def info(self) -> dict:
        self._check_usable()
        live = self._live()
        counts = {name: int(np.count_nonzero(self._vectors[name].present() & live)) if name in self._vectors else 0
                  for name in self._schema.names()}
        return {
            "segment_type": "indexed",
            "is_appendable": False,
            "num_points": self.point_count,
            "num_vectors": sum(counts.values()),
            "num_vectors_by_name": counts,
            "slots_used": self._n,
            "slots_dead": self._deleted_count,
            "version": self._version,
            "persisted_version": self._persisted_version,
            "ram_usage_bytes": int(self._deleted.nbytes) + sum(int(a.nbytes) for a in self.resident_regions()),
            "disk_usage_bytes": _directory_size(self._path),
            "index_ram_bytes": sum(i.nbytes for i in self._dense.values()) + sum(i.nbytes for i in self._sparse.values()),
            "indexed_vectors": self.indexed_vectors(),
        }

    # -- writes: deletions only ----------------------------------------------------------

    def delete_points(self, op_num: int, ids: Iterable[PointId]) -> int:
        """Flag the held points among `ids` whose version is below `op_num` as deleted."""
        self._check_usable()
        with self._lock:
            slots = np.asarray(self._live_slots(ids), np.int64)
            if len(slots):
                slots = slots[self._ids.versions[slots] < np.uint64(op_num)]
            self._mark_deleted(op_num, slots)
            self._version = max(self._version, op_num)
            return len(slots)

    def discard_points(self, ids: Iterable[PointId]) -> int:
        """Flag the held points among `ids` as deleted whatever their version (the
        optimizer's target); the version does not move. Persisted by the next flush."""
        self._check_usable()
        with self._lock:
            slots = np.asarray(self._live_slots(ids), np.int64)
            self._mark_deleted(0, slots)
            return len(slots)

    def _mark_deleted(self, op_num: int, slots: np.ndarray) -> None:
        """Call with `_lock` held."""
        if not len(slots):
            return
        self._deleted[slots] = True  # readers and kernels see it now
        self._deleted_count += len(slots)
        self._pending.append((op_num, slots))
        if self._tracked is not None:
            self._tracked.update(self._ids.ids_of(slots))
        self.writes += 1  # after the flags: a cache tagged with the old count is rebuilt

    def advance_version(self, version: int) -> None:
        with self._lock:
            self._version = max(self._version, version)

    def _read_only(self, what: str) -> NoReturn:
        raise ServiceError(
            f"segment {self._path.name} is immutable: {what} must move the point to the appendable segment (copy-on-write)"
        )

    def upsert_points(self, op_num: int, points: Sequence[PointInput]) -> int:
        self._read_only("an upsert")

    def update_payload(self, op_num: int, ids: Iterable[PointId], transform: Callable[[dict], dict]) -> int:
        self._read_only("a payload change")

    def update_vectors(self, op_num: int, points: Sequence[tuple[PointId, Mapping[str, VectorValue]]]) -> int:
        self._read_only("a vector change")

    def delete_vectors(self, op_num: int, ids: Iterable[PointId], names: Iterable[str]) -> int:
        self._read_only("a vector deletion")

    def import_points(self, points: Sequence[ExportedPoint]) -> int:
        if not points:
            return 0
        raise ServiceError(
            f"segment {self._path.name} is immutable: re-copied points go to the writable segment, not into it"
        )

    def start_tracking(self) -> None:
        with self._lock:
            self._tracked = set()

    def take_tracked(self, stop: bool = False) -> list[PointId]:
        with self._lock:
            tracked = list(self._tracked or ())
            self._tracked = None if stop else set()
            return tracked

    # -- durability ----------------------------------------------------------------------

    def flush(self, bound: int | None = None) -> int:
        """Persist the deletions of ops <= `bound` (all when None): a new flags file
        (fsynced), then `state.json` (atomic) with `persisted_version`, then the old flags
        file unlinked. Deletions of later ops stay pending (in RAM and in the flags the
        readers see). Returns `persisted_version`."""
        with self._flush_lock:
            with self._lock:
                if self._closed:
                    raise ServiceError(f"segment {self._path} is closed")
                target = self._version if bound is None else min(bound, self._version)
                persisted = [(op, slots) for op, slots in self._pending if bound is None or op <= bound]
                later = [(op, slots) for op, slots in self._pending if not (bound is None or op <= bound)]
                if not persisted and target <= self._persisted_version:
                    return self._persisted_version
                flags = self._deleted.copy()
                for _, slots in later:
                    flags[slots] = False  # a pending slot was live in the durable flags
                old_file = self._flags_file
                new_file = flags_file_name(target, old_file)
                count = int(np.count_nonzero(flags))
            # outside `_lock`: reads and deletes go on while the files are written
            _write_flags(self._path / new_file, flags)
            write_json_atomic(
                self._path / STATE_FILE,
                {"version": target, "persisted_version": target, "deleted_file": new_file, "deleted_count": count},
            )
            with self._lock:
                done = {id(slots) for _, slots in persisted}
                self._pending = [(op, slots) for op, slots in self._pending if id(slots) not in done]
                self._flags_file = new_file
                self._persisted_version = max(self._persisted_version, target)
            _remove_stale_flags(self._path, keep=new_file)
            return self._persisted_version

    def close(self) -> None:
        """Let go of the mappings (a mapping closes when its last view is dropped). Does
        not flush; reads after it raise ServiceError."""
        with self._lock:
            self._closed = True
            # Readers in flight keep the views they hold (and so their mappings) alive;
            # the segment's own references go, so the descriptors close with the last view.
            self._packs = {}
            self._vectors = {}
            self._dense = {}
            self._sparse = {}
            self._ids = None  # type: ignore[assignment]
            self._payload_offsets = self._payload_blob = np.zeros(0, np.uint64)
            self._indexes = None  # type: ignore[assignment]

    def drop(self) -> None:
        self.close()
        shutil.rmtree(self._path, ignore_errors=True)

    def reopen_store(self) -> None:
        """Nothing to reopen: packs are read-only mappings and flushes write whole files."""

    def checkpoint(self, target: Path) -> None:
        """A directory `open` opens holding what the segment holds as of its last flush:
        hard links of the packs, segment.json and the payload-index files (never changed
        once written), copies of state.json and its flags file (the flags file is
        replaced, never rewritten, so a link would also do; a copy keeps a snapshot's
        directory independent of later flushes' unlinks)."""
        target = Path(target)
        target.mkdir(parents=True)
        with self._flush_lock:
            names = [*self._tables, SEGMENT_FILE, *(str(p.relative_to(self._path)) for p in self._indexes.files())]
            for name in names:
                (target / name).parent.mkdir(parents=True, exist_ok=True)
                _link_or_copy(self._path / name, target / name)
            state = read_json(self._path / STATE_FILE)
            shutil.copy2(self._path / state["deleted_file"], target / state["deleted_file"])
            shutil.copy2(self._path / STATE_FILE, target / STATE_FILE)

    # -- background work (segments/residency.py drives these) ----------------------------

    def verification_steps(self, pace: Callable[[int], None] | None = None) -> Iterator[int]:
        """Verify every pack's checksums and every structure the kernels trust, yielding
        the bytes done so far after each array / block. Raises CorruptPack naming the file
        at the first problem (the caller then `mark_failed`s). `pace(n)` is passed to
        `verify_pack` (called after each n bytes read: throttle inside large arrays)."""
        done = 0
        for name, table in self._tables.items():
            for array_name, entry in table.arrays.items():
                problems = verify_pack(self._path / name, PackTable(table.size, {array_name: entry}), pace)
                if problems:
                    raise CorruptPack(self._path / name, "; ".join(problems))
                done += entry.nbytes
                yield done
        for name, index in self._dense.items():
            graphs = [(graph_pack(name), index.graph)] if index.graph is not None else []
            graphs += [(tenants_pack(name), tenant.graph) for tenant in index.tenants.values()]
            for file_name, graph in graphs:
                base = done
                try:
                    for step in graph.check_steps():
                        done = base + step
                        yield done
                except ValueError as exc:
                    raise CorruptPack(self._path / file_name, str(exc)) from None
        for name, inverted in self._sparse.items():
            base = done
            try:
                for step in inverted.check_steps():
                    done = base + step
                    yield done
            except ValueError as exc:
                raise CorruptPack(self._path / sparse_index_pack(name), str(exc)) from None
        problems = self._ids.check()
        if problems:
            raise CorruptPack(self._path / IDS_PACK, "; ".join(problems))
        done += self._ids.nbytes
        yield done
        base = done
        for step in self._indexes.verification_steps(pace):
            done = base + step
            yield done

    def resident_regions(self) -> list[np.ndarray]:
        """The mapped arrays §2.6 keeps resident (populated page cache): a vector's rows
        unless it is `on_disk`; its codes when `always_ram` or the vector is not on_disk
        (Qdrant: in_ram = !on_disk || always_ram); its graph (and tenant graphs) unless
        `hnsw_config.on_disk`; the payload indexes per their own `on_disk`."""
        regions: list[np.ndarray] = []
        for name, vector in self._vectors.items():
            wanted = (self.settings.get("dense") or {}).get(name) or {}
            if vector.kind == "sparse":
                sparse_on_disk = bool((((self.settings.get("sparse") or {}).get(name) or {}).get("index") or {}).get("on_disk"))
                if not sparse_on_disk:
                    regions += list(vector.arrays.values())
                    if name in self._sparse:
                        regions += list(self._sparse[name].arrays().values())
                continue
            on_disk = bool(wanted.get("on_disk"))
            if not on_disk:
                regions += list(vector.arrays.values())
            index = self._dense.get(name)
            if index is None:
                continue
            if index.quantized is not None and (index.quantized.always_ram or not on_disk):
                regions += list(index.quantized.arrays.values())
            if not (wanted.get("hnsw") or {}).get("on_disk"):
                if index.graph is not None:
                    regions += list(index.graph.arrays().values())
                    if index.vectors is not vector.arrays.get("data"):
                        regions.append(index.vectors)
                for tenant in index.tenants.values():
                    regions += [*tenant.graph.arrays().values(), tenant.graph.vectors, tenant.nodes]
        regions += self._indexes.resident_regions()
        return [region for region in regions if region.size]

    def mark_failed(self, reason: str) -> None:
        """Every later read and search raises ServiceError naming `reason` (a file that
        failed its verification)."""
        with self._lock:
            self._failed = reason


class _IndexView:
    """What `filter_plan.evaluate` needs (filter_plan.IndexView)."""

    __slots__ = ("segment", "n", "gen", "live")

    def __init__(self, segment: ImmutableSegment):
        self.segment = segment
        self.n = segment._n
        self.gen = segment._indexes.gen
        self.live = segment._live()

    def index_for(self, path: tuple):
        return self.segment._indexes.for_path(path)

    def ids_mask(self, ids: frozenset):
        slots = self.segment._ids.slots_of(list(ids))
        slots = slots[slots >= 0]
        if not len(slots):
            return None
        mask = np.zeros(self.n, dtype=bool)
        mask[slots] = True
        return mask

    def vector_mask(self, name: str):
        vector = self.segment._vectors.get(name)
        return None if vector is None else vector.present().copy()


def _facetable(index: Any) -> bool:
    # Qdrant facets keyword, bool and uuid indexes, and integer ones with `lookup`.
    return index.data_type in ("keyword", "bool", "uuid") or bool(getattr(index, "facetable", False))


def _write_flags(path: Path, flags: np.ndarray) -> None:
    """Write a whole flags file durably under a temporary name, then rename it into place
    (a leftover of a crashed flush with the same name is replaced, never appended to)."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(flags.tobytes())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def _remove_stale_flags(directory: Path, keep: str) -> None:
    """Unlink every flags file but `keep` (the previous one, and leftovers of flushes
    that crashed before their state.json)."""
    for entry in os.scandir(directory):
        if entry.name.startswith("deleted.") and entry.name != keep:
            try:
                os.unlink(entry.path)
            except FileNotFoundError:
                pass


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _directory_size(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except FileNotFoundError:
                pass
    return total
