"""Start-up of the table of content (storage/toc.py): the progress lines of the load, one
per collection as it opens and when it is ready, reports while an open lasts, failures."""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path

import trio

from pydrant.collection.collection import WAL_DIR
from pydrant.collection.config import CollectionDefaults, vector_schema
from pydrant.collection.points import prepare_upsert
from pydrant.fsutil import read_json
from pydrant.storage import toc as toc_module
from pydrant.storage.toc import TableOfContent
from pydrant.wal import Wal

PLAIN = {"vectors": {"size": 2, "distance": "Dot"}, "optimizers_config": {"flush_interval_sec": 3600}}
SHARDED = {**PLAIN, "shard_number": 2}


def upsert(schema, first_id: int, count: int) -> dict:
    points = [{"id": i, "vector": [1.0, float(i)]} for i in range(first_id, first_id + count)]
    return prepare_upsert(schema, {"points": points})


async def run_toc(toc: TableOfContent, body=None):
    """Run `toc` until `body(toc)` returns (or just until it is ready), then stop it."""
    async with trio.open_nursery() as nursery:
        await nursery.start(toc.run)
        try:
            return await body(toc) if body is not None else None
        finally:
            nursery.cancel_scope.cancel()


async def make_storage(root: Path) -> None:
    """`plain` (4 points, then a WAL tail of 3 upserts no segment has flushed) and
    `sharded` (2 shards, 6 points), written by a table of content that stopped cleanly."""

    async def fill(toc):
        await toc.create_collection("plain", PLAIN)
        await toc.create_collection("sharded", SHARDED)
        await toc.get("plain").submit([upsert(toc.get("plain").schema, 0, 4)])
        await toc.get("sharded").submit([upsert(toc.get("sharded").schema, 0, 6)])

    await run_toc(TableOfContent(root, CollectionDefaults()), fill)
    # The tail: operations logged after the last flush, as a crash leaves them.
    collection_dir = root / "collections" / "plain"
    schema = vector_schema(read_json(collection_dir / "config.json"))
    wal = Wal(collection_dir / WAL_DIR)
    try:
        first = (wal.last_op_num or 0) + 1
        wal.append_many([(first + k, upsert(schema, 100 + k, 1)) for k in range(3)])
    finally:
        wal.close()


def storage_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "pydrant.storage"]


async def test_each_collection_says_what_it_opens_and_when_it_is_ready(tmp_path, caplog):
    await make_storage(tmp_path)
    caplog.clear()
    caplog.set_level(logging.INFO, logger="pydrant.storage")

    async def counts(toc):
        return toc.get("plain").points_count(), toc.get("sharded").points_count()

    assert await run_toc(TableOfContent(tmp_path, CollectionDefaults()), counts) == (7, 6)
    lines = storage_lines(caplog)
    assert f"opening 2 collections in {tmp_path / 'collections'}" in lines
    assert "collection plain: opening 1 segment" in lines
    assert "collection sharded: opening 2 segments in 2 shards" in lines
    ready = [line for line in lines if ": ready in " in line]
    assert len(ready) == 2, lines
    assert re.fullmatch(r"collection plain: ready in \d+\.\d\d s: 7 points in 1 segment, 3 WAL operations replayed", ready[0])
    assert re.fullmatch(r"collection sharded: ready in \d+\.\d\d s: 6 points in 2 segments, 0 WAL operations replayed", ready[1])
    # Opening comes before ready for each collection, and the node's line comes last.
    assert lines.index("collection plain: opening 1 segment") < lines.index(ready[0])
    assert re.fullmatch(rf"storage ready at {re.escape(str(tmp_path))}: 2 collections in \d+\.\d\d s", lines[-1])


async def test_an_empty_storage_logs_no_collection_lines(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="pydrant.storage")
    await run_toc(TableOfContent(tmp_path, CollectionDefaults()))
    lines = storage_lines(caplog)
    assert not [line for line in lines if line.startswith(("opening", "collection "))], lines
    assert re.fullmatch(r"storage ready at .*: 0 collections in \d+\.\d\d s", lines[-1])


async def test_a_collection_that_fails_to_load_is_named_with_its_cause(tmp_path, caplog):
    await make_storage(tmp_path)
    (tmp_path / "collections" / "plain" / "manifest.json").unlink()
    caplog.clear()
    caplog.set_level(logging.INFO, logger="pydrant.storage")

    async def state(toc):
        return sorted(toc.collections), sorted(toc.failed)

    assert await run_toc(TableOfContent(tmp_path, CollectionDefaults()), state) == (["sharded"], ["plain"])
    lines = storage_lines(caplog)
    assert any(line.startswith("collection plain: opening (its manifest is unreadable: FileNotFoundError") for line in lines)
    assert not any(line.startswith("collection plain: ready") for line in lines)
    assert any(line.startswith("collection sharded: ready in ") for line in lines)
    assert re.fullmatch(r"storage ready at .*: 1 collection \(1 failed\) in \d+\.\d\d s", lines[-1])


async def test_a_long_open_is_reported_while_it_lasts(tmp_path, caplog, monkeypatch):
    await make_storage(tmp_path)
    real_open = toc_module.open_collection

    def slow_open(path, lookup=None):
        time.sleep(0.35)
        return real_open(path, lookup)

    monkeypatch.setattr(toc_module, "open_collection", slow_open)
    monkeypatch.setattr(toc_module, "PROGRESS_SECONDS", 0.1)
    caplog.clear()
    caplog.set_level(logging.INFO, logger="pydrant.storage")
    await run_toc(TableOfContent(tmp_path, CollectionDefaults()))
    lines = storage_lines(caplog)
    for name in ("plain", "sharded"):
        still = [i for i, line in enumerate(lines) if line.startswith(f"collection {name}: still opening after ")]
        ready = next(i for i, line in enumerate(lines) if line.startswith(f"collection {name}: ready in "))
        took = float(re.search(r"ready in (\d+\.\d+) s", lines[ready]).group(1))
        # one report per 0.1 s of an open of at least 0.35 s (a busy machine stretches both)
        assert 2 <= len(still) <= took / 0.1 + 1, lines
        assert all(i < ready for i in still)  # the reports stop at ready
    time.sleep(0.25)
    assert len(storage_lines(caplog)) == len(lines)  # no reporter outlives its collection's open
