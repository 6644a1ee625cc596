"""`FeatureStore.sql`: every offline view is a table named after it, even before its first write."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from strato import FeatureStore, UserError

from .helpers import USER, stats_view


def test_a_view_without_data_is_an_empty_table(store: FeatureStore) -> None:
    store.apply([USER, stats_view()])
    result = store.sql("select count(*) as n, max(score) as top from stats")
    assert result.to_pylist() == [{"n": 0, "top": None}]
    columns = store.sql("select column_name from (describe stats)").column("column_name").to_pylist()
    assert columns == ["user_id", "event_timestamp", "x", "tag", "score", "created_timestamp"]


def test_sql_reads_history_and_time_travels(store: FeatureStore) -> None:
    store.apply([USER, stats_view()])
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    frame = pd.DataFrame(
        {"user_id": [1, 2], "event_timestamp": [t0, t0], "x": [1, 2], "tag": ["a", "b"], "score": [0.5, 1.5]}
    )
    store.write("stats", frame)
    between = datetime.now(UTC)
    store.write("stats", frame.assign(event_timestamp=t0 + timedelta(days=1), x=[10, 20]))
    assert store.sql("select sum(x) as s from stats").to_pylist() == [{"s": 33}]
    assert store.sql("select sum(x) as s from stats", as_of=between).to_pylist() == [{"s": 3}]


def test_bad_sql_is_a_user_error(store: FeatureStore) -> None:
    store.apply([USER, stats_view()])
    with pytest.raises(UserError, match="nosuch"):
        store.sql("select * from nosuch")
