"""Service API: version, health probes, telemetry, metrics, issues, locks."""

from __future__ import annotations

import functools
import os
import platform
import sys
import uuid
from datetime import datetime, UTC
from pathlib import Path

from pydrant.http import spec_models as models
from quart import Blueprint, Response, current_app

from pydrant import QDRANT_API_VERSION, __version__
from pydrant.issues import BOARD
from pydrant.http.context import settings, toc
from pydrant.http.envelope import body, json_response, ok, query_bool, query_int
from pydrant.http.validation import to_plain

blueprint = Blueprint("service", __name__)
NODE_ID = str(uuid.uuid4())


@blueprint.get("/")
async def root():
    # `version` is the Qdrant API version implemented, so clients' compatibility checks
    # pass; pydrant's own version is reported beside it.
    return json_response(
        {"title": "pydrant - vector search engine (Qdrant API compatible)", "version": QDRANT_API_VERSION,
         "commit": None, "pydrant_version": __version__}
    )


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
    return ok(telemetry_data(details, anonymize))


def _system_telemetry() -> dict:
    return {
        "distribution": platform.system(),
        "distribution_version": platform.release(),
        "is_docker": Path("/.dockerenv").exists(),
        "cores": _cores(),
        "ram_size": _ram_kib(),
        "disk_size": None,
        "cpu_flags": _cpu_flags(),
        "cpu_endian": "little" if sys.byteorder == "little" else "big",
        "gpu_devices": None,
    }


SIMD_FLAGS = ("sse", "sse2", "avx", "avx2", "fma", "f16c", "avx512f", "neon")  # those Qdrant reports


@functools.lru_cache(maxsize=1)
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


def telemetry_data(details: int, anonymize: bool) -> dict:
    collections = toc().collections
    started = datetime.fromtimestamp(current_app.extensions["started_at"], tz=UTC)
    data = {
        "id": NODE_ID,
        "app": {
            "name": "pydrant",
            "version": QDRANT_API_VERSION,
            "startup": started.isoformat().replace("+00:00", "Z"),
            "system": _system_telemetry(),
            "jwt_rbac": bool(settings().service.jwt_rbac),
        },
        "collections": {"number_of_collections": len(collections)},
    }
    if details >= 1:
        data["collections"]["collections"] = [
            _collection_telemetry(name, c, anonymize) for name, c in sorted(collections.items())
        ]
    return data


def _cores():
    import os

    return os.cpu_count()


def _collection_telemetry(name: str, collection, anonymize: bool) -> dict:
    shown = uuid.uuid5(uuid.NAMESPACE_URL, name).hex if anonymize else name
    return {"id": shown, "init_time_ms": 0, "config": collection.config, "shards": [_local_shard_telemetry(collection)]}


def _local_shard_telemetry(collection) -> dict:
    """The one local shard, in Qdrant's ReplicaSetTelemetry shape: its status, and the
    reason it is red (a failed apply, flush or optimization) as the optimizer status."""
    error = collection.error()
    status = "red" if error else ("yellow" if collection.optimizer.running is not None else "green")
    return {
        "id": 0,
        "local": {
            "variant_name": "local_shard",
            "status": status,
            "total_optimized_points": 0,
            "num_points": collection.points_count(),
            "optimizations": {
                "status": {"error": error} if error else "ok",
                "optimizations": {"count": collection.optimizer.completed},
            },
        },
        "remote": [],
        "replicate_states": {},
    }


@blueprint.get("/metrics")
async def metrics():
    data = current_app.extensions["metrics"].render(toc())
    return Response(data, content_type="text/plain; version=0.0.4")


@blueprint.get("/issues")
async def get_issues():
    return ok({"issues": BOARD.report()})


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
