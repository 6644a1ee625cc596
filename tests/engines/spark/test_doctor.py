"""`strato doctor` on a repo whose offline engine is Spark: the engine's own check runs (the session
starts, delta-spark's classes load, a job runs), not DuckDB's ``SELECT 1``, which Spark refuses."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from strato.store.doctor import diagnose

from . import harness

pytestmark = pytest.mark.filterwarnings("ignore:unclosed <socket.socket:ResourceWarning")


def test_doctor_checks_the_spark_engine(tmp_path: Path) -> None:
    harness.engine()  # the session's Spark (skips without Java)
    options = harness.OPTIONS
    offline = {
        "path": ".strato/offline",
        "engine": "spark",
        "master": options.master,
        "driver_memory": options.driver_memory,
        "shuffle_partitions": options.shuffle_partitions,
    }
    (tmp_path / "strato.yaml").write_text(yaml.safe_dump({"project": "p", "offline": offline}))
    checks = {c.name: c for c in diagnose(tmp_path).checks}
    assert checks["offline"].ok, checks["offline"].detail
    assert checks["offline"].detail == f"spark runs jobs; history at {tmp_path / '.strato' / 'offline'}"
    assert "object store" not in checks  # a local path has nothing to reach
