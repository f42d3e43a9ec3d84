"""Rebuild a collection from its WAL alone.

Usage: python tools/wal_replay.py WAL_PATH --into DIR [--collection-config FILE]
Same as `pydrant wal replay`; see pydrant/collection/replay.py.
"""

from pydrant.collection.replay import main

if __name__ == "__main__":
    raise SystemExit(main())
