"""Property tests of the query engine (pydrant/collection/query.py) on a real collection,
against a naive reference over a dict model of the stored points.

Random histories (upserts of random ids with random subsets of vectors and a keyword
payload, re-upserts, deletes, deleted vectors) go through the write path the server uses
(`prepare_upsert` -> `Collection._apply`) into a collection with one dense vector per
distance x datatype, two multi-vectors and two sparse vectors (plain and `idf`). Random
`QueryRequest`s (nearest, recommend with each strategy, discover, context; ids and raw
vectors as examples; filter, score_threshold, offset) run through `QueryEngine.query`.

The reference follows Qdrant (lib/segment/src/spaces, .../vector_storage/query,
.../query_scorer, lib/collection/src/operations/universal_query):
- stored vectors: float Cosine normalised (in f32) then cast to the storage type; uint8
  saturated and truncated like Rust `as u8`;
- query vectors: preprocessed for the metric (Cosine normalised) and then converted to the
  storage element type, as `MetricQueryScorer` does (`slice_from_float_cow`): f16 rounding,
  `as u8`; `average_vector` = avg(pos) + avg(pos) - avg(neg) (multi: rows concatenated,
  negative rows negated; sparse: union of indices);
- similarities and query-kind combinations as in tests/segments/test_scoring_property.py;
  nearest on Euclid/Manhattan reports sqrt(|s|) / |s| (ascending), MaxSim for multi;
- sparse nearest returns only points sharing an index; `idf` weights the query values by
  ln((N - n + 0.5) / (n + 0.5) + 1), N live points with a (non-empty: Qdrant does not index
  empty sparse vectors) vector, n of them holding the index;
- points given by id as examples are excluded; `score_threshold` keeps score >= t (<= t for
  nearest Euclid/Manhattan distances); `offset` skips the first results.

Scores are compared as intervals (relative 1e-4 of the magnitude of the computation,
absolute 1e-5, every datatype) and ranks tie-tolerantly (see `assert_ranked`).
"""

from __future__ import annotations

import math
import os
import tempfile
import uuid
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pydrant.collection.collection import Collection
from pydrant.collection.config import CollectionDefaults, build_config
from pydrant.collection.points import prepare_upsert
from pydrant.collection.query import QueryEngine

DIM = 4
MULTI_DIM = 3
DISTANCE_NAMES = {"Cosine": "cos", "Dot": "dot", "Euclid": "euc", "Manhattan": "man"}
DATATYPE_NAMES = {"float32": "32", "float16": "16", "uint8": "u8"}
DENSE = {
    f"{DISTANCE_NAMES[d]}{DATATYPE_NAMES[t]}": (d, t) for d in DISTANCE_NAMES for t in DATATYPE_NAMES
}
MULTI = {"mcos": "Cosine", "meuc": "Euclid"}
SPARSE = {"sp": None, "spidf": "idf"}
ALL_VECTORS = [*DENSE, *MULTI, *SPARSE]
# which vector a query searches: half dense, a quarter each multi and sparse
USING = st.one_of(st.sampled_from(list(DENSE)), st.sampled_from([*MULTI, *SPARSE]))
COLORS = ["red", "green", "blue"]
UUIDS = [str(uuid.UUID(int=(i + 1) * 0x1234567890ABCDEF)) for i in range(4)]
IDS = st.one_of(st.integers(0, 25), st.sampled_from(UUIDS))

REL, ABS = 1e-4, 1e-5
TINY = 2e-6
F32_EPS = float(np.finfo(np.float32).eps)

SETTINGS = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


def collection_config() -> dict:
    vectors = {name: {"size": DIM, "distance": d, "datatype": t} for name, (d, t) in DENSE.items()}
    vectors.update(
        {name: {"size": MULTI_DIM, "distance": d, "multivector_config": {"comparator": "max_sim"}} for name, d in MULTI.items()}
    )
    sparse = {name: ({"modifier": m} if m else {}) for name, m in SPARSE.items()}
    return build_config({"vectors": vectors, "sparse_vectors": sparse}, CollectionDefaults())


# -- the model: what Qdrant stores -------------------------------------------------------------


def f32(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float32)


def cosine_normalised(array: np.ndarray) -> np.ndarray:
    """Qdrant's `cosine_preprocess` (lib/segment/src/spaces/simple.rs), row by row: the f32
    squared length; below f32::EPSILON (zero or tiny) or within 1e-6 of 1 the vector stays
    as it is, else it is divided by the length."""
    rows = np.atleast_2d(f32(array)).copy()
    for row in rows:
        length = np.float32(0.0)
        for x in row:
            length = np.float32(length + x * x)
        if length < np.float32(F32_EPS) or abs(float(length) - 1.0) <= 1e-6:
            continue
        row /= np.sqrt(length)
    return rows.reshape(np.shape(array))


