"""Query vectors: from the API's `VectorInput` forms to the scoring kernels' `ScoringQuery`.

A `VectorInput` is a dense list, a multi-vector (list of lists), a sparse {indices,
values}, a point id (whose stored vector is used: from this collection, or from another
one with `lookup_from`), or an inference object (Document/Image/InferenceObject): a
Document for `qdrant/bm25` becomes its query-side sparse vector (collection/bm25.py); other
models are refused, pydrant runs no other embedding model.

Steps, as Qdrant's collection layer takes them: parse every input, fetch the vectors of
referenced ids in one read, check each vector against the searched vector's kind and
size, then prepare it for the metric (normalise for Cosine, IDF weights for sparse
vectors with `modifier: idf`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from collections.abc import Callable

import numpy as np

from pydrant.collection.points import INFERENCE_KEYS, embed_document
from pydrant.collection.routing import NoShards
from pydrant.errors import BadInput, NotFound
from pydrant.segments.ids import normalize_id
from pydrant.segments.scoring import (
    BEST_SCORE,
    CONTEXT,
    DISCOVER,
    NEAREST,
    SUM_SCORES,
    ScoringQuery,
    VectorSpace,
    prepare_dense,
)
from pydrant.segments.types import DEFAULT_VECTOR, SparseVector

@dataclass(frozen=True)
class PointRef:
    """A `VectorInput` that names a point: use its stored vector."""

    id: Any


def parse_vector_input(raw) -> Any:
    """One `VectorInput` as a PointRef, a float32 ndarray (1-d dense, 2-d multi) or a
    SparseVector; BadInput for inference objects and malformed values."""
    if isinstance(raw, bool):
        raise BadInput("Wrong input: a vector input must be a vector or a point id")
    if isinstance(raw, (int, str)):
        return PointRef(normalize_id(raw))
    if isinstance(raw, np.ndarray):
        return raw.astype(np.float32)
    if isinstance(raw, dict):
        if any(key in raw for key in INFERENCE_KEYS) and "model" in raw:
            return _sparse(embed_document(raw, query=True))
        if "indices" in raw and "values" in raw:
            return _sparse(raw)
        raise BadInput("Wrong input: unrecognised vector input object")
    if isinstance(raw, list):
        if raw and isinstance(raw[0], list):
            return _number_array(raw, ndim=2)
        return _number_array(raw, ndim=1)
    raise BadInput("Wrong input: a vector input must be a vector or a point id")


def _number_array(raw: list, ndim: int) -> np.ndarray:
    try:
        array = np.asarray(raw, dtype=np.float32)
    except (TypeError, ValueError):
        raise BadInput("Wrong input: vectors must contain numbers only (rows of equal length)") from None
    if array.ndim != ndim or (ndim == 2 and array.shape[0] == 0):
        raise BadInput("Wrong input: vectors must contain numbers only (rows of equal length)")
    if not np.isfinite(array).all():
        raise BadInput("Wrong input: vector contains NaN or infinite values")
    return array


def _sparse(raw: dict) -> SparseVector:
    indices, values = raw["indices"], raw["values"]
    if len(indices) != len(values):
        raise BadInput("Wrong input: sparse vector indices and values must have the same length")
    idx = np.asarray(indices, dtype=np.int64)
    vals = np.asarray(values, dtype=np.float32)
    if idx.size and (idx.min() < 0 or idx.max() > 0xFFFFFFFF):
        raise BadInput("Wrong input: sparse vector indices must be unsigned 32-bit integers")
    if len(np.unique(idx)) != len(idx):
        raise BadInput("Wrong input: sparse vector indices must be unique")
    order = np.argsort(idx, kind="stable")
    return SparseVector(idx[order].astype(np.uint32), vals[order])


# -- the searched vector --------------------------------------------------------------------


def vector_space(collection, using: str | None) -> VectorSpace:
    """The metric and kind of vector `using` of `collection`; BadInput if it has none."""
    name = using or DEFAULT_VECTOR
    schema = collection.schema
    if name in schema.dense:
        spec = schema.dense[name]
        kind = "multi" if spec.multivector else "dense"
        return VectorSpace(spec.distance, spec.datatype, kind)
    if name in schema.sparse:
        return VectorSpace("Dot", "float32", "sparse")
    raise BadInput(f"Wrong input: Not existing vector name error: {name}")


def check_vector(value, collection, using: str) -> None:
    """BadInput unless `value` fits the collection's vector `using` (kind and size)."""
    name = using or DEFAULT_VECTOR
    schema = collection.schema
    if name in schema.sparse:
        if not isinstance(value, SparseVector):
            raise BadInput(f"Wrong input: Conversion between sparse and regular vectors failed for vector `{name}`")
        return
    spec = schema.dense[name]
    if isinstance(value, SparseVector):
        raise BadInput(f"Wrong input: Conversion between sparse and regular vectors failed for vector `{name}`")
    if spec.multivector and value.ndim == 1:
        value = value.reshape(1, -1)  # a single vector queries a multi-vector as one row
    if not spec.multivector and value.ndim != 1:
        raise BadInput(f"Wrong input: Vector `{name}` is not a multivector: expected a list of numbers")
    size = value.shape[-1]
    if size != spec.size:
        raise BadInput(f"Wrong input: Vector dimension error: expected dim: {spec.size}, got {size}")


