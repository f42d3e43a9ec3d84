"""Strict mode end to end with qdrant-client 1.15.1: `update_collection(strict_mode_config=...)`
takes effect at once, refused requests answer Qdrant's status and message and change
nothing, and a rate limit answers 429 with Retry-After until its bucket refills."""

from __future__ import annotations

import json
import time

import pytest
from qdrant_client import models
from qdrant_client.common.client_exceptions import ResourceExhaustedResponse
from qdrant_client.http.exceptions import UnexpectedResponse

pytestmark = pytest.mark.e2e

DIM = 4


@pytest.fixture
def collection(client):
    name = "strict_e2e"
    client.delete_collection(name)
    client.create_collection(name, vectors_config=models.VectorParams(size=DIM, distance=models.Distance.DOT))
    client.upsert(name, [models.PointStruct(id=i, vector=[0.1 * i] * DIM, payload={"n": i}) for i in range(1, 4)])
    return name


def error_of(raised) -> tuple[int, str]:
    """(HTTP status, Qdrant's error message) of a refused client call."""
    exc = raised.value
    return exc.status_code, json.loads(exc.content)["status"]["error"]


def test_update_collection_enables_changes_and_disables_strict_mode(client, collection):
    client.update_collection(
        collection, strict_mode_config=models.StrictModeConfig(enabled=True, upsert_max_batchsize=2, max_points_count=5)
    )
    strict = client.get_collection(collection).config.strict_mode_config
    assert (strict.enabled, strict.upsert_max_batchsize, strict.max_points_count) == (True, 2, 5)
    three = [models.PointStruct(id=i, vector=[0.5] * DIM) for i in (10, 11, 12)]
    with pytest.raises(UnexpectedResponse) as raised:
        client.upsert(collection, three)
    status, body = error_of(raised)
    assert status == 400
    assert body == 'Bad request: Limit exceeded 3 > 2 for "upsert limit". Help: Reduce the "upsert limit" parameter to or below 2.'
    assert client.count(collection).count == 3  # nothing written

    # a second update changes one field and keeps the others
    client.update_collection(collection, strict_mode_config=models.StrictModeConfig(upsert_max_batchsize=3))
    strict = client.get_collection(collection).config.strict_mode_config
    assert (strict.enabled, strict.upsert_max_batchsize, strict.max_points_count) == (True, 3, 5)
    client.upsert(collection, three)  # 3 points before: under max_points_count 5
    with pytest.raises(UnexpectedResponse) as raised:
        client.upsert(collection, [models.PointStruct(id=20, vector=[0.5] * DIM)])
    assert error_of(raised) == (400, "Bad request: Max points count limit of 5 reached!")

    client.update_collection(collection, strict_mode_config=models.StrictModeConfig(enabled=False))
    client.upsert(collection, [models.PointStruct(id=i, vector=[0.5] * DIM) for i in range(20, 30)])
    assert client.count(collection).count == 16


def test_filter_and_index_limits_through_the_client(client, http, collection):
    client.update_collection(
        collection,
        strict_mode_config=models.StrictModeConfig(enabled=True, filter_max_conditions=1, condition_max_size=2, max_timeout=5),
    )
    # qdrant-client 1.15.1's StrictModeConfig lacks max_payload_index_count: set it over HTTP
    patched = http.patch(f"/collections/{collection}", json={"strict_mode_config": {"max_payload_index_count": 1}})
    assert patched.status_code == 200, patched.text
    two = models.Filter(must=[models.HasIdCondition(has_id=[1]), models.FieldCondition(key="n", match=models.MatchValue(value=1))])
    with pytest.raises(UnexpectedResponse) as raised:
        client.count(collection, count_filter=two)
    status, body = error_of(raised)
    assert (status, body) == (
        400, "Bad request: Filter condition limit reached (2 > 1). Help: Reduce the amount of conditions of your filter."
    )
    with pytest.raises(UnexpectedResponse) as raised:
        client.delete(collection, points_selector=models.FilterSelector(filter=two))
    assert "Filter condition limit reached (2 > 1)" in error_of(raised)[1]
    many = models.Filter(must=[models.FieldCondition(key="n", match=models.MatchAny(any=[1, 2, 3]))])
    with pytest.raises(UnexpectedResponse) as raised:
        client.scroll(collection, scroll_filter=many)
    assert "Condition size limit reached (3 > 2)" in error_of(raised)[1]
    assert client.count(collection).count == 3

    with pytest.raises(UnexpectedResponse) as raised:
        client.query_points(collection, query=[0.1] * DIM, timeout=6)
    assert error_of(raised) == (400, 'Bad request: Limit exceeded 6 > 5 for "timeout". Help: Reduce the "timeout" parameter to or below 5.')
    assert len(client.query_points(collection, query=[0.1] * DIM, timeout=5).points) == 3

    client.create_payload_index(collection, "n", models.PayloadSchemaType.INTEGER)
    with pytest.raises(UnexpectedResponse) as raised:
        client.create_payload_index(collection, "m", models.PayloadSchemaType.KEYWORD)
    assert "Collection already has the maximum number of payload indices (1)" in error_of(raised)[1]
    assert set(client.get_collection(collection).payload_schema) == {"n"}


