"""The change feed of a sharded collection, `GET /collections/{name}/changes`, against a real
server (docs/wal.md "Change feed", "Sharded collections").

Each shard numbers its own operations: `shard_id=N` follows one shard (its op_nums, every
line saying `shard_id`), and without it a sharded collection answers the merged feed of all
shards with a composite cursor `0:12,1:40,2:7`. Each shard's feed holds exactly the points
the hash ring routes to it; the union of the shards' feeds is everything written; resuming
from `next` skips and repeats nothing; wrong cursors and unknown shards are refused.
"""

from __future__ import annotations

import threading
import time

import httpx
import jwt
import orjson
import pytest

from pydrant.collection.hash_ring import HashRing
from serverproc import ServerProcess

pytestmark = pytest.mark.e2e

SHARDS = [0, 1, 2]
RING = HashRing(SHARDS)
VECTOR = {"size": 4, "distance": "Dot"}
SMALL_WAL = {"wal_capacity_mb": 1}


def create(url: str, name: str, shard_number: int = 3, dim: int = 4, **extra) -> None:
    body = {"vectors": {**VECTOR, "size": dim}, "wal_config": SMALL_WAL, **extra}
    if shard_number != 1:
        body["shard_number"] = shard_number
    response = httpx.put(f"{url}/collections/{name}", json=body, timeout=30)
    assert response.status_code == 200, response.text


