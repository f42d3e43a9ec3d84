"""API keys and JWT RBAC as Qdrant 1.15 decides them (pydrant.http.auth, docs/security.md):
who is calling (keys, token decoding, claims, `value_exists`), what a principal may do, and,
in-process through Quart's test client, aliases, hidden collections, filtered listings and
error texts that never echo a secret. The whole operation x principal matrix is
tests/http/test_permission_matrix.py."""

from __future__ import annotations

import json
import time
from contextlib import asynccontextmanager
from pathlib import Path
from types import SimpleNamespace

import inprocess
import jwt
import pytest

from pydrant.errors import Forbidden
from pydrant.http import auth
from pydrant.http.access_rules import GLOBAL_MANAGE, GLOBAL_READ, MANAGE_EXTRAS, READ, WRITE

SECRET = "a-secret-api-key-long-enough-for-hs256"
OTHER_SECRET = "another-secret-key-long-enough-for-hs256"


def service(api_key=SECRET, read_only=None, jwt_rbac=True):
    return SimpleNamespace(api_key=api_key, read_only_api_key=read_only, jwt_rbac=jwt_rbac)


def token(secret=SECRET, algorithm="HS256", **claims):
    return jwt.encode(claims, secret, algorithm=algorithm)


def refusal(svc, headers) -> tuple[int, str]:
    with pytest.raises(auth.Refusal) as caught:
        auth.authenticate(svc, headers)
    return caught.value.status, caught.value.message


# -- who is calling ---------------------------------------------------------------------


def test_missing_key_and_unknown_key_are_401():
    assert refusal(service(), {}) == (401, auth.NO_KEY)
    assert refusal(service(jwt_rbac=False), {"api-key": "nope"}) == (401, auth.INVALID)
    assert refusal(service(), {"api-key": "nope"}) == (401, auth.INVALID)  # not a JWT either


def test_key_headers_as_qdrant_reads_them():
    assert auth.authenticate(service(), {"api-key": SECRET})[0] is auth.FULL
    assert auth.authenticate(service(), {"Authorization": f"Bearer {SECRET}"})[0] is auth.FULL
    # only the exact `Bearer ` prefix; a present but empty api-key header is the key
    assert refusal(service(), {"Authorization": f"bearer {SECRET}"}) == (401, auth.NO_KEY)
    assert refusal(service(), {"api-key": "", "Authorization": f"Bearer {SECRET}"}) == (401, auth.INVALID)


def test_read_only_key_is_global_read():
    principal, _ = auth.authenticate(service(read_only="ro"), {"api-key": "ro"})
    assert principal is auth.READ_ONLY
    assert refusal(service(api_key=None, read_only="ro"), {"api-key": SECRET}) == (401, auth.INVALID)


def test_jwt_needs_rbac_and_the_api_key():
    assert refusal(service(jwt_rbac=False), {"api-key": token(access="m")}) == (401, auth.INVALID)
    assert auth.authenticate(service(), {"api-key": token(access="m")})[0] is auth.FULL
    assert auth.authenticate(service(), {"api-key": token(access="r")})[0] is auth.READ_ONLY


def test_forged_tokens():
    """jsonwebtoken's outcomes as Qdrant maps them: another key's signature is 403
    `InvalidSignature`, anything that is not an HS256 JWT of ours 401."""
    assert refusal(service(), {"api-key": token(secret=OTHER_SECRET, access="m")}) == (403, "InvalidSignature")
    unsigned = jwt.encode({"access": "m"}, None, algorithm="none")
    assert refusal(service(), {"api-key": unsigned}) == (401, auth.INVALID)
    with pytest.warns(jwt.warnings.InsecureKeyLengthWarning):  # PyJWT's, when making the token
        hs512 = token(algorithm="HS512", access="m")
    assert refusal(service(), {"api-key": hs512}) == (401, auth.INVALID)
    assert refusal(service(), {"api-key": "not.a.jwt"}) == (401, auth.INVALID)
    header, payload, _ = token(access="r").split(".")
    assert refusal(service(), {"api-key": f"{header}.{payload}.AAAA"}) == (403, "InvalidSignature")


