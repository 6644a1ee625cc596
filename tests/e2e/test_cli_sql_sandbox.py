"""`strato sql` is sandboxed: refusals, file access and the time limit are one line on stderr with
exit code 1; a Ctrl-C stops a running query at once (exit 130), not when DuckDB is done."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from e2e.conftest import STRATO, one_line_error, run
from strato import Entity, FeatureStore, FeatureView, Field, Int64
from strato.config import write_default_config

SLOW = "SELECT sum(hash(i)) AS s FROM range(100000000000) t(i)"


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("sqlcli")
    config = write_default_config(repo, "proj")
    config.write_text(config.read_text().replace("engine: duckdb", "engine: duckdb\n  sql_timeout_seconds: 1"))
    user = Entity("user", join_keys={"user_id": Int64})
    with FeatureStore(repo) as store:
        store.apply([user, FeatureView("stats", entities=[user], schema=[Field("x", Int64)])])
        when = datetime(2026, 1, 1, tzinfo=UTC)
        store.write("stats", pd.DataFrame({"user_id": [1], "event_timestamp": [when], "x": [5]}))
    return repo


def test_refusals_and_the_time_limit_are_one_line(repo: Path, tmp_path: Path) -> None:
    cases = {
        f"COPY (SELECT 1) TO '{tmp_path}/x.csv'": "strato sql runs one read-only SELECT; got COPY",
        "SELECT 1; DROP VIEW stats": "got 2 statements (SELECT, DROP)",
        "SELECT * FROM read_csv('/etc/passwd', sep = ':')": "files are out of reach",
        SLOW: "stopped after sql_timeout_seconds=1",
    }
    with ThreadPoolExecutor(max_workers=len(cases)) as pool:
        results = list(pool.map(lambda q: run("sql", q, cwd=repo), cases))
    for result, expected in zip(results, cases.values(), strict=True):
        line = one_line_error(result)
        assert expected in line, line
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_stops_a_running_query(repo: Path, tmp_path: Path) -> None:
    config = repo / "strato.yaml"
    slow_repo = tmp_path / "slow"
    slow_repo.mkdir()
    # Same data, no short time limit, so only the Ctrl-C can end the query.
    for item in repo.iterdir():
        if item.name != "strato.yaml":
            os.symlink(item, slow_repo / item.name)
    (slow_repo / "strato.yaml").write_text(config.read_text().replace("\n  sql_timeout_seconds: 1", ""))
    began = time.monotonic()
    ok = run("sql", "SELECT sum(x) AS s FROM stats", cwd=slow_repo)
    assert ok.code == 0, str(ok)
    startup = time.monotonic() - began  # this machine's start-up time, loaded as it is now
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRATO_")}
    proc = subprocess.Popen(
        [STRATO, "sql", SLOW], cwd=slow_repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        time.sleep(1.5 * startup + 2)  # start-up, then well into the query
        assert proc.poll() is None, proc.communicate()
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
        assert time.monotonic() - sent < 10
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in err, err
