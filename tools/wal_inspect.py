"""Check a WAL directory's records and CRCs without changing any file.

Usage: python tools/wal_inspect.py PATH [--json] [--records] [--from OP]
Same as `pydrant wal inspect`; see pydrant/wal/inspect.py and docs/wal.md.
"""

from pydrant.wal.inspect import main

if __name__ == "__main__":
    raise SystemExit(main())
