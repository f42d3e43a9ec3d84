"""Writing an immutable segment (`immutable.py`): one pass over the copied points, then the
indexes over the mapped result, then `segment.json` last.

    builder = ImmutableBuilder(path, schema, payload_fields)
    builder.add(source.export_points(ids))        # any number of batches
    builder.advance_version(max source version)
    segment = builder.finish(settings, threads, should_stop)   # or builder.abort()

`add` streams every array to its pack with plain writes (the page cache holds the data,
not the builder's heap): ids and versions (`idmap.IdArraysBuilder`, 20-28 bytes per point
in RAM until `finish`), the payload CBOR bytes as they are, and per vector its rows. Each
payload with bytes is decoded once for the payload indexes
(`disk_payload_indexes.DiskPayloadIndexBuilder`) when there are any. Ids must be unique
over all batches (the caller picks the newest copy of a point, as `optimizer._newest`);
a repeated id fails `finish` with ValueError naming it.

`finish(settings, ...)` takes what `IndexedSegment.build_indexes` takes (the collection's
`index_settings()`): it closes the vector packs, maps them, builds each dense vector's
HNSW graph over the *mapped* rows (a float32 copy in its own pack first when the storage
dtype is not float32), quantized codes, tenant subgraphs (their vectors gathered into the
tenants pack, so opening copies nothing), the sparse inverted indexes, then writes the
flags file and `state.json`, fsyncs every directory and writes `segment.json` last: its
presence commits the build. A crash or `abort()` before that leaves a directory without
`segment.json`, which the caller removes. Blocking CPU and disk: run it in a worker thread.
"""

from __future__ import annotations

import array
import logging
import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import cbor2
import numpy as np

from pydrant.config import DEFAULTS
from pydrant.fsutil import fsync_dir, write_json_atomic
from pydrant.segments import distance as metric
from pydrant.segments import vector_search
from pydrant.segments.base import ExportedPoint
from pydrant.segments.disk_payload_indexes import DiskPayloadIndexBuilder, open_disk_indexes
from pydrant.segments.field_index import schema_params, schema_type
from pydrant.segments.hnsw import HnswIndex
from pydrant.segments.idmap import IdArraysBuilder
from pydrant.segments.immutable import (
    FORMAT,
    IDS_PACK,
    PAYLOAD_PACK,
    SEGMENT_FILE,
    STATE_FILE,
    ImmutableSegment,
    codes_pack,
    flags_file_name,
    graph_pack,
    graph_vectors_pack,
    schema_to_json,
    sparse_index_pack,
    tenants_pack,
    vector_pack,
)
from pydrant.segments.packfile import PackTable, PackWriter, open_pack
from pydrant.segments.quantization import QuantizedVectors
from pydrant.segments.sparse_index import SparseInvertedIndex
from pydrant.segments.types import SparseVector, VectorSchema

log = logging.getLogger("pydrant.segments")

_HNSW = DEFAULTS.storage.hnsw_index
GRAPH_SEED = 0  # as IndexedSegment: a rebuild of the same points gives the same graph
_BLOCK_ROWS = 16384  # rows per step when converting mapped rows to float32


class _DenseWriter:
    """A dense single vector: its rows streamed to `data`, the slots having it kept as a
    typed array (4 bytes per point) and written as `slots` at the end."""

    def __init__(self, path: Path, dtype: np.dtype, dim: int):
        self.pack = PackWriter(path)
        self.dtype = dtype
        self.pack.begin("data", dtype, (dim,))
        self.slots = array.array("i")

    def add(self, slots: list[int], values: list) -> None:
        if values:
            self.pack.append(np.stack([np.asarray(v, dtype=self.dtype) for v in values]))
            self.slots.extend(slots)

    def finish(self, n: int) -> PackTable:
        self.pack.end()
        self.pack.add("slots", np.frombuffer(self.slots, dtype=np.int32) if self.slots else np.zeros(0, np.int32))
        return self.pack.finish()


