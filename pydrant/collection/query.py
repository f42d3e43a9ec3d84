"""The query engine: Qdrant's universal Query API over a collection's segments.

Every search endpoint ends here: `search`, `recommend` and `discover` requests are turned
into universal `QueryRequest`s by the HTTP layer (plain JSON, validated), and enter through
the collection's engine (collection/engine.py), which compiles the tree's filters once
(`compile_tree`) and applies strict mode. A request is a tree: leaves read points from the
segments (vector search, scroll by id, order by a payload field, random sample); inner
nodes re-rank the union of their prefetches' results (a vector query restricted to those
ids, fusion, a formula, order_by, sample, MMR).

Semantics follow Qdrant 1.15 (lib/collection/src/operations/universal_query):
- filters are propagated from the root into every leaf (merged with each level's own);
- `offset` is added to every prefetch's limit, and applied once at the root;
- points referenced by id in the query (same collection, not `lookup_from` another one)
  are excluded from the results;
- `score_threshold` keeps scores at least the threshold, or at most for nearest queries on
  Euclid/Manhattan vectors, whose scores are distances;
- results without a score of their own (scroll, order_by, sample) score 1.0, version 0.

Each segment plans its own search from `params` (docs/optimizer.md "Search planning"):
appendable segments scan exactly (segments/scoring.py); indexed ones scan exactly or walk
their HNSW graph (`hnsw_ef`, `exact`) and quantized codes (`quantization`). A search runs
on every segment at once (`fanout.map_segments`) and the per-segment top-k lists are
merged in segment order, ties broken by point id.
Blocking code, run in worker threads.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from pydrant.collection import fusion
from pydrant.collection.fanout import map_segments
from pydrant.collection.formula import Formula
from pydrant.collection.predicates import Predicate, conjunction, ids_predicate
from pydrant.collection.vector_input import (
    Lookup,
    PointRef,
    QueryBuilder,
    parse_vector_input,
    vector_space,
)
from pydrant.config import DEFAULTS
from pydrant.errors import BadInput
from pydrant.segments import scoring
from pydrant.segments.ids import id_sort_key, normalize_id
from pydrant.segments.payload import get_values, parse_path
from pydrant.segments.scoring import VectorSpace
from pydrant.segments.types import DEFAULT_VECTOR

DEFAULT_LIMIT = 10
DEFAULT_GROUP_SIZE = 3
DEFAULT_MMR_DIVERSITY = 0.5
MAX_GET_GROUPS_REQUESTS = 5  # Qdrant's grouping/group_by.rs
MAX_GROUP_FILLING_REQUESTS = 5


@dataclass
class Hit:
    """One scored point of a result. The engine's entry points (collection/engine.py) fill
    in `payload` and `vectors` as the request selects them."""

    id: Any
    version: int
    score: float
    order_value: Any = None
    payload: dict | None = None
    vectors: dict | None = None
    shard_key: Any = None  # set for points of a custom-sharded collection (collection/sharded.py)


@dataclass
class Node:
    """A node of a query tree, its own filter compiled (`compile_tree`)."""

    spec: dict  # the node's QueryRequest / Prefetch JSON
    predicate: Predicate = None
    prefetches: list[Node] = field(default_factory=list)

    def nodes(self) -> Iterator[dict]:
        """The JSON of this node and every prefetch under it, depth first, parents first."""
        yield self.spec
        for prefetch in self.prefetches:
            yield from prefetch.nodes()


def compile_tree(request: dict, compile_filter: Callable[[dict], Predicate]) -> Node:
    """A query tree with every node's filter compiled by `compile_filter` (the collection's,
    with its text analyzers), parents before their prefetches."""
    own = request.get("filter")
    predicate = compile_filter(own) if own else None
    return Node(request, predicate, [compile_tree(p, compile_filter) for p in _prefetch_list(request.get("prefetch"))])


@dataclass
class _Vector:
    """A vector query ready to run: what to score with, on which vector, how to report."""

    scoring: scoring.ScoringQuery
    using: str
    space: VectorSpace

    @property
    def ascending(self) -> bool:
        return scoring.reported_order_ascending(self.scoring, self.space.distance)


class QueryEngine:
    """The query tree over one collection's segments. Long-lived: the collection's engine
    (collection/engine.py) holds one, and `resolve_collection` (name -> Collection, for
    `lookup_from`) is given at construction."""

    def __init__(self, collection, resolve_collection: Callable[[str], Any]):
        self.collection = collection
        self.resolve_collection = resolve_collection  # name -> Collection, for lookup_from

    # -- plain requests (filters compiled here; no strict-mode checks) ----------------------

    def compile(self, request: dict) -> Node:
        return compile_tree(request, self.collection.compile_filter)

    def query(self, request: dict) -> list[Hit]:
        """The hits of a `QueryRequest` (plain JSON), best first, after `offset`."""
        return self.run(self.compile(request))

    def query_batch(self, requests: list[dict]) -> list[list[Hit]]:
        return self.run_batch([self.compile(request) for request in requests])

    def query_groups(self, request: dict, group_by: str, group_size: int, limit: int) -> list[tuple[Any, list[Hit]]]:
        return self.run_groups(self.compile(request), group_by, group_size, limit)

    # -- the universal query --------------------------------------------------------------

    def run(self, root: Node, extra: Predicate = None) -> list[Hit]:
        """The hits of a compiled query tree, best first, after `offset`; `extra` is a
        filter of the engine's own merged into every level (groups use it)."""
        request = root.spec
        _validate_node(request, is_root=True)
        limit = request.get("limit") or DEFAULT_LIMIT
        offset = request.get("offset") or 0
        query = request.get("query")
        if _query_kind(query) == "sample" and not request.get("prefetch"):
            offset = 0  # a random sample has no stable order to page through
        excluded = self._referenced_ids(request)
        outer = conjunction(ids_predicate(excluded, exclude=True) if excluded else None, extra)
        hits = self._run(root, outer, limit=limit + offset, offset_extra=offset)
        return hits[offset:]

    def run_batch(self, roots: list[Node]) -> list[list[Hit]]:
        """Several queries; simple vector searches with the same vector and filter share
        one pass over the vectors (one matrix product for the whole group)."""
        results: list = [None] * len(roots)
        groups: dict = {}
        for i, root in enumerate(roots):
            key = self._shared_scan_key(root.spec)
            if key is None:
                results[i] = self.run(root)
            else:
                groups.setdefault(key, []).append(i)
        for indices in groups.values():
            batch = [roots[i] for i in indices]
            for i, hits in zip(indices, self._simple_searches(batch)):
                results[i] = hits
        return results

    def _shared_scan_key(self, request: dict):
        """A key shared by requests that can be answered by one scan, else None."""
        query = request.get("query")
        if request.get("prefetch") or request.get("lookup_from") or _query_kind(query) != "nearest":
            return None
        target = _nearest_target(query)
        if isinstance(target, (int, str, dict)) or (isinstance(query, dict) and query.get("mmr")):
            return None
        return (request.get("using") or DEFAULT_VECTOR, _json_key(request.get("filter")), _json_key(request.get("params")))

    def _simple_searches(self, roots: list[Node]) -> list[list[Hit]]:
        """Requests of one shared-scan key: same vector, filter and params (so the first
        one's compiled filter serves them all)."""
        requests = [root.spec for root in roots]
        using = requests[0].get("using") or DEFAULT_VECTOR
        builder = QueryBuilder(self.collection, using, Lookup(self.collection, using))
        vectors = []
        for request in requests:
            query = request["query"]
            raw = _nearest_target(query)
            vectors.append(_Vector(builder.nearest(parse_vector_input(raw)), using, builder.space))
        limits = [(r.get("limit") or DEFAULT_LIMIT) + (r.get("offset") or 0) for r in requests]
        found = self._search(vectors, max(limits), roots[0].predicate, requests[0].get("params"))
        results = []
        for request, hits, limit in zip(requests, found, limits):
            hits = _thresholded(hits[:limit], request.get("score_threshold"), vectors[0].ascending)
            results.append(hits[request.get("offset") or 0 :])
        return results

    def _run(self, node: Node, outer: Predicate, limit: int, offset_extra: int) -> list[Hit]:
        """A node's hits: a leaf reads segments, an inner node re-ranks its prefetches.
        `outer` is the filter of the levels above (and the excluded example ids)."""
        filter_ = conjunction(outer, node.predicate)
        if not node.prefetches:
            return self._leaf(node.spec, filter_, limit)
        sources = []
        for prefetch in node.prefetches:
            _validate_node(prefetch.spec, is_root=False)
            prefetch_limit = (prefetch.spec.get("limit") or DEFAULT_LIMIT) + offset_extra
            sources.append(self._run(prefetch, filter_, prefetch_limit, offset_extra))
        return self._rescore(node.spec, sources, limit)

    def _leaf(self, node: dict, filter_: Predicate, limit: int) -> list[Hit]:
        query = node.get("query")
        kind = _query_kind(query)
        threshold = node.get("score_threshold")
        if query is None:
            return self._scroll_by_id(filter_, limit)
        if kind == "order_by":
            return self._ordered(query["order_by"], filter_, limit)
        if kind == "sample":
            return self._sample(filter_, limit)
        if kind in ("fusion", "rrf", "formula"):
            raise BadInput(f"Bad request: a `{kind}` query needs prefetches to combine; none were given")
        vector = self._vector_query(node)
        if kind == "nearest" and isinstance(query, dict) and query.get("mmr") is not None:
            return self._mmr(vector, query["mmr"], filter_, limit, threshold, node.get("params"))
        hits = self._search([vector], limit, filter_, node.get("params"))[0]
        return _thresholded(hits, threshold, vector.ascending)

    def _rescore(self, node: dict, sources: list[list[Hit]], limit: int) -> list[Hit]:
        query = node["query"]
        kind = _query_kind(query)
        threshold = node.get("score_threshold")
        ids = list(dict.fromkeys(hit.id for hits in sources for hit in hits))
        only_sources = ids_predicate(ids) if ids else None
        if kind in ("fusion", "rrf"):
            if kind == "rrf":
                fused = fusion.rrf(sources, (query["rrf"] or {}).get("k") or fusion.DEFAULT_RRF_K)
            elif query["fusion"] == "rrf":
                fused = fusion.rrf(sources)
            else:
                fused = fusion.dbsf(sources)
            return _thresholded(fused, threshold, ascending=False)[:limit]
        if not ids:
            return []
        if kind == "formula":
            return self._formula(query, sources, ids, limit, threshold)
        if kind == "order_by":
            return self._ordered(query["order_by"], only_sources, limit)
        if kind == "sample":
            return self._sample(only_sources, limit)
        vector = self._vector_query(node)
        if kind == "nearest" and isinstance(query, dict) and query.get("mmr") is not None:
            return self._mmr(vector, query["mmr"], only_sources, limit, threshold, node.get("params"))
        hits = self._search([vector], limit, only_sources, node.get("params"))[0]
        return _thresholded(hits, threshold, vector.ascending)

    # -- vector queries -------------------------------------------------------------------

    def _vector_query(self, node: dict) -> _Vector:
        using = node.get("using") or DEFAULT_VECTOR
        lookup = Lookup.of(self.collection, using, node.get("lookup_from"), self.resolve_collection)
        builder = QueryBuilder(self.collection, using, lookup)
        query = node["query"]
        kind = _query_kind(query)
        if kind == "nearest":
            raw = query["nearest"] if isinstance(query, dict) and "nearest" in query else query
            target = parse_vector_input(raw)
            builder.fetch([target])
            return _Vector(builder.nearest(target), using, builder.space)
        if kind == "recommend":
            spec = query["recommend"]
            positive = [parse_vector_input(v) for v in spec.get("positive") or []]
            negative = [parse_vector_input(v) for v in spec.get("negative") or []]
            builder.fetch(positive + negative)
            scoring_query = builder.recommend(positive, negative, spec.get("strategy") or "average_vector")
            return _Vector(scoring_query, using, builder.space)
        if kind == "discover":
            spec = query["discover"]
            target = parse_vector_input(spec["target"])
            pairs = _pairs(spec.get("context"))
            builder.fetch([target] + [v for pair in pairs for v in pair])
            return _Vector(builder.discover(target, pairs), using, builder.space)
        if kind == "context":
            pairs = _pairs(query["context"])
            builder.fetch([v for pair in pairs for v in pair])
            if not pairs:
                return _Vector(scoring.ScoringQuery(scoring.CONTEXT, ()), using, builder.space)
            return _Vector(builder.context(pairs), using, builder.space)
        raise BadInput(f"Bad request: unsupported query {kind!r}")

    def _search(self, vectors: list[_Vector], limit: int, predicate: Predicate, params: dict | None = None) -> list[list[Hit]]:
        """Search of several queries on one vector with one filter; hits per query. Each
        segment plans its own search (exact or through its indexes) from `params`; the
        segments are searched concurrently and their lists merged in segment order."""
        using, space = vectors[0].using, vectors[0].space
        if any(not v.scoring.examples for v in vectors):  # e.g. an empty context: every point ties at 0
            return [self._all_scored(v, limit, predicate) for v in vectors]
        segments = list(self.collection.segments)
        if (params or {}).get("indexed_only"):
            segments = [s for s in segments if not _large_unindexed(s, using, self.collection.config)]
        queries = [v.scoring for v in vectors]
        per_segment = map_segments(
            lambda segment: segment.search(using, queries, limit, space, predicate, params), segments
        )
        results = []
        for i, vector in enumerate(vectors):
            merged = _newest_per_id(found[i] for found in per_segment)
            merged.sort(key=lambda item: (-item[0], id_sort_key(item[1])))
            merged = merged[:limit]
            scores = scoring.postprocess(vector.scoring, space.distance, np.array([m[0] for m in merged], np.float32))
            results.append([Hit(point_id, version, float(score)) for (_, point_id, version), score in zip(merged, scores.tolist())])
        return results

    def _all_scored(self, vector: _Vector, limit: int, filter_: Predicate) -> list[Hit]:
        ids = self.collection.reads.matching_ids(filter_, vector_name=vector.using)
        return [Hit(point_id, 0, 0.0) for point_id in ids[:limit]]

    # -- MMR ------------------------------------------------------------------------------

    def _mmr(self, vector: _Vector, mmr: dict, filter_: Predicate, limit: int, threshold, params: dict | None) -> list[Hit]:
        """Maximal marginal relevance: the `candidates_limit` nearest points, then greedily
        the one maximising lambda * relevance - (1 - lambda) * its highest similarity to those
        already chosen (lambda = 1 - diversity). Hits keep their nearest-search scores."""
        diversity = mmr.get("diversity")
        lambda_ = 1.0 - (DEFAULT_MMR_DIVERSITY if diversity is None else diversity)
        pool = mmr.get("candidates_limit") or limit
        hits = self._search([vector], pool, filter_, params)[0]
        hits = _thresholded(hits, threshold, vector.ascending)
        if len(hits) < 2:
            return hits[:limit]
        records = self.collection.reads.retrieve([h.id for h in hits], False, [vector.using])
        stored = {r.id: (r.vectors or {}).get(vector.using) for r in records}
        hits = [h for h in hits if stored.get(h.id) is not None]
        relevance = self._similarities(vector, [stored[h.id] for h in hits], vector.scoring)
        pairwise = self._pairwise(vector, [stored[h.id] for h in hits])
        chosen = [int(np.argmax(relevance))]
        remaining = [i for i in range(len(hits)) if i != chosen[0]]
        while len(chosen) < limit and remaining:
            closest = pairwise[np.ix_(remaining, chosen)].max(axis=1)
            marginal = lambda_ * relevance[remaining] - (1.0 - lambda_) * closest
            pick = remaining[int(np.argmax(marginal))]
            chosen.append(pick)
            remaining.remove(pick)
        return [hits[i] for i in chosen]

    def _similarities(self, vector: _Vector, values: list, query: scoring.ScoringQuery) -> np.ndarray:
        if vector.space.kind == "dense":
            matrix = np.vstack([np.asarray(v, np.float32) for v in values])
            return scoring.score_rows(matrix, np.arange(len(values)), query, vector.space)
        return scoring.score_rows(values, np.arange(len(values)), query, vector.space)

    def _pairwise(self, vector: _Vector, values: list) -> np.ndarray:
        """Similarity of every stored vector to every other (metric similarity): row `a`,
        column `b` scores `values[a]` as the query against `values[b]` as the stored vector,
        which is what Qdrant computes in both MMR (`scorers[candidate].score_point(selected)`)
        and the distance matrix (a search with each sampled point's vector). It matters for
        multivectors, whose max_sim is not symmetric."""
        return np.vstack([
            self._similarities(vector, values, scoring.ScoringQuery(scoring.NEAREST, (value,))) for value in values
        ])

    # -- scroll-like leaves ---------------------------------------------------------------

    def _scroll_by_id(self, filter_: Predicate, limit: int) -> list[Hit]:
        records, _ = self.collection.reads.scroll(None, limit, filter_, False, False)
        return [Hit(r.id, 0, 1.0) for r in records]

    def _ordered(self, order_by, filter_: Predicate, limit: int) -> list[Hit]:
        order_by = {"key": order_by} if isinstance(order_by, str) else order_by
        records = self.collection.reads.scroll_ordered(order_by, limit, filter_, False, False)
        return [Hit(r.id, 0, 1.0, r.order_value) for r in records]

    def _sample(self, filter_: Predicate, limit: int) -> list[Hit]:
        ids = self.collection.reads.matching_ids(filter_)
        picked = random.sample(ids, min(limit, len(ids)))
        return [Hit(point_id, 0, 1.0) for point_id in picked]

    # -- formula --------------------------------------------------------------------------

    def _formula(self, query: dict, sources: list[list[Hit]], ids: list, limit: int, threshold) -> list[Hit]:
        formula = Formula(query["formula"], query.get("defaults") or {}, self.collection.compile_filter)
        per_source = [{hit.id: hit.score for hit in hits} for hits in sources]
        versions = {hit.id: hit.version for hits in sources for hit in hits}
        records = {r.id: r for r in self.collection.reads.retrieve(ids, True, False)}
        scored = []
        for point_id in ids:
            record = records.get(point_id)
            if record is None:
                continue
            scores = [source.get(point_id) for source in per_source]
            value = formula.score(point_id, record.payload or {}, scores, has_vector=self._vector_check(point_id))
            scored.append(Hit(point_id, versions[point_id], value))
        scored.sort(key=lambda hit: (-hit.score, id_sort_key(hit.id)))
        return _thresholded(scored, threshold, ascending=False)[:limit]

    def _vector_check(self, point_id) -> Callable[[str], bool]:
        segments = self.collection.segments
        return lambda name: any(name in segment.vector_names_of(point_id) for segment in segments)

    # -- groups ---------------------------------------------------------------------------

    def run_groups(self, root: Node, group_by: str, group_size: int, limit: int) -> list[tuple[Any, list[Hit]]]:
        """The best `limit` groups of hits by the payload value at `group_by`, each with
        at most `group_size` hits, groups in the order of their best hit; only strings and
        integers group, and a point with an array value joins the group of each value.

        Qdrant's group_by (grouping/group_by.rs): each request asks for `limit * group_size`
        points, prefetch limits multiplied by `limit`, only points having the key; up to 5
        requests leave out the points already grouped and the groups already full, until
        the best `limit` groups are full; then up to 5 more ask only for the best groups
        still short of `group_size`. So a group of a prefetch tree is filled from points
        beyond the prefetches' first results, as Qdrant's is."""
        _check_group_by(group_by)
        spec = dict(root.spec, limit=limit * group_size, offset=0)
        tree = Node(spec, root.predicate, [_scaled_limits(p, limit) for p in root.prefetches])
        has_key = self.collection.compile_filter({"must_not": [{"is_empty": {"key": group_by}}]})
        ascending = self._reported_ascending(spec)
        groups = _GroupsAggregator(limit, group_size, ascending)

        def fetch(condition: dict | None) -> bool:
            extra = conjunction(has_key, self.collection.compile_filter(condition) if condition else None)
            if groups.ids:
                extra = conjunction(extra, ids_predicate(list(groups.ids.values()), exclude=True))
            hits = self.run(tree, extra)
            groups.add(hits, self._group_values(hits, group_by))
            return bool(hits)

        needs_filling = True
        for _ in range(MAX_GET_GROUPS_REQUESTS):
            if not fetch(_match_condition(group_by, groups.full_keys(), "except")):
                break
            if groups.filled_best() >= limit:
                needs_filling = False
                break
        if needs_filling:
            for _ in range(MAX_GROUP_FILLING_REQUESTS):
                if not fetch(_match_condition(group_by, groups.unfilled_best_keys(), "any")):
                    break
                if groups.filled_best() >= limit:
                    break
        return groups.distill()

    def _reported_ascending(self, spec: dict) -> bool:
        """Whether the root query's scores improve downwards (a nearest search, or an
        average-vector recommendation, on a distance)."""
        query = spec.get("query")
        kind = _query_kind(query)
        if kind == "recommend" and isinstance(query, dict):
            if (query["recommend"].get("strategy") or "average_vector") != "average_vector":
                return False
        elif kind != "nearest":
            return False
        space = vector_space(self.collection, spec.get("using") or DEFAULT_VECTOR)
        return scoring.reported_order_ascending(scoring.ScoringQuery(scoring.NEAREST, ()), space.distance)

    def _group_values(self, hits: list[Hit], group_by: str) -> dict:
        """id -> the distinct group values of the point (arrays opened one level). As
        Qdrant's aggregator, a point with any value that is neither a string nor an
        integer (a float, bool, null, object, nested array) joins no group."""
        path = parse_path(group_by)
        records = self.collection.reads.retrieve(list(dict.fromkeys(h.id for h in hits)), True, False)
        values = {}
        for record in records:
            found: list = []
            for value in get_values(record.payload or {}, path):
                if isinstance(value, bool) or not isinstance(value, (str, int)):
                    found = []
                    break
                if not any(type(value) is type(v) and value == v for v in found):
                    found.append(value)
            values[record.id] = found
        return values

    # -- distance matrix ------------------------------------------------------------------

    def matrix(self, filter_: Predicate, sample: int, limit: int, using: str | None) -> tuple[list, list]:
        """Qdrant's distance matrix: a random sample of `sample` points having vector
        `using` (and matching `filter_`), and for each its `limit` nearest others in the
        sample: (ids, [(row, col, score)])."""
        using = using or DEFAULT_VECTOR
        space = vector_space(self.collection, using)
        ids = self.collection.reads.matching_ids(filter_, vector_name=using)
        ids = random.sample(ids, min(sample, len(ids)))
        ids.sort(key=id_sort_key)
        if len(ids) < 2:
            return ids, []
        records = {r.id: r for r in self.collection.reads.retrieve(ids, False, [using])}
        ids = [i for i in ids if records.get(i) is not None and (records[i].vectors or {}).get(using) is not None]
        values = [records[i].vectors[using] for i in ids]
        vector = _Vector(scoring.ScoringQuery(scoring.NEAREST, (values[0],)), using, space)
        pairwise = self._pairwise(vector, values)
        if space.kind == "sparse":
            # a sparse search only finds points sharing an index with the query (Qdrant's
            # plain sparse search skips the others), so those pairs are not neighbours
            for row, value in enumerate(values):
                pairwise[row][~scoring.sparse_similarities(values, value)[1]] = -np.inf
        np.fill_diagonal(pairwise, -np.inf)
        entries: list[tuple[int, int, float]] = []
        for row in range(len(ids)):
            order = scoring.top_k(pairwise[row], min(limit, len(ids) - 1))
            order = order[np.isfinite(pairwise[row][order])]
            scores = scoring.postprocess(vector.scoring, space.distance, pairwise[row][order])
            entries.extend((row, int(col), float(score)) for col, score in zip(order.tolist(), scores.tolist()))
        return ids, entries

    # -- helpers --------------------------------------------------------------------------

    def _referenced_ids(self, request: dict) -> list:
        """Ids a query uses as examples in this collection (root and nested prefetches).
        As Qdrant's `get_referenced_point_ids_on_collection`, a node whose `lookup_from`
        names another collection (by name: an alias counts as another) excludes nothing."""
        found: list = []
        lookup = request.get("lookup_from")
        if not lookup or lookup["collection"] == self.collection.name:
            found.extend(ref.id for ref in _refs_of(request.get("query")))
        for prefetch in _prefetch_list(request.get("prefetch")):
            found.extend(self._referenced_ids(prefetch))
        return list(dict.fromkeys(found))


