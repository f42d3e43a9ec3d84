"""Who may call what: the access requirement of every REST operation, as Qdrant 1.15 checks it.

One table, `RULES`: operationId of the OpenAPI spec (plus pydrant's own operations, named
`pydrant_*`) -> `Requirement`. `ENDPOINTS` maps each Quart endpoint (blueprint.function) to
its operationId, so the request's matched route picks its rule: nothing is guessed from the
path. `tests/http/test_permission_matrix.py` fails when an operation of the spec or an
endpoint of the app is missing here.

Where each rule comes from (Qdrant v1.15, `src/actix/api/*.rs`, `src/common/*.rs`,
`lib/storage/src/rbac/`):

- `OPEN`: the auth middleware's whitelist (`/`, `/healthz`, `/readyz`, `/livez`).
- `ANY`: no handler check; the handler narrows what it shows to the caller's collections
  (`GET /collections`, `GET /aliases`: `toc.all_collections(&access)`; `/telemetry`;
  `GET /issues`: `meeting_requirements`).
- `GLOBAL`: `check_global_access(requirements)`: `/metrics`, locks, issues (clear),
  cluster, full snapshots, snapshot recover/upload, and every collection meta operation
  (create, update, delete a collection, change aliases: `check_collection_meta_operation`).
- `COLLECTION`: `check_collection_access(name, requirements)` /`check_point_op`: reads need
  nothing more, point updates `.write()`, payload indexes and snapshots `.write().extras()`,
  cluster updates and shard keys `.write().manage().extras()`; `lookups` marks the reads
  whose body names more collections (`lookup_from`, `with_lookup`, prefetches), each of
  which a collection-scoped token must also reach (`check_lookup_from`, `check_with_lookup`).

`extras` matters only to Qdrant's points-only `prw` tokens, which pydrant does not accept;
it is kept so the table reads as Qdrant's calls do. Qdrant 1.15's `.whole()` (no `payload`
constraint on the token) is left out: pydrant refuses payload-constrained tokens (auth.py).
"""

from __future__ import annotations

from dataclasses import dataclass

OPEN_SCOPE = "open"
ANY_SCOPE = "any"
GLOBAL_SCOPE = "global"
COLLECTION_SCOPE = "collection"


@dataclass(frozen=True)
class Requirement:
    """What an operation needs: where (`scope`) and how much (write, manage, extras)."""

    scope: str
    write: bool = False
    manage: bool = False
    extras: bool = False
    lookups: bool = False

    def describe(self) -> str:
        if self.scope in (OPEN_SCOPE, ANY_SCOPE):
            return self.scope
        level = "manage" if self.manage else "write" if self.write else "read"
        return f"{self.scope} {level}" + (" +lookups" if self.lookups else "")


OPEN = Requirement(OPEN_SCOPE)
ANY = Requirement(ANY_SCOPE)
GLOBAL_READ = Requirement(GLOBAL_SCOPE)
GLOBAL_MANAGE = Requirement(GLOBAL_SCOPE, manage=True)
READ = Requirement(COLLECTION_SCOPE)
READ_LOOKUPS = Requirement(COLLECTION_SCOPE, lookups=True)
READ_EXTRAS = Requirement(COLLECTION_SCOPE, extras=True)
WRITE = Requirement(COLLECTION_SCOPE, write=True)
WRITE_EXTRAS = Requirement(COLLECTION_SCOPE, write=True, extras=True)
MANAGE_EXTRAS = Requirement(COLLECTION_SCOPE, write=True, manage=True, extras=True)

