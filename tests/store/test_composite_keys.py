"""A view keyed by two entities (card holder x merchant, one string key), through every verb:
write, point-in-time read, materialize and online lookup, with several views in one request."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from strato import Entity, FeatureStore, FeatureView, Field, Float64, Int64, String

from .helpers import USER, stats_view

MERCHANT = Entity("merchant", join_keys={"merchant": String})
PAIR = FeatureView("pair", entities=[USER, MERCHANT], schema=[Field("visits", Int64), Field("spend", Float64)])
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)


def test_composite_keys_through_the_store(store: FeatureStore) -> None:
    store.apply([USER, MERCHANT, PAIR, stats_view()])
    rows = [
        {"user_id": 1, "merchant": "acme", "event_timestamp": T0, "visits": 1, "spend": 10.0},
        {"user_id": 1, "merchant": "bolt", "event_timestamp": T0, "visits": 7, "spend": 70.0},
        {"user_id": 2, "merchant": "acme", "event_timestamp": T0, "visits": 2, "spend": 20.0},
        {"user_id": 1, "merchant": "acme", "event_timestamp": T0 + timedelta(days=1), "visits": 3, "spend": 30.0},
    ]
    store.write("pair", rows, to="offline")
    store.write("stats", [{"user_id": 1, "event_timestamp": T0, "x": 5, "tag": "u1", "score": 0.5}])

    spine = [
        {"user_id": 1, "merchant": "acme", "event_timestamp": T0 + timedelta(hours=1)},
        {"user_id": 1, "merchant": "acme", "event_timestamp": T0 + timedelta(days=1, hours=1)},
        {"user_id": 1, "merchant": "bolt", "event_timestamp": T0 - timedelta(hours=1)},  # before any history
        {"user_id": 2, "merchant": "bolt", "event_timestamp": T0 + timedelta(days=1)},  # no such pair
    ]
    table = store.get_historical_features(spine, ["pair:visits", "stats:tag"]).table
    assert table.column("visits").to_pylist() == [1, 3, None, None]
    assert table.column("tag").to_pylist() == ["u1", "u1", None, None]

    assert store.materialize(None, datetime.now(UTC), views=["pair"], progress=False).rows == {"pair": 3}
    entities = [
        {"user_id": 1, "merchant": "acme"},
        {"user_id": 1, "merchant": "bolt"},
        {"user_id": 2, "merchant": "bolt"},
    ]
    online = store.get_online_features(["pair:visits", "pair:spend", "stats:x"], entities).to_dict()
    assert online == {
        "user_id": [1, 1, 2],
        "merchant": ["acme", "bolt", "bolt"],
        "visits": [3, 7, None],
        "spend": [30.0, 70.0, None],
        "x": [5, 5, None],
    }