# -- resolving referenced points ------------------------------------------------------------


@dataclass
class Lookup:
    """Where point ids in a query take their vectors from."""

    source: Any  # the Collection, or a function giving it (another collection, found when used)
    vector: str  # the vector name read there

    @classmethod
    def of(cls, collection, using: str, lookup_from: dict | None, resolve_collection: Callable):
        """As Qdrant's fetch_vectors.rs: ids are read in every shard of the collection,
        whatever shards the read itself selects (`shard_key`), unless `lookup_from` has a
        `shard_key`: then in that key's shards of the collection it names."""
        if not lookup_from:
            engine = getattr(collection, "engine", None)  # a shard-key view's is the whole collection's
            return cls(engine.collection if engine is not None else collection, using)
        vector = lookup_from.get("vector")
        name = lookup_from["collection"]
        shard_key = lookup_from.get("shard_key")
        return cls(lambda: _lookup_collection(resolve_collection, name, shard_key), using if vector is None else vector)

    @property
    def collection(self):
        """The collection the ids are read in. Another one is looked up only when an id
        needs it, as Qdrant does (a `lookup_from` naming no collection is harmless when
        the query gives vectors)."""
        if callable(self.source):
            self.source = self.source()
        return self.source


def _lookup_collection(resolve_collection: Callable, name: str, shard_key=None):
    """A `lookup_from` collection; a missing one is Qdrant's 404 (fetch_vectors.rs:
    CollectionError::NotFound "Collection {name}", printed "{what} not found"). With a
    shard key: its view limited to that key's shards (400 for a key it does not have)."""
    try:
        collection = resolve_collection(name)
    except NotFound:
        raise NotFound(f"Not found: Collection {name} not found") from None
    if shard_key is None:
        return collection
    if shard_key == []:
        return NoShards(collection)
    return collection.engine_for(shard_key).collection


def fetch_vectors(lookup: Lookup, refs: list[PointRef]) -> dict:
    """id -> stored vector (name `lookup.vector`) of every referenced point; NotFound names
    the first id that does not exist or has no such vector."""
    ids = list(dict.fromkeys(ref.id for ref in refs))
    if not ids:
        return {}
    name = lookup.vector or DEFAULT_VECTOR
    if name not in lookup.collection.schema.names():
        raise BadInput(f"Wrong input: Not existing vector name error: {name}")
    records = lookup.collection.reads.retrieve(ids, False, [name])
    found = {r.id: (r.vectors or {}).get(name) for r in records}
    for point_id in ids:
        if point_id not in found:
            raise NotFound(f"Not found: No point with id {point_id} found")
        if found[point_id] is None:
            raise NotFound(f'Not found: Vector with name "{name}" for point {point_id} not found')
    return found


def collect_refs(inputs) -> list[PointRef]:
    return [value for value in inputs if isinstance(value, PointRef)]


# -- building scoring queries ---------------------------------------------------------------