RULES: dict[str, Requirement] = {
    # service (service_api.rs, issues_api.rs)
    "root": OPEN,
    "healthz": OPEN,
    "livez": OPEN,
    "readyz": OPEN,
    "telemetry": ANY,
    "metrics": GLOBAL_READ,
    "get_locks": GLOBAL_READ,
    "post_locks": GLOBAL_MANAGE,
    "get_issues": ANY,
    "clear_issues": GLOBAL_MANAGE,
    # cluster (cluster_api.rs, collections.rs do_update_collection_cluster, shards_api.rs)
    "cluster_status": GLOBAL_READ,
    "recover_current_peer": GLOBAL_MANAGE,
    "remove_peer": GLOBAL_MANAGE,
    "collection_cluster_info": READ_EXTRAS,
    "update_collection_cluster": MANAGE_EXTRAS,
    "create_shard_key": MANAGE_EXTRAS,
    "delete_shard_key": MANAGE_EXTRAS,
    # collections and aliases (collections.rs, ops_checks.rs check_collection_meta_operation)
    "get_collections": ANY,
    "get_collection": READ,
    "collection_exists": READ,
    "create_collection": GLOBAL_MANAGE,
    "update_collection": GLOBAL_MANAGE,
    "delete_collection": GLOBAL_MANAGE,
    "update_aliases": GLOBAL_MANAGE,
    "get_collection_aliases": READ,
    "get_collections_aliases": ANY,
    # payload indexes (update.rs do_create_index / do_delete_index: CreatePayloadIndex)
    "create_field_index": WRITE_EXTRAS,
    "delete_field_index": WRITE_EXTRAS,
    # collection and shard snapshots (snapshot_api.rs, snapshots.rs)
    "list_snapshots": READ_EXTRAS,
    "get_snapshot": READ_EXTRAS,
    "create_snapshot": WRITE_EXTRAS,
    "delete_snapshot": WRITE_EXTRAS,
    "recover_from_snapshot": GLOBAL_MANAGE,
    "recover_from_uploaded_snapshot": GLOBAL_MANAGE,
    "list_shard_snapshots": READ_EXTRAS,
    "get_shard_snapshot": READ_EXTRAS,
    "create_shard_snapshot": WRITE_EXTRAS,
    "delete_shard_snapshot": WRITE_EXTRAS,
    "recover_shard_from_snapshot": GLOBAL_MANAGE,
    "recover_shard_from_uploaded_snapshot": GLOBAL_MANAGE,
    # full snapshots
    "list_full_snapshots": GLOBAL_READ,
    "get_full_snapshot": GLOBAL_READ,
    "create_full_snapshot": GLOBAL_MANAGE,
    "delete_full_snapshot": GLOBAL_MANAGE,
    # point reads (ops_checks.rs: no requirement; lookups for recommend, discover, query, groups)
    "get_point": READ,
    "get_points": READ,
    "scroll_points": READ,
    "count_points": READ,
    "facet": READ,
    "search_points": READ,
    "search_batch_points": READ,
    "search_point_groups": READ_LOOKUPS,
    "search_matrix_pairs": READ,
    "search_matrix_offsets": READ,
    "recommend_points": READ_LOOKUPS,
    "recommend_batch_points": READ_LOOKUPS,
    "recommend_point_groups": READ_LOOKUPS,
    "discover_points": READ_LOOKUPS,
    "discover_batch_points": READ_LOOKUPS,
    "query_points": READ_LOOKUPS,
    "query_batch_points": READ_LOOKUPS,
    "query_points_groups": READ_LOOKUPS,
    # point updates (ops_checks.rs CollectionUpdateOperations: write)
    "upsert_points": WRITE,
    "delete_points": WRITE,
    "update_vectors": WRITE,
    "delete_vectors": WRITE,
    "set_payload": WRITE,
    "overwrite_payload": WRITE,
    "delete_payload": WRITE,
    "clear_payload": WRITE,
    "batch_update": WRITE,
    # pydrant's own: the change feed reads a collection's operations; point-in-time restore
    # replaces a collection, as recovering a snapshot does
    "pydrant_changes": READ,
    "pydrant_point_in_time_restore": GLOBAL_MANAGE,
    "pydrant_static": ANY,
}

