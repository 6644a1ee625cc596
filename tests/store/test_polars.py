"""polars frames in: writes and training-set spines, like pandas and pyarrow (issue: "accepts
pandas, pyarrow and polars frames"), with the same validation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from strato import FeatureStore, SchemaError

from .helpers import USER, stats_view

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def test_polars_write_and_spine(store: FeatureStore) -> None:
    store.apply([USER, stats_view()])
    frame = pl.DataFrame(
        {
            "user_id": [1, 2, 1],
            "event_timestamp": [T0, T0, T0 + timedelta(days=1)],
            "x": [10, 20, 11],
            "tag": ["a", "b", None],
            "score": [0.5, 1.5, 2.5],
        }
    )
    assert frame.schema["event_timestamp"] == pl.Datetime("us", "UTC")
    result = store.write("stats", frame)
    assert (result.rows, result.table_version) == (3, 0)

    spine = pl.DataFrame(
        {"user_id": [1, 1, 2], "event_timestamp": [T0 + timedelta(hours=1), T0 + timedelta(days=2), T0]}
    )
    table = store.get_historical_features(spine, ["stats:x", "stats:tag"]).table
    assert table.select(["x", "tag"]).to_pylist() == [
        {"x": 10, "tag": "a"},
        {"x": 11, "tag": None},
        {"x": 20, "tag": "b"},
    ]
    assert store.get_online_features(["stats:x"], [{"user_id": 1}]).to_dict()["x"] == [11]


def test_polars_bad_value_is_named(store: FeatureStore) -> None:
    store.apply([USER, stats_view()])
    frame = pl.DataFrame(
        {"user_id": [1, 2], "event_timestamp": [T0, T0], "x": ["ten", "20"], "tag": ["a", "b"], "score": [1.0, 2.0]}
    )
    with pytest.raises(SchemaError, match=r"'x', row 0"):
        store.write("stats", frame)
    assert store.delta.snapshot(store.get_feature_view("stats").table_name) is None
