"""`pydrant serve`'s start-up (http/server.py): the garbage collector paused during the
start and resumed when the app has started (before hypercorn binds), or when the start
fails."""

from __future__ import annotations

import gc

import pytest

from pydrant.config import load_settings
from pydrant.http import server


@pytest.fixture
def collector_restored():
    yield
    gc.enable()


async def test_the_collector_resumes_when_the_app_has_started(monkeypatch, collector_restored):
    """Paused while the app starts; when it reports its startup complete, one full
    collection and the collector resumed, both before the server (which binds its sockets
    only then) hears of it. Other lifespan messages and requests pass untouched."""
    events = []
    real_collect = gc.collect

    def collect(generation=2):
        events.append(("collect", generation, gc.isenabled()))
        return real_collect(generation)

    async def app(scope, receive, send):
        events.append(("app", scope["type"], gc.isenabled()))
        if scope["type"] == "lifespan":
            await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
        else:
            await send({"type": "http.response.start", "status": 200, "headers": []})

    async def send(message):
        events.append(("sent", message["type"], gc.isenabled()))

    monkeypatch.setattr(gc, "collect", collect)
    middleware = server.CollectorResumedAtStartup(app)
    gc.disable()
    await middleware({"type": "lifespan"}, None, send)
    assert events == [
        ("app", "lifespan", False),
        ("collect", 2, False),
        ("sent", "lifespan.startup.complete", True),
        ("sent", "lifespan.shutdown.complete", True),
    ]
    events.clear()
    await middleware({"type": "http"}, None, send)
    assert events == [("app", "http", True), ("sent", "http.response.start", True)]


def test_a_failed_start_resumes_the_collector(tmp_path, collector_restored):
    """A storage root that is a file: the app's startup fails (before anything binds), the
    failure reaches the caller, and the collector runs again."""
    root = tmp_path / "not-a-directory"
    root.write_text("")
    settings = load_settings(env={}, overrides={
        "storage.storage_path": str(root), "storage.snapshots_path": str(tmp_path / "snap"), "service.http_port": 0,
    })
    with pytest.raises(BaseExceptionGroup) as caught:  # hypercorn's and trio's nurseries
        server.serve(settings)
    assert "Lifespan failure in startup" in repr(caught.value) and "Not a directory" in repr(caught.value)
    assert gc.isenabled()


def test_serve_starts_the_app_with_the_collector_paused_and_the_resume_hook_installed(tmp_path, monkeypatch, collector_restored):
    """What `serve` hands to trio: the app made with the collector paused (its imports
    and the storage's open happen then), wrapped so that startup-complete resumes it."""
    seen = []

    def fake_run(async_fn, settings, app):
        seen.append((async_fn, gc.isenabled(), app.asgi_app))

    monkeypatch.setattr(server.trio, "run", fake_run)
    server.serve(load_settings(env={}, overrides={"storage.storage_path": str(tmp_path / "s"), "storage.snapshots_path": str(tmp_path / "snap")}))
    [(async_fn, enabled_while_running, asgi_app)] = seen
    assert async_fn is server.serve_async
    assert enabled_while_running is False
    assert isinstance(asgi_app, server.CollectorResumedAtStartup)
    assert gc.isenabled()  # and on again when serve returns
