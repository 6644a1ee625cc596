"""`strato quickstart`: the whole fraud-scoring walk-through, small, through the real script."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from e2e.conftest import one_line_error, run


def test_quickstart_runs_end_to_end(tmp_path: Path) -> None:
    result = run("quickstart", "--dir", tmp_path / "demo", "--users", "300", cwd=tmp_path, timeout=600)
    assert result.code == 0, str(result)
    assert "Traceback" not in result.err
    assert "AUC" in result.out
    assert (tmp_path / "demo" / "strato.yaml").is_file()
    # Every suggested command runs as printed, from where the user stands (issue 7, item 18).
    tries = result.out.split("Try:\n", 1)[1].splitlines()
    commands = [line.strip() for line in tries if line.startswith("  ")]
    assert len(commands) == 4, result.out
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRATO_")}
    for command in commands:
        done = subprocess.run(command, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
        assert done.stderr == "", f"{command}\n{done.stderr}"


def test_quickstart_never_deletes_a_users_folder(tmp_path: Path) -> None:
    """The report: `important/data.csv` beside a features.py that mentions "strato quickstart"."""
    folder = tmp_path / "work"
    (folder / "important").mkdir(parents=True)
    (folder / "important" / "data.csv").write_text("a,b\n1,2\n")
    (folder / "features.py").write_text("# my features, first made by strato quickstart\n")
    line = one_line_error(run("quickstart", "--dir", folder, "--users", "300", cwd=tmp_path))
    assert "was not created by `strato quickstart`" in line
    assert (folder / "important" / "data.csv").read_text() == "a,b\n1,2\n"
