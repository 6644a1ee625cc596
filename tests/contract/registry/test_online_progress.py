"""Online progress: per storage, how much of its history is known to be in the online store."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from registry_samples import OpenRegistry

from strato.registry.base import OnlineProgress, RegistryStore

MAY = datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=UTC)


def test_storage_never_loaded_has_no_progress(registry: RegistryStore) -> None:
    assert registry.online_progress("user_stats__v1") is None


def test_progress_round_trips_to_the_microsecond_in_utc(registry: RegistryStore) -> None:
    assert registry.advance_online_progress("user_stats__v1", OnlineProgress(3, MAY), expected=None)
    got = registry.online_progress("user_stats__v1")
    assert got == OnlineProgress(3, MAY)
    assert got is not None
    assert got.until is not None
    assert got.until.utcoffset() == timedelta(0)
    assert registry.online_progress("user_stats__v2") is None  # per storage, not per view name


def test_unbounded_progress_round_trips(registry: RegistryStore) -> None:
    assert registry.advance_online_progress("t", OnlineProgress(0), expected=None)
    assert registry.online_progress("t") == OnlineProgress(0, None)
    assert registry.advance_online_progress("t", OnlineProgress(1), expected=OnlineProgress(0))
    assert registry.online_progress("t") == OnlineProgress(1, None)


def test_advance_is_a_compare_and_set(registry: RegistryStore) -> None:
    assert registry.advance_online_progress("t", OnlineProgress(1, MAY), expected=None)
    # Someone else's view of the state is stale: refused, state untouched.
    assert not registry.advance_online_progress("t", OnlineProgress(5, MAY), expected=None)
    assert not registry.advance_online_progress("t", OnlineProgress(5, MAY), expected=OnlineProgress(0, MAY))
    assert not registry.advance_online_progress("t", OnlineProgress(5, MAY), expected=OnlineProgress(1, None))
    assert registry.online_progress("t") == OnlineProgress(1, MAY)
    assert registry.advance_online_progress("t", OnlineProgress(2, MAY), expected=OnlineProgress(1, MAY))
    assert registry.online_progress("t") == OnlineProgress(2, MAY)


def test_concurrent_advances_from_one_state_let_exactly_one_win(open_registry: OpenRegistry) -> None:
    first = open_registry()
    first.advance_online_progress("t", OnlineProgress(0), expected=None)
    results: list[bool] = []

    def advance(to: int) -> None:
        with open_registry() as mine:
            results.append(mine.advance_online_progress("t", OnlineProgress(to), expected=OnlineProgress(0)))

    threads = [threading.Thread(target=advance, args=(n,)) for n in range(1, 6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 4 + [True]
    assert first.online_progress("t") in [OnlineProgress(n) for n in range(1, 6)]


def test_progress_survives_reopening(open_registry: OpenRegistry) -> None:
    with open_registry() as first:
        first.advance_online_progress("t", OnlineProgress(7, MAY), expected=None)
    assert open_registry().online_progress("t") == OnlineProgress(7, MAY)


def test_progress_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="version"):
        OnlineProgress(-1)
    with pytest.raises(ValueError, match="timezone"):
        OnlineProgress(1, MAY.replace(tzinfo=None))
