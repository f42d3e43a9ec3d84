"""Pieces the REST benchmarks share: a keep-alive client that fails loudly."""

from __future__ import annotations

import http.client
import os
import platform
import subprocess

import orjson


class Client:
    """One keep-alive HTTP connection; raises on any non-200 answer."""

    def __init__(self, port: int, timeout: float = 120):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def call(self, method: str, path: str, body: bytes | None = None) -> bytes:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        self.conn.request(method, path, body=body, headers=headers)
        response = self.conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"{method} {path}: {response.status} {data[:300]!r}")
        return data

    def json(self, method: str, path: str, body=None):
        raw = None if body is None else orjson.dumps(body)
        return orjson.loads(self.call(method, path, raw))["result"]

    def close(self) -> None:
        self.conn.close()


def machine() -> str:
    """The CPU model and count as `lscpu` reports them (AVX-512 noted: the kernels use it)."""
    model, cpus, avx512 = platform.processor() or platform.machine(), os.cpu_count(), False
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        out = ""
    for line in out.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "Model name":
            model = value.strip()
        elif key.strip() == "CPU(s)" and value.strip().isdigit():
            cpus = int(value.strip())
        elif key.strip() == "Flags":
            avx512 = "avx512f" in value.split()
    return f"{model}, {cpus} CPUs ({platform.machine()}{', AVX-512' if avx512 else ''})"
