"""Access control: API keys and JWT RBAC, exactly as Qdrant 1.15 decides (docs/security.md).

Two steps, as Qdrant's: the middleware (`src/actix/auth.rs`, `src/common/auth/`) finds who
is calling, then the operation's handler checks what that caller may do
(`lib/storage/src/rbac/`). Here both run in the app's before-request hook, `authorize`.

Who (`authenticate`): the key comes in the `api-key` header, else as `Authorization: Bearer
<key>`. No `service.api_key` and no `read_only_api_key`: everything is open. `api_key` is
global manage access, `read_only_api_key` global read access. With `jwt_rbac: true` (and
`api_key`), a JWT signed HS256 with `api_key` is accepted: `exp` checked with Qdrant's 30 s
leeway; its `access` claim is "m" (the default when absent), "r", or a list of
`{"collection", "access": "r" | "rw"}`; a `value_exists` claim makes the token valid only
while a point matching its conditions exists in its collection (checked on every request).
Refusals at this step answer as Qdrant's middleware does: a plain-text body, 401 for a
missing key, an unknown key or a token that is not a valid JWT of this server, 403 for a
token signed with another key (`InvalidSignature`), an expired one (`ExpiredSignature`)
and a `value_exists` collection that does not exist.

What (`check`): the matched route's rule from `access_rules.RULES`, Qdrant's
`check_global_access` / `check_collection_access` with their `Forbidden: ...` messages (403,
in the JSON error envelope). A collection token is checked against the collection named in
the path before anything else, so it cannot tell whether another collection exists (403
whether or not it does). An alias in the path is allowed when the token names the alias
(Qdrant matches names literally) or the collection the alias points to (pydrant's addition:
a token for a collection works through that collection's aliases); a token never reaches a
collection it does not name through an alias of that collection.

Error texts never contain the presented key or token.
"""

from __future__ import annotations

import hmac
import json
import math
import time
import warnings
from dataclasses import dataclass, field

import jwt
from jwt.api_jws import PyJWS
from quart import Response, g

from pydrant.errors import BadInput, Forbidden, NotFound
from pydrant.http.access_rules import (
    ANY_SCOPE,
    COLLECTION_SCOPE,
    GLOBAL_SCOPE,
    OPEN_SCOPE,
    Requirement,
    lookup_collections,
    operation_for,
)
from pydrant.http.envelope import off_loop

# Qdrant's auth middleware whitelist (src/actix/mod.rs): exact paths, then prefixes.
OPEN_EXACT = ("/", "/healthz")
OPEN_PREFIXES = ("/readyz", "/livez")
JWT_LEEWAY_S = 30  # src/common/auth/jwt_parser.rs: `validation.leeway = 30`

NO_KEY = "Must provide an API key or an Authorization bearer token"
INVALID = "Invalid API key or JWT"
INVALID_SIGNATURE = "InvalidSignature"  # jsonwebtoken's ErrorKind, as Qdrant shows it
EXPIRED = "ExpiredSignature"
STATEFUL_FAILED = "Invalid JWT, stateful validation failed"
DUPLICATE_COLLECTION = "access.access.collection: Collection name should be unique"
# Qdrant 1.15 still honours a collection's `payload` constraint (deprecated in 1.15, removed
# in 1.16: qdrant/qdrant#7450); pydrant does not implement it and refuses such tokens rather
# than let them read and write the whole collection.
PAYLOAD_UNSUPPORTED = "Forbidden: JWT `payload` constraints are not supported by this server"

GLOBAL_REQUIRED = "Forbidden: Global access is required"
GLOBAL_MANAGE_REQUIRED = "Forbidden: Global manage access is required"
MANAGE_REQUIRED = "Forbidden: Manage access for this operation is required"


class Refusal(Exception):
    """The middleware's answer: who is calling could not be established (plain text)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Principal:
    """What the caller may do: global "m" or "r", or per-collection grants (name -> "r"/"rw")."""

    mode: str  # "m", "r" or "collections"
    grants: dict[str, str] = field(default_factory=dict)

    @property
    def is_global(self) -> bool:
        return self.mode != "collections"

    def view(self, name: str, aliases: dict[str, str]) -> tuple[str, str]:
        """(granted name, level) for `name`, or Qdrant's 403 naming it."""
        if name in self.grants:
            return name, self.grants[name]
        target = aliases.get(name)
        if target is not None and target in self.grants:
            return target, self.grants[target]
        raise Forbidden(f"Forbidden: Access to collection {name} is required")

    def may_read(self, name: str, aliases: dict[str, str]) -> bool:
        if self.is_global:
            return True
        try:
            self.view(name, aliases)
            return True
        except Forbidden:
            return False


