"""Snapshot uploads stream the multipart `snapshot` part straight into `pending/`
(pydrant/http/snapshots.py `_receive_upload`): a good upload recovers, and every malformed
body is a 400 (or 413 over the body limit) that leaves no file behind."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from inprocess import running_app

pytestmark = pytest.mark.trio

BOUNDARY = "pydrant-test-boundary"
HEADERS = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


def part(name: str, data: bytes, filename: str | None = "x.snapshot") -> bytes:
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
    return (f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode() + data + b"\r\n"


def body(*parts: bytes) -> bytes:
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


async def make_snapshot(client, tmp_path: Path) -> bytes:
    assert (await client.put("/collections/c", json={"vectors": {"size": 2, "distance": "Dot"}})).status_code == 200
    points = [{"id": i, "vector": [1.0, float(i)], "payload": {"n": i}} for i in range(50)]
    assert (await client.put("/collections/c/points?wait=true", json={"points": points})).status_code == 200
    created = json.loads(await (await client.post("/collections/c/snapshots")).get_data())["result"]
    return (tmp_path / "snap" / "c" / created["name"]).read_bytes()


def pending_files(tmp_path: Path) -> list[str]:
    pending = tmp_path / "storage" / "pending"
    return sorted(p.name for p in pending.iterdir()) if pending.exists() else []


async def error_of(response) -> str:
    return json.loads(await response.get_data())["status"]["error"]


async def test_a_streamed_upload_recovers_with_other_fields_around_it(tmp_path):
    async with running_app(tmp_path) as client:
        data = await make_snapshot(client, tmp_path)
        multipart = body(part("note", b"ignored", filename=None), part("snapshot", data), part("other", b"zz"))
        r = await client.post("/collections/copy/snapshots/upload", data=multipart, headers=HEADERS)
        assert r.status_code == 200, await r.get_data()
        r = await client.post("/collections/copy/points/count", json={"exact": True})
        assert json.loads(await r.get_data())["result"]["count"] == 50
    assert pending_files(tmp_path) == []


async def test_an_upload_arriving_in_chunks_of_several_mb_is_taken(tmp_path):
    """The body comes in one piece here (Quart's test client), as a lagging reader sees
    it from hypercorn: werkzeug's decoder must not refuse a large input chunk (it did, 413,
    with max_form_memory_size set)."""
    async with running_app(tmp_path) as client:
        assert (await client.put("/collections/big", json={"vectors": {"size": 64, "distance": "Dot"}})).status_code == 200
        points = [{"id": i, "vector": [float((i * 7 + k) % 13) for k in range(64)], "payload": {"blob": random.Random(i).randbytes(1000).hex()}}
                  for i in range(3000)]
        for start in range(0, len(points), 1000):
            r = await client.put("/collections/big/points?wait=true", json={"points": points[start:start + 1000]})
            assert r.status_code == 200
        created = json.loads(await (await client.post("/collections/big/snapshots")).get_data())["result"]
        assert created["size"] > 3 << 20
        data = (tmp_path / "snap" / "big" / created["name"]).read_bytes()
        r = await client.post("/collections/copy/snapshots/upload", data=body(part("snapshot", data)), headers=HEADERS)
        assert r.status_code == 200, await r.get_data()
        r = await client.post("/collections/copy/points/count", json={"exact": True})
        assert json.loads(await r.get_data())["result"]["count"] == 3000
    assert pending_files(tmp_path) == []


async def test_checksum_is_computed_while_streaming(tmp_path):
    import hashlib

    async with running_app(tmp_path) as client:
        data = await make_snapshot(client, tmp_path)
        good = hashlib.sha256(data).hexdigest()
        r = await client.post(f"/collections/copy/snapshots/upload?checksum={good}", data=body(part("snapshot", data)), headers=HEADERS)
        assert r.status_code == 200
        wrong = "0" * 64
        r = await client.post(f"/collections/other/snapshots/upload?checksum={wrong}", data=body(part("snapshot", data)), headers=HEADERS)
        assert r.status_code == 400 and (await error_of(r)).startswith("Checksum mismatch")
    assert pending_files(tmp_path) == []


@pytest.mark.parametrize(("payload", "headers", "message"), [
    (b'{"a": 1}', {"Content-Type": "application/json"}, "expected multipart/form-data with a boundary"),
    (body(part("other", b"data")), HEADERS, "the multipart body has no `snapshot` file"),
    (body(part("snapshot", b"data", filename=None)), HEADERS, "the multipart body has no `snapshot` file"),
    (part("snapshot", b"x" * 5000), HEADERS, "cannot read the multipart body"),  # no closing boundary
])
async def test_malformed_bodies_are_400_and_leave_nothing(tmp_path, payload, headers, message):
    async with running_app(tmp_path) as client:
        r = await client.post("/collections/c/snapshots/upload", data=payload, headers=headers)
        assert r.status_code == 400
        assert message in await error_of(r)
    assert pending_files(tmp_path) == []


async def test_over_the_body_limit_is_413_and_leaves_nothing(tmp_path):
    async with running_app(tmp_path, {"service.max_request_size_mb": 1}) as client:
        r = await client.post("/collections/c/snapshots/upload", data=body(part("snapshot", b"\x01" * (2 << 20))), headers=HEADERS)
        assert r.status_code == 413
    assert pending_files(tmp_path) == []
