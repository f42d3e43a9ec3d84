"""The table of contents in process: names that look like temporaries, collections that
fail to load, concurrent PATCH requests, over-long names and deletes with aliases
(reliability issue, findings 2, 5, 8 and 11)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
import trio

from pydrant import fsutil
from pydrant.collection.config import CollectionDefaults
from pydrant.collection.points import prepare_upsert
from pydrant.errors import NotFound, ServiceError, ValidationFailed
from pydrant.issues import BOARD
from pydrant.storage import toc as toc_module
from pydrant.storage.toc import TableOfContent

CREATE = {"vectors": {"size": 2, "distance": "Dot"}, "optimizers_config": {"flush_interval_sec": 3600}}


async def run_toc(root: Path, body):
    """Start a table of contents on `root`, run `body(toc)`, stop it (flush, close)."""
    toc = TableOfContent(root, CollectionDefaults())
    async with trio.open_nursery() as nursery:
        await nursery.start(toc.run)
        try:
            return await body(toc)
        finally:
            nursery.cancel_scope.cancel()


async def add_point(toc: TableOfContent, name: str, point_id: int) -> None:
    collection = toc.get(name)
    op = prepare_upsert(collection.schema, {"points": [{"id": point_id, "vector": [1.0, 2.0], "payload": {"n": point_id}}]})
    await collection.update(op)


@pytest.mark.parametrize("name", [".tmp-x", ".deleted-y", "pending", "create-abc"])
async def test_collections_named_like_temporaries_survive_a_restart(tmp_path, name):
    """Finding 2: such a collection was deleted as a leftover at the next start."""

    async def create(toc):
        await toc.create_collection(name, CREATE)
        await add_point(toc, name, 7)

    await run_toc(tmp_path, create)

    async def check(toc):
        assert toc.get(name).points_count() == 1

    await run_toc(tmp_path, check)


async def test_pending_leftovers_are_removed_and_collections_kept(tmp_path):
    async def create(toc):
        await toc.create_collection("kept", CREATE)

    await run_toc(tmp_path, create)
    leftover = tmp_path / "pending" / "create-0123"
    leftover.mkdir(parents=True)
    (leftover / "config.json").write_text("{}")

    async def check(toc):
        assert sorted(toc.collections) == ["kept"]

    await run_toc(tmp_path, check)
    assert not leftover.exists()


async def test_one_collection_failing_to_load_does_not_stop_the_others(tmp_path):
    """Finding 5: a corrupt WAL in one collection, a stray `lost+found` directory and a
    stray file under collections/ each failed the whole node's start."""

    async def create(toc):
        for name in ("good", "broken"):
            await toc.create_collection(name, CREATE)
            for i in range(3):
                await add_point(toc, name, i)

    await run_toc(tmp_path, create)
    wal_file = sorted((tmp_path / "collections" / "broken" / "wal").glob("*.wal"))[0]
    data = bytearray(wal_file.read_bytes())
    data[12] ^= 0xFF  # inside the first record, with valid records after it: corruption
    wal_file.write_bytes(bytes(data))
    (tmp_path / "collections" / "lost+found").mkdir()
    (tmp_path / "collections" / "notes.txt").write_text("not a collection")
    BOARD.clear()

    async def check(toc):
        assert sorted(toc.collections) == ["good"]
        assert toc.get("good").points_count() == 3
        assert set(toc.failed) == {"broken", "lost+found", "notes.txt"}
        info = toc.failed_info("broken")
        assert info["status"] == "red" and "WAL" in info["optimizer_status"]["error"]
        with pytest.raises(ServiceError, match="failed to load"):
            toc.get("broken")
        ids = {r["id"] for r in BOARD.report()}
        assert "COLLECTION_LOAD_FAILED/broken" in ids
        # the name stays taken, and the broken collection can be deleted
        with pytest.raises(Exception, match="already exists"):
            await toc.create_collection("broken", CREATE)
        assert await toc.delete_collection("broken")
        assert "COLLECTION_LOAD_FAILED/broken" not in {r["id"] for r in BOARD.report()}
        await toc.create_collection("broken", CREATE)
        await add_point(toc, "good", 99)

    await run_toc(tmp_path, check)


async def test_concurrent_patch_requests_both_take_effect(tmp_path):
    """Finding 8 (and the contracts issue): two PATCH requests at once each read, merge
    and write config.json; one update used to be lost."""

    async def patch(toc):
        await toc.create_collection("c", CREATE)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(toc.update_collection, "c", {"optimizers_config": {"deleted_threshold": 0.5}})
            nursery.start_soon(toc.update_collection, "c", {"optimizers_config": {"vacuum_min_vector_number": 500}})
            nursery.start_soon(toc.update_collection, "c", {"hnsw_config": {"m": 7}})
        config = toc.get("c").config
        assert config["optimizer_config"]["deleted_threshold"] == 0.5
        assert config["optimizer_config"]["vacuum_min_vector_number"] == 500
        assert config["hnsw_config"]["m"] == 7

    await run_toc(tmp_path, patch)

    async def check(toc):
        config = toc.get("c").config
        assert config["optimizer_config"]["deleted_threshold"] == 0.5
        assert config["hnsw_config"]["m"] == 7

    await run_toc(tmp_path, check)


