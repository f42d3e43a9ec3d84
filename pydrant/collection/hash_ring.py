"""Qdrant's point id -> shard routing (auto sharding): a consistent-hash ring, bit for bit.

What Qdrant does (docs/design/local-shards.md §1), and what this module reproduces:

- The ring is the `hashring` crate's `HashRing<(ShardId, u32)>` (0.3.x: no transformation
  of the hash since 0.3.0), hashed with `siphasher::sip::SipHasher::new()`: SipHash-2-4
  with keys (0, 0). Each shard adds `scale` (100, `DEFAULT_FAIR_HASH_RING_SCALE`) virtual
  nodes `(shard_id, i)`, `i` in `0..scale`; the ring is the nodes sorted by their 64-bit
  hash (a stable sort, nodes in the order they were added).
- Lookup hashes the point id and takes the first node whose hash is >= the id's hash,
  wrapping to the first node past the end (`binary_search_by`, `Ok(n) | Err(n)`).
- What is hashed is the concatenation of the `Hasher::write*` calls (SipHash is a streaming
  hash; siphasher's `write_u32`/`write_u64`/`write_usize` are `short_write(x.to_le())`,
  the same bytes as `write(&x.to_le_bytes())` on little-endian machines, which is every
  machine Qdrant ships for):
  - virtual node `(shard_id: u32, i: u32)`: tuple `Hash` writes each field: `write_u32`
    twice, 8 bytes: shard id LE, then `i` LE.
  - integer id, `ExtendedPointId::NumId(n)`: the enum discriminant as 8 LE bytes (0), then
    `n` as 8 LE bytes: a 16-byte message.
  - UUID id, `ExtendedPointId::Uuid(u)`: discriminant 1 (8 LE bytes), then the UUID hashed
    as `[u8; 16]` was by `uuid` <= 1.16 (slice hash: the length 16 as a `usize`, 8 LE
    bytes, then the 16 bytes in RFC order): a 32-byte message. `uuid` 1.17 dropped the
    length prefix and Qdrant 1.15.0 shipped with it (UUID routing changed, by accident);
    1.15.1 restored the old layout (qdrant PR #6932, then `StableHash` in PR #6940, which
    writes exactly these bytes by hand). v1.15.5 therefore hashes as here; 1.15.0 does not.

Predicted from the crates' source, not yet confirmed against a running Qdrant:
`tools/ring_check.py` does that through per-shard point counts.

The hashing is vectorised: one Numba kernel per id kind over a numpy array (`hash_int_ids`,
`hash_uuids`), then `numpy.searchsorted` over the ring.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence

import numba
import numpy as np

from pydrant.segments.types import PointId

DEFAULT_SCALE = 100  # Qdrant's DEFAULT_FAIR_HASH_RING_SCALE (FAIR_HASH_RING_SCALE in older copies)

_U64 = np.uint64
_INIT0 = _U64(0x736F6D6570736575)
_INIT1 = _U64(0x646F72616E646F6D)
_INIT2 = _U64(0x6C7967656E657261)
_INIT3 = _U64(0x7465646279746573)
_FF = _U64(0xFF)
_INT_FINAL = _U64(16 << 56)  # message length 16 in the top byte, no tail bytes
_UUID_FINAL = _U64(32 << 56)
_NODE_FINAL = _U64(8 << 56)
_ZERO = _U64(0)
_ONE = _U64(1)
_SIXTEEN = _U64(16)

_jit = numba.njit(cache=True, nogil=True)


# -- SipHash-2-4 kernels ---------------------------------------------------------------------


@_jit
def _rotl(x, b):
    return (x << _U64(b)) | (x >> _U64(64 - b))


@_jit
def _sipround(v0, v1, v2, v3):
    v0 = v0 + v1
    v1 = _rotl(v1, 13)
    v1 ^= v0
    v0 = _rotl(v0, 32)
    v2 = v2 + v3
    v3 = _rotl(v3, 16)
    v3 ^= v2
    v0 = v0 + v3
    v3 = _rotl(v3, 21)
    v3 ^= v0
    v2 = v2 + v1
    v1 = _rotl(v1, 17)
    v1 ^= v2
    v2 = _rotl(v2, 32)
    return v0, v1, v2, v3


@_jit
def _absorb(v0, v1, v2, v3, m):
    """One message word through the two compression rounds (the "2" of SipHash-2-4)."""
    v3 ^= m
    v0, v1, v2, v3 = _sipround(v0, v1, v2, v3)
    v0, v1, v2, v3 = _sipround(v0, v1, v2, v3)
    v0 ^= m
    return v0, v1, v2, v3


@_jit
def _finish(v0, v1, v2, v3, b):
    """The last block `b` (length byte and tail), then the four finalisation rounds."""
    v0, v1, v2, v3 = _absorb(v0, v1, v2, v3, b)
    v2 ^= _FF
    for _ in range(4):
        v0, v1, v2, v3 = _sipround(v0, v1, v2, v3)
    return v0 ^ v1 ^ v2 ^ v3


@_jit
def _siphash24_kernel(data, k0, k1):
    v0 = k0 ^ _INIT0
    v1 = k1 ^ _INIT1
    v2 = k0 ^ _INIT2
    v3 = k1 ^ _INIT3
    n = data.shape[0]
    whole = n - n % 8
    for start in range(0, whole, 8):
        m = _ZERO
        for j in range(8):
            m |= _U64(data[start + j]) << _U64(8 * j)
        v0, v1, v2, v3 = _absorb(v0, v1, v2, v3, m)
    b = _U64(n & 0xFF) << _U64(56)
    for j in range(n - whole):
        b |= _U64(data[whole + j]) << _U64(8 * j)
    return _finish(v0, v1, v2, v3, b)


@_jit
def _hash_int_ids_kernel(ids, out):
    for i in range(ids.shape[0]):
        v0, v1, v2, v3 = _INIT0, _INIT1, _INIT2, _INIT3  # keys (0, 0)
        v0, v1, v2, v3 = _absorb(v0, v1, v2, v3, _ZERO)  # discriminant NumId = 0
        v0, v1, v2, v3 = _absorb(v0, v1, v2, v3, ids[i])
        out[i] = _finish(v0, v1, v2, v3, _INT_FINAL)


@_jit
def _hash_uuids_kernel(uuids, out):
    for i in range(uuids.shape[0]):
        lo = _ZERO
        hi = _ZERO
        for j in range(8):
            lo |= _U64(uuids[i, j]) << _U64(8 * j)
            hi |= _U64(uuids[i, 8 + j]) << _U64(8 * j)
        v0, v1, v2, v3 = _INIT0, _INIT1, _INIT2, _INIT3
        v0, v1, v2, v3 = _absorb(v0, v1, v2, v3, _ONE)  # discriminant Uuid = 1
        v0, v1, v2, v3 = _absorb(v0, v1, v2, v3, _SIXTEEN)  # slice length prefix (uuid <= 1.16)
        v0, v1, v2, v3 = _absorb(v0, v1, v2, v3, lo)
        v0, v1, v2, v3 = _absorb(v0, v1, v2, v3, hi)
        out[i] = _finish(v0, v1, v2, v3, _UUID_FINAL)


@_jit
def _hash_nodes_kernel(shards, scale, out):
    k = 0
    for s in range(shards.shape[0]):
        for i in range(scale):
            word = _U64(shards[s]) | (_U64(i) << _U64(32))  # (u32 shard LE, u32 i LE)
            v0, v1, v2, v3 = _absorb(_INIT0, _INIT1, _INIT2, _INIT3, word)
            out[k] = _finish(v0, v1, v2, v3, _NODE_FINAL)
            k += 1


# -- hashing API -----------------------------------------------------------------------------


def siphash24(data: bytes, key: bytes = bytes(16)) -> int:
    """SipHash-2-4 of `data` under a 16-byte key (k0 and k1 read little-endian, as
    `SipHasher::new_with_key`); the ring uses the zero key."""
    if len(key) != 16:
        raise ValueError("a SipHash key is 16 bytes")
    k0 = _U64(int.from_bytes(key[:8], "little"))
    k1 = _U64(int.from_bytes(key[8:], "little"))
    return int(_siphash24_kernel(np.frombuffer(data, dtype=np.uint8), k0, k1))


def hash_int_ids(ids: np.ndarray) -> np.ndarray:
    """The ring hash (uint64) of each integer point id: SipHash-2-4 of 0u64 LE + id LE."""
    ids = np.ascontiguousarray(ids, dtype=np.uint64)
    if ids.ndim != 1:
        raise ValueError("integer ids must be a 1-d array")
    out = np.empty(ids.shape[0], dtype=np.uint64)
    _hash_int_ids_kernel(ids, out)
    return out


def hash_uuids(uuids: np.ndarray) -> np.ndarray:
    """The ring hash (uint64) of each UUID, given as an (n, 16) uint8 array of the UUIDs'
    bytes in RFC order (`uuid.UUID.bytes`): SipHash-2-4 of 1u64 LE + 16u64 LE + the bytes."""
    uuids = np.ascontiguousarray(uuids, dtype=np.uint8)
    if uuids.ndim != 2 or uuids.shape[1] != 16:
        raise ValueError("UUIDs must be an (n, 16) uint8 array")
    out = np.empty(uuids.shape[0], dtype=np.uint64)
    _hash_uuids_kernel(uuids, out)
    return out


def uuid_bytes(uuids: Iterable[str | uuid.UUID]) -> np.ndarray:
    """(n, 16) uint8 array of UUIDs (strings in any spelling `uuid.UUID` accepts, or UUIDs)."""
    raw = b"".join((u if isinstance(u, uuid.UUID) else uuid.UUID(u)).bytes for u in uuids)
    return np.frombuffer(raw, dtype=np.uint8).reshape(-1, 16)


# -- the ring ---------------------------------------------------------------------------------


class HashRing:
    """Qdrant's fair hash ring over `shard_ids`, `scale` virtual nodes per shard.

    Shard ids are u32; they are added in the order given (which only matters for two
    virtual nodes with the same 64-bit hash, never seen in practice). The ring is immutable:
    a new shard makes a new ring.
    """

    def __init__(self, shard_ids: Iterable[int], scale: int = DEFAULT_SCALE):
        shards = [int(s) for s in shard_ids]
        if not shards:
            raise ValueError("a hash ring needs at least one shard")
        if len(set(shards)) != len(shards):
            raise ValueError(f"duplicate shard ids: {shards}")
        if any(not 0 <= s < 1 << 32 for s in shards):
            raise ValueError("shard ids are u32")
        if not 1 <= scale < 1 << 32:
            raise ValueError("scale must be a positive u32")
        self.shard_ids: tuple[int, ...] = tuple(shards)
        self.scale = scale
        node_shards = np.repeat(np.array(shards, dtype=np.uint32), scale)
        hashes = np.empty(node_shards.shape[0], dtype=np.uint64)
        _hash_nodes_kernel(np.array(shards, dtype=np.uint32), scale, hashes)
        order = np.argsort(hashes, kind="stable")
        self._hashes = hashes[order]
        self._shards = node_shards[order]

    def __repr__(self) -> str:
        return f"HashRing({list(self.shard_ids)}, scale={self.scale})"

    @property
    def nodes(self) -> tuple[np.ndarray, np.ndarray]:
        """The ring: sorted node hashes (uint64) and each node's shard id (uint32)."""
        return self._hashes, self._shards

    def shard_of_hashes(self, hashes: np.ndarray) -> np.ndarray:
        """Shard id (uint32) for each point-id hash: the first node at or after it, wrapping."""
        at = np.searchsorted(self._hashes, np.asarray(hashes, dtype=np.uint64), side="left")
        at[at == self._hashes.shape[0]] = 0
        return self._shards[at]

    def shard_of_ids(self, int_ids: np.ndarray) -> np.ndarray:
        """Shard id (uint32) of each integer point id (a uint64 array, or anything numpy
        makes one of)."""
        return self.shard_of_hashes(hash_int_ids(int_ids))

    def shard_of_uuids(self, uuids: np.ndarray) -> np.ndarray:
        """Shard id (uint32) of each UUID point id, given as an (n, 16) uint8 array."""
        return self.shard_of_hashes(hash_uuids(uuids))

    def shard_of_points(self, point_ids: Sequence[PointId]) -> np.ndarray:
        """Shard id (uint32) of each pydrant point id (`int`, or UUID `str` in any spelling),
        in the order given."""
        n = len(point_ids)
        out = np.empty(n, dtype=np.uint32)
        int_at = [i for i, p in enumerate(point_ids) if not isinstance(p, str)]
        if len(int_at) == n:
            return self.shard_of_ids(np.array(point_ids, dtype=np.uint64))
        uuid_at = [i for i, p in enumerate(point_ids) if isinstance(p, str)]
        if int_at:
            ints = np.array([point_ids[i] for i in int_at], dtype=np.uint64)
            out[int_at] = self.shard_of_ids(ints)
        out[uuid_at] = self.shard_of_uuids(uuid_bytes(str(point_ids[i]) for i in uuid_at))
        return out

    def shard_of(self, point_id: PointId) -> int:
        """Shard id of one point id."""
        return int(self.shard_of_points([point_id])[0])
