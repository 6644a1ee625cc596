"""``get_historical_features(engine_result=True)``: the training set stays in Spark (issue 10, item 2).

A feature repo whose offline engine is Spark (the harness's options, so the pytest session's one
SparkSession serves it) returns a Spark DataFrame with the same rows, in the same order, as the
collected Arrow result; the join is checked against the brute-force oracle. DuckDB, which has no
frames of its own, refuses the flag with a message naming the engine that has them.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import yaml

from strato import Entity, FeatureStore, FeatureView, Field, Float64, Int64, String, UserError

from . import harness

_TESTS = str(Path(__file__).resolve().parents[2])
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

from oracles import pit_join_oracle  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:unclosed <socket.socket:ResourceWarning")

T0 = datetime(2026, 1, 1, tzinfo=UTC)
USER = Entity("user", join_keys={"user_id": Int64})
STATS = FeatureView("stats", entities=[USER], schema=[Field("x", Int64), Field("tag", String), Field("score", Float64)])
REFS = ["stats:x", "stats:tag", "stats:score"]


def _repo(folder: Path, engine: str) -> Path:
    offline: dict[str, Any] = {"path": ".strato/offline", "engine": engine}
    if engine == "spark":
        options = harness.OPTIONS
        offline |= {
            "master": options.master,
            "driver_memory": options.driver_memory,
            "shuffle_partitions": options.shuffle_partitions,
        }
    config = {"project": "proj", "offline": offline, "online": {"type": "memory"}}
    (folder / "strato.yaml").write_text(yaml.safe_dump(config))
    return folder


def _rows() -> list[dict[str, Any]]:
    return [
        {"user_id": i % 3, "event_timestamp": T0 + timedelta(minutes=i), "x": i, "tag": f"t{i}", "score": i / 4}
        for i in range(9)
    ]


def _entities() -> pa.Table:
    times = [T0 + timedelta(minutes=m) for m in (4, -1, 7, 2, 30)]
    return pa.table(
        {
            "user_id": pa.array([1, 0, 2, 2, 0], pa.int64()),
            "ts": pa.array(times, pa.timestamp("us", tz="UTC")),
            "label": pa.array([1, 0, 1, 1, 0], pa.int64()),
        }
    )


@pytest.fixture
def spark_store(tmp_path: Path) -> Iterator[FeatureStore]:
    harness.engine()  # the session's Spark (skips without Java)
    with FeatureStore(_repo(tmp_path, "spark")) as store:
        store.apply([USER, STATS])
        store.write("stats", _rows())
        yield store


def test_engine_result_keeps_the_training_set_in_spark(spark_store: FeatureStore) -> None:
    from pyspark.sql import DataFrame

    collected = spark_store.get_historical_features(_entities(), REFS, timestamp_field="ts")
    kept = spark_store.get_historical_features(_entities(), REFS, timestamp_field="ts", engine_result=True)
    assert isinstance(kept.frame, DataFrame)
    assert kept.table.num_rows == 0
    assert kept.table.schema == collected.table.schema
    assert kept.versions == collected.versions
    assert kept.frame.columns == collected.table.column_names
    assert kept.to_arrow().to_pylist() == collected.table.to_pylist()  # same rows, spine order
    history = [{**r, "created_timestamp": r["event_timestamp"]} for r in _rows()]
    spine = [{**r, "event_timestamp": r["ts"]} for r in _entities().to_pylist()]
    want = pit_join_oracle(spine, history, join_keys=["user_id"], features=["x", "tag", "score"])
    assert [{k: r[k] for k in ("user_id", "x", "tag", "score")} for r in want] == [
        {k: r[k] for k in ("user_id", "x", "tag", "score")} for r in collected.table.to_pylist()
    ]
    # Work on it in Spark without collecting: a filter runs as a Spark job.
    assert kept.frame.where("x IS NOT NULL").count() == sum(r["x"] is not None for r in want)


def test_engine_result_on_duckdb_names_the_engine_that_has_frames(tmp_path: Path) -> None:
    with FeatureStore(_repo(tmp_path, "duckdb")) as store:
        store.apply([USER, STATS])
        store.write("stats", _rows())
        with pytest.raises(UserError, match=r"engine_result=True needs an engine .*offline engine spark"):
            store.get_historical_features(_entities(), REFS, timestamp_field="ts", engine_result=True)
