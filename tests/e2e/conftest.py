"""The `strato` command as users run it: the installed console script, in a subprocess, in a
temporary folder, with no STRATO_* variables leaking in from the test environment."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest


def strato_executable() -> str:
    beside = Path(sys.executable).parent / "strato"
    if beside.is_file():
        return str(beside)
    found = shutil.which("strato")
    if found is None:
        pytest.fail("the `strato` console script is not installed (uv sync installs it)")
    return found


STRATO = strato_executable()


@dataclass
class Run:
    args: tuple[str, ...]
    code: int
    out: str
    err: str

    def __str__(self) -> str:
        return f"strato {' '.join(self.args)} -> {self.code}\n--- stdout\n{self.out}\n--- stderr\n{self.err}"


def run(*args: str | Path, cwd: Path, timeout: float = 60) -> Run:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRATO_") and k != "COLUMNS"}
    env["COLUMNS"] = "200"  # wide enough that tables do not fold; errors must stay one line anyway
    done = subprocess.run(
        [STRATO, *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    return Run(tuple(map(str, args)), done.returncode, done.stdout, done.stderr)


def one_line_error(result: Run) -> str:
    """Assert `result` is a user error as the CLI promises: exit 1, one line on stderr, no traceback."""
    assert result.code == 1, str(result)
    assert "Traceback" not in result.err + result.out, str(result)
    lines = result.err.strip("\n").splitlines()
    assert len(lines) == 1, str(result)
    assert lines[0].startswith("error: "), str(result)
    return lines[0]
