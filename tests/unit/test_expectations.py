"""`Expect` and the validation pass, without a store: rules refused at definition time with a
message naming the field and the rule, specs that round-trip, and `screen` agreeing with a
row-by-row oracle on random columns."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strato import DefinitionError, Entity, Expect, FeatureView, Field, Float64, Int64, String, Timestamp
from strato.definitions.plan import Action, make_plan
from strato.monitoring.stats import column_stats
from strato.monitoring.validation import screen

USER = Entity("user", join_keys={"user_id": Int64})
JAN = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Expect(ge=1, gt=0), "give ge or gt, not both"),
        (lambda: Expect(ge=5, le=1), "holds no value"),
        (lambda: Expect(gt=1, lt=1), "holds no value"),
        (lambda: Expect(ge=float("nan")), "must not be NaN"),
        (lambda: Expect(ge="0"), "ge must be a number or a datetime"),
        (lambda: Expect(ge=datetime(2026, 1, 1)), "timezone-aware"),
        (lambda: Expect(ge=0, le=JAN), "must both be numbers or both datetimes"),
        (lambda: Expect(allowed="FR"), "allowed must be a list"),
        (lambda: Expect(allowed=[]), "at least one value"),
        (lambda: Expect(regex="[a-"), "regex '[a-' is invalid"),
        (lambda: Expect(max_null_fraction=1.5), "between 0 and 1"),
        (lambda: Field("code", Int64, expect=Expect(regex="x")), "field 'code': regex needs a string field"),
        (lambda: Field("code", String, expect=Expect(ge=0)), "field 'code': range rules"),
        (lambda: Field("at", Timestamp, expect=Expect(ge=0)), "field 'at': range rules"),
        (lambda: Field("n", Int64, expect=Expect(ge=JAN)), "field 'n': a datetime bound needs a timestamp field"),
        (lambda: Field("n", Int64, expect=Expect(allowed=["a"])), "field 'n': allowed values ['a'] are not int64"),
        (lambda: Field("n", Int64, expect=Expect(allowed=[True])), "are not int64"),
        (lambda: Field("n", Int64, expect={"ge": 0}), "field 'n': expect must be an Expect"),
    ],
)
def test_bad_rules_are_refused_naming_the_field_and_rule(make: Any, message: str) -> None:
    with pytest.raises(DefinitionError, match=re.escape(message)):
        make()


def test_quarantine_columns_cannot_be_features() -> None:
    with pytest.raises(DefinitionError, match="quarantine_reason"):
        FeatureView("v", entities=[USER], schema=[Field("quarantine_reason", String)], on_invalid="quarantine")


@pytest.mark.parametrize(
    "expect",
    [
        Expect(ge=0, lt=10.5, max_null_fraction=0.0),
        Expect(gt=JAN, le=JAN + timedelta(days=1)),
        Expect(allowed=["FR", "DE"], regex="[A-Z]+"),
        Expect(allowed=[JAN]),
    ],
)
def test_rules_round_trip_through_their_spec(expect: Expect) -> None:
    assert Expect.from_spec(expect.to_spec()) == expect


def test_changing_rules_is_a_compatible_change() -> None:
    old = FeatureView("v", entities=[USER], schema=[Field("x", Float64)])
    new = FeatureView("v", entities=[USER], schema=[Field("x", Float64, expect=Expect(ge=0))], on_invalid="quarantine")
    assert FeatureView.from_spec(new.to_spec(), {"user": USER}) == new
    assert old.to_spec() == FeatureView("v", entities=[USER], schema=[Field("x", Float64)]).to_spec()
    [change] = [
        c
        for c in make_plan([USER, new], {("entity", "user"): USER, ("feature_view", "v"): old}).changes
        if c.name == "v"
    ]
    assert change.action is Action.UPDATE
    assert "updates field x" in change.details
    assert "on_invalid 'reject' -> 'quarantine'" in change.details


def test_an_empty_expect_is_no_rule() -> None:
    assert Field("x", Float64, expect=Expect()).expect is None


_floats = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True, width=64))


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(_floats, max_size=30),
    low=st.one_of(st.none(), st.floats(-100, 100)),
    width=st.floats(0, 100),
    inclusive=st.booleans(),
)
def test_a_range_flags_what_a_row_by_row_check_flags(
    values: list[float | None], low: float | None, width: float, inclusive: bool
) -> None:
    high = None if low is None else low + width
    if high == low and not inclusive:
        return  # an empty range is refused at definition time
    expect = Expect(ge=low, le=high) if inclusive else Expect(gt=low, lt=high)
    view = FeatureView("v", entities=[USER], schema=[Field("x", Float64, expect=expect)])
    rows = _rows({"x": pa.array(values, pa.float64())})
    verdict = screen(view, rows)

    def bad(v: float | None) -> bool:
        if v is None or low is None or high is None:
            return v is not None and math.isnan(v) and low is not None
        if math.isnan(v):
            return True
        return not (low <= v <= high) if inclusive else not (low < v < high)

    assert list(verdict.offending) == [bad(v) for v in values]


@settings(max_examples=100, deadline=None)
@given(values=st.lists(st.one_of(st.none(), st.integers(-(2**62), 2**62)), max_size=20), bound=st.floats(-1e6, 1e6))
def test_an_int_column_compares_exactly_with_a_fractional_bound(values: list[int | None], bound: float) -> None:
    view = FeatureView("v", entities=[USER], schema=[Field("n", Int64, expect=Expect(ge=bound))])
    verdict = screen(view, _rows({"n": pa.array(values, pa.int64())}))
    assert list(verdict.offending) == [v is not None and v < bound for v in values]


def test_timestamp_bounds_and_allowed_values() -> None:
    view = FeatureView(
        "v",
        entities=[USER],
        schema=[
            Field("at", Timestamp, expect=Expect(ge=JAN)),
            Field("tier", Int64, expect=Expect(allowed=[1, 2, 3])),
        ],
    )
    at = pa.array([JAN - timedelta(microseconds=1), JAN, None], pa.timestamp("us", tz="UTC"))
    verdict = screen(view, _rows({"at": at, "tier": pa.array([1, 4, None], pa.int64())}))
    assert list(verdict.offending) == [True, True, False]
    assert "row 0 (at=2025-12-31T23:59:59.999999+00:00)" in verdict.message("v")
    assert verdict.reasons == (
        "at: ge=datetime.datetime(2026, 1, 1, 0, 0, tzinfo=datetime.timezone.utc)",
        "tier: allowed=[1, 2, 3]",
    )


@settings(max_examples=50, deadline=None)
@given(values=st.lists(st.one_of(st.none(), st.floats(-1e9, 1e9)), min_size=1, max_size=50))
def test_statistics_match_numpy(values: list[float | None]) -> None:
    stats = column_stats(pa.chunked_array([pa.array(values, pa.float64())]))
    present = np.array([v for v in values if v is not None])
    assert (stats["count"], stats["nulls"]) == (len(values), len(values) - len(present))
    if len(present):
        assert stats["min"] == present.min()
        assert stats["max"] == present.max()
        assert stats["mean"] == pytest.approx(present.mean(), rel=1e-9, abs=1e-6)
        assert stats["std"] == pytest.approx(present.std(), rel=1e-6, abs=1e-3)
        assert present.min() <= stats["quantiles"]["p50"] <= present.max()


def _rows(columns: dict[str, pa.Array]) -> pa.Table:
    n = len(next(iter(columns.values())))
    keys = {
        "user_id": pa.array(range(n), pa.int64()),
        "event_timestamp": pa.array([JAN] * n, pa.timestamp("us", tz="UTC")),
    }
    return pa.table({**keys, **columns})
