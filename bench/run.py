"""Strato's benchmarks, each figure beside its raw-engine baseline from the same run.

``make bench`` (or ``uv run python -m bench.run``) builds the issue's data set — 100,000 users,
a 100-feature view with 5 versions per user and a 20-feature view with 10 — in a fresh
feature repo, then measures:

- ``write``: `FeatureStore.write` of the whole history (validation + Delta commit + LMDB
  upsert), beside raw LMDB ``putmulti`` of the same encoded bytes;
- ``materialize``: a full `materialize` of both views into an empty online store;
- ``online``: for 1 and for 100 entities x 120 features, the lookup alone
  (`get_online_features`) and each call users make on it — ``to_dict()``, ``to_numpy()`` and
  ``to_df()`` — beside raw ``txn.get`` of the same keys in one read transaction. ``view_a`` is
  mixed like a real view: its numeric features cycle float32 / float64 / int64, and it has a
  string and a list feature; ``to_dict``/``to_df`` read 118 numeric features plus those two,
  ``to_numpy`` (numbers only) 120 numeric ones;
- ``redis``: `bench.redis_online` (Redis and Redis Cluster reads beside raw redis-py, on
  servers it starts; skipped without ``redis-server``);
- ``historical``: `bench.historical` (Strato's point-in-time join beside a hand-written
  DuckDB ASOF JOIN on the same files, each in a fresh process), for an entity frame of
  100K rows and one of 1M rows (``historical_1m_*``) over the same history;
- ``training_sets``: `bench.training_sets` (training-set rebuild beside its original build, and
  a historical read after 1,000 small writes beside the same read after `compact`);
- ``kafka``: `bench.kafka_ingest` (`strato ingest` end to end beside a raw confluent-kafka
  consume of the same topic, and produce → readable-online freshness, on a broker it starts;
  skipped without Java and Maven).
- ``window_agg``: `bench.window_agg` (windowed-aggregation lookups, 1 entity x 3 windows x 4
  aggregates, beside the raw LMDB read of the same tile row).
- ``tile_cas``: `bench.tile_cas` (tile merges on Redis stored by compare-and-set, beside a
  plain write and raw redis-py; then 4 writers with separate lock files on the same users).

It prints one flat JSON object and merges it into ``bench/results.json`` (keys measured by
other scripts, such as the Aerospike ones, stay).
"""

from __future__ import annotations

import argparse
import gc
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import lmdb
import numpy as np
import pyarrow as pa

from bench import historical
from strato import Entity, FeatureStore, FeatureView, Field, Float32, Float64, Int64, List, String
from strato.config import write_default_config
from strato.online.codec import ViewCodec

VIEWS = {"view_a": (100, 5), "view_b": (20, 10)}  # name: (numeric features, versions per user)
CYCLE = {"view_a": (Float32, Float64, Int64), "view_b": (Float64,)}  # feature i has dtype CYCLE[i % len]
EXTRA = {"view_a": [Field("a_country", String), Field("a_recent", List(Int64))], "view_b": []}
COUNTRIES = ["DE", "FR", "NL", "US", "BR", "JP", "IN", "KE"]
RESULTS = Path(__file__).with_name("results.json")


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _definitions() -> list[Any]:
    user = Entity("user", join_keys={"user_id": Int64})
    views = [
        FeatureView(
            name,
            entities=[user],
            schema=[Field(f"{name[-1]}{i}", CYCLE[name][i % len(CYCLE[name])]) for i in range(n)] + EXTRA[name],
        )
        for name, (n, _) in VIEWS.items()
    ]
    return [user, *views]


