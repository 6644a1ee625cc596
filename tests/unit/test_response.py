"""`online.response`: both `to_numpy` paths (row by row and vectorized) against a plain oracle.

The row-by-row path reads the backend's bytes directly and the vectorized one goes through
the batch decoder; they must agree with each other and with the Python values written, for
absent keys, expired values, null features and every numeric type, in any feature order.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from strato.definitions.entity import Entity
from strato.definitions.feature_view import FeatureView
from strato.definitions.field import Field
from strato.online.codec import ViewCodec
from strato.online.response import FeatureGather, OnlineResponse, ViewResult
from strato.types import TIMESTAMP_ARROW, Bool, Float32, Float64, Int32, Int64, ReadStatus, Timestamp

NOW_US = 1_800_000_000_000_000
TTL = timedelta(hours=1)
TYPES = {"i32": Int32, "i64": Int64, "f32": Float32, "f64": Float64, "b": Bool, "ts": Timestamp}
SCHEMA = [Field(f"{name}_{i}", dtype) for i in range(2) for name, dtype in TYPES.items()]
VIEW = FeatureView("v", entities=[Entity("e", join_keys={"id": Int64})], schema=SCHEMA, ttl=TTL)
CODEC = ViewCodec(VIEW)


def _value_strategy(dtype: Any) -> st.SearchStrategy[Any]:
    base: st.SearchStrategy[Any] = {
        Int32: st.integers(-(2**31), 2**31 - 1),
        Int64: st.integers(-(2**53), 2**53),
        Float32: st.floats(width=32, allow_nan=False, allow_infinity=False),
        Float64: st.floats(allow_nan=False, allow_infinity=False),
        Bool: st.booleans(),
        Timestamp: st.integers(0, 2**52),
    }[dtype]
    return st.none() | base


ROW = st.fixed_dictionaries({f.name: _value_strategy(f.dtype) for f in SCHEMA})
ENTITY = st.tuples(st.sampled_from(["absent", "fresh", "expired"]), ROW)


def _encode(entities: list[tuple[str, dict[str, Any]]]) -> list[bytes | None]:
    stored = [(state, row) for state, row in entities if state != "absent"]
    if not stored:
        return [None] * len(entities)
    age = {"fresh": 0, "expired": TTL // timedelta(microseconds=1) + 1}
    columns: dict[str, Any] = {
        "id": pa.array(range(len(stored)), pa.int64()),
        "event_timestamp": pa.array([NOW_US - age[state] for state, _ in stored]).cast(TIMESTAMP_ARROW),
    }
    for f in SCHEMA:
        column = pa.array([row[f.name] for _, row in stored])
        if f.dtype == Timestamp:
            column = column.cast(pa.int64()).cast(TIMESTAMP_ARROW)
        columns[f.name] = column.cast(f.dtype.to_arrow())
    _, values = CODEC.encode(pa.table(columns), NOW_US)
    it = iter(values)
    return [None if state == "absent" else next(it) for state, _ in entities]


def _oracle(entities: list[tuple[str, dict[str, Any]]], features: list[str]) -> np.ndarray:
    out = np.full((len(entities), len(features)), np.nan)
    for i, (state, row) in enumerate(entities):
        if state != "fresh":
            continue
        for j, name in enumerate(features):
            value = row[name]
            if value is not None:
                out[i, j] = float(np.float32(value)) if name.startswith("f32") else float(value)
    return out


@settings(max_examples=150, deadline=None)
@given(
    entities=st.lists(ENTITY, min_size=1, max_size=20),
    features=st.lists(st.sampled_from([f.name for f in SCHEMA]), min_size=1, max_size=12, unique=True),
)
def test_both_to_numpy_paths_match_the_oracle(entities: list[tuple[str, dict[str, Any]]], features: list[str]) -> None:
    values = _encode(entities)
    gather = FeatureGather(CODEC, features)
    rows = [{"id": i} for i in range(len(entities))]

    def response() -> OnlineResponse:
        return OnlineResponse(rows, ["id"], [ViewResult(gather, tuple(features), list(values), TTL, NOW_US)])

    expected = _oracle(entities, features)
    by_rows = np.full_like(expected, -1.0)
    gather.to_numpy_rows(values, response()._parts[0].expired_before_us, by_rows, 0)
    vectorized = np.full_like(expected, -1.0)
    part = response()._parts[0]
    gather.to_numpy(part.decoded, part.status == ReadStatus.PRESENT, vectorized, 0)
    np.testing.assert_array_equal(by_rows, expected)
    np.testing.assert_array_equal(vectorized, expected)
    np.testing.assert_array_equal(response().to_numpy(), expected)


def test_statuses_follow_the_rows() -> None:
    row = {f.name: None for f in SCHEMA}
    entities = [("fresh", row), ("absent", row), ("expired", row)]
    response = OnlineResponse(
        [{"id": i} for i in range(3)],
        ["id"],
        [ViewResult(FeatureGather(CODEC, ["f64_0"]), ("f64_0",), _encode(entities), TTL, NOW_US)],
    )
    assert response.statuses() == {"f64_0": [ReadStatus.PRESENT, ReadStatus.NOT_FOUND, ReadStatus.EXPIRED]}
    assert math.isnan(response.to_numpy()[0, 0])  # present but null
    assert response.to_dict() == {"id": [0, 1, 2], "f64_0": [None, None, None]}


def test_expiry_boundary_is_exclusive() -> None:
    """A value exactly `ttl` old is still fresh; one microsecond older is expired (rule 4)."""
    now = datetime.fromtimestamp(NOW_US / 1e6, UTC)
    table = pa.table(
        {
            "id": pa.array([0, 1], pa.int64()),
            "event_timestamp": pa.array([now - TTL, now - TTL - timedelta(microseconds=1)], TIMESTAMP_ARROW),
            **{f.name: pa.array([1, 1]).cast(f.dtype.to_arrow()) for f in SCHEMA},
        }
    )
    _, values = CODEC.encode(table, NOW_US)
    gather = FeatureGather(CODEC, ["i64_0"])
    part = ViewResult(gather, ("i64_0",), list(values), TTL, NOW_US)
    out = np.zeros((2, 1))
    gather.to_numpy_rows(values, part.expired_before_us, out, 0)
    assert out[0, 0] == 1
    assert math.isnan(out[1, 0])
    assert list(part.status) == [ReadStatus.PRESENT, ReadStatus.EXPIRED]


def test_no_entity_rows_give_empty_results_in_every_shape() -> None:
    response = OnlineResponse([], ["id"], [ViewResult(FeatureGather(CODEC, ["f64_0"]), ("f64_0",), [], TTL, NOW_US)])
    assert response.to_dict() == {"id": [], "f64_0": []}
    assert response.to_numpy().shape == (0, 1)
    assert response.statuses() == {"f64_0": []}


WIDE = FeatureView(
    "w",
    entities=[Entity("e", join_keys={"id": Int64})],
    schema=[Field(f"f{i}", Int64 if i == 3 else Float64) for i in range(7)],
)
WIDE_CODEC = ViewCodec(WIDE)


@settings(max_examples=100, deadline=None)
@given(
    rows=st.lists(
        # |x| < 2**53 keeps float → int64 → float exact for the int64 column.
        st.lists(st.none() | st.floats(min_value=-(2.0**40), max_value=2.0**40, width=32), min_size=7, max_size=7),
        min_size=1,
        max_size=5,
    ),
    first_col=st.integers(0, 3),
)
def test_runs_of_float64_copied_as_bytes_land_in_the_right_columns(
    rows: list[list[float | None]], first_col: int
) -> None:
    """Runs of adjacent float64 features are byte-copied into the output; an int64 between them breaks the run."""
    columns: dict[str, Any] = {
        "id": pa.array(range(len(rows)), pa.int64()),
        "event_timestamp": pa.array([NOW_US] * len(rows)).cast(TIMESTAMP_ARROW),
    }
    for i in range(7):
        values = [r[i] if i != 3 or r[i] is None else int(r[i]) for r in rows]
        columns[f"f{i}"] = pa.array(values, pa.int64() if i == 3 else pa.float64())
    _, values = WIDE_CODEC.encode(pa.table(columns), NOW_US)
    features = [f"f{i}" for i in range(7)]
    gather = FeatureGather(WIDE_CODEC, features)
    assert [count for _, count, *_ in gather.runs] == [3, 1, 3]
    out = np.full((len(rows), first_col + 7 + 2), -1.0)
    gather.to_numpy_rows(list(values), None, out, first_col)
    expected = np.array(
        [[np.nan if v is None else float(int(v)) if i == 3 else v for i, v in enumerate(r)] for r in rows]
    )
    np.testing.assert_array_equal(out[:, first_col : first_col + 7], expected)
    assert (out[:, :first_col] == -1).all()
    assert (out[:, first_col + 7 :] == -1).all()
