"""Collection-level parity with Qdrant 1.15, in process (issue 14): `init_from` (copy,
checks, atomicity, restart), per-vector configs as stored and as the optimizer and searches
read them, the vector size limit, metadata merge rules, alias/collection name clashes.
The same behaviour over HTTP: tests/e2e/test_collection_parity_e2e.py."""

from __future__ import annotations

import numpy as np
import pytest

from pydrant.collection import operations
from pydrant.collection.collection import Collection
from pydrant.collection.config import (
    CollectionDefaults,
    apply_update,
    build_config,
    check_vector_sizes,
    index_settings,
    merged_metadata,
    search_settings,
)
from pydrant.errors import AlreadyExists, BadInput, NotFound, ValidationFailed
from pydrant.storage.names import validate_name
from pydrant.storage.toc import COLLECTIONS_DIR, TableOfContent

from test_toc import listed, run_toc  # noqa: E402  (tests/storage is on sys.path)

SOURCE = {
    "vectors": {"size": 3, "distance": "Euclid"},
    "optimizers_config": {"flush_interval_sec": 3600},
}
NAMED_SOURCE = {
    "vectors": {"a": {"size": 2, "distance": "Dot"}, "b": {"size": 3, "distance": "Cosine"}},
    "sparse_vectors": {"s": {}},
}


async def fill(toc: TableOfContent, name: str, points: list[dict]) -> None:
    collection = toc.get(name)
    await collection.submit([operations.upsert(collection, {"points": points})])


def all_points(collection: Collection) -> dict:
    records, _ = collection.reads.scroll(None, 10_000, None, True, True)
    return {r.id: (r.payload, {k: np.asarray(v).tolist() if not hasattr(v, "indices") else (v.indices.tolist(), v.values.tolist()) for k, v in (r.vectors or {}).items()}) for r in records}


# -- init_from ------------------------------------------------------------------------------


async def test_init_from_copies_points_payloads_and_indexes_and_keeps_them(tmp_path):
    points = [{"id": i, "vector": [float(i), 1.0, -2.0], "payload": {"n": i, "tag": f"t{i % 3}"}} for i in range(700)]

    async def body(toc):
        await toc.create_collection("src", SOURCE)
        await fill(toc, "src", points)
        source = toc.get("src")
        await source.submit([{"type": "create_field_index", "field_name": "n", "field_schema": "integer"}])
        await toc.create_collection("copy", {**SOURCE, "hnsw_config": {"m": 4}, "init_from": {"collection": "src"}})
        copy = toc.get("copy")
        assert copy.points_count() == 700
        assert all_points(copy) == all_points(source)
        assert copy.payload_index.fields == {"n": "integer"}
        assert copy.config["hnsw_config"]["m"] == 4
        assert "init_from" not in copy.config and "init_from" not in copy.config["params"]
        # the copy is a collection of its own: writes to one do not reach the other
        await fill(toc, "copy", [{"id": 5000, "vector": [0.0, 0.0, 0.0]}])
        assert source.points_count() == 700 and copy.points_count() == 701
        assert not any((tmp_path / "pending").iterdir())
        return all_points(copy)

    copied = await run_toc(tmp_path, body)

    async def after_restart(toc):
        copy = toc.get("copy")
        assert all_points(copy) == copied
        assert copy.payload_index.fields == {"n": "integer"}

    await run_toc(tmp_path, after_restart)


async def test_init_from_named_vectors_with_sparse_and_extra_vector(tmp_path):
    point = {"id": "a0a1b2c3-0000-4000-8000-000000000001", "vector": {"a": [1.0, 2.0], "b": [0.0, 3.0, 4.0],
             "s": {"indices": [7, 2], "values": [0.5, 1.5]}}, "payload": {"k": [1, {"x": None}]}}

    async def body(toc):
        await toc.create_collection("src", NAMED_SOURCE)
        await fill(toc, "src", [point, {"id": 2, "vector": {"a": [3.0, 4.0]}}])
        extra = {"vectors": {**NAMED_SOURCE["vectors"], "c": {"size": 9, "distance": "Dot"}},
                 "sparse_vectors": {"s": {"modifier": "idf"}, "t": {}}}
        await toc.create_collection("copy", {**extra, "init_from": {"collection": "src"}})
        assert all_points(toc.get("copy")) == all_points(toc.get("src"))

    await run_toc(tmp_path, body)


