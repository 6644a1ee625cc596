"""Design rules 2, 3 and 4 through the store, against the brute-force oracles in tests/oracles.py:
random writes over several batches (late and duplicate events included), a random spine and
ttl for `get_historical_features`; the newest event per key online, whatever the write order,
and a materialization never overwriting a newer online value."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oracles import latest_oracle, pit_join_oracle
from store.helpers import USER, online, stats_view
from strato import FeatureStore, ReadStatus

BASE = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
SETTINGS = settings(
    max_examples=35,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

_views = itertools.count()

USER_IDS = st.integers(min_value=1, max_value=4)
SECONDS = st.integers(min_value=0, max_value=12)
# One batch: rows of (user, event second, x); (user, second) may repeat inside a batch.
batches = st.lists(st.lists(st.tuples(USER_IDS, SECONDS, st.integers(-100, 100)), min_size=1, max_size=8), max_size=4)


def at(second: int) -> datetime:
    return BASE + timedelta(seconds=second)


def write_batches(store: FeatureStore, view: str, batches: list[list[tuple[int, int, int]]]) -> list[dict[str, Any]]:
    """Write each batch with `store.write`; return the history rows ranked as the store must rank them."""
    history: list[dict[str, Any]] = []
    for b, batch in enumerate(batches):
        rows = [
            {"user_id": u, "event_timestamp": at(s), "x": x, "tag": f"b{b}r{i}", "score": x / 4}
            for i, (u, s, x) in enumerate(batch)
        ]
        result = store.write(view, rows)
        assert result.rows == len({(u, s) for u, s, _ in batch})  # in-batch duplicates: the last row stays
        # Rule 2: later batches were written later; inside a batch the later row is the later write.
        history += [{**r, "created_timestamp": (b, i)} for i, r in enumerate(rows)]
    return history


@SETTINGS
@given(
    batches=batches,
    spine=st.lists(st.tuples(st.integers(0, 5), st.integers(-2, 16)), min_size=1, max_size=20),
    ttl_seconds=st.none() | st.integers(min_value=1, max_value=6),
)
def test_historical_features_match_the_oracle(
    store: FeatureStore,
    batches: list[list[tuple[int, int, int]]],
    spine: list[tuple[int, int]],
    ttl_seconds: int | None,
) -> None:
    ttl = None if ttl_seconds is None else timedelta(seconds=ttl_seconds)
    name = f"pit{next(_views)}"
    store.apply([USER, stats_view(name, ttl=ttl)])
    history = write_batches(store, name, batches)
    spine_rows = [{"user_id": u, "event_timestamp": at(s), "label": i} for i, (u, s) in enumerate(spine)]

    got = store.get_historical_features(spine_rows, [f"{name}:x", f"{name}:tag", f"{name}:score"])

    expected = pit_join_oracle(spine_rows, history, ttl, join_keys=["user_id"], features=["x", "tag", "score"])
    assert got.table.to_pylist() == expected
    assert got.feature_names == ("x", "tag", "score")
    assert got.versions == {f"{name}@v1": (len(batches) - 1) if batches else None}


@SETTINGS
@given(batches=batches, seed=st.randoms(use_true_random=False))
def test_online_holds_the_newest_event_per_key_whatever_the_write_order(
    store: FeatureStore, batches: list[list[tuple[int, int, int]]], seed: random.Random
) -> None:
    """Batches arrive shuffled (older events after newer ones); online must still hold, per key,
    the greatest event time, ties to the later write — and materializing history changes nothing."""
    name = f"live{next(_views)}"
    store.apply([USER, stats_view(name)])
    seed.shuffle(batches)
    history = write_batches(store, name, batches)
    refs = [f"{name}:x", f"{name}:tag"]
    users = [1, 2, 3, 4, 5]

    winners = latest_oracle(history, ["user_id"], end=at(10_000))
    want_x = [winners[(u,)]["x"] if (u,) in winners else None for u in users]
    want_tag = [winners[(u,)]["tag"] if (u,) in winners else None for u in users]
    got = online(store, refs, users)
    assert got["x"] == want_x
    assert got["tag"] == want_tag
    statuses = store.get_online_features(refs, [{"user_id": u} for u in users]).statuses()
    assert statuses["x"] == [ReadStatus.PRESENT if (u,) in winners else ReadStatus.NOT_FOUND for u in users]

    store.materialize(None, datetime.now(UTC), views=[name], progress=False)
    assert online(store, refs, users) == got


@pytest.fixture
def live(store: FeatureStore) -> FeatureStore:
    store.apply([USER, stats_view("live")])
    return store


def row(user: int, second: int, x: int) -> dict[str, Any]:
    return {"user_id": user, "event_timestamp": at(second), "x": x, "tag": f"x{x}", "score": None}


def test_an_older_event_written_later_does_not_replace_the_newer_one(live: FeatureStore) -> None:
    live.write("live", [row(1, 10, 1), row(2, 5, 2)])
    result = live.write("live", [row(1, 9, 100), row(2, 6, 200)])
    assert result.rows == 2
    assert online(live, ["live:x", "live:tag"], [1, 2]) == {"user_id": [1, 2], "x": [1, 200], "tag": ["x1", "x200"]}
    # ...but history keeps both, and a training set as of second 9 sees the late event.
    ts = live.get_historical_features([{"user_id": 1, "event_timestamp": at(9)}], ["live:x"])
    assert ts.table.column("x").to_pylist() == [100]


def test_the_same_event_written_twice_resolves_to_the_later_write(live: FeatureStore) -> None:
    live.write("live", [row(1, 10, 1)])
    live.write("live", [row(1, 10, 2)])
    assert online(live, ["live:x"], [1])["x"] == [2]
    ts = live.get_historical_features([{"user_id": 1, "event_timestamp": at(10)}], ["live:x"])
    assert ts.table.column("x").to_pylist() == [2]
    # Re-materializing history (where both rows live) keeps the later write.
    live.materialize(None, datetime.now(UTC), progress=False)
    assert online(live, ["live:x"], [1])["x"] == [2]


def test_materialize_never_overwrites_a_newer_online_value(live: FeatureStore) -> None:
    live.write("live", [row(1, 20, 1)], to="online")  # pushed, newest
    live.write("live", [row(1, 5, 2), row(2, 5, 3)], to="offline")  # history, older
    assert online(live, ["live:x"], [1, 2])["x"] == [1, None]
    result = live.materialize(None, datetime.now(UTC), progress=False)
    assert result.rows == {"live": 2}
    assert online(live, ["live:x"], [1, 2])["x"] == [1, 3]
    # In any window, in any order, again.
    live.materialize(at(0), at(6), progress=False)
    live.materialize(None, at(30), progress=False)
    assert online(live, ["live:x"], [1, 2])["x"] == [1, 3]


def test_materialize_loads_only_the_window_and_the_latest_row_in_it(live: FeatureStore) -> None:
    live.write("live", [row(1, 1, 10), row(1, 3, 30), row(1, 8, 80), row(2, 9, 90)], to="offline")
    result = live.materialize(at(0), at(5), progress=False)
    assert result.rows == {"live": 1}
    assert result.start == at(0)
    assert result.end == at(5)
    assert online(live, ["live:x"], [1, 2])["x"] == [30, None]
    live.materialize(at(5), at(10), progress=False)
    assert online(live, ["live:x"], [1, 2])["x"] == [80, 90]


def test_spine_order_columns_and_duplicates_are_kept(live: FeatureStore) -> None:
    live.write("live", [row(1, 1, 10), row(2, 1, 20)])
    spine = [
        {"user_id": 2, "event_timestamp": at(2), "label": "a"},
        {"user_id": 1, "event_timestamp": at(0), "label": "b"},
        {"user_id": 2, "event_timestamp": at(2), "label": "c"},
        {"user_id": 1, "event_timestamp": at(1), "label": "d"},
    ]
    table = live.get_historical_features(spine, ["live:x"], full_feature_names=True).table
    assert table.column_names == ["user_id", "event_timestamp", "label", "live__x"]
    assert table.column("label").to_pylist() == ["a", "b", "c", "d"]
    assert table.column("live__x").to_pylist() == [20, None, 20, 10]


def test_a_custom_timestamp_column_in_the_spine(live: FeatureStore) -> None:
    live.write("live", [row(1, 1, 10), row(1, 5, 50)])
    spine = [{"user_id": 1, "ts": at(4)}, {"user_id": 1, "ts": at(5)}]
    table = live.get_historical_features(spine, ["live:x"], timestamp_field="ts").table
    assert table.column_names == ["user_id", "ts", "x"]
    assert table.column("x").to_pylist() == [10, 50]
