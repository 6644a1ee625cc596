"""`strato sql` as users run it (issue 8, item 6): a table by default, ``--out`` CSV or Parquet
by suffix, ``--as-of`` for every table or per table, older versions and training sets by name.
Each result is checked against `store.sql` and the rows written (the oracle)."""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow.csv as csv
import pyarrow.parquet as pq
import pytest

from e2e.conftest import one_line_error, run
from strato import Entity, FeatureService, FeatureStore, FeatureView, Field, Float64, Int64, List, String
from strato.config import write_default_config

T0 = datetime(2026, 1, 1, tzinfo=UTC)
USER = Entity("user", join_keys={"user_id": Int64})
FIELDS = [Field("x", Int64), Field("tag", String), Field("score", Float64)]
FIRST = [(1, 10, "a", 0.5), (2, 20, "b", 1.5)]
SECOND = [(1, 11, "c", 2.5), (3, 30, "d", None)]


def _frame(rows: list[tuple[int, int, str, float | None]], day: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": [r[0] for r in rows],
            "event_timestamp": [T0 + timedelta(days=day)] * len(rows),
            "x": [r[1] for r in rows],
            "tag": [r[2] for r in rows],
            "score": [r[3] for r in rows],
        }
    )


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """stats v1 with two writes (table versions 0 and 1), then v2 adds a list field; a training set."""
    repo = tmp_path_factory.mktemp("sqlout")
    write_default_config(repo, "proj")
    with FeatureStore(repo) as store:
        store.apply([USER, FeatureView("stats", entities=[USER], schema=FIELDS)])
        store.write("stats", _frame(FIRST, 0), to="offline")
        time.sleep(0.05)
        (repo / "between.txt").write_text(datetime.now(UTC).isoformat())
        time.sleep(0.05)
        store.write("stats", _frame(SECOND, 1), to="offline")
        v2 = FeatureView("stats", entities=[USER], schema=[*FIELDS, Field("recent", List(Int64))])
        store.apply([USER, v2, FeatureService("svc", [v2])])
        spine = pd.DataFrame({"user_id": [1, 2, 3], "event_timestamp": [T0 + timedelta(days=5)] * 3})
        store.create_training_set("churn", "svc", spine)
    return repo


def _tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): "" if p.name.endswith("-shm") else hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_out_writes_csv_or_parquet_by_suffix(repo: Path, tmp_path: Path) -> None:
    query = "SELECT user_id, x, tag, score, event_timestamp FROM stats__v1 ORDER BY user_id, x"
    with FeatureStore(repo, read_only=True) as store:
        expected = store.sql(query)
    oracle = sorted((u, x, t, s) for u, x, t, s in FIRST + SECOND)
    assert [tuple(r.values())[:4] for r in expected.to_pylist()] == oracle
    before = _tree(repo)
    parquet, text = tmp_path / "rows.parquet", tmp_path / "rows.CSV"
    for out in (parquet, text):
        done = run("sql", query, "--out", out, cwd=repo)
        assert done.code == 0, str(done)
        assert f"wrote 4 rows to {out}" in done.out
    assert pq.read_table(parquet).equals(expected)
    read = csv.read_csv(text).to_pylist()
    assert [(r["user_id"], r["x"], r["tag"], r["score"]) for r in read] == oracle
    assert [r["event_timestamp"] for r in read] == expected.column("event_timestamp").to_pylist()
    assert _tree(repo) == before  # a read-only command: the repo is unchanged
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.CSV", "rows.parquet"]  # no staging file left


def test_lists_go_to_csv_as_text_and_to_parquet_as_lists(repo: Path, tmp_path: Path) -> None:
    query = "SELECT user_id, [x, x + 1] AS pair FROM stats WHERE user_id = 2"
    assert run("sql", query, "--out", tmp_path / "p.csv", cwd=repo).code == 0
    assert csv.read_csv(tmp_path / "p.csv").to_pylist() == [{"user_id": 2, "pair": "[20, 21]"}]
    assert run("sql", query, "--out", tmp_path / "p.parquet", cwd=repo).code == 0
    assert pq.read_table(tmp_path / "p.parquet").to_pylist() == [{"user_id": 2, "pair": [20, 21]}]