def as_u8(array) -> np.ndarray:
    """Rust `f32 as u8`: truncation toward zero, saturating at 0 and 255."""
    return np.clip(np.trunc(f32(array)), 0, 255).astype(np.uint8)


def to_element_type(array: np.ndarray, datatype: str) -> np.ndarray:
    """A float32 vector converted to the storage element type and back to float64."""
    if datatype == "uint8":
        return as_u8(array).astype(np.float64)
    if datatype == "float16":
        return f32(array).astype(np.float16).astype(np.float64)
    return f32(array).astype(np.float64)


def stored_dense(raw, distance: str, datatype: str) -> np.ndarray:
    array = f32(raw)
    if distance == "Cosine" and datatype != "uint8":
        array = cosine_normalised(array)
    return to_element_type(array, datatype)


def stored_value(name: str, raw):
    """The stored form (float64 arrays, or (indices, values) for sparse) of an input vector."""
    if name in DENSE:
        return stored_dense(raw, *DENSE[name])
    if name in MULTI:
        return stored_dense(raw, MULTI[name], "float32")
    return {int(i): float(np.float32(v)) for i, v in zip(raw["indices"], raw["values"])}


class Model:
    """id -> {"vectors": {name: stored value}, "payload": dict}."""

    def __init__(self):
        self.points: dict = {}

    def upsert(self, points: list[dict]) -> None:
        for p in points:
            self.points[p["id"]] = {
                "vectors": {name: stored_value(name, v) for name, v in p["vector"].items()},
                "payload": p.get("payload") or {},
            }

    def delete(self, ids) -> None:
        for i in ids:
            self.points.pop(i, None)

    def delete_vectors(self, ids, names) -> None:
        for i in ids:
            if i in self.points:
                for name in names:
                    self.points[i]["vectors"].pop(name, None)

    def having(self, name: str) -> list:
        return [i for i, p in self.points.items() if name in p["vectors"]]


# -- strategies ------------------------------------------------------------------------------


def float_values(exact: bool):
    if exact:
        return st.integers(-12, 12).map(lambda k: k / 4)
    return st.floats(-3, 3, width=32, allow_nan=False, allow_infinity=False)


def raw_dense(name: str, exact: bool):
    _, datatype = DENSE[name]
    if datatype == "uint8":
        element = st.one_of(st.integers(0, 255).map(float), st.floats(-20, 300, width=32, allow_nan=False))
    else:
        element = float_values(exact)
    return st.lists(element, min_size=DIM, max_size=DIM)


def raw_multi(exact: bool, min_rows: int = 1):
    return st.lists(st.lists(float_values(exact), min_size=MULTI_DIM, max_size=MULTI_DIM), min_size=min_rows, max_size=3)


def raw_sparse(exact: bool, min_size: int = 0):
    return st.dictionaries(st.integers(0, 9), float_values(exact), min_size=min_size, max_size=4).map(
        lambda d: {"indices": list(d), "values": [d[k] for k in d]}  # unsorted on purpose
    )


def raw_vector(name: str, exact: bool, *, non_empty: bool = False):
    if name in DENSE:
        return raw_dense(name, exact)
    if name in MULTI:
        return raw_multi(exact)
    return raw_sparse(exact, min_size=1 if non_empty else 0)


@st.composite
def point(draw, exact: bool, names=ALL_VECTORS):
    missing = draw(st.sets(st.sampled_from(names), max_size=4))  # most points have most vectors
    vector = {name: draw(raw_vector(name, exact)) for name in names if name not in missing}
    payload = draw(st.one_of(st.none(), st.sampled_from(COLORS).map(lambda c: {"color": c})))
    return {"id": draw(IDS), "vector": vector, "payload": payload}


@st.composite
def history(draw, exact: bool, names=ALL_VECTORS):
    ops = [{"upsert": draw(st.lists(point(exact, names), min_size=5, max_size=16))}]
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["upsert", "upsert", "delete", "delete_vectors"]))
        if kind == "upsert":
            ops.append({"upsert": draw(st.lists(point(exact, names), min_size=1, max_size=8))})
        elif kind == "delete":
            ops.append({"delete": draw(st.lists(IDS, min_size=1, max_size=4))})
        else:
            ops.append({"delete_vectors": (draw(st.lists(IDS, min_size=1, max_size=4)),
                                           draw(st.lists(st.sampled_from(names), min_size=1, max_size=3, unique=True)))})
    return ops


