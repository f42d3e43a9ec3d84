"""Search API: `POST .../points/search`, `/search/batch`, `/search/groups`, and the distance
matrix `/search/matrix/pairs` and `/search/matrix/offsets`.

A search is a universal query with a `nearest` vector; it is converted here and answered
by the query engine, so both APIs return the same points and scores.
"""

from __future__ import annotations

import numpy as np
from quart import Blueprint

from pydrant.http import spec_models as models
from pydrant.http.context import toc
from pydrant.http.envelope import body, ok
from pydrant.http.query import groups_json
from pydrant.http.search_common import (
    check_filters,
    engine_of,
    read_query_params,
    run_off_loop,
    scored_points,
    selectors,
)
from pydrant.http.validation import to_plain

blueprint = Blueprint("search", __name__)

COMMON_KEYS = ("filter", "params", "limit", "offset", "with_payload", "with_vector", "score_threshold")


def search_as_query(request: dict) -> dict:
    """A `SearchRequest` as a `QueryRequest` (the named-vector forms give `using`)."""
    query = {key: request[key] for key in COMMON_KEYS if key in request}
    vector = request["vector"]
    if isinstance(vector, dict) and "name" in vector:
        query["using"] = vector["name"]
        vector = vector["vector"]
    query["query"] = {"nearest": vector}
    return query


def points_json(collection, request: dict) -> list[dict]:
    """Blocking: the `ScoredPoint`s of one (converted) request."""
    with_payload, with_vector = selectors(collection, request)
    hits = engine_of(collection).query(request)
    return scored_points(collection, hits, with_payload, with_vector)


def batch_json(collection, requests: list[dict]) -> list[list[dict]]:
    """Blocking: several converted requests; searches on one vector and filter share a scan."""
    results = []
    for request, hits in zip(requests, engine_of(collection).query_batch(requests)):
        with_payload, with_vector = selectors(collection, request)
        results.append(scored_points(collection, hits, with_payload, with_vector))
    return results


@blueprint.post("/collections/<name>/points/search")
async def search(name: str):
    read_query_params()
    collection = toc().get(name)
    request = search_as_query(to_plain(await body(models.SearchRequest)))
    check_filters(collection, request)
    return ok(await run_off_loop(points_json, collection, request))


@blueprint.post("/collections/<name>/points/search/batch")
async def search_batch(name: str):
    read_query_params()
    collection = toc().get(name)
    requests = [search_as_query(r) for r in to_plain(await body(models.SearchRequestBatch))["searches"]]
    for request in requests:
        check_filters(collection, request)
    return ok(await run_off_loop(batch_json, collection, requests))


@blueprint.post("/collections/<name>/points/search/groups")
async def search_groups(name: str):
    read_query_params()
    collection = toc().get(name)
    raw = to_plain(await body(models.SearchGroupsRequest))
    request = search_as_query(raw)
    request.pop("offset", None)
    for key in ("group_by", "group_size", "with_lookup"):
        if key in raw:
            request[key] = raw[key]
    check_filters(collection, request)
    return ok(await run_off_loop(groups_json, collection, request))


# -- distance matrix -------------------------------------------------------------------------


def _matrix(collection, request: dict):
    return engine_of(collection).matrix(
        request.get("filter"), request.get("sample") or 10, request.get("limit") or 3, request.get("using")
    )


async def _matrix_request(name: str):
    read_query_params()
    collection = toc().get(name)
    request = to_plain(await body(models.SearchMatrixRequest, optional=True)) or {}
    check_filters(collection, request)
    ids, entries = await run_off_loop(_matrix, collection, request)
    return ids, entries


@blueprint.post("/collections/<name>/points/search/matrix/pairs")
async def matrix_pairs(name: str):
    ids, entries = await _matrix_request(name)
    return ok({"pairs": [{"a": ids[row], "b": ids[col], "score": np.float32(score)} for row, col, score in entries]})


@blueprint.post("/collections/<name>/points/search/matrix/offsets")
async def matrix_offsets(name: str):
    ids, entries = await _matrix_request(name)
    return ok(
        {
            "offsets_row": [row for row, _, _ in entries],
            "offsets_col": [col for _, col, _ in entries],
            "scores": [np.float32(score) for _, _, score in entries],
            "ids": ids,
        }
    )

