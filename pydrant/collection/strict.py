"""Strict mode (`strict_mode_config`): every check it makes of reads and writes, with
Qdrant's messages. The engine's entry points call these (collection/engine.py for reads,
`Collection.submit` for writes); nothing outside collection/ does.

- `unindexed_filtering_retrieve` / `unindexed_filtering_update`: a filter (of a read, or
  of a write that selects points by filter or carries an `update_filter`) must only use
  fields with a payload index that can answer its conditions;
- `max_query_limit`, `search_allow_exact`, `search_max_hnsw_ef`, `search_max_oversampling`:
  the limits of every node of a query tree.
"""

from __future__ import annotations

from collections.abc import Iterable

from pydrant.collection.payload_index import PayloadIndexTable
from pydrant.errors import BadInput


def settings(config: dict) -> dict:
    """The collection's `strict_mode_config` ({} when there is none)."""
    return config.get("strict_mode_config") or {}


def check_filter_indexed(config: dict, payload_index: PayloadIndexTable, filter_: dict | None, *, update: bool) -> None:
    """Refuse a filter on unindexed fields when the collection forbids it
    (`unindexed_filtering_update` for writes, `unindexed_filtering_retrieve` for reads)."""
    strict = settings(config)
    setting = "unindexed_filtering_update" if update else "unindexed_filtering_retrieve"
    if not filter_ or not strict.get("enabled") or strict.get(setting) is not False:
        return
    missing = payload_index.missing_index(filter_)
    if missing is not None:
        key, types = missing
        shown = [t for t in types if t != "uuid"] or types
        raise BadInput(
            f'Bad request: Index required but not found for "{key}" of one of the following types: '
            f"[{', '.join(shown)}]. Help: Create an index for this key or use a different filter."
        )


def check_write(config: dict, payload_index: PayloadIndexTable, operation: dict) -> None:
    """A logged write's filters: the points it selects by filter, and its `update_filter`."""
    check_filter_indexed(config, payload_index, operation.get("filter"), update=True)
    check_filter_indexed(config, payload_index, operation.get("update_filter"), update=True)


def check_search_limits(config: dict, nodes: Iterable[dict]) -> None:
    """Strict mode's search limits on every node of a query tree: `max_query_limit`,
    `search_allow_exact`, `search_max_hnsw_ef`, `search_max_oversampling`."""
    strict = settings(config)
    if not strict.get("enabled"):
        return
    for node in nodes:
        params = node.get("params") or {}
        _check_at_most(node.get("limit"), strict.get("max_query_limit"), "limit")
        if params.get("exact") and strict.get("search_allow_exact") is False:
            raise BadInput("Bad request: Exact search disabled!. Help: Set exact=false.")
        _check_at_most(params.get("hnsw_ef"), strict.get("search_max_hnsw_ef"), "hnsw_ef")
        oversampling = (params.get("quantization") or {}).get("oversampling")
        _check_at_most(oversampling, strict.get("search_max_oversampling"), "oversampling")


def _check_at_most(value, limit, name: str) -> None:
    if value is not None and limit is not None and value > limit:
        raise BadInput(
            f'Bad request: Limit exceeded {value} > {limit} for "{name}". '
            f'Help: Reduce the "{name}" parameter to or below {limit}.'
        )
