"""Plan → apply → read round trips: what each plan action writes, and that a plan is atomic."""

from __future__ import annotations

from datetime import timedelta

import pytest
from registry_samples import CARD, USER, OpenRegistry, apply, service, view

from strato.definitions.entity import Entity
from strato.definitions.feature_service import FeatureService
from strato.definitions.feature_view import FeatureView
from strato.definitions.plan import Action, Change, ObjectKind, Plan, make_plan
from strato.errors import BreakingChangeError, ConflictError, NotFoundError, UserError
from strato.registry.base import RegistryStore

_OBJECTS: tuple[tuple[ObjectKind, str], ...] = (
    ("entity", "user"),
    ("feature_view", "user_stats"),
    ("feature_service", "fraud"),
)


def _snapshot(registry: RegistryStore) -> dict[tuple[ObjectKind, str], list[tuple[int, str]]]:
    """Every object's history as (version, action) pairs, to prove nothing was written."""
    return {(kind, name): [(r.version, r.action) for r in registry.history(kind, name)] for kind, name in _OBJECTS}


def test_add_round_trips_every_kind(registry: RegistryStore) -> None:
    revisions = apply(registry, [USER, view(), service()])

    assert [(r.kind, r.name, r.version, r.action, r.data_version) for r in revisions] == [
        ("entity", "user", 1, "add", None),
        ("feature_view", "user_stats", 1, "add", 1),
        ("feature_service", "fraud", 1, "add", None),
    ]
    current = registry.current()
    assert set(current) == {("entity", "user"), ("feature_view", "user_stats"), ("feature_service", "fraud")}
    assert current[("entity", "user")] == USER
    fv = registry.get("feature_view", "user_stats")
    assert isinstance(fv, FeatureView)
    assert fv == view().with_versions(1, 1)
    assert fv.entities == (USER,)
    assert fv.table_name == "user_stats__v1"
    svc = registry.get("feature_service", "fraud")
    assert isinstance(svc, FeatureService)
    assert (svc.version, svc.feature_refs) == (1, ("user_stats:amount",))


def test_reapplying_the_same_definitions_writes_nothing(registry: RegistryStore) -> None:
    apply(registry, [USER, view(), service()])

    plan = make_plan([USER, view(), service()], registry.current())
    assert not plan.has_changes
    assert {c.action for c in plan.changes} == {Action.UNCHANGED}
    assert registry.apply(plan, author="bob") == []
    assert _snapshot(registry) == {
        ("entity", "user"): [(1, "add")],
        ("feature_view", "user_stats"): [(1, "add")],
        ("feature_service", "fraud"): [(1, "add")],
    }


def test_compatible_update_bumps_version_and_keeps_storage(registry: RegistryStore) -> None:
    apply(registry, [USER, view()])

    (revision,) = apply(registry, [USER, view(("amount", "float64"), ("count", "int64"))])

    assert (revision.action, revision.version, revision.data_version) == ("update", 2, 1)
    fv = registry.get("feature_view", "user_stats")
    assert isinstance(fv, FeatureView)
    assert (fv.version, fv.data_version, fv.feature_names) == (2, 1, ("amount", "count"))
    assert fv.table_name == "user_stats__v1"  # old rows stay readable: same storage


@pytest.mark.parametrize(
    "changed",
    [
        pytest.param(view(("amount", "int64")), id="retyped-field"),
        pytest.param(view(("other", "float64")), id="removed-field"),
        pytest.param(view(entity=CARD), id="other-join-keys"),
    ],
)
def test_breaking_change_is_refused_and_the_whole_plan_is_dropped(
    registry: RegistryStore, changed: FeatureView
) -> None:
    apply(registry, [USER, CARD, view(), service()])
    before = _snapshot(registry)

    # The same plan also adds an entity and updates the service: none of it may land.
    merchant = Entity("merchant", {"merchant_id": "int64"})
    fraud = FeatureService("fraud", [f"user_stats:{changed.feature_names[0]}"], description="changed")
    plan = make_plan([USER, CARD, changed, merchant, fraud], registry.current())
    assert {c.name: c.action for c in plan.changes}["fraud"] is Action.UPDATE
    assert [c.name for c in plan.breaking] == ["user_stats"]
    with pytest.raises(BreakingChangeError, match="user_stats"):
        registry.apply(plan, author="bob")

    assert _snapshot(registry) == before
    assert ("entity", "merchant") not in registry.current()
    fv = registry.get("feature_view", "user_stats")
    assert isinstance(fv, FeatureView)
    assert fv.version == 1


def test_breaking_entity_change_is_refused(registry: RegistryStore) -> None:
    apply(registry, [USER])

    plan = make_plan([Entity("user", {"user_id": "string"})], registry.current())
    with pytest.raises(BreakingChangeError, match="user"):
        registry.apply(plan, author="bob")
    assert registry.get("entity", "user") == USER


