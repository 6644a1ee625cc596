"""Design rules 3, 4 and 5 through the store: ttl online (EXPIRED / NOT_FOUND) and offline
(the ttl window of a point-in-time join), and time travel — a training set's recorded table
versions, or an `as_of` time, rebuild the same table after more writes."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime, timedelta

import pytest

from store.helpers import USER, online, stats_view
from strato import FeatureStore, NotFoundError, ReadStatus, UserError

TTL = timedelta(hours=1)


@pytest.fixture
def expiring(store: FeatureStore) -> FeatureStore:
    store.apply([USER, stats_view("fresh", ttl=TTL), stats_view("forever")])
    return store


def test_online_values_older_than_ttl_are_expired_and_absent_keys_not_found(expiring: FeatureStore) -> None:
    now = datetime.now(UTC)
    rows = [
        {"user_id": 1, "event_timestamp": now - TTL - timedelta(minutes=5), "x": 1, "tag": "old", "score": 1.0},
        {"user_id": 2, "event_timestamp": now - TTL + timedelta(minutes=5), "x": 2, "tag": "new", "score": 2.0},
    ]
    expiring.write("fresh", rows)
    expiring.write("forever", rows)
    refs = ["fresh:x", "fresh:tag", "forever:score"]
    response = expiring.get_online_features(refs, [{"user_id": 1}, {"user_id": 2}, {"user_id": 3}])
    assert response.to_dict() == {
        "user_id": [1, 2, 3],
        "x": [None, 2, None],
        "tag": [None, "new", None],
        "score": [1.0, 2.0, None],  # no ttl: never expires
    }
    statuses = response.statuses()
    assert statuses["x"] == statuses["tag"] == [ReadStatus.EXPIRED, ReadStatus.PRESENT, ReadStatus.NOT_FOUND]
    assert statuses["score"] == [ReadStatus.PRESENT, ReadStatus.PRESENT, ReadStatus.NOT_FOUND]
    matrix = expiring.get_online_features(["fresh:x", "forever:x"], [{"user_id": 1}]).to_numpy()
    assert matrix.shape == (1, 2)
    assert math.isnan(matrix[0, 0])  # expired
    assert matrix[0, 1] == 1.0


def test_a_present_value_can_be_null(expiring: FeatureStore) -> None:
    now = datetime.now(UTC)
    expiring.write("fresh", [{"user_id": 1, "event_timestamp": now, "x": None, "tag": None, "score": None}])
    response = expiring.get_online_features(["fresh:x"], [{"user_id": 1}])
    assert response.to_dict()["x"] == [None]
    assert response.statuses()["x"] == [ReadStatus.PRESENT]


def test_a_newer_write_revives_an_expired_key(expiring: FeatureStore) -> None:
    now = datetime.now(UTC)
    expiring.write("fresh", [{"user_id": 1, "event_timestamp": now - 2 * TTL, "x": 1, "tag": "a", "score": 0.0}])
    assert expiring.get_online_features(["fresh:x"], [{"user_id": 1}]).statuses()["x"] == [ReadStatus.EXPIRED]
    expiring.write("fresh", [{"user_id": 1, "event_timestamp": now, "x": 2, "tag": "b", "score": 0.0}])
    assert online(expiring, ["fresh:x"], [1])["x"] == [2]


def test_the_offline_ttl_window_includes_its_edge(expiring: FeatureStore) -> None:
    t0 = datetime(2024, 5, 1, tzinfo=UTC)
    expiring.write("fresh", [{"user_id": 1, "event_timestamp": t0, "x": 7, "tag": "a", "score": 0.5}])
    spine = [
        {"user_id": 1, "event_timestamp": t0 - timedelta(microseconds=1)},  # before the event: nothing
        {"user_id": 1, "event_timestamp": t0},  # the event itself
        {"user_id": 1, "event_timestamp": t0 + TTL},  # exactly ttl later: still inside (event ≥ t − ttl)
        {"user_id": 1, "event_timestamp": t0 + TTL + timedelta(microseconds=1)},  # just past it: null
    ]
    table = expiring.get_historical_features(spine, ["fresh:x"]).table
    assert table.column("x").to_pylist() == [None, 7, 7, None]


# ------------------------------------------------------------------ time travel


FAR = datetime.now(UTC) + timedelta(days=1)


def _spine(*users: int) -> list[dict[str, object]]:
    return [{"user_id": u, "event_timestamp": FAR} for u in users]


def _write(store: FeatureStore, x: int, users: tuple[int, ...] = (1, 2)) -> int | None:
    now = datetime.now(UTC) - timedelta(seconds=30 - x)
    rows = [{"user_id": u, "event_timestamp": now, "x": x * 10 + u, "tag": f"w{x}", "score": None} for u in users]
    return store.write("forever", rows).table_version


def test_recorded_versions_rebuild_the_training_set_after_more_writes(expiring: FeatureStore) -> None:
    store = expiring
    assert _write(store, 1) == 0
    assert _write(store, 2, users=(2, 3)) == 1
    refs = ["forever:x", "forever:tag"]
    first = store.get_historical_features(_spine(1, 2, 3), refs)
    assert first.versions == {"forever@v1": 1}
    assert first.table.column("x").to_pylist() == [11, 22, 23]

    assert _write(store, 3) == 2
    assert _write(store, 4, users=(3,)) == 3
    latest = store.get_historical_features(_spine(1, 2, 3), refs)
    assert latest.table.column("x").to_pylist() == [31, 32, 43]
    assert latest.versions == {"forever@v1": 3}

    again = store.get_historical_features(_spine(1, 2, 3), refs, versions=first.versions)
    assert again.table.equals(first.table)
    assert again.versions == first.versions
    assert store.get_historical_features(_spine(1, 2, 3), refs, versions={"forever@v1": 0}).table.column(
        "x"
    ).to_pylist() == [11, 12, None]


def test_versions_must_name_every_view_read(expiring: FeatureStore) -> None:
    _write(expiring, 1)
    with pytest.raises(UserError, match="forever@v1"):
        expiring.get_historical_features(_spine(1), ["forever:x"], versions={"other@v1": 0})
    with pytest.raises(NotFoundError, match="no version 9"):
        expiring.get_historical_features(_spine(1), ["forever:x"], versions={"forever@v1": 9})


def test_as_of_a_time_reads_history_as_it_was(expiring: FeatureStore) -> None:
    store = expiring
    before_any = datetime.now(UTC)
    time.sleep(0.01)
    _write(store, 1)
    time.sleep(0.01)
    between = datetime.now(UTC)
    time.sleep(0.01)
    _write(store, 2)

    empty = store.get_historical_features(_spine(1, 2), ["forever:x"], as_of=before_any)
    assert empty.table.column("x").to_pylist() == [None, None]
    assert empty.versions == {"forever@v1": None}
    old = store.get_historical_features(_spine(1, 2), ["forever:x"], as_of=between)
    assert old.table.column("x").to_pylist() == [11, 12]
    assert old.versions == {"forever@v1": 0}
    now = store.get_historical_features(_spine(1, 2), ["forever:x"], as_of=datetime.now(UTC))
    assert now.table.column("x").to_pylist() == [21, 22]
    # SQL over history can be pinned the same way.
    assert store.sql("select count(*) as n from forever", as_of=between).column("n").to_pylist() == [2]
    assert store.sql("select count(*) as n from forever").column("n").to_pylist() == [4]
