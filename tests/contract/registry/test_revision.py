"""`revision()`: a counter that any apply — by this handle or another — makes grow, per project."""

from __future__ import annotations

from datetime import UTC, datetime

from registry_samples import USER, OpenRegistry, apply, view

from strato.registry.base import OnlineProgress, RegistryStore


def test_revision_counts_applies_seen_from_every_handle(registry: RegistryStore, open_registry: OpenRegistry) -> None:
    other = open_registry()  # another process's handle on the same database and project
    start = registry.revision()
    assert other.revision() == start
    apply(registry, [USER, view()])
    assert registry.revision() > start
    assert other.revision() == registry.revision()
    after_first = other.revision()
    apply(other, [USER, view(("amount", "float64"), ("count", "int64"))])
    assert registry.revision() > after_first


def test_a_plan_without_changes_and_online_progress_leave_it_alone(registry: RegistryStore) -> None:
    apply(registry, [USER, view()])
    before = registry.revision()
    apply(registry, [USER, view()])  # nothing changed
    registry.advance_online_progress(
        "user_stats__v1", OnlineProgress(0, datetime(2026, 1, 1, tzinfo=UTC)), expected=None
    )
    assert registry.revision() == before


def test_projects_count_apart(registry: RegistryStore, open_registry: OpenRegistry) -> None:
    elsewhere = open_registry("elsewhere")
    before = elsewhere.revision()
    apply(registry, [USER, view()])
    assert elsewhere.revision() == before
