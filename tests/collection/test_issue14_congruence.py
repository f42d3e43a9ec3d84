"""Issue 14 congruence fixes, unit-sized: the `with_payload` selector walks arrays like
Qdrant's `JsonPath::value_filter`; the distance matrix scores each sampled point's vector as
the query (max_sim(a -> b) for multivectors) and, on sparse vectors, leaves out points that
share no index with the row's point (a sparse search never returns them)."""

from __future__ import annotations

import pytest

from pydrant.collection.collection import Collection
from pydrant.collection.config import CollectionDefaults, build_config
from pydrant.collection.points import prepare_upsert
from pydrant.collection.reads import select_payload
from pydrant.errors import BadInput

PAYLOAD = {
    "kw": "red",
    "nested": {"a": 1, "b": "x", "arr": [{"x": 1, "y": 2}, {"x": 0}, {"y": 5}, 7]},
    "tags": ["a", "b"],
}


@pytest.mark.parametrize(
    "selector,expected",
    [
        ({"include": ["nested.arr[].x"]}, {"nested": {"arr": [{"x": 1}, {"x": 0}, {}, 7]}}),
        (["nested.arr[].x", "kw"], {"kw": "red", "nested": {"arr": [{"x": 1}, {"x": 0}, {}, 7]}}),
        ({"include": ["nested.a", "no_such"]}, {"nested": {"a": 1}}),
        ({"include": ["kw.deeper"]}, {"kw": "red"}),  # a scalar on a pattern's way is kept
        ({"include": ["tags[]"]}, {"tags": ["a", "b"]}),
        ({"include": ["tags[0]"]}, {"tags": []}),  # an index never matches an element's `[]`
        ({"exclude": ["nested.arr[].x", "tags"]},
         {"kw": "red", "nested": {"a": 1, "b": "x", "arr": [{"y": 2}, {}, {"y": 5}, 7]}}),
        ({"exclude": ["nested.arr[]"]}, {"kw": "red", "nested": {"a": 1, "b": "x", "arr": []}, "tags": ["a", "b"]}),
        ({"exclude": ["nested.arr"]}, {"kw": "red", "nested": {"a": 1, "b": "x"}, "tags": ["a", "b"]}),
        (True, PAYLOAD),
        (False, None),
    ],
)
def test_select_payload(selector, expected):
    assert select_payload(PAYLOAD, selector) == expected


def test_select_payload_bad_path():
    with pytest.raises(BadInput):
        select_payload(PAYLOAD, {"include": ["my key"]})


@pytest.fixture
def named(tmp_path):
    config = build_config(
        {
            "vectors": {"m": {"size": 2, "distance": "Dot", "multivector_config": {"comparator": "max_sim"}}},
            "sparse_vectors": {"s": {}},
        },
        CollectionDefaults(),
    )
    Collection.initialise(tmp_path / "c", "c", config)
    collection = Collection.load(tmp_path / "c", None)
    points = [
        {"id": 1, "vector": {"m": [[1.0, 1.0]], "s": {"indices": [0], "values": [1.0]}}},
        {"id": 2, "vector": {"m": [[1.0, 0.0], [0.0, 1.0]], "s": {"indices": [0, 3], "values": [2.0, 1.0]}}},
        {"id": 3, "vector": {"m": [[0.0, 0.0]], "s": {"indices": [5], "values": [1.0]}}},
    ]
    collection._apply(1, prepare_upsert(collection.schema, {"points": points}))
    yield collection
    collection._close_files()


def _rows(ids, entries):
    rows: dict = {i: [] for i in ids}
    for r, c, s in entries:
        rows[ids[r]].append((ids[c], pytest.approx(s)))
    return rows


def test_matrix_multivector_scores_row_as_query(named):
    ids, entries = named.engine.queries.matrix(None, 10, 1, "m")
    rows = _rows(ids, entries)
    # max_sim(query=1, stored=2) = 1; max_sim(query=2, stored=1) = 1 + 1 = 2
    assert rows[1] == [(2, 1.0)]
    assert rows[2] == [(1, 2.0)]


def test_matrix_sparse_leaves_out_points_sharing_no_index(named):
    ids, entries = named.engine.queries.matrix(None, 10, 2, "s")
    rows = _rows(ids, entries)
    assert rows == {1: [(2, 2.0)], 2: [(1, 2.0)], 3: []}