async def test_init_from_through_an_alias(tmp_path):
    async def body(toc):
        await toc.create_collection("src", SOURCE)
        await fill(toc, "src", [{"id": 1, "vector": [1.0, 2.0, 3.0]}])
        await toc.change_aliases([{"create_alias": {"collection_name": "src", "alias_name": "al"}}])
        await toc.create_collection("copy", {**SOURCE, "init_from": {"collection": "al"}})
        assert toc.get("copy").points_count() == 1

    await run_toc(tmp_path, body)


@pytest.mark.parametrize(
    ("request_body", "error", "message"),
    [
        ({**SOURCE, "init_from": {"collection": "nope"}}, NotFound, "Not found: Collection `nope` doesn't exist!"),
        (
            {"vectors": {"size": 4, "distance": "Euclid"}, "init_from": {"collection": "src"}},
            BadInput,
            "Wrong input: Vectors configuration is not compatible: origin vector  size: 3, while other vector size: 4",
        ),
        (
            {"vectors": {"size": 3, "distance": "Dot"}, "init_from": {"collection": "src"}},
            BadInput,
            "Wrong input: Vectors configuration is not compatible: origin vector  distance: Euclid, "
            "while other vector distance: Dot",
        ),
        (
            {"vectors": {"x": {"size": 3, "distance": "Euclid"}}, "init_from": {"collection": "src"}},
            BadInput,
            "Wrong input: Vectors configuration is not compatible: origin collection have vectors [], while other vectors [x]",
        ),
        (
            {"init_from": {"collection": "src"}},
            BadInput,
            "Wrong input: Vectors configuration is not compatible: origin collection have vectors [], while other vectors []",
        ),
        (
            {**SOURCE, "sharding_method": "custom", "init_from": {"collection": "src"}},
            BadInput,
            "Wrong input: Can't initialize collection from another collection with custom sharding method",
        ),
        (
            {"vectors": {"a": {"size": 2, "distance": "Dot"}}, "init_from": {"collection": "named"}},
            BadInput,
            "Wrong input: Vectors configuration is not compatible: origin collection have vector b, while other collection does not",
        ),
        (
            {"vectors": NAMED_SOURCE["vectors"], "sparse_vectors": {"other": {}}, "init_from": {"collection": "named"}},
            BadInput,
            "Wrong input: Vectors configuration is not compatible: origin collection have vector s, while other collection does not",
        ),
    ],
)
async def test_init_from_refusals_leave_nothing(tmp_path, request_body, error, message):
    async def body(toc):
        await toc.create_collection("src", SOURCE)
        await toc.create_collection("named", NAMED_SOURCE)
        with pytest.raises(error) as caught:
            await toc.create_collection("copy", request_body)
        assert caught.value.message == message
        assert listed(toc) == ["named", "src"]

    await run_toc(tmp_path, body)
    assert not (tmp_path / COLLECTIONS_DIR / "copy").exists()
    assert not any((tmp_path / "pending").iterdir())


async def test_init_from_copy_failure_leaves_no_half_created_collection(tmp_path, monkeypatch):
    async def body(toc):
        await toc.create_collection("src", SOURCE)
        await fill(toc, "src", [{"id": i, "vector": [1.0, 2.0, 3.0]} for i in range(10)])
        calls = []

        def failing(self, source):
            calls.append(source.name)
            raise OSError("disk gone while copying")

        monkeypatch.setattr(Collection, "copy_points_from", failing)
        with pytest.raises(OSError, match="disk gone"):
            await toc.create_collection("copy", {**SOURCE, "init_from": {"collection": "src"}})
        assert calls == ["src"] and listed(toc) == ["src"] and not toc.exists("copy")
        monkeypatch.undo()
        # the name is free: the same create succeeds afterwards
        await toc.create_collection("copy", {**SOURCE, "init_from": {"collection": "src"}})
        assert toc.get("copy").points_count() == 10

    await run_toc(tmp_path, body)
    assert not any((tmp_path / "pending").iterdir())


