"""Comparison helpers for the local-vs-server congruence tests (issue 14): a pydrant answer
against the answer of qdrant-client's local mode (`QdrantClient(":memory:")`) to the same call.

Rules: the same number of results; scores equal within f32 tolerance (rel 1e-5, abs 1e-6);
ids in the same order where the reference's scores are distinct, and as sets within a group
of tied scores (ties may come in either order); payloads equal; vectors equal within f32
tolerance."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

REL = 1e-5
ABS = 1e-6


def close(a: float, b: float, scale: float = 0.0) -> bool:
    """Equal within f32 tolerance; `scale` is the magnitude of the terms a score was summed
    from (a difference of large terms carries their rounding, rel 1e-5 of them)."""
    return math.isclose(a, b, rel_tol=REL, abs_tol=ABS + REL * scale)


def exactly(a, b, scale: float = 0.0) -> bool:
    return a == b


def score_of(p) -> float:
    return p.score


def order_value_of(p) -> float:
    return p.order_value


def tie_groups(values: Sequence[float], same: Callable = close) -> list[tuple[int, int]]:
    """[start, end) runs of consecutive tied values (within tolerance)."""
    groups, start = [], 0
    for k in range(1, len(values) + 1):
        if k == len(values) or not same(values[k], values[k - 1]):
            groups.append((start, k))
            start = k
    return groups


def _sparse_like(v) -> bool:
    return hasattr(v, "indices") and hasattr(v, "values")


def vectors_close(got: Any, exp: Any, where: str = "vector") -> None:
    """Dense lists, multivectors (lists of lists), sparse vectors or dicts of them."""
    if exp is None or got is None:
        assert got == exp, f"{where}: {got!r} != {exp!r}"
        return
    if isinstance(exp, dict):
        assert isinstance(got, dict), f"{where}: {got!r} is not a dict like {exp!r}"
        assert sorted(got) == sorted(exp), f"{where}: names {sorted(got)} != {sorted(exp)}"
        for name in exp:
            vectors_close(got[name], exp[name], f"{where}[{name!r}]")
        return
    if _sparse_like(exp):
        assert _sparse_like(got), f"{where}: {got!r} is not sparse like {exp!r}"
        assert list(got.indices) == list(exp.indices), f"{where}: indices {got.indices} != {exp.indices}"
        vectors_close(list(got.values), list(exp.values), f"{where}.values")
        return
    exp, got = list(exp), list(got)
    assert len(got) == len(exp), f"{where}: length {len(got)} != {len(exp)}"
    for k, (g, e) in enumerate(zip(got, exp)):
        if isinstance(e, (list, tuple)):
            vectors_close(g, e, f"{where}[{k}]")
        else:
            assert close(g, e), f"{where}[{k}]: {g} != {e}"


def assert_point_equal(got, exp, where: str = "point") -> None:
    """Same id, payload and vector (scores are compared by the ranking helpers)."""
    assert got.id == exp.id, f"{where}: id {got.id!r} != {exp.id!r}"
    assert got.payload == exp.payload, f"{where} id={got.id!r}: payload\n  pydrant {got.payload!r}\n  local   {exp.payload!r}"
    vectors_close(got.vector, exp.vector, f"{where} id={got.id!r} vector")


def assert_ranking(got: Sequence, exp: Sequence, key: Callable = score_of, full: Sequence | None = None,
                   check_points: bool = True, where: str = "result", same: Callable = close,
                   scale: Callable | None = None) -> None:
    """`got` (pydrant) and `exp` (local mode) rank the same points with the same scores.

    `full` is the reference's longer ranking, used when the last tie group of `exp` may be cut
    by the limit: then pydrant may pick other members of that group. `same` compares scores
    (`exactly` for order values); `scale(id)` is the magnitude of the terms of a summed score."""
    got, exp = list(got), list(exp)
    gids, eids = [p.id for p in got], [p.id for p in exp]
    assert len(got) == len(exp), f"{where}: {len(got)} results != {len(exp)}\n  pydrant {_brief(got, key)}\n  local   {_brief(exp, key)}"
    assert len(set(gids)) == len(gids), f"{where}: duplicate ids in {gids}"
    gs, es = [key(p) for p in got], [key(p) for p in exp]
    for k, (g, e) in enumerate(zip(gs, es)):
        sc = max(scale(gids[k]), scale(eids[k])) if scale else 0.0
        assert g is not None and e is not None and same(g, e, sc), (
            f"{where}: score #{k} {g} != {e}\n  pydrant {_brief(got, key)}\n  local   {_brief(exp, key)}")
    by_id = {p.id: p for p in exp}
    if full is not None:
        by_id = {p.id: p for p in full} | by_id
    for start, end in tie_groups(es, same):
        g_set, e_set = set(gids[start:end]), set(eids[start:end])
        if end == len(exp) and full is not None and len(full) > len(exp):
            allowed = {p.id for p in full if same(key(p), es[start])}
            assert g_set <= allowed, f"{where}: ids {g_set - allowed} not in the tied group {allowed}"
        else:
            assert g_set == e_set, (
                f"{where}: ids at #{start}..{end - 1} {gids[start:end]} != {eids[start:end]}"
                f"\n  pydrant {_brief(got, key)}\n  local   {_brief(exp, key)}")
    if check_points:
        for k, p in enumerate(got):
            assert_point_equal(p, by_id[p.id], f"{where} #{k}")


def assert_records(got: Sequence, exp: Sequence, where: str = "records") -> None:
    """Records (scroll / retrieve) in the same order with the same payloads and vectors."""
    got, exp = list(got), list(exp)
    assert [p.id for p in got] == [p.id for p in exp], f"{where}: ids\n  pydrant {[p.id for p in got]}\n  local   {[p.id for p in exp]}"
    for k, (g, e) in enumerate(zip(got, exp)):
        assert_point_equal(g, e, f"{where} #{k}")


def _brief(points, key) -> str:
    out = []
    for p in points[:12]:
        try:
            s = key(p)
        except AttributeError:
            s = None
        out.append(f"{p.id}:{s:.6g}" if isinstance(s, (int, float)) else f"{p.id}:{s}")
    return "[" + ", ".join(out) + (", ..." if len(points) > 12 else "") + "]"
