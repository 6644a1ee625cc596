"""Every field type survives write → get_historical_features and write → materialize →
get_online_features, through the real engines: values equal, nulls kept, NaN kept apart
from null, empty strings, lists and maps kept apart from null."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from store.helpers import USER, same
from strato import (
    Bool,
    Bytes,
    DType,
    FeatureStore,
    FeatureView,
    Field,
    Float32,
    Float64,
    Int32,
    Int64,
    List,
    Map,
    ReadStatus,
    String,
    Timestamp,
    Vector,
)

FIELDS = [
    Field("i32", Int32),
    Field("i64", Int64),
    Field("f32", Float32),
    Field("f64", Float64),
    Field("s", String),
    Field("b", Bytes),
    Field("ok", Bool),
    Field("ts", Timestamp),
    Field("li", List(Int64)),
    Field("ls", List(String)),
    Field("lf", List(Float32)),
    Field("mf", Map(Float64)),
    Field("ms", Map(String)),
    Field("mb", Map(Bool)),
    Field("v", Vector(4)),
]
VIEW = FeatureView("typed", entities=[USER], schema=FIELDS)
REFS = [f"typed:{f.name}" for f in FIELDS]
ARROW_SCHEMA = pa.schema(
    [("user_id", pa.int64()), ("event_timestamp", pa.timestamp("us", tz="UTC"))]
    + [(f.name, f.dtype.to_arrow()) for f in FIELDS]
)
# Events well in the past (materialize reads up to now) and each example in its own second.
BASE = datetime.now(UTC).replace(microsecond=0) - timedelta(days=30)

f32 = st.floats(width=32)
f64 = st.floats()
text = st.text(max_size=12)
timestamps = st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 12, 31), timezones=st.just(UTC))
SCALARS: dict[str, st.SearchStrategy[Any]] = {
    "int32": st.integers(-(2**31), 2**31 - 1),
    "int64": st.integers(-(2**63), 2**63 - 1),
    "float32": f32,
    "float64": f64,
    "string": text,
    "bytes": st.binary(max_size=12),
    "bool": st.booleans(),
    "timestamp": timestamps,
}


def values_of(dtype: DType) -> st.SearchStrategy[Any]:
    """Python values of `dtype`, None included (a null feature)."""
    kind = dtype.kind.value
    if kind in SCALARS:
        inner = SCALARS[kind]
    elif kind == "list":
        assert dtype.item is not None
        inner = st.lists(st.none() | SCALARS[dtype.item.kind.value], max_size=4)
    elif kind == "map":
        assert dtype.item is not None
        inner = st.dictionaries(text, st.none() | SCALARS[dtype.item.kind.value], max_size=4)
    else:
        assert dtype.size is not None
        inner = st.lists(f32, min_size=dtype.size, max_size=dtype.size)  # null elements are refused
    return st.none() | inner


row_values = st.fixed_dictionaries({f.name: values_of(f.dtype) for f in FIELDS})


def expected(field: Field, value: Any) -> Any:
    """What a read returns for `value`: maps come back as Arrow's list of (key, value) pairs."""
    if value is not None and field.dtype.kind.value == "map":
        return list(value.items())
    return value


@pytest.fixture
def typed(store: FeatureStore) -> FeatureStore:
    store.apply([USER, VIEW])
    return store


_example = itertools.count()


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rows=st.lists(row_values, min_size=1, max_size=5))
def test_every_type_round_trips_through_history_and_online(typed: FeatureStore, rows: list[dict[str, Any]]) -> None:
    store = typed
    n = next(_example)
    event = BASE + timedelta(seconds=n)
    first_key = 1000 * n
    keys = list(range(first_key, first_key + len(rows)))
    batch = [{"user_id": k, "event_timestamp": event, **r} for k, r in zip(keys, rows, strict=True)]
    result = store.write("typed", pa.Table.from_pylist(batch, schema=ARROW_SCHEMA), to="offline")
    assert result.rows == len(rows)
    assert result.online_rows == 0

    spine = [{"user_id": k, "event_timestamp": event + timedelta(milliseconds=1)} for k in keys]
    history = store.get_historical_features(spine, REFS).table.to_pylist()
    materialized = store.materialize(event, event + timedelta(seconds=1), progress=False)
    assert materialized.rows == {"typed": len(rows)}
    response = store.get_online_features(REFS, [{"user_id": k} for k in keys])
    live = response.to_arrow().to_pylist()
    assert all(s == ReadStatus.PRESENT for codes in response.statuses().values() for s in codes)

    for i, row in enumerate(rows):
        for field in FIELDS:
            want = expected(field, row[field.name])
            assert same(history[i][field.name], want), (field.name, "history", history[i][field.name], want)
            assert same(live[i][field.name], want), (field.name, "online", live[i][field.name], want)


def test_pandas_frames_round_trip_too(typed: FeatureStore) -> None:
    """The same types from a pandas frame (numpy ints and floats, object columns), nulls included.

    pandas' convention holds for scalar columns (a NaN float is missing, so null), while a NaN
    inside an embedding stays NaN: vectors refuse null elements.
    """
    pd = pytest.importorskip("pandas")
    event = BASE - timedelta(days=1)
    frame = pd.DataFrame(
        {
            "user_id": [1, 2],
            "event_timestamp": [event, event],
            "i32": [7, None],
            "i64": [2**62, -1],
            "f32": [0.25, float("nan")],
            "f64": [None, -0.0],
            "s": ["", None],
            "b": [b"\x00", None],
            "ok": [False, None],
            "ts": [datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), None],
            "li": [[], None],
            "ls": [["a", None], [""]],
            "lf": [[1.5], []],
            "mf": [{}, {"k": None}],
            "ms": [{"a": "b"}, None],
            "mb": [None, {"t": True}],
            "v": [[0.0, -1.0, float("inf"), float("nan")], None],
        }
    )
    store = typed
    store.write("typed", frame)
    spine = [{"user_id": 1, "event_timestamp": event}, {"user_id": 2, "event_timestamp": event}]
    history = store.get_historical_features(spine, REFS).table.to_pylist()
    live = store.get_online_features(REFS, [{"user_id": 1}, {"user_id": 2}]).to_arrow().to_pylist()
    want = [
        {
            "i32": 7, "i64": 2**62, "f32": 0.25, "f64": None, "s": "", "b": b"\x00", "ok": False,
            "ts": datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), "li": [], "ls": ["a", None],
            "lf": [1.5], "mf": [], "ms": [("a", "b")], "mb": None, "v": [0.0, -1.0, float("inf"), float("nan")],
        },
        {
            "i32": None, "i64": -1, "f32": None, "f64": -0.0, "s": None, "b": None, "ok": None,
            "ts": None, "li": None, "ls": [""], "lf": [], "mf": [("k", None)], "ms": None, "mb": [("t", True)],
            "v": None,
        },
    ]  # fmt: skip
    for got in (history, live):
        for i in range(2):
            for name, value in want[i].items():
                assert same(got[i][name], value), (name, i, got[i][name], value)
