"""Strict mode (`strict_mode_config`): every check it makes of reads and writes, with
Qdrant's messages (v1.15: lib/collection/src/operations/verification/, the collection size
checks of update.rs, the rate limiters of the shard and replica set). The engine's entry
points call these (collection/engine.py for reads, `Collection.submit` for writes); nothing
outside collection/ does. docs/strict-mode.md lists every field: what, when, the message.

Nothing is checked unless `enabled` is true. Checks of one request run in Qdrant's order:
the request's `timeout` (`max_timeout`), then the request's own limits (`check_custom`:
batch sizes, collection sizes, multivector and sparse lengths, payload index count), the
`limit` (`max_query_limit`), every filter (index required, then `filter_max_conditions`,
then `condition_max_size`), `exact` (`search_allow_exact`), and the search params
(`search_max_oversampling`, `search_max_hnsw_ef`). Rate limits are taken after every other
check passed, as Qdrant's shards take them after the API layer's verification.

A refused request is BadInput "Bad request: <what>. Help: <how>" (Qdrant's
`CollectionError::strict_mode`, a 400), or "Bad request: <what>" for the collection and
vector size checks (Qdrant raises those as plain bad requests); a rate limit is
`RateLimited` (429 with Retry-After).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from pydrant.collection.config import iter_dense_params
from pydrant.collection.payload_index import PayloadIndexTable, formula_requirements
from pydrant.errors import BadInput, RateLimited
from pydrant.segments.types import DEFAULT_VECTOR


def settings(config: dict) -> dict:
    """The collection's `strict_mode_config` ({} when there is none)."""
    return config.get("strict_mode_config") or {}


def active(config: dict) -> dict | None:
    """The strict mode settings when strict mode is enabled, else None."""
    strict = settings(config)
    return strict if strict.get("enabled") else None


def refuse(description: str, solution: str) -> BadInput:
    """Qdrant's `CollectionError::strict_mode(description, solution)` as the API shows it."""
    return BadInput(f"Bad request: {description}. Help: {solution}")


def _check_at_most(value, limit, name: str) -> None:
    """Qdrant's `check_limit_opt`."""
    if value is not None and limit is not None and value > limit:
        raise refuse(f'Limit exceeded {value} > {limit} for "{name}"', f'Reduce the "{name}" parameter to or below {limit}.')


# -- reads and filters --------------------------------------------------------------------


def check_timeout(config: dict, timeout: int | None) -> None:
    """A request's `timeout` query parameter above `max_timeout` (checked first, before
    the request's own checks, as Qdrant's `check_strict_mode` does)."""
    strict = active(config)
    if strict is not None and timeout is not None:
        _check_at_most(timeout, strict.get("max_timeout"), "timeout")


def check_filter(config: dict, payload_index: PayloadIndexTable, filter_: dict | None, *, update: bool) -> None:
    """A filter of a read (`unindexed_filtering_retrieve`) or of a write that selects
    points by filter (`unindexed_filtering_update`): the index check first, then
    `filter_max_conditions` and `condition_max_size`, which apply to every filter."""
    strict = active(config)
    if not filter_ or strict is None:
        return
    setting = "unindexed_filtering_update" if update else "unindexed_filtering_retrieve"
    if strict.get(setting) is False:
        missing = payload_index.missing_index(filter_)
        if missing is not None:
            key, types = missing
            raise refuse(
                f'Index required but not found for "{key}" of one of the following types: [{", ".join(types)}]',
                "Create an index for this key or use a different filter.",
            )
    limit = strict.get("filter_max_conditions")
    if limit is not None:
        count = conditions_count(filter_)
        if count > limit:
            raise refuse(f"Filter condition limit reached ({count} > {limit})", "Reduce the amount of conditions of your filter.")
    limit = strict.get("condition_max_size")
    if limit is not None:
        size = max_condition_size(filter_)
        if size > limit:
            raise refuse(f"Condition size limit reached ({size} > {limit})", "Reduce the size of your condition.")


