"""Property: an indexed segment's planned search (graph + masks + tail) agrees with the
exact scan after any sequence of the writes an indexed segment accepts.

With `hnsw_ef` at least the number of graph nodes the graph search is exhaustive, so every
disagreement is a planning bug (a deleted node returned, a moved point missed or found
twice, a filter mask misaligned with the node order, a stale cached mask), not HNSW
approximation. A dict model checks the exact scan itself.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pydrant.segments.filters import compile_filter
from pydrant.segments.indexed import IndexedSegment
from pydrant.segments.scoring import ScoringQuery, VectorSpace, prepare_dense
from pydrant.segments.types import DenseVectorSpec, Record, VectorSchema

N = 60
DIM = 4
EXHAUSTIVE = {"hnsw_ef": 10_000}

operations = st.lists(
    st.one_of(
        st.tuples(st.just("delete"), st.integers(0, N + 5)),
        st.tuples(st.just("move"), st.integers(0, N + 5), st.integers(0, 10_000)),
        st.tuples(st.just("payload"), st.integers(0, N + 5), st.integers(0, 3)),
        st.tuples(st.just("drop_vector"), st.integers(0, N + 5)),
    ),
    max_size=25,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations, seed=st.integers(0, 2**16), distance=st.sampled_from(["Cosine", "Euclid", "Dot"]),
       group=st.one_of(st.none(), st.integers(0, 3)), optional=st.booleans())
def test_planned_search_equals_exact_after_writes(tmp_path_factory, ops, seed, distance, group, optional):
    rng = np.random.default_rng(seed)
    schema = VectorSchema(dense={"v": DenseVectorSpec(DIM, distance), "w": DenseVectorSpec(DIM, distance)})
    segment = IndexedSegment.create(tmp_path_factory.mktemp("seg"), schema)
    data = rng.normal(size=(N, DIM)).astype(np.float32)
    if distance == "Cosine":
        data /= np.linalg.norm(data, axis=1, keepdims=True)
    # with `optional`, every third point lacks vector "v": graph nodes are then not slots
    records = [
        Record(i, 1, {"g": i % 4}, {"w": data[i], **({} if optional and i % 3 == 0 else {"v": data[i]})})
        for i in range(N)
    ]
    segment.copy_points(records)
    segment.build_indexes({"dense": {"v": {"hnsw": {"m": 4, "ef_construct": 8}}, "w": {"hnsw": {"m": 4, "ef_construct": 8}}}, "sparse": {}})
    segment.set_search_settings({"v": {"full_scan_threshold": 0}})  # always the graph
    model = {r.id: (dict(r.payload), r.vectors.get("v")) for r in records}
    op_num = 10
    for op in ops:
        op_num += 1
        kind, point = op[0], op[1]
        if kind == "delete":
            segment.delete_points(op_num, [point])
            model.pop(point, None)
        elif kind == "move":  # a vector update moves the point past the indexed slots
            vector = np.random.default_rng(op[2]).normal(size=DIM).astype(np.float32)
            if distance == "Cosine":
                vector /= np.linalg.norm(vector)
            segment.update_vectors(op_num, [(point, {"v": vector})])
            if point in model:
                model[point] = (model[point][0], vector)
        elif kind == "payload":
            segment.update_payload(op_num, [point], lambda p, g=op[2]: {"g": g})
            if point in model:
                model[point] = ({"g": op[2]}, model[point][1])
        else:
            segment.delete_vectors(op_num, [point], ["v"])
            if point in model:
                model[point] = (model[point][0], None)
        # every few writes, a search (the cached unfiltered mask must follow the writes)
        if op_num % 3 == 0:
            check(segment, model, rng, distance, group)
    check(segment, model, rng, distance, group)
    segment.close()


def check(segment, model, rng, distance, group):
    space = VectorSpace(distance)
    predicate = None if group is None else compile_filter({"must": [{"key": "g", "match": {"value": group}}]})
    query = ScoringQuery("nearest", (prepare_dense(rng.normal(size=DIM).astype(np.float32), distance, "float32"),))
    planned = segment.search("v", [query], 10, space, predicate, EXHAUSTIVE)[0]
    exact = segment.search("v", [query], 10, space, predicate, {"exact": True})[0]
    assert [pid for _, pid, _ in planned] == [pid for _, pid, _ in exact] or _tied(planned, exact)
    assert np.allclose([s for s, _, _ in planned], [s for s, _, _ in exact], rtol=1e-5, atol=1e-5)
    # the exact scan against the model
    expected = sorted(
        (pid for pid, (payload, vector) in model.items() if vector is not None and (group is None or payload["g"] == group))
    )
    every = segment.search("v", [query], len(model) + 5, space, predicate, {"exact": True})[0]
    assert sorted(pid for _, pid, _ in every) == expected
    assert len({pid for _, pid, _ in planned}) == len(planned)  # no point twice


def _tied(a, b) -> bool:
    """Same scores in order (ids may differ only among equal scores)."""
    return len(a) == len(b) and np.allclose([s for s, _, _ in a], [s for s, _, _ in b], rtol=1e-6, atol=1e-6)
