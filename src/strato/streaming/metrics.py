"""Prometheus metrics of `strato ingest`: throughput, dead letters, lag and freshness per view.

Made only when ingest runs (prometheus-client is imported here, not by the core), in a
registry of their own, served by `serve` on ``--metrics-port``.
"""

from __future__ import annotations

from typing import Any


class IngestMetrics:
    """The counters and gauges one ingest process exports."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        r = self.registry
        self.rows = Counter("strato_ingest_rows_total", "Rows written by ingest", ["view"], registry=r)
        self.dead = Counter(
            "strato_ingest_dead_letters_total", "Messages sent to the dead-letter topic", ["view", "reason"], registry=r
        )
        self.batches = Histogram(
            "strato_ingest_batch_seconds", "Time to write one micro-batch to both stores and commit", registry=r
        )
        self.lag = Gauge("strato_ingest_consumer_lag", "Messages not yet consumed", ["topic", "partition"], registry=r)
        self.last_event = Gauge(
            "strato_view_last_event_timestamp_seconds", "Newest event time written, per view", ["view"], registry=r
        )
        self.last_ingest = Gauge(
            "strato_view_last_ingest_timestamp_seconds", "When ingest last wrote the view", ["view"], registry=r
        )

    def serve(self, port: int, host: str = "127.0.0.1") -> Any:
        """Serve ``/metrics`` on `port` in a background thread."""
        from prometheus_client import start_http_server

        return start_http_server(port, addr=host, registry=self.registry)
