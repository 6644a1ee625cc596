"""Design rule 4 at the backend: per key, the greatest (event time, write time) wins.

A late, older event never overwrites a newer one; at equal event times the later write
(greater created time) wins; at an equal header the later write wins too, across calls and
within one batch (replays are idempotent). `write` counts the keys it changed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa

from strato.definitions.entity import Entity
from strato.definitions.feature_view import FeatureView
from strato.definitions.field import Field
from strato.online.base import OnlineStore
from strato.online.codec import HEADER, ViewCodec, header
from strato.types import TIMESTAMP_ARROW, Float64, Int64

T = "rule4"


def v(event: int, created: int, payload: bytes = b"") -> bytes:
    return HEADER.pack(event, created) + payload


def test_older_event_never_overwrites_newer(online_store: OnlineStore) -> None:
    assert online_store.write(T, [b"k"], [v(10, 1, b"new")]) == 1
    assert online_store.write(T, [b"k"], [v(9, 99, b"late")]) == 0  # older event, even written later
    assert online_store.read(T, [b"k"]) == [v(10, 1, b"new")]
    assert online_store.write(T, [b"k"], [v(11, 0, b"newer")]) == 1  # newer event, even with an older created
    assert online_store.read(T, [b"k"]) == [v(11, 0, b"newer")]


def test_equal_event_later_created_wins(online_store: OnlineStore) -> None:
    online_store.write(T, [b"k"], [v(10, 5, b"first")])
    assert online_store.write(T, [b"k"], [v(10, 4, b"earlier write")]) == 0
    assert online_store.read(T, [b"k"]) == [v(10, 5, b"first")]
    assert online_store.write(T, [b"k"], [v(10, 6, b"later write")]) == 1
    assert online_store.read(T, [b"k"]) == [v(10, 6, b"later write")]


def test_equal_header_across_calls_later_write_wins(online_store: OnlineStore) -> None:
    online_store.write(T, [b"k"], [v(10, 5, b"a")])
    assert online_store.write(T, [b"k"], [v(10, 5, b"b")]) == 1
    assert online_store.read(T, [b"k"]) == [v(10, 5, b"b")]


def test_within_one_batch(online_store: OnlineStore) -> None:
    keys = [b"tie", b"older_last", b"newer_last", b"tie"]
    values = [v(1, 1, b"x"), v(5, 0, b"keep"), v(1, 0, b"lose"), v(1, 1, b"y")]
    keys += [b"older_last", b"newer_last"]
    values += [v(4, 9, b"drop"), v(2, 0, b"win")]
    assert online_store.write(T, keys, values) == 3  # distinct keys changed, not items
    assert online_store.read(T, [b"tie", b"older_last", b"newer_last"]) == [
        v(1, 1, b"y"),
        v(5, 0, b"keep"),
        v(2, 0, b"win"),
    ]


def test_batch_mixing_new_newer_and_older_keys(online_store: OnlineStore) -> None:
    online_store.write(T, [b"a", b"b"], [v(10, 0), v(10, 0)])
    assert online_store.write(T, [b"a", b"b", b"c"], [v(9, 0), v(11, 0), v(1, 0)]) == 2
    assert [header(x) for x in online_store.read(T, [b"a", b"b", b"c"]) if x] == [(10, 0), (11, 0), (1, 0)]


def test_negative_and_extreme_timestamps_compare_as_signed(online_store: OnlineStore) -> None:
    lo, hi = -(2**63), 2**63 - 1
    online_store.write(T, [b"k"], [v(-5, 0)])
    assert online_store.write(T, [b"k"], [v(lo, hi)]) == 0
    assert online_store.write(T, [b"k"], [v(3, lo)]) == 1
    assert online_store.write(T, [b"k"], [v(hi, lo)]) == 1
    assert online_store.read(T, [b"k"]) == [v(hi, lo)]


def test_rule4_through_the_codec(online_store: OnlineStore) -> None:
    """Late and replayed rows of a view, encoded as `FeatureStore.write` does."""
    view = FeatureView("scores", entities=[Entity("user", join_keys={"user_id": Int64})], schema=[Field("s", Float64)])
    codec = ViewCodec(view)
    t0 = datetime(2024, 1, 1, tzinfo=UTC)

    def write(event_offsets: list[int], scores: list[float], created_us: int) -> int:
        rows = pa.table(
            {
                "user_id": pa.array([7] * len(scores), pa.int64()),
                "event_timestamp": pa.array([t0 + timedelta(minutes=m) for m in event_offsets], TIMESTAMP_ARROW),
                "s": pa.array(scores, pa.float64()),
            }
        )
        return online_store.write(view.table_name, *codec.encode(rows, created_us))

    def current() -> float:
        decoded = codec.decode(online_store.read(view.table_name, [codec.keys.encode_row({"user_id": 7}, 0)]))
        return float(decoded.column("s", decoded.found)[0].as_py())

    assert write([5], [1.0], created_us=100) == 1
    assert write([3], [2.0], created_us=200) == 0  # a late event
    assert current() == 1.0
    assert write([5], [3.0], created_us=50) == 0  # the same event, written earlier
    assert current() == 1.0
    assert write([5, 6, 4], [4.0, 5.0, 6.0], created_us=300) == 1  # one batch: the newest event wins
    assert current() == 5.0
