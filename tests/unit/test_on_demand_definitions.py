"""`OnDemandFeatureView` and `RequestSource`: validation, the function at rest (source text and
a fingerprint without decorators), and how `make_plan` diffs and checks them."""

from __future__ import annotations

from typing import Any

import pytest

from strato import (
    Entity,
    FeatureService,
    FeatureView,
    Field,
    Float64,
    Int64,
    OnDemandFeatureView,
    RequestSource,
    on_demand_feature_view,
)
from strato.definitions.on_demand import function_source
from strato.definitions.plan import Action, Definition, ObjectKind, kind_of, make_plan
from strato.errors import DefinitionError

USER = Entity("user", join_keys={"user_id": Int64})
STATS = FeatureView("stats", entities=[USER], schema=[Field("x", Int64), Field("score", Float64)])
TXN = RequestSource("txn", schema=[Field("amount", Float64)])


def add_one(row: dict[str, Any]) -> dict[str, Any]:
    return {"y": row["amount"] + 1}


def add_two(row: dict[str, Any]) -> dict[str, Any]:
    return {"y": row["amount"] + 2}


def odfv(fn: Any = add_one, **options: Any) -> OnDemandFeatureView:
    options = {
        "sources": [STATS[["x"]], TXN],
        "schema": [Field("y", Float64)],
        "mode": "python",
        "singleton": True,
    } | options
    return OnDemandFeatureView("plus", udf=fn, **options)


def registry(*objects: Definition) -> dict[tuple[ObjectKind, str], Definition]:
    return {(kind_of(o), o.name): o for o in objects}


def test_decorator_names_the_view_after_the_function_and_keeps_its_source() -> None:
    @on_demand_feature_view(sources=[TXN], schema=[Field("y", Float64)], mode="python", singleton=True)
    def doubled(row: dict[str, Any]) -> dict[str, Any]:
        """Twice the amount."""
        return {"y": row["amount"] * 2}

    assert doubled.name == "doubled"
    assert doubled.description == "Twice the amount."
    assert doubled.udf is not None
    assert doubled.udf({"amount": 2.0}) == {"y": 4.0}
    source = doubled.udf_ref.source
    assert source.startswith("def doubled(")  # decorators are not part of the function's text
    assert "@on_demand_feature_view" not in source
    assert len(doubled.udf_ref.fingerprint) == 32


def test_fingerprint_follows_the_body_only() -> None:
    assert odfv(add_one).udf_ref.fingerprint != odfv(add_two).udf_ref.fingerprint
    # Another schema or mode does not change the function's fingerprint.
    other = odfv(add_one, schema=[Field("y", Float64), Field("z", Float64)])
    assert other.udf_ref.fingerprint == odfv(add_one).udf_ref.fingerprint


def test_spec_round_trip_finds_the_function_in_process() -> None:
    view = odfv()
    back = OnDemandFeatureView.from_spec(view.to_spec(), version=3)
    assert back.to_spec() == view.to_spec()
    assert back.version == 3
    assert back.udf is add_one
    assert back.input_columns() == [
        ("user_id", "join key 'user_id'"),
        ("x", "feature view 'stats'"),
        ("amount", "request source 'txn'"),
    ]


def test_several_view_sources_prefix_their_features() -> None:
    other = FeatureView("other", entities=[USER], schema=[Field("x", Int64)])
    view = odfv(sources=[STATS[["x"]], other, TXN])
    assert [c for c, _ in view.input_columns()] == ["user_id", "stats__x", "other__x", "amount"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"mode": "spark"}, "mode must be one of pandas, python, arrow"),
        ({"mode": "pandas", "singleton": True}, "singleton=True needs mode='python'"),
        ({"sources": []}, "sources must be a non-empty list"),
        ({"sources": ["stats"]}, "a source must be a FeatureView"),
        ({"sources": [STATS, STATS[["x"]]]}, "appears twice in sources"),
        ({"schema": []}, "schema must be a non-empty list"),
        ({"schema": [Field("y", Float64), Field("y", Int64)]}, "output field 'y' appears twice"),
        ({"schema": [Field("event_timestamp", Float64)]}, "reserved column name"),
        (
            {"sources": [STATS, RequestSource("r", schema=[Field("x", Float64)])]},
            "input column 'x' would come from both",
        ),
        (
            {
                "sources": [
                    STATS,
                    FeatureView(
                        "s2", entities=[Entity("u", join_keys={"user_id": "string"})], schema=[Field("q", Int64)]
                    ),
                ]
            },
            "join key 'user_id' has two different types",
        ),
        ({"fn": lambda row: row}, "not a lambda"),
        ({"fn": len}, "must be a Python function"),
    ],
)
def test_bad_definitions_are_refused(options: dict[str, Any], message: str) -> None:
    fn = options.pop("fn", add_one)
    with pytest.raises(DefinitionError, match=message):
        odfv(fn, **options)


def test_function_source_of_a_nested_function_is_dedented() -> None:
    def inner(row: dict[str, Any]) -> dict[str, Any]:
        return row

    assert function_source(inner, "here").startswith("def inner(")


def test_plan_adds_keeps_and_updates_on_demand_views() -> None:
    plan = make_plan([USER, STATS, odfv()], {})
    assert {c.name: c.action for c in plan.changes}["plus"] is Action.ADD
    current = registry(USER, STATS, odfv())
    assert make_plan([odfv()], current).changes[0].action is Action.UNCHANGED
    changed = make_plan([odfv(add_two)], current).changes[0]
    assert changed.action is Action.UPDATE  # no storage: a new function is a compatible change
    assert changed.details[0].startswith("function changed (fingerprint")
    retyped = make_plan([odfv(schema=[Field("y", Int64)])], current).changes[0]
    assert retyped.action is Action.UPDATE
    assert retyped.details == ("updates output y",)
    assert ("feature_view", "stats") in {(b.kind, b.name) for b in make_plan([odfv(add_two)], current).basis}


def test_plan_checks_what_on_demand_views_read_and_who_reads_them() -> None:
    with pytest.raises(DefinitionError, match="reads feature view 'stats', which is not defined"):
        make_plan([USER, odfv()], {})
    with pytest.raises(DefinitionError, match="a feature view has the same name"):
        make_plan([USER, STATS, odfv(), FeatureView("plus", entities=[USER], schema=[Field("q", Int64)])], {})
    retyped_stats = FeatureView("stats", entities=[USER], schema=[Field("x", Float64), Field("score", Float64)])
    with pytest.raises(DefinitionError, match=r"reads stats:x as int64, but the view now declares float64"):
        make_plan([retyped_stats], registry(USER, STATS, odfv()), new_version=["stats"])
    with pytest.raises(DefinitionError, match="reads feature view 'stats'"):
        make_plan([], registry(USER, STATS, odfv()), delete=[("feature_view", "stats")])
    service = FeatureService("svc", [STATS[["x"]], odfv()])
    assert service.feature_refs == ("stats:x", "plus:y")
    plan = make_plan([service], registry(USER, STATS, odfv()))
    assert ("on_demand_feature_view", "plus") in {(b.kind, b.name) for b in plan.basis}
    with pytest.raises(DefinitionError, match="uses plus:nope, but the on-demand view has no such feature"):
        make_plan([FeatureService("svc", ["plus:nope"])], registry(USER, STATS, odfv()))
    with pytest.raises(DefinitionError, match="cannot be pinned"):
        make_plan([FeatureService("svc", ["plus@v1:y"])], registry(USER, STATS, odfv()))
