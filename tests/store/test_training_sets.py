"""Registered training sets (issue 8, item 1): saved, described, and rebuilt bit for bit from
the versions they pinned, after later writes and compatible schema changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from store.helpers import USER, stats_view
from strato import FeatureService, FeatureStore, Field, Float64, NotFoundError, UserError
from strato.store.training_sets import digest

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _rows(users: range, at: datetime, x: int) -> list[dict[str, object]]:
    return [
        {"user_id": u, "event_timestamp": at, "x": x + u, "tag": f"t{u}", "score": float(x) / (u + 1)} for u in users
    ]


def _entities(n: int = 6) -> pa.Table:
    return pa.table(
        {
            "user_id": pa.array([u % 3 for u in range(n)], pa.int64()),
            "event_timestamp": pa.array([T0 + timedelta(hours=u) for u in range(n)], pa.timestamp("us", tz="UTC")),
            "label": pa.array([u % 2 for u in range(n)], pa.int64()),
        }
    )


@pytest.fixture
def repo_store(store: FeatureStore) -> FeatureStore:
    store.apply([USER, stats_view(), FeatureService("model", ["stats:x", "stats:score"])])
    store.write("stats", _rows(range(3), T0 - timedelta(hours=1), 10))
    store.write("stats", _rows(range(2), T0 + timedelta(hours=2), 20))
    return store


def test_a_training_set_is_saved_registered_and_read_back(repo_store: FeatureStore) -> None:
    saved = repo_store.create_training_set("churn", "model", _entities())
    record = saved.record
    assert (record.name, record.version, record.service, record.service_version) == ("churn", 1, "model", 1)
    assert record.row_count == 6
    assert [(t.view, t.view_version, t.storage, t.table_version) for t in record.tables] == [
        ("stats", 1, "stats@v1", 1)
    ]
    assert record.features == (("stats@v1:x", "x"), ("stats@v1:score", "score"))
    assert record.statistics["x"] == {
        "type": "int64",
        "count": 6,
        "nulls": 0,
        "min": 10,
        "max": 21,
        "mean": pytest.approx(86 / 6),
    }
    assert saved.table.column_names == ["user_id", "event_timestamp", "label", "x", "score"]
    assert list(record.statistics) == saved.table.column_names  # in column order, also once stored
    # Same rows as an ad-hoc historical read.
    adhoc = repo_store.get_historical_features(_entities(), ["stats:x", "stats:score"]).table
    assert saved.table.equals(adhoc)
    again = repo_store.get_training_set("churn")
    assert again.record == record
    assert list(again.record.statistics) == saved.table.column_names
    assert again.table.equals(saved.table)
    assert digest(again.table) == record.content_digest
    assert again.to_df()["x"].tolist() == saved.table.column("x").to_pylist()
    # A second create is version 2; both listed.
    repo_store.create_training_set("churn", "model", _entities(3))
    assert [(r.name, r.version, r.row_count) for r in repo_store.list_training_sets()] == [
        ("churn", 1, 6),
        ("churn", 2, 3),
    ]
    assert repo_store.get_training_set("churn", version=1).record.row_count == 6


def test_rebuild_is_bit_for_bit_after_later_writes_and_a_compatible_change(repo_store: FeatureStore) -> None:
    saved = repo_store.create_training_set("churn", "model", _entities())
    repo_store.write("stats", _rows(range(3), T0 + timedelta(minutes=30), 99))  # would change the rows
    assert not repo_store.get_historical_features(_entities(), ["stats:x", "stats:score"]).table.equals(saved.table)
    # Compatible change: a nullable field added; the service moves on to include it.
    wider = stats_view(extra=[Field("extra", Float64)])
    repo_store.apply([USER, wider, FeatureService("model", ["stats:x", "stats:score", "stats:extra"])])
    repo_store.write("stats", [{**r, "extra": 1.5} for r in _rows(range(3), T0 + timedelta(hours=3), 50)])
    rebuilt = repo_store.rebuild_training_set("churn", 1)
    assert rebuilt.matches
    assert rebuilt.table.equals(saved.table)
    assert rebuilt.table.schema == saved.table.schema
    # The added field reads null in the old version it was pinned to, and where rows lack it.
    newer = repo_store.create_training_set("churn", "model", _entities())
    assert newer.record.service_version == 2
    assert newer.record.features[-1] == ("stats@v2:extra", "extra")
    assert newer.table.column("extra").to_pylist() == [None, None, None, 1.5, 1.5, 1.5]
    old_pins = {t.storage: t.table_version for t in saved.record.tables}
    at_old = repo_store.get_historical_features(_entities(), ["stats:extra"], versions=old_pins).table
    assert at_old.column("extra").to_pylist() == [None] * 6
    assert repo_store.rebuild_training_set("churn", 2).matches


def test_training_set_over_a_time_range_without_an_entity_frame(repo_store: FeatureStore) -> None:
    saved = repo_store.create_training_set("all", "model", start=T0 - timedelta(days=1), end=T0 + timedelta(days=1))
    t = saved.table
    assert t.column_names == ["user_id", "event_timestamp", "x", "score"]
    # Every entity at each of its event times, ordered by time then key.
    assert list(zip(t.column("user_id").to_pylist(), t.column("x").to_pylist(), strict=True)) == [
        (0, 10),
        (1, 11),
        (2, 12),
        (0, 20),
        (1, 21),
    ]
    assert saved.record.spine["kind"] == "range"
    repo_store.write("stats", _rows(range(5), T0, 7))
    assert repo_store.rebuild_training_set("all").matches


def test_labels_view_as_the_spine(repo_store: FeatureStore) -> None:
    from strato import FeatureView, Int64

    labels = FeatureView("labels", entities=[USER], schema=[Field("churned", Int64)])
    repo_store.apply([USER, labels])
    repo_store.write(
        "labels",
        [
            {"user_id": 0, "event_timestamp": T0, "churned": 1},
            {"user_id": 1, "event_timestamp": T0 + timedelta(hours=3), "churned": 0},
            {"user_id": 2, "event_timestamp": T0 + timedelta(days=3), "churned": 1},  # out of range
        ],
    )
    repo_store.write("labels", [{"user_id": 0, "event_timestamp": T0, "churned": 0}])  # later write wins
    got = repo_store.get_historical_features(
        features=["stats:x"], start=T0 - timedelta(days=1), end=T0 + timedelta(days=1), spine_view="labels"
    )
    assert got.table.to_pydict() == {
        "user_id": [0, 1],
        "event_timestamp": [T0, T0 + timedelta(hours=3)],
        "churned": [0, 0],
        "x": [10, 21],
    }
    assert set(got.versions) == {"labels@v1", "stats@v1"}
    saved = repo_store.create_training_set(
        "lab", "model", start=T0 - timedelta(days=1), end=T0 + timedelta(days=1), spine_view="labels"
    )
    assert [t.view for t in saved.record.tables] == ["stats", "labels"]
    repo_store.write("labels", [{"user_id": 1, "event_timestamp": T0 + timedelta(hours=1), "churned": 1}])
    assert repo_store.rebuild_training_set("lab").matches


def test_bad_requests_are_one_clear_error_and_write_nothing(repo_store: FeatureStore) -> None:
    with pytest.raises(UserError, match="either an entity_df or start/end"):
        repo_store.create_training_set("x", "model", _entities(), start=T0)
    with pytest.raises(UserError, match="both start and end"):
        repo_store.create_training_set("x", "model", start=T0)
    with pytest.raises(UserError, match="name 'bad name' is invalid"):
        repo_store.create_training_set("bad name", "model", _entities())
    with pytest.raises(NotFoundError, match="feature service 'modle' does not exist; did you mean 'model'"):
        repo_store.create_training_set("x", "modle", _entities())
    with pytest.raises(NotFoundError, match="training set 'nope' does not exist"):
        repo_store.get_training_set("nope")
    assert repo_store.list_training_sets() == []
    assert not (repo_store.config.repo_path / ".strato" / "training_sets").exists()
