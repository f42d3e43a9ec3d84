"""Service API: version, health probes, telemetry, metrics, issues, locks.

`GET /`, `/telemetry` and `/metrics` answer as Qdrant 1.15 does (docs/observability.md):
`/` has exactly Qdrant's keys; telemetry has Qdrant's sections with what each details level
adds (`src/common/telemetry*.rs`) and Qdrant's anonymization (`Anonymize` impls); metrics are
rendered from level-1 telemetry by `metrics.py`. pydrant's own version is in `app` of the
telemetry, in `app_info`/`pydrant_info` and in the `x-pydrant-version` header of every
response.
"""

from __future__ import annotations

import functools
import os
import platform
import random
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from quart import Blueprint, Response, current_app

from pydrant import QDRANT_API_VERSION, __version__
from pydrant.http import spec_models as models
from pydrant.http.context import cluster_state, peer_id, peer_uri, settings, toc
from pydrant.storage.peer import rfc3339_now
from pydrant.http.envelope import body, json_response, off_loop, ok, query_bool, query_int
from pydrant.http.metrics import anonymize_count, rfc3339
from pydrant.http.validation import to_plain
from pydrant.http.auth import caller_is_global, may_read
from pydrant.issues import BOARD, collection_of

blueprint = Blueprint("service", __name__)
NODE_ID = str(uuid.uuid4())
VERSION_HEADER = "x-pydrant-version"
TITLE = "qdrant - vector search engine"


@blueprint.after_app_request
async def version_header(response: Response) -> Response:
    response.headers[VERSION_HEADER] = __version__
    return response


@functools.cache
def build_commit() -> str | None:
    """The git commit pydrant runs from (PYDRANT_COMMIT, else `git rev-parse HEAD` of the
    source tree), None when neither is known — as Qdrant's `commit` without GIT_COMMIT_ID."""
    commit = os.environ.get("PYDRANT_COMMIT")
    if commit:
        return commit
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
            capture_output=True, text=True, timeout=5, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and commit else None


@blueprint.get("/")
async def root():
    # Qdrant's keys only: `version` is the Qdrant API version implemented, so clients'
    # compatibility checks pass; pydrant's own version is in the x-pydrant-version header.
    return json_response({"title": TITLE, "version": QDRANT_API_VERSION, "commit": build_commit()})


def _text(message: str, status: int = 200) -> Response:
    return Response(message, status=status, content_type="text/plain")


@blueprint.get("/healthz")
async def healthz():
    return _text("healthz check passed")


@blueprint.get("/livez")
async def livez():
    return _text("healthz check passed")


@blueprint.get("/readyz")
async def readyz():
    if toc().ready:
        return _text("all shards are ready")
    return _text("some shards are not ready", status=503)


@blueprint.get("/telemetry")
async def telemetry():
    details = query_int("details_level", 0, minimum=0)
    anonymize = query_bool("anonymize", False)
    data = await telemetry_data(details)
    return ok(anonymized(data) if anonymize else data)


@blueprint.get("/metrics")
async def metrics():
    anonymize = query_bool("anonymize", False)
    data = await telemetry_data(1)  # Qdrant renders metrics from level-1 telemetry
    if anonymize:
        data = anonymized(data)
    collections = toc().collections
    running = sum(1 for c in collections.values() if c.optimizer.running is not None)
    text = current_app.extensions["metrics"].render(data, pydrant_families(), anonymize, running)
    return Response(text, content_type="text/plain; version=0.0.4")


# -- telemetry ---------------------------------------------------------------------------