def test_expiry_has_qdrant_leeway():
    now = int(time.time())
    assert auth.authenticate(service(), {"api-key": token(access="m", exp=now - 10)})[0] is auth.FULL
    assert refusal(service(), {"api-key": token(access="m", exp=now - 40)}) == (403, "ExpiredSignature")
    assert auth.authenticate(service(), {"api-key": token(access="m", exp=now + 3600)})[0] is auth.FULL


def test_claims_as_qdrant_parses_them():
    # `access` defaults to full access (claims.rs `default_access`)
    assert auth.authenticate(service(), {"api-key": token(sub="someone")})[0] is auth.FULL
    principal, _ = auth.authenticate(service(), {"api-key": token(access=[{"collection": "a", "access": "rw"}])})
    assert principal.grants == {"a": "rw"} and not principal.is_global
    for bad in ({"access": "x"}, {"access": [{"collection": "a", "access": "m"}]}, {"access": {"collection": "a"}},
                {"access": None}, {"access": "m", "exp": "soon"}, {"access": "m", "exp": 1.5e12},
                {"access": "m", "sub": 7}, {"access": "m", "value_exists": {"collection": "a"}}):
        assert refusal(service(), {"api-key": token(**bad)}) == (401, auth.INVALID), bad
    twice = [{"collection": "a", "access": "r"}, {"collection": "a", "access": "rw"}]
    assert refusal(service(), {"api-key": token(access=twice)}) == (401, auth.DUPLICATE_COLLECTION)
    payload = [{"collection": "a", "access": "r", "payload": {"user": "x"}}]
    # Qdrant 1.15 restricts such a token to matching points; pydrant refuses it outright
    assert refusal(service(), {"api-key": token(access=payload)}) == (403, auth.PAYLOAD_UNSUPPORTED)
    not_a_constraint = [{"collection": "a", "access": "r", "payload": {"user": [1, 2]}}]
    assert refusal(service(), {"api-key": token(access=not_a_constraint)}) == (401, auth.INVALID)
    none_payload = [{"collection": "a", "access": "r", "payload": None, "extra": 1}]
    assert auth.authenticate(service(), {"api-key": token(access=none_payload)})[0].grants == {"a": "r"}


def test_malformed_claims_win_over_expiry():
    """Claims are parsed before `exp` is checked (jsonwebtoken's decode order)."""
    assert refusal(service(), {"api-key": token(access="x", exp=1)}) == (401, auth.INVALID)


# -- what a principal may do ------------------------------------------------------------


def forbidden(principal, rule, name, aliases=None) -> str:
    with pytest.raises(Forbidden) as caught:
        auth.check(principal, rule, name, aliases or {})
    return caught.value.message


def test_requirement_messages():
    scoped = auth.Principal("collections", {"a": "rw", "b": "r"})
    assert forbidden(scoped, GLOBAL_READ, None) == "Forbidden: Global access is required"
    assert forbidden(auth.READ_ONLY, GLOBAL_MANAGE, None) == "Forbidden: Global manage access is required"
    assert forbidden(auth.READ_ONLY, WRITE, "a") == "Forbidden: Global manage access is required"
    assert forbidden(scoped, READ, "c") == "Forbidden: Access to collection c is required"
    assert forbidden(scoped, WRITE, "b") == "Forbidden: Write access to collection b is required"
    assert forbidden(scoped, MANAGE_EXTRAS, "a") == "Forbidden: Manage access for this operation is required"
    assert forbidden(scoped, MANAGE_EXTRAS, "b") == "Forbidden: Write access to collection b is required"
    auth.check(scoped, WRITE, "a", {})
    auth.check(auth.READ_ONLY, GLOBAL_READ, None, {})
    auth.check(auth.FULL, GLOBAL_MANAGE, None, {})


def test_aliases_resolve_for_the_check():
    scoped = auth.Principal("collections", {"a": "rw", "bl": "r"})
    aliases = {"al": "a", "bl": "b", "b2": "b"}
    auth.check(scoped, WRITE, "al", aliases)  # a's token through a's alias
    assert forbidden(scoped, READ, "b", aliases) == "Forbidden: Access to collection b is required"
    auth.check(scoped, READ, "bl", aliases)  # the alias named in the token, as Qdrant
    assert forbidden(scoped, READ, "b2", aliases) == "Forbidden: Access to collection b2 is required"
    assert forbidden(scoped, WRITE, "bl", aliases) == "Forbidden: Write access to collection bl is required"


