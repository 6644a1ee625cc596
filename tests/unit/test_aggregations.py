"""Windowed aggregations, pure parts: the `Aggregation` definition and its validation on a view,
the registry spec round trip, the plan's verdict on changing aggregations, and the tile math
of `strato.streaming.tiles` against folding raw events directly."""

from __future__ import annotations

import math
import random
from datetime import timedelta

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strato.definitions.aggregation import Aggregation, tile_seconds, window_label
from strato.definitions.entity import Entity
from strato.definitions.feature_service import FeatureService
from strato.definitions.feature_view import FeatureView
from strato.definitions.field import Field
from strato.definitions.plan import Action, kind_of, make_plan
from strato.errors import DefinitionError
from strato.streaming.tiles import (
    EntityTiles,
    TileLayout,
    exact_sum,
    final,
    fold,
    hll_estimate,
    merge,
    slots_of,
    window_start_us,
)
from strato.types import Kind

USER = Entity("user", join_keys={"user_id": "int64"})
US = 1_000_000


def view(*aggregations: Aggregation, lateness: timedelta | None = None, **options: object) -> FeatureView:
    return FeatureView(
        "txns",
        entities=[USER],
        schema=[Field("amount", "float64"), Field("qty", "int64"), Field("shop", "string"), Field("ok", "bool")],
        aggregations=list(aggregations),
        allowed_lateness=lateness,
        **options,  # type: ignore[arg-type]
    )


# ---------------------------------------------------------------------- definitions


