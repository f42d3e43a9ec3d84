"""Searching one segment's vector indexes: the graph, the quantized codes, tenant subgraphs.

What a segment kind holds for a dense vector (an HNSW graph over some of its points,
quantized codes of the same nodes, per-tenant subgraphs) is a `DenseIndex`; the functions
here plan and run one nearest query through it, and know nothing of where the points are
stored. The segment (`IndexedSegment` today, `ImmutableSegment` of docs/design/
on-disk-segments.md later) decides *whether* the index answers (`DenseIndex.can_answer`,
`full_scan_vectors`) and supplies, per search:

  matrix     the stored vectors in their storage dtype, whose rows give the scores that are
             reported (`distance.rescore`: the scores an exact scan reports). Addressed by
             slot (row = slot, the default: a store that keeps a row per slot) or, with
             `matrix_by_node`, by graph node (row = node: a store that keeps rows only for
             the points that have the vector, in node order).
  allowed    the filter's mask over the graph's nodes (`DenseIndex.node_mask`), or None.
  deleted    a bool mask over *slots* of points never to return (an immutable segment's
             deletion flags), or None. Passed to the kernels as their `deleted` mask over
             nodes: a view of the same buffer when nodes are slots 0..k-1, so an unfiltered
             search builds no mask; a gather (`flags[rows]`) otherwise.

A graph node is traversed whatever the masks say; a node that is not allowed or is
deleted is never returned (hnsw.py). The segment merges in anything the index does not
cover (`IndexedSegment`'s exactly-scanned tail) with `merge`.

Planning, as Qdrant's (per segment and vector): `hnsw_ef` from the request, else the
graph's `ef_construct`, raised to `limit`; codes when there are any and the request does not
say `quantization.ignore`, then (`rescore`, default) `limit * oversampling` candidates
scored again on `matrix`; a filter requiring one tenant's value searches that tenant's
subgraph on the original vectors.

Extracted from indexed.py (issue 17, step P1c) without behaviour change: the masks and
matrices handed to the Numba kernels have the same dtypes, shapes and layouts as before, so
the kernels' cached specialisations stay valid.
"""

from __future__ import annotations

import math

import numpy as np

from pydrant.config import DEFAULTS
from pydrant.segments import distance as metric
from pydrant.segments import scoring
from pydrant.segments.hnsw import HnswIndex
from pydrant.segments.quantization import QuantizedVectors
from pydrant.segments.scoring import ScoringQuery, VectorSpace

# Qdrant's config.yaml `ef_construct`: the beam when neither the request nor a graph gives one.
DEFAULT_EF = DEFAULTS.storage.hnsw_index.ef_construct

Hits = tuple[np.ndarray, np.ndarray]  # (slots int64, similarities float32), best first


class TenantGraph:
    """An HNSW graph over the points holding one value of a tenant field (`is_tenant`
    keyword/uuid index): Qdrant's payload-aware links, as a separate graph. `nodes` are
    the main index's node numbers of its points, ascending; the graph's node i is the main
    index's node `nodes[i]`."""

    def __init__(self, nodes: np.ndarray, graph: HnswIndex):
        self.nodes = nodes
        self.graph = graph