def _conditions(filter_: dict) -> Iterable:
    """Qdrant's `Filter::iter_conditions`: must, must_not, should, min_should.conditions
    (a clause may be one condition instead of a list)."""
    for clause in ("must", "must_not", "should"):
        value = filter_.get(clause)
        if isinstance(value, dict):
            yield value
        elif isinstance(value, list):
            yield from value
    min_should = filter_.get("min_should")
    if isinstance(min_should, dict):
        yield from min_should.get("conditions") or []


def _is_filter(condition: dict) -> bool:
    return any(k in condition for k in ("must", "must_not", "should", "min_should")) and "key" not in condition


def conditions_count(filter_: dict) -> int:
    """Qdrant's `Filter::total_conditions_count`: leaf conditions, nested and sub-filters
    counted by their own conditions."""
    total = 0
    for condition in _conditions(filter_):
        if not isinstance(condition, dict):
            total += 1
        elif isinstance(condition.get("nested"), dict):
            total += conditions_count(condition["nested"].get("filter") or {})
        elif _is_filter(condition):
            total += conditions_count(condition)
        else:
            total += 1
    return total


def max_condition_size(filter_: dict) -> int:
    """Qdrant's `Filter::max_condition_input_size`: the longest `match.any` /
    `match.except` list or `has_id` set, nested and sub-filters included (0 if none)."""
    largest = 0
    for condition in _conditions(filter_):
        if not isinstance(condition, dict):
            continue
        if isinstance(condition.get("nested"), dict):
            size = max_condition_size(condition["nested"].get("filter") or {})
        elif _is_filter(condition):
            size = max_condition_size(condition)
        elif isinstance(condition.get("has_id"), list):
            size = len(set(map(str, condition["has_id"])))
        elif isinstance(condition.get("match"), dict):
            match = condition["match"]
            values = match.get("any") if "any" in match else match.get("except")
            size = len(values) if isinstance(values, list) else 0
        else:
            size = 0
        largest = max(largest, size)
    return largest


def check_query_tree(config: dict, payload_index: PayloadIndexTable, request: dict) -> None:
    """Strict mode for a query tree (a QueryRequest, or a search, recommend, discover,
    groups or matrix request converted to one), in Qdrant's order: every prefetch first,
    depth first (each checked whole), then the node itself: a groups request's `group_by`
    field, `max_query_limit`, its filter (`check_filter`), then its search params
    (`search_max_oversampling`, `search_max_hnsw_ef`, `search_allow_exact`)."""
    if active(config) is None:
        return
    _check_node(config, payload_index, request, root=True)


def _check_node(config: dict, payload_index: PayloadIndexTable, node: dict, root: bool) -> None:
    strict = settings(config)
    prefetch = node.get("prefetch")
    for child in prefetch if isinstance(prefetch, list) else [prefetch] if isinstance(prefetch, dict) else []:
        _check_node(config, payload_index, child, root=False)
    query = node.get("query")
    if isinstance(query, dict) and any(k in query for k in VECTOR_QUERIES) and (not root or not prefetch):
        # a vector query that is not rescoring prefetches searches the whole collection
        _check_fullscan(config, payload_index, node.get("using") or DEFAULT_VECTOR, node.get("filter"))
    if isinstance(query, dict) and "formula" in query and strict.get("unindexed_filtering_retrieve") is False:
        missing = payload_index.first_unserved(formula_requirements(query["formula"]))
        if missing is not None:
            raise refuse(
                f'Index required but not found for "{missing[0]}" of one of the following types: [{", ".join(missing[1])}]',
                "Create an index for this key or use a different formula expression.",
            )
    if root and node.get("group_by") is not None:
        _check_grouping_field(strict, payload_index, node["group_by"])
    _check_at_most(_query_limit(node, root), strict.get("max_query_limit"), "limit")
    check_filter(config, payload_index, node.get("filter"), update=False)
    params = node.get("params") or {}
    oversampling = (params.get("quantization") or {}).get("oversampling")
    _check_at_most(oversampling, strict.get("search_max_oversampling"), "oversampling")
    _check_at_most(params.get("hnsw_ef"), strict.get("search_max_hnsw_ef"), "hnsw_ef")
    check_exact(config, params.get("exact"))