class Built:
    def __init__(self, root: Path):
        path = root / "c"
        Collection.initialise(path, "c", collection_config())
        self.collection = Collection.load(path)
        self.model = Model()
        self.op_num = 0
        self.engine = QueryEngine(self.collection, self._resolve)

    def _resolve(self, name):
        assert name == "c"
        return self.collection

    def apply(self, operation: dict) -> None:
        self.op_num += 1
        self.collection._apply(self.op_num, operation)

    def run(self, ops: list[dict]) -> None:
        for op in ops:
            if "upsert" in op:
                points = [dict(p, vector=dict(p["vector"])) for p in op["upsert"]]
                operation = prepare_upsert(self.collection.schema, {"points": points})
                self.apply(operation)
                self.model.upsert([dict(p, id=q["id"]) for p, q in zip(op["upsert"], operation["points"])])
            elif "delete" in op:
                self.apply({"type": "delete_points", "ids": op["delete"]})
                self.model.delete(op["delete"])
            else:
                ids, names = op["delete_vectors"]
                self.apply({"type": "delete_vectors", "ids": ids, "vectors": names})
                self.model.delete_vectors(ids, names)

    def close(self):
        self.collection._close_files()


# Collections are small (~0.5 MB) and rebuilt for every example: on tmpfs their fsyncs are free.
SCRATCH = "/dev/shm" if Path("/dev/shm").is_dir() and os.access("/dev/shm", os.W_OK) else None


def built(ops):
    holder = tempfile.TemporaryDirectory(prefix="pydrant-search-prop-", dir=SCRATCH)
    b = Built(Path(holder.name))
    b.holder = holder
    b.run(ops)
    return b


def dispose(b: Built) -> None:
    b.close()
    b.holder.cleanup()


# -- requests ---------------------------------------------------------------------------------


def vector_input(data, b: Built, name: str, exact: bool, id_ok: bool = True):
    """A VectorInput for vector `name`: a raw vector or the id of a point that has it."""
    having = b.model.having(name)
    if id_ok and having and data.draw(st.integers(0, 2)) == 0:
        return data.draw(st.sampled_from(sorted(having, key=str)))
    if name in MULTI and data.draw(st.booleans(), label="single row for multi"):
        return data.draw(st.lists(float_values(exact), min_size=MULTI_DIM, max_size=MULTI_DIM))
    return data.draw(raw_vector(name, exact, non_empty=name in SPARSE and data.draw(st.booleans())))


def color_filter(data) -> dict:
    return {"must": [{"key": "color", "match": {"value": data.draw(st.sampled_from(COLORS))}}]}


def query_part(data, b: Built, name: str, exact: bool, id_ok: bool = True) -> dict:
    kind = data.draw(st.sampled_from(["nearest", "nearest", "recommend", "discover", "context"]))
    v = lambda: vector_input(data, b, name, exact, id_ok)  # noqa: E731
    if kind == "nearest":
        return {"nearest": v()}
    if kind == "recommend":
        strategy = data.draw(st.sampled_from(["average_vector", "best_score", "sum_scores"]))
        n_pos = data.draw(st.integers(1 if strategy == "average_vector" else 0, 3))
        n_neg = data.draw(st.integers(0 if n_pos else 1, 2))
        return {"recommend": {"positive": [v() for _ in range(n_pos)], "negative": [v() for _ in range(n_neg)],
                              "strategy": strategy}}
    if kind == "discover":
        pairs = data.draw(st.integers(0, 2))
        return {"discover": {"target": v(), "context": [{"positive": v(), "negative": v()} for _ in range(pairs)]}}
    pairs = data.draw(st.integers(1, 2))
    return {"context": [{"positive": v(), "negative": v()} for _ in range(pairs)]}


def request_for(data, b: Built, name: str, exact: bool) -> dict:
    request = {"query": query_part(data, b, name, exact), "using": name, "limit": data.draw(st.integers(1, 8))}
    if data.draw(st.booleans()):
        request["filter"] = color_filter(data)
    if data.draw(st.booleans()):
        request["offset"] = data.draw(st.integers(0, 4))
    return request


# -- the reference ------------------------------------------------------------------------------


def fast_sigmoid(x: float) -> float:
    return x / (1.0 + abs(x))


def sigma(x: float) -> float:
    return 0.5 * (fast_sigmoid(x) + 1.0)