class QueryBuilder:
    """Turns parsed vector inputs into prepared `ScoringQuery`s for one searched vector."""

    def __init__(self, collection, using: str, lookup: Lookup):
        self.collection = collection
        self.using = using or DEFAULT_VECTOR
        self.space = vector_space(collection, self.using)
        self.lookup = lookup
        self._fetched: dict = {}

    def fetch(self, parsed_inputs: list) -> None:
        self._fetched.update(fetch_vectors(self.lookup, collect_refs(parsed_inputs)))

    def vector(self, parsed) -> Any:
        """The raw (unprepared) vector of an input, checked against the searched vector."""
        value = self._fetched[parsed.id] if isinstance(parsed, PointRef) else parsed
        if isinstance(value, np.ndarray) and value.dtype != np.float32:
            value = value.astype(np.float32)
        check_vector(value, self.collection, self.using)
        if self.space.kind == "multi" and value.ndim == 1:
            value = value.reshape(1, -1)
        return value

    def prepared(self, value) -> Any:
        """A checked raw vector prepared for the metric."""
        if isinstance(value, SparseVector):
            return self._idf_weighted(value)
        return prepare_dense(value, self.space.distance, self.space.datatype)

    def _idf_weighted(self, vector: SparseVector) -> SparseVector:
        spec = self.collection.schema.sparse.get(self.using)
        if spec is None or spec.modifier != "idf" or len(vector.indices) == 0:
            return vector
        total = 0
        counts = np.zeros(len(vector.indices), np.int64)
        for segment in self.collection.segments:
            points, found = segment.sparse_statistics(self.using, vector.indices)
            total += points
            counts += found
        # Qdrant's IDF: ln((N - n + 0.5) / (n + 0.5) + 1), N points with the vector, n of them with the index.
        idf = np.log((total - counts + 0.5) / (counts + 0.5) + 1.0).astype(np.float32)
        return SparseVector(vector.indices, vector.values * idf)

    # The query kinds.

    def nearest(self, parsed) -> ScoringQuery:
        return ScoringQuery(NEAREST, (self.prepared(self.vector(parsed)),))

    def recommend(self, positive: list, negative: list, strategy: str) -> ScoringQuery:
        positives = [self.vector(p) for p in positive]
        negatives = [self.vector(n) for n in negative]
        if strategy == "average_vector" or strategy is None:
            return ScoringQuery(NEAREST, (self.prepared(average_vector(positives, negatives)),))
        if not positives and not negatives:
            raise BadInput("Bad request: At least one positive or negative example is required")
        examples = tuple(self.prepared(v) for v in positives + negatives)
        kind = BEST_SCORE if strategy == "best_score" else SUM_SCORES
        return ScoringQuery(kind, examples, n_positive=len(positives))

    def discover(self, target, pairs: list[tuple]) -> ScoringQuery:
        examples = [self.prepared(self.vector(target))]
        for positive, negative in pairs:
            examples += [self.prepared(self.vector(positive)), self.prepared(self.vector(negative))]
        return ScoringQuery(DISCOVER, tuple(examples))

    def context(self, pairs: list[tuple]) -> ScoringQuery:
        examples = []
        for positive, negative in pairs:
            examples += [self.prepared(self.vector(positive)), self.prepared(self.vector(negative))]
        return ScoringQuery(CONTEXT, tuple(examples))


def average_vector(positives: list, negatives: list):
    """Qdrant's `average_vector` query: avg(pos), or avg(pos) + (avg(pos) - avg(neg))."""
    if not positives:
        raise BadInput("Bad request: Positive vectors should not be empty with `average` strategy")
    if isinstance(positives[0], SparseVector):
        merged = _sparse_average(positives)
        if negatives:
            negative = _sparse_average(negatives)
            merged = _sparse_combine(merged, negative)
        return merged
    if positives[0].ndim == 2:  # multi-vectors: rows concatenated, negative rows negated
        rows = list(positives) + [-n for n in negatives]
        return np.vstack(rows)
    average = np.mean(np.stack(positives), axis=0)
    if negatives:
        average = average + average - np.mean(np.stack(negatives), axis=0)
    return average.astype(np.float32)


def _sparse_average(vectors: list[SparseVector]) -> SparseVector:
    indices = np.concatenate([v.indices for v in vectors])
    values = np.concatenate([v.values for v in vectors])
    unique, inverse = np.unique(indices, return_inverse=True)
    sums = np.bincount(inverse, weights=values, minlength=len(unique)).astype(np.float32)
    return SparseVector(unique.astype(np.uint32), sums / len(vectors))


def _sparse_combine(positive: SparseVector, negative: SparseVector) -> SparseVector:
    """pos + pos - neg over the union of indices (a missing value counts as 0)."""
    unique = np.union1d(positive.indices, negative.indices).astype(np.uint32)
    pos = np.zeros(len(unique), np.float32)
    neg = np.zeros(len(unique), np.float32)
    pos[np.searchsorted(unique, positive.indices)] = positive.values
    neg[np.searchsorted(unique, negative.indices)] = negative.values
    return SparseVector(unique, pos + pos - neg)
