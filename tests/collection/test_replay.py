"""Replaying the WAL is idempotent and reproduces the state the live writes produced.

Random operation histories (the engine's own operation format, as the update worker logs
them) are written to a real WAL, then applied to fresh segments once, and twice; both must
equal a dict model of the history.
"""

from __future__ import annotations

import numpy as np
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pydrant.collection import apply as applying
from pydrant.collection.replay import replay_into
from pydrant.segments.appendable import AppendableSegment
from pydrant.segments.types import DenseVectorSpec, VectorSchema
from pydrant.wal import Wal

DIM = 4
SCHEMA = VectorSchema(dense={"": DenseVectorSpec(size=DIM, distance="Dot")}, sparse={})
CONFIG = {"params": {"vectors": {"size": DIM, "distance": "Dot"}}}
IDS = st.integers(min_value=0, max_value=12)
PAYLOADS = st.dictionaries(st.sampled_from(["a", "b", "c"]), st.integers(-3, 3), max_size=3)
VECTORS = st.lists(st.integers(-5, 5), min_size=DIM, max_size=DIM).map(lambda v: np.asarray(v, dtype=np.float32))


def _upsert(points):
    return {"type": "upsert", "points": [{"id": i, "vectors": {"": v}, "payload": p} for i, v, p in points]}


OPERATIONS = st.one_of(
    st.lists(st.tuples(IDS, VECTORS, PAYLOADS), min_size=1, max_size=4).map(_upsert),
    st.lists(IDS, min_size=1, max_size=3).map(lambda ids: {"type": "delete_points", "ids": ids}),
    st.tuples(st.lists(IDS, min_size=1, max_size=3), PAYLOADS).map(
        lambda t: {"type": "set_payload", "ids": t[0], "payload": t[1]}
    ),
    st.tuples(st.lists(IDS, min_size=1, max_size=3), PAYLOADS).map(
        lambda t: {"type": "overwrite_payload", "ids": t[0], "payload": t[1]}
    ),
    st.integers(-3, 3).map(
        lambda v: {"type": "delete_points", "filter": {"must": [{"key": "a", "match": {"value": v}}]}}
    ),
    st.lists(IDS, min_size=1, max_size=3).map(lambda ids: {"type": "clear_payload", "ids": ids}),
)


def model_of(history: list[dict]) -> dict:
    """The naive meaning of a history: id -> (vector as tuple, payload)."""
    points: dict = {}
    for op in history:
        kind = op["type"]
        if kind == "upsert":
            for p in op["points"]:
                points[p["id"]] = (tuple(p["vectors"][""].tolist()), dict(p["payload"]))
        elif kind == "delete_points" and "ids" in op:
            for i in op["ids"]:
                points.pop(i, None)
        elif kind == "delete_points":
            value = op["filter"]["must"][0]["match"]["value"]
            points = {i: p for i, p in points.items() if p[1].get("a") != value}
        elif kind in ("set_payload", "overwrite_payload", "clear_payload"):
            for i in op["ids"]:
                if i in points:
                    vector, payload = points[i]
                    if kind == "set_payload":
                        payload = {**payload, **op["payload"]}
                    elif kind == "overwrite_payload":
                        payload = dict(op["payload"])
                    else:
                        payload = {}
                    points[i] = (vector, payload)
    return points


def state_of(segment: AppendableSegment) -> dict:
    ids = list(segment.iter_ids())
    records = segment.retrieve(ids, with_payload=True, with_vectors=True)
    return {r.id: (tuple(r.vectors[""].tolist()), r.payload or {}) for r in records}


def apply_log(wal_dir, segment_dir, times: int) -> dict:
    segment = AppendableSegment.create(segment_dir, SCHEMA)
    wal = Wal(wal_dir)
    try:
        for _ in range(times):
            for op_num, operation in wal.read():
                applying.apply_operation([segment], SCHEMA, op_num, operation)
        return state_of(segment)
    finally:
        wal.close()
        segment.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=st.lists(OPERATIONS, min_size=1, max_size=25))
def test_replay_once_and_twice_equal_the_model(tmp_path_factory, history):
    root = tmp_path_factory.mktemp("replay")
    wal = Wal(root / "wal")
    wal.append_many(list(enumerate(history, start=1)))
    wal.close()
    expected = model_of(history)
    assert apply_log(root / "wal", root / "once", times=1) == expected
    assert apply_log(root / "wal", root / "twice", times=2) == expected


def test_replay_tool_builds_a_loadable_collection(tmp_path):
    history = [
        _upsert([(1, np.ones(DIM, np.float32), {"a": 1}), (2, np.zeros(DIM, np.float32), {"a": 2})]),
        {"type": "set_payload", "ids": [2], "payload": {"b": 5}},
        {"type": "delete_points", "ids": [1]},
    ]
    wal = Wal(tmp_path / "wal")
    wal.append_many(list(enumerate(history, start=1)))
    wal.close()
    summary = replay_into(tmp_path / "wal", tmp_path / "out", CONFIG)
    assert summary == {"records": 3, "first_op_num": 1, "last_op_num": 3, "points": 1}
    (segment_id,) = orjson.loads((tmp_path / "out" / "manifest.json").read_bytes())["segments"]
    segment = AppendableSegment.open(tmp_path / "out" / "segments" / segment_id, SCHEMA)
    try:
        assert state_of(segment) == {2: ((0.0,) * DIM, {"a": 2, "b": 5})}
    finally:
        segment.close()


def test_replay_reads_a_live_wal_without_changing_a_byte(tmp_path):
    """`pydrant wal replay` pointed at the WAL of a running collection (open for appends,
    with a torn tail being written) must not cut, trim or create anything in it."""
    import hashlib

    wal_dir = tmp_path / "wal"
    live = Wal(wal_dir, capacity_bytes=64 * 1024)
    for op_num in range(1, 40):
        live.append(op_num, _upsert([(op_num % 7, np.full(DIM, op_num, dtype=np.float32), {"a": op_num % 3})]))
    last_file = sorted(wal_dir.glob("*.wal"))[-1]
    with open(last_file, "r+b") as f:  # a record being written right now: a torn tail
        f.seek(live.statistics()["bytes"] - sum(p.stat().st_size for p in sorted(wal_dir.glob("*.wal"))[:-1]))
        f.write(b"\x40\x00\x00\x00\x12\x34")

    def fingerprint():
        return {p.name: (p.stat().st_size, hashlib.sha256(p.read_bytes()).hexdigest()) for p in sorted(wal_dir.iterdir())}

    before = fingerprint()
    summary = replay_into(wal_dir, tmp_path / "copy", CONFIG)
    assert fingerprint() == before
    assert summary["records"] == 39 and summary["points"] == 7
    live.append(40, _upsert([(1, np.zeros(DIM, dtype=np.float32), {})]))  # the writer carries on
    live.close()
