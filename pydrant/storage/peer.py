"""This node's peer id: the number Qdrant shows as `peer_id` in cluster information.

Qdrant keeps a random peer id in its storage (raft state) even when distributed mode is
off, so the id a client sees stays the same across restarts. pydrant does the same in
`<storage>/peer.json`; `cluster.peer_id` in the settings, when set, wins. Ids stay below
2**53 so that JavaScript clients read them exactly.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from pathlib import Path

from pydrant.fsutil import read_json, write_json_atomic

PEER_FILE = "peer.json"
MAX_PEER_ID = (1 << 53) - 1


def load_or_create_peer_id(storage: Path, configured: int | None = None) -> int:
    """The configured id, else the one saved in `storage`, else a new random one (saved).
    Blocks: call it off the event loop."""
    if configured is not None:
        return configured
    path = Path(storage) / PEER_FILE
    try:
        saved = read_json(path)
        peer_id = saved.get("peer_id") if isinstance(saved, dict) else None
        if isinstance(peer_id, int) and not isinstance(peer_id, bool) and 1 <= peer_id <= MAX_PEER_ID:
            return peer_id
    except (OSError, ValueError):
        pass  # missing or unreadable: a new id (nothing else depends on the old one)
    peer_id = 1 + secrets.randbelow(MAX_PEER_ID)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, {"peer_id": peer_id})
    return peer_id


CLUSTER_FILE = "cluster.json"


def rfc3339_now() -> str:
    """Now in UTC as Qdrant writes timestamps (RFC 3339, microseconds)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class ClusterState:
    """The Raft numbers a one-peer cluster shows (`cluster.enabled: true`, docs/sharding.md):
    `term` grows by one at each start (a lone peer elects itself anew), `commit` counts the
    cluster metadata operations applied (shard key changes). Kept in `<storage>/cluster.json`
    for display only: no consensus runs, and they will not equal a real Qdrant's numbers."""

    def __init__(self, path: Path, term: int, commit: int):
        self.path = path
        self.term = term
        self.commit = commit

    @classmethod
    def open(cls, storage: Path) -> ClusterState:
        """Load the saved numbers and start a new term (blocking)."""
        path = Path(storage) / CLUSTER_FILE
        term, commit = 0, 0
        try:
            saved = read_json(path)
            term, commit = int(saved.get("term", 0)), int(saved.get("commit", 0))
        except (OSError, ValueError, TypeError, AttributeError):
            pass  # missing or unreadable: a new cluster of one
        state = cls(path, term + 1, commit)
        state.save()
        return state

    def committed(self) -> None:
        """One more metadata operation applied. The file is written in passing: a lost
        count only changes a number shown to users."""
        self.commit += 1
        try:
            self.save()
        except OSError:
            pass

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.path, {"term": self.term, "commit": self.commit})
