"""Computed intervals of batch transformations: per storage and query fingerprint, the
event-time intervals already computed, merged on every record (`strato.intervals`)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from registry_samples import OpenRegistry

from strato.errors import UserError
from strato.registry.base import RegistryStore

T0 = datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=UTC)
H = timedelta(hours=1)


def test_nothing_is_computed_at_first(registry: RegistryStore) -> None:
    assert registry.computed_intervals("daily__v1", "abc") == []


def test_intervals_round_trip_to_the_microsecond_and_merge(registry: RegistryStore) -> None:
    assert registry.add_computed_interval("daily__v1", "abc", (T0, T0 + H)) == [(T0, T0 + H)]
    assert registry.add_computed_interval("daily__v1", "abc", (T0 + 3 * H, T0 + 4 * H)) == [
        (T0, T0 + H),
        (T0 + 3 * H, T0 + 4 * H),
    ]
    # Filling the gap joins all three; the record stays disjoint.
    assert registry.add_computed_interval("daily__v1", "abc", (T0 + H, T0 + 3 * H)) == [(T0, T0 + 4 * H)]
    [(start, end)] = registry.computed_intervals("daily__v1", "abc")
    assert (start, end) == (T0, T0 + 4 * H)
    assert start.utcoffset() == timedelta(0)
    # Keyed by storage and by transformation fingerprint.
    assert registry.computed_intervals("daily__v2", "abc") == []
    assert registry.computed_intervals("daily__v1", "other") == []


def test_an_interval_in_another_zone_is_stored_in_utc(registry: RegistryStore) -> None:
    paris = T0.astimezone(ZoneInfo("Europe/Paris"))
    registry.add_computed_interval("t", "f", (paris, paris + H))
    assert registry.computed_intervals("t", "f") == [(T0, T0 + H)]


def test_naive_times_are_refused(registry: RegistryStore) -> None:
    with pytest.raises(UserError, match="timezone-aware"):
        registry.add_computed_interval("t", "f", (T0.replace(tzinfo=None), T0.replace(tzinfo=None) + H))


def test_concurrent_records_lose_nothing(open_registry: OpenRegistry) -> None:
    open_registry()  # the project row exists before the threads race

    def record(i: int) -> None:
        with open_registry() as mine:
            mine.add_computed_interval("t", "f", (T0 + 2 * i * H, T0 + (2 * i + 1) * H))

    threads = [threading.Thread(target=record, args=(i,)) for i in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert open_registry().computed_intervals("t", "f") == [(T0 + 2 * i * H, T0 + (2 * i + 1) * H) for i in range(5)]


def test_intervals_survive_reopening(open_registry: OpenRegistry) -> None:
    with open_registry() as first:
        first.add_computed_interval("t", "f", (T0, T0 + H))
    assert open_registry().computed_intervals("t", "f") == [(T0, T0 + H)]
    assert open_registry("other").computed_intervals("t", "f") == []  # per project
