"""`SqlSource` and named `FileSource`s: validation, the registry spec round trip, and the
plan's checks of a batch transformation's inputs (they exist, have history, no cycles)."""

from __future__ import annotations

import pytest

from strato import Entity, FeatureView, Field, FileSource, Float64, Int64, SqlSource
from strato.definitions.plan import make_plan
from strato.errors import DefinitionError

USER = Entity("user", join_keys={"user_id": Int64})


def view(name: str, source: SqlSource | FileSource | None = None, **options: object) -> FeatureView:
    return FeatureView(name, entities=[USER], schema=[Field("x", Float64)], source=source, **options)  # type: ignore[arg-type]


def test_inputs_resolve_views_to_names_and_keep_named_files() -> None:
    raw = view("raw")
    src = SqlSource("SELECT 1", inputs=[raw, FileSource("tx.csv", "csv", name="tx"), "other"])
    assert src.view_names == ("raw", "other")
    assert src.file_names == ("tx",)
    assert SqlSource.from_spec(src.to_spec()) == src
    fv = view("derived", src)
    again = FeatureView.from_spec(fv.to_spec(), {"user": USER})
    assert again.source == src


def test_fingerprint_follows_the_query_and_inputs_only() -> None:
    a = SqlSource("SELECT 1", inputs=["raw"])
    assert a.fingerprint == SqlSource("  SELECT 1\n", inputs=["raw"]).fingerprint
    assert a.fingerprint != SqlSource("SELECT 2", inputs=["raw"]).fingerprint
    assert a.fingerprint != SqlSource("SELECT 1", inputs=["raw", "more"]).fingerprint


def test_a_file_source_without_a_name_keeps_its_old_spec() -> None:
    assert FileSource("a.parquet").to_spec() == {"type": "file", "path": "a.parquet", "format": "parquet"}


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: SqlSource(""), "non-empty SQL SELECT"),
        (lambda: SqlSource("SELECT 1", inputs=[FileSource("a.parquet")]), "needs a name"),
        (lambda: SqlSource("SELECT 1", inputs=["a", FileSource("a.parquet", name="A")]), "two inputs are named"),
        (lambda: SqlSource("SELECT 1", inputs=["bad name"]), "invalid"),
        (lambda: SqlSource("SELECT 1", inputs="raw"), "must be a list"),
        (lambda: SqlSource("SELECT 1", inputs=[3]), "got 3"),
        (lambda: view("v", SqlSource("SELECT 1", inputs=["v"])), "reads the view itself"),
        (lambda: view("v", SqlSource("SELECT 1"), offline=False), "needs offline=True"),
    ],
)
def test_bad_definitions_are_refused_by_name(make: object, message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        make()  # type: ignore[operator]


def test_plan_checks_that_input_views_exist_and_have_history() -> None:
    derived = view("derived", SqlSource("SELECT 1", inputs=["raw"]))
    with pytest.raises(DefinitionError, match="reads feature view 'raw', which is not defined"):
        make_plan([USER, derived], {})
    with pytest.raises(DefinitionError, match="online only"):
        make_plan([USER, view("raw", online=True, offline=False), derived], {})
    assert make_plan([USER, view("raw"), derived], {}).has_changes


def test_plan_refuses_a_cycle_through_other_views() -> None:
    a = view("a", SqlSource("SELECT 1", inputs=["b"]))
    b = view("b", SqlSource("SELECT 1", inputs=["a"]))
    with pytest.raises(DefinitionError, match="cycle a -> b -> a"):
        make_plan([USER, a, b], {})


def test_plan_shows_a_changed_query_by_fingerprint() -> None:
    before = view("derived", SqlSource("SELECT 1", inputs=["raw"])).with_versions(1, 1)
    after = view("derived", SqlSource("SELECT 2", inputs=["raw", "other"]))
    current = {("entity", "user"): USER, ("feature_view", "raw"): view("raw"), ("feature_view", "other"): view("other")}
    current[("feature_view", "derived")] = before
    plan = make_plan([USER, view("raw"), view("other"), after], current)  # type: ignore[arg-type]
    [change] = [c for c in plan.changes if c.name == "derived"]
    text = change.describe()
    assert "SqlSource query and inputs ['raw'] -> ['raw', 'other']" in text
    assert f"(fingerprint {before.source.fingerprint} -> {after.source.fingerprint})" in text  # type: ignore[union-attr]
