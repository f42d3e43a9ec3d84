"""CBOR encoding of WAL values, with numpy arrays as RFC 8746 typed arrays.

Operation records are plain Python values (dicts, lists, str, int, float, bool, None) that
may hold numpy arrays: dense vectors (float32, float16, uint8, ...) and 2-D multivectors.
cbor2 encodes the plain values itself; arrays go through two hooks:

- a 1-D array becomes a typed array: tag 64..86 around the raw little-endian bytes
  (RFC 8746 section 2.1); the tag number says the element type;
- any other shape becomes tag 40, "multi-dimensional array, row-major order"
  (RFC 8746 section 3.1), around `[[dim, ...], typed array]`.

Decoding gives back an ndarray of the same dtype and shape (a writable copy), so a record
reads back as exactly what was logged. Arrays are always written little-endian; big-endian
tags are still decoded (into native byte order) because other CBOR writers may use them.
numpy scalars (np.float32(1.5), np.int64(3), np.bool_) are stored as the plain Python
number they hold: a scalar's dtype is not worth a tag, and callers compare numbers.

cbor2 6.x calls `tag_hook(tag, immutable)`; 5.x called `tag_hook(decoder, tag)`.
`_tag_hook` accepts both because pyproject allows cbor2 >= 5.6.
"""

from __future__ import annotations

import math

import cbor2
import numpy as np

# RFC 8746 section 2.1: tag = 0b010_f_s_e_ll. f: float, s: signed, e: little-endian,
# ll: element size. Only little-endian tags are written (x86 and ARM are little-endian,
# so encoding is a plain memory copy).
TYPED_ARRAY_TAG_BY_DTYPE = {
    "|u1": 64,
    "<u2": 69,
    "<u4": 70,
    "<u8": 71,
    "|i1": 72,
    "<i2": 77,
    "<i4": 78,
    "<i8": 79,
    "<f2": 84,
    "<f4": 85,
    "<f8": 86,
}

# Every typed-array tag numpy can represent, for reading. 68 is "uint8, clamped
# arithmetic" (a JavaScript notion; the bytes are plain uint8). 76 is reserved, and 83/87
# (128-bit floats) have no portable numpy dtype: those stay undecodable.
DTYPE_BY_TYPED_ARRAY_TAG = {
    64: "|u1",
    65: ">u2",
    66: ">u4",
    67: ">u8",
    68: "|u1",
    69: "<u2",
    70: "<u4",
    71: "<u8",
    72: "|i1",
    73: ">i2",
    74: ">i4",
    75: ">i8",
    77: "<i2",
    78: "<i4",
    79: "<i8",
    80: ">f2",
    81: ">f4",
    82: ">f8",
    84: "<f2",
    85: "<f4",
    86: "<f8",
}

MULTI_DIMENSIONAL_ARRAY_TAG = 40  # RFC 8746 section 3.1, row-major


def encode(value) -> bytes:
    """CBOR bytes of `value`; TypeError if it holds something CBOR cannot carry."""
    try:
        return cbor2.dumps(value, default=_encode_numpy)
    except cbor2.CBOREncodeError as exc:
        raise TypeError(f"cannot encode WAL value: {exc}") from exc


def decode(data: bytes):
    """The value `encode` was given. Raises cbor2.CBORDecodeError on malformed input."""
    return cbor2.loads(data, tag_hook=_tag_hook)


# --- encoding ------------------------------------------------------------------------------


def _encode_numpy(encoder: cbor2.CBOREncoder, value) -> None:
    """cbor2's `default` hook: called only for types cbor2 does not know."""
    if isinstance(value, np.ndarray):
        encoder.encode(array_to_tag(value))
    elif isinstance(value, np.generic):
        encoder.encode(value.item())
    else:
        raise TypeError(f"cannot encode {type(value).__name__} in the WAL")


def array_to_tag(array: np.ndarray) -> cbor2.CBORTag:
    """The RFC 8746 tag for `array`: a typed array, inside tag 40 unless it is 1-D."""
    little_endian = _as_little_endian(array)
    tag = TYPED_ARRAY_TAG_BY_DTYPE.get(little_endian.dtype.str)
    if tag is None:
        raise TypeError(f"cannot encode numpy arrays of dtype {array.dtype} in the WAL")
    typed = cbor2.CBORTag(tag, little_endian.tobytes())  # tobytes(): C order, any strides
    if array.ndim == 1:
        return typed
    return cbor2.CBORTag(MULTI_DIMENSIONAL_ARRAY_TAG, [list(array.shape), typed])


def _as_little_endian(array: np.ndarray) -> np.ndarray:
    if array.dtype.byteorder == ">":
        return array.astype(array.dtype.newbyteorder("<"))
    return array


# --- decoding ------------------------------------------------------------------------------


def _tag_hook(first, second):
    """Turn typed-array and tag-40 tags into ndarrays; other tags stay CBORTag objects."""
    tag = first if isinstance(first, cbor2.CBORTag) else second  # cbor2 6.x vs 5.x order
    if tag.tag in DTYPE_BY_TYPED_ARRAY_TAG:
        return typed_array_from_bytes(tag.tag, tag.value)
    if tag.tag == MULTI_DIMENSIONAL_ARRAY_TAG:
        return multi_dimensional_array(tag.value)
    return tag


def typed_array_from_bytes(tag: int, data) -> np.ndarray:
    if not isinstance(data, bytes):
        raise ValueError(f"typed array tag {tag} holds {type(data).__name__}, not a byte string")
    dtype = np.dtype(DTYPE_BY_TYPED_ARRAY_TAG[tag])
    if len(data) % dtype.itemsize:
        raise ValueError(f"typed array tag {tag}: {len(data)} bytes is not a multiple of {dtype.itemsize}")
    # copy(): frombuffer over immutable bytes is read-only, and readers may modify vectors.
    array = np.frombuffer(data, dtype=dtype).copy()
    if dtype.byteorder == ">":
        array = array.astype(dtype.newbyteorder("="))
    return array


def multi_dimensional_array(value) -> np.ndarray:
    """Tag 40's content `[dims, elements]` as an ndarray of shape `dims`."""
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ValueError("tag 40 must hold [dimensions, elements]")
    dims, elements = value
    if not isinstance(dims, (list, tuple)) or not all(isinstance(d, int) and d >= 0 for d in dims):
        raise ValueError("tag 40 dimensions must be a list of non-negative integers")
    # RFC 8746 also allows a plain CBOR array of numbers as the elements.
    flat = elements if isinstance(elements, np.ndarray) else np.asarray(elements)
    if flat.ndim != 1 or flat.size != math.prod(dims):
        raise ValueError(f"tag 40: {flat.size} elements do not fill dimensions {list(dims)}")
    return flat.reshape(dims)
