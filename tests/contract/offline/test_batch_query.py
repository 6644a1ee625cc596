"""`batch_query`: a SqlSource's query over view snapshots and batch files, inside the sandbox.

Engines that declare `batch_queries` run it; the others refuse in one line (the SDK then says
which engine to use). Checked here: views appear once per (keys, event time), their latest
write; files of each format are readable under their declared name; the event-time filter
applies to the result; the sandbox holds (one SELECT, no files, time limit).
"""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from strato import plugins
from strato.errors import UserError
from strato.offline.base import BatchQuery, FileInput, OfflineEngine, ViewInput
from strato.offline.delta import DeltaTables

TS = pa.timestamp("us", tz="UTC")
T0 = datetime(2024, 1, 1, tzinfo=UTC)
H = timedelta(hours=1)


@pytest.fixture
def batch_engine(offline_engine: OfflineEngine) -> OfflineEngine:
    if not offline_engine.capabilities.batch_queries:
        pytest.skip(f"offline engine {offline_engine.name} declares no batch_queries capability")
    return offline_engine


def history(ids: list[int], hours: list[int], x: list[float], created: int) -> pa.Table:
    n = len(ids)
    return pa.table(
        {
            "user_id": pa.array(ids, pa.int64()),
            "event_timestamp": pa.array([T0 + h * H for h in hours], TS),
            "x": pa.array(x, pa.float64()),
            "created_timestamp": pa.array([T0 + created * timedelta(seconds=1)] * n, TS),
        }
    )


def view_input(tables: DeltaTables) -> ViewInput:
    tables.append("raw__v1", history([1, 1, 2], [0, 1, 0], [1.0, 2.0, 3.0], created=1))
    tables.append("raw__v1", history([1], [1], [20.0], created=2))  # rewrites (1, hour 1)
    snapshot = tables.snapshot("raw__v1")
    assert snapshot is not None
    return ViewInput(
        dataclasses.replace(snapshot, name="raw"),
        ("user_id",),  # its storage options too
    )


def query(text: str, views: tuple[ViewInput, ...] = (), files: tuple[FileInput, ...] = ()) -> BatchQuery:
    return BatchQuery(text, views, files, "event_timestamp")


def test_a_view_is_seen_once_per_identity_with_its_latest_write(
    batch_engine: OfflineEngine, tables: DeltaTables
) -> None:
    raw = view_input(tables)
    got = batch_engine.batch_query(
        query("SELECT user_id, event_timestamp, x FROM raw ORDER BY user_id, event_timestamp", (raw,)),
        start=None,
        end=None,
    )
    assert got.column("x").to_pylist() == [1.0, 20.0, 3.0]


def test_the_filter_applies_to_the_result_and_limit_zero_gives_the_schema(
    batch_engine: OfflineEngine, tables: DeltaTables
) -> None:
    raw = view_input(tables)
    # The result's event time is one hour after the input's: a window that looks back.
    text = "SELECT user_id, event_timestamp + INTERVAL 1 HOUR AS event_timestamp, x FROM raw -- trailing comment"
    got = batch_engine.batch_query(query(text + ";", (raw,)), start=T0 + 2 * H, end=T0 + 3 * H)
    assert got.column("x").to_pylist() == [20.0]
    empty = batch_engine.batch_query(query(text, (raw,)), start=None, end=None, limit=0)
    assert empty.num_rows == 0
    assert empty.schema.names == ["user_id", "event_timestamp", "x"]


@pytest.mark.parametrize("fmt", ["parquet", "csv", "delta"])
def test_files_are_read_under_their_declared_name(batch_engine: OfflineEngine, tmp_path: Path, fmt: str) -> None:
    rates = pa.table({"currency": ["USD", "EUR"], "rate": [0.5, 1.0]})
    path = tmp_path / f"fx.{fmt}"
    if fmt == "parquet":
        pq.write_table(rates, path)
    elif fmt == "csv":
        pacsv.write_csv(rates, path)
    else:
        from deltalake import write_deltalake

        write_deltalake(str(path), rates)
    got = batch_engine.batch_query(
        query("SELECT currency, rate FROM fx ORDER BY currency", files=(FileInput("fx", str(path), fmt),)),
        start=None,
        end=None,
    )
    assert got.to_pylist() == [{"currency": "EUR", "rate": 1.0}, {"currency": "USD", "rate": 0.5}]


