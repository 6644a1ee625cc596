"""Issue 7, items 6 and 8 through the `strato` script: writes recognised by content, online
progress shown by `describe`, interrupted writes that say what they left, and no future ends."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from e2e.conftest import STRATO, one_line_error, run
from strato import FeatureStore

EVENT = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0)


def _stats_file(path: Path, n: int, *, x: int = 1) -> Path:
    pq.write_table(
        pa.table(
            {
                "user_id": pa.array(np.arange(n), pa.int64()),
                "event_timestamp": pa.array([EVENT] * n, pa.timestamp("us", tz="UTC")),
                "tx_count_7d": pa.array(np.full(n, x), pa.int64()),
                "amount_mean_7d": pa.array(np.full(n, 1.5)),
                "home_country": pa.array(["FR"] * n),
            }
        ),
        path,
    )
    return path


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    assert run("init", "shop", cwd=tmp_path).code == 0
    repo = tmp_path / "shop"
    applied = run("apply", cwd=repo)
    assert applied.code == 0, str(applied)
    return repo


def test_writing_the_same_file_twice_stores_it_once(repo: Path) -> None:
    data = _stats_file(repo / "rows.parquet", 5)
    first = run("write", "user_stats", data, cwd=repo)
    assert first.code == 0, str(first)
    assert "wrote 5 rows to user_stats (table version 0" in first.out
    again = run("write", "user_stats", data, cwd=repo)
    assert again.code == 0, str(again)
    assert "already written" in again.out
    assert "table version 0" in again.out
    changed = _stats_file(repo / "rows.parquet", 5, x=2)  # same name, new content: a new batch
    third = run("write", "user_stats", changed, cwd=repo)
    assert "wrote 5 rows to user_stats (table version 1" in third.out, str(third)
    with FeatureStore(repo) as store:
        assert store.sql("select count(*) as n from user_stats").column("n")[0].as_py() == 10


def test_describe_shows_how_far_online_is_behind_history(repo: Path) -> None:
    run("write", "user_stats", _stats_file(repo / "a.parquet", 3), cwd=repo)
    described = run("describe", "view", "user_stats", cwd=repo)
    assert "online: up to date with table version 0" in described.out, str(described)
    run("write", "user_stats", _stats_file(repo / "b.parquet", 3, x=2), "--to", "offline", cwd=repo)
    behind = run("describe", "view", "user_stats", cwd=repo)
    assert "table version 0 of 1: 1 commit(s) behind" in behind.out, str(behind)
    assert "strato materialize --incremental --view user_stats" in behind.out
    assert run("materialize", "--incremental", cwd=repo).code == 0
    caught_up = run("describe", "view", "user_stats", cwd=repo)
    assert "online: up to date with table version 1" in caught_up.out, str(caught_up)


def test_a_materialization_ending_in_the_future_is_refused(repo: Path) -> None:
    line = one_line_error(run("materialize", "--end", "2099-01-01", cwd=repo))
    assert "in the future" in line
    line = one_line_error(run("materialize", "--incremental", "--end", "2099-01-01", cwd=repo))
    assert "in the future" in line


@pytest.mark.parametrize("delay", [0.7, 1.4])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL])
def test_an_interrupted_write_leaves_a_store_that_knows_and_catches_up(
    repo: Path, sig: signal.Signals, delay: float
) -> None:
    """Stop a large write part way; whatever moment it hit, the truth is told and repairable."""
    data = _stats_file(repo / "big.parquet", 200_000)
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRATO_")}
    proc = subprocess.Popen(
        [STRATO, "write", "user_stats", str(data)], cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    time.sleep(delay)  # start-up, reading, validating, the Delta commit or the online upsert
    proc.send_signal(sig)
    out, err = (b.decode() for b in proc.communicate(timeout=120))
    assert "Traceback" not in err, err
    if proc.returncode == 0 or "wrote 200,000 rows" in out:
        # Finished before the signal: nothing to check. (A signal after the report, while the
        # interpreter shuts down, meets the default handlers again and exits -2/-15.)
        assert "wrote 200,000 rows" in out
    elif sig is not signal.SIGKILL:
        assert proc.returncode == (143 if sig is signal.SIGTERM else 130), (proc.returncode, err)
        assert ("terminated" if sig is signal.SIGTERM else "interrupted") in err
        with FeatureStore(repo) as store:
            progress, latest = store.online_status("user_stats")
            online_now = store.get_online_features(
                ["user_stats:tx_count_7d"], [{"user_id": u} for u in (0, 99_999, 199_999)]
            ).to_dict()["tx_count_7d"]
        if latest is not None and online_now != [1, 1, 1]:
            assert "committed as table version" in err, err  # history landed, online did not: said so
        if latest is not None and (progress is None or progress.version < latest):
            # The store knows it may be behind (a signal between the online upsert and the
            # progress record leaves a true but stale claim): describe says so.
            described = run("describe", "view", "user_stats", cwd=repo)
            assert "commit(s) behind" in described.out or "no commit of history" in described.out, str(described)
    # Whatever happened, one incremental run makes online agree with history.
    assert run("materialize", "--incremental", cwd=repo, timeout=120).code == 0
    with FeatureStore(repo) as store:
        history = store.sql("select count(*) as n from user_stats").column("n")[0].as_py()
        got = store.get_online_features(
            ["user_stats:tx_count_7d"], [{"user_id": u} for u in (0, 99_999, 199_999)]
        ).to_dict()
    assert history in (0, 200_000)  # one commit or none: never a partial batch
    assert got["tx_count_7d"] == ([1, 1, 1] if history else [None, None, None])
