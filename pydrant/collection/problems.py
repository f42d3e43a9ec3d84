"""Problems a collection reports on the node's issue board (pydrant/issues.py, `GET /issues`).

Unindexed fields (Qdrant's `UNINDEXED_FIELD`, lib/collection/src/problems/unindexed_field.rs
and lib/storage/src/issues_subscribers.rs): a search-family read with filters that took
longer than `service.slow_query_secs` (default 1.2 s) submits every filtered field that has
no payload index able to answer its condition, with the index to create as an immediate
solution (`PUT /collections/{name}/index`), or a choice of them when several types fit.
Which index answers which condition is payload_index.py's table (the one strict mode's
`unindexed_filtering_*` checks use). The issue is solved when an index on the field is
created (payload_index.py) and when the collection is deleted (storage/toc.py).

Optimizer health (pydrant's own; Qdrant has no such issues), watched by `HealthWatch`
every `CHECK_INTERVAL_SECONDS` in the collection's nursery:
- `OPTIMIZER_FAILED/<c>`: the last optimization failed (the error of `optimizer_status`);
  solved when one succeeds;
- `OPTIMIZER_STUCK/<c>`: optimizations have been due or running for `STUCK_SECONDS`
  without one completing;
- `TOO_MANY_SEGMENTS/<c>`: more than `SEGMENTS_FACTOR` x the target segment count
  (`default_segment_number`, 0: one per CPU) plus `SEGMENTS_SLACK`, for `STUCK_SECONDS`.
Each is solved at the first check that no longer finds its cause.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from urllib.parse import quote

import trio

from pydrant.collection.payload_index import capability_types, filter_requirements, index_capabilities
from pydrant.issues import BOARD, UNINDEXED_FIELD, collection_issue_id, slow_query_secs

log = logging.getLogger("pydrant.collection")

INDEXING_DOCS = "https://qdrant.tech/documentation/concepts/indexing/#payload-index"
# Qdrant's FieldIndexType order, as the schema each capability suggests; uuid is left
# out, as Qdrant leaves out its "advanced" schemas.
_SUGGESTION_ORDER = ("integer", "keyword", "float", "text", "bool", "datetime", "geo")

OPTIMIZER_FAILED = "OPTIMIZER_FAILED"
OPTIMIZER_STUCK = "OPTIMIZER_STUCK"
TOO_MANY_SEGMENTS = "TOO_MANY_SEGMENTS"
CHECK_INTERVAL_SECONDS = 30.0
STUCK_SECONDS = 1800.0
SEGMENTS_FACTOR = 2
SEGMENTS_SLACK = 2


# -- unindexed fields ------------------------------------------------------------------------


def unindexed_fields(filters: Iterable[dict | None], fields: dict) -> dict[str, list[str]]:
    """field key -> the index types that would answer its conditions, for every key of
    the filters whose index (in `fields`, key -> field_schema) answers none of them.
    Nested keys come as `parent[].child`, as Qdrant names them."""
    found: dict[str, set[str]] = {}
    for filter_ in filters:
        if not filter_:
            continue
        for key, needs in filter_requirements(filter_):
            if needs & index_capabilities(fields.get(key)):
                continue
            found.setdefault(key, set()).update(capability_types(needs))
    result = {}
    for key, kinds in found.items():
        suggested = [kind for kind in _SUGGESTION_ORDER if kind in kinds]
        if suggested:
            result[key] = suggested
    return result


def unindexed_field_issue(collection: str, field: str, schemas: list[str]) -> tuple[str, str, dict]:
    """(id, description, solution) of Qdrant's UNINDEXED_FIELD issue."""
    solutions = [_create_index_solution(collection, field, schema) for schema in schemas]
    solution = {"immediate": solutions[0]} if len(solutions) == 1 else {"immediate_choice": solutions}
    return (
        collection_issue_id(UNINDEXED_FIELD, collection, field),
        f"Unindexed field '{field}' might be slowing queries down in collection '{collection}'",
        solution,
    )


