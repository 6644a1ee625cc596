"""`latest` (what materialize loads online): per key the winning row of ``[start, end)``, vs the oracle."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oracles import latest_oracle
from strato.offline.base import OfflineEngine
from strato.offline.delta import DeltaTables

TS = pa.timestamp("us", tz="UTC")
T0 = datetime(2024, 1, 1, tzinfo=UTC)
SCHEMA = pa.schema(
    [
        ("user_id", pa.int64()),
        ("region", pa.string()),
        ("event_timestamp", TS),
        ("x", pa.float64()),
        ("created_timestamp", TS),
    ]
)
KEYS = ["user_id", "region"]


def t(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def row(user: int, event: float, x: float, created: float, region: str = "eu") -> dict[str, Any]:
    return {"user_id": user, "region": region, "event_timestamp": t(event), "x": x, "created_timestamp": t(created)}


def latest(engine: OfflineEngine, tables: DeltaTables, start: datetime | None, end: datetime) -> list[dict[str, Any]]:
    snapshot = tables.snapshot("t")
    assert snapshot is not None
    reader = engine.latest(snapshot, KEYS, start=start, end=end)
    assert isinstance(reader, pa.RecordBatchReader)
    table = reader.read_all()
    assert table.schema == snapshot.schema
    return sorted(table.to_pylist(), key=lambda r: (r["user_id"], r["region"]))


def test_newest_event_wins_then_newest_write(offline_engine: OfflineEngine, tables: DeltaTables) -> None:
    tables.append("t", pa.Table.from_pylist([row(1, 10, 1.0, 100), row(2, 10, 1.0, 300)], schema=SCHEMA))
    tables.append("t", pa.Table.from_pylist([row(1, 10, 2.0, 200), row(2, 10, 2.0, 200)], schema=SCHEMA))
    tables.append("t", pa.Table.from_pylist([row(1, 5, 3.0, 400), row(1, 5, 4.0, 400, "us")], schema=SCHEMA))
    out = latest(offline_engine, tables, None, t(1000))
    assert [(r["user_id"], r["region"], r["x"]) for r in out] == [(1, "eu", 2.0), (1, "us", 4.0), (2, "eu", 1.0)]


def test_start_is_inclusive_and_end_exclusive(offline_engine: OfflineEngine, tables: DeltaTables) -> None:
    rows = [row(1, 10, 1.0, 100), row(1, 20, 2.0, 100), row(2, 5, 5.0, 100), row(3, 20, 6.0, 100)]
    tables.append("t", pa.Table.from_pylist(rows, schema=SCHEMA))
    assert [r["x"] for r in latest(offline_engine, tables, t(10), t(20))] == [1.0]
    assert [r["x"] for r in latest(offline_engine, tables, None, t(20))] == [1.0, 5.0]
    assert [r["x"] for r in latest(offline_engine, tables, t(5), t(20.000001))] == [2.0, 5.0, 6.0]
    assert latest(offline_engine, tables, t(21), t(30)) == []


def test_large_table_streams_in_batches(offline_engine: OfflineEngine, tables: DeltaTables) -> None:
    n = 300_000
    table = pa.table(
        {
            "user_id": pa.array(range(n), pa.int64()),
            "region": pa.array(["eu"] * n),
            "event_timestamp": pa.array([T0] * n, TS),
            "x": pa.array([float(i) for i in range(n)]),
            "created_timestamp": pa.array([T0] * n, TS),
        }
    )
    tables.append("t", table)
    # An earlier write (smaller created time) of the same keys and event times must lose.
    older = table.slice(0, 1000).set_column(3, "x", pa.array([-1.0] * 1000))
    tables.append("t", older.set_column(4, "created_timestamp", pa.array([t(-1)] * 1000, TS)))
    snapshot = tables.snapshot("t")
    assert snapshot is not None
    reader = offline_engine.latest(snapshot, KEYS, start=None, end=t(1))
    total = 0
    batches = 0
    for batch in reader:
        total += batch.num_rows
        batches += 1
        assert batch.num_rows == 0 or pc.min(batch.column("x")).as_py() >= 0
    assert total == n
    assert batches >= 2


def test_table_without_files(offline_engine: OfflineEngine, tables: DeltaTables) -> None:
    tables.append("t", SCHEMA.empty_table())
    assert latest(offline_engine, tables, None, t(1)) == []


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    commits=st.lists(
        st.tuples(
            st.integers(1, 50),
            st.lists(st.tuples(st.integers(0, 3), st.sampled_from(["eu", "us"]), st.integers(0, 12)), max_size=12),
        ),
        max_size=4,
        unique_by=lambda c: c[0],
    ),
    start=st.none() | st.integers(0, 12),
    length=st.integers(1, 14),
)
def test_matches_the_oracle(
    offline_engine: OfflineEngine,
    commits: list[tuple[int, list[tuple[int, str, int]]]],
    start: int | None,
    length: int,
) -> None:
    if not offline_engine.capabilities.quick_calls:  # Spark: ~1 s a job; fewer examples in tests/engines
        pytest.skip(f"offline engine {offline_engine.name} runs this property in tests/engines/, with fewer examples")
    end = t((start or 0) + length)
    begin = None if start is None else t(start)
    history: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        tables = DeltaTables(tmp, "prop")
        for created, entries in commits:
            unique = {(u, g, e): row(u, e, float(created * 100 + i), created, g) for i, (u, g, e) in enumerate(entries)}
            tables.append("t", pa.Table.from_pylist(list(unique.values()), schema=SCHEMA))
            history += unique.values()
        if not commits:
            tables.append("t", SCHEMA.empty_table())
        got = latest(offline_engine, tables, begin, end)
    expected = latest_oracle(history, KEYS, start=begin, end=end)
    assert got == [dict(expected[k]) for k in sorted(expected)]
