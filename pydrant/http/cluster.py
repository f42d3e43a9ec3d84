"""Distributed API on one node: answered as Qdrant answers it with distributed mode off.

pydrant runs one node (docs/api-coverage.md): `GET /cluster` says `disabled`; a
collection's cluster information lists its local shard (one, id 0, `Active`, with its
point count) and no remote shard or transfer; every operation that needs consensus —
moving or replicating shards, shard keys, removing a peer, recovering the Raft state —
is refused with Qdrant's standalone errors, after the request is validated as Qdrant
validates it (a malformed body is still a format error, not "distributed mode disabled").
"""

from __future__ import annotations

from quart import Blueprint

from pydrant.collection.routing import display_key
from pydrant.collection.sharded import ShardedCollection
from pydrant.errors import BadInput, NotFound, ServiceError
from pydrant.http import spec_models as models
from pydrant.http.context import cluster_enabled, cluster_state, peer_id, peer_uri, toc
from pydrant.http.envelope import body, off_loop, ok, query_bool, query_int
from pydrant.http.validation import to_plain
from pydrant.storage.peer import rfc3339_now

blueprint = Blueprint("cluster", __name__)

# Qdrant's words (src/actix/api/cluster_api.rs, src/common/collections.rs, toc).
DISTRIBUTED_DISABLED = "Bad request: Distributed mode disabled"
REMOVE_PEER_DISABLED = "Bad request: Distributed mode disabled."
STANDALONE = "Service internal error: Qdrant is running in standalone mode"
AUTO_SHARDING_KEYS = "Bad request: Shard Key cannot be created with Auto sharding method"
U64_MAX = (1 << 64) - 1


@blueprint.get("/cluster")
async def cluster_status():
    if not cluster_enabled():
        return ok({"status": "disabled"})
    me = await peer_id()
    state = await cluster_state()
    return ok({
        "status": "enabled",
        "peer_id": me,
        "peers": {str(me): {"uri": peer_uri()}},
        "raft_info": {
            "term": state.term,
            "commit": state.commit,
            "pending_operations": 0,
            "leader": me,
            "role": "Leader",
            "is_voter": True,
        },
        "consensus_thread_status": {"consensus_thread_status": "working", "last_update": rfc3339_now()},
        "message_send_failures": {},
    })


@blueprint.post("/cluster/recover")
async def recover_current_peer():
    if not cluster_enabled():
        raise ServiceError(STANDALONE)
    return ok(True)  # one peer: its Raft state is the cluster's; nothing to fetch


@blueprint.delete("/cluster/peer/<raw_peer_id>")
async def remove_peer(raw_peer_id: str):
    peer = _u64_path(raw_peer_id)
    query_int("timeout", minimum=1)
    force = query_bool("force", False)
    me = await peer_id()
    if not force and peer == me and toc().collections:
        # Every collection's shard is on this peer (Qdrant checks before the mode).
        raise BadInput(f"Bad request: Cannot remove peer {peer} as there are shards on it")
    if not cluster_enabled():
        raise BadInput(REMOVE_PEER_DISABLED)
    if peer != me:
        raise BadInput(f"Bad request: Peer {peer} does not exist")
    raise BadInput(f"Bad request: Cannot remove peer {peer}: it is the only peer of the cluster")


@blueprint.get("/collections/<name>/cluster")
async def collection_cluster_info(name: str):
    collection = toc().get(name)
    shards = await off_loop(collection.local_shards)
    return ok({
        "peer_id": await peer_id(),
        "shard_count": len(shards),
        "local_shards": shards,
        "remote_shards": [],
        "shard_transfers": [],
    })


@blueprint.post("/collections/<name>/cluster")
async def update_collection_cluster(name: str):
    query_int("timeout", minimum=1)
    operation = to_plain(await body(models.ClusterOperations))
    if not cluster_enabled():
        raise BadInput(DISTRIBUTED_DISABLED)
    collection = toc().get(name)
    (kind, spec), = operation.items()
    if kind == "create_sharding_key":
        await _create_shard_key(name, collection, spec)
    elif kind == "drop_sharding_key":
        await _drop_shard_key(name, collection, spec)
    else:
        await _shard_operation(name, collection, kind, spec)
    return ok(True)


