"""Interval arithmetic of batch transformations (`strato.intervals`) against a model of points.

Times are whole minutes after an epoch, so the model can list every minute an interval set
covers: `normalize`, `union` and `subtract` must cover exactly the model's minutes, in the
canonical form (sorted, disjoint, non-adjacent, non-empty) the registry stores.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strato.intervals import Interval, normalize, split, subtract, total, union

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def at(minute: int) -> datetime:
    return EPOCH + minute * MINUTE


intervals = st.lists(st.tuples(st.integers(0, 60), st.integers(0, 60)).map(lambda p: (at(p[0]), at(p[1]))), max_size=8)


def minutes(parts: list[Interval]) -> set[int]:
    """The model: every minute ``m`` with ``start <= at(m) < end`` for some interval."""
    return {m for start, end in parts for m in range(61) if start <= at(m) < end}


def canonical(parts: list[Interval]) -> bool:
    return all(s < e for s, e in parts) and all(a[1] < b[0] for a, b in itertools.pairwise(parts))


@given(intervals)
def test_normalize_keeps_exactly_the_covered_times(parts: list[Interval]) -> None:
    got = normalize(parts)
    assert canonical(got)
    assert minutes(got) == minutes(parts)
    assert normalize(got) == got


@given(intervals, intervals)
def test_union_covers_both(a: list[Interval], b: list[Interval]) -> None:
    got = union(a, b)
    assert canonical(got)
    assert minutes(got) == minutes(a) | minutes(b)
    assert got == union(b, a)


@given(intervals, intervals)
def test_subtract_leaves_only_the_gaps(wanted: list[Interval], done: list[Interval]) -> None:
    gaps = subtract(wanted, done)
    assert canonical(gaps)
    assert minutes(gaps) == minutes(wanted) - minutes(done)
    # Computing the gaps and recording them covers everything wanted: a second run has nothing to do.
    assert subtract(wanted, union(done, gaps)) == []


@given(st.integers(0, 60), st.integers(0, 60), st.integers(1, 30))
def test_split_cuts_into_consecutive_steps(a: int, b: int, step: int) -> None:
    pieces = split((at(a), at(b)), step * MINUTE)
    if a >= b:
        assert pieces == []
        return
    assert pieces[0][0] == at(a)
    assert pieces[-1][1] == at(b)
    assert all(p[1] == q[0] for p, q in itertools.pairwise(pieces))
    assert all(e - s <= step * MINUTE for s, e in pieces)
    assert all(e - s == step * MINUTE for s, e in pieces[:-1])
    assert split((at(a), at(b)), None) == [(at(a), at(b))]


@given(intervals)
def test_total_counts_each_time_once(parts: list[Interval]) -> None:
    assert total(parts) == len(minutes(parts)) * MINUTE


def test_overlapping_requests_leave_only_the_middle_gap() -> None:
    done = [(at(0), at(10)), (at(20), at(30))]
    assert subtract([(at(5), at(25))], done) == [(at(10), at(20))]
    assert union(done, [(at(10), at(20))]) == [(at(0), at(30))]


def test_split_refuses_a_non_positive_step() -> None:
    with pytest.raises(ValueError, match="positive"):
        split((at(0), at(1)), timedelta(0))
