"""Rows written through the codec come back unchanged, per key, whatever order they are asked in.

This is the path `FeatureStore.write` and `get_online_features` take: `ViewCodec.encode`
makes (key, value) bytes, the backend stores them, `KeyCodec.encode_row` makes the read
keys and `ViewCodec.decode` turns the answer back into columns.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from strato.definitions.entity import Entity
from strato.definitions.feature_view import FeatureView
from strato.definitions.field import Field
from strato.online.base import OnlineStore
from strato.online.codec import HEADER, ViewCodec
from strato.types import TIMESTAMP_ARROW, Float64, Int32, Int64, List, String

T0 = datetime(2024, 5, 1, tzinfo=UTC)
CREATED_US = 1_700_000_000_000_000

USER = Entity("user", join_keys={"user_id": Int64})
STATS = FeatureView(
    "user_stats",
    entities=[USER],
    schema=[Field("amount", Float64), Field("count", Int32), Field("country", String), Field("tags", List(String))],
)


def stats_rows(n: int, *, seed: int = 0) -> pa.Table:
    rng = random.Random(seed)
    return pa.table(
        {
            "user_id": pa.array(range(n), pa.int64()),
            "event_timestamp": pa.array([T0 + timedelta(seconds=i) for i in range(n)], TIMESTAMP_ARROW),
            "amount": pa.array([None if i % 7 == 3 else rng.uniform(-1e6, 1e6) for i in range(n)], pa.float64()),
            "count": pa.array([rng.randrange(-(2**31), 2**31) for _ in range(n)], pa.int32()),
            "country": pa.array([rng.choice(["FR", "DE", "", None, "日本"]) for _ in range(n)], pa.string()),
            "tags": pa.array([[f"t{j}" for j in range(i % 4)] for i in range(n)], pa.list_(pa.string())),
        }
    )


def expected_columns(rows: pa.Table, positions: list[int | None]) -> pa.Table:
    """`rows` taken at `positions`, a null row where the position is None (an absent key)."""
    return rows.take(pa.array(positions, pa.int64()))


def read_rows(store: OnlineStore, table: str, codec: ViewCodec, entity_rows: list[dict[str, object]]) -> pa.Table:
    keys = [codec.keys.encode_row(row, i) for i, row in enumerate(entity_rows)]
    decoded = codec.decode(store.read(table, keys))
    columns = {
        "event_timestamp": pa.array(decoded.event_ts_us, mask=~decoded.found).cast(TIMESTAMP_ARROW),
        **{f.name: decoded.column(f.name, decoded.found) for f in codec.view.schema},
    }
    return pa.table(columns)


def test_write_then_read_every_column(online_store: OnlineStore) -> None:
    codec = ViewCodec(STATS)
    rows = stats_rows(60)
    keys, values = codec.encode(rows, CREATED_US)
    assert online_store.write(STATS.table_name, keys, values) == 60

    order = list(range(60))
    random.Random(1).shuffle(order)
    positions: list[int | None] = [*order[:30], None, *order[30:], None]
    entity_rows: list[dict[str, object]] = [
        {"user_id": p if p is not None else 10_000 + i} for i, p in enumerate(positions)
    ]
    got = read_rows(online_store, STATS.table_name, codec, entity_rows)

    expected = expected_columns(rows, positions)
    for name in ["event_timestamp", *STATS.feature_names]:
        assert got.column(name).equals(expected.column(name)), name


def test_values_are_the_exact_bytes_written(online_store: OnlineStore) -> None:
    keys, values = ViewCodec(STATS).encode(stats_rows(10), CREATED_US)
    online_store.write("bytes_check", keys, values)
    assert online_store.read("bytes_check", keys) == values
    assert online_store.read("bytes_check", list(reversed(keys))) == list(reversed(values))


def test_composite_keys_from_columns_and_from_entity_rows_agree(online_store: OnlineStore) -> None:
    merchant = Entity("merchant", join_keys={"merchant": String})
    view = FeatureView("pair_stats", entities=[USER, merchant], schema=[Field("n", Int64)])
    codec = ViewCodec(view)
    pairs = [(1, "a"), (1, "ab"), (11, "b"), (2, ""), (-5, "ü")]
    rows = pa.table(
        {
            "user_id": pa.array([u for u, _ in pairs], pa.int64()),
            "merchant": pa.array([m for _, m in pairs], pa.string()),
            "event_timestamp": pa.array([T0] * len(pairs), TIMESTAMP_ARROW),
            "n": pa.array(range(len(pairs)), pa.int64()),
        }
    )
    online_store.write(view.table_name, *codec.encode(rows, CREATED_US))
    asked = [{"user_id": 11, "merchant": "b"}, {"user_id": 1, "merchant": "b"}, {"user_id": 1, "merchant": "a"}]
    got = read_rows(online_store, view.table_name, codec, asked)
    assert got.column("n").to_pylist() == [2, None, 0]


def test_read_edge_cases(online_store: OnlineStore) -> None:
    online_store.write("edges", [b"k", b""], [b"\x00" * 16 + b"v", b"\x00" * 16 + b"empty-key"])
    assert online_store.read("edges", []) == []
    assert online_store.read("edges", [b"k", b"k", b""]) == [b"\x00" * 16 + b"v"] * 2 + [b"\x00" * 16 + b"empty-key"]
    assert online_store.read("edges", [b"k\x00", b"missing"]) == [None, None]
    assert online_store.read("never_written", [b"k"]) == [None]
    assert online_store.write("edges", [], []) == 0


@pytest.mark.parametrize("value_size", [1_000, 20_000], ids=["1KB", "20KB"])
def test_large_batches_and_values(online_store: OnlineStore, value_size: int) -> None:
    """Thousands of keys in one write, and values bigger than an engine page (LMDB overflow pages)."""
    n = 2_000 if value_size < 10_000 else 200
    keys = [i.to_bytes(8, "big") for i in range(n)]

    def value(event: int, fill: int) -> bytes:
        return HEADER.pack(event, 0) + bytes([fill]) * value_size

    assert online_store.write("big", keys, [value(i, i % 251) for i in range(n)]) == n
    # Odd keys get a newer event, even keys the same header (a tie: the later write wins).
    second = [value(i + i % 2, 7) for i in range(n)]
    assert online_store.write("big", keys, second) == n
    assert online_store.read("big", keys) == second
    assert online_store.write("big", keys, [value(i - 1, 9) for i in range(n)]) == 0
    assert online_store.read("big", keys) == second