# -- in-process: aliases, hidden collections, listings, value_exists, secrets -----------

RO_KEY = "read-only-key-of-the-auth-tests"


@asynccontextmanager
async def running_app(tmp_path: Path):
    auth = {"service.api_key": SECRET, "service.read_only_api_key": RO_KEY, "service.jwt_rbac": True}
    async with inprocess.running_app(tmp_path, auth) as client:
        admin = {"api-key": SECRET}
        for name in ("a", "b"):
            r = await client.put(f"/collections/{name}", json={"vectors": {"size": 2, "distance": "Dot"}}, headers=admin)
            assert r.status_code == 200
            points = [{"id": 1, "vector": [1.0, 0.0], "payload": {"user": "alice", "n": 1}}]
            r = await client.put(f"/collections/{name}/points?wait=true", json={"points": points}, headers=admin)
            assert r.status_code == 200
        actions = [{"create_alias": {"collection_name": c, "alias_name": a}} for a, c in (("al", "a"), ("bl", "b"))]
        r = await client.post("/collections/aliases", json={"actions": actions}, headers=admin)
        assert r.status_code == 200
        yield client


async def call(client, method, path, key, **kwargs):
    response = await client.open(path, method=method, headers={"api-key": key}, **kwargs)
    text = (await response.get_data()).decode()
    return response.status_code, text


def error_of(text: str) -> str:
    return json.loads(text)["status"]["error"]


A_RW = token(access=[{"collection": "a", "access": "rw"}])


async def test_a_token_works_through_an_alias_of_its_collection(tmp_path):
    async with running_app(tmp_path) as client:
        status, _ = await call(client, "POST", "/collections/al/points/count", A_RW, json={})
        assert status == 200
        status, _ = await call(client, "PUT", "/collections/al/points?wait=true", A_RW,
                               json={"points": [{"id": 2, "vector": [0.0, 1.0]}]})
        assert status == 200
        status, text = await call(client, "POST", "/collections/a/points/count", SECRET, json={})
        assert json.loads(text)["result"]["count"] == 2


async def test_a_token_cannot_reach_another_collection_through_its_alias(tmp_path):
    async with running_app(tmp_path) as client:
        for method, path, body in (("GET", "/collections/bl", None), ("POST", "/collections/bl/points/scroll", {}),
                                   ("PUT", "/collections/bl/points", {"points": [{"id": 9, "vector": [1, 1]}]})):
            status, text = await call(client, method, path, A_RW, json=body)
            assert (status, error_of(text)) == (403, "Forbidden: Access to collection bl is required")
        status, text = await call(client, "POST", "/collections/b/points/count", SECRET, json={})
        assert json.loads(text)["result"]["count"] == 1  # nothing written to b


async def test_another_collection_is_hidden_whether_it_exists_or_not(tmp_path):
    """A token for `a` gets the same 403 for `b` (existing) and `nope` (missing), on every
    kind of request: read, list, exists, snapshots, the change feed, aliases."""
    async with running_app(tmp_path) as client:
        for suffix, method, body in (("", "GET", None), ("/exists", "GET", None), ("/points/count", "POST", {}),
                                     ("/points/scroll", "POST", {}), ("/snapshots", "GET", None),
                                     ("/snapshots", "POST", None), ("/changes", "GET", None),
                                     ("/aliases", "GET", None), ("/cluster", "GET", None)):
            answers = []
            for name in ("b", "nope"):
                status, text = await call(client, method, f"/collections/{name}{suffix}", A_RW, json=body)
                answers.append((status, error_of(text).replace(f"collection {name} ", "collection <name> ")))
            assert answers[0] == answers[1] == (403, "Forbidden: Access to collection <name> is required"), suffix
        # a global token still sees the difference
        assert (await call(client, "GET", "/collections/nope", SECRET))[0] == 404


