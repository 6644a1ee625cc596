"""`materialize_incremental` loads every row committed since its last run; every user mistake
is a `UserError` whose message names the object, field or row at fault."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from store.helpers import USER, online, stats_view
from strato import (
    Entity,
    FeatureService,
    FeatureStore,
    FeatureView,
    Field,
    Int64,
    NotFoundError,
    ReadStatus,
    SchemaError,
    String,
    UserError,
)
from strato.registry.base import OnlineProgress

BASE = datetime.now(UTC).replace(microsecond=0) - timedelta(days=5)


def at(hours: float) -> datetime:
    return BASE + timedelta(hours=hours)


def row(user: int, hours: float, x: int) -> dict[str, Any]:
    return {"user_id": user, "event_timestamp": at(hours), "x": x, "tag": None, "score": None}


@pytest.fixture
def views(store: FeatureStore) -> FeatureStore:
    store.apply([USER, stats_view("a"), stats_view("b")])
    return store


def test_materialize_incremental_loads_every_row_committed_since_the_last_run(views: FeatureStore) -> None:
    store = views
    store.write("a", [row(1, 1, 10), row(2, 2, 20)], to="offline")
    first = store.materialize_incremental(at(10), views=["a"], progress=False)
    assert first.rows == {"a": 2}
    assert first.end == at(10)
    assert store.registry.online_progress("a__v1") == OnlineProgress(0, at(10))
    assert store.registry.online_progress("b__v1") is None

    # A late row (event before the last end), a newer row for a loaded key, a new key, a future row.
    store.write("a", [row(3, 5, 30), row(1, 11, 11), row(4, 12, 40), row(5, 25, 50)], to="offline")
    second = store.materialize_incremental(at(20), views=["a"], progress=False)
    assert second.rows == {"a": 3}  # users 3 (late), 1 and 4; user 5's event is past the end
    assert online(store, ["a:x"], [1, 2, 3, 4, 5])["x"] == [11, 20, 30, 40, None]

    nothing = store.materialize_incremental(at(20), views=["a"], progress=False)
    assert nothing.rows == {"a": 0}
    assert store.registry.online_progress("a__v1") == OnlineProgress(1, at(20))

    # Without `views`, every online+offline view; b starts from the beginning of its history.
    store.write("b", [row(1, 3, 7)], to="offline")
    both = store.materialize_incremental(at(30), progress=False)
    assert both.rows == {"a": 1, "b": 1}
    assert online(store, ["a:x"], [5])["x"] == [50]
    assert online(store, ["b:x"], [1])["x"] == [7]


def test_a_window_from_the_start_counts_as_progress_for_incremental_runs(views: FeatureStore) -> None:
    views.write("a", [row(1, 1, 10), row(1, 30, 99)], to="offline")
    assert views.materialize(None, at(10), views=["a"], progress=False).rows == {"a": 1}
    assert views.materialize_incremental(at(40), views=["a"], progress=False).rows == {"a": 1}
    assert online(views, ["a:x"], [1])["x"] == [99]


def test_materialize_refuses_an_empty_window(views: FeatureStore) -> None:
    with pytest.raises(UserError, match=r"start .* must be before end"):
        views.materialize(at(5), at(5), progress=False)
    with pytest.raises(UserError, match="datetime"):
        views.materialize(None, "tomorrow", progress=False)  # type: ignore[arg-type]


# ------------------------------------------------------------------ user errors


def spine(**extra: Any) -> list[dict[str, Any]]:
    return [{"user_id": 1, "event_timestamp": at(1), **extra}]


@pytest.mark.parametrize(
    ("call", "error", "names"),
    [
        (lambda s: s.write("nope", [row(1, 1, 1)]), NotFoundError, "'nope'"),
        (lambda s: s.get_online_features(["nope:x"], [{"user_id": 1}]), NotFoundError, "'nope'"),
        (lambda s: s.get_historical_features(spine(), ["nope:x"]), NotFoundError, "'nope'"),
        (lambda s: s.materialize(None, at(1), views=["nope"], progress=False), NotFoundError, "'nope'"),
        (lambda s: s.materialize_incremental(at(1), views=["nope"], progress=False), NotFoundError, "'nope'"),
        (lambda s: s.get_feature_view("nope"), NotFoundError, "'nope'"),
        (lambda s: s.get_feature_service("nope"), NotFoundError, "'nope'"),
        (lambda s: s.get_online_features(["a:zzz"], [{"user_id": 1}]), NotFoundError, "'a'.*'zzz'"),
        (lambda s: s.get_historical_features(spine(), ["a:x", "a:zzz"]), NotFoundError, "'a'.*'zzz'"),
        (lambda s: s.get_online_features(["a:x"], [{"uid": 1}]), SchemaError, "entity row 0.*'user_id'"),
        (
            lambda s: s.get_online_features(["a:x"], [{"user_id": 1}, {"user_id": 2}, {}]),
            SchemaError,
            "entity row 2.*'user_id'",
        ),
        (lambda s: s.get_online_features(["a:x"], [{"user_id": "seven"}]), SchemaError, "'user_id'.*'seven'"),
        (lambda s: s.get_online_features(["a:x"], {"user_id": [1, 2], "other": [1]}), UserError, "lengths"),
        (lambda s: s.get_online_features(["a:x"], "user_id=1"), UserError, "entity_rows"),
        (
            lambda s: s.get_historical_features([{"uid": 1, "event_timestamp": at(1)}], ["a:x"]),
            SchemaError,
            "'user_id'",
        ),
        (
            lambda s: s.get_historical_features([{"user_id": 1}], ["a:x"]),
            SchemaError,
            "'event_timestamp'",
        ),
        (
            lambda s: s.get_historical_features([{"user_id": None, "event_timestamp": at(1)}], ["a:x"]),
            SchemaError,
            "'user_id', row 0",
        ),
        (
            lambda s: s.get_historical_features(
                [{"user_id": 1, "event_timestamp": at(1)}, {"user_id": 2, "event_timestamp": "soon"}], ["a:x"]
            ),
            SchemaError,
            "'event_timestamp', row 1",
        ),
        (lambda s: s.get_historical_features(spine(), ["a:x", "b:x"]), UserError, "'x'.*full_feature_names"),
        (lambda s: s.get_online_features(["a.x"], [{"user_id": 1}]), UserError, "'a.x'"),
        (lambda s: s.get_online_features("a:x", [{"user_id": 1}]), UserError, "'a:x'"),
        (lambda s: s.get_online_features(["a:x", "a:x"], [{"user_id": 1}]), UserError, "'a:x'.*twice"),
        (lambda s: s.get_online_features([], [{"user_id": 1}]), UserError, "no features"),
        (lambda s: s.write("a", [row(1, 1, 1)], to="everywhere"), UserError, "everywhere"),  # type: ignore[arg-type]
    ],
)
def test_user_errors_name_what_is_wrong(views: FeatureStore, call: Any, error: type[Exception], names: str) -> None:
    views.write("a", [row(1, 1, 1)])
    with pytest.raises(error, match=names) as info:
        call(views)
    assert isinstance(info.value, UserError)
    assert "\n" not in str(info.value)


def test_online_only_and_offline_only_views_refuse_the_other_side(store: FeatureStore) -> None:
    hot = FeatureView("hot", entities=[USER], schema=[Field("x", Int64)], offline=False)
    cold = FeatureView("cold", entities=[USER], schema=[Field("x", Int64)], online=False)
    store.apply([USER, hot, cold])
    now = datetime.now(UTC)
    assert store.write("hot", [{"user_id": 1, "event_timestamp": now, "x": 1}]).table_version is None
    assert store.write("cold", [{"user_id": 1, "event_timestamp": now, "x": 2}]).online_rows == 0
    with pytest.raises(UserError, match=r"'hot'.*online only"):
        store.write("hot", [{"user_id": 1, "event_timestamp": now, "x": 1}], to="offline")
    with pytest.raises(UserError, match=r"'cold'.*offline only"):
        store.write("cold", [{"user_id": 1, "event_timestamp": now, "x": 1}], to="online")
    with pytest.raises(UserError, match=r"'hot'.*online only"):
        store.get_historical_features([{"user_id": 1, "event_timestamp": now}], ["hot:x"])
    with pytest.raises(UserError, match=r"'cold'.*offline only"):
        store.get_online_features(["cold:x"], [{"user_id": 1}])
    with pytest.raises(UserError, match=r"'hot'.*both online and offline"):
        store.materialize(None, now, views=["hot"], progress=False)
    assert store.get_online_features(["hot:x"], [{"user_id": 1}]).to_dict()["x"] == [1]


def test_a_feature_service_reads_like_its_feature_list(store: FeatureStore) -> None:
    card = Entity("card", join_keys={"card_id": String})
    cards = FeatureView("cards", entities=[card], schema=[Field("limit", Int64)])
    users = stats_view("users")
    service = FeatureService("model", features=[users[["x"]], cards])
    store.apply([USER, card, users, cards, service])
    now = datetime.now(UTC) - timedelta(minutes=1)
    store.write("users", [{"user_id": 1, "event_timestamp": now, "x": 5, "tag": "t", "score": 1.0}])
    store.write("cards", [{"card_id": "c1", "event_timestamp": now, "limit": 900}])
    entity = [{"user_id": 1, "card_id": "c1"}, {"user_id": 2, "card_id": "c1"}]
    response = store.get_online_features(store.get_feature_service("model"), entity)
    assert response.to_dict() == {"user_id": [1, 2], "card_id": ["c1", "c1"], "x": [5, None], "limit": [900, 900]}
    assert response.statuses()["x"] == [ReadStatus.PRESENT, ReadStatus.NOT_FOUND]
    table = store.get_historical_features(
        [{**e, "event_timestamp": datetime.now(UTC)} for e in entity], store.get_feature_service("model")
    ).table
    assert table.select(["x", "limit"]).to_pylist() == [{"x": 5, "limit": 900}, {"x": None, "limit": 900}]
