"""Access control: API keys and JWT RBAC, as Qdrant's security documentation describes.

The key comes in the `api-key` header or as `Authorization: Bearer <key>`.
- No `service.api_key` and no `read_only_api_key`: everything is open.
- `api_key`: full access. `read_only_api_key`: reads only (403 on writes).
- `jwt_rbac: true` (needs `api_key`): a JWT signed HS256 with `api_key` is also accepted.
  Its `exp` claim is checked; its `access` claim grants
    "m"  full access, "r"  global read-only access, or
    [{"collection": name, "access": "r" | "rw"}, ...]  access to those collections only:
  reads ("r") or reads and point writes ("rw"). Managing collections, aliases and locks
  needs "m". `value_exists` claims are refused (not implemented).
  Snapshots, as Qdrant 1.15 checks them (src/common/snapshots.rs, snapshot_api.rs):
  listing and downloading a collection's or shard's snapshots is a read of that
  collection; creating and deleting them needs "rw" on it; recovering and uploading needs
  global "m"; full snapshots (`/snapshots`) need global access: "r" lists and downloads,
  "m" creates and deletes (docs/snapshots.md "Who may do what").
The open endpoints (root and the health probes) never need a key.
"""

from __future__ import annotations

import hmac
import re

import jwt

from pydrant.errors import Forbidden, Unauthorized

OPEN_PATHS = ("/", "/healthz", "/livez", "/readyz")
# Requests that only read, though sent with POST (search, scroll, count, ...).
READ_POST_SUFFIXES = (
    "/points/search", "/points/search/batch", "/points/search/groups", "/points/recommend",
    "/points/recommend/batch", "/points/recommend/groups", "/points/discover", "/points/discover/batch",
    "/points/query", "/points/query/batch", "/points/query/groups", "/points/scroll", "/points/count",
    "/facet", "/points/search/matrix/pairs", "/points/search/matrix/offsets",
)
# Collection-scoped writes a per-collection "rw" token may do (point data, not the collection).
POINT_WRITE = re.compile(r"^/collections/[^/]+/(points(/.*)?|index(/.*)?)$")
COLLECTION_PATH = re.compile(r"^/collections/([^/]+)(/.*)?$")
# Snapshot writes a per-collection "rw" token may do: create (POST) and delete (DELETE) the
# collection's or a shard's snapshots. Recover and upload need global manage access.
SNAPSHOT_CREATE = re.compile(r"^/collections/[^/]+(/shards/[^/]+)?/snapshots$")
SNAPSHOT_DELETE = re.compile(r"^/collections/[^/]+(/shards/[^/]+)?/snapshots/[^/]+$")
SNAPSHOT_RECOVER = re.compile(r"^/collections/[^/]+(/shards/[^/]+)?/snapshots/(recover|upload)$")
INVALID = "Invalid API key or JWT"


def presented_key(request) -> str | None:
    key = request.headers.get("api-key")
    if key:
        return key
    auth = request.headers.get("Authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return None


def is_read(request) -> bool:
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return True
    path = request.path.rstrip("/")
    if request.method == "POST" and path.endswith("/points") and path.startswith("/collections/"):
        return True  # retrieve points by ids
    return request.method == "POST" and path.endswith(READ_POST_SUFFIXES)


def check_access(settings, request) -> None:
    full_key = settings.service.api_key
    read_key = settings.service.read_only_api_key
    if not full_key and not read_key:
        return
    if request.path in OPEN_PATHS or request.method == "OPTIONS":
        return
    key = presented_key(request)
    if key is None:
        raise Unauthorized("Must provide an API key or an Authorization bearer token")
    if full_key and hmac.compare_digest(key, full_key):
        return
    if read_key and hmac.compare_digest(key, read_key):
        if is_read(request):
            return
        raise Forbidden("Forbidden: Write access is not allowed with a read-only API key")
    if settings.service.jwt_rbac and full_key:
        check_token_access(decode_token(key, full_key), request)
        return
    raise Unauthorized(INVALID)


def decode_token(token: str, secret: str) -> dict:
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"], options={"require": []})
    except jwt.ExpiredSignatureError:
        raise Unauthorized("JWT expired") from None
    except jwt.PyJWTError:
        raise Unauthorized(INVALID) from None
    if "value_exists" in claims:
        raise Forbidden("Forbidden: JWT `value_exists` claims are not supported by this server")
    return claims


def check_token_access(claims: dict, request) -> None:
    access = claims.get("access")
    if access == "m":
        return
    if access == "r":
        if is_read(request):
            return
        raise Forbidden("Forbidden: Write access is not allowed by this token (global read-only access)")
    if isinstance(access, list):
        _check_collection_access(access, request)
        return
    raise Forbidden("Forbidden: the token's `access` claim grants nothing")


def _check_collection_access(grants: list, request) -> None:
    path = request.path.rstrip("/")
    if path == "/collections" and request.method == "GET":
        return  # listing names is allowed to any collection-scoped token
    match = COLLECTION_PATH.match(path)
    name = match.group(1) if match else None
    levels = {g.get("collection"): g.get("access") for g in grants if isinstance(g, dict)}
    if name is None or name == "aliases" or name not in levels:
        raise Forbidden(f"Forbidden: the token grants no access to {request.method} {path}")
    if is_read(request):
        return
    if request.method in ("PUT", "POST") and SNAPSHOT_RECOVER.match(path):
        raise Forbidden("Forbidden: Global access is required")  # Qdrant's words for recover and upload
    if levels[name] == "rw" and (POINT_WRITE.match(path) or _snapshot_write(request.method, path)):
        return
    raise Forbidden(f"Forbidden: the token grants only `{levels[name]}` access to collection {name}")


def _snapshot_write(method: str, path: str) -> bool:
    return (method == "POST" and SNAPSHOT_CREATE.match(path) is not None) or (
        method == "DELETE" and SNAPSHOT_DELETE.match(path) is not None
    )
