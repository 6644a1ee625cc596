"""Table upkeep (issue 8, item 7): compaction keeps time travel, and vacuum never deletes the
files a registered training set pins; rebuilds stay bit for bit through both."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from store.helpers import USER, stats_view
from strato import FeatureService, FeatureStore, Field, Float64, UserError

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _write(store: FeatureStore, n: int, *, base: int = 0, extra: bool = False) -> None:
    for i in range(n):
        row: dict[str, object] = {
            "user_id": i % 4,
            "event_timestamp": T0 + timedelta(minutes=base + i),
            "x": base + i,
            "tag": f"w{base + i}",
            "score": (base + i) / 7,
        }
        if extra:
            row["extra"] = float(i)
        store.write("stats", [row])


def _entities() -> pa.Table:
    times = [T0 + timedelta(minutes=m) for m in (5, 17, 33, 60, 200)]
    return pa.table(
        {
            "user_id": pa.array([1, 2, 3, 0, 1], pa.int64()),
            "event_timestamp": pa.array(times, pa.timestamp("us", tz="UTC")),
        }
    )


def _files(store: FeatureStore, table: str = "stats__v1") -> set[str]:
    folder = Path(store.config.offline_path) / store.project / table
    return {p.name for p in folder.glob("*.parquet")}


def _live(store: FeatureStore) -> int:
    snapshot = store.delta.snapshot("stats__v1")
    assert snapshot is not None
    return len(snapshot.files)


@pytest.fixture
def history(store: FeatureStore) -> FeatureStore:
    store.apply([USER, stats_view(), FeatureService("model", ["stats:x", "stats:tag", "stats:score"])])
    _write(store, 20)
    return store


def test_compaction_keeps_every_version_readable_and_rebuilds_exact(history: FeatureStore) -> None:
    saved = history.create_training_set("ts", "model", _entities())
    before = history.get_historical_features(_entities(), ["stats:x", "stats:tag", "stats:score"]).table
    assert _live(history) == 20
    [done] = history.compact()
    assert (done.table, done.files_removed, done.files_added) == ("stats__v1", 20, 1)
    assert done.version == 20
    assert _live(history) == 1
    after = history.get_historical_features(_entities(), ["stats:x", "stats:tag", "stats:score"]).table
    assert after.equals(before)
    rebuilt = history.rebuild_training_set("ts")
    assert rebuilt.matches
    assert rebuilt.table.equals(saved.table)
    # Nothing left to compact: no commit.
    assert history.compact(["stats"])[0].version is None


def test_vacuum_refuses_to_delete_pinned_files_and_force_keeps_them(history: FeatureStore) -> None:
    saved = history.create_training_set("ts", "model", _entities())
    pinned_version = saved.record.tables[0].table_version
    _write(history, 10, base=100)  # later writes, unpinned
    history.compact()
    files = _files(history)
    with pytest.raises(UserError, match=r"vacuum would delete 20 file\(s\) that registered training sets pin: .*ts v1"):
        history.vacuum(timedelta(0))
    assert _files(history) == files  # nothing deleted
    dry = history.vacuum(timedelta(0), force=True, dry_run=True)
    assert len(dry.deleted["stats__v1"]) == 10
    assert _files(history) == files
    report = history.vacuum(timedelta(0), force=True)
    assert sorted(report.deleted["stats__v1"]) == sorted(dry.deleted["stats__v1"])
    assert {k.file for k in report.kept} <= _files(history)
    assert len(report.kept) == 20
    assert {k.training_sets for k in report.kept} == {("ts v1",)}
    assert _files(history) == files - set(report.deleted["stats__v1"])
    # The pinned version still reads in full; the training set still rebuilds bit for bit.
    assert history.rebuild_training_set("ts").matches
    assert pinned_version == 19


def test_vacuum_without_pins_deletes_replaced_files_and_respects_retention(history: FeatureStore) -> None:
    history.compact()
    assert len(_files(history)) == 21
    assert history.vacuum(timedelta(days=7)).deleted == {"stats__v1": []}  # too young to go
    report = history.vacuum(timedelta(0))
    assert len(report.deleted["stats__v1"]) == 20
    assert report.kept == []
    assert len(_files(history)) == 1


def test_rebuild_after_schema_evolution_compaction_and_vacuum(history: FeatureStore) -> None:
    first = history.create_training_set("ts", "model", _entities())
    history.apply(
        [USER, stats_view(extra=[Field("extra", Float64)]), FeatureService("model", ["stats:x", "stats:extra"])]
    )
    _write(history, 5, base=50, extra=True)
    second = history.create_training_set("ts", "model", _entities())
    assert second.table.column("extra").to_pylist() == [None, None, None, 4.0, 1.0]
    history.compact()
    _write(history, 3, base=300, extra=True)
    history.vacuum(timedelta(0), force=True)
    for version, saved in ((1, first), (2, second)):
        rebuilt = history.rebuild_training_set("ts", version)
        assert rebuilt.matches
        assert rebuilt.table.equals(saved.table)
