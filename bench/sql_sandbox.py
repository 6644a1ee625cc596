"""What the SQL sandbox costs: `DuckDBOfflineEngine.sql` beside the same query on a warm connection.

``uv run python bench/sql_sandbox.py [--rows N] [--repeat K]`` prints one JSON object:

- ``sql_small_*_ms``: a count over a 3-row table, i.e. the fixed cost of a call: a fresh in-memory
  DuckDB connection, the read-only check, the pyarrow datasets, the locked settings, the worker thread;
- ``sql_scan_*_ms``: a group-by over ``--rows`` history rows (one Delta file per 100K rows), i.e. the
  cost of reading through pyarrow datasets instead of DuckDB's own Parquet reader;
- ``*_raw_*``: the same queries on one long-lived DuckDB connection with ``read_parquet([...])`` over the
  same files (what `sql` did before it was sandboxed).

Medians and minima over ``--repeat`` calls, Strato and raw alternating. Not asserted in tests.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime

import duckdb
import numpy as np
import pyarrow as pa

from strato.offline.base import TableSnapshot
from strato.offline.delta import DeltaTables
from strato.offline.engines.duckdb import DuckDBOfflineEngine, DuckDBOptions

TS = pa.timestamp("us", tz="UTC")
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def history(n: int, rng: np.random.Generator) -> pa.Table:
    return pa.table(
        {
            "user_id": pa.array(rng.integers(0, 10_000, n), pa.int64()),
            "event_timestamp": pa.array([T0] * n, TS),
            "x": pa.array(rng.random(n)),
            "created_timestamp": pa.array([T0] * n, TS),
        }
    )


def timed(strato: Callable[[], object], raw: Callable[[], object], repeat: int) -> dict[str, float]:
    strato(), raw()  # warm up
    ours, theirs = [], []
    for _ in range(repeat):
        for fn, into in ((strato, ours), (raw, theirs)):
            began = time.perf_counter()
            fn()
            into.append((time.perf_counter() - began) * 1000)
    return {
        "p50_ms": round(statistics.median(ours), 2),
        "min_ms": round(min(ours), 2),
        "raw_p50_ms": round(statistics.median(theirs), 2),
        "raw_min_ms": round(min(theirs), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    rng = np.random.default_rng(7)
    with tempfile.TemporaryDirectory() as folder:
        tables = DeltaTables(folder, "bench")
        tables.append("small", history(3, rng))
        for start in range(0, args.rows, 100_000):
            tables.append("big", history(min(100_000, args.rows - start), rng))
        small, big = tables.snapshot("small"), tables.snapshot("big")
        assert small is not None
        assert big is not None
        engine = DuckDBOfflineEngine.open(DuckDBOptions())
        raw = duckdb.connect(":memory:")

        def on_raw(query: str, snapshot: TableSnapshot) -> Callable[[], object]:
            files = ", ".join(f"'{f}'" for f in snapshot.files)
            text = query.replace("FROM t", f"FROM read_parquet([{files}], union_by_name = true)")
            return lambda: raw.sql(text).to_arrow_table()

        count = "SELECT count(*) AS n FROM t"
        scan = "SELECT user_id, avg(x) AS m FROM t GROUP BY user_id"
        result: dict[str, float] = {"rows": args.rows}
        for label, query, snapshot in (("small", count, small), ("scan", scan, big)):
            named = TableSnapshot("t", snapshot.path, snapshot.version, snapshot.files, snapshot.schema)
            figures = timed(lambda q=query, s=named: engine.sql(q, [s]), on_raw(query, snapshot), args.repeat)
            result.update({f"sql_{label}_{k}": v for k, v in figures.items()})
        engine.close()
        raw.close()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