def _history(users: int, seed: int) -> dict[str, list[pa.Table]]:
    """Per view, one table per version round; round r's events fall in days [6r, 6r+6) of the last 60."""
    rng = np.random.default_rng(seed)
    start = datetime.now(UTC) - timedelta(days=61)
    start_us = int(start.timestamp() * 1_000_000)
    day_us = 86_400_000_000
    ids = pa.array(np.arange(users, dtype=np.int64))
    out: dict[str, list[pa.Table]] = {}
    for view, (n_features, versions) in VIEWS.items():
        rounds = []
        for r in range(versions):
            event = start_us + r * 6 * day_us + rng.integers(0, 6 * day_us, users)
            columns: dict[str, Any] = {
                "user_id": ids,
                "event_timestamp": pa.array(event).cast(pa.timestamp("us", tz="UTC")),
            }
            cycle = CYCLE[view]
            for i, values in enumerate(rng.random((n_features, users))):
                dtype = cycle[i % len(cycle)]
                if dtype == Int64:
                    column = pa.array((values * 1_000_000).astype(np.int64))
                else:
                    column = pa.array(values.astype(np.float32 if dtype == Float32 else np.float64))
                columns[f"{view[-1]}{i}"] = column
            if EXTRA[view]:
                columns["a_country"] = pa.array(rng.choice(COUNTRIES, users))
                offsets = pa.array(np.arange(0, 3 * users + 1, 3, dtype=np.int32))
                columns["a_recent"] = pa.ListArray.from_arrays(offsets, pa.array(rng.integers(0, 1000, 3 * users)))
            rounds.append(pa.table(columns))
        out[view] = rounds
    return out


def _percentiles(samples_ns: list[int]) -> tuple[float, float]:
    us = np.asarray(samples_ns, dtype=np.float64) / 1000
    return round(float(np.percentile(us, 50)), 2), round(float(np.percentile(us, 99)), 2)


def _time_calls(call: Callable[[int], object], n: int, first: int = 0) -> list[int]:
    """Per-call wall time in ns of ``call(first) … call(first + n - 1)``; GC off so a
    collection doesn't land in one side's tail only."""
    samples = []
    gc.disable()
    try:
        for i in range(first, first + n):
            began = time.perf_counter_ns()
            call(i)
            samples.append(time.perf_counter_ns() - began)
    finally:
        gc.enable()
    return samples


