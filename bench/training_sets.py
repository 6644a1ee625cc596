"""Training sets and table upkeep: rebuild time against build time, and what compaction does
to a historical read after many small writes.

Run ``uv run python bench/training_sets.py [--users 100000] [--writes 1000] [--merge]``; it
prints one JSON object (``--merge`` also adds its keys to ``bench/results.json``).

* ``training_set_build_s``: `create_training_set` from an entity frame of `users` rows over a
  view of 20 float64 features with 5 versions per user (5 commits): the join, statistics,
  digests, the Parquet files and the registry record.
* ``training_set_rebuild_s``: `rebuild_training_set` of it after 5 more commits, i.e. the same
  join at the pinned table versions (Delta time travel) plus the digest check. The ratio to
  the build should be about 1: a rebuild is a build that reads old versions.
* ``historical_after_1000_writes_s``: `get_historical_features` (same entity frame size) over
  a view written by `writes` small `store.write` calls (offline), so its table has that many
  files; ``historical_after_compact_s``: the same read after `store.compact()`.

Each timing is the median of `repeat` runs in this process, alternating where two compare.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from strato import Entity, FeatureService, FeatureStore, FeatureView, Field, Float64, Int64
from strato.config import write_default_config

TS = pa.timestamp("us", tz="UTC")
START = datetime(2026, 1, 1, tzinfo=UTC)
FEATURES = 20
RESULTS = Path(__file__).with_name("results.json")


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _batch(rng: np.random.Generator, ids: np.ndarray, round_: int) -> pa.Table:
    event = (START + timedelta(days=6 * round_)).timestamp() * 1e6 + rng.integers(0, 6 * 86_400_000_000, len(ids))
    columns: dict[str, Any] = {"user_id": pa.array(ids), "event_timestamp": pa.array(event.astype(np.int64)).cast(TS)}
    for i in range(FEATURES):
        columns[f"f{i}"] = pa.array(rng.random(len(ids)))
    return pa.table(columns)


def _spine(rng: np.random.Generator, users: int) -> pa.Table:
    times = START.timestamp() * 1e6 + rng.integers(0, 60 * 86_400_000_000, users)
    return pa.table(
        {
            "user_id": pa.array(rng.integers(0, users, users, dtype=np.int64)),
            "event_timestamp": pa.array(times.astype(np.int64)).cast(TS),
            "label": pa.array(rng.integers(0, 2, users, dtype=np.int64)),
        }
    )


def _median(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def run(users: int, writes: int, repeat: int) -> dict[str, Any]:
    rng = np.random.default_rng(7)
    user = Entity("user", join_keys={"user_id": Int64})
    wide = FeatureView("wide", entities=[user], schema=[Field(f"f{i}", Float64) for i in range(FEATURES)])
    small = FeatureView("small", entities=[user], schema=[Field(f"f{i}", Float64) for i in range(FEATURES)])
    with tempfile.TemporaryDirectory(prefix="strato-bench-ts-") as root:
        write_default_config(Path(root), "bench")
        with FeatureStore(root) as store:
            store.apply([user, wide, small, FeatureService("model", [wide])])
            ids = np.arange(users, dtype=np.int64)
            for round_ in range(5):
                store.write("wide", _batch(rng, ids, round_), to="offline")
            spine = _spine(rng, users)
            _log(f"training set over {users:,} entity rows x {FEATURES} features")
            # Warm up (imports, DuckDB's first query) so the build is not charged for them.
            store.get_historical_features(spine.slice(0, 100), [f"wide:f{i}" for i in range(FEATURES)])
            began = time.perf_counter()
            store.create_training_set("bench", "model", spine)
            build = time.perf_counter() - began
            for round_ in range(5, 10):
                store.write("wide", _batch(rng, ids, round_), to="offline")
            rebuilds = []
            for _ in range(repeat):
                result = store.rebuild_training_set("bench", 1)
                assert result.matches, "rebuild differs from the original"
                rebuilds.append(result.seconds)
            rebuild = statistics.median(rebuilds)

            per_write = max(1, users // writes)
            _log(f"{writes} small writes of {per_write} rows")
            for w in range(writes):
                chunk = rng.integers(0, users, per_write, dtype=np.int64)
                store.write("small", _batch(rng, chunk, w % 10), to="offline")
            refs = [f"small:f{i}" for i in range(FEATURES)]
            before = _median(lambda: store.get_historical_features(spine, refs), repeat)
            began = time.perf_counter()
            [compaction] = [c for c in store.compact(["small"])]
            compact_s = time.perf_counter() - began
            after = _median(lambda: store.get_historical_features(spine, refs), repeat)
    return {
        "training_set_rows": users,
        "training_set_build_s": round(build, 3),
        "training_set_rebuild_s": round(rebuild, 3),
        "training_set_rebuild_ratio": round(rebuild / build, 2),
        "historical_writes": writes,
        "historical_after_1000_writes_s": round(before, 3),
        "historical_after_compact_s": round(after, 3),
        "historical_compact_speedup": round(before / after, 2),
        "compact_s": round(compact_s, 3),
        "compact_files_removed": compaction.files_removed,
        "compact_files_added": compaction.files_added,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--writes", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--merge", action="store_true", help="add the figures to bench/results.json")
    args = parser.parse_args()
    figures = run(args.users, args.writes, args.repeat)
    print(json.dumps(figures, indent=2))
    if args.merge:
        existing = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
        existing.update(figures)
        RESULTS.write_text(json.dumps(existing, indent=2) + "\n")


if __name__ == "__main__":
    main()
