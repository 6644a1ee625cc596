"""`sql`: each snapshot is a table named after it, pinned to its version; bad SQL is a UserError."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pyarrow as pa
import pytest

from strato.errors import UserError
from strato.offline.base import OfflineEngine, TableSnapshot
from strato.offline.delta import DeltaTables

# Engines without the sql capability (Spark) skip this module, saying why.
pytestmark = pytest.mark.usefixtures("sql_engine")

TS = pa.timestamp("us", tz="UTC")
T0 = datetime(2024, 1, 1, tzinfo=UTC)


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


def snap(tables: DeltaTables, name: str, as_of: int | None = None) -> TableSnapshot:
    snapshot = tables.snapshot(name, as_of=as_of)
    assert snapshot is not None
    return snapshot


def test_query_joins_two_tables(offline_engine: OfflineEngine, tables: DeltaTables) -> None:
    tables.append("a", rows([1, 2, 3], 1.0))
    tables.append("b", rows([2, 3, 4], 2.0))
    out = offline_engine.sql(
        "SELECT a.user_id, a.x + b.x AS s FROM a JOIN b USING (user_id) ORDER BY a.user_id",
        [snap(tables, "a"), snap(tables, "b")],
    )
    assert out.to_pylist() == [{"user_id": 2, "s": 3.0}, {"user_id": 3, "s": 3.0}]


def test_tables_are_pinned_to_their_version_and_named_by_the_snapshot(
    offline_engine: OfflineEngine, tables: DeltaTables
) -> None:
    tables.append("a", rows([1], 1.0))
    tables.append("a", rows([2], 1.0))
    old = dataclasses.replace(snap(tables, "a", as_of=0), name="user stats")
    out = offline_engine.sql('SELECT count(*) AS n FROM "user stats"', [old, snap(tables, "a")])
    assert out.column("n").to_pylist() == [1]
    out = offline_engine.sql("SELECT count(*) AS n FROM a", [snap(tables, "a")])
    assert out.column("n").to_pylist() == [2]


def test_timestamps_come_back_as_utc(offline_engine: OfflineEngine, tables: DeltaTables) -> None:
    tables.append("a", rows([1], 1.0))
    out = offline_engine.sql("SELECT event_timestamp FROM a", [snap(tables, "a")])
    assert out.schema.field("event_timestamp").type == TS
    assert out.column("event_timestamp").to_pylist() == [T0]


def test_empty_table_is_queryable(offline_engine: OfflineEngine, tables: DeltaTables) -> None:
    tables.append("a", rows([], 1.0))
    out = offline_engine.sql("SELECT count(*) AS n, max(x) AS m FROM a", [snap(tables, "a")])
    assert out.to_pylist() == [{"n": 0, "m": None}]


@pytest.mark.parametrize(
    ("query", "match"),
    [("SELEC 1", "syntax"), ("SELECT * FROM nope", "nope"), ("SELECT missing FROM a", "missing")],
    ids=["syntax", "unknown-table", "unknown-column"],
)
def test_bad_sql_is_a_user_error_with_the_engines_message(
    offline_engine: OfflineEngine, tables: DeltaTables, query: str, match: str
) -> None:
    tables.append("a", rows([1], 1.0))
    with pytest.raises(UserError, match=f"(?i)SQL error.*{match}"):
        offline_engine.sql(query, [snap(tables, "a")])


def test_tables_do_not_leak_between_calls(offline_engine: OfflineEngine, tables: DeltaTables) -> None:
    tables.append("a", rows([1], 1.0))
    offline_engine.sql("SELECT 1", [snap(tables, "a")])
    with pytest.raises(UserError, match="SQL error"):
        offline_engine.sql("SELECT * FROM a", [])


def test_two_tables_with_one_name_are_refused(offline_engine: OfflineEngine, tables: DeltaTables) -> None:
    tables.append("a", rows([1], 1.0))
    with pytest.raises(UserError, match="share a name"):
        offline_engine.sql("SELECT 1", [snap(tables, "a"), snap(tables, "a")])
