"""Naive NumPy references of Qdrant's search scores, shared by the search e2e tests."""

import numpy as np
import pytest


def normalised(a):
    a = np.asarray(a, np.float64)
    norms = np.linalg.norm(a, axis=-1, keepdims=True)
    return np.divide(a, norms, out=np.zeros_like(a), where=norms > 0)


def similarity(rows, q, distance):
    """Qdrant's internal similarity (larger is closer) of each row to q."""
    rows, q = np.asarray(rows, np.float64), np.asarray(q, np.float64)
    if distance == "Cosine":
        return normalised(rows) @ normalised(q)
    if distance == "Dot":
        return rows @ q
    if distance == "Euclid":
        return -((rows - q) ** 2).sum(axis=-1)
    if distance == "Manhattan":
        return -np.abs(rows - q).sum(axis=-1)
    raise ValueError(distance)


def reported(sims, distance):
    """Nearest-query scores as Qdrant reports them: distances for Euclid and Manhattan."""
    if distance == "Euclid":
        return np.sqrt(np.abs(sims))
    if distance == "Manhattan":
        return np.abs(sims)
    return sims


def ascending(distance):
    return distance in ("Euclid", "Manhattan")


def sigma(x):
    x = np.asarray(x, np.float64)
    return 0.5 * (x / (1 + np.abs(x)) + 1)


def pairs(points):
    """(id, score) of points: client ScoredPoints or raw JSON dicts."""
    out = []
    for p in points:
        if isinstance(p, tuple):
            out.append(p)
        elif isinstance(p, dict):
            out.append((p["id"], p["score"]))
        else:
            out.append((p.id, p.score))
    return out


def ids(points):
    return [i for i, _ in pairs(points)]


def assert_ranked(points, reference: dict, limit: int, asc: bool = False, rel=1e-4, abs_=1e-5):
    """`points` are the best `limit` of `reference` (id -> expected score), in order; ids
    with equal expected scores may come in either order."""
    got = pairs(points)
    order = sorted(reference.items(), key=lambda kv: kv[1], reverse=not asc)[:limit]
    assert len(got) == len(order), (got, order)
    assert len({i for i, _ in got}) == len(got)
    assert [s for _, s in got] == pytest.approx([s for _, s in order], rel=rel, abs=abs_)
    for point_id, score in got:
        assert point_id in reference
        assert score == pytest.approx(reference[point_id], rel=rel, abs=abs_)