def test_names_windows_and_tiles() -> None:
    assert Aggregation("amount", "sum", timedelta(minutes=10)).name == "amount_sum_10m"
    assert Aggregation("amount", "mean", window=timedelta(hours=1)).name == "amount_mean_1h"
    assert Aggregation("amount", "max", timedelta(days=7), name="biggest").name == "biggest"
    assert window_label(timedelta(minutes=90)) == "90m"
    assert window_label(timedelta(seconds=45)) == "45s"
    # the largest ladder size giving at least 10 tiles
    assert tile_seconds(timedelta(minutes=10)) == 60
    assert tile_seconds(timedelta(hours=1)) == 300
    assert tile_seconds(timedelta(days=1)) == 3600
    assert tile_seconds(timedelta(days=7)) == 6 * 3600
    assert tile_seconds(timedelta(seconds=7)) == 1


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Aggregation("amount", "median", timedelta(minutes=1)), "function must be one of"),  # type: ignore[arg-type]
        (lambda: Aggregation("amount", "sum", timedelta(0)), "positive timedelta"),
        (lambda: Aggregation("amount", "sum", timedelta(milliseconds=1500)), "whole seconds"),
        (lambda: Aggregation("amount", "sum", timedelta(minutes=1), window=timedelta(minutes=1)), "not both"),
        (lambda: Aggregation("amount", "sum"), "positive timedelta"),
        (lambda: view(Aggregation("nope", "sum", timedelta(minutes=1))), "column 'nope', which is not a feature"),
        (lambda: view(Aggregation("shop", "sum", timedelta(minutes=1))), "sum does not take column 'shop'"),
        (lambda: view(Aggregation("ok", "max", timedelta(minutes=1))), "max does not take column 'ok'"),
        (lambda: view(Aggregation("amount", "sum", timedelta(minutes=1), name="qty")), "already a feature"),
        (
            lambda: view(
                Aggregation("amount", "sum", timedelta(minutes=1)), Aggregation("amount", "sum", timedelta(seconds=60))
            ),
            "already a feature, key or aggregation",
        ),
        (lambda: view(lateness=timedelta(minutes=1)), "the view has none"),
        (lambda: view(Aggregation("amount", "sum", timedelta(minutes=1)), lateness=timedelta(-1)), "allowed_lateness"),
    ],
)
def test_bad_aggregations_are_refused_naming_the_part(make: object, message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        make()  # type: ignore[operator]


def test_output_types() -> None:
    fv = view(
        Aggregation("qty", "sum", timedelta(minutes=1)),
        Aggregation("amount", "sum", timedelta(minutes=1)),
        Aggregation("qty", "mean", timedelta(minutes=1)),
        Aggregation("shop", "count", timedelta(minutes=1)),
        Aggregation("shop", "last", timedelta(minutes=1)),
    )
    dtypes = {a.name: str(a.output_dtype(fv.feature(a.column).dtype)) for a in fv.aggregations}
    assert dtypes == {
        "qty_sum_1m": "int64",
        "amount_sum_1m": "float64",
        "qty_mean_1m": "float64",
        "shop_count_1m": "int64",
        "shop_last_1m": "string",
    }


def test_registry_spec_round_trip_and_services() -> None:
    fv = view(
        Aggregation("amount", "sum", timedelta(minutes=10)),
        Aggregation("shop", "last", timedelta(hours=1), name="last_shop"),
        lateness=timedelta(minutes=5),
    )
    back = FeatureView.from_spec(fv.to_spec(), {"user": USER})
    assert back == fv
    assert back.aggregation_names == ("amount_sum_10m", "last_shop")
    assert back.allowed_lateness == timedelta(minutes=5)
    # A view without aggregations keeps the spec it had before aggregations existed.
    assert "aggregations" not in view().to_spec()
    # Aggregations are features of the view for services and projections.
    service = FeatureService("model", [fv[["amount_sum_10m", "qty"]], "txns:last_shop"])
    assert service.features == (("txns", ("amount_sum_10m", "qty", "last_shop")),)
    assert "last_shop" in FeatureService("all", [fv]).features[0][1]
    with pytest.raises(DefinitionError, match="no feature 'amount_sum_1h'"):
        fv[["amount_sum_1h"]]


def test_changing_aggregations_is_a_compatible_update() -> None:
    old = view(Aggregation("amount", "sum", timedelta(minutes=10)))
    current = {(kind_of(USER), "user"): USER, (kind_of(old), "txns"): old.with_versions(1, 1)}
    for new in (
        view(Aggregation("amount", "sum", timedelta(minutes=10)), Aggregation("qty", "count", timedelta(hours=1))),
        view(),
        view(Aggregation("amount", "sum", timedelta(minutes=10)), lateness=timedelta(minutes=1)),
    ):
        plan = make_plan([USER, new], current)
        (change,) = [c for c in plan.changes if c.name == "txns"]
        assert change.action is Action.UPDATE, change.describe()
    service = FeatureService("model", ["txns:amount_sum_10m"])
    make_plan([USER, old, service], {})  # a service may use an aggregation
    with pytest.raises(DefinitionError, match="no such feature"):
        make_plan([USER, view(), service], {})


# ---------------------------------------------------------------------- tile math

TILE_VIEW = view(
    Aggregation("amount", "sum", timedelta(minutes=10)),
    Aggregation("amount", "mean", timedelta(hours=1)),
    Aggregation("amount", "min", timedelta(minutes=10)),
    Aggregation("amount", "max", timedelta(days=1)),
    Aggregation("qty", "sum", timedelta(minutes=10)),
    Aggregation("shop", "last", timedelta(hours=1)),
    Aggregation("shop", "count", timedelta(minutes=10)),
    Aggregation("shop", "approx_count_distinct", timedelta(hours=1)),
    Aggregation("qty", "approx_count_distinct", timedelta(minutes=10)),
)
LAYOUT = TileLayout.of(TILE_VIEW)
COLUMN = {"amount": 0, "qty": 1, "shop": 2}
KINDS = {"amount": Kind.FLOAT64, "qty": Kind.INT64, "shop": Kind.STRING}


def _direct(events: list[tuple[int, int, list[object]]], t: int) -> list[object]:
    """Every aggregation at `t`, folding the raw events of its window (the offline way)."""
    out = []
    for o in LAYOUT.outputs:
        agg = o.aggregation
        g = LAYOUT.groups[o.group]
        start = window_start_us(t, g.tile_us, o.tiles)
        triples = [(ts, cr, vals[COLUMN[agg.column]]) for ts, cr, vals in events if start <= ts <= t]
        states = {kind: fold(kind, triples) for _, kind in slots_of(agg, KINDS[agg.column])}
        out.append(final(agg, states))
    return out


event = st.tuples(
    st.integers(0, 2 * 3600 * US),
    st.one_of(st.none(), st.floats(-1e15, 1e15, allow_nan=False)),
    st.one_of(st.none(), st.integers(-(2**40), 2**40)),
    st.one_of(st.none(), st.sampled_from(["x", "y", "z"])),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(event, max_size=60), st.randoms(use_true_random=False), st.integers(0, 3600 * US))
def test_tiles_in_any_batches_and_order_equal_direct_folding(
    raw: list[tuple[int, float | None, int | None, str | None]], rnd: random.Random, after: int
) -> None:
    """Exact: sums of floats too (the partials make the merge order-free), through msgpack."""
    events = [(ts, i + 1, [a, q, s]) for i, (ts, a, q, s) in enumerate(raw)]
    now = max((ts for ts, _, _ in events), default=0)
    shuffled = list(events)
    rnd.shuffle(shuffled)
    tiles = EntityTiles.new(LAYOUT)
    while shuffled:
        take = rnd.randint(1, len(shuffled))
        batch, shuffled = shuffled[:take], shuffled[take:]
        tiles.add_events(batch, now)
        tiles = EntityTiles.from_data(LAYOUT, msgpack.unpackb(msgpack.packb(tiles.to_data()), raw=False))
    t = now + after
    assert _same(tiles.values_at(t), _direct(events, t))


def test_events_ahead_of_the_clock_wait_and_never_count_early() -> None:
    tiles = EntityTiles.new(LAYOUT)
    now = 10_000 * US
    tiles.add_events([(now - 5 * US, 1, [1.0, 1, "a"]), (now + 30 * US, 2, [2.0, 2, "b"])], now)
    assert tiles.pending  # stamped ahead of this write's clock
    sum_10m = [o.aggregation.name for o in LAYOUT.outputs].index("amount_sum_10m")
    assert tiles.values_at(now + 29 * US)[sum_10m] == 1.0
    assert tiles.values_at(now + 30 * US)[sum_10m] == 3.0
    tiles.add_events([], now + 60 * US)  # a later write folds it into its tile
    assert not tiles.pending
    assert tiles.values_at(now + 60 * US)[sum_10m] == 3.0


def test_old_tiles_are_dropped_and_windows_have_tile_edges() -> None:
    tiles = EntityTiles.new(LAYOUT)
    minute = 60 * US
    tiles.add_events([(m * minute, m, [1.0, 1, "s"]) for m in range(0, 120)], 120 * minute - 1)
    assert min(tiles.groups[0]) == 110  # the 1-minute group keeps the 10 tiles a read from now on can reach
    sum_10m = [o.aggregation.name for o in LAYOUT.outputs].index("amount_sum_10m")
    assert tiles.values_at(120 * minute - 1)[sum_10m] == 10.0  # window [01:50:00, 01:59:59.999999]
    # at 02:00:00 the window is [01:51:00, 02:00:00]: minutes 111..119, the newest tile is empty so far
    assert tiles.values_at(120 * minute)[sum_10m] == 9.0
    tiles.add_events([], 120 * minute)
    assert min(tiles.groups[0]) == 111


def test_float_sums_are_exactly_rounded() -> None:
    values = [1e16, 1.0, -1e16, 1.0, 0.1] * 7
    state = fold("fsum", [(i, i, v) for i, v in enumerate(values)])
    assert exact_sum(state) == math.fsum(values) != sum(values)
    assert math.isnan(exact_sum(fold("fsum", [(0, 0, math.inf), (1, 1, -math.inf), (2, 2, 1.0)])))
    assert exact_sum(fold("fsum", [(0, 0, math.inf), (1, 1, 5.0)])) == math.inf
    assert math.isnan(exact_sum(fold("fsum", [(0, 0, math.nan), (1, 1, 5.0)])))


def test_approximate_distinct_counts_are_close_and_deterministic() -> None:
    for n in (0, 1, 10, 200, 5_000, 50_000):
        estimate = hll_estimate(fold("hll", [(0, 0, f"user-{i}") for i in range(n)]))
        assert abs(estimate - n) <= max(2, 0.2 * n), (n, estimate)
    halves = [fold("hll", [(0, 0, i) for i in range(k, 1000, 2)]) for k in (0, 1)]
    assert hll_estimate(merge("hll", *halves)) == hll_estimate(fold("hll", [(0, 0, i) for i in range(1000)]))
    assert hll_estimate(fold("hll", [(0, 0, 7)] * 100)) == 1


def _same(a: list[object], b: list[object]) -> bool:
    return len(a) == len(b) and all(
        (isinstance(x, float) and isinstance(y, float) and (x == y or (math.isnan(x) and math.isnan(y))))
        or (type(x) is type(y) and x == y)
        or (x is None and y is None)
        for x, y in zip(a, b, strict=True)
    )


def test_rows_packed_before_marks_existed_read_with_no_marks() -> None:
    tiles = EntityTiles.new(LAYOUT)
    tiles.add_events([(10 * US, 1, [1.0, 2, "x"])], 20 * US)
    old = tiles.to_data()[:4]  # the packing before stream marks: four items
    again = EntityTiles.from_data(LAYOUT, old)
    assert again.marks == {}
    assert again.values_at(20 * US) == tiles.values_at(20 * US)


def test_marks_skip_events_a_source_already_merged() -> None:
    tiles = EntityTiles.new(LAYOUT)
    sources, offsets = ["a", "a", "b", "a"], [3, 4, 0, 2]
    assert tiles.unmerged([0, 1, 2], sources, offsets) == [0, 1, 2]
    assert tiles.marks == {"a": 4, "b": 0}
    assert tiles.unmerged([0, 1, 2, 3], sources, offsets) == []
    packed = EntityTiles.from_data(LAYOUT, msgpack.unpackb(msgpack.packb(tiles.to_data()), raw=False))
    assert packed.marks == {"a": 4, "b": 0}
