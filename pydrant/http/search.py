"""Search API: `POST .../points/search`, `/search/batch`, `/search/groups`, and the distance
matrix `/search/matrix/pairs` and `/search/matrix/offsets`.

A search is a universal query with a `nearest` vector; it is converted here and answered
by the collection's engine, so both APIs return the same points and scores.
"""

from __future__ import annotations

import numpy as np
from quart import Blueprint

from pydrant.http import spec_models as models
from pydrant.http.envelope import ok
from pydrant.http.search_common import (
    COMMON_KEYS,
    GROUP_BY,
    answer,
    batch_json,
    groups_json,
    groups_of,
    points_json,
    read_batch,
    read_request,
)

blueprint = Blueprint("search", __name__)


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
    engine, query, timeout = await read_request(name, models.SearchRequest, search_as_query)
    return ok(await answer(timeout, points_json, engine, query))


@blueprint.post("/collections/<name>/points/search/batch")
async def search_batch(name: str):
    batch, timeout = await read_batch(name, models.SearchRequestBatch, search_as_query)
    return ok(await answer(timeout, batch_json, batch))


@blueprint.post("/collections/<name>/points/search/groups")
async def search_groups(name: str):
    engine, query, timeout = await read_request(name, models.SearchGroupsRequest, groups_of(search_as_query))
    return ok(await answer(timeout, groups_json, engine, query, operation=GROUP_BY))


# -- distance matrix -------------------------------------------------------------------------


async def _matrix_request(name: str):
    engine, query, timeout = await read_request(name, models.SearchMatrixRequest, optional=True)
    return await answer(timeout, engine.matrix, query)


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

