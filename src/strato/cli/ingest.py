"""`strato ingest [VIEW...]`: the long-running Kafka consumer of views with a `KafkaSource`.

The command is thin: it opens the store, picks the views, and hands `strato.streaming`'s
`Ingestor` the store's own `write` (so every rule of a write holds for streamed rows, and
whatever a write maintains, aggregation tiles included, follows). SIGTERM and Ctrl-C finish
the batch in hand, commit it and leave the consumer group cleanly.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from strato.cli.options import RepoOption
from strato.errors import UserError

if TYPE_CHECKING:  # imported where used: `strato --help` stays fast
    from strato.definitions.feature_view import FeatureView
    from strato.store import FeatureStore
    from strato.streaming.consumer import StreamCommit, WriteFn


def ingest(
    views: Annotated[
        list[str] | None, typer.Argument(help="Views to ingest (default: every view with a KafkaSource).")
    ] = None,
    group: Annotated[
        str | None,
        typer.Option(
            "--group", metavar="ID", help="Kafka consumer group (default: strato.<project>).", show_default=False
        ),
    ] = None,
    batch_rows: Annotated[int, typer.Option(metavar="N", help="Write a micro-batch at this many messages.")] = 50_000,
    batch_seconds: Annotated[
        float, typer.Option(metavar="S", help="…or once its first message waited this long.")
    ] = 0.5,
    compact_every: Annotated[
        int,
        typer.Option(
            metavar="N",
            help="Compact a view's Delta table every N ingest commits (0: never). Readers and time travel are unaffected.",
        ),
    ] = 0,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            "--metrics-port", metavar="PORT", help="Serve Prometheus /metrics on 127.0.0.1:PORT.", show_default=False
        ),
    ] = None,
    progress_seconds: Annotated[float, typer.Option(metavar="S", help="Print progress this often (0: never).")] = 5.0,
    stop_at_end: Annotated[
        bool, typer.Option("--stop-at-end", help="Stop once every partition is consumed to its end (backfills).")
    ] = False,
    repo: RepoOption = None,
) -> None:
    """Consume the views' Kafka topics into the online and offline stores, until stopped."""
    from strato.cli import render
    from strato.cli.main import _open
    from strato.definitions.kafka_source import KafkaSource
    from strato.streaming.consumer import IngestOptions, Ingestor
    from strato.streaming.metrics import IngestMetrics

    def say(line: str) -> None:
        render.err_console.print(line, highlight=False, markup=False, soft_wrap=True)

    with _open(repo) as store:
        if views:
            chosen = [store.get_feature_view(name) for name in views]
            for fv in chosen:
                if not isinstance(fv.source, KafkaSource):
                    raise UserError(f"feature view {fv.name!r} has no KafkaSource; strato ingest reads only those")
        else:
            chosen = [fv for fv in store.list_feature_views() if isinstance(fv.source, KafkaSource)]
        if batch_rows < 1 or batch_seconds <= 0 or compact_every < 0:
            raise UserError("--batch-rows and --batch-seconds must be positive, --compact-every 0 or more")

        metrics = IngestMetrics()
        if metrics_port is not None:
            metrics.serve(metrics_port)
        options = IngestOptions(
            group_id=group or f"strato.{store.project}",
            batch_rows=batch_rows,
            batch_seconds=batch_seconds,
            compact_every=compact_every,
            progress_seconds=progress_seconds,
            stop_at_end=stop_at_end,
        )
        ingestor = Ingestor(
            chosen,
            write=writer_for(store),
            delta=store.delta,
            repo=Path(store.config.repo_path),
            options=options,
            max_future_seconds=store.config.max_future_seconds,
            say=say,
            metrics=metrics,
            check=lambda view, rows: store.check_write(view.name, rows),
        )
        names = ", ".join(f"{fv.name} ← {fv.source.topic}" for fv in chosen if isinstance(fv.source, KafkaSource))
        say(f"ingest: {names} (group {options.group_id}); SIGTERM or Ctrl-C stops after the batch in hand")

        def stop(signum: int, frame: object) -> None:
            ingestor.stop()

        previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            totals = ingestor.run()
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
        lag = "?" if totals.lag is None else f"{totals.lag:,}"
        say(f"ingest stopped: {totals.rows:,} rows written, {totals.dead:,} dead letters, lag {lag}")


def describe_freshness(store: Any, fv: Any, group: str | None = None) -> str:
    """`strato describe`'s freshness line: newest event time, last write and, for a view fed
    from Kafka, the lag of its ingest consumer group (default group, asked of the broker)."""
    from datetime import UTC, datetime

    from strato.definitions.kafka_source import KafkaSource

    if not fv.offline:
        parts = ["last event: - (online only)"]
    else:
        newest = store.delta.newest(fv.table_name, "event_timestamp")
        parts = [f"last event: {newest:%Y-%m-%d %H:%M:%S} UTC" if newest else "last event: -"]
        writes = [c for c in store.delta.history(fv.table_name) if c["operation"] != "OPTIMIZE"]
        if writes:
            age = (datetime.now(UTC) - writes[-1]["timestamp"]).total_seconds()
            parts.append(f"last ingest: {writes[-1]['timestamp']:%Y-%m-%d %H:%M:%S} UTC ({age:,.0f} s ago)")
    if isinstance(fv.source, KafkaSource):
        from strato.streaming.freshness import consumer_lag

        lag, note = consumer_lag(fv.source, group or f"strato.{store.project}")
        parts.append(f"consumer lag: {lag:,} ({note})" if lag is not None else f"consumer lag: unknown ({note})")
    return "   ".join(parts)


def writer_for(store: FeatureStore) -> WriteFn:
    """The `Ingestor`'s write: the store's own `write`, with the batch's offsets, fence and positions."""

    def write(view: FeatureView, rows: Any, to: str, commit: StreamCommit) -> None:
        store.write(
            view.name,
            rows,
            to=to,  # type: ignore[arg-type]
            stream_offsets=commit.offsets,
            expected_offsets=commit.expected,
            stream_positions=commit.positions,
        )

    return write
