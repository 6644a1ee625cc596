"""Materialization watermarks: where the last load of each view into the online store ended."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from registry_samples import USER, OpenRegistry, apply, service, view

from strato.errors import NotFoundError, UserError
from strato.registry.base import RegistryStore

MAY = datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=UTC)


@pytest.fixture
def with_view(registry: RegistryStore) -> RegistryStore:
    apply(registry, [USER, view(), view(name="other")])
    return registry


def test_a_view_never_materialized_has_no_watermark(with_view: RegistryStore) -> None:
    assert with_view.get_watermark("user_stats") is None


def test_watermarks_round_trip_to_the_microsecond_in_utc(with_view: RegistryStore) -> None:
    with_view.set_watermark("user_stats", MAY)

    until = with_view.get_watermark("user_stats")

    assert until == MAY
    assert until is not None
    assert until.utcoffset() == timedelta(0)
    assert with_view.get_watermark("other") is None


def test_other_timezones_are_converted_and_naive_times_are_utc(with_view: RegistryStore) -> None:
    with_view.set_watermark("user_stats", MAY.astimezone(timezone(timedelta(hours=-7))))
    with_view.set_watermark("other", MAY.replace(tzinfo=None))

    assert with_view.get_watermark("user_stats") == MAY
    assert with_view.get_watermark("other") == MAY


def test_setting_again_replaces_the_watermark(with_view: RegistryStore) -> None:
    with_view.set_watermark("user_stats", MAY)
    with_view.set_watermark("user_stats", MAY + timedelta(days=1))
    assert with_view.get_watermark("user_stats") == MAY + timedelta(days=1)

    # The registry records what it is told; whether to move backwards is the caller's call.
    with_view.set_watermark("user_stats", MAY - timedelta(days=1))
    assert with_view.get_watermark("user_stats") == MAY - timedelta(days=1)


def test_an_unknown_view_gets_no_watermark(with_view: RegistryStore) -> None:
    with pytest.raises(NotFoundError, match=r"feature view 'user_stat' does not exist; did you mean 'user_stats'"):
        with_view.set_watermark("user_stat", MAY)
    with pytest.raises(UserError, match="must be a datetime"):
        with_view.set_watermark("user_stats", "2024-05-01")  # type: ignore[arg-type]


def test_a_compatible_update_keeps_the_watermark(with_view: RegistryStore) -> None:
    with_view.set_watermark("user_stats", MAY)

    apply(with_view, [USER, view(("amount", "float64"), ("n", "int64"))])

    assert with_view.get_watermark("user_stats") == MAY


def test_fresh_storage_starts_without_a_watermark(with_view: RegistryStore) -> None:
    """A new version's storage holds nothing yet: incremental materialization must start over."""
    with_view.set_watermark("user_stats", MAY)
    with_view.set_watermark("other", MAY)

    apply(with_view, [USER, view(("n", "int64"))], new_version=["user_stats"])

    assert with_view.get_watermark("user_stats") is None
    assert with_view.get_watermark("other") == MAY


def test_deleting_a_view_drops_its_watermark(with_view: RegistryStore) -> None:
    with_view.set_watermark("user_stats", MAY)
    apply(with_view, [], delete=[("feature_view", "user_stats")])

    assert with_view.get_watermark("user_stats") is None
    with pytest.raises(NotFoundError, match="does not exist"):
        with_view.set_watermark("user_stats", MAY)
    apply(with_view, [USER, view()])
    assert with_view.get_watermark("user_stats") is None


def test_watermarks_survive_reopening(open_registry: OpenRegistry) -> None:
    first = open_registry()
    apply(first, [USER, view(), service()])
    first.set_watermark("user_stats", MAY)
    first.close()

    assert open_registry().get_watermark("user_stats") == MAY