# -- request shape ------------------------------------------------------------------------


def _query_kind(query) -> str | None:
    """Which query variant `query` is (None when absent)."""
    if query is None:
        return None
    if isinstance(query, dict):
        for key in ("nearest", "recommend", "discover", "context", "order_by", "fusion", "rrf", "formula", "sample"):
            if key in query:
                return key
        return "nearest"  # a sparse vector, or an inference object (rejected when parsed)
    return "nearest"  # a dense or multi vector, or a point id


def _validate_node(node: dict, is_root: bool) -> None:
    query = node.get("query")
    kind = _query_kind(query)
    if _prefetch_list(node.get("prefetch")) and query is None:
        raise BadInput(
            "Bad request: A query is needed to merge the prefetches. Can't have prefetches without defining a query."
        )
    if node.get("score_threshold") is not None:
        if kind == "order_by":
            raise BadInput("Bad request: Can't use score_threshold with an order_by query.")
        if kind is None:
            raise BadInput(
                "Bad request: A query is needed to use the score_threshold. Can't have score_threshold without "
                "defining a query."
            )
    if kind in ("fusion", "rrf") and (node.get("using") or DEFAULT_VECTOR) != DEFAULT_VECTOR:
        raise BadInput("Bad request: Fusion queries cannot be combined with the 'using' field.")


