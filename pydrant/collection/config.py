"""A collection's configuration as a plain dict in the shape of the API's `CollectionConfig`.

`http/collections.py` validates the request with the API models and hands plain JSON
here; this module fills defaults (from the server settings, as Qdrant fills them from its
config file), applies PATCH diffs and derives the engine's `VectorSchema`. The stored form
is exactly what `GET /collections/{name}` returns under `config`.

Defaults are not spelled here: they are the server settings' (pydrant/config.py, Qdrant's
config.yaml values), mapped to the API's field names by `CollectionDefaults.from_settings`.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field

from pydrant.config import DEFAULTS, SPARSE_FULL_SCAN_THRESHOLD, Settings
from pydrant.errors import BadInput, ValidationFailed
from pydrant.segments.types import (
    DEFAULT_VECTOR,
    DenseVectorSpec,
    SparseVectorSpec,
    VectorSchema,
)


# Qdrant's WalConfig default; config.yaml has no setting for it.
WAL_RETAIN_CLOSED = 1
# Qdrant's `VectorParams.size` range (validate_nonzerou64_range_min_1_max_65536).
MAX_VECTOR_SIZE = 65536


def _hnsw_config(settings: Settings) -> dict:
    hnsw = settings.storage.hnsw_index
    return {
        "m": hnsw.m,
        "ef_construct": hnsw.ef_construct,
        "full_scan_threshold": hnsw.full_scan_threshold_kb,
        "max_indexing_threads": hnsw.max_indexing_threads,
        "on_disk": bool(hnsw.on_disk),
        **({"payload_m": hnsw.payload_m} if hnsw.payload_m is not None else {}),
    }


def _optimizer_config(settings: Settings) -> dict:
    opt = settings.storage.optimizers
    return {
        "deleted_threshold": opt.deleted_threshold,
        "vacuum_min_vector_number": opt.vacuum_min_vector_number,
        "default_segment_number": opt.default_segment_number,
        "max_segment_size": opt.max_segment_size_kb,
        "memmap_threshold": opt.memmap_threshold_kb,
        "indexing_threshold": opt.indexing_threshold_kb,
        "flush_interval_sec": opt.flush_interval_sec,
        "max_optimization_threads": opt.max_optimization_threads,
    }


def _wal_config(settings: Settings) -> dict:
    wal = settings.storage.wal
    return {
        "wal_capacity_mb": wal.wal_capacity_mb,
        "wal_segments_ahead": wal.wal_segments_ahead,
        "wal_retain_closed": WAL_RETAIN_CLOSED,
    }


@dataclass(frozen=True)
class CollectionDefaults:
    """The server-wide defaults a new collection starts from, in the API's shape.

    `CollectionDefaults()` holds the server settings' own defaults (Qdrant's config.yaml
    values); a server builds its own with `from_settings` from the settings it loaded.
    """

    hnsw_config: dict = field(default_factory=lambda: _hnsw_config(DEFAULTS))
    optimizer_config: dict = field(default_factory=lambda: _optimizer_config(DEFAULTS))
    wal_config: dict = field(default_factory=lambda: _wal_config(DEFAULTS))
    on_disk_payload: bool = DEFAULTS.storage.on_disk_payload
    # Not taken from the settings by `from_settings` (pydrant does not act on them yet).
    replication_factor: int = DEFAULTS.storage.collection.replication_factor
    write_consistency_factor: int = DEFAULTS.storage.collection.write_consistency_factor
    vectors_on_disk: bool | None = DEFAULTS.storage.collection.vectors.on_disk
    quantization_config: dict | None = DEFAULTS.storage.collection.quantization  # for collections created without one
    # storage.collection.strict_mode: the fields set there (a request's strict_mode_config
    # is laid over them, as Qdrant's create_collection does `default.update(&diff)`).
    strict_mode_config: dict = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings) -> CollectionDefaults:
        """The defaults of a server started with `settings` (storage.hnsw_index,
        storage.optimizers, storage.wal, storage.on_disk_payload, storage.collection.quantization,
        storage.collection.strict_mode)."""
        strict_mode = dataclasses.asdict(settings.storage.collection.strict_mode)
        return cls(
            hnsw_config=_hnsw_config(settings),
            optimizer_config=_optimizer_config(settings),
            wal_config=_wal_config(settings),
            on_disk_payload=settings.storage.on_disk_payload,
            quantization_config=settings.storage.collection.quantization,
            strict_mode_config={key: value for key, value in strict_mode.items() if value is not None},
        )


def check_vector_sizes(vectors: dict | None) -> None:
    """Qdrant's validation of `VectorParams.size` (1..=65536), with its 422 text. The
    spec states only the minimum, so the request models let larger sizes through. A named
    vector's path has `?` where Qdrant's `validate_iter` names every map entry so."""
    if not vectors:
        return
    single = _is_single_vector(vectors)
    for _, params in iter_dense_params(vectors):
        size = params.get("size") if isinstance(params, dict) else None
        if isinstance(size, int) and not isinstance(size, bool) and not 1 <= size <= MAX_VECTOR_SIZE:
            path = "vectors.size" if single else "vectors.?.size"
            raise ValidationFailed(
                f"Validation error in JSON body: [{path}: value {size} invalid, must be from 1 to {MAX_VECTOR_SIZE}]"
            )


def build_config(request: dict, defaults: CollectionDefaults) -> dict:
    """The stored config of a new collection from a `CreateCollection` body (plain JSON).

    Per-vector `hnsw_config`, `quantization_config`, `on_disk`, `datatype` and
    `multivector_config` are kept as given and reported back as Qdrant reports them: an
    empty per-vector `hnsw_config` is left out (Qdrant's `is_hnsw_diff_empty`)."""
    vectors = copy.deepcopy(request.get("vectors", {}))
    if vectors is None:
        vectors = {}
    check_vector_sizes(vectors)
    _check_vectors(vectors)
    for _, params in iter_dense_params(vectors):
        _drop_empty_hnsw(params)
    params = {
        "vectors": vectors,
        "shard_number": request.get("shard_number") or 1,
        "replication_factor": request.get("replication_factor") or defaults.replication_factor,
        "write_consistency_factor": request.get("write_consistency_factor")
        or defaults.write_consistency_factor,
        "on_disk_payload": request.get("on_disk_payload", defaults.on_disk_payload),
    }
    if request.get("sharding_method") is not None:
        params["sharding_method"] = request["sharding_method"]
    if request.get("sparse_vectors"):
        params["sparse_vectors"] = request["sparse_vectors"]
    _check_no_name_clash(vectors, params.get("sparse_vectors", {}))
    config = {
        "params": params,
        "hnsw_config": _merged(defaults.hnsw_config, request.get("hnsw_config")),
        "optimizer_config": _merged(defaults.optimizer_config, _optimizer_diff(request)),
        "wal_config": _merged(defaults.wal_config, request.get("wal_config")),
        "quantization_config": request.get("quantization_config") or defaults.quantization_config,
        "strict_mode_config": _merged(_merged({"enabled": False}, defaults.strict_mode_config), request.get("strict_mode_config")),
    }
    if request.get("metadata") is not None:
        config["metadata"] = request["metadata"]
    return config


def _optimizer_diff(request: dict) -> dict | None:
    diff = request.get("optimizers_config")
    if diff is None:
        return None
    # `max_optimization_threads` may be given as the string "auto" (= null, decided by the server)
    diff = dict(diff)
    if diff.get("max_optimization_threads") == "auto":
        diff["max_optimization_threads"] = None
    return diff


def _merged(base: dict, diff: dict | None) -> dict:
    result = copy.deepcopy(base)
    for key, value in (diff or {}).items():
        if value is not None:
            result[key] = copy.deepcopy(value)
    return result


def _is_single_vector(vectors: dict) -> bool:
    return "size" in vectors and "distance" in vectors


def _check_vectors(vectors: dict) -> None:
    for name, params in iter_dense_params(vectors):
        if params.get("datatype") == "uint8" and params["distance"] not in ("Dot", "Euclid", "Manhattan", "Cosine"):
            raise BadInput(f"Unsupported distance for uint8 vector {name!r}")


def check_init_from(source_config: dict, request: dict) -> None:
    """Qdrant's check before `init_from` copies a collection (`check_collections_compatibility`):
    every dense vector of the source must be in the new collection with the same size and
    distance (both single-vector or both named), and every sparse vector of the source
    must be in the new one when both have sparse vectors. Extra vectors are fine.

    pydrant refuses one case Qdrant lets through and then fails in the background: a
    source with sparse vectors and a new collection with none (its points could not be
    copied); the message is Qdrant's for a missing vector."""
    if (request.get("sharding_method") or "auto") == "custom":
        raise BadInput("Wrong input: Can't initialize collection from another collection with custom sharding method")
    origin = source_config["params"].get("vectors") or {}
    other = request.get("vectors") or {}
    origin_single, other_single = _is_single_vector(origin), _is_single_vector(other)
    if origin_single != other_single:
        this_names = ", ".join(name for name, _ in iter_dense_params(origin))
        other_names = ", ".join(name for name, _ in iter_dense_params(other))
        raise BadInput(
            f"Wrong input: Vectors configuration is not compatible: origin collection have vectors "
            f"[{this_names}], while other vectors [{other_names}]"
        )
    other_params = dict(iter_dense_params(other))
    for name, params in sorted(iter_dense_params(origin)):
        theirs = other_params.get(name)
        if theirs is None:
            raise BadInput(_missing_vector(name))
        if params["size"] != theirs["size"]:
            raise BadInput(
                f"Wrong input: Vectors configuration is not compatible: origin vector {name} size: "
                f"{params['size']}, while other vector size: {theirs['size']}"
            )
        if params["distance"] != theirs["distance"]:
            raise BadInput(
                f"Wrong input: Vectors configuration is not compatible: origin vector {name} distance: "
                f"{params['distance']}, while other vector distance: {theirs['distance']}"
            )
    origin_sparse = source_config["params"].get("sparse_vectors") or {}
    other_sparse = request.get("sparse_vectors") or {}
    for name in sorted(origin_sparse):
        if name not in other_sparse:
            raise BadInput(_missing_vector(name))


def _missing_vector(name: str) -> str:
    return (
        f"Wrong input: Vectors configuration is not compatible: origin collection have vector {name}, "
        "while other collection does not"
    )


def _check_no_name_clash(vectors: dict, sparse: dict) -> None:
    dense_names = {name for name, _ in iter_dense_params(vectors)}
    clash = dense_names & set(sparse)
    if clash:
        name = sorted(clash)[0]
        raise BadInput(f"Wrong input: Vector name {name!r} is used both for dense and sparse vectors")


def iter_dense_params(vectors: dict):
    """(name, VectorParams dict) for every dense vector; the unnamed one is named ""."""
    if _is_single_vector(vectors):
        yield DEFAULT_VECTOR, vectors
    else:
        yield from vectors.items()


def vector_schema(config: dict) -> VectorSchema:
    """The engine's view of which vectors a collection stores."""
    params = config["params"]
    dense = {
        name: DenseVectorSpec(
            size=p["size"],
            distance=p["distance"],
            datatype=p.get("datatype") or "float32",
            multivector=p.get("multivector_config") is not None,
            on_disk=bool(p.get("on_disk")),
        )
        for name, p in iter_dense_params(params.get("vectors") or {})
    }
    sparse = {
        name: SparseVectorSpec(
            modifier=(p or {}).get("modifier") if (p or {}).get("modifier") not in (None, "none") else None,
            on_disk=bool(((p or {}).get("index") or {}).get("on_disk")),
        )
        for name, p in (params.get("sparse_vectors") or {}).items()
    }
    return VectorSchema(dense=dense, sparse=sparse)


def apply_update(config: dict, update: dict) -> dict:
    """The config after a `PATCH /collections/{name}` body (plain JSON); the input is untouched.

    Vector storage (size, distance, datatype, multivector) cannot change, as in Qdrant; HNSW,
    quantization and on_disk per vector can. Naming a vector the collection lacks is 400.
    """
    new = copy.deepcopy(config)
    params = new["params"]
    if update.get("vectors"):
        _update_dense_vectors(params, update["vectors"])
    if update.get("sparse_vectors"):
        _update_sparse_vectors(params, update["sparse_vectors"])
    for key, value in (update.get("params") or {}).items():
        if value is not None:
            params[key] = value
    if update.get("hnsw_config"):
        new["hnsw_config"] = _merged(new["hnsw_config"], update["hnsw_config"])
    if update.get("optimizers_config"):
        new["optimizer_config"] = _merged(new["optimizer_config"], _optimizer_diff(update))
    if "quantization_config" in update:
        new["quantization_config"] = _quantization_after(update["quantization_config"], new)
    if update.get("strict_mode_config"):
        new["strict_mode_config"] = _merged(new.get("strict_mode_config") or {}, update["strict_mode_config"])
    if update.get("metadata") is not None:
        new["metadata"] = merged_metadata(new.get("metadata"), update["metadata"])
    return new


def merged_metadata(current: dict | None, update: dict) -> dict:
    """Qdrant's `Collection::update_metadata`: with no metadata yet, the update becomes it
    as given; otherwise it is merged in key by key (`merge_map`): a key set to null is
    removed, any other value replaces the key's value whole (no deep merge)."""
    if current is None:
        return copy.deepcopy(update)
    merged = copy.deepcopy(current)
    for key, value in update.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _drop_empty_hnsw(params: dict) -> None:
    # Qdrant does not serialize a per-vector hnsw_config with no field set, and an empty
    # diff changes nothing that is built: left out, it is exactly what Qdrant reports.
    if isinstance(params, dict) and params.get("hnsw_config") is not None and not any(
        v is not None for v in params["hnsw_config"].values()
    ):
        params.pop("hnsw_config")


def _quantization_after(value, config: dict):
    # QuantizationConfigDiff: a config replaces the current one, "Disabled" removes it
    if value == "Disabled":
        return None
    return value if value is not None else config.get("quantization_config")


def _update_dense_vectors(params: dict, diffs: dict) -> None:
    vectors = params["vectors"]
    single = _is_single_vector(vectors)
    for name, diff in diffs.items():
        if single and name == DEFAULT_VECTOR:
            target = vectors
        elif not single and name in vectors:
            target = vectors[name]
        else:
            raise BadInput(f"Wrong input: Not existing vector name error: {name}")
        for key, value in (diff or {}).items():
            if key == "quantization_config":
                target[key] = _quantization_after(value, target)
                if target[key] is None:
                    target.pop(key)
            elif key == "hnsw_config" and value is not None:
                target[key] = _merged(target.get(key) or {}, value)
                _drop_empty_hnsw(target)
            elif value is not None:
                target[key] = value


def _update_sparse_vectors(params: dict, diffs: dict) -> None:
    sparse = params.get("sparse_vectors") or {}
    for name, diff in diffs.items():
        if name not in sparse:
            raise BadInput(f"Wrong input: Not existing vector name error: {name}")
        current = sparse[name] or {}
        for key, value in (diff or {}).items():
            if key == "index" and value is not None:
                current["index"] = _merged(current.get("index") or {}, value)
            elif value is not None:
                current[key] = value
        sparse[name] = current


# -- what the optimizer builds and searches read (pydrant/optimizer, segments/indexed.py) --

# hnsw_config keys that change what a graph is; the others only steer searches or builds.
_GRAPH_KEYS = ("m", "ef_construct", "payload_m", "on_disk")


def index_settings(config: dict) -> dict:
    """What an indexed segment of this collection should be built with, per vector:
    {"dense": {name: {"hnsw": {m, ef_construct, payload_m?, on_disk}, "quantization": config
    or None, "on_disk": bool}}, "sparse": {name: {"index": {...}}}}. A segment built with
    other settings is rebuilt by the optimizer (Qdrant's config-mismatch optimizer)."""
    collection_hnsw = config.get("hnsw_config") or {}
    collection_quantization = config.get("quantization_config")
    params = config["params"]
    dense = {}
    for name, vector in iter_dense_params(params.get("vectors") or {}):
        hnsw = {**collection_hnsw, **{k: v for k, v in (vector.get("hnsw_config") or {}).items() if v is not None}}
        quantization = vector.get("quantization_config") or collection_quantization
        dense[name] = {
            "hnsw": {key: hnsw[key] for key in _GRAPH_KEYS if hnsw.get(key) is not None},
            "quantization": quantization,
            "on_disk": bool(vector.get("on_disk")),
        }
    sparse = {
        name: {"index": {k: v for k, v in ((p or {}).get("index") or {}).items() if k != "full_scan_threshold"}}
        for name, p in (params.get("sparse_vectors") or {}).items()
    }
    return {"dense": dense, "sparse": sparse}


def search_settings(config: dict) -> dict:
    """name -> {"full_scan_threshold": ...}: search planning settings (no rebuild needed);
    kB of vectors for dense vectors, a number of vectors for sparse ones, as in Qdrant."""
    collection_hnsw = config.get("hnsw_config") or {}
    settings = {}
    for name, vector in iter_dense_params(config["params"].get("vectors") or {}):
        threshold = (vector.get("hnsw_config") or {}).get("full_scan_threshold")
        if threshold is None:
            threshold = collection_hnsw.get("full_scan_threshold", DEFAULTS.storage.hnsw_index.full_scan_threshold_kb)
        settings[name] = {"full_scan_threshold": threshold}
    for name, params in (config["params"].get("sparse_vectors") or {}).items():
        threshold = ((params or {}).get("index") or {}).get("full_scan_threshold")
        settings[name] = {"full_scan_threshold": SPARSE_FULL_SCAN_THRESHOLD if threshold is None else threshold}
    return settings


def indexing_threads(config: dict) -> int | None:
    """Threads for one graph build: hnsw `max_indexing_threads` (0 = every core = None)."""
    threads = (config.get("hnsw_config") or {}).get("max_indexing_threads") or 0
    return None if threads <= 0 else threads
