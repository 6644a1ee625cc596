"""`prune_expired`: online values past their view's ttl are deleted; fresh ones and views
without a ttl are kept; reads answer as before (EXPIRED becomes NOT_FOUND)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from strato import FeatureStore, ReadStatus

from .helpers import USER, stats_view


def test_prune_expired_keeps_fresh_values_and_views_without_ttl(store: FeatureStore) -> None:
    store.apply([USER, stats_view("short", ttl=timedelta(hours=1)), stats_view("forever")])
    now = datetime.now(UTC)
    rows = [
        {"user_id": 1, "event_timestamp": now - timedelta(minutes=5), "x": 1, "tag": "fresh", "score": 1.0},
        {"user_id": 2, "event_timestamp": now - timedelta(hours=3), "x": 2, "tag": "stale", "score": 2.0},
    ]
    store.write("short", rows)
    store.write("forever", rows)
    users = [{"user_id": 1}, {"user_id": 2}]
    assert store.get_online_features(["short:x"], users).statuses()["x"] == [ReadStatus.PRESENT, ReadStatus.EXPIRED]

    assert store.prune_expired() == {"short": 1}
    assert store.get_online_features(["short:x"], users).statuses()["x"] == [ReadStatus.PRESENT, ReadStatus.NOT_FOUND]
    assert store.get_online_features(["forever:x"], users).to_dict()["x"] == [1, 2]
    assert store.prune_expired(["short"]) == {"short": 0}
    # History is untouched: pruning is about the online copy only.
    assert store.sql("select count(*) as n from short").to_pylist() == [{"n": 2}]
