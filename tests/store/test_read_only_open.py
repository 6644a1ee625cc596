"""Opening a store creates nothing by accident (issue 7 items 13 and 18).

`FeatureStore("my_repo")` used to create `my_repo/.strato/registry.db` and no `strato.yaml`,
a folder the CLI then refused; read-only commands on a repo whose registry path was wrong
(say, a truncated `strato.yaml`) created a new, empty registry and listed nothing, exit 0.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from strato import FeatureStore
from strato.config import load_config, write_default_config
from strato.errors import ConfigError, NotFoundError, RegistryNotFoundError, UserError
from strato.registry.backends.sql import SQLRegistry

from .helpers import USER, stats_view


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_a_folder_without_strato_yaml_is_refused_and_left_alone(tmp_path: Path) -> None:
    missing = tmp_path / "my_repo"
    with pytest.raises(ConfigError, match=r"no strato\.yaml in .*my_repo; create one with `strato init` or Feat"):
        FeatureStore(missing)
    assert not missing.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match=r"no strato\.yaml in"):
        FeatureStore(empty, online__type="memory")
    assert files_under(empty) == []


def test_a_file_is_not_a_repo(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ConfigError, match=r"notes\.txt is a file, not a feature repo folder"):
        FeatureStore(tmp_path / "notes.txt", create=True)
    assert (tmp_path / "notes.txt").read_text() == "hello"


def test_create_writes_a_strato_yaml_the_cli_accepts(tmp_path: Path) -> None:
    repo = tmp_path / "my-repo"
    with FeatureStore(repo, create=True) as store:
        assert store.project == "my_repo"
        store.apply([USER, stats_view()])
    assert (repo / "strato.yaml").is_file()
    assert load_config(repo, environ={}).project == "my_repo"
    with FeatureStore(repo) as again:  # a repo now: no create needed, definitions kept
        assert [v.name for v in again.list_feature_views()] == ["stats"]


def test_create_keeps_an_existing_strato_yaml(tmp_path: Path) -> None:
    write_default_config(tmp_path, "mine")
    before = (tmp_path / "strato.yaml").read_text()
    with FeatureStore(tmp_path, create=True) as store:
        assert store.project == "mine"
    assert (tmp_path / "strato.yaml").read_text() == before


def test_create_names_the_project_given_as_an_argument(tmp_path: Path) -> None:
    with FeatureStore(tmp_path / "r", create=True, project="fraud") as store:
        assert store.project == "fraud"
    assert load_config(tmp_path / "r", environ={}).project == "fraud"


def test_read_only_before_any_apply_creates_no_registry(tmp_path: Path) -> None:
    write_default_config(tmp_path, "p")
    registry = tmp_path / ".strato" / "registry.db"
    with pytest.raises(RegistryNotFoundError, match=rf"no registry at {registry} yet; run `strato apply` first"):
        FeatureStore(tmp_path, read_only=True)
    assert files_under(tmp_path) == ["strato.yaml"]


def test_read_only_reads_and_refuses_every_write(tmp_path: Path) -> None:
    write_default_config(tmp_path, "p")
    now = datetime.now(UTC)
    with FeatureStore(tmp_path) as writer:
        writer.apply([USER, stats_view()])
        writer.write("stats", [{"user_id": 1, "event_timestamp": now, "x": 1, "tag": "a", "score": 0.5}])
    before = files_under(tmp_path)
    with FeatureStore(tmp_path, read_only=True) as reader:
        assert [v.name for v in reader.list_feature_views()] == ["stats"]
        assert reader.get_online_features(["stats:x"], [{"user_id": 1}]).to_dict()["x"] == [1]
        assert reader.sql("select count(*) as n from stats").to_pylist() == [{"n": 1}]
        row = [{"user_id": 2, "event_timestamp": now, "x": 2, "tag": "b", "score": 1.0}]
        for verb, call in [
            ("apply", lambda: reader.apply([stats_view("other")])),
            ("write", lambda: reader.write("stats", row)),
            ("write", lambda: reader.push("stats", row)),
            ("materialize", lambda: reader.materialize(None, now)),
            ("materialize_incremental", lambda: reader.materialize_incremental(now)),
            ("prune_expired", lambda: reader.prune_expired()),
        ]:
            with pytest.raises(UserError, match=rf"^{verb}: .* was opened read_only=True"):
                call()
        assert reader.sql("select count(*) as n from stats").to_pylist() == [{"n": 1}]
    assert files_under(tmp_path) == before


def test_read_only_and_create_cannot_be_combined_into_a_new_repo(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no strato\.yaml"):
        FeatureStore(tmp_path / "r", create=True, read_only=True)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("url", ["{dir}/missing/registry.db", "sqlite:///{dir}/missing/registry.db"])
def test_sqlite_registry_without_create_makes_no_file_or_folder(tmp_path: Path, url: str) -> None:
    target = url.format(dir=tmp_path)
    with pytest.raises(RegistryNotFoundError, match=r"no registry at .*missing/registry\.db yet"):
        SQLRegistry.open(target, project="p", create=False)
    assert files_under(tmp_path) == []


def test_an_empty_or_foreign_database_is_not_a_registry(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()
    with pytest.raises(RegistryNotFoundError):
        SQLRegistry.open(str(empty), project="p", create=False)
    assert empty.stat().st_size == 0
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("create table t (x int)")
    with pytest.raises(RegistryNotFoundError):
        SQLRegistry.open(str(foreign), project="p", create=False)


def test_a_project_never_applied_reads_empty_and_is_not_recorded(tmp_path: Path) -> None:
    path = tmp_path / "registry.db"
    SQLRegistry.open(str(path), project="applied").close()
    registry = SQLRegistry.open(str(path), project="other", create=False)
    try:
        assert registry.list("feature_view") == []
        assert registry.revision() == 0
        with pytest.raises(NotFoundError):
            registry.get("feature_view", "stats")
    finally:
        registry.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("select project from strato_projects").fetchall() == [("applied",)]
