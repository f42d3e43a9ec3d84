"""API keys and JWT RBAC decisions (pydrant.http.auth), request by request."""

import time
from types import SimpleNamespace

import jwt
import pytest

from pydrant.errors import Forbidden, Unauthorized
from pydrant.http.auth import check_access

SECRET = "a-secret-api-key-long-enough-for-hs256"


def settings(api_key=SECRET, read_only=None, jwt_rbac=False):
    service = SimpleNamespace(api_key=api_key, read_only_api_key=read_only, jwt_rbac=jwt_rbac)
    return SimpleNamespace(service=service)


def request(method, path, key=None, bearer=False):
    headers = {}
    if key is not None:
        headers["Authorization" if bearer else "api-key"] = f"Bearer {key}" if bearer else key
    return SimpleNamespace(method=method, path=path, headers=headers)


def token(**claims):
    return jwt.encode(claims, SECRET, algorithm="HS256")


def test_open_without_keys():
    check_access(settings(api_key=None), request("DELETE", "/collections/a"))


def test_missing_and_wrong_key_are_401():
    with pytest.raises(Unauthorized):
        check_access(settings(), request("GET", "/collections"))
    with pytest.raises(Unauthorized):
        check_access(settings(), request("GET", "/collections", key="nope"))


def test_health_probes_need_no_key():
    for path in ("/", "/healthz", "/livez", "/readyz"):
        check_access(settings(), request("GET", path))


def test_full_key_in_header_or_bearer():
    check_access(settings(), request("PUT", "/collections/a", key=SECRET))
    check_access(settings(), request("PUT", "/collections/a", key=SECRET, bearer=True))


def test_read_only_key_reads_but_cannot_write():
    s = settings(read_only="ro")
    check_access(s, request("POST", "/collections/a/points/scroll", key="ro"))
    check_access(s, request("POST", "/collections/a/points", key="ro"))  # retrieve
    with pytest.raises(Forbidden):
        check_access(s, request("PUT", "/collections/a/points", key="ro"))


def test_jwt_ignored_unless_rbac_enabled():
    with pytest.raises(Unauthorized):
        check_access(settings(), request("GET", "/collections", key=token(access="m")))


def test_jwt_global_manage_and_read():
    s = settings(jwt_rbac=True)
    check_access(s, request("DELETE", "/collections/a", key=token(access="m")))
    check_access(s, request("GET", "/collections", key=token(access="r")))
    with pytest.raises(Forbidden):
        check_access(s, request("PUT", "/collections/a/points", key=token(access="r")))


def test_jwt_signed_with_another_key_or_expired_is_401():
    s = settings(jwt_rbac=True)
    forged = jwt.encode({"access": "m"}, "another-secret-key-long-enough-for-hs256", algorithm="HS256")
    with pytest.raises(Unauthorized):
        check_access(s, request("GET", "/collections", key=forged))
    with pytest.raises(Unauthorized, match="expired"):
        check_access(s, request("GET", "/collections", key=token(access="m", exp=int(time.time()) - 10)))


def test_jwt_collection_grants():
    s = settings(jwt_rbac=True)
    key = token(access=[{"collection": "mine", "access": "rw"}, {"collection": "theirs", "access": "r"}])
    check_access(s, request("PUT", "/collections/mine/points", key=key))
    check_access(s, request("POST", "/collections/theirs/points/count", key=key))
    check_access(s, request("GET", "/collections", key=key))
    with pytest.raises(Forbidden):
        check_access(s, request("PUT", "/collections/theirs/points", key=key))
    with pytest.raises(Forbidden):
        check_access(s, request("DELETE", "/collections/mine", key=key))  # managing needs "m"
    with pytest.raises(Forbidden):
        check_access(s, request("GET", "/collections/other", key=key))
    with pytest.raises(Forbidden):
        check_access(s, request("POST", "/collections/aliases", key=key))


def test_jwt_value_exists_is_refused():
    s = settings(jwt_rbac=True)
    key = token(access="m", value_exists={"collection": "users", "matches": []})
    with pytest.raises(Forbidden, match="value_exists"):
        check_access(s, request("GET", "/collections", key=key))


# -- snapshots: Qdrant 1.15's rules (docs/snapshots.md "Who may do what") ---------------------

SNAPSHOT_READS = (
    "/collections/mine/snapshots", "/collections/mine/snapshots/a.snapshot",
    "/collections/mine/shards/0/snapshots", "/collections/mine/shards/0/snapshots/a.snapshot",
)
SNAPSHOT_WRITES = (
    ("POST", "/collections/mine/snapshots"), ("DELETE", "/collections/mine/snapshots/a.snapshot"),
    ("POST", "/collections/mine/shards/0/snapshots"), ("DELETE", "/collections/mine/shards/0/snapshots/a.snapshot"),
)
SNAPSHOT_RECOVERIES = (
    ("PUT", "/collections/mine/snapshots/recover"), ("POST", "/collections/mine/snapshots/upload"),
    ("PUT", "/collections/mine/shards/0/snapshots/recover"), ("POST", "/collections/mine/shards/0/snapshots/upload"),
)


def test_collection_tokens_read_snapshots_and_rw_creates_and_deletes_them():
    s = settings(jwt_rbac=True)
    rw = token(access=[{"collection": "mine", "access": "rw"}])
    ro = token(access=[{"collection": "mine", "access": "r"}])
    for path in SNAPSHOT_READS:
        check_access(s, request("GET", path, key=rw))
        check_access(s, request("GET", path, key=ro))
        with pytest.raises(Forbidden):
            check_access(s, request("GET", path.replace("mine", "theirs"), key=rw))
    for method, path in SNAPSHOT_WRITES:
        check_access(s, request(method, path, key=rw))
        with pytest.raises(Forbidden, match="only `r` access"):
            check_access(s, request(method, path, key=ro))
        with pytest.raises(Forbidden):
            check_access(s, request(method, path.replace("mine", "theirs"), key=rw))


def test_recovering_snapshots_needs_global_manage():
    s = settings(jwt_rbac=True)
    rw = token(access=[{"collection": "mine", "access": "rw"}])
    for method, path in SNAPSHOT_RECOVERIES:
        with pytest.raises(Forbidden, match="Global access is required"):
            check_access(s, request(method, path, key=rw))
        with pytest.raises(Forbidden):
            check_access(s, request(method, path, key=token(access="r")))
        check_access(s, request(method, path, key=token(access="m")))


def test_full_snapshots_need_global_access():
    s = settings(jwt_rbac=True, read_only="ro")
    rw = token(access=[{"collection": "mine", "access": "rw"}])
    for method, path in (("GET", "/snapshots"), ("GET", "/snapshots/full.snapshot"), ("POST", "/snapshots"),
                         ("DELETE", "/snapshots/full.snapshot")):
        with pytest.raises(Forbidden):
            check_access(s, request(method, path, key=rw))
        check_access(s, request(method, path, key=token(access="m")))
        check_access(s, request(method, path, key=SECRET))
        if method == "GET":
            check_access(s, request(method, path, key=token(access="r")))
            check_access(s, request(method, path, key="ro"))
        else:
            with pytest.raises(Forbidden):
                check_access(s, request(method, path, key=token(access="r")))
            with pytest.raises(Forbidden):
                check_access(s, request(method, path, key="ro"))
