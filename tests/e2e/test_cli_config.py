"""`strato` and configuration (issue 7 item 13): every setting honoured or refused, a damaged
`strato.yaml` a one-line error naming the file, and read-only commands never creating a
registry (a truncated file used to point `strato ls` at a new, empty SQLite file: exit 0,
empty list)."""

from __future__ import annotations

import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from e2e.conftest import STRATO, Run, one_line_error, run

READ_ONLY = [
    ("ls",),
    ("describe", "view", "user_stats"),
    ("history", "view", "user_stats"),
    ("get", "user_stats:tx_count_7d", "-e", "user_id=1"),
    ("sql", "select 1"),
]


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if "__pycache__" not in p.parts)


def run_with_env(*args: str, cwd: Path, env: dict[str, str]) -> Run:
    base = {k: v for k, v in os.environ.items() if not k.startswith("STRATO_")} | {"COLUMNS": "200"}
    done = subprocess.run(
        [STRATO, *args], cwd=cwd, env=base | env, capture_output=True, text=True, timeout=60, check=False
    )
    return Run(args, done.returncode, done.stdout, done.stderr)


def parallel(calls: list[tuple[tuple[str, ...], Path]]) -> list[Run]:
    with ThreadPoolExecutor(max_workers=6) as pool:
        return list(pool.map(lambda c: run(*c[0], cwd=c[1]), calls))


@pytest.fixture(scope="module")
def initialized(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("init")
    init = run("init", "shop", "--project", "shop", cwd=root)
    assert init.code == 0, str(init)
    return root / "shop"


@pytest.fixture
def fresh(initialized: Path, tmp_path: Path) -> Path:
    """A repo made by `strato init`, nothing applied yet."""
    return Path(shutil.copytree(initialized, tmp_path / "shop"))


def test_read_only_commands_on_a_repo_with_no_registry_create_nothing(fresh: Path) -> None:
    before = files_under(fresh)
    assert before == ["features.py", "strato.yaml"]
    registry = fresh.resolve() / ".strato" / "registry.db"
    for result in parallel([(args, fresh) for args in READ_ONLY]):
        line = one_line_error(result)
        assert f"no registry at {registry} yet; run `strato apply` first" in line, line
    assert files_under(fresh) == before


def test_plan_before_the_first_apply_shows_the_changes_and_creates_nothing(fresh: Path) -> None:
    plan = run("plan", cwd=fresh)
    assert plan.code == 0, str(plan)
    assert "user_stats" in plan.out, plan.out
    assert "add" in plan.out, plan.out
    assert files_under(fresh) == ["features.py", "strato.yaml"]


DAMAGED: dict[str, tuple[bytes, str]] = {
    "empty": (b"", "the file is empty"),
    "only a comment": (b"# nothing here\n", "the file is empty"),
    "binary": (bytes(range(256)) * 4, "not a text file"),
    "truncated mid-value": (b"project: shop\nregistry: '.strato/regi", "not valid YAML"),
    "truncated before project": (b"# Strato feature repo.\nregistry: .strato/registry.db\n", "project: missing"),
    "duplicate keys": (b"project: shop\nproject: other\n", "duplicate key 'project'"),
    "unknown key": (b"project: shop\nonline_store:\n  type: lmdb\n", "online_store: unknown setting; did you mean"),
}


@pytest.mark.parametrize("case", sorted(DAMAGED))
def test_a_damaged_strato_yaml_is_one_line_naming_the_file(fresh: Path, case: str) -> None:
    data, expected = DAMAGED[case]
    (fresh / "strato.yaml").write_bytes(data)
    before = files_under(fresh)
    config_file = str((fresh / "strato.yaml").resolve())
    # Every command reads strato.yaml through one path: all of them for one case, `ls` (read
    # only) and `apply` (would create a registry) for the others, to keep the suite quick.
    commands = [("ls",), ("plan",), ("apply",), ("config",)] if case == "empty" else [("ls",), ("apply",)]
    for result in parallel([(args, fresh) for args in commands]):
        line = one_line_error(result)
        assert line.startswith(f"error: {config_file}: "), line
        assert expected in line, line
    assert files_under(fresh) == before  # no new registry, no .strato folder


def test_a_truncated_registry_path_is_not_a_new_empty_project(fresh: Path) -> None:
    """The report: a file cut short inside `registry:` gave `strato ls` exit 0 and an empty list."""
    applied = run("apply", cwd=fresh)
    assert applied.code == 0, str(applied)
    text = (fresh / "strato.yaml").read_text()
    (fresh / "strato.yaml").write_text(text[: text.index("registry.db") + len("regi")])
    before = files_under(fresh)
    line = one_line_error(run("ls", cwd=fresh))
    assert "no registry at" in line, line
    assert ".strato/regi yet" in line, line
    assert files_under(fresh) == before


def test_a_registry_mapping_and_the_environment_are_honoured(fresh: Path) -> None:
    (fresh / "strato.yaml").write_text("project: shop\nregistry:\n  path: meta/definitions.db\n")
    applied = run("apply", cwd=fresh)
    assert applied.code == 0, str(applied)
    assert (fresh / "meta" / "definitions.db").is_file()
    assert not (fresh / ".strato" / "registry.db").exists()
    listed = run("ls", cwd=fresh)
    assert listed.code == 0, str(listed)
    assert "user_stats" in listed.out, str(listed)

    elsewhere = fresh.parent / "shared.db"
    env = {"STRATO_REGISTRY__URL": f"sqlite:///{elsewhere}"}
    moved = run_with_env("apply", cwd=fresh, env=env)
    assert moved.code == 0, str(moved)
    assert elsewhere.is_file()
    config = run_with_env("config", cwd=fresh, env=env)
    assert config.code == 0, str(config)
    assert f"sqlite:///{elsewhere}" in config.out, config.out
    assert "environment" in config.out, config.out
    typo = run_with_env("ls", cwd=fresh, env={"STRATO_REGISTRY__URI": f"sqlite:///{elsewhere}"})
    line = one_line_error(typo)
    assert "STRATO_REGISTRY__URI: registry.uri: unknown registry option; did you mean 'url'?" in line, line


def test_config_shows_a_uri_as_written(fresh: Path) -> None:
    (fresh / "strato.yaml").write_text("project: shop\noffline:\n  path: s3://bucket/features\n")
    config = run("config", cwd=fresh)
    assert config.code == 0, str(config)
    assert "s3://bucket/features" in config.out, config.out
    assert "s3:/bucket" not in config.out.replace("s3://bucket", "")
