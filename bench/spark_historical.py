"""Spark vs DuckDB point-in-time join on the same Delta tables, at 100K and 1M entity rows.

Run ``uv run python bench/spark_historical.py [--users 100000 1000000] [--merge]``; it prints one
JSON object (and with ``--merge`` merges it into ``bench/results.json``).

The history is `bench.historical`'s generator (per user, view A in 5 versions, view B in 10,
one Delta commit per version round, a spine of one row per user at a random time) with
narrower views, 20 + 10 float64 features instead of 100 + 20, so the million-user history
(15M rows) fits a shared 2-core machine in minutes; both engines read the very same
snapshots. Each engine runs in a fresh process (multiprocessing "spawn"):

- ``duckdb``: `DuckDBOfflineEngine.point_in_time_join`, in process, the store's default;
- ``spark``: `SparkOfflineEngine.point_in_time_join` on ``local[2]`` (the result collected to
  the driver as Arrow, as `get_historical_features` returns it), and the same join with
  ``engine_result=True`` semantics (`point_in_time_frame`, written to Parquet by Spark, never
  through the driver).

Spark's session start-up (JVM, jars from the Ivy cache) is paid once per process and
reported on its own (``spark_startup_s``); each join is timed on the warm session, first call
and a second one. One run: this is a noisy shared machine, compare ratios, not times.
"""

from __future__ import annotations

import argparse
import datetime
import json
import multiprocessing as mp
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from bench import historical

#: view: (float64 features, versions per user); narrower than the field workload (see above).
VIEWS = {"view_a": (20, 5), "view_b": (10, 10)}
RESULTS = Path(__file__).with_name("results.json")


def _requests(snapshots: dict[str, Any]) -> list[Any]:
    from strato.offline.pit import PitRequest

    out = []
    for view, snapshot in snapshots.items():
        names = historical.feature_names(view, VIEWS)
        out.append(PitRequest(snapshot, [historical.KEY], names, names, [pa.float64()] * len(names)))
    return out


def _phase(engine: str, data: dict[str, Any], out_dir: str, queue: Any) -> None:
    """Child process: time the join on one engine (twice, warm), and Spark's start-up."""
    spine = pq.read_table(data["spine"])
    requests = _requests(data["snapshots"])
    result: dict[str, Any] = {}
    if engine == "duckdb":
        from strato.offline.engines.duckdb import DuckDBOfflineEngine, DuckDBOptions

        with DuckDBOfflineEngine.open(DuckDBOptions()) as duck:
            for attempt in ("first", "second"):
                began = time.perf_counter()
                table = duck.point_in_time_join(spine, requests)
                result[f"{attempt}_s"] = time.perf_counter() - began
        result["rows"] = table.num_rows
    else:
        from strato.offline.engines.spark import SparkOfflineEngine, SparkOptions, stop_session

        options = SparkOptions(master="local[2]", driver_memory="6g", shuffle_partitions=8)
        spark = SparkOfflineEngine.open(options)
        began = time.perf_counter()
        spark.spark.range(1).count()
        result["startup_s"] = time.perf_counter() - began
        for attempt in ("first", "second"):
            began = time.perf_counter()
            table = spark.point_in_time_join(spine, requests)
            result[f"{attempt}_s"] = time.perf_counter() - began
        result["rows"] = table.num_rows
        del table
        began = time.perf_counter()
        frame = spark.point_in_time_frame(spine, requests)
        frame.write.mode("overwrite").parquet(os.path.join(out_dir, "spark_frame"))
        result["frame_s"] = time.perf_counter() - began
        stop_session()
    queue.put(result)


def _measure(engine: str, data: dict[str, Any], out_dir: str) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    child = ctx.Process(target=_phase, args=(engine, data, out_dir, queue))
    child.start()
    out: dict[str, Any] = queue.get()
    child.join()
    if child.exitcode != 0:
        raise RuntimeError(f"benchmark phase {engine!r} exited with {child.exitcode}")
    return out


def _tag(users: int) -> str:
    return f"{users // 1_000_000}m" if users % 1_000_000 == 0 else f"{users // 1000}k"


def run(sizes: Sequence[int] = (100_000, 1_000_000), root: str | None = None) -> dict[str, Any]:
    """For each size: generate the history, time both engines in fresh processes."""
    figures: dict[str, Any] = {}
    for users in sizes:
        tag = _tag(users)
        with tempfile.TemporaryDirectory(prefix="strato-bench-spark-", dir=root) as tmp:
            began = time.perf_counter()
            data = historical.generate(tmp, users, views=VIEWS)
            figures[f"spark_bench_{tag}_write_s"] = round(time.perf_counter() - began, 2)
            duck = _measure("duckdb", data, tmp)
            spark = _measure("spark", data, tmp)
        if {duck["rows"], spark["rows"]} != {users}:
            raise RuntimeError(f"joins returned {duck['rows']} / {spark['rows']} rows for {users}")
        figures[f"duckdb_historical_{tag}_s"] = round(duck["second_s"], 3)
        figures[f"duckdb_historical_{tag}_first_s"] = round(duck["first_s"], 3)
        figures[f"spark_historical_{tag}_s"] = round(spark["second_s"], 3)
        figures[f"spark_historical_{tag}_first_s"] = round(spark["first_s"], 3)
        figures[f"spark_historical_{tag}_frame_to_parquet_s"] = round(spark["frame_s"], 3)
        figures[f"spark_historical_{tag}_startup_s"] = round(spark["startup_s"], 2)
        figures[f"spark_vs_duckdb_historical_{tag}_ratio"] = round(spark["second_s"] / duck["second_s"], 2)
        figures[f"spark_bench_{tag}_history_rows"] = users * sum(v for _, v in VIEWS.values())
    figures["spark_bench_features"] = sum(f for f, _ in VIEWS.values())
    figures["spark_bench_measured_at"] = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    figures["spark_bench_load_average"] = round(os.getloadavg()[0], 2)
    return figures


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--merge", action="store_true", help="merge the figures into bench/results.json")
    args = parser.parse_args(argv)
    figures = run(args.users)
    print(json.dumps(figures))
    if args.merge:
        merged = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        merged.update(figures)
        RESULTS.write_text(json.dumps(merged, indent=2) + "\n")


if __name__ == "__main__":
    main()
