"""API keys: `api-key` header or `Authorization: Bearer <key>`.

With `service.api_key` set every request needs it, except the open endpoints (root,
health probes). `service.read_only_api_key` allows only reads. JWT RBAC is not done yet
(docs/api-coverage.md).
"""

from __future__ import annotations

import hmac

from pydrant.errors import Forbidden, Unauthorized

OPEN_PATHS = ("/", "/healthz", "/livez", "/readyz")
# Requests that only read, though sent with POST (search, scroll, count, ...).
READ_POST_SUFFIXES = (
    "/points/search", "/points/search/batch", "/points/search/groups", "/points/recommend",
    "/points/recommend/batch", "/points/recommend/groups", "/points/discover", "/points/discover/batch",
    "/points/query", "/points/query/batch", "/points/query/groups", "/points/scroll", "/points/count",
    "/facet", "/points/search/matrix/pairs", "/points/search/matrix/offsets",
)


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
    raise Unauthorized("Invalid API key or JWT")