def test_a_bad_out_name_is_refused_before_the_query_runs(repo: Path, tmp_path: Path) -> None:
    for out, expected in (
        (tmp_path / "rows.json", "give a .csv or .parquet file name (got '.json')"),
        (tmp_path / "rows", "(got no suffix)"),
        (tmp_path / "missing" / "rows.csv", "does not exist"),
    ):
        # A query that would fail if it ran: the --out check must come first.
        line = one_line_error(run("sql", "SELECT * FROM nosuch", "--out", out, cwd=repo))
        assert expected in line, line
    assert list(tmp_path.iterdir()) == []


def test_out_never_lands_in_the_store_data(repo: Path) -> None:
    """`--out` over a committed history file or a training set's rows would forge them."""
    before = _tree(repo)
    part = next((repo / ".strato" / "offline").rglob("*.parquet"))
    rows = next((repo / ".strato" / "training_sets").rglob("rows.parquet"))
    for out in (part, rows, repo / ".strato" / "new.csv", Path(".strato") / "offline" / "x.parquet"):
        line = one_line_error(run("sql", "SELECT 99 AS x", "--out", out, cwd=repo))
        assert "is inside the store's data" in line, line
    assert _tree(repo) == before


def test_the_default_is_a_table_with_a_count_of_the_rest(repo: Path) -> None:
    done = run("sql", "SELECT user_id, x, tag FROM stats ORDER BY x", "--limit", "3", cwd=repo)
    assert done.code == 0, str(done)
    header = next(line for line in done.out.splitlines() if "┃" in line)
    assert [c.strip() for c in header.strip("┃ ").split("┃")] == ["user_id", "x", "tag"]
    lines = [line for line in done.out.splitlines() if "│" in line]
    cells = [[c.strip() for c in line.strip("│ ").split("│")] for line in lines]
    assert cells == [["1", "10", "a"], ["1", "11", "c"], ["2", "20", "b"]]
    assert "… 1 more rows (use --limit or --out)" in done.out


def test_as_of_for_every_table_or_per_table(repo: Path) -> None:
    between = (repo / "between.txt").read_text()
    query = "SELECT count(*) AS n, sum(x) AS s FROM stats__v1"
    cases = {
        (): (4, 71),
        ("--as-of", between): (2, 30),
        ("--as-of", "stats__v1=0"): (2, 30),
        ("--as-of", "stats__v1=1"): (4, 71),
        ("--as-of", f"stats__v1={between}"): (2, 30),
    }
    for args, (n, s) in cases.items():
        done = run("sql", query, *args, cwd=repo)
        assert done.code == 0, str(done)
        row = next(line for line in done.out.splitlines() if "│" in line)
        assert [c.strip() for c in row.strip("│ ").split("│")] == [str(n), str(s)], (args, done.out)


def test_bad_as_of_values_are_one_line(repo: Path) -> None:
    for args, expected in (
        (("--as-of", "stats="), "give TABLE=VERSION or TABLE=TIME"),
        (("--as-of", "yesterday"), "is not an ISO 8601 time"),
        (("--as-of", "2026-01-01", "--as-of", "stats=1"), "not both"),
        (("--as-of", "nosuch=1"), "as_of pins ['nosuch']"),
        (("--as-of", "stats__v1=99"), "no version 99"),
    ):
        line = one_line_error(run("sql", "SELECT count(*) FROM stats__v1", *args, cwd=repo))
        assert expected in line, (args, line)


def test_training_sets_are_queryable_by_name(repo: Path, tmp_path: Path) -> None:
    out = tmp_path / "churn.parquet"
    done = run("sql", "SELECT * FROM training_sets.churn__v1", "--out", out, cwd=repo)
    assert done.code == 0, str(done)
    with FeatureStore(repo, read_only=True) as store:
        assert pq.read_table(out).equals(store.get_training_set("churn", version=1).table)


def test_the_sandbox_holds_for_older_versions_and_training_sets(repo: Path, tmp_path: Path) -> None:
    rows = next((repo / ".strato" / "training_sets").rglob("rows.parquet"))
    before = _tree(repo)
    cases = {
        f"COPY training_sets.churn TO '{tmp_path}/ts.csv'": "strato sql runs one read-only SELECT; got COPY",
        f"COPY (SELECT 99 AS x) TO '{rows}' (FORMAT parquet)": "got COPY",
        "DROP VIEW training_sets.churn": "got DROP",
        "INSERT INTO stats__v1 SELECT * FROM stats__v1": "got INSERT",
        f"SELECT * FROM read_parquet('{rows}')": "files are out of reach",
    }
    for query, expected in cases.items():
        line = one_line_error(run("sql", query, cwd=repo))
        assert expected in line, (query, line)
    assert _tree(repo) == before
    assert list(tmp_path.iterdir()) == []
