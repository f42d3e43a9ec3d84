"""The WAL's CBOR codec: plain values round-trip as plain Python, numpy arrays as arrays of
the same dtype, shape and bits, written as RFC 8746 typed arrays (tag 40 for N-D)."""

from __future__ import annotations

import cbor2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pydrant.wal import codec

DTYPES = [
    np.float32, np.float16, np.float64, np.uint8, np.int8, np.int16, np.int32, np.int64, np.uint16, np.uint32, np.uint64
]

ARRAYS = st.sampled_from(DTYPES).flatmap(
    lambda dtype: hnp.arrays(dtype, hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=5))
)
SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
VALUES = st.recursive(
    SCALARS | ARRAYS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


def assert_same(expected, actual) -> None:
    """Equal values of the same types; arrays equal bit for bit, with dtype and shape."""
    if isinstance(expected, np.ndarray):
        assert isinstance(actual, np.ndarray)
        assert actual.dtype == expected.dtype and actual.shape == expected.shape
        assert actual.tobytes() == np.ascontiguousarray(expected).tobytes()
    elif isinstance(expected, dict):
        assert type(actual) is dict and list(actual) == list(expected)
        for key in expected:
            assert_same(expected[key], actual[key])
    elif isinstance(expected, list):
        assert type(actual) is list and len(actual) == len(expected)
        for want, got in zip(expected, actual):
            assert_same(want, got)
    else:
        assert type(actual) is type(expected) and actual == expected


@settings(max_examples=150, deadline=None)
@given(VALUES)
def test_any_value_round_trips(value):
    assert_same(value, codec.decode(codec.encode(value)))


@pytest.mark.parametrize(
    "dtype, tag",
    [(np.uint8, 64), (np.int8, 72), (np.uint16, 69), (np.int16, 77), (np.int32, 78), (np.int64, 79),
     (np.float16, 84), (np.float32, 85), (np.float64, 86)],
)
def test_one_dimensional_arrays_use_the_rfc_8746_little_endian_tag(dtype, tag):
    array = np.arange(3, dtype=dtype)
    raw = cbor2.loads(codec.encode(array))  # no hook: the tag as written
    assert raw == cbor2.CBORTag(tag, array.astype(np.dtype(dtype).newbyteorder("<")).tobytes())


def test_a_multivector_is_tag_40_around_a_typed_array():
    multivector = np.arange(6, dtype=np.float32).reshape(2, 3)
    raw = cbor2.loads(codec.encode(multivector))
    assert raw.tag == 40
    dims, elements = raw.value
    assert list(dims) == [2, 3]
    assert elements == cbor2.CBORTag(85, multivector.tobytes())


def test_known_bytes_decode_to_the_array():
    # d8 55 = tag 85 (float32 LE), 48 = 8-byte string: 1.0f and -2.0f
    array = codec.decode(bytes.fromhex("d855480000803f000000c0"))
    assert array.dtype == np.float32 and array.tolist() == [1.0, -2.0]


def test_big_endian_tags_decode_to_native_arrays():
    array = codec.decode(cbor2.dumps(cbor2.CBORTag(81, np.array([1.5, 2.5], dtype=">f4").tobytes())))
    assert array.dtype == np.float32 and array.tolist() == [1.5, 2.5]


def test_decoded_arrays_are_writable_copies():
    array = codec.decode(codec.encode(np.zeros(3, np.float32)))
    array[0] = 1.0
    assert array.tolist() == [1.0, 0.0, 0.0]


def test_non_contiguous_and_big_endian_arrays_keep_their_values():
    strided = np.arange(12, dtype=np.float32).reshape(3, 4).T
    assert_same(np.ascontiguousarray(strided), codec.decode(codec.encode(strided)))
    big = np.array([1, 2, 3], dtype=">i4")
    decoded = codec.decode(codec.encode(big))
    assert decoded.dtype == np.int32 and decoded.tolist() == [1, 2, 3]


def test_numpy_scalars_become_plain_numbers():
    decoded = codec.decode(codec.encode([np.float32(1.5), np.int64(7), np.bool_(True)]))
    assert decoded == [1.5, 7, True]
    assert [type(x) for x in decoded] == [float, int, bool]


@pytest.mark.parametrize("value", [object(), np.array([True, False]), np.array([1 + 2j])])
def test_values_cbor_cannot_carry_raise_type_error(value):
    with pytest.raises(TypeError):
        codec.encode({"v": value})


@pytest.mark.parametrize(
    "bad",
    [
        cbor2.CBORTag(85, b"\x00\x00\x80"),  # 3 bytes are not whole float32s
        cbor2.CBORTag(85, "not bytes"),
        cbor2.CBORTag(40, [[2, 2], cbor2.CBORTag(85, b"\x00" * 4)]),  # 1 element for 2x2
        cbor2.CBORTag(40, "nonsense"),
    ],
)
def test_malformed_arrays_fail_to_decode(bad):
    with pytest.raises(cbor2.CBORDecodeError):
        codec.decode(cbor2.dumps(bad))
