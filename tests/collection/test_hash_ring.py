"""Qdrant's point id -> shard routing (pydrant/collection/hash_ring.py).

Three kinds of check:

- SipHash-2-4 itself: the 64 reference vectors of the SipHash paper (key 00..0f, messages
  00, 00 01, ... of length 0..63), for the Numba kernel and for the pure-Python reference
  below, which the kernels are then compared with on random ids (hypothesis).
- The ring's properties: balance, and stability (adding a shard moves ids only to it).
- `PREDICTED`: shard assignments computed from the crates' source (hashring 0.3.x,
  siphasher, Qdrant's ExtendedPointId hashing), **predicted from the crates' source, not
  yet confirmed against a running Qdrant**. `tools/ring_check.py` checks them against a
  Qdrant 1.15.5 through per-shard point counts; once it has been run, this docstring and
  docs/design/local-shards.md (step S0) say so. If Qdrant disagrees, the table is wrong, not
  merely the code.
"""

from __future__ import annotations

import bisect
import struct
import uuid

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pydrant.collection.hash_ring import (
    DEFAULT_SCALE,
    HashRing,
    hash_int_ids,
    hash_uuids,
    siphash24,
    uuid_bytes,
)

# -- pure-Python reference --------------------------------------------------------------------

_M = (1 << 64) - 1


def _rotl(x: int, b: int) -> int:
    return ((x << b) | (x >> (64 - b))) & _M


def ref_siphash24(data: bytes, k0: int = 0, k1: int = 0) -> int:
    """SipHash-2-4 straight from the paper (Aumasson & Bernstein, 2012)."""
    v = [k0 ^ 0x736F6D6570736575, k1 ^ 0x646F72616E646F6D, k0 ^ 0x6C7967656E657261, k1 ^ 0x7465646279746573]

    def rnd():
        v[0] = (v[0] + v[1]) & _M
        v[1] = _rotl(v[1], 13) ^ v[0]
        v[0] = _rotl(v[0], 32)
        v[2] = (v[2] + v[3]) & _M
        v[3] = _rotl(v[3], 16) ^ v[2]
        v[0] = (v[0] + v[3]) & _M
        v[3] = _rotl(v[3], 21) ^ v[0]
        v[2] = (v[2] + v[1]) & _M
        v[1] = _rotl(v[1], 17) ^ v[2]
        v[2] = _rotl(v[2], 32)

    whole = len(data) - len(data) % 8
    last = ((len(data) & 0xFF) << 56) | int.from_bytes(data[whole:], "little")
    for m in [int.from_bytes(data[i : i + 8], "little") for i in range(0, whole, 8)] + [last]:
        v[3] ^= m
        rnd()
        rnd()
        v[0] ^= m
    v[2] ^= 0xFF
    for _ in range(4):
        rnd()
    return v[0] ^ v[1] ^ v[2] ^ v[3]


def ref_point_bytes(point_id: int | str) -> bytes:
    """What Rust's `Hash` for ExtendedPointId writes, concatenated (little-endian machine)."""
    if isinstance(point_id, str):
        return struct.pack("<QQ", 1, 16) + uuid.UUID(point_id).bytes
    return struct.pack("<QQ", 0, point_id)


def ref_ring(shards: list[int], scale: int = DEFAULT_SCALE) -> list[tuple[int, int]]:
    nodes = [(ref_siphash24(struct.pack("<II", s, i)), s) for s in shards for i in range(scale)]
    return sorted(nodes, key=lambda node: node[0])  # stable, as Rust's Vec::sort


def ref_shard_of(ring: list[tuple[int, int]], point_id: int | str) -> int:
    key = ref_siphash24(ref_point_bytes(point_id))
    at = bisect.bisect_left([h for h, _ in ring], key)
    return ring[at % len(ring)][1]


# -- SipHash reference vectors ------------------------------------------------------------------

