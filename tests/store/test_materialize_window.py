"""`materialize_incremental` loads what was committed since its last run, up to `end`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd

from strato import FeatureStore

from .helpers import USER, stats_view

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def _rows(users: list[int], when: datetime, x: int) -> pd.DataFrame:
    n = len(users)
    return pd.DataFrame(
        {"user_id": users, "event_timestamp": [when] * n, "x": [x] * n, "tag": ["t"] * n, "score": [1.0] * n}
    )


def test_incremental_runs_load_each_commit_once(store: FeatureStore) -> None:
    store.apply([USER, stats_view()])
    store.write("stats", _rows([1, 2], T0, 1), to="offline")
    first = store.materialize_incremental(T0 + timedelta(hours=1), progress=False)
    assert first.start is None
    assert first.rows == {"stats": 2}
    store.write("stats", _rows([2, 3], T0 + timedelta(hours=2), 2), to="offline")
    second = store.materialize_incremental(T0 + timedelta(hours=3), progress=False)
    assert second.start is None  # incremental runs follow commits, not event times
    assert second.rows == {"stats": 2}  # only the rows of the new commit
    again = store.materialize_incremental(T0 + timedelta(hours=3), progress=False)
    assert again.rows == {"stats": 0}
    online = store.get_online_features(["stats:x"], [{"user_id": u} for u in (1, 2, 3)]).to_dict()
    assert online["x"] == [1, 2, 2]
