"""`cli.loader`: which files of a feature repo are definitions, how they import each other, and
what a failing file reports (issue 7, items 14 and 18)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from strato import Entity, FeatureView
from strato.cli.loader import definition_files, load_definitions
from strato.errors import DefinitionError

ENTITY = 'from strato import Entity, Int64\nuser = Entity("user", join_keys={"user_id": Int64})\n'
VIEW = (
    "from strato import FeatureView, Field, Float64\n"
    "{imports}\n"
    'stats = FeatureView("stats", entities=[user], schema=[Field("x", Float64)])\n'
)


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def _names(repo: Path) -> list[str]:
    return [p.relative_to(repo).as_posix() for p in definition_files(repo)]


def test_default_ignores_skip_environments_tests_hidden_and_private_files(tmp_path: Path) -> None:
    repo = _write(
        tmp_path,
        {
            "features.py": ENTITY,
            "defs/more.py": ENTITY,
            ".venv/lib/python3.12/site-packages/pkg/mod.py": "raise SystemExit(1)",
            "venv/x.py": "",
            ".strato/x.py": "",
            ".ipynb_checkpoints/features-checkpoint.py": "",
            "__pycache__/x.py": "",
            "tests/test_features.py": "",
            "tests/helpers.py": "",
            "test_top.py": "",
            "features_test.py": "",
            "conftest.py": "",
            "_private.py": "",
            "data/generate.py": "",
        },
    )
    assert _names(repo) == ["defs/more.py", "features.py"]


def test_stratoignore_uses_gitignore_patterns_and_can_bring_a_default_back(tmp_path: Path) -> None:
    repo = _write(
        tmp_path,
        {
            "features.py": ENTITY,
            "scripts/train.py": "import sys\nsys.exit(3)\n",
            "notebooks/explore.py": "",
            "tests/defs_for_tests.py": "",
            "legacy/old_features.py": "",
            "legacy/keep.py": "",
            ".stratoignore": "# not definitions\nscripts/\n*.ipynb\nnotebooks\nlegacy/*\n!legacy/keep.py\n!tests/\n",
        },
    )
    assert _names(repo) == ["features.py", "legacy/keep.py", "tests/defs_for_tests.py"]
    assert [d.name for d in load_definitions(repo)] == ["user"]  # scripts/train.py never ran


def test_a_script_that_exits_is_reported_with_file_line_and_code(tmp_path: Path) -> None:
    """The report: `sys.exit(3)` in a definitions file ended `strato plan` with exit 3 and no message."""
    repo = _write(tmp_path, {"features.py": ENTITY, "scripts/train.py": "import sys\n\nsys.exit(3)\n"})
    with pytest.raises(DefinitionError) as caught:
        load_definitions(repo)
    message = str(caught.value)
    assert message.startswith("scripts/train.py:3: called sys.exit(3) while being imported")
    assert ".stratoignore" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("x = 1\n\ny = 1 / 0\n", "features.py:3: failed to import (ZeroDivisionError: division by zero)"),
        ("x = 1\ndef broken(:\n", "features.py:2: failed to import (SyntaxError: "),
        ("import no_such_module_anywhere\n", "features.py:1: failed to import (ModuleNotFoundError: "),
        (ENTITY + 'bad = Entity("bad", join_keys={})\n', "features.py:3: "),
        ("from helper import boom\n", "helper.py:2: failed to import (ValueError: multi line)"),
    ],
)
def test_an_exception_names_the_file_and_line_in_one_line(tmp_path: Path, text: str, expected: str) -> None:
    repo = _write(tmp_path, {"features.py": text, "helper.py": "def boom(): pass\nraise ValueError('multi\\nline')\n"})
    with pytest.raises(DefinitionError) as caught:
        load_definitions(repo)
    assert str(caught.value).startswith(expected), str(caught.value)
    assert "\n" not in str(caught.value)


def test_definition_files_import_each_other_and_share_objects(tmp_path: Path) -> None:
    repo = _write(
        tmp_path,
        {
            "entities.py": ENTITY,
            "features.py": VIEW.format(imports="from entities import user"),
            "defs/__init__.py": "",
            "defs/common.py": ENTITY.replace('"user"', '"account"'),
            "defs/views.py": VIEW.replace('"stats"', '"account_stats"').format(imports="from .common import user"),
        },
    )
    found = load_definitions(repo)
    assert sorted(d.name for d in found) == ["account", "account_stats", "stats", "user"]
    user = next(d for d in found if d.name == "user")
    stats = next(d for d in found if isinstance(d, FeatureView) and d.name == "stats")
    assert isinstance(user, Entity)
    assert stats.entities[0] is user
    assert str(repo) not in sys.path
    assert "entities" not in sys.modules
    assert "defs" not in sys.modules
    assert "defs.views" not in sys.modules
    assert not list(repo.rglob("__pycache__"))


def test_two_repos_in_one_process_do_not_mix(tmp_path: Path) -> None:
    first = _write(tmp_path / "a", {"features.py": ENTITY})
    second = _write(tmp_path / "b", {"features.py": ENTITY.replace('"user"', '"shop"')})
    assert [d.name for d in load_definitions(first)] == ["user"]
    assert [d.name for d in load_definitions(second)] == ["shop"]
    assert [d.name for d in load_definitions(first)] == ["user"]


def test_a_file_shadowing_an_imported_module_is_refused(tmp_path: Path) -> None:
    repo = _write(tmp_path, {"pathlib.py": ENTITY})
    with pytest.raises(DefinitionError, match=r"pathlib\.py: its module name 'pathlib' is already taken"):
        load_definitions(repo)


def test_a_file_name_python_cannot_import_still_loads(tmp_path: Path) -> None:
    repo = _write(tmp_path, {"my-features.py": ENTITY})
    assert [d.name for d in load_definitions(repo)] == ["user"]
