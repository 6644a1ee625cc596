"""Spark-only behaviour of `batch_query`: the sandbox's Spark-specific holes stay shut, and a
transformed view comes out of Spark exactly as out of DuckDB (and as a brute-force oracle).

The engine-neutral contract is tests/contract/offline/test_batch_query.py (run on Spark too);
these few tests share its one SparkSession (`harness.engine`).
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from strato import plugins
from strato.errors import UserError
from strato.offline.base import BatchQuery, OfflineEngine, TableSnapshot, ViewInput
from strato.offline.delta import DeltaTables
from strato.offline.engines.spark import SparkOfflineEngine

from . import harness

pytestmark = pytest.mark.filterwarnings("ignore:unclosed <socket.socket:ResourceWarning")

TS = pa.timestamp("us", tz="UTC")
T0 = datetime(2024, 1, 1, tzinfo=UTC)
H = timedelta(hours=1)

#: Per user and hour, the sum and count of that hour's values, as of the next hour; DuckDB's and
#: Spark's SQL alike. Its inputs start an hour before the piece ($start), as a look-back would.
HOURLY = """
    SELECT user_id, date_trunc('hour', event_timestamp) + INTERVAL 1 HOUR AS event_timestamp,
           sum(x) AS x_sum, count(*) AS n
    FROM raw
    WHERE event_timestamp >= $start - INTERVAL 1 HOUR AND event_timestamp < $end
    GROUP BY user_id, date_trunc('hour', event_timestamp)
"""


@pytest.fixture(scope="module")
def spark() -> SparkOfflineEngine:
    return harness.engine()


def _raw(tables: DeltaTables, rows: list[tuple[int, int, float, int]]) -> ViewInput:
    """(user, minute, x, write) rows appended one commit per write; the view input over them."""
    for write in sorted({r[3] for r in rows}):
        batch = [r for r in rows if r[3] == write]
        tables.append(
            "raw__v1",
            pa.table(
                {
                    "user_id": pa.array([r[0] for r in batch], pa.int64()),
                    "event_timestamp": pa.array([T0 + timedelta(minutes=r[1]) for r in batch], TS),
                    "x": pa.array([r[2] for r in batch], pa.float64()),
                    "created_timestamp": pa.array([T0 + timedelta(seconds=write)] * len(batch), TS),
                }
            ),
        )
    snapshot = tables.snapshot("raw__v1")
    assert snapshot is not None
    return ViewInput(
        TableSnapshot("raw", snapshot.path, snapshot.version, snapshot.files, snapshot.schema), ("user_id",)
    )


def _oracle(rows: list[tuple[int, int, float, int]], start: datetime, end: datetime) -> list[tuple[object, ...]]:
    latest: dict[tuple[int, int], tuple[int, float]] = {}
    for user, minute, x, write in rows:
        if (user, minute) not in latest or write > latest[(user, minute)][0]:
            latest[(user, minute)] = (write, x)
    sums: dict[tuple[int, datetime], list[float]] = {}
    for (user, minute), (_, x) in latest.items():
        at = T0 + timedelta(minutes=minute)
        if start - H <= at < end:
            sums.setdefault((user, T0 + (minute // 60 + 1) * H), []).append(x)
    return sorted((u, t, sum(xs), len(xs)) for (u, t), xs in sums.items() if start <= t < end)


def _rows(table: pa.Table) -> list[tuple[object, ...]]:
    return sorted(tuple(r.values()) for r in table.select(["user_id", "event_timestamp", "x_sum", "n"]).to_pylist())


def test_a_transformed_view_is_the_same_on_spark_duckdb_and_the_oracle(
    spark: SparkOfflineEngine, tmp_path: Path
) -> None:
    rng = random.Random(20241203)
    # Integral values: sums are exact whatever order an engine adds them in. Writes 1..3 rewrite
    # some (user, minute) pairs of earlier writes, so the latest-write rule decides.
    rows = [
        (rng.randrange(5), rng.randrange(600), float(rng.randrange(-50, 50)), rng.randrange(1, 4)) for _ in range(400)
    ]
    raw = _raw(DeltaTables(str(tmp_path / "offline"), "proj"), rows)
    batch = BatchQuery(HOURLY, (raw,), (), "event_timestamp")
    duckdb_cls: type[OfflineEngine] = plugins.load("offline", "duckdb")
    start, end = T0 + 3 * H, T0 + 8 * H
    with duckdb_cls.open(duckdb_cls.options_model()) as duck:
        expected = duck.batch_query(batch, start=start, end=end)
    got = spark.batch_query(batch, start=start, end=end)
    assert _rows(got) == _rows(expected) == _oracle(rows, start, end)
    assert len(_oracle(rows, start, end)) > 10
    assert got.schema == expected.schema
    assert spark.batch_query(batch, start=start, end=end, limit=0).schema == expected.schema


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("SELECT reflect('java.lang.System', 'getProperty', 'user.home') AS h", r"may not call reflect"),
        ("SELECT * FROM global_temp.leak", r"out of reach: it reads global_temp\.leak"),
        ("SELECT * FROM parquet.`/etc`", r"out of reach: it reads parquet\./etc"),
        ("SELECT * FROM IDENTIFIER('csv.`/etc/hostname`')", r"out of reach: it reads a relation named by IDENTIFIER"),
        ("SELECT * FROM range(3) JOIN leak", r"SQL error.*leak"),
        ("SELECT '${spark.app.name}' AS name, * FROM leak", r"SQL error.*leak"),
        ("CREATE TEMPORARY VIEW v AS SELECT 1", r"one SELECT; got CreateView"),
        ("SELECT 1 AS a FROM (SELECT 1) WHERE EXISTS (SELECT * FROM parquet.`/etc`)", r"out of reach"),
    ],
)
def test_the_spark_sandbox_holds(spark: SparkOfflineEngine, text: str, message: str) -> None:
    """Java calls, global views, paths, the caller's session's own temp views and settings:
    none of them reach a batch query, and nothing leaks into the caller's session."""
    session = spark.spark
    session.range(1).createOrReplaceGlobalTempView("leak")
    session.range(1).createOrReplaceTempView("leak")
    with pytest.raises(UserError, match=message):
        spark.batch_query(BatchQuery(text, (), (), "event_timestamp"), start=None, end=None)
    assert [t.name for t in session.catalog.listTables()] == ["leak"]


