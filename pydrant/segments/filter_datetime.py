"""Datetime strings as Qdrant reads them, for `range` conditions with datetime bounds.

Accepted (the formats Qdrant documents for `datetime` payloads, v1.8+):

    2023-02-08T10:49:00Z          RFC 3339, UTC
    2023-02-08T11:49:00+01:00     with an offset; also +0100 and +01
    2023-02-08T10:49:00           no offset: UTC is assumed
    2023-02-08T10:49              no seconds
    2023-02-08                    date only: midnight UTC
    2023-02-08 10:49:00.123456z   `T` may be a space; `T` and `Z` in either case

Fractional seconds may have 1 to 9 digits; anything past microseconds is dropped (Qdrant's
finest granularity is the microsecond). Values are compared as integer microseconds since
the Unix epoch, in UTC.
"""

from __future__ import annotations

import functools
import re
from datetime import datetime, timedelta, UTC

_PATTERN = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})"
    r"(?:[Tt ]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.([0-9]{1,9}))?)?"
    r"(?:([Zz])|([+-])([0-9]{2})(?::?([0-9]{2}))?)?)?"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def parse_datetime(text: str) -> int | None:
    """Microseconds since the epoch (UTC) for a datetime string, or None if it is not one."""
    m = _PATTERN.fullmatch(text)
    if m is None:
        return None
    year, month, day, hour, minute, second, fraction, _z, sign, off_h, off_m = m.groups()
    try:
        moment = datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            int((fraction or "")[:6].ljust(6, "0")),
            tzinfo=UTC,
        )
    except ValueError:
        return None
    micros = (moment - _EPOCH) // _MICROSECOND
    if sign is not None:
        hours, minutes = int(off_h), int(off_m or 0)
        if hours > 23 or minutes > 59:
            return None
        offset = (hours * 60 + minutes) * 60_000_000
        micros = micros - offset if sign == "+" else micros + offset
    return micros


@functools.lru_cache(maxsize=65536)
def parse_payload_datetime(text: str) -> int | None:
    """`parse_datetime` for payload values, cached: a scan meets the same strings often."""
    return parse_datetime(text)