def _prefetch_list(prefetch) -> list[dict]:
    if prefetch is None:
        return []
    return prefetch if isinstance(prefetch, list) else [prefetch]


def _pairs(context) -> list[tuple]:
    if context is None:
        return []
    pairs = context if isinstance(context, list) else [context]
    return [(parse_vector_input(p["positive"]), parse_vector_input(p["negative"])) for p in pairs]


def _refs_of(query) -> list[PointRef]:
    """Point ids used as vectors by a query (parsing only what names points)."""
    kind = _query_kind(query)
    inputs = []
    if kind == "nearest":
        inputs = [query["nearest"] if isinstance(query, dict) and "nearest" in query else query]
    elif kind == "recommend":
        spec = query["recommend"]
        inputs = list(spec.get("positive") or []) + list(spec.get("negative") or [])
    elif kind == "discover":
        spec = query["discover"]
        inputs = [spec["target"]] + [v for p in _raw_pairs(spec.get("context")) for v in p]
    elif kind == "context":
        inputs = [v for p in _raw_pairs(query["context"]) for v in p]
    return [PointRef(normalize_id(v)) for v in inputs if isinstance(v, (int, str)) and not isinstance(v, bool)]


def _raw_pairs(context) -> list[tuple]:
    if context is None:
        return []
    pairs = context if isinstance(context, list) else [context]
    return [(p["positive"], p["negative"]) for p in pairs]


