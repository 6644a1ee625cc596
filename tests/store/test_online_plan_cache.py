"""The online request plan is cached per feature list; editing the list in place, or applying
new definitions, must never serve a stale plan."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import strato.store.catalog
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


def test_another_processs_apply_reaches_a_long_lived_reader(
    store: FeatureStore, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server keeps plans cached; a breaking change applied elsewhere (as a new version with
    fresh storage) is picked up at the next registry re-check, or at once with `refresh()`."""
    monkeypatch.setattr(strato.store.catalog, "RECHECK_SECONDS", 3600.0)  # no re-check during the test
    store.apply([USER, stats_view()])
    store.write("stats", [{"user_id": 1, "event_timestamp": NOW, "x": 1, "tag": "old", "score": 1.0}])
    refs = ["stats:tag"]
    assert store.get_online_features(refs, [{"user_id": 1}]).to_dict()["tag"] == ["old"]

    retyped = FeatureView("stats", entities=[USER], schema=[Field("x", String), Field("tag", String)])
    with FeatureStore(repo) as admin:  # another process, as far as `store` can tell
        admin.apply([USER, retyped], new_version=["stats"], start_empty=["stats"])
        admin.write("stats", [{"user_id": 1, "event_timestamp": NOW, "x": "one", "tag": "new"}])

    assert store.get_online_features(refs, [{"user_id": 1}]).to_dict()["tag"] == ["old"]  # cached plan
    store.refresh()
    assert store.get_online_features(refs, [{"user_id": 1}]).to_dict()["tag"] == ["new"]


def test_lookups_recheck_the_registry_by_themselves(store: FeatureStore, repo: Path) -> None:
    store.apply([USER, stats_view()])
    refs = ["stats:tag"]
    store.get_online_features(refs, [{"user_id": 1}])
    retyped = FeatureView("stats", entities=[USER], schema=[Field("x", String), Field("tag", String)])
    with FeatureStore(repo) as admin:
        admin.apply([USER, retyped], new_version=["stats"], start_empty=["stats"])
        admin.write("stats", [{"user_id": 1, "event_timestamp": NOW, "x": "one", "tag": "new"}])
    store.catalog.valid_until = 0.0  # as if RECHECK_SECONDS had passed
    assert store.get_online_features(refs, [{"user_id": 1}]).to_dict()["tag"] == ["new"]


def test_a_long_lived_writer_follows_another_processs_apply(store: FeatureStore, repo: Path) -> None:
    """Writes use the cached current view too: after the re-check, they go to the new version."""
    store.apply([USER, stats_view()])
    row = {"user_id": 1, "event_timestamp": NOW, "x": 1, "tag": "a", "score": 1.0}
    assert store.write("stats", [row]).table_version == 0
    retyped = FeatureView("stats", entities=[USER], schema=[Field("x", String), Field("tag", String)])
    with FeatureStore(repo) as admin:
        admin.apply([USER, retyped], new_version=["stats"], start_empty=["stats"])
    store.catalog.valid_until = 0.0  # as if RECHECK_SECONDS had passed
    result = store.write("stats", [{"user_id": 1, "event_timestamp": NOW, "x": "one", "tag": "b"}])
    assert result.table_version == 0  # the first commit of the new version's own table
    assert store.get_feature_view("stats").table_name == "stats__v2"
    assert store.get_online_features(["stats:x"], [{"user_id": 1}]).to_dict()["x"] == ["one"]
