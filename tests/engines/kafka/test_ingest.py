"""`strato ingest` against a real Kafka broker: exactly once offline, complete online, dead letters.

Each test runs the installed `strato` command in a subprocess, as users do, against a
fresh topic on the session's broker and a fresh feature repo, and checks the stores against
an oracle computed from the events it produced.
"""

from __future__ import annotations

import json
import math
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from strato import Aggregation, Entity, FeatureStore, FeatureView, Field, Float64, Int64, KafkaSource, String
from strato.config import write_default_config
from strato.offline.delta import DeltaTables

from . import harness
from .broker import KafkaBroker

USER = Entity("user", join_keys={"user_id": Int64})
BASE_MS = 1_780_000_000_000  # event times: milliseconds, in 2026


def strato() -> str:
    beside = Path(sys.executable).parent / "strato"
    return str(beside) if beside.exists() else "strato"


#: Windows long enough to hold every test event (they are from 2026) at any read time.
LONG_WINDOW = timedelta(days=1000)
AGGREGATIONS = [Aggregation("amount", "sum", LONG_WINDOW), Aggregation("seq", "count", LONG_WINDOW)]


def swipes_view(topic: str, servers: str, aggregations: list[Aggregation] | None = None, **source: Any) -> FeatureView:
    return FeatureView(
        "swipes",
        entities=[USER],
        schema=[Field("amount", Float64), Field("merchant", String), Field("seq", Int64)],
        aggregations=aggregations or [],
        source=KafkaSource(
            topic,
            servers,
            field_mapping={"uid": "user_id"},
            timestamp_field="ts",
            # Passed through to the client: a killed consumer's partitions move on after 6 s.
            config={"session.timeout.ms": "6000"},
            **source,
        ),
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    write_default_config(tmp_path, "proj")
    return tmp_path


def apply(repo: Path, view: FeatureView) -> None:
    with FeatureStore(repo) as store:
        store.apply([USER, view])


def events(n: int, users: int, seed: int) -> list[dict[str, Any]]:
    """`n` events with unique event times, shuffled within small windows (out of order)."""
    rng = random.Random(seed)
    times = list(range(n))
    for start in range(0, n, 50):
        window = times[start : start + 50]
        rng.shuffle(window)
        times[start : start + 50] = window
    return [
        {
            "uid": rng.randrange(users),
            "ts": BASE_MS + t * 7,
            "amount": round(rng.uniform(1, 500), 2),
            "merchant": f"m{rng.randrange(20)}",
            "seq": i,
        }
        for i, t in enumerate(times)
    ]


def produce(servers: str, topic: str, values: list[bytes | None], partitions: int, keyed: bool = True) -> None:
    producer = Producer({"bootstrap.servers": servers, "linger.ms": 5, "message.max.bytes": 4_000_000})
    for i, value in enumerate(values):
        partition = i % partitions
        producer.produce(topic, value=value, partition=partition)
        if i % 5000 == 0:
            producer.poll(0)
    assert producer.flush(30) == 0


def encode(event: dict[str, Any]) -> bytes:
    return json.dumps(event).encode()


def ingest(repo: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [strato(), "ingest", "-r", str(repo), "--progress-seconds", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )


def run_to_end(repo: Path, *args: str, timeout: float = 120) -> str:
    process = ingest(repo, "--stop-at-end", *args)
    out, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, out
    return out


def offline_rows(repo: Path) -> list[dict[str, Any]]:
    with FeatureStore(repo, read_only=True) as store:
        return store.sql("select user_id, seq, amount, merchant, event_timestamp from swipes").to_pylist()


def online_values(repo: Path, users: int) -> dict[int, Any]:
    with FeatureStore(repo, read_only=True) as store:
        got = store.get_online_features(
            ["swipes:seq", "swipes:amount"], [{"user_id": u} for u in range(users)]
        ).to_dict()
    return {u: (s, a) for u, s, a in zip(got["user_id"], got["seq"], got["amount"], strict=True) if s is not None}


def latest_oracle(evs: list[dict[str, Any]]) -> dict[int, Any]:
    best: dict[int, dict[str, Any]] = {}
    for e in evs:
        if e["uid"] not in best or e["ts"] > best[e["uid"]]["ts"]:
            best[e["uid"]] = e
    return {u: (e["seq"], e["amount"]) for u, e in best.items()}


def read_topic(servers: str, topic: str, expect: int, timeout: float = 30) -> list[Any]:
    consumer = Consumer({"bootstrap.servers": servers, "group.id": f"reader-{topic}", "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    got: list[Any] = []
    deadline = time.monotonic() + timeout
    while len(got) < expect and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is not None and message.error() is None:
            got.append(message)
    time.sleep(0.5)
    got.extend(m for m in consumer.consume(100, timeout=0.5) if m.error() is None)
    consumer.close()
    return got


def check_exactly_once(repo: Path, evs: list[dict[str, Any]], users: int) -> None:
    rows = offline_rows(repo)
    seqs = sorted(r["seq"] for r in rows)
    assert seqs == list(range(len(evs))), f"{len(rows)} rows offline for {len(evs)} events"
    assert online_values(repo, users) == latest_oracle(evs)


@pytest.fixture
def servers(kafka_broker: KafkaBroker) -> str:
    return kafka_broker.bootstrap_servers


def test_ingest_writes_both_stores_and_dead_letters_poison(repo: Path, servers: str) -> None:
    topic = harness.new_topic(partitions=2)
    apply(repo, swipes_view(topic, servers, max_message_bytes=10_000))
    good = events(300, users=40, seed=1)
    poison: list[tuple[bytes | None, str]] = [
        (b"{not json", "bad JSON"),
        (encode({**good[0], "amount": "lots"}), "invalid: field 'amount'"),
        (encode({k: v for k, v in good[1].items() if k != "uid"}), "invalid: missing join key 'uid'"),
        (encode({**good[2], "uid": None}), "invalid: null join key 'uid'"),
        (encode({**good[3], "ts": "yesterday"}), "invalid: field 'ts'"),
        (b"[1, 2]", "not an object"),
        (encode({**good[4], "merchant": "x" * 20_000}), "oversized"),
    ]
    values: list[bytes | None] = [encode(e) for e in good]
    for i, (value, _) in enumerate(poison):
        values.insert(17 + i * 40, value)
    produce(servers, topic, values, partitions=2)
    out = run_to_end(repo)
    assert "7 dead letters" in out, out
    check_exactly_once(repo, good, users=40)
    dead = read_topic(servers, f"{topic}.dlq", expect=len(poison))
    assert len(dead) == len(poison)
    reasons = sorted(dict(m.headers())["strato.reason"].decode() for m in dead)
    for _, expected in poison:
        assert any(r.startswith(expected) for r in reasons), (expected, reasons)
    for message in dead:
        headers = dict(message.headers())
        assert headers["strato.source.topic"].decode() == topic
        source = TopicPartition(topic, int(headers["strato.source.partition"]), int(headers["strato.source.offset"]))
        assert source.offset >= 0
        if headers["strato.reason"].startswith(b"oversized"):
            assert message.value() is None  # refused, not copied
    # Run again: nothing new, nothing doubled.
    run_to_end(repo)
    check_exactly_once(repo, good, users=40)
    newest = datetime.fromtimestamp(max(e["ts"] for e in good) / 1000, UTC)
    assert f"last event: {newest:%Y-%m-%d %H:%M:%S} UTC" in describe(repo)
    assert "consumer lag: 0 (group strato.proj, 2 partition(s))" in describe(repo)
    produce(servers, topic, [encode(e) for e in good[:5]], partitions=2)
    assert "consumer lag: 5 (" in describe(repo)


def describe(repo: Path) -> str:
    done = subprocess.run(
        [strato(), "describe", "view", "swipes", "-r", str(repo)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return " ".join(done.stdout.split())


def test_late_events_never_regress_online_and_lateness_dead_letters(repo: Path, servers: str) -> None:
    topic = harness.new_topic(partitions=1)
    apply(repo, swipes_view(topic, servers, allowed_lateness=timedelta(seconds=5)))
    base = {"uid": 1, "amount": 1.0, "merchant": "m"}
    seconds = [100, 90, 120, 118, 60, 121]  # 118 is 2 s late (kept); 90 and 60, 10 s and more (refused)
    evs = [{**base, "ts": BASE_MS + s * 1000, "seq": i} for i, s in enumerate(seconds)]
    produce(servers, topic, [encode(e) for e in evs], partitions=1)
    run_to_end(repo, "--batch-rows", "1")
    assert online_values(repo, 2) == {1: (5, 1.0)}
    rows = {r["seq"] for r in offline_rows(repo)}
    assert rows == {0, 2, 3, 5}  # 90 s (10 s behind 100) and 60 s are past the 5 s lateness
    reasons = [dict(m.headers())["strato.reason"].decode() for m in read_topic(servers, f"{topic}.dlq", 2)]
    assert len(reasons) == 2
    assert all(r.startswith("late:") for r in reasons)
    # An older event written later never replaces the newer online value.
    produce(servers, topic, [encode({**base, "ts": BASE_MS + 119_000, "seq": 9})], partitions=1)
    run_to_end(repo)
    assert online_values(repo, 2) == {1: (5, 1.0)}


def aggregates_oracle(evs: list[dict[str, Any]]) -> dict[int, tuple[float, int]]:
    """Per user: the exact sum of amounts and the count of events (all inside LONG_WINDOW)."""
    amounts: dict[int, list[float]] = {}
    for e in evs:
        amounts.setdefault(e["uid"], []).append(e["amount"])
    return {u: (math.fsum(a), len(a)) for u, a in amounts.items()}


def check_aggregates(repo: Path, evs: list[dict[str, Any]], users: int) -> None:
    """Online tiles and offline history both give the oracle's windowed sums and counts."""
    refs = ["swipes:amount_sum_1000d", "swipes:seq_count_1000d"]
    entities = [{"user_id": u} for u in range(users)]
    with FeatureStore(repo, read_only=True) as store:
        got = store.get_online_features(refs, entities).to_dict()
        spine = pa.table(
            {
                "user_id": pa.array(range(users), pa.int64()),
                "event_timestamp": pa.array([datetime.now(UTC)] * users, pa.timestamp("us", tz="UTC")),
            }
        )
        offline = store.get_historical_features(spine, refs).table.to_pydict()
    expected = aggregates_oracle(evs)
    online = {
        u: (s, c) for u, s, c in zip(got["user_id"], got["amount_sum_1000d"], got["seq_count_1000d"], strict=True) if c
    }
    assert online == expected, "online tiles counted an event twice or missed one"
    history = {
        u: (s, c)
        for u, s, c in zip(offline["user_id"], offline["amount_sum_1000d"], offline["seq_count_1000d"], strict=True)
        if c
    }
    assert history == expected


def test_sigkill_at_random_points_then_restart_gives_each_event_once(repo: Path, servers: str) -> None:
    """Also for windowed aggregations: the tiles a killed consumer had merged are not merged
    again by the replay after the restart."""
    topic = harness.new_topic(partitions=3)
    apply(repo, swipes_view(topic, servers, aggregations=AGGREGATIONS))
    evs = events(30_000, users=500, seed=7)
    produce(servers, topic, [encode(e) for e in evs], partitions=3)
    rng = random.Random(11)
    kills = 0
    tables = DeltaTables(str(repo / ".strato" / "offline"), "proj")
    for _ in range(3):
        before = tables.version("swipes__v1") or -1
        process = ingest(repo, "--batch-rows", "700", "--batch-seconds", "0.05")
        deadline = time.monotonic() + 30
        while (tables.version("swipes__v1") or -1) <= before and process.poll() is None:
            assert time.monotonic() < deadline, "no commit in 30 s"
            time.sleep(0.05)
        time.sleep(rng.uniform(0, 0.8))  # somewhere in the middle of a batch, a commit or an offset commit
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.communicate(timeout=30)
    assert kills >= 3
    with FeatureStore(repo, read_only=True) as store:
        assert 0 < store.sql("select count(*) as n from swipes").column("n")[0].as_py() < len(evs)
    run_to_end(repo, "--batch-rows", "5000")
    check_exactly_once(repo, evs, users=500)
    check_aggregates(repo, evs, users=500)


def _lag(servers: str, group: str, topic: str, partitions: int) -> int:
    consumer = Consumer({"bootstrap.servers": servers, "group.id": group})
    try:
        tps = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
        lag = 0
        for tp in tps:
            _, high = consumer.get_watermark_offsets(tp, timeout=10)
            lag += high - max(tp.offset, 0)
        return lag
    finally:
        consumer.close()


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_two_consumers_in_one_group_share_partitions_through_a_rebalance(
    repo: Path, servers: str, processes: list[subprocess.Popen[str]]
) -> None:
    topic = harness.new_topic(partitions=4)
    apply(repo, swipes_view(topic, servers))
    evs = events(24_000, users=300, seed=3)
    values = [encode(e) for e in evs]
    produce(servers, topic, values[:8000], partitions=4)
    port = harness.free_port()
    processes.append(ingest(repo, "--batch-rows", "500", "--batch-seconds", "0.05", "--metrics-port", str(port)))
    time.sleep(3)
    processes.append(ingest(repo, "--batch-rows", "500", "--batch-seconds", "0.05"))  # rebalance
    time.sleep(2)
    produce(servers, topic, values[8000:], partitions=4)
    deadline = time.monotonic() + 90
    while _lag(servers, "strato.proj", topic, 4) > 0:
        assert time.monotonic() < deadline, "consumers did not catch up in 90 s"
        time.sleep(0.5)
    metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    assert 'strato_ingest_rows_total{view="swipes"}' in metrics
    assert 'strato_view_last_event_timestamp_seconds{view="swipes"}' in metrics
    assert "strato_ingest_consumer_lag{" in metrics
    outputs = []
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        out, _ = process.communicate(timeout=60)
        outputs.append(out)
        assert process.returncode == 0, out
    written = [int(out.rsplit("ingest stopped: ", 1)[1].split(" rows")[0].replace(",", "")) for out in outputs]
    assert all(n > 0 for n in written), outputs  # both consumers took part
    check_exactly_once(repo, evs, users=300)


def test_restart_resumes_from_the_offsets_in_the_table_not_only_the_groups(repo: Path, servers: str) -> None:
    """History holds offsets the group lost (its commit never happened): nothing is appended
    twice, and the online store, emptied, is refilled by replaying online only, while the
    aggregation tiles, kept, count none of the replayed events again."""
    from confluent_kafka.admin import AdminClient

    topic = harness.new_topic(partitions=2)
    apply(repo, swipes_view(topic, servers, aggregations=AGGREGATIONS))
    evs = events(3000, users=50, seed=5)
    produce(servers, topic, [encode(e) for e in evs], partitions=2)
    run_to_end(repo, "--batch-rows", "400")
    check_exactly_once(repo, evs, users=50)
    check_aggregates(repo, evs, users=50)
    with FeatureStore(repo) as store:
        version = store.delta.version("swipes__v1")
        store.online_store.drop("swipes__v1")
    assert online_values(repo, 50) == {}
    admin = AdminClient({"bootstrap.servers": servers})
    for future in admin.delete_consumer_groups(["strato.proj"], request_timeout=30).values():
        future.result(timeout=30)
    run_to_end(repo, "--batch-rows", "400")
    check_exactly_once(repo, evs, users=50)
    check_aggregates(repo, evs, users=50)
    with FeatureStore(repo) as store:
        assert store.delta.version("swipes__v1") == version  # no append: every offset was in the table


def test_compaction_as_ingest_goes_keeps_rows_and_time_travel(repo: Path, servers: str) -> None:
    topic = harness.new_topic(partitions=1)
    apply(repo, swipes_view(topic, servers))
    evs = events(2000, users=30, seed=9)
    produce(servers, topic, [encode(e) for e in evs], partitions=1)
    run_to_end(repo, "--batch-rows", "100", "--compact-every", "5")
    check_exactly_once(repo, evs, users=30)
    with FeatureStore(repo, read_only=True) as store:
        log = store.delta.history("swipes__v1")
        assert [c["operation"] for c in log].count("OPTIMIZE") >= 3
        snapshot = store.delta.snapshot("swipes__v1")
        assert snapshot is not None
        assert len(snapshot.files) < 10  # 20 commits of 100 rows, compacted every 5
        first = log[0]["version"]
        old = store.delta.snapshot("swipes__v1", as_of=first)
        assert old is not None
        assert old.version == first  # time travel to before compaction still reads
        n = store.sql("select count(*) as n from swipes").column("n")[0].as_py()
        assert n == len(evs)


def test_a_row_only_the_online_store_refuses_is_dead_lettered_alone(repo: Path, servers: str) -> None:
    """A join key too long for LMDB passes decoding; the store refuses the batch, and
    ingest finds that one row (by halving the batch) and writes the rest."""
    topic = harness.new_topic(partitions=1)
    card = Entity("card", join_keys={"card": String})
    view = FeatureView(
        "cards",
        entities=[card],
        schema=[Field("amount", Float64)],
        source=KafkaSource(topic, servers, timestamp_field="ts"),
    )
    with FeatureStore(repo) as store:
        store.apply([card, view])
    values = [encode({"card": f"c{i}", "amount": float(i), "ts": BASE_MS + i}) for i in range(50)]
    values[23] = encode({"card": "k" * 600, "amount": 1.0, "ts": BASE_MS})
    produce(servers, topic, values, partitions=1)
    run_to_end(repo)
    with FeatureStore(repo, read_only=True) as store:
        assert store.sql("select count(*) as n from cards").column("n")[0].as_py() == 49
    dead = read_topic(servers, f"{topic}.dlq", expect=1)
    assert len(dead) == 1
    headers = dict(dead[0].headers())
    assert headers["strato.source.offset"] == b"23"
    assert b"bytes encoded" in headers["strato.reason"]


def test_a_rival_owner_writing_the_same_offsets_first_fences_the_batch(repo: Path, servers: str) -> None:
    """Two consumers briefly owning one partition (a zombie past its session, a new owner)
    read the same offsets from history; the one that commits second is refused whole
    (`OffsetsMovedError`), reads the offsets again, and writes only what history lacks."""
    from strato.cli.ingest import writer_for
    from strato.errors import OffsetsMovedError
    from strato.streaming.consumer import IngestOptions, Ingestor, StreamCommit

    topic = harness.new_topic(partitions=2)
    view = swipes_view(topic, servers, aggregations=AGGREGATIONS)
    apply(repo, view)
    evs = events(4000, users=40, seed=9)
    produce(servers, topic, [encode(e) for e in evs], partitions=2)
    fenced: list[str] = []
    with FeatureStore(repo) as store:
        ours = writer_for(store)

        def write(fv: FeatureView, rows: Any, to: str, commit: StreamCommit) -> None:
            if commit.offsets and len(fenced) < 3:
                ours(fv, rows, to, commit)  # the rival: same rows, same offsets read, committed first
                with pytest.raises(OffsetsMovedError, match="another writer recorded it first"):
                    ours(fv, rows, to, commit)
                fenced.append(fv.name)
                raise OffsetsMovedError("fenced")  # what our own write raised: the consumer retries
            ours(fv, rows, to, commit)

        ingestor = Ingestor(
            [store.get_feature_view("swipes")],
            write=write,
            delta=store.delta,
            repo=repo,
            options=IngestOptions(group_id="fence", batch_rows=500, batch_seconds=0.05, stop_at_end=True),
            say=lambda line: None,
        )
        ingestor.run()
    assert len(fenced) == 3
    check_exactly_once(repo, evs, users=40)
    check_aggregates(repo, evs, users=40)
