"""Run the app under hypercorn's trio worker: `pydrant serve`.

Shutdown on SIGINT/SIGTERM is graceful: hypercorn stops accepting connections and lets
in-flight requests finish, then the app's `after_serving` hook flushes every collection.
"""

from __future__ import annotations

import logging
import signal
from pathlib import Path

import trio
from hypercorn.config import Config
from hypercorn.trio import serve as hypercorn_serve

from pydrant.http.app import create_app

log = logging.getLogger("pydrant.server")


def hypercorn_config(settings) -> Config:
    service = settings.service
    config = Config()
    config.bind = [f"{_host_for_bind(service.host)}:{service.http_port}"]
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    config.graceful_timeout = 30
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


async def _wait_for_signal(task_status=trio.TASK_STATUS_IGNORED) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        task_status.started()
        async for signum in signals:
            log.info("received %s: shutting down", signal.Signals(signum).name)
            return


async def serve_async(settings, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
    app = create_app(settings)
    config = hypercorn_config(settings)
    log.info(
        "pydrant listening on http://%s:%d, storage at %s",
        settings.service.host, settings.service.http_port, Path(settings.storage.storage_path).resolve(),
    )
    await hypercorn_serve(app, config, shutdown_trigger=_wait_for_signal, task_status=task_status)


def serve(settings) -> None:
    trio.run(serve_async, settings)