def _widen(interval):
    lo, hi = interval
    return (lo - TINY * (1 + abs(lo)), hi + TINY * (1 + abs(hi)))


def _hull(*intervals):
    return (min(i[0] for i in intervals), max(i[1] for i in intervals))


class Reference:
    """Scores of the model's points for one request, as Qdrant computes them."""

    def __init__(self, model: Model, name: str):
        self.model = model
        self.name = name
        if name in DENSE:
            self.kind, (self.distance, self.datatype) = "dense", DENSE[name]
        elif name in MULTI:
            self.kind, self.distance, self.datatype = "multi", MULTI[name], "float32"
        else:
            self.kind, self.distance, self.datatype = "sparse", "Dot", "float32"

    # vectors

    def raw_to_float(self, value):
        """A VectorInput as the float32 vector the API hands to the collection layer."""
        if isinstance(value, (int, str)):
            stored = self.model.points[value]["vectors"][self.name]
            return stored if self.kind == "sparse" else f32(stored)
        if self.kind == "sparse":
            return {int(i): float(np.float32(v)) for i, v in zip(value["indices"], value["values"])}
        array = f32(value)
        if self.kind == "multi" and array.ndim == 1:
            array = array.reshape(1, -1)
        return array

    def prepared(self, vector):
        """Preprocessed for the metric, then converted to the storage element type."""
        if self.kind == "sparse":
            return self.idf_weighted(vector)
        if self.distance == "Cosine" and self.datatype != "uint8":
            vector = cosine_normalised(vector)
        return to_element_type(vector, self.datatype)

    def idf_weighted(self, vector: dict) -> dict:
        if SPARSE[self.name] != "idf":
            return vector
        documents = [p["vectors"][self.name] for p in self.model.points.values() if p["vectors"].get(self.name)]
        total = len(documents)
        weighted = {}
        for index, value in vector.items():
            n = sum(1 for d in documents if index in d)
            weighted[index] = value * math.log((total - n + 0.5) / (n + 0.5) + 1.0)
        return weighted

    def average(self, positives: list, negatives: list):
        if self.kind == "sparse":
            def avg(vectors):
                out: dict = {}
                for v in vectors:
                    for i, x in v.items():
                        out[i] = out.get(i, 0.0) + x
                return {i: x / len(vectors) for i, x in out.items()}
            pos = avg(positives)
            if not negatives:
                return pos
            neg = avg(negatives)
            return {i: pos.get(i, 0.0) * 2 - neg.get(i, 0.0) for i in set(pos) | set(neg)}
        if self.kind == "multi":
            return f32(np.vstack(list(positives) + [-n for n in negatives]))
        def avg(vectors):  # f32, summed in order, as Qdrant's avg_vectors
            total = np.zeros(DIM, np.float32)
            for v in vectors:
                total = total + f32(v)
            return total / np.float32(len(vectors))
        pos = avg(positives)
        return pos + pos - avg(negatives) if negatives else pos

    # similarities (intervals)

    def allowance(self, scale: float) -> float:
        return ABS + REL * scale

    def dense_sim(self, a: np.ndarray, b: np.ndarray) -> tuple:
        if self.distance == "Cosine" and self.datatype == "uint8":
            na, nb = math.sqrt(float(a @ a)), math.sqrt(float(b @ b))
            value = float(a @ b) / (na * nb) if na * nb > 0 else 0.0
            return (value - ABS, value + ABS)
        if self.distance in ("Cosine", "Dot"):
            value, scale = float(a @ b), float(np.abs(a * b).sum())
        elif self.distance == "Euclid":
            value = -float(((a - b) ** 2).sum())
            scale = -value
        else:
            value = -float(np.abs(a - b).sum())
            scale = -value
        t = self.allowance(scale)
        return (value - t, value + t)

    def sim(self, stored, example) -> tuple:
        if self.kind == "sparse":
            terms = [x * stored[i] for i, x in example.items() if i in stored]
            value = float(sum(terms))
            t = self.allowance(float(sum(abs(x) for x in terms)))
            return (value - t, value + t)
        if self.kind == "multi":
            lo = hi = 0.0
            for q in np.atleast_2d(example):
                sims = [self.dense_sim(d, q) for d in np.atleast_2d(stored)]
                lo += max(s[0] for s in sims)
                hi += max(s[1] for s in sims)
            return (lo, hi)
        return self.dense_sim(stored, example)

    # the request

    def scores(self, request: dict, *, exclude: set) -> tuple[dict, bool]:
        """id -> reported score interval for every candidate, and whether the scores are
        distances (ascending)."""
        query = request["query"]
        flt = request.get("filter")
        color = flt["must"][0]["match"]["value"] if flt else None
        candidates = {
            i: p["vectors"][self.name]
            for i, p in self.model.points.items()
            if self.name in p["vectors"] and i not in exclude and (color is None or p["payload"].get("color") == color)
        }
        get = self.raw_to_float
        if "nearest" in query:
            return self.nearest(candidates, self.prepared(get(query["nearest"])))
        if "recommend" in query:
            spec = query["recommend"]
            pos = [get(v) for v in spec.get("positive") or []]
            neg = [get(v) for v in spec.get("negative") or []]
            if spec["strategy"] == "average_vector":
                example = self.prepared(self.average(pos, neg))
                return self.nearest(candidates, example)
            pos = [self.prepared(v) for v in pos]
            neg = [self.prepared(v) for v in neg]
            combine = self.best_score if spec["strategy"] == "best_score" else self.sum_scores
            return {i: _widen(combine([self.sim(v, e) for e in pos], [self.sim(v, e) for e in neg]))
                    for i, v in candidates.items()}, False
        if "discover" in query:
            spec = query["discover"]
            target = self.prepared(get(spec["target"]))
            pairs = [(self.prepared(get(c["positive"])), self.prepared(get(c["negative"]))) for c in spec.get("context") or []]
            return {i: _widen(self.discover(self.sim(v, target), [(self.sim(v, p), self.sim(v, n)) for p, n in pairs]))
                    for i, v in candidates.items()}, False
        pairs = [(self.prepared(get(c["positive"])), self.prepared(get(c["negative"]))) for c in query["context"]]
        return {i: _widen(self.context([(self.sim(v, p), self.sim(v, n)) for p, n in pairs]))
                for i, v in candidates.items()}, False

    def nearest(self, candidates: dict, example) -> tuple[dict, bool]:
        """A nearest query: sparse keeps points sharing an index; Euclid reports sqrt(|s|),
        Manhattan |s| (both ascending); others the similarity."""
        if self.kind == "sparse":
            candidates = {i: v for i, v in candidates.items() if set(v) & set(example)}
        ascending = self.distance in ("Euclid", "Manhattan")
        scores = {}
        for i, v in candidates.items():
            lo, hi = _widen(self.sim(v, example))
            if ascending:
                low = 0.0 if lo <= 0 <= hi else min(abs(lo), abs(hi))
                lo, hi = low, max(abs(lo), abs(hi))
                if self.distance == "Euclid":
                    lo, hi = math.sqrt(lo), math.sqrt(hi)
            scores[i] = (lo, hi)
        return scores, ascending

    @staticmethod
    def best_score(pos: list, neg: list) -> tuple:
        p = (max(s[0] for s in pos), max(s[1] for s in pos)) if pos else None
        n = (max(s[0] for s in neg), max(s[1] for s in neg)) if neg else None
        pos_branch = (sigma(p[0]), sigma(p[1])) if p else None
        neg_branch = (-sigma(n[1]), -sigma(n[0])) if n else None
        if n is None or (p is not None and p[0] > n[1]):
            return pos_branch
        if p is None or p[1] <= n[0]:
            return neg_branch
        return _hull(pos_branch, neg_branch)

    @staticmethod
    def sum_scores(pos: list, neg: list) -> tuple:
        return (sum(s[0] for s in pos) - sum(s[1] for s in neg), sum(s[1] for s in pos) - sum(s[0] for s in neg))

    @staticmethod
    def discover(target: tuple, pairs: list) -> tuple:
        sure = unsure = 0
        for p, n in pairs:
            if p[0] > n[1]:
                sure += 1
            elif p[1] <= n[0]:
                sure -= 1
            else:
                unsure += 1
        return (sure - unsure + sigma(target[0]), sure + unsure + sigma(target[1]))

    @staticmethod
    def context(pairs: list) -> tuple:
        lo = sum(fast_sigmoid(min(p[0] - n[1] - F32_EPS, 0.0)) for p, n in pairs)
        hi = sum(fast_sigmoid(min(p[1] - n[0] - F32_EPS, 0.0)) for p, n in pairs)
        return (lo, hi)