async def test_listings_show_only_what_the_token_may_see(tmp_path):
    async with running_app(tmp_path) as client:
        _, text = await call(client, "GET", "/collections", A_RW)
        assert json.loads(text)["result"]["collections"] == [{"name": "a"}]
        _, text = await call(client, "GET", "/aliases", A_RW)
        assert json.loads(text)["result"]["aliases"] == [{"alias_name": "al", "collection_name": "a"}]
        _, text = await call(client, "GET", "/collections/a/aliases", A_RW)
        assert json.loads(text)["result"]["aliases"] == [{"alias_name": "al", "collection_name": "a"}]
        nothing = token(access=[])
        _, text = await call(client, "GET", "/collections", nothing)
        assert json.loads(text)["result"]["collections"] == []
        _, text = await call(client, "GET", "/aliases", nothing)
        assert json.loads(text)["result"]["aliases"] == []
        for key in (SECRET, RO_KEY, token(access="r")):
            _, text = await call(client, "GET", "/collections", key)
            assert [c["name"] for c in json.loads(text)["result"]["collections"]] == ["a", "b"]
            _, text = await call(client, "GET", "/aliases", key)
            assert len(json.loads(text)["result"]["aliases"]) == 2


async def test_telemetry_and_issues_show_only_the_tokens_collections(tmp_path):
    """As Qdrant: a collection-scoped token learns nothing of other collections from
    /telemetry (count and names) or /issues; global callers see everything."""
    from pydrant.issues import BOARD

    BOARD.clear()
    BOARD.submit("TEST_ISSUE/a", "about a")
    BOARD.submit("TEST_ISSUE/b", "about b")
    BOARD.submit("TEST_NODE_ISSUE", "about the node")
    try:
        async with running_app(tmp_path) as client:
            _, text = await call(client, "GET", "/telemetry?details_level=2", A_RW)
            collections = json.loads(text)["result"]["collections"]
            assert collections["number_of_collections"] == 1
            assert [c["id"] for c in collections["collections"]] == ["a"]
            _, text = await call(client, "GET", "/issues", A_RW)
            assert [i["id"] for i in json.loads(text)["result"]["issues"]] == ["TEST_ISSUE/a"]
            for key in (SECRET, RO_KEY, token(access="r")):
                _, text = await call(client, "GET", "/telemetry?details_level=2", key)
                assert json.loads(text)["result"]["collections"]["number_of_collections"] == 2
                _, text = await call(client, "GET", "/issues", key)
                ids = [i["id"] for i in json.loads(text)["result"]["issues"]]
                assert ids == ["TEST_ISSUE/a", "TEST_ISSUE/b", "TEST_NODE_ISSUE"]
    finally:
        BOARD.clear()


async def test_lookups_need_access_to_the_looked_up_collection(tmp_path):
    """Qdrant's check_lookup_from / check_with_lookup: a token for `a` cannot read `b`'s
    vectors or payloads through `lookup_from` or `with_lookup`, nested prefetches and
    batches included."""
    async with running_app(tmp_path) as client:
        refused = [
            ("/points/query", {"query": [1, 0], "lookup_from": {"collection": "b"}}),
            ("/points/query", {"prefetch": {"prefetch": [{"query": [1, 0], "lookup_from": {"collection": "b"}}]},
                               "query": [1, 0]}),
            ("/points/query/batch", {"searches": [{"query": [1, 0]}, {"query": 1, "lookup_from": {"collection": "b"}}]}),
            ("/points/recommend", {"positive": [1], "lookup_from": {"collection": "b"}}),
            ("/points/discover", {"target": 1, "lookup_from": {"collection": "b"}}),
            ("/points/search/groups", {"vector": [1, 0], "group_by": "user", "with_lookup": "b"}),
            ("/points/query/groups", {"query": [1, 0], "group_by": "user", "with_lookup": {"collection": "b"}}),
        ]
        for path, body in refused:
            status, text = await call(client, "POST", f"/collections/a{path}", A_RW, json=body)
            assert (status, error_of(text)) == (403, "Forbidden: Access to collection b is required"), path
        status, _ = await call(client, "POST", "/collections/a/points/query", A_RW,
                               json={"query": [1, 0], "lookup_from": {"collection": "al"}})
        assert status == 200
        both = token(access=[{"collection": "a", "access": "r"}, {"collection": "b", "access": "r"}])
        status, _ = await call(client, "POST", "/collections/a/points/query", both,
                               json={"query": [1, 0], "lookup_from": {"collection": "b"}})
        assert status == 200