def test_new_version_gets_fresh_storage_and_old_version_stays_readable(registry: RegistryStore) -> None:
    apply(registry, [USER, view(("amount", "float64"), ("count", "int64"))])

    (revision,) = apply(registry, [USER, view(("amount", "float64"))], new_version=["user_stats"])

    assert (revision.action, revision.version, revision.data_version) == ("new version", 2, 2)
    new = registry.get("feature_view", "user_stats")
    old = registry.get("feature_view", "user_stats", version=1)
    assert isinstance(new, FeatureView)
    assert isinstance(old, FeatureView)
    assert (new.version, new.data_version, new.feature_names) == (2, 2, ("amount",))
    assert (old.version, old.data_version, old.feature_names) == (1, 1, ("amount", "count"))
    assert new.table_name != old.table_name


def test_new_version_can_be_asked_for_without_a_breaking_change(registry: RegistryStore) -> None:
    apply(registry, [USER, view()])

    (revision,) = apply(registry, [USER, view()], new_version=["user_stats"])

    assert (revision.action, revision.version, revision.data_version) == ("new version", 2, 2)


def test_update_after_new_version_shares_the_new_storage(registry: RegistryStore) -> None:
    apply(registry, [USER, view(("a", "float64"), ("b", "float64"))])
    apply(registry, [USER, view(("a", "float64"))], new_version=["user_stats"])

    (revision,) = apply(registry, [USER, view(("a", "float64"), ("c", "float64"))])

    assert (revision.version, revision.data_version) == (3, 2)


def test_delete_hides_the_object_but_old_versions_stay_readable(registry: RegistryStore) -> None:
    apply(registry, [USER, view(), service()])

    revisions = apply(registry, [], delete=[("feature_service", "fraud"), ("feature_view", "user_stats")])

    assert [(r.kind, r.version, r.action, r.data_version) for r in revisions] == [
        ("feature_service", 2, "delete", None),
        ("feature_view", 2, "delete", None),
    ]
    assert set(registry.current()) == {("entity", "user")}
    assert registry.list("feature_view") == []
    with pytest.raises(NotFoundError, match=r"feature view 'user_stats' was deleted.*version=N"):
        registry.get("feature_view", "user_stats")
    old = registry.get("feature_view", "user_stats", version=1)
    assert isinstance(old, FeatureView)
    assert (old.version, old.data_version, old.feature_names) == (1, 1, ("amount",))
    old_service = registry.get("feature_service", "fraud", version=1)
    assert isinstance(old_service, FeatureService)


def test_delete_then_add_again_continues_the_versions_with_fresh_storage(registry: RegistryStore) -> None:
    apply(registry, [USER, view()])
    apply(registry, [], delete=[("feature_view", "user_stats")])

    (revision,) = apply(registry, [USER, view(("amount", "float64"), ("count", "int64"))])

    assert (revision.action, revision.version, revision.data_version) == ("add", 3, 3)
    fv = registry.get("feature_view", "user_stats")
    assert isinstance(fv, FeatureView)
    assert (fv.version, fv.data_version, fv.feature_names) == (3, 3, ("amount", "count"))
    assert [r.action for r in registry.history("feature_view", "user_stats")] == ["add", "delete", "add"]


def test_entities_and_services_count_versions_without_storage(registry: RegistryStore) -> None:
    apply(registry, [USER, view(("a", "float64"), ("b", "float64")), service("user_stats:a")])

    revisions = apply(
        registry,
        [Entity("user", {"user_id": "int64"}, description="renamed"), service("user_stats:a", "user_stats:b")],
    )

    assert [(r.kind, r.version, r.action, r.data_version) for r in revisions] == [
        ("entity", 2, "update", None),
        ("feature_service", 2, "update", None),
    ]
    svc = registry.get("feature_service", "fraud")
    assert isinstance(svc, FeatureService)
    assert (svc.version, svc.feature_refs) == (2, ("user_stats:a", "user_stats:b"))
    fv = registry.get("feature_view", "user_stats")
    assert isinstance(fv, FeatureView)
    assert fv.entities[0].description == "renamed"  # a current view reads the current entities


def test_an_empty_plan_writes_nothing(registry: RegistryStore) -> None:
    assert registry.apply(Plan(), author="alice") == []
    assert registry.current() == {}


def test_a_stale_plan_is_refused_whole(open_registry: OpenRegistry) -> None:
    first, second = open_registry(), open_registry()
    apply(first, [USER, view()])
    stale = make_plan([USER, view(("amount", "float64"), ("b", "int64")), CARD], first.current())
    apply(second, [USER, view(("amount", "float64"), ("c", "int64"))])  # lands in between

    with pytest.raises(ConflictError, match=r"registry changed since this plan; re-plan .*now version 2"):
        first.apply(stale, author="alice")

    assert ("entity", "card") not in first.current()
    assert [r.version for r in first.history("feature_view", "user_stats")] == [1, 2]


