"""What the search-family endpoints share: running queries off the event loop, strict-mode
checks of every filter in a query tree, and turning engine hits into `ScoredPoint`s."""

from __future__ import annotations

import numpy as np
import trio
from pydantic import StrictFloat, StrictInt, StrictStr, TypeAdapter, ValidationError

from pydrant.collection.query import Hit, QueryEngine
from pydrant.http import spec_models as models
from pydrant.http.context import toc
from pydrant.http.envelope import body, query_int
from pydrant.errors import BadInput
from pydrant.http.retrieve import record_json, vector_selector, vectors_json
from pydrant.http.validation import check_bounds, to_plain
from pydrant.segments.filters import compile_filter
from pydrant.segments.ids import normalize_id


def read_query_params() -> None:
    """`timeout` is checked (a search here never outlives a request); `consistency` only
    matters with replicas, which one node does not have."""
    query_int("timeout", minimum=1)


def engine_of(collection) -> QueryEngine:
    return QueryEngine(collection, toc().get)


def check_filters(collection, request: dict) -> None:
    """Every filter in a query tree compiles, and the tree passes strict mode's checks."""
    for filter_ in (node["filter"] for node in _nodes_in(request) if node.get("filter")):
        compile_filter(filter_)
        collection.check_filter_indexed(filter_, update=False)
    strict = collection.config.get("strict_mode_config") or {}
    if strict.get("enabled"):
        for node in _nodes_in(request):
            _check_strict_limits(node, strict)


# The spec's QueryInterface (VectorInput | Query). The generated request models leave
# `query` untyped (its nested unions collapse to Any), so query trees are checked here.
# Formulas are not: the generated Expression lacks its Condition variant, and
# collection/formula.py checks expressions as it compiles them, with Qdrant's messages.
_QUERY_INTERFACE = TypeAdapter(
    list[StrictFloat] | list[list[StrictFloat]] | models.SparseVector | StrictInt | StrictStr
    | models.Document | models.Image | models.InferenceObject
    | models.NearestQuery | models.RecommendQuery | models.DiscoverQuery | models.ContextQuery
    | models.OrderByQuery | models.FusionQuery | models.RrfQuery | models.SampleQuery
)


# The variants of the spec's Query: a `query` object with none of these keys is a bare
# VectorInput (a sparse vector, or an inference object).
QUERY_VARIANTS = ("nearest", "recommend", "discover", "context", "order_by", "fusion", "rrf", "formula", "sample")


def check_queries(request: dict) -> None:
    """The `query` of every node of a query tree is a QueryInterface, as Qdrant's serde
    requires (400), within the spec's bounds (422: `mmr.diversity`, `rrf.k`...).

    A bare VectorInput becomes `{"nearest": input}`, as Qdrant's REST layer turns
    `QueryInterface::Nearest(v)` into `Query::Nearest`: the engine sees one form of a
    nearest query, whichever endpoint (single or batch) it came through."""
    for node in _nodes_in(request):
        query = node.get("query")
        if query is None:
            continue
        if isinstance(query, dict) and "formula" in query:
            if set(query) - {"formula", "defaults"} or not isinstance(query.get("defaults") or {}, dict):
                raise BadInput("Json deserialize error: query: data did not match any variant of untagged enum Query")
            continue
        try:
            value = _QUERY_INTERFACE.validate_python(query)
        except ValidationError:
            raise BadInput(
                "Json deserialize error: query: data did not match any variant of untagged enum QueryInterface"
            ) from None
        check_bounds(value, "query")
        if not (isinstance(query, dict) and any(key in query for key in QUERY_VARIANTS)):
            node["query"] = {"nearest": query}


def _nodes_in(node: dict):
    yield node
    prefetch = node.get("prefetch")
    for child in prefetch if isinstance(prefetch, list) else [prefetch] if prefetch else []:
        yield from _nodes_in(child)


def _check_strict_limits(node: dict, strict: dict) -> None:
    """Strict mode's search limits, with Qdrant's messages: `max_query_limit`,
    `search_allow_exact`, `search_max_hnsw_ef`, `search_max_oversampling`."""
    params = node.get("params") or {}
    _check_at_most(node.get("limit"), strict.get("max_query_limit"), "limit")
    if params.get("exact") and strict.get("search_allow_exact") is False:
        raise BadInput("Bad request: Exact search disabled!. Help: Set exact=false.")
    _check_at_most(params.get("hnsw_ef"), strict.get("search_max_hnsw_ef"), "hnsw_ef")
    _check_at_most((params.get("quantization") or {}).get("oversampling"), strict.get("search_max_oversampling"), "oversampling")


def _check_at_most(value, limit, name: str) -> None:
    if value is not None and limit is not None and value > limit:
        raise BadInput(
            f'Bad request: Limit exceeded {value} > {limit} for "{name}". '
            f'Help: Reduce the "{name}" parameter to or below {limit}.'
        )


