"""Server-side BM25 end to end: Document inputs for `qdrant/bm25` in upserts, vector updates
and queries become the sparse vectors Qdrant computes; IDF comes from the collection."""

from __future__ import annotations

import math

import pytest
from qdrant_client import QdrantClient, models

from pydrant.collection.bm25 import model_for, token_id

pytestmark = pytest.mark.e2e

DOCS = {
    1: "Recipe for baking chocolate chip cookies",
    2: "Chocolate cake with dark chocolate frosting",
    3: "How to grow tomatoes in a small garden",
    4: "Cookies and milk: a classic late-night snack",
}


@pytest.fixture(scope="module")
def collection(server):
    import httpx

    with httpx.Client(base_url=server.url, timeout=30) as h:
        r = h.put("/collections/bm25", json={"sparse_vectors": {"text": {"modifier": "idf"}}})
        assert r.status_code == 200, r.text
        points = [{"id": i, "vector": {"text": {"text": t, "model": "qdrant/bm25"}}, "payload": {"t": t}} for i, t in DOCS.items()]
        r = h.put("/collections/bm25/points?wait=true", json={"points": points})
        assert r.status_code == 200, r.text
    return "bm25"


def test_upserted_documents_store_qdrants_document_vectors(http, collection):
    r = http.post(f"/collections/{collection}/points", json={"ids": [1], "with_vector": True})
    stored = r.json()["result"][0]["vector"]["text"]
    indices, values = model_for(None).document(DOCS[1])
    assert stored["indices"] == indices.tolist()
    assert stored["values"] == pytest.approx(values.tolist())
    # "for" is a stopword; "baking" -> "bake", "cookies" -> "cooki": five tokens
    assert len(stored["indices"]) == 5 and token_id("cooki") in stored["indices"]


def test_query_with_a_document_ranks_by_bm25_with_idf(http, collection):
    r = http.post(
        f"/collections/{collection}/points/query",
        json={"query": {"text": "chocolate cookies", "model": "qdrant/bm25"}, "using": "text", "with_payload": True},
    )
    assert r.status_code == 200, r.text
    hits = r.json()["result"]["points"]
    assert [h["id"] for h in hits][:1] == [1]  # the only document with both terms
    assert {h["id"] for h in hits} == {1, 2, 4}  # the tomato text shares no term
    # score = sum over query terms of idf(term) * stored weight; idf as Qdrant's modifier
    n = len(DOCS)

    def idf(df: int) -> float:
        return math.log(1 + (n - df + 0.5) / (df + 0.5))

    weights = dict(zip(*(a.tolist() for a in model_for(None).document(DOCS[1])), strict=True))
    expected = idf(2) * weights[token_id("chocol")] + idf(2) * weights[token_id("cooki")]
    assert hits[0]["score"] == pytest.approx(expected, rel=1e-5)


def test_qdrant_client_sends_documents_to_the_server(server, collection):
    client = QdrantClient(url=server.url, cloud_inference=True, timeout=30)
    try:
        client.upsert(
            collection,
            [models.PointStruct(id=5, vector={"text": models.Document(text="tomato soup", model="Qdrant/bm25")})],
        )
        hits = client.query_points(
            collection, query=models.Document(text="tomatoes", model="Qdrant/bm25"), using="text"
        ).points
        assert {h.id for h in hits} == {3, 5}
    finally:
        client.close()


def test_other_models_and_bad_options_are_4xx(http, collection):
    r = http.post(
        f"/collections/{collection}/points/query",
        json={"query": {"text": "x", "model": "sentence-transformers/all-MiniLM-L6-v2"}, "using": "text"},
    )
    assert r.status_code == 400 and "InferenceService is not initialized" in r.json()["status"]["error"]
    r = http.put(
        f"/collections/{collection}/points?wait=true",
        json={"points": [{"id": 9, "vector": {"text": {"text": "x", "model": "qdrant/bm25", "options": {"k": "big"}}}}]},
    )
    assert r.status_code == 400 and "Invalid BM25 config" in r.json()["status"]["error"]
    # nothing was written by the refused upsert
    assert http.post(f"/collections/{collection}/points", json={"ids": [9]}).json()["result"] == []
