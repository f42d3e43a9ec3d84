"""REST request statistics and the Prometheus text of `/metrics`, as Qdrant 1.15 keeps and
writes them (docs/observability.md).

Requests: one `DurationStats` per "METHOD /route/pattern" and HTTP status, the way Qdrant's
actix middleware and `OperationDurationsAggregator` count them: every response counts
(`fail_count` stays empty, as in Qdrant's REST), the average is the smoothed mean of the
latest 128 durations, min/max/total and `last_responded` are kept since start, and a
cumulative histogram over Qdrant's fixed buckets (1 ms .. 50 s).

Metrics: `render` turns telemetry (built by the service area at details level 1) into the
metric families of Qdrant's `src/common/metrics.rs` (v1.15) — same names, HELP texts, types,
labels and order; the REST families cover only Qdrant's endpoint whitelist and report
timings for status 200 only — then appends pydrant's own families under `pydrant_`. The
text is written here (not by prometheus_client) so names and numbers are Qdrant's: counter
names keep their `_total`, no `_created` samples, integral values without `.0`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import numpy as np

# Qdrant's DEFAULT_BUCKET_BOUNDARIES_MICROS
BUCKETS_MICROS = (
    1_000.0, 5_000.0, 10_000.0, 20_000.0, 50_000.0, 100_000.0, 500_000.0,
    1_000_000.0, 5_000_000.0, 10_000_000.0, 50_000_000.0,
)
AVG_DATASET_LEN = 128
SLIDING_WINDOW_LEN = 8
# For REST requests, Qdrant reports timings only for this status.
REST_TIMINGS_FOR_STATUS = 200
# Qdrant's REST_ENDPOINT_WHITELIST: the only endpoints with rest_* metrics. It names
# `/collections/{name}/points/facet`, a path Qdrant does not serve (facet is
# `/collections/{name}/facet`), so facet requests have no metrics there either.
REST_ENDPOINT_WHITELIST = frozenset({
    "/collections/{name}/index",
    "/collections/{name}/points",
    "/collections/{name}/points/batch",
    "/collections/{name}/points/count",
    "/collections/{name}/points/delete",
    "/collections/{name}/points/discover",
    "/collections/{name}/points/discover/batch",
    "/collections/{name}/points/facet",
    "/collections/{name}/points/payload",
    "/collections/{name}/points/payload/clear",
    "/collections/{name}/points/payload/delete",
    "/collections/{name}/points/query",
    "/collections/{name}/points/query/batch",
    "/collections/{name}/points/query/groups",
    "/collections/{name}/points/recommend",
    "/collections/{name}/points/recommend/batch",
    "/collections/{name}/points/recommend/groups",
    "/collections/{name}/points/scroll",
    "/collections/{name}/points/search",
    "/collections/{name}/points/search/batch",
    "/collections/{name}/points/search/groups",
    "/collections/{name}/points/search/matrix/offsets",
    "/collections/{name}/points/search/matrix/pairs",
    "/collections/{name}/points/vectors",
    "/collections/{name}/points/vectors/delete",
})

# Quart rule variables whose name differs from the variable of Qdrant's actix route.
_QDRANT_VARIABLE = {"point_id": "id"}
_RULE_VARIABLE = re.compile(r"<(?:[a-z_]+:)?([a-zA-Z_][a-zA-Z0-9_]*)>")


def route_pattern(rule: str | None) -> str:
    """Qdrant's actix match pattern of a Quart rule: `/collections/<name>/points/<point_id>`
    -> `/collections/{name}/points/{id}`; `unknown` for a request no route matched."""
    if not rule or rule == "unmatched":
        return "unknown"
    return _RULE_VARIABLE.sub(lambda m: "{" + _QDRANT_VARIABLE.get(m.group(1), m.group(1)) + "}", rule)


def utc_now_rounded() -> datetime:
    """Now, rounded to hundredths of a second (chrono's `round_subsecs(2)`)."""
    now = datetime.now(UTC)
    hundredths = round(now.microsecond / 10_000)
    return now.replace(microsecond=0) + timedelta(microseconds=hundredths * 10_000)


def rfc3339(moment: datetime) -> str:
    """chrono's serde form of a UTC time: fraction only when non-zero (3, 6 digits), `Z`."""
    text = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    micros = moment.microsecond
    if micros:
        text += f".{micros // 1000:03d}" if micros % 1000 == 0 else f".{micros:06d}"
    return text + "Z"


def anonymize_count(value: int) -> int:
    """Qdrant's `Anonymize for usize`: numbers of more than ~5 digits lose their last ones
    (123456 -> 123450, 98765432 -> 98760000)."""
    if value <= 0:
        return value
    log10 = round(float(np.log10(np.float32(value))))
    if log10 > 4:
        coeff = 10 ** (log10 - 4)
        return value // coeff * coeff
    return value


class DurationStats:
    """Qdrant's `OperationDurationsAggregator` for one endpoint and status."""

    def __init__(self) -> None:
        self.ok_count = 0
        self.fail_count = 0
        self._timings = [0.0] * AVG_DATASET_LEN
        self._index = 0
        self._loops = 0
        self.min_micros: float | None = None
        self.max_micros: float | None = None
        self.total_micros = 0
        self.last_responded = utc_now_rounded()
        self._buckets = [0] * len(BUCKETS_MICROS)  # non-cumulative

    def add(self, seconds: float, success: bool = True) -> None:
        if success:
            micros_int = int(seconds * 1_000_000)
            micros = float(micros_int)
            self.total_micros += micros_int
            self.min_micros = micros if self.min_micros is None else min(self.min_micros, micros)
            self.max_micros = micros if self.max_micros is None else max(self.max_micros, micros)
            for number, bound in enumerate(BUCKETS_MICROS):
                if micros <= bound:
                    self._buckets[number] += 1
                    break
            self.ok_count += 1
            self._timings[self._index] = micros
            self._index += 1
            if self._index >= AVG_DATASET_LEN:
                self._index = 0
                self._loops += 1
        else:
            self.fail_count += 1
        self.last_responded = utc_now_rounded()

    def average_micros(self) -> float:
        """The mean of sliding-window means (window 8) over the latest 128 durations."""
        if self._loops:
            data = self._timings[self._index:] + self._timings[: self._index]
        else:
            data = self._timings[: self._index]
        if not data:
            return 0.0
        smoothed = []
        for i in range(len(data)):
            window = data[max(0, i - SLIDING_WINDOW_LEN): i + 1]
            smoothed.append(sum(window) / len(window))
        return sum(smoothed) / len(smoothed)

    def histogram(self) -> list[tuple[float, int]]:
        """Cumulative (upper bound in seconds, count) pairs; +Inf is `ok_count`."""
        pairs, cumulative = [], 0
        for bound, count in zip(BUCKETS_MICROS, self._buckets):
            cumulative += count
            pairs.append((bound / 1_000_000, cumulative))
        return pairs

    def statistics(self, detailed: bool) -> dict:
        """Qdrant's `OperationDurationStatistics` (JSON); min, max, total and last_responded
        only from details level 1 on."""
        stats: dict = {"count": self.ok_count}
        if self.fail_count:
            stats["fail_count"] = self.fail_count
        if self.ok_count:
            stats["avg_duration_micros"] = self.average_micros()
        if detailed:
            if self.min_micros is not None:
                stats["min_duration_micros"] = self.min_micros
            if self.max_micros is not None:
                stats["max_duration_micros"] = self.max_micros
            stats["total_duration_micros"] = self.total_micros
            stats["last_responded"] = rfc3339(self.last_responded)
        return stats


class Metrics:
    """The REST statistics of one app instance (several apps can run in one process)."""

    def __init__(self) -> None:
        self.rest: dict[str, dict[int, DurationStats]] = {}

    def observe(self, method: str, endpoint: str, status: int, seconds: float) -> None:
        """One response; `endpoint` is the Quart rule (or "unmatched")."""
        key = f"{method} {route_pattern(endpoint)}"
        by_status = self.rest.setdefault(key, {})
        stats = by_status.get(status)
        if stats is None:
            stats = by_status[status] = DurationStats()
        stats.add(seconds)

    def rest_telemetry(self, detailed: bool) -> dict:
        """`requests.rest` of the telemetry: {"responses": {"METHOD /pattern": {status: stats}}}."""
        return {
            "responses": {
                key: {str(status): stats.statistics(detailed) for status, stats in sorted(by_status.items())}
                for key, by_status in sorted(self.rest.items())
            }
        }

    def render(
        self, telemetry: dict, pydrant_families: list | None = None, anonymize: bool = False,
        optimizations_running: int = 0,
    ) -> bytes:
        """The `/metrics` text of `telemetry` (details level 1) and these REST statistics,
        then pydrant's own families."""
        families = qdrant_families(telemetry, self.rest, anonymize, optimizations_running)
        families.extend(pydrant_families or [])
        return encode(families).encode()


# -- metric families ---------------------------------------------------------------------

# (name, help, type, samples); a sample is (labels, value) or, for a histogram,
# (labels, (count, sum, [(le, cumulative count), ...])).
Family = tuple[str, str, str, list]


def qdrant_families(
    telemetry: dict, rest: dict[str, dict[int, DurationStats]], anonymize: bool = False, optimizations_running: int = 0
) -> list[Family]:
    """Qdrant 1.15's `MetricsProvider` impls, in their order: app, collections, cluster,
    requests (REST, gRPC), hardware, memory. Families without samples are left out.

    `optimizations_running` is the real number: Qdrant counts running optimizations only
    in full (level 2+) collection telemetry, so its level-1 `/metrics` always says 0."""
    families: list[Family] = []
    app = telemetry["app"]
    families.append(("app_info", "information about qdrant server", "gauge",
                     [({"name": app["name"], "version": app["version"]}, 1)]))
    if app.get("features") is not None:
        families.append(("app_status_recovery_mode", "features enabled in qdrant server", "gauge",
                         [({}, 1 if app["features"]["recovery_mode"] else 0)]))

    collections = telemetry["collections"]
    listed = collections.get("collections") or []
    vectors = sum(c.get("vectors", 0) for c in listed)  # level 1: aggregated collections
    families.append(("collections_total", "number of collections", "gauge",
                     [({}, collections["number_of_collections"])]))
    families.append(("collections_vector_total", "total number of vectors in all collections", "gauge",
                     [({}, vectors)]))
    families.append(("optimizer_running_processes", "number of currently running optimization processes",
                     "gauge", [({}, optimizations_running)]))

    cluster = telemetry.get("cluster")
    if cluster is not None:
        families.append(("cluster_enabled", "is cluster support enabled", "gauge",
                         [({}, 1 if cluster["enabled"] else 0)]))

    if telemetry.get("requests") is not None:
        families.extend(_rest_families(rest, anonymize))
        # gRPC: pydrant serves none, and Qdrant writes no grpc_* family without responses.

    hardware = telemetry.get("hardware")
    if hardware and hardware.get("collection_data"):
        families.extend(_hardware_families(hardware["collection_data"]))

    memory = telemetry.get("memory")
    if memory is not None:
        for name, key, help_text in (
            ("memory_active_bytes", "active_bytes", "Total number of bytes in active pages allocated by the application"),
            ("memory_allocated_bytes", "allocated_bytes", "Total number of bytes allocated by the application"),
            ("memory_metadata_bytes", "metadata_bytes", "Total number of bytes dedicated to metadata"),
            ("memory_resident_bytes", "resident_bytes", "Maximum number of bytes in physically resident data pages mapped"),
            ("memory_retained_bytes", "retained_bytes", "Total number of bytes in virtual memory mappings"),
        ):
            families.append((name, help_text, "gauge", [({}, memory[key])]))
    return [family for family in families if family[3]]


def _rest_families(rest: dict[str, dict[int, DurationStats]], anonymize: bool) -> list[Family]:
    count = anonymize_count if anonymize else (lambda n: n)
    total, fail_total, avg, low, high, histogram = [], [], [], [], [], []
    for key, by_status in sorted(rest.items()):
        method, _, endpoint = key.partition(" ")
        if endpoint not in REST_ENDPOINT_WHITELIST:
            continue
        for status, stats in sorted(by_status.items()):
            labels = {"method": method, "endpoint": endpoint, "status": str(status)}
            total.append((labels, count(stats.ok_count)))
            fail_total.append((labels, count(stats.fail_count)))
            if status != REST_TIMINGS_FOR_STATUS:
                continue
            avg.append((labels, (stats.average_micros() if stats.ok_count else 0.0) / 1_000_000))
            low.append((labels, (stats.min_micros or 0.0) / 1_000_000))
            high.append((labels, (stats.max_micros or 0.0) / 1_000_000))
            buckets = [(bound, count(n)) for bound, n in stats.histogram()]
            histogram.append((labels, (count(stats.ok_count), stats.total_micros / 1_000_000, buckets)))
    return [
        ("rest_responses_total", "total number of responses", "counter", total),
        ("rest_responses_fail_total", "total number of failed responses", "counter", fail_total),
        ("rest_responses_avg_duration_seconds", "average response duration", "gauge", avg),
        ("rest_responses_min_duration_seconds", "minimum response duration", "gauge", low),
        ("rest_responses_max_duration_seconds", "maximum response duration", "gauge", high),
        ("rest_responses_duration_seconds", "response duration histogram", "histogram", histogram),
    ]


_HARDWARE = (
    ("collection_hardware_metric_cpu", "cpu", "CPU measurements of a collection"),
    ("collection_hardware_metric_payload_io_read", "payload_io_read", "Total IO payload read metrics of a collection"),
    ("collection_hardware_metric_payload_index_io_read", "payload_index_io_read",
     "Total IO payload index read metrics of a collection"),
    ("collection_hardware_metric_payload_index_io_write", "payload_index_io_write",
     "Total IO payload index write metrics of a collection"),
    ("collection_hardware_metric_payload_io_write", "payload_io_write", "Total IO payload write metrics of a collection"),
    ("collection_hardware_metric_vector_io_read", "vector_io_read", "Total IO vector read metrics of a collection"),
    ("collection_hardware_metric_vector_io_write", "vector_io_write", "Total IO vector write metrics of a collection"),
)


def _hardware_families(collection_data: dict) -> list[Family]:
    return [
        (name, help_text, "counter", [({"id": cid}, usage[key]) for cid, usage in sorted(collection_data.items())])
        for name, key, help_text in _HARDWARE
    ]


# -- text exposition ---------------------------------------------------------------------


def format_value(value: float) -> str:
    """A number as Rust's `{}` prints an f64: `1`, `0.25`, `0.000012` (never `1.0` or `1e-05`)."""
    value = float(value)
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer():
        return str(int(value))
    return np.format_float_positional(value, trim="-")


def _escape_label(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _labels(labels: dict, extra: tuple[str, str] | None = None) -> str:
    pairs = [f'{name}="{_escape_label(value)}"' for name, value in labels.items()]
    if extra is not None:
        pairs.append(f'{extra[0]}="{extra[1]}"')
    return "{" + ",".join(pairs) + "}" if pairs else ""


def encode(families: list[Family]) -> str:
    """Prometheus text format 0.0.4, laid out as the Rust `prometheus` crate writes it."""
    lines = []
    for name, help_text, kind, samples in families:
        lines.append(f"# HELP {name} {_escape_help(help_text)}")
        lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            if kind == "histogram":
                count, total, buckets = value
                for bound, cumulative in buckets:
                    lines.append(f"{name}_bucket{_labels(labels, ('le', format_value(bound)))} {cumulative}")
                lines.append(f"{name}_bucket{_labels(labels, ('le', '+Inf'))} {count}")
                lines.append(f"{name}_sum{_labels(labels)} {format_value(total)}")
                lines.append(f"{name}_count{_labels(labels)} {count}")
            else:
                lines.append(f"{name}{_labels(labels)} {format_value(value)}")
    return "\n".join(lines) + "\n" if lines else ""
