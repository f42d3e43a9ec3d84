"""Point-in-time restore against a real server (docs/point-in-time.md): the API
(`PUT /collections/{name}/snapshots/point-in-time`) and the CLI (`pydrant restore`), with
small WAL files (`wal_capacity_mb` 1) kept by `wal_retain_closed`, and by the server-wide
age rule; results read back with qdrant-client's scroll.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import sys
import time

import httpx
import orjson
import pytest
from qdrant_client import QdrantClient

from serverproc import ServerProcess

pytestmark = pytest.mark.e2e

DIM = 128  # ~550 bytes a point in the WAL: a 1 MB file holds about a dozen upserts of BATCH points
BATCH = 150
SOURCE = "src"


def create(url: str, name: str, retain_closed: int) -> None:
    body = {
        "vectors": {"size": DIM, "distance": "Dot"},
        "wal_config": {"wal_capacity_mb": 1, "wal_retain_closed": retain_closed},
        "optimizers_config": {"flush_interval_sec": 1},
    }
    response = httpx.put(f"{url}/collections/{name}", json=body, timeout=30)
    assert response.status_code == 200, response.text


class History:
    """Writes to the source collection and the dict model of its state after every op."""

    def __init__(self, url: str, name: str = SOURCE):
        self.url, self.name = url, name
        self.state: dict[int, tuple[tuple[float, ...], dict]] = {}
        self.at: dict[int, dict] = {}  # op_num -> model after it

    def _write(self, method: str, path: str, body: dict) -> int:
        response = httpx.request(method, f"{self.url}/collections/{self.name}/{path}?wait=true", json=body, timeout=60)
        assert response.status_code == 200, response.text
        op_num = response.json()["result"]["operation_id"]
        self.at[op_num] = dict(self.state)
        return op_num

    def upsert(self, ids, tag: int) -> int:
        points = []
        for i in ids:
            vector = tuple(float((i * 7 + tag + k) % 11) for k in range(DIM))
            payload = {"i": i, "tag": tag}
            self.state[i] = (vector, payload)
            points.append({"id": i, "vector": list(vector), "payload": payload})
        return self._write("PUT", "points", {"points": points})

    def delete(self, ids) -> int:
        for i in ids:
            self.state.pop(i, None)
        return self._write("POST", "points/delete", {"points": list(ids)})

    def set_payload(self, ids, payload: dict) -> int:
        for i in ids:
            if i in self.state:
                vector, old = self.state[i]
                self.state[i] = (vector, {**old, **payload})
        return self._write("POST", "points/payload", {"points": list(ids), "payload": payload})

    def run(self, rounds: int, start_tag: int) -> None:
        for r in range(rounds):
            tag = start_tag + r
            base = (tag * 37) % 900
            self.upsert(range(base, base + BATCH), tag)
            if r % 3 == 1:
                self.delete(range(base, base + 10))
            if r % 3 == 2:
                self.set_payload(range(base + 10, base + 30), {"seen": tag})


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


def feed_times(url: str, name: str) -> dict[int, int]:
    """op_num -> commit time (ms), from the change feed."""
    times, since = {}, 0
    while True:
        response = httpx.get(f"{url}/collections/{name}/changes", params={"since": since, "limit": 1000}, timeout=60)
        assert response.status_code == 200, response.text
        lines = [orjson.loads(line) for line in response.content.splitlines()]
        for line in lines[:-1]:
            times[line["op_num"]] = line["timestamp"]
        if len(lines) == 1:
            return times
        since = lines[-1]["next"]


def pit(url: str, name: str, body: dict, **headers) -> httpx.Response:
    return httpx.put(f"{url}/collections/{name}/snapshots/point-in-time", json=body, headers=headers, timeout=300)


def wal_files(server: ServerProcess, name: str) -> list:
    return sorted((server.storage / "collections" / name / "wal").glob("*.wal"))


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """A source collection: 20 rounds of writes, a snapshot, 40 rounds more, in several
    1 MB WAL files all kept by wal_retain_closed."""
    root = tmp_path_factory.mktemp("pit")
    server = ServerProcess(root / "storage").start()
    try:
        create(server.url, SOURCE, retain_closed=1000)
        history = History(server.url)
        history.run(20, 0)
        response = httpx.post(f"{server.url}/collections/{SOURCE}/snapshots?wait=true", timeout=120)
        assert response.status_code == 200, response.text
        snapshot = response.json()["result"]["name"]
        cut = max(history.at)
        history.run(40, 20)
        yield server, history, snapshot, cut
    finally:
        server.stop()


def test_the_log_spans_several_retained_files(written):
    server, history, _, _ = written
    files = wal_files(server, SOURCE)
    assert len(files) >= 3
    assert int(files[0].name.split(".")[0]) == 1  # nothing truncated: every op since 1 retained
    client = QdrantClient(url=server.url, timeout=30, check_compatibility=False)
    try:
        info = client.get_collection(SOURCE)  # the server-wide settings add no field to wal_config
        assert info.config.wal_config.wal_capacity_mb == 1
    finally:
        client.close()


def test_api_restores_to_an_op_num(written):
    server, history, snapshot, cut = written
    until = cut + 25
    response = pit(server.url, "at_op", {"snapshot": snapshot, "source": SOURCE, "until": {"op_num": until}})
    assert response.status_code == 200, response.text
    result = response.json()["result"]
    assert (result["collection"], result["snapshot_op_num"], result["op_num"]) == ("at_op", cut, until)
    assert result["replayed"] == until - cut
    assert scrolled(server.url, "at_op") == history.at[until]
    assert scrolled(server.url, "at_op") != history.state
    # the new collection takes writes after `until`
    upsert = httpx.put(f"{server.url}/collections/at_op/points?wait=true",
                       json={"points": [{"id": 99_999, "vector": [1.0] * DIM}]}, timeout=30)
    assert upsert.status_code == 200 and upsert.json()["result"]["operation_id"] == until + 1


def test_api_restores_to_a_time(written):
    server, history, snapshot, cut = written
    times = feed_times(server.url, SOURCE)
    until = cut + 40
    assert times[until] < times[until + 1]  # separate requests: separate group commits
    iso = (dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=times[until])).isoformat()
    response = pit(server.url, "at_time", {"snapshot": snapshot, "source": SOURCE, "until": {"timestamp": iso}})
    assert response.status_code == 200, response.text
    assert response.json()["result"]["op_num"] == until
    assert scrolled(server.url, "at_time") == history.at[until]
    response = pit(server.url, "at_ms", {"snapshot": snapshot, "source": SOURCE, "until": {"timestamp": times[until + 1] - 1}})
    assert response.status_code == 200, response.text
    assert response.json()["result"]["op_num"] == until
    assert scrolled(server.url, "at_ms") == history.at[until]


def test_api_takes_the_snapshot_as_a_file_location(written, tmp_path):
    server, history, snapshot, cut = written
    copy = tmp_path / "copy.snapshot"
    shutil.copy(server.storage.parent / "snapshots" / SOURCE / snapshot, copy)
    response = pit(server.url, "from_file", {"snapshot": f"file://{copy}", "source": SOURCE, "until": {"op_num": cut + 3}})
    assert response.status_code == 200, response.text
    assert scrolled(server.url, "from_file") == history.at[cut + 3]


@pytest.mark.parametrize(
    ("name", "body", "status", "message"),
    [
        (SOURCE, {"until": {"op_num": 1}}, 409, f"Collection `{SOURCE}` already exists"),
        ("n1", {"source": "nope", "until": {"op_num": 1}}, 404, "Collection `nope` doesn't exist"),
        ("n2", {"snapshot": "nope.snapshot", "until": {"op_num": 1}}, 404, "Snapshot nope.snapshot not found"),
        ("n3", {"until": {"op_num": 10**6}}, 400, "is beyond the last operation in the log"),
        ("n4", {"until": {"op_num": 2}}, 400, "is before the snapshot's cut"),
        ("n5", {"until": {"timestamp": 1}}, 400, "is before the snapshot's cut"),
        ("n6", {"until": {"timestamp": "4000-01-01T00:00:00Z"}}, 400, "is beyond the last operation in the log"),
        ("n7", {"until": {"timestamp": "soon"}}, 400, "not an ISO-8601 time"),
        ("n8", {"until": {"op_num": -1}}, 400, "`until.op_num` must be an unsigned integer"),
        ("n9", {"until": {}}, 400, "`until` must be"),
        ("n10", {"snapshot": 3, "until": {"op_num": 1}}, 400, "`snapshot` must be a non-empty string"),
    ],
)
def test_api_refusals_in_qdrants_envelope(written, name, body, status, message):
    server, _, snapshot, _ = written
    full = {"snapshot": snapshot, "source": SOURCE, **body}
    response = pit(server.url, name, full)
    assert response.status_code == status, response.text
    envelope = response.json()
    assert set(envelope) == {"status", "time"} and message in envelope["status"]["error"], envelope
    if name != SOURCE:
        assert not _exists(server.url, name)
    assert not list((server.storage / "pending").iterdir())


def _exists(url: str, name: str) -> bool:
    return httpx.get(f"{url}/collections/{name}/exists", timeout=30).json()["result"]["exists"]


def test_the_path_does_not_shadow_snapshot_downloads(written):
    server, _, _, _ = written
    response = httpx.get(f"{server.url}/collections/{SOURCE}/snapshots/point-in-time", timeout=30)
    assert response.status_code == 404
    assert "Snapshot point-in-time not found" in response.json()["status"]["error"]


def test_cli_restores_from_the_running_servers_wal_into_a_new_storage(written, tmp_path):
    server, history, snapshot, cut = written
    storage = tmp_path / "storage"
    storage.mkdir()
    until = cut + 30
    before = [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in wal_files(server, SOURCE)[:-1]]
    done = subprocess.run(
        [sys.executable, "-m", "pydrant.cli", "restore",
         "--snapshot", str(server.storage.parent / "snapshots" / SOURCE / snapshot),
         "--until", str(until), "--into", str(storage),
         "--wal", str(server.storage / "collections" / SOURCE / "wal"), "--name", "restored", "--progress"],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert f"up to operation {until}" in done.stdout
    assert "replaying: 30 / 30 operations" in done.stderr  # --progress: lines even off a terminal
    assert [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in wal_files(server, SOURCE)[:-1]] == before
    assert not list((storage / "pending").iterdir())
    restored = ServerProcess(storage).start()
    try:
        assert scrolled(restored.url, "restored") == history.at[until]
    finally:
        restored.stop()


def test_cli_refuses_a_gap_in_one_line_and_writes_nothing(written, tmp_path):
    server, history, snapshot, cut = written
    wal_copy = tmp_path / "wal"
    shutil.copytree(server.storage / "collections" / SOURCE / "wal", wal_copy)
    files = sorted(wal_copy.glob("*.wal"))
    holding = [f for f in files if int(f.name.split(".")[0]) <= cut + 1]  # up to the one with op cut + 1
    assert len(holding) < len(files)
    for file in holding:
        file.unlink()  # as a truncation would have: the ops right after the cut are gone
    storage = tmp_path / "storage"
    storage.mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "pydrant.cli", "restore",
         "--snapshot", str(server.storage.parent / "snapshots" / SOURCE / snapshot),
         "--until", str(max(history.at)), "--into", str(storage), "--wal", str(wal_copy)],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("problem: the log has a gap"), done.stderr
    assert "wal_retain_age_sec" in lines[0]
    assert not (storage / "collections" / SOURCE).exists()


def test_server_wide_age_retention_keeps_files_the_count_would_drop(tmp_path):
    server = ServerProcess(tmp_path / "storage", extra_env={"PYDRANT__STORAGE__WAL__WAL_RETAIN_AGE_SEC": "3600"}).start()
    try:
        create(server.url, SOURCE, retain_closed=1)
        history = History(server.url)
        response = httpx.post(f"{server.url}/collections/{SOURCE}/snapshots?wait=true", timeout=120)
        snapshot = response.json()["result"]["name"]
        history.run(45, 0)
        time.sleep(2.5)  # a flush (every second) has truncated what it may
        files = wal_files(server, SOURCE)
        assert len(files) >= 4  # more than the one closed file wal_retain_closed keeps
        until = max(history.at) - 5
        response = pit(server.url, "back", {"snapshot": snapshot, "source": SOURCE, "until": {"op_num": until}})
        assert response.status_code == 200, response.text
        assert scrolled(server.url, "back") == history.at[until]
    finally:
        server.stop()


def test_manage_access_is_needed(tmp_path):
    env = {"PYDRANT__SERVICE__API_KEY": "full", "PYDRANT__SERVICE__READ_ONLY_API_KEY": "ro"}
    server = ServerProcess(tmp_path / "storage", extra_env=env).start()
    try:
        body = {"vectors": {"size": DIM, "distance": "Dot"}}
        assert httpx.put(f"{server.url}/collections/{SOURCE}", json=body, headers={"api-key": "full"}, timeout=30).status_code == 200
        response = httpx.post(f"{server.url}/collections/{SOURCE}/snapshots?wait=true", headers={"api-key": "full"}, timeout=60)
        snapshot = response.json()["result"]["name"]
        request = {"snapshot": snapshot, "source": SOURCE, "until": {"op_num": 0}}
        assert pit(server.url, "copy", request).status_code == 401
        assert pit(server.url, "copy", request, **{"api-key": "ro"}).status_code == 403
        response = pit(server.url, "copy", request, **{"api-key": "full"})
        assert response.status_code == 200, response.text
        assert response.json()["result"]["points"] == 0
    finally:
        server.stop()
