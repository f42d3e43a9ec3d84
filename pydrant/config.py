"""Server settings: Qdrant's `config.yaml` structure, names and defaults (v1.15).

Settings are built in layers, each overriding the one before:

1. the defaults declared below, equal to Qdrant v1.15's `config/config.yaml`;
2. one YAML file: the path given to `load_settings` (`pydrant serve --config PATH`), else
   `config/config.yaml` under the working directory if it exists;
3. environment variables `QDRANT__SECTION__KEY`, then `PYDRANT__SECTION__KEY`, which wins
   when both name the same setting (key names are case-insensitive);
4. explicit overrides, such as the `--host` and `--port` flags of `pydrant serve`.

Every name is checked against the dataclass tree below and every value against its type
and range. An unknown or ill-typed setting raises `ConfigError` naming its dotted path and
where it came from: a misspelt key that silently falls back to its default is worse than a
server that refuses to start.

Some settings are accepted only so that Qdrant configuration files keep working; pydrant
does not act on them yet. `ACTED_ON` lists the ones it does, and docs/configuration.md says
which is which.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "ACTED_ON",
    "ConfigError",
    "DEFAULT_CONFIG_FILE",
    "DEFAULTS",
    "ENV_PREFIXES",
    "SPARSE_FULL_SCAN_THRESHOLD",
    "Settings",
    "load_settings",
    "log_levels",
    "setting_names",
]

# Looked up relative to the working directory, as Qdrant does.
DEFAULT_CONFIG_FILE = Path("config") / "config.yaml"
# Lowest precedence first: PYDRANT__ names override QDRANT__ names.
ENV_PREFIXES = ("QDRANT__", "PYDRANT__")
ENV_SEPARATOR = "__"


class ConfigError(ValueError):
    """A setting is unknown, ill-typed, out of range or inconsistent; the message names it."""


# --- declaring settings --------------------------------------------------------------------


def setting(default: Any, *, minimum=None, maximum=None, choices=None, check=None) -> Any:
    """A leaf setting with its default and the constraints `load_settings` enforces.

    `choices` match case-insensitively and are stored in the spelling given here;
    `check(value)` may normalise the value or raise ValueError with a reason.
    """
    meta = {"minimum": minimum, "maximum": maximum, "choices": choices, "check": check}
    return field(default=default, metadata=meta)


def section(cls: type) -> Any:
    """A nested section, defaulting to all of its own defaults."""
    return field(default_factory=cls)


PORT = {"minimum": 0, "maximum": 65535}

# Qdrant's `log_level` is a tracing filter: "INFO", or "INFO,segment=debug" for per-target
# levels. Targets map to Python logger names. Python has no TRACE, so it means DEBUG.
_LEVELS = {
    "trace": logging.DEBUG,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "off": logging.CRITICAL + 10,
}


def log_levels(spec: str) -> tuple[int, dict[str, int]]:
    """Parse a log-level filter into (root level, {logger name: level}); ValueError if bad."""
    root = logging.INFO
    targets: dict[str, int] = {}
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        target, _, level = part.rpartition("=")
        if level.lower() not in _LEVELS:
            raise ValueError(f"has unknown log level {level!r} (use one of {', '.join(_LEVELS)})")
        if target:
            targets[target.strip()] = _LEVELS[level.lower()]
        else:
            root = _LEVELS[level.lower()]
    return root, targets


def _check_log_level(value: str) -> str:
    log_levels(value)
    return value


# --- the settings tree ---------------------------------------------------------------------


@dataclass(frozen=True)
class LoggerOnDiskSettings:
    """Also write logs to a file (Qdrant's `logger.on_disk`)."""

    enabled: bool = setting(False)
    log_file: str | None = setting(None)
    # null: the same level as `log_level`.
    log_level: str | None = setting(None, check=_check_log_level)
    format: str = setting("text", choices=("text", "json"))


@dataclass(frozen=True)
class LoggerSettings:
    format: str = setting("text", choices=("text", "json"))
    on_disk: LoggerOnDiskSettings = section(LoggerOnDiskSettings)


@dataclass(frozen=True)
class S3Settings:
    bucket: str | None = setting(None)
    region: str | None = setting(None)
    access_key: str | None = setting(None)
    secret_key: str | None = setting(None)
    endpoint_url: str | None = setting(None)


@dataclass(frozen=True)
class SnapshotsSettings:
    snapshots_storage: str = setting("local", choices=("local", "s3"))
    s3_config: S3Settings | None = setting(None)


@dataclass(frozen=True)
class WalSettings:
    wal_capacity_mb: int = setting(32, minimum=1)
    wal_segments_ahead: int = setting(0, minimum=0)
    # pydrant's own (Qdrant has none): keep closed WAL files beyond a collection's
    # `wal_retain_closed` count, for point-in-time restore and the change feed. A closed
    # file is kept while any rule wants it: its newest record is younger than
    # `wal_retain_age_sec`, or it is among the newest closed files that fit in
    # `wal_retain_size_mb`. null: the rule keeps nothing. Server-wide, every collection
    # (docs/wal.md "Retention").
    wal_retain_age_sec: int | None = setting(None, minimum=0)
    wal_retain_size_mb: int | None = setting(None, minimum=0)


@dataclass(frozen=True)
class PerformanceSettings:
    max_search_threads: int = setting(0, minimum=0)
    # Across all collections; 0: no limit, chosen to saturate the CPU.
    max_optimization_threads: int = setting(0, minimum=0)
    # Negative: leave that many CPUs free; 0: automatic; positive: exactly that many.
    optimizer_cpu_budget: int = setting(0)
    update_rate_limit: int | None = setting(None, minimum=1)
    incoming_shard_transfers_limit: int | None = setting(1, minimum=0)
    outgoing_shard_transfers_limit: int | None = setting(1, minimum=0)
    async_scorer: bool = setting(False)


@dataclass(frozen=True)
class OptimizersSettings:
    deleted_threshold: float = setting(0.2, minimum=0.0, maximum=1.0)
    vacuum_min_vector_number: int = setting(1000, minimum=100)
    default_segment_number: int = setting(0, minimum=0)
    max_segment_size_kb: int | None = setting(None, minimum=1)
    # Deprecated in Qdrant 1.15 (on-disk storage is chosen per vector), still accepted.
    memmap_threshold_kb: int | None = setting(None, minimum=0)
    indexing_threshold_kb: int | None = setting(10000, minimum=0)
    flush_interval_sec: int = setting(5, minimum=0)
    max_optimization_threads: int | None = setting(None, minimum=0)


@dataclass(frozen=True)
class OptimizersOverwriteSettings:
    """`storage.optimizers_overwrite`: when given, each non-null value here replaces that
    optimizer setting of every collection, whatever the collection was created with."""

    deleted_threshold: float | None = setting(None, minimum=0.0, maximum=1.0)
    vacuum_min_vector_number: int | None = setting(None, minimum=100)
    default_segment_number: int | None = setting(None, minimum=0)
    max_segment_size_kb: int | None = setting(None, minimum=1)
    memmap_threshold_kb: int | None = setting(None, minimum=0)
    indexing_threshold_kb: int | None = setting(None, minimum=0)
    flush_interval_sec: int | None = setting(None, minimum=0)
    max_optimization_threads: int | None = setting(None, minimum=0)


@dataclass(frozen=True)
class HnswIndexSettings:
    m: int = setting(16, minimum=0)
    ef_construct: int = setting(100, minimum=4)
    full_scan_threshold_kb: int = setting(10000, minimum=0)
    max_indexing_threads: int = setting(0, minimum=0)
    on_disk: bool | None = setting(False)
    payload_m: int | None = setting(None, minimum=0)
    copy_vectors: bool | None = setting(None)


@dataclass(frozen=True)
class CollectionVectorsSettings:
    on_disk: bool | None = setting(None)


@dataclass(frozen=True)
class StrictModeSettings:
    """Default strict mode of new collections; the fields of the API's StrictModeConfig."""

    enabled: bool | None = setting(None)
    max_query_limit: int | None = setting(None, minimum=1)
    max_timeout: int | None = setting(None, minimum=1)
    unindexed_filtering_retrieve: bool | None = setting(None)
    unindexed_filtering_update: bool | None = setting(None)
    search_max_hnsw_ef: int | None = setting(None, minimum=0)
    search_allow_exact: bool | None = setting(None)
    search_max_oversampling: float | None = setting(None, minimum=0.0)
    upsert_max_batchsize: int | None = setting(None, minimum=0)
    max_collection_vector_size_bytes: int | None = setting(None, minimum=0)
    read_rate_limit: int | None = setting(None, minimum=1)
    write_rate_limit: int | None = setting(None, minimum=1)
    max_collection_payload_size_bytes: int | None = setting(None, minimum=0)
    max_points_count: int | None = setting(None, minimum=1)
    filter_max_conditions: int | None = setting(None, minimum=0)
    condition_max_size: int | None = setting(None, minimum=0)
    # {vector name: {max_vectors: n}} and {vector name: {max_length: n}}, as in the API.
    multivector_config: dict | None = setting(None)
    sparse_config: dict | None = setting(None)
    max_payload_index_count: int | None = setting(None, minimum=0)


def _check_quantization(value: dict) -> dict:
    # The API's QuantizationConfig is exactly one of these keys; its inner fields are
    # checked where a collection is created, with the API's own models.
    kinds = ("scalar", "product", "binary")
    if len(value) != 1 or next(iter(value)) not in kinds:
        raise ValueError(f"must have exactly one of the keys {', '.join(kinds)}")
    return value


@dataclass(frozen=True)
class CollectionSettings:
    """Defaults of new collections."""

    replication_factor: int = setting(1, minimum=1)
    write_consistency_factor: int = setting(1, minimum=1)
    vectors: CollectionVectorsSettings = section(CollectionVectorsSettings)
    shard_number_per_node: int = setting(1, minimum=1)
    quantization: dict | None = setting(None, check=_check_quantization)
    strict_mode: StrictModeSettings = section(StrictModeSettings)


@dataclass(frozen=True)
class StorageSettings:
    storage_path: str = setting("./storage")
    snapshots_path: str = setting("./snapshots")
    snapshots_config: SnapshotsSettings = section(SnapshotsSettings)
    # null: temporary files go under storage_path.
    temp_path: str | None = setting(None)
    on_disk_payload: bool = setting(True)
    update_concurrency: int | None = setting(None, minimum=1)
    wal: WalSettings = section(WalSettings)
    node_type: str = setting("Normal", choices=("Normal", "Listener"))
    performance: PerformanceSettings = section(PerformanceSettings)
    optimizers: OptimizersSettings = section(OptimizersSettings)
    optimizers_overwrite: OptimizersOverwriteSettings | None = setting(None)
    hnsw_index: HnswIndexSettings = section(HnswIndexSettings)
    shard_transfer_method: str | None = setting(
        None, choices=("stream_records", "snapshot", "wal_delta", "resharding_stream_records")
    )
    collection: CollectionSettings = section(CollectionSettings)
    max_collections: int | None = setting(None, minimum=1)
    # pydrant's own (Qdrant has no such setting): free disk space, in MB, below which a
    # collection refuses writes before they reach its WAL. null: Qdrant's rule, 2 x the
    # collection's wal_capacity_mb; 0: never refuse (collection/diskspace.py).
    min_free_disk_mb: int | None = setting(None, minimum=0)


@dataclass(frozen=True)
class ServiceSettings:
    max_request_size_mb: int = setting(32, minimum=1)
    max_workers: int | None = setting(0, minimum=0)
    host: str = setting("0.0.0.0")
    http_port: int = setting(6333, **PORT)
    # null: gRPC disabled. pydrant serves REST only.
    grpc_port: int | None = setting(6334, **PORT)
    enable_cors: bool = setting(True)
    enable_tls: bool = setting(False)
    verify_https_client_certificate: bool = setting(False)
    api_key: str | None = setting(None)
    read_only_api_key: str | None = setting(None)
    jwt_rbac: bool | None = setting(None)
    hide_jwt_dashboard: bool | None = setting(None)
    static_content_dir: str | None = setting(None)
    enable_static_content: bool | None = setting(None)
    slow_query_secs: float | None = setting(None, minimum=0.0)
    hardware_reporting: bool | None = setting(None)
    metrics_prefix: str | None = setting(None)


@dataclass(frozen=True)
class P2pSettings:
    port: int | None = setting(6335, **PORT)
    connection_pool_size: int = setting(2, minimum=1)
    enable_tls: bool = setting(False)


@dataclass(frozen=True)
class ConsensusSettings:
    max_message_queue_size: int = setting(100, minimum=0)
    tick_period_ms: int = setting(100, minimum=1)
    bootstrap_timeout_sec: int = setting(15, minimum=1)
    message_timeout_ticks: int = setting(10, minimum=1)
    compact_wal_entries: int = setting(128, minimum=0)


@dataclass(frozen=True)
class ClusterSettings:
    enabled: bool = setting(False)
    peer_id: int | None = setting(None, minimum=1, maximum=(1 << 53) - 1)
    grpc_timeout_ms: int = setting(60_000, minimum=1)
    connection_timeout_ms: int = setting(2_000, minimum=1)
    p2p: P2pSettings = section(P2pSettings)
    consensus: ConsensusSettings = section(ConsensusSettings)
    resharding_enabled: bool = setting(False)


@dataclass(frozen=True)
class TlsSettings:
    cert: str | None = setting("./tls/cert.pem")
    key: str | None = setting("./tls/key.pem")
    ca_cert: str | None = setting("./tls/cacert.pem")
    # Seconds between re-reads of the certificate files; null: never.
    cert_ttl: int | None = setting(3600, minimum=1)


@dataclass(frozen=True)
class Settings:
    log_level: str = setting("INFO", check=_check_log_level)
    logger: LoggerSettings = section(LoggerSettings)
    storage: StorageSettings = section(StorageSettings)
    service: ServiceSettings = section(ServiceSettings)
    cluster: ClusterSettings = section(ClusterSettings)
    telemetry_disabled: bool = setting(False)
    tls: TlsSettings = section(TlsSettings)

    def to_dict(self) -> dict:
        """Plain nested dicts, in the shape of config.yaml."""
        return dataclasses.asdict(self)

    def changed_but_not_acted_on(self) -> list[str]:
        """Dotted names set away from their defaults that pydrant does not act on yet."""
        current, default = _flatten(self.to_dict()), _flatten(DEFAULTS.to_dict())
        changed = (name for name, value in current.items() if value != default.get(name))
        return sorted(name for name in changed if name not in ACTED_ON)


# Settings that change what pydrant does today. Update this set when a module starts using a
# setting: `pydrant serve` warns about any other setting moved away from its default, and
# docs/configuration.md marks the rest as accepted but not used yet.
ACTED_ON = frozenset(
    {
        "log_level",
        "logger.format",
        "logger.on_disk.enabled",
        "logger.on_disk.log_file",
        "logger.on_disk.log_level",
        "logger.on_disk.format",
        "storage.storage_path",
        "storage.snapshots_path",  # collection, shard and full snapshots (docs/snapshots.md)
        "storage.wal.wal_capacity_mb",
        "storage.wal.wal_segments_ahead",
        "storage.wal.wal_retain_age_sec",
        "storage.wal.wal_retain_size_mb",
        "storage.min_free_disk_mb",
        "storage.optimizers.flush_interval_sec",
        # defaults of new collections' optimizer_config and hnsw_config, which the optimizer
        # and the indexed segments act on (docs/optimizer.md)
        "storage.optimizers.deleted_threshold",
        "storage.optimizers.vacuum_min_vector_number",
        "storage.optimizers.default_segment_number",
        "storage.optimizers.max_segment_size_kb",
        "storage.optimizers.indexing_threshold_kb",
        "storage.optimizers.max_optimization_threads",
        "storage.hnsw_index.m",
        "storage.hnsw_index.ef_construct",
        "storage.hnsw_index.full_scan_threshold_kb",
        "storage.hnsw_index.max_indexing_threads",
        "storage.hnsw_index.on_disk",
        "storage.hnsw_index.payload_m",
        "storage.collection.quantization",
        # the default strict mode of new collections (collection/config.py CollectionDefaults)
        "storage.collection.strict_mode.enabled",
        "storage.collection.strict_mode.max_query_limit",
        "storage.collection.strict_mode.max_timeout",
        "storage.collection.strict_mode.unindexed_filtering_retrieve",
        "storage.collection.strict_mode.unindexed_filtering_update",
        "storage.collection.strict_mode.search_max_hnsw_ef",
        "storage.collection.strict_mode.search_allow_exact",
        "storage.collection.strict_mode.search_max_oversampling",
        "storage.collection.strict_mode.upsert_max_batchsize",
        "storage.collection.strict_mode.max_collection_vector_size_bytes",
        "storage.collection.strict_mode.read_rate_limit",
        "storage.collection.strict_mode.write_rate_limit",
        "storage.collection.strict_mode.max_collection_payload_size_bytes",
        "storage.collection.strict_mode.max_points_count",
        "storage.collection.strict_mode.filter_max_conditions",
        "storage.collection.strict_mode.condition_max_size",
        "storage.collection.strict_mode.multivector_config",
        "storage.collection.strict_mode.sparse_config",
        "storage.collection.strict_mode.max_payload_index_count",
        "service.host",
        "service.http_port",
        "service.max_request_size_mb",
        "service.enable_cors",
        "service.enable_tls",
        "service.verify_https_client_certificate",
        "service.api_key",
        "service.read_only_api_key",
        "service.jwt_rbac",  # JWT access tokens (http/auth.py, docs/security.md)
        "service.slow_query_secs",  # reads slower than this report unindexed filter fields (/issues)
        "tls.cert",
        "tls.key",
        "tls.ca_cert",
        "cluster.peer_id",  # the peer id the cluster endpoints show (storage/peer.py)
    }
)


# The settings' own defaults (no file, no environment): the one copy of Qdrant's config.yaml
# values. New collections take theirs from the loaded settings (collection/config.py
# CollectionDefaults); code that needs a fallback for a setting missing from a stored
# collection config reads it here, e.g. DEFAULTS.storage.hnsw_index.m.
DEFAULTS = Settings()

# Qdrant's default `full_scan_threshold` of a sparse vector index, in vectors (not kB). Not a
# config.yaml setting, but a collection default as the ones above are.
SPARSE_FULL_SCAN_THRESHOLD = 5000


def setting_names() -> list[str]:
    """Every leaf setting's dotted name, in declaration order, including the keys of
    optional sections (such as `storage.snapshots_config.s3_config.bucket`)."""
    return [name for name, _ in _leaves(Settings)]


def _leaves(cls: type, prefix: str = "") -> Iterator[tuple[str, type]]:
    """(dotted name, value type) of every leaf setting under a section class."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        base, _ = _unwrap_optional(hints[f.name])
        if isinstance(base, type) and dataclasses.is_dataclass(base):  # a section class
            yield from _leaves(base, f"{prefix}{f.name}.")
        else:
            yield f"{prefix}{f.name}", base


def _flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}; free-form mapping settings (quantization...) stay whole."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and name not in _MAPPING_SETTINGS:
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


# --- loading -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Given:
    """One value as given by a layer, with where it came from for error messages.

    `text` is set for environment variables: their raw text, kept so that string settings
    take it verbatim ("0123" stays "0123") while others parse it as a YAML scalar.
    """

    value: Any
    source: str
    text: str | None = None


def load_settings(
    config_path: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: dict | None = None,
) -> Settings:
    """Build the settings: defaults <- YAML file <- environment <- overrides.

    `config_path` must exist when given; otherwise `config/config.yaml` under the working
    directory is read if present. `env` defaults to `os.environ`. `overrides` maps names to
    values, nested ({"service": {"http_port": 7000}}) or dotted ({"service.http_port": 7000}).
    Raises ConfigError naming the offending setting.
    """
    layers = [_file_layer(config_path)]
    environment = os.environ if env is None else env
    layers.extend(_env_layer(environment, prefix) for prefix in ENV_PREFIXES)
    layers.append(_overrides_layer(overrides or {}))
    merged: dict = {}
    for layer in layers:
        merged = _merge(merged, layer)
    settings = _build(Settings, merged, "")
    _check_consistency(settings)
    return settings


def _file_layer(config_path: str | Path | None) -> dict:
    if config_path is None:
        if not DEFAULT_CONFIG_FILE.is_file():
            return {}
        path = DEFAULT_CONFIG_FILE
    else:
        path = Path(config_path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ConfigError(f"config file {path} must hold a mapping of settings at its top level")
    return _wrap_tree(document, f"(in {path})", "")


def _wrap_tree(tree: dict, source: str, prefix: str) -> dict:
    """Wrap the leaves of a parsed mapping in _Given, lower-casing setting names.

    Keys inside free-form mappings keep their case: there they are vector names.
    """
    wrapped: dict = {}
    for key, value in tree.items():
        if not isinstance(key, str):
            raise ConfigError(f"unknown setting {prefix + str(key)!r}{_at(source)}")
        if not _inside_mapping_setting(prefix):
            key = key.lower()
        name = prefix + key
        if key in wrapped:
            raise ConfigError(f"setting {name!r} is given twice{_at(source)}")
        if isinstance(value, dict):
            wrapped[key] = _wrap_tree(value, source, f"{name}.")
        else:
            wrapped[key] = _Given(value, source)
    return wrapped


def _inside_mapping_setting(prefix: str) -> bool:
    return any(prefix.startswith(name + ".") for name in _MAPPING_SETTINGS)


def _env_layer(env: Mapping[str, str], prefix: str) -> dict:
    """PREFIX__SECTION__KEY=value -> {"section": {"key": _Given(...)}}."""
    layer: dict = {}
    for name in sorted(env):
        if not name.upper().startswith(prefix):
            continue
        path = name[len(prefix):].lower().split(ENV_SEPARATOR)
        source = f"(environment variable {name})"
        _insert(layer, path, _Given(None, source, text=env[name]), source)
    return layer


OVERRIDE_SOURCE = "(command-line override)"


def _overrides_layer(overrides: Mapping) -> dict:
    """Dotted or nested names -> one nested tree of _Given leaves."""
    layer: dict = {}
    for key, value in overrides.items():
        path = str(key).lower().split(".")
        if isinstance(value, Mapping):
            subtree = _wrap_tree(dict(value), OVERRIDE_SOURCE, ".".join(path) + ".")
            _insert(layer, path, subtree, OVERRIDE_SOURCE)
        else:
            _insert(layer, path, _Given(value, OVERRIDE_SOURCE), OVERRIDE_SOURCE)
    return layer


def _insert(tree: dict, path: list[str], leaf: _Given | dict, source: str) -> None:
    """Put `leaf` at `path`; a value and a section under one name is an error."""
    node = tree
    for depth, key in enumerate(path[:-1]):
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            name = ".".join(path[: depth + 1])
            raise ConfigError(f"setting {name!r} is both a value and a section{_at(source)}")
        node = child
    existing = node.get(path[-1])
    if isinstance(leaf, dict) and isinstance(existing, dict):
        node[path[-1]] = _merge(existing, leaf)
    elif existing is not None and isinstance(existing, dict) != isinstance(leaf, dict):
        raise ConfigError(f"setting {'.'.join(path)!r} is both a value and a section{_at(source)}")
    else:
        node[path[-1]] = leaf


def _merge(base: dict, top: dict) -> dict:
    """Deep merge: mappings merge key by key, anything else in `top` replaces `base`."""
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


# --- building and checking ------------------------------------------------------------------


def _build(cls: type, node: dict, prefix: str):
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}
    for key, given in node.items():
        if key not in known:
            raise ConfigError(f"unknown setting {prefix + key!r}{_where(given)}")
    values = {name: _value(hints[name], known[name], node[name], prefix + name) for name in node}
    return cls(**values)


def _value(annotation, spec: dataclasses.Field, given, name: str):
    base, optional = _unwrap_optional(annotation)
    if isinstance(base, type) and dataclasses.is_dataclass(base):  # a section class
        return _section_value(base, optional, given, name)
    if base is dict:
        value = _mapping_value(optional, given, name)
    else:
        if isinstance(given, dict):
            expected = _describe(base, optional)
            raise ConfigError(f"setting {name!r} must be {expected}, got a mapping{_where(given)}")
        value = _scalar_value(base, optional, given, name)
    return _constrain(spec, value, given, name)


def _section_value(cls: type, optional: bool, given, name: str):
    if isinstance(given, dict):
        return _build(cls, given, name + ".")
    value = _parsed(given, str_setting=False)
    if value is None and optional:
        return None
    if isinstance(value, dict):  # a whole section given as a YAML flow mapping in one variable
        return _build(cls, _wrap_tree(value, given.source, name + "."), name + ".")
    shown = _shown(value, given)
    raise ConfigError(f"setting {name!r} is a section and must be a mapping, got {shown}{_where(given)}")


def _mapping_value(optional: bool, given, name: str):
    if isinstance(given, dict):
        return _unwrap_tree(given)
    value = _parsed(given, str_setting=False)
    if value is None and optional:
        return None
    if not isinstance(value, dict):
        raise ConfigError(f"setting {name!r} must be a mapping, got {_shown(value, given)}{_where(given)}")
    return value


def _unwrap_tree(node: dict) -> dict:
    return {
        key: _unwrap_tree(value) if isinstance(value, dict) else _parsed(value, str_setting=False)
        for key, value in node.items()
    }


_NULL_TEXTS = ("", "~", "null", "Null", "NULL")


def _parsed(given: _Given, *, str_setting: bool):
    """The value a layer gave: YAML and overrides as parsed; environment text as a YAML
    scalar, except that string settings keep the text verbatim (only null words mean null)."""
    if given.text is None:
        return given.value
    if given.text.strip() in _NULL_TEXTS:
        return None
    if str_setting:
        return given.text
    try:
        return yaml.safe_load(given.text)
    except yaml.YAMLError:
        return given.text


def _scalar_value(base: type, optional: bool, given: _Given, name: str):
    value = _parsed(given, str_setting=base is str)
    if value is None and optional:
        return None
    if base is float and isinstance(value, str) and given.text is not None:
        value = _float_or_text(value)  # YAML 1.1 reads "1e3" as a string; Python does not
    if base is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, base) and not (base is int and isinstance(value, bool)):
        return value
    expected, shown = _describe(base, optional), _shown(value, given)
    raise ConfigError(f"setting {name!r} must be {expected}, got {shown}{_where(given)}")


def _float_or_text(text: str):
    try:
        return float(text)
    except ValueError:
        return text


def _constrain(spec: dataclasses.Field, value, given, name: str):
    """Apply a setting's choices, range and check, from its `setting(...)` declaration."""
    if value is None:
        return None
    meta = spec.metadata
    where = _where(given)
    if meta.get("choices"):
        by_lower = {choice.lower(): choice for choice in meta["choices"]}
        if str(value).lower() not in by_lower:
            options = ", ".join(repr(choice) for choice in meta["choices"])
            raise ConfigError(f"setting {name!r} must be one of {options}, got {value!r}{where}")
        value = by_lower[str(value).lower()]
    low, high = meta.get("minimum"), meta.get("maximum")
    if low is not None and high is not None and not low <= value <= high:
        raise ConfigError(f"setting {name!r} must be between {low} and {high}, got {value!r}{where}")
    if low is not None and value < low:
        raise ConfigError(f"setting {name!r} must be at least {low}, got {value!r}{where}")
    if high is not None and value > high:
        raise ConfigError(f"setting {name!r} must be at most {high}, got {value!r}{where}")
    if meta.get("check"):
        try:
            value = meta["check"](value)
        except ValueError as exc:
            raise ConfigError(f"setting {name!r} {exc}, got {value!r}{where}") from exc
    return value


def _check_consistency(settings: Settings) -> None:
    """Rules that span several settings; checked once everything is merged."""
    service, tls, logger = settings.service, settings.tls, settings.logger
    if service.enable_tls:
        for key in ("cert", "key"):
            path = getattr(tls, key)
            if not path:
                raise ConfigError(f"setting 'tls.{key}' must be set when 'service.enable_tls' is true")
            if not Path(path).is_file():
                raise ConfigError(
                    f"setting 'tls.{key}': file {path!r} does not exist ('service.enable_tls' is true)"
                )
    if service.enable_tls and service.verify_https_client_certificate and not tls.ca_cert:
        raise ConfigError(
            "setting 'tls.ca_cert' must be set when 'service.verify_https_client_certificate' is true"
        )
    if logger.on_disk.enabled and not logger.on_disk.log_file:
        raise ConfigError(
            "setting 'logger.on_disk.log_file' must be set when 'logger.on_disk.enabled' is true"
        )
    snapshots = settings.storage.snapshots_config
    bucket = snapshots.s3_config.bucket if snapshots.s3_config else None
    if snapshots.snapshots_storage == "s3" and not bucket:
        raise ConfigError(
            "setting 'storage.snapshots_config.s3_config.bucket' must be set when snapshots_storage is 's3'"
        )


# --- small helpers -------------------------------------------------------------------------


def _unwrap_optional(annotation) -> tuple[Any, bool]:
    """`X | None` -> (X, True); `X` -> (X, False)."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        return members[0], len(members) < len(typing.get_args(annotation))
    return annotation, False


_TYPE_WORDS = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", dict: "a mapping"}


def _describe(base: type, optional: bool) -> str:
    return _TYPE_WORDS[base] + (" or null" if optional else "")


def _shown(value, given) -> str:
    if isinstance(given, _Given) and given.text is not None:
        return repr(given.text)
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return "null" if value is None else repr(value)


def _where(given) -> str:
    """" (environment variable X)": where a value or a section (its first leaf) came from."""
    while isinstance(given, dict) and given:
        given = next(iter(given.values()))
    return _at(given.source) if isinstance(given, _Given) else ""


def _at(source: str) -> str:
    return f" {source}" if source else ""


# Settings whose value is a free-form mapping (quantization...) rather than a section.
_MAPPING_SETTINGS = frozenset(name for name, base in _leaves(Settings) if base is dict)
