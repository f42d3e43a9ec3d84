"""Record framing: how one `(op_num, value)` pair is laid out in a WAL file.

    [length u32 LE][crc32c u32 LE][CBOR bytes of [op_num, value]]

`length` counts the CBOR bytes only; the CRC32C (Castagnoli) covers the same bytes. A
length of 0 marks the end of the data: files are preallocated with zeros, so the first
all-zero header after the last record is where the next append goes.

This module only works on bytes in memory. Deciding what a bad record means (a torn tail
to cut, or corruption to report) is `pydrant.wal.scan`'s job.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import cbor2
import google_crc32c
import numpy as np

from pydrant.wal import codec

HEADER = struct.Struct("<II")  # length, crc32c
HEADER_SIZE = HEADER.size
MAX_OP_NUM = 2**64 - 1  # op_num is a CBOR unsigned integer (major type 0, at most 8 bytes)

# Every record body is the CBOR array [op_num, value]: a definite-length array of two
# (0x82) whose first item is an unsigned integer (major type 0: 0x00..0x1b). Used to skip
# most byte positions cheaply when looking for a valid record after a bad one.
RECORD_ARRAY_HEAD = 0x82
LARGEST_UINT_HEAD = 0x1B
MIN_BODY_SIZE = 3  # 0x82, op_num (one byte at least), value (one byte at least)


class WalRecordError(ValueError):
    """The bytes at `offset` are not a valid record; `reason` says why."""

    def __init__(self, offset: int, reason: str):
        super().__init__(f"offset {offset}: {reason}")
        self.offset = offset
        self.reason = reason


@dataclass(frozen=True)
class Record:
    op_num: int
    value: object
    offset: int  # where the frame starts in its file
    size: int  # header + body


def encode_record(op_num: int, value) -> bytes:
    """One whole frame (header and body) for the record."""
    body = codec.encode([op_num, value])
    return HEADER.pack(len(body), google_crc32c.value(body)) + body


def is_end_marker(data: bytes, offset: int) -> bool:
    """True when a header at `offset` has length 0: no more records after this point.

    Fewer than 8 bytes left counts as an end marker only when they are all zeros (a file
    cut in its preallocated space); otherwise they are the start of a torn header.
    """
    header = data[offset : offset + HEADER_SIZE]
    if len(header) < HEADER_SIZE:
        return not any(header)
    return HEADER.unpack(header)[0] == 0


def read_record(data: bytes, offset: int, *, decode_value: bool = True) -> Record:
    """The record whose frame starts at `offset`, checked; WalRecordError if it is bad.

    decode_value=False still checks length, CRC and the op_num, but leaves `value` None:
    readers skipping records below an op_num need not decode the vectors they skip.
    """
    body = _checked_body(data, offset)
    size = HEADER_SIZE + len(body)
    if not decode_value:
        return Record(_op_num_from_head(body, offset), None, offset, size)
    try:
        pair = codec.decode(body)
    except (cbor2.CBORDecodeError, ValueError, TypeError) as exc:
        raise WalRecordError(offset, f"CBOR does not decode: {exc}") from exc
    if not (isinstance(pair, list) and len(pair) == 2 and _is_op_num(pair[0])):
        raise WalRecordError(offset, "body is not an [op_num, value] pair")
    return Record(pair[0], pair[1], offset, size)


def _checked_body(data: bytes, offset: int) -> bytes:
    header = data[offset : offset + HEADER_SIZE]
    if len(header) < HEADER_SIZE:
        raise WalRecordError(offset, f"short header ({len(header)} of {HEADER_SIZE} bytes)")
    length, stored_crc = HEADER.unpack(header)
    start = offset + HEADER_SIZE
    body = data[start : start + length]
    if len(body) < length:
        raise WalRecordError(offset, f"short body ({len(body)} of {length} bytes)")
    computed_crc = google_crc32c.value(body)
    if computed_crc != stored_crc:
        raise WalRecordError(offset, f"CRC mismatch (stored {stored_crc:#010x}, computed {computed_crc:#010x})")
    return body


def _op_num_from_head(body: bytes, offset: int) -> int:
    """op_num read from the first bytes of a body, without decoding the value."""
    if len(body) < 2 or body[0] != RECORD_ARRAY_HEAD or body[1] > LARGEST_UINT_HEAD:
        raise WalRecordError(offset, "body is not an [op_num, value] pair")
    head = body[1]
    if head < 24:
        return head
    width = 1 << (head - 24)  # 0x18..0x1b: 1, 2, 4 or 8 big-endian bytes follow
    if len(body) < 2 + width:
        raise WalRecordError(offset, "body is not an [op_num, value] pair")
    return int.from_bytes(body[2 : 2 + width], "big")


def _is_op_num(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_OP_NUM


def data_extent(data: bytes, start: int = 0) -> int:
    """Offset just past the last non-zero byte at or after `start` (`start` if none).

    Scans backwards in chunks with numpy: a preallocated file is mostly zeros at the end,
    and a byte-wise Python loop or `rstrip` copy over 32 MiB would dominate opening time.
    """
    view = np.frombuffer(data, dtype=np.uint8)
    chunk = 1 << 20
    stop = len(view)
    while stop > start:
        lo = max(start, stop - chunk)
        nonzero = np.flatnonzero(view[lo:stop])
        if nonzero.size:
            return lo + int(nonzero[-1]) + 1
        stop = lo
    return start


def find_valid_record(data: bytes, start: int, stop: int) -> int | None:
    """Offset of the first valid record whose frame starts in [start, stop) and ends by `stop`.

    Used after a bad record to tell a torn tail (nothing valid follows) from corruption
    (valid records follow, so the bad one was not the last write). Every byte position is
    a candidate; numpy filters them on "plausible length, body starts [op_num," before the
    CRC and CBOR checks, which then run on very few positions.
    """
    view = np.frombuffer(data, dtype=np.uint8)
    last_start = stop - HEADER_SIZE - MIN_BODY_SIZE  # a frame starting later cannot fit
    chunk = 1 << 20
    for lo in range(start, last_start + 1, chunk):
        hi = min(lo + chunk, last_start + 1)
        for candidate in _plausible_frame_starts(view, lo, hi, stop):
            try:
                read_record(data, candidate)
            except WalRecordError:
                continue
            return candidate
    return None


def _plausible_frame_starts(view: np.ndarray, lo: int, hi: int, stop: int) -> list[int]:
    """Offsets p in [lo, hi) whose header length fits before `stop` and whose body starts
    like a record. Requires hi - 1 + HEADER_SIZE + MIN_BODY_SIZE <= stop."""
    count = hi - lo
    window = view[lo : hi + HEADER_SIZE + 1].astype(np.uint64)
    lengths = (  # the u32 LE at every position
        window[0:count] | window[1 : count + 1] << 8 | window[2 : count + 2] << 16 | window[3 : count + 3] << 24
    )
    positions = np.arange(lo, hi, dtype=np.uint64)
    plausible = (
        (lengths >= MIN_BODY_SIZE)
        & (positions + HEADER_SIZE + lengths <= stop)
        & (window[HEADER_SIZE : HEADER_SIZE + count] == RECORD_ARRAY_HEAD)
        & (window[HEADER_SIZE + 1 : HEADER_SIZE + 1 + count] <= LARGEST_UINT_HEAD)
    )
    return (np.flatnonzero(plausible) + lo).tolist()
