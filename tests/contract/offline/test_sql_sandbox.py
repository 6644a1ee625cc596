"""`sql` is read-only and contained: one SELECT, no files, no lasting state, limited time and memory.

Engine-level half of the sandbox tests (the store-level corpus is tests/store/test_sql_sandbox.py).
Limits are engine options, so the limit tests run for engines whose options model has them.
"""

from __future__ import annotations

import _thread
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from strato import plugins
from strato.errors import ConfigError, UserError
from strato.offline.base import OfflineEngine, TableSnapshot
from strato.offline.delta import DeltaTables

# Engines without the sql capability (Spark) skip this module, saying why.
pytestmark = pytest.mark.usefixtures("sql_engine")

TS = pa.timestamp("us", tz="UTC")
T0 = datetime(2024, 1, 1, tzinfo=UTC)
#: Runs for minutes unless stopped: a sum over 10^11 hashed integers.
SLOW = "SELECT sum(hash(i)) AS s FROM range(100000000000) t(i)"


def rows(ids: list[int], x: float) -> pa.Table:
    n = len(ids)
    return pa.table(
        {
            "user_id": pa.array(ids, pa.int64()),
            "event_timestamp": pa.array([T0] * n, TS),
            "x": pa.array([x] * n, pa.float64()),
            "created_timestamp": pa.array([T0] * n, TS),
        }
    )


def snap(tables: DeltaTables, name: str) -> TableSnapshot:
    snapshot = tables.snapshot(name)
    assert snapshot is not None
    return snapshot


def refused(engine: OfflineEngine, query: str, tables: list[TableSnapshot]) -> str:
    with pytest.raises(UserError) as info:
        engine.sql(query, tables)
    message = str(info.value)
    assert "\n" not in message, message
    return message


@pytest.mark.parametrize(
    ("query", "got"),
    [
        ("COPY (SELECT 1) TO '{out}/x.csv'", "got COPY"),
        ("ATTACH '{out}/evil.db'", "got ATTACH"),
        ("EXPORT DATABASE '{out}/export'", "got EXPORT"),
        ("CREATE TABLE t AS SELECT 1", "got CREATE"),
        ("DROP VIEW a", "got DROP"),
        ("SET memory_limit = '1MB'", "got SET"),
        ("PRAGMA database_list", "got PRAGMA"),
        ("CALL pragma_version()", "got CALL"),
        ("SELECT 1; DROP VIEW a", "got 2 statements (SELECT, DROP)"),
        ("", "got 0 statements (no statement)"),
        ("WITH x AS (COPY (SELECT 1) TO '{out}/cte.csv') SELECT 1", "got COPY inside it"),
        ("WITH x AS (DELETE FROM a RETURNING *) SELECT * FROM x", "got DELETE inside it"),
    ],
)
def test_anything_but_one_select_is_refused_in_one_line(
    offline_engine: OfflineEngine, tables: DeltaTables, tmp_path: Path, query: str, got: str
) -> None:
    tables.append("a", rows([1], 1.0))
    out = tmp_path / "out"
    out.mkdir()
    message = refused(offline_engine, query.format(out=out), [snap(tables, "a")])
    assert message.startswith("strato sql runs one read-only SELECT; " + got), message
    assert list(out.iterdir()) == []
    assert offline_engine.sql("SELECT count(*) AS n FROM a", [snap(tables, "a")]).to_pylist() == [{"n": 1}]


@pytest.mark.parametrize(
    "query",
    [
        "SELECT * FROM read_csv('/etc/passwd', sep = ':')",
        "SELECT * FROM read_text('/etc/passwd')",
        "SELECT * FROM read_blob('/etc/passwd')",
        "SELECT * FROM glob('/*')",
        "SELECT * FROM read_parquet('{outside}')",
        "SELECT * FROM '{outside}'",
        "SELECT * FROM read_parquet('{inside}')",
        "SELECT * FROM parquet_metadata('{inside}')",
        "SELECT * FROM read_json('/etc/passwd')",
    ],
)
def test_file_reading_functions_fail_because_external_access_is_off(
    offline_engine: OfflineEngine, tables: DeltaTables, tmp_path: Path, query: str
) -> None:
    tables.append("a", rows([1], 1.0))
    outside = tmp_path / "outside.parquet"
    pq.write_table(pa.table({"secret": [42]}), outside)
    inside = snap(tables, "a").files[0]
    message = refused(offline_engine, query.format(outside=outside, inside=inside), [snap(tables, "a")])
    assert "files are out of reach" in message, message


