"""Design rules 5 and 6: every read pins a table version (by number or time), snapshots list
exactly that version's files, and a column added later reads null for older rows."""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.fs as pafs
import pytest
from deltalake import DeltaTable

from strato.errors import NotFoundError
from strato.offline import storage
from strato.offline.base import OfflineEngine
from strato.offline.delta import DeltaTables

TS = pa.timestamp("us", tz="UTC")
T0 = datetime(2024, 1, 1, tzinfo=UTC)
SCHEMA = pa.schema([("user_id", pa.int64()), ("event_timestamp", TS), ("x", pa.float64()), ("created_timestamp", TS)])


def rows(*ids: int, x: float = 1.0) -> pa.Table:
    n = len(ids)
    return pa.table(
        {
            "user_id": pa.array(ids, pa.int64()),
            "event_timestamp": pa.array([T0 + timedelta(seconds=i) for i in ids], TS),
            "x": pa.array([x] * n, pa.float64()),
            "created_timestamp": pa.array([T0] * n, TS),
        }
    )


def ids(table: pa.Table) -> list[int]:
    return sorted(table.column("user_id").to_pylist())


def test_versions_count_up_from_zero(tables: DeltaTables) -> None:
    assert tables.version("t") is None
    assert tables.snapshot("t") is None
    assert [tables.append("t", rows(i)) for i in range(3)] == [0, 1, 2]
    assert tables.version("t") == 2
    history = tables.history("t")
    assert [h["version"] for h in history] == [0, 1, 2]
    assert [h["rows_added"] for h in history] == [1, 1, 1]
    assert all(h["operation"] == "WRITE" and h["timestamp"].tzinfo is not None for h in history)


def test_as_of_a_version_reads_that_version(offline_engine: OfflineEngine, tables: DeltaTables) -> None:
    tables.append("t", rows(1, 2))
    tables.append("t", rows(3))
    tables.append("t", rows(4, 5, 6))
    for version, expected in [(0, [1, 2]), (1, [1, 2, 3]), (2, [1, 2, 3, 4, 5, 6])]:
        snapshot = tables.snapshot("t", as_of=version)
        assert snapshot is not None
        assert snapshot.version == version
        assert ids(offline_engine.read(snapshot)) == expected
    latest = tables.snapshot("t")
    assert latest is not None
    assert latest.version == 2
    assert latest.name == "t"


def test_unknown_version_is_not_found(tables: DeltaTables) -> None:
    tables.append("t", rows(1))
    with pytest.raises(NotFoundError, match=r"'t'.*version 5"):
        tables.snapshot("t", as_of=5)
    with pytest.raises(NotFoundError, match="version -1"):
        tables.snapshot("t", as_of=-1)


def test_as_of_a_time_reads_the_version_current_then(offline_engine: OfflineEngine, tables: DeltaTables) -> None:
    before = datetime.now(UTC)
    time.sleep(0.02)
    tables.append("t", rows(1))
    time.sleep(0.02)
    between = datetime.now(UTC)
    time.sleep(0.02)
    tables.append("t", rows(2))
    assert tables.snapshot("t", as_of=before) is None  # the table did not exist yet
    pinned = tables.snapshot("t", as_of=between)
    assert pinned is not None
    assert pinned.version == 0
    assert ids(offline_engine.read(pinned)) == [1]
    naive = tables.snapshot("t", as_of=between.replace(tzinfo=None))  # naive means UTC
    assert naive is not None
    assert naive.version == 0
    future = tables.snapshot("t", as_of=datetime.now(UTC) + timedelta(days=1))
    assert future is not None
    assert future.version == 1


def test_snapshot_files_are_exactly_that_versions(offline_engine: OfflineEngine, tables: DeltaTables) -> None:
    for i in range(4):
        tables.append("t", rows(10 * i, 10 * i + 1))
    files = [set(s.files) for s in (tables.snapshot("t", as_of=v) for v in range(4)) if s is not None]
    assert [len(f) for f in files] == [1, 2, 3, 4]
    assert all(a < b for a, b in itertools.pairwise(files))
    # Rewrite one file outside Strato (a delete, as a compaction or GDPR job would): the old file
    # stays on disk, and a glob of the folder would read its rows again.
    path = tables.path("t")
    DeltaTable(path, storage_options=tables.storage_options or None).delete("user_id = 0")
    on_disk = parquet_files(tables, "t")
    latest = tables.snapshot("t")
    assert latest is not None
    assert latest.version == 4
    stale = files[-1] - set(latest.files)
    assert stale
    assert stale <= on_disk
    assert set(latest.files) <= on_disk
    assert ids(offline_engine.read(latest)) == [1, 10, 11, 20, 21, 30, 31]
    old = tables.snapshot("t", as_of=3)
    assert old is not None
    assert ids(offline_engine.read(old)) == [0, 1, 10, 11, 20, 21, 30, 31]


def test_added_nullable_column_reads_null_for_old_rows(offline_engine: OfflineEngine, tables: DeltaTables) -> None:
    tables.append("t", rows(1))
    evolved = rows(2).append_column("y", pa.array(["b"], pa.string()))
    assert tables.append("t", evolved) == 1
    snapshot = tables.snapshot("t")
    assert snapshot is not None
    assert snapshot.schema.names == [*SCHEMA.names, "y"]
    table = offline_engine.read(snapshot).sort_by("user_id")
    assert table.schema == snapshot.schema
    assert table.column("y").to_pylist() == [None, "b"]
    old = tables.snapshot("t", as_of=0)
    assert old is not None
    assert "y" not in old.schema.names
    assert offline_engine.read(old).column_names == SCHEMA.names


def test_column_added_by_an_empty_write_reads_null(offline_engine: OfflineEngine, tables: DeltaTables) -> None:
    tables.append("t", rows(1))
    empty = rows().append_column("y", pa.array([], pa.string()))
    tables.append("t", empty)
    snapshot = tables.snapshot("t")
    assert snapshot is not None
    assert "y" in snapshot.schema.names
    table = offline_engine.read(snapshot)
    assert table.schema == snapshot.schema
    assert table.column("y").to_pylist() == [None]


def test_table_created_by_an_empty_write_reads_empty(offline_engine: OfflineEngine, tables: DeltaTables) -> None:
    assert tables.append("t", rows()) == 0
    snapshot = tables.snapshot("t")
    assert snapshot is not None
    assert snapshot.files == ()
    table = offline_engine.read(snapshot)
    assert table.num_rows == 0
    assert table.schema == snapshot.schema


def test_drop_removes_the_table(tables: DeltaTables) -> None:
    tables.append("t", rows(1))
    tables.append("u", rows(1))
    tables.drop("t")
    assert tables.version("t") is None
    assert tables.snapshot("t") is None
    assert tables.history("t") == []
    assert tables.version("u") == 0
    tables.drop("t")  # dropping again is fine
    assert tables.append("t", rows(2)) == 0


def parquet_files(tables: DeltaTables, table_name: str) -> set[str]:
    """Every Parquet file in the table's folder (a listing, not the log), as its snapshots name them."""
    path = tables.path(table_name)
    fs, inner = storage.filesystem(path, tables.storage_options)
    infos = fs.get_file_info(pafs.FileSelector(inner, recursive=False))
    names = {info.path.rsplit("/", 1)[-1] for info in infos if info.path.endswith(".parquet")}
    return {f"{path}/{name}" for name in names}
