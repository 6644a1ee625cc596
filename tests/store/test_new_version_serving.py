"""Issue 7 item 4: a new version of a view must not blank serving.

`apply(new_version=[view])` fills the new storage from the old version's history (history
and online) before making it current; services can pin ``view@vN`` and keep reading it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from store.helpers import USER, online
from strato import BreakingChangeError, FeatureService, FeatureStore, FeatureView, Field, Float64, Int64, String
from strato.errors import ConflictError

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
V1 = FeatureView("profile", entities=[USER], schema=[Field("x", Int64), Field("country", String)])
V2 = FeatureView(  # asked for as a new version: a removed field and a new nullable one
    "profile", entities=[USER], schema=[Field("x", Int64), Field("spend", Float64)]
)
ROWS = [
    {"user_id": 1, "event_timestamp": T0, "x": 1, "country": "fr"},
    {"user_id": 1, "event_timestamp": T0 + timedelta(hours=1), "x": 2, "country": "fr"},
    {"user_id": 2, "event_timestamp": T0, "x": 20, "country": "de"},
]
SPINE = [
    {"user_id": 1, "event_timestamp": T0 + timedelta(minutes=30)},
    {"user_id": 1, "event_timestamp": T0 + timedelta(hours=2)},
    {"user_id": 2, "event_timestamp": T0 - timedelta(hours=1)},
    {"user_id": 2, "event_timestamp": T0 + timedelta(hours=2)},
]


@pytest.fixture
def written(store: FeatureStore) -> FeatureStore:
    store.apply([USER, V1, FeatureService("model", ["profile:x"]), FeatureService("pinned", ["profile@v1:x"])])
    store.write("profile", ROWS[:2])
    store.write("profile", ROWS[2:])
    return store


def test_online_reads_keep_their_values_across_a_new_version(written: FeatureStore) -> None:
    store = written
    history_before = store.get_historical_features(SPINE, ["profile:x"]).table.column("x").to_pylist()
    old_table = store.get_feature_view("profile").table_name

    store.apply([USER, V2], new_version=["profile"])

    new = store.get_feature_view("profile")
    assert (new.version, new.table_name) == (2, "profile__v2")
    # Immediately: old values, null for the new field; never NOT_FOUND.
    response = store.get_online_features(["profile:x", "profile:spend"], [{"user_id": 1}, {"user_id": 2}])
    assert response.to_dict() == {"user_id": [1, 2], "x": [2, 20], "spend": [None, None]}
    assert {s.name for codes in response.statuses().values() for s in codes} == {"PRESENT"}
    # The same history, point in time, event and write times kept.
    assert store.get_historical_features(SPINE, ["profile:x"]).table.column("x").to_pylist() == history_before
    assert history_before == [1, 2, None, 20]
    old_rows = store.offline_engine.read(store.delta.snapshot(old_table)).sort_by("x")  # type: ignore[arg-type]
    new_rows = store.offline_engine.read(store.delta.snapshot(new.table_name)).sort_by("x")  # type: ignore[arg-type]
    for column in ("user_id", "event_timestamp", "x", "created_timestamp"):
        assert new_rows.column(column).to_pylist() == old_rows.column(column).to_pylist()
    assert new_rows.column("spend").null_count == 3
    assert "country" not in new_rows.column_names

    # A service pinned to v1 still reads v1; an unpinned one follows the view.
    pinned = store.get_feature_service("pinned")
    assert store.get_online_features(pinned, [{"user_id": 1}]).to_dict() == {"user_id": [1], "x": [2]}
    store.write("profile", [{"user_id": 1, "event_timestamp": T0 + timedelta(hours=3), "x": 3, "spend": 1.5}])
    assert online(store, ["profile:x", "profile:spend"], [1]) == {"user_id": [1], "x": [3], "spend": [1.5]}
    assert store.get_online_features(pinned, [{"user_id": 1}]).to_dict() == {"user_id": [1], "x": [2]}
    model = store.get_feature_service("model")
    assert store.get_online_features(model, [{"user_id": 1}]).to_dict() == {"user_id": [1], "x": [3]}


def test_the_retired_storage_takes_no_more_writes(written: FeatureStore, repo: Path) -> None:
    """A writer holding the old definition is refused (nothing written), then moves on."""
    store = written
    with FeatureStore(repo) as stale:
        old = stale.get_feature_view("profile")
        store.apply([USER, V2], new_version=["profile"])
        before = stale.delta.version(old.table_name)
        row = {"user_id": 3, "event_timestamp": T0, "x": 30, "country": "es"}
        with pytest.raises(ConflictError, match=r"^feature view 'profile' moved to version 2 while writing; nothing"):
            stale.write(old, [row])
        assert stale.delta.version(old.table_name) == before
        assert online(stale, ["profile@v1:x"], [3])["x"] == [None]
        # The refusal refreshed the writer's definitions: the next write goes to version 2.
        result = stale.write("profile", [{"user_id": 3, "event_timestamp": T0, "x": 30, "spend": None}])
        assert (result.table_version, online(stale, ["profile:x"], [3])["x"]) == (1, [30])


def test_a_new_version_that_cannot_take_the_old_rows_is_refused(written: FeatureStore) -> None:
    store = written
    retyped = FeatureView("profile", entities=[USER], schema=[Field("x", String), Field("country", String)])
    with pytest.raises(BreakingChangeError) as info:
        store.apply([USER, retyped], new_version=["profile"])
    message = str(info.value)
    assert "retypes x int64 -> string" in message
    assert "--start-empty profile" in message
    assert "profile@v1:FEATURE" in message
    assert store.get_feature_view("profile").version == 1  # still current, still serving
    assert online(store, ["profile:x"], [1])["x"] == [2]
    assert store.delta.version("profile__v2") is None
    # Writes to version 1 still work: the refused apply did not retire its storage.
    store.write("profile", [{"user_id": 9, "event_timestamp": T0, "x": 9, "country": "it"}])

    store.apply([USER, retyped], new_version=["profile"], start_empty=["profile"])
    assert online(store, ["profile:x"], [1])["x"] == [None]  # asked for: empty
    assert online(store, ["profile@v1:x"], [1, 9])["x"] == [2, 9]


def test_a_failed_apply_leaves_the_old_version_serving_and_writable(
    written: FeatureStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fill runs inside the registry's transaction: if it fails, nothing is applied and
    the old storage is reopened."""
    store = written

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(type(store.online_store), "write", broken)
    with pytest.raises(OSError, match="disk full"):
        store.apply([USER, V2], new_version=["profile"])
    monkeypatch.undo()
    assert store.get_feature_view("profile").version == 1
    assert store.delta.version("profile__v2") is None
    store.write("profile", [{"user_id": 9, "event_timestamp": T0, "x": 9, "country": "it"}])
    assert online(store, ["profile:x"], [1, 9])["x"] == [2, 9]
    # And applying again works.
    store.apply([USER, V2], new_version=["profile"])
    assert online(store, ["profile:x"], [1, 9])["x"] == [2, 9]