def test_a_missing_file_is_named(batch_engine: OfflineEngine, tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"SqlSource input 'fx'.*no such file"):
        batch_engine.batch_query(
            query("SELECT 1", files=(FileInput("fx", str(tmp_path / "nope.parquet"), "parquet"),)),
            start=None,
            end=None,
        )


#: Per engine, in its own SQL dialect: (query, what the refusal says). A query may write into
#: ``{out}`` or read ``{out}/../x.csv``; the sandbox lets it do neither.
SANDBOX_CASES: dict[str, dict[str, tuple[str, str]]] = {
    "duckdb": {
        "command": ("COPY (SELECT 1) TO '{out}/x.csv'", "got COPY"),
        "two statements": ("SELECT 1; SELECT 2", "got 2 statements"),
        "command inside": ("WITH x AS (COPY (SELECT 1) TO '{out}/cte.csv') SELECT 1", "got COPY inside it"),
        "file read": ("SELECT * FROM read_csv('{out}/../x.csv')", "files are out of reach"),
        "syntax error": ("SELECT 1) AS a, (SELECT 2", "SQL error"),
    },
    "spark": {
        "command": ("INSERT OVERWRITE DIRECTORY '{out}/d' USING csv SELECT 1", "one SELECT; got InsertInto"),
        "two statements": ("SELECT 1; SELECT 2", "SQL error"),
        "command inside": ("SET spark.sql.caseSensitive=false", "one SELECT; got SetCommand"),
        "file read": ("SELECT * FROM csv.`{out}/../x.csv`", "files and tables are out of reach"),
        "syntax error": ("SELECT 1) AS a, (SELECT 2", "SQL error"),
    },
}


@pytest.mark.parametrize("case", ["command", "two statements", "command inside", "file read", "syntax error"])
def test_the_sandbox_holds(batch_engine: OfflineEngine, tmp_path: Path, case: str) -> None:
    if batch_engine.name not in SANDBOX_CASES:
        pytest.fail(f"offline engine {batch_engine.name} runs batch queries: add its SANDBOX_CASES")
    text, message = SANDBOX_CASES[batch_engine.name][case]
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "x.csv").write_text("a\n1\n")
    with pytest.raises(UserError, match=message):
        batch_engine.batch_query(query(text.format(out=out)), start=None, end=None)
    assert list(out.iterdir()) == []


def test_a_slow_query_is_stopped_after_the_timeout(batch_engine: OfflineEngine) -> None:
    cls: type[OfflineEngine] = plugins.load("offline", batch_engine.name)
    if "sql_timeout_seconds" not in cls.options_model.model_fields:
        pytest.skip(f"offline engine {batch_engine.name} has no sql_timeout_seconds")
    slow = "SELECT sum(hash(i)) AS s, now() AS event_timestamp FROM range(100000000000) t(i)"
    with cls.open(cls.options_model(sql_timeout_seconds=0.5)) as engine:
        began = time.monotonic()
        with pytest.raises(UserError, match=r"sql_timeout_seconds=0\.5"):
            engine.batch_query(query(slow), start=None, end=None)
        assert time.monotonic() - began < 10


def test_an_engine_without_the_capability_refuses_in_one_line(offline_engine: OfflineEngine) -> None:
    if offline_engine.capabilities.batch_queries:
        pytest.skip(f"offline engine {offline_engine.name} runs batch queries")
    with pytest.raises(UserError, match="does not run batch transformations"):
        offline_engine.batch_query(query("SELECT 1"), start=None, end=None)


def test_start_and_end_parameters_narrow_the_inputs(batch_engine: OfflineEngine, tables: DeltaTables) -> None:
    raw = view_input(tables)
    # Per user, the sum over the hour before each result time: the inputs a piece needs start an hour early.
    text = """
        SELECT user_id, event_timestamp + INTERVAL 1 HOUR AS event_timestamp, sum(x) AS x FROM raw
        WHERE event_timestamp >= $start - INTERVAL 1 HOUR AND event_timestamp < $end
        GROUP BY ALL
    """
    got = batch_engine.batch_query(query(text, (raw,)), start=T0 + 2 * H, end=T0 + 3 * H)
    assert got.select(["user_id", "x"]).to_pylist() == [{"user_id": 1, "x": 20.0}]
    with pytest.raises(UserError, match=r"parameter \$soon; the parameters it may use are \$start and \$end"):
        batch_engine.batch_query(query("SELECT $soon AS t", (raw,)), start=T0, end=T0 + H)
    with pytest.raises(UserError, match=r"uses \$start, which needs a bounded range"):
        batch_engine.batch_query(query(text, (raw,)), start=None, end=None)