def referenced_ids(query: dict) -> set:
    found = []
    if "nearest" in query:
        found = [query["nearest"]]
    elif "recommend" in query:
        found = list(query["recommend"].get("positive") or []) + list(query["recommend"].get("negative") or [])
    elif "discover" in query:
        spec = query["discover"]
        found = [spec["target"]] + [v for c in spec.get("context") or [] for v in (c["positive"], c["negative"])]
    elif "context" in query:
        found = [v for c in query["context"] for v in (c["positive"], c["negative"])]
    return {v for v in found if isinstance(v, (int, str))}


def reference_for(model: Model, request: dict) -> tuple[dict, bool]:
    reference = Reference(model, request["using"])
    return reference.scores(request, exclude=referenced_ids(request["query"]))


# -- comparing ---------------------------------------------------------------------------------


def assert_ranked(hits, reference: dict, *, ascending: bool, limit: int, offset: int = 0, threshold=None,
                  label: str = "") -> None:
    """`hits` (after `offset`) are a valid page of the reference ranking: scores in their
    reference intervals, ranks consistent up to ties, threshold respected, right length."""
    sign = -1.0 if ascending else 1.0
    keys = {i: tuple(sorted((sign * lo, sign * hi))) for i, (lo, hi) in reference.items()}
    got = [(h.id, h.score) for h in hits]
    context = f"{label}\n got={got}\n reference={dict(sorted(reference.items(), key=lambda kv: -sign * kv[1][0]))}"
    if threshold is not None:
        t = sign * threshold
        definite = sum(1 for lo, _ in keys.values() if lo >= t)
        possible = sum(1 for _, hi in keys.values() if hi >= t)
    else:
        definite = possible = len(keys)
    shortest = min(limit, max(0, definite - offset))
    longest = min(limit, max(0, possible - offset))
    assert shortest <= len(got) <= longest, f"{len(got)} hits, expected {shortest}..{longest}; {context}"
    assert len({i for i, _ in got}) == len(got), f"duplicate ids; {context}"
    previous = None
    for n, (point_id, score) in enumerate(got):
        position = offset + n
        assert point_id in keys, f"{point_id!r} is not a candidate; {context}"
        lo, hi = keys[point_id]
        key = sign * score
        assert lo <= key <= hi, f"{point_id!r} scored {score}, expected {reference[point_id]}; {context}"
        if threshold is not None:
            assert key >= sign * threshold - 1e-6 * (1 + abs(threshold)), f"{point_id!r} fails the threshold; {context}"
        if previous is not None:
            assert previous >= key, f"not sorted; {context}"
        previous = key
        better = sum(1 for other_lo, _ in keys.values() if other_lo > hi)
        assert better <= position, f"{point_id!r} at {position} but {better} points are better; {context}"
        at_least = sum(1 for _, other_hi in keys.values() if other_hi >= lo)
        assert at_least >= position + 1, f"{point_id!r} at {position} ranks too high; {context}"


