"""Strato's benchmarks, each figure beside its raw-engine baseline from the same run.

``make bench`` (or ``uv run python -m bench.run``) builds the issue's data set — 100,000 users,
a 100-feature view with 5 versions per user and a 20-feature view with 10 — in a fresh
feature repo, then measures:

- ``write``: `FeatureStore.write` of the whole history (validation + Delta commit + LMDB
  upsert), beside raw LMDB ``putmulti`` of the same encoded bytes;
- ``materialize``: a full `materialize` of both views into an empty online store;
- ``online``: `get_online_features(...).to_numpy()` for 1 and for 100 entities x 120 features,
  beside raw ``txn.get`` of the same keys in one read transaction;
- ``historical``: `bench.historical` (Strato's point-in-time join beside a hand-written
  DuckDB ASOF JOIN on the same files, each in a fresh process).

It prints one flat JSON object and writes it to ``bench/results.json``.
"""

from __future__ import annotations

import argparse
import gc
import json
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
from strato import Entity, FeatureStore, FeatureView, Field, Float64, Int64
from strato.config import write_default_config
from strato.online.codec import ViewCodec

VIEWS = {"view_a": (100, 5), "view_b": (20, 10)}  # name: (features, versions per user)
RESULTS = Path(__file__).with_name("results.json")


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _definitions() -> list[Any]:
    user = Entity("user", join_keys={"user_id": Int64})
    views = [
        FeatureView(name, entities=[user], schema=[Field(f"{name[-1]}{i}", Float64) for i in range(n)])
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
            for i, values in enumerate(rng.random((n_features, users))):
                columns[f"{view[-1]}{i}"] = pa.array(values)
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
    refs = [f"{view}:{view[-1]}{i}" for view, (n, _) in VIEWS.items() for i in range(n)]
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, users, iterations * 100).tolist()
    online = store.online_store
    env: lmdb.Environment = online._env  # type: ignore[attr-defined]  # the same environment, for the baseline
    prefixes = [online._prefix(store.get_feature_view(v).table_name) for v in VIEWS]  # type: ignore[attr-defined]
    keys = [int(i).to_bytes(8, "big", signed=True) for i in ids]

    # Warm both paths (plan cache, page cache) before timing.
    for i in range(2000):
        store.get_online_features(refs, [{"user_id": ids[i]}]).to_numpy()
    width = store.get_online_features(refs, [{"user_id": ids[0]}]).to_numpy().shape[1]
    if width != 120:
        raise RuntimeError(f"expected 120 features, got {width}")

    def raw_one(i: int) -> None:
        with env.begin() as txn:
            for prefix in prefixes:
                if txn.get(prefix + keys[i]) is None:
                    raise RuntimeError("raw baseline missed a key")

    def strato_one(i: int) -> None:
        store.get_online_features(refs, [{"user_id": ids[i]}]).to_numpy()

    rows100 = [[{"user_id": u} for u in ids[i * 100 : (i + 1) * 100]] for i in range(iterations // 10)]

    def raw_batch(i: int) -> None:
        with env.begin() as txn:
            for prefix in prefixes:
                for key in keys[i * 100 : (i + 1) * 100]:
                    txn.get(prefix + key)

    def strato_batch(i: int) -> None:
        store.get_online_features(refs, rows100[i]).to_numpy()

    _log(f"online: {iterations:,} single lookups, {iterations // 10:,} batches of 100 …")
    out: dict[str, Any] = {}
    # Alternate rounds so noise on the shared machine hits both sides alike.
    samples: dict[str, list[int]] = {"raw1": [], "strato1": [], "raw100": [], "strato100": []}
    rounds = 5
    per = iterations // rounds
    for r in range(rounds):
        samples["raw1"] += _time_calls(raw_one, per, r * per)
        samples["strato1"] += _time_calls(strato_one, per, r * per)
        samples["raw100"] += _time_calls(raw_batch, per // 10, r * (per // 10))
        samples["strato100"] += _time_calls(strato_batch, per // 10, r * (per // 10))
    p50, p99 = _percentiles(samples["strato1"])
    raw50, raw99 = _percentiles(samples["raw1"])
    b50, b99 = _percentiles(samples["strato100"])
    rb50, rb99 = _percentiles(samples["raw100"])
    out.update(
        online_1x120_p50_us=p50,
        online_1x120_p99_us=p99,
        online_1x120_raw_lmdb_p50_us=raw50,
        online_1x120_raw_lmdb_p99_us=raw99,
        online_1x120_p99_ratio=round(p99 / raw99, 2),
        online_100x120_p50_us=b50,
        online_100x120_p99_us=b99,
        online_100x120_raw_lmdb_p50_us=rb50,
        online_100x120_raw_lmdb_p99_us=rb99,
        online_iterations=iterations,
    )
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
    _log(f"historical: {users:,}-row entity frame x 120 features, {repeat} runs each …")
    results.update(historical.run(users, repeat))
    return results


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Strato benchmarks beside raw-engine baselines.")
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--iterations", type=int, default=20_000, help="single-entity lookups to time")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each historical join")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    results = run(args.users, args.iterations, args.repeat)
    text = json.dumps(results, indent=2)
    args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