class DenseIndex:
    """One dense vector's graph (and codes, tenant subgraphs) in a segment.

    rows:      int32 node -> slot (for multi-vectors: the slot of the point owning the
               sub-vector, one node per sub-vector), ascending
    graph:     over `vectors` (node order), or None (`m` 0: codes or tenants only)
    vectors:   float32 (nodes, dim), what the graph scores and was built on
    quantized: codes of the same nodes, or None
    tenants:   (field path, `value_key(value)`) -> TenantGraph
    """

    def __init__(
        self,
        rows: np.ndarray,
        graph: HnswIndex | None,
        vectors: np.ndarray,
        quantized: QuantizedVectors | None = None,
        multi: bool = False,
    ):
        self.rows = rows
        self.multi = multi
        # nodes 0..k-1 are slots 0..k-1: masks over slots serve as masks over nodes
        self.identity = is_identity(rows)
        self.graph = graph
        self.vectors = vectors
        self.quantized = quantized
        self.tenants: dict[tuple, TenantGraph] = {}

    @property
    def nbytes(self) -> int:
        graph = self.graph.nbytes if self.graph is not None else 0
        codes = self.quantized.nbytes if self.quantized is not None else 0
        tenants = sum(t.graph.nbytes + t.graph.vectors.nbytes + t.nodes.nbytes for t in self.tenants.values())
        return graph + codes + self.rows.nbytes + tenants

    # -- planning

    def uses_codes(self, params: dict) -> bool:
        """Whether a search with these params runs on the quantized codes."""
        return self.quantized is not None and not (params.get("quantization") or {}).get("ignore")

    def can_answer(self, params: dict, tenant: TenantGraph | None) -> bool:
        """Whether this index answers a nearest search (through the graph, the codes or
        `tenant`'s subgraph); when not, the segment scans exactly."""
        return self.graph is not None or self.uses_codes(params) or tenant is not None

    def ef(self, params: dict, limit: int) -> int:
        """The beam of a search: `hnsw_ef`, else the graph's `ef_construct`, at least `limit`."""
        default = self.graph.ef_construct if self.graph is not None else DEFAULT_EF
        return max(int(params.get("hnsw_ef") or default), limit)

    def tenant_for(self, predicate) -> TenantGraph | None:
        """The subgraph of a tenant the filter requires (a top-level `must` match of a
        tenant field's value), else None. The filter's own mask still decides the hits."""
        plan = getattr(predicate, "plan", None)
        if not self.tenants or not plan:
            return None
        for part in plan[1] if plan[0] == "all" else [plan]:
            if part[0] == "field" and part[2][0] == "value":
                tenant = self.tenants.get((part[1], value_key(part[2][1])))
                if tenant is not None:
                    return tenant
        return None

    # -- masks over slots as masks over nodes

    def node_mask(self, slot_mask: np.ndarray, nodes: np.ndarray | None = None) -> np.ndarray | None:
        """A mask over slots as the `allowed` mask of a graph over `nodes` (default: every
        node of this index); None when it allows them all."""
        allowed = self._over_nodes(slot_mask, nodes)
        return None if allowed.all() else np.ascontiguousarray(allowed)

    def node_deleted(self, deleted: np.ndarray | None, nodes: np.ndarray | None = None) -> np.ndarray | None:
        """The `deleted` mask over slots as the kernels' `deleted` mask over `nodes`
        (default: every node). With identity rows this is a view of `deleted` (no copy,
        no scan: the flags go to the kernels as they are)."""
        return None if deleted is None else self._over_nodes(deleted, nodes)

    def _over_nodes(self, slot_mask: np.ndarray, nodes: np.ndarray | None) -> np.ndarray:
        if nodes is not None:
            return slot_mask[self.rows[nodes]]
        if self.identity:
            return slot_mask[: len(self.rows)]
        return slot_mask[self.rows]


# -- one nearest query ------------------------------------------------------------------------


def graph_search(
    index: DenseIndex,
    query: ScoringQuery,
    limit: int,
    space: VectorSpace,
    allowed: np.ndarray | None,
    params: dict,
    matrix: np.ndarray,
    deleted: np.ndarray | None = None,
    *,
    matrix_by_node: bool = False,
) -> Hits:
    """(slots, similarities) of one nearest query through the graph (or the codes). The
    graph ranks; the hits are reported with their reference scores (`distance.reference`
    on `matrix`'s rows), as an exact scan reports them. The caller has checked
    `index.can_answer(params, None)`."""
    vector = metric.graph_query(query.examples[0], space.distance, space.datatype)
    ef = index.ef(params, limit)
    deleted_nodes = index.node_deleted(deleted)
    if index.uses_codes(params):
        nodes, sims, rescore = quantized_search(index, vector, limit, ef, allowed, params, deleted_nodes)
        if not rescore:  # the approximate scores, as asked
            return index.rows[nodes].astype(np.int64), np.asarray(sims, np.float32)
    else:
        assert index.graph is not None  # can_answer: codes or a graph
        nodes, _ = index.graph.search(vector, limit, ef, allowed, deleted_nodes)
    return _rescored(index, nodes, matrix, matrix_by_node, query, space, limit)


def tenant_search(
    index: DenseIndex,
    tenant: TenantGraph,
    query: ScoringQuery,
    limit: int,
    space: VectorSpace,
    mask: np.ndarray,
    params: dict,
    matrix: np.ndarray,
    deleted: np.ndarray | None = None,
    *,
    matrix_by_node: bool = False,
) -> Hits:
    """(slots, similarities) through one tenant's subgraph; `mask` (the filter's, over
    slots) over its nodes is the `allowed` mask (original vectors: codes are not used
    here, as Qdrant's payload-aware graph search)."""
    vector = metric.graph_query(query.examples[0], space.distance, space.datatype)
    ef = max(int(params.get("hnsw_ef") or tenant.graph.ef_construct), limit)
    allowed = index.node_mask(mask, tenant.nodes)
    found, _ = tenant.graph.search(vector, limit, ef, allowed, index.node_deleted(deleted, tenant.nodes))
    return _rescored(index, tenant.nodes[found], matrix, matrix_by_node, query, space, limit)


