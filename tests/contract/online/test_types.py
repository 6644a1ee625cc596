"""Every feature type survives encode → write → read → decode unchanged, nulls included.

Compared against the Arrow columns that went in: the online store must hand serving the
same values training saw. One deterministic table covers the edge values of each type;
a hypothesis test then throws random columns of every type at the round trip.
"""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strato.definitions.entity import Entity
from strato.definitions.feature_view import FeatureView
from strato.definitions.field import Field
from strato.online.base import OnlineStore
from strato.online.codec import ViewCodec
from strato.types import (
    TIMESTAMP_ARROW,
    Bool,
    Bytes,
    DType,
    Float32,
    Float64,
    Int32,
    Int64,
    List,
    Map,
    String,
    Timestamp,
    Vector,
)

USER = Entity("user", join_keys={"user_id": Int64})
SCALARS = [Int32, Int64, Float32, Float64, Bool, String, Bytes, Timestamp]
TYPES: list[DType] = [*SCALARS, *(List(t) for t in SCALARS), Map(Float64), Map(String), Map(Timestamp), Map(Int32)]
TYPES += [Map(Bool), Map(Bytes), Vector(1), Vector(4)]
FIELDS = [Field(f"f{i}", dtype) for i, dtype in enumerate(TYPES)]
VIEW = FeatureView("all_types", entities=[USER], schema=FIELDS)
TABLES = itertools.count()

MIN_US = -62_135_596_800_000_000  # 0001-01-01, the range Python datetimes cover
MAX_US = 253_402_300_799_999_999  # 9999-12-31


def round_trip(store: OnlineStore, columns: dict[str, pa.Array]) -> tuple[pa.Table, pa.Table]:
    """Write `columns` (one row per user id) and read them back in reverse order with one absent key.

    Returns (expected, got): the input rows in the order they were asked for, with a null
    row for the absent key, and what the store returned.
    """
    codec = ViewCodec(VIEW)
    n = len(next(iter(columns.values())))
    rows = pa.table(
        {
            "user_id": pa.array(range(n), pa.int64()),
            "event_timestamp": pa.array([1_700_000_000_000_000 + i for i in range(n)], TIMESTAMP_ARROW),
            **columns,
        }
    )
    table = f"types_{next(TABLES)}"
    assert store.write(table, *codec.encode(rows, 42)) == n
    positions = [*reversed(range(n)), None]
    keys = [codec.keys.encode_row({"user_id": -1 if p is None else p}, i) for i, p in enumerate(positions)]
    decoded = codec.decode(store.read(table, keys))
    got = pa.table({name: decoded.column(name, decoded.found) for name in columns})
    expected = rows.select(list(columns)).take(pa.array(positions, pa.int64()))
    return expected, got


def assert_same(expected: pa.Table, got: pa.Table) -> None:
    for name in expected.column_names:
        want, have = expected.column(name).combine_chunks(), got.column(name).combine_chunks()
        assert have.type == want.type, name
        assert have.to_pylist() == want.to_pylist(), f"{name} ({VIEW.feature(name).dtype})"
        assert have.equals(want), name


T1 = datetime(2024, 2, 29, 12, 30, 15, 123456, tzinfo=UTC)
EDGE_VALUES: dict[DType, list[Any]] = {
    Int32: [-(2**31), 2**31 - 1, 0],
    Int64: [-(2**63), 2**63 - 1, 0],
    Float32: [-3.4028234663852886e38, 1.401298464324817e-45, -0.0],
    Float64: [-1.7976931348623157e308, 5e-324, math.inf],
    Bool: [True, False, True],
    String: ["", "héllo wörld ✓ 日本", "a\x00b"],
    Bytes: [b"", b"\x00\xff\x80", bytes(range(256))],
    Timestamp: [datetime(1, 1, 1, tzinfo=UTC), T1, datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)],
}


def edge_column(dtype: DType) -> list[Any]:
    """Four rows of edge values: three interesting values (or containers of them) and a null."""
    if dtype.item is not None:
        items = EDGE_VALUES[dtype.item]
        if dtype.kind.value == "list":
            return [list(items), [], [items[0], None, items[1]], None]
        return [list(zip(["a", "", "ü"], items, strict=True)), [], [("k", None)], None]
    if dtype.size is not None:
        return [[1.5] * dtype.size, [0.0] * dtype.size, [-2.25, *([3e38] * (dtype.size - 1))], None]
    return [*EDGE_VALUES[dtype], None]


