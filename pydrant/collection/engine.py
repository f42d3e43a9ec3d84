"""The engine boundary: every read the API makes of a collection enters here.

`Collection.engine` is one `Engine`, made with the collection and kept for its life; the
function it resolves `lookup_from` and `with_lookup` collection names with is given by
storage/ when the collection is loaded. Requests are plain JSON (the HTTP layer's
validated bodies, converted to the universal QueryRequest where Qdrant converts them);
results are engine values (`Hit`, `Record`, `Groups`) that the HTTP layer renders.

What every entry point does, in this order, so errors come out as they always have:
1. compiles each filter once, with the collection's text analyzers
   (`Collection.compile_filter`); an invalid filter is BadInput "Bad filter at ...";
2. applies strict mode (collection/strict.py) in Qdrant's order: a query tree's prefetches
   first, then each node's limit, filter and search params; scroll, count and facet their
   limit, filter and `exact` (the request's `timeout` is checked before, `check_timeout`);
3. checks the payload and vector selectors (`with_payload`, `with_vector`);
4. takes the read's cost from strict mode's read rate limit, when there is one;
5. runs the read with the compiled predicates and reads payloads and vectors;
6. a search-family read slower than `service.slow_query_secs` reports its filters'
   unindexed fields on the issue board (collection/problems.py).

A read stops at its next safe point once its deadline passes (segments/deadline.py: the
HTTP layer binds the request's `timeout` to the worker thread), raising `Timeout`.

Search requests are two steps: `prepare` (1 and 2: cheap, and the batch endpoints
prepare each request right after converting it) and then `points`, `batch`, `groups` or
`matrix`. The other entry points take their request whole. Everything but `prepare` is
blocking (segments, RocksDB, numpy): call it from a worker thread.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydrant.collection import problems, strict
from pydrant.collection.predicates import Predicate
from pydrant.collection.query import Hit, Node, QueryEngine, compile_tree
from pydrant.collection.reads import PayloadSelector, VectorSelector
from pydrant.errors import BadInput, NotFound
from pydrant.segments.ids import normalize_id
from pydrant.segments.types import Record

DEFAULT_GROUP_SIZE = 3
DEFAULT_GROUP_LIMIT = 10
DEFAULT_FACET_LIMIT = 10
DEFAULT_SCROLL_LIMIT = 10
DEFAULT_MATRIX_SAMPLE = 10
DEFAULT_MATRIX_LIMIT = 3

ORDER_BY_WITH_OFFSET = (
    "Bad request: Cannot use an `offset` when using `order_by`. The alternative for paging is to use "
    "`order_by.start_from` and a filter to exclude the IDs that you've already seen for the "
    "`order_by.start_from` value"
)


@dataclass
class Group:
    """One group of a groups request: the grouping value, its hits, and with `with_lookup`
    the record of the looked-up collection whose id is the value (None if none)."""

    id: Any
    hits: list[Hit]
    lookup: Record | None = None


@dataclass
class Groups:
    groups: list[Group]
    with_lookup: bool  # whether each group reports a `lookup`


def vector_selector(collection, selector) -> VectorSelector:
    """Validated `with_vector`: True/False or a list of existing names."""
    if isinstance(selector, list):
        known = set(collection.schema.names())
        unknown = next((n for n in selector if n not in known), None)
        if unknown is not None:
            raise BadInput(f"Wrong input: Not existing vector name error: {unknown}")
    return selector if selector is not None else False


class Engine:
    def __init__(self, collection, lookup: Callable[[str], Any]):
        self.collection = collection
        self.lookup = lookup  # collection name or alias -> Collection (storage/ gives it)
        self.queries = QueryEngine(collection, lookup)

    # -- filters and strict mode --------------------------------------------------------

    def read_filter(self, filter_: dict | None) -> Predicate:
        """A read's filter compiled (BadInput if invalid), then strict mode's filter checks
        (index required, condition count and size)."""
        predicate = self.collection.compile_filter(filter_)
        strict.check_filter(self.collection.config, self.collection.payload_index, filter_, update=False)
        return predicate

    def check_timeout(self, timeout: int | None) -> None:
        """Strict mode's `max_timeout` for a read's `timeout` query parameter: the HTTP
        layer calls it before preparing the request, as Qdrant checks it first."""
        strict.check_timeout(self.collection.config, timeout)

    def prepare(self, request: dict) -> Node:
        """A QueryRequest ready to run: every node's filter compiled (an invalid one is
        refused first, as Qdrant refuses it when parsing), then strict mode over the tree in
        Qdrant's order (collection/strict.py `check_query_tree`). Cheap enough for the
        event loop."""
        root = compile_tree(request, self.collection.compile_filter)
        strict.check_query_tree(self.collection.config, self.collection.payload_index, request)
        return root

    def _take_read(self, cost: int) -> None:
        """Strict mode's `read_rate_limit`: after every other check, before the read runs."""
        self.collection.rate_limits.take_read(cost)

    def _take_query(self, queries: list[Node]) -> None:
        leaves: list[tuple[dict, list]] = []
        for query in queries:
            _leaves(query, [], leaves)
        self._take_read(strict.query_cost(leaves))

    def _selectors(self, request: dict, payload_default: PayloadSelector = False) -> tuple[PayloadSelector, VectorSelector]:
        with_payload = request.get("with_payload", payload_default)
        with_vector = vector_selector(self.collection, request.get("with_vector", request.get("with_vectors", False)))
        return with_payload, with_vector

    # -- search family (prepared requests) ----------------------------------------------

    def points(self, query: Node) -> list[Hit]:
        """The scored points of one QueryRequest, payloads and vectors as it selects."""
        with_payload, with_vector = self._selectors(query.spec)
        self._take_query([query])
        started = time.monotonic()
        found = self._filled(self.queries.run(query), with_payload, with_vector)
        self._after_search(started, [query])
        return found

    def batch(self, queries: list[Node]) -> list[list[Hit]]:
        """The scored points of several; searches on one vector and filter share a scan."""
        self._take_query(queries)
        started = time.monotonic()
        results = []
        for query, hits in zip(queries, self.queries.run_batch(queries)):
            with_payload, with_vector = self._selectors(query.spec)
            results.append(self._filled(hits, with_payload, with_vector))
        self._after_search(started, queries)
        return results

    def _after_search(self, started: float, queries: list[Node]) -> None:
        """A slow search reports the unindexed fields of every filter of its trees."""
        filters: list = []
        for query in queries:
            _filters_of(query, filters)
        problems.report_slow_read(self.collection, filters, time.monotonic() - started)

    def groups(self, query: Node) -> Groups:
        """A groups request: a QueryRequest plus `group_by`, `group_size`, `limit` (of
        groups) and `with_lookup`."""
        request = query.spec
        with_payload, with_vector = self._selectors(request)
        group_by = request["group_by"]
        group_size = request.get("group_size") or DEFAULT_GROUP_SIZE
        limit = request.get("limit") or DEFAULT_GROUP_LIMIT
        with_lookup = request.get("with_lookup")
        self._take_query([query])
        started = time.monotonic()
        inner = {k: v for k, v in request.items() if k not in ("group_by", "group_size", "limit", "with_lookup")}
        found = self.queries.run_groups(Node(inner, query.predicate, query.prefetches), group_by, group_size, limit)
        hits = [hit for _, members in found for hit in members]
        filled = {hit.id: hit for hit in self._filled(hits, with_payload, with_vector)}
        lookups = self._lookups(found, with_lookup)
        self._after_search(started, [query])
        return Groups(
            [Group(value, [filled[h.id] for h in members if h.id in filled], lookups.get(value)) for value, members in found],
            with_lookup is not None,
        )

    def matrix(self, query: Node) -> tuple[list, list]:
        """Distance matrix (`sample`, `limit`, `using`, `filter`): (ids, [(row, col, score)])."""
        request = query.spec
        # Qdrant samples with a scroll, then runs one search per sampled point
        sample = request.get("sample") or DEFAULT_MATRIX_SAMPLE
        self._take_read((1 + sample) * (1 + strict.filter_cost(request.get("filter"))))
        started = time.monotonic()
        found = self.queries.matrix(
            query.predicate,
            request.get("sample") or DEFAULT_MATRIX_SAMPLE,
            request.get("limit") or DEFAULT_MATRIX_LIMIT,
            request.get("using"),
        )
        self._after_search(started, [query])
        return found

    # -- point reads --------------------------------------------------------------------

    def retrieve(self, request: dict) -> list[Record]:
        """A PointRequest: `ids`, `with_payload` (default true), `with_vector`."""
        ids = [normalize_id(i) for i in request["ids"]]
        with_payload, with_vector = self._selectors(request, payload_default=True)
        self._take_read(len(ids))
        return self.collection.reads.retrieve(ids, with_payload, with_vector)

    def scroll(self, request: dict) -> tuple[list[Record], Any]:
        """A ScrollRequest: (records, next page offset; None with `order_by`)."""
        strict.check_query_limit(self.collection.config, request.get("limit"))
        predicate = self.read_filter(request.get("filter"))
        with_payload, with_vector = self._selectors(request, payload_default=True)
        limit = request.get("limit", DEFAULT_SCROLL_LIMIT)
        self._take_read(1 + strict.filter_cost(request.get("filter")))
        order_by = request.get("order_by")
        reads = self.collection.reads
        if order_by is not None:
            if request.get("offset") is not None:
                raise BadInput(ORDER_BY_WITH_OFFSET)
            order_by = {"key": order_by} if isinstance(order_by, str) else order_by
            return reads.scroll_ordered(order_by, limit, predicate, with_payload, with_vector), None
        offset = normalize_id(request["offset"]) if request.get("offset") is not None else None
        return reads.scroll(offset, limit, predicate, with_payload, with_vector)

    def count(self, request: dict) -> int:
        """A CountRequest. Counts are exact whatever `exact` says: segments count the
        matching points as cheaply as they would estimate them."""
        predicate = self.read_filter(request.get("filter"))
        strict.check_exact(self.collection.config, request.get("exact", True))
        self._take_read(1 + strict.filter_cost(request.get("filter")))
        return self.collection.reads.count(predicate)

    def facet(self, request: dict) -> list[dict]:
        """A FacetRequest: [{"value", "count"}], the most frequent values first (exact
        counts: the value-map indexes give them as cheaply as an estimate)."""
        strict.check_query_limit(self.collection.config, request.get("limit"))
        predicate = self.read_filter(request.get("filter"))
        strict.check_exact(self.collection.config, request.get("exact"))
        self._take_read(1 + strict.filter_cost(request.get("filter")))
        return self.collection.reads.facet(request["key"], predicate, request.get("limit") or DEFAULT_FACET_LIMIT)

    # -- helpers ------------------------------------------------------------------------

    def _filled(self, hits: list[Hit], with_payload, with_vector) -> list[Hit]:
        """Hits with payloads and vectors as selected, read from the segments (a point
        deleted since it was scored is left out, as in Qdrant)."""
        if not with_payload and not with_vector:
            return hits
        records = {r.id: r for r in self.collection.reads.retrieve([h.id for h in hits], with_payload or False, with_vector)}
        filled = []
        for hit in hits:
            record = records.get(hit.id)
            if record is not None:
                filled.append(Hit(hit.id, hit.version, hit.score, hit.order_value, record.payload, record.vectors, hit.shard_key))
        return filled

    def _lookups(self, groups: list[tuple[Any, list[Hit]]], with_lookup) -> dict:
        """group value -> the record with that id in the `with_lookup` collection."""
        if with_lookup is None:
            return {}
        if isinstance(with_lookup, str):
            with_lookup = {"collection": with_lookup}
        name = with_lookup["collection"]
        try:
            other = self.lookup(name)
        except NotFound:  # Qdrant's CollectionError::NotFound "Collection {name}" (lookup/mod.rs)
            raise NotFound(f"Not found: Collection {name} not found") from None
        payload = with_lookup.get("with_payload", True)
        vectors = vector_selector(other, with_lookup.get("with_vectors") or False)
        ids = {}
        for value, _ in groups:
            try:
                ids[value] = normalize_id(value)
            except BadInput:  # a group value that cannot be a point id has no lookup
                continue
        records = {r.id: r for r in other.reads.retrieve(list(ids.values()), payload, vectors)}
        return {value: records[point_id] for value, point_id in ids.items() if point_id in records}


def _filters_of(node: Node, out: list) -> None:
    """Every filter of a query tree (Qdrant's `filter_refs`: the root's and its prefetches')."""
    if node.spec.get("filter"):
        out.append(node.spec["filter"])
    for prefetch in node.prefetches:
        _filters_of(prefetch, out)


def _leaves(node: Node, filters: list, out: list) -> None:
    """(leaf spec, the filters on the way to it) of a query tree: the searches and
    scrolls Qdrant's planned query runs (a parent's filter applies to its prefetches)."""
    own = [*filters, node.spec.get("filter")] if node.spec.get("filter") else filters
    if not node.prefetches:
        out.append((node.spec, own))
    for prefetch in node.prefetches:
        _leaves(prefetch, own, out)
