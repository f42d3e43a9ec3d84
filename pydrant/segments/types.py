"""Plain engine types for points and vector specs.

These are what `collection/` hands to segments and what segments return: no pydantic, no
HTTP. Vectors are numpy arrays; the unnamed (default) vector is stored under the name "".
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# An external point id: an unsigned 64-bit integer, or a UUID in canonical form
# (lowercase, hyphenated, as `str(uuid.UUID(...))` gives). Qdrant orders every integer id
# before every UUID, and UUIDs by their 128-bit value; `ids.id_sort_key` encodes that.
PointId = int | str

DEFAULT_VECTOR = ""  # the name Qdrant uses internally for the single unnamed vector

DATATYPES = {"float32": np.float32, "float16": np.float16, "uint8": np.uint8}


@dataclass(slots=True)
class SparseVector:
    """A sparse vector: `indices` uint32 sorted ascending and unique, `values` float32."""

    indices: np.ndarray
    values: np.ndarray

    def __eq__(self, other):
        return (
            isinstance(other, SparseVector)
            and np.array_equal(self.indices, other.indices)
            and np.array_equal(self.values, other.values)
        )


# A dense vector is a 1-D array, a multi-vector a 2-D array (rows are sub-vectors),
# in the datatype of its spec.
VectorValue = np.ndarray | SparseVector


@dataclass(frozen=True, slots=True)
class DenseVectorSpec:
    size: int
    distance: str  # one of DISTANCES
    datatype: str = "float32"  # one of DATATYPES
    multivector: bool = False  # rows of `size` values compared with max_sim
    on_disk: bool = False

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(DATATYPES[self.datatype])


@dataclass(frozen=True, slots=True)
class SparseVectorSpec:
    modifier: str | None = None  # None or "idf"
    on_disk: bool = False


@dataclass(slots=True)
class VectorSchema:
    """Which named vectors a collection has. Every point may carry any subset of them."""

    dense: dict[str, DenseVectorSpec] = field(default_factory=dict)
    sparse: dict[str, SparseVectorSpec] = field(default_factory=dict)

    def names(self) -> list[str]:
        return [*self.dense, *self.sparse]


@dataclass(slots=True)
class PointInput:
    """One point to upsert: its id, the vectors it carries (name -> value) and its payload."""

    id: PointId
    vectors: dict[str, VectorValue]
    payload: dict | None = None


@dataclass(slots=True)
class Record:
    """A stored point as read back. `vectors`/`payload` are None when not requested."""

    id: PointId
    version: int
    payload: dict | None = None
    vectors: dict[str, VectorValue] | None = None
    order_value: int | float | None = None  # set by scrolls ordered by a payload field
    shard_key: int | str | None = None  # set for points of a custom-sharded collection


class PointContext:
    """What a compiled filter sees of one point while a segment scans it.

    Segments pass an object with this shape to `Predicate.matches`; `payload` may be
    loaded lazily (a filter on `has_id` alone never needs it).
    """

    __slots__ = ("id", "_payload", "_load_payload", "_has_vector")

    def __init__(self, point_id: PointId, load_payload, has_vector):
        self.id = point_id
        self._payload: dict | None = None
        self._load_payload = load_payload  # () -> dict
        self._has_vector = has_vector  # (name: str) -> bool

    @property
    def payload(self) -> dict:
        payload = self._payload
        if payload is None:
            payload = self._payload = self._load_payload() or {}
        return payload

    def has_vector(self, name: str) -> bool:
        return self._has_vector(name)
