"""`make_plan`: what applying definitions would do, decided without touching any storage."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import pytest

from strato.definitions.entity import Entity
from strato.definitions.feature_service import FeatureService
from strato.definitions.feature_view import FeatureView
from strato.definitions.field import Field
from strato.definitions.plan import Action, Change, Definition, ObjectKind, Plan, kind_of, make_plan
from strato.errors import BreakingChangeError, DefinitionError

USER = Entity("user", join_keys={"user_id": "int64"})
CARD = Entity("card", join_keys={"card_id": "string"})


def view(*fields: tuple[str, str], entity: Entity = USER, name: str = "user_stats", **options: Any) -> FeatureView:
    schema = [Field(n, t) for n, t in (fields or (("amount", "float64"),))]
    return FeatureView(name, entities=[entity], schema=schema, **options)


def registry(*objects: Definition) -> dict[tuple[ObjectKind, str], Definition]:
    """What a registry's `current()` would return for `objects`."""
    return {(kind_of(obj), obj.name): obj for obj in objects}


def actions(plan: Plan) -> dict[str, Action]:
    return {change.name: change.action for change in plan.changes}


def only(plan: Plan, name: str) -> Change:
    (change,) = [c for c in plan.changes if c.name == name]
    return change


def plan_of(desired: Iterable[Definition], current: Iterable[Definition] = (), **options: Any) -> Plan:
    return make_plan(desired, registry(*current), **options)


# ---------------------------------------------------------------------------- add / unchanged


def test_new_objects_are_added() -> None:
    svc = FeatureService("fraud", ["user_stats:amount"])
    plan = plan_of([USER, view(), svc])

    assert [(c.kind, c.name, c.action) for c in plan.changes] == [
        ("entity", "user", Action.ADD),
        ("feature_view", "user_stats", Action.ADD),
        ("feature_service", "fraud", Action.ADD),
    ]
    assert plan.has_changes
    assert only(plan, "user_stats").definition == view()


def test_the_same_definitions_are_unchanged() -> None:
    svc = FeatureService("fraud", ["user_stats:amount"])
    plan = plan_of([USER, view(), svc], [USER, view().with_versions(3, 2), svc])

    assert set(actions(plan).values()) == {Action.UNCHANGED}
    assert not plan.has_changes
    plan.raise_if_breaking()  # nothing to refuse


def test_objects_left_out_are_not_deleted() -> None:
    plan = plan_of([USER], [USER, view()])
    assert actions(plan) == {"user": Action.UNCHANGED}


# ---------------------------------------------------------------------------- compatible changes


@pytest.mark.parametrize(
    ("changed", "detail"),
    [
        (view(("amount", "float64"), ("count", "int64")), "adds field count"),
        (view(ttl=timedelta(days=2)), "ttl_seconds None -> 172800.0"),
        (view(description="new words"), "description '' -> 'new words'"),
        (view(online=False), "online True -> False"),
        (view(tags={"team": "risk"}), "tags"),
        (
            FeatureView("user_stats", entities=[USER], schema=[Field("amount", "float64", "doc")]),
            "updates field amount",
        ),
    ],
)
def test_compatible_view_changes_update_in_place(changed: FeatureView, detail: str) -> None:
    change = only(plan_of([USER, changed], [USER, view()]), "user_stats")

    assert change.action is Action.UPDATE
    assert any(detail in d for d in change.details)


def test_entity_and_service_changes_are_updates() -> None:
    svc = FeatureService("fraud", ["user_stats:amount"])
    plan = plan_of(
        [Entity("user", {"user_id": "int64"}, owner="me"), FeatureService("fraud", [view()], description="v2")],
        [USER, view(), svc],
    )
    assert actions(plan) == {"user": Action.UPDATE, "fraud": Action.UPDATE}
    assert only(plan, "user").details == ("owner '' -> 'me'",)


def test_describing_a_join_key_is_not_a_key_change() -> None:
    """Storage depends on join key names and types only; their docs may change freely."""
    described = Entity("user", [Field("user_id", "int64", description="the customer")])

    plan = plan_of([described, view(entity=described)], [USER, view()])

    assert actions(plan) == {"user": Action.UPDATE, "user_stats": Action.UNCHANGED}
    assert not plan.breaking


# ---------------------------------------------------------------------------- breaking changes


@pytest.mark.parametrize(
    ("changed", "detail"),
    [
        (view(("other", "float64")), "removes field amount"),
        (view(("amount", "int64")), "retypes field amount float64 -> int64"),
        (view(entity=CARD), "join keys ['user_id'] -> ['card_id']"),
    ],
)
def test_breaking_view_changes_are_refused_unless_a_new_version_is_asked_for(changed: FeatureView, detail: str) -> None:
    refused = plan_of([USER, CARD, changed], [USER, CARD, view()])
    change = only(refused, "user_stats")

    assert change.action is Action.BREAKING
    assert detail in change.details
    assert refused.breaking == (change,)
    with pytest.raises(BreakingChangeError, match=r"breaking\s+feature view user_stats.*new version"):
        refused.raise_if_breaking()

    asked = plan_of([USER, CARD, changed], [USER, CARD, view()], new_version=["user_stats"])
    assert only(asked, "user_stats").action is Action.NEW_VERSION
    asked.raise_if_breaking()


