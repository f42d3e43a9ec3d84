"""HNSW graph index: Numba kernels over plain numpy arrays, and a small `HnswIndex` wrapper.

Similarity is larger-is-closer for every metric, as in `distance.py` (which holds the metric
codes, the `DISTANCES` table whose index `meta` stores, and `score`, the scorer the kernels
inline): Cosine and Dot the dot product (Cosine vectors must already be normalised, as
segments store them), Euclid the negative squared distance, Manhattan the negative L1
distance. The kernels take float32 (n, dim) C-contiguous vectors; `HnswIndex` converts
anything else (float16, uint8 storage) into a float32 copy. uint8 Cosine, dot / (|a| |b|)
rather than a plain dot product, is not supported yet: build such an index over normalised
float32 copies (`distance.graph_vectors`). The similarities the kernels return carry
`FASTMATH` rounding; segments report `distance.reference` scores for graph hits.

Graph layout (all numpy, so it can be saved as `.npy` and memory-mapped; see `arrays()`):

    levels      int32 (n,)                 level of each node (0 for ~(1 - 1/m) of them)
    links0      int32 (n, 2m)              level-0 neighbours, -1 past the count
    counts0     int32 (n,)                 level-0 neighbour count
    upper_slot  int32 (n,)                 row in the upper arrays, -1 when level == 0
    upper_links int32 (n_upper, L, m)      neighbours at levels 1..L (index level - 1)
    upper_counts int32 (n_upper, L)
    meta        int64 (8,)                 n, dim, distance (index in DISTANCES), m,
                                           ef_construct, entry, max_level, seed

Levels are drawn up front from `numpy.random.default_rng(seed)` as floor(-ln(1 - U) / ln(m)).

Build (`build_graph`): points are inserted in id order, in *batches*. Every point of a batch
searches the graph as it was before the batch (greedy descent on the upper levels, then
`ef_construct` beam search per level) and picks its neighbours with the heuristic of
Malkov & Yashunin (algorithm 4, hnswlib's getNeighborsByHeuristic2); those searches run in
parallel (worker w takes items w, w + T, ...). The reverse links are then grouped by target
node and level, and each group is applied by one worker: appended while the list has room,
otherwise the old neighbours plus the new ones are pruned back to the capacity (2m at level
0, m above) by the same heuristic. No two workers ever write the same list and nothing a
worker reads is written during a phase, so no locks are needed, and the graph depends only
on the data, the parameters and the seed -- not on the thread count or the scheduling.
Batches start at one point and grow with the graph (1/8 of the points inserted so far,
at most 512), so that the points of a batch miss few of their true neighbours among their
batch peers; a point whose level is above the current top level is inserted alone and
becomes the entry point. The workers are Python threads calling `nogil` kernels, not
`prange`: Numba's fallback `workqueue` threading layer aborts the process when two threads
launch parallel kernels at once, and segments are built and searched from worker threads.

Search: greedy descent from the entry point to level 1, then a beam search of width
`ef` (>= k) on level 0 with two binary heaps on numpy arrays (candidates, best on top;
results, worst on top) and a visited array tagged with a generation counter (uint16,
cleared once every 65,535 searches). The unvisited neighbours of an expanded node are
marked first and their vectors prefetched, then scored, so their memory loads overlap.
Points that fail the `allowed` mask or are set in the `deleted` mask are traversed but never
returned; the search then goes on until it holds `ef` acceptable points and the next
candidate is worse than all of them (hnswlib's filtered search). The candidate heap holds
max(2048, 4 ef) entries: beyond that the candidates already worse than the ef-th result
are dropped (which changes nothing), and in a very selective filtered search the worst
candidate gives way to a better one. When ef >= n the search is an exact scan.

Opening saved or memory-mapped arrays (`HnswIndex.from_arrays`) copies nothing and checks
shapes, dtypes and `meta` only; `check()` reads the arrays once more to refuse what would
make the `nogil` kernels read out of bounds (ids out of range, a -1 among the listed
neighbours of any level, counts above the capacity, levels and `upper_slot` that disagree).
It works in blocks of `CHECK_BLOCK_BYTES`, so its temporaries are a few MB for any graph
(one pass over a whole 10M-node graph would need ~1 GB of masks), and `check_steps()`
yields between blocks so that a background verifier can throttle or cancel it (issue 17:
immutable segments open without it and verify in the background).
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic, overload

from pydrant.segments.distance import DISTANCES, FASTMATH, \
    METRICS, score as _score

# The one table of distances, the kernels' metric codes and float flags, and the scorer
# the kernels inline (`_score`) live in distance.py.
_FASTMATH = FASTMATH

_CAND_CAP = 2048  # candidate heap capacity of a search (see _search_layer)
_BATCH_DIVISOR = 8
_MAX_BATCH = 512
_META_FIELDS = ("n", "dim", "distance", "m", "ef_construct", "entry", "max_level", "seed")
# Graph bytes `HnswIndex.check` reads per block: its temporaries (bool masks of the block)
# stay a small multiple of this, whatever the graph's size.
CHECK_BLOCK_BYTES = 4 << 20

_jit = numba.njit(nogil=True, cache=True)
_jit_math = numba.njit(nogil=True, cache=True, fastmath=_FASTMATH)


# -- distances -------------------------------------------------------------------------------


@numba.njit(nogil=True, cache=True, fastmath=_FASTMATH, inline="always")
def _sim(a, i, b, j, metric):
    """Similarity of row i of float vectors a and row j of float vectors b (larger is
    closer): the float case of `distance.score`, which the build calls under this name."""
    return _score(a, i, b, j, metric)


def _line_elements(vectors):
    """Elements of `vectors` per 64-byte cache line (16 float32), a compile-time constant."""
    raise NotImplementedError("only callable from Numba kernels")


@overload(_line_elements, inline="always")
def _line_elements_overload(vectors):
    if not isinstance(vectors, types.Array):
        return None
    count = max(1, 64 // (vectors.dtype.bitwidth // 8))
    return lambda vectors: count


@intrinsic
def _prefetch(typingctx, array, row, col):
    """Hint the CPU to load array[row, col] (a 2-d array) into the cache: llvm.prefetch,
    read, high locality. No effect on results."""
    if not (isinstance(array, types.Array) and array.ndim == 2):
        return None
    sig = types.void(array, row, col)

    def codegen(context, builder, signature, args):
        array_type = signature.args[0]
        arr = context.make_array(array_type)(context, builder, args[0])
        indices = [context.cast(builder, args[i], signature.args[i], types.intp) for i in (1, 2)]
        ptr = cgutils.get_item_pointer2(
            context, builder, data=arr.data, shape=cgutils.unpack_tuple(builder, arr.shape),
            strides=cgutils.unpack_tuple(builder, arr.strides), layout=array_type.layout,
            inds=indices, wraparound=False, boundscheck=False)
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]), "llvm.prefetch.p0")
        builder.call(fn, [builder.bitcast(ptr, i8p), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return sig, codegen


# -- binary heaps on arrays: max-heap on key ------------------------------------------------


@_jit
def _heap_push(keys, ids, size, key, ident):
    """Add (key, ident) to a heap of `size` items (room for one more is the caller's job)."""
    pos = size
    while pos > 0:
        parent = (pos - 1) >> 1
        if keys[parent] >= key:
            break
        keys[pos] = keys[parent]
        ids[pos] = ids[parent]
        pos = parent
    keys[pos] = key
    ids[pos] = ident


@_jit
def _heap_pop(keys, ids, size):
    """Remove the top of a heap of `size` > 0 items (read it before)."""
    size -= 1
    if size == 0:
        return
    key = keys[size]
    ident = ids[size]
    pos = 0
    while True:
        child = 2 * pos + 1
        if child >= size:
            break
        if child + 1 < size and keys[child + 1] > keys[child]:
            child += 1
        if keys[child] <= key:
            break
        keys[pos] = keys[child]
        ids[pos] = ids[child]
        pos = child
    keys[pos] = key
    ids[pos] = ident


@_jit
def _next_tag(visited, row):
    """A fresh generation for visited[row]; its last element holds the current one."""
    n = visited.shape[1] - 1
    tag = np.int64(visited[row, n]) + 1
    if tag >= 65535:
        visited[row, :] = 0
        tag = 1
    visited[row, n] = tag
    return np.uint16(tag)


# -- graph traversal ------------------------------------------------------------------------


@_jit_math
def _greedy(upper_links, upper_counts, upper_slot, vectors, qmat, qi, metric, entry, top, stop):
    """Greedy descent from `entry` on levels top..stop+1; returns (node, similarity)."""
    cur = entry
    cur_sim = _score(qmat, qi, vectors, cur, metric)
    for level in range(top, stop, -1):
        changed = True
        while changed:
            changed = False
            slot = upper_slot[cur]
            count = upper_counts[slot, level - 1]
            for t in range(count):
                nb = upper_links[slot, level - 1, t]
                s = _score(qmat, qi, vectors, nb, metric)
                if s > cur_sim:
                    cur_sim = s
                    cur = nb
                    changed = True
    return cur, cur_sim


@_jit
def _make_room(c_key, c_id, c_size, lower, s):
    """The candidate heap is full: drop the candidates below `lower` (never expanded once
    the results are full; in an unfiltered search that always frees room, as at most ef
    candidates are at or above it). If none is below, the new candidate of similarity s
    takes the place of the worst one when it is better. Returns (new size, keep s)."""
    kept = 0
    for t in range(c_size):
        if c_key[t] >= lower:
            c_key[kept] = c_key[t]
            c_id[kept] = c_id[t]
            kept += 1
    if kept < c_size:
        # re-heapify the survivors (sift-up insertion, in place)
        for t in range(kept):
            _heap_push(c_key, c_id, t, c_key[t], c_id[t])
        return kept, True
    worst = c_size - 1  # the minimum of a max-heap is a leaf
    for t in range(c_size >> 1, c_size):
        if c_key[t] < c_key[worst]:
            worst = t
    if c_key[worst] >= s:
        return c_size, False
    # remove the worst leaf: move the last item into its place and sift it up
    last = c_size - 1
    _heap_push(c_key, c_id, worst, c_key[last], c_id[last])  # a leaf's slot: sifting up is enough
    return c_size - 1, True


@_jit_math
def _search_layer(links0, counts0, upper_links, upper_counts, upper_slot, vectors, qmat, qi,
                  metric, entry, level, ef, allowed, arow, deleted, visited, vrow):
    """Beam search of width ef on one level. Returns the result heap (keys = -similarity,
    ids, size): up to ef acceptable points, the worst on top.

    Arrays are never re-bound inside the loop and no array is passed to a helper there:
    either would make Numba count references (atomic increments) on every iteration."""
    n = vectors.shape[0]
    tag = _next_tag(visited, vrow)
    # Each node enters the candidate heap at most once, so n + 1 always suffices; beyond
    # CAND_CAP, _make_room keeps it bounded (exact for unfiltered searches).
    cap = min(n + 1, max(_CAND_CAP, 4 * ef))
    c_key = np.empty(cap, np.float32)
    c_id = np.empty(cap, np.int32)
    r_key = np.empty(ef + 1, np.float32)
    r_id = np.empty(ef + 1, np.int32)
    pending = np.empty(links0.shape[1], np.int32)
    dim = vectors.shape[1]
    line = _line_elements(vectors)
    c_size = 0
    r_size = 0
    has_allowed = allowed.shape[1] > 0
    has_deleted = deleted.shape[0] > 0

    s = _score(qmat, qi, vectors, entry, metric)
    visited[vrow, entry] = tag
    lower = np.float32(-np.inf)
    if (not has_allowed or allowed[arow, entry]) and (not has_deleted or not deleted[entry]):
        _heap_push(r_key, r_id, r_size, -s, entry)
        r_size += 1
        lower = s
    _heap_push(c_key, c_id, c_size, s, entry)
    c_size += 1

    while c_size > 0:
        cur_sim = c_key[0]
        cur = c_id[0]
        if cur_sim < lower and r_size == ef:
            break
        _heap_pop(c_key, c_id, c_size)
        c_size -= 1
        if level == 0:
            count = counts0[cur]
            slot = 0
        else:
            slot = upper_slot[cur]
            count = upper_counts[slot, level - 1]
        # Mark the unvisited neighbours and prefetch their vectors, then score them: the
        # loads of all of them overlap instead of one miss after another.
        n_new = 0
        for t in range(count):
            if level == 0:
                nb = links0[cur, t]
            else:
                nb = upper_links[slot, level - 1, t]
            if visited[vrow, nb] != tag:
                visited[vrow, nb] = tag
                pending[n_new] = nb
                n_new += 1
                _prefetch(vectors, nb, 0)
        # ... and all the cache lines of the first one, then of each next one while
        # scoring the current one (`line` elements per 64-byte line: 16 float32)
        if n_new > 0:
            for col in range(line, dim, line):
                _prefetch(vectors, pending[0], col)
            _prefetch(vectors, pending[0], dim - 1)
        for t in range(n_new):
            nb = pending[t]
            if t + 1 < n_new:
                nxt = pending[t + 1]
                for col in range(line, dim, line):
                    _prefetch(vectors, nxt, col)
                _prefetch(vectors, nxt, dim - 1)
            s = _score(qmat, qi, vectors, nb, metric)
            if r_size < ef or s > lower:
                keep = True
                if c_size == cap:
                    c_size, keep = _make_room(c_key, c_id, c_size, lower, s)
                if keep:
                    _heap_push(c_key, c_id, c_size, s, nb)
                    c_size += 1
                if (not has_allowed or allowed[arow, nb]) and (not has_deleted or not deleted[nb]):
                    _heap_push(r_key, r_id, r_size, -s, nb)
                    r_size += 1
                    if r_size > ef:
                        _heap_pop(r_key, r_id, r_size)
                        r_size -= 1
                    lower = -r_key[0]
        if c_size > 0:
            _prefetch(links0, c_id[0], 0)
    return r_key, r_id, r_size


@_jit
def _drain_sorted(r_key, r_id, r_size, out_ids, out_sims):
    """Empty a result heap into out_* best first; returns the count."""
    for pos in range(r_size - 1, -1, -1):
        out_ids[pos] = r_id[0]
        out_sims[pos] = -r_key[0]
        _heap_pop(r_key, r_id, pos + 1)
    return r_size


@_jit_math
def _exact(vectors, qmat, qi, metric, k, allowed, arow, deleted, out_ids, out_sims, orow):
    n = vectors.shape[0]
    keys = np.empty(k + 1, np.float32)
    ids = np.empty(k + 1, np.int32)
    size = 0
    has_allowed = allowed.shape[1] > 0
    has_deleted = deleted.shape[0] > 0
    for node in range(n):
        if (has_allowed and not allowed[arow, node]) or (has_deleted and deleted[node]):
            continue
        s = _score(qmat, qi, vectors, node, metric)
        if size < k or s > -keys[0]:
            _heap_push(keys, ids, size, -s, node)
            size += 1
            if size > k:
                _heap_pop(keys, ids, size)
                size -= 1
    return _drain_sorted(keys, ids, size, out_ids[orow], out_sims[orow])


@_jit
def _search_into(links0, counts0, upper_links, upper_counts, upper_slot, vectors, entry,
                 max_level, metric, qmat, qi, k, ef, allowed, arow, deleted, visited, vrow,
                 out_ids, out_sims, orow):
    """Top k of query row qi of qmat into out_*[orow], best first; returns the count."""
    n = vectors.shape[0]
    if n == 0 or k <= 0:
        return 0
    ef = max(ef, k)
    if ef >= n:
        return _exact(vectors, qmat, qi, metric, k, allowed, arow, deleted, out_ids, out_sims, orow)
    cur, _ = _greedy(upper_links, upper_counts, upper_slot, vectors, qmat, qi, metric, entry,
                     max_level, 0)
    r_key, r_id, r_size = _search_layer(links0, counts0, upper_links, upper_counts, upper_slot,
                                        vectors, qmat, qi, metric, cur, 0, ef, allowed, arow,
                                        deleted, visited, vrow)
    while r_size > k:
        _heap_pop(r_key, r_id, r_size)
        r_size -= 1
    return _drain_sorted(r_key, r_id, r_size, out_ids[orow], out_sims[orow])


@_jit
def search_kernel(links0, counts0, upper_links, upper_counts, upper_slot, vectors, entry,
                  max_level, metric, query, k, ef, allowed, deleted, visited):
    """One query (1-d float32). allowed: bool (1, n) or (0, 0); deleted: bool (n,) or (0,);
    visited: uint16 (1, n + 1) owned by the caller for the call. Returns (ids, sims)."""
    return search_rows_kernel(links0, counts0, upper_links, upper_counts, upper_slot, vectors,
                              entry, max_level, metric, query.reshape(1, query.shape[0]), k, ef,
                              allowed, deleted, visited)


@_jit
def search_rows_kernel(links0, counts0, upper_links, upper_counts, upper_slot, vectors, entry,
                       max_level, metric, qmat, k, ef, allowed, deleted, visited):
    """As search_kernel for a query already in the scorer's form (`_score`): row 0 of
    `qmat` (quantized codes as `vectors`, a transformed query, a lookup table, bit planes).
    Returns (ids, raw scores)."""
    kk = max(0, min(k, vectors.shape[0]))
    out_ids = np.empty((1, kk), np.int32)
    out_sims = np.empty((1, kk), np.float32)
    count = _search_into(links0, counts0, upper_links, upper_counts, upper_slot, vectors, entry,
                         max_level, metric, qmat, 0, kk, ef, allowed, 0, deleted, visited, 0,
                         out_ids, out_sims, 0)
    return out_ids[0, :count].copy(), out_sims[0, :count].copy()


@_jit
def scan_kernel(vectors, metric, qmat, k, allowed, deleted):
    """Exact top k of row 0 of `qmat` over every row of `vectors` (any `_score` form):
    (ids, scores) best first. allowed: bool (1, n) or (0, 0); deleted: (n,) or (0,)."""
    kk = max(0, min(k, vectors.shape[0]))
    out_ids = np.empty((1, kk), np.int32)
    out_sims = np.empty((1, kk), np.float32)
    count = 0
    if kk > 0:
        count = _exact(vectors, qmat, 0, metric, kk, allowed, 0, deleted, out_ids, out_sims, 0)
    return out_ids[0, :count].copy(), out_sims[0, :count].copy()


@_jit
def search_many_kernel(links0, counts0, upper_links, upper_counts, upper_slot, vectors, entry,
                       max_level, metric, queries, k, ef, allowed, deleted, visited, worker,
                       n_workers, out_ids, out_sims, out_counts):
    """Queries worker, worker + n_workers, ... of `queries` (nq, dim) into out_* (nq, k).
    allowed: bool (1, n) shared, (nq, n) one row per query, or (0, 0)."""
    per_query = allowed.shape[0] > 1
    for qi in range(worker, queries.shape[0], n_workers):
        arow = qi if per_query else 0
        out_counts[qi] = _search_into(links0, counts0, upper_links, upper_counts, upper_slot,
                                      vectors, entry, max_level, metric, queries, qi, k, ef,
                                      allowed, arow, deleted, visited, 0, out_ids, out_sims, qi)


# -- build ------------------------------------------------------------------------------------


@_jit_math
def _heuristic(vectors, metric, cand_ids, cand_sims, n_cand, m, out):
    """Malkov & Yashunin's neighbour heuristic (hnswlib getNeighborsByHeuristic2) over
    candidates sorted best first: keep a candidate unless a kept one is closer to it than
    the base point is. Fewer than m candidates are all kept. Returns the count in out."""
    if n_cand < m:
        for i in range(n_cand):
            out[i] = cand_ids[i]
        return n_cand
    kept = 0
    for i in range(n_cand):
        if kept >= m:
            break
        e = cand_ids[i]
        se = cand_sims[i]
        good = True
        for j in range(kept):
            if _sim(vectors, out[j], vectors, e, metric) > se:
                good = False
                break
        if good:
            out[kept] = e
            kept += 1
    return kept


@_jit
def _insert_search(links0, counts0, upper_links, upper_counts, upper_slot, levels, vectors,
                   metric, entry, max_level, m, ef_construct, batch, visited, sel, sel_counts,
                   worker, n_workers):
    """Phase 1 of a batch: items worker, worker + n_workers, ... of `batch` search the graph
    as it was, choose their neighbours, write their own lists and record the choice in
    sel[i, level] for the reverse links."""
    cand_ids = np.empty(ef_construct, np.int32)
    cand_sims = np.empty(ef_construct, np.float32)
    chosen = np.empty(m, np.int32)
    no_allowed = np.zeros((0, 0), np.bool_)
    no_deleted = np.zeros(0, np.bool_)
    for i in range(worker, batch.shape[0], n_workers):
        u = batch[i]
        lu = levels[u]
        top = min(lu, max_level)
        cur, _ = _greedy(upper_links, upper_counts, upper_slot, vectors, vectors, u, metric,
                         entry, max_level, top)
        for level in range(top, -1, -1):
            r_key, r_id, r_size = _search_layer(links0, counts0, upper_links, upper_counts,
                                                upper_slot, vectors, vectors, u, metric, cur,
                                                level, ef_construct, no_allowed, 0, no_deleted,
                                                visited, worker)
            n_cand = _drain_sorted(r_key, r_id, r_size, cand_ids, cand_sims)
            cur = cand_ids[0]
            kept = _heuristic(vectors, metric, cand_ids, cand_sims, n_cand, m, chosen)
            if level == 0:
                for t in range(kept):
                    links0[u, t] = chosen[t]
                counts0[u] = kept
            else:
                slot = upper_slot[u]
                for t in range(kept):
                    upper_links[slot, level - 1, t] = chosen[t]
                upper_counts[slot, level - 1] = kept
            for t in range(kept):
                sel[i, level, t] = chosen[t]
            sel_counts[i, level] = kept


@_jit
def _group_reverse(batch, sel, sel_counts, n):
    """Phase 2: the reverse links (target, level) <- source of a batch, grouped by
    (level, target) in a stable order. Returns (starts, targets, sources, levels)."""
    nb = batch.shape[0]
    total = 0
    for i in range(nb):
        for level in range(sel.shape[1]):
            total += sel_counts[i, level]
    keys = np.empty(total, np.int64)
    targets = np.empty(total, np.int32)
    sources = np.empty(total, np.int32)
    lvls = np.empty(total, np.int32)
    p = 0
    for i in range(nb):
        for level in range(sel.shape[1]):
            for t in range(sel_counts[i, level]):
                v = sel[i, level, t]
                keys[p] = np.int64(level) * n + v
                targets[p] = v
                sources[p] = batch[i]
                lvls[p] = level
                p += 1
    order = np.argsort(keys, kind="mergesort")
    starts = np.empty(total + 1, np.int64)
    g = 0
    for p in range(total):
        if p == 0 or keys[order[p]] != keys[order[p - 1]]:
            starts[g] = p
            g += 1
    starts[g] = total
    return starts[: g + 1].copy(), targets[order], sources[order], lvls[order]


@_jit_math
def _link_reverse(links0, counts0, upper_links, upper_counts, upper_slot, vectors, metric, m,
                  starts, targets, sources, lvls, worker, n_workers):
    """Phase 3: groups worker, worker + n_workers, ... add their sources to their target's
    list, pruning old + new neighbours by the heuristic when they exceed the capacity."""
    cap_max = 2 * m
    n_groups = starts.shape[0] - 1
    largest = 0
    for g in range(n_groups):
        largest = max(largest, starts[g + 1] - starts[g])
    size = cap_max + largest
    cand_ids = np.empty(size, np.int32)
    cand_sims = np.empty(size, np.float32)
    chosen = np.empty(cap_max, np.int32)
    for g in range(worker, n_groups, n_workers):
        a = starts[g]
        b = starts[g + 1]
        v = targets[a]
        level = lvls[a]
        cap = cap_max if level == 0 else m
        if level == 0:
            count = counts0[v]
            slot = 0
        else:
            slot = upper_slot[v]
            count = upper_counts[slot, level - 1]
        if count + (b - a) <= cap:
            for p in range(a, b):
                if level == 0:
                    links0[v, count] = sources[p]
                else:
                    upper_links[slot, level - 1, count] = sources[p]
                count += 1
        else:
            # old and new neighbours, sorted best first by insertion (a few dozen items)
            total = 0
            for t in range(count + (b - a)):
                if t < count:
                    if level == 0:
                        e = links0[v, t]
                    else:
                        e = upper_links[slot, level - 1, t]
                else:
                    e = sources[a + t - count]
                se = _sim(vectors, v, vectors, e, metric)
                pos = total
                while pos > 0 and cand_sims[pos - 1] < se:
                    cand_sims[pos] = cand_sims[pos - 1]
                    cand_ids[pos] = cand_ids[pos - 1]
                    pos -= 1
                cand_sims[pos] = se
                cand_ids[pos] = e
                total += 1
            count = _heuristic(vectors, metric, cand_ids, cand_sims, total, cap, chosen)
            for t in range(cap):
                value = chosen[t] if t < count else -1
                if level == 0:
                    links0[v, t] = value
                else:
                    upper_links[slot, level - 1, t] = value
        if level == 0:
            counts0[v] = count
        else:
            upper_counts[slot, level - 1] = count


def draw_levels(n: int, m: int, seed: int) -> np.ndarray:
    """Node levels floor(-ln(1 - U) / ln(m)), U uniform in [0, 1), from a seeded RNG."""
    u = np.random.default_rng(seed).random(n)
    return np.floor(-np.log1p(-u) / math.log(m)).astype(np.int32)


class BuildCancelled(Exception):
    """`should_stop` asked a graph build to stop (between two batches)."""


def build_graph(vectors: np.ndarray, distance: str, m: int, ef_construct: int, seed: int,
                threads: int, should_stop=None) -> dict[str, np.ndarray]:
    """Build the graph arrays (see the module docstring) over float32 C-contiguous
    `vectors` with `threads` workers (the calling thread waits for them). `should_stop`,
    if given, is called between batches; when it returns true the build raises
    `BuildCancelled` (a closing server does not wait for a long build)."""
    metric = METRICS[distance]
    n, dim = vectors.shape
    levels = draw_levels(n, m, seed)
    top_level = int(levels.max()) if n else 0
    upper_nodes = np.flatnonzero(levels > 0)
    upper_slot = np.full(n, -1, np.int32)
    upper_slot[upper_nodes] = np.arange(upper_nodes.size, dtype=np.int32)
    links0 = np.full((n, 2 * m), -1, np.int32)
    counts0 = np.zeros(n, np.int32)
    upper_links = np.full((upper_nodes.size, top_level, m), -1, np.int32)
    upper_counts = np.zeros((upper_nodes.size, top_level), np.int32)
    entry, max_level = (0, int(levels[0])) if n else (-1, 0)

    threads = max(1, int(threads))
    visited = np.zeros((threads, n + 1), np.uint16)
    sel = np.empty((_MAX_BATCH, top_level + 1, m), np.int32)
    sel_counts = np.empty((_MAX_BATCH, top_level + 1), np.int32)
    graph = (links0, counts0, upper_links, upper_counts, upper_slot)
    pool = ThreadPoolExecutor(threads) if threads > 1 else None

    def run(kernel, args, items):
        """kernel(*args, worker, n_workers) on min(threads, items) workers; returns when
        all are done. The split does not change the result."""
        workers = min(threads, items) if pool is not None else 1
        if workers <= 1:
            kernel(*args, 0, 1)
        else:
            list(pool.map(lambda worker: kernel(*args, worker, workers), range(workers)))

    try:
        pos = 1
        while pos < n:
            if should_stop is not None and should_stop():
                raise BuildCancelled()
            size = min(_MAX_BATCH, max(1, pos // _BATCH_DIVISOR))
            end = min(n, pos + size)
            higher = np.flatnonzero(levels[pos:end] > max_level)
            if higher.size:  # a new top level: that point goes alone (and first)
                end = pos + max(1, int(higher[0]))
            batch = np.arange(pos, end, dtype=np.int32)
            sel_counts[: batch.size] = 0
            run(_insert_search, (*graph, levels, vectors, metric, entry, max_level, m,
                                 ef_construct, batch, visited, sel, sel_counts), batch.size)
            starts, targets, sources, lvls = _group_reverse(batch, sel, sel_counts, n)
            run(_link_reverse, (*graph, vectors, metric, m, starts, targets, sources, lvls),
                starts.size - 1)
            if levels[pos] > max_level and end == pos + 1:
                entry, max_level = pos, int(levels[pos])
            pos = end
    finally:
        if pool is not None:
            pool.shutdown()

    meta = np.array([n, dim, DISTANCES.index(distance), m, ef_construct, entry, max_level, seed],
                    np.int64)
    return {
        "levels": levels,
        "links0": links0,
        "counts0": counts0,
        "upper_slot": upper_slot,
        "upper_links": upper_links,
        "upper_counts": upper_counts,
        "meta": meta,
    }


# -- Python-facing wrapper ------------------------------------------------------------------

_search_pool: ThreadPoolExecutor | None = None
_search_pool_size = 0
_search_pool_lock = threading.Lock()


def _pool(threads: int) -> ThreadPoolExecutor:
    """A shared pool for search_batch (its tasks never wait on each other)."""
    global _search_pool, _search_pool_size
    with _search_pool_lock:
        if _search_pool is None or _search_pool_size < threads:
            if _search_pool is not None:
                _search_pool.shutdown(wait=False)
            _search_pool = ThreadPoolExecutor(threads, thread_name_prefix="hnsw")
            _search_pool_size = threads
        return _search_pool


_NO_ALLOWED = np.zeros((0, 0), np.bool_)
_NO_DELETED = np.zeros(0, np.bool_)


class HnswIndex:
    """An HNSW graph over a float32 (n, dim) matrix of vectors (referenced, not copied when
    already float32 C-contiguous; `arrays()` holds only the graph). Immutable once built;
    searches may run concurrently from any number of threads (each takes its own visited
    array from a small pool)."""

    ARRAY_NAMES = ("levels", "links0", "counts0", "upper_slot", "upper_links", "upper_counts",
                   "meta")

    def __init__(self, vectors: np.ndarray, arrays: Mapping[str, np.ndarray], check: bool = True):
        missing = [name for name in self.ARRAY_NAMES if name not in arrays]
        if missing:
            raise ValueError(f"graph arrays missing: {', '.join(missing)}")
        info = dict(zip(_META_FIELDS, _read_meta(arrays["meta"])))
        vectors = _as_matrix(vectors)
        n, dim, m = info["n"], info["dim"], info["m"]
        if vectors.shape[0] != n or (n and vectors.shape[1] != dim):
            raise ValueError(f"vectors {vectors.shape} do not match the graph ({n} x {dim})")
        self.vectors = vectors
        self.n, self.dim, self.m = n, dim, m
        if not 0 <= info["distance"] < len(DISTANCES):
            raise ValueError("unknown distance in the graph's meta")
        self.distance = DISTANCES[info["distance"]]
        self.metric = METRICS[self.distance]
        self.ef_construct = info["ef_construct"]
        self.entry = info["entry"]
        self.max_level = info["max_level"]
        self.seed = info["seed"]
        self._arrays = {name: arrays[name] for name in self.ARRAY_NAMES}
        self._check_layout()
        if check:
            self.check()
        arrays = self._arrays  # the kernels' first five arguments, in their order
        self._graph: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray] = (
            arrays["links0"], arrays["counts0"], arrays["upper_links"], arrays["upper_counts"], arrays["upper_slot"]
        )
        self._visited: list[np.ndarray] = []

    def _check_layout(self) -> None:
        """Shapes and dtypes, which the kernels rely on (cheap: touches no data)."""
        a, n, m = self._arrays, self.n, self.m
        n_upper = a["upper_links"].shape[0] if np.ndim(a["upper_links"]) == 3 else -1
        expected = {
            "levels": (n,), "links0": (n, 2 * m), "counts0": (n,), "upper_slot": (n,),
            "upper_links": (n_upper, self.max_level if n else 0, m),
            "upper_counts": (n_upper, self.max_level if n else 0),
        }
        for name, shape in expected.items():
            array = a[name]
            if array.dtype != np.int32 or array.shape != shape or not array.flags.c_contiguous:
                raise ValueError(f"graph array {name}: {array.dtype} {array.shape}, "
                                 f"expected int32 {shape} C-contiguous")
        if n and not (0 <= self.entry < n):
            raise ValueError("graph entry point out of range")

    def check(self) -> None:
        """Every stored id in range, every level and count consistent: what a corrupt graph
        (bit rot in a mapped file) would otherwise turn into out-of-bounds reads in the
        `nogil` kernels. Raises ValueError naming the array and the rows. Reads every graph
        array once, in blocks: the temporaries stay under ~3 x `CHECK_BLOCK_BYTES` (a few
        MB) whatever the graph's size (they were ~110 MB for 1M nodes before, ~1 GB at 10M,
        when the used-neighbour mask and its gather covered the whole of links0)."""
        for _ in self.check_steps():
            pass

    def check_steps(self, block_bytes: int = CHECK_BLOCK_BYTES) -> Iterator[int]:
        """`check()` one block at a time: after each block of about `block_bytes` of graph
        arrays, yields how many bytes have been checked so far (ending at `nbytes` minus
        `meta`). A background verifier can sleep between steps (throttle) or stop iterating
        (cancel); a corrupt block raises ValueError when it is reached."""
        a, n, m, max_level = self._arrays, self.n, self.m, self.max_level
        if not n:
            return
        if int(a["levels"][self.entry]) != max_level:
            raise ValueError("corrupt HNSW graph: the entry point is not on the top level")
        n_upper = a["upper_links"].shape[0]
        done = 0
        # level 0: levels, counts0, links0 and upper_slot of each block of nodes
        node_bytes = 4 * (2 * m + 3)
        for lo, hi in _blocks(n, max(1, block_bytes // node_bytes)):
            _check_node_block(a, lo, hi, n, m, max_level, n_upper)
            done += (hi - lo) * node_bytes
            yield done
        # levels 1..max_level: upper_links and upper_counts of each block of upper rows
        row_bytes = 4 * max_level * (m + 1)
        if n_upper and max_level:
            for lo, hi in _blocks(n_upper, max(1, block_bytes // row_bytes)):
                _check_upper_block(a, lo, hi, n, m)
                done += (hi - lo) * row_bytes
                yield done

    # -- construction

    @classmethod
    def build(cls, vectors: np.ndarray, distance: str = "Cosine", m: int = 16,
              ef_construct: int = 100, seed: int = 0, threads: int | None = None,
              should_stop=None) -> HnswIndex:
        """Build over `vectors` (float32 (n, dim); Cosine vectors already normalised; other
        dtypes are converted to a float32 copy). threads=None uses every core. The graph is
        the same for any thread count."""
        if distance not in METRICS:
            raise ValueError(f"unknown distance {distance!r}")
        if m < 2:
            raise ValueError("m must be at least 2")
        if ef_construct < 1:
            raise ValueError("ef_construct must be at least 1")
        vectors = _as_matrix(vectors)
        threads = (os.cpu_count() or 1) if threads is None else max(1, int(threads))
        arrays = build_graph(vectors, distance, int(m), int(ef_construct), int(seed), threads,
                             should_stop)
        return cls(vectors, arrays, check=False)

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], vectors: np.ndarray,
                    check: bool = True) -> HnswIndex:
        """An index over saved (or memory-mapped) arrays and the vectors it was built on,
        without copying either (float32 C-contiguous vectors; the arrays as `arrays()`
        returns them, extra names ignored). Shapes, dtypes and `meta` are always checked
        (O(1)); check=False skips `check()` (O(n), reads every array once) for a caller
        that runs it later, e.g. in the background."""
        return cls(vectors, arrays, check=check)

    def arrays(self) -> dict[str, np.ndarray]:
        """The graph as named numpy arrays (save each as .npy; vectors are not included)."""
        return dict(self._arrays)

    @property
    def nbytes(self) -> int:
        """RAM of the graph arrays (vectors not included)."""
        return sum(a.nbytes for a in self._arrays.values())

    # -- search

    def search(self, query: np.ndarray, k: int, ef: int | None = None,
               allowed: np.ndarray | None = None,
               deleted: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest acceptable points of one query (float32 (dim,), normalised for
        Cosine): (ids int32, similarities float32), best first; fewer than k when fewer
        are found. ef defaults to ef_construct, as Qdrant's hnsw_ef does, and is raised to k.
        allowed/deleted: bool masks (n,)
        or None; a point is acceptable when allowed and not deleted."""
        query = np.ascontiguousarray(query, dtype=np.float32)
        if query.shape != (self.dim,):
            raise ValueError(f"query must have shape ({self.dim},), not {query.shape}")
        allowed = _NO_ALLOWED if allowed is None else _mask(allowed, self.n).reshape(1, -1)
        deleted = _NO_DELETED if deleted is None else _mask(deleted, self.n)
        visited = self._take_visited()
        try:
            return search_kernel(*self._graph, self.vectors, self.entry, self.max_level,
                                 self.metric, query, int(k), int(ef or self.ef_construct),
                                 allowed, deleted,
                                 visited)
        finally:
            self._visited.append(visited)

    def search_codes(self, codes: np.ndarray, qmat: np.ndarray, k: int, ef: int | None = None,
                     allowed: np.ndarray | None = None,
                     deleted: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """`search` over the graph scoring the nodes on `codes` (n rows, one per point, any
        form `_score` knows: quantized vectors) against `qmat` (the query in the matching
        form, one row) instead of on `self.vectors`. Returns (ids int32, raw scores
        float32) best first; masks as in `search`."""
        if codes.ndim != 2 or codes.shape[0] != self.n or not codes.flags.c_contiguous:
            raise ValueError(f"codes must be C-contiguous with {self.n} rows")
        allowed = _NO_ALLOWED if allowed is None else _mask(allowed, self.n).reshape(1, -1)
        deleted = _NO_DELETED if deleted is None else _mask(deleted, self.n)
        visited = self._take_visited()
        try:
            return search_rows_kernel(*self._graph, codes, self.entry, self.max_level,
                                      self.metric, qmat, int(k), int(ef or self.ef_construct),
                                      allowed, deleted, visited)
        finally:
            self._visited.append(visited)

    def search_batch(self, queries: np.ndarray, k: int, ef: int | None = None,
                     allowed: np.ndarray | None = None, deleted: np.ndarray | None = None,
                     threads: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Many queries (nq, dim) on `threads` threads (default: every core); ef as in
        `search`.
        Returns ids int32 (nq, k) padded with -1 and similarities float32 (nq, k) padded
        with -inf. allowed: None, (n,) shared or (nq, n) one mask per query."""
        queries = _as_matrix(queries)
        nq = queries.shape[0]
        if nq and queries.shape[1] != self.dim:
            raise ValueError(f"queries must have {self.dim} columns, not {queries.shape[1]}")
        kk = max(0, int(k))
        out_ids = np.full((nq, kk), -1, np.int32)
        out_sims = np.full((nq, kk), -np.inf, np.float32)
        out_counts = np.zeros(nq, np.int64)
        if allowed is None:
            allowed = _NO_ALLOWED
        else:
            allowed = np.ascontiguousarray(allowed, dtype=np.bool_)
            if allowed.ndim == 1:
                allowed = allowed.reshape(1, -1)
            if allowed.ndim != 2 or allowed.shape[1] != self.n or allowed.shape[0] not in (1, nq):
                raise ValueError(f"allowed must be ({self.n},) or ({nq}, {self.n})")
        deleted = _NO_DELETED if deleted is None else _mask(deleted, self.n)
        threads = (os.cpu_count() or 1) if threads is None else max(1, int(threads))
        workers = max(1, min(threads, nq))
        ef = int(ef or self.ef_construct)
        if nq == 0 or kk == 0 or self.n == 0:
            return out_ids, out_sims

        def work(worker: int) -> None:
            visited = self._take_visited()
            try:
                search_many_kernel(*self._graph, self.vectors, self.entry, self.max_level,
                                   self.metric, queries, kk, ef, allowed, deleted, visited,
                                   worker, workers, out_ids, out_sims, out_counts)
            finally:
                self._visited.append(visited)

        if workers == 1:
            work(0)
        else:
            list(_pool(workers).map(work, range(workers)))
        return out_ids, out_sims

    def _take_visited(self) -> np.ndarray:
        try:
            return self._visited.pop()
        except IndexError:
            return np.zeros((1, self.n + 1), np.uint16)


def _read_meta(meta: np.ndarray) -> tuple[int, ...]:
    """The eight integers of the `meta` array (`_META_FIELDS`); ValueError when it is not
    an integer array of that shape (a torn or foreign file)."""
    meta = np.asarray(meta)
    if meta.shape != (len(_META_FIELDS),) or meta.dtype.kind not in "iu":
        raise ValueError(f"graph array meta: {meta.dtype} {meta.shape}, expected int64 "
                         f"({len(_META_FIELDS)},)")
    return tuple(int(x) for x in meta)


def _blocks(total: int, size: int) -> Iterator[tuple[int, int]]:
    """(lo, hi) ranges of at most `size` covering 0..total."""
    for lo in range(0, total, size):
        yield lo, min(total, lo + size)


def _check_node_block(a: Mapping[str, np.ndarray], lo: int, hi: int, n: int, m: int,
                      max_level: int, n_upper: int) -> None:
    """Nodes lo..hi-1 of a graph whose shapes `_check_layout` has accepted: levels in
    0..max_level, counts0 in 0..2m, links0 in -1..n-1 and no -1 among the first counts0
    entries (the listed neighbours), upper_slot in -1..n_upper-1 and set exactly for the
    nodes above level 0."""
    def fail(what: str) -> None:
        raise ValueError(f"corrupt HNSW graph: {what} (nodes {lo}..{hi - 1})")

    levels, counts = a["levels"][lo:hi], a["counts0"][lo:hi]
    links, upper_slot = a["links0"][lo:hi], a["upper_slot"][lo:hi]
    if levels.min() < 0 or levels.max() > max_level:
        fail(f"levels outside 0..{max_level}")
    if counts.min() < 0 or counts.max() > 2 * m:
        fail(f"counts0 outside 0..{2 * m}")
    if links.min() < -1 or links.max() >= n:
        fail("links0 holds ids out of range")
    listed = np.arange(2 * m, dtype=np.int32)[None, :] < counts[:, None]
    if (listed & (links < 0)).any():
        fail("links0 lists -1 as a neighbour")
    if upper_slot.min() < -1 or upper_slot.max() >= n_upper:
        fail("upper_slot holds rows out of range")
    if ((upper_slot >= 0) != (levels > 0)).any():
        fail("upper_slot and levels disagree")


def _check_upper_block(a: Mapping[str, np.ndarray], lo: int, hi: int, n: int, m: int) -> None:
    """Upper rows lo..hi-1: upper_counts in 0..m, upper_links in -1..n-1 and no -1 among
    the first upper_counts entries of each level."""
    def fail(what: str) -> None:
        raise ValueError(f"corrupt HNSW graph: {what} (upper rows {lo}..{hi - 1})")

    links, counts = a["upper_links"][lo:hi], a["upper_counts"][lo:hi]
    if counts.min() < 0 or counts.max() > m:
        fail(f"upper_counts outside 0..{m}")
    if links.min() < -1 or links.max() >= n:
        fail("upper_links holds ids out of range")
    listed = np.arange(m, dtype=np.int32)[None, None, :] < counts[:, :, None]
    if (listed & (links < 0)).any():
        fail("upper_links lists -1 as a neighbour")


def _as_matrix(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors)
    if vectors.ndim != 2:
        raise ValueError("vectors must be a 2-d array")
    return np.ascontiguousarray(vectors, dtype=np.float32)


def _mask(mask: np.ndarray, n: int) -> np.ndarray:
    mask = np.ascontiguousarray(mask, dtype=np.bool_)
    if mask.shape != (n,):
        raise ValueError(f"mask must have shape ({n},)")
    return mask
