"""Fusing the result lists of several prefetches: Qdrant's `rrf` and `dbsf`.

Each list is a prefetch's hits in its own order (best first). Ties in the fused score are
broken by point id so answers are repeatable (Qdrant leaves them to its hash map order).
Arithmetic is f32, in Qdrant's order (segment/src/common/{reciprocal_rank_fusion,
score_fusion}.rs): fused scores are the f32 values Qdrant reports, and compare with an
f32 `score_threshold` as there.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from pydrant.segments.ids import id_sort_key

_F32 = np.float32

DEFAULT_RRF_K = 2  # Qdrant's default: dampens the weight of the very first ranks less than 60 would


def rrf(sources: list[list], k: int = DEFAULT_RRF_K) -> list:
    """Reciprocal rank fusion: a point scores sum(1 / (rank + k)) over the lists, rank from 0."""
    scores: dict = {}
    first: dict = {}
    for hits in sources:
        for rank, hit in enumerate(hits):
            scores[hit.id] = scores.get(hit.id, _F32(0.0)) + _F32(1.0) / _F32(rank + k)
            first.setdefault(hit.id, hit)
    return _ranked(first, scores)


def dbsf(sources: list[list]) -> list:
    """Distribution-based score fusion: each list's scores are mapped to [0, 1] with
    mean -/+ 3 sample standard deviations as the ends (a lone point gets 0.5, equal ends
    give 0.5), then summed per point."""
    scores: dict = {}
    first: dict = {}
    for hits in sources:
        for hit, normalised in zip(hits, _distribution_normalised([h.score for h in hits])):
            scores[hit.id] = scores.get(hit.id, _F32(0.0)) + normalised
            first.setdefault(hit.id, hit)
    return _ranked(first, scores)


def _distribution_normalised(values: list[float]) -> list:
    if len(values) < 2:
        return [_F32(0.5)] * len(values)
    f32_values = [_F32(v) for v in values]
    mean, aggregate = _F32(0.0), _F32(0.0)  # Welford's mean and variance, as Qdrant computes them
    for count, value in enumerate(f32_values, 1):
        old_delta = value - mean
        mean += old_delta / _F32(count)
        aggregate += old_delta * (value - mean)
    std_dev = np.sqrt(aggregate / (_F32(len(values)) - _F32(1.0)))
    low, high = mean - _F32(3.0) * std_dev, mean + _F32(3.0) * std_dev
    if low == high:
        return [_F32(0.5)] * len(values)
    return [(v - low) / (high - low) for v in f32_values]


def _ranked(first: dict, scores: dict) -> list:
    ranked = sorted(scores.items(), key=lambda item: (-item[1], id_sort_key(item[0])))
    return [replace(first[point_id], score=float(score), order_value=None) for point_id, score in ranked]
