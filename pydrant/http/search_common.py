"""What the search-family areas (search, recommend, discover, query) share: reading a
request into the engine's universal QueryRequest, and answering it. No area imports
another; they all import this module, envelope.py and render.py.

A request is read on the event loop: query parameters, the body against its model, the
legacy forms converted, and then `collection.engine.prepare`, which compiles the
request's filters and applies strict mode (collection/engine.py). The answer is computed
and rendered in a worker thread (`envelope.off_loop`)."""

from __future__ import annotations

from pydantic import StrictFloat, StrictInt, StrictStr, TypeAdapter, ValidationError

from pydrant.collection.query import Node
from pydrant.errors import BadInput
from pydrant.http import spec_models as models
from pydrant.http.context import toc
from pydrant.http.envelope import body, query_int
from pydrant.http.render import groups_json as render_groups
from pydrant.http.render import scored_points_json
from pydrant.http.validation import check_bounds, to_plain
from pydrant.segments.types import DEFAULT_VECTOR


def read_query_params() -> int | None:
    """`timeout` is checked (a search here never outlives a request) and returned for
    strict mode's `max_timeout`; `consistency` only matters with replicas, which one node
    does not have."""
    return query_int("timeout", minimum=1)


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
                raise BadInput("Format error in JSON body: query: data did not match any variant of untagged enum Query")
            continue
        try:
            value = _QUERY_INTERFACE.validate_python(query)
        except ValidationError:
            raise BadInput(
                "Format error in JSON body: query: data did not match any variant of untagged enum QueryInterface"
            ) from None
        check_bounds(value, "query")
        if not (isinstance(query, dict) and any(key in query for key in QUERY_VARIANTS)):
            node["query"] = {"nearest": query}


def _nodes_in(node: dict):
    yield node
    prefetch = node.get("prefetch")
    for child in prefetch if isinstance(prefetch, list) else [prefetch] if prefetch else []:
        yield from _nodes_in(child)


# -- legacy requests as QueryRequests -----------------------------------------------------

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


# -- request intake, shared by every endpoint ---------------------------------------------


async def read_request(name: str, model, convert=None, optional: bool = False):
    """(collection, prepared query) of a search-family endpoint: query parameters checked,
    the body validated against `model`, converted to a universal QueryRequest, prepared by
    the engine (filters compiled, strict mode). The query tree of a QueryRequest
    (`convert` None) is checked against the spec here; a converted legacy request was fully
    typed by its own model, so its query is not checked again (that costs as much as the
    first validation on the search hot path)."""
    timeout = read_query_params()
    collection = toc().get(name)
    collection.engine.check_timeout(timeout)
    request = to_plain(await body(model, optional=optional)) or {}
    if convert is None:
        check_queries(request)
    else:
        request = convert(request)
    return collection, collection.engine.prepare(request)


async def read_batch(name: str, model, convert=None):
    """(collection, prepared queries) of a batch endpoint (`{"searches": [...]}`), each
    read as `read_request` reads one, in order."""
    timeout = read_query_params()
    collection = toc().get(name)
    collection.engine.check_timeout(timeout)
    requests = to_plain(await body(model))["searches"]
    queries = []
    for request in requests:
        if convert is None:
            check_queries(request)
        else:
            request = convert(request)
        queries.append(collection.engine.prepare(request))
    return collection, queries


# -- answers (blocking: run them with envelope.off_loop) ----------------------------------


def points_json(collection, query: Node) -> list[dict]:
    """The `ScoredPoint`s of one request."""
    return scored_points_json(collection.engine.points(query))


def batch_json(collection, queries: list[Node]) -> list[list[dict]]:
    """The `ScoredPoint`s of several requests; searches on one vector and filter share a scan."""
    return [scored_points_json(hits) for hits in collection.engine.batch(queries)]


def groups_json(collection, query: Node) -> dict:
    """A groups request (converted to a query plus its grouping keys) answered."""
    return render_groups(collection.engine.groups(query))