def value_token(collection="a", matches=None, access="m"):
    matches = [{"key": "user", "value": "alice"}] if matches is None else matches
    return token(access=access, value_exists={"collection": collection, "matches": matches})


async def test_value_exists_grants_while_a_matching_point_exists(tmp_path):
    async with running_app(tmp_path) as client:
        key = value_token(matches=[{"key": "user", "value": "alice"}, {"key": "n", "value": 1}],
                          access=[{"collection": "a", "access": "r"}])
        assert (await call(client, "POST", "/collections/a/points/count", key, json={}))[0] == 200
        status, text = await call(client, "PUT", "/collections/a/points", key, json={"points": []})
        assert (status, error_of(text)) == (403, "Forbidden: Write access to collection a is required")
        status, _ = await call(client, "POST", "/collections/a/points/delete?wait=true", SECRET, json={"points": [1]})
        assert status == 200
        assert await call(client, "POST", "/collections/a/points/count", key, json={}) == (
            401, "Invalid JWT, stateful validation failed")
        status, _ = await call(client, "PUT", "/collections/a/points?wait=true", SECRET,
                               json={"points": [{"id": 5, "vector": [1, 1], "payload": {"user": "alice", "n": 1}}]})
        assert status == 200
        assert (await call(client, "POST", "/collections/a/points/count", key, json={}))[0] == 200


async def test_value_exists_refusals(tmp_path):
    async with running_app(tmp_path) as client:
        no_match = value_token(matches=[{"key": "user", "value": "bob"}])
        assert await call(client, "GET", "/collections", no_match) == (401, "Invalid JWT, stateful validation failed")
        wrong_type = value_token(matches=[{"key": "n", "value": "1"}])
        assert (await call(client, "GET", "/collections", wrong_type))[0] == 401
        missing = value_token(collection="nope")
        assert await call(client, "GET", "/collections", missing) == (403, "Invalid JWT, stateful validation failed")
        through_alias = value_token(collection="al")
        assert (await call(client, "GET", "/collections", through_alias))[0] == 200
        assert (await call(client, "GET", "/collections", value_token(matches=[])))[0] == 200  # any point
        floats = value_token(matches=[{"key": "n", "value": 1.0}])
        assert await call(client, "GET", "/collections", floats) == (401, "Invalid API key or JWT")
        not_a_path = value_token(matches=[{"key": "user[", "value": "alice"}])
        assert await call(client, "GET", "/collections", not_a_path) == (401, "Invalid API key or JWT")
        # the health probes stay open whatever the token
        assert (await call(client, "GET", "/healthz", no_match))[0] == 200


async def test_refusals_never_echo_a_secret(tmp_path):
    """Keys and tokens presented (right or wrong) and the server's key never appear in an
    error body or header, whatever the refusal."""
    async with running_app(tmp_path) as client:
        marker = "SeCrEt-MaRkEr-1234567890"
        forged = token(secret=OTHER_SECRET, access="m", sub=marker)
        expired = token(access="m", exp=int(time.time()) - 3600, sub=marker)
        scoped = token(access=[{"collection": "a", "access": "r"}], sub=marker)
        no_match = value_token(matches=[{"key": "user", "value": marker}])
        cases = [(marker, "GET", "/collections"), (f"{marker}.{marker}.{marker}", "GET", "/collections"),
                 (forged, "GET", "/collections"), (expired, "DELETE", "/collections/a"),
                 (scoped, "DELETE", "/collections/a"), (scoped, "GET", f"/collections/{marker}x"),
                 (no_match, "GET", "/collections"), (RO_KEY, "PUT", "/collections/a/points")]
        for key, method, path in cases:
            for header in ("api-key", "Authorization"):
                value = key if header == "api-key" else f"Bearer {key}"
                response = await client.open(path, method=method, headers={header: value}, json={"points": []})
                assert response.status_code in (401, 403), (key, path)
                shown = (await response.get_data()).decode() + json.dumps(dict(response.headers))
                for secret in (key, SECRET, RO_KEY, marker):
                    if secret in path:
                        continue  # the path names it: Qdrant's message names the collection of the path
                    assert secret not in shown, (key[:12], path, shown)
