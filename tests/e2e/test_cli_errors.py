"""The CLI's manners when things go wrong (issue 7, item 14): unknown entity keys are named,
Ctrl-C is one line and exit 130, a definitions file that exits or raises is one line naming
the file and line."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from e2e.conftest import STRATO, one_line_error, run
from strato.config import write_default_config


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("errors")
    assert run("init", "shop", cwd=root).code == 0
    applied = run("apply", cwd=root / "shop")
    assert applied.code == 0, str(applied)
    return root / "shop"


def test_get_refuses_an_entity_key_the_features_do_not_have(repo: Path) -> None:
    line = one_line_error(run("get", "user_stats:tx_count_7d", "-e", "user_id=1,extra=2", cwd=repo))
    assert "unknown key 'extra'" in line
    assert "keyed by user_id" in line
    line = one_line_error(run("get", "--service", "fraud_model_v1", "-e", "user_id=1,user_id=2", cwd=repo))
    assert "'user_id' is given twice" in line


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="watches /proc to know the query runs")
def test_ctrl_c_during_a_query_prints_one_line_and_exits_130(repo: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRATO_")}
    query = "select sum(a.range * b.range) from range(300000) a, range(300000) b"  # minutes of work
    process = subprocess.Popen(
        [STRATO, "sql", query],
        cwd=repo,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A shell delivers Ctrl-C as SIGINT; make sure the child does not inherit "ignore SIGINT".
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 60
        while "duckdb" not in Path(f"/proc/{process.pid}/maps").read_text():  # the query is about to run
            assert time.monotonic() < deadline
            assert process.poll() is None
            time.sleep(0.05)
        time.sleep(1.0)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, (out, err)
    assert err.strip() == "interrupted", err
    assert "Traceback" not in out + err


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("import sys\n\nsys.exit(3)\n", "features.py:3: called sys.exit(3) while being imported"),
        ("x = 1\nraise RuntimeError('no\\ndata')\n", "features.py:2: failed to import (RuntimeError: no data)"),
        ("def broken(:\n", "features.py:1: failed to import (SyntaxError: "),
    ],
)
def test_a_definitions_file_that_exits_or_raises_is_one_line(tmp_path: Path, script: str, expected: str) -> None:
    write_default_config(tmp_path, "broken")
    (tmp_path / "features.py").write_text(script)
    for command in ("plan", "apply"):
        line = one_line_error(run(command, cwd=tmp_path))
        assert line.startswith(f"error: {expected}"), line


def test_an_ignored_script_does_not_run(tmp_path: Path) -> None:
    """The report: `scripts/train.py` ran during `plan` and killed it."""
    assert run("init", "repo", cwd=tmp_path).code == 0
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir()
    (repo / "scripts" / "train.py").write_text("import sys\nsys.exit(3)\n")
    line = one_line_error(run("plan", cwd=repo))
    assert "scripts/train.py:2: called sys.exit(3)" in line
    (repo / ".stratoignore").write_text("scripts/\n")
    planned = run("plan", cwd=repo)
    assert planned.code == 0, str(planned)
