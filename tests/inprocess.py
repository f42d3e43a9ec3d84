"""The app in process, for tests that need no server process: `running_app` gives Quart's
test client over a fresh storage in `tmp_path` (storage/ and snap/), with settings
`overrides` (dotted names, as `load_settings` takes them)."""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path

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
