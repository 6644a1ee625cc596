"""Design rule 1: each append is one commit, all rows or none; a refused append changes nothing."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pyarrow as pa
import pytest

from strato.errors import SchemaError
from strato.offline.base import OfflineEngine
from strato.offline.delta import DeltaTables

TS = pa.timestamp("us", tz="UTC")
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def rows(n: int, start: int = 0, x: pa.Array | None = None) -> pa.Table:
    return pa.table(
        {
            "user_id": pa.array(range(start, start + n), pa.int64()),
            "event_timestamp": pa.array([T0] * n, TS),
            "x": x if x is not None else pa.array([1.0] * n, pa.float64()),
            "created_timestamp": pa.array([T0] * n, TS),
        }
    )


def assert_unchanged(tables: DeltaTables, engine: OfflineEngine, version: int, n: int) -> None:
    snapshot = tables.snapshot("t")
    assert snapshot is not None
    assert snapshot.version == version == tables.version("t")
    assert engine.read(snapshot).num_rows == n


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (rows(3, x=pa.array(["a", "b", "c"])), "'x'.*string"),  # retyped column
        (rows(3).drop_columns(["x"]), r"lack.*\['x'\]"),  # missing column
        (
            rows(3).append_column(pa.field("y", pa.int64(), nullable=False), pa.array([1, 2, 3])),
            "'y' must be nullable",
        ),
    ],
    ids=["retyped", "missing", "new-not-nullable"],
)
def test_conflicting_schema_writes_nothing(
    offline_engine: OfflineEngine, tables: DeltaTables, bad: pa.Table, match: str
) -> None:
    tables.append("t", rows(5))
    with pytest.raises(SchemaError, match=match):
        tables.append("t", bad)
    assert_unchanged(tables, offline_engine, 0, 5)
    assert len(tables.history("t")) == 1


def test_rows_failing_validation_mid_batch_write_nothing(offline_engine: OfflineEngine, tables: DeltaTables) -> None:
    schema = rows(0).schema.set(2, pa.field("x", pa.float64(), nullable=False))
    tables.append("t", rows(2).cast(schema))
    # One bad row at the very end of a large batch: no prefix of the batch may land.
    values = pa.array([1.0] * 99_999 + [None], pa.float64())
    with pytest.raises(SchemaError, match="Invalid data"):
        tables.append("t", rows(100_000, start=10, x=values))
    assert_unchanged(tables, offline_engine, 0, 2)


def test_unstorable_first_write_creates_no_table(tables: DeltaTables) -> None:
    bad = rows(2).append_column("d", pa.array([1, 2], pa.duration("us")))
    with pytest.raises(SchemaError, match="Duration"):
        tables.append("t", bad)
    assert tables.version("t") is None


def test_concurrent_appends_each_get_their_own_version(offline_engine: OfflineEngine, tables: DeltaTables) -> None:
    tables.append("t", rows(1, start=-1))
    versions: list[int] = []
    lock = threading.Lock()

    def writer(w: int) -> None:
        for i in range(4):
            version = tables.append("t", rows(10, start=1000 * w + 10 * i))
            with lock:
                versions.append(version)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(versions) == list(range(1, 13))
    snapshot = tables.snapshot("t")
    assert snapshot is not None
    assert snapshot.version == 12
    table = offline_engine.read(snapshot)
    assert table.num_rows == 121
    assert len(set(table.column("user_id").to_pylist())) == 121
