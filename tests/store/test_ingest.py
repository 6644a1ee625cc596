"""`FeatureStore.ingest`: a view's `FileSource` (Parquet, CSV, Delta) loaded through `write`."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from deltalake import write_deltalake

from strato import FeatureStore, FeatureView, Field, FileSource, Float64, Int64, SchemaError, String, UserError

from .helpers import USER

ROWS = pa.table(
    {
        "user_id": pa.array([1, 2, 3], pa.int64()),
        "event_timestamp": pa.array(
            [datetime(2026, 1, d, tzinfo=UTC) for d in (1, 2, 3)], pa.timestamp("us", tz="UTC")
        ),
        "x": pa.array([10, 20, 30], pa.int64()),
        "tag": pa.array(["a", "b", "c"]),
        "score": pa.array([0.5, 1.5, 2.5]),
    }
)


def _view(path: str, file_format: str) -> FeatureView:
    return FeatureView(
        "stats",
        entities=[USER],
        schema=[Field("x", Int64), Field("tag", String), Field("score", Float64)],
        source=FileSource(path, format=file_format),  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("file_format", ["parquet", "csv", "delta"])
def test_ingest_reads_each_format_relative_to_the_repo(store: FeatureStore, repo: Path, file_format: str) -> None:
    name = {"parquet": "data/stats.parquet", "csv": "data/stats.csv", "delta": "data/stats_delta"}[file_format]
    (repo / "data").mkdir()
    if file_format == "parquet":
        pq.write_table(ROWS, repo / name)
    elif file_format == "csv":
        pacsv.write_csv(ROWS, repo / name)
    else:
        write_deltalake(str(repo / name), ROWS)
    store.apply([USER, _view(name, file_format)])
    result = store.ingest("stats")
    assert result.rows == 3
    assert result.table_version == 0
    online = store.get_online_features(["stats:x", "stats:tag", "stats:score"], [{"user_id": 3}]).to_dict()
    assert online == {"user_id": [3], "x": [30], "tag": ["c"], "score": [2.5]}


def test_ingest_without_a_source_is_a_user_error(store: FeatureStore) -> None:
    store.apply([USER, FeatureView("plain", entities=[USER], schema=[Field("x", Int64)])])
    with pytest.raises(UserError, match=r"feature view 'plain' has no source"):
        store.ingest("plain")


def test_a_missing_file_is_named(store: FeatureStore, repo: Path) -> None:
    store.apply([USER, _view("nowhere.parquet", "parquet")])
    with pytest.raises(UserError, match=r"nowhere\.parquet: no such file"):
        store.ingest("stats")


def test_a_bad_file_writes_nothing(store: FeatureStore, repo: Path) -> None:
    pq.write_table(ROWS.set_column(2, "x", pa.array(["ten", "20", "30"])), repo / "bad.parquet")
    store.apply([USER, _view("bad.parquet", "parquet")])
    with pytest.raises(SchemaError, match="'x'"):
        store.ingest("stats")
    assert store.delta.snapshot(store.get_feature_view("stats").table_name) is None
    (repo / "corrupt.parquet").write_bytes(b"PAR1 not really")
    store.apply([USER, _view("corrupt.parquet", "parquet")])
    with pytest.raises(UserError, match=r"corrupt\.parquet: cannot read as parquet"):
        store.ingest("stats")


def test_csv_columns_are_read_as_the_views_types(store: FeatureStore, repo: Path) -> None:
    """A string feature of digits keeps its leading zeros; the reader doesn't guess numbers."""
    (repo / "codes.csv").write_text("user_id,event_timestamp,x,tag,score\n7,2026-01-01T00:00:00Z,1,007,2\n")
    store.apply([USER, _view("codes.csv", "csv")])
    store.ingest("stats")
    assert store.get_online_features(["stats:tag", "stats:score"], [{"user_id": 7}]).to_dict() == {
        "user_id": [7],
        "tag": ["007"],
        "score": [2.0],
    }


def test_numbers_for_a_string_feature_are_refused(store: FeatureStore) -> None:
    store.apply([USER, _view("unused.parquet", "parquet")])
    rows = ROWS.set_column(3, "tag", pa.array([1, 2, 3], pa.int64()))
    with pytest.raises(SchemaError, match=r"'tag'.*holds int64 values but 'tag' is string"):
        store.write("stats", rows)
    assert store.delta.snapshot(store.get_feature_view("stats").table_name) is None
