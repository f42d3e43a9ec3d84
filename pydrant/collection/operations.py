"""The engine's write operations: what the update worker logs and applies.

An operation is a plain dict with a `type` and the fields below. It is the WAL's record
format (through the CBOR codec, numpy arrays as typed arrays), so it must never depend on
the HTTP wire format. Points are selected by `ids` (normalised point ids) or by `filter`
(Qdrant filter JSON, resolved against the data when the operation is applied — as Qdrant
does, so replaying the log gives the same result).

  upsert            points: [{id, vectors: {name: array | {indices, values}}, payload}]
  delete_points     ids | filter
  set_payload       payload, key?, ids | filter
  overwrite_payload payload, ids | filter
  delete_payload    keys, ids | filter
  clear_payload     ids | filter
  update_vectors    points: [{id, vectors}]
  delete_vectors    vectors: [names], ids | filter
"""

from __future__ import annotations

OPERATION_TYPES = (
    "upsert",
    "delete_points",
    "set_payload",
    "overwrite_payload",
    "delete_payload",
    "clear_payload",
    "update_vectors",
    "delete_vectors",
)


def point_count(operation: dict) -> int | None:
    """How many points an operation names explicitly (None when it selects by filter)."""
    if "points" in operation:
        return len(operation["points"])
    if "ids" in operation:
        return len(operation["ids"])
    return None