def test_each_call_starts_clean(offline_engine: OfflineEngine, tables: DeltaTables) -> None:
    """Nothing one query does is seen by the next: not its settings, not the previous tables."""
    tables.append("a", rows([1, 2], 1.0))
    offline_engine.sql("SELECT * FROM a", [snap(tables, "a")])
    with pytest.raises(UserError, match="SQL error"):
        offline_engine.sql("SELECT * FROM a", [])
    settings = "SELECT current_setting('enable_external_access') AS ext, current_setting('lock_configuration') AS lk"
    assert offline_engine.sql(settings, []).to_pylist() == [{"ext": False, "lk": True}]


def test_file_columns_added_later_read_as_null(offline_engine: OfflineEngine, tables: DeltaTables) -> None:
    """The sandbox reads each file through the snapshot's schema (design rule 6)."""
    tables.append("a", rows([1], 1.0))
    tables.append("a", rows([2], 2.0).append_column("y", pa.array([7], pa.int64())))
    out = offline_engine.sql("SELECT user_id, y FROM a ORDER BY user_id", [snap(tables, "a")])
    assert out.to_pylist() == [{"user_id": 1, "y": None}, {"user_id": 2, "y": 7}]


# ---------------------------------------------------------------------------- limits (engine options)


def limited_engine(name: str, **options: object) -> OfflineEngine:
    cls: type[OfflineEngine] = plugins.load("offline", name)
    if not set(options) <= set(cls.options_model.model_fields):
        pytest.skip(f"offline engine {name} has no options {sorted(options)}")
    return cls.open(cls.options_model(**options))


def test_a_slow_query_is_stopped_after_the_timeout(offline_engine: OfflineEngine) -> None:
    with limited_engine(offline_engine.name, sql_timeout_seconds=0.5) as engine:
        began = time.monotonic()
        message = refused(engine, SLOW, [])
        assert time.monotonic() - began < 10
        assert "sql_timeout_seconds=0.5" in message, message
        assert engine.sql("SELECT 1 AS one", []).to_pylist() == [{"one": 1}]


def test_ctrl_c_stops_the_query_and_is_a_keyboard_interrupt(offline_engine: OfflineEngine) -> None:
    timer = threading.Timer(0.5, _thread.interrupt_main)
    began = time.monotonic()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            offline_engine.sql(SLOW, [])
    finally:
        timer.cancel()
    assert time.monotonic() - began < 10
    assert offline_engine.sql("SELECT 1 AS one", []).to_pylist() == [{"one": 1}]


def test_memory_limit_is_configurable_and_a_hard_cap(offline_engine: OfflineEngine) -> None:
    query = "SELECT count(*) AS n FROM (SELECT i, count(*) FROM range(3000000) t(i) GROUP BY i)"
    with limited_engine(offline_engine.name, sql_memory_limit="8MB") as engine:
        setting = engine.sql("SELECT current_setting('memory_limit') AS m", []).column("m")[0].as_py()
        assert setting.startswith("7.6 MiB"), setting
        message = refused(engine, query, [])
        assert "sql_memory_limit='8MB'" in message, message
    assert offline_engine.sql(query, []).to_pylist() == [{"n": 3_000_000}]  # the default, 4GB, is enough


def test_a_bad_memory_limit_is_a_config_error(offline_engine: OfflineEngine) -> None:
    with (
        limited_engine(offline_engine.name, sql_memory_limit="lots") as engine,
        pytest.raises(ConfigError, match="sql_memory_limit 'lots'"),
    ):
        engine.sql("SELECT 1", [])
