"""The Quart-Trio application factory.

`create_app(settings)` builds the app; `hypercorn -k trio 'pydrant.http.app:create_app()'`
also works (settings then come from the environment and config/config.yaml). The table of
content is started in the app's lifespan nursery with `nursery.start`, so the server
accepts requests only after every collection has recovered from its WAL.
"""

from __future__ import annotations

import logging
import math
import time

import trio
from quart import g, request
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException

from pydrant import issues
from pydrant.collection import diskspace
from pydrant.collection.collection import configure_wal_retention
from pydrant.optimizer import budget as optimizer_budget
from pydrant.errors import PydrantError, RateLimited
from pydrant.http import (
    aliases,
    changes,
    cluster,
    collections,
    discover,
    facet,
    indexes,
    point_in_time,
    points,
    query,
    recommend,
    retrieve,
    search,
    service,
    snapshots,
)
from pydrant.http.access_log import record_request
from pydrant.http.auth import authorize
from pydrant.http.envelope import error
from pydrant.http.errors import status_for
from pydrant.http.metrics import Metrics
from pydrant.storage.toc import TableOfContent

log = logging.getLogger("pydrant.http")

BLUEPRINTS = (service, collections, aliases, points, retrieve, indexes, facet, search, recommend, discover, query, snapshots, point_in_time, changes, cluster)


def create_app(settings=None) -> QuartTrio:
    if settings is None:
        from pydrant.config import load_settings

        settings = load_settings()
    app = QuartTrio("pydrant")
    app.config["MAX_CONTENT_LENGTH"] = settings.service.max_request_size_mb * 1024 * 1024
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = True
    app.extensions["settings"] = settings
    diskspace.configure(settings.storage.min_free_disk_mb)
    issues.configure_slow_query(settings.service.slow_query_secs)
    configure_wal_retention(settings.storage.wal.wal_retain_age_sec, settings.storage.wal.wal_retain_size_mb)
    performance = settings.storage.performance
    optimizer_budget.configure(performance.max_optimization_threads, performance.optimizer_cpu_budget)
    app.extensions["toc"] = toc = TableOfContent.from_settings(settings)
    app.extensions["metrics"] = Metrics()
    app.extensions["locks"] = {"write": False, "error_message": None}
    app.extensions["started_at"] = time.time()
    for module in BLUEPRINTS:
        app.register_blueprint(module.blueprint)
    _install_hooks(app, settings)
    _install_error_handlers(app)

    @app.before_serving
    async def start_storage():
        app.extensions["storage_scope"] = scope = trio.CancelScope()

        async def run_toc(task_status=trio.TASK_STATUS_IGNORED):
            with scope:
                await toc.run(task_status=task_status)

        await app.nursery.start(run_toc)

    @app.after_serving
    async def stop_storage():
        scope = app.extensions.get("storage_scope")
        if scope is not None:
            scope.cancel()
        # wait until every collection has flushed and closed its files
        with trio.move_on_after(60):
            while toc.ready or any(not c._closed for c in toc.collections.values()):
                await trio.sleep(0.01)
        log.info("storage flushed and closed")

    return app


def _install_hooks(app: QuartTrio, settings) -> None:
    toc = app.extensions["toc"]

    @app.before_request
    async def start_timer():
        g.started = time.perf_counter()
        refused = await authorize(settings, request, toc)
        if refused is not None:
            return refused
        name = (request.view_args or {}).get("name")
        if name is not None and toc.swapping:
            await toc.wait_for_swap(name)  # a recovery is swapping it: wait, do not 404
        return None

    @app.after_request
    async def finish(response):
        await _discard_unread_body()
        rule = request.url_rule.rule if request.url_rule is not None else "unmatched"
        seconds = time.perf_counter() - g.get("started", time.perf_counter())
        app.extensions["metrics"].observe(request.method, rule, response.status_code, seconds)
        record_request(request, response, seconds)
        if settings.service.enable_cors:
            response.headers["Access-Control-Allow-Origin"] = request.headers.get("Origin", "*")
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
            response.headers["Access-Control-Allow-Headers"] = request.headers.get(
                "Access-Control-Request-Headers", "*"
            )
        return response


def _install_error_handlers(app: QuartTrio) -> None:
    @app.errorhandler(PydrantError)
    async def engine_error(exc: PydrantError):
        status = status_for(exc)
        if status >= 500:
            log.error("internal error on %s %s: %s", request.method, request.path, exc.message)
        response = error(status, exc.message)
        if isinstance(exc, RateLimited) and exc.retry_after_s is not None:
            # Qdrant: the wait in whole seconds, rounded up so clients do not retry too early
            response.headers["Retry-After"] = str(math.ceil(exc.retry_after_s))
        return response

    @app.errorhandler(HTTPException)
    async def http_error(exc: HTTPException):
        if exc.code == 413:
            limit = app.config["MAX_CONTENT_LENGTH"] // (1024 * 1024)
            return error(413, f"Payload too large: the request body exceeds max_request_size_mb ({limit} MB)")
        if exc.code == 404:
            return error(404, f"Not found: no such endpoint {request.method} {request.path}")
        if exc.code == 405:
            return error(405, f"Method {request.method} is not allowed for {request.path}")
        return error(exc.code or 500, exc.description or exc.name)

    @app.errorhandler(Exception)
    async def unexpected(exc: Exception):
        log.exception("unexpected error on %s %s", request.method, request.path)
        return error(500, f"Service internal error: {type(exc).__name__}: {exc}")


async def _discard_unread_body() -> None:
    """Read what is left of the request body before answering (a no-op when the handler
    read it).

    A handler may answer without reading the body: an error raised first (unknown
    collection, bad query parameter), or an endpoint that ignores a body. The body then
    stayed unread, and hypercorn sometimes stalled the next request on that keep-alive
    connection until the client timed out (qdrant-client reuses connections). An oversized
    body is not read: hypercorn closes that connection anyway.
    """
    try:
        await request.get_data(cache=False)
    except Exception:  # e.g. 413 while reading: nothing more to drain
        pass
