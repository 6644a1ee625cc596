"""The Kafka consumer of `strato ingest`: poll → decode → write both stores → commit offsets.

Exactly once offline. Every Delta commit of a micro-batch carries, as Delta application
transactions, the next offset of each topic-partition it consumed (``app_id`` =
``strato.kafka:<group>:<topic>:<partition>``, version = offset), so rows and offsets land
together or not at all. Before each write the consumer reads those offsets back from the
table: messages below them are already in history and go online only. So a consumer
restarted after any crash, or a partition moved to another consumer of the group, never
appends a message twice, whatever the group's committed offsets say.

Nothing lost online. Kafka offsets are committed only once a batch is durable in both stores
(design rule 8); a restart resumes from the group's committed offsets (or the beginning),
replays online what history already holds, and rule 4 makes that replay idempotent.

Bad messages go to the dead-letter topic with their reason and source offset as headers; the
dead-letter producer is flushed before the offsets are committed (at least once there).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from strato.definitions.feature_view import FeatureView
from strato.definitions.kafka_source import KafkaSource
from strato.errors import BackendUnavailable, OffsetsMovedError, SchemaError, UserError
from strato.offline.delta import DeltaTables
from strato.streaming.decode import DeadLetter, MessageDecoder, client_config
from strato.streaming.metrics import IngestMetrics
from strato.streaming.tiles import StreamPositions


@dataclass(frozen=True)
class StreamCommit:
    """What the write of a streamed micro-batch records and checks besides its rows."""

    positions: StreamPositions
    """Where each row came from (the tiles merge each event once)."""
    offsets: Mapping[str, int] | None = None
    """Delta application id → next offset (and watermark), recorded in the history commit."""
    expected: Mapping[str, int | None] | None = None
    """Delta application id → the offset read before choosing the rows: the fence."""


#: Write one view's rows: (view, rows, target, what the commit records and checks).
WriteFn = Callable[[FeatureView, pa.Table, str, StreamCommit], None]
#: Check rows as the write would, writing nothing: `SchemaError` if it would refuse them.
CheckFn = Callable[[FeatureView, pa.Table], None]


def offset_app_id(group: str, topic: str, partition: int) -> str:
    """The Delta application id under which a group's next offset of a partition is recorded."""
    return f"strato.kafka:{group}:{topic}:{partition}"


def watermark_app_id(group: str, topic: str, partition: int) -> str:
    """The Delta application id recording the newest event time (µs) seen on a partition."""
    return f"strato.kafka.watermark:{group}:{topic}:{partition}"


@dataclass
class IngestOptions:
    """How `Ingestor` batches, commits, compacts and reports."""

    group_id: str
    batch_rows: int = 50_000
    """A micro-batch is written once it holds this many messages…"""
    batch_seconds: float = 0.5
    """…or once its first message waited this long."""
    compact_every: int = 0
    """Compact a view's Delta table after this many ingest commits (0: never)."""
    progress_seconds: float = 5.0
    """Print a progress line this often (0: never)."""
    stop_at_end: bool = False
    """Stop once every assigned partition is consumed to its end (tests, backfills)."""
    write_retries: int = 5


@dataclass
class ViewState:
    """What ingest knows of one view while it runs."""

    view: FeatureView
    source: KafkaSource
    decoder: MessageDecoder
    watermarks: dict[int, int] = field(default_factory=dict)
    rows: int = 0
    dead: int = 0
    commits: int = 0
    last_event_us: int | None = None
    last_ingest: float | None = None


@dataclass
class Totals:
    """Counts over the whole run (what `run` returns)."""

    messages: int = 0
    rows: int = 0
    dead: int = 0
    batches: int = 0
    lag: int | None = None
    first_message_at: float | None = None
    """`time.monotonic()` when the first message arrived (rates leave out start-up)."""