class _ListWriter:
    """A multi-vector (rows of `dim`) or sparse vector (indices + values) per point: the
    main array streamed, per-slot `offsets` and `present` kept as typed arrays. Sparse
    values go to a side file while the indices stream (a pack writes one array at a time)
    and are copied into the pack at the end, in blocks."""

    def __init__(self, path: Path, kind: str, dtype: np.dtype | None = None, dim: int = 0):
        self.kind = kind
        self.path = path
        self.pack = PackWriter(path)
        self.dtype = dtype
        if kind == "multi":
            self.pack.begin("data", dtype, (dim,))
            self.sub_slots = array.array("i")
        else:
            self.pack.begin("indices", np.dtype("<u4"))
            self.side_path = path.with_name(path.name + ".values.tmp")
            self.side = open(self.side_path, "wb")
        self.offsets = array.array("Q", [0])
        self.present = bytearray()
        self.total = 0

    def add_absent(self, count: int) -> None:
        self.offsets.extend([self.total] * count)
        self.present.extend(b"\0" * count)

    def add(self, slot: int, value) -> None:
        if self.kind == "multi":
            rows = np.asarray(value, dtype=self.dtype)
            self.pack.append(rows)
            self.sub_slots.extend([slot] * len(rows))
            self.total += len(rows)
        else:
            assert isinstance(value, SparseVector)
            self.pack.append(np.asarray(value.indices, dtype="<u4"))
            self.side.write(np.asarray(value.values, dtype="<f4").tobytes())
            self.total += len(value.indices)
        self.offsets.append(self.total)
        self.present.append(1)

    def finish(self) -> PackTable:
        self.pack.end()
        if self.kind == "multi":
            self.pack.add("sub_slots", np.frombuffer(self.sub_slots, np.int32) if self.sub_slots else np.zeros(0, np.int32))
        else:
            self.side.close()
            self.pack.begin("values", np.dtype("<f4"))
            block = 1 << 20
            for start in range(0, self.total, block):
                self.pack.append(np.fromfile(self.side_path, dtype="<f4", count=min(block, self.total - start), offset=4 * start))
            self.pack.end()
            os.unlink(self.side_path)
        self.pack.add("offsets", np.frombuffer(self.offsets, dtype=np.uint64))
        self.pack.add("present", np.frombuffer(bytes(self.present), dtype=np.bool_))
        return self.pack.finish()

    def abort(self) -> None:
        self.pack.abort()
        if self.kind == "sparse":
            self.side.close()
            try:
                os.unlink(self.side_path)
            except FileNotFoundError:
                pass


