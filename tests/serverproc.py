"""Start and stop a real `pydrant serve` process for end-to-end tests."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

STARTUP_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """One pydrant server on 127.0.0.1 with its storage in `storage`; restartable."""

    def __init__(self, storage: Path, port: int | None = None, extra_env: dict | None = None):
        self.storage = Path(storage)
        self.port = port or free_port()
        self.extra_env = extra_env or {}
        self.proc: subprocess.Popen | None = None
        self.log_path = self.storage.parent / f"server-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict:
        env = dict(os.environ)
        env.update(
            {
                "PYDRANT__SERVICE__HOST": "127.0.0.1",
                "PYDRANT__SERVICE__HTTP_PORT": str(self.port),
                "PYDRANT__STORAGE__STORAGE_PATH": str(self.storage),
                "PYDRANT__STORAGE__SNAPSHOTS_PATH": str(self.storage.parent / "snapshots"),
                "PYDRANT__LOG_LEVEL": "INFO",
            }
        )
        env.update(self.extra_env)
        return env

    def command(self) -> list[str]:
        return [sys.executable, "-m", "pydrant.cli", "serve"]

    def start(self) -> ServerProcess:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            self.command(),
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.storage.parent,
        )
        try:
            self.wait_ready()
        except BaseException:
            self.kill()  # a server that did not come up must not outlive the test
            raise
        return self

    def wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(self.url + "/readyz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server not ready after {STARTUP_TIMEOUT}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 30.0) -> int:
        """Graceful stop (SIGTERM): returns the exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to flush anything."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def discard_storage(self) -> None:
        """Remove the stopped server's storage and snapshots, keeping its log: a module's
        server holds dozens of collections, each with a preallocated 32 MB WAL, and leaving
        them until pytest's session-end clean-up made a full run peak at ~8 GB of disk."""
        assert self.proc is None or self.proc.poll() is not None, "stop the server first"
        shutil.rmtree(self.storage, ignore_errors=True)
        shutil.rmtree(self.storage.parent / "snapshots", ignore_errors=True)

    def restart(self) -> ServerProcess:
        self.stop()
        return self.start()
