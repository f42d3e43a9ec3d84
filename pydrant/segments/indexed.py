"""The indexed segment: an appendable segment's storage plus search indexes over its points.

`IndexedSegment` composes an `AppendableSegment` (it does not subclass it): the store keeps
the points, answers the reads and takes the writes, and the indexes read its slots through
the store's public, lock-held `locked_view()` (`appendable.SlotView`). Both implement the
`Segment` protocol (segments/base.py).

The optimizer (pydrant/optimizer) builds one by copying the live points of other segments
into a fresh directory, then calling `build_indexes`, which adds per vector:

  dense single vectors   an HNSW graph (segments/hnsw.py) over the vectors as float32, and
                         quantized codes when the vector's quantization_config asks
                         (segments/quantization.py)
  sparse vectors         an inverted index (segments/sparse_index.py)

Multi-vectors are searched exactly (MaxSim scan), as are every query kind but `nearest`.

On disk, beside the RocksDB files:

  index/<hex(name)>/rows.npy          int32: graph node -> segment slot
  index/<hex(name)>/vectors.npy       float32 (nodes, dim): the vectors the graph was built on
  index/<hex(name)>/hnsw/<array>.npy  the graph arrays (HnswIndex.arrays())
  index/<hex(name)>/quantized/        the codes (QuantizedVectors.save)
  index/<hex(name)>/sparse/           the inverted index (SparseInvertedIndex.save)
  segment.json                        written last: the build settings and `built_slots`;
                                      its presence is what makes the directory an indexed
                                      segment (without it, a half-built one is ignored)

The graph's vectors are saved with it because deleting a point erases its vector from
RocksDB while the graph still routes through the node. With `on_disk` they (and the graph
arrays) are memory-mapped rather than read into RAM.

Writes still work: deletions, payload and vector deletions happen in place (a graph node
whose point is gone is traversed but never returned), and a point whose vectors change moves
to a slot past `built_slots`, which searches scan exactly (the "tail"). New points go to the
collection's appendable segment, never here (`is_appendable` is False). An upsert of a
point held here moves it to the writable segment; payload and vector changes stay in place
(collection/apply.py `changes_in_place`: moving them out is not safe against a power cut).

Search planning (per segment and vector, as Qdrant's): exact when `params.exact`, when the
segment has no index for the vector, for non-nearest queries, or when the candidates (the
points matching the filter) take less than `full_scan_threshold` kB of vectors; otherwise a
graph search with the filter's mask as `allowed` (traversed, never returned), `hnsw_ef` from
the request or `ef_construct`, on the quantized codes when there are any (then rescored
with the original vectors, `limit * oversampling` candidates), plus the exact tail.
This class decides which path (exact, graph, tenant subgraph) and supplies the masks, the
store's matrix and the tail; running a query through an index is segments/vector_search.py
(`DenseIndex`, shared with the segment kinds that hold their vectors elsewhere).
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from pydrant.config import DEFAULTS, SPARSE_FULL_SCAN_THRESHOLD
from pydrant.fsutil import fsync_tree, read_json, write_json_atomic
from pydrant.segments import distance as metric
from pydrant.segments import scoring
from pydrant.segments import vector_search
from pydrant.segments.appendable import AppendableSegment, SlotView
from pydrant.segments.base import (
    ExportedPoint,
    PayloadSelection,
    PlannedPredicate,
    Predicate,
    SegmentHit,
    VectorSelection,
)
from pydrant.segments.field_index import MapIndex
from pydrant.segments.hnsw import HnswIndex
from pydrant.segments.payload import parse_path
from pydrant.segments.quantization import QuantizedVectors
from pydrant.segments.scoring import ScoringQuery, VectorSpace
from pydrant.segments.sparse_index import SparseInvertedIndex
from pydrant.segments.types import PointId, PointInput, Record, VectorSchema, VectorValue
from pydrant.segments.vector_search import DenseIndex, TenantGraph, is_identity, value_key

# Collection defaults (Qdrant's config.yaml values) where a segment's settings leave one out.
_HNSW = DEFAULTS.storage.hnsw_index

log = logging.getLogger("pydrant.segments")

SEGMENT_FILE = "segment.json"
INDEX_DIR = "index"
GRAPH_SEED = 0
MmapMode = Literal["r"] | None  # how index arrays are loaded: memory-mapped read-only, or into RAM


class IndexedSegment:
    """A non-appendable segment with HNSW graphs, quantized codes and sparse indexes.

    Composition, not inheritance: the points live in an `AppendableSegment` (`_points`,
    its RocksDB and numpy mirrors), which answers every read and write of the `Segment`
    protocol that the indexes do not change; this class adds the indexes, plans searches
    with them, and reads the store's slots only through `AppendableSegment.locked_view()`
    (`SlotView`), never its private fields. Until `build_indexes` has run (or on a
    directory without `segment.json`) it behaves as the appendable segment it wraps."""

    def __init__(self, points: AppendableSegment):
        self._points = points
        self.built_slots: int | None = None  # slots covered by the indexes; None before build
        self.settings: dict = {}
        self._dense: dict[str, DenseIndex] = {}
        self._sparse: dict[str, SparseInvertedIndex] = {}
        self._search_settings: dict = {}
        self._allowed_cache: dict = {}  # name -> (writes, allowed mask of unfiltered searches)

    @classmethod
    def create(cls, path: str | os.PathLike, schema: VectorSchema) -> IndexedSegment:
        """A new, empty segment in `path` (which must not exist or be empty), to be filled
        by the optimizer and then given its indexes (`build_indexes`)."""
        return cls(AppendableSegment.create(path, schema))

    @classmethod
    def open(cls, path: str | os.PathLike, schema: VectorSchema) -> IndexedSegment:
        """Open an indexed segment's directory (it has a `segment.json`) with its indexes."""
        segment = cls(AppendableSegment.open(path, schema))
        segment._load_indexes()
        return segment

    @property
    def is_appendable(self) -> bool:
        return self.built_slots is None

    @property
    def build_settings(self) -> dict | None:
        return self.settings if self.built_slots is not None else None

    # -- building (blocking: the optimizer calls it from a worker thread) --------------------

    def build_indexes(self, settings: dict, threads: int | None = None, should_stop=None) -> None:
        """Build every index `settings` asks for over the slots used now, save them, and
        write `segment.json` last. settings: {"dense": {name: {"hnsw": {...} | None,
        "quantization": {...} | None, "on_disk": bool}}, "sparse": {name: {"index": {...}}}}
        (collection/config.py `index_settings`). `should_stop` is polled by graph builds
        (hnsw.BuildCancelled when it says stop)."""
        with self._points.locked_view() as view:
            built_slots = view.n
        started = time.monotonic()
        dense, sparse = {}, {}
        for name in self.schema.dense:
            wanted = settings.get("dense", {}).get(name) or {}
            dense[name] = self._build_dense(name, built_slots, wanted, threads, should_stop)
        for name in self.schema.sparse:
            wanted = settings.get("sparse", {}).get(name) or {}
            sparse[name] = self._build_sparse(name, built_slots, wanted)
        # every index file durable before segment.json (and the manifest swap after it) names it
        fsync_tree(self.path / INDEX_DIR)
        write_json_atomic(self.path / SEGMENT_FILE, {"built_slots": built_slots, "settings": settings})
        with self._points.locked_view():  # searches see the indexes and `built_slots` together
            self._dense, self._sparse = dense, sparse
            self.settings = settings
            self.built_slots = built_slots
            self._allowed_cache = {}
        log.info(
            "segment %s: indexed %d slots in %.1f s (%s)",
            self.path.name, built_slots, time.monotonic() - started, ", ".join(repr(n) if n else "the unnamed vector" for n in [*dense, *sparse]) or "no vectors",
        )

    def _build_dense(self, name: str, built_slots: int, wanted: dict, threads: int | None, should_stop) -> DenseIndex:
        spec = self.schema.dense[name]
        with self._points.locked_view() as view:
            slots = np.flatnonzero(view.present(name)[:built_slots] & view.live[:built_slots]).astype(np.int32)
            if spec.multivector:
                column_values = view.values(name)
                values = [column_values[slot] for slot in slots.tolist()]
            else:
                matrix = view.matrix(name)[:built_slots]
        if spec.multivector:
            # One node per sub-vector; `rows` maps each to the slot of the point owning it.
            rows = np.repeat(slots, [len(v) for v in values]).astype(np.int32)
            flat = np.vstack(values) if values else np.zeros((0, spec.size), spec.dtype)
            vectors = metric.graph_vectors(flat, np.arange(len(flat)), spec.distance, spec.datatype)
        elif _shares_storage(spec, wanted, slots):
            rows = slots
            vectors = matrix[: len(rows)]  # a view of the segment's own float32 vectors: no copy
        else:
            rows = slots
            vectors = metric.graph_vectors(matrix, rows, spec.distance, spec.datatype)
        directory = self._index_dir(name)
        directory.mkdir(parents=True, exist_ok=True)
        np.save(directory / "rows.npy", rows)
        np.save(directory / "vectors.npy", vectors)
        hnsw = wanted.get("hnsw") or {}
        graph = None
        if hnsw.get("m", _HNSW.m) >= 2 and len(rows):
            graph = HnswIndex.build(
                vectors, spec.distance, int(hnsw.get("m", _HNSW.m)), int(hnsw.get("ef_construct", _HNSW.ef_construct)),
                GRAPH_SEED, threads, should_stop,
            )
            _save_graph(directory / "hnsw", graph)
        quantized = None
        if wanted.get("quantization") and len(rows):
            quantized = QuantizedVectors.build(wanted["quantization"], vectors, spec.distance)
            quantized.save(directory / "quantized")
        index = DenseIndex(rows, graph, vectors, quantized, spec.multivector)
        if not spec.multivector:
            index.tenants = self._build_tenant_graphs(name, index, built_slots, hnsw, threads, should_stop)
        return index

    def _build_tenant_graphs(self, name: str, index: DenseIndex, built_slots: int, hnsw: dict, threads, should_stop) -> dict:
        """A subgraph (m = `payload_m`, else `m`) per value of every `is_tenant` keyword or
        uuid index that holds at least `full_scan_threshold` worth of vectors (smaller
        tenants are scanned exactly anyway). Saved under tenants/<n>/ with tenants.json."""
        m = int(hnsw.get("payload_m") or hnsw.get("m", _HNSW.m))
        if m < 2 or not len(index.rows):
            return {}
        min_points = max(1, self._full_scan_vectors(name))
        with self._points.locked_view() as view:
            indexes = view.payload_indexes
            gen, live = indexes.gen, view.live[:built_slots]
            blocks = [
                (key, value, posting.valid_slots(gen, live))
                for key, field in indexes.by_key.items()
                if isinstance(field, MapIndex) and field.params.get("is_tenant")
                for value, posting in field.postings.items()
            ]
        node_of_slot = np.full(built_slots, -1, np.int64)
        node_of_slot[index.rows] = np.arange(len(index.rows))
        tenants: dict[tuple, TenantGraph] = {}
        entries: list[dict] = []
        directory = self._index_dir(name) / "tenants"
        for key, value, slots in blocks:
            nodes = node_of_slot[np.asarray(slots, np.int64)]
            nodes = np.sort(nodes[nodes >= 0]).astype(np.int32)
            if len(nodes) < min_points:
                continue
            graph = HnswIndex.build(
                index.vectors[nodes], self.schema.dense[name].distance, m, int(hnsw.get("ef_construct", _HNSW.ef_construct)),
                GRAPH_SEED, threads, should_stop,
            )
            where = directory / str(len(entries))
            _save_graph(where / "hnsw", graph)
            np.save(where / "nodes.npy", nodes)
            entries.append({"key": key, "value": value, "dir": where.name})
            tenants[(parse_path(key), value_key(value))] = TenantGraph(nodes, graph)
        if entries:
            write_json_atomic(directory / "tenants.json", entries)
        return tenants

    def _load_tenant_graphs(self, directory: Path, index: DenseIndex, mmap: MmapMode) -> dict:
        if not (directory / "tenants.json").exists():
            return {}
        tenants = {}
        for entry in read_json(directory / "tenants.json"):
            where = directory / entry["dir"]
            nodes = np.load(where / "nodes.npy")
            graph = _load_graph(where / "hnsw", np.ascontiguousarray(index.vectors[nodes]), mmap)
            tenants[(parse_path(entry["key"]), value_key(entry["value"]))] = TenantGraph(nodes, graph)
        return tenants

    def _build_sparse(self, name: str, built_slots: int, wanted: dict) -> SparseInvertedIndex:
        with self._points.locked_view() as view:
            column_values = view.values(name)
            rows = np.flatnonzero(view.present(name)[:built_slots] & view.live[:built_slots])
            values = [column_values[r] for r in rows.tolist()]
        index_config = wanted.get("index") or {}
        index = SparseInvertedIndex.build(rows.astype(np.int64), values, index_config.get("datatype") or "float32")
        index.save(self._index_dir(name) / "sparse")
        return index

    def _index_dir(self, name: str) -> Path:
        return self.path / INDEX_DIR / (name.encode("utf-8").hex() or "_")

    # -- loading ----------------------------------------------------------------------------

    def _load_indexes(self) -> None:
        meta = read_json(self.path / SEGMENT_FILE)
        self.built_slots = int(meta["built_slots"])
        self.settings = meta.get("settings") or {}
        for name, spec in self.schema.dense.items():
            directory = self._index_dir(name)
            if not (directory / "rows.npy").exists():
                continue
            wanted = self.settings.get("dense", {}).get(name) or {}
            on_disk = bool((wanted.get("hnsw") or {}).get("on_disk"))
            mmap: MmapMode = "r" if on_disk else None
            rows = np.load(directory / "rows.npy")
            if _shares_storage(spec, wanted, rows):
                # The graph reads the segment's own float32 matrix (one copy in RAM); the
                # rows of deleted points, which RocksDB no longer has, come from the file.
                with self._points.locked_view() as view:
                    vectors = view.matrix(name)[: len(rows)]
                    vectors[:] = np.load(directory / "vectors.npy", mmap_mode="r")
            else:
                vectors = np.load(directory / "vectors.npy", mmap_mode="r" if wanted.get("on_disk") else None)
            graph = None
            if (directory / "hnsw" / "meta.npy").exists():
                graph = _load_graph(directory / "hnsw", vectors, mmap)
            quantized = None
            if (directory / "quantized").exists():
                quantized = QuantizedVectors.load(directory / "quantized", mmap=on_disk and not _always_ram(wanted))
            self._dense[name] = DenseIndex(rows, graph, vectors, quantized, spec.multivector)
            self._dense[name].tenants = self._load_tenant_graphs(directory / "tenants", self._dense[name], mmap)
        for name in self.schema.sparse:
            directory = self._index_dir(name) / "sparse"
            if directory.exists():
                on_disk = bool(((self.settings.get("sparse", {}).get(name) or {}).get("index") or {}).get("on_disk"))
                self._sparse[name] = SparseInvertedIndex.load(directory, mmap=on_disk)

    # -- settings that only searches read (no rebuild when they change) ----------------------

    def set_search_settings(self, settings: dict) -> None:
        """name -> {"full_scan_threshold": kB} from the collection's current config."""
        self._search_settings = settings

    # -- search -----------------------------------------------------------------------------

    def search(
        self,
        name: str,
        queries: list[ScoringQuery],
        limit: int,
        space: VectorSpace,
        predicate: Predicate | None = None,
        params: dict | None = None,
    ) -> list[list[SegmentHit]]:
        params = params or {}
        built = self.built_slots
        if built is None or params.get("exact") or not all(q.is_nearest for q in queries):
            return self._points.search(name, queries, limit, space, predicate, params)
        if space.kind == "sparse" and name in self._sparse:
            return self._search_sparse(name, built, queries, limit, space, predicate, params)
        index = self._dense.get(name)
        tenant = index.tenant_for(predicate) if index is not None and predicate is not None else None
        if index is None or not index.can_answer(params, tenant):
            return self._points.search(name, queries, limit, space, predicate, params)
        if index.multi:
            return self._search_multi(name, built, index, queries, limit, space, predicate, params)
        with self._points.locked_view() as view:
            view.check_open()
            matrix = view.matrix(name)  # rows below `view.n` are never rewritten
            present = view.present(name)
            n = view.n
            if predicate is None:
                allowed = self._unfiltered_allowed(name, index, view, built)
                tail = view.live[built:n] & present[built:n]
            else:
                mask = view.matching_mask(predicate) & present[:n]
                tail = mask[built:]
        if predicate is not None:
            if self._small_candidate_set(name, int(np.count_nonzero(mask[:built]))):
                return self._points.search(name, queries, limit, space, predicate, params)
            if tenant is None:
                allowed = index.node_mask(mask)
        # Liveness is in `allowed`/`mask` (the store's live flags), so no `deleted` mask.
        if tenant is not None:
            found = [self._tenant_search(index, tenant, q, limit, space, mask, params, matrix) for q in queries]
        else:
            found = [vector_search.graph_search(index, q, limit, space, allowed, params, matrix) for q in queries]
        if tail.any():  # points that moved past the indexed slots: scanned exactly
            exact = scoring.search_dense(matrix[built:n], tail, queries, limit, space.distance, space.datatype)
            found = [vector_search.merge(a, (rows + built, scores), limit) for a, (rows, scores) in zip(found, exact)]
        return self._hits(found)

    # The tenant path, as an attribute tests can wrap to see that a tenant's subgraph answered.
    _tenant_search = staticmethod(vector_search.tenant_search)

    def _unfiltered_allowed(self, name: str, index: DenseIndex, view: SlotView, built: int) -> np.ndarray | None:
        """The graph's `allowed` mask (node order) of an unfiltered search: the nodes whose
        point is live and has the vector; None when all are. Cached until the next write.
        (Call inside the store's locked view.)"""
        cached = self._allowed_cache.get(name)
        if cached is not None and cached[0] == view.writes:
            return cached[1]
        allowed = index.node_mask(view.live[:built] & view.present(name)[:built])
        self._allowed_cache[name] = (view.writes, allowed)
        return allowed

    def _search_multi(self, name, built: int, index: DenseIndex, queries, limit, space, predicate, params):
        """MaxSim through the sub-vector graph: each query row's `hnsw_ef` nearest sub-vectors
        nominate their points, which (with the tail) are scored exactly with MaxSim."""
        with self._points.locked_view() as view:
            view.check_open()
            mask = view.candidates(name, predicate)
            values = view.values(name)
        if predicate is not None and self._small_candidate_set(name, int(np.count_nonzero(mask[:built]))):
            return self._points.search(name, queries, limit, space, predicate, params)
        allowed = index.node_mask(mask)
        tail = np.flatnonzero(mask[built:]) + built
        ef = index.ef(params, limit)
        found = []
        for query in queries:
            nominated = vector_search.nominate_multi(index, query, space, ef, allowed, params)
            candidates = np.unique(np.concatenate([tail, nominated])).astype(np.int64)
            picked = [values[slot] for slot in candidates.tolist()]
            found.append(scoring.search_lists(picked, candidates, [query], limit, space)[0])
        return self._hits(found)

    def _small_candidate_set(self, name: str, candidates: int) -> bool:
        """Whether a filter leaves less than `full_scan_threshold` kB of vectors to score."""
        return candidates < self._full_scan_vectors(name)

    def _full_scan_vectors(self, name: str) -> float:
        """A dense vector's `full_scan_threshold` (kB) as a number of float32 vectors."""
        threshold_kb = (self._search_settings.get(name) or {}).get("full_scan_threshold", _HNSW.full_scan_threshold_kb)
        return vector_search.full_scan_vectors(threshold_kb, self.schema.dense[name].size)

    def _hits(self, found: list[tuple[np.ndarray, np.ndarray]]) -> list[list[SegmentHit]]:
        """(slots, scores) per query as (score, id, version) entries."""
        with self._points.locked_view() as view:
            return view.hits(found)

    def _search_sparse(self, name: str, built: int, queries: list[ScoringQuery], limit: int, space: VectorSpace, predicate, params):
        """Nearest sparse queries through the inverted index, plus the tail; a filter that
        leaves fewer than the sparse `full_scan_threshold` vectors is scored exactly."""
        inverted = self._sparse[name]
        with self._points.locked_view() as view:
            view.check_open()
            column_values = view.values(name)
            n = view.n
            mask = view.candidates(name, predicate)
            tail_rows = np.flatnonzero(mask[built:]) + built
            tail_values = [column_values[r] for r in tail_rows.tolist()]
        threshold = (self._search_settings.get(name) or {}).get("full_scan_threshold", SPARSE_FULL_SCAN_THRESHOLD)
        if predicate is not None and int(np.count_nonzero(mask[:built])) < threshold:
            return self._points.search(name, queries, limit, space, predicate, params)
        found = []
        for query in queries:
            example = query.examples[0]
            rows, scores = inverted.search(example.indices, example.values, limit, n, mask)
            if len(tail_rows):
                tail = scoring.search_lists(tail_values, tail_rows, [query], limit, space)[0]
                rows, scores = vector_search.merge((rows, scores), tail, limit)
            found.append((np.asarray(rows, np.int64), np.asarray(scores, np.float32)))
        return self._hits(found)

    # -- info -------------------------------------------------------------------------------

    def indexed_vectors(self) -> int:
        """Live vectors reachable through an index (Qdrant's indexed_vectors_count)."""
        built = self.built_slots
        if built is None:
            return 0
        with self._points.locked_view() as view:
            live = view.live[:built]
            total = 0
            for name, index in self._dense.items():
                present = view.present(name)[:built] & live
                if index.graph is not None:
                    slots = np.unique(index.rows) if index.multi else index.rows  # a point once
                    total += int(np.count_nonzero(present[slots]))
                elif index.tenants:  # m = 0 with payload_m: only the tenants' subgraphs
                    nodes = np.unique(np.concatenate([t.nodes for t in index.tenants.values()]))
                    total += int(np.count_nonzero(present[index.rows[nodes]]))
            for name in self._sparse:
                total += int(np.count_nonzero(view.present(name)[:built] & live))
            return total

    def info(self) -> dict:
        info = self._points.info()
        if self.built_slots is None:
            return info
        info.update(
            segment_type="indexed",
            is_appendable=False,
            index_ram_bytes=sum(i.nbytes for i in self._dense.values())
            + sum(i.nbytes for i in self._sparse.values()),
            indexed_vectors=self.indexed_vectors(),
        )
        return info

    # -- everything else is the store's: points, writes, the optimizer's copy, lifecycle --
    # (Explicit rather than __getattr__, so mypy and `Segment`'s runtime check see them.)

    @property
    def path(self) -> Path:
        return self._points.path

    @property
    def schema(self) -> VectorSchema:
        return self._points.schema

    @property
    def version(self) -> int:
        return self._points.version

    @property
    def persisted_version(self) -> int:
        return self._points.persisted_version

    @property
    def point_count(self) -> int:
        return self._points.point_count

    @property
    def writes(self) -> int:
        """Write calls committed (readers cache what writes invalidate)."""
        return self._points.writes

    def has_point(self, point_id: PointId) -> bool:
        return self._points.has_point(point_id)

    def point_version(self, point_id: PointId) -> int | None:
        return self._points.point_version(point_id)

    def point_versions(self, ids: Sequence[PointId]) -> list[int | None]:
        return self._points.point_versions(ids)

    def vector_names_of(self, point_id: PointId) -> list[str]:
        return self._points.vector_names_of(point_id)

    def retrieve(
        self,
        ids: Iterable[PointId],
        with_payload: PayloadSelection = True,
        with_vectors: VectorSelection = False,
    ) -> list[Record]:
        return self._points.retrieve(ids, with_payload, with_vectors)

    def read_ids(
        self,
        offset: PointId | None = None,
        limit: int | None = None,
        predicate: Predicate | None = None,
    ) -> list[PointId]:
        return self._points.read_ids(offset, limit, predicate)

    def count(self, predicate: Predicate | None = None) -> int:
        return self._points.count(predicate)

    def iter_ids(self) -> Iterator[PointId]:
        return self._points.iter_ids()

    def dense_vectors(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        return self._points.dense_vectors(name)

    def offset_ids(self) -> list[PointId | None]:
        return self._points.offset_ids()

    def facet(self, key: str, predicate: Predicate | None = None) -> dict | None:
        return self._points.facet(key, predicate)

    def read_ordered(
        self, key: str, descending: bool, start_from: float | None, limit: int, predicate: Predicate | None = None
    ) -> list[tuple[float, PointId]] | None:
        return self._points.read_ordered(key, descending, start_from, limit, predicate)

    def estimate_cardinality(self, predicate: PlannedPredicate | None) -> tuple[int, int, int]:
        return self._points.estimate_cardinality(predicate)

    def sparse_statistics(self, name: str, indices: np.ndarray) -> tuple[int, np.ndarray]:
        return self._points.sparse_statistics(name, indices)

    def payload_index_info(self) -> dict:
        return self._points.payload_index_info()

    def vector_bytes(self) -> dict[str, int]:
        return self._points.vector_bytes()

    def slot_counts(self) -> tuple[int, int]:
        return self._points.slot_counts()

    # Writes land in the store. A point whose vectors change moves to a slot past
    # `built_slots` (the exactly-scanned tail); deletions leave graph nodes that are
    # traversed but never returned.

    def upsert_points(self, op_num: int, points: Sequence[PointInput]) -> int:
        return self._points.upsert_points(op_num, points)

    def delete_points(self, op_num: int, ids: Iterable[PointId]) -> int:
        return self._points.delete_points(op_num, ids)

    def update_payload(self, op_num: int, ids: Iterable[PointId], transform: Callable[[dict], dict]) -> int:
        return self._points.update_payload(op_num, ids, transform)

    def update_vectors(self, op_num: int, points: Sequence[tuple[PointId, Mapping[str, VectorValue]]]) -> int:
        return self._points.update_vectors(op_num, points)

    def delete_vectors(self, op_num: int, ids: Iterable[PointId], names: Iterable[str]) -> int:
        return self._points.delete_vectors(op_num, ids, names)

    def advance_version(self, version: int) -> None:
        self._points.advance_version(version)

    def set_payload_indexes(self, fields: Mapping[str, object]) -> None:
        self._points.set_payload_indexes(fields)

    def copy_points(self, records: Sequence[Record]) -> int:
        return self._points.copy_points(records)

    def export_points(self, ids: Iterable[PointId]) -> list[ExportedPoint]:
        return self._points.export_points(ids)

    def import_points(self, points: Sequence[ExportedPoint]) -> int:
        return self._points.import_points(points)

    def discard_points(self, ids: Iterable[PointId]) -> int:
        return self._points.discard_points(ids)

    def start_tracking(self) -> None:
        self._points.start_tracking()

    def take_tracked(self, stop: bool = False) -> list[PointId]:
        return self._points.take_tracked(stop)

    def flush(self, bound: int | None = None) -> int:
        return self._points.flush()  # deletions are in RocksDB with the rest: `bound` is moot

    def close(self) -> None:
        self._points.close()

    def drop(self) -> None:
        self._points.drop()

    def reopen_store(self) -> None:
        self._points.reopen_store()

    def checkpoint(self, target: Path) -> None:
        """The store's checkpoint (AppendableSegment.checkpoint) plus the index files and
        `segment.json`. Index files are never changed once `segment.json` names them, so
        they are hard-linked (copied across file systems)."""
        target = Path(target)
        self._points.checkpoint(target)
        if self.built_slots is None:
            return
        index_dir = self.path / INDEX_DIR
        for directory, _dirs, files in os.walk(index_dir):
            relative = Path(directory).relative_to(self.path)
            (target / relative).mkdir(parents=True, exist_ok=True)
            for name in files:
                _link_or_copy(Path(directory) / name, target / relative / name)
        shutil.copy2(self.path / SEGMENT_FILE, target / SEGMENT_FILE)


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _save_graph(directory: Path, graph: HnswIndex) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, array in graph.arrays().items():
        np.save(directory / f"{name}.npy", array)


def _load_graph(directory: Path, vectors: np.ndarray, mmap: MmapMode) -> HnswIndex:
    arrays = {name: np.load(directory / f"{name}.npy", mmap_mode=mmap) for name in HnswIndex.ARRAY_NAMES}
    return HnswIndex.from_arrays(arrays, vectors, check=True)


def _shares_storage(spec, wanted: dict, rows: np.ndarray) -> bool:
    """Whether a graph can use the segment's vector matrix itself: float32 storage kept in
    RAM, and nodes that are the first slots in order (every point has the vector)."""
    return spec.datatype == "float32" and not spec.multivector and not wanted.get("on_disk") and is_identity(rows)


def _always_ram(wanted: dict) -> bool:
    """`always_ram` of a QuantizationConfig ({"scalar": {...}} or the like)."""
    config = wanted.get("quantization") or {}
    return any(bool((value or {}).get("always_ram")) for value in config.values())
