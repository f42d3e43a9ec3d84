"""`Collection` implements the protocol its optimizer defines (pydrant/optimizer/host.py), so
the optimizer needs nothing of `collection/` (tests/test_layers.py)."""

from __future__ import annotations

import inspect

import trio

from pydrant.collection.collection import Collection
from pydrant.collection.config import (
    CollectionDefaults,
    build_config,
    index_settings,
    indexing_threads,
    search_settings,
)
from pydrant.optimizer.host import OptimizerHost


def _as_host(collection: Collection) -> OptimizerHost:
    return collection  # a type checker verifies the structural match here


def _protocol_methods() -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in vars(OptimizerHost).items()
        if inspect.isfunction(member) and not name.startswith("_")
    }


def test_collection_has_every_host_method_with_the_same_parameters():
    methods = _protocol_methods()
    assert {"index_settings", "replace_segments", "new_segment_path"} <= set(methods)
    for name, signature in methods.items():
        implemented = getattr(Collection, name, None)
        assert callable(implemented), f"Collection lacks OptimizerHost.{name}"
        assert list(inspect.signature(implemented).parameters) == list(signature.parameters), name


async def test_a_loaded_collection_is_an_optimizer_host(tmp_path):
    request = {
        "vectors": {"size": 4, "distance": "Dot"},
        "hnsw_config": {"m": 12, "max_indexing_threads": 3, "full_scan_threshold": 77},
        "optimizers_config": {"indexing_threshold": 5},
    }
    config = build_config(request, CollectionDefaults())
    path = tmp_path / "c"
    Collection.initialise(path, path.name, config)
    collection = await trio.to_thread.run_sync(Collection.load, path)
    try:
        host = _as_host(collection)
        assert isinstance(host, OptimizerHost)
        assert host.index_settings() == index_settings(collection.config)
        assert host.index_settings()["dense"][""]["hnsw"]["m"] == 12
        assert host.search_settings() == search_settings(collection.config)
        assert host.indexing_threads() == indexing_threads(collection.config) == 3
        assert host.optimizer_settings() == collection.config["optimizer_config"]
        assert host.optimizer_settings()["indexing_threshold"] == 5
        assert host.segments and host.manifest_unsure is False
        assert isinstance(host.payload_index.fields, dict)
    finally:
        await collection.close()