FULL = Principal("m")
READ_ONLY = Principal("r")


# -- who is calling ---------------------------------------------------------------------


def is_open_path(path: str) -> bool:
    return path in OPEN_EXACT or path.startswith(OPEN_PREFIXES)


def presented_key(headers) -> str | None:
    """Qdrant's `extract_key`: the `api-key` header (even empty), else `Authorization`
    with the exact `Bearer ` prefix."""
    key = headers.get("api-key")
    if key is not None:
        return key
    auth = headers.get("Authorization")
    if auth is not None and auth.startswith("Bearer "):
        return auth[len("Bearer ") :]
    return None


def authenticate(service, headers) -> tuple[Principal, dict | None]:
    """The caller's principal and the token's `value_exists` claim (None if none), or a
    Refusal. `service` is settings.service."""
    key = presented_key(headers)
    if key is None:
        raise Refusal(401, NO_KEY)
    full_key, read_key = service.api_key or None, service.read_only_api_key or None
    if full_key and hmac.compare_digest(key.encode(), full_key.encode()):
        return FULL, None
    if read_key and hmac.compare_digest(key.encode(), read_key.encode()):
        return READ_ONLY, None
    if service.jwt_rbac and full_key:
        return claims_principal(decode_token(key, full_key))
    raise Refusal(401, INVALID)


def decode_token(token: str, secret: str) -> dict:
    """The verified claims of an HS256 JWT, with jsonwebtoken's outcomes as Qdrant maps
    them: a bad signature 403, anything that is not a JWT of ours 401."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PyJWT's short-key warnings: the key is the operator's
            decoded = PyJWS().decode_complete(token, secret, algorithms=["HS256"])
    except jwt.InvalidSignatureError:
        raise Refusal(403, INVALID_SIGNATURE) from None
    except Exception:  # malformed, another algorithm, `alg: none`
        raise Refusal(401, INVALID) from None
    try:
        claims = json.loads(decoded["payload"])
    except ValueError:
        raise Refusal(401, INVALID) from None
    if not isinstance(claims, dict):
        raise Refusal(401, INVALID)
    return claims


def claims_principal(claims: dict) -> tuple[Principal, dict | None]:
    """Qdrant's `Claims` (src/common/auth/claims.rs): parsed, then `exp`, then validated."""
    principal = _parse_access(claims.get("access", "m"))
    sub = claims.get("sub")
    exp = claims.get("exp")
    value_exists = _parse_value_exists(claims.get("value_exists"))
    if sub is not None and not isinstance(sub, str):
        raise Refusal(401, INVALID)
    if exp is not None and not _is_u64(exp):
        raise Refusal(401, INVALID)
    if exp is not None and exp + JWT_LEEWAY_S < math.floor(time.time()):
        raise Refusal(403, EXPIRED)
    _validate_access(claims.get("access"))
    return principal, value_exists


def _is_u64(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**64


def _parse_access(access) -> Principal:
    if access == "m":
        return FULL
    if access == "r":
        return READ_ONLY
    if not isinstance(access, list):
        raise Refusal(401, INVALID)
    grants: dict[str, str] = {}
    for item in access:
        if not isinstance(item, dict):
            raise Refusal(401, INVALID)
        name, level = item.get("collection"), item.get("access")
        if not isinstance(name, str) or level not in ("r", "rw") or not _is_payload_constraint(item.get("payload")):
            raise Refusal(401, INVALID)
        grants.setdefault(name, level)  # Qdrant's find_view takes the first
    return Principal("collections", grants)


def _is_payload_constraint(payload) -> bool:
    """Qdrant 1.15's `PayloadConstraint`: {json path: string | integer | boolean}, or null."""
    if payload is None:
        return True
    return isinstance(payload, dict) and all(
        isinstance(key, str) and key and isinstance(value, (str, int, bool)) for key, value in payload.items()
    )


def _validate_access(access) -> None:
    """`Access::validate`: a collection appears once (the last failing entry is the one
    reported, as Qdrant's merge keeps it); then pydrant's refusal of `payload` constraints."""
    if not isinstance(access, list):
        return
    seen: set[str] = set()
    duplicated = False
    for item in access:
        duplicated = duplicated or item["collection"] in seen
        seen.add(item["collection"])
    if duplicated:
        raise Refusal(401, DUPLICATE_COLLECTION)
    if any(item.get("payload") is not None for item in access):
        raise Refusal(403, PAYLOAD_UNSUPPORTED)


def _parse_value_exists(value) -> dict | None:
    """`ValueExists {collection, matches: [{key, value}]}`; values are strings, integers or
    booleans (Qdrant's ValueVariants)."""
    if value is None:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("collection"), str):
        raise Refusal(401, INVALID)
    matches = value.get("matches")
    if not isinstance(matches, list):
        raise Refusal(401, INVALID)
    conditions = []
    for pair in matches:
        if not isinstance(pair, dict) or not isinstance(pair.get("key"), str) or not pair["key"]:
            raise Refusal(401, INVALID)
        matched = pair.get("value")
        if not isinstance(matched, (str, bool, int)) or (isinstance(matched, int) and not isinstance(matched, bool)
                                                          and not -(2**63) <= matched < 2**63):
            raise Refusal(401, INVALID)
        conditions.append({"key": pair["key"], "match": {"value": matched}})
    return {"collection": value["collection"], "filter": {"must": conditions}}


