"""Projects sharing one database never see each other's objects, versions or online progress."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from registry_samples import USER, OpenRegistry, apply, view

from strato.definitions.feature_view import FeatureView
from strato.errors import NotFoundError
from strato.registry.base import OnlineProgress


def test_objects_of_one_project_are_invisible_to_another(open_registry: OpenRegistry) -> None:
    fraud, ads = open_registry("fraud"), open_registry("ads")
    apply(fraud, [USER, view()])

    assert ads.current() == {}
    assert ads.list("feature_view") == []
    with pytest.raises(NotFoundError):
        ads.get("feature_view", "user_stats")
    with pytest.raises(NotFoundError):
        ads.get("feature_view", "user_stats", version=1)
    with pytest.raises(NotFoundError):
        ads.history("feature_view", "user_stats")


def test_the_same_name_versions_independently_per_project(open_registry: OpenRegistry) -> None:
    fraud, ads = open_registry("fraud"), open_registry("ads")
    apply(fraud, [USER, view()])
    apply(fraud, [USER, view(("amount", "float64"), ("n", "int64"))])

    (revision,) = [r for r in apply(ads, [USER, view(("clicks", "int64"))]) if r.kind == "feature_view"]

    assert (revision.version, revision.data_version) == (1, 1)
    fraud_view, ads_view = fraud.get("feature_view", "user_stats"), ads.get("feature_view", "user_stats")
    assert isinstance(fraud_view, FeatureView)
    assert isinstance(ads_view, FeatureView)
    assert (fraud_view.version, fraud_view.feature_names) == (2, ("amount", "n"))
    assert (ads_view.version, ads_view.feature_names) == (1, ("clicks",))


def test_deleting_in_one_project_leaves_the_other_alone(open_registry: OpenRegistry) -> None:
    fraud, ads = open_registry("fraud"), open_registry("ads")
    apply(fraud, [USER, view()])
    apply(ads, [USER, view()])

    apply(fraud, [], delete=[("feature_view", "user_stats")])

    assert ("feature_view", "user_stats") in ads.current()
    assert [r.action for r in ads.history("feature_view", "user_stats")] == ["add"]


def test_online_progress_is_per_project(open_registry: OpenRegistry) -> None:
    fraud, ads = open_registry("fraud"), open_registry("ads")
    apply(fraud, [USER, view()])
    apply(ads, [USER, view()])

    fraud.advance_online_progress("user_stats__v1", OnlineProgress(2, datetime(2024, 5, 1, tzinfo=UTC)), expected=None)

    assert ads.online_progress("user_stats__v1") is None
    assert fraud.online_progress("user_stats__v1") == OnlineProgress(2, datetime(2024, 5, 1, tzinfo=UTC))
