"""Inverted index of the sparse vectors of an immutable segment (Qdrant's
`sparse_vectors.<name>.index`: `on_disk`, `full_scan_threshold`, `datatype`).

One posting list per dimension index, in CSR layout:

    dims     uint32 (D,)    the dimension indices present in some vector, sorted, unique
    offsets  int64 (D + 1,) posting list of dims[i] is postings offsets[i]:offsets[i + 1]
    rows     int32 (P,)     segment slot of each posting, ascending within a list
    values   (P,)           the stored value: float32, float16, or uint8 quantised per list
    quant    float32 (D, 2) uint8 only: per list (min, scale); value = min + scale * q

A search accumulates, for each query dimension found in `dims`, query value x stored value
into a dense float64 per-row accumulator (the float32 product, summed in float64 in
ascending dimension order: exactly what `scoring.sparse_similarities` computes, so float32
scores are bit-identical to the exact search for vectors with sorted unique indices), marks
the rows it touches, and keeps the top k of the touched (and allowed) rows in a bounded
heap. Only rows sharing at least one index with the query are returned, whatever their
score (0 and negative included); non-finite scores are dropped as `search_lists` does.
Ties are broken by row ascending.

The kernels are Numba (`nopython`, `nogil`, `cache=True`); the accumulator scratch (13
bytes per segment row) is pooled per index and reused between queries, so concurrent
searches from worker threads each take their own.

Persistence: `meta()` (JSON-safe) and `arrays()` are everything; `from_arrays(meta,
arrays, check=...)` rebuilds the index over arrays mapped from a file without copying
(`save`/`load` are that pair over `.npy` files). Construction checks dtypes, shapes and
the ends of `offsets` (O(1)); `check()` reads `offsets` and `dims` once more (O(D), in
blocks so its temporaries stay small; `check_steps()` yields between blocks), which is
what keeps a corrupt file from driving the `nogil` kernels out of bounds. check=False
leaves it to the caller (issue 17: immutable segments open in O(1) and verify in the
background).

See docs/sparse-index.md for the on-disk format and the semantics in detail.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path

import numba
import numpy as np

from pydrant.fsutil import fsync_dir, read_json, write_json_atomic

DATATYPES = ("float32", "float16", "uint8")
_VALUE_DTYPES = {"float32": np.float32, "float16": np.float16, "uint8": np.uint8}
_MODE = {"float32": 0, "float16": 1, "uint8": 2}
FORMAT_VERSION = 1
META_FILE = "sparse_index.json"
_ARRAY_FILES = ("dims", "offsets", "rows", "values", "quant")
_MAX_ROW = np.iinfo(np.int32).max
_F16_MAX = float(np.finfo(np.float16).max)
# float16 bit pattern -> float32, exact: the kernels read float16 postings as uint16 codes.
_F16_TABLE = np.arange(1 << 16, dtype=np.uint16).view(np.float16).astype(np.float32)
_NO_QUANT = np.zeros((0, 2), np.float32)
_NO_ALLOWED = np.ones(1, np.bool_)
_POOL_SIZE = 8
# Bytes of dims + offsets `check()` reads per block: its temporaries stay a fraction of it.
CHECK_BLOCK_BYTES = 4 << 20


# -- kernels ----------------------------------------------------------------------------------


@numba.njit(nogil=True, cache=True)
def _worse(score_a, row_a, score_b, row_b):
    """Whether (score_a, row_a) ranks after (score_b, row_b): lower score, or same score and
    higher row."""
    return score_a < score_b or (score_a == score_b and row_a > row_b)


@numba.njit(nogil=True, cache=True)
def _sift_down(h_score, h_row, size, i):
    while True:
        left = 2 * i + 1
        if left >= size:
            return
        worst = left
        right = left + 1
        if right < size and _worse(h_score[right], h_row[right], h_score[left], h_row[left]):
            worst = right
        if _worse(h_score[worst], h_row[worst], h_score[i], h_row[i]):
            h_score[i], h_score[worst] = h_score[worst], h_score[i]
            h_row[i], h_row[worst] = h_row[worst], h_row[i]
            i = worst
        else:
            return


@numba.njit(nogil=True, cache=True)
def _sift_up(h_score, h_row, i):
    while i > 0:
        parent = (i - 1) // 2
        if _worse(h_score[i], h_row[i], h_score[parent], h_row[parent]):
            h_score[i], h_score[parent] = h_score[parent], h_score[i]
            h_row[i], h_row[parent] = h_row[parent], h_row[i]
            i = parent
        else:
            return


@numba.njit(nogil=True, cache=True, fastmath=False)
def _search_kernel(dims, offsets, rows, values, mode, table, quant, q_idx, q_val, k, n_rows,
                   allowed, use_allowed, acc, touched, touched_list):
    """Top k (rows int64, scores float32) best first. q_idx sorted unique. `acc` (float64),
    `touched` (bool) are all zero on entry and are left so; `touched_list` int32 scratch."""
    n_dims = dims.shape[0]
    count = 0
    for j in range(q_idx.shape[0]):
        d = q_idx[j]
        pos = np.searchsorted(dims, d)
        if pos >= n_dims or dims[pos] != d:
            continue
        qv = q_val[j]
        low = offsets[pos]
        high = offsets[pos + 1]
        list_min = np.float32(0.0)
        list_scale = np.float32(0.0)
        if mode == 2:
            list_min = quant[pos, 0]
            list_scale = quant[pos, 1]
        for p in range(low, high):
            r = rows[p]
            if r < 0 or r >= n_rows:
                continue
            if use_allowed and not allowed[r]:
                continue
            if mode == 0:
                v = np.float32(values[p])
            elif mode == 1:
                v = table[np.int64(values[p])]
            else:
                v = list_min + list_scale * np.float32(values[p])
            product = np.float32(qv * v)
            if not touched[r]:
                touched[r] = True
                touched_list[count] = r
                count += 1
            acc[r] += product

    # bounded heap of the k best (root: the worst kept)
    capacity = min(k, count)
    h_score = np.empty(capacity, np.float32)
    h_row = np.empty(capacity, np.int64)
    size = 0
    for i in range(count):
        r = touched_list[i]
        score = np.float32(acc[r])
        acc[r] = 0.0
        touched[r] = False
        if capacity == 0 or not np.isfinite(score):
            continue
        if size < capacity:
            h_score[size] = score
            h_row[size] = r
            _sift_up(h_score, h_row, size)
            size += 1
        elif _worse(h_score[0], h_row[0], score, r):
            h_score[0] = score
            h_row[0] = r
            _sift_down(h_score, h_row, size, 0)
    out_rows = np.empty(size, np.int64)
    out_scores = np.empty(size, np.float32)
    for i in range(size - 1, -1, -1):  # pop the worst first, fill from the back
        out_rows[i] = h_row[0]
        out_scores[i] = h_score[0]
        last = size - 1
        h_score[0] = h_score[last]
        h_row[0] = h_row[last]
        size = last
        _sift_down(h_score, h_row, size, 0)
    return out_rows, out_scores


@numba.njit(nogil=True, cache=True)
def _frequencies_kernel(dims, offsets, rows, q_idx, live, use_live):
    """Per query index: how many postings (rows) its list holds, among `live` rows."""
    out = np.zeros(q_idx.shape[0], np.int64)
    n_dims = dims.shape[0]
    n_live = live.shape[0]
    for j in range(q_idx.shape[0]):
        d = q_idx[j]
        pos = np.searchsorted(dims, d)
        if pos >= n_dims or dims[pos] != d:
            continue
        if not use_live:
            out[j] = offsets[pos + 1] - offsets[pos]
            continue
        total = 0
        for p in range(offsets[pos], offsets[pos + 1]):
            r = rows[p]
            if 0 <= r < n_live and live[r]:
                total += 1
        out[j] = total
    return out


# -- the index ----------------------------------------------------------------------------------


class SparseInvertedIndex:
    """An immutable inverted index over the sparse vectors of a segment (see module doc).
    Searches may run concurrently from any number of threads."""

    def __init__(self, arrays: Mapping[str, np.ndarray], datatype: str, indexed_rows: int,
                 check: bool = True):
        """An index over `arrays` (as `arrays()` returns them; used as they are, never
        copied). Shapes, dtypes, contiguity and the ends of `offsets` are always checked
        (O(1)); check=True also runs `check()` (O(D))."""
        if datatype not in DATATYPES:
            raise ValueError(f"unknown sparse index datatype {datatype!r}")
        names = _ARRAY_FILES if datatype == "uint8" else _ARRAY_FILES[:4]
        missing = [name for name in names if name not in arrays]
        if missing:
            raise ValueError(f"sparse index arrays missing: {', '.join(missing)}")
        if isinstance(indexed_rows, bool) or not isinstance(indexed_rows, (int, np.integer)) \
                or indexed_rows < 0:
            raise ValueError(f"sparse index indexed_rows: {indexed_rows!r}")
        self.datatype = datatype
        self._indexed_rows = int(indexed_rows)
        self.dims = arrays["dims"]
        self.offsets = arrays["offsets"]
        self.rows = arrays["rows"]
        self.values = arrays["values"]
        self.quant = arrays["quant"] if datatype == "uint8" else _NO_QUANT
        self._check_layout()
        if check:
            self.check()
        # what the kernel reads as values: float16 as its uint16 codes (see _F16_TABLE)
        self._kernel_values = self.values.view(np.uint16) if datatype == "float16" else self.values
        self._mode = _MODE[datatype]
        self._scratch: dict[int, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}

    def _check_layout(self) -> None:
        """Dtypes, shapes, contiguity and offsets[0] = 0, offsets[-1] = P: what the kernels
        rely on besides the monotone offsets `check()` reads (O(1))."""
        dims, offsets, rows, values = self.dims, self.offsets, self.rows, self.values
        if not all(isinstance(a, np.ndarray) for a in (dims, offsets, rows, values, self.quant)):
            raise ValueError("sparse index arrays must be numpy arrays")
        n_dims = dims.shape[0] if dims.ndim == 1 else -1
        expected = {
            "dims": (dims, np.uint32, (n_dims,)),
            "offsets": (offsets, np.int64, (n_dims + 1,)),
            "rows": (rows, np.int32, (rows.shape[0],) if rows.ndim == 1 else None),
            "values": (values, _VALUE_DTYPES[self.datatype], rows.shape),
        }
        if self.datatype == "uint8":
            expected["quant"] = (self.quant, np.float32, (n_dims, 2))
        for name, (array, dtype, shape) in expected.items():
            if array.dtype != dtype or array.shape != shape or not array.flags.c_contiguous:
                raise ValueError(f"sparse index array {name}: {array.dtype} {array.shape}, expected "
                                 f"{np.dtype(dtype)} {shape} C-contiguous")
        if offsets[0] != 0 or offsets[-1] != rows.shape[0]:
            raise ValueError("corrupt sparse index: offsets do not span the postings")

    def check(self) -> None:
        """`offsets` monotone (with its ends checked at construction, every posting list
        then lies inside `rows`: the kernels cannot read out of bounds) and `dims` strictly
        increasing (the binary search finds every list). O(D), in blocks: temporaries of a
        few MB whatever D. Row ids are not scanned (O(P)): the kernels range-check each
        against `n_rows`. Raises ValueError naming the array and the lists."""
        for _ in self.check_steps():
            pass

    def check_steps(self, block_bytes: int = CHECK_BLOCK_BYTES) -> Iterator[int]:
        """`check()` one block of posting lists at a time, yielding the bytes of `dims` and
        `offsets` checked so far after each block (for a background verifier to throttle
        or cancel); a corrupt block raises ValueError when it is reached."""
        dims, offsets = self.dims, self.offsets
        n_dims = dims.shape[0]
        per_list = dims.itemsize + offsets.itemsize
        size = max(1, block_bytes // per_list)
        for lo in range(0, n_dims, size):
            hi = min(n_dims, lo + size)
            ends = offsets[lo:hi + 1]  # lists lo..hi-1
            if (ends[1:] < ends[:-1]).any():
                raise ValueError(f"corrupt sparse index: offsets decrease (lists {lo}..{hi - 1})")
            keys = dims[max(lo - 1, 0):hi]  # with the last key of the previous block
            if (keys[1:] <= keys[:-1]).any():
                raise ValueError(f"corrupt sparse index: dims not sorted and unique "
                                 f"(lists {lo}..{hi - 1})")
            yield hi * per_list

    # -- construction

    @classmethod
    def build(cls, rows: np.ndarray, vectors: list, datatype: str = "float32") -> SparseInvertedIndex:
        """Index `vectors` (SparseVector each, may be empty) stored at segment slots `rows`
        (int64 (m,), unique, each < 2**31 - 1). Blocking CPU (a Numba counting sort by dimension)."""
        if datatype not in DATATYPES:
            raise ValueError(f"unknown sparse index datatype {datatype!r}")
        slots = np.asarray(rows, dtype=np.int64).reshape(-1)
        if len(slots) != len(vectors):
            raise ValueError(f"{len(slots)} rows for {len(vectors)} vectors")
        if len(slots) and (slots.min() < 0 or slots.max() >= _MAX_ROW):
            raise ValueError("sparse index rows must be in 0 .. 2**31 - 2")
        lengths = np.fromiter((len(v.indices) for v in vectors), dtype=np.int64, count=len(vectors))
        value_lengths = np.fromiter((len(v.values) for v in vectors), dtype=np.int64, count=len(vectors))
        if not np.array_equal(lengths, value_lengths):
            raise ValueError("a sparse vector has more indices than values or the reverse")
        indexed_rows = len(np.unique(slots[lengths > 0]))
        by_row = np.argsort(slots, kind="stable")  # postings then come in ascending row order
        nonempty = by_row[lengths[by_row] > 0].tolist()
        if not nonempty:
            indices = np.empty(0, np.uint32)
            values = np.empty(0, np.float32)
            owners = np.empty(0, np.int64)
        else:
            indices = np.concatenate([np.asarray(vectors[i].indices, dtype=np.uint32).reshape(-1) for i in nonempty])
            values = np.concatenate([np.asarray(vectors[i].values, dtype=np.float32).reshape(-1) for i in nonempty])
            owners = np.repeat(slots[nonempty], lengths[nonempty])
        dims, offsets, order = _group_by_dim(indices)
        posting_rows = owners[order].astype(np.int32)
        posting_values = values[order]
        arrays = {"dims": np.ascontiguousarray(dims, dtype=np.uint32), "offsets": offsets,
                  "rows": np.ascontiguousarray(posting_rows)}
        if datatype == "float32":
            arrays["values"] = np.ascontiguousarray(posting_values, dtype=np.float32)
        elif datatype == "float16":
            clipped = np.clip(posting_values, -_F16_MAX, _F16_MAX)  # no inf from large values
            arrays["values"] = clipped.astype(np.float16)
        else:
            arrays["values"], arrays["quant"] = _quantise_u8(posting_values, offsets)
        return cls(arrays, datatype, indexed_rows)

    # -- persistence

    def save(self, directory: Path) -> None:
        """Write the arrays as .npy files into `directory` (created if missing), each
        fsynced, then `sparse_index.json` atomically last: a directory without the json is
        an unfinished save."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        meta_path = directory / META_FILE
        if meta_path.exists():
            meta_path.unlink()  # the arrays below are about to change under it
            fsync_dir(directory)
        for name, array in self.arrays().items():
            path = directory / f"{name}.npy"
            tmp = directory / f"{name}.npy.tmp"
            with open(tmp, "wb") as f:
                np.save(f, np.ascontiguousarray(array), allow_pickle=False)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        fsync_dir(directory)
        write_json_atomic(meta_path, self.meta())

    @classmethod
    def load(cls, directory: Path, mmap: bool = False) -> SparseInvertedIndex:
        """Read a saved index; mmap=True maps the arrays read-only (on_disk) instead of
        reading them into RAM."""
        directory = Path(directory)
        meta = read_json(directory / META_FILE)
        if meta.get("format") != FORMAT_VERSION:
            raise ValueError(f"unsupported sparse index format {meta.get('format')!r}")
        names = _ARRAY_FILES if meta.get("datatype") == "uint8" else _ARRAY_FILES[:4]
        arrays = {name: np.load(directory / f"{name}.npy", mmap_mode="r" if mmap else None,
                                allow_pickle=False) for name in names}
        return cls.from_arrays(meta, arrays)

    def meta(self) -> dict:
        """Everything but the arrays, JSON-safe (the content of sparse_index.json):
        format, datatype, indexed_rows, n_dims, n_postings."""
        return {
            "format": FORMAT_VERSION,
            "datatype": self.datatype,
            "indexed_rows": self._indexed_rows,
            "n_dims": int(self.dims.shape[0]),
            "n_postings": int(self.rows.shape[0]),
        }

    @classmethod
    def from_arrays(cls, meta: Mapping, arrays: Mapping[str, np.ndarray],
                    check: bool = True) -> SparseInvertedIndex:
        """The index `meta` (as `meta()` returned it) describes, over `arrays` (as
        `arrays()` returned them: saved or mapped, used without copying; extra names
        ignored). Meta, dtypes, shapes and the counts in meta are always checked (O(1));
        check=False skips `check()` (O(D)) for a caller that runs it later, e.g. in the
        background. ValueError when anything is off."""
        if not isinstance(meta, Mapping) or meta.get("format") != FORMAT_VERSION:
            raise ValueError(f"unsupported sparse index format "
                             f"{meta.get('format') if isinstance(meta, Mapping) else meta!r}")
        datatype, indexed_rows = meta.get("datatype"), meta.get("indexed_rows")
        if not isinstance(datatype, str) or not isinstance(indexed_rows, int):
            raise ValueError(f"bad sparse index meta: datatype {datatype!r}, "
                             f"indexed_rows {indexed_rows!r}")
        index = cls(arrays, datatype, indexed_rows, check=check)
        if index.dims.shape[0] != meta.get("n_dims") or index.rows.shape[0] != meta.get("n_postings"):
            raise ValueError("sparse index arrays do not match their metadata")
        return index

    def arrays(self) -> dict[str, np.ndarray]:
        """The index as named arrays (`quant` for uint8 only): with `meta()`, everything
        `from_arrays` needs."""
        arrays = {"dims": self.dims, "offsets": self.offsets, "rows": self.rows, "values": self.values}
        if self.datatype == "uint8":
            arrays["quant"] = self.quant
        return arrays

    # -- facts

    @property
    def nbytes(self) -> int:
        """Bytes of the index arrays (RAM, or mapped file bytes when loaded with mmap);
        the per-thread search scratch is not included."""
        return sum(int(a.nbytes) for a in self.arrays().values())

    @property
    def indexed_rows(self) -> int:
        """How many rows have a non-empty vector."""
        return self._indexed_rows

    @property
    def n_dims(self) -> int:
        return int(self.dims.shape[0])

    @property
    def n_postings(self) -> int:
        return int(self.rows.shape[0])

    def document_frequencies(self, indices: np.ndarray, live: np.ndarray | None = None) -> np.ndarray:
        """Per dimension index: how many rows (among `live`, a bool mask, when given) hold a
        value at it: the IDF statistics of this segment."""
        q = np.ascontiguousarray(indices, dtype=np.uint32).reshape(-1)
        use_live = live is not None
        live = _NO_ALLOWED if live is None else np.ascontiguousarray(live, dtype=np.bool_)
        return _frequencies_kernel(self.dims, self.offsets, self.rows, q, live, use_live)

    # -- search

    def search(self, indices: np.ndarray, values: np.ndarray, k: int, n_rows: int,
               allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k rows by dot product with the query (indices uint32, values float32, sorted
        unique indices expected; values already IDF-weighted by the caller). allowed: bool
        (n_rows,) mask of the slots that may be returned, or None. Returns (rows int64, scores
        float32) best first, ties by row ascending; only rows sharing >= 1 index with the
        query (postings at rows >= n_rows are ignored)."""
        return self.search_many([(indices, values)], k, n_rows, allowed)[0]

    def search_many(self, queries: list[tuple[np.ndarray, np.ndarray]], k: int, n_rows: int,
                    allowed=None) -> list[tuple[np.ndarray, np.ndarray]]:
        """`search` for each (indices, values) query, with one shared `allowed` mask."""
        n_rows = int(n_rows)
        k = max(0, int(k))
        use_allowed = allowed is not None
        if use_allowed:
            allowed = np.ascontiguousarray(allowed, dtype=np.bool_)
            if allowed.shape != (n_rows,):
                raise ValueError(f"allowed must have shape ({n_rows},), not {allowed.shape}")
        else:
            allowed = _NO_ALLOWED
        empty = (np.empty(0, np.int64), np.empty(0, np.float32))
        prepared = [_prepare_query(indices, values) for indices, values in queries]
        if k == 0 or n_rows <= 0 or self.rows.shape[0] == 0:
            return [(empty[0].copy(), empty[1].copy()) for _ in prepared]
        scratch = self._take_scratch(n_rows)
        try:
            acc, touched, touched_list = scratch
            return [
                _search_kernel(self.dims, self.offsets, self.rows, self._kernel_values, self._mode,
                               _F16_TABLE, self.quant, q_idx, q_val, k, n_rows, allowed, use_allowed,
                               acc, touched, touched_list)
                for q_idx, q_val in prepared
            ]
        finally:
            self._give_scratch(n_rows, scratch)

    def _take_scratch(self, n_rows: int):
        try:
            return self._scratch.get(n_rows, []).pop()
        except IndexError:
            return np.zeros(n_rows, np.float64), np.zeros(n_rows, np.bool_), np.empty(n_rows, np.int32)

    def _give_scratch(self, n_rows: int, scratch) -> None:
        pool = self._scratch.setdefault(n_rows, [])
        if len(pool) < _POOL_SIZE:
            pool.append(scratch)


def _group_by_dim(indices: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dims, offsets, order): a stable sort of the postings by dimension. A counting sort
    (Numba) when the dimensions are dense enough for a count array, else numpy's argsort."""
    n = len(indices)
    if n == 0:
        return np.empty(0, np.uint32), np.zeros(1, np.int64), np.empty(0, np.int64)
    top = int(indices.max())
    if top < max(1 << 20, 2 * n):
        counts = np.bincount(indices, minlength=top + 1)
        dims = np.flatnonzero(counts).astype(np.uint32)
        offsets = np.zeros(len(dims) + 1, np.int64)
        np.cumsum(counts[dims], out=offsets[1:])
        start = np.zeros(top + 1, np.int64)
        start[dims] = offsets[:-1]
        return dims, offsets, _counting_order(indices, start)
    order = np.argsort(indices, kind="stable")
    dims, starts = np.unique(indices[order], return_index=True)
    return dims.astype(np.uint32), np.append(starts, n).astype(np.int64), order


@numba.njit(nogil=True, cache=True)
def _counting_order(indices, start):
    """Scatter positions 0..n-1 to their dimension's next free slot (`start` is consumed)."""
    order = np.empty(indices.shape[0], np.int64)
    for p in range(indices.shape[0]):
        d = indices[p]
        order[start[d]] = p
        start[d] += 1
    return order


def _prepare_query(indices, values) -> tuple[np.ndarray, np.ndarray]:
    """uint32 / float32 contiguous, indices sorted and unique (the first value of a
    repeated index is kept)."""
    q_idx = np.ascontiguousarray(indices, dtype=np.uint32).reshape(-1)
    q_val = np.ascontiguousarray(values, dtype=np.float32).reshape(-1)
    if q_idx.shape != q_val.shape:
        raise ValueError("a sparse query needs as many indices as values")
    if len(q_idx) > 1 and not bool((q_idx[1:] > q_idx[:-1]).all()):
        order = np.argsort(q_idx, kind="stable")
        q_idx, q_val = q_idx[order], q_val[order]
        first = np.ones(len(q_idx), bool)
        first[1:] = q_idx[1:] != q_idx[:-1]
        q_idx, q_val = np.ascontiguousarray(q_idx[first]), np.ascontiguousarray(q_val[first])
    return q_idx, q_val


def _quantise_u8(values: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per posting list: min and scale = (max - min) / 255, q = round((v - min) / scale).
    The dequantised value min + scale * q is within scale / 2 (plus float32 rounding) of v."""
    n_dims = len(offsets) - 1
    quant = np.zeros((n_dims, 2), np.float32)
    if len(values) == 0:
        return np.empty(0, np.uint8), quant
    starts = offsets[:-1]
    values64 = values.astype(np.float64)
    mins = np.minimum.reduceat(values64, starts)  # every list is non-empty
    maxs = np.maximum.reduceat(values64, starts)
    scales = ((maxs - mins) / 255.0).astype(np.float32)
    mins32 = mins.astype(np.float32)
    quant[:, 0] = mins32
    quant[:, 1] = scales
    lengths = np.diff(offsets)
    per_min = np.repeat(mins32.astype(np.float64), lengths)
    per_scale = np.repeat(scales.astype(np.float64), lengths)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(per_scale > 0, np.rint((values64 - per_min) / np.where(per_scale > 0, per_scale, 1.0)), 0.0)
    return np.clip(q, 0, 255).astype(np.uint8), quant
