"""`strato quickstart`: the whole fraud-scoring walk-through, small, through the real script."""

from __future__ import annotations

from pathlib import Path

from e2e.conftest import one_line_error, run


def test_quickstart_runs_end_to_end(tmp_path: Path) -> None:
    result = run("quickstart", "--dir", tmp_path / "demo", "--users", "300", cwd=tmp_path, timeout=120)
    assert result.code == 0, str(result)
    assert "Traceback" not in result.err
    assert "AUC" in result.out
    assert (tmp_path / "demo" / "strato.yaml").is_file()


def test_quickstart_never_deletes_a_users_folder(tmp_path: Path) -> None:
    """The report: `important/data.csv` beside a features.py that mentions "strato quickstart"."""
    folder = tmp_path / "work"
    (folder / "important").mkdir(parents=True)
    (folder / "important" / "data.csv").write_text("a,b\n1,2\n")
    (folder / "features.py").write_text("# my features, first made by strato quickstart\n")
    line = one_line_error(run("quickstart", "--dir", folder, "--users", "300", cwd=tmp_path))
    assert "was not created by `strato quickstart`" in line
    assert (folder / "important" / "data.csv").read_text() == "a,b\n1,2\n"
