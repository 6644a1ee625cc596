"""`cli.help`: the `strato` command a hint prints is one that runs as printed (issue 7, item 18)."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from strato.cli.help import activate_hint, examples, strato_command


@pytest.fixture
def venv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A checkout with `.venv/bin/strato` and `activate`; we stand in the checkout, nothing on PATH."""
    bin_dir = tmp_path / "checkout" / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    script = bin_dir / "strato"
    script.write_text("#!/bin/sh\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    (bin_dir / "activate").write_text("")
    monkeypatch.chdir(tmp_path / "checkout")
    monkeypatch.setattr(sys, "argv", [str(script), "quickstart"])
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    for name in ("UV_RUN_RECURSION_DEPTH", "MAKELEVEL"):
        monkeypatch.delenv(name, raising=False)
    return bin_dir


def test_not_on_path_prints_the_relative_path_and_how_to_activate(venv: Path) -> None:
    assert strato_command() == ".venv/bin/strato"
    assert activate_hint() == "source .venv/bin/activate"


def test_activated_prints_plain_strato(venv: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", f"{venv}{os.pathsep}/usr/bin")
    assert strato_command() == "strato"
    assert activate_hint() is None


@pytest.mark.parametrize("variable", ["UV_RUN_RECURSION_DEPTH", "MAKELEVEL"])
def test_under_uv_run_or_make_the_path_seen_is_not_the_users(
    venv: Path, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    """`make demo` runs `uv run strato …`: strato is on *its* PATH, not on the user's shell's."""
    monkeypatch.setenv("PATH", f"{venv}{os.pathsep}/usr/bin")
    monkeypatch.setenv(variable, "1")
    assert strato_command() == ".venv/bin/strato"


def test_from_elsewhere_the_full_path_quoted(venv: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    elsewhere = tmp_path / "my work"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert strato_command() == f"{venv / 'strato'}"
    spaced = tmp_path / "a b" / "bin"
    spaced.mkdir(parents=True)
    (spaced / "strato").write_text("")
    monkeypatch.setattr(sys, "argv", [str(spaced / "strato")])
    assert strato_command() == f"'{spaced / 'strato'}'"


def test_every_example_fits_80_columns() -> None:
    from strato.cli.help import _EXAMPLES

    for command in _EXAMPLES:
        for line in examples(command).splitlines():
            assert len(line) <= 78, line