def test_concurrent_atomic_writes_of_one_file_never_leave_it_empty_or_mixed(tmp_path):
    """Finding 8: writers shared one `config.json.tmp`; a rename could then publish an
    empty or interleaved file."""
    target = tmp_path / "config.json"
    values = [{"writer": w, "filler": "x" * 50_000} for w in range(8)]
    errors = []

    def writer(value):
        try:
            for _ in range(20):
                fsutil.write_json_atomic(target, value)
        except Exception as exc:  # pragma: no cover - the failure being tested for
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(v,)) for v in values]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert fsutil.read_json(target) in values
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]  # no temporary left


async def test_names_too_long_for_a_file_name_are_refused_before_anything_is_written(tmp_path):
    """Finding 11: 255 characters pass the length check but not the filesystem when they
    take more than 255 bytes; create failed half-way."""

    async def body(toc):
        with pytest.raises(ValidationFailed, match="bytes"):
            await toc.create_collection("é" * 200, CREATE)
        await toc.create_collection("a" * 255, CREATE)  # the longest that fits
        await add_point(toc, "a" * 255, 1)
        assert await toc.delete_collection("a" * 255)
        assert list((tmp_path / "collections").iterdir()) == []
        assert list((tmp_path / "pending").iterdir()) == []

    await run_toc(tmp_path, body)


async def test_a_failed_delete_keeps_the_collection_and_its_aliases(tmp_path, monkeypatch):
    """Finding 11: the aliases were removed (durably) before the delete itself was; a
    delete that then failed left a collection without its aliases."""

    async def body(toc):
        await toc.create_collection("c", CREATE)
        await toc.change_aliases([{"create_alias": {"alias_name": "a", "collection_name": "c"}}])

        def failing_rename(self, target):
            raise OSError(5, "Input/output error (injected)")

        monkeypatch.setattr(Path, "rename", failing_rename)
        with pytest.raises(OSError):
            await toc.delete_collection("c")
        monkeypatch.undo()
        assert toc.get("a").points_count() == 0  # served again, through its alias
        assert toc.aliases == {"a": "c"}
        assert (tmp_path / "aliases.json").exists() and fsutil.read_json(tmp_path / "aliases.json") == {"a": "c"}

    await run_toc(tmp_path, body)

    async def check(toc):  # the collection is still on disk and loads, with its alias
        assert toc.resolve_name("a") == "c"

    await run_toc(tmp_path, check)


def test_unknown_collection_is_not_a_load_failure(tmp_path):
    toc = TableOfContent(tmp_path, CollectionDefaults())
    with pytest.raises(NotFound):
        toc.get("nope")
    assert toc.failed_info("nope") is None
    assert toc_module.PENDING_DIR == "pending"
    assert os.path.isdir(tmp_path)


async def test_runtime_errors_in_one_collection_do_not_end_the_node(tmp_path, monkeypatch):
    """Finding 5, runtime: an exception in one collection's optimizer planner or flusher
    ended the shared nursery (every collection, and /readyz). Now the task is logged,
    reported and retried, and every collection keeps serving."""

    async def body(toc):
        await toc.create_collection("sick", {**CREATE, "optimizers_config": {"flush_interval_sec": 0.1}})
        await toc.create_collection("healthy", CREATE)
        sick = toc.get("sick")
        calls = {"plan": 0, "flush": 0}

        def broken_plan():
            calls["plan"] += 1
            raise RuntimeError("planner bug (injected)")

        def broken_flush():
            calls["flush"] += 1
            raise OSError(5, "Input/output error (injected)")

        monkeypatch.setattr(sick.optimizer, "plan", broken_plan)
        monkeypatch.setattr(sick, "flush", broken_flush)
        sick.optimizer.wake()
        await add_point(toc, "sick", 1)
        with trio.fail_after(10):
            while calls["plan"] < 2 or calls["flush"] < 2:
                await trio.sleep(0.05)
        assert toc.ready
        await add_point(toc, "healthy", 1)
        assert "FLUSH_FAILED/sick" in {r["id"] for r in BOARD.report()}
        monkeypatch.undo()
        with trio.fail_after(20):
            while "FLUSH_FAILED/sick" in {r["id"] for r in BOARD.report()} or sick.apply_failure is not None:
                await trio.sleep(0.05)
        await add_point(toc, "sick", 2)  # writes are accepted again
        assert toc.get("sick").points_count() == 2

    await run_toc(tmp_path, body)
