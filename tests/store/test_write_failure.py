"""A write whose Delta commit fails leaves the online store untouched, for small batches and
for large ones (whose online values are encoded while the commit runs, in another thread)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from strato import FeatureStore, ReadStatus, StratoError
from strato.store.feature_store import OVERLAP_MIN_ROWS

from .helpers import USER, stats_view


@pytest.mark.parametrize("rows", [3, OVERLAP_MIN_ROWS + 1])
def test_failed_history_commit_writes_nothing_online(store: FeatureStore, rows: int) -> None:
    fv = stats_view()
    store.apply([USER, fv])
    # Make the view's history table impossible to create: a plain file sits where its folder goes.
    table_dir = Path(store.delta.path(store.get_feature_view("stats").table_name))
    table_dir.parent.mkdir(parents=True, exist_ok=True)
    table_dir.write_text("not a Delta table")
    batch = pa.table(
        {
            "user_id": pa.array(range(rows), pa.int64()),
            "event_timestamp": pa.array([datetime.now(UTC)] * rows, pa.timestamp("us", tz="UTC")),
            "x": pa.array(range(rows), pa.int64()),
            "tag": pa.array(["t"] * rows),
            "score": pa.array([1.0] * rows),
        }
    )
    with pytest.raises(StratoError):
        store.write("stats", batch)
    response = store.get_online_features(["stats:x"], [{"user_id": 0}, {"user_id": rows - 1}])
    assert response.statuses()["x"] == [ReadStatus.NOT_FOUND, ReadStatus.NOT_FOUND]
    table_dir.unlink()
    assert store.write("stats", batch).rows == rows  # and the store still works afterwards
    assert store.get_online_features(["stats:x"], [{"user_id": rows - 1}]).to_dict()["x"] == [rows - 1]