def test_edge_values_of_every_type(online_store: OnlineStore) -> None:
    columns = {f.name: pa.array(edge_column(f.dtype), f.dtype.to_arrow()) for f in FIELDS}
    assert_same(*round_trip(online_store, columns))


def same_or_both_nan(a: Any, b: Any) -> bool:
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return (
            type(a) is type(b) and len(a) == len(b) and all(same_or_both_nan(x, y) for x, y in zip(a, b, strict=True))
        )
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b) and type(a) is type(b)


def test_nan_and_infinities_survive(online_store: OnlineStore) -> None:
    floats = [math.nan, -math.inf, math.inf, None]
    columns = {f.name: pa.array(edge_column(f.dtype), f.dtype.to_arrow()) for f in FIELDS}
    nan_columns = [f.name for f in FIELDS if f.dtype in (Float32, Float64, List(Float32), List(Float64), Map(Float64))]
    for f in FIELDS:
        if f.dtype in (Float32, Float64):
            columns[f.name] = pa.array(floats, f.dtype.to_arrow())
        elif f.dtype in (List(Float32), List(Float64)):
            columns[f.name] = pa.array([floats, [math.nan], [], None], f.dtype.to_arrow())
        elif f.dtype == Map(Float64):
            columns[f.name] = pa.array([[("n", math.nan)], [("i", math.inf)], [], None], f.dtype.to_arrow())
    expected, got = round_trip(online_store, columns)
    for name in nan_columns:
        want, have = expected.column(name).to_pylist(), got.column(name).to_pylist()
        assert same_or_both_nan(have, want), (name, have, want)
    values = got.column(FIELDS[TYPES.index(Float64)].name).to_numpy(zero_copy_only=False)
    np.testing.assert_array_equal(values, [np.nan, np.inf, -np.inf, np.nan, np.nan])


def scalar_strategy(dtype: DType) -> st.SearchStrategy[Any]:
    kind = dtype.kind.value
    if kind == "int32":
        return st.integers(-(2**31), 2**31 - 1)
    if kind == "int64":
        return st.integers(-(2**63), 2**63 - 1)
    if kind == "float32":
        return st.floats(width=32, allow_nan=False)
    if kind == "float64":
        return st.floats(allow_nan=False)
    if kind == "bool":
        return st.booleans()
    if kind == "string":
        return st.text(max_size=8)
    if kind == "bytes":
        return st.binary(max_size=8)
    if kind == "timestamp":
        return st.integers(MIN_US, MAX_US)
    raise AssertionError(kind)


def value_strategy(dtype: DType) -> st.SearchStrategy[Any]:
    """Python values of `dtype` as pyarrow accepts them (timestamps as µs), or None."""
    if dtype.kind.value == "list":
        assert dtype.item is not None
        inner = st.lists(st.none() | scalar_strategy(dtype.item), max_size=4)
    elif dtype.kind.value == "map":
        assert dtype.item is not None
        entries = st.dictionaries(st.text(max_size=3), st.none() | scalar_strategy(dtype.item), max_size=3)
        inner = entries.map(lambda d: list(d.items()))
    elif dtype.kind.value == "vector":
        assert dtype.size is not None
        inner = st.lists(st.floats(width=32, allow_nan=False), min_size=dtype.size, max_size=dtype.size)
    else:
        inner = scalar_strategy(dtype)
    return st.none() | inner


@st.composite
def feature_columns(draw: st.DrawFn) -> dict[str, pa.Array]:
    n = draw(st.integers(1, 6))
    columns = {}
    for f in FIELDS:
        values = draw(st.lists(value_strategy(f.dtype), min_size=n, max_size=n), label=str(f.dtype))
        arrow_type = f.dtype.to_arrow()
        columns[f.name] = pa.array(values, _with_int_timestamps(arrow_type)).cast(arrow_type)
    return columns


def _with_int_timestamps(arrow_type: pa.DataType) -> pa.DataType:
    """`arrow_type` with timestamps as int64, the form the strategies draw them in."""
    if pa.types.is_timestamp(arrow_type):
        return pa.int64()
    if pa.types.is_map(arrow_type):
        return pa.map_(arrow_type.key_type, _with_int_timestamps(arrow_type.item_type))
    if pa.types.is_list(arrow_type):
        return pa.list_(_with_int_timestamps(arrow_type.value_type))
    return arrow_type


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(columns=feature_columns())
def test_random_values_of_every_type(online_store: OnlineStore, columns: dict[str, pa.Array]) -> None:
    assert_same(*round_trip(online_store, columns))