async def test_init_from_points_that_do_not_fit_the_new_vectors_fail_the_create(tmp_path):
    # Qdrant checks only size and distance; a multivector source into a plain vector passes
    # the check, and its points then fail as any such upsert would: here, the whole create.
    multi = {"size": 2, "distance": "Dot", "multivector_config": {"comparator": "max_sim"}}

    async def body(toc):
        await toc.create_collection("src", {"vectors": multi})
        await fill(toc, "src", [{"id": 1, "vector": [[1.0, 2.0], [3.0, 4.0]]}])
        with pytest.raises(BadInput):
            await toc.create_collection("copy", {"vectors": {"size": 2, "distance": "Dot"}, "init_from": {"collection": "src"}})
        assert listed(toc) == ["src"]

    await run_toc(tmp_path, body)
    assert not any((tmp_path / "pending").iterdir())


# -- names and aliases ----------------------------------------------------------------------


async def test_alias_and_collection_name_clashes(tmp_path):
    async def body(toc):
        await toc.create_collection("one", SOURCE)
        await toc.create_collection("two", SOURCE)
        with pytest.raises(AlreadyExists) as caught:  # 409, Qdrant's validate_collection_not_exists
            await toc.change_aliases([{"create_alias": {"collection_name": "one", "alias_name": "two"}}])
        assert caught.value.message == "Wrong input: Collection `two` already exists!"
        await toc.change_aliases([{"create_alias": {"collection_name": "one", "alias_name": "al"}}])
        with pytest.raises(BadInput) as caught:  # 400 in Qdrant
            await toc.create_collection("al", SOURCE)
        assert caught.value.message == "Wrong input: Can't create collection with name al. Alias with the same name already exists"
        with pytest.raises(AlreadyExists):
            await toc.change_aliases([{"rename_alias": {"old_alias_name": "al", "new_alias_name": "two"}}])
        assert {a["alias_name"] for a in toc.list_aliases()} == {"al"}

    await run_toc(tmp_path, body)


@pytest.mark.parametrize(("name", "char"), [("a\x1fb", "\x1f"), ("a\0b", "\0"), ("a/b<c", "<"), ("x|y?", "|")])
def test_collection_name_characters_as_qdrant_names_them(name, char):
    with pytest.raises(ValidationFailed) as caught:
        validate_name(name)
    assert caught.value.message == (
        f'Validation error in path parameters: [collection_name: collection name cannot contain "{char}" char]'
    )


# -- vector limits and per-vector configs ---------------------------------------------------


@pytest.mark.parametrize(
    ("vectors", "message"),
    [
        ({"size": 70000, "distance": "Cosine"}, "[vectors.size: value 70000 invalid, must be from 1 to 65536]"),
        ({"a": {"size": 65537, "distance": "Dot"}}, "[vectors.?.size: value 65537 invalid, must be from 1 to 65536]"),
    ],
)
async def test_vector_size_limit(tmp_path, vectors, message):
    with pytest.raises(ValidationFailed) as caught:
        check_vector_sizes(vectors)
    assert caught.value.message == f"Validation error in JSON body: {message}"

    async def body(toc):
        with pytest.raises(ValidationFailed):
            await toc.create_collection("big", {"vectors": vectors})
        await toc.create_collection("max", {"vectors": {"size": 65536, "distance": "Dot"}})
        assert listed(toc) == ["max"]

    await run_toc(tmp_path, body)


PER_VECTOR = {
    "vectors": {
        "a": {
            "size": 4,
            "distance": "Cosine",
            "hnsw_config": {"m": 8, "ef_construct": 40, "full_scan_threshold": 7},
            "quantization_config": {"scalar": {"type": "int8", "always_ram": True}},
            "on_disk": True,
            "datatype": "float16",
        },
        "b": {"size": 2, "distance": "Dot", "hnsw_config": {}, "multivector_config": {"comparator": "max_sim"}},
    },
    "sparse_vectors": {"s": {"index": {"on_disk": True, "full_scan_threshold": 50, "datatype": "float16"}, "modifier": "idf"}},
    "hnsw_config": {"m": 32, "payload_m": 12},
    "quantization_config": {"binary": {"always_ram": False}},
}


