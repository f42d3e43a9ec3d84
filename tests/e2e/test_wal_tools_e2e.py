"""`pydrant wal inspect` and `pydrant wal replay` on the WAL of a real collection.

A server takes a history of writes through qdrant-client and is stopped; `wal inspect`
must list every operation, and `wal replay` must rebuild a collection that a new server
serves with exactly the same points.
"""

import json
import subprocess
import sys
from contextlib import closing

import pytest
from qdrant_client import QdrantClient, models

from serverproc import ServerProcess

pytestmark = pytest.mark.e2e

NAME = "walled"


def run_cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pydrant.cli", *args], capture_output=True, text=True, timeout=120)


def all_points(url: str) -> list:
    with closing(QdrantClient(url=url, timeout=30)) as client:
        points, _ = client.scroll(NAME, limit=1000, with_payload=True, with_vectors=True)
    return [p.model_dump() for p in points]


def write_history(url: str) -> int:
    """Writes of every kind; returns how many operations were logged."""
    with closing(QdrantClient(url=url, timeout=30)) as client:
        client.create_collection(
            NAME,
            vectors_config={"d": models.VectorParams(size=3, distance=models.Distance.DOT)},
            sparse_vectors_config={"s": models.SparseVectorParams()},
        )
        client.upsert(NAME, [
            models.PointStruct(id=i, vector={"d": [i, 1.0, -i], "s": models.SparseVector(indices=[i], values=[0.5])},
                               payload={"i": i, "tag": "even" if i % 2 == 0 else "odd"})
            for i in range(20)
        ])
        client.set_payload(NAME, {"seen": True}, points=[1, 2, 3])
        client.delete(NAME, points_selector=models.FilterSelector(filter=models.Filter(
            must=[models.FieldCondition(key="i", range=models.Range(gte=15))])))
        client.delete_vectors(NAME, vectors=["s"], points=[4])
        client.overwrite_payload(NAME, {"only": 1}, points=[5])
        client.delete_payload(NAME, keys=["tag"], points=[6])
        client.update_vectors(NAME, [models.PointVectors(id=7, vector={"d": [9.0, 9.0, 9.0]})])
        client.clear_payload(NAME, points_selector=[8])
        client.create_payload_index(NAME, "tag", models.PayloadSchemaType.KEYWORD)
        client.create_payload_index(NAME, "i", models.PayloadSchemaType.INTEGER)
        client.delete_payload_index(NAME, "i")
    return 11


def test_inspect_and_replay_a_real_collection(tmp_path):
    server = ServerProcess(tmp_path / "storage").start()
    try:
        operations = write_history(server.url)
        expected = all_points(server.url)
    finally:
        server.stop()
    wal_dir = tmp_path / "storage" / "collections" / NAME / "wal"

    inspected = run_cli("wal", "inspect", str(wal_dir), "--json")
    assert inspected.returncode == 0, inspected.stderr
    report = json.loads(inspected.stdout)
    assert report["records"] == operations
    assert report["first_op_num"] == 1 and report["last_op_num"] == operations

    human = run_cli("wal", "inspect", str(wal_dir), "--records")
    assert human.returncode == 0, human.stderr
    for kind in ("upsert", "set_payload", "delete_points", "delete_vectors", "overwrite_payload",
                 "delete_payload", "update_vectors", "clear_payload", "create_field_index", "delete_field_index"):
        assert kind in human.stdout

    rebuilt = tmp_path / "restored" / "storage" / "collections" / NAME
    replayed = run_cli("wal", "replay", str(wal_dir), "--into", str(rebuilt))
    assert replayed.returncode == 0, replayed.stderr
    assert f"replayed {operations} records" in replayed.stdout

    restored = ServerProcess(tmp_path / "restored" / "storage").start()
    try:
        assert all_points(restored.url) == expected
        assert len(expected) == 15
        with closing(QdrantClient(url=restored.url, timeout=30)) as client:
            assert sorted(client.get_collection(NAME).payload_schema) == ["tag"]
    finally:
        restored.stop()
