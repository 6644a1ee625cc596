"""What a batch transformation costs: `strato backfill` beside the bare DuckDB query.

``uv run python bench/backfill.py [--rows N] [--users U]`` builds a repo with a ``payments``
view of ``--rows`` rows (30 days, ``--users`` users, written in 10 batches) and a Parquet
exchange-rate file, and a view ``hourly`` computed by a SqlSource (per user and hour: the sum
of amounts in EUR and the count). It prints one JSON object:

- ``backfill_<n>_s``: `store.backfill` over the 30 days in one piece: the schema probe, the
  query in the sandbox (views deduplicated per identity, rule 2), validation, one Delta commit,
  the LMDB upsert and statistics;
- ``backfill_<n>_step1d_s``: the same, recomputed under a new query fingerprint, in 30 one-day
  pieces (30 queries, 30 commits);
- ``backfill_<n>_step1d_narrowed_s``: the same in one-day pieces, the query narrowing its input to
  the piece with ``$start`` / ``$end``;
- ``backfill_<n>_rerun_s``: the same command again: nothing to compute (no query, no commit);
- ``backfill_<n>_query_s``: the query alone as the engine runs it (`batch_query`: sandbox, views
  deduplicated), nothing written;
- ``backfill_<n>_raw_duckdb_s``: baseline, the same aggregation on one warm DuckDB connection
  with ``read_parquet([...])`` over the view's files and the rates file, no deduplication, no write.

Not asserted in tests; run it alone on a quiet machine for absolute figures.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from strato import Entity, FeatureStore, FeatureView, Field, FileSource, Float64, Int64, SqlSource, String
from strato.config import write_default_config

USER = Entity("user", join_keys={"user_id": Int64})
PAYMENTS = FeatureView("payments", entities=[USER], schema=[Field("amount", Float64), Field("currency", String)])
QUERY = """
    SELECT p.user_id, date_trunc('hour', p.event_timestamp) AS event_timestamp,
           {factor} sum(p.amount * fx.rate) AS spend_eur, count(*) AS n
    FROM payments p JOIN fx USING (currency)
    {where}
    GROUP BY ALL
"""
NARROWED = "WHERE p.event_timestamp >= $start AND p.event_timestamp < $end"


def hourly(factor: str = "", where: str = "") -> FeatureView:
    return FeatureView(
        "hourly",
        entities=[USER],
        schema=[Field("spend_eur", Float64), Field("n", Int64)],
        source=SqlSource(
            QUERY.format(factor=factor, where=where), inputs=[PAYMENTS, FileSource("fx.parquet", name="fx")]
        ),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=10_000)
    args = parser.parse_args()
    rng = np.random.default_rng(7)
    end = (datetime.now(UTC) - timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=30)
    span_us = int((end - start).total_seconds() * 1e6)
    out: dict[str, float | int | str] = {"rows": args.rows, "users": args.users}
    out["load_average"] = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    with tempfile.TemporaryDirectory() as folder:
        repo = Path(folder)
        write_default_config(repo, "bench")
        pq.write_table(pa.table({"currency": ["USD", "GBP", "EUR"], "rate": [0.92, 1.17, 1.0]}), repo / "fx.parquet")
        with FeatureStore(repo) as store:
            store.apply([USER, PAYMENTS, hourly()])
            per = args.rows // 10
            base_us = int(start.timestamp() * 1e6)
            for _ in range(10):
                times = base_us + rng.integers(0, span_us, per)
                store.write(
                    "payments",
                    pa.table(
                        {
                            "user_id": pa.array(rng.integers(0, args.users, per), pa.int64()),
                            "event_timestamp": pa.array(times, pa.timestamp("us", tz="UTC")),
                            "amount": pa.array(rng.random(per) * 100),
                            "currency": pa.array(rng.choice(["USD", "GBP", "EUR"], per)),
                        }
                    ),
                )
            n = f"{args.rows // 1_000_000}m" if args.rows >= 1_000_000 else f"{args.rows // 1000}k"
            began = time.perf_counter()
            done = store.backfill(start, end, progress=False).views["hourly"]
            out[f"backfill_{n}_s"] = round(time.perf_counter() - began, 3)
            out["backfill_output_rows"] = done.rows
            began = time.perf_counter()
            store.backfill(start, end, progress=False)
            out[f"backfill_{n}_rerun_s"] = round(time.perf_counter() - began, 3)
            store.apply([USER, PAYMENTS, hourly("1.0 *")])  # a new fingerprint: everything to compute again
            began = time.perf_counter()
            store.backfill(start, end, step=timedelta(days=1), progress=False)
            out[f"backfill_{n}_step1d_s"] = round(time.perf_counter() - began, 3)
            store.apply([USER, PAYMENTS, hourly(where=NARROWED)])  # pieces read only their own day
            began = time.perf_counter()
            store.backfill(start, end, step=timedelta(days=1), progress=False)
            out[f"backfill_{n}_step1d_narrowed_s"] = round(time.perf_counter() - began, 3)
            fv = store.get_feature_view("hourly")
            batch = store._backfiller._batch(fv, fv.source)  # type: ignore[arg-type]  # the query alone
            began = time.perf_counter()
            store.offline_engine.batch_query(batch, start=start, end=end)
            out[f"backfill_{n}_query_s"] = round(time.perf_counter() - began, 3)
            snapshot = store.delta.snapshot(store.get_feature_view("payments").table_name)
            assert snapshot is not None
            files = ", ".join(f"'{f}'" for f in snapshot.files)
        raw = duckdb.connect(":memory:")
        raw.execute("SET TimeZone = 'UTC'")
        raw_query = QUERY.format(factor="", where="").replace(
            "FROM payments p JOIN fx", f"FROM read_parquet([{files}]) p JOIN read_parquet('{repo / 'fx.parquet'}') fx"
        )
        raw.sql(raw_query).to_arrow_table()  # warm up
        began = time.perf_counter()
        rows = raw.sql(raw_query).to_arrow_table().num_rows
        out[f"backfill_{n}_raw_duckdb_s"] = round(time.perf_counter() - began, 3)
        assert rows == done.rows, (rows, done.rows)
        raw.close()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
