"""`pydrant serve`'s start-up order (http/server.py): the garbage collector paused during
the start and resumed when the app has started (before hypercorn binds), or when the start
fails; the collections opening ahead of the app (the storage's side of it:
tests/storage/test_startup_logs.py)."""

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


def test_a_failed_start_resumes_the_collector(monkeypatch, collector_restored):
    def refuse(settings):
        assert not gc.isenabled()
        raise RuntimeError("the web stack did not import")

    monkeypatch.setattr(server, "_app_over_loading_storage", refuse)
    with pytest.raises(RuntimeError, match="did not import"):
        server.serve(load_settings(env={}))
    assert gc.isenabled()


def test_the_app_is_made_over_a_storage_already_loading(tmp_path, monkeypatch):
    """The collections start opening before the web stack is imported, and create_app is
    given that table of content instead of making its own."""
    from pydrant.storage import toc as toc_module

    started = []
    monkeypatch.setattr(toc_module.TableOfContent, "start_loading", lambda self: started.append(self))
    settings = load_settings(env={}, overrides={"storage.storage_path": str(tmp_path / "s"), "storage.snapshots_path": str(tmp_path / "snap")})
    app = server._app_over_loading_storage(settings)
    assert len(started) == 1
    assert app.extensions["toc"] is started[0]
    assert app.extensions["toc"].root == tmp_path / "s"