class ImmutableBuilder:
    """Writes a new immutable segment into `path` (module docstring). Not thread-safe:
    one thread adds, then finishes or aborts."""

    def __init__(self, path: str | os.PathLike, schema: VectorSchema, payload_fields: Mapping[str, object]):
        self.path = Path(path)
        if self.path.exists() and any(self.path.iterdir()):
            raise FileExistsError(f"segment directory {self.path} is not empty")
        self.path.mkdir(parents=True, exist_ok=True)
        self.schema = schema
        self.payload_fields = dict(payload_fields)
        self._n = 0
        self._version = 0
        self._search_settings: dict = {}
        self._tables: dict[str, PackTable] = {}
        self._ids = IdArraysBuilder()
        self._payload = PackWriter(self.path / PAYLOAD_PACK)
        self._payload.begin("blob", np.uint8)
        self._payload_offsets = array.array("Q", [0])
        self._payload_bytes = 0
        self._indexes = DiskPayloadIndexBuilder(self.path, self.payload_fields)
        self._decode_payloads = bool(self.payload_fields)
        self._writers: dict[str, _DenseWriter | _ListWriter] = {}
        for name, spec in schema.dense.items():
            (self.path / "vectors").mkdir(exist_ok=True)
            where = self.path / vector_pack(name)
            if spec.multivector:
                self._writers[name] = _ListWriter(where, "multi", spec.dtype, spec.size)
            else:
                self._writers[name] = _DenseWriter(where, spec.dtype, spec.size)
        for name in schema.sparse:
            (self.path / "vectors").mkdir(exist_ok=True)
            self._writers[name] = _ListWriter(self.path / vector_pack(name), "sparse")
        self._finished = False

    def set_search_settings(self, settings: dict) -> None:
        """name -> {"full_scan_threshold": kB}: sizes tenant subgraphs (as IndexedSegment)."""
        self._search_settings = settings

    def advance_version(self, version: int) -> None:
        """The segment's version at open: at least every copied point's version."""
        self._version = max(self._version, int(version))

    def add(self, points: Sequence[ExportedPoint]) -> None:
        """Append `export_points` records (id, version, vectors, payload bytes) as the next
        slots. Vectors must be names of the schema (ValueError otherwise)."""
        if not points:
            return
        first = self._n
        ids, versions, blobs = [], [], []
        per_vector: dict[str, tuple[list[int], list]] = {name: ([], []) for name in self._writers}
        for offset, (point_id, version, vectors, blob) in enumerate(points):
            slot = first + offset
            ids.append(point_id)
            versions.append(version)
            blobs.append(blob)
            for name, value in vectors.items():
                if name not in per_vector:
                    raise ValueError(f"vector `{name}` is not in the segment's schema")
                per_vector[name][0].append(slot)
                per_vector[name][1].append(value)
        self._ids.add_many(ids, versions)
        self._version = max(self._version, max(versions))
        joined = b"".join(blobs)
        if joined:
            self._payload.append(np.frombuffer(joined, dtype=np.uint8))
        for blob in blobs:
            self._payload_bytes += len(blob)
            self._payload_offsets.append(self._payload_bytes)
        if self._decode_payloads:
            for offset, blob in enumerate(blobs):
                if blob:
                    self._indexes.add(first + offset, cbor2.loads(blob))
        for name, (slots, values) in per_vector.items():
            writer = self._writers[name]
            if isinstance(writer, _DenseWriter):
                writer.add(slots, values)
                continue
            at = first
            for slot, value in zip(slots, values):
                writer.add_absent(slot - at)
                writer.add(slot, value)
                at = slot + 1
            writer.add_absent(first + len(points) - at)
        self._n += len(points)

    # -- finishing -----------------------------------------------------------------------

    def finish(self, settings: dict, threads: int | None = None, should_stop: Callable[[], bool] | None = None) -> ImmutableSegment:
        """Build the indexes `settings` asks for, write everything durably, `segment.json`
        last, and open the result. `should_stop` is polled by graph builds
        (hnsw.BuildCancelled). On any failure the directory is removed and the error raised."""
        started = time.monotonic()
        try:
            self._write_all(settings, threads, should_stop)
        except BaseException:
            self.abort()
            raise
        self._finished = True
        log.info("segment %s: built %d points in %.1f s (immutable)", self.path.name, self._n, time.monotonic() - started)
        return ImmutableSegment.open(self.path, self.schema)

    def _write_all(self, settings: dict, threads, should_stop) -> None:
        n = self._n
        id_arrays = self._ids.finish()
        with PackWriter(self.path / IDS_PACK) as ids_pack:
            for name, values in id_arrays.items():
                ids_pack.add(name, values)
            self._tables[IDS_PACK] = ids_pack.finish()
        del id_arrays
        self._payload.end()
        self._payload.add("offsets", np.frombuffer(self._payload_offsets, dtype=np.uint64))
        self._tables[PAYLOAD_PACK] = self._payload.finish()
        vectors_meta = {}
        for name, writer in self._writers.items():
            self._tables[vector_pack(name)] = writer.finish(n) if isinstance(writer, _DenseWriter) else writer.finish()
            kind = "sparse" if name in self.schema.sparse else ("multi" if self.schema.dense[name].multivector else "dense")
            vectors_meta[name] = {"kind": kind}
        self._indexes.finish(n)
        meta: dict = {
            "format": FORMAT, "kind": "immutable", "points": n, "created_op": self._version,
            "schema": schema_to_json(self.schema), "settings": settings, "payload_on_disk": True,
            "vectors": vectors_meta, "hnsw": {}, "quantization": {}, "tenants": {}, "sparse_index": {},
        }
        for name, spec in self.schema.dense.items():
            wanted = (settings.get("dense") or {}).get(name) or {}
            self._build_dense(name, spec, wanted, meta, threads, should_stop)
        for name in self.schema.sparse:
            wanted = (settings.get("sparse") or {}).get(name) or {}
            self._build_sparse(name, wanted, meta)
        meta["files"] = {name: table.to_json() for name, table in self._tables.items()}
        flags_name = flags_file_name(self._version, None)
        with open(self.path / flags_name, "wb") as f:
            f.write(bytes(n))
            f.flush()
            os.fsync(f.fileno())
        write_json_atomic(
            self.path / STATE_FILE,
            {"version": self._version, "persisted_version": self._version, "deleted_file": flags_name, "deleted_count": 0},
        )
        for directory in ("vectors", "hnsw", "quantized", "tenants", "sparse_index"):
            if (self.path / directory).exists():
                fsync_dir(self.path / directory)
        fsync_dir(self.path)
        write_json_atomic(self.path / SEGMENT_FILE, meta)  # the commit point

    def _mapped(self, file_name: str) -> dict[str, np.ndarray]:
        return open_pack(self.path / file_name, self._tables[file_name])

    def _write_pack(self, file_name: str, arrays: Mapping[str, np.ndarray]) -> None:
        (self.path / file_name).parent.mkdir(exist_ok=True)
        with PackWriter(self.path / file_name) as pack:
            for name, values in arrays.items():
                pack.add(name, values)
            self._tables[file_name] = pack.finish()

    def _graph_rows(self, name: str, spec, data: np.ndarray) -> tuple[np.ndarray, bool]:
        """The float32 rows a graph of `name` is built and searched over, mapped: the stored
        rows when they are float32, else a float32 (normalised for uint8 Cosine) copy
        written block by block to its own pack. (rows, whether a copy was written)."""
        if spec.datatype == "float32":
            return data, False
        file_name = graph_vectors_pack(name)
        (self.path / file_name).parent.mkdir(exist_ok=True)
        with PackWriter(self.path / file_name) as pack:
            pack.begin("vectors_f32", np.float32, (spec.size,))
            for start in range(0, len(data), _BLOCK_ROWS):
                block = data[start : start + _BLOCK_ROWS]
                pack.append(metric.graph_vectors(block, np.arange(len(block)), spec.distance, spec.datatype))
            pack.end()
            self._tables[file_name] = pack.finish()
        return self._mapped(file_name)["vectors_f32"], True

    def _build_dense(self, name: str, spec, wanted: dict, meta: dict, threads, should_stop) -> None:
        arrays = self._mapped(vector_pack(name))
        data = arrays["data"]
        rows = arrays["sub_slots"] if spec.multivector else arrays["slots"]
        hnsw = wanted.get("hnsw") or {}
        m = int(hnsw.get("m", _HNSW.m))
        ef_construct = int(hnsw.get("ef_construct", _HNSW.ef_construct))
        wants_graph = m >= 2 and len(rows) > 0
        wants_codes = bool(wanted.get("quantization")) and len(rows) > 0
        payload_m = int(hnsw.get("payload_m") or m)
        tenant_fields = self._tenant_fields() if not spec.multivector and payload_m >= 2 and len(rows) else []
        if not (wants_graph or wants_codes or tenant_fields):
            return
        vectors, copied = self._graph_rows(name, spec, data)
        graph = None
        if wants_graph:
            graph = HnswIndex.build(vectors, spec.distance, m, ef_construct, GRAPH_SEED, threads, should_stop)
            self._write_pack(graph_pack(name), graph.arrays())
        meta["hnsw"][name] = {"graph": graph is not None, "vectors_f32": copied}
        if wants_codes:
            quantized = QuantizedVectors.build(wanted["quantization"], vectors, spec.distance)
            self._write_pack(codes_pack(name), quantized.arrays)
            meta["quantization"][name] = quantized.meta()
        if tenant_fields:
            self._build_tenants(name, spec, rows, vectors, payload_m, ef_construct, tenant_fields, meta, threads, should_stop)

    def _tenant_fields(self) -> list[str]:
        """Keys of `is_tenant` keyword / uuid indexes (Qdrant's payload-aware links)."""
        return [
            key for key, schema in self.payload_fields.items()
            if schema_type(schema) in ("keyword", "uuid") and schema_params(schema).get("is_tenant")
        ]

    def _build_tenants(self, name, spec, rows, vectors, m, ef_construct, fields, meta, threads, should_stop) -> None:
        """A subgraph per value of each tenant field holding at least `full_scan_threshold`
        worth of vectors (smaller tenants are scanned exactly anyway), its vectors gathered
        into the tenants pack so opening copies nothing."""
        threshold_kb = (self._search_settings.get(name) or {}).get("full_scan_threshold", _HNSW.full_scan_threshold_kb)
        min_points = max(1, vector_search.full_scan_vectors(threshold_kb, spec.size))
        node_of_slot = np.full(self._n, -1, np.int64)
        node_of_slot[rows] = np.arange(len(rows))
        indexes = open_disk_indexes(self.path, self._n)
        live = np.ones(self._n, dtype=bool)
        entries: list[dict] = []
        arrays: dict[str, np.ndarray] = {}
        for key in fields:
            for value, slots in indexes.value_postings(key, live):
                nodes = node_of_slot[np.asarray(slots, np.int64)]
                nodes = np.sort(nodes[nodes >= 0]).astype(np.int32)
                if len(nodes) < min_points:
                    continue
                gathered = np.ascontiguousarray(vectors[nodes])
                graph = HnswIndex.build(gathered, spec.distance, m, ef_construct, GRAPH_SEED, threads, should_stop)
                prefix = f"{len(entries)}."
                arrays[prefix + "nodes"] = nodes
                arrays[prefix + "vectors"] = gathered
                arrays.update({prefix + array_name: array for array_name, array in graph.arrays().items()})
                entries.append({"key": key, "value": value})
        del indexes
        if entries:
            self._write_pack(tenants_pack(name), arrays)
            meta["tenants"][name] = entries

    def _build_sparse(self, name: str, wanted: dict, meta: dict) -> None:
        arrays = self._mapped(vector_pack(name))
        present, offsets = arrays["present"], arrays["offsets"].astype(np.int64)
        slots = np.flatnonzero(present)
        values = [
            SparseVector(arrays["indices"][offsets[s] : offsets[s + 1]], arrays["values"][offsets[s] : offsets[s + 1]])
            for s in slots.tolist()
        ]
        datatype = (wanted.get("index") or {}).get("datatype") or "float32"
        index = SparseInvertedIndex.build(slots.astype(np.int64), values, datatype)
        self._write_pack(sparse_index_pack(name), index.arrays())
        meta["sparse_index"][name] = index.meta()

    def abort(self) -> None:
        """Stop and remove the directory (idempotent; nothing after a successful finish)."""
        if self._finished:
            return
        self._payload.abort()
        for writer in self._writers.values():
            if isinstance(writer, _DenseWriter):
                writer.pack.abort()
            else:
                writer.abort()
        self._indexes.abort()
        shutil.rmtree(self.path, ignore_errors=True)
