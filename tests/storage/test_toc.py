"""The table of contents in process: create, delete, aliases, listing and PATCH, each also
after a restart, and two PATCH requests at once (test_toc_reliability.py has the failure
cases: crashes, load failures, failed writes)."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from pydrant.collection.collection import CONFIG_FILE, Collection
from pydrant.collection.config import CollectionDefaults
from pydrant.errors import AlreadyExists, BadInput, NotFound
from pydrant.fsutil import read_json
from pydrant.storage.toc import ALIASES_FILE, COLLECTIONS_DIR, TableOfContent

CREATE = {"vectors": {"size": 2, "distance": "Dot"}, "optimizers_config": {"flush_interval_sec": 3600}}


async def run_toc(root: Path, body, defaults: CollectionDefaults | None = None):
    """Start a table of contents on `root`, run `body(toc)`, stop it (flush, close)."""
    toc = TableOfContent(root, defaults or CollectionDefaults())
    async with trio.open_nursery() as nursery:
        await nursery.start(toc.run)
        try:
            return await body(toc)
        finally:
            nursery.cancel_scope.cancel()


def listed(toc: TableOfContent) -> list[str]:
    return sorted([*toc.collections, *toc.failed])  # what GET /collections lists


def aliases(toc: TableOfContent, collection: str | None = None) -> dict[str, str]:
    return {a["alias_name"]: a["collection_name"] for a in toc.list_aliases(collection)}


# -- create ---------------------------------------------------------------------------------


async def test_create_lists_the_collection_with_its_defaults_and_keeps_it(tmp_path):
    defaults = CollectionDefaults(hnsw_config={**CollectionDefaults().hnsw_config, "m": 8})

    async def create(toc):
        assert listed(toc) == []
        await toc.create_collection("b", CREATE)
        await toc.create_collection("a", {"vectors": {"size": 3, "distance": "Cosine"}, "hnsw_config": {"m": 4}})
        assert listed(toc) == ["a", "b"]
        assert toc.exists("a") and not toc.exists("c")
        assert toc.get("b").config["hnsw_config"]["m"] == 8  # the node's default
        assert toc.get("a").config["hnsw_config"]["m"] == 4  # the request's
        assert toc.get("b").config["optimizer_config"]["flush_interval_sec"] == 3600
        return toc.get("a").config

    config = await run_toc(tmp_path, create, defaults)
    assert read_json(tmp_path / COLLECTIONS_DIR / "a" / CONFIG_FILE) == config
    assert not any((tmp_path / "pending").iterdir())

    async def check(toc):
        assert listed(toc) == ["a", "b"]
        assert toc.get("a").config == config

    await run_toc(tmp_path, check)


async def test_create_refuses_a_taken_name_and_changes_nothing(tmp_path):
    async def body(toc):
        await toc.create_collection("c", CREATE)
        await toc.change_aliases([{"create_alias": {"collection_name": "c", "alias_name": "al"}}])
        before = toc.get("c").config
        with pytest.raises(AlreadyExists, match="Collection `c` already exists"):
            await toc.create_collection("c", {"vectors": {"size": 5, "distance": "Euclid"}})
        # Qdrant: a bad input (400), not a conflict, with its own text
        with pytest.raises(BadInput, match="Can't create collection with name al. Alias with the same name already exists"):
            await toc.create_collection("al", CREATE)
        assert listed(toc) == ["c"] and toc.get("c").config == before

    await run_toc(tmp_path, body)


async def test_bad_create_requests_leave_nothing_behind(tmp_path):
    async def body(toc):
        with pytest.raises(BadInput, match="used both for dense and sparse"):
            await toc.create_collection("x", {"vectors": {"v": {"size": 2, "distance": "Dot"}}, "sparse_vectors": {"v": {}}})
        assert listed(toc) == []
        assert not any((tmp_path / COLLECTIONS_DIR).iterdir())
        assert not any((tmp_path / "pending").iterdir())

    await run_toc(tmp_path, body)


# -- delete ---------------------------------------------------------------------------------


async def test_delete_removes_the_collection_and_its_aliases_only(tmp_path):
    async def body(toc):
        await toc.create_collection("gone", CREATE)
        await toc.create_collection("kept", CREATE)
        await toc.change_aliases([
            {"create_alias": {"collection_name": "gone", "alias_name": "g1"}},
            {"create_alias": {"collection_name": "gone", "alias_name": "g2"}},
            {"create_alias": {"collection_name": "kept", "alias_name": "k"}},
        ])
        assert await toc.delete_collection("gone") is True
        assert listed(toc) == ["kept"]
        assert aliases(toc) == {"k": "kept"}
        with pytest.raises(NotFound):
            toc.get("g1")
        assert not (tmp_path / COLLECTIONS_DIR / "gone").exists()
        assert await toc.delete_collection("gone") is False  # a second delete finds nothing
        assert await toc.delete_collection("k") is False  # an alias is not a collection name
        assert listed(toc) == ["kept"]

    await run_toc(tmp_path, body)
    assert read_json(tmp_path / ALIASES_FILE) == {"k": "kept"}

    async def check(toc):
        assert listed(toc) == ["kept"] and aliases(toc) == {"k": "kept"}

    await run_toc(tmp_path, check)


async def test_a_deleted_name_can_be_created_again_empty(tmp_path):
    async def body(toc):
        await toc.create_collection("c", {"vectors": {"size": 2, "distance": "Dot"}})
        await toc.delete_collection("c")
        await toc.create_collection("c", {"vectors": {"size": 3, "distance": "Cosine"}})
        assert toc.get("c").config["params"]["vectors"] == {"size": 3, "distance": "Cosine"}
        assert toc.get("c").points_count() == 0

    await run_toc(tmp_path, body)


# -- aliases --------------------------------------------------------------------------------


async def test_alias_create_rename_delete_and_list(tmp_path):
    async def body(toc):
        await toc.create_collection("one", CREATE)
        await toc.create_collection("two", CREATE)
        await toc.change_aliases([
            {"create_alias": {"collection_name": "one", "alias_name": "a"}},
            {"create_alias": {"collection_name": "two", "alias_name": "b"}},
        ])
        assert toc.get("a") is toc.get("one") and toc.resolve_name("b") == "two"
        assert aliases(toc) == {"a": "one", "b": "two"}
        assert aliases(toc, "one") == {"a": "one"}
        assert aliases(toc, "b") == {"b": "two"}  # a collection named by its alias
        # create_alias on an existing alias re-points it (as Qdrant does)
        await toc.change_aliases([{"create_alias": {"collection_name": "two", "alias_name": "a"}}])
        assert aliases(toc) == {"a": "two", "b": "two"}
        await toc.change_aliases([{"rename_alias": {"old_alias_name": "a", "new_alias_name": "c"}}])
        assert aliases(toc) == {"b": "two", "c": "two"}
        await toc.change_aliases([{"delete_alias": {"alias_name": "b"}}])
        assert aliases(toc) == {"c": "two"}
        with pytest.raises(NotFound):
            aliases(toc, "nothing")

    await run_toc(tmp_path, body)

    async def check(toc):
        assert aliases(toc) == {"c": "two"} and toc.get("c") is toc.get("two")

    await run_toc(tmp_path, check)


@pytest.mark.parametrize(
    ("action", "error", "message"),
    [
        ({"delete_alias": {"alias_name": "missing"}}, NotFound, "Alias missing does not exists"),
        ({"rename_alias": {"old_alias_name": "missing", "new_alias_name": "x"}}, NotFound, "Alias missing"),
        ({"create_alias": {"collection_name": "missing", "alias_name": "x"}}, NotFound, "Collection `missing`"),
        ({"create_alias": {"collection_name": "one", "alias_name": "two"}}, AlreadyExists, "Collection `two` already exists"),
        ({"rename_alias": {"old_alias_name": "new", "new_alias_name": "one"}}, AlreadyExists, "Collection `one` already exists"),
    ],
)
async def test_a_failing_alias_action_applies_none_of_its_batch(tmp_path, action, error, message):
    async def body(toc):
        await toc.create_collection("one", CREATE)
        await toc.create_collection("two", CREATE)
        await toc.change_aliases([{"create_alias": {"collection_name": "one", "alias_name": "first"}}])
        with pytest.raises(error, match=message):
            await toc.change_aliases([
                {"create_alias": {"collection_name": "two", "alias_name": "new"}},
                {"delete_alias": {"alias_name": "first"}},
                action,
            ])
        assert aliases(toc) == {"first": "one"}

    await run_toc(tmp_path, body)
    assert read_json(tmp_path / ALIASES_FILE) == {"first": "one"}


# -- update (PATCH) -------------------------------------------------------------------------


async def test_update_merges_into_the_config_and_keeps_it(tmp_path):
    async def body(toc):
        await toc.create_collection("c", CREATE)
        await toc.change_aliases([{"create_alias": {"collection_name": "c", "alias_name": "al"}}])
        before = toc.get("c").config
        await toc.update_collection("al", {"hnsw_config": {"ef_construct": 64}, "params": {"on_disk_payload": False}})
        after = toc.get("c").config
        assert after["hnsw_config"] == {**before["hnsw_config"], "ef_construct": 64}
        assert after["params"]["on_disk_payload"] is False
        assert after["optimizer_config"] == before["optimizer_config"]
        with pytest.raises(BadInput, match="Not existing vector name"):
            await toc.update_collection("c", {"vectors": {"nope": {"on_disk": True}}})
        assert toc.get("c").config == after
        with pytest.raises(NotFound):
            await toc.update_collection("missing", {"hnsw_config": {"m": 4}})
        return after

    after = await run_toc(tmp_path, body)

    async def check(toc):
        assert toc.get("c").config == after

    await run_toc(tmp_path, check)


async def test_two_concurrent_updates_of_different_fields_both_take_effect(tmp_path, monkeypatch):
    """Each PATCH reads the config, merges its diff and writes the result. Writing yields
    (a worker thread writes config.json), so without a lock around read-merge-write the
    second request reads the config the first has not written yet, and its write drops
    the first one's change. The checkpoint before each write makes that interleaving
    certain instead of a matter of thread timing."""
    write = Collection.set_config

    async def set_config_after_a_checkpoint(self, config):
        await trio.sleep(0.05)  # the other request runs here
        await write(self, config)

    monkeypatch.setattr(Collection, "set_config", set_config_after_a_checkpoint)

    async def body(toc):
        await toc.create_collection("c", CREATE)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(toc.update_collection, "c", {"optimizers_config": {"deleted_threshold": 0.5}})
            nursery.start_soon(toc.update_collection, "c", {"hnsw_config": {"m": 7}})
        config = toc.get("c").config
        assert config["optimizer_config"]["deleted_threshold"] == 0.5, "the first PATCH was lost"
        assert config["hnsw_config"]["m"] == 7, "the second PATCH was lost"
        return config

    config = await run_toc(tmp_path, body)
    assert read_json(tmp_path / COLLECTIONS_DIR / "c" / CONFIG_FILE) == config
