"""The issue detectors (collection/problems.py, pydrant/issues.py; docs/observability.md
"Issues"): Qdrant's UNINDEXED_FIELD issue (index inference, record and solution shape,
slow-query threshold, solved by an index or the collection's deletion) and pydrant's
optimizer health issues (failed, stuck, too many segments) with their thresholds."""

from __future__ import annotations

import pytest

from pydrant import issues
from pydrant.collection import problems
from pydrant.collection.payload_index import PayloadIndexTable, create_index_operation
from pydrant.issues import BOARD

UUID = "5c56c793-69f3-4fbf-87e6-c4bf54c28c26"
ALL = ["integer", "keyword", "float", "text", "bool", "datetime", "geo"]


@pytest.fixture(autouse=True)
def clean_board():
    BOARD.clear()
    issues.configure_slow_query(None)
    yield
    BOARD.clear()
    issues.configure_slow_query(None)


def _field(key: str, **condition) -> dict:
    return {"must": [{"key": key, **condition}]}


@pytest.mark.parametrize(
    ("condition", "schemas"),
    [
        ({"match": {"value": "red"}}, ["keyword"]),
        ({"match": {"value": UUID}}, ["keyword"]),  # uuid is never suggested
        ({"match": {"value": 3}}, ["integer"]),
        ({"match": {"value": True}}, ["bool"]),
        ({"match": {"any": ["a", "b"]}}, ["keyword"]),
        ({"match": {"except": [1, 2]}}, ["integer"]),
        ({"match": {"text": "hello"}}, ["text"]),
        ({"match": {"text_any": "hello"}}, ["text"]),
        ({"match": {"phrase": "hello world"}}, ["text"]),
        ({"range": {"gte": 1.5}}, ["integer", "float"]),
        ({"range": {"gte": "2024-01-01T00:00:00Z"}}, ["datetime"]),
        ({"geo_radius": {"center": {"lon": 0, "lat": 0}, "radius": 10}}, ["geo"]),
        ({"values_count": {"gt": 1}}, ALL),
    ],
)
def test_index_inference_as_qdrants(condition, schemas):
    assert problems.unindexed_fields([_field("f", **condition)], {}) == {"f": schemas}


def test_is_empty_is_null_nested_and_served_fields():
    filter_ = {
        "must": [
            {"is_empty": {"key": "tags"}},
            {"nested": {"key": "items", "filter": {"must": [{"key": "sku", "match": {"value": "x"}}]}}},
            {"key": "color", "match": {"value": "red"}},
            {"has_id": [1, 2]},
        ],
        "should": [{"is_null": {"key": "owner"}}, {"key": "n", "range": {"lt": 5}}],
    }
    found = problems.unindexed_fields([filter_, None], {"color": "keyword", "n": {"type": "integer", "range": False}})
    # color is served by its keyword index; n's integer index has no range: not served
    assert found == {"tags": ALL, "items[].sku": ["keyword"], "owner": ALL, "n": ["integer", "float"]}
    assert problems.unindexed_fields([_field("n", range={"lt": 5})], {"n": "integer"}) == {}
    # a text index without phrase matching does not serve a phrase match
    assert problems.unindexed_fields([_field("t", match={"phrase": "a b"})], {"t": "text"}) == {"t": ["text"]}


def test_issue_record_and_solution_shape():
    issue_id, description, solution = problems.unindexed_field_issue("my coll", "color", ["keyword"])
    assert issue_id == "UNINDEXED_FIELD/my coll/color"
    assert description == "Unindexed field 'color' might be slowing queries down in collection 'my coll'"
    assert solution == {
        "immediate": {
            "message": "Create an index on field 'color' of schema \"keyword\" in collection 'my coll'. Check the "
            "documentation for more details: https://qdrant.tech/documentation/concepts/indexing/#payload-index",
            "action": {
                "method": "PUT",
                "uri": "/collections/my%20coll/index",
                "headers": {"content-type": "application/json"},
                "body": {"field_name": "color", "field_schema": "keyword"},
            },
        }
    }
    _, _, several = problems.unindexed_field_issue("c", "price", ["integer", "float"])
    assert [s["action"]["body"]["field_schema"] for s in several["immediate_choice"]] == ["integer", "float"]
    BOARD.submit(issue_id, description, solution)
    (record,) = BOARD.report()
    assert set(record) == {"id", "description", "solution", "timestamp"}
    assert record["solution"] == solution
    assert record["timestamp"].endswith("Z")


class FakeTable:
    def __init__(self, fields=None):
        self.fields = fields or {}


class FakeCollection:
    def __init__(self, name="c", fields=None):
        self.name = name
        self.payload_index = FakeTable(fields)


