"""`pydrant wal replay WAL_PATH --into DIR`: rebuild a collection's segments from its WAL alone.

The collection config is read from `--collection-config FILE`, or from `config.json` beside
the WAL directory (a collection directory's layout). The result in DIR is a complete
collection directory (config, manifest, one segment, and a copy of the WAL) that a server
can load. The WAL holds every operation since the last truncation; a WAL that still begins
at op 1 reproduces the collection exactly (`wal_retain_closed` and flush timing decide how
long that holds for a live collection).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import cast

from pydrant.collection import apply as applying
from pydrant.collection.collection import CONFIG_FILE, MANIFEST_FILE, SEGMENTS_DIR, WAL_DIR, Collection
from pydrant.collection.config import vector_schema
from pydrant.collection.payload_index import PayloadIndexTable
from pydrant.fsutil import read_json
from pydrant.segments.appendable import AppendableSegment
from pydrant.wal.scan import read_log


def replay_into(wal_path: Path, target: Path, config: dict) -> dict:
    """Apply every WAL record to a fresh collection in `target`; returns a summary.

    The source is only read (`read_log`): no torn tail is cut and no file is touched, so
    the WAL of a running collection may be replayed. The new collection is laid out by
    `Collection.initialise`, as a created one is."""
    if target.exists():
        if any(target.iterdir()):
            raise FileExistsError(f"{target} is not empty")
        target.rmdir()  # initialise creates it
    Collection.initialise(target, target.name, config)
    schema = vector_schema(config)
    (segment_id,) = read_json(target / MANIFEST_FILE)["segments"]
    segment = AppendableSegment.open(target / SEGMENTS_DIR / segment_id, schema)
    index_table = PayloadIndexTable.load(target)
    first = last = None
    records = 0
    try:
        for op_num, operation in read_log(wal_path):
            try:
                applying.apply_logged([segment], schema, index_table, op_num, cast(dict, operation))
            except applying.REFUSED:
                pass  # refused live the same way: it changed nothing there either
            first = op_num if first is None else first
            last = op_num
            records += 1
        points = segment.point_count
        segment.flush()
    finally:
        segment.close()
    shutil.copytree(wal_path, target / WAL_DIR, ignore=shutil.ignore_patterns("*.tr*"), dirs_exist_ok=True)
    return {"records": records, "first_op_num": first, "last_op_num": last, "points": points}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="pydrant wal replay", description=__doc__.splitlines()[0])
    parser.add_argument("wal_path", type=Path)
    parser.add_argument("--into", type=Path, required=True, help="new collection directory to build")
    parser.add_argument("--collection-config", type=Path, help="config.json of the collection")
    args = parser.parse_args(argv)
    config_path = args.collection_config or args.wal_path.parent / CONFIG_FILE
    if not config_path.exists():
        print(f"error: no collection config at {config_path}; pass --collection-config", file=sys.stderr)
        return 2
    summary = replay_into(args.wal_path, args.into, read_json(config_path))
    print(
        f"replayed {summary['records']} records (ops {summary['first_op_num']}..{summary['last_op_num']}) "
        f"into {args.into}: {summary['points']} points"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
