"""The app in process, for tests that need no server process: `running_app` gives Quart's
test client over a fresh storage in `tmp_path` (storage/ and snap/), with settings
`overrides` (dotted names, as `load_settings` takes them)."""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path

import trio

from pydrant.collection.sharded import initialise_collection, open_collection
from pydrant.config import load_settings
from pydrant.http.app import create_app


@asynccontextmanager
async def running_app(tmp_path: Path, overrides: dict | None = None):
    settings = load_settings(env={}, overrides={
        "storage.storage_path": str(tmp_path / "storage"), "storage.snapshots_path": str(tmp_path / "snap"),
        **(overrides or {}),
    })
    app = create_app(settings)
    async with app.test_app() as test_app:
        yield test_app.test_client()


@asynccontextmanager
async def running_collection(path: Path, config: dict | None = None):
    """The collection at `path` (made first with `config` when given; one shard or
    sharded as the config says), its tasks running; closed at the end."""
    if config is not None:
        initialise_collection(path, path.name, config)
    collection = await trio.to_thread.run_sync(open_collection, path)
    async with trio.open_nursery() as nursery:
        await nursery.start(collection.run)
        try:
            yield collection
        finally:
            await collection.close()
            nursery.cancel_scope.cancel()


async def count_while_recovering(client, collection: str, recover_url: str, location: str) -> list[tuple[int, str]]:
    """Recover `location` through `recover_url` three times while counting `collection`'s
    points without pause: every count's (status, first 200 characters of the body)."""
    answers: list[tuple[int, str]] = []
    recovered = trio.Event()

    async def recover_three_times() -> None:
        for _ in range(3):
            r = await client.put(recover_url, json={"location": location})
            assert r.status_code == 200, await r.get_data()
        recovered.set()

    async def keep_counting() -> None:
        while not recovered.is_set():
            r = await client.post(f"/collections/{collection}/points/count", json={"exact": True})
            answers.append((r.status_code, (await r.get_data()).decode()[:200]))
            await trio.sleep(0)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(recover_three_times)
        nursery.start_soon(keep_counting)
    return answers
