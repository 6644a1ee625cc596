"""`online.rows` and the fast response shapes against the Arrow path, over random schemas.

`to_dict()` reads Python values straight from the stored bytes and `to_numpy()` gathers per
dtype; both must give exactly what the typed Arrow columns give (`to_arrow().to_pydict()`,
and those columns cast to float64), value for value and type for type: NaN and infinities,
nulls, absent and expired rows, float32 precision, timestamps (also inside lists and maps),
strings, bytes, lists, maps and vectors, in any feature order and over several views.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given, settings
from hypothesis import strategies as st

from strato.definitions.entity import Entity
from strato.definitions.feature_view import FeatureView
from strato.definitions.field import Field
from strato.online.codec import ViewCodec
from strato.online.response import FeatureGather, OnlineResponse, ViewResult
from strato.types import (
    TIMESTAMP_ARROW,
    Bool,
    Bytes,
    DType,
    Float32,
    Float64,
    Int32,
    Int64,
    Kind,
    List,
    Map,
    String,
    Timestamp,
    Vector,
)

NOW_US = 1_800_000_000_000_000
TTL = timedelta(hours=1)
NUMERIC = [Int32, Int64, Float32, Float64, Bool, Timestamp]
SCALARS = [*NUMERIC, String, Bytes]


def _scalar(dtype: DType) -> st.SearchStrategy[Any]:
    kind = dtype.kind
    if kind is Kind.INT32:
        return st.integers(-(2**31), 2**31 - 1)
    if kind is Kind.INT64:
        return st.integers(-(2**63), 2**63 - 1)
    if kind is Kind.FLOAT32:
        return st.floats(width=32)  # NaN and infinities included
    if kind is Kind.FLOAT64:
        return st.floats()
    if kind is Kind.BOOL:
        return st.booleans()
    if kind is Kind.TIMESTAMP:
        return st.datetimes(datetime(1900, 1, 1), datetime(9000, 1, 1), timezones=st.just(UTC))
    if kind is Kind.STRING:
        return st.text(st.characters(blacklist_categories=("Cs",)), max_size=8)
    return st.binary(max_size=8)


def _value(dtype: DType) -> st.SearchStrategy[Any]:
    if dtype.kind is Kind.LIST:
        assert dtype.item is not None
        value: st.SearchStrategy[Any] = st.lists(st.none() | _scalar(dtype.item), max_size=4)
    elif dtype.kind is Kind.MAP:
        assert dtype.item is not None
        value = st.lists(st.tuples(_scalar(String), st.none() | _scalar(dtype.item)), max_size=3)
    elif dtype.kind is Kind.VECTOR:
        assert dtype.size is not None
        value = st.lists(st.floats(width=32), min_size=dtype.size, max_size=dtype.size)
    else:
        value = _scalar(dtype)
    return st.none() | value


DTYPES: st.SearchStrategy[DType] = st.one_of(
    st.sampled_from(SCALARS),
    st.sampled_from(SCALARS).map(List),
    st.sampled_from(SCALARS).map(Map),
    st.integers(1, 3).map(Vector),
)


@st.composite
def _cases(draw: st.DrawFn, dtypes: st.SearchStrategy[DType]) -> tuple[ViewCodec, list[list[str]], list[Any]]:
    """A random view, 1–2 random feature selections of it, and random stored rows."""
    types = draw(st.lists(dtypes, min_size=1, max_size=14))
    schema = [Field(f"f{i}", dtype) for i, dtype in enumerate(types)]
    view = FeatureView("v", entities=[Entity("e", join_keys={"id": Int64})], schema=schema, ttl=TTL)
    names = [f.name for f in schema]
    selections = draw(
        st.lists(
            st.lists(st.sampled_from(names), min_size=1, unique=True).flatmap(st.permutations), min_size=1, max_size=2
        )
    )
    row = st.fixed_dictionaries({f.name: _value(f.dtype) for f in schema})
    entities = draw(st.lists(st.tuples(st.sampled_from(["absent", "fresh", "expired"]), row), max_size=40))
    return ViewCodec(view), selections, entities


def _encode(codec: ViewCodec, entities: list[tuple[str, dict[str, Any]]]) -> list[bytes | None]:
    stored = [(state, row) for state, row in entities if state != "absent"]
    if not stored:
        return [None] * len(entities)
    age = {"fresh": 0, "expired": TTL // timedelta(microseconds=1) + 1}
    columns: dict[str, Any] = {
        "id": pa.array(range(len(stored)), pa.int64()),
        "event_timestamp": pa.array([NOW_US - age[state] for state, _ in stored]).cast(TIMESTAMP_ARROW),
    }
    for f in codec.view.schema:
        columns[f.name] = pa.array([row[f.name] for _, row in stored], f.dtype.to_arrow())
    _, values = codec.encode(pa.table(columns), NOW_US)
    it = iter(values)
    return [None if state == "absent" else next(it) for state, _ in entities]


def _response(codec: ViewCodec, selections: list[list[str]], values: list[bytes | None]) -> OnlineResponse:
    rows = [{"id": np.int64(i) if i % 2 else i} for i in range(len(values))]  # numpy keys too
    parts = [
        ViewResult(FeatureGather(codec, features), tuple(f"s{k}_{f}" for f in features), list(values), TTL, NOW_US)
        for k, features in enumerate(selections)
    ]
    return OnlineResponse(rows, ["id"], parts)


def _same(a: Any, b: Any) -> bool:
    """Equal in value and type; NaN equals NaN."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, datetime):
        return a == b and a.tzinfo == b.tzinfo
    return bool(a == b)


