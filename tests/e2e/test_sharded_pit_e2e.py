"""Point-in-time restore of a sharded collection against a real server (docs/point-in-time.md,
"Sharded collections"): a 3-shard source with small WAL files, a snapshot (format version 2)
in the middle of its history, then restores through the API and the CLI. A time cuts every
shard at that moment; one op_num per shard (the change feed's cursor) cuts each shard
there; a single op_num is refused. The restored collection keeps the sharded layout, its
points sit in the shards the ring picks, and it equals a model of the history at that
moment (read back with qdrant-client's scroll).
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time

import httpx
import orjson
import pytest
from qdrant_client import QdrantClient

from pydrant.collection.hash_ring import HashRing
from serverproc import ServerProcess

pytestmark = pytest.mark.e2e

DIM = 16
SHARDS = [0, 1, 2]
RING = HashRing(SHARDS)
SOURCE = "sharded_src"


class History:
    """Writes to the source and the model of its state after each write, with a time
    between that write's commit and the next one's and the merged feed's cursor then."""

    def __init__(self, url: str):
        self.url = url
        self.state: dict[int, tuple[tuple[float, ...], dict]] = {}
        self.moments: list[tuple[int, dict]] = []  # (ms after the write's commit, model)

    def _write(self, path: str, body: dict, method: str = "POST") -> None:
        response = httpx.request(method, f"{self.url}/collections/{SOURCE}/{path}?wait=true", json=body, timeout=60)
        assert response.status_code == 200, response.text
        time.sleep(0.003)
        self.moments.append((time.time_ns() // 1_000_000, dict(self.state)))
        time.sleep(0.003)  # the next write commits in a later millisecond

    def upsert(self, ids, tag: int) -> None:
        points = []
        for i in ids:
            vector = tuple(float((i * 5 + tag + k) % 13) for k in range(DIM))
            self.state[i] = (vector, {"i": i, "tag": tag})
            points.append({"id": i, "vector": list(vector), "payload": {"i": i, "tag": tag}})
        self._write("points", {"points": points}, "PUT")

    def delete(self, ids) -> None:
        for i in ids:
            self.state.pop(i, None)
        self._write("points/delete", {"points": list(ids)})

    def mark_by_filter(self, below: int, tag: int) -> None:
        """A payload change by filter: every shard logs its own part."""
        for i, (vector, payload) in list(self.state.items()):
            if i < below:
                self.state[i] = (vector, {**payload, "seen": tag})
        self._write("points/payload", {"payload": {"seen": tag}, "filter": {"must": [{"key": "i", "range": {"lt": below}}]}})

    def run(self, rounds: int, start_tag: int) -> None:
        for r in range(rounds):
            tag = start_tag + r
            base = (tag * 17) % 200
            self.upsert(range(base, base + 40), tag)
            if r % 3 == 1:
                self.delete(range(base, base + 6))
            if r % 3 == 2:
                self.mark_by_filter(base + 20, tag)


def scrolled(url: str, name: str) -> dict:
    client = QdrantClient(url=url, timeout=60, check_compatibility=False)
    try:
        out, offset = {}, None
        while True:
            records, offset = client.scroll(name, limit=500, offset=offset, with_payload=True, with_vectors=True)
            for r in records:
                out[r.id] = (tuple(float(x) for x in r.vector), dict(r.payload))
            if offset is None:
                return out
    finally:
        client.close()


def merged_cursor(url: str, name: str) -> str:
    """The merged change feed's cursor once every committed operation is read."""
    since = None
    while True:
        params = {"limit": 1000} if since is None else {"limit": 1000, "since": since}
        response = httpx.get(f"{url}/collections/{name}/changes", params=params, timeout=60)
        assert response.status_code == 200, response.text
        lines = [orjson.loads(line) for line in response.content.splitlines()]
        since = lines[-1]["next"]
        if len(lines) == 1:
            return since


def pit(url: str, name: str, until: dict, snapshot: str) -> httpx.Response:
    body = {"snapshot": snapshot, "source": SOURCE, "until": until}
    return httpx.put(f"{url}/collections/{name}/snapshots/point-in-time", json=body, timeout=300)


def iso(ms: int) -> str:
    return (dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=ms)).isoformat()


def shard_points(url: str, name: str) -> dict[int, int]:
    response = httpx.get(f"{url}/collections/{name}/cluster", timeout=30)
    assert response.status_code == 200, response.text
    return {shard["shard_id"]: shard["points_count"] for shard in response.json()["result"]["local_shards"]}


def ring_counts(points: dict) -> dict[int, int]:
    owners = RING.shard_of_points(sorted(points)).tolist()
    return {shard_id: owners.count(shard_id) for shard_id in SHARDS}


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """The source: 12 rounds of writes, a snapshot, 12 rounds more, with the merged feed's
    cursor taken after round 18; 1 MB WAL files all kept."""
    root = tmp_path_factory.mktemp("sharded_pit")
    server = ServerProcess(root / "storage").start()
    try:
        response = httpx.put(f"{server.url}/collections/{SOURCE}", timeout=30, json={
            "vectors": {"size": DIM, "distance": "Dot"}, "shard_number": 3,
            "wal_config": {"wal_capacity_mb": 1, "wal_retain_closed": 1000},
            "optimizers_config": {"flush_interval_sec": 1},
        })
        assert response.status_code == 200, response.text
        history = History(server.url)
        history.run(12, 0)
        response = httpx.post(f"{server.url}/collections/{SOURCE}/snapshots?wait=true", timeout=120)
        assert response.status_code == 200, response.text
        snapshot = response.json()["result"]["name"]
        first_after = len(history.moments)
        history.run(6, 12)
        cursor = (merged_cursor(server.url, SOURCE), dict(history.state))
        history.run(6, 18)
        yield server, history, snapshot, first_after, cursor
    finally:
        server.stop()


def test_a_time_cuts_every_shard_and_the_layout_is_kept(written):
    server, history, snapshot, first_after, _ = written
    for n, index in enumerate((first_after + 2, first_after + 11, len(history.moments) - 3)):
        at_ms, model = history.moments[index]
        name = f"at_time_{n}"
        until = {"timestamp": iso(at_ms)} if n % 2 == 0 else {"timestamp": at_ms}
        response = pit(server.url, name, until, snapshot)
        assert response.status_code == 200, response.text
        result = response.json()["result"]
        assert [shard["shard_id"] for shard in result["shards"]] == SHARDS
        assert result["points"] == len(model)
        assert result["replayed"] == sum(shard["replayed"] for shard in result["shards"]) > 0
        assert result["timestamp"] <= at_ms
        assert scrolled(server.url, name) == model
        assert shard_points(server.url, name) == ring_counts(model)
    source_layout = json.loads((server.storage / "collections" / SOURCE / "shards.json").read_text())
    restored_layout = json.loads((server.storage / "collections" / "at_time_0" / "shards.json").read_text())
    assert restored_layout == source_layout


def test_the_restored_shards_number_on_after_their_cut(written):
    server, history, snapshot, first_after, _ = written
    at_ms, _ = history.moments[first_after + 5]
    response = pit(server.url, "continued", {"timestamp": at_ms}, snapshot)
    assert response.status_code == 200, response.text
    last = {shard["shard_id"]: shard["op_num"] for shard in response.json()["result"]["shards"]}
    [shard_id] = RING.shard_of_points([5000]).tolist()
    write = httpx.put(f"{server.url}/collections/continued/points?wait=true", timeout=30,
                      json={"points": [{"id": 5000, "vector": [1.0] * DIM}]})
    assert write.status_code == 200, write.text
    assert write.json()["result"]["operation_id"] == last[shard_id] + 1
    feed = httpx.get(f"{server.url}/collections/continued/changes", timeout=30,
                     params={"shard_id": shard_id, "since": last[shard_id]})
    assert feed.status_code == 200, feed.text
    [line] = [orjson.loads(x) for x in feed.content.splitlines()][:-1]
    assert (line["shard_id"], line["op_num"]) == (shard_id, last[shard_id] + 1)
    # the operations up to the cut are not in the restored collection's log
    feed = httpx.get(f"{server.url}/collections/continued/changes", params={"shard_id": shard_id}, timeout=30)
    assert feed.status_code == 410, feed.text


def test_one_op_num_per_shard_the_change_feeds_cursor(written):
    server, _, snapshot, _, (cursor, model) = written
    response = pit(server.url, "at_cursor", {"op_nums": cursor}, snapshot)
    assert response.status_code == 200, response.text
    wanted = {int(s): int(o) for s, o in (pair.split(":") for pair in cursor.split(","))}
    assert {s["shard_id"]: s["op_num"] for s in response.json()["result"]["shards"]} == wanted
    assert scrolled(server.url, "at_cursor") == model
    as_object = {str(s): o for s, o in wanted.items()}
    response = pit(server.url, "at_cursor_object", {"op_nums": as_object}, snapshot)
    assert response.status_code == 200, response.text
    assert scrolled(server.url, "at_cursor_object") == model


def test_refusals_name_the_shard_and_leave_nothing(written):
    server, history, snapshot, first_after, (cursor, _) = written
    wanted = {int(s): int(o) for s, o in (pair.split(":") for pair in cursor.split(","))}
    beyond = ",".join(f"{s}:{o + (10_000 if s == 1 else 0)}" for s, o in wanted.items())
    last_ms = history.moments[-1][0]
    for n, (until, status, words) in enumerate([
        ({"op_num": 5}, 400, ["3 shards, each numbering its own operations", "Restore to a time"]),
        ({"op_nums": "0:5,1:5"}, 400, ["must name every shard", "shard 2 is missing"]),
        ({"op_nums": "0:5,1:5,2:5,3:5"}, 400, ["shard 3 is not one of them"]),
        ({"op_nums": beyond}, 400, ["shard 1: operation", "is beyond the last operation"]),
        ({"op_nums": "0:1,1:1,2:1"}, 400, ["is before the snapshot's cut"]),
        ({"op_nums": {"0": -1}}, 400, ["`until.op_nums` must be"]),
        ({"op_nums": "0:1,x"}, 400, ["`shard:op_num` pairs"]),
        ({"timestamp": 1}, 400, ["shard 0:", "is before the snapshot's cut"]),
        ({"timestamp": last_ms + 60_000}, 400, ["is beyond the last operation in the log", "of shard"]),
    ]):
        name = f"refused_{n}"
        response = pit(server.url, name, until, snapshot)
        assert response.status_code == status, (until, response.text)
        message = response.json()["status"]["error"]
        assert all(word in message for word in words), (until, message)
        assert not httpx.get(f"{server.url}/collections/{name}/exists", timeout=30).json()["result"]["exists"]
    assert not list((server.storage / "pending").iterdir())


def test_cli_restores_a_sharded_collection_from_the_running_servers_wals(written, tmp_path):
    server, history, snapshot, first_after, _ = written
    at_ms, model = history.moments[first_after + 8]
    storage = tmp_path / "storage"
    storage.mkdir()
    snapshot_file = server.storage.parent / "snapshots" / SOURCE / snapshot

    def restore(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "pydrant.cli", "restore", "--snapshot", str(snapshot_file),
             "--into", str(storage), "--name", "restored", *args],
            capture_output=True, text=True, timeout=300,
        )

    one_wal = restore("--until", iso(at_ms), "--wal", str(server.storage / "collections" / SOURCE / "shards" / "0" / "wal"))
    assert one_wal.returncode == 1
    assert one_wal.stderr.startswith("problem: the snapshot is of a sharded collection"), one_wal.stderr
    assert restore("--until", "7", "--wal", str(server.storage / "collections" / SOURCE)).returncode == 1

    done = restore("--until", iso(at_ms), "--wal", str(server.storage / "collections" / SOURCE))
    assert done.returncode == 0, done.stderr
    assert "3 shards" in done.stdout and f"{len(model)} points" in done.stdout
    assert not (storage / "collections" / "restored" / "wal").exists()
    assert sorted(p.name for p in (storage / "collections" / "restored" / "shards").iterdir()) == ["0", "1", "2"]
    restored = ServerProcess(storage).start()
    try:
        assert scrolled(restored.url, "restored") == model
        assert shard_points(restored.url, "restored") == ring_counts(model)
    finally:
        restored.stop()
