"""Accessors for the app-wide objects handlers need."""

import socket

import trio
from quart import current_app

from pydrant.errors import Locked
from pydrant.storage.peer import ClusterState, load_or_create_peer_id


def toc():
    return current_app.extensions["toc"]


def settings():
    return current_app.extensions["settings"]


def check_write_allowed() -> None:
    """Writes are refused while `POST /locks` holds the write lock (403, its message)."""
    locks = current_app.extensions["locks"]
    if locks["write"]:
        raise Locked(locks.get("error_message") or "Write operations are forbidden")


async def peer_id() -> int:
    """This node's id, read (or created) once per app."""
    cached = current_app.extensions.get("peer_id")
    if cached is None:
        cached = await trio.to_thread.run_sync(load_or_create_peer_id, toc().root, settings().cluster.peer_id)
        current_app.extensions["peer_id"] = cached
    return cached


def cluster_enabled() -> bool:
    """`cluster.enabled`: pydrant is then a cluster of one peer (docs/sharding.md)."""
    return bool(settings().cluster.enabled)


async def cluster_state() -> ClusterState:
    """This node's one-peer Raft numbers, loaded (its term advanced) once per app."""
    state = current_app.extensions.get("cluster_state")
    if state is None:
        state = await trio.to_thread.run_sync(ClusterState.open, toc().root)
        current_app.extensions["cluster_state"] = state
    return state


def peer_uri() -> str:
    """The address Qdrant shows for a peer: its p2p URI."""
    host = settings().service.host
    if host in ("0.0.0.0", "::", ""):
        host = socket.gethostname()
    return f"http://{host}:{settings().cluster.p2p.port}/"
