"""Run the app under hypercorn's trio worker: `pydrant serve`.

Shutdown on SIGINT/SIGTERM is graceful: pydrant waits (up to 30 s) until no request is in
flight, then hypercorn stops accepting connections, gives requests that raced in
`graceful_timeout` to finish, and the app's `after_serving` hook flushes every collection.

Why wait ourselves: hypercorn's trio worker keeps idle keep-alive connections open until
`graceful_timeout` ends (seen with hypercorn 0.18), so a long grace made every stop with a
client connected (qdrant-client keeps its connections alive) take the whole grace period.
Counting requests in flight lets the grace be short without cutting a slow request.

Start-up (`serve`): `/readyz` says 200 only once every module is imported and every
collection has loaded (hypercorn binds its sockets only after the app's startup), and a
module that fails to import fails the start: nothing is imported lazily at request time.
Python's cyclic garbage collector is paused for the start. Start-up makes hundreds of
thousands of long-lived objects (classes, request models, numba's type registry, the
collections' segments and payload indexes) and almost no cyclic garbage, and the collector
went over the growing heap again and again meanwhile: on the benchmark machine a server
with two collections of 100,000 x 384 points was ready after 2.55 s of CPU instead of 3.56 s
(2.85 s instead of 4.29 s after spawn, medians of 10 interleaved starts); an empty
server's start (~1.0 s of CPU, all imports) gains too little to measure. When the app
reports its startup complete (`CollectorResumedAtStartup`), one full collection (~0.05-0.1 s)
sweeps what start-up left, before hypercorn binds, so that pass counts in the start instead
of landing on the first requests; then the collector runs as usual. That is why this module
imports the app (and with it the web and storage stacks) only inside `serve`/`serve_async`:
the imports run with the collector paused.
"""

from __future__ import annotations

import gc
import logging
import signal
from functools import partial
from pathlib import Path

import trio
from hypercorn.config import Config
from hypercorn.trio import serve as hypercorn_serve

log = logging.getLogger("pydrant.server")

DRAIN_SECONDS = 30  # longest wait for requests in flight when a stop signal arrives
RACE_GRACE_SECONDS = 2  # for requests that arrive while the listeners close


class RequestsInFlight:
    """ASGI middleware counting the HTTP requests the app is handling."""

    def __init__(self, asgi_app):
        self.asgi_app = asgi_app
        self.count = 0

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.asgi_app(scope, receive, send)
        self.count += 1
        try:
            return await self.asgi_app(scope, receive, send)
        finally:
            self.count -= 1

    async def drained(self) -> None:
        with trio.move_on_after(DRAIN_SECONDS):
            while self.count:
                await trio.sleep(0.01)


class CollectorResumedAtStartup:
    """ASGI middleware for a start with the garbage collector paused (`serve`): when the
    app reports its lifespan startup complete, one full collection, then the collector
    resumes, before hypercorn hears of it (it binds its sockets only then), so no request
    meets that pass."""

    def __init__(self, asgi_app):
        self.asgi_app = asgi_app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "lifespan":
            return await self.asgi_app(scope, receive, send)

        async def send_resuming_first(message):
            if message["type"] == "lifespan.startup.complete":
                gc.collect()
                gc.enable()
            await send(message)

        return await self.asgi_app(scope, receive, send_resuming_first)


def hypercorn_config(settings) -> Config:
    service = settings.service
    config = Config()
    config.bind = [f"{_host_for_bind(service.host)}:{service.http_port}"]
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    config.graceful_timeout = RACE_GRACE_SECONDS
    config.keep_alive_timeout = 75
    if service.enable_tls:
        tls = settings.tls
        config.certfile = tls.cert
        config.keyfile = tls.key
        if service.verify_https_client_certificate and tls.ca_cert:
            config.ca_certs = tls.ca_cert
    return config


def _host_for_bind(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


async def _wait_for_signal(app, in_flight: RequestsInFlight, task_status=trio.TASK_STATUS_IGNORED) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        task_status.started()
        async for signum in signals:
            log.info("received %s: finishing %d requests in flight", signal.Signals(signum).name, in_flight.count)
            # Long-polls (the change feed) answer at once instead of holding the stop back.
            app.extensions["stopping"] = True
            await in_flight.drained()
            log.info("shutting down")
            return


async def serve_async(settings, app=None, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
    """Serve `app` (by default `create_app(settings)`) until SIGINT/SIGTERM. `started`
    once it listens, which is after every collection has loaded."""
    if app is None:
        from pydrant.http.app import create_app

        app = create_app(settings)
    in_flight = RequestsInFlight(app.asgi_app)
    app.asgi_app = in_flight
    config = hypercorn_config(settings)
    log.info(
        "pydrant listening on http://%s:%d, storage at %s",
        settings.service.host, settings.service.http_port, Path(settings.storage.storage_path).resolve(),
    )
    await hypercorn_serve(
        app, config, shutdown_trigger=partial(_wait_for_signal, app, in_flight), task_status=task_status
    )


def serve(settings) -> None:
    """`pydrant serve`: run until SIGINT/SIGTERM (blocking), the garbage collector paused
    until the app has started (module docstring)."""
    gc.disable()
    try:
        from pydrant.http.app import create_app  # the web and storage stacks: with the collector paused

        app = create_app(settings)
        app.asgi_app = CollectorResumedAtStartup(app.asgi_app)
        trio.run(serve_async, settings, app)
    finally:
        gc.enable()  # also when the start failed