@settings(max_examples=200, deadline=None)
@given(case=_cases(DTYPES))
def test_to_dict_equals_the_arrow_path(case: tuple[ViewCodec, list[list[str]], list[Any]]) -> None:
    codec, selections, entities = case
    response = _response(codec, selections, _encode(codec, entities))
    fast = response.to_dict()
    arrow = response.to_arrow().to_pydict()
    assert _same(fast, arrow), (fast, arrow)


def _numpy_oracle(response: OnlineResponse) -> np.ndarray:
    table = response.to_arrow()
    columns = []
    for name in response.feature_names:
        column = table.column(name)
        if pa.types.is_timestamp(column.type):
            column = column.cast(pa.int64())
        column = pc.cast(column, pa.float64(), safe=False).fill_null(math.nan)
        columns.append(column.to_numpy())
    return np.column_stack(columns) if columns else np.empty((len(response), 0))


@settings(max_examples=200, deadline=None)
@given(case=_cases(st.sampled_from(NUMERIC)))
def test_to_numpy_on_mixed_dtypes_equals_the_arrow_path(case: tuple[ViewCodec, list[list[str]], list[Any]]) -> None:
    """Both `to_numpy` paths (row by row under 33 entities, vectorized above), per run or per dtype."""
    codec, selections, entities = case
    values = _encode(codec, entities)
    expected = _numpy_oracle(_response(codec, selections, values))
    np.testing.assert_array_equal(_response(codec, selections, values).to_numpy(), expected)
    decoded_first = _response(codec, selections, values)
    decoded_first.statuses()  # decodes the batch: to_numpy then takes the vectorized path
    np.testing.assert_array_equal(decoded_first.to_numpy(), expected)


def test_a_cycling_schema_gathers_per_dtype() -> None:
    """float32/float64/int64 cycling: one run per feature, so `to_numpy` gathers per dtype (3 copies)."""
    types = [Float32, Float64, Int64] * 40
    view = FeatureView(
        "v",
        entities=[Entity("e", join_keys={"id": Int64})],
        schema=[Field(f"f{i}", t) for i, t in enumerate(types)],
    )
    gather = FeatureGather(ViewCodec(view), [f"f{i}" for i in range(120)])
    assert len(gather.runs) == 120
    assert not gather.by_runs
    assert len(gather.groups) == 3


@settings(max_examples=100, deadline=None)
@given(case=_cases(DTYPES))
def test_to_df_equals_the_arrow_tables_pandas_frame(case: tuple[ViewCodec, list[list[str]], list[Any]]) -> None:
    """`to_df` builds small frames from `RowReader`'s values: same columns, dtypes and values as Arrow's."""
    codec, selections, entities = case
    response = _response(codec, selections, _encode(codec, entities))
    pd.testing.assert_frame_equal(response.to_df(), response.to_arrow().to_pandas())