async def telemetry_data(details: int) -> dict:
    """Qdrant's TelemetryData at `details` (0: counts, 1: + features, system, aggregated
    collections, memory, hardware, 2: + full collections, cluster config, 3: + shards)."""
    config = settings()
    # As Qdrant: a collection-scoped token sees only its own collections (names, counts).
    aliases = toc().aliases
    collections = {name: c for name, c in toc().collections.items() if may_read(name, aliases)}
    started = datetime.fromtimestamp(current_app.extensions["started_at"], tz=UTC)
    data: dict = {
        "id": NODE_ID,
        "app": _app_telemetry(details, config, started),
        "collections": await _collections_telemetry(details, config, collections),
        "cluster": await _cluster_telemetry(details, config),
        "requests": {"rest": current_app.extensions["metrics"].rest_telemetry(details >= 1), "grpc": {"responses": {}}},
    }
    if details >= 1:
        memory = _memory_telemetry()
        if memory is not None:
            data["memory"] = memory
        # Qdrant's per-collection hardware counters (hardware_reporting); pydrant measures none.
        data["hardware"] = {"collection_data": {}}
    return data


def _app_telemetry(details: int, config, started: datetime) -> dict:
    app: dict = {"name": "pydrant", "version": __version__}
    if details >= 1:
        app["features"] = {
            "debug": False,
            "service_debug_feature": False,
            "recovery_mode": False,  # pydrant has no recovery mode
            "gpu": False,
            "rocksdb": True,  # segments keep points and payloads in RocksDB
        }
        app["system"] = _system_telemetry()
    if config.service.jwt_rbac is not None:
        app["jwt_rbac"] = bool(config.service.jwt_rbac)
    if config.service.hide_jwt_dashboard is not None:
        app["hide_jwt_dashboard"] = bool(config.service.hide_jwt_dashboard)
    app["startup"] = rfc3339(_round_hundredths(started))
    return app


def _round_hundredths(moment: datetime) -> datetime:
    hundredths = round(moment.microsecond / 10_000)
    return moment.replace(microsecond=0) + timedelta(microseconds=hundredths * 10_000)


def _system_telemetry() -> dict:
    distribution, version = _os_release()
    system = {
        "distribution": distribution,
        "distribution_version": version,
        "is_docker": Path("/.dockerenv").exists(),
        "cores": os.cpu_count(),
        "ram_size": _ram_kib(),
        "disk_size": _disk_kib(),
        "cpu_flags": _cpu_flags(),
        "cpu_endian": "little" if sys.byteorder == "little" else "big",
    }
    return system


@functools.cache
def _os_release() -> tuple[str | None, str | None]:
    """(ID, VERSION_ID) of /etc/os-release as Qdrant reports them; the OS type and release
    where there is none."""
    try:
        release = platform.freedesktop_os_release()
        return release.get("ID"), release.get("VERSION_ID")
    except (OSError, AttributeError):
        return platform.system() or None, platform.release() or None


SIMD_FLAGS = ("sse", "sse2", "avx", "avx2", "fma", "f16c", "avx512f", "neon")  # those Qdrant reports


