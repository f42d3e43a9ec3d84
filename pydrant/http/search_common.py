"""What the search-family areas (search, recommend, discover, query) share: reading a
request into the engine's universal QueryRequest, and answering it. No area imports
another; they all import this module, envelope.py and render.py.

A request is read on the event loop: query parameters, the body against its model, the
legacy forms converted, and then `collection.engine.prepare`, which compiles the
request's filters and applies strict mode (collection/engine.py). The answer is computed
and rendered in a worker thread under the request's `timeout` (`timed_read` below, which
the other read areas use too: retrieve, scroll, count, facet).

A request's `shard_key` (a ShardKeySelector) picks the engine that answers it
(`read_engine`): every shard without one, else the key's shards (`engine_for`: a
collection without that key refuses it, 400 `Bad request: Shard key "k" not found`).
The key is checked after the request is prepared, as Qdrant selects shards after strict
mode. A batch whose requests carry different keys runs each group of equal keys on its
engine and answers in the requests' order."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
import trio
from pydantic import StrictFloat, StrictInt, StrictStr, TypeAdapter, ValidationError

from pydrant.collection.engine import Engine
from pydrant.collection.operations import check_shard_key
from pydrant.collection.query import Node
from pydrant.collection.routing import NoShards
from pydrant.errors import BadInput, Timeout
from pydrant.http import spec_models as models
from pydrant.http.context import toc
from pydrant.http.envelope import body, json_from_bytes, off_loop, query_int, raw_body
from pydrant.http.render import groups_json as render_groups
from pydrant.http.render import scored_points_json
from pydrant.http.validation import check_bounds, deserialize, to_plain
from pydrant.segments.deadline import Deadline, run_with
from pydrant.segments.types import DEFAULT_VECTOR

R = TypeVar("R")


# -- timeouts of reads ---------------------------------------------------------------------
# The `timeout` query parameter of reads: the read is cut off after that many seconds.
#
# Every read endpoint with a `timeout` parameter in the spec (search, recommend, discover,
# query and their batch and groups forms, the distance matrix, retrieve, scroll, count,
# facet) runs its engine call through `timed_read`, with Qdrant's default when the request
# gives none (60 s, `SharedStorageConfig::search_timeout`). Past the deadline:
#
# - the handler stops waiting at once (a trio cancel scope around the worker thread) and
#   answers Qdrant's 408 "Timeout: Timeout error: Operation '<op>' timed out after <n>
#   seconds", `<op>` being the name Qdrant's shard gives the read (`Search`, `GroupBy`,
#   `count`, `facet`, `retrieve`, `scroll_by_id`, `scroll_by_field`);
# - the worker thread, which cannot be interrupted, stops at its next safe point (between
#   segments, exact-scan blocks and payload-filter chunks: segments/deadline.py) and gives
#   its thread back. A read changes nothing, so nothing is left half-done.
#
# Writes take no `timeout` in Qdrant 1.15 (`UpdateParam` is `wait` and `ordering`): the
# parameter is ignored there, as Qdrant's serde ignores it (docs/timeouts.md).

# Qdrant's DEFAULT_SEARCH_TIMEOUT (lib/collection/src/operations/shared_storage_config.rs):
# the shard's deadline of a read whose request gives none.
DEFAULT_READ_TIMEOUT_SECONDS = 60


def read_timeout() -> int | None:
    """The request's `timeout` (seconds, a nonzero u64 as Qdrant reads it), or None."""
    return query_int("timeout", minimum=1)


async def timed_read(operation: str, timeout: int | None, function: Callable[..., R], *args) -> R:
    """`function(*args)` in a worker thread under a deadline of `timeout` seconds (Qdrant's
    default without one). On cancellation (the client went away, the server stops) the
    read is told to stop, as at its deadline."""
    seconds = timeout if timeout is not None else DEFAULT_READ_TIMEOUT_SECONDS
    deadline = Deadline(seconds, operation)
    try:
        with trio.move_on_after(seconds):
            return await trio.to_thread.run_sync(run_with, deadline, function, *args, abandon_on_cancel=True)
    finally:
        deadline.cancel()  # whatever ended the wait, the thread stops at its next check
    raise Timeout(deadline.message)


def read_query_params() -> int | None:
    """`timeout` (seconds the read may take; strict mode's `max_timeout` bounds it);
    `consistency` only matters with replicas, which one node does not have."""
    return read_timeout()


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


# -- shard keys -----------------------------------------------------------------------------