def test_a_callers_temp_view_of_an_inputs_name_is_left_alone(spark: SparkOfflineEngine, tmp_path: Path) -> None:
    session = spark.spark
    session.range(7).createOrReplaceTempView("raw")
    raw = _raw(DeltaTables(str(tmp_path / "offline"), "proj"), [(1, 0, 2.0, 1)])
    got = spark.batch_query(BatchQuery("SELECT x FROM raw", (raw,), (), "event_timestamp"), start=None, end=None)
    assert got.column("x").to_pylist() == [2.0]
    assert session.table("raw").count() == 7
    session.catalog.dropTempView("raw")


def test_strato_backfill_on_spark_computes_what_it_computes_on_duckdb(
    spark: SparkOfflineEngine, tmp_path: Path
) -> None:
    """End to end through the store: the same repo backfilled by each engine gives the same rows."""
    import pandas as pd

    from strato import Entity, FeatureStore, FeatureView, Field, FileSource, Float64, Int64, SqlSource, String
    from strato.config import write_default_config

    user = Entity("user", join_keys={"user_id": Int64})
    payments = FeatureView("payments", entities=[user], schema=[Field("amount", Float64), Field("currency", String)])
    hourly = FeatureView(
        "hourly",
        entities=[user],
        schema=[Field("spend_eur", Float64), Field("n", Int64)],
        source=SqlSource(
            """SELECT p.user_id, date_trunc('hour', p.event_timestamp) AS event_timestamp,
                      sum(p.amount * fx.rate) AS spend_eur, count(*) AS n
               FROM payments p JOIN fx USING (currency) GROUP BY ALL""",
            inputs=[payments, FileSource("fx.csv", "csv", name="fx")],
        ),
    )
    start = (datetime.now(UTC) - timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    rows = [
        {
            "user_id": u,
            "event_timestamp": start + timedelta(minutes=m),
            "amount": float((u * 7 + m) % 23),
            "currency": ("USD", "EUR")[(u + m) % 2],
        }
        for u in range(1, 4)
        for m in range(0, 300, 17)
    ]
    got = {}
    for engine in ("duckdb", "spark"):
        repo = tmp_path / engine
        repo.mkdir()
        write_default_config(repo, "proj")
        pd.DataFrame({"currency": ["USD", "EUR"], "rate": [0.5, 1.0]}).to_csv(repo / "fx.csv", index=False)
        options = {"offline__driver_memory": "1g", "offline__shuffle_partitions": 2} if engine == "spark" else {}
        with FeatureStore(repo, offline__engine=engine, **options) as store:
            store.apply([user, payments, hourly])
            store.write("payments", rows)
            store.write("payments", [dict(r, amount=r["amount"] + 100) for r in rows[:5]])  # rewrites
            assert store.backfill(start, start + 5 * H, progress=False).views["hourly"].rows == 15
        with FeatureStore(repo) as reader:  # DuckDB reads the Delta table either engine wrote
            table = reader.sql("SELECT user_id, event_timestamp, spend_eur, n FROM hourly ORDER BY ALL")
            got[engine] = table.to_pylist()
    assert got["spark"] == got["duckdb"]
    assert sum(r["n"] for r in got["spark"]) == 3 * len(range(0, 300, 17))
