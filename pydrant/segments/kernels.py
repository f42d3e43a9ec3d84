"""Numba distance kernels for what BLAS cannot do in one pass: Euclid and Manhattan.

Cosine and Dot are matrix products (numpy hands them to BLAS, which releases the GIL).
The squared Euclidean distance could be written as |x|^2 - 2 x.q + |q|^2 on top of a
product, but that loses every digit when x is close to q — exactly the points a nearest
search returns — so it is computed directly here, one pass over the rows per query.

All kernels: `nopython`, `nogil` (searches run in worker threads), `cache=True` (restarts
and CI do not recompile). Rows are float32; callers convert float16/uint8 chunks first.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(nogil=True, cache=True, fastmath=False)
def neg_sq_euclid(rows: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """-(|row - query|^2) for every query and row: (q, n) float32, larger is closer."""
    n, dim = rows.shape
    nq = queries.shape[0]
    out = np.empty((nq, n), dtype=np.float32)
    for i in range(n):
        for j in range(nq):
            total = np.float32(0.0)
            for k in range(dim):
                diff = rows[i, k] - queries[j, k]
                total += diff * diff
            out[j, i] = -total
    return out


@numba.njit(nogil=True, cache=True, fastmath=False)
def neg_manhattan(rows: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """-(sum |row - query|) for every query and row: (q, n) float32, larger is closer."""
    n, dim = rows.shape
    nq = queries.shape[0]
    out = np.empty((nq, n), dtype=np.float32)
    for i in range(n):
        for j in range(nq):
            total = np.float32(0.0)
            for k in range(dim):
                total += abs(rows[i, k] - queries[j, k])
            out[j, i] = -total
    return out
