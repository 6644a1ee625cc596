"""Issue 7 item 11: a view's own ingestion time (Feast's `created_timestamp_column`).

Declared, it is each row's created time in history (not the write time), every row of a
batch is kept, and ties at equal (keys, event time) go to the greater created time in the
point-in-time join, in materialization and online (rule 4) alike. Undeclared, a column of
that name is refused, never ignored, and in-batch ties keep the last row, which
`WriteResult.superseded` counts.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from store.helpers import USER, online
from strato import FeatureStore, FeatureView, Field, Int64, SchemaError

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
H = timedelta(hours=1)


def view(created: str | None = "ingested_at", name: str = "v") -> FeatureView:
    return FeatureView(name, entities=[USER], schema=[Field("f0", Int64)], created_timestamp_column=created)


def row(user: int, f0: int, *, event: datetime = T0, ingested: datetime | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"user_id": user, "event_timestamp": event, "f0": f0}
    if ingested is not None:
        out["ingested_at"] = ingested
    return out


def training_value(store: FeatureStore, user: int, at: datetime) -> Any:
    spine = pd.DataFrame({"user_id": [user], "event_timestamp": [at]})
    return store.get_historical_features(spine, ["v:f0"]).to_df()["f0"].iloc[0]


def history(store: FeatureStore) -> list[dict[str, Any]]:
    return store.sql("select user_id, event_timestamp, f0, created_timestamp from v order by all").to_pylist()


def test_an_undeclared_created_timestamp_column_is_refused_not_ignored(store: FeatureStore) -> None:
    # The report: created_timestamp=+1h then created_timestamp=0 left 20, stamped with the write time.
    store.apply([USER, view(created=None)])
    for name in ("created_timestamp", "created", "ingested_at", "updated_at"):
        with pytest.raises(SchemaError, match=rf"unknown columns \['{name}'\].*created_timestamp_column="):
            store.write("v", [{**row(1, 10), name: T0 + H}])
    assert store.delta.version("v__v1") is None


def test_the_declared_column_breaks_ties_across_writes_offline_and_online(store: FeatureStore) -> None:
    store.apply([USER, view()])
    store.write("v", [row(1, 10, ingested=T0 + H)])
    second = store.write("v", [row(1, 20, ingested=T0)])  # same event, ingested earlier: not newer
    assert (second.rows, second.online_rows) == (1, 0)
    assert online(store, ["v:f0"], [1])["f0"] == [10]
    assert training_value(store, 1, T0 + H) == 10
    assert [(r["f0"], r["created_timestamp"]) for r in history(store)] == [(10, T0 + H), (20, T0)]
    # Materialization agrees: a fresh online store loads the same winner.
    store.online_store.drop("v__v1")
    store.materialize(None, datetime.now(UTC), progress=False)
    assert online(store, ["v:f0"], [1])["f0"] == [10]


def test_every_row_of_a_batch_is_kept_and_the_greatest_created_time_wins(store: FeatureStore) -> None:
    store.apply([USER, view()])
    rows = [row(1, 1, ingested=T0 + 2 * H), row(1, 2, ingested=T0 + 5 * H), row(1, 3, ingested=T0 + 1 * H)]
    result = store.write("v", rows)
    assert (result.rows, result.superseded) == (3, 0)
    assert len(history(store)) == 3
    assert online(store, ["v:f0"], [1])["f0"] == [2]
    assert training_value(store, 1, T0) == 2


def test_rows_tied_on_the_created_time_too_are_refused(store: FeatureStore) -> None:
    store.apply([USER, view()])
    rows = [row(1, 1, ingested=T0), row(2, 2, ingested=T0), row(1, 3, ingested=T0)]
    with pytest.raises(SchemaError, match=r"row 2: same join keys, event time and 'ingested_at' as row 0"):
        store.write("v", rows)
    assert store.delta.version("v__v1") is None


@pytest.mark.parametrize(
    ("spoil", "message"),
    [
        (lambda r: r.pop("ingested_at"), "missing created time column 'ingested_at'"),
        (lambda r: r.update(ingested_at=None), "column 'ingested_at', row 0: created time is null"),
        (
            lambda r: r.update(ingested_at=datetime(9999, 1, 1, tzinfo=UTC)),
            "'ingested_at', row 0: created time .*future",
        ),
        (lambda r: r.update(ingested_at="soon"), "'ingested_at', row 0: cannot parse 'soon'"),
    ],
    ids=["missing", "null", "future", "unparseable"],
)
def test_a_bad_created_time_is_named(store: FeatureStore, spoil: Any, message: str) -> None:
    store.apply([USER, view()])
    bad = row(1, 1, ingested=T0)
    spoil(bad)
    with pytest.raises(SchemaError, match=message):
        store.write("v", [bad])


def test_a_push_online_only_compares_the_declared_created_time(store: FeatureStore) -> None:
    store.apply([USER, view()])
    store.push("v", [row(1, 10, ingested=T0 + H)])
    assert store.push("v", [row(1, 20, ingested=T0)]).online_rows == 0
    assert store.push("v", [row(1, 30, ingested=T0 + 2 * H)]).online_rows == 1
    assert online(store, ["v:f0"], [1])["f0"] == [30]


def test_without_a_declared_column_the_last_row_of_a_batch_wins_and_is_counted(store: FeatureStore) -> None:
    store.apply([USER, view(created=None)])
    rows = [row(1, 1), row(2, 7), row(1, 2), row(1, 3), row(2, 8, event=T0 + H)]
    result = store.write("v", rows)
    assert (result.rows, result.superseded) == (3, 2)  # rows 0 and 2 are superseded by row 3
    assert [(r["user_id"], r["f0"]) for r in history(store)] == [(1, 3), (2, 7), (2, 8)]
    assert online(store, ["v:f0"], [1, 2])["f0"] == [3, 8]
    assert training_value(store, 1, T0) == 3


def test_declaring_the_column_later_is_a_compatible_change(store: FeatureStore) -> None:
    store.apply([USER, view(created=None)])
    store.write("v", [row(1, 1)])
    plan = store.apply([USER, view()])
    assert [c.action.value for c in plan.changes if c.kind == "feature_view"] == ["update"]
    store.refresh()
    fv = store.get_feature_view("v")
    assert (fv.created_timestamp_column, fv.table_name) == ("ingested_at", "v__v1")
    store.write("v", [row(1, 2, event=T0 + H, ingested=T0)])
    assert online(store, ["v:f0"], [1])["f0"] == [2]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    batches=st.lists(
        st.lists(st.tuples(st.integers(0, 2), st.integers(0, 3), st.integers(0, 10**6)), min_size=1, max_size=6),
        min_size=1,
        max_size=4,
    )
)
def test_online_training_and_materialize_agree_with_brute_force(
    repo: Any, batches: list[list[tuple[int, int, int]]]
) -> None:
    """Random writes of (user, event hour, created µs) tuples: unique created times, so no exact ties."""
    seen: set[int] = set()
    with FeatureStore(repo, online__type="memory") as store:
        name = f"v{abs(hash(str(batches))) % 10**9}"
        store.apply([USER, view(name=name)])
        written: list[tuple[int, int, int, int]] = []
        for b, batch in enumerate(batches):
            rows = []
            for i, (user, hour, created) in enumerate(batch):
                while created in seen:
                    created += 1
                seen.add(created)
                value = b * 100 + i
                rows.append(row(user, value, event=T0 + hour * H, ingested=T0 + timedelta(microseconds=created)))
                written.append((user, hour, created, value))
            assert store.write(name, rows).rows == len(rows)
        latest = {u: max((h, c, v) for uu, h, c, v in written if uu == u)[2] for u in {w[0] for w in written}}
        users = sorted(latest)
        got = store.get_online_features([f"{name}:f0"], [{"user_id": u} for u in users]).to_dict()["f0"]
        assert got == [latest[u] for u in users]
        spine = pd.DataFrame({"user_id": users, "event_timestamp": [T0 + 10 * H] * len(users)})
        trained = store.get_historical_features(spine, [f"{name}:f0"]).to_df()["f0"].tolist()
        assert trained == [latest[u] for u in users]
        store.online_store.drop(f"{name}__v1")
        store.materialize(None, datetime.now(UTC), views=[name], progress=False)
        again = store.get_online_features([f"{name}:f0"], [{"user_id": u} for u in users]).to_dict()["f0"]
        assert again == [latest[u] for u in users]
