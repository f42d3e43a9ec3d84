"""The node's issue board: problems an operator should know of, served by `GET /issues`.

Like Qdrant's `issues` crate, the board is process-wide: any layer submits an issue under
a stable id (`<CODE>/<collection>[/<detail>]`) and resolves it when the cause is gone, so a
collection that failed to load, a WAL that cannot be written or a full disk shows up in
`/issues` and in telemetry without the layer knowing about HTTP. Submitting the same id
again replaces the record (its timestamp is the latest sighting).

Record shape (Qdrant's `IssueRecord`, lib/common/issues): `{"id", "description",
"solution", "timestamp"}`, where `solution` is serde's snake_case `Solution`: `{"refactor":
text}`, `{"immediate": {"message", "action": {"method", "uri", "headers", "body"}}}`,
`{"immediate_choice": [...]}` or `"none"`.

The detectors that submit here: a collection that failed to load (storage/toc.py), WAL
write, apply and flush failures (collection/collection.py), a disk almost full
(collection/diskspace.py), unindexed fields of slow filtered reads and an optimizer that
failed, is stuck or leaves too many segments (collection/problems.py). docs/observability.md
"Issues" lists them.
"""

from __future__ import annotations

import threading
from datetime import datetime, UTC


class IssueBoard:
    def __init__(self) -> None:
        self._lock = threading.Lock()  # submitted from worker threads and the event loop
        self._records: dict[str, dict] = {}

    def submit(self, issue_id: str, description: str, solution: str | dict | None = None, *, replace: bool = True) -> bool:
        """Record an issue: `solution` is refactor text, a `Solution` object (`immediate`,
        `immediate_choice`) or None ("none"). With `replace` false an issue already on the
        board keeps its record (Qdrant's dashboard keeps the first sighting). True when the
        id was not on the board before."""
        if isinstance(solution, dict):
            shaped: str | dict = solution
        else:
            shaped = {"refactor": solution} if solution else "none"
        record = {
            "id": issue_id,
            "description": description,
            "solution": shaped,
            "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        }
        with self._lock:
            new = issue_id not in self._records
            if new or replace:
                self._records[issue_id] = record
            return new

    def resolve(self, issue_id: str) -> None:
        with self._lock:
            self._records.pop(issue_id, None)

    def resolve_prefix(self, prefix: str) -> None:
        """Drop every issue whose id starts with `prefix` (e.g. all of one collection's)."""
        with self._lock:
            for issue_id in [i for i in self._records if i.startswith(prefix)]:
                del self._records[issue_id]

    def resolve_collection(self, collection: str) -> None:
        """Drop every issue of a collection (`<CODE>/<collection>[/<detail>]`): it was deleted."""
        with self._lock:
            for issue_id in [i for i in self._records if collection_of(i) == collection]:
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


def collection_of(issue_id: str) -> str | None:
    """The collection an issue id names (`<CODE>/<collection>[/...]`), None for a node-wide one."""
    parts = issue_id.split("/", 2)
    return parts[1] if len(parts) > 1 else None


# Qdrant's issue code of a filtered field without a suitable payload index; the issue is
# `UNINDEXED_FIELD/<collection>/<field>` and is solved by creating an index on the field.
UNINDEXED_FIELD = "UNINDEXED_FIELD"

# Qdrant's UnindexedField::DEFAULT_SLOW_QUERY_SECS: a filtered read slower than this
# reports the filter's unindexed fields. `service.slow_query_secs` overrides it for the
# process (set once at start, `configure_slow_query`), as Qdrant's SLOW_QUERY_THRESHOLD.
DEFAULT_SLOW_QUERY_SECS = 1.2
_SLOW_QUERY = {"secs": DEFAULT_SLOW_QUERY_SECS}


def configure_slow_query(secs: float | None) -> None:
    """`service.slow_query_secs` (None: Qdrant's default, 1.2 s)."""
    _SLOW_QUERY["secs"] = DEFAULT_SLOW_QUERY_SECS if secs is None else float(secs)


def slow_query_secs() -> float:
    return _SLOW_QUERY["secs"]