VECTOR_QUERIES = ("nearest", "recommend", "discover", "context")


def _check_fullscan(config: dict, payload_index: PayloadIndexTable, using: str, filter_: dict | None) -> None:
    """Qdrant's `check_fullscan`: with `search_allow_exact: false`, a vector query on a
    dense vector without a global HNSW graph (`m = 0`) needs a filter on a tenant field
    (`is_tenant` index), and then per-tenant graphs (`payload_m` not 0)."""
    if settings(config).get("search_allow_exact") is not False:
        return
    params = config.get("params") or {}
    if using in (params.get("sparse_vectors") or {}):
        return  # sparse vectors are always indexed
    vector = dict(iter_dense_params(params.get("vectors") or {})).get(using) or {}
    own = vector.get("hnsw_config") or {}
    collection_hnsw = config.get("hnsw_config") or {}
    m = own.get("m") if own.get("m") is not None else collection_hnsw.get("m")
    if m is None or m > 0:
        return
    payload_m = own.get("payload_m")
    if payload_m is None:
        payload_m = collection_hnsw.get("payload_m") if collection_hnsw.get("payload_m") is not None else m
    label = "" if using == DEFAULT_VECTOR else f" on '{using}'"
    if not _uses_tenant_field(payload_index, filter_):
        raise refuse(
            f"Request is forbidden{label} because global vector indexing is disabled (hnsw_config.m = 0)",
            "Use tenant-specific filter, enable global vector indexing or enable strict mode `search_allow_exact` option",
        )
    if payload_m == 0:
        raise refuse(
            f"Request is forbidden{label} because vector indexing is disabled (hnsw_config.m = 0 and hnsw_config.payload_m = 0)",
            "Enable vector indexing, use a prefetch query with indexed vectors or enable strict mode `search_allow_exact` option",
        )


def _uses_tenant_field(payload_index: PayloadIndexTable, filter_: dict | None) -> bool:
    """Whether a condition of the filter (its own, not nested deeper) targets a field with
    an `is_tenant` index."""
    if not isinstance(filter_, dict):
        return False
    for condition in _conditions(filter_):
        key = _targeted_key(condition)
        schema = payload_index.fields.get(key) if key is not None else None
        if isinstance(schema, dict) and schema.get("is_tenant"):
            return True
    return False


def _targeted_key(condition) -> str | None:
    if not isinstance(condition, dict):
        return None
    if isinstance(condition.get("key"), str):
        return condition["key"]
    for name in ("is_empty", "is_null"):
        if isinstance(condition.get(name), dict) and isinstance(condition[name].get("key"), str):
            return condition[name]["key"]
    nested = condition.get("nested")
    if isinstance(nested, dict) and isinstance(nested.get("key"), str):
        return nested["key"] if nested["key"].endswith("[]") else nested["key"] + "[]"
    if _is_filter(condition):
        return next((k for k in map(_targeted_key, _conditions(condition)) if k is not None), None)
    return None


GROUPS_DEFAULT_LIMIT = 10
GROUPS_DEFAULT_SIZE = 3


def _query_limit(node: dict, root: bool):
    """The `limit` strict mode compares: a groups request's is its groups times their size
    (defaults applied); a distance matrix's is `sample` times `limit` (each when given)."""
    if root and node.get("group_by") is not None:
        return (node.get("limit") or GROUPS_DEFAULT_LIMIT) * (node.get("group_size") or GROUPS_DEFAULT_SIZE)
    if root and isinstance(node.get("sample"), int) and not isinstance(node.get("sample"), bool):
        return node["sample"] * node["limit"] if node.get("limit") is not None else node["sample"]
    return node.get("limit")


