"""Every operation of Qdrant's REST spec x every kind of caller, in-process through Quart's
test client: allowed (anything but 401/403) or refused with Qdrant 1.15's status and text.

`EXPECTED` below is the matrix written out from Qdrant's source (`src/actix/auth.rs`,
`src/common/auth/`, `lib/storage/src/rbac/`, each handler's `check_*_access`); it is not read
from pydrant.http.access_rules, so a wrong rule there fails here. The test also fails when
an operation of the spec is missing from it or from pydrant's table, and when a route of
the app has no rule.

Callers: no key, the read-only key, the full key, JWTs with global "m" and "r", tokens
scoped to collection `a` ("r" and "rw", used on `a` and on another collection `b`), an
expired token, forged tokens (`alg: none`, another key, garbage) and a token whose claims
are malformed.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import inprocess
import jwt
import pytest

from pydrant.config import load_settings
from pydrant.http.access_rules import ENDPOINTS, RULES
from pydrant.http.app import create_app

SPEC = Path(__file__).resolve().parents[2] / "spec" / "qdrant-openapi-v1.15.5.json"
SECRET = "matrix-api-key-long-enough-for-hs256-tokens"
RO_KEY = "matrix-read-only-key"

# operationId -> what Qdrant 1.15 requires:
#   open: no key needed; any: every valid key or token (the handler filters what it lists);
#   g:r / g:m: global read / manage access; c:r / c:w / c:m: read / write / write+manage
#   access to the collection of the path.
EXPECTED = {
    "root": "open", "healthz": "open", "livez": "open", "readyz": "open",
    "telemetry": "any", "get_issues": "any", "get_collections": "any", "get_collections_aliases": "any",
    "metrics": "g:r", "get_locks": "g:r", "cluster_status": "g:r",
    "list_full_snapshots": "g:r", "get_full_snapshot": "g:r",
    "post_locks": "g:m", "clear_issues": "g:m", "recover_current_peer": "g:m", "remove_peer": "g:m",
    "create_collection": "g:m", "update_collection": "g:m", "delete_collection": "g:m", "update_aliases": "g:m",
    "create_full_snapshot": "g:m", "delete_full_snapshot": "g:m",
    "recover_from_snapshot": "g:m", "recover_from_uploaded_snapshot": "g:m",
    "recover_shard_from_snapshot": "g:m", "recover_shard_from_uploaded_snapshot": "g:m",
    "get_collection": "c:r", "collection_exists": "c:r", "get_collection_aliases": "c:r",
    "collection_cluster_info": "c:r",
    "list_snapshots": "c:r", "get_snapshot": "c:r", "list_shard_snapshots": "c:r", "get_shard_snapshot": "c:r",
    "get_point": "c:r", "get_points": "c:r", "scroll_points": "c:r", "count_points": "c:r", "facet": "c:r",
    "search_points": "c:r", "search_batch_points": "c:r", "search_point_groups": "c:r",
    "search_matrix_pairs": "c:r", "search_matrix_offsets": "c:r",
    "recommend_points": "c:r", "recommend_batch_points": "c:r", "recommend_point_groups": "c:r",
    "discover_points": "c:r", "discover_batch_points": "c:r",
    "query_points": "c:r", "query_batch_points": "c:r", "query_points_groups": "c:r",
    "create_snapshot": "c:w", "delete_snapshot": "c:w", "create_shard_snapshot": "c:w",
    "delete_shard_snapshot": "c:w", "create_field_index": "c:w", "delete_field_index": "c:w",
    "upsert_points": "c:w", "delete_points": "c:w", "update_vectors": "c:w", "delete_vectors": "c:w",
    "set_payload": "c:w", "overwrite_payload": "c:w", "delete_payload": "c:w", "clear_payload": "c:w",
    "batch_update": "c:w",
    "update_collection_cluster": "c:m", "create_shard_key": "c:m", "delete_shard_key": "c:m",
}
# pydrant's own operations, with their route
EXTRA = {
    "pydrant_changes": ("GET", "/collections/{collection_name}/changes", "c:r"),
    "pydrant_point_in_time_restore": ("PUT", "/collections/{collection_name}/snapshots/point-in-time", "g:m"),
}

NO_KEY = "Must provide an API key or an Authorization bearer token"
INVALID = "Invalid API key or JWT"
GLOBAL = "Forbidden: Global access is required"
GLOBAL_MANAGE = "Forbidden: Global manage access is required"


def _token(secret=SECRET, **claims) -> str:
    return jwt.encode(claims, secret, algorithm="HS256")


PRINCIPALS = {
    "no key": None,
    "read-only key": RO_KEY,
    "full key": SECRET,
    "jwt m": _token(access="m"),
    "jwt r": _token(access="r"),
    "jwt a:r": _token(access=[{"collection": "a", "access": "r"}]),
    "jwt a:rw": _token(access=[{"collection": "a", "access": "rw"}]),
    "expired": _token(access="m", exp=int(time.time()) - 3600),
    "alg none": jwt.encode({"access": "m"}, None, algorithm="none"),
    "another key": _token(secret="someone-elses-key-long-enough-for-hs256", access="m"),
    "garbage": "garbage",
    "malformed claims": _token(access=[{"collection": "a", "access": "admin"}]),
}
# refused before any operation is looked at, whatever the operation (plain text)
MIDDLEWARE = {
    "no key": (401, NO_KEY), "expired": (403, "ExpiredSignature"), "alg none": (401, INVALID),
    "another key": (403, "InvalidSignature"), "garbage": (401, INVALID), "malformed claims": (401, INVALID),
}


def expected(principal: str, code: str, target: str | None):
    """None for allowed, else (status, message, plain-text?)."""
    if code == "open":
        return None
    if principal in MIDDLEWARE:
        return (*MIDDLEWARE[principal], True)
    if code == "any":
        return None
    scope, level = code.split(":")
    if principal in ("full key", "jwt m"):
        return None
    if principal in ("read-only key", "jwt r"):
        return None if level == "r" else (403, GLOBAL_MANAGE, False)
    # a token for collection `a`
    if scope == "g":
        return (403, GLOBAL, False)
    if target != "a":
        return (403, f"Forbidden: Access to collection {target} is required", False)
    if level in ("w", "m") and principal == "jwt a:r":
        return (403, "Forbidden: Write access to collection a is required", False)
    if level == "m":
        return (403, "Forbidden: Manage access for this operation is required", False)
    return None


def spec_operations() -> dict[str, tuple[str, str]]:
    spec = json.loads(SPEC.read_text())
    return {op["operationId"]: (method.upper(), path) for path, ops in spec["paths"].items() for method, op in ops.items()}


def test_every_spec_operation_has_an_expectation_and_a_rule():
    operations = spec_operations()
    assert set(EXPECTED) == set(operations), "EXPECTED must list exactly the spec's operations"
    missing = sorted(set(operations) - set(RULES))
    assert not missing, f"operations without a rule in pydrant.http.access_rules: {missing}"
    assert set(EXTRA) <= set(RULES)


def test_every_route_of_the_app_has_a_rule(tmp_path):
    app = create_app(load_settings(env={}, overrides={"storage.storage_path": str(tmp_path / "s"),
                                                      "storage.snapshots_path": str(tmp_path / "p")}))
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert not sorted(endpoints - set(ENDPOINTS)), "routes without a rule (they would need global manage access)"
    assert set(ENDPOINTS.values()) <= set(RULES)


def _path(template: str, target: str) -> str:
    values = {"collection_name": target, "shard_id": "0", "snapshot_name": "x.snapshot", "id": "1",
              "field_name": "f", "peer_id": "7"}
    for name, value in values.items():
        template = template.replace("{" + name + "}", value)
    return template


def running_app(tmp_path: Path):
    return inprocess.running_app(
        tmp_path, {"service.api_key": SECRET, "service.read_only_api_key": RO_KEY, "service.jwt_rbac": True})


async def ensure_collections(client) -> None:
    """`a` and `b` exist and writes are not locked (an allowed delete or lock may change them)."""
    admin = {"api-key": SECRET}
    for name in ("a", "b"):
        exists = await client.get(f"/collections/{name}/exists", headers=admin)
        if not json.loads(await exists.get_data())["result"]["exists"]:
            r = await client.put(f"/collections/{name}", json={"vectors": {"size": 2, "distance": "Dot"}}, headers=admin)
            assert r.status_code == 200
    locks = await client.get("/locks", headers=admin)
    if json.loads(await locks.get_data())["result"]["write"]:
        await client.post("/locks", json={"write": False}, headers=admin)


def cases():
    operations = spec_operations()
    for operation, code in EXPECTED.items():
        yield operation, *operations[operation], code
    for operation, (method, path, code) in EXTRA.items():
        yield operation, method, path, code


@pytest.mark.parametrize("principal", list(PRINCIPALS))
async def test_matrix(tmp_path, principal):
    key = PRINCIPALS[principal]
    headers = {} if key is None else {"api-key": key}
    failures = []
    checked = 0
    async with running_app(tmp_path) as client:
        await ensure_collections(client)
        for operation, method, template, code in cases():
            targets = ("a", "b") if "{collection_name}" in template else (None,)
            for target in targets:
                path = _path(template, target or "")
                response = await client.open(path, method=method, headers=headers)
                body = (await response.get_data()).decode(errors="replace")
                want = expected(principal, code, target)
                checked += 1
                if want is None:
                    if response.status_code in (401, 403):
                        failures.append(f"{operation} {method} {path}: allowed expected, got {response.status_code} {body[:120]}")
                else:
                    status, message, plain = want
                    shown = body if plain else _error(body)
                    if (response.status_code, shown) != (status, message):
                        failures.append(f"{operation} {method} {path}: expected {status} {message!r}, "
                                        f"got {response.status_code} {body[:120]!r}")
                    if plain and not response.headers.get("content-type", "").startswith("text/plain"):
                        failures.append(f"{operation}: the middleware answers plain text")
                if want is None and method != "GET":
                    await ensure_collections(client)
    assert checked >= 71
    assert not failures, f"{principal}: {len(failures)} of {checked} wrong:\n" + "\n".join(failures)


def _error(body: str):
    try:
        return json.loads(body)["status"]["error"]
    except (ValueError, KeyError, TypeError):
        return body


async def test_unmatched_routes_are_authenticated_first(tmp_path):
    """Qdrant's middleware runs before routing: no key is 401 on any path, a valid key
    then gets the 404 or 405."""
    async with running_app(tmp_path) as client:
        assert (await client.get("/no/such/route")).status_code == 401
        assert (await client.get("/no/such/route", headers={"api-key": SECRET})).status_code == 404
        scoped = {"api-key": PRINCIPALS["jwt a:r"]}
        assert (await client.get("/no/such/route", headers=scoped)).status_code == 404
        assert (await client.get("/readyz/anything")).status_code == 404  # a whitelisted prefix
