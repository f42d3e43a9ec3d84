"""The engine's batch query takes the same query forms as a single query (a bare sparse
vector is a dict, not a `{"nearest": ...}` wrapper; batches once failed with KeyError)."""

from pathlib import Path

import trio

from pydrant.collection.collection import Collection
from pydrant.collection.config import CollectionDefaults, build_config
from pydrant.collection.points import prepare_upsert
from pydrant.collection.query import QueryEngine


async def test_bare_sparse_queries_in_a_batch_answer_as_single_queries(tmp_path: Path):
    path = tmp_path / "c"
    Collection.initialise(path, "c", build_config({"vectors": {}, "sparse_vectors": {"s": {}}}, CollectionDefaults()))
    collection = await trio.to_thread.run_sync(Collection.load, path)
    async with trio.open_nursery() as nursery:
        await nursery.start(collection.run)
        points = [
            {"id": 1, "vector": {"s": {"indices": [1, 2], "values": [0.5, 0.5]}}},
            {"id": 2, "vector": {"s": {"indices": [2, 3], "values": [1.5, 0.25]}}},
        ]
        await collection.update(prepare_upsert(collection.schema, {"points": points}))
        engine = QueryEngine(collection, lambda name: collection)
        bare = {"query": {"indices": [1, 2], "values": [0.5, 0.5]}, "using": "s", "limit": 3}
        wrapped = {**bare, "query": {"nearest": bare["query"]}}
        batch = engine.query_batch([bare, dict(bare), wrapped])
        single = engine.query(bare)
        assert [[(h.id, h.score) for h in hits] for hits in batch] == [[(h.id, h.score) for h in single]] * 3
        assert [h.id for h in single] == [2, 1]
        await collection.close()
        nursery.cancel_scope.cancel()