def _check_grouping_field(strict: dict, payload_index: PayloadIndexTable, group_by: str) -> None:
    """Qdrant's `check_grouping_field`: with `unindexed_filtering_retrieve: false` the
    `group_by` field needs an index that supports `match`."""
    if strict.get("unindexed_filtering_retrieve") is not False:
        return
    schema = payload_index.fields.get(group_by)
    help_ = "Create an index supporting `match` for this key."
    if schema is None:
        raise refuse(f'Index required but not found for "{group_by}"', help_)
    kind = schema if isinstance(schema, str) else schema.get("type")
    if kind not in ("keyword", "integer", "uuid", "bool"):
        raise refuse(f'Index of type "{str(kind).capitalize()}" found for "{group_by}"', help_)


def check_query_limit(config: dict, limit) -> None:
    """`max_query_limit` of a scroll or facet `limit` (only when the request gives one)."""
    strict = active(config)
    if strict is not None:
        _check_at_most(limit, strict.get("max_query_limit"), "limit")


def check_exact(config: dict, exact) -> None:
    """`search_allow_exact: false` refuses `exact: true` (searches, count, facet)."""
    strict = active(config)
    if strict is not None and exact and strict.get("search_allow_exact") is False:
        raise refuse("Exact search disabled!", "Set exact=false.")


# -- writes -------------------------------------------------------------------------------


@dataclass
class SizeStats:
    """Qdrant's `CollectionSizeStats`: estimated vector and payload storage and points."""

    vector_bytes: int
    payload_bytes: int
    points: int


def needs_size_stats(config: dict, operations: Iterable[dict]) -> bool:
    """Whether checking `operations` needs the collection's size statistics (computed off
    the event loop by the caller, only then)."""
    strict = active(config)
    if strict is None:
        return False
    for operation in operations:
        kind = operation["type"]
        if kind in ("upsert", "update_vectors") and any(
            strict.get(k) is not None
            for k in ("max_collection_vector_size_bytes", "max_collection_payload_size_bytes", "max_points_count")
        ):
            return True
        if kind in ("set_payload", "overwrite_payload") and strict.get("max_collection_payload_size_bytes") is not None:
            return True
    return False


def check_write(
    config: dict,
    payload_index: PayloadIndexTable,
    operation: dict,
    stats: SizeStats | None = None,
    multivector_names: Iterable[str] = (),
) -> None:
    """Every strict-mode check of one logged write, in Qdrant's order: the operation's own
    limits first, then the filters it selects points with. `stats` is needed when
    `needs_size_stats` says so; `multivector_names` are the dense vectors stored as
    multivectors (whose `multivector_config` limits apply)."""
    strict = active(config)
    if strict is None:
        return
    kind = operation["type"]
    if kind in ("upsert", "update_vectors"):
        points = operation.get("points") or []
        # Qdrant names the limit after the request: "upsert limit", "update limit"
        _check_at_most(len(points), strict.get("upsert_max_batchsize"), "upsert limit" if kind == "upsert" else "update limit")
        if stats is not None:
            _check_collection_size(strict, stats)
        _check_multivectors(strict, points, set(multivector_names))
        _check_sparse(strict, points)
    elif kind in ("set_payload", "overwrite_payload"):
        if stats is not None and strict.get("max_collection_payload_size_bytes") is not None:
            _check_payload_size(strict["max_collection_payload_size_bytes"], stats)
    elif kind == "create_field_index":
        limit = strict.get("max_payload_index_count")
        if limit is not None and len(payload_index.fields) >= limit:
            raise refuse(
                f"Collection already has the maximum number of payload indices ({limit})",
                "Please delete an existing index before creating a new one.",
            )
    check_filter(config, payload_index, operation.get("filter"), update=True)
    check_filter(config, payload_index, operation.get("update_filter"), update=True)


