"""The write-ahead log (docs/wal.md).

    Wal             append, read and truncate a directory of CBOR record files
    WalRecordError  a record's bytes failed a check (used while scanning)

Submodules: codec (CBOR with RFC 8746 typed arrays), framing (record layout), scan
(read-only check of a WAL directory), log (the Wal class), inspect (`pydrant wal inspect`).
This package imports nothing of pydrant but `pydrant.errors`.
"""

from pydrant.wal.framing import WalRecordError
from pydrant.wal.log import Wal

__all__ = ["Wal", "WalRecordError"]