def test_slow_reads_only_and_the_first_sighting_is_kept():
    collection = FakeCollection()
    filters = [_field("color", match={"value": "red"})]
    problems.report_slow_read(collection, filters, elapsed=1.0)  # under Qdrant's 1.2 s
    assert BOARD.report() == []
    problems.report_slow_read(collection, filters, elapsed=1.3)
    (first,) = BOARD.report()
    assert first["id"] == "UNINDEXED_FIELD/c/color"
    problems.report_slow_read(collection, filters, elapsed=5.0)
    assert BOARD.report() == [first]  # same record, same timestamp
    issues.configure_slow_query(0)
    problems.report_slow_read(collection, [None], elapsed=0.001)  # no filter: nothing to blame
    problems.report_slow_read(collection, [_field("size", range={"gt": 1})], elapsed=0.001)
    assert [r["id"] for r in BOARD.report()] == ["UNINDEXED_FIELD/c/color", "UNINDEXED_FIELD/c/size"]


def test_creating_the_index_and_deleting_the_collection_solve_it(tmp_path):
    table = PayloadIndexTable.load(tmp_path / "coll")
    (tmp_path / "coll").mkdir()
    for field in ("color", "size"):
        BOARD.submit(*problems.unindexed_field_issue("coll", field, ["keyword"]))
    BOARD.submit(*problems.unindexed_field_issue("coll2", "color", ["keyword"]))
    table.apply(create_index_operation("color", "keyword"))
    assert [r["id"] for r in BOARD.report()] == ["UNINDEXED_FIELD/coll/size", "UNINDEXED_FIELD/coll2/color"]
    BOARD.resolve_collection("coll")
    assert [r["id"] for r in BOARD.report()] == ["UNINDEXED_FIELD/coll2/color"]


# -- optimizer health ----------------------------------------------------------------------


class FakeOptimizer:
    def __init__(self):
        self.error = None
        self.running = None
        self.completed = 0
        self.due = False

    def plan(self):
        return "merge" if self.due else None


class FakeHost:
    def __init__(self, segments=1, target=2):
        self.name = "h"
        self.optimizer = FakeOptimizer()
        self.segments = [object()] * segments
        self.target = target

    def optimizer_settings(self):
        return {"default_segment_number": self.target}


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def _ids():
    return [r["id"] for r in BOARD.report()]


def test_failed_optimizer_is_reported_until_an_optimization_succeeds():
    host, clock = FakeHost(), Clock()
    watch = problems.HealthWatch(host, clock)
    host.optimizer.error = "merge optimization failed: disk full"
    watch.check()
    (record,) = BOARD.report()
    assert record["id"] == "OPTIMIZER_FAILED/h"
    assert "disk full" in record["description"]
    assert set(record["solution"]) == {"refactor"}
    host.optimizer.error = None
    watch.check()
    assert _ids() == []


def test_stuck_optimizer_after_stuck_seconds_without_progress():
    host, clock = FakeHost(), Clock()
    watch = problems.HealthWatch(host, clock)
    host.optimizer.due = True
    watch.check()
    clock.now += problems.STUCK_SECONDS - 1
    watch.check()
    assert _ids() == []
    clock.now += 1
    watch.check()
    assert _ids() == ["OPTIMIZER_STUCK/h"]
    # an optimization completes: progress, the clock starts again
    host.optimizer.completed += 1
    watch.check()
    assert _ids() == []
    clock.now += problems.STUCK_SECONDS / 2
    watch.check()
    assert _ids() == []
    host.optimizer.due = False
    clock.now += problems.STUCK_SECONDS
    watch.check()
    assert _ids() == []


def test_too_many_segments_after_stuck_seconds_and_solved_when_merged():
    host, clock = FakeHost(segments=6, target=2), Clock()  # limit: 2 x 2 + 2 = 6
    watch = problems.HealthWatch(host, clock)
    watch.check()
    clock.now += problems.STUCK_SECONDS
    watch.check()
    assert _ids() == []
    host.segments = [object()] * 7
    watch.check()
    clock.now += problems.STUCK_SECONDS - 1
    watch.check()
    assert _ids() == []
    clock.now += 1
    watch.check()
    assert _ids() == ["TOO_MANY_SEGMENTS/h"]
    assert "7 segments, its target is 2" in BOARD.report()[0]["description"]
    host.segments = [object()] * 3
    watch.check()
    assert _ids() == []


def test_default_segment_number_zero_means_one_per_cpu(monkeypatch):
    monkeypatch.setattr(problems.os, "cpu_count", lambda: 3)
    assert problems.HealthWatch(FakeHost(target=0)).target_segments() == 3


def test_health_watch_reads_a_real_collection(tmp_path):
    from pydrant.collection.collection import Collection
    from pydrant.collection.config import CollectionDefaults, build_config

    path = tmp_path / "real"
    Collection.initialise(path, "real", build_config({"vectors": {"size": 2, "distance": "Dot"}}, CollectionDefaults()))
    collection = Collection.load(path, None)
    try:
        watch = problems.HealthWatch(collection, Clock())
        watch.check()
        assert _ids() == []
        collection.optimizer.error = "merge optimization failed: boom"
        watch.check()
        assert _ids() == ["OPTIMIZER_FAILED/real"]
    finally:
        collection._close_files()
