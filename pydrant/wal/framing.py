"""Record framing: how one `(op_num, value)` pair is laid out in a WAL file.

    [length u32 LE][crc32c u32 LE][CBOR bytes of the body]

    body = [op_num, value]                                  a batch of one record
         | [op_num, batch_offset, records_after, value]     a record of a larger batch
         | [op_num, batch_offset, records_after, timestamp, value]
                                                            any record, with its commit time

`length` counts the CBOR bytes only; the CRC32C (Castagnoli) covers the same bytes. A
length of 0 marks the end of the data: files are preallocated with zeros, so the first
all-zero header after the last record is where the next append goes.

The records one `append_many` writes (one group commit) form a batch. In a batch of two or
more records each record says where it stands in it: `batch_offset` is the number of bytes
from the start of the batch's first frame to the start of its own frame, `records_after`
how many records of the batch follow it (0: the batch ends here). So every record that
survives names the offset its batch starts at, and a batch is complete only when its
records run without a gap from `batch_offset` 0 to `records_after` 0. A record of the
two-element shape (written for a batch of one, and by every WAL before batches were
marked) is a batch of its own: `batch_offset` 0, `records_after` 0.

The five-element shape adds the batch's commit `timestamp` (milliseconds since the epoch,
an unsigned integer, before the value so it reads without decoding the value). `Wal`
writes every record in it, a batch of one included; the two older shapes stay readable
and have no timestamp (`Record.timestamp` None).

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
NOT_A_RECORD = (
    "body is not [op_num, value], [op_num, batch_offset, records_after, value] "
    "or [op_num, batch_offset, records_after, timestamp, value]"
)

# Every record body is a definite-length CBOR array of two ([op_num, value], head 0x82),
# of four ([op_num, batch_offset, records_after, value], head 0x84) or of five (the same
# with the commit timestamp before the value, head 0x85) whose first item is an unsigned
# integer (major type 0: 0x00..0x1b). Used to skip most byte positions cheaply
# when looking for a valid record after a bad one.
SINGLE_RECORD_ARRAY_HEAD = 0x82
BATCH_RECORD_ARRAY_HEAD = 0x84
TIMED_RECORD_ARRAY_HEAD = 0x85
RECORD_ARRAY_HEADS = (SINGLE_RECORD_ARRAY_HEAD, BATCH_RECORD_ARRAY_HEAD, TIMED_RECORD_ARRAY_HEAD)
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
    batch_offset: int = 0  # bytes from its batch's first frame to this frame
    records_after: int = 0  # records of its batch after this one; 0 ends the batch
    timestamp: int | None = None  # commit time of its batch, ms since the epoch (None: older record)

    @property
    def batch_start(self) -> int:
        """Where the first frame of this record's batch starts in the file."""
        return self.offset - self.batch_offset

    @property
    def ends_batch(self) -> bool:
        return self.records_after == 0


def encode_record(
    op_num: int, value, batch_offset: int = 0, records_after: int = 0, timestamp: int | None = None
) -> bytes:
    """One whole frame (header and body) for the record.

    With a timestamp, the five-element body; without, the older shapes (with the other
    defaults, a batch of one: the two-element body [op_num, value]).
    """
    if timestamp is not None:
        body = codec.encode([op_num, batch_offset, records_after, timestamp, value])
    elif batch_offset == 0 and records_after == 0:
        body = codec.encode([op_num, value])
    else:
        body = codec.encode([op_num, batch_offset, records_after, value])
    return HEADER.pack(len(body), google_crc32c.value(body)) + body


