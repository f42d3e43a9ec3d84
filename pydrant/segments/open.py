"""Opening a segment directory of any kind, told apart by its files.

- `segment.json` with `"format": 2`: an immutable segment (`immutable.py`), files only;
- `segment.json` of the first format: an indexed segment over a RocksDB store
  (`indexed.py`, the legacy layout until the format-2 flip);
- no `segment.json`: an appendable segment (`appendable.py`).

A format newer than this pydrant reads is refused by `ImmutableSegment.open` with a
message naming it; nothing is deleted.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydrant.errors import ServiceError
from pydrant.fsutil import read_json
from pydrant.segments.appendable import AppendableSegment
from pydrant.segments.base import Segment
from pydrant.segments.immutable import ImmutableSegment
from pydrant.segments.indexed import SEGMENT_FILE, IndexedSegment
from pydrant.segments.types import VectorSchema


def open_segment(path: str | os.PathLike, schema: VectorSchema) -> Segment:
    """Open the segment in `path`, whichever kind its files say it is."""
    path = Path(path)
    try:
        meta = read_json(path / SEGMENT_FILE)
    except FileNotFoundError:
        return AppendableSegment.open(path, schema)
    except (OSError, ValueError) as exc:
        raise ServiceError(f"{path / SEGMENT_FILE} cannot be read: {exc}") from None
    if not isinstance(meta, dict):
        raise ServiceError(f"{path / SEGMENT_FILE} is damaged: not a JSON object")
    if "format" in meta:  # every format after the first names itself
        return ImmutableSegment.open(path, schema)
    return IndexedSegment.open(path, schema)
