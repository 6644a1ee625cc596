"""Historical retrieval benchmark: Strato's point-in-time join next to a hand-written DuckDB ASOF JOIN.

Run ``uv run python bench/historical.py [--users 100000]``; it prints one JSON object.

The data set follows the field workload in the design notes: per user, view A has 100 float64
features in 5 versions, view B 20 float64 features in 10 versions (500K + 1M history rows for
100K users), written through `DeltaTables.append` one commit per version round, so each table
has several files. The spine has one row per user at a random time, some of them before any
history. Both phases read the same Delta snapshots' exact file lists.

Each phase runs in a fresh process (multiprocessing "spawn"), so its peak RSS is its own:
the figure is the peak RSS (VmHWM) after the phase minus RSS just before it, with imports and the
spine already loaded. Each phase runs `repeat` times, alternating; medians are reported.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import statistics
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

TS = pa.timestamp("us", tz="UTC")
KEY = "user_id"
START_US = 1_700_000_000_000_000
DAY_US = 86_400_000_000
VIEWS = {"view_a": (100, 5), "view_b": (20, 10)}  # name: (features, versions per user)


def feature_names(view: str, views: Mapping[str, tuple[int, int]] = VIEWS) -> list[str]:
    return [f"{view[-1]}{i}" for i in range(views[view][0])]


def generate(root: str, users: int, seed: int = 7, views: Mapping[str, tuple[int, int]] = VIEWS) -> dict[str, Any]:
    """Write the views through `DeltaTables` and the spine as Parquet; return their snapshots.

    `views` (name: (features, versions per user)) defaults to the field workload above;
    `bench.spark_historical` passes a narrower one for its million-user run.
    """
    from strato.offline.delta import DeltaTables

    rng = np.random.default_rng(seed)
    tables = DeltaTables(root, "bench")
    ids = np.arange(users, dtype=np.int64)
    snapshots = {}
    for view, (n_features, versions) in views.items():
        for round_ in range(versions):
            # Version `round_` of every user lands somewhere in its own 6-day slot of a 60-day
            # range, so later rounds are newer; created time is the commit's time.
            event = START_US + round_ * 6 * DAY_US + rng.integers(0, 6 * DAY_US, users)
            columns: dict[str, pa.Array] = {KEY: pa.array(ids), "event_timestamp": pa.array(event).cast(TS)}
            values = rng.random((n_features, users))
            for name, column in zip(feature_names(view, views), values, strict=True):
                columns[name] = pa.array(column)
            created = np.full(users, START_US + 70 * DAY_US + round_, dtype=np.int64)
            columns["created_timestamp"] = pa.array(created).cast(TS)
            tables.append(view, pa.table(columns))
        snapshots[view] = tables.snapshot(view)
    spine = pa.table(
        {
            KEY: pa.array(rng.integers(0, users, users, dtype=np.int64)),
            "event_timestamp": pa.array(START_US + rng.integers(-2 * DAY_US, 62 * DAY_US, users)).cast(TS),
            "label": pa.array(rng.integers(0, 2, users, dtype=np.int64)),
        }
    )
    spine_path = str(Path(root) / "spine.parquet")
    pq.write_table(spine, spine_path)
    return {"snapshots": snapshots, "spine": spine_path}


def _raw_sql(snapshots: dict[str, Any]) -> str:
    """The hand-written query a DuckDB user would write: ASOF LEFT JOIN per view, nothing else."""
    select = ["s.*"]
    joins = []
    for alias, (view, snapshot) in zip("ab", snapshots.items(), strict=True):
        select += [f"{alias}.{name}" for name in feature_names(view)]
        joins.append(
            f"ASOF LEFT JOIN read_parquet({list(snapshot.files)!r}) {alias} "
            f"ON s.{KEY} = {alias}.{KEY} AND s.event_timestamp >= {alias}.event_timestamp"
        )
    return f"SELECT {', '.join(select)} FROM spine s " + " ".join(joins)


def _peak_rss() -> int:
    """This process's peak RSS in bytes: VmHWM, the high-water mark of its own address space.

    Not ``getrusage().ru_maxrss``: Linux carries that across exec(), so a child spawned by a
    big parent would report the parent's size.
    """
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # not Linux: KiB on most systems


def _phase(name: str, data: dict[str, Any], queue: Any) -> None:
    """Child process: import, load the spine, then time one join and measure its peak RSS."""
    import duckdb
    import psutil

    from strato.offline.engines.duckdb import DuckDBOfflineEngine, DuckDBOptions
    from strato.offline.pit import PitRequest

    spine = pq.read_table(data["spine"])
    snapshots = data["snapshots"]
    requests = []
    for view, snapshot in snapshots.items():
        names = feature_names(view)
        requests.append(PitRequest(snapshot, [KEY], names, names, [pa.float64()] * len(names)))
    rss_before = psutil.Process().memory_info().rss
    began = time.perf_counter()
    if name == "raw":
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        con.register("spine", spine)
        result = con.sql(_raw_sql(snapshots)).to_arrow_table()
        con.close()
    else:
        with DuckDBOfflineEngine.open(DuckDBOptions()) as engine:
            result = engine.point_in_time_join(spine, requests)
    elapsed = time.perf_counter() - began
    peak = _peak_rss()
    queue.put({"s": elapsed, "peak_mb": max(peak - rss_before, 0) / 2**20, "rows": result.num_rows})


def _measure(name: str, data: dict[str, Any]) -> dict[str, float]:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    child = ctx.Process(target=_phase, args=(name, data, queue))
    child.start()
    out: dict[str, float] = queue.get()
    child.join()
    if child.exitcode != 0:
        raise RuntimeError(f"benchmark phase {name!r} exited with {child.exitcode}")
    return out


def run(users: int = 100_000, repeat: int = 3, root: str | None = None) -> dict[str, Any]:
    """Generate the data set, time both joins in fresh processes, return the figures."""
    with tempfile.TemporaryDirectory(prefix="strato-bench-", dir=root) as tmp:
        began = time.perf_counter()
        data = generate(tmp, users)
        write_s = time.perf_counter() - began
        runs: dict[str, list[dict[str, float]]] = {"raw": [], "strato": []}
        for _ in range(repeat):
            for name in runs:
                runs[name].append(_measure(name, data))
    rows = {r["rows"] for rs in runs.values() for r in rs}
    if rows != {users}:
        raise RuntimeError(f"joins returned {rows} rows for a spine of {users}")

    def median(name: str, key: str) -> float:
        return round(statistics.median(r[key] for r in runs[name]), 3)

    ours_s, raw_s = median("strato", "s"), median("raw", "s")
    ours_mb, raw_mb = median("strato", "peak_mb"), median("raw", "peak_mb")
    tag = f"historical_{users // 1000}k" if users % 1000 == 0 else f"historical_{users}"
    return {
        f"{tag}_s": ours_s,
        f"{tag}_peak_rss_mb": ours_mb,
        "historical_raw_duckdb_s": raw_s,
        "historical_raw_duckdb_peak_rss_mb": raw_mb,
        "historical_time_ratio": round(ours_s / raw_s, 2),
        "historical_memory_ratio": round(ours_mb / raw_mb, 2),
        "historical_write_s": round(write_s, 2),
        "historical_users": users,
        "historical_history_rows": users * sum(v for _, v in VIEWS.values()),
        "historical_repeat": repeat,
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    print(json.dumps(run(args.users, args.repeat)))


if __name__ == "__main__":
    main()