async def check_value_exists(toc, value_exists: dict) -> None:
    """Qdrant's `validate_value_exists`: one point matching the claim's conditions must be
    in its collection; 403 when the collection does not exist, 401 when no point matches.
    Not a read of the caller's: no strict mode, no rate limit, off the event loop."""
    try:
        collection = toc.get(value_exists["collection"])
    except NotFound:
        raise Refusal(403, STATEFUL_FAILED) from None
    try:
        found = await off_loop(_any_point_matches, collection, value_exists["filter"])
    except BadInput:  # a key that is no JSON path: Qdrant cannot even parse such claims
        raise Refusal(401, INVALID) from None
    if not found:
        raise Refusal(401, STATEFUL_FAILED)


def _any_point_matches(collection, filter_: dict) -> bool:
    predicate = collection.compile_filter(filter_)
    records, _ = collection.reads.scroll(None, 1, predicate, False, False)
    return bool(records)


# -- what the caller may do -------------------------------------------------------------


def check(principal: Principal, rule: Requirement, name: str | None, aliases: dict[str, str]) -> None:
    """Qdrant's `check_global_access` / `check_collection_access` (lib/storage/src/rbac/mod.rs)."""
    if rule.scope in (OPEN_SCOPE, ANY_SCOPE):
        return
    if principal.is_global:
        if (rule.write or rule.manage) and principal.mode == "r":
            raise Forbidden(GLOBAL_MANAGE_REQUIRED)
        return
    if rule.scope == GLOBAL_SCOPE or name is None:
        raise Forbidden(GLOBAL_REQUIRED)
    granted, level = principal.view(name, aliases)
    if rule.write and level == "r":
        raise Forbidden(f"Forbidden: Write access to collection {granted} is required")
    if rule.manage:
        raise Forbidden(MANAGE_REQUIRED)


async def authorize(settings, request, toc) -> Response | None:
    """The before-request hook: None to go on, or the middleware's plain-text refusal.
    A refused operation raises Forbidden (the JSON envelope, as Qdrant's handlers answer)."""
    g.access = FULL
    service = settings.service
    if not service.api_key and not service.read_only_api_key:
        return None
    if request.method == "OPTIONS" or is_open_path(request.path):
        return None
    try:
        principal, value_exists = authenticate(service, request.headers)
        if value_exists is not None:
            await check_value_exists(toc, value_exists)
    except Refusal as refusal:
        return Response(refusal.message, status=refusal.status, mimetype="text/plain")
    g.access = principal
    endpoint = request.url_rule.endpoint if request.url_rule is not None else None
    operation, rule = operation_for(endpoint)
    if rule is None or principal is FULL:
        return None
    check(principal, rule, (request.view_args or {}).get("name"), toc.aliases)
    if rule.scope == COLLECTION_SCOPE and rule.lookups and not principal.is_global:
        for other in lookup_collections(operation, await _json_body(request)):
            principal.view(other, toc.aliases)
    return None


async def _json_body(request):
    """The body parsed for the lookup check (kept for the handler to read again); None when
    it is not JSON (the handler answers that)."""
    raw = await request.get_data(cache=True)
    try:
        return await off_loop(json.loads, raw) if raw else None
    except ValueError:
        return None


def may_read(name: str, aliases: dict[str, str]) -> bool:
    """For handlers that list collections or aliases: whether the caller may see `name`."""
    principal = g.get("access", FULL)
    return principal.may_read(name, aliases)


def caller_is_global() -> bool:
    """Whether the caller has global access (no key configured, a key, or a global token)."""
    return g.get("access", FULL).is_global