ENDPOINTS: dict[str, str] = {
    "static": "pydrant_static",
    "service.root": "root",
    "service.healthz": "healthz",
    "service.livez": "livez",
    "service.readyz": "readyz",
    "service.telemetry": "telemetry",
    "service.metrics": "metrics",
    "service.get_issues": "get_issues",
    "service.clear_issues": "clear_issues",
    "service.get_locks": "get_locks",
    "service.set_locks": "post_locks",
    "cluster.cluster_status": "cluster_status",
    "cluster.recover_current_peer": "recover_current_peer",
    "cluster.remove_peer": "remove_peer",
    "cluster.collection_cluster_info": "collection_cluster_info",
    "cluster.update_collection_cluster": "update_collection_cluster",
    "cluster.create_shard_key": "create_shard_key",
    "cluster.delete_shard_key": "delete_shard_key",
    "collections.list_collections": "get_collections",
    "collections.get_collection": "get_collection",
    "collections.collection_exists": "collection_exists",
    "collections.create_collection": "create_collection",
    "collections.update_collection": "update_collection",
    "collections.delete_collection": "delete_collection",
    "aliases.update_aliases": "update_aliases",
    "aliases.list_aliases": "get_collections_aliases",
    "aliases.collection_aliases": "get_collection_aliases",
    "indexes.create_field_index": "create_field_index",
    "indexes.delete_field_index": "delete_field_index",
    "snapshots.list_snapshots": "list_snapshots",
    "snapshots.create_snapshot": "create_snapshot",
    "snapshots.download_snapshot": "get_snapshot",
    "snapshots.delete_snapshot": "delete_snapshot",
    "snapshots.recover_from_snapshot": "recover_from_snapshot",
    "snapshots.upload_snapshot": "recover_from_uploaded_snapshot",
    "snapshots.list_full_snapshots": "list_full_snapshots",
    "snapshots.create_full_snapshot": "create_full_snapshot",
    "snapshots.download_full_snapshot": "get_full_snapshot",
    "snapshots.delete_full_snapshot": "delete_full_snapshot",
    "snapshots.list_shard_snapshots": "list_shard_snapshots",
    "snapshots.create_shard_snapshot": "create_shard_snapshot",
    "snapshots.download_shard_snapshot": "get_shard_snapshot",
    "snapshots.delete_shard_snapshot": "delete_shard_snapshot",
    "snapshots.recover_shard_snapshot": "recover_shard_from_snapshot",
    "snapshots.upload_shard_snapshot": "recover_shard_from_uploaded_snapshot",
    "retrieve.get_point": "get_point",
    "retrieve.retrieve_points": "get_points",
    "retrieve.scroll_points": "scroll_points",
    "retrieve.count_points": "count_points",
    "facet.facet": "facet",
    "search.search": "search_points",
    "search.search_batch": "search_batch_points",
    "search.search_groups": "search_point_groups",
    "search.matrix_pairs": "search_matrix_pairs",
    "search.matrix_offsets": "search_matrix_offsets",
    "recommend.recommend": "recommend_points",
    "recommend.recommend_batch": "recommend_batch_points",
    "recommend.recommend_groups": "recommend_point_groups",
    "discover.discover": "discover_points",
    "discover.discover_batch": "discover_batch_points",
    "query.query_points": "query_points",
    "query.query_batch": "query_batch_points",
    "query.query_groups": "query_points_groups",
    "points.upsert_points": "upsert_points",
    "points.delete_points": "delete_points",
    "points.update_vectors": "update_vectors",
    "points.delete_vectors": "delete_vectors",
    "points.set_payload": "set_payload",
    "points.overwrite_payload": "overwrite_payload",
    "points.delete_payload": "delete_payload",
    "points.clear_payload": "clear_payload",
    "points.batch_update": "batch_update",
    "changes.changes": "pydrant_changes",
    "point_in_time.restore_point_in_time": "pydrant_point_in_time_restore",
}

# An endpoint missing from ENDPOINTS (a route added without a rule) needs global manage
# access: closed until someone decides.
UNLISTED = GLOBAL_MANAGE


def operation_for(endpoint: str | None) -> tuple[str | None, Requirement | None]:
    """(operationId, rule) of a matched endpoint; (None, None) for a request no route
    matched (it is only authenticated, then answered 404 or 405: Qdrant's middleware runs
    before routing)."""
    if endpoint is None:
        return None, None
    operation = ENDPOINTS.get(endpoint)
    if operation is None:
        return None, UNLISTED
    return operation, RULES[operation]


def lookup_collections(operation: str | None, body) -> list[str]:
    """The other collections a read's body names (`lookup_from`, `with_lookup`, those of
    every prefetch and of every request of a batch), in Qdrant's order of checking."""
    if not isinstance(body, dict):
        return []
    if operation is None:
        return []
    if operation.endswith("_batch_points"):
        requests = body.get("searches")
        if not isinstance(requests, list):
            return []
        return [name for request in requests for name in _request_lookups(request)]
    return _request_lookups(body)


def _request_lookups(request) -> list[str]:
    if not isinstance(request, dict):
        return []
    names = []
    lookup_from = request.get("lookup_from")
    if isinstance(lookup_from, dict) and isinstance(lookup_from.get("collection"), str):
        names.append(lookup_from["collection"])
    names.extend(_prefetch_lookups(request.get("prefetch")))
    with_lookup = request.get("with_lookup")
    if isinstance(with_lookup, str):
        names.append(with_lookup)
    elif isinstance(with_lookup, dict) and isinstance(with_lookup.get("collection"), str):
        names.append(with_lookup["collection"])
    return names


def _prefetch_lookups(prefetch) -> list[str]:
    if isinstance(prefetch, dict):
        prefetch = [prefetch]
    if not isinstance(prefetch, list):
        return []
    names = []
    for item in prefetch:
        if not isinstance(item, dict):
            continue
        lookup_from = item.get("lookup_from")
        if isinstance(lookup_from, dict) and isinstance(lookup_from.get("collection"), str):
            names.append(lookup_from["collection"])
        names.extend(_prefetch_lookups(item.get("prefetch")))
    return names
