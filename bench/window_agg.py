"""Windowed-aggregation reads in process (LMDB), beside the raw LMDB read of the same tile row.

One view with 4 aggregates (count, sum, mean, max of ``amount``) over 3 windows (10m, 1h,
1d): 12 features, in 3 tile groups (1-minute, 5-minute and 1-hour tiles). Each of `users`
users has one event every 30 s over the last day, written through `FeatureStore.write` in
hourly batches, so every window's tiles are full (10 + 12 + 24 tiles per row).

- ``window_agg_read_p50_us`` / ``_p99_us``: `get_online_features(12 refs, [one entity]).to_dict()`,
  the windows evaluated at the current time;
- ``window_agg_lookup_p99_us``: the same call without ``to_dict()``;
- ``window_agg_raw_lmdb_p99_us``: ``txn.get`` of the same tile row (bytes only);
- ``window_agg_raw_unpack_p99_us``: that ``txn.get`` plus ``msgpack.unpackb`` of the row.

Run alone: ``uv run python -m bench.window_agg --users 200 --iterations 20000``.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import lmdb
import msgpack
import pyarrow as pa

from bench.run import _percentiles, _time_calls
from strato import Aggregation, Entity, FeatureStore, FeatureView, Field, Float64, Int64
from strato.config import write_default_config
from strato.online.base import table_prefix
from strato.online.codec import HEADER_SIZE, KeyCodec

WINDOWS = (timedelta(minutes=10), timedelta(hours=1), timedelta(days=1))
FUNCTIONS = ("count", "sum", "mean", "max")


def _view() -> tuple[Entity, FeatureView]:
    user = Entity("user", join_keys={"user_id": Int64})
    aggregations = [Aggregation("amount", fn, w) for w in WINDOWS for fn in FUNCTIONS]  # type: ignore[arg-type]
    return user, FeatureView("txns", entities=[user], schema=[Field("amount", Float64)], aggregations=aggregations)


def run(users: int, iterations: int, seed: int = 11) -> dict[str, Any]:
    rng = random.Random(seed)
    user, view = _view()
    refs = [f"txns:{a.name}" for a in view.aggregations]
    with tempfile.TemporaryDirectory(prefix="strato-bench-agg-") as tmp:
        repo = Path(tmp)
        write_default_config(repo, "bench")
        with FeatureStore(repo) as store:
            store.apply([user, view])
            now = datetime.now(UTC).replace(microsecond=0)
            began = time.perf_counter()
            events = 0
            for hour in range(24, 0, -1):  # hourly batches, oldest first
                start = now - timedelta(hours=hour)
                times = [start + timedelta(seconds=30 * i) for i in range(120)]
                ids = [u for u in range(users) for _ in times]
                table = pa.table(
                    {
                        "user_id": pa.array(ids, pa.int64()),
                        "event_timestamp": pa.array(times * users, pa.timestamp("us", tz="UTC")),
                        "amount": pa.array([rng.uniform(1, 500) for _ in ids], pa.float64()),
                    }
                )
                store.write("txns", table)
                events += table.num_rows
            write_s = time.perf_counter() - began
            rows = [[{"user_id": rng.randrange(users)}] for _ in range(iterations)]
            get = store.get_online_features
            get(refs, rows[0]).to_dict()  # plan cached, as in a scoring loop
            env: lmdb.Environment = store.online_store._live()  # type: ignore[attr-defined]  # the same environment
            prefix = table_prefix("bench", f"{view.table_name}__tiles")
            keys = KeyCodec(view.join_keys)
            raw_keys = [prefix + keys.encode_rows(r)[0] for r in rows]

            def raw(i: int) -> object:
                with env.begin() as txn:
                    return txn.get(raw_keys[i])

            def raw_unpack(i: int) -> object:
                with env.begin() as txn:
                    value = txn.get(raw_keys[i])
                return msgpack.unpackb(value[HEADER_SIZE:], raw=False)

            assert raw(0) is not None, "the bench must read the tile rows the store wrote"
            cases = {
                "raw_lmdb": raw,
                "raw_unpack": raw_unpack,
                "lookup": lambda i: get(refs, rows[i]),
                "read": lambda i: get(refs, rows[i]).to_dict(),
            }
            samples: dict[str, list[int]] = {name: [] for name in cases}
            rounds = 5
            for r in range(rounds):
                for name, call in cases.items():
                    per = iterations // rounds
                    samples[name] += _time_calls(call, per, r * per)
            sample = get(refs, rows[0]).to_dict()
    out: dict[str, Any] = {
        "window_agg_users": users,
        "window_agg_events": events,
        "window_agg_write_events_per_s": round(events / write_s),
    }
    for name in cases:
        p50, p99 = _percentiles(samples[name])
        out[f"window_agg_{name}_p50_us"] = p50
        out[f"window_agg_{name}_p99_us"] = p99
    out["window_agg_read_p99_ratio"] = round(out["window_agg_read_p99_us"] / out["window_agg_raw_lmdb_p99_us"], 2)
    out["window_agg_sample"] = {k: v[0] for k, v in sample.items() if k != "user_id"}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description="Windowed-aggregation reads beside raw LMDB.")
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--iterations", type=int, default=20_000)
    args = parser.parse_args()
    print(json.dumps(run(args.users, args.iterations), indent=2))


if __name__ == "__main__":
    main()
