"""Design rule 4 on read: a value older than the view's ttl is EXPIRED, an absent key NOT_FOUND.

The backend stores and returns values whatever their age (only a backend declaring
`native_ttl` may also drop them itself); `online.expiry.statuses` decides, from the decoded
event times, in one place for every backend. These tests run that decision on what each
backend actually returns.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest

from strato.definitions.entity import Entity
from strato.definitions.feature_view import FeatureView
from strato.definitions.field import Field
from strato.online.base import OnlineStore
from strato.online.codec import ViewCodec
from strato.online.expiry import statuses
from strato.types import TIMESTAMP_ARROW, Float64, Int64, ReadStatus

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
NOW_US = int(NOW.timestamp()) * 1_000_000
TTL = timedelta(hours=1)
USER = Entity("user", join_keys={"user_id": Int64})
P, E, N = ReadStatus.PRESENT, ReadStatus.EXPIRED, ReadStatus.NOT_FOUND


def view(ttl: timedelta | None) -> FeatureView:
    return FeatureView("fresh_scores", entities=[USER], schema=[Field("score", Float64)], ttl=ttl)


def write(store: OnlineStore, fv: FeatureView, ages: dict[int, timedelta]) -> None:
    """One row per user id, with event time `NOW - age`."""
    rows = pa.table(
        {
            "user_id": pa.array(list(ages), pa.int64()),
            "event_timestamp": pa.array([NOW - age for age in ages.values()], TIMESTAMP_ARROW),
            "score": pa.array([float(u) for u in ages], pa.float64()),
        }
    )
    store.write(fv.table_name, *ViewCodec(fv).encode(rows, NOW_US))


def read_statuses(store: OnlineStore, fv: FeatureView, users: list[int], now_us: int = NOW_US) -> list[ReadStatus]:
    codec = ViewCodec(fv)
    keys = [codec.keys.encode_row({"user_id": u}, i) for i, u in enumerate(users)]
    decoded = codec.decode(store.read(fv.table_name, keys))
    return [ReadStatus(s) for s in statuses(decoded.found, decoded.event_ts_us, fv.ttl, now_us)]


US = timedelta(microseconds=1)
AGES = {
    1: timedelta(0),
    2: timedelta(minutes=30),
    3: TTL,  # exactly ttl old: now - event == ttl is not "older than ttl"
    4: TTL + US,  # one microsecond too old
    5: timedelta(days=400),
    6: -timedelta(minutes=5),  # an event from the future (clock skew) is present
}


def test_expired_present_and_not_found(online_store: OnlineStore) -> None:
    fv = view(TTL)
    write(online_store, fv, AGES)
    assert read_statuses(online_store, fv, [1, 2, 3, 4, 5, 6, 99]) == [P, P, P, E, E, P, N]


def test_without_ttl_nothing_expires(online_store: OnlineStore) -> None:
    fv = view(None)
    write(online_store, fv, AGES)
    assert read_statuses(online_store, fv, [5, 4, 99, 1]) == [P, P, N, P]


def test_status_moves_with_the_clock_and_with_newer_writes(online_store: OnlineStore) -> None:
    fv = view(TTL)
    write(online_store, fv, {1: timedelta(minutes=59)})
    assert read_statuses(online_store, fv, [1]) == [P]
    two_minutes_later = NOW_US + 120 * 1_000_000
    assert read_statuses(online_store, fv, [1], now_us=two_minutes_later) == [E]
    write(online_store, fv, {1: timedelta(0)})  # a fresh event replaces the stale one
    assert read_statuses(online_store, fv, [1], now_us=two_minutes_later) == [P]


def test_an_expired_value_is_still_returned_by_the_backend(online_store: OnlineStore) -> None:
    """Expiry is decided on read, from the stored event time; the value itself stays decodable."""
    if online_store.capabilities.native_ttl:
        pytest.skip(f"{online_store.name} declares native_ttl: it may drop expired values itself")
    fv = view(TTL)
    write(online_store, fv, {5: timedelta(days=400)})
    codec = ViewCodec(fv)
    decoded = codec.decode(online_store.read(fv.table_name, [codec.keys.encode_row({"user_id": 5}, 0)]))
    assert decoded.found.tolist() == [True]
    expected_us = int((NOW - timedelta(days=400)).timestamp()) * 1_000_000
    np.testing.assert_array_equal(decoded.event_ts_us, [expected_us])
    assert decoded.column("score", decoded.found).to_pylist() == [5.0]
