"""A closed `FeatureStore` refuses every verb with a clear error, instead of quietly reopening."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from strato import FeatureStore, StratoError

from .helpers import USER, stats_view


def test_a_closed_store_refuses_reads_and_writes(repo: Path) -> None:
    store = FeatureStore(repo)
    store.apply([USER, stats_view()])
    store.get_online_features(["stats:x"], [{"user_id": 1}])  # plans cached, online store open
    store.close()
    store.close()  # closing twice is harmless
    row = {"user_id": 1, "event_timestamp": datetime.now(UTC), "x": 1, "tag": "a", "score": 1.0}
    for verb in (
        lambda: store.get_online_features(["stats:x"], [{"user_id": 1}]),
        lambda: store.write("stats", [row]),
        lambda: store.list_feature_views(),
    ):
        with pytest.raises(StratoError, match="closed"):
            verb()