@functools.cache
def _cpu_flags() -> str:
    """The SIMD features of this CPU that Qdrant's telemetry lists, comma-separated."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return ""
    present = set()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            present.update(line.split(":", 1)[1].split())
            break
    return ",".join(flag for flag in SIMD_FLAGS if flag in present or (flag == "neon" and "asimd" in present))


def _ram_kib() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 1024
    except (ValueError, OSError, AttributeError):
        return None


def _disk_kib() -> int | None:
    try:
        stats = os.statvfs("/")
    except (OSError, AttributeError):
        return None
    return stats.f_blocks * stats.f_frsize // 1024


def _memory_telemetry() -> dict | None:
    """Qdrant's jemalloc statistics, approximated from /proc/self/status (pydrant runs on
    CPython's allocator): allocated and active are the anonymous resident memory, resident
    the whole resident set, retained the virtual size, metadata 0. None off Linux."""
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return None
    fields = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        parts = value.split()
        if parts and parts[0].isdigit():
            fields[key] = int(parts[0]) * 1024  # kB
    anonymous = fields.get("RssAnon", fields.get("VmRSS", 0))
    return {
        "active_bytes": anonymous,
        "allocated_bytes": anonymous,
        "metadata_bytes": 0,
        "resident_bytes": fields.get("VmRSS", 0),
        "retained_bytes": fields.get("VmSize", 0),
    }


async def _cluster_telemetry(details: int, config) -> dict:
    # pydrant runs one node; with cluster.enabled it is a cluster of one peer (docs/sharding.md)
    cluster: dict = {"enabled": bool(config.cluster.enabled)}
    if config.cluster.enabled and details >= 1:
        me, state = await peer_id(), await cluster_state()
        cluster["status"] = {
            "number_of_peers": 1,
            "term": state.term,
            "commit": state.commit,
            "pending_operations": 0,
            "role": "Leader",
            "is_voter": True,
            "peer_id": me,
            "consensus_thread_status": {"consensus_thread_status": "working", "last_update": rfc3339_now()},
        }
        if details >= 2:
            cluster["peers"] = {str(me): {"uri": peer_uri()}}
    if details >= 2:
        c = config.cluster
        cluster["config"] = {
            "grpc_timeout_ms": c.grpc_timeout_ms,
            "p2p": {"connection_pool_size": c.p2p.connection_pool_size},
            "consensus": {
                "max_message_queue_size": c.consensus.max_message_queue_size,
                "tick_period_ms": c.consensus.tick_period_ms,
                "bootstrap_timeout_sec": c.consensus.bootstrap_timeout_sec,
            },
        }
    return cluster


async def _collections_telemetry(details: int, config, collections: dict) -> dict:
    result: dict = {"number_of_collections": len(collections)}
    if config.storage.max_collections is not None:
        result["max_collections"] = config.storage.max_collections
    if details >= 1:
        ordered = sorted(collections.items())
        sizes = await off_loop(lambda: [_size_stats(c) for _, c in ordered])
        shard_sizes = await off_loop(lambda: [_shard_sizes(c) for _, c in ordered]) if details >= 3 else None
        if details >= 2:
            result["collections"] = [
                _full_collection(name, c, details, shard_sizes[i] if shard_sizes else None)
                for i, (name, c) in enumerate(ordered)
            ]
        else:
            result["collections"] = [
                {"vectors": size["num_vectors"], "optimizers_status": _optimizers_status(c), "params": c.config["params"]}
                for (_, c), size in zip(ordered, sizes)
            ]
    return result


def _size_stats(collection) -> dict:
    """Points, vectors and bytes over the collection's segments (blocking)."""
    totals = {"num_points": 0, "num_vectors": 0, "disk_usage_bytes": 0}
    for segment in list(collection.segments):
        info = segment.info()
        for key in totals:
            totals[key] += int(info.get(key, 0))
    return totals


def _shard_sizes(collection) -> list[tuple[int, object, dict]]:
    """(shard id, shard, its sizes) of every local shard (blocking): a one-shard
    collection is its own shard 0, a sharded one has its shards (collection/sharded.py)."""
    shards = getattr(collection, "shards", None)
    if shards is None:
        return [(0, collection, _size_stats(collection))]
    return [(shard_id, shards[shard_id], _size_stats(shards[shard_id])) for shard_id in sorted(shards)]


def _optimizers_status(collection):
    error = collection.error()
    return {"error": error} if error else "ok"


def _full_collection(name: str, collection, details: int, shard_sizes: list | None) -> dict:
    config = collection.config
    config_telemetry = {
        "params": config["params"],
        "hnsw_config": config.get("hnsw_config"),
        "optimizer_config": config.get("optimizer_config"),
        "wal_config": config.get("wal_config"),
        "quantization_config": config.get("quantization_config"),
    }
    if config.get("strict_mode_config") is not None:
        config_telemetry["strict_mode_config"] = config["strict_mode_config"]
    config_telemetry["uuid"] = config.get("uuid")
    if config.get("metadata") is not None:
        config_telemetry["metadata"] = config["metadata"]
    full: dict = {"id": name, "init_time_ms": 0, "config": config_telemetry}
    if details >= 3 and shard_sizes is not None:
        full["shards"] = [_local_shard_telemetry(shard_id, shard, size) for shard_id, shard, size in shard_sizes]
        full["transfers"] = []
        full["resharding"] = []
    return full


