"""`pydrant serve`'s start-up order (http/server.py): the garbage collector paused during
the start and resumed once the server listens, or when the start fails; the collections
opening ahead of the app (the storage's own tests: tests/storage/test_startup_logs.py)."""

from __future__ import annotations

import gc

import pytest
import trio

from pydrant.config import load_settings
from pydrant.http import server


@pytest.fixture
def collector_restored():
    yield
    gc.enable()


async def test_the_collector_resumes_once_the_server_listens(monkeypatch, collector_restored):
    seen_while_starting = []

    async def fake_serve_async(settings, app, *, task_status=trio.TASK_STATUS_IGNORED):
        seen_while_starting.append(gc.isenabled())
        task_status.started()
        await trio.sleep_forever()

    monkeypatch.setattr(server, "serve_async", fake_serve_async)
    gc.disable()
    with trio.move_on_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server._serve_then_resume_gc, None, None)
            while not gc.isenabled():
                await trio.sleep(0.01)
            nursery.cancel_scope.cancel()
    assert seen_while_starting == [False]
    assert gc.isenabled()


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
