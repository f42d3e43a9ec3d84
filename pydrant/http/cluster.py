"""Distributed API on one node: answered as Qdrant answers it with distributed mode off.

pydrant runs one node (docs/api-coverage.md): `GET /cluster` says `disabled`; a
collection's cluster information lists its local shard (one, id 0, `Active`, with its
point count) and no remote shard or transfer; every operation that needs consensus —
moving or replicating shards, shard keys, removing a peer, recovering the Raft state —
is refused with Qdrant's standalone errors, after the request is validated as Qdrant
validates it (a malformed body is still a format error, not "distributed mode disabled").
"""

from __future__ import annotations

from quart import Blueprint, current_app

from pydrant.errors import BadInput, NotFound, ServiceError
from pydrant.http import spec_models as models
from pydrant.http.context import settings, toc
from pydrant.http.envelope import body, off_loop, ok, query_bool, query_int
from pydrant.storage.peer import load_or_create_peer_id

blueprint = Blueprint("cluster", __name__)

# Qdrant's words (src/actix/api/cluster_api.rs, src/common/collections.rs, toc).
DISTRIBUTED_DISABLED = "Bad request: Distributed mode disabled"
REMOVE_PEER_DISABLED = "Bad request: Distributed mode disabled."
STANDALONE = "Service internal error: Qdrant is running in standalone mode"
U64_MAX = (1 << 64) - 1


async def peer_id() -> int:
    """This node's id, read (or created) once per app."""
    cached = current_app.extensions.get("peer_id")
    if cached is None:
        cached = await off_loop(load_or_create_peer_id, toc().root, settings().cluster.peer_id)
        current_app.extensions["peer_id"] = cached
    return cached


@blueprint.get("/cluster")
async def cluster_status():
    return ok({"status": "disabled"})


@blueprint.post("/cluster/recover")
async def recover_current_peer():
    raise ServiceError(STANDALONE)


@blueprint.delete("/cluster/peer/<raw_peer_id>")
async def remove_peer(raw_peer_id: str):
    peer = _u64_path(raw_peer_id)
    query_int("timeout", minimum=1)
    force = query_bool("force", False)
    if not force and peer == await peer_id() and toc().collections:
        # Every collection's shard is on this peer (Qdrant checks before the mode).
        raise BadInput(f"Bad request: Cannot remove peer {peer} as there are shards on it")
    raise BadInput(REMOVE_PEER_DISABLED)


@blueprint.get("/collections/<name>/cluster")
async def collection_cluster_info(name: str):
    collection = toc().get(name)
    points = await off_loop(collection.points_count)
    return ok({
        "peer_id": await peer_id(),
        "shard_count": 1,
        "local_shards": [{"shard_id": 0, "points_count": points, "state": "Active"}],
        "remote_shards": [],
        "shard_transfers": [],
    })


@blueprint.post("/collections/<name>/cluster")
async def update_collection_cluster(name: str):
    query_int("timeout", minimum=1)
    await body(models.ClusterOperations)
    raise BadInput(DISTRIBUTED_DISABLED)


@blueprint.put("/collections/<name>/shards")
async def create_shard_key(name: str):
    query_int("timeout", minimum=1)
    await body(models.CreateShardingKey)
    raise BadInput(DISTRIBUTED_DISABLED)


@blueprint.post("/collections/<name>/shards/delete")
async def delete_shard_key(name: str):
    query_int("timeout", minimum=1)
    await body(models.DropShardingKey)
    raise BadInput(DISTRIBUTED_DISABLED)


def _u64_path(raw: str) -> int:
    """A u64 path segment, as actix's `web::Path<u64>` reads one (404 when it does not)."""
    if not raw.isascii() or not raw.isdigit() or int(raw) > U64_MAX:
        raise NotFound(f"Not found: can not parse \"{raw}\" to a u64")
    return int(raw)