def test_a_new_version_can_be_asked_for_without_a_breaking_change() -> None:
    plan = plan_of([USER, view()], [USER, view()], new_version=["user_stats"])
    assert only(plan, "user_stats").action is Action.NEW_VERSION


def test_changing_an_entity_key_is_breaking() -> None:
    plan = plan_of([Entity("user", {"user_id": "string"})], [USER])

    assert only(plan, "user").action is Action.BREAKING
    assert "changes join keys" in only(plan, "user").details
    with pytest.raises(BreakingChangeError, match="entity user"):
        plan.raise_if_breaking()


def test_changing_an_entity_key_used_by_a_view_is_reported_as_breaking() -> None:
    plan = plan_of([Entity("user", {"user_id": "string"})], [USER, view()])
    assert only(plan, "user").action is Action.BREAKING


def test_a_breaking_change_reports_its_compatible_parts_too() -> None:
    change = only(plan_of([USER, view(("b", "int64"))], [USER, view()]), "user_stats")
    assert change.details == ("removes field amount", "adds field b")


# ---------------------------------------------------------------------------- references


def test_a_view_needs_its_entity_defined() -> None:
    with pytest.raises(DefinitionError, match=r"feature view 'user_stats' uses entity 'user', which is not defined"):
        plan_of([view()])


def test_a_view_may_use_an_entity_already_in_the_registry() -> None:
    assert actions(plan_of([view()], [USER])) == {"user_stats": Action.ADD}


def test_a_view_built_with_another_entity_of_the_same_name_is_refused() -> None:
    """Views store their entities by name: the keys must be the ones registered under it."""
    impostor = Entity("user", {"uid": "string"})
    with pytest.raises(DefinitionError, match=r"uses entity 'user' with join keys \[uid: string\].*\[user_id: int64\]"):
        plan_of([view(entity=impostor)], [USER])


def test_a_service_needs_its_views_and_features() -> None:
    with pytest.raises(
        DefinitionError, match=r"feature service 'fraud' uses feature view 'nope', which is not defined"
    ):
        plan_of([USER, view(), FeatureService("fraud", ["nope:amount"])])
    with pytest.raises(DefinitionError, match=r"feature service 'fraud' uses user_stats:missing, but the view has no"):
        plan_of([USER, view(), FeatureService("fraud", ["user_stats:missing"])])


def test_a_service_is_checked_against_the_views_after_the_plan() -> None:
    svc = FeatureService("fraud", ["user_stats:amount"])
    with pytest.raises(DefinitionError, match=r"uses user_stats:amount, but the view has no such feature"):
        plan_of([USER, view(("b", "int64"))], [USER, view(), svc], new_version=["user_stats"])


def test_an_object_defined_twice_is_refused() -> None:
    with pytest.raises(DefinitionError, match=r"feature view 'user_stats' is defined twice"):
        plan_of([USER, view(), view(("b", "int64"))])


def test_only_definitions_can_be_planned() -> None:
    with pytest.raises(DefinitionError, match="not a Strato definition"):
        plan_of([Field("a", "int64")])  # type: ignore[list-item]


# ---------------------------------------------------------------------------- deletes


def test_deletes_are_explicit_and_listed_last() -> None:
    svc = FeatureService("fraud", ["user_stats:amount"])
    plan = plan_of([USER], [USER, view(), svc], delete=[("feature_service", "fraud"), ("feature_view", "user_stats")])

    assert [(c.kind, c.name, c.action) for c in plan.changes] == [
        ("entity", "user", Action.UNCHANGED),
        ("feature_service", "fraud", Action.DELETE),
        ("feature_view", "user_stats", Action.DELETE),
    ]
    assert plan.has_changes


def test_deleting_an_unknown_object_is_refused() -> None:
    with pytest.raises(DefinitionError, match=r"cannot delete feature view 'nope': it is not in the registry"):
        plan_of([], [USER], delete=[("feature_view", "nope")])
    with pytest.raises(DefinitionError, match=r"cannot delete entity 'user_stats'"):
        plan_of([], [USER, view()], delete=[("entity", "user_stats")])


def test_deleting_and_defining_the_same_object_is_refused() -> None:
    with pytest.raises(DefinitionError, match=r"entity 'user' is both defined and asked to be deleted"):
        plan_of([USER], [USER], delete=[("entity", "user")])


def test_deleting_something_still_used_is_refused() -> None:
    svc = FeatureService("fraud", ["user_stats:amount"])
    with pytest.raises(DefinitionError, match=r"feature view 'user_stats' uses entity 'user', which is not defined"):
        plan_of([], [USER, view()], delete=[("entity", "user")])
    with pytest.raises(DefinitionError, match=r"feature service 'fraud' uses feature view 'user_stats'"):
        plan_of([], [USER, view(), svc], delete=[("feature_view", "user_stats")])


def test_naming_a_delete_twice_deletes_once() -> None:
    plan = plan_of([], [USER, view()], delete=[("feature_view", "user_stats"), ("feature_view", "user_stats")])
    assert [(c.name, c.action) for c in plan.changes] == [("user_stats", Action.DELETE)]


# ---------------------------------------------------------------------------- describe


def test_changes_describe_themselves_in_one_line() -> None:
    change = only(plan_of([USER, view(("amount", "float64"), ("n", "int64"))], [USER, view()]), "user_stats")
    assert change.describe() == "update      feature view user_stats: adds field n"
    assert Change("entity", "user", Action.DELETE).describe() == "delete      entity user"
