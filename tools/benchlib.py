"""Pieces the REST benchmarks share: a keep-alive client that fails loudly."""

from __future__ import annotations

import http.client

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
