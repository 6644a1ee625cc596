"""Design rule 6 through the store: a compatible change (an added nullable field) updates the
view in place, over the same history; a breaking one is refused — changing nothing — unless a
new version is asked for, which gets fresh storage while the old version stays readable as
``view@vN:feature``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from store.helpers import USER, online
from strato import (
    BreakingChangeError,
    DefinitionError,
    Entity,
    FeatureStore,
    FeatureView,
    Field,
    Float64,
    Int64,
    NotFoundError,
    String,
    UserError,
)
from strato.definitions.plan import Action

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
V1 = FeatureView("profile", entities=[USER], schema=[Field("x", Int64), Field("country", String)])
ADDED = FeatureView(
    "profile", entities=[USER], schema=[Field("x", Int64), Field("country", String), Field("spend", Float64)]
)
RETYPED = FeatureView("profile", entities=[USER], schema=[Field("x", String), Field("country", String)])
REMOVED = FeatureView("profile", entities=[USER], schema=[Field("x", Int64)])
FAR = T0 + timedelta(days=30)


@pytest.fixture
def applied(store: FeatureStore) -> FeatureStore:
    plan = store.apply([USER, V1])
    assert [(c.name, c.action) for c in plan.changes] == [("user", Action.ADD), ("profile", Action.ADD)]
    store.write("profile", [{"user_id": 1, "event_timestamp": T0, "x": 1, "country": "fr"}])
    return store


def test_applying_the_same_definitions_again_changes_nothing(applied: FeatureStore) -> None:
    plan = applied.apply([USER, V1])
    assert not plan.has_changes
    assert applied.get_feature_view("profile").version == 1
    assert [r.version for r in applied.history("feature_view", "profile")] == [1]


def test_an_added_nullable_field_updates_in_place(applied: FeatureStore) -> None:
    store = applied
    before = store.get_feature_view("profile")
    plan = store.apply([USER, ADDED])
    (change,) = [c for c in plan.changes if c.name == "profile"]
    assert change.action is Action.UPDATE
    assert change.details == ("adds field spend",)
    after = store.get_feature_view("profile")
    assert after.version == 2
    assert after.table_name == before.table_name  # same storage: history is kept
    assert after.feature_names == ("x", "country", "spend")

    # Old rows read the new field as null, before and after rows that carry it.
    spine = [{"user_id": 1, "event_timestamp": FAR}]
    table = store.get_historical_features(spine, ["profile:x", "profile:spend"]).table
    assert table.select(["x", "spend"]).to_pylist() == [{"x": 1, "spend": None}]
    result = store.write("profile", [{"user_id": 2, "event_timestamp": T0, "x": 2, "country": "de", "spend": 9.5}])
    assert result.table_version == 1
    spine = [{"user_id": 1, "event_timestamp": FAR}, {"user_id": 2, "event_timestamp": FAR}]
    table = store.get_historical_features(spine, ["profile:x", "profile:spend"]).table
    assert table.select(["x", "spend"]).to_pylist() == [{"x": 1, "spend": None}, {"x": 2, "spend": 9.5}]
    assert online(store, ["profile:x", "profile:spend"], [1, 2]) == {
        "user_id": [1, 2],
        "x": [1, 2],
        "spend": [None, 9.5],
    }
    assert [r.version for r in store.history("feature_view", "profile")] == [1, 2]


def test_a_training_set_is_rebuilt_after_a_compatible_change(applied: FeatureStore) -> None:
    """`TrainingSet.versions` names storage, which a compatible change keeps (rules 5 and 6)."""
    store = applied
    spine = [{"user_id": 1, "event_timestamp": FAR}]
    before = store.get_historical_features(spine, ["profile:x"])
    assert before.versions == {"profile@v1": 0}
    store.apply([USER, ADDED])
    store.write(
        "profile", [{"user_id": 1, "event_timestamp": T0 + timedelta(hours=1), "x": 5, "country": "fr", "spend": None}]
    )
    rebuilt = store.get_historical_features(spine, ["profile:x"], versions=before.versions)
    assert rebuilt.table.equals(before.table)
    assert store.get_historical_features(spine, ["profile:x"]).table.column("x").to_pylist() == [5]


@pytest.mark.parametrize(("changed", "what"), [(RETYPED, "x"), (REMOVED, "country")])
def test_a_breaking_change_is_refused_and_changes_nothing(
    applied: FeatureStore, changed: FeatureView, what: str
) -> None:
    store = applied
    plan = store.plan([USER, changed])
    assert [c.name for c in plan.breaking] == ["profile"]
    with pytest.raises(BreakingChangeError, match=f"profile.*{what}") as info:
        store.apply([USER, changed])
    assert "--new-version" in str(info.value)
    current = store.get_feature_view("profile")
    assert current.version == 1
    assert current.feature_names == ("x", "country")
    assert [r.version for r in store.history("feature_view", "profile")] == [1]
    assert online(store, ["profile:x"], [1])["x"] == [1]


def test_a_breaking_change_as_a_new_version_gets_fresh_storage(applied: FeatureStore) -> None:
    store = applied
    old = store.get_feature_view("profile")
    with pytest.raises(BreakingChangeError, match=r"cannot be filled from version 1's history \(retypes x"):
        store.apply([USER, RETYPED], new_version=["profile"])  # a retyped field cannot take the old rows
    assert store.get_feature_view("profile").version == 1
    plan = store.apply([USER, RETYPED], new_version=["profile"], start_empty=["profile"])
    assert [c.action for c in plan.changes if c.name == "profile"] == [Action.NEW_VERSION]
    new = store.get_feature_view("profile")
    assert new.version == 2
    assert new.table_name != old.table_name
    assert store.delta.version(new.table_name) is None
    assert store.delta.version(old.table_name) == 1  # the retire commit: no more writes land there

    store.write("profile", [{"user_id": 1, "event_timestamp": T0, "x": "one", "country": "it"}])
    spine = [{"user_id": 1, "event_timestamp": FAR}]
    ts = store.get_historical_features(spine, ["profile@v1:x", "profile@v1:country"])
    assert ts.table.select(["x", "country"]).to_pylist() == [{"x": 1, "country": "fr"}]
    assert ts.versions == {"profile@v1": 1}  # its last version: the retire commit, no rows
    now = store.get_historical_features(spine, ["profile:x"])
    assert now.table.column("x").to_pylist() == ["one"]
    assert now.versions == {"profile@v2": 0}
    assert online(store, ["profile@v1:x"], [1])["x"] == [1]
    assert online(store, ["profile:x"], [1])["x"] == ["one"]
    assert store.get_feature_view("profile", version=1).feature("x").dtype == Int64


def test_unknown_versions_and_deleted_views_are_not_found(applied: FeatureStore) -> None:
    store = applied
    with pytest.raises(NotFoundError, match=r"profile.*version 7"):
        store.get_historical_features([{"user_id": 1, "event_timestamp": FAR}], ["profile@v7:x"])
    store.apply([], delete=[("feature_view", "profile")])
    with pytest.raises(NotFoundError, match="'profile'"):
        store.write("profile", [{"user_id": 1, "event_timestamp": T0, "x": 1, "country": "fr"}])


def test_a_view_with_an_undefined_entity_is_refused(store: FeatureStore) -> None:
    other = Entity("card", join_keys={"card_id": Int64})
    view = FeatureView("cards", entities=[other], schema=[Field("x", Int64)])
    with pytest.raises(DefinitionError, match=r"'cards'.*'card'"):
        store.apply([view])
    assert store.list_feature_views() == []


def test_two_versions_side_by_side_with_full_feature_names(applied: FeatureStore) -> None:
    store = applied
    store.apply([USER, RETYPED], new_version=["profile"], start_empty=["profile"])
    store.write("profile", [{"user_id": 1, "event_timestamp": T0, "x": "one", "country": "it"}])
    refs = ["profile@v1:x", "profile:x"]
    spine = [{"user_id": 1, "event_timestamp": FAR}]
    with pytest.raises(UserError, match="appear twice"):
        store.get_historical_features(spine, refs)
    table = store.get_historical_features(spine, refs, full_feature_names=True).table
    assert table.select(["profile_v1__x", "profile__x"]).to_pylist() == [{"profile_v1__x": 1, "profile__x": "one"}]
    response = store.get_online_features(refs, [{"user_id": 1}], full_feature_names=True).to_dict()
    assert response == {"user_id": [1], "profile_v1__x": [1], "profile__x": ["one"]}