def quantized_search(
    index: DenseIndex,
    vector: np.ndarray,
    limit: int,
    ef: int,
    allowed: np.ndarray | None,
    params: dict,
    deleted_nodes: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Search on the codes (through the graph when there is one, else a scan of every
    code): (nodes, approximate similarities, rescore). With `rescore` (default) it returns
    `limit * oversampling` candidates (`params.quantization`), which the caller scores again
    with the original vectors, keeping the best `limit`. `vector` is the prepared query
    (`distance.graph_query`); `deleted_nodes` is over nodes."""
    quantization = params.get("quantization") or {}
    rescore = quantization.get("rescore")
    rescore = True if rescore is None else bool(rescore)
    oversampling = float(quantization.get("oversampling") or 1.0)
    wanted = max(limit, int(math.ceil(limit * oversampling))) if rescore else limit
    assert index.quantized is not None
    if index.graph is not None:
        nodes, sims = index.quantized.graph_search(index.graph, vector, wanted, max(ef, wanted), allowed, deleted_nodes)
    else:
        nodes, sims = index.quantized.scan(vector, wanted, allowed, deleted_nodes)
    return nodes, sims, rescore


def nominate_multi(
    index: DenseIndex,
    query: ScoringQuery,
    space: VectorSpace,
    ef: int,
    allowed: np.ndarray | None,
    params: dict,
    deleted: np.ndarray | None = None,
) -> np.ndarray:
    """The slots a multi-vector query nominates for MaxSim: each query row's `ef` nearest
    sub-vectors (graph, codes through the graph, or a scan of the codes), as int64 slots
    with repeats. The caller scores them (with whatever else it must cover) exactly; the
    index's `ef` is the whole beam here, not only a bound on `limit`."""
    use_codes = index.uses_codes(params)
    deleted_nodes = index.node_deleted(deleted)
    nominated = []
    for row in np.atleast_2d(np.asarray(query.examples[0], np.float32)):
        vector = metric.graph_query(row, space.distance, space.datatype)
        if not use_codes:
            assert index.graph is not None  # can_answer: codes or a graph
            nodes, _ = index.graph.search(vector, ef, ef, allowed, deleted_nodes)
        elif index.graph is not None:
            assert index.quantized is not None
            nodes, _ = index.quantized.graph_search(index.graph, vector, ef, ef, allowed, deleted_nodes)
        else:
            assert index.quantized is not None
            nodes, _ = index.quantized.scan(vector, ef, allowed, deleted_nodes)
        nominated.append(index.rows[nodes].astype(np.int64))
    return np.concatenate(nominated) if nominated else np.empty(0, np.int64)


# -- scores and merges ------------------------------------------------------------------------


def _rescored(
    index: DenseIndex, nodes: np.ndarray, matrix: np.ndarray, matrix_by_node: bool,
    query: ScoringQuery, space: VectorSpace, limit: int,
) -> Hits:
    slots = index.rows[nodes].astype(np.int64)
    return reported(matrix, slots, query, space, limit, nodes if matrix_by_node else None)


def reported(
    matrix: np.ndarray,
    slots: np.ndarray,
    query: ScoringQuery,
    space: VectorSpace,
    limit: int,
    matrix_rows: np.ndarray | None = None,
) -> Hits:
    """The best `limit` of `slots` by their reference scores (`distance.reference` of the
    query and the stored rows): the scores an exact scan reports for the same points.
    `matrix_rows`: the rows of `matrix` holding `slots`' vectors (default: the slots)."""
    if not len(slots):
        return slots, np.empty(0, np.float32)
    stored = matrix[slots if matrix_rows is None else matrix_rows]
    sims = metric.rescore(stored, query.examples[0], space.distance, space.datatype)
    top = scoring.top_k(sims, limit)
    return slots[top], sims[top]


def merge(a: tuple, b: tuple, limit: int) -> Hits:
    """The best `limit` of two (slots, similarities) lists that hold different slots."""
    rows = np.concatenate([np.asarray(a[0], np.int64), np.asarray(b[0], np.int64)])
    scores = np.concatenate([np.asarray(a[1], np.float32), np.asarray(b[1], np.float32)])
    top = scoring.top_k(scores, limit)
    return rows[top], scores[top]


# -- small helpers shared with the segments that build and load these indexes -----------------


def full_scan_vectors(threshold_kb: float, dim: int) -> float:
    """A dense vector's `full_scan_threshold` (kB) as a number of float32 vectors of `dim`:
    a filter that leaves fewer candidates is scanned exactly, and a tenant smaller than
    that gets no subgraph (as Qdrant, counted in float32 whatever the storage dtype)."""
    return threshold_kb * 1024 / (dim * 4)


def value_key(value) -> tuple:
    """A payload value as a dict key that keeps True and 1 apart (tenant subgraphs)."""
    return (type(value).__name__, value)


def is_identity(rows: np.ndarray) -> bool:
    """Whether sorted unique `rows` are 0, 1, ..., len - 1."""
    return len(rows) == 0 or (int(rows[0]) == 0 and int(rows[-1]) == len(rows) - 1)