def _local_shard_telemetry(shard_id: int, collection, size: dict) -> dict:
    """One local shard, in Qdrant's ReplicaSetTelemetry shape: its status, and the
    reason it is red (a failed apply, flush or optimization) as the optimizer status."""
    error = collection.error()
    status = "red" if error else ("yellow" if collection.optimizer.running is not None else "green")
    return {
        "id": shard_id,
        "local": {
            "variant_name": "local_shard",
            "status": status,
            "total_optimized_points": 0,
            "num_points": size["num_points"],
            "num_vectors": size["num_vectors"],
            "optimizations": {
                "status": {"error": error} if error else "ok",
                "optimizations": {"count": collection.optimizer.completed},
            },
            "async_scorer": False,
        },
        "remote": [],
        "replicate_states": {},
    }


# -- anonymization (Qdrant's `Anonymize` impls) -----------------------------------------------


def _sip_round(v0: int, v1: int, v2: int, v3: int) -> tuple[int, int, int, int]:
    mask = 0xFFFFFFFFFFFFFFFF

    def rotl(x: int, b: int) -> int:
        return ((x << b) | (x >> (64 - b))) & mask

    v0 = (v0 + v1) & mask
    v1 = rotl(v1, 13) ^ v0
    v0 = rotl(v0, 32)
    v2 = (v2 + v3) & mask
    v3 = rotl(v3, 16) ^ v2
    v0 = (v0 + v3) & mask
    v3 = rotl(v3, 21) ^ v0
    v2 = (v2 + v1) & mask
    v1 = rotl(v1, 17) ^ v2
    v2 = rotl(v2, 32)
    return v0, v1, v2, v3


def siphash(data: bytes, k0: int = 0, k1: int = 0, c_rounds: int = 1, d_rounds: int = 3) -> int:
    """SipHash-c-d of `data`; the defaults are Rust's `DefaultHasher::new()` (SipHash-1-3,
    zero keys)."""
    v0 = k0 ^ 0x736F6D6570736575
    v1 = k1 ^ 0x646F72616E646F6D
    v2 = k0 ^ 0x6C7967656E657261
    v3 = k1 ^ 0x7465646279746573
    whole = len(data) - len(data) % 8
    for offset in range(0, whole, 8):
        m = int.from_bytes(data[offset: offset + 8], "little")
        v3 ^= m
        for _ in range(c_rounds):
            v0, v1, v2, v3 = _sip_round(v0, v1, v2, v3)
        v0 ^= m
    b = ((len(data) & 0xFF) << 56) | int.from_bytes(data[whole:], "little")
    v3 ^= b
    for _ in range(c_rounds):
        v0, v1, v2, v3 = _sip_round(v0, v1, v2, v3)
    v0 ^= b
    v2 ^= 0xFF
    for _ in range(d_rounds):
        v0, v1, v2, v3 = _sip_round(v0, v1, v2, v3)
    return v0 ^ v1 ^ v2 ^ v3


def anonymize_string(value: str) -> str:
    """Qdrant's `Anonymize for String`: the decimal `DefaultHasher` hash of the string
    (`str`'s Hash writes its bytes and then 0xff)."""
    return str(siphash(value.encode() + b"\xff"))