def test_per_vector_configs_are_stored_as_given_and_empty_hnsw_left_out():
    config = build_config(PER_VECTOR, CollectionDefaults())
    vectors = config["params"]["vectors"]
    assert vectors["a"] == PER_VECTOR["vectors"]["a"]
    assert vectors["b"] == {"size": 2, "distance": "Dot", "multivector_config": {"comparator": "max_sim"}}
    assert config["params"]["sparse_vectors"] == PER_VECTOR["sparse_vectors"]
    assert "hnsw_config" in PER_VECTOR["vectors"]["b"]  # the request is not changed


def test_per_vector_configs_steer_index_builds_and_searches():
    config = build_config(PER_VECTOR, CollectionDefaults())
    settings = index_settings(config)
    a, b = settings["dense"]["a"], settings["dense"]["b"]
    assert a["hnsw"] == {"m": 8, "ef_construct": 40, "payload_m": 12, "on_disk": False}
    assert a["quantization"] == {"scalar": {"type": "int8", "always_ram": True}} and a["on_disk"] is True
    assert b["hnsw"]["m"] == 32 and b["quantization"] == {"binary": {"always_ram": False}} and b["on_disk"] is False
    assert settings["sparse"]["s"]["index"] == {"on_disk": True, "datatype": "float16"}
    searches = search_settings(config)
    assert searches["a"] == {"full_scan_threshold": 7}
    assert searches["b"] == {"full_scan_threshold": 10000}
    assert searches["s"] == {"full_scan_threshold": 50}


def test_per_vector_patch_follows_qdrant():
    config = build_config(PER_VECTOR, CollectionDefaults())
    new = apply_update(config, {"vectors": {
        "a": {"hnsw_config": {"ef_construct": 64}, "quantization_config": "Disabled", "on_disk": False},
        "b": {"hnsw_config": {}, "quantization_config": {"product": {"compression": "x8"}}},
    }, "sparse_vectors": {"s": {"index": {"full_scan_threshold": 5}}}})
    a, b = new["params"]["vectors"]["a"], new["params"]["vectors"]["b"]
    assert a["hnsw_config"] == {"m": 8, "ef_construct": 64, "full_scan_threshold": 7}
    assert "quantization_config" not in a and a["on_disk"] is False and a["datatype"] == "float16"
    assert "hnsw_config" not in b and b["quantization_config"] == {"product": {"compression": "x8"}}
    assert new["params"]["sparse_vectors"]["s"]["index"] == {"on_disk": True, "full_scan_threshold": 5, "datatype": "float16"}
    # a disabled per-vector quantization falls back to the collection's, as in Qdrant
    assert index_settings(new)["dense"]["a"]["quantization"] == {"binary": {"always_ram": False}}
    assert index_settings(new)["dense"]["a"]["hnsw"]["ef_construct"] == 64
    with pytest.raises(BadInput, match="Not existing vector name error: zz"):
        apply_update(config, {"vectors": {"zz": {"on_disk": True}}})
    assert config == build_config(PER_VECTOR, CollectionDefaults())  # the input is untouched


# -- metadata -------------------------------------------------------------------------------


def test_metadata_merge_rules():
    assert merged_metadata(None, {"a": 1, "b": None}) == {"a": 1, "b": None}  # the first becomes it as given
    current = {"a": 1, "b": {"x": 1, "y": 2}, "c": [1]}
    assert merged_metadata(current, {"b": {"x": 5}, "c": None, "d": "new"}) == {"a": 1, "b": {"x": 5}, "d": "new"}
    assert merged_metadata(current, {}) == current
    assert current == {"a": 1, "b": {"x": 1, "y": 2}, "c": [1]}


def test_metadata_patch():
    config = build_config({"vectors": {"size": 2, "distance": "Dot"}}, CollectionDefaults())
    assert "metadata" not in config
    assert "metadata" not in apply_update(config, {"metadata": None})
    first = apply_update(config, {"metadata": {}})
    assert first["metadata"] == {}
    second = apply_update(first, {"metadata": {"k": "v", "n": 1}})
    third = apply_update(second, {"metadata": {"n": None, "m": [1, 2]}})
    assert third["metadata"] == {"k": "v", "m": [1, 2]}
