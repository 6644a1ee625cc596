"""`strato quickstart`: the whole fraud-scoring walk-through, small, through the real script."""

from __future__ import annotations

from pathlib import Path

from e2e.conftest import run


def test_quickstart_runs_end_to_end(tmp_path: Path) -> None:
    result = run("quickstart", "--dir", tmp_path / "demo", "--users", "300", cwd=tmp_path, timeout=120)
    assert result.code == 0, str(result)
    assert "Traceback" not in result.err
    assert "AUC" in result.out
    assert (tmp_path / "demo" / "strato.yaml").is_file()