def _thresholded(hits: list[Hit], threshold, ascending: bool) -> list[Hit]:
    if threshold is None:
        return hits
    threshold = float(np.float32(threshold))  # an f32 in Qdrant: a score as printed passes its own threshold
    if ascending:
        return [h for h in hits if h.score <= threshold]
    return [h for h in hits if h.score >= threshold]


def _large_unindexed(segment, using: str, config: dict) -> bool:
    """`indexed_only` skips a segment whose vectors are not indexed yet although they have
    outgrown `indexing_threshold` (Qdrant: searches only indexed or small segments)."""
    if not segment.is_appendable:
        return False
    threshold_kb = (config.get("optimizer_config") or {}).get("indexing_threshold")
    if threshold_kb is None:
        threshold_kb = DEFAULTS.storage.optimizers.indexing_threshold_kb or 0
    return threshold_kb > 0 and segment.vector_bytes().get(using, 0) / 1024 >= threshold_kb


def _newest_per_id(lists) -> list[tuple]:
    """(score, id, version) entries, one per id: its newest version's (copy-on-write may
    leave a point in two segments for a moment)."""
    best: dict = {}
    for entries in lists:
        for entry in entries:
            key = id_sort_key(entry[1])
            current = best.get(key)
            if current is None or entry[2] > current[2]:
                best[key] = entry
    return list(best.values())


