"""Historical reads without an entity frame (issue 8, item 3), against the brute-force oracle:
every entity at each of its event times in [start, end), and a labels view as the spine."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oracles import pit_join_oracle
from store.helpers import USER, stats_view
from store.test_point_in_time import at, batches, write_batches
from strato import FeatureStore, FeatureView, Field, Int64, UserError

SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
_views = itertools.count()
window = st.tuples(st.integers(-2, 14), st.integers(1, 16)).map(lambda w: (w[0], w[0] + w[1]))


def _winners(history: list[dict[str, Any]], start: int, end: int) -> list[dict[str, Any]]:
    """Per (keys, event time) in the window, the latest write, ordered by time then key."""
    best: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in history:
        if at(start) <= row["event_timestamp"] < at(end):
            key = (row["event_timestamp"], row["user_id"])
            if key not in best or row["created_timestamp"] > best[key]["created_timestamp"]:
                best[key] = row
    return [best[k] for k in sorted(best)]


@SETTINGS
@given(features=batches, labels=batches, span=window, ttl_seconds=st.none() | st.integers(1, 6))
def test_range_and_spine_view_match_the_oracle(
    store: FeatureStore,
    features: list[list[tuple[int, int, int]]],
    labels: list[list[tuple[int, int, int]]],
    span: tuple[int, int],
    ttl_seconds: int | None,
) -> None:
    ttl = None if ttl_seconds is None else timedelta(seconds=ttl_seconds)
    n = next(_views)
    name, label_name = f"f{n}", f"lab{n}"
    store.apply([USER, stats_view(name, ttl=ttl), stats_view(label_name)])
    history = write_batches(store, name, features)
    label_history = write_batches(store, label_name, labels)
    start, end = span
    refs = [f"{name}:x", f"{name}:tag"]

    # Every entity of the view at each of its event times in the window.
    got = store.get_historical_features(features=refs, start=at(start), end=at(end))
    spine = [{"user_id": r["user_id"], "event_timestamp": r["event_timestamp"]} for r in _winners(history, start, end)]
    assert got.table.to_pylist() == pit_join_oracle(spine, history, ttl, join_keys=["user_id"], features=["x", "tag"])

    # Labels as the spine: their latest write per (key, time), features as of each.
    got = store.get_historical_features(
        features=refs, start=at(start), end=at(end), spine_view=label_name, full_feature_names=True
    )
    spine = [
        {k: r[k] for k in ("user_id", "event_timestamp", "x", "tag", "score")}
        for r in _winners(label_history, start, end)
    ]
    expected = pit_join_oracle(
        spine, history, ttl, join_keys=["user_id"], features=["x", "tag"], output_names=[f"{name}__x", f"{name}__tag"]
    )
    assert got.table.to_pylist() == expected
    assert set(got.versions) == {f"{name}@v1", f"{label_name}@v1"}


def test_views_with_other_keys_need_an_entity_frame_or_a_spine_view(store: FeatureStore) -> None:
    from strato import Entity

    shop = Entity("shop", join_keys={"shop_id": Int64})
    store.apply([USER, shop, stats_view(), FeatureView("sales", entities=[shop], schema=[Field("n", Int64)])])
    with pytest.raises(UserError, match=r"different join keys \(shop_id vs user_id\).*spine_view=VIEW"):
        store.get_historical_features(features=["stats:x", "sales:n"], start=at(0), end=at(5))
    with pytest.raises(UserError, match="start, end and spine_view are for calls without an entity_df"):
        store.get_historical_features([{"user_id": 1, "event_timestamp": at(0)}], ["stats:x"], start=at(0))
    with pytest.raises(UserError, match=r"start .* must be before end"):
        store.get_historical_features(features=["stats:x"], start=at(5), end=at(5))
    store.write("stats", [{"user_id": 1, "event_timestamp": at(1), "x": 1, "tag": "a", "score": 0.5}])
    got = store.get_historical_features(features=["stats:x"], start=at(0), end=at(5))
    assert got.table.column("x").to_pylist() == [1]
    empty = store.get_historical_features(features=["stats:x"], start=at(2), end=at(5))
    assert empty.table.num_rows == 0
    assert empty.table.column_names == ["user_id", "event_timestamp", "x"]