def _mb(limit: int) -> str:
    """`limit as f32 / (1024.0 * 1024.0)` as Rust's Display prints an f32."""
    return np.format_float_positional(np.float32(limit) / np.float32(1024.0 * 1024.0), trim="-")


def _check_collection_size(strict: dict, stats: SizeStats) -> None:
    """Qdrant's `check_collection_size_limit`: refused once the collection has reached a
    limit (>=), whatever the write adds: vector storage, payload storage, points."""
    limit = strict.get("max_collection_vector_size_bytes")
    if limit is not None and stats.vector_bytes >= limit:
        raise BadInput(f"Bad request: Max vector storage size limit of {_mb(limit)}MB reached!")
    limit = strict.get("max_collection_payload_size_bytes")
    if limit is not None:
        _check_payload_size(limit, stats)
    limit = strict.get("max_points_count")
    if limit is not None and stats.points >= limit:
        raise BadInput(f"Bad request: Max points count limit of {limit} reached!")


def _check_payload_size(limit: int, stats: SizeStats) -> None:
    if stats.payload_bytes >= limit:
        raise BadInput(f"Bad request: Max payload storage size limit of {_mb(limit)}MB reached!")


def _check_multivectors(strict: dict, points: list, multivector_names: set) -> None:
    limits: dict[str, int] = {
        name: spec["max_vectors"]
        for name, spec in (strict.get("multivector_config") or {}).items()
        if isinstance(spec, dict) and spec.get("max_vectors") is not None
    }
    if not limits:
        return
    for point in points:
        for name, value in (point.get("vectors") or {}).items():
            if name in limits and name in multivector_names and value is not None and not isinstance(value, dict):
                count = len(value)
                if count > limits[name]:
                    raise BadInput(
                        f"Bad request: Multivector '{name}' has a limit of {limits[name]} vectors, but {count} were provided!"
                    )


def _check_sparse(strict: dict, points: list) -> None:
    limits: dict[str, int] = {
        name: spec["max_length"]
        for name, spec in (strict.get("sparse_config") or {}).items()
        if isinstance(spec, dict) and spec.get("max_length") is not None
    }
    if not limits:
        return
    for point in points:
        for name, value in (point.get("vectors") or {}).items():
            if name == DEFAULT_VECTOR or name not in limits:
                continue  # Qdrant checks named sparse vectors only
            if isinstance(value, dict):
                indices, values = value.get("indices"), value.get("values")
            else:
                indices, values = getattr(value, "indices", None), getattr(value, "values", None)
            if indices is None:
                continue
            length = len(indices)
            if length > limits[name] or (values is not None and len(values) > limits[name]):
                raise BadInput(
                    f"Bad request: Sparse vector '{name}' has a limit of {limits[name]} indices, but {length} were provided!"
                )


# -- rate limits --------------------------------------------------------------------------


class RateLimiter:
    """Qdrant's token bucket (common/rate_limiting.rs): `per_minute` tokens, refilled
    continuously at per_minute/60 a second, full at the start. Thread-safe: reads take
    tokens from worker threads."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic):
        self.capacity = per_minute
        self.per_second = per_minute / 60.0
        self.tokens = float(per_minute)
        self.clock = clock
        self.last = clock()
        self._lock = threading.Lock()

    def take(self, cost: int, write: bool) -> None:
        """Take `cost` tokens, or raise RateLimited with Qdrant's message."""
        kind = "Write" if write else "Read"
        with self._lock:
            if cost > self.capacity:
                raise RateLimited(
                    f"Rate limiting exceeded: {kind} rate limit exceeded, request larger than rate limiter "
                    "capacity, please try to split your request",
                    None,
                )
            now = self.clock()
            self.tokens = min(self.capacity, self.tokens + self.per_second * (now - self.last))
            self.last = now
            if self.tokens >= cost:
                self.tokens -= cost
                return
            # Qdrant rounds the f32 seconds up, in the message and in Retry-After alike
            retry_after = float(np.float32((cost - self.tokens) / self.per_second))
            seconds = math.ceil(retry_after)
            raise RateLimited(
                f"Rate limiting exceeded: {kind} rate limit exceeded: Operation requires {cost} tokens but only "
                f"{self.tokens:.1f} were available. Retry after {seconds}s",
                retry_after,
            )