def test_write_rate_limit_answers_429_with_retry_after_and_recovers(client, http, collection):
    # 30 a minute: a token every 2 s, so the test has seconds of slack between requests
    client.update_collection(collection, strict_mode_config=models.StrictModeConfig(enabled=True, write_rate_limit=30))
    points = [{"id": 100 + i, "vector": [0.2] * DIM} for i in range(29)]
    assert http.put(f"/collections/{collection}/points?wait=true", json={"points": points}).status_code == 200
    thirty = [{"id": 1000 + i, "vector": [0.3] * DIM} for i in range(30)]
    response = http.put(f"/collections/{collection}/points?wait=true", json={"points": thirty})
    assert response.status_code == 429, response.text
    error = response.json()["status"]["error"]
    assert error.startswith("Rate limiting exceeded: Write rate limit exceeded: Operation requires 30 tokens but only ")
    retry_after = int(response.headers["Retry-After"])
    assert 50 <= retry_after <= 58  # (30 - ~1 token left) at 0.5 a second
    assert error.endswith(f"Retry after {retry_after}s")
    assert client.count(collection).count == 3 + 29  # the refused upsert wrote nothing

    three = [models.PointStruct(id=2000 + i, vector=[0.3] * DIM) for i in range(3)]
    with pytest.raises(ResourceExhaustedResponse) as raised:
        client.upsert(collection, three)
    assert 1 <= raised.value.retry_after_s <= 4
    time.sleep(raised.value.retry_after_s + 0.2)
    client.upsert(collection, three)  # the bucket refilled enough
    assert client.count(collection).count == 3 + 29 + 3

    # more than the whole bucket can never pass: 429 without Retry-After
    response = http.put(f"/collections/{collection}/points", json={"points": thirty + [{"id": 5000, "vector": [0.1] * DIM}]})
    assert response.status_code == 429
    assert "Retry-After" not in response.headers
    assert response.json()["status"]["error"] == (
        "Rate limiting exceeded: Write rate limit exceeded, request larger than rate limiter capacity, "
        "please try to split your request"
    )


def test_read_rate_limit_answers_429_and_recovers(client, http, collection):
    # 20 a minute: a token every 3 s
    client.update_collection(collection, strict_mode_config=models.StrictModeConfig(enabled=True, read_rate_limit=20))
    assert len(client.retrieve(collection, ids=list(range(1, 21)))) == 3  # 20 tokens: the bucket is empty
    response = http.post(f"/collections/{collection}/points/count", json={})
    assert response.status_code == 429
    assert "Read rate limit exceeded: Operation requires 1 tokens" in response.json()["status"]["error"]
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= 3
    time.sleep(retry_after + 0.2)
    assert client.count(collection).count == 3
    # disabling strict mode removes the limiter at once
    client.update_collection(collection, strict_mode_config=models.StrictModeConfig(enabled=False))
    for _ in range(5):
        client.retrieve(collection, ids=list(range(1, 21)))
