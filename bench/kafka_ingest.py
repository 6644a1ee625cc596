"""Kafka ingest end to end, beside a raw confluent-kafka consume of the same topic in the same run.

Starts its own single-node broker (`tests/engines/kafka/broker.py`: jars from the Maven
cache, a temporary log directory, stopped by PID at the end); returns no figures where Java or
Maven is missing. Events are JSON (user_id, amount, merchant, seq, event time), 4 partitions.

- ``kafka_raw_consume_events_per_s``: `Consumer.consume` batches of the whole topic, values
  only touched (the least any Python consumer does);
- ``kafka_ingest_events_per_s``: `strato ingest`'s consumer (`strato.streaming.Ingestor`,
  in process, 50,000-message micro-batches) over the same topic: consume, decode and
  validate each message, `FeatureStore.write` (Delta commit carrying the offsets + LMDB),
  Kafka offset commit; timed from its first message to the end of the topic;
- ``kafka_freshness_p50_ms`` / ``kafka_freshness_p99_ms``: a producer process writes events
  at ``--rate`` events/s stamped with their produce time, while ingest runs (default
  micro-batches: 0.5 s or 50,000 messages); freshness is the time from produce to the end of
  the `write` that makes the row readable online, over every event;
- ``kafka_ingest_*_share``: where ingest's time goes (decode, store write, the rest: consume
  and offset commits).

Run alone: ``uv run python -m bench.kafka_ingest --events 500000``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from strato import Entity, FeatureStore, FeatureView, Field, Float64, Int64, KafkaSource, String
from strato.config import write_default_config
from strato.streaming.consumer import IngestOptions, Ingestor

PARTITIONS = 4
USER = Entity("user", join_keys={"user_id": Int64})

_PRODUCER = r"""
import json, sys, time
from confluent_kafka import Producer
servers, topic, n, rate, users = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
p = Producer({"bootstrap.servers": servers, "linger.ms": 5, "batch.num.messages": 10000,
              "queue.buffering.max.messages": 2000000})
start = time.time()
merchants = [f"m{i}" for i in range(50)]
for i in range(n):
    if rate > 0 and i % 500 == 0:
        ahead = start + i / rate - time.time()
        if ahead > 0:
            time.sleep(ahead)
    now_us = time.time_ns() // 1000
    value = json.dumps({"user_id": (i * 7919) % users, "amount": (i % 1000) / 10.0,
                        "merchant": merchants[i % 50], "seq": i, "ts": now_us}).encode()
    while True:
        try:
            p.produce(topic, value=value, partition=i % 4)
            break
        except BufferError:
            p.poll(0.01)
    if i % 10000 == 0:
        p.poll(0)
