"""`store.sql` names (issue 8, item 6): older view versions as ``VIEW__vN``, training sets as
``training_sets.NAME[__vN]``, each pinned by table version or time, checked against a
brute-force model of the write history (every write kept in Python with the table version it
made and a time just after it)."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strato import FeatureService, FeatureStore, FeatureView, Field, Int64, String, UserError
from strato.config import write_default_config

from .helpers import USER, stats_view

T0 = datetime(2026, 1, 1, tzinfo=UTC)
V1_COLUMNS = ["user_id", "event_timestamp", "x", "tag", "score", "created_timestamp"]
V2_COLUMNS = [*V1_COLUMNS[:-1], "extra", "created_timestamp"]


@dataclass
class Write:
    storage: str  # the Delta table the write went to
    table_version: int
    after: datetime  # a time after its commit and before the next one
    rows: list[dict[str, Any]]


@dataclass
class History:
    store: FeatureStore
    repo: Path
    writes: list[Write] = field(default_factory=list)
    before_v3: datetime = T0

    def write(self, view: str, rows: list[dict[str, Any]]) -> None:
        self.store.write(view, pd.DataFrame(rows), to="offline")
        fv = self.store.get_feature_view(view)
        version = self.store.delta.version(fv.table_name)
        assert version is not None
        time.sleep(0.01)
        self.writes.append(Write(fv.table_name, version, datetime.now(UTC), rows))
        time.sleep(0.01)

    def expected(
        self, storage: str, columns: Sequence[str], *, version: int | None = None, when: datetime | None = None
    ) -> list[tuple[Any, ...]]:
        """The oracle: every row written to `storage` up to `version` / `when`, as `columns`
        (a column a write did not have reads null), sorted."""
        rows = [
            tuple(row.get(c) for c in columns)
            for w in self.writes
            if w.storage == storage
            and (version is None or w.table_version <= version)
            and (when is None or w.after <= when)
            for row in w.rows
        ]
        return sorted(rows, key=repr)


def _rows(users: Sequence[int], day: int, xs: Sequence[Any], **extra: Any) -> list[dict[str, Any]]:
    when = T0 + timedelta(days=day)
    return [
        {"user_id": u, "event_timestamp": when, "x": x, "tag": f"t{day}", "score": day + 0.5, **extra}
        for u, x in zip(users, xs, strict=True)
    ]


def _got(store: FeatureStore, table: str, columns: Sequence[str], as_of: Any = None) -> list[tuple[Any, ...]]:
    names = ", ".join(c for c in columns if c != "created_timestamp")
    result = store.sql(f"SELECT {names} FROM {table}", as_of=as_of).to_pylist()
    wanted = [c for c in columns if c != "created_timestamp"]
    return sorted((tuple(r[c] for c in wanted) for r in result), key=repr)


def _cut(rows: list[tuple[Any, ...]], columns: Sequence[str]) -> list[tuple[Any, ...]]:
    keep = [i for i, c in enumerate(columns) if c != "created_timestamp"]
    return sorted((tuple(r[i] for i in keep) for r in rows), key=repr)


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    """stats v1 (2 writes) → v2 adds a nullable field, same storage (1 write) → v3 retypes x,
    fresh storage (1 write); a service over v2 and two versions of a training set."""
    repo = tmp_path_factory.mktemp("sqlnames")
    write_default_config(repo, "proj")
    with FeatureStore(repo) as store:
        h = History(store, repo)
        store.apply([USER, stats_view()])
        h.write("stats", _rows([1, 2], 0, [1, 2]))
        h.write("stats", _rows([1, 3], 1, [10, 30]))
        v2 = stats_view(extra=[Field("extra", Int64)])
        store.apply([USER, v2, FeatureService("svc", [v2])])
        h.write("stats", _rows([2], 2, [200], extra=7))
        store.create_training_set("churn", "svc", pd.DataFrame({"user_id": [1, 2], "event_timestamp": [T0] * 2}))
        time.sleep(0.01)
        h.before_v3 = datetime.now(UTC)
        time.sleep(0.01)
        spine = pd.DataFrame({"user_id": [1, 2, 3], "event_timestamp": [T0 + timedelta(days=5)] * 3})
        store.create_training_set("churn", "svc", spine)
        store.create_training_set("churn-daily", "svc", spine.head(1))
        retyped = FeatureView(
            "stats",
            entities=[USER],
            schema=[Field("x", String), Field("tag", String), Field("score", Int64), Field("extra", Int64)],
        )
        store.apply([USER, retyped], new_version=["stats"], start_empty=["stats"])
        h.write("stats", [{"user_id": 9, "event_timestamp": T0, "x": "nine", "tag": "n", "score": 9, "extra": None}])
        yield h


def test_each_version_of_a_view_is_a_table_with_its_own_columns(history: History) -> None:
    store = history.store
    v1, v2, v3 = (store.get_feature_view("stats", version=n) for n in (1, 2, 3))
    assert v1.table_name == v2.table_name == "stats__v1"
    assert v3.table_name == "stats__v3"
    assert store.sql("SELECT * FROM stats__v1 LIMIT 0").column_names == V1_COLUMNS
    assert store.sql("SELECT * FROM stats__v2 LIMIT 0").column_names == V2_COLUMNS
    assert _got(store, "stats__v1", V1_COLUMNS) == _cut(history.expected("stats__v1", V1_COLUMNS), V1_COLUMNS)
    assert _got(store, "stats__v2", V2_COLUMNS) == _cut(history.expected("stats__v1", V2_COLUMNS), V2_COLUMNS)
    assert _got(store, "stats", V2_COLUMNS) == _cut(history.expected("stats__v3", V2_COLUMNS), V2_COLUMNS)
    assert _got(store, "STATS__V3", V2_COLUMNS) == _got(store, "stats", V2_COLUMNS)  # identifiers ignore case
    both = store.sql("SELECT count(*) AS n FROM stats__v1 JOIN stats__v2 USING (user_id, event_timestamp)")
    assert both.to_pylist() == [{"n": 5}]


def test_a_version_is_pinned_by_table_version_or_time(history: History) -> None:
    store = history.store
    first, second, third = (w for w in history.writes if w.storage == "stats__v1")
    for w in (first, second, third):
        for name, columns in (("stats__v1", V1_COLUMNS), ("stats__v2", V2_COLUMNS)):
            by_version = _got(store, name, columns, as_of={name: w.table_version})
            by_time = _got(store, name, columns, as_of={name: w.after})
            expected = _cut(history.expected("stats__v1", columns, version=w.table_version), columns)
            assert by_version == by_time == expected, (name, w.table_version)
    # One pin, the other tables at their latest; a naive time is UTC.
    query = "SELECT (SELECT count(*) FROM stats__v1) AS old, (SELECT count(*) FROM stats) AS new"
    naive = first.after.astimezone(UTC).replace(tzinfo=None)
    assert store.sql(query, as_of={"stats__v1": naive}).to_pylist() == [{"old": 2, "new": 1}]
    assert store.sql(query, as_of={"stats__v1": first.table_version}).to_pylist() == [{"old": 2, "new": 1}]


def test_as_of_a_time_reads_every_table_as_it_was(history: History) -> None:
    store = history.store
    for w in history.writes:
        for name, storage in (("stats__v1", "stats__v1"), ("stats", "stats__v3")):
            got = _got(store, name, V1_COLUMNS, as_of=w.after)
            assert got == _cut(history.expected(storage, V1_COLUMNS, when=w.after), V1_COLUMNS), (name, w.after)


def test_training_sets_are_tables_by_name_and_version(history: History) -> None:
    store = history.store
    latest, first = store.get_training_set("churn"), store.get_training_set("churn", version=1)
    assert latest.record.version == 2
    assert store.sql("SELECT * FROM training_sets.churn").equals(latest.table)
    assert store.sql("SELECT * FROM training_sets.churn__v2").equals(latest.table)
    assert store.sql("SELECT * FROM training_sets.churn__v1").equals(first.table)
    daily = store.get_training_set("churn-daily").table
    assert store.sql('SELECT * FROM training_sets."churn-daily"').equals(daily)
    # as_of a time: the latest version created by then.
    assert store.sql("SELECT * FROM training_sets.churn", as_of=history.before_v3).equals(first.table)
    naive = history.before_v3.astimezone(UTC).replace(tzinfo=None)  # naive means UTC
    assert store.sql("SELECT * FROM training_sets.churn", as_of=naive).equals(first.table)
    with pytest.raises(UserError, match="had no version yet"):
        store.sql("SELECT * FROM training_sets.churn", as_of=T0)
    # A view and a training set of one name never collide: they live in different schemas.
    joined = store.sql("SELECT count(*) AS n FROM training_sets.churn JOIN stats__v2 USING (user_id)")
    assert joined.to_pylist() == [{"n": 5}]


def test_unknown_names_and_bad_pins_are_clear_errors(history: History) -> None:
    store = history.store
    with pytest.raises(UserError, match="stats__v9"):
        store.sql("SELECT * FROM stats__v9")
    with pytest.raises(UserError, match="nosuch"):
        store.sql("SELECT * FROM training_sets.nosuch")
    with pytest.raises(UserError, match=r"as_of pins \['nosuch'\]"):
        store.sql("SELECT 1", as_of={"nosuch": 1})
    with pytest.raises(UserError, match=r"as_of\['stats'\] must be a table version"):
        store.sql("SELECT 1", as_of={"stats": "yesterday"})
    with pytest.raises(UserError, match="no version 99"):
        store.sql("SELECT * FROM stats__v1", as_of={"stats__v1": 99})
    with pytest.raises(UserError, match=r"training_sets\.NAME__vN"):
        store.sql("SELECT * FROM training_sets.churn", as_of={"training_sets.churn": 1})


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    batches=st.lists(
        st.lists(st.tuples(st.integers(1, 4), st.integers(0, 5), st.integers(-50, 50)), min_size=1, max_size=4),
        min_size=1,
        max_size=4,
    ),
    widen_after=st.integers(0, 4),
)
def test_pins_agree_with_the_write_history(
    tmp_path_factory: pytest.TempPathFactory, batches: list[list[tuple[int, int, int]]], widen_after: int
) -> None:
    """Random writes, with a compatible change somewhere among them: every table version and
    every time after a write reads, under both version names, exactly the rows the model holds."""
    repo = tmp_path_factory.mktemp("sqlpins")
    write_default_config(repo, "proj")
    with FeatureStore(repo) as store:
        h = History(store, repo)
        store.apply([USER, stats_view()])
        for i, batch in enumerate(batches):
            if i == widen_after:
                store.apply([USER, stats_view(extra=[Field("extra", Int64)])])
            extra = {} if i < widen_after else {"extra": i}
            rows = {(u, d): x for u, d, x in batch}  # one row per (key, event time) within a write
            h.write("stats", [r for (u, d), x in rows.items() for r in _rows([u], d, [x], **extra)])
        names = [("stats__v1", V1_COLUMNS)] + ([("stats__v2", V2_COLUMNS)] if widen_after < len(batches) else [])
        for w in h.writes:
            for name, columns in names:
                # Later writes of the same (key, event time) are kept as rows of their own in history.
                expected = _cut(h.expected("stats__v1", columns, version=w.table_version), columns)
                assert _got(store, name, columns, as_of={name: w.table_version}) == expected
                assert _got(store, name, columns, as_of={name: w.after}) == expected
                assert _got(store, name, columns, as_of=w.after) == expected