class Ingestor:
    """One consumer (of a group) writing the views whose `KafkaSource` it reads."""

    def __init__(
        self,
        views: Sequence[FeatureView],
        *,
        write: WriteFn,
        delta: DeltaTables,
        repo: Path,
        options: IngestOptions,
        max_future_seconds: float | None = None,
        say: Callable[[str], None] = print,
        metrics: IngestMetrics | None = None,
        check: CheckFn | None = None,
    ) -> None:
        if not views:
            raise UserError("strato ingest: no feature view reads from Kafka (give it source=KafkaSource(...))")
        servers = {v.source.bootstrap_servers for v in views if isinstance(v.source, KafkaSource)}
        configs = {tuple(sorted(v.source.config.items())) for v in views if isinstance(v.source, KafkaSource)}
        if len(servers) > 1 or len(configs) > 1:
            raise UserError(
                "strato ingest: the views read from different Kafka clusters or settings; ingest them apart"
            )
        self.write = write
        self.check = check
        self.delta = delta
        self.options = options
        self.say = say
        self.metrics = metrics
        self.states: dict[str, ViewState] = {}
        self.by_topic: dict[str, list[ViewState]] = defaultdict(list)
        for view in views:
            source = view.source
            if not isinstance(source, KafkaSource):
                raise UserError(f"feature view {view.name!r} has no KafkaSource; strato ingest reads only those")
            state = ViewState(
                view, source, MessageDecoder(view, source, repo=repo, max_future_seconds=max_future_seconds)
            )
            self.states[view.name] = state
            self.by_topic[source.topic].append(state)
        first = next(iter(self.states.values())).source
        self.client = {"bootstrap.servers": first.bootstrap_servers, **client_config(first)}
        self.buffer: list[Any] = []
        self.buffer_since = 0.0
        self.stopping = False
        self.totals = Totals()
        self.assigned: set[tuple[str, int]] = set()
        self._consumer: Any = None
        self._lag_at = 0.0
        self._dlq: Any = None

    # ------------------------------------------------------------------ lifecycle

    def stop(self) -> None:
        """Ask the loop to finish its batch, commit and return (SIGTERM, Ctrl-C)."""
        self.stopping = True

    def run(self) -> Totals:
        """Consume until `stop` (or the end of the topics, with `stop_at_end`)."""
        from confluent_kafka import Consumer, Producer

        consumer_config = {
            "session.timeout.ms": 10_000,
            "heartbeat.interval.ms": 1_000,
            **self.client,
            "group.id": self.options.group_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
        }
        self._consumer = consumer = Consumer(consumer_config)
        shared = {k: v for k, v in self.client.items() if not k.startswith(_CONSUMER_ONLY)}
        self._dlq = Producer({**shared, "linger.ms": 20})
        consumer.subscribe(
            sorted(self.by_topic), on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
        )
        at_end: set[tuple[str, int]] = set()
        last_report = time.monotonic()
        reported_rows = 0
        try:
            while not self.stopping:
                messages = consumer.consume(num_messages=min(self.options.batch_rows, 10_000), timeout=0.1)
                for message in messages:
                    error = message.error()
                    if error is not None:
                        if error.code() == _PARTITION_EOF:
                            at_end.add((str(message.topic()), message.partition() or 0))
                        else:
                            self.say(f"kafka: {error}")
                        continue
                    at_end.discard((message.topic(), message.partition()))
                    if not self.buffer:
                        self.buffer_since = time.monotonic()
                        if self.totals.first_message_at is None:
                            self.totals.first_message_at = self.buffer_since
                    self.buffer.append(message)
                full = len(self.buffer) >= self.options.batch_rows
                waited = self.buffer and time.monotonic() - self.buffer_since >= self.options.batch_seconds
                drained = self.buffer and not messages
                if full or waited or drained:
                    self.flush()
                if self.options.stop_at_end and self.assigned and self.assigned <= at_end and not self.buffer:
                    break
                now = time.monotonic()
                if self.options.progress_seconds and now - last_report >= self.options.progress_seconds:
                    self._report(now - last_report, self.totals.rows - reported_rows)
                    last_report, reported_rows = now, self.totals.rows
            self.flush()
        finally:
            try:
                consumer.close()  # revokes: flushes (nothing left) before leaving the group
            finally:
                self._dlq.flush(30)
        self.totals.lag = self._lag()
        return self.totals

    # ------------------------------------------------------------------ rebalances

    def _on_assign(self, consumer: Any, partitions: list[Any]) -> None:
        from confluent_kafka import OFFSET_BEGINNING

        committed = consumer.committed(partitions, timeout=30)
        for tp in committed:
            key: tuple[str, int] = (str(tp.topic), int(tp.partition))
            self.assigned.add(key)
            recorded = False
            for state in self.by_topic.get(tp.topic, ()):
                if not state.view.offline:
                    continue
                ids = [offset_app_id(self.options.group_id, *key), watermark_app_id(self.options.group_id, *key)]
                found = self.delta.transaction_versions(state.view.table_name, ids)
                offset, mark = found[ids[0]], found[ids[1]]
                recorded |= offset is not None
                if mark is not None:
                    state.watermarks[tp.partition] = mark
                else:
                    state.watermarks.pop(tp.partition, None)
            if tp.offset < 0 and recorded:
                # History holds offsets the group never committed: replay from the start,
                # online only below them, so the online store misses nothing.
                tp.offset = OFFSET_BEGINNING
        consumer.assign(committed)

    def _on_revoke(self, consumer: Any, partitions: list[Any]) -> None:
        self.flush()  # what this consumer holds is written and committed before another takes over
        for tp in partitions:
            self.assigned.discard((tp.topic, tp.partition))

    def _on_lost(self, consumer: Any, partitions: list[Any]) -> None:
        lost = {(tp.topic, tp.partition) for tp in partitions}
        self.buffer = [m for m in self.buffer if (m.topic(), m.partition()) not in lost]
        self.assigned -= lost

    # ------------------------------------------------------------------ batches

    def flush(self) -> None:
        """Write the buffered messages to every store, then commit their offsets."""
        messages, self.buffer = self.buffer, []
        if not messages:
            return
        began = time.perf_counter()
        by_topic: dict[str, list[Any]] = defaultdict(list)
        for message in messages:
            by_topic[message.topic()].append(message)
        dead_letters = 0
        for topic, batch in by_topic.items():
            for state in self.by_topic.get(topic, ()):
                dead_letters += self._write_view(state, topic, batch)
        if dead_letters:
            remaining = self._dlq.flush(30)
            if remaining:
                raise BackendUnavailable(f"dead-letter topic: {remaining} message(s) not delivered in 30 s")
        from confluent_kafka import TopicPartition

        ends: dict[tuple[str, int], int] = {}
        for topic, batch in by_topic.items():
            for message in batch[::-1]:  # the last message of each partition, found from the end
                key = (topic, message.partition())
                if key not in ends:
                    ends[key] = message.offset() + 1
        self._consumer.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in ends.items()], asynchronous=False)
        self.totals.messages += len(messages)
        self.totals.batches += 1
        if self.metrics is not None:
            self.metrics.batches.observe(time.perf_counter() - began)
            if time.monotonic() - self._lag_at >= 1.0:  # cached watermarks: no broker call
                self._lag_at = time.monotonic()
                self.totals.lag = self._lag()

    def _write_view(self, state: ViewState, topic: str, batch: list[Any]) -> int:
        """Decode and write one view's share of a batch; returns the dead letters sent."""
        view = state.view
        partitions = [m.partition() for m in batch]
        decoded = state.decoder.decode(
            [m.value() for m in batch], partitions, state.watermarks, now_us=time.time_ns() // 1000
        )
        rows, kept = decoded.rows, decoded.kept
        dead = list(decoded.dead)
        attempt = 0
        while True:
            try:
                self._write_rows(state, topic, batch, partitions, rows, kept)
                break
            except SchemaError:
                refused = state.decoder.refuse_in_batch(rows, self._check_for(view))
                if not refused:
                    raise
                gone = {position for position, _ in refused}
                dead.extend(DeadLetter(kept[position], reason) for position, reason in refused)
                keep = [i for i in range(rows.num_rows) if i not in gone]
                rows, kept = rows.take(pa.array(keep, pa.int64())), [kept[i] for i in keep]
            except OffsetsMovedError as exc:
                # Another consumer wrote these partitions' offsets first: read them again, so the
                # retry appends only what history lacks and replays the rest online only.
                attempt += 1
                if attempt > self.options.write_retries:
                    raise
                self.say(f"{view.name}: {exc}; reading the offsets again")
            except BackendUnavailable as exc:
                attempt += 1
                if attempt > self.options.write_retries:
                    raise
                self.say(f"{view.name}: {exc}; retrying")
                time.sleep(min(0.2 * 2**attempt, 5))
        for letter in dead:
            self._dead_letter(state, batch[letter.index], letter.reason)
        state.dead += len(dead)
        self.totals.dead += len(dead)
        return len(dead)

    def _check_for(self, view: FeatureView) -> Callable[[pa.Table], None] | None:
        check = self.check
        if check is None:
            return None
        return lambda part: check(view, part)

    def _write_rows(
        self,
        state: ViewState,
        topic: str,
        batch: list[Any],
        partitions: list[int],
        rows: pa.Table,
        kept: list[int],
    ) -> None:
        """Write the rows: below the offsets history already holds, online only (a replay);
        the rest to both stores, with the batch's next offsets in the same Delta commit."""
        import numpy as np

        view, group = state.view, self.options.group_id
        offsets = [m.offset() for m in batch]
        ends: dict[int, int] = {}
        for partition, offset in zip(partitions, offsets, strict=True):
            ends[partition] = offset + 1
        target = "online_and_offline" if view.online and view.offline else "online" if view.online else "offline"
        sources = [f"{topic}:{partitions[i]}" for i in kept]
        row_offsets = [offsets[i] for i in kept]
        chosen, positions = rows, StreamPositions(sources, row_offsets)
        transactions: dict[str, int] | None = None
        expected: dict[str, int | None] | None = None
        if view.offline:
            ids = {p: offset_app_id(group, topic, p) for p in ends}
            in_table = self.delta.transaction_versions(view.table_name, ids.values())
            below = {p: in_table[ids[p]] or 0 for p in ends}
            if any(below.values()):
                row_partitions = np.asarray(partitions, dtype=np.int64)[kept]
                floor = np.zeros(len(kept), dtype=np.int64)
                for p, offset in below.items():
                    floor[row_partitions == p] = offset
                replayed = np.asarray(row_offsets, dtype=np.int64) < floor
                if replayed.any():
                    if view.online:
                        replay = StreamCommit(positions.where(replayed))
                        self.write(view, rows.filter(pa.array(replayed)), "online", replay)
                    chosen, positions = rows.filter(pa.array(~replayed)), positions.where(~replayed)
            transactions = {ids[p]: ends[p] for p in ends if ends[p] > below[p]}
            expected = {ids[p]: in_table[ids[p]] for p in ends if ends[p] > below[p]}
            for p in ends:
                if ends[p] > below[p] and p in state.watermarks:
                    transactions[watermark_app_id(group, topic, p)] = state.watermarks[p]
        if chosen.num_rows == 0:
            return
        self.write(view, chosen, target, StreamCommit(positions, transactions or None, expected or None))
        state.rows += chosen.num_rows
        self.totals.rows += chosen.num_rows
        newest = int(pa.compute.max(chosen.column(view.timestamp_field)).cast(pa.int64()).as_py())
        state.last_event_us = max(state.last_event_us or newest, newest)
        state.last_ingest = time.time()
        if self.metrics is not None:
            self.metrics.rows.labels(view.name).inc(chosen.num_rows)
            self.metrics.last_event.labels(view.name).set(state.last_event_us / 1e6)
            self.metrics.last_ingest.labels(view.name).set(state.last_ingest)
        if view.offline and transactions:
            state.commits += 1
            if self.options.compact_every and state.commits % self.options.compact_every == 0:
                self._compact(view)

    def _compact(self, view: FeatureView) -> None:
        try:
            merged = self.delta.compact(view.table_name)
        except BackendUnavailable as exc:  # another writer's commit won the race: next time
            self.say(f"{view.name}: compaction skipped ({exc})")
            return
        if merged:
            self.say(f"{view.name}: compacted {merged} small files")

    def _dead_letter(self, state: ViewState, message: Any, reason: str) -> None:
        oversized = reason.startswith("oversized")
        headers = [
            ("strato.reason", reason.encode()),
            ("strato.view", state.view.name.encode()),
            ("strato.source.topic", message.topic().encode()),
            ("strato.source.partition", str(message.partition()).encode()),
            ("strato.source.offset", str(message.offset()).encode()),
        ]
        kind = reason.split(":", 1)[0]
        if self.metrics is not None:
            self.metrics.dead.labels(state.view.name, kind).inc()
        while True:
            try:
                self._dlq.produce(
                    state.source.dead_letters,
                    value=None if oversized else message.value(),
                    key=message.key(),
                    headers=headers,
                )
                return
            except BufferError:
                self._dlq.poll(0.1)

    # ------------------------------------------------------------------ reporting

    def _lag(self) -> int | None:
        """Messages on the assigned partitions not consumed yet (from cached high watermarks)."""
        from confluent_kafka import TopicPartition

        consumer = self._consumer
        if consumer is None or not self.assigned:
            return None
        total = 0
        try:
            positions = consumer.position([TopicPartition(t, p) for t, p in sorted(self.assigned)])
            for tp in positions:
                _, high = consumer.get_watermark_offsets(tp, cached=True)
                lag = max(high - tp.offset, 0) if tp.offset >= 0 and high >= 0 else 0
                total += lag
                if self.metrics is not None:
                    self.metrics.lag.labels(tp.topic, str(tp.partition)).set(lag)
        except Exception:  # a closed consumer, or no fetch yet
            return None
        return total

    def _report(self, seconds: float, rows: int) -> None:
        lag = self._lag()
        self.totals.lag = lag
        parts = [f"{s.view.name}: {s.rows:,} rows, {s.dead:,} dead letters" for s in self.states.values()]
        lag_text = "?" if lag is None else f"{lag:,}"
        self.say(f"ingest: {rows / seconds:,.0f} rows/s, lag {lag_text}; " + "; ".join(parts))


#: Client settings only a consumer takes (the dead-letter producer would warn about them).
_CONSUMER_ONLY = (
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "max.poll.interval.ms",
    "auto.offset.reset",
    "fetch.",
    "partition.assignment.strategy",
    "group.",
    "queued.",
    "check.crcs",
)

_PARTITION_EOF = -191  # confluent_kafka.KafkaError._PARTITION_EOF