p.flush(60)
"""


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _topic(servers: str, name: str) -> str:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": servers})
    for future in admin.create_topics([NewTopic(name, num_partitions=PARTITIONS, replication_factor=1)]).values():
        future.result(timeout=30)
    return name


def _produce(servers: str, topic: str, n: int, rate: float, users: int) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-c", _PRODUCER, servers, topic, str(n), str(rate), str(users)]
    return subprocess.Popen(args)


def _raw_consume(servers: str, topic: str, n: int) -> float:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": servers, "group.id": "raw", "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
    got, nbytes, first = 0, 0, None
    while got < n:
        for message in consumer.consume(num_messages=10_000, timeout=1.0):
            if message.error() is None:
                if first is None:
                    first = time.perf_counter()
                nbytes += len(message.value())
                got += 1
    seconds = time.perf_counter() - (first or time.perf_counter())
    consumer.close()
    return got / seconds


def _view(topic: str, servers: str, users: int) -> FeatureView:
    return FeatureView(
        "events",
        entities=[USER],
        schema=[Field("amount", Float64), Field("merchant", String), Field("seq", Int64)],
        source=KafkaSource(topic, servers, timestamp_field="ts", timestamp_unit="us"),
    )


class _Timed:
    """The store's write, timed, and each row's produce → readable online delay recorded."""

    def __init__(self, store: FeatureStore) -> None:
        self.store = store
        self.seconds = 0.0
        self.delays_ms: list[np.ndarray] = []

    def __call__(self, view: FeatureView, rows: pa.Table, to: str, offsets: Mapping[str, int] | None) -> None:
        began = time.perf_counter()
        self.store.write(view.name, rows, to=to, stream_offsets=offsets)  # type: ignore[arg-type]
        self.seconds += time.perf_counter() - began
        readable_us = time.time_ns() // 1000
        produced = rows.column(view.timestamp_field).cast(pa.int64()).to_numpy()
        self.delays_ms.append((readable_us - produced) / 1000)


def _ingest(repo: Path, group: str, batch_seconds: float) -> tuple[Any, _Timed, float]:
    with FeatureStore(repo) as store:
        timed = _Timed(store)
        ingestor = Ingestor(
            store.list_feature_views(),
            write=timed,
            delta=store.delta,
            repo=repo,
            options=IngestOptions(group_id=group, batch_seconds=batch_seconds, progress_seconds=0, stop_at_end=True),
            max_future_seconds=store.config.max_future_seconds,
            say=_log,
        )
        decode_seconds = [0.0]
        for state in ingestor.states.values():
            decode = state.decoder.decode

            def timed_decode(*args: Any, _decode: Any = decode, **kwargs: Any) -> Any:
                began = time.perf_counter()
                try:
                    return _decode(*args, **kwargs)
                finally:
                    decode_seconds[0] += time.perf_counter() - began

            state.decoder.decode = timed_decode  # type: ignore[method-assign]
        totals = ingestor.run()
        return totals, timed, decode_seconds[0]


def run(events: int = 500_000, rate: float = 50_000, freshness_seconds: float = 8.0) -> dict[str, Any]:
    try:
        from tests.engines.kafka.broker import BrokerUnavailable, KafkaBroker
    except ImportError:  # run from outside the repository
        return {}
    try:
        broker = KafkaBroker().start()
    except BrokerUnavailable as exc:
        _log(f"kafka: skipped ({exc})")
        return {}
    results: dict[str, Any] = {"kafka_events": events}
    try:
        servers = broker.bootstrap_servers
        with tempfile.TemporaryDirectory(prefix="strato-bench-kafka-") as tmp:
            # Throughput: the whole topic produced first, then consumed raw and by ingest.
            topic = _topic(servers, "bench-throughput")
            _log(f"kafka: producing {events:,} events …")
            _produce(servers, topic, events, 0, 100_000).wait()
            _log("kafka: raw confluent-kafka consume …")
            results["kafka_raw_consume_events_per_s"] = round(_raw_consume(servers, topic, events))
            repo = Path(tmp) / "throughput"
            repo.mkdir()
            write_default_config(repo, "bench")
            with FeatureStore(repo) as store:
                store.apply([USER, _view(topic, servers, 100_000)])
            _log("kafka: strato ingest of the same topic …")
            began = time.monotonic()
            totals, timed, decode_s = _ingest(repo, "bench", batch_seconds=0.5)
            ended = time.monotonic()
            assert totals.rows == events, totals
            seconds = ended - (totals.first_message_at or began)
            results["kafka_ingest_events_per_s"] = round(totals.rows / seconds)
            results["kafka_ingest_vs_raw_ratio"] = round(
                results["kafka_raw_consume_events_per_s"] / results["kafka_ingest_events_per_s"], 2
            )
            results["kafka_ingest_batches"] = totals.batches
            results["kafka_ingest_decode_share"] = round(decode_s / seconds, 2)
            results["kafka_ingest_write_share"] = round(timed.seconds / seconds, 2)
            results["kafka_ingest_rest_share"] = round(1 - (decode_s + timed.seconds) / seconds, 2)

            # Freshness: produced at `rate` while ingest runs.
            topic = _topic(servers, "bench-freshness")
            repo = Path(tmp) / "freshness"
            repo.mkdir()
            write_default_config(repo, "bench")
            with FeatureStore(repo) as store:
                store.apply([USER, _view(topic, servers, 100_000)])
            n = int(rate * freshness_seconds)
            _log(f"kafka: freshness, {n:,} events at {rate:,.0f}/s while ingest runs …")
            _produce(servers, topic, 1, 0, 10).wait()  # the group then has partitions to join on
            producer = _produce(servers, topic, n, rate, 100_000)
            with FeatureStore(repo) as store:
                timed = _Timed(store)
                ingestor = Ingestor(
                    store.list_feature_views(),
                    write=timed,
                    delta=store.delta,
                    repo=repo,
                    options=IngestOptions(group_id="fresh", batch_seconds=0.25, progress_seconds=0),
                    max_future_seconds=store.config.max_future_seconds,
                    say=_log,
                )
                import threading

                def stop_when_done() -> None:
                    producer.wait()
                    deadline = time.monotonic() + 60
                    while ingestor.totals.rows < n + 1 and time.monotonic() < deadline:
                        time.sleep(0.1)
                    ingestor.stop()

                threading.Thread(target=stop_when_done, daemon=True).start()
                totals = ingestor.run()
            delays = np.concatenate(timed.delays_ms)[1:]  # the first event waited for the group
            results["kafka_freshness_rate_events_per_s"] = rate
            results["kafka_freshness_events"] = int(delays.size)
            results["kafka_freshness_p50_ms"] = round(float(np.percentile(delays, 50)), 1)
            results["kafka_freshness_p99_ms"] = round(float(np.percentile(delays, 99)), 1)
    finally:
        broker.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--rate", type=float, default=50_000, help="events/s produced in the freshness run")
    parser.add_argument("--seconds", type=float, default=8.0, help="length of the freshness run")
    args = parser.parse_args()
    print(json.dumps(run(args.events, args.rate, args.seconds), indent=2))


if __name__ == "__main__":
    main()
