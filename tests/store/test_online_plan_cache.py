"""The online request plan is cached per feature list; editing the list in place, or applying
new definitions, must never serve a stale plan."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from strato import FeatureStore, FeatureView, Field, Float64, Int64, String

from .helpers import USER, stats_view

NOW = datetime.now(UTC) - timedelta(minutes=1)


def test_a_list_edited_in_place_is_planned_again(store: FeatureStore) -> None:
    store.apply([USER, stats_view()])
    store.write("stats", [{"user_id": 1, "event_timestamp": NOW, "x": 4, "tag": "a", "score": 0.5}])
    refs = ["stats:x"]
    assert store.get_online_features(refs, [{"user_id": 1}]).to_dict() == {"user_id": [1], "x": [4]}
    refs.append("stats:score")
    assert store.get_online_features(refs, [{"user_id": 1}]).to_dict() == {"user_id": [1], "x": [4], "score": [0.5]}
    refs[0] = "stats:tag"
    assert store.get_online_features(refs, [{"user_id": 1}]).to_dict() == {
        "user_id": [1],
        "tag": ["a"],
        "score": [0.5],
    }
    assert store.get_online_features(refs, [{"user_id": 1}], full_feature_names=True).feature_names == [
        "stats__tag",
        "stats__score",
    ]


def test_apply_drops_cached_plans(store: FeatureStore) -> None:
    store.apply([USER, stats_view()])
    refs = ["stats:x"]
    store.get_online_features(refs, [{"user_id": 1}])
    wider = FeatureView(
        "stats",
        entities=[USER],
        schema=[Field("x", Int64), Field("tag", String), Field("score", Float64), Field("extra", Float64)],
    )
    store.apply([USER, wider])
    store.write("stats", [{"user_id": 1, "event_timestamp": NOW, "x": 9, "tag": "b", "score": 1.0, "extra": 2.0}])
    assert store.get_online_features(refs, [{"user_id": 1}]).to_dict() == {"user_id": [1], "x": [9]}
    assert store.get_online_features(["stats:extra"], [{"user_id": 1}]).to_dict()["extra"] == [2.0]
