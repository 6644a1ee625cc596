"""`strato training-set create/ls/describe/rebuild`, `strato lineage`, `strato compact` and
`strato vacuum` through the installed script, on the example repo `strato init` writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from e2e.conftest import one_line_error, run

T0 = (datetime.now(UTC) - timedelta(days=2)).replace(microsecond=0)


def _stats(path: Path, at: datetime, base: int) -> Path:
    pq.write_table(
        pa.table(
            {
                "user_id": pa.array([1, 2, 3], pa.int64()),
                "event_timestamp": pa.array([at] * 3, pa.timestamp("us", tz="UTC")),
                "tx_count_7d": pa.array([base, base + 1, base + 2], pa.int64()),
                "amount_mean_7d": pa.array([1.5 * base, 2.5, 3.5], pa.float64()),
                "home_country": pa.array(["FR", "DE", "US"]),
            }
        ),
        path,
    )
    return path


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ts")
    assert run("init", "shop", cwd=root).code == 0
    repo = root / "shop"
    assert run("apply", cwd=repo).code == 0
    for i in range(4):
        done = run("write", "user_stats", _stats(root / f"s{i}.parquet", T0 + timedelta(hours=i), 10 * i), cwd=repo)
        assert done.code == 0, str(done)
    pq.write_table(
        pa.table(
            {
                "user_id": pa.array([1, 2, 3, 1], pa.int64()),
                "event_timestamp": pa.array(
                    [T0 + timedelta(hours=h) for h in (0, 1, 2, 5)], pa.timestamp("us", tz="UTC")
                ),
                "label": pa.array([0, 1, 0, 1], pa.int64()),
            }
        ),
        repo / "labels.parquet",
    )
    return repo


def test_every_new_command_has_help(repo: Path) -> None:
    for args in (
        ("training-set", "--help"),
        ("training-set", "create", "--help"),
        ("training-set", "ls", "--help"),
        ("training-set", "describe", "--help"),
        ("training-set", "rebuild", "--help"),
        ("lineage", "--help"),
        ("compact", "--help"),
        ("vacuum", "--help"),
    ):
        result = run(*args, cwd=repo)
        assert result.code == 0, str(result)
        assert "Usage" in result.out, str(result)


def test_create_describe_rebuild_lineage_compact_and_vacuum(repo: Path) -> None:
    made = run("training-set", "create", "churn", "-s", "fraud_model_v1", "--entities", "labels.parquet", cwd=repo)
    assert made.code == 0, str(made)
    assert "training set churn version 1: 4 rows, 3 features from fraud_model_v1 v1" in made.out
    ranged = run(
        "training-set", "create", "recent", "-s", "fraud_model_v1",
        "--start", (T0 - timedelta(days=1)).isoformat(), "--end", "now", cwd=repo,
    )  # fmt: skip
    assert ranged.code == 0, str(ranged)
    assert "12 rows" in ranged.out
    listed = run("training-set", "ls", cwd=repo)
    assert listed.code == 0, str(listed)
    assert "churn" in listed.out
    assert "recent" in listed.out
    described = run("training-set", "describe", "churn", cwd=repo)
    assert described.code == 0, str(described)
    for text in ("service: fraud_model_v1 v1", "user_stats__v1", "tx_count_7d", "statistics", "pinned versions"):
        assert text in described.out, str(described)
    # Later writes, then compaction: rebuilds are still exact.
    assert run("write", "user_stats", _stats(repo / "late.parquet", T0 + timedelta(minutes=30), 99), cwd=repo).code == 0
    compacted = run("compact", cwd=repo)
    assert compacted.code == 0, str(compacted)
    assert "user_stats__v1" in compacted.out
    for name in ("churn", "recent"):
        rebuilt = run("training-set", "rebuild", name, cwd=repo)
        assert rebuilt.code == 0, str(rebuilt)
        assert "rebuilt bit for bit" in rebuilt.out
    # Vacuum refuses to delete what the training sets pin, naming it; --force keeps those files.
    refused = one_line_error(run("vacuum", "--retain", "0s", cwd=repo))
    assert "registered training sets pin" in refused
    assert "churn v1" in refused
    forced = run("vacuum", "--retain", "0s", "--force", cwd=repo)
    assert forced.code == 0, str(forced)
    assert "kept user_stats__v1/" in forced.out
    assert run("training-set", "rebuild", "churn", cwd=repo).code == 0
    # Lineage: from the training set down to the source; from the view up to its users.
    tree = run("lineage", "training-set:churn", cwd=repo)
    assert tree.code == 0, str(tree)
    lines = tree.out.splitlines()
    assert lines[0].startswith("training set churn v1 · 4 rows")
    assert any("feature service fraud_model_v1 v1" in line for line in lines)
    assert any("feature view user_stats v1 · user_stats__v1 @ table version 3" in line for line in lines)
    assert any("source: rows written by" in line for line in lines)
    up = run("lineage", "view:user_stats", cwd=repo)
    assert up.code == 0, str(up)
    for text in (
        "used by services",
        "feature service fraud_model_v1",
        "read by training sets",
        "churn v1",
        "recent v1",
    ):
        assert text in up.out, str(up)


def test_user_errors_are_one_line(repo: Path) -> None:
    assert "is not a duration" in one_line_error(run("vacuum", "--retain", "soon", cwd=repo))
    assert "does not exist" in one_line_error(run("training-set", "describe", "nope", cwd=repo))
    assert "no training set, feature service or feature view is named" in one_line_error(
        run("lineage", "nothing_here", cwd=repo)
    )
    assert "both start and end" in one_line_error(
        run("training-set", "create", "x", "-s", "fraud_model_v1", "--start", "2026-01-01", cwd=repo)
    )