@pytest.mark.parametrize(
    "concurrent",
    [{"owner": "bob"}, {"ttl": timedelta(hours=3)}, {"description": "edited"}],
    ids=["owner", "ttl", "description"],
)
def test_a_stale_plan_cannot_revert_a_concurrent_change(
    open_registry: OpenRegistry, concurrent: dict[str, object]
) -> None:
    """Issue 7 item 3: A plans "add field y", B changes the owner (or ttl); A must be refused.

    Same actions (an update of user_stats) on both sides: only the basis tells them apart.
    """
    a, b = open_registry(), open_registry()
    apply(a, [USER, view()])
    plan_a = make_plan([USER, view(("amount", "float64"), ("y", "int64"))], a.current())
    changed = view(**concurrent)  # type: ignore[arg-type]
    apply(b, [USER, changed])

    with pytest.raises(ConflictError, match=r"^registry changed since this plan; re-plan \(feature view 'user_stats'"):
        a.apply(plan_a, author="alice")

    after = a.get("feature_view", "user_stats")
    assert isinstance(after, FeatureView)
    assert after.to_spec() == changed.to_spec()  # B's change is intact
    assert [r.version for r in a.history("feature_view", "user_stats")] == [1, 2]
    # Re-planned against the registry as it is now, A's change applies on top of B's.
    apply(a, [USER, view(("amount", "float64"), ("y", "int64"), **concurrent)])  # type: ignore[arg-type]
    assert a.get("feature_view", "user_stats").version == 3  # type: ignore[union-attr]


def test_a_plan_is_stale_when_an_object_it_depends_on_changed(open_registry: OpenRegistry) -> None:
    """A view's plan was decided with its entity as it was; a service's with its views."""
    a, b = open_registry(), open_registry()
    apply(a, [USER, view(("amount", "float64"), ("n", "int64"))])
    plan_a = make_plan([service("user_stats:n")], a.current())
    apply(b, [USER, view(("amount", "float64"))], new_version=["user_stats"])  # n removed meanwhile

    with pytest.raises(ConflictError, match="feature view 'user_stats' is now version 2"):
        a.apply(plan_a, author="alice")
    assert ("feature_service", "fraud") not in a.current()


def test_a_plan_with_no_concurrent_change_applies(open_registry: OpenRegistry) -> None:
    a, b = open_registry(), open_registry()
    apply(a, [USER, view(), CARD])
    plan_a = make_plan([USER, view(("amount", "float64"), ("y", "int64"))], a.current())
    apply(b, [CARD.__class__("card", join_keys={"card_id": "string"}, description="unrelated")])

    assert [r.version for r in a.apply(plan_a, author="alice")] == [2]


def test_a_service_can_pin_an_older_view_version(registry: RegistryStore) -> None:
    apply(registry, [USER, view(("amount", "float64"), ("n", "int64"))])
    apply(registry, [USER, view(("amount", "float64"))], new_version=["user_stats"])

    apply(registry, [service("user_stats@v1:n", "user_stats:amount")])
    svc = registry.get("feature_service", "fraud")
    assert isinstance(svc, FeatureService)
    assert svc.feature_refs == ("user_stats@v1:n", "user_stats:amount")
    with pytest.raises(UserError, match=r"user_stats@v2:n, but the view has no such feature"):
        apply(registry, [service("user_stats@v2:n")])
    with pytest.raises(NotFoundError, match="pins feature view 'user_stats' version 9"):
        apply(registry, [service("user_stats@v9:amount")])


def test_a_plan_that_does_not_match_the_registry_is_refused(registry: RegistryStore) -> None:
    apply(registry, [USER])

    with pytest.raises(UserError, match="plan says 'add'"):
        registry.apply(Plan((Change("entity", "user", Action.ADD, definition=USER),)), author="alice")
    with pytest.raises(UserError, match="not in the registry"):
        registry.apply(Plan((Change("feature_view", "nope", Action.DELETE),)), author="alice")
    with pytest.raises(UserError, match="carries no definition"):
        registry.apply(Plan((Change("entity", "card", Action.ADD),)), author="alice")
    with pytest.raises(UserError, match="carries entity 'card'"):
        registry.apply(Plan((Change("entity", "user2", Action.ADD, definition=CARD),)), author="alice")
    assert [r.version for r in registry.history("entity", "user")] == [1]


def test_apply_needs_an_author(registry: RegistryStore) -> None:
    plan = make_plan([USER], registry.current())
    with pytest.raises(UserError, match="author"):
        registry.apply(plan, author="  ")
    assert registry.current() == {}
