"""The node's issue board: problems an operator should know of, served by `GET /issues`.

Like Qdrant's `issues` crate, the board is process-wide: any layer submits an issue under
a stable id (`<CODE>/<collection>[/<detail>]`) and resolves it when the cause is gone, so a
collection that failed to load, a WAL that cannot be written or a full disk shows up in
`/issues` and in telemetry without the layer knowing about HTTP. Submitting the same id
again replaces the record (its timestamp is the latest sighting).

Record shape (Qdrant's `IssueRecord`): `{"id", "description", "solution", "timestamp"}`,
where `solution` is `{"refactor": text}`, `{"immediate": {...}}` or `"none"`.
"""

from __future__ import annotations

import threading
from datetime import datetime, UTC


class IssueBoard:
    def __init__(self) -> None:
        self._lock = threading.Lock()  # submitted from worker threads and the event loop
        self._records: dict[str, dict] = {}

    def submit(self, issue_id: str, description: str, solution: str | None = None) -> None:
        record = {
            "id": issue_id,
            "description": description,
            "solution": {"refactor": solution} if solution else "none",
            "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        }
        with self._lock:
            self._records[issue_id] = record

    def resolve(self, issue_id: str) -> None:
        with self._lock:
            self._records.pop(issue_id, None)

    def resolve_prefix(self, prefix: str) -> None:
        """Drop every issue whose id starts with `prefix` (e.g. all of one collection's)."""
        with self._lock:
            for issue_id in [i for i in self._records if i.startswith(prefix)]:
                del self._records[issue_id]

    def has(self, issue_id: str) -> bool:
        with self._lock:
            return issue_id in self._records

    def report(self) -> list[dict]:
        with self._lock:
            return sorted((dict(r) for r in self._records.values()), key=lambda r: r["id"])

    def clear(self) -> None:
        with self._lock:
            self._records.clear()


# The one board of this process (Qdrant's issues are process-global too).
BOARD = IssueBoard()


def collection_issue_id(code: str, collection: str, detail: str | None = None) -> str:
    return f"{code}/{collection}" + (f"/{detail}" if detail else "")
