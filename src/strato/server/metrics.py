"""Prometheus metrics of one server process: latency per endpoint, rows and statuses served,
errors by status, and freshness per view (set at each scrape, `strato.server.freshness`).

Each app has its own registry (tests start several apps in one process). With several
workers each worker counts its own requests; a scrape reaches one worker, as with any
pre-fork server without a shared metrics directory.
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from strato.server.freshness import ViewFreshness

_BUCKETS = (0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

CONTENT_TYPE = CONTENT_TYPE_LATEST


class ServerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.latency = Histogram(
            "strato_request_duration_seconds",
            "Time to answer a request, by endpoint",
            ["endpoint"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.service_latency = Histogram(
            "strato_feature_service_duration_seconds",
            "Time to answer get-online-features for a feature service, by service",
            ["feature_service"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.rows = Counter("strato_rows_served", "Entity rows answered by get-online-features", registry=self.registry)
        self.statuses = Counter(
            "strato_feature_statuses", "Feature values served, by Feast status", ["status"], registry=self.registry
        )
        self.rows_written = Counter(
            "strato_rows_written", "Rows written through push and write-to-online-store", registry=self.registry
        )
        self.errors = Counter(
            "strato_request_errors",
            "Requests answered with an error, by endpoint and status",
            ["endpoint", "status"],
            registry=self.registry,
        )

        r = self.registry
        # The names `strato ingest` exports too, so one dashboard reads either.
        self.last_event = Gauge(
            "strato_view_last_event_timestamp_seconds", "Newest event time written, per view", ["view"], registry=r
        )
        self.last_ingest = Gauge(
            "strato_view_last_ingest_timestamp_seconds",
            "When the view was last written (write, materialize, ingest, push), per view",
            ["view"],
            registry=r,
        )
        self.age = Gauge(
            "strato_view_age_seconds", "Seconds since the newest event time written, per view", ["view"], registry=r
        )
        self.ingest_age = Gauge(
            "strato_view_ingest_age_seconds", "Seconds since the view was last written, per view", ["view"], registry=r
        )
        self.freshness_timeouts = Counter(
            "strato_freshness_read_timeouts",
            "Scrapes answered with the freshness last read, its history read being slower than the backend timeout",
            registry=r,
        )

    def set_freshness(self, views: Mapping[str, ViewFreshness], now: float) -> None:
        """Replace the freshness gauges with `views` (a dropped view's series go)."""
        for gauge in (self.last_event, self.last_ingest, self.age, self.ingest_age):
            gauge.clear()
        for name, f in views.items():
            if f.last_event_s is not None:
                self.last_event.labels(name).set(f.last_event_s)
                self.age.labels(name).set(max(0.0, now - f.last_event_s))
            if f.last_write_s is not None:
                self.last_ingest.labels(name).set(f.last_write_s)
                self.ingest_age.labels(name).set(max(0.0, now - f.last_write_s))

    def render(self) -> bytes:
        return generate_latest(self.registry)
