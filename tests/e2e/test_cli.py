"""End to end through the installed `strato` script: init → plan → apply → write (Parquet and
CSV) → materialize → get / sql / ls / describe / history / config, every command's --help, and
user errors as one line on stderr with exit code 1."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import strato
from e2e.conftest import Run, one_line_error, run
from strato.config import write_default_config

COMMANDS = [
    "version",
    "init",
    "plan",
    "apply",
    "ls",
    "describe",
    "history",
    "write",
    "materialize",
    "get",
    "prune",
    "sql",
    "config",
    "quickstart",
]
EVENT = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0)


def parallel(*calls: tuple[tuple[str | Path, ...], Path]) -> list[Run]:
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(lambda c: run(*c[0], cwd=c[1]), calls))


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repo made by `strato init`, its example definitions applied and two files written."""
    root = tmp_path_factory.mktemp("cli")
    init = run("init", "shop", "--project", "demo", cwd=root)
    assert init.code == 0, str(init)
    repo = root / "shop"
    assert (repo / "strato.yaml").is_file()
    assert (repo / "features.py").is_file()
    assert "demo" in init.out

    plan = run("plan", cwd=repo)
    assert plan.code == 0, str(plan)
    assert re.search(r"add\s+.*feature view\s+.*user_stats", plan.out), str(plan)
    apply = run("apply", cwd=repo)
    assert apply.code == 0, str(apply)
    assert "applied 3 change(s) to project demo" in apply.out

    pq.write_table(
        pa.table(
            {
                "user_id": pa.array([1, 2], pa.int64()),
                "event_timestamp": pa.array([EVENT, EVENT], pa.timestamp("us", tz="UTC")),
                "tx_count_7d": pa.array([5, 8], pa.int64()),
                "amount_mean_7d": [12.5, 3.25],
                "home_country": ["FR", "US"],
            }
        ),
        repo / "rows.parquet",
    )
    (repo / "more.csv").write_text(
        f"user_id,event_timestamp,tx_count_7d,amount_mean_7d,home_country\n3,{EVENT.isoformat()},1,99.0,DE\n"
    )
    wrote = run("write", "user_stats", "rows.parquet", cwd=repo)
    assert wrote.code == 0, str(wrote)
    assert "wrote 2 rows to user_stats (table version 0; 2 online keys updated)" in wrote.out
    assert "rows/s" not in wrote.out  # a 2-row write is too quick for a rate to mean anything
    wrote = run("write", "user_stats", "more.csv", "--to", "offline", cwd=repo)
    assert wrote.code == 0, str(wrote)
    assert "wrote 1 row to user_stats (table version 1; 0 online keys updated)" in wrote.out
    return repo


def test_the_repo_reads_back_through_every_command(repo: Path) -> None:
    ls, describe, history, sql, config, version = parallel(
        (("ls", "views"), repo),
        (("describe", "view", "user_stats"), repo),
        (("history", "view", "user_stats"), repo),
        (("sql", "select count(*) as n, sum(tx_count_7d) as total from user_stats"), repo),
        (("config",), repo),
        (("version",), repo),
    )
    for result in (ls, describe, history, sql, config, version):
        assert result.code == 0, str(result)
        assert result.err == "", str(result)
    assert re.search(r"user_stats\s*│\s*1\s*│\s*user\s*│\s*3\s*│\s*7d\s*│", ls.out), ls.out
    for text in ("feature view", "user_stats", "tx_count_7d", "amount_mean_7d", "home_country", "ttl: 7d"):
        assert text in describe.out
    assert "history: 3 rows in 2 commit(s), table version 1" in describe.out, describe.out
    assert re.search(r"│\s*1\s*│\s*add", history.out), history.out
    assert re.search(r"│\s*3\s*│\s*14\s*│", sql.out), sql.out
    for text in ("demo", "lmdb", "duckdb", "strato.yaml"):
        assert text in config.out
    assert version.out.strip() == f"strato {strato.__version__}"


def test_materialize_then_get_serves_the_latest_values(repo: Path) -> None:
    # User 3 was written offline only: materialize brings it online.
    mat = run("materialize", "--end", "now", cwd=repo)
    assert mat.code == 0, str(mat)
    assert re.search(r"user_stats\s*│\s*3", mat.out), mat.out
    assert "materialized 3 rows" in mat.out
    got = run(
        "get",
        "user_stats:tx_count_7d",
        "user_stats:amount_mean_7d",
        "user_stats:home_country",
        "-e",
        "user_id=1",
        "-e",
        "user_id=3",
        "-e",
        "user_id=404",
        cwd=repo,
    )
    assert got.code == 0, str(got)
    assert re.search(r"1\s*│\s*5\s*│\s*12\.5\s*│\s*FR", got.out), got.out
    assert re.search(r"3\s*│\s*1\s*│\s*99\s*│\s*DE", got.out), got.out
    assert re.search(r"404\s*│\s*not_found\s*│\s*not_found\s*│\s*not_found", got.out), got.out
    as_json = run("get", "user_stats:tx_count_7d", "-e", "user_id=1", "-e", "user_id=404", "--json", cwd=repo)
    assert as_json.code == 0, str(as_json)
    assert [json.loads(line) for line in as_json.out.splitlines()] == [
        {"user_id": 1, "features": {"tx_count_7d": 5}, "statuses": {"tx_count_7d": "PRESENT"}},
        {"user_id": 404, "features": {"tx_count_7d": None}, "statuses": {"tx_count_7d": "NOT_FOUND"}},
    ]


