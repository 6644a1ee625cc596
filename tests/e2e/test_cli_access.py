"""`strato access`, `strato token` and `strato audit` as users run them, with STRATO_TOKEN."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from e2e.conftest import STRATO, Run, one_line_error, run


def _as(token: str, *args: str | Path, cwd: Path) -> Run:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRATO_")}
    env |= {"COLUMNS": "250", "STRATO_TOKEN": token}
    done = subprocess.run(
        [STRATO, *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    return Run(tuple(map(str, args)), done.returncode, done.stdout, done.stderr)


def _printed_token(result: Run) -> str:
    assert result.code == 0, str(result)
    last = result.out.strip().splitlines()[-1]
    assert last.startswith("strato_"), str(result)
    return last


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    assert run("init", "r", cwd=tmp_path).code == 0
    path = tmp_path / "r"
    assert run("apply", cwd=path).code == 0
    return path


def test_enable_create_list_revoke_audit(repo: Path) -> None:
    assert "access control is off" in run("access", "status", cwd=repo).out
    refused = one_line_error(run("token", "create", "--role", "reader", cwd=repo))
    assert "strato access enable" in refused
    admin = _printed_token(run("access", "enable", cwd=repo))
    assert "already on" in one_line_error(run("access", "enable", cwd=repo))
    # Without a token every command now says what is missing, in one line.
    assert "needs a token" in one_line_error(run("ls", cwd=repo))

    reader = _printed_token(
        _as(admin, "token", "create", "--role", "reader", "--view", "user_stats", "--name", "scoring", cwd=repo)
    )
    reader_id = reader.split("_")[1]
    both = _as(admin, "token", "create", "--role", "reader", "--view", "user_stats", "--view", "other", cwd=repo)
    assert both.code == 0, str(both)
    listed = _as(admin, "token", "ls", cwd=repo)
    assert listed.code == 0, str(listed)
    assert "reader on feature view user_stats" in listed.out
    assert "reader-user_stats+other" in listed.out  # one token, two grants
    assert "reader on feature view other" in listed.out
    assert "admin on project" in listed.out
    assert reader.split("_", 2)[2] not in listed.out

    assert _as(reader, "get", "user_stats:tx_count_7d", "-e", "user_id=7", cwd=repo).code == 0
    denied = one_line_error(_as(reader, "token", "ls", cwd=repo))
    assert "admin on project 'r' needs role admin" in denied
    assert "scoring" in denied

    revoked = _as(admin, "token", "revoke", reader_id, cwd=repo)
    assert revoked.code == 0, str(revoked)
    assert "was revoked" in one_line_error(_as(reader, "get", "user_stats:tx_count_7d", "-e", "user_id=7", cwd=repo))

    audit = _as(admin, "audit", "--denied", "--limit", "3", cwd=repo)
    assert audit.code == 0, str(audit)
    assert "revoked token" in audit.out
    assert "DENIED" in audit.out
    assert "allowed" not in audit.out
    everything = _as(admin, "audit", "--since", "2000-01-01", cwd=repo)
    assert "allowed" in everything.out
    assert "--since" in one_line_error(_as(admin, "audit", "--since", "yesterday", cwd=repo))

    assert _as(admin, "access", "disable", cwd=repo).code == 0
    assert run("ls", cwd=repo).code == 0  # off again: no token needed


@pytest.mark.parametrize(
    "command",
    [
        ("access",),
        ("access", "enable"),
        ("token",),
        ("token", "create"),
        ("token", "ls"),
        ("token", "revoke"),
        ("audit",),
    ],
)
def test_help(command: tuple[str, ...], tmp_path: Path) -> None:
    result = run(*command, "--help", cwd=tmp_path)
    assert result.code == 0, str(result)
    assert "Usage:" in result.out