def _json_key(value) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode() if value is not None else ""


def _check_group_by(group_by: str) -> None:
    parse_path(group_by)  # BadInput naming the key when it is not a valid path


class _GroupsAggregator:
    """Qdrant's GroupsAggregator (grouping/aggregator.rs): hits gathered into groups over
    several requests. A group takes every new point of its value (it may grow beyond
    `group_size`; the best `group_size` are kept at the end) and is full once it has
    reached `group_size`. The best groups are those of the best best hits, ties in the
    order the groups were met."""

    def __init__(self, limit: int, group_size: int, ascending: bool):
        self.limit = limit
        self.group_size = group_size
        self.ascending = ascending
        self.groups: dict = {}  # (type name, value) -> {id key: Hit}, in order of creation
        self.best: dict = {}  # (type name, value) -> rank of the group's best hit
        self.ids: dict = {}  # id key -> id of every grouped point
        self.full: dict = {}  # keys of the groups that reached group_size, in that order

    def add(self, hits: list[Hit], values: dict) -> None:
        for hit in hits:
            rank = self._rank(hit)
            id_key = id_sort_key(hit.id)
            for value in values.get(hit.id, []):
                key = (type(value).__name__, value)
                members = self.groups.setdefault(key, {})
                members.setdefault(id_key, hit)
                self.ids[id_key] = hit.id
                if len(members) >= self.group_size:
                    self.full.setdefault(key, None)
                if key not in self.best or rank < self.best[key]:
                    self.best[key] = rank

    def _rank(self, hit: Hit):
        return hit.score if self.ascending else -hit.score

    def _best_keys(self) -> list:
        """The keys of the `limit` groups with the best best hits, best first."""
        return sorted(self.best, key=self.best.__getitem__)[: self.limit]

    def full_keys(self) -> list:
        return [key[1] for key in self.full]

    def filled_best(self) -> int:
        return sum(1 for key in self._best_keys() if key in self.full)

    def unfilled_best_keys(self) -> list:
        return [key[1] for key in self._best_keys() if key not in self.full]

    def distill(self) -> list[tuple[Any, list[Hit]]]:
        """The best groups, best first, each with its best `group_size` hits."""
        out = []
        for key in self._best_keys():
            hits = sorted(self.groups[key].values(), key=lambda h: (self._rank(h), id_sort_key(h.id)))
            out.append((key[1], hits[: self.group_size]))
        return out


def _match_condition(group_by: str, values: list, kind: str) -> dict | None:
    """Qdrant's except_on / match_on: one `match` condition for the integer values and one
    for the strings, all of them required."""
    ints = [v for v in values if isinstance(v, int) and not isinstance(v, bool)]
    strs = [v for v in values if isinstance(v, str)]
    must = [{"key": group_by, "match": {kind: part}} for part in (ints, strs) if part]
    return {"must": must} if must else None


def _scaled_limits(node: Node, factor: int) -> Node:
    """A prefetch tree with every limit multiplied by `factor` (Qdrant's
    increase_limit_for_group)."""
    spec = dict(node.spec, limit=(node.spec.get("limit") or DEFAULT_LIMIT) * factor)
    return Node(spec, node.predicate, [_scaled_limits(p, factor) for p in node.prefetches])


def _nearest_target(query):
    """What a nearest query searches for: `{"nearest": x}` or a bare x (a vector, an id, or
    a sparse vector, which is itself a dict)."""
    return query["nearest"] if isinstance(query, dict) and "nearest" in query else query