def threshold_for(data, reference: dict, ascending: bool):
    """None, or a threshold among the reference scores (possibly right on one)."""
    if not reference or not data.draw(st.booleans(), label="use threshold"):
        return None
    lo, hi = data.draw(st.sampled_from(sorted(reference.values())), label="threshold anchor")
    return float(data.draw(st.sampled_from([lo, hi, (lo + hi) / 2, lo - 0.05, hi + 0.05]), label="threshold"))


# -- the properties -----------------------------------------------------------------------------


@SETTINGS
@given(exact=st.booleans(), data=st.data())
def test_query_matches_reference(exact, data):
    b = built(data.draw(history(exact), label="history"))
    try:
        for _ in range(8):
            name = data.draw(USING, label="using")
            request = request_for(data, b, name, exact)
            reference, ascending = reference_for(b.model, request)
            threshold = threshold_for(data, reference, ascending)
            if threshold is not None:
                request["score_threshold"] = threshold
            hits = b.engine.query(request)
            assert_ranked(hits, reference, ascending=ascending, limit=request["limit"],
                          offset=request.get("offset", 0), threshold=threshold, label=repr(request))
    finally:
        dispose(b)


LARGER_BETTER = [n for n, (d, _) in DENSE.items() if d in ("Cosine", "Dot")] + ["mcos", "sp", "spidf"]


def fusion_reference(kind: str, sources: list[list], k: int) -> dict:
    """id -> fused score interval from the prefetch results (best first)."""
    fused: dict = {}
    for hits in sources:
        if kind == "rrf":
            for rank, hit in enumerate(hits):
                fused[hit.id] = fused.get(hit.id, 0.0) + 1.0 / (rank + k)
            continue
        scores = [h.score for h in hits]
        if not scores:
            continue
        if len(scores) == 1:
            normalised, slack = [0.5], 0.0
        else:
            mean = sum(scores) / len(scores)
            std = math.sqrt(sum((s - mean) ** 2 for s in scores) / (len(scores) - 1))
            low, high = mean - 3 * std, mean + 3 * std
            if low == high:
                normalised, slack = [0.5] * len(scores), 0.0
            else:
                normalised = [(s - low) / (high - low) for s in scores]
                # f32 mean/variance (Welford in Qdrant): rounding of the scores' magnitude over the spread
                slack = 1e-5 * (1 + max(abs(s) for s in scores) / (high - low))
        for hit, value in zip(hits, normalised):
            lo, hi = fused.get(hit.id, (0.0, 0.0))
            fused[hit.id] = (lo + value - slack, hi + value + slack)
    if kind == "rrf":
        return {i: _widen((v, v)) for i, v in fused.items()}
    return {i: _widen(v) for i, v in fused.items()}


