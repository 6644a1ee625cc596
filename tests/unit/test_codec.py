"""`online.codec` on its own: key bytes, value headers, rule 4's comparison, decoding absences.

The layout is a storage format shared by every backend and by data already on disk, so
these tests pin the exact bytes, not only the round trip.
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strato.definitions.entity import Entity
from strato.definitions.feature_view import FeatureView
from strato.definitions.field import Field
from strato.errors import SchemaError
from strato.online.codec import HEADER, HEADER_SIZE, KeyCodec, ViewCodec, header, is_newer
from strato.types import TIMESTAMP_ARROW, Bytes, DType, Float64, Int32, Int64, List, String

T0 = datetime(2024, 1, 1, tzinfo=UTC)
T0_US = 1_704_067_200_000_000


def keys_of(*fields: tuple[str, DType]) -> KeyCodec:
    return KeyCodec([Field(name, dtype) for name, dtype in fields])


# --- keys ---------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [Int64, Int32])
def test_integer_key_is_8_big_endian_bytes(dtype: DType) -> None:
    codec = keys_of(("id", dtype))
    assert codec.encode_row({"id": 1}, 0) == b"\x00" * 7 + b"\x01"
    assert codec.encode_row({"id": -1}, 0) == b"\xff" * 8
    assert codec.encode_row({"id": np.int32(258)}, 0) == (258).to_bytes(8, "big")
    arrow = pa.int64() if dtype == Int64 else pa.int32()
    assert codec.encode_columns([pa.array([1, -1, 258], arrow)]) == [
        codec.encode_row({"id": i}, 0) for i in (1, -1, 258)
    ]


def test_int64_extremes() -> None:
    codec = keys_of(("id", Int64))
    lo, hi = -(2**63), 2**63 - 1
    assert codec.encode_row({"id": lo}, 0) == struct.pack(">q", lo)
    assert codec.encode_columns([pa.array([lo, hi], pa.int64())]) == [struct.pack(">q", lo), struct.pack(">q", hi)]


def test_string_and_bytes_keys_are_their_raw_bytes() -> None:
    text = keys_of(("name", String))
    assert text.encode_row({"name": "ünï"}, 0) == "ünï".encode()
    assert text.encode_row({"name": ""}, 0) == b""
    assert text.encode_columns([pa.array(["a", "ünï", ""])]) == [b"a", "ünï".encode(), b""]
    raw = keys_of(("blob", Bytes))
    assert raw.encode_row({"blob": b"\x00\xff"}, 0) == b"\x00\xff"
    assert raw.encode_columns([pa.array([b"\x00\xff", b""], pa.binary())]) == [b"\x00\xff", b""]


def test_composite_key_layout() -> None:
    codec = keys_of(("user", Int64), ("merchant", String), ("blob", Bytes))
    key = codec.encode_row({"user": 7, "merchant": "ab", "blob": b"\x00"}, 0)
    assert key == (7).to_bytes(8, "big") + b"\x00\x00\x00\x02ab" + b"\x00\x00\x00\x01\x00"
    columns = [pa.array([7], pa.int64()), pa.array(["ab"]), pa.array([b"\x00"], pa.binary())]
    assert codec.encode_columns(columns) == [key]


def test_composite_keys_with_shifted_boundaries_differ() -> None:
    codec = keys_of(("a", String), ("b", String))
    pairs = [("ab", "c"), ("a", "bc"), ("", "abc"), ("abc", "")]
    keys = {codec.encode_row({"a": a, "b": b}, 0) for a, b in pairs}
    assert len(keys) == len(pairs)
    assert codec.encode_columns([pa.array([a for a, _ in pairs]), pa.array([b for _, b in pairs])]) == [
        codec.encode_row({"a": a, "b": b}, 0) for a, b in pairs
    ]


def test_chunked_key_columns() -> None:
    codec = keys_of(("id", Int64), ("name", String))
    ids = pa.chunked_array([pa.array([1], pa.int64()), pa.array([2, 3], pa.int64())])
    names = pa.chunked_array([pa.array(["x", "y"]), pa.array(["z"])])
    assert codec.encode_columns([ids, names]) == [
        codec.encode_row({"id": i, "name": n}, 0) for i, n in ((1, "x"), (2, "y"), (3, "z"))
    ]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"merchant": "m"}, r"entity row 3: missing join key 'user_id'"),
        ({"user_id": "7", "merchant": "m"}, r"entity row 3: join key 'user_id' must be an integer, got '7'"),
        ({"user_id": True, "merchant": "m"}, r"entity row 3: join key 'user_id' must be an integer, got True"),
        ({"user_id": 7.0, "merchant": "m"}, r"entity row 3: join key 'user_id' must be an integer, got 7.0"),
        ({"user_id": None, "merchant": "m"}, r"entity row 3: join key 'user_id' must be an integer, got None"),
        ({"user_id": 2**63, "merchant": "m"}, r"entity row 3: join key 'user_id' is outside the 64-bit integer range"),
        ({"user_id": 7, "merchant": 5}, r"entity row 3: join key 'merchant' must be a string, got 5"),
        ({"user_id": 7, "merchant": "\ud800"}, r"entity row 3: join key 'merchant' is not valid text"),
        ({"user_id": 7, "merchant": "m", "blob": 1}, r"entity row 3: join key 'blob' must be bytes or a string, got 1"),
        ([7, "m"], r"entity row 3: expected a dict of join keys"),
    ],
)
def test_encode_row_errors_name_the_row_and_key(row: Any, message: str) -> None:
    codec = keys_of(("user_id", Int64), ("merchant", String))
    if isinstance(row, dict) and "blob" in row:
        codec = keys_of(("user_id", Int64), ("merchant", String), ("blob", Bytes))
    with pytest.raises(SchemaError, match=message):
        codec.encode_row(row, 3)


# --- headers and rule 4 -------------------------------------------------------------------


def test_header_and_is_newer() -> None:
    def v(event: int, created: int) -> bytes:
        return HEADER.pack(event, created) + b"payload"

    assert HEADER_SIZE == 16
    assert header(v(-5, 9)) == (-5, 9)
    assert is_newer(v(2, 0), v(1, 99))  # a greater event time wins whatever the write time
    assert not is_newer(v(1, 99), v(2, 0))
    assert is_newer(v(1, 2), v(1, 1))  # equal event time: the later write wins
    assert not is_newer(v(1, 1), v(1, 2))
    assert is_newer(v(1, 1), v(1, 1))  # equal header: the candidate (the later write) wins
    assert is_newer(v(0, 0), v(-1, 0))  # signed, not byte order
    assert is_newer(memoryview(v(3, 0)), memoryview(v(2, 0)))
    assert is_newer(v(2**63 - 1, 0), v(-(2**63), 2**63 - 1))


# --- values --------------------------------------------------------------------------------

USER = Entity("user", join_keys={"user_id": Int64})
VIEW = FeatureView(
    "v", entities=[USER], schema=[Field("a", Float64), Field("n", Int32), Field("s", String), Field("l", List(Int64))]
)


def rows(n: int) -> pa.Table:
    return pa.table(
        {
            "user_id": pa.array(range(n), pa.int64()),
            "event_timestamp": pa.array([T0] * n, TIMESTAMP_ARROW),
            "a": pa.array([1.5 if i % 2 else None for i in range(n)], pa.float64()),
            "n": pa.array(range(n), pa.int32()),
            "s": pa.array([None if i % 3 == 0 else f"s{i}" for i in range(n)]),
            "l": pa.array([[i] * (i % 3) for i in range(n)], pa.list_(pa.int64())),
        }
    )


def test_value_starts_with_the_header() -> None:
    codec = ViewCodec(VIEW)
    keys, values = codec.encode(rows(3), 123)
    assert keys == [i.to_bytes(8, "big") for i in range(3)]
    assert [header(v) for v in values] == [(T0_US, 123)] * 3


def test_created_per_row() -> None:
    _, values = ViewCodec(VIEW).encode(rows(3), np.array([5, 6, 7], dtype=np.int64))
    assert [header(v) for v in values] == [(T0_US, 5), (T0_US, 6), (T0_US, 7)]


def test_decode_of_absent_values() -> None:
    codec = ViewCodec(VIEW)
    _, values = codec.encode(rows(4), 1)
    decoded = codec.decode([None, values[1], None, values[3]])
    assert decoded.found.tolist() == [False, True, False, True]
    assert decoded.event_ts_us[decoded.found].tolist() == [T0_US, T0_US]
    assert decoded.column("a", decoded.found).to_pylist() == [None, 1.5, None, 1.5]
    assert decoded.column("n", decoded.found).to_pylist() == [None, 1, None, 3]
    assert decoded.column("s", decoded.found).to_pylist() == [None, "s1", None, None]
    assert decoded.column("l", decoded.found).to_pylist() == [None, [1], None, []]
    assert decoded.nulls("a").tolist() == [False, False, False, False]  # absent values are not "null"
    assert decoded.nulls("s").tolist() == [False, False, False, True]


def test_decode_nothing_and_only_absences() -> None:
    codec = ViewCodec(VIEW)
    empty = codec.decode([])
    assert len(empty.found) == 0
    assert empty.column("s", empty.found).to_pylist() == []
    absent = codec.decode([None, None])
    assert absent.found.tolist() == [False, False]
    assert not absent.any_nulls()
    assert absent.column("l", absent.found).to_pylist() == [None, None]


def test_valid_mask_hides_found_values() -> None:
    """`column(valid=...)` is how serving blanks EXPIRED values: a found value can be masked."""
    codec = ViewCodec(VIEW)
    _, values = codec.encode(rows(2), 1)
    decoded = codec.decode(values)
    assert decoded.column("n", np.array([True, False])).to_pylist() == [0, None]
    assert decoded.any_nulls()


def test_fixed_width_only_views_have_no_variable_part() -> None:
    view = FeatureView("f", entities=[USER], schema=[Field("a", Float64), Field("n", Int32)])
    codec = ViewCodec(view)
    table = rows(2).select(["user_id", "event_timestamp", "a", "n"])
    _, values = codec.encode(table, 1)
    assert all(len(v) == codec.record_size for v in values)
    decoded = codec.decode([values[1], None])
    assert decoded.var_rows is None
    assert decoded.column("a", decoded.found).to_pylist() == [1.5, None]


# --- batch key encoding --------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.integers(-(2**63), 2**63 - 1),
            st.integers(2**63, 2**64),
            st.booleans(),
            st.floats(allow_nan=False),
            st.integers(-1000, 1000).map(np.int64),
            st.none(),
        ),
        max_size=8,
    )
)
def test_encode_rows_matches_encode_row(values: list[Any]) -> None:
    """The batch fast path gives the same keys, or the same error naming the same row."""
    codec = keys_of(("id", Int64))
    rows = [{"id": v} for v in values]
    try:
        expected: list[bytes] | str = [codec.encode_row(row, i) for i, row in enumerate(rows)]
    except SchemaError as exc:
        expected = str(exc)
    try:
        actual: list[bytes] | str = codec.encode_rows(rows)
    except SchemaError as exc:
        actual = str(exc)
    assert actual == expected


def test_encode_rows_names_the_row_missing_a_key() -> None:
    codec = keys_of(("id", Int64))
    with pytest.raises(SchemaError, match=r"entity row 1: missing join key 'id'"):
        codec.encode_rows([{"id": 1}, {"user": 2}])
    composite = keys_of(("id", Int64), ("name", String))
    assert composite.encode_rows([{"id": 1, "name": "a"}]) == [composite.encode_row({"id": 1, "name": "a"}, 0)]
