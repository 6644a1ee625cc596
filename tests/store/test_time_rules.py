"""Issue 7 items 12 and 8 (writes): times are whole microseconds, and event times lie no
further in the future than now + ``write.max_future_seconds`` (default 5 minutes).

A nanosecond time (``pd.to_datetime([1_700_000_000_000_000_001], unit="ns", utc=True)``)
is refused with a `SchemaError` naming the column and the row, on every path: pandas,
pyarrow, polars, lists of dicts, CSV and Parquet files, entity frames, materialize bounds.
Before, each raised a raw `pyarrow.ArrowInvalid`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from store.helpers import USER, online
from strato import ConfigError, FeatureStore, FeatureView, Field, Int64, SchemaError, Timestamp, UserError, clock
from strato.config import load_config

NS = pd.to_datetime([1_700_000_000_000_000_001], unit="ns", utc=True)
WHOLE_NS = pd.to_datetime([1_700_000_000_000_001_000], unit="ns", utc=True)  # ns dtype, whole µs
VIEW = FeatureView("t", entities=[USER], schema=[Field("x", Int64), Field("seen", Timestamp)])
T0 = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture
def timed(store: FeatureStore) -> FeatureStore:
    store.apply([USER, VIEW])
    return store


def frame(times: Any, *, seen: Any = None) -> pd.DataFrame:
    n = len(times)
    return pd.DataFrame({"user_id": range(n), "event_timestamp": times, "x": range(n), "seen": seen or [T0] * n})


def ns_inputs() -> dict[str, Any]:
    times = pd.DatetimeIndex([T0, T0, NS[0]])
    df = frame(times)
    return {
        "pandas": df,
        "pyarrow": pa.Table.from_pandas(df, preserve_index=False),
        "polars": pl.from_pandas(df),
        "list of dicts": df.to_dict("records"),
    }


@pytest.mark.parametrize("container", sorted(ns_inputs()))
def test_a_nanosecond_event_time_is_refused_naming_column_and_row(timed: FeatureStore, container: str) -> None:
    data = ns_inputs()[container]
    with pytest.raises(
        SchemaError, match=r"column 'event_timestamp', row 2: 2023-11-14.22:13:20.000000001\+?0?0?:?0?0? has 1 ns"
    ):
        timed.write("t", data)
    assert timed.delta.version("t__v1") is None


def test_a_nanosecond_timestamp_feature_is_refused_too(timed: FeatureStore) -> None:
    with pytest.raises(SchemaError, match=r"column 'seen', row 1: .* ns past the microsecond"):
        timed.write("t", frame([T0, T0], seen=[T0, NS[0]]))


def test_nanosecond_dtypes_holding_whole_microseconds_are_accepted(timed: FeatureStore) -> None:
    result = timed.write("t", frame(WHOLE_NS))
    assert result.rows == 1
    got = timed.sql("select event_timestamp from t").column(0).to_pylist()
    assert got == [datetime(2023, 11, 14, 22, 13, 20, 1, tzinfo=UTC)]


def test_files_with_nanosecond_times_name_the_row(timed: FeatureStore, tmp_path: Path) -> None:
    parquet = tmp_path / "rows.parquet"
    pq.write_table(pa.Table.from_pandas(frame(pd.DatetimeIndex([T0, NS[0]])), preserve_index=False), parquet)
    with pytest.raises(SchemaError, match=r"'event_timestamp', row 1: .*1 ns past the microsecond"):
        timed.ingest("t", parquet)
    csv = tmp_path / "rows.csv"
    csv.write_text(
        "user_id,event_timestamp,x,seen\n"
        "1,2024-01-01T00:00:00Z,1,2024-01-01T00:00:00Z\n"
        "2,2023-11-14T22:13:20.000000001Z,2,2024-01-01T00:00:00Z\n"
    )
    with pytest.raises(SchemaError, match=r"'event_timestamp', row 1: .*1 ns past the microsecond"):
        timed.ingest("t", csv)
    assert timed.delta.version("t__v1") is None


def test_a_csv_mixing_naive_and_offset_times_names_the_first_row_that_differs(
    timed: FeatureStore, tmp_path: Path
) -> None:
    csv = tmp_path / "mixed.csv"
    csv.write_text(
        "user_id,event_timestamp,x,seen\n"
        "1,2024-01-01T00:00:00,1,2024-01-01T00:00:00Z\n"
        "2,2024-01-01T01:00:00,2,2024-01-01T00:00:00Z\n"
        "3,2024-01-01T02:00:00+01:00,3,2024-01-01T00:00:00Z\n"
    )
    with pytest.raises(
        SchemaError, match=r"'event_timestamp', row 2: '2024-01-01T02:00:00\+01:00' has a UTC offset but row 0"
    ):
        timed.ingest("t", csv)


def test_an_entity_frame_with_nanoseconds_is_refused(timed: FeatureStore) -> None:
    timed.write("t", frame([datetime(2023, 1, 1, tzinfo=UTC)]))
    spine = pd.DataFrame({"user_id": [0, 0], "event_timestamp": pd.DatetimeIndex([T0, NS[0]])})
    with pytest.raises(SchemaError, match=r"entity_df, column 'event_timestamp', row 1: .*1 ns"):
        timed.get_historical_features(spine, ["t:x"])
    whole = pd.DataFrame({"user_id": [0], "event_timestamp": WHOLE_NS})
    assert timed.get_historical_features(whole, ["t:x"]).to_df()["x"].tolist() == [0]


def test_materialize_bounds_with_nanoseconds_are_refused(timed: FeatureStore) -> None:
    ns = pd.Timestamp(1_700_000_000_000_000_001, tz="UTC")
    with pytest.raises(UserError, match=r"materialize end: .*1 ns past the microsecond"):
        timed.materialize(None, ns, progress=False)
    with pytest.raises(UserError, match=r"materialize start: .*1 ns past the microsecond"):
        timed.materialize(ns, datetime.now(UTC), progress=False)
    with pytest.raises(UserError, match=r"materialize end: .*1 ns"):
        timed.materialize_incremental(ns, progress=False)
    # A pandas Timestamp of whole microseconds is a datetime like any other.
    assert timed.materialize(None, pd.Timestamp(datetime.now(UTC)), progress=False).rows == {"t": 0}


def near(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


def test_far_future_event_times_are_refused(timed: FeatureStore) -> None:
    # The report: a row at 9999-12-31 made every later write of its key a no-op forever.
    for moment in (datetime(9999, 12, 31, tzinfo=UTC), near(3600)):
        with pytest.raises(SchemaError, match=r"column 'event_timestamp', row 1: event time .* is in the future"):
            timed.write("t", frame([T0, moment]))
    assert timed.delta.version("t__v1") is None
    timed.write("t", frame([T0, near(60)]))  # within the default 5 minutes of clock skew
    assert online(timed, ["t:x"], [1])["x"] == [1]
    assert clock.DEFAULT_MAX_FUTURE_SECONDS == 300


def test_the_allowance_is_a_setting(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (repo / "strato.yaml").write_text((repo / "strato.yaml").read_text() + "write:\n  max_future_seconds: 7200\n")
    with FeatureStore(repo) as store:
        assert store.config.max_future_seconds == 7200
        assert ("write.max_future_seconds", "7200.0", "strato.yaml") in store.config.describe()
        store.apply([USER, VIEW])
        assert store.write("t", frame([near(3600)])).rows == 1
        with pytest.raises(SchemaError, match=r"later than now \+ 7200 s"):
            store.write("t", frame([near(3 * 3600)]))
    monkeypatch.setenv("STRATO_WRITE__MAX_FUTURE_SECONDS", "0")
    assert load_config(repo).max_future_seconds == 0
    for bad in ("-1", "soon", "nan"):
        monkeypatch.setenv("STRATO_WRITE__MAX_FUTURE_SECONDS", bad)
        with pytest.raises(ConfigError, match=r"write.max_future_seconds: must be a number of seconds >= 0"):
            load_config(repo)
    monkeypatch.delenv("STRATO_WRITE__MAX_FUTURE_SECONDS")
    with pytest.raises(ConfigError, match=r"argument: write.limit: unknown setting"):
        load_config(repo, overrides={"write.limit": 3})


def test_max_future_event_is_now_plus_the_allowance() -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    assert clock.max_future_event(now) == now + timedelta(minutes=5)
    assert clock.max_future_event(now, allowance_seconds=0) == now
    with pytest.raises(UserError, match=r"materialize end .* is in the future"):
        clock.check_not_future(near(3600), "materialize end")
    clock.check_not_future(near(10), "materialize end")