class RateLimits:
    """A collection's read and write limiters (`read_rate_limit`, `write_rate_limit`, per
    minute), present only while strict mode is enabled with the limit set. Made again,
    full, whenever the strict mode settings change (Qdrant makes new limiters on every
    strict mode update)."""

    def __init__(self, config: dict, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.read: RateLimiter | None = None
        self.write: RateLimiter | None = None
        self._settings: dict | None = None
        self.reconfigure(config)

    def reconfigure(self, config: dict) -> None:
        strict = settings(config)
        if strict == self._settings:
            return
        self._settings = dict(strict)
        enabled = bool(strict.get("enabled"))
        read, write = strict.get("read_rate_limit"), strict.get("write_rate_limit")
        self.read = RateLimiter(read, self.clock) if enabled and read is not None else None
        self.write = RateLimiter(write, self.clock) if enabled and write is not None else None

    def take_read(self, cost: int) -> None:
        if self.read is not None:
            self.read.take(max(1, cost), write=False)

    def take_write(self, cost: int) -> None:
        if self.write is not None:
            self.write.take(max(1, cost), write=True)


def filter_cost(filter_: dict | None) -> int:
    """Qdrant's `filter_rate_cost`: the filter's conditions."""
    return conditions_count(filter_) if isinstance(filter_, dict) else 0


def query_cost(nodes: list[tuple[dict, list[dict]]]) -> int:
    """The read cost of a query tree, as Qdrant's planned query counts it: every leaf is a
    search (its query vectors, plus its filters' conditions) or a scroll (1 plus its
    filters' conditions). `nodes`: (leaf spec, the filters above and on it)."""
    total = 0
    for spec, filters in nodes:
        query = spec.get("query")
        vectors = _query_vectors(query) if isinstance(query, dict) else 0
        total += (vectors if vectors else 1) + sum(filter_cost(f) for f in filters)
    return total


def _query_vectors(query: dict) -> int:
    """How many vector comparisons a search query makes (Qdrant's `search_cost`): one
    per input vector, a multivector counting its rows; 0 for a query that is no search."""
    if "nearest" in query:
        return _vector_cost(query["nearest"])
    if "recommend" in query:
        spec = query["recommend"] or {}
        return sum(_vector_cost(v) for v in (spec.get("positive") or []) + (spec.get("negative") or []))
    if "discover" in query:
        spec = query["discover"] or {}
        pairs = spec.get("context") or []
        pairs = pairs if isinstance(pairs, list) else [pairs]
        return _vector_cost(spec.get("target")) + sum(_vector_cost(p.get("positive")) + _vector_cost(p.get("negative")) for p in pairs)
    if "context" in query:
        pairs = query["context"] or []
        pairs = pairs if isinstance(pairs, list) else [pairs]
        return sum(_vector_cost(p.get("positive")) + _vector_cost(p.get("negative")) for p in pairs)
    return 0


def _vector_cost(value) -> int:
    if isinstance(value, (list, np.ndarray)) and len(value) and isinstance(value[0], (list, np.ndarray)):
        return len(value)
    return 1


def write_cost(operation: dict, count_matching: Callable[[dict], int]) -> int:
    """The write cost of an operation: the points it touches (Qdrant estimates the
    cardinality of a filter; `count_matching` counts it), at least 1."""
    if operation.get("points") is not None:
        return max(1, len(operation["points"]))
    if operation.get("ids") is not None:
        return max(1, len(operation["ids"]))
    if operation.get("filter") is not None:
        return max(1, count_matching(operation["filter"]))
    return 1

