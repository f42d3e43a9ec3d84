"""Groups (collection/query.py `run_groups`, docs/search.md "Groups"): Qdrant's group_by
(grouping/group_by.rs, aggregator.rs) - requests of `limit * group_size` points with
prefetch limits times `limit`, repeated leaving out grouped points and full groups, then
asking only for the best groups still short; the best groups by their best hit."""

from __future__ import annotations

import numpy as np

from pydrant.collection.config import build_config, CollectionDefaults
from pydrant.collection.query import Hit, _GroupsAggregator

from test_engine import Built


def two_d(built, distance="Dot") -> Built:
    b = built(config=build_config({"vectors": {"size": 2, "distance": distance}}, CollectionDefaults()))
    ids = list(range(1, 41))
    b.upsert(ids, [np.array([1.0, i / 100], np.float32) for i in ids], [{"g": i % 4} for i in ids])
    return b


def groups_of(b: Built, request: dict) -> list:
    engine = b.collection.engine
    found = engine.groups(engine.prepare(request)).groups
    return [(g.id, [h.id for h in g.hits]) for g in found]


def test_groups_are_filled_beyond_the_prefetch_limit(built):
    b = two_d(built)
    request = {"prefetch": {"query": [1.0, 1.0], "limit": 5}, "query": [1.0, 1.0], "group_by": "g",
               "group_size": 3, "limit": 2}
    # the prefetch's limit becomes 10 (times the 2 groups), later requests leave out what is grouped
    assert groups_of(b, request) == [(0, [40, 36, 32]), (3, [39, 35, 31])]
    assert groups_of(b, {"query": [1.0, 1.0], "group_by": "g", "group_size": 2, "limit": 4}) == [
        (0, [40, 36]), (3, [39, 35]), (2, [38, 34]), (1, [37, 33])]


def test_groups_of_a_distance_are_smallest_first(built):
    b = two_d(built, "Euclid")
    assert groups_of(b, {"query": [1.0, 0.0], "group_by": "g", "group_size": 2, "limit": 2}) == [
        (1, [1, 5]), (2, [2, 6])]


def test_a_point_with_a_value_of_another_type_joins_no_group(built):
    b = built(config=build_config({"vectors": {"size": 2, "distance": "Dot"}}, CollectionDefaults()))
    payloads = [{"g": ["a", 1.5]}, {"g": ["a", "b"]}, {"g": [True]}, {"g": "b"}, {"g": None}, {"g": [1, "1"]}]
    b.upsert(list(range(1, 7)), [np.array([1.0, i / 10], np.float32) for i in range(1, 7)], payloads)
    assert groups_of(b, {"query": [1.0, 1.0], "group_by": "g", "group_size": 3, "limit": 5}) == [
        (1, [6]), ("1", [6]), ("b", [4, 2]), ("a", [2])]


def test_aggregator_keeps_the_best_hits_of_groups_grown_beyond_their_size():
    groups = _GroupsAggregator(limit=2, group_size=2, ascending=False)
    groups.add([Hit(1, 0, 0.9), Hit(2, 0, 0.5), Hit(3, 0, 0.4)], {1: ["a"], 2: ["a", "b"], 3: ["c"]})
    assert groups.full_keys() == ["a"] and groups.unfilled_best_keys() == ["b"] and groups.filled_best() == 1
    # a later request's scores are compared as they come (its ranks may start over)
    groups.add([Hit(4, 0, 0.95), Hit(5, 0, 0.3), Hit(6, 0, 0.99)], {4: ["a"], 5: ["b"], 6: ["c"]})
    assert set(groups.ids.values()) == {1, 2, 3, 4, 5, 6}
    assert groups.distill() == [("c", [Hit(6, 0, 0.99), Hit(3, 0, 0.4)]), ("a", [Hit(4, 0, 0.95), Hit(1, 0, 0.9)])]