@blueprint.put("/collections/<name>/shards")
async def create_shard_key(name: str):
    query_int("timeout", minimum=1)
    spec = to_plain(await body(models.CreateShardingKey))
    if not cluster_enabled():
        raise BadInput(DISTRIBUTED_DISABLED)
    await _create_shard_key(name, toc().get(name), spec)
    return ok(True)


@blueprint.post("/collections/<name>/shards/delete")
async def delete_shard_key(name: str):
    query_int("timeout", minimum=1)
    spec = to_plain(await body(models.DropShardingKey))
    if not cluster_enabled():
        raise BadInput(DISTRIBUTED_DISABLED)
    await _drop_shard_key(name, toc().get(name), spec)
    return ok(True)


# -- cluster mode: the operations of one peer (src/common/collections.rs,
#    do_update_collection_cluster) --------------------------------------------------------


async def _check_peer(peer: int) -> None:
    if peer != await peer_id():
        raise BadInput(f"Bad request: Peer {peer} does not exist")


async def _create_shard_key(name: str, collection, spec: dict) -> None:
    if not isinstance(collection, ShardedCollection) or not collection.custom:
        raise BadInput(AUTO_SHARDING_KEYS)
    key = spec["shard_key"]
    if key in collection.shard_keys():
        raise BadInput(f"Bad request: Sharding key {display_key(key)} already exists for collection {name}")
    placement = spec.get("placement")
    if placement is not None:
        if not placement:
            raise BadInput(
                f"Bad request: Sharding key {display_key(key)} placement cannot be empty. If you want to use random "
                "placement, do not specify placement"
            )
        for peer in placement:
            await _check_peer(peer)
    # replication_factor: one peer holds one replica of each shard (Qdrant's
    # generate_even_placement caps the factor by the peers there are)
    await collection.create_shard_key(key, spec.get("shards_number"))
    (await cluster_state()).committed()


async def _drop_shard_key(name: str, collection, spec: dict) -> None:
    if not isinstance(collection, ShardedCollection) or not collection.custom:
        raise BadInput(AUTO_SHARDING_KEYS)  # sic: Qdrant says "created" for the drop too
    key = spec["shard_key"]
    if key not in collection.shard_keys():
        raise BadInput(f"Bad request: Sharding key {display_key(key)} does not exists for collection {name}")
    await collection.delete_shard_key(key)
    (await cluster_state()).committed()


async def _shard_operation(name: str, collection, kind: str, spec: dict) -> None:
    """Shard transfers and replicas, checked as Qdrant checks them; with one peer there is
    never anywhere to move or copy a shard to, nor a transfer to abort."""
    shard_id = spec["shard_id"]
    if kind in ("abort_transfer", "restart_transfer"):
        raise NotFound(
            f"Not found: Shard transfer {spec['from_peer_id']} -> {spec['to_peer_id']} for collection "
            f"{name}:{shard_id} does not exist"
        )
    shard_ids = [shard["shard_id"] for shard in await off_loop(collection.local_shards)]
    if shard_id not in shard_ids:
        raise BadInput(f"Bad request: Shard {shard_id} of {name} does not exist")
    if kind == "drop_replica":
        await _check_peer(spec["peer_id"])
        raise BadInput(f"Bad request: Shard {shard_id} of {name} has only this replica: it cannot be dropped")
    await _check_peer(spec["to_peer_id"])
    await _check_peer(spec["from_peer_id"])
    raise BadInput(f"Bad request: Shard {shard_id} of {name} is already on peer {spec['to_peer_id']}")


def _u64_path(raw: str) -> int:
    """A u64 path segment, as actix's `web::Path<u64>` reads one (404 when it does not)."""
    if not raw.isascii() or not raw.isdigit() or int(raw) > U64_MAX:
        raise NotFound(f"Not found: can not parse \"{raw}\" to a u64")
    return int(raw)