def encode_batch(entries: list[tuple[int, object]], timestamp: int | None = None) -> bytes:
    """The frames of one batch (one group commit), each marked with its place in it and,
    if given, the batch's commit timestamp."""
    frames: list[bytes] = []
    offset = 0
    for index, (op_num, value) in enumerate(entries):
        if len(entries) == 1 and timestamp is None:
            frame = encode_record(op_num, value)
        else:
            frame = encode_record(
                op_num, value, batch_offset=offset, records_after=len(entries) - 1 - index, timestamp=timestamp
            )
        frames.append(frame)
        offset += len(frame)
    return b"".join(frames)


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

    decode_value=False still checks length, CRC, the op_num and the batch place, but leaves
    `value` None: readers skipping records below an op_num need not decode the vectors
    they skip.
    """
    body = _checked_body(data, offset)
    size = HEADER_SIZE + len(body)
    if not decode_value:
        return _record_from_head(body, offset, size)
    try:
        items = codec.decode(body)
    except (cbor2.CBORDecodeError, ValueError, TypeError) as exc:
        raise WalRecordError(offset, f"CBOR does not decode: {exc}") from exc
    if isinstance(items, list) and len(items) == 2 and _is_op_num(items[0]):
        return Record(items[0], items[1], offset, size)
    if (
        isinstance(items, list)
        and len(items) == 4
        and _is_op_num(items[0])
        and _is_count(items[1])
        and _is_count(items[2])
        and items[1] <= offset
    ):
        return Record(items[0], items[3], offset, size, batch_offset=items[1], records_after=items[2])
    if (
        isinstance(items, list)
        and len(items) == 5
        and _is_op_num(items[0])
        and _is_count(items[1])
        and _is_count(items[2])
        and _is_count(items[3])
        and items[1] <= offset
    ):
        return Record(
            items[0], items[4], offset, size, batch_offset=items[1], records_after=items[2], timestamp=items[3]
        )
    raise WalRecordError(offset, NOT_A_RECORD)


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


def _record_from_head(body: bytes, offset: int, size: int) -> Record:
    """The record's op_num and batch place, read from the first bytes of its body without
    decoding the value (the batch place comes before the value for exactly this)."""
    if len(body) < 2 or body[0] not in RECORD_ARRAY_HEADS:
        raise WalRecordError(offset, NOT_A_RECORD)
    op_num, position = _uint_at(body, 1, offset)
    if body[0] == SINGLE_RECORD_ARRAY_HEAD:
        return Record(op_num, None, offset, size)
    batch_offset, position = _uint_at(body, position, offset)
    records_after, position = _uint_at(body, position, offset)
    timestamp = None
    if body[0] == TIMED_RECORD_ARRAY_HEAD:
        timestamp, _ = _uint_at(body, position, offset)
    if batch_offset > offset:
        raise WalRecordError(offset, NOT_A_RECORD)
    return Record(
        op_num, None, offset, size, batch_offset=batch_offset, records_after=records_after, timestamp=timestamp
    )


def _uint_at(body: bytes, position: int, offset: int) -> tuple[int, int]:
    """The CBOR unsigned integer at `position` and the position after it."""
    if len(body) <= position or body[position] > LARGEST_UINT_HEAD:
        raise WalRecordError(offset, NOT_A_RECORD)
    head = body[position]
    if head < 24:
        return head, position + 1
    width = 1 << (head - 24)  # 0x18..0x1b: 1, 2, 4 or 8 big-endian bytes follow
    if len(body) < position + 1 + width:
        raise WalRecordError(offset, NOT_A_RECORD)
    return int.from_bytes(body[position + 1 : position + 1 + width], "big"), position + 1 + width


def _is_op_num(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_OP_NUM


def _is_count(value) -> bool:
    return _is_op_num(value)  # the same range: a CBOR unsigned integer


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


def find_record_of_another_batch(data: bytes, start: int, stop: int, batch_start: int) -> int | None:
    """Offset of the first valid record whose frame starts in [start, stop), ends by `stop`
    and does not belong to the batch whose first frame starts at `batch_start`.

    Used after a bad record to tell an incomplete last batch (whatever follows is that
    batch's own records, or nothing) from corruption (a record of another batch follows:
    that batch was written after this one was acknowledged). Every byte position is a
    candidate; numpy filters them on "plausible length, body starts [op_num," before the
    CRC and CBOR checks, which then run on very few positions. A valid record of the batch
    itself is stepped over whole: bytes inside its value are not records.
    """
    view = np.frombuffer(data, dtype=np.uint8)
    last_start = stop - HEADER_SIZE - MIN_BODY_SIZE  # a frame starting later cannot fit
    chunk = 1 << 20
    resume = start
    for lo in range(start, last_start + 1, chunk):
        hi = min(lo + chunk, last_start + 1)
        for candidate in _plausible_frame_starts(view, lo, hi, stop):
            if candidate < resume:
                continue
            try:
                record = read_record(data, candidate)
            except WalRecordError:
                continue
            if record.batch_start != batch_start:
                return candidate
            resume = candidate + record.size
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
        & (
            (window[HEADER_SIZE : HEADER_SIZE + count] == SINGLE_RECORD_ARRAY_HEAD)
            | (window[HEADER_SIZE : HEADER_SIZE + count] == BATCH_RECORD_ARRAY_HEAD)
            | (window[HEADER_SIZE : HEADER_SIZE + count] == TIMED_RECORD_ARRAY_HEAD)
        )
        & (window[HEADER_SIZE + 1 : HEADER_SIZE + 1 + count] <= LARGEST_UINT_HEAD)
    )
    return (np.flatnonzero(plausible) + lo).tolist()