def scored_points(collection, hits: list[Hit], with_payload, with_vector) -> list[dict]:
    """`ScoredPoint` JSON of hits, with payloads and vectors as selected. Blocking: reads
    them from the segments (a point deleted since it was scored is left out, as in Qdrant)."""
    if not with_payload and not with_vector:
        return [_scored_point(hit, None) for hit in hits]
    records = {r.id: r for r in collection.reads.retrieve([h.id for h in hits], with_payload or False, with_vector)}
    return [_scored_point(hit, records[hit.id]) for hit in hits if hit.id in records]


def _scored_point(hit: Hit, record) -> dict:
    return {
        "id": hit.id,
        "version": hit.version,
        "score": np.float32(hit.score),  # printed as Qdrant prints its f32 scores (shortest form)
        "payload": record.payload if record is not None else None,
        "vector": vectors_json(record.vectors) if record is not None else None,
        "shard_key": None,
        "order_value": hit.order_value,
    }


def selectors(collection, request: dict, payload_default=False):
    """(with_payload, with_vector) of a request, vector names checked."""
    with_payload = request.get("with_payload", payload_default)
    with_vector = vector_selector(collection, request.get("with_vector", request.get("with_vectors", False)))
    return with_payload, with_vector


async def run_off_loop(function, *args):
    return await trio.to_thread.run_sync(function, *args)


# -- request intake, shared by every endpoint ---------------------------------------------


async def read_request(name: str, model, convert=None, optional: bool = False):
    """(collection, request) of a search-family endpoint: query parameters checked, the body
    validated against `model`, converted to a universal QueryRequest, its filters checked.
    The query tree of a QueryRequest (`convert` None) is checked against the spec here; a
    converted legacy request was fully typed by its own model, so its query is not checked
    again (that costs as much as the first validation on the search hot path)."""
    read_query_params()
    collection = toc().get(name)
    request = to_plain(await body(model, optional=optional)) or {}
    if convert is None:
        check_queries(request)
    else:
        request = convert(request)
    check_filters(collection, request)
    return collection, request


async def read_batch(name: str, model, convert=None):
    """(collection, requests) of a batch endpoint (`{"searches": [...]}`), each checked as
    `read_request` checks one."""
    read_query_params()
    collection = toc().get(name)
    requests = to_plain(await body(model))["searches"]
    for i, request in enumerate(requests):
        if convert is None:
            check_queries(request)
        else:
            requests[i] = request = convert(request)
        check_filters(collection, request)
    return collection, requests


def groups_of(convert):
    """A converter of a `*GroupsRequest`: the request as `convert` makes it, without an
    offset, keeping the grouping keys."""

    def converted(raw: dict) -> dict:
        request = convert(raw)
        request.pop("offset", None)
        for key in ("group_by", "group_size", "with_lookup"):
            if key in raw:
                request[key] = raw[key]
        return request

    return converted


# -- answers (blocking: run them with run_off_loop) ---------------------------------------


def points_json(collection, request: dict) -> list[dict]:
    """The `ScoredPoint`s of one request."""
    with_payload, with_vector = selectors(collection, request)
    hits = engine_of(collection).query(request)
    return scored_points(collection, hits, with_payload, with_vector)


def batch_json(collection, requests: list[dict]) -> list[list[dict]]:
    """The `ScoredPoint`s of several requests; searches on one vector and filter share a scan."""
    results = []
    for request, hits in zip(requests, engine_of(collection).query_batch(requests)):
        with_payload, with_vector = selectors(collection, request)
        results.append(scored_points(collection, hits, with_payload, with_vector))
    return results


def groups_json(collection, request: dict) -> dict:
    """A groups request (converted to a query plus its grouping keys) answered."""
    with_payload, with_vector = selectors(collection, request)
    group_by = request.pop("group_by")
    group_size = request.pop("group_size", None) or 3
    limit = request.pop("limit", None) or 10
    with_lookup = request.pop("with_lookup", None)
    groups = engine_of(collection).query_groups(request, group_by, group_size, limit)
    return grouped_json(collection, groups, with_payload, with_vector, with_lookup)


def grouped_json(collection, groups, with_payload, with_vector, with_lookup) -> dict:
    """`GroupsResult` JSON; `with_lookup` adds the record whose id is the group's value."""
    hits = [hit for _, members in groups for hit in members]
    points = {p["id"]: p for p in scored_points(collection, hits, with_payload, with_vector)}
    lookups = _lookups(groups, with_lookup)
    result = []
    for value, members in groups:
        group = {"id": value, "hits": [points[h.id] for h in members if h.id in points]}
        if with_lookup is not None:
            group["lookup"] = lookups.get(value)
        result.append(group)
    return {"groups": result}


def _lookups(groups, with_lookup) -> dict:
    if with_lookup is None:
        return {}
    if isinstance(with_lookup, str):
        with_lookup = {"collection": with_lookup}
    other = toc().get(with_lookup["collection"])
    payload = with_lookup.get("with_payload", True)
    vectors = vector_selector(other, with_lookup.get("with_vectors") or False)
    ids = {}
    for value, _ in groups:
        try:
            ids[value] = normalize_id(value)
        except BadInput:  # a group value that cannot be a point id has no lookup
            continue
    records = {r.id: r for r in other.reads.retrieve(list(ids.values()), payload, vectors)}
    return {value: record_json(records[point_id]) for value, point_id in ids.items() if point_id in records}
