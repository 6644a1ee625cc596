"""Write statistics: per storage and Delta version, what the write that committed it held."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from registry_samples import OpenRegistry

from strato.registry.base import RegistryStore, WriteStats

MAY = datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=UTC)
COLUMNS = {"amount": {"count": 3, "nulls": 1, "min": -1.5, "max": 2.0, "quantiles": {"p50": 0.5}}}


def test_a_storage_never_written_has_no_stats(registry: RegistryStore) -> None:
    assert registry.write_stats("tx__v1") == []


def test_stats_round_trip_newest_first_with_a_limit(registry: RegistryStore) -> None:
    for version in range(4):
        registry.record_write_stats("tx__v1", WriteStats(version, MAY + timedelta(minutes=version), 10, COLUMNS, 2))
    got = registry.write_stats("tx__v1")
    assert [s.version for s in got] == [3, 2, 1, 0]
    assert got[0] == WriteStats(3, MAY + timedelta(minutes=3), 10, COLUMNS, 2)
    assert got[0].written_at.utcoffset() == timedelta(0)
    assert [s.version for s in registry.write_stats("tx__v1", limit=2)] == [3, 2]
    assert registry.write_stats("tx__v2") == []  # per storage, not per view name


def test_recording_a_version_again_replaces_it(registry: RegistryStore) -> None:
    registry.record_write_stats("tx__v1", WriteStats(1, MAY, 10, COLUMNS))
    registry.record_write_stats("tx__v1", WriteStats(1, MAY, 7, {"amount": {"count": 7, "nulls": 0}}))
    assert registry.write_stats("tx__v1") == [WriteStats(1, MAY, 7, {"amount": {"count": 7, "nulls": 0}})]


def test_stats_are_per_project(open_registry: OpenRegistry) -> None:
    a, b = open_registry("a"), open_registry("b")
    a.record_write_stats("tx__v1", WriteStats(1, MAY, 10, COLUMNS))
    assert b.write_stats("tx__v1") == []
    assert [s.rows for s in a.write_stats("tx__v1")] == [10]