def take_shard_key(request: dict) -> Any:
    """The request's `shard_key` selector (None without one), taken off the request, and
    the `lookup_from.shard_key` of each node checked (the request models type them, but
    not an integer's u64 range)."""
    selector = request.pop("shard_key", None)
    if selector is not None:
        check_shard_key(selector)
    for node in _nodes_in(request):
        lookup_from = node.get("lookup_from")
        if isinstance(lookup_from, dict) and lookup_from.get("shard_key") is not None:
            check_shard_key(lookup_from["shard_key"], "lookup_from.shard_key")
    return selector


def read_engine(collection, selector: Any) -> Engine:
    """The engine that answers a read with this `shard_key` selector (None: every shard).
    An empty list selects no shard: Qdrant answers such a read from none (no points, a
    count of 0), whatever the collection."""
    if selector == []:
        return Engine(NoShards(collection), collection.engine.lookup)
    return collection.engine_for(selector)


@dataclass
class KeyedBatch:
    """The prepared requests of a batch endpoint, grouped by the engine their shard key
    selects: (engine, the requests' positions in the batch, their queries) per group."""

    size: int
    groups: list[tuple[Engine, list[int], list[Node]]]


def keyed_batch(collection, prepared: list[tuple[Any, Node]]) -> KeyedBatch:
    """Requests of equal `shard_key` selectors (in the order first seen) share an engine."""
    grouped: dict[bytes, tuple[Engine, list[int], list[Node]]] = {}
    for position, (selector, query) in enumerate(prepared):
        group_key = orjson.dumps(selector)  # "1" and 1 are different keys
        if group_key not in grouped:
            grouped[group_key] = (read_engine(collection, selector), [], [])
        grouped[group_key][1].append(position)
        grouped[group_key][2].append(query)
    return KeyedBatch(len(prepared), list(grouped.values()))


# -- request intake, shared by every endpoint ---------------------------------------------


async def read_request(name: str, model, convert=None, optional: bool = False):
    """(engine, prepared query, timeout) of a search-family endpoint: query parameters
    checked, the body validated against `model`, converted to a universal QueryRequest,
    prepared by the engine (filters compiled, strict mode), and the engine of its
    `shard_key` selected. The query tree of a QueryRequest (`convert` None) is checked
    against the spec here; a converted legacy request was fully typed by its own model,
    so its query is not checked again (that costs as much as the first validation on the
    search hot path)."""
    timeout = read_query_params()
    collection = toc().get(name)
    collection.engine.check_timeout(timeout)
    request = to_plain(await body(model, optional=optional)) or {}
    selector = take_shard_key(request)
    if convert is None:
        check_queries(request)
    else:
        request = convert(request)
    query = collection.engine.prepare(request)
    return read_engine(collection, selector), query, timeout


async def read_batch(name: str, model, convert=None):
    """(prepared batch, timeout) of a batch endpoint (`{"searches": [...]}`), each request
    read as `read_request` reads one, in order, and grouped by shard key (`KeyedBatch`).
    A batch body can hold thousands of vectors: it is parsed, validated and prepared in a
    worker thread, so the event loop goes on answering meanwhile."""
    timeout = read_query_params()
    collection = toc().get(name)
    collection.engine.check_timeout(timeout)
    raw = await raw_body()
    return await off_loop(_prepared_batch, collection, model, convert, raw), timeout


def _prepared_batch(collection, model, convert, raw: bytes) -> KeyedBatch:
    requests = to_plain(deserialize(model, json_from_bytes(raw)))["searches"]
    prepared = []
    for request in requests:
        selector = take_shard_key(request)
        if convert is None:
            check_queries(request)
        else:
            request = convert(request)
        prepared.append((selector, collection.engine.prepare(request)))
    return keyed_batch(collection, prepared)


# -- answers (blocking: run them with `answer`) --------------------------------------------

SEARCH = "Search"  # Qdrant's operation name of a timed-out shard search
GROUP_BY = "GroupBy"  # ... and of a groups request (GroupBy::execute)


async def answer(timeout: int | None, function, *args, operation: str = SEARCH):
    """`function(*args)` in a worker thread, cut off after `timeout` seconds."""
    return await timed_read(operation, timeout, function, *args)


def points_json(engine: Engine, query: Node) -> list[dict]:
    """The `ScoredPoint`s of one request."""
    return scored_points_json(engine.points(query))


def batch_json(batch: KeyedBatch) -> list[list[dict]]:
    """The `ScoredPoint`s of several, in the batch's order; searches of one shard key on
    one vector and filter share a scan."""
    results: list[list[dict]] = [[] for _ in range(batch.size)]
    for engine, positions, queries in batch.groups:
        for position, hits in zip(positions, engine.batch(queries)):
            results[position] = scored_points_json(hits)
    return results


def groups_json(engine: Engine, query: Node) -> dict:
    """A groups request (converted to a query plus its grouping keys) answered."""
    return render_groups(engine.groups(query))