# SipHash-2-4 with key 00 01 .. 0f of the messages b"", 00, 00 01, ..., 00 .. 3e: the
# reference implementation's vectors_sip64, each the 8 output bytes (the u64, little-endian).
VECTORS_SIP64 = """
310e0edd47db6f72 fd67dc93c539f874 5a4fa9d909806c0d 2d7efbd796666785
b7877127e09427cf 8da699cd64557618 cee3fe586e46c9cb 37d1018bf50002ab
6224939a79f5f593 b0e4a90bdf82009e f3b9dd94c5bb5d7a a7ad6b22462fb3f4
fbe50e86bc8f1e75 903d84c02756ea14 eef27a8e90ca23f7 e545be4961ca29a1
db9bc2577fcc2a3f 9447be2cf5e99a69 9cd38d96f0b3c14b bd6179a71dc96dbb
98eea21af25cd6be c7673b2eb0cbf2d0 883ea3e395675393 c8ce5ccd8c030ca8
94af49f6c650adb8 eab8858ade92e1bc f315bb5bb835d817 adcf6b0763612e2f
a5c91da7acaa4dde 716595876650a2a6 28ef495c53a387ad 42c341d8fa92d832
ce7cf2722f512771 e37859f94623f3a7 381205bb1ab0e012 ae97a10fd434e015
b4a31508beff4d31 81396229f0907902 4d0cf49ee5d4dcca 5c73336a76d8bf9a
d0a704536ba93e0e 925958fcd6420cad a915c29bc8067318 952b79f3bc0aa6d4
f21df2e41d4535f9 87577519048f53a9 10a56cf5dfcd9adb eb75095ccd986cd0
51a9cb9ecba312e6 96afadfc2ce666c7 72fe52975a4364ee 5a1645b276d592a1
b274cb8ebf87870a 6f9bb4203de7b381 eaecb2a30b22a87f 9924a43cc1315724
bd838d3aafbf8db7 0b1a2a3265d51aea 135079a3231ce660 932b2846e4d70666
e1915f5cb1eca46c f325965ca16d629f 575ff28e60381be5 724506eb4c328a95
""".split()
PAPER_KEY = bytes(range(16))


def test_reference_vectors_are_all_there():
    assert len(VECTORS_SIP64) == 64
    assert int.from_bytes(bytes.fromhex(VECTORS_SIP64[0]), "little") == 0x726FDB47DD0E0E31  # paper, empty
    assert int.from_bytes(bytes.fromhex(VECTORS_SIP64[15]), "little") == 0xA129CA6149BE45E5  # paper, 15 bytes


@pytest.mark.parametrize("length", range(64))
def test_siphash_reference_vectors(length):
    expected = int.from_bytes(bytes.fromhex(VECTORS_SIP64[length]), "little")
    message = bytes(range(length))
    k0 = int.from_bytes(PAPER_KEY[:8], "little")
    k1 = int.from_bytes(PAPER_KEY[8:], "little")
    assert siphash24(message, PAPER_KEY) == expected
    assert ref_siphash24(message, k0, k1) == expected


def test_siphash_key_must_be_16_bytes():
    with pytest.raises(ValueError):
        siphash24(b"", b"short")


# -- the kernels against the reference --------------------------------------------------------

u64s = st.integers(min_value=0, max_value=(1 << 64) - 1)


@settings(max_examples=50, deadline=None)
@given(st.lists(u64s, max_size=40))
def test_int_kernel_matches_reference(ids):
    hashes = hash_int_ids(np.array(ids, dtype=np.uint64))
    assert [int(h) for h in hashes] == [ref_siphash24(struct.pack("<QQ", 0, i)) for i in ids]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.binary(min_size=16, max_size=16), max_size=40))
def test_uuid_kernel_matches_reference(raw):
    arr = np.frombuffer(b"".join(raw), dtype=np.uint8).reshape(-1, 16)
    hashes = hash_uuids(arr)
    assert [int(h) for h in hashes] == [ref_siphash24(struct.pack("<QQ", 1, 16) + b) for b in raw]


@settings(max_examples=30, deadline=None)
@given(
    shards=st.lists(st.integers(0, (1 << 32) - 1), min_size=1, max_size=5, unique=True),
    scale=st.integers(1, 20),
    ids=st.lists(st.one_of(u64s, st.uuids().map(str)), max_size=30),
)
def test_ring_matches_reference(shards, scale, ids):
    ring = HashRing(shards, scale=scale)
    reference = ref_ring(shards, scale)
    hashes, owners = ring.nodes
    assert [int(h) for h in hashes] == [h for h, _ in reference]
    assert [int(s) for s in owners] == [s for _, s in reference]
    assert [int(s) for s in ring.shard_of_points(ids)] == [ref_shard_of(reference, p) for p in ids]


def test_kernels_hash_the_streamed_bytes():
    """The id kernels equal SipHash of the bytes Rust's Hash writes, through the generic kernel."""
    for point_id in (0, 1, 2**63, 2**64 - 1, "550e8400-e29b-41d4-a716-446655440000", str(uuid.UUID(int=0))):
        expected = siphash24(ref_point_bytes(point_id))
        if isinstance(point_id, str):
            assert int(hash_uuids(uuid_bytes([point_id]))[0]) == expected
        else:
            assert int(hash_int_ids(np.array([point_id], dtype=np.uint64))[0]) == expected


def test_empty_inputs():
    ring = HashRing([0, 1])
    assert ring.shard_of_ids(np.array([], dtype=np.uint64)).shape == (0,)
    assert ring.shard_of_uuids(np.zeros((0, 16), np.uint8)).shape == (0,)
    assert ring.shard_of_points([]).shape == (0,)


