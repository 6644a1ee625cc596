"""The README's "Your own feature repo" steps, run literally as a newcomer would (issue 7, item 18):
the shell block in an empty folder with `strato` on PATH (as after `source .venv/bin/activate`),
then the Python snippet beside the repo it made — whose `apply` must change nothing."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from e2e.conftest import STRATO

README = Path(__file__).resolve().parents[2] / "README.md"
MARKER = "<!-- tests/e2e/test_readme.py runs this block literally"


def readme_blocks() -> list[tuple[str, str]]:
    """(language, text) of each fenced block the README marks as tested, in order."""
    text = README.read_text()
    blocks = []
    for match in re.finditer(re.escape(MARKER) + r".*?-->\n```(\w+)\n(.*?)\n```", text, re.S):
        blocks.append((match[1], match[2] + "\n"))
    return blocks


def activated_env() -> dict[str, str]:
    """What `source .venv/bin/activate` gives a shell: the venv's bin first on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRATO_", "UV_")) and k not in ("MAKELEVEL",)}
    bin_dir = str(Path(STRATO).parent)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    env["VIRTUAL_ENV"] = str(Path(bin_dir).parent)
    env.pop("COLUMNS", None)
    return env


def test_the_readme_marks_its_shell_and_python_steps() -> None:
    assert [language for language, _ in readme_blocks()] == ["sh", "python"]


def test_the_readme_steps_run_literally_and_the_python_apply_changes_nothing(tmp_path: Path) -> None:
    (_, shell), (_, python) = readme_blocks()
    env = activated_env()
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", shell],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr
    assert "wrote 2 rows to user_stats" in done.stdout
    assert re.search(r"1\s*│\s*31\.5", done.stdout), done.stdout
    assert re.search(r"3\s*│\s*not_found", done.stdout), done.stdout

    # The Python snippet, then checks of what it left: one version of each object, one service.
    checks = """
assert store.plan([user, user_stats, fraud_model_v1]).changes, "the plan lists the objects"
assert all(c.action.value == "unchanged" for c in store.plan([user, user_stats, fraud_model_v1]).changes)
assert [(v.name, v.version) for v in store.list_feature_views()] == [("user_stats", 1)]
assert [(s.name, s.version) for s in store.list_feature_services()] == [("fraud_model_v1", 1)]
assert [e.name for e in store.list_entities()] == ["user"]
for kind, name in (("entity", "user"), ("feature_view", "user_stats"), ("feature_service", "fraud_model_v1")):
    assert len(store.history(kind, name)) == 1, (kind, name, store.history(kind, name))
assert online.to_dict() == {"user_id": [1, 3], "amount_mean_7d": [31.5, None]}, online.to_dict()
assert training.versions == {"user_stats@v1": 1}, training.versions
print("ok")
"""
    done = subprocess.run(
        [sys.executable, "-c", python + checks],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    assert done.stdout.strip().endswith("ok")
