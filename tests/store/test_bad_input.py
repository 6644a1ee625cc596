"""Design rule 7 through the store: a batch with one bad row raises a `SchemaError` naming the
column (and row), and leaves the Delta table version, the history rows and every online value
exactly as they were (rules 1 and 7: all rows or none)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from store.helpers import USER, online
from strato import FeatureStore, FeatureView, Field, Int64, SchemaError, String, UserError, Vector

BASE = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
N_KEYS = 6
VIEW = FeatureView("guarded", entities=[USER], schema=[Field("x", Int64), Field("tag", String), Field("v", Vector(3))])
REFS = ["guarded:x", "guarded:tag", "guarded:v"]


def good_row(user_id: int, *, hours: int, x: int) -> dict[str, Any]:
    return {
        "user_id": user_id,
        "event_timestamp": BASE + timedelta(hours=hours),
        "x": x,
        "tag": f"t{x}",
        "v": [float(x), 0.5, -1.0],
    }


def _set(column: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def corrupt(row: dict[str, Any]) -> None:
        row[column] = value

    return corrupt


# name -> (column the error must name, whether it must name the row, how to spoil one row)
CORRUPTIONS: dict[str, tuple[str, bool, Callable[[dict[str, Any]], None]]] = {
    "text in an int feature": ("x", True, _set("x", "abc")),
    "fraction in an int feature": ("x", True, _set("x", 2.5)),
    "int too large for int64": ("x", True, _set("x", 2**70)),
    "int in a string feature": ("tag", True, _set("tag", 17)),
    "null join key": ("user_id", True, _set("user_id", None)),
    "text join key": ("user_id", True, _set("user_id", "u1")),
    "null event time": ("event_timestamp", True, _set("event_timestamp", None)),
    "unparseable event time": ("event_timestamp", True, _set("event_timestamp", "yesterday-ish")),
    "vector too short": ("v", True, _set("v", [1.0, 2.0])),
    "vector too long": ("v", True, _set("v", [1.0, 2.0, 3.0, 4.0])),
    "null inside a vector": ("v", True, _set("v", [1.0, None, 3.0])),
    "text inside a vector": ("v", True, _set("v", [1.0, "a", 3.0])),
}


def snapshot_state(store: FeatureStore) -> tuple[Any, ...]:
    """Everything a partial write could change: table version, history rows, online values."""
    fv = store.get_feature_view("guarded")
    history = store.sql("select user_id, event_timestamp, x, tag from guarded order by all").to_pylist()
    values = online(store, REFS, range(N_KEYS + 2))
    statuses = store.get_online_features(REFS, [{"user_id": u} for u in range(N_KEYS + 2)]).statuses()
    return store.delta.version(fv.table_name), history, values, statuses


@pytest.fixture
def guarded(store: FeatureStore) -> FeatureStore:
    store.apply([USER, VIEW])
    result = store.write("guarded", [good_row(u, hours=0, x=u) for u in range(N_KEYS)])
    assert result.table_version == 0
    assert result.online_rows == N_KEYS
    return store


def as_frame(rows: list[dict[str, Any]], container: str) -> Any:
    if container == "pandas":
        return pd.DataFrame(rows)
    return rows


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    n=st.integers(min_value=1, max_value=8),
    data=st.data(),
    corruption=st.sampled_from(sorted(CORRUPTIONS)),
    container=st.sampled_from(["list", "pandas"]),
)
def test_one_bad_row_rejects_the_whole_batch(
    guarded: FeatureStore, n: int, data: st.DataObject, corruption: str, container: str
) -> None:
    # A batch whose tags are all ints casts to text ("17"): lenient, not an error, so not tested here.
    assume(not (corruption == "int in a string feature" and n == 1))
    store = guarded
    before = snapshot_state(store)
    bad = data.draw(st.integers(min_value=0, max_value=n - 1), label="bad row")
    # Newer events for keys that exist online and offline, so any partial write would show.
    rows = [good_row(i % (N_KEYS + 2), hours=1 + i, x=100 + i) for i in range(n)]
    column, names_row, corrupt = CORRUPTIONS[corruption]
    corrupt(rows[bad])
    with pytest.raises(SchemaError) as info:
        store.write("guarded", as_frame(rows, container))
    message = str(info.value)
    assert "'guarded'" in message
    assert f"'{column}'" in message
    if names_row:
        assert f"row {bad}" in message
    assert "\n" not in message.strip()
    assert snapshot_state(store) == before


@pytest.mark.parametrize(
    ("drop", "container"),
    [("x", "list"), ("user_id", "list"), ("event_timestamp", "list"), ("v", "pandas"), ("user_id", "arrow")],
)
def test_a_missing_column_is_named_and_nothing_is_written(guarded: FeatureStore, drop: str, container: str) -> None:
    before = snapshot_state(guarded)
    rows = [{k: v for k, v in good_row(u, hours=3, x=50 + u).items() if k != drop} for u in range(3)]
    data = pa.Table.from_pylist(rows) if container == "arrow" else as_frame(rows, container)
    with pytest.raises(SchemaError, match=f"missing .*{drop}"):
        guarded.write("guarded", data)
    assert snapshot_state(guarded) == before


def test_an_unknown_column_is_named_and_nothing_is_written(guarded: FeatureStore) -> None:
    before = snapshot_state(guarded)
    rows = [{**good_row(u, hours=3, x=50 + u), "surprise": 1} for u in range(3)]
    with pytest.raises(SchemaError, match="unknown columns \\['surprise'\\]"):
        guarded.write("guarded", rows)
    assert snapshot_state(guarded) == before


def test_a_pyarrow_batch_with_a_retyped_column_is_refused(guarded: FeatureStore) -> None:
    before = snapshot_state(guarded)
    table = pa.Table.from_pylist([good_row(u, hours=3, x=u) for u in range(3)]).set_column(
        3, "tag", pa.array([b"a", b"b", b"\xff"], pa.binary())
    )
    with pytest.raises(SchemaError, match="'tag', row 2"):
        guarded.write("guarded", table)
    assert snapshot_state(guarded) == before


@pytest.mark.parametrize("data", [42, "rows", [1, 2], None], ids=["int", "str", "list-of-ints", "none"])
def test_data_that_is_not_a_frame_is_a_schema_error(guarded: FeatureStore, data: Any) -> None:
    before = snapshot_state(guarded)
    with pytest.raises(SchemaError, match="'guarded'"):
        guarded.write("guarded", data)
    assert snapshot_state(guarded) == before


def test_after_a_rejected_batch_a_good_batch_still_lands_whole(guarded: FeatureStore) -> None:
    rows = [good_row(u, hours=5, x=200 + u) for u in range(3)]
    rows[1]["x"] = "oops"
    with pytest.raises(UserError):
        guarded.write("guarded", rows)
    rows[1]["x"] = 201
    result = guarded.write("guarded", rows)
    assert result.table_version == 1
    assert result.rows == 3
    assert online(guarded, ["guarded:x"], [0, 1, 2, 3])["x"] == [200, 201, 202, 3]