def test_lookup_wraps_and_ties():
    ring = HashRing([0, 1, 2])
    hashes, owners = ring.nodes
    # past the last node: the first node; exactly a node's hash: that node.
    probe = np.array([int(hashes[-1]) + 1, int(hashes[0]) - 1, int(hashes[5]), int(hashes[5]) + 1], dtype=np.uint64)
    assert list(ring.shard_of_hashes(probe)) == [owners[0], owners[0], owners[5], owners[6]]


def test_mixed_points_and_spellings():
    ring = HashRing(range(3))
    u = "550e8400-e29b-41d4-a716-446655440000"
    mixed = [5, u, 9, u.upper(), "{" + u + "}", u.replace("-", "")]
    got = ring.shard_of_points(mixed)
    assert got.dtype == np.uint32
    assert list(got) == [ring.shard_of(5), ring.shard_of(u), ring.shard_of(9)] + [ring.shard_of(u)] * 3
    assert list(ring.shard_of_uuids(uuid_bytes([u, uuid.UUID(u)]))) == [ring.shard_of(u)] * 2


def test_bad_rings():
    with pytest.raises(ValueError):
        HashRing([])
    with pytest.raises(ValueError):
        HashRing([1, 1])
    with pytest.raises(ValueError):
        HashRing([1 << 32])
    with pytest.raises(ValueError):
        HashRing([0], scale=0)


# -- predicted assignments (regression table) ---------------------------------------------------

UUID_EXAMPLE = "550e8400-e29b-41d4-a716-446655440000"  # the id in Qdrant's OpenAPI examples

# shards -> (shard of ids 0..11, shard of UUID_EXAMPLE, points per shard for ids 0..99,999).
# PREDICTED FROM THE CRATES' SOURCE, NOT YET CONFIRMED AGAINST A RUNNING QDRANT
# (docs/design/local-shards.md §1; confirm with tools/ring_check.py).
PREDICTED = {
    2: ([0, 0, 1, 0, 0, 0, 1, 0, 0, 1, 1, 0], 1, [52_729, 47_271]),
    3: ([2, 2, 2, 2, 2, 0, 2, 2, 0, 1, 1, 2], 1, [31_070, 35_865, 33_065]),
}


@pytest.mark.parametrize("shards", sorted(PREDICTED))
def test_predicted_assignments(shards):
    first, of_uuid, split = PREDICTED[shards]
    ring = HashRing(range(shards))
    assert list(ring.shard_of_ids(np.arange(12))) == first
    assert ring.shard_of(UUID_EXAMPLE) == of_uuid
    counts = np.bincount(ring.shard_of_ids(np.arange(100_000)), minlength=shards)
    assert list(counts) == split
    reference = ref_ring(list(range(shards)))
    assert [ref_shard_of(reference, i) for i in range(12)] == first
    assert ref_shard_of(reference, UUID_EXAMPLE) == of_uuid


def test_one_shard_takes_everything():
    ring = HashRing([7])
    assert set(ring.shard_of_ids(np.arange(1000)).tolist()) == {7}


# -- properties ------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [2, 3, 4, 5, 8])
def test_balance(n):
    """Each of n shards gets roughly 1/n of the ids (100 virtual nodes each: within ±30%)."""
    ring = HashRing(range(n))
    ids = np.arange(200_000, dtype=np.uint64)
    rng = np.random.default_rng(n)
    uuids = rng.integers(0, 256, size=(50_000, 16), dtype=np.uint8)
    for shards in (ring.shard_of_ids(ids), ring.shard_of_uuids(uuids)):
        share = np.bincount(shards, minlength=n) / shards.shape[0]
        assert np.all(np.abs(share * n - 1) < 0.3), share


@pytest.mark.parametrize("n", [1, 2, 3, 5, 7])
def test_adding_a_shard_moves_ids_only_to_it(n):
    before = HashRing(range(n))
    after = HashRing(range(n + 1))
    ids = np.arange(100_000, dtype=np.uint64)
    old, new = before.shard_of_ids(ids), after.shard_of_ids(ids)
    moved = old != new
    assert np.all(new[moved] == n)
    assert abs(moved.mean() * (n + 1) - 1) < 0.3  # about 1/(n+1) of the ids move
    # the order shards are added in does not matter (it could only for equal node hashes)
    assert np.array_equal(HashRing(reversed(range(n + 1))).shard_of_ids(ids), new)


def test_shard_ids_need_not_be_0_to_n():
    """Custom sharding: a key's shards are max+1.. (e.g. 1..3); the ring is over those ids."""
    ring = HashRing([1, 2, 3])
    shards = ring.shard_of_ids(np.arange(10_000))
    assert set(shards.tolist()) == {1, 2, 3}
    reference = ref_ring([1, 2, 3])
    assert [int(s) for s in shards[:50]] == [ref_shard_of(reference, i) for i in range(50)]
