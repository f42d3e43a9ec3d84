"""Shared pieces of the I/O fault tests: a server started under a command prefix (fiu-run),
a concurrent write load with a model of the acknowledged history, and the checks.

Each worker thread owns a disjoint range of point ids, so its model of them is exact. A
write answered 200 is acknowledged and goes into the model. A write answered with an error
may still have been logged (a 500 after the WAL append, when the apply failed): its point
becomes *uncertain* (stored state must be the state before or after it) and the worker
leaves that point alone until `settle` has read what the server holds. An error that the
test knows was refused before the WAL (`certain_refusal`) leaves its point certain.
"""

from __future__ import annotations

import contextlib
import errno
import os
import random
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from serverproc import ServerProcess

VECTOR_SIZE = 4
IDS_PER_WORKER = 50


class PrefixedServer(ServerProcess):
    """A ServerProcess started as `prefix + [python, -m, pydrant.cli, serve]` (fiu-run)."""

    def __init__(self, storage, prefix=(), **kwargs):
        super().__init__(storage, **kwargs)
        self.prefix = list(prefix)

    def command(self) -> list[str]:
        return [*self.prefix, *super().command()]

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def create_collection(url: str, name: str, **extra) -> None:
    body = {"vectors": {"size": VECTOR_SIZE, "distance": "Euclid"}, "optimizers_config": {"flush_interval_sec": 1}}
    body.update(extra)
    response = httpx.put(f"{url}/collections/{name}", json=body, timeout=30)
    assert response.status_code == 200, response.text


def is_envelope_error(response: httpx.Response) -> bool:
    """Qdrant's error envelope: {"status": {"error": "..."}, "time": ...}."""
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body.get("status"), dict) and isinstance(body["status"].get("error"), str) and body["status"]["error"] != ""


class Worker(threading.Thread):
    def __init__(self, url: str, collection: str, index: int, seed: int, certain_refusal=lambda r: False):
        super().__init__(daemon=True)
        self.url = url
        self.collection = collection
        self.ids = list(range(index * IDS_PER_WORKER, (index + 1) * IDS_PER_WORKER))
        self.rng = random.Random(seed)
        self.model: dict = {}  # id -> payload (absent: deleted or never written); acknowledged only
        self.uncertain: dict = {}  # id -> [state before, state if applied]
        self.certain_refusal = certain_refusal
        self.acknowledged = 0
        self.errors: list[tuple[int, str]] = []  # (status, text) of every error answer
        self.bad_answers: list[str] = []  # errors not in Qdrant's envelope, or not 4xx/5xx
        self.transport_errors = 0
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.trace: dict = {}  # id -> [(request, answer)]: shown when a point mismatches
        # Held for each request and its bookkeeping: `paused()` takes it, so a check of
        # the server against the model sees no request half-way.
        self.turn = threading.Lock()

    def run(self):
        with httpx.Client(base_url=self.url, timeout=30) as http:
            while not self.stop.is_set():
                with self.lock:
                    free = [i for i in self.ids if i not in self.uncertain]
                if not free:
                    time.sleep(0.05)
                    continue
                with self.turn:
                    self.one_request(http, free)

    def one_request(self, http, free) -> None:
        point_id = self.rng.choice(free)
        new_state, (method, path, options) = self.next_operation(point_id)
        try:
            response = http.request(method, path, **options)
        except httpx.HTTPError:
            self.transport_errors += 1
            with self.lock:
                self.uncertain[point_id] = [self.model.get(point_id), new_state]
            time.sleep(0.05)
            return
        with self.lock:
            self.trace.setdefault(point_id, []).append(
                (f"{method} {path.rsplit('/', 1)[-1]} -> {new_state!r:.40}", f"{response.status_code} {response.text[:90]}")
            )
            if response.status_code == 200:
                self.model_apply(point_id, new_state)
                self.acknowledged += 1
                return
            self.errors.append((response.status_code, response.text))
            if not (400 <= response.status_code < 600 and is_envelope_error(response)):
                self.bad_answers.append(f"{response.status_code} {response.text[:300]}")
            if not self.certain_refusal(response):
                self.uncertain[point_id] = [self.model.get(point_id), new_state]
        time.sleep(0.01)  # refused writes come back fast: do not spin

    def model_apply(self, point_id, state):
        if state is None:
            self.model.pop(point_id, None)
        else:
            self.model[point_id] = state

    def next_operation(self, point_id):
        current = self.model.get(point_id)
        wait = "true" if self.rng.random() < 0.5 else "false"
        path = f"/collections/{self.collection}/points"
        roll = self.rng.random()
        if current is not None and roll < 0.2:
            return None, ("POST", f"{path}/delete?wait={wait}", {"json": {"points": [point_id]}})
        if current is not None and roll < 0.5:
            extra = {"tick": self.rng.randrange(10**6)}
            request = ("POST", f"{path}/payload?wait={wait}", {"json": {"payload": extra, "points": [point_id]}})
            return {**current, **extra}, request
        payload = {"v": self.rng.randrange(10**6), "w": "x" * self.rng.randrange(200)}
        vector = [float(self.rng.randrange(100)) for _ in range(VECTOR_SIZE)]
        body = {"points": [{"id": point_id, "vector": vector, "payload": payload}]}
        return payload, ("PUT", f"{path}?wait={wait}", {"json": body})

    def settle(self, stored: dict) -> list[str]:
        """Check every point against the model (uncertain ones: before or after), then take
        what the server holds for the uncertain ones. Returns the mismatches."""
        problems = []
        with self.lock:
            for point_id in self.ids:
                got = stored.get(point_id)
                allowed = self.uncertain.get(point_id, [self.model.get(point_id)])
                if got not in allowed:
                    problems.append(
                        f"point {point_id}: stored {got!r}, expected one of {allowed!r}; history {self.trace.get(point_id, [])[-6:]}"
                    )
            for point_id in self.uncertain:
                self.model_apply(point_id, stored.get(point_id))
            self.uncertain.clear()
        return problems


