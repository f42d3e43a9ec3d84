"""Graceful stop: SIGTERM with a client's keep-alive connection open and writes in flight."""

import threading
import time

import httpx
import pytest

from serverproc import ServerProcess

pytestmark = pytest.mark.e2e


def test_sigterm_with_idle_keep_alive_connection_stops_promptly(tmp_path):
    server = ServerProcess(tmp_path / "storage").start()
    with httpx.Client(base_url=server.url, timeout=30) as http:  # keeps its connection alive
        assert http.put("/collections/c", json={"vectors": {"size": 2, "distance": "Dot"}}).status_code == 200
        body = {"points": [{"id": i, "vector": [i, 1]} for i in range(100)]}
        assert http.put("/collections/c/points?wait=false", json=body).status_code == 200
        started = time.monotonic()
        assert server.stop(timeout=20) == 0
        assert time.monotonic() - started < 10
    restarted = ServerProcess(tmp_path / "storage", port=server.port).start()
    try:
        count = httpx.post(f"{restarted.url}/collections/c/points/count", json={"exact": True}).json()
        assert count["result"]["count"] == 100
    finally:
        restarted.stop()


def test_writes_racing_a_sigterm_are_answered_or_refused_never_broken(tmp_path):
    server = ServerProcess(tmp_path / "storage").start()
    httpx.put(f"{server.url}/collections/c", json={"vectors": {"size": 64, "distance": "Dot"}}).raise_for_status()
    answers = []  # status codes, or "refused" once the server stopped listening

    def write():
        with httpx.Client(base_url=server.url, timeout=30) as http:
            for round_ in range(200):
                body = {"batch": {"ids": list(range(round_ * 500, (round_ + 1) * 500)),
                                  "vectors": [[float(i % 7)] * 64 for i in range(500)]}}
                try:
                    answers.append(http.put("/collections/c/points?wait=true", json=body).status_code)
                except httpx.TransportError:
                    answers.append("refused")
                    return

    writer = threading.Thread(target=write)
    writer.start()
    while len(answers) < 3:
        time.sleep(0.005)
    assert server.stop(timeout=40) == 0
    writer.join()
    acknowledged = [a for a in answers if a != "refused"]
    assert acknowledged and set(acknowledged) == {200}, answers

    restarted = ServerProcess(tmp_path / "storage", port=server.port).start()
    try:
        count = httpx.post(f"{restarted.url}/collections/c/points/count", json={"exact": True}).json()
        assert count["result"]["count"] >= 500 * len(acknowledged)
    finally:
        restarted.stop()


def test_sigterm_does_not_wait_for_a_change_feed_long_poll(tmp_path):
    server = ServerProcess(tmp_path / "storage").start()
    httpx.put(f"{server.url}/collections/c", json={"vectors": {"size": 2, "distance": "Dot"}}).raise_for_status()
    answers = []

    def follow():  # waits up to 60 s for an operation that never comes
        try:
            answers.append(httpx.get(f"{server.url}/collections/c/changes", params={"since": 0, "timeout": 60}, timeout=90))
        except httpx.TransportError as exc:
            answers.append(exc)

    reader = threading.Thread(target=follow)
    reader.start()
    time.sleep(1.0)  # the long-poll is waiting
    started = time.monotonic()
    assert server.stop(timeout=40) == 0
    assert time.monotonic() - started < 10  # not the 30 s drain nor the 60 s poll
    reader.join(timeout=10)
    assert answers and (not isinstance(answers[0], httpx.Response) or answers[0].status_code == 200)
