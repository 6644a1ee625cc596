"""`strato quickstart --dir X` replaces only a folder it can prove it created (issue 7, item 9)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from strato.cli import quickstart_folder
from strato.cli.quickstart import _prepare_folder
from strato.errors import UserError
from strato.store import FeatureStore


def _demo(path: Path) -> Path:
    """A previous demo: what quickstart writes, plus the store's own data from using it."""
    _prepare_folder(path)
    with FeatureStore(path) as store:
        store.registry  # noqa: B018 - opening the registry creates .strato/
    return path


def test_a_previous_demo_with_its_store_data_is_replaced(tmp_path: Path) -> None:
    demo = _demo(tmp_path / "demo")
    assert (demo / ".strato").is_dir()
    token = (demo / quickstart_folder.MARKER).read_text()
    _prepare_folder(demo)
    assert sorted(p.name for p in demo.iterdir()) == [quickstart_folder.MARKER, "features.py", "strato.yaml"]
    assert (demo / quickstart_folder.MARKER).read_text() != token  # a fresh marker, a fresh token


def test_the_reported_case_a_users_data_beside_a_lookalike_features_py_survives(tmp_path: Path) -> None:
    folder = tmp_path / "important"
    (folder / "important").mkdir(parents=True)
    (folder / "important" / "data.csv").write_text("a,b\n1,2\n")
    (folder / "features.py").write_text('"""Written by `strato quickstart`."""\n')
    with pytest.raises(UserError, match=r"no \.strato-quickstart marker"):
        _prepare_folder(folder)
    assert (folder / "important" / "data.csv").read_text() == "a,b\n1,2\n"
    assert (folder / "features.py").exists()


@pytest.mark.parametrize("extra", ["notes.txt", "important/data.csv", ".strato-backup/x"])
def test_anything_else_in_a_demo_folder_is_named_and_nothing_is_deleted(tmp_path: Path, extra: str) -> None:
    demo = _demo(tmp_path / "demo")
    (demo / extra).parent.mkdir(parents=True, exist_ok=True)
    (demo / extra).write_text("mine")
    top = demo / extra.split("/")[0]
    with pytest.raises(UserError, match=re.escape(f"holds {top}, which `strato quickstart` did not create")):
        _prepare_folder(demo)
    assert (demo / extra).read_text() == "mine"
    assert (demo / ".strato").is_dir()
    assert (demo / "features.py").is_file()


def test_an_edited_definitions_file_is_not_deleted(tmp_path: Path) -> None:
    demo = _demo(tmp_path / "demo")
    (demo / "features.py").write_text((demo / "features.py").read_text() + "\n# my change\n")
    with pytest.raises(UserError, match=r"features\.py was changed since"):
        _prepare_folder(demo)
    assert "# my change" in (demo / "features.py").read_text()


def test_a_forged_or_damaged_marker_proves_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "data.csv").write_text("x")
    for text in ("", "{}", '{"kind": "strato quickstart demo folder", "token": 1, "files": {}}', "\x00\x01"):
        (folder / quickstart_folder.MARKER).write_text(text)
        with pytest.raises(UserError, match="not a quickstart marker"):
            _prepare_folder(folder)
    assert (folder / "data.csv").read_text() == "x"


def test_an_empty_or_missing_folder_is_used_and_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    _prepare_folder(tmp_path / "empty")
    _prepare_folder(tmp_path / "new" / "nested")
    assert (tmp_path / "new" / "nested" / quickstart_folder.MARKER).is_file()
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="is not a folder"):
        _prepare_folder(tmp_path / "file")
    assert (tmp_path / "file").read_text() == "x"
