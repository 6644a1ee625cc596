"""Prometheus metrics of one server process: latency per endpoint, rows and statuses served,
errors by status.

Each app has its own registry (tests start several apps in one process). With several
workers each worker counts its own requests; a scrape reaches one worker, as with any
pre-fork server without a shared metrics directory.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

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

    def render(self) -> bytes:
        return generate_latest(self.registry)