HELP_SCRIPT = """
import contextlib, io, json, sys
from importlib.metadata import entry_points

(script,) = [e for e in entry_points(group="console_scripts") if e.name == "strato"]
main = script.load()
out = {}
for command in sys.argv[1:]:
    sys.argv = ["strato", command, "--help"]
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code or 0
    out[command] = [code, buffer.getvalue()]
print(json.dumps(out))
"""


def test_every_command_has_help(tmp_path: Path) -> None:
    top = run("--help", cwd=tmp_path)
    assert top.code == 0, str(top)
    assert "Usage: strato" in top.out
    for command in COMMANDS:
        assert command in top.out, f"{command} missing from strato --help"
    # Each command's --help through the installed `strato` entry point, in one interpreter
    # (a process per command would spend ten seconds importing the same modules).
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRATO_")} | {"COLUMNS": "200"}
    done = subprocess.run(
        [sys.executable, "-c", HELP_SCRIPT, *COMMANDS],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    helps = json.loads(done.stdout)
    for command in COMMANDS:
        code, text = helps[command]
        assert code == 0, f"strato {command} --help exited {code}: {text}"
        assert f"Usage: strato {command}" in text, text
        assert "--help" in text
        # Flags take no value, so their help shows none (typer's default said `--json <bool>`).
        assert "<bool>" not in text, text
        assert "Examples:" in text, text
        assert f"strato {command}" in text.split("Examples:")[1], text


def test_user_errors_are_one_line_and_exit_1(repo: Path, tmp_path: Path) -> None:
    (tmp_path / "junk.parquet").write_text("not parquet")
    (tmp_path / "rows.txt").write_text("user_id\n1\n")
    (tmp_path / "short.csv").write_text(f"user_id,event_timestamp\n1,{EVENT.isoformat()}\n")
    (tmp_path / "bad.csv").write_text(
        "user_id,event_timestamp,tx_count_7d,amount_mean_7d,home_country\n"
        f"1,{EVENT.isoformat()},3,1.0,FR\n2,{EVENT.isoformat()},lots,2.0,FR\n"
    )
    cases: dict[str, tuple[tuple[str | Path, ...], str]] = {
        "unknown view": (("get", "nope:x", "-e", "user_id=1"), "'nope'"),
        "malformed entity": (("get", "user_stats:tx_count_7d", "-e", "user_id"), "--entity 'user_id'"),
        "unreadable parquet": (("write", "user_stats", tmp_path / "junk.parquet"), "junk.parquet"),
        "unsupported file": (("write", "user_stats", tmp_path / "rows.txt"), "'.txt'"),
        "bad value": (("write", "user_stats", tmp_path / "bad.csv"), "'tx_count_7d', row 1"),
        "no such file": (("write", "user_stats", "nowhere.csv"), "nowhere.csv: no such file"),
        "no source": (("write", "user_stats"), "feature view 'user_stats' has no source"),
    }
    usage = {"missing argument": ("write",), "unknown option": ("write", "user_stats", "--nope")}
    results = parallel(*((args, repo) for args, _ in cases.values()), *((args, repo) for args in usage.values()))
    for (name, (_, expected)), result in zip(cases.items(), results, strict=False):
        line = one_line_error(result)
        assert expected in line, f"{name}: {line}"
    # Usage errors are click's: exit 2 and a hint, never a traceback.
    for result in results[len(cases) :]:
        assert result.code == 2, str(result)
        assert "Traceback" not in result.err, str(result)
        assert "Usage: strato write" in result.err, str(result)
    # Nothing was written by the failed writes.
    count = run("sql", "select count(*) as n from user_stats", cwd=repo)
    assert re.search(r"│\s*3\s*│", count.out), count.out


def test_commands_outside_a_repo_say_so_and_create_nothing(tmp_path: Path) -> None:
    for args in (("ls",), ("materialize",), ("get", "v:x", "-e", "user_id=1")):
        line = one_line_error(run(*args, cwd=tmp_path))
        assert "no feature repo: no strato.yaml" in line
        assert "strato init" in line
    assert list(tmp_path.iterdir()) == []


def test_a_breaking_change_needs_new_version(repo: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(repo, copy)  # registry, history and online store are all inside the repo folder
    features = copy / "features.py"
    features.write_text(features.read_text().replace('Field("home_country", String)', 'Field("home_country", Int64)'))
    plan = run("plan", cwd=copy)
    assert plan.code == 1, str(plan)
    assert "breaking" in plan.out
    refused = one_line_error(run("apply", cwd=copy))
    assert "user_stats" in refused
    assert "--new-version" in refused
    unfillable = one_line_error(run("apply", "--new-version", "user_stats", cwd=copy))
    assert "retypes home_country string -> int64" in unfillable  # the old rows cannot fill it
    assert "--start-empty user_stats" in unfillable
    applied = run("apply", "--new-version", "user_stats", "--start-empty", "user_stats", cwd=copy)
    assert applied.code == 0, str(applied)
    assert "new version" in applied.out
    assert "user_stats" in applied.out


def test_a_broken_definitions_file_is_one_line(tmp_path: Path) -> None:
    write_default_config(tmp_path, "broken")
    (tmp_path / "features.py").write_text("import no_such_module_anywhere\n")
    line = one_line_error(run("plan", cwd=tmp_path))
    assert "features.py" in line
    assert "no_such_module_anywhere" in line