@SETTINGS
@given(exact=st.booleans(), data=st.data())
def test_fusion_matches_reference(exact, data):
    b = built(data.draw(history(exact), label="history"))
    try:
        for _ in range(3):
            kind = data.draw(st.sampled_from(["rrf", "rrf_k", "dbsf"]))
            prefetches = []
            for _ in range(2):
                name = data.draw(USING)
                # raw vectors only: ids named by a prefetch are excluded from the whole query
                query = query_part(data, b, name, exact, id_ok=False)
                if kind == "dbsf" and name not in LARGER_BETTER and (
                    "nearest" in query or query.get("recommend", {}).get("strategy") == "average_vector"
                ):
                    query = {"context": [{"positive": data.draw(raw_vector(name, exact)),
                                          "negative": data.draw(raw_vector(name, exact))}]}
                prefetch = {"query": query, "using": name, "limit": data.draw(st.integers(1, 8))}
                if data.draw(st.booleans()):
                    prefetch["filter"] = color_filter(data)
                prefetches.append(prefetch)
            root = {"prefetch": prefetches, "limit": data.draw(st.integers(1, 10))}
            k = 2
            if kind == "rrf_k":
                k = data.draw(st.integers(1, 5))
                root["query"] = {"rrf": {"k": k}}
            else:
                root["query"] = {"fusion": "rrf" if kind == "rrf" else "dbsf"}
            if data.draw(st.booleans()):
                root["filter"] = color_filter(data)
            offset = data.draw(st.integers(0, 3))
            if offset:
                root["offset"] = offset
            # The prefetches' own results: each checked against the reference, then fused here.
            sources = []
            for prefetch in prefetches:
                alone = dict(prefetch, limit=prefetch["limit"] + offset)
                conditions = [c for f in (root.get("filter"), prefetch.get("filter")) if f for c in f["must"]]
                if conditions:
                    alone["filter"] = {"must": conditions}
                hits = b.engine.query(alone)
                reference, ascending = reference_for_filters(b.model, alone)
                assert_ranked(hits, reference, ascending=ascending, limit=alone["limit"], label=f"prefetch {alone!r}")
                sources.append(hits)
            expected = fusion_reference("rrf" if kind != "dbsf" else "dbsf", sources, k)
            threshold = threshold_for(data, expected, False)
            if threshold is not None:
                root["score_threshold"] = threshold
            hits = b.engine.query(root)
            assert_ranked(hits, expected, ascending=False, limit=root["limit"], offset=offset, threshold=threshold,
                          label=f"{root!r}\n sources={[[(h.id, h.score) for h in s] for s in sources]}")
    finally:
        dispose(b)


def reference_for_filters(model: Model, request: dict) -> tuple[dict, bool]:
    """`reference_for` with a filter of several `must` color matches (all must hold)."""
    conditions = (request.get("filter") or {}).get("must") or []
    colors = {c["match"]["value"] for c in conditions}
    if len(colors) > 1:
        return {}, False
    single = dict(request)
    if colors:
        single["filter"] = {"must": [{"key": "color", "match": {"value": colors.pop()}}]}
    else:
        single.pop("filter", None)
    return reference_for(model, single)


# -- specific semantics ------------------------------------------------------------------------


def _small(points: list[dict]) -> Built:
    return built([{"upsert": points}])


def test_euclid_nearest_threshold_is_an_upper_bound_on_the_distance():
    b = _small([{"id": i, "vector": {"euc32": [float(i), 0, 0, 0]}} for i in range(5)])
    try:
        hits = b.engine.query({"query": {"nearest": [0.0, 0, 0, 0]}, "using": "euc32", "limit": 10, "score_threshold": 2.0})
        assert [(h.id, h.score) for h in hits] == [(0, 0.0), (1, 1.0), (2, 2.0)]
        hits = b.engine.query({"query": {"nearest": [0.0, 0, 0, 0]}, "using": "man32", "limit": 10})
        assert hits == []  # no point has that vector
        hits = b.engine.query({"query": {"nearest": 0}, "using": "euc32", "limit": 2, "offset": 1})
        assert [(h.id, h.score) for h in hits] == [(2, 2.0), (3, 3.0)]  # 0 itself is excluded
    finally:
        dispose(b)


