"""Prometheus metrics of one app instance (its own registry, so tests can run several apps)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest

from pydrant import QDRANT_API_VERSION, __version__


class Metrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        info = Info("app", "pydrant build information", registry=self.registry)
        info.info({"name": "pydrant", "version": __version__, "qdrant_api_version": QDRANT_API_VERSION})
        self.requests = Counter(
            "rest_responses", "REST responses by endpoint and status", ["method", "endpoint", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "rest_responses_duration_seconds", "REST response time by endpoint", ["method", "endpoint"],
            registry=self.registry,
        )
        self.collections = Gauge("collections_total", "Number of collections", registry=self.registry)
        self.points = Gauge("collection_points", "Points per collection", ["collection"], registry=self.registry)
        # Read from the WAL at scrape time; a Gauge because the WAL owns the running count.
        self.wal_fsyncs = Gauge(
            "collection_wal_fsyncs_total", "WAL fsyncs since the collection was loaded", ["collection"],
            registry=self.registry,
        )
        self.wal_records = Gauge(
            "collection_wal_appended_records_total", "WAL records appended since the collection was loaded",
            ["collection"], registry=self.registry,
        )

    def observe(self, method: str, endpoint: str, status: int, seconds: float) -> None:
        self.requests.labels(method, endpoint, str(status)).inc()
        self.latency.labels(method, endpoint).observe(seconds)

    def render(self, toc) -> bytes:
        self.collections.set(len(toc.collections))
        for gauge in (self.points, self.wal_fsyncs, self.wal_records):
            gauge.clear()
        for name, collection in toc.collections.items():
            self.points.labels(name).set(collection.points_count())
            wal = collection.wal.statistics()
            self.wal_fsyncs.labels(name).set(wal["fsyncs"])
            self.wal_records.labels(name).set(wal["appended_records"])
        return generate_latest(self.registry)
