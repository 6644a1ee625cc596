"""`strato.store.doctor` (issue 10 item 5): every seam of a real repo checked, one line each.

Real engines throughout: SQLite registry, LMDB online store, Delta history read by DuckDB,
and a real `redis-server` for the Redis checks (skipped, saying why, where none is installed).
"""

from __future__ import annotations

import socket
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from strato import FeatureStore
from strato.config import write_default_config
from strato.errors import BackendFailure
from strato.store.doctor import Check, Report, diagnose

from .helpers import USER, stats_view

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def by_name(report: Report) -> dict[str, Check]:
    return {c.name: c for c in report.checks}


def one_line(report: Report) -> None:
    for check in report.checks:
        assert check.detail, check
        assert "\n" not in check.detail, check


def written_repo(repo: Path, *, materialize: bool) -> None:
    with FeatureStore(repo) as store:
        store.apply([USER, stats_view("stats")])
        store.write("stats", [{"user_id": 1, "event_timestamp": T0, "x": 1, "tag": "a", "score": 0.5}], to="offline")
        if materialize:
            store.materialize(None, datetime.now(UTC))


def set_config(repo: Path, text: str) -> None:
    (repo / "strato.yaml").write_text(f"project: proj\n{text}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_healthy_repo_passes_every_check(repo: Path) -> None:
    written_repo(repo, materialize=True)
    report = diagnose(repo)
    assert report.ok, report
    checks = by_name(report)
    assert list(checks) == ["config", "registry", "online", "offline", "view stats", "versions"]
    assert "project 'proj'" in checks["registry"].detail
    assert "history at table version 0; online up to date" in checks["view stats"].detail
    for package in ("strato", "duckdb", "deltalake", "lmdb"):
        assert f"{package} " in checks["versions"].detail
    one_line(report)


def test_a_view_whose_online_copy_is_behind_says_how_to_catch_up(repo: Path) -> None:
    written_repo(repo, materialize=False)
    check = by_name(diagnose(repo))["view stats"]
    assert check.ok  # behind is a state, not a broken setup
    assert "online has none of it: run `strato materialize --incremental --view stats`" in check.detail


def test_a_registry_that_does_not_exist_fails_naming_it(repo: Path) -> None:
    set_config(repo, "registry: nowhere/registry.db\n")
    report = diagnose(repo)
    assert not report.ok
    checks = by_name(report)
    assert not checks["registry"].ok
    assert str(repo / "nowhere" / "registry.db") in checks["registry"].detail
    assert not (repo / "nowhere").exists()  # the doctor created nothing
    # The other seams were still examined.
    assert checks["online"].ok
    assert checks["offline"].ok
    assert checks["versions"].ok
    one_line(report)


def test_a_registry_of_another_project_says_the_project_is_unknown(repo: Path) -> None:
    written_repo(repo, materialize=False)
    (repo / "strato.yaml").write_text((repo / "strato.yaml").read_text().replace("project: proj", "project: other"))
    check = by_name(diagnose(repo))["registry"]
    assert not check.ok
    assert "project 'other' is not in this registry" in check.detail


def test_a_registry_without_strato_tables_names_the_missing_ones(repo: Path) -> None:
    written_repo(repo, materialize=False)
    with sqlite3.connect(repo / ".strato" / "registry.db") as db:
        db.execute("DROP TABLE strato_online_progress")
    check = by_name(diagnose(repo))["registry"]
    assert not check.ok
    assert "tables strato_online_progress are missing" in check.detail


def test_an_lmdb_path_that_cannot_be_created_fails_the_online_check(repo: Path) -> None:
    (repo / "blocker").write_text("a file, not a folder")
    set_config(repo, "online:\n  type: lmdb\n  path: blocker/online\n")
    report = diagnose(repo)
    check = by_name(report)["online"]
    assert not check.ok
    assert "blocker/online" in check.detail
    assert "BackendFailure" in check.detail
    one_line(report)


def test_a_nearly_full_lmdb_map_is_reported(repo: Path) -> None:
    set_config(repo, "online:\n  type: lmdb\n  path: .strato/online\n  map_size_gb: 0.0001\n")
    with FeatureStore(repo) as store:
        store.apply([USER, stats_view("stats")])
        for start in range(0, 10_000, 20):  # until the map refuses a batch: nearly full
            rows = [
                {"user_id": i, "event_timestamp": T0, "x": i, "tag": "t" * 200, "score": 0.5}
                for i in range(start, start + 20)
            ]
            try:
                store.write("stats", rows, to="online")
            except BackendFailure:
                break
    check = by_name(diagnose(repo))["online"]
    assert not check.ok
    assert "raise online.map_size_gb" in check.detail


def test_a_redis_url_nobody_listens_on_fails_with_backend_unavailable(repo: Path) -> None:
    pytest.importorskip("redis", reason="the redis extra is not installed")
    port = free_port()
    set_config(repo, f"online:\n  type: redis\n  url: redis://127.0.0.1:{port}/0\n")
    report = diagnose(repo)
    check = by_name(report)["online"]
    assert not check.ok
    assert f"127.0.0.1:{port}" in check.detail
    assert "BackendUnavailable" in check.detail
    one_line(report)


def test_a_live_redis_passes_and_an_evicting_one_is_reported(repo: Path) -> None:
    pytest.importorskip("redis", reason="the redis extra is not installed")
    from engines.redis import harness

    server = harness.new_server()
    try:
        set_config(repo, f"online:\n  type: redis\n  url: {server.url}\n")
        assert by_name(diagnose(repo))["online"].ok
        server.stop()
        server.start("--maxmemory-policy", "allkeys-lru")
        check = by_name(diagnose(repo))["online"]
        assert not check.ok
        assert "maxmemory-policy allkeys-lru" in check.detail
    finally:
        server.stop()


def test_a_damaged_strato_yaml_is_one_failed_check(repo: Path) -> None:
    (repo / "strato.yaml").write_text("project: [\n")
    report = diagnose(repo)
    assert not report.ok
    assert [c.name for c in report.checks] == ["config", "versions"]
    config = report.checks[0]
    assert not config.ok
    assert "strato.yaml" in config.detail
    one_line(report)


def test_a_folder_without_strato_yaml_is_a_failed_config_check(tmp_path: Path) -> None:
    config = by_name(diagnose(tmp_path / "empty"))["config"]
    assert not config.ok
    assert "no strato.yaml" in config.detail


def test_the_default_online_check_reads_a_missing_key(tmp_path: Path) -> None:
    from strato.online.backends.memory import MemoryOnlineStore

    write_default_config(tmp_path, "proj")
    with MemoryOnlineStore.open(MemoryOnlineStore.options_model(), project="proj") as store:
        assert store.check() == []


def test_a_postgresql_registry_nobody_listens_on_fails_naming_the_server(repo: Path) -> None:
    pytest.importorskip("psycopg", reason="the postgresql extra is not installed")
    port = free_port()
    set_config(repo, f"registry: postgresql://strato:secret@127.0.0.1:{port}/strato\n")
    report = diagnose(repo)
    check = by_name(report)["registry"]
    assert not check.ok
    assert "BackendUnavailable" in check.detail
    assert str(port) in check.detail
    assert "secret" not in " ".join(c.detail for c in report.checks)
    assert by_name(report)["online"].ok
    one_line(report)


def test_a_registry_of_an_older_schema_says_how_to_upgrade(repo: Path) -> None:
    written_repo(repo, materialize=False)
    with sqlite3.connect(repo / ".strato" / "registry.db") as db:
        db.execute("DROP TABLE strato_schema")  # as a registry made before schema versions existed
    check = by_name(diagnose(repo))["registry"]
    assert not check.ok
    assert "registry schema version 1 is older" in check.detail
    assert "run `strato apply` to upgrade it" in check.detail
