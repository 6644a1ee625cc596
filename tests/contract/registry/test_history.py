"""History: every revision of an object, in order, with who applied it, when, and what it was."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from registry_samples import USER, apply, service, view

from strato.errors import NotFoundError
from strato.registry.base import RegistryStore


def test_history_lists_actions_authors_and_times_in_order(registry: RegistryStore) -> None:
    before = datetime.now(UTC)
    apply(registry, [USER, view()], author="alice")
    apply(registry, [USER, view(("amount", "float64"), ("n", "int64"))], author="bob")
    apply(registry, [USER, view(("n", "int64"))], new_version=["user_stats"], author="carol")
    apply(registry, [], delete=[("feature_view", "user_stats")], author="dave")
    after = datetime.now(UTC)

    history = registry.history("feature_view", "user_stats")

    assert [(r.version, r.action, r.author, r.data_version) for r in history] == [
        (1, "add", "alice", 1),
        (2, "update", "bob", 1),
        (3, "new version", "carol", 3),
        (4, "delete", "dave", None),
    ]
    times = [r.applied_at for r in history]
    assert all(t.tzinfo is not None and t.utcoffset() == UTC.utcoffset(t) for t in times)
    assert before <= times[0] <= times[1] <= times[2] <= times[3] <= after
    assert {(r.kind, r.name) for r in history} == {("feature_view", "user_stats")}


def test_each_revision_carries_the_spec_it_stored(registry: RegistryStore) -> None:
    first, second = view(), view(("amount", "float64"), ("n", "int64"))
    apply(registry, [USER, first])
    apply(registry, [USER, second])
    apply(registry, [], delete=[("feature_view", "user_stats")])

    specs = [r.spec for r in registry.history("feature_view", "user_stats")]

    # A deletion records what it removed, so history alone tells the whole story.
    assert specs == [first.to_spec(), second.to_spec(), second.to_spec()]


def test_revisions_returned_by_apply_are_the_ones_stored(registry: RegistryStore) -> None:
    returned = apply(registry, [USER, view(), service()])

    stored = [
        *registry.history("entity", "user"),
        *registry.history("feature_view", "user_stats"),
        *registry.history("feature_service", "fraud"),
    ]
    assert stored == returned
    assert len({r.applied_at for r in returned}) == 1  # one apply, one moment


def test_unchanged_objects_get_no_history_rows(registry: RegistryStore) -> None:
    apply(registry, [USER, view()])
    apply(registry, [USER, view()])
    apply(registry, [USER, view(("amount", "float64"), ("n", "int64"))])

    assert [r.version for r in registry.history("entity", "user")] == [1]
    assert [r.version for r in registry.history("feature_view", "user_stats")] == [1, 2]


def test_history_of_an_unknown_object_suggests_close_names(registry: RegistryStore) -> None:
    apply(registry, [USER, view()])
    apply(registry, [], delete=[("feature_view", "user_stats")])

    # A deleted object keeps its history, and its name is still a suggestion.
    assert len(registry.history("feature_view", "user_stats")) == 2
    with pytest.raises(NotFoundError, match=r"feature view 'user_stat' does not exist; did you mean 'user_stats'"):
        registry.history("feature_view", "user_stat")
    with pytest.raises(NotFoundError, match=r"entity 'user_stats' does not exist"):
        registry.history("entity", "user_stats")