def stored_payloads(url: str, collection: str) -> dict:
    points, offset = {}, None
    with httpx.Client(base_url=url, timeout=30) as http:
        while True:
            body = {"limit": 1000, "with_payload": True, **({"offset": offset} if offset is not None else {})}
            response = http.post(f"/collections/{collection}/points/scroll", json=body)
            assert response.status_code == 200, response.text
            result = response.json()["result"]
            points.update({p["id"]: p["payload"] for p in result["points"]})
            offset = result["next_page_offset"]
            if offset is None:
                return points


def check_reads(url: str, collection: str) -> list[str]:
    """Retrieve, scroll, search, count and collection info: each must answer 200."""
    failures = []
    requests = [
        ("POST", f"/collections/{collection}/points", {"ids": [0, 1, 2], "with_payload": True}),
        ("POST", f"/collections/{collection}/points/scroll", {"limit": 10}),
        ("POST", f"/collections/{collection}/points/search", {"vector": [1.0] * VECTOR_SIZE, "limit": 5}),
        ("POST", f"/collections/{collection}/points/query", {"query": [1.0] * VECTOR_SIZE, "limit": 5}),
        ("POST", f"/collections/{collection}/points/count", {"exact": True}),
        ("GET", f"/collections/{collection}", None),
        ("GET", "/collections", None),
    ]
    with httpx.Client(base_url=url, timeout=30) as http:
        for method, path, body in requests:
            response = http.request(method, path, json=body) if body is not None else http.request(method, path)
            if response.status_code != 200:
                failures.append(f"{method} {path}: {response.status_code} {response.text[:300]}")
    return failures


def issues(url: str) -> list[dict]:
    response = httpx.get(f"{url}/issues", timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["result"]["issues"]


def wait_until(predicate, timeout: float, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def probe_write(url: str, collection: str, point_id: int) -> httpx.Response:
    body = {"points": [{"id": point_id, "vector": [0.5] * VECTOR_SIZE, "payload": {"probe": True}}]}
    return httpx.put(f"{url}/collections/{collection}/points?wait=true", json=body, timeout=30)


# -- a real full disk: a small tmpfs and a ballast file ---------------------------------------

MB = 1024 * 1024


@contextlib.contextmanager
def mounted_tmpfs(mount_point: Path, size_mb: int):
    """A tmpfs of `size_mb` mounted at `mount_point` (an existing directory) for the block;
    the test is skipped with the reason where mounting is not permitted (needs root)."""
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(mount_point)],
        capture_output=True, text=True,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN): {result.stderr.strip()}")
    try:
        yield mount_point
    finally:
        if subprocess.run(["umount", str(mount_point)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mount_point)], capture_output=True)


def free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def fill(path: Path, leave: int) -> Path:
    """Write a ballast file until only `leave` bytes are free (0: until ENOSPC)."""
    ballast = path / "ballast"
    chunk = b"\xa5" * MB
    with open(ballast, "wb") as f:
        while True:
            room = free_bytes(path) - leave
            if room <= 0 and leave:
                break
            try:
                f.write(chunk if leave == 0 or room >= MB else chunk[:room])
                f.flush()
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
                break
    return ballast