def upsert(url: str, name: str, ids, dim: int = 4) -> int:
    points = [{"id": i, "vector": [float(i % 7), 1.0, 0.5] + [0.25] * (dim - 3), "payload": {"i": i}} for i in ids]
    response = httpx.put(f"{url}/collections/{name}/points?wait=true", json={"points": points}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["result"]["operation_id"]


def get(url: str, name: str, **params) -> httpx.Response:
    return httpx.get(f"{url}/collections/{name}/changes", params=params, timeout=90)


def feed(url: str, name: str, **params) -> tuple[list[dict], int | str]:
    response = get(url, name, **params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-ndjson")
    lines = [orjson.loads(line) for line in response.content.splitlines()]
    assert lines and set(lines[-1]) == {"next"}, lines[-1:]
    return lines[:-1], lines[-1]["next"]


def follow(url: str, name: str, since=None, limit: int = 7, **params) -> tuple[list[dict], int | str]:
    """Page through a feed until a page is empty."""
    seen: list[dict] = []
    while True:
        query = {"limit": limit, **params}
        if since is not None:
            query["since"] = since
        lines, since = feed(url, name, **query)
        seen += lines
        if not lines:
            return seen, since


def upserted_ids(lines: list[dict]) -> list:
    return [p["id"] for line in lines if line["operation"]["type"] == "upsert" for p in line["operation"]["points"]]


def cursor_of(text: str) -> dict[int, int]:
    return {int(s): int(o) for s, o in (pair.split(":") for pair in text.split(","))}


def test_each_shard_feed_holds_exactly_its_points_and_resumes_from_next(server):
    url, name = server.url, "sharded_feed"
    create(url, name)
    ids = list(range(120))
    for start in range(0, 120, 12):  # every request spans the three shards
        upsert(url, name, ids[start:start + 12])
    owner = dict(zip(ids, RING.shard_of_points(ids).tolist()))
    assert set(owner.values()) == set(SHARDS)

    union: list = []
    nexts = {}
    for shard_id in SHARDS:
        lines, nexts[shard_id] = follow(url, name, since=0, shard_id=shard_id)
        assert lines and all(line["shard_id"] == shard_id for line in lines)
        op_nums = [line["op_num"] for line in lines]
        assert op_nums == list(range(1, len(op_nums) + 1)), "the shard's own numbering, from 1, without a gap"
        assert nexts[shard_id] == op_nums[-1]
        mine = upserted_ids(lines)
        assert sorted(mine) == sorted(i for i in ids if owner[i] == shard_id)
        union += mine
    assert sorted(union) == ids  # each point once, in the shard the ring picks

    # Resume from `next`: only what was written since, each point in its own shard's feed.
    more = list(range(1000, 1030))
    upsert(url, name, more)
    owner.update(zip(more, RING.shard_of_points(more).tolist()))
    union = []
    for shard_id in SHARDS:
        lines, after = follow(url, name, since=nexts[shard_id], shard_id=shard_id)
        assert [line["op_num"] for line in lines] == list(range(nexts[shard_id] + 1, after + 1))
        assert all(owner[i] == shard_id for i in upserted_ids(lines))
        union += upserted_ids(lines)
    assert sorted(union) == more


def test_an_operation_by_filter_reaches_every_shard_feed(server):
    url, name = server.url, "sharded_filter"
    create(url, name)
    upsert(url, name, range(30))
    response = httpx.post(f"{url}/collections/{name}/points/payload?wait=true", timeout=30, json={
        "payload": {"seen": True}, "filter": {"must": [{"key": "i", "range": {"gte": 0}}]},
    })
    assert response.status_code == 200, response.text
    for shard_id in SHARDS:
        lines, _ = feed(url, name, shard_id=shard_id)
        assert lines[-1]["operation"]["type"] == "set_payload"
        assert lines[-1]["operation"]["payload"] == {"seen": True}


def test_the_merged_feed_is_every_shard_feed_with_a_composite_cursor(server):
    url, name = server.url, "sharded_merged"
    create(url, name)
    ids = list(range(90))
    for start in range(0, 90, 9):
        upsert(url, name, ids[start:start + 9])

    lines, cursor = follow(url, name, limit=5)  # no `since`: every shard from its start
    assert isinstance(cursor, str)
    per_shard = {shard_id: [line for line in lines if line["shard_id"] == shard_id] for shard_id in SHARDS}
    for shard_id in SHARDS:
        alone, last = follow(url, name, since=0, shard_id=shard_id, limit=1000)
        assert per_shard[shard_id] == alone, "the merged feed holds each shard's feed, in its order"
        assert cursor_of(cursor)[shard_id] == last
    assert sorted(upserted_ids(lines)) == ids
    times = [line["timestamp"] for line in lines]
    assert times == sorted(times), "ordered by commit time"

    # An empty page keeps the cursor; a write shows up after it, and only it.
    assert feed(url, name, since=cursor) == ([], cursor)
    upsert(url, name, [500, 501, 502, 503, 504, 505])
    lines, after = follow(url, name, since=cursor, limit=2)
    assert sorted(upserted_ids(lines)) == [500, 501, 502, 503, 504, 505]
    before, now = cursor_of(cursor), cursor_of(after)
    for shard_id in SHARDS:
        mine = [line["op_num"] for line in lines if line["shard_id"] == shard_id]
        assert mine == list(range(before[shard_id] + 1, now[shard_id] + 1))

    # `since=0` is every shard from its start too; a cursor naming some shards only reads
    # the others from their start.
    assert follow(url, name, since="0", limit=1000)[0] == follow(url, name, limit=1000)[0]
    partial = follow(url, name, since=f"0:{now[0]}", limit=1000)[0]
    assert {line["shard_id"] for line in partial} == {1, 2}
    assert len(partial) == now[1] + now[2]


def test_a_merged_long_poll_returns_when_any_shard_commits(server):
    url, name = server.url, "sharded_polled"
    create(url, name)
    upsert(url, name, range(10))
    _, cursor = follow(url, name)
    result: dict = {}

    def poll():
        started = time.monotonic()
        result["answer"] = feed(url, name, since=cursor, timeout=20)
        result["waited"] = time.monotonic() - started

    reader = threading.Thread(target=poll)
    reader.start()
    time.sleep(0.5)
    assert reader.is_alive(), "the reader waits for a commit"
    [shard_id] = RING.shard_of_points([77]).tolist()
    op = upsert(url, name, [77])
    reader.join(15)
    assert not reader.is_alive()
    lines, after = result["answer"]
    assert [(line["shard_id"], line["op_num"]) for line in lines] == [(shard_id, op)]
    assert cursor_of(after) == {**cursor_of(cursor), shard_id: op}
    assert 0.4 < result["waited"] < 10


def test_bad_cursors_are_400_and_unknown_shards_404(server):
    url = server.url
    create(url, "sharded_params")
    upsert(url, "sharded_params", range(20))
    for since, words in (
        ("5", ["3 shards (0, 1, 2)", "shard_id", "0:12,1:40"]),  # one shard's op_num for all of them
        ("0:1,x:2", ["0:12,1:40"]),
        ("0:1,0:2", ["shard 0 twice"]),
        ("0:-1", ["0:12,1:40"]),
        ("7:3", ["shard 7", "0, 1, 2"]),  # auto sharding: shards never change
    ):
        response = get(url, "sharded_params", since=since)
        assert response.status_code == 400, (since, response.text)
        message = response.json()["status"]["error"]
        assert all(word in message for word in words), (since, message)
    for shard_id in ("3", "99"):
        response = get(url, "sharded_params", shard_id=shard_id)
        assert response.status_code == 404, response.text
        assert response.json()["status"]["error"] == f"Not found: shard {shard_id} not found"
    for params in ({"shard_id": "-1"}, {"shard_id": "one"}, {"shard_id": "0", "since": "0:1"}):
        response = get(url, "sharded_params", **params)
        assert response.status_code == 400, (params, response.text)
        assert "status" in response.json()
    assert get(url, "no-such-collection", shard_id="0").status_code == 404


def test_a_one_shard_collection_is_shard_0(server):
    url, name = server.url, "one_shard_feed"
    create(url, name, shard_number=1)
    op = upsert(url, name, [1, 2, 3])
    plain, plain_next = feed(url, name)
    assert plain and all("shard_id" not in line for line in plain), "unchanged without shard_id"
    assert plain_next == op
    shard, shard_next = feed(url, name, shard_id=0)
    assert shard_next == op
    assert shard == [{"shard_id": 0, **line} for line in plain]
    response = get(url, name, shard_id=1)
    assert response.status_code == 404
    assert response.json()["status"]["error"] == "Not found: shard 1 not found"
    # a composite cursor is the merged feed's: a one-shard collection's `since` is an op_num
    assert get(url, name, since="0:1").status_code == 400


def test_a_shard_behind_its_retained_log_gets_410(server):
    url, name = server.url, "sharded_truncated"
    create(url, name, dim=512, wal_config={"wal_capacity_mb": 1, "wal_retain_closed": 0},
           optimizers_config={"flush_interval_sec": 1})
    for i in range(30):  # ~6 MB of WAL over three shards
        upsert(url, name, range(i * 100, i * 100 + 100), dim=512)
    shard_wals = {shard_id: server.storage / "collections" / name / "shards" / str(shard_id) / "wal" for shard_id in SHARDS}
    deadline = time.monotonic() + 30
    gone = None
    while time.monotonic() < deadline and gone is None:
        for shard_id in SHARDS:
            if get(url, name, since=0, shard_id=shard_id).status_code == 410:
                gone = shard_id
                break
        time.sleep(0.2)
    assert gone is not None, "a shard's log was truncated"
    response = get(url, name, since=0, shard_id=gone)
    message = response.json()["status"]["error"]
    assert f"shard {gone} of collection `{name}`" in message and "no longer retained" in message
    # the merged feed from the start is gone too, naming a shard whose log was truncated
    response = get(url, name)
    assert response.status_code == 410, response.text
    assert "no longer retained" in response.json()["status"]["error"]
    # from each shard's oldest retained operation on, the merged feed answers
    oldest = {s: min(int(p.name.split(".")[0]) for p in wal.glob("*.wal")) for s, wal in shard_wals.items()}
    cursor = ",".join(f"{s}:{oldest[s] - 1}" for s in SHARDS)
    lines, _ = follow(url, name, since=cursor, limit=1000)
    for shard_id in SHARDS:
        assert min(line["op_num"] for line in lines if line["shard_id"] == shard_id) == oldest[shard_id]


def test_a_reader_across_a_restart_sees_every_operation_once(fresh_server):
    url, name = fresh_server.url, "sharded_restarted"
    create(url, name)
    upsert(url, name, range(0, 30))
    seen, cursor = follow(url, name, limit=4)
    fresh_server.kill()  # the WALs alone hold these
    fresh_server.start()
    upsert(url, name, range(30, 60))
    more, cursor = follow(url, name, since=cursor, limit=4)
    seen += more
    keys = [(line["shard_id"], line["op_num"]) for line in seen]
    assert len(keys) == len(set(keys))
    assert sorted(upserted_ids(seen)) == list(range(60))
    for shard_id, op_num in cursor_of(str(cursor)).items():
        assert op_num == max(n for s, n in keys if s == shard_id)


def test_the_sharded_feed_needs_read_access_to_the_collection(tmp_path):
    key = "secret-key-for-the-feed-test-0123456789"
    proc = ServerProcess(tmp_path / "storage", extra_env={"PYDRANT__SERVICE__API_KEY": key, "PYDRANT__SERVICE__JWT_RBAC": "true"}).start()
    try:
        for name in ("mine", "theirs"):
            response = httpx.put(f"{proc.url}/collections/{name}", headers={"api-key": key}, timeout=30,
                                 json={"vectors": VECTOR, "shard_number": 3, "wal_config": SMALL_WAL})
            assert response.status_code == 200, response.text
        token = jwt.encode({"access": [{"collection": "mine", "access": "r"}]}, key, algorithm="HS256")

        def status(name, **params):
            return httpx.get(f"{proc.url}/collections/{name}/changes", params=params, timeout=10,
                             headers={"Authorization": f"Bearer {token}"}).status_code

        assert status("mine") == 200 and status("mine", shard_id=2) == 200
        assert status("theirs") == 403 and status("theirs", shard_id=2) == 403
        assert httpx.get(f"{proc.url}/collections/mine/changes", params={"shard_id": 1}, timeout=10).status_code == 401
    finally:
        proc.stop()


def test_custom_sharding_a_new_key_starts_at_its_beginning_and_a_deleted_one_drops_out(tmp_path):
    proc = ServerProcess(tmp_path / "storage", extra_env={"PYDRANT__CLUSTER__ENABLED": "true"}).start()
    try:
        url, name = proc.url, "keyed_feed"
        create(url, name, shard_number=2, sharding_method="custom")
        assert feed(url, name) == ([], "")  # no shard yet: an empty cursor
        assert get(url, name, shard_id=1).status_code == 404

        def key(shard_key, action="create"):
            path = "shards" if action == "create" else "shards/delete"
            response = httpx.request("PUT" if action == "create" else "POST", f"{url}/collections/{name}/{path}",
                                     json={"shard_key": shard_key}, timeout=30)
            assert response.status_code == 200, response.text

        def write(ids, shard_key):
            points = [{"id": i, "vector": [1.0, 0.5, 0.25, 0.0], "payload": {"i": i}} for i in ids]
            response = httpx.put(f"{url}/collections/{name}/points?wait=true", timeout=30,
                                 json={"points": points, "shard_key": shard_key})
            assert response.status_code == 200, response.text

        key("eu")  # shards 1 and 2
        write(range(10), "eu")
        lines, cursor = follow(url, name)
        assert {line["shard_id"] for line in lines} == {1, 2} and sorted(upserted_ids(lines)) == list(range(10))
        assert set(cursor_of(str(cursor))) == {1, 2}

        key("us")  # shards 3 and 4: not in the cursor, read from their start
        write(range(100, 110), "us")
        lines, cursor = follow(url, name, since=cursor)
        assert {line["shard_id"] for line in lines} == {3, 4} and sorted(upserted_ids(lines)) == list(range(100, 110))
        assert set(cursor_of(str(cursor))) == {1, 2, 3, 4}

        key("eu", "delete")  # a cursor naming its shards is not refused: they drop out of it
        write(range(110, 115), "us")
        lines, after = follow(url, name, since=cursor)
        assert sorted(upserted_ids(lines)) == list(range(110, 115))
        assert set(cursor_of(str(after))) == {3, 4}
        assert get(url, name, shard_id=1).status_code == 404
    finally:
        proc.stop()
