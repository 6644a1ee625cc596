"""A list of dicts must have the same keys in every row: a column only some rows carry is an
error naming the row, never silently dropped or read as null."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from strato import FeatureStore, SchemaError

from .helpers import USER, stats_view

T = datetime(2026, 1, 1, tzinfo=UTC)
ROW = {"user_id": 1, "event_timestamp": T, "x": 1, "tag": "a", "score": 0.5}


@pytest.mark.parametrize(
    ("second", "message"),
    [
        ({**ROW, "user_id": 2, "surprise": 3}, r"row 1: has \['surprise'\] that row 0 lacks"),
        ({k: v for k, v in ROW.items() if k != "score"}, r"row 1: lacks \['score'\] that row 0 has"),
    ],
)
def test_rows_with_other_keys_are_refused(store: FeatureStore, second: dict[str, object], message: str) -> None:
    store.apply([USER, stats_view()])
    with pytest.raises(SchemaError, match=message):
        store.write("stats", [ROW, second])
    assert store.delta.snapshot(store.get_feature_view("stats").table_name) is None
    assert store.get_online_features(["stats:x"], [{"user_id": 1}]).to_dict()["x"] == [None]
