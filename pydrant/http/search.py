"""Search API: `POST .../points/search`, `/search/batch`, `/search/groups`, and the distance
matrix `/search/matrix/pairs` and `/search/matrix/offsets`.

A search is a universal query with a `nearest` vector; it is converted here and answered
by the query engine, so both APIs return the same points and scores.
"""

from __future__ import annotations

import numpy as np
from quart import Blueprint

from pydrant.http import spec_models as models
from pydrant.http.envelope import ok
from pydrant.segments.types import DEFAULT_VECTOR
from pydrant.http.search_common import (
    batch_json,
    engine_of,
    groups_json,
    groups_of,
    points_json,
    read_batch,
    read_request,
    run_off_loop,
)

blueprint = Blueprint("search", __name__)

COMMON_KEYS = ("filter", "params", "limit", "offset", "with_payload", "with_vector", "score_threshold")


def example_query_base(request: dict) -> dict:
    """The fields a `recommend` or `discover` request shares with a QueryRequest."""
    query = {key: request[key] for key in COMMON_KEYS if key in request}
    if request.get("using") is not None:
        query["using"] = request["using"]
    lookup_from = request.get("lookup_from")
    if lookup_from is not None:  # without a `vector`: the default one, not `using` (unlike the query API)
        query["lookup_from"] = dict(lookup_from, vector=lookup_from.get("vector") or DEFAULT_VECTOR)
    return query


def search_as_query(request: dict) -> dict:
    """A `SearchRequest` as a `QueryRequest` (the named-vector forms give `using`)."""
    query = {key: request[key] for key in COMMON_KEYS if key in request}
    vector = request["vector"]
    if isinstance(vector, dict) and "name" in vector:
        query["using"] = vector["name"]
        vector = vector["vector"]
    query["query"] = {"nearest": vector}
    return query


@blueprint.post("/collections/<name>/points/search")
async def search(name: str):
    collection, request = await read_request(name, models.SearchRequest, search_as_query)
    return ok(await run_off_loop(points_json, collection, request))


@blueprint.post("/collections/<name>/points/search/batch")
async def search_batch(name: str):
    collection, requests = await read_batch(name, models.SearchRequestBatch, search_as_query)
    return ok(await run_off_loop(batch_json, collection, requests))


@blueprint.post("/collections/<name>/points/search/groups")
async def search_groups(name: str):
    collection, request = await read_request(name, models.SearchGroupsRequest, groups_of(search_as_query))
    return ok(await run_off_loop(groups_json, collection, request))


# -- distance matrix -------------------------------------------------------------------------


def _matrix(collection, request: dict):
    return engine_of(collection).matrix(
        request.get("filter"), request.get("sample") or 10, request.get("limit") or 3, request.get("using")
    )


async def _matrix_request(name: str):
    collection, request = await read_request(name, models.SearchMatrixRequest, optional=True)
    return await run_off_loop(_matrix, collection, request)


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

