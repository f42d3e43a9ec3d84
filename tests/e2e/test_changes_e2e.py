"""The change feed, `GET /collections/{name}/changes`, against a real server.

A reader following the feed across restarts (graceful and SIGKILL) sees every acknowledged
operation exactly once and in order; a long-poll returns as soon as a write is committed;
a reader that fell behind the retained log gets 410; unknown collections 404; access is
a read of that collection.
"""

from __future__ import annotations

import threading
import time

import httpx
import jwt
import orjson
import pytest

from serverproc import ServerProcess

pytestmark = pytest.mark.e2e

VECTOR = {"size": 4, "distance": "Dot"}


def create(url: str, name: str, dim: int = 4, **extra) -> None:
    vectors = {**VECTOR, "size": dim}
    response = httpx.put(f"{url}/collections/{name}", json={"vectors": vectors, **extra}, timeout=30)
    assert response.status_code == 200, response.text


def upsert(url: str, name: str, ids, dim: int = 4) -> int:
    """Upsert points `ids` (wait=true); the operation_id the server acknowledged."""
    points = [{"id": i, "vector": [float(i % 7), 1.0, 0.5] + [0.25] * (dim - 3), "payload": {"i": i}} for i in ids]
    response = httpx.put(f"{url}/collections/{name}/points?wait=true", json={"points": points}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["result"]["operation_id"]


def feed(url: str, name: str, **params) -> tuple[list[dict], int]:
    """The operation lines of one feed answer and its `next`."""
    response = httpx.get(f"{url}/collections/{name}/changes", params=params, timeout=90)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-ndjson")
    lines = [orjson.loads(line) for line in response.content.splitlines()]
    assert lines and set(lines[-1]) == {"next"}, lines[-1:]
    return lines[:-1], lines[-1]["next"]


def follow(url: str, name: str, since: int, limit: int = 7) -> tuple[list[dict], int]:
    """Read the feed page by page until it has nothing newer."""
    seen: list[dict] = []
    while True:
        lines, since = feed(url, name, since=since, limit=limit)
        seen += lines
        if not lines:
            return seen, since


def wal_dir(server: ServerProcess, name: str):
    [path] = [p for p in server.storage.rglob("wal") if p.parent.name == name]
    return path


def test_a_reader_following_the_feed_across_restarts_sees_every_acknowledged_operation_once_in_order(fresh_server):
    url, name = fresh_server.url, "followed"
    create(url, name)
    acknowledged = [upsert(url, name, [i]) for i in range(10)]
    seen, since = follow(url, name, 0)

    fresh_server.restart()  # graceful
    acknowledged += [upsert(url, name, [i, i + 100]) for i in range(10, 20)]
    more, since = follow(url, name, since)
    seen += more

    acknowledged += [upsert(url, name, [i]) for i in range(20, 25)]
    fresh_server.kill()  # no flush, no clean close: the WAL alone holds these
    fresh_server.start()
    acknowledged += [upsert(url, name, [i]) for i in range(25, 30)]
    more, since = follow(url, name, since)
    seen += more

    op_nums = [line["op_num"] for line in seen]
    assert op_nums == sorted(set(op_nums)), "in order, each once"
    assert set(acknowledged) <= set(op_nums)
    assert since == op_nums[-1]
    upserted = [p["id"] for line in seen if line["operation"].get("type") == "upsert" for p in line["operation"]["points"]]
    assert upserted == [*range(10), *[x for i in range(10, 20) for x in (i, i + 100)], *range(20, 30)]
    now_ms = time.time() * 1000
    timestamps = [line["timestamp"] for line in seen]
    assert all(now_ms - 600_000 < t <= now_ms + 1000 for t in timestamps)
    assert timestamps == sorted(timestamps)


def test_operations_are_json_with_vectors_as_lists(server):
    url, name = server.url, "rendered"
    create(url, name)
    op = upsert(url, name, [1])
    lines, next_op = feed(url, name)
    [line] = [entry for entry in lines if entry["op_num"] == op]
    [point] = line["operation"]["points"]
    assert point["id"] == 1 and point["payload"] == {"i": 1}
    vector = point.get("vector", point.get("vectors"))
    assert orjson.dumps(vector)  # JSON-safe
    assert [1.0, 1.0, 0.5, 0.25] in ([vector] + list(vector.values()) if isinstance(vector, dict) else [vector])
    assert next_op == lines[-1]["op_num"]
    # Nothing after the last: an empty page that says where to resume.
    assert feed(url, name, since=next_op) == ([], next_op)


def test_a_long_poll_returns_when_a_write_is_committed(server):
    url, name = server.url, "polled"
    create(url, name)
    _, since = feed(url, name)
    result: dict = {}

    def poll():
        started = time.monotonic()
        result["answer"] = feed(url, name, since=since, timeout=20)
        result["waited"] = time.monotonic() - started

    reader = threading.Thread(target=poll)
    reader.start()
    time.sleep(0.5)
    assert reader.is_alive(), "the reader waits for a commit"
    op = upsert(url, name, [7])
    reader.join(15)
    assert not reader.is_alive()
    lines, next_op = result["answer"]
    assert [line["op_num"] for line in lines] == [op] and next_op == op
    assert 0.4 < result["waited"] < 10

    started = time.monotonic()
    assert feed(url, name, since=op, timeout=1) == ([], op)  # nothing came: the timeout ends it
    assert 0.9 < time.monotonic() - started < 5


def test_a_reader_behind_the_retained_log_gets_410(server):
    url, name = server.url, "truncated"
    create(url, name, 512, wal_config={"wal_capacity_mb": 1, "wal_retain_closed": 0},
           optimizers_config={"flush_interval_sec": 1})
    big = [upsert(url, name, range(i * 100, i * 100 + 100), dim=512) for i in range(12)]  # ~2.5 MB of WAL
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        response = httpx.get(f"{url}/collections/{name}/changes", params={"since": 0}, timeout=30)
        if response.status_code == 410:
            break
        time.sleep(0.2)
    assert response.status_code == 410, response.text
    message = response.json()["status"]["error"]
    assert "no longer retained" in message and "wal_retain_closed" in message
    # From the oldest retained operation on, the feed still answers.
    oldest = min(int(p.name.split(".")[0]) for p in wal_dir(server, name).glob("*.wal"))
    lines, next_op = feed(url, name, since=oldest - 1, limit=1000)
    assert lines[0]["op_num"] == oldest and next_op == big[-1]


def test_wal_retain_closed_keeps_closed_files_for_the_feed(server):
    url, name = server.url, "retained"
    create(url, name, 512, wal_config={"wal_capacity_mb": 1, "wal_retain_closed": 2},
           optimizers_config={"flush_interval_sec": 1})
    ops = [upsert(url, name, range(i * 100, i * 100 + 100), dim=512) for i in range(20)]  # ~4 MB: 5 files
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(list(wal_dir(server, name).glob("*.wal"))) > 3:
        time.sleep(0.2)
    files = sorted(wal_dir(server, name).glob("*.wal"))
    assert len(files) == 3, [f.name for f in files]  # two closed files retained, and the last one
    oldest = int(files[0].name.split(".")[0])
    assert oldest > 1
    lines, next_op = feed(url, name, since=oldest - 1, limit=1000)
    assert [line["op_num"] for line in lines] == [op for op in ops if op >= oldest]
    assert next_op == ops[-1]


def test_unknown_collection_404_and_bad_parameters_400(server):
    response = httpx.get(f"{server.url}/collections/no-such-collection/changes", timeout=10)
    assert response.status_code == 404
    assert "no-such-collection" in response.json()["status"]["error"]
    create(server.url, "params")
    for params in ({"since": "-1"}, {"limit": "0"}, {"timeout": "soon"}):
        response = httpx.get(f"{server.url}/collections/params/changes", params=params, timeout=10)
        assert response.status_code == 400, (params, response.text)
        assert "status" in response.json()


def test_the_feed_needs_read_access_to_the_collection(tmp_path):
    key = "secret-key-for-the-feed-test-0123456789"
    proc = ServerProcess(tmp_path / "storage", extra_env={
        "PYDRANT__SERVICE__API_KEY": key,
        "PYDRANT__SERVICE__READ_ONLY_API_KEY": "read-only-key",
        "PYDRANT__SERVICE__JWT_RBAC": "true",
    }).start()
    try:
        for name in ("mine", "theirs"):
            response = httpx.put(f"{proc.url}/collections/{name}", json={"vectors": VECTOR},
                                 headers={"api-key": key}, timeout=30)
            assert response.status_code == 200, response.text
        token = jwt.encode({"access": [{"collection": "mine", "access": "r"}]}, key, algorithm="HS256")

        def get(name, **headers):
            return httpx.get(f"{proc.url}/collections/{name}/changes", headers=headers, timeout=10).status_code

        assert get("mine") == 401
        assert get("mine", **{"api-key": "read-only-key"}) == 200
        assert get("mine", Authorization=f"Bearer {token}") == 200
        assert get("theirs", Authorization=f"Bearer {token}") == 403
    finally:
        proc.stop()