def test_idf_counts_only_live_points_with_the_vector():
    b = _small([
        {"id": 1, "vector": {"spidf": {"indices": [1], "values": [1.0]}}},
        {"id": 2, "vector": {"spidf": {"indices": [1, 2], "values": [1.0, 1.0]}}},
        {"id": 3, "vector": {"spidf": {"indices": [2], "values": [1.0]}}},
        {"id": 4, "vector": {"sp": {"indices": [1], "values": [1.0]}}},  # another vector: not a document
    ])
    try:
        b.run([{"delete": [3]}])
        hits = b.engine.query({"query": {"nearest": {"indices": [1], "values": [2.0]}}, "using": "spidf", "limit": 5})
        # N = 2 (points 1, 2), n(1) = 2: idf = ln(0.5 / 2.5 + 1)
        idf = math.log((2 - 2 + 0.5) / (2 + 0.5) + 1)
        assert [h.id for h in hits] in ([1, 2], [2, 1])
        assert [h.score for h in hits] == pytest.approx([2 * idf] * 2, rel=1e-6)
    finally:
        dispose(b)


def test_idf_does_not_count_empty_sparse_vectors():
    """Qdrant does not index empty sparse vectors (SparseVectorIndex::update_vector skips
    them; InvertedIndexRam::vector_count counts indexed vectors): they are no IDF documents."""
    # A {1: 1.0}, B {} (empty), C {2: 1.0}; nearest {1: 1.0} on an idf vector.
    # Qdrant: N = 2, n(1) = 1 -> idf = ln(1.5 / 1.5 + 1) = ln 2 = 0.6931 = A's score.
    # Counting B too would give N = 3 -> ln(2.5 / 1.5 + 1) = 0.9808.
    b = _small([
        {"id": 1, "vector": {"spidf": {"indices": [1], "values": [1.0]}}},
        {"id": 2, "vector": {"spidf": {"indices": [], "values": []}}},
        {"id": 3, "vector": {"spidf": {"indices": [2], "values": [1.0]}}},
    ])
    try:
        hits = b.engine.query({"query": {"nearest": {"indices": [1], "values": [1.0]}}, "using": "spidf", "limit": 5})
        assert [(h.id, h.score) for h in hits] == [(1, pytest.approx(math.log(2.0), rel=1e-6))]
    finally:
        dispose(b)


def test_float16_queries_are_rounded_to_float16():
    """Qdrant converts query vectors to the storage element type before scoring
    (MetricQueryScorer::new: TElement::slice_from_float_cow(preprocessed query))."""
    # A Dot float16 vector [1, 0, 0, 0]; query [1.0001, 0, 0, 0]: f16(1.0001) = 1.0, so
    # Qdrant reports 1.0 (an f32 query would score 1.0001).
    b = _small([{"id": 1, "vector": {"dot16": [1.0, 0, 0, 0]}}])
    try:
        hits = b.engine.query({"query": {"nearest": [1.0001, 0, 0, 0]}, "using": "dot16", "limit": 1})
        assert [(h.id, h.score) for h in hits] == [(1, 1.0)]
    finally:
        dispose(b)


def test_cosine_leaves_tiny_vectors_unnormalised():
    """Qdrant's cosine_preprocess stores a Cosine vector whose f32 squared length is below
    f32::EPSILON as given (not scaled to unit length)."""
    # Point 1 [1e-4, 0, 0, 0] (squared length 1e-8 < 1.19e-7), point 2 [0.5, 0.5, 0, 0];
    # nearest [1, 0, 0, 0]: [(2, 0.70710677), (1, 0.0001)] (normalising point 1 would
    # rank it first with 1.0).
    b = _small([{"id": 1, "vector": {"cos32": [1e-4, 0, 0, 0]}}, {"id": 2, "vector": {"cos32": [0.5, 0.5, 0, 0]}}])
    try:
        hits = b.engine.query({"query": {"nearest": [1.0, 0, 0, 0]}, "using": "cos32", "limit": 5})
        assert [h.id for h in hits] == [2, 1]
        assert [h.score for h in hits] == pytest.approx([math.sqrt(0.5), 1e-4], rel=1e-6)
    finally:
        dispose(b)
