"""Point ids: validation, canonical form, and the order Qdrant lists them in.

A point id is an unsigned 64-bit integer or a UUID. Qdrant orders every integer id before
every UUID, and UUIDs by their 128-bit value (not by their text). Three views of that order
agree, and tests check that they do:

- `encode_id(id)`: bytes that sort in that order (RocksDB keys, on-disk indexes);
  `b"\\x00" + u64 big-endian` for integers, `b"\\x01" + the UUID's 16 bytes` for UUIDs.
- `id_sort_key(id)`: one Python int in that order (in-memory sorted lists, `heapq.merge`);
  the integer itself, or `2**64 + uuid.int` for a UUID.
- the canonical id (`normalize_id`): an `int`, or a lowercase hyphenated UUID string.
"""

from __future__ import annotations

import numbers
import uuid

from pydrant.errors import BadInput
from pydrant.segments.types import PointId

U64_LIMIT = 1 << 64  # integer ids are in [0, U64_LIMIT)
UUID_KEY_BASE = U64_LIMIT  # id_sort_key of a UUID is UUID_KEY_BASE + its 128-bit value

_INT_TAG = b"\x00"
_UUID_TAG = b"\x01"
_INT_KEY_LEN = 9
_UUID_KEY_LEN = 17


def normalize_id(value) -> PointId:
    """The canonical form of a point id, or BadInput.

    Integers must lie in [0, 2**64); booleans are refused although Python counts them as
    integers (JSON `true` is not an id). Strings must be a UUID in any spelling
    `uuid.UUID` accepts (hyphenated or not, braces, `urn:uuid:`, any case); the result
    is the lowercase hyphenated form, so one point never has two spellings.
    """
    if type(value) is int:  # the common case, without the slow ABC check below
        if 0 <= value < U64_LIMIT:
            return value
    elif isinstance(value, numbers.Integral) and not isinstance(value, bool):
        number = int(value)
        if 0 <= number < U64_LIMIT:
            return number
    elif isinstance(value, str):
        try:
            return str(uuid.UUID(value))
        except ValueError:
            pass
    raise BadInput(f"Wrong input: point id {value!r} is not valid: a point id must be an unsigned integer or UUID")


def id_sort_key(point_id: PointId) -> int:
    """One int per id, ordered as Qdrant orders ids: integers first, then UUIDs by value.

    Accepts canonical ids; a UUID string in another spelling gives the same key.
    """
    if isinstance(point_id, str):
        return UUID_KEY_BASE + uuid.UUID(point_id).int
    return point_id


def id_from_sort_key(key: int) -> PointId:
    """The canonical id whose `id_sort_key` is `key`."""
    if key < UUID_KEY_BASE:
        return key
    return str(uuid.UUID(int=key - UUID_KEY_BASE))


def encode_id(point_id: PointId) -> bytes:
    """Order-preserving bytes for an id: comparing encodings compares ids in Qdrant order."""
    if isinstance(point_id, str):
        return _UUID_TAG + uuid.UUID(point_id).bytes
    return _INT_TAG + point_id.to_bytes(8, "big")


def decode_id(data: bytes) -> PointId:
    """The canonical id `encode_id` produced `data` from; ValueError if it is not one."""
    if len(data) == _INT_KEY_LEN and data[:1] == _INT_TAG:
        return int.from_bytes(data[1:], "big")
    if len(data) == _UUID_KEY_LEN and data[:1] == _UUID_TAG:
        return str(uuid.UUID(bytes=data[1:]))
    raise ValueError(f"not an encoded point id: {data!r}")