def _create_index_solution(collection: str, field: str, schema: str) -> dict:
    return {
        "message": (
            f"Create an index on field '{field}' of schema \"{schema}\" in collection '{collection}'. "
            f"Check the documentation for more details: {INDEXING_DOCS}"
        ),
        "action": {
            "method": "PUT",
            "uri": f"/collections/{quote(collection, safe='')}/index",
            "headers": {"content-type": "application/json"},
            "body": {"field_name": field, "field_schema": schema},
        },
    }


def report_slow_read(collection, filters: list[dict | None], elapsed: float) -> None:
    """After a search-family read: if it took longer than `service.slow_query_secs`, submit
    the unindexed fields of its filters (Qdrant's `post_process_if_slow_request`). An issue
    already on the board keeps its first sighting, as in Qdrant."""
    if elapsed <= slow_query_secs() or not any(filters):
        return
    for field, schemas in unindexed_fields(filters, dict(collection.payload_index.fields)).items():
        issue_id, description, solution = unindexed_field_issue(collection.name, field, schemas)
        BOARD.submit(issue_id, description, solution, replace=False)


# -- optimizer health ------------------------------------------------------------------------


class HealthWatch:
    """Watches one collection's optimizer and segment count (see the module docstring)."""

    def __init__(self, collection, clock: Callable[[], float] = time.monotonic):
        self.collection = collection
        self.clock = clock
        self._completed: int | None = None
        self._progress_at: float | None = None  # last time an optimization completed (or first look)
        self._pending_since: float | None = None
        self._over_since: float | None = None

    async def run(self) -> None:
        """Check every CHECK_INTERVAL_SECONDS until cancelled (the collection closes)."""
        while True:
            await trio.sleep(CHECK_INTERVAL_SECONDS)
            try:
                await trio.to_thread.run_sync(self.check)
            except Exception:  # a closing or failing collection: its own errors say why
                log.debug("collection %s: health check failed", self.collection.name, exc_info=True)

    def target_segments(self) -> int:
        return (self.collection.optimizer_settings().get("default_segment_number") or 0) or (os.cpu_count() or 1)

    def check(self) -> None:
        """One look (blocking: asks the optimizer whether work is due)."""
        collection, optimizer = self.collection, self.collection.optimizer
        name = collection.name
        now = self.clock()
        if optimizer.completed != self._completed or self._progress_at is None:
            self._completed, self._progress_at = optimizer.completed, now

        failed_id = collection_issue_id(OPTIMIZER_FAILED, name)
        if optimizer.error:
            BOARD.submit(
                failed_id,
                f"Optimizer of collection '{name}' failed: {optimizer.error}",
                "Check the server log for the cause (disk space, permissions, a corrupt segment); "
                "the optimizer retries by itself and the issue clears when an optimization succeeds.",
                replace=False,
            )
        else:
            BOARD.resolve(failed_id)

        pending = optimizer.running is not None or optimizer.plan() is not None
        stuck_id = collection_issue_id(OPTIMIZER_STUCK, name)
        if not pending:
            self._pending_since = None
        elif self._pending_since is None:
            self._pending_since = now
        waiting = None if self._pending_since is None else now - max(self._pending_since, self._progress_at)
        if waiting is not None and waiting >= STUCK_SECONDS:
            BOARD.submit(
                stuck_id,
                f"Optimizer of collection '{name}' has had work due for {waiting / 60:.0f} minutes "
                "without completing an optimization",
                "Check the server log and CPU and disk load; lower max_optimization_threads contention "
                "or raise the collection's optimizer thresholds if it cannot keep up with writes.",
                replace=False,
            )
        else:
            BOARD.resolve(stuck_id)

        count, target = len(collection.segments), self.target_segments()
        many_id = collection_issue_id(TOO_MANY_SEGMENTS, name)
        if count > SEGMENTS_FACTOR * target + SEGMENTS_SLACK:
            if self._over_since is None:
                self._over_since = now
            if now - self._over_since >= STUCK_SECONDS:
                BOARD.submit(
                    many_id,
                    f"Collection '{name}' has {count} segments, its target is {target}: searches visit "
                    "every segment",
                    "Check that the optimizer runs (collection info optimizer_status) and that "
                    "optimizer_config.max_segment_size lets segments merge; see docs/optimizer.md.",
                    replace=False,
                )
        else:
            self._over_since = None
            BOARD.resolve(many_id)