def anonymize_time(text: str) -> str:
    """Qdrant's `Anonymize for DateTime<Utc>`: moved by a random -10..10 seconds."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return rfc3339(moment + timedelta(seconds=int(random.random() * 20.0 - 10.0)))


def _anonymize_stats(stats: dict) -> dict:
    out = dict(stats)
    out["count"] = anonymize_count(stats["count"])
    if "fail_count" in stats:
        out["fail_count"] = anonymize_count(stats["fail_count"])
    if "last_responded" in stats:
        out["last_responded"] = anonymize_time(stats["last_responded"])
    return out


def anonymized(data: dict) -> dict:
    """`data` as Qdrant's `?anonymize=true` gives it: collection names hashed, counts and
    sizes of more than ~5 digits truncated, times moved by up to 10 s, the collections'
    uuid and metadata dropped. Names of endpoints, versions and settings stay."""
    out = dict(data)
    app = dict(data["app"])
    if "system" in app:
        system = dict(app["system"])
        for key in ("ram_size", "disk_size"):
            if system.get(key) is not None:
                system[key] = anonymize_count(system[key])
        app["system"] = system
    app["startup"] = anonymize_time(app["startup"])
    out["app"] = app

    collections = dict(data["collections"])
    if "collections" in collections:
        collections["collections"] = [_anonymize_collection(c) for c in collections["collections"]]
    out["collections"] = collections

    rest = data["requests"]["rest"]["responses"]
    out["requests"] = {
        "rest": {"responses": {key: {s: _anonymize_stats(v) for s, v in by_status.items()} for key, by_status in rest.items()}},
        "grpc": {"responses": {key: _anonymize_stats(v) for key, v in data["requests"]["grpc"]["responses"].items()}},
    }
    if data.get("memory") is not None:
        out["memory"] = {key: anonymize_count(value) for key, value in data["memory"].items()}
    if data.get("hardware") is not None:
        out["hardware"] = {"collection_data": {
            anonymize_string(name): {key: anonymize_count(value) for key, value in usage.items()}
            for name, usage in data["hardware"]["collection_data"].items()
        }}
    return out


def _anonymize_collection(collection: dict) -> dict:
    out = dict(collection)
    if "vectors" in collection:  # aggregated (level 1)
        out["vectors"] = anonymize_count(collection["vectors"])
        return out
    out["id"] = anonymize_string(collection["id"])
    config = dict(collection["config"])
    config["uuid"] = None
    config.pop("metadata", None)
    out["config"] = config
    if "shards" in collection:
        shards = []
        for shard in collection["shards"]:
            shard = dict(shard)
            if shard.get("local") is not None:
                local = dict(shard["local"])
                for key in ("total_optimized_points", "vectors_size_bytes", "payloads_size_bytes", "num_points", "num_vectors"):
                    if local.get(key) is not None:
                        local[key] = anonymize_count(local[key])
                shard["local"] = local
            shards.append(shard)
        out["shards"] = shards
    return out


# -- pydrant's own metrics ---------------------------------------------------------------------


def pydrant_families() -> list:
    """pydrant's metrics, under `pydrant_`: build info and, per collection, points and WAL
    activity since the collection was loaded."""
    points, fsyncs, records = [], [], []
    for name, collection in sorted(toc().collections.items()):
        labels = {"collection": name}
        points.append((labels, collection.points_count()))
        wal = collection.wal.statistics()
        fsyncs.append((labels, wal["fsyncs"]))
        records.append((labels, wal["appended_records"]))
    families = [
        ("pydrant_info", "pydrant build information", "gauge",
         [({"version": __version__, "qdrant_api_version": QDRANT_API_VERSION}, 1)]),
        ("pydrant_collection_points", "points per collection", "gauge", points),
        ("pydrant_collection_wal_fsyncs_total", "WAL fsyncs since the collection was loaded", "counter", fsyncs),
        ("pydrant_collection_wal_appended_records_total", "WAL records appended since the collection was loaded",
         "counter", records),
    ]
    return [family for family in families if family[3]]


@blueprint.get("/issues")
async def get_issues():
    # A collection-scoped token sees the issues of its collections only (never another
    # collection's name); node-wide issues need global access.
    aliases = toc().aliases
    visible = [
        record for record in BOARD.report()
        if (caller_is_global() if (name := collection_of(record["id"])) is None else may_read(name, aliases))
    ]
    return ok({"issues": visible})


@blueprint.delete("/issues")
async def clear_issues():
    # As Qdrant: clears what was reported; a cause still present is reported again.
    BOARD.clear()
    return ok(True)


@blueprint.get("/locks")
async def get_locks():
    return ok(current_app.extensions["locks"])


@blueprint.post("/locks")
async def set_locks():
    request_body = to_plain(await body(models.LocksOption))
    previous = dict(current_app.extensions["locks"])
    current_app.extensions["locks"] = {"write": request_body["write"], "error_message": request_body.get("error_message")}
    return ok(previous)
