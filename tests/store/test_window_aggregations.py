"""Windowed aggregations: online tiles (every online backend) against the offline values and a
brute-force oracle over the raw events, on random histories written in random batches.

The store's clock (`strato.clock.now_us`) is driven by the test: each batch is written at
its arrival time, each read happens at a chosen time in between. Offline values are read
with `versions=` pinned to the table version of the last batch written before the read,
so both sides saw the same events (design rule 12: online at t equals offline as of t).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contract.online.conftest import HARNESSES, backend_params  # tests/ is on sys.path (tests/store/conftest.py)
from strato import Entity, FeatureStore, FeatureView, Field, Float64, Int64, String, clock
from strato.config import write_default_config
from strato.definitions.aggregation import Aggregation
from strato.streaming.tiles import hll_estimate, hll_of

USER = Entity("user", join_keys={"user_id": Int64})
AGGREGATIONS = [
    Aggregation("amount", "sum", timedelta(minutes=10)),
    Aggregation("amount", "mean", timedelta(hours=1)),
    Aggregation("amount", "min", timedelta(minutes=10)),
    Aggregation("amount", "max", timedelta(days=1)),
    Aggregation("amount", "last", timedelta(minutes=10)),
    Aggregation("qty", "sum", timedelta(hours=1)),
    Aggregation("qty", "count", timedelta(minutes=10)),
    Aggregation("qty", "mean", timedelta(minutes=10)),
    Aggregation("shop", "last", timedelta(hours=1)),
    Aggregation("shop", "count", timedelta(days=1)),
    Aggregation("shop", "approx_count_distinct", timedelta(hours=1)),
    Aggregation("qty", "approx_count_distinct", timedelta(minutes=10)),
]
NAMES = [a.name for a in AGGREGATIONS]
LATENESS = timedelta(minutes=5)
US = 1_000_000


def view(name: str, lateness: timedelta | None) -> FeatureView:
    return FeatureView(
        name,
        entities=[USER],
        schema=[Field("amount", Float64), Field("qty", Int64), Field("shop", String)],
        aggregations=AGGREGATIONS,
        allowed_lateness=lateness,
    )


@dataclass(frozen=True)
class Event:
    user: int
    ts: int  # µs
    amount: float | None
    qty: int | None
    shop: str | None


def oracle(events: list[tuple[Event, int]], user: int, t: int, lateness_us: int | None) -> dict[str, Any]:
    """Brute force from the written definition: events of `user` with event time in
    [(t // s - n + 1) * s, t] whose event time is >= created - lateness."""
    out: dict[str, Any] = {}
    for agg in AGGREGATIONS:
        s = agg.tile_seconds * US
        n = int(agg.time_window.total_seconds()) // agg.tile_seconds
        start = (t // s - n + 1) * s
        rows = [
            (e.ts, created, getattr(e, agg.column))
            for e, created in events
            if e.user == user
            and start <= e.ts <= t
            and (lateness_us is None or e.ts >= created - lateness_us)
            and getattr(e, agg.column) is not None
        ]
        values = [v for _, _, v in rows]
        if agg.function == "count":
            out[agg.name] = len(values)
        elif agg.function == "sum":
            out[agg.name] = math.fsum(values) if agg.column == "amount" else sum(values)
        elif agg.function == "mean":
            total = math.fsum(values) if agg.column == "amount" else sum(values)
            out[agg.name] = total / len(values) if values else None
        elif agg.function == "min":
            out[agg.name] = min(values, default=None)
        elif agg.function == "max":
            out[agg.name] = max(values, default=None)
        elif agg.function == "approx_count_distinct":  # the estimate of the window's exact set of values
            out[agg.name] = hll_estimate(hll_of(set(values))) if values else 0
        else:  # last: greatest (event time, created time, value)
            out[agg.name] = max(rows)[2] if rows else None
    return out


def _floats() -> st.SearchStrategy[float | None]:
    wide = st.floats(min_value=-1e12, max_value=1e12, allow_nan=False, allow_infinity=False)
    return st.one_of(st.none(), wide, st.sampled_from([0.1, 0.2, 0.3, 1e-9, 1e9]))


events_strategy = st.lists(
    st.tuples(
        st.integers(0, 2),  # user
        st.integers(0, 3 * 3600 * US),  # event time offset
        st.integers(-90 * US, 20 * 60 * US),  # arrival delay: negative = stamped ahead of the clock
        _floats(),
        st.one_of(st.none(), st.integers(-(10**12), 10**12)),
        st.one_of(st.none(), st.sampled_from(["a", "b", "c", "é"])),
    ),
    min_size=1,
    max_size=40,
)


@pytest.fixture(params=backend_params())
def agg_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FeatureStore]:
    """A repo on one online backend (its contract-suite harness gives fresh options)."""
    name: str = request.param
    options = HARNESSES[name].options(tmp_path / "online")
    write_default_config(tmp_path, "proj")
    overrides = {"online__type": name} | {f"online__{k}": v for k, v in options.items()}
    with FeatureStore(tmp_path, **overrides) as store:
        store.apply([USER, view("tx", None), view("tx_late", LATENESS)])
        yield store


_LATEST = [int(datetime(2026, 1, 1, tzinfo=UTC).timestamp()) * US]
"""The latest fake time any test set: the next one starts later, as the repo's write clock
only moves forward."""


class Clock:
    """The store's clock, set by the test; never moves back."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self.now = _LATEST[0] + 12 * 3600 * US
        monkeypatch.setattr(clock, "now_us", lambda: self.now)

    def set(self, now: int) -> None:
        assert now >= self.now
        self.now = _LATEST[0] = now


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b if a is not None and b is not None else a is b


@pytest.mark.parametrize("view_name", ["tx", "tx_late"])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    raw=events_strategy,
    cuts=st.lists(st.integers(0, 39), max_size=6),
    reads=st.lists(st.integers(0, 30 * 60 * US), min_size=1, max_size=3),
)
def test_online_equals_offline_equals_oracle(
    agg_store: FeatureStore,
    monkeypatch: pytest.MonkeyPatch,
    view_name: str,
    raw: list[Any],
    cuts: list[int],
    reads: list[int],
) -> None:
    """Random events, arriving out of order (some late beyond the lateness, some stamped
    ahead of the clock) in random batches; after each batch, reads at random later times."""
    store = agg_store
    lateness_us = None if view_name == "tx" else LATENESS // timedelta(microseconds=1)
    with monkeypatch.context() as patch:
        fake = Clock(patch)
        # Each example gets its own users and a later time span, on the same store.
        base_user = next(_examples) * 10
        base = fake.now
        arrivals = sorted(
            (
                (Event(base_user + u, base + off, amount, qty, shop), base + off + max(delay, 1))
                for u, off, delay, amount, qty, shop in raw
            ),
            key=lambda pair: pair[1],
        )
        bounds = sorted({0, len(arrivals), *(c for c in cuts if c < len(arrivals))})
        written: list[tuple[Event, int]] = []
        checks: list[tuple[int, int | None, list[tuple[Event, int]]]] = []
        version: int | None = None
        for lo, hi in itertools.pairwise(bounds):
            batch = arrivals[lo:hi]
            created = max(fake.now + 1, batch[-1][1])
            fake.set(created)
            result = store.write(
                view_name,
                [
                    {"user_id": e.user, "event_timestamp": _dt(e.ts), "amount": e.amount, "qty": e.qty, "shop": e.shop}
                    for e, _ in batch
                ],
            )
            version = result.table_version
            kept = {(e.user, e.ts): e for e, _ in batch}  # a batch keeps the last row per (key, event time)
            written.extend((e, created) for e in kept.values())
            for delta in sorted(reads):
                fake.set(created + delta)
                users = [base_user, base_user + 1, base_user + 2]
                online = store.get_online_features([f"{view_name}:{n}" for n in NAMES], {"user_id": users}).to_dict()
                for i, user in enumerate(users):
                    expected = oracle(written, user, fake.now, lateness_us)
                    got = {n: online[n][i] for n in NAMES}
                    assert all(_same(got[n], expected[n]) for n in NAMES), (user, fake.now, got, expected)
                checks.append((fake.now, version, list(written)))
        # Offline, as of each read: pinned to the table version the read had seen.
        label = f"{view_name}@v1"
        for t, pinned, seen in checks:
            users = [base_user, base_user + 1, base_user + 2]
            spine = pd.DataFrame({"user_id": users, "event_timestamp": [_dt(t)] * 3})
            table = store.get_historical_features(
                spine, [f"{view_name}:{n}" for n in NAMES], versions={label: pinned}
            ).table
            rows = table.to_pylist()
            for row, user in zip(rows, users, strict=True):
                expected = oracle(seen, user, t, lateness_us)
                got = {n: _plain(row[n]) for n in NAMES}
                assert all(_same(got[n], expected[n]) for n in NAMES), ("offline", user, t, got, expected)


_examples = itertools.count(1)


def _dt(us: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)


def _plain(value: Any) -> Any:
    return value
