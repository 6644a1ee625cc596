"""SQLite specifics of `SQLRegistry`: how it opens files, locks, and maps driver errors."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from strato import plugins
from strato.definitions.entity import Entity
from strato.definitions.plan import make_plan
from strato.errors import BackendFailure, BackendUnavailable, ConfigError
from strato.registry.base import RegistryStore

USER = Entity("user", join_keys={"user_id": "int64"})


@pytest.fixture
def sql_registry() -> type[RegistryStore]:
    cls: type[RegistryStore] = plugins.load("registry", "sqlite")
    return cls


@pytest.fixture
def opened() -> Iterator[list[RegistryStore]]:
    registries: list[RegistryStore] = []
    yield registries
    for registry in registries:
        registry.close()


def test_a_plain_path_opens_a_sqlite_file_creating_its_folder(
    sql_registry: type[RegistryStore], opened: list[RegistryStore], tmp_path: Path
) -> None:
    path = tmp_path / "deep" / "er" / "registry.db"
    opened.append(sql_registry.open(str(path), project="p"))

    opened[0].apply(make_plan([USER], {}), author="alice")

    assert path.is_file()
    with closing(sqlite3.connect(path)) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        tables = {row[0] for row in raw.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"strato_projects", "strato_objects", "strato_online_progress"} <= tables


def test_a_locked_database_is_unavailable_and_nothing_is_written(
    sql_registry: type[RegistryStore], opened: list[RegistryStore], tmp_path: Path
) -> None:
    path = tmp_path / "registry.db"
    opened.append(sql_registry.open(f"sqlite:///{path}?timeout=0.05", project="p"))
    registry = opened[0]
    plan = make_plan([USER], registry.current())

    with closing(sqlite3.connect(path, isolation_level=None)) as other_writer:
        other_writer.execute("BEGIN IMMEDIATE")
        with pytest.raises(BackendUnavailable, match="database is locked") as caught:
            registry.apply(plan, author="alice")
        assert isinstance(caught.value.__cause__, Exception)  # the driver's error stays attached
        assert registry.current() == {}  # WAL: readers are not blocked by the writer
        other_writer.execute("ROLLBACK")

    registry.apply(plan, author="alice")  # retrying once the lock is gone succeeds
    assert registry.get("entity", "user") == USER


def test_a_file_that_is_not_a_database_is_a_failure(sql_registry: type[RegistryStore], tmp_path: Path) -> None:
    path = tmp_path / "registry.db"
    path.write_bytes(b"this is not a sqlite database, just some bytes " * 100)

    with pytest.raises(BackendFailure, match="registry database failed"):
        sql_registry.open(str(path), project="p")


@pytest.mark.parametrize("url", ["nosuchdb://host/db", "sqlite+nosuchdriver:///x.db", ""])
def test_an_unusable_url_is_a_config_error(sql_registry: type[RegistryStore], url: str) -> None:
    with pytest.raises(ConfigError, match="registry"):
        sql_registry.open(url, project="p")


def test_a_project_name_is_required(sql_registry: type[RegistryStore], tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="project"):
        sql_registry.open(str(tmp_path / "r.db"), project="")


def test_a_closed_registry_refuses_work(sql_registry: type[RegistryStore], tmp_path: Path) -> None:
    registry = sql_registry.open(str(tmp_path / "r.db"), project="p")
    registry.close()
    registry.close()  # idempotent

    with pytest.raises(BackendFailure, match="closed"):
        registry.current()
