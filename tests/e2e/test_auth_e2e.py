"""API key and JWT RBAC against a real server, with qdrant-client and raw HTTP."""

import warnings

import httpx
import jwt
import pytest
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import UnexpectedResponse

from serverproc import ServerProcess

pytestmark = pytest.mark.e2e

KEY = "e2e-api-key-that-is-long-enough-for-hs256"


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    root = tmp_path_factory.mktemp("auth")
    env = {"PYDRANT__SERVICE__API_KEY": KEY, "PYDRANT__SERVICE__READ_ONLY_API_KEY": "ro-key",
           "PYDRANT__SERVICE__JWT_RBAC": "true"}
    proc = ServerProcess(root / "storage", extra_env=env).start()
    yield proc
    proc.stop()


def make_client(server, key):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "api key over insecure connection": it is loopback
        return QdrantClient(url=server.url, api_key=key, timeout=30)


def test_keys_and_tokens(secured):
    admin = make_client(secured, KEY)
    admin.create_collection("guarded", vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
    admin.upsert("guarded", [models.PointStruct(id=1, vector=[1.0, 0.0])])

    anonymous = httpx.get(f"{secured.url}/collections")
    # Qdrant's middleware answers in plain text
    assert anonymous.status_code == 401 and anonymous.text == "Must provide an API key or an Authorization bearer token"
    assert httpx.get(f"{secured.url}/healthz").status_code == 200

    reader = make_client(secured, "ro-key")
    assert reader.count("guarded").count == 1
    denied = httpx.put(f"{secured.url}/collections/guarded/points", headers={"api-key": "ro-key"},
                       json={"points": [{"id": 2, "vector": [0.0, 1.0]}]})
    assert denied.status_code == 403

    scoped = jwt.encode({"access": [{"collection": "guarded", "access": "rw"}]}, KEY, algorithm="HS256")
    writer = make_client(secured, scoped)
    writer.upsert("guarded", [models.PointStruct(id=2, vector=[0.0, 1.0])])
    assert admin.count("guarded").count == 2
    forbidden = httpx.delete(f"{secured.url}/collections/guarded", headers={"Authorization": f"Bearer {scoped}"})
    assert forbidden.status_code == 403
    assert admin.collection_exists("guarded")


def test_snapshot_rules_for_collection_tokens(secured):
    """Qdrant 1.15's snapshot rules (docs/snapshots.md "Who may do what") on a real server."""
    admin = make_client(secured, KEY)
    admin.create_collection("snapped", vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
    admin.upsert("snapped", [models.PointStruct(id=1, vector=[1.0, 0.0])])
    rw = jwt.encode({"access": [{"collection": "snapped", "access": "rw"}]}, KEY, algorithm="HS256")
    ro = jwt.encode({"access": [{"collection": "snapped", "access": "r"}]}, KEY, algorithm="HS256")

    writer = make_client(secured, rw)
    description = writer.create_snapshot("snapped")
    assert [s.name for s in writer.list_snapshots("snapped")] == [description.name]
    shard = writer.create_shard_snapshot("snapped", 0)
    reader = make_client(secured, ro)
    assert [s.name for s in reader.list_shard_snapshots("snapped", 0)] == [shard.name]
    download = httpx.get(f"{secured.url}/collections/snapped/snapshots/{description.name}", headers={"api-key": ro})
    assert download.status_code == 200 and len(download.content) == description.size

    def call(method, path, key, **kwargs):
        return httpx.request(method, f"{secured.url}{path}", headers={"api-key": key}, **kwargs)

    assert call("POST", "/collections/snapped/snapshots", ro).status_code == 403
    assert call("DELETE", f"/collections/snapped/shards/0/snapshots/{shard.name}", ro).status_code == 403
    recover = call("PUT", "/collections/snapped/snapshots/recover", rw, json={"location": description.name})
    assert recover.status_code == 403 and "Global access is required" in recover.json()["status"]["error"]
    assert call("GET", "/snapshots", rw).status_code == 403
    assert call("POST", "/snapshots", jwt.encode({"access": "r"}, KEY, algorithm="HS256")).status_code == 403
    assert call("GET", "/snapshots", "ro-key").status_code == 200

    assert writer.delete_snapshot("snapped", description.name) is True
    assert writer.delete_shard_snapshot("snapped", 0, shard.name) is True
    assert admin.list_snapshots("snapped") == [] and admin.list_shard_snapshots("snapped", 0) == []


def test_scoped_token_through_an_alias_and_value_exists(secured):
    """qdrant-client with a token scoped to one collection: it works through the
    collection's alias, not through another collection's alias, and lists only its own;
    a `value_exists` token is valid while a matching point exists, and refused (401, Qdrant's
    text) once that point is deleted."""
    admin = make_client(secured, KEY)
    for name in ("tenant_a", "tenant_b"):
        admin.create_collection(name, vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
    admin.update_collection_aliases(change_aliases_operations=[
        models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name="tenant_a", alias_name="a_alias")),
        models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name="tenant_b", alias_name="b_alias")),
    ])
    scoped = jwt.encode({"access": [{"collection": "tenant_a", "access": "rw"}]}, KEY, algorithm="HS256")
    tenant = make_client(secured, scoped)
    tenant.upsert("a_alias", [models.PointStruct(id=1, vector=[1.0, 0.0], payload={"user": "alice"})])
    assert admin.count("tenant_a").count == 1
    assert [p.id for p in tenant.query_points("a_alias", query=[1.0, 0.0]).points] == [1]
    with pytest.raises(UnexpectedResponse) as refused:
        tenant.count("b_alias")
    assert refused.value.status_code == 403 and b"Access to collection b_alias is required" in refused.value.content
    with pytest.raises(UnexpectedResponse) as hidden:
        tenant.get_collection("no_such_collection")
    assert hidden.value.status_code == 403  # not 404: the token learns nothing about other names
    assert [c.name for c in tenant.get_collections().collections] == ["tenant_a"]
    assert {(a.alias_name, a.collection_name) for a in tenant.get_aliases().aliases} == {("a_alias", "tenant_a")}

    while_alice = jwt.encode({"access": [{"collection": "tenant_a", "access": "r"}],
                              "value_exists": {"collection": "tenant_a",
                                               "matches": [{"key": "user", "value": "alice"}]}}, KEY, algorithm="HS256")
    reader = make_client(secured, while_alice)
    assert reader.count("tenant_a").count == 1
    admin.delete("tenant_a", points_selector=models.PointIdsList(points=[1]), wait=True)
    with pytest.raises(UnexpectedResponse) as revoked:
        reader.count("tenant_a")
    assert revoked.value.status_code == 401 and revoked.value.content == b"Invalid JWT, stateful validation failed"
    admin.upsert("tenant_a", [models.PointStruct(id=2, vector=[0.0, 1.0], payload={"user": "alice"})])
    assert reader.count("tenant_a").count == 1  # valid again: checked on every request