def bench_write(store: FeatureStore, history: dict[str, list[pa.Table]], raw_dir: Path) -> dict[str, Any]:
    rows = sum(t.num_rows for tables in history.values() for t in tables)
    _log(f"write: {rows:,} rows through FeatureStore.write …")
    began = time.perf_counter()
    for view, tables in history.items():
        for table in tables:
            store.write(view, table)
    write_s = time.perf_counter() - began

    # The baseline: raw LMDB putmulti of the same encoded bytes, one transaction per batch.
    encoded = []
    for view, tables in history.items():
        codec = ViewCodec(store.get_feature_view(view))
        for table in tables:
            keys, values = codec.encode(table, time.time_ns() // 1000)
            prefix = f"bench/{view}\x00".encode()
            encoded.append([(prefix + k, v) for k, v in zip(keys, values, strict=True)])
    env = lmdb.open(str(raw_dir), map_size=64 << 30, sync=True)
    began = time.perf_counter()
    for pairs in encoded:
        with env.begin(write=True) as txn:
            txn.cursor().putmulti(pairs)
    raw_s = time.perf_counter() - began
    env.close()
    return {
        "write_rows": rows,
        "write_s": round(write_s, 2),
        "write_rows_per_s": round(rows / write_s),
        "write_raw_lmdb_putmulti_rows_per_s": round(rows / raw_s),
    }


def bench_materialize(repo: Path, users: int) -> dict[str, Any]:
    _log("materialize: both views into an empty online store …")
    with FeatureStore(repo, online__path=str(repo / ".strato" / "online-materialized")) as store:
        result = store.materialize(None, datetime.now(UTC), progress=False)
    loaded = sum(result.rows.values())
    if loaded != users * len(VIEWS):
        raise RuntimeError(f"materialize loaded {loaded} keys, expected {users * len(VIEWS)}")
    history_rows = users * sum(v for _, v in VIEWS.values())
    return {
        "materialize_rows": loaded,
        "materialize_history_rows_scanned": history_rows,
        "materialize_s": round(result.seconds, 2),
        "materialize_rows_per_s": round(loaded / result.seconds),
    }


def bench_online(store: FeatureStore, users: int, iterations: int, seed: int) -> dict[str, Any]:
    numeric_refs = [f"{view}:{view[-1]}{i}" for view, (n, _) in VIEWS.items() for i in range(n)]
    # to_dict / to_df: a string and a list feature in place of two numbers, still 120 features.
    mixed_refs = [*numeric_refs[:98], *(f"view_a:{f.name}" for f in EXTRA["view_a"]), *numeric_refs[100:]]
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, users, iterations * 100).tolist()
    online = store.online_store
    env: lmdb.Environment = online._env  # type: ignore[attr-defined]  # the same environment, for the baseline
    prefixes = [online._prefix(store.get_feature_view(v).table_name) for v in VIEWS]  # type: ignore[attr-defined]
    keys = [int(i).to_bytes(8, "big", signed=True) for i in ids]
    rows1 = [[{"user_id": u}] for u in ids[:iterations]]
    rows100 = [[{"user_id": u} for u in ids[i * 100 : (i + 1) * 100]] for i in range(iterations // 10)]

    # Warm every path (plan cache, page cache) before timing.
    for i in range(2000):
        store.get_online_features(numeric_refs, rows1[i]).to_numpy()
        store.get_online_features(mixed_refs, rows1[i]).to_dict()
    shape = store.get_online_features(numeric_refs, rows1[0]).to_numpy().shape
    width = len(store.get_online_features(mixed_refs, rows1[0]).to_dict()) - 1
    if shape != (1, 120) or width != 120:
        raise RuntimeError(f"expected 120 features, got {shape} and {width}")

    def raw_one(i: int) -> None:
        with env.begin() as txn:
            for prefix in prefixes:
                if txn.get(prefix + keys[i]) is None:
                    raise RuntimeError("raw baseline missed a key")

    def raw_batch(i: int) -> None:
        with env.begin() as txn:
            for prefix in prefixes:
                for key in keys[i * 100 : (i + 1) * 100]:
                    txn.get(prefix + key)

    get = store.get_online_features
    cases: dict[str, tuple[Callable[[int], object], int]] = {
        "1x120_raw_lmdb": (raw_one, iterations),
        "1x120_lookup": (lambda i: get(mixed_refs, rows1[i]), iterations),
        "1x120_to_dict": (lambda i: get(mixed_refs, rows1[i]).to_dict(), iterations),
        "1x120_mixed_to_numpy": (lambda i: get(numeric_refs, rows1[i]).to_numpy(), iterations),
        "1x120_to_df": (lambda i: get(mixed_refs, rows1[i]).to_df(), iterations // 10),
        "100x120_raw_lmdb": (raw_batch, iterations // 10),
        "100x120_lookup": (lambda i: get(mixed_refs, rows100[i]), iterations // 10),
        "100x120_to_dict": (lambda i: get(mixed_refs, rows100[i]).to_dict(), iterations // 10),
        "100x120_mixed_to_numpy": (lambda i: get(numeric_refs, rows100[i]).to_numpy(), iterations // 10),
    }
    _log(f"online: {iterations:,} single lookups and {iterations // 10:,} batches of 100, per call …")
    # Alternate rounds so noise on the shared machine hits every case alike.
    samples: dict[str, list[int]] = {name: [] for name in cases}
    rounds = 5
    for r in range(rounds):
        for name, (call, n) in cases.items():
            per = n // rounds
            samples[name] += _time_calls(call, per, r * per)
    out: dict[str, Any] = {}
    for name in cases:
        p50, p99 = _percentiles(samples[name])
        out[f"online_{name}_p50_us"] = p50
        out[f"online_{name}_p99_us"] = p99
    for size in ("1x120", "100x120"):
        raw99 = out[f"online_{size}_raw_lmdb_p99_us"]
        for name in ("lookup", "to_dict", "mixed_to_numpy"):
            out[f"online_{size}_{name}_p99_ratio"] = round(out[f"online_{size}_{name}_p99_us"] / raw99, 2)
    out["online_iterations"] = iterations
    return out


def run(users: int, iterations: int, repeat: int, seed: int = 7) -> dict[str, Any]:
    results: dict[str, Any] = {"users": users, "measured_at": datetime.now(UTC).isoformat(timespec="seconds")}
    with tempfile.TemporaryDirectory(prefix="strato-bench-") as tmp:
        repo = Path(tmp) / "repo"
        repo.mkdir()
        write_default_config(repo, "bench")
        history = _history(users, seed)
        with FeatureStore(repo) as store:
            store.apply(_definitions())
            results.update(bench_write(store, history, Path(tmp) / "raw-lmdb"))
            del history
            results.update(bench_online(store, users, iterations, seed))
        results.update(bench_materialize(repo, users))
    _log("redis: 1 x 120 on a redis-server and 100 x 120 on a 3-master cluster, each beside raw redis-py …")
    from bench import redis_online  # imports this module's timing helpers

    results.update(redis_online.run(min(users, 20_000), max(iterations // 4, 1_000)))
    _log("aerospike: 1 x 120 and 100 x 120 on the test server bundle, beside the raw client …")
    from bench import aerospike_online

    try:
        results.update(aerospike_online.run(min(users, 20_000), max(iterations // 2, 2_000)))
    except SystemExit as missing:  # no server bundle on this machine: say so, measure the rest
        _log(f"aerospike: skipped ({missing})")
    _log("window aggregations: 1 entity x 3 windows x 4 aggregates, in process on LMDB …")
    from bench import window_agg

    results.update(window_agg.run(200, max(iterations // 2, 2_000)))
    _log("tile merges: write_if beside a plain write and raw redis-py, then 4 writers on the same users …")
    from bench import tile_cas

    results.update(tile_cas.run(1_000, 40, 4))
    _log(f"historical: {users:,}-row entity frame x 120 features, {repeat} runs each …")
    results.update(historical.run(users, repeat, big_spine_rows=10 * users, big_repeat=max(1, repeat // 2)))
    _log(f"training sets: build and rebuild over {users:,} entity rows; 1,000 small writes, then compact …")
    from bench import training_sets

    results.update(training_sets.run(users, 1000, repeat))
    _log("kafka: strato ingest beside a raw confluent-kafka consume, then freshness at 50K events/s …")
    from bench import kafka_ingest

    results.update(kafka_ingest.run())
    _log("http: one keep-alive client, 1 x 120 over strato serve beside /health and in process …")
    from bench import server

    http = server.run(max(iterations // 4, 2_000))
    results.update({k: v for k, v in http.items() if k.startswith(("http_", "inproc_"))})
    _log("http: wrk, 64 connections, against a 2-worker strato serve (1 x 120, LMDB) and its /health …")
    from bench import http_load

    results.update(http_load.run())
    _log("spark: point-in-time join beside DuckDB at 100K and 1M entity rows (30 features; minutes) …")
    if shutil.which("java") is None:
        _log("spark: skipped (no java on PATH: Spark needs Java 17+)")
    else:
        from bench import spark_historical

        sizes = (users, 10 * users) if users < 100_000 else (100_000, 1_000_000)
        results.update(spark_historical.run(sizes))
    return results


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Strato benchmarks beside raw-engine baselines.")
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--iterations", type=int, default=20_000, help="single-entity lookups to time")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each historical join")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    results = run(args.users, args.iterations, args.repeat)
    existing = json.loads(args.out.read_text()) if args.out.is_file() else {}
    args.out.write_text(json.dumps(existing | results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
