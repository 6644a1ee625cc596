"""`store.sql` is read-only and contained (issue 7 item 0): a corpus of hostile statements.

Each statement of the corpus, run through `store.sql` against a real repo (SQLite registry,
Delta history, LMDB online), must be refused with a one-line `UserError`, must write no file
anywhere (the repo tree, committed Delta parquet files byte for byte, an outside folder, the
working directory, /tmp), must read nothing outside the store, and must leave every later
call unchanged: `store.sql`, `get_historical_features` and `materialize` still work.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from strato import FeatureService, FeatureStore, Field, Int64, UserError
from strato.config import write_default_config

from .helpers import USER, online, stats_view

T0 = datetime(2026, 1, 1, tzinfo=UTC)
#: A unique name in the shared /tmp, so "was it written?" has one answer.
TMP = f"/tmp/strato-sandbox-{uuid.uuid4().hex}"


@dataclass
class World:
    store: FeatureStore
    root: Path  # holds the repo, an outside folder and the working directory
    repo: Path
    out: Path  # a folder outside the repo a query might try to write to
    outside: Path  # a parquet file outside the repo a query might try to read
    part: Path  # a committed Delta data file of the view
    ts_rows: Path  # the saved rows of a registered training set


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("sandbox")
    repo, out, cwd = root / "repo", root / "out", root / "cwd"
    for folder in (repo, out, cwd):
        folder.mkdir()
    write_default_config(repo, "proj")
    outside = root / "outside.parquet"
    pq.write_table(pa.table({"secret": ["outside the store"]}), outside)
    with FeatureStore(repo) as store:
        store.apply([USER, stats_view()])
        store.write("stats", _rows([1, 2], T0, [1, 2]))
        store.write("stats", _rows([1, 2], T0 + timedelta(days=1), [10, 20]))
        table = DeltaTable(str(store.delta.path(store.get_feature_view("stats").table_name)))
        part = Path(table.file_uris()[0].removeprefix("file://"))
        assert part.is_file()
        # The names issue 8 adds: an older view version (stats__v1) and a training set.
        v2 = stats_view(extra=[Field("extra", Int64)])
        store.apply([USER, v2, FeatureService("svc", [v2])])
        saved = store.create_training_set(
            "churn", "svc", pd.DataFrame({"user_id": [1, 2], "event_timestamp": [T0] * 2})
        )
        ts_rows = repo / saved.record.location / "rows.parquet"
        assert ts_rows.is_file()
        yield World(store, root, repo, out, outside, part, ts_rows)


def _rows(users: list[int], when: datetime, xs: list[int]) -> pd.DataFrame:
    n = len(users)
    return pd.DataFrame(
        {"user_id": users, "event_timestamp": [when] * n, "x": xs, "tag": ["t"] * n, "score": [0.5] * n}
    )


#: (id, statement, a fragment of the refusal). Placeholders: {out} a folder outside the repo,
#: {outside} a parquet file outside it, {part} a committed Delta file, {repo} the repo, {tmp} /tmp.
CORPUS: list[tuple[str, str, str]] = [
    # Writing files (the report's COPY; its worst case overwrote a committed part file).
    ("copy-csv", "COPY (SELECT 1) TO '{out}/x.csv'", "got COPY"),
    ("copy-tmp", "COPY (SELECT 1) TO '{tmp}.csv'", "got COPY"),
    ("copy-forge-part", "COPY (SELECT 99 AS x) TO '{part}' (FORMAT parquet)", "got COPY"),
    ("copy-view", "COPY stats TO '{out}/stats.parquet' (FORMAT parquet)", "got COPY"),
    ("copy-from", "COPY stats FROM '{outside}'", "got COPY"),
    ("export", "EXPORT DATABASE '{out}/export'", "got EXPORT"),
    ("import", "IMPORT DATABASE '{out}'", "got"),
    ("attach", "ATTACH '{out}/evil.db'", "got ATTACH"),
    ("attach-tmp", "ATTACH '{tmp}.db' AS evil", "got ATTACH"),
    ("attach-repo-registry", "ATTACH '{repo}/.strato/registry.db' AS reg (TYPE sqlite)", "got ATTACH"),
    ("detach", "DETACH memory", "got DETACH"),
    # Reading outside the store.
    ("read-csv-passwd", "SELECT * FROM read_csv('/etc/passwd', sep = ':')", "files are out of reach"),
    ("read-text", "SELECT * FROM read_text('/etc/passwd')", "files are out of reach"),
    ("read-blob", "SELECT * FROM read_blob('/etc/hostname')", "files are out of reach"),
    ("glob-root", "SELECT * FROM glob('/root/*')", "files are out of reach"),
    ("glob-repo", "SELECT * FROM glob('{repo}/**')", "files are out of reach"),
    ("read-parquet-outside", "SELECT * FROM read_parquet('{outside}')", "files are out of reach"),
    ("replacement-scan-outside", "SELECT * FROM '{outside}'", "files are out of reach"),
    ("read-parquet-part", "SELECT * FROM read_parquet('{part}')", "files are out of reach"),
    ("read-json", "SELECT * FROM read_json_auto('/etc/passwd')", "files are out of reach"),
    ("sniff-csv", "SELECT * FROM sniff_csv('/etc/passwd')", "files are out of reach"),
    ("http", "SELECT * FROM read_csv('http://127.0.0.1:9/x.csv')", "files are out of reach"),
    ("query-copy", "SELECT * FROM query('COPY (SELECT 1) TO ''{out}/q.csv''')", "SQL error"),
    ("secrets", "SELECT * FROM duckdb_secrets()", "files are out of reach"),
    # Changing the catalog or the data.
    ("create-table", "CREATE TABLE t AS SELECT 1 AS a", "got CREATE"),
    ("create-view", "CREATE VIEW v AS SELECT 1 AS a", "got CREATE"),
    ("replace-view", "CREATE OR REPLACE VIEW stats AS SELECT 99 AS x", "got CREATE"),
    ("create-temp", "CREATE TEMP TABLE t (a INT)", "got CREATE"),
    ("create-macro", "CREATE MACRO m(a) AS a + 1", "got CREATE"),
    ("create-secret", "CREATE SECRET s (TYPE s3, KEY_ID 'k', SECRET 's')", "got CREATE"),
    ("insert", "INSERT INTO stats SELECT * FROM stats", "got INSERT"),
    ("update", "UPDATE stats SET x = 0", "got UPDATE"),
    ("delete", "DELETE FROM stats", "got DELETE"),
    ("drop", "DROP VIEW stats", "got DROP"),
    ("alter", "ALTER VIEW stats RENAME TO s", "got ALTER"),
    ("comment", "COMMENT ON VIEW stats IS 'x'", "got"),
    # Settings, pragmas, calls, extensions, transactions.
    ("pragma", "PRAGMA database_list", "got PRAGMA"),
    ("pragma-setting", "PRAGMA memory_limit = '1MB'", "got SET"),
    ("call", "CALL pragma_version()", "got CALL"),
    ("set", "SET memory_limit = '1MB'", "got SET"),
    ("set-global", "SET GLOBAL memory_limit = '1MB'", "got SET"),
    ("set-external", "SET enable_external_access = true", "got SET"),
    ("reset", "RESET memory_limit", "got"),
    ("install", "INSTALL httpfs", "got"),
    ("load", "LOAD httpfs", "got LOAD"),
    ("begin", "BEGIN TRANSACTION", "got TRANSACTION"),
    ("checkpoint", "CHECKPOINT", "got"),
    ("vacuum", "VACUUM", "got"),
    ("use", "USE memory", "got"),
    ("explain-analyze-copy", "EXPLAIN ANALYZE COPY (SELECT 1) TO '{out}/e.csv'", "got EXPLAIN"),
    # Several statements in one string.
    ("select-then-drop", "SELECT 1; DROP VIEW stats", "got 2 statements (SELECT, DROP)"),
    ("select-then-copy", "SELECT 1; COPY (SELECT 1) TO '{out}/y.csv'", "got 2 statements"),
    ("two-selects", "SELECT 1; SELECT 2", "got 2 statements"),
    ("empty", "   ", "got 0 statements"),
    ("pivot-without-in", "PIVOT stats ON tag USING sum(x)", "got MULTI"),
    # Data-changing nodes hidden inside a SELECT.
    ("copy-in-with", "WITH c AS (COPY (SELECT 1) TO '{out}/cte.csv') SELECT * FROM stats", "got COPY inside it"),
    ("copy-in-subquery", "SELECT * FROM (WITH c AS (COPY (SELECT 1) TO '{part}') SELECT 1)", "got COPY inside it"),
    ("delete-in-with", "WITH d AS (DELETE FROM stats RETURNING *) SELECT * FROM d", "got DELETE inside it"),
    ("insert-in-with", "WITH i AS (INSERT INTO stats SELECT * FROM stats RETURNING *) SELECT 1", "got INSERT"),
    ("update-in-scalar", "SELECT (WITH u AS (UPDATE stats SET x = 0 RETURNING x) SELECT 1)", "got UPDATE"),
    # The same against older view versions and training sets, and their files.
    ("copy-old-version", "COPY stats__v1 TO '{out}/old.parquet' (FORMAT parquet)", "got COPY"),
    ("insert-old-version", "INSERT INTO stats__v1 SELECT * FROM stats__v1", "got INSERT"),
    ("delete-old-in-with", "WITH d AS (DELETE FROM stats__v1 RETURNING *) SELECT * FROM d", "got DELETE inside it"),
    ("replace-old-version", "CREATE OR REPLACE VIEW stats__v1 AS SELECT 99 AS x", "got CREATE"),
    ("copy-training-set", "COPY training_sets.churn TO '{out}/ts.csv'", "got COPY"),
    ("forge-training-rows", "COPY (SELECT 99 AS x) TO '{ts_rows}' (FORMAT parquet)", "got COPY"),
    ("copy-ts-in-with", "WITH c AS (COPY training_sets.churn TO '{out}/c.csv') SELECT 1", "got COPY inside it"),
    ("read-training-rows", "SELECT * FROM read_parquet('{ts_rows}')", "files are out of reach"),
    ("scan-training-rows", "SELECT * FROM '{ts_rows}'", "files are out of reach"),
    ("glob-training-sets", "SELECT * FROM glob('{repo}/.strato/training_sets/**')", "files are out of reach"),
    ("drop-training-set", "DROP VIEW training_sets.churn", "got DROP"),
    ("drop-ts-schema", "DROP SCHEMA training_sets CASCADE", "got DROP"),
    ("replace-training-set", "CREATE OR REPLACE VIEW training_sets.churn AS SELECT 1 AS x", "got CREATE"),
    ("insert-training-set", "INSERT INTO training_sets.churn SELECT * FROM training_sets.churn", "got INSERT"),
    ("use-ts-schema", "USE training_sets", "got"),
]


def _tree(root: Path) -> dict[str, str]:
    """Every file under `root` → sha256 of its bytes (SQLite's shared-memory index excepted)."""
    return {
        str(p.relative_to(root)): "" if p.name.endswith("-shm") else hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize(("statement", "expected"), [c[1:] for c in CORPUS], ids=[c[0] for c in CORPUS])
def test_a_hostile_statement_is_refused_and_changes_nothing(
    world: World, monkeypatch: pytest.MonkeyPatch, statement: str, expected: str
) -> None:
    monkeypatch.chdir(world.root / "cwd")  # a relative path would land here
    query = statement.format(
        out=world.out, outside=world.outside, part=world.part, repo=world.repo, tmp=TMP, ts_rows=world.ts_rows
    )
    before = _tree(world.root)

    with pytest.raises(UserError) as refusal:
        world.store.sql(query)

    message = str(refusal.value)
    assert "\n" not in message, message
    assert expected in message, message
    assert "outside the store" not in message  # nothing of the outside file was read
    assert _tree(world.root) == before  # no file written, none changed: committed parquet byte-identical
    assert not list(Path("/tmp").glob(Path(TMP).name + "*"))
    _still_works(world.store)


def _still_works(store: FeatureStore) -> None:
    """History, training sets and materialization read what was written, as before."""
    assert store.sql("SELECT count(*) AS n, sum(x) AS s FROM stats").to_pylist() == [{"n": 4, "s": 33}]
    spine = pd.DataFrame({"user_id": [1, 2, 1], "event_timestamp": [T0, T0, T0 + timedelta(days=2)]})
    training = store.get_historical_features(spine, ["stats:x"]).to_df()
    assert training["x"].tolist() == [1, 2, 10]
    assert store.materialize(None, T0 + timedelta(days=3), progress=False).rows == {"stats": 2}
    assert online(store, ["stats:x"], [1, 2])["x"] == [10, 20]
    table = DeltaTable(str(store.delta.path(store.get_feature_view("stats").table_name)))
    assert table.to_pyarrow_table().num_rows == 4  # deltalake still reads every committed file
    assert store.sql("SELECT count(*) AS n, sum(x) AS s FROM stats__v1").to_pylist() == [{"n": 4, "s": 33}]
    saved = store.get_training_set("churn")
    assert store.sql("SELECT * FROM training_sets.churn").equals(saved.table)
    assert store.rebuild_training_set("churn").matches


def test_read_only_queries_still_work(world: World) -> None:
    """The sandbox refuses writes, not reading: CTEs, set operations, DESCRIBE, SUMMARIZE, PIVOT ... IN."""
    store = world.store
    assert store.sql(
        "WITH recursive r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT sum(n) AS s FROM r"
    ).to_pylist() == [{"s": 6}]
    assert store.sql("SELECT x FROM stats WHERE x < 5 UNION SELECT 100 ORDER BY 1").column("x").to_pylist() == [
        1,
        2,
        100,
    ]
    assert "x" in store.sql("DESCRIBE stats").column("column_name").to_pylist()
    assert store.sql("SUMMARIZE stats").num_rows == 7  # user_id, event time, x, tag, score, extra, created
    assert store.sql("SELECT * FROM (PIVOT stats ON tag IN ('t') USING sum(x))").num_rows == 4
    assert store.sql("FROM stats SELECT max(x) AS m").to_pylist() == [{"m": 20}]
    _still_works(store)


def test_a_refused_query_leaves_the_store_usable_and_the_next_call_is_fresh(world: World) -> None:
    """Even the statements DuckDB would accept elsewhere cannot carry state from one call to the next."""
    with pytest.raises(UserError):
        world.store.sql("SET GLOBAL memory_limit = '1MB'")
    limit = world.store.sql("SELECT current_setting('memory_limit') AS m").column("m")[0].as_py()
    assert limit.endswith("GiB"), limit  # the default 4GB, not 1MB
    _still_works(world.store)


def test_the_time_limit_is_a_store_option(tmp_path: Path) -> None:
    write_default_config(tmp_path, "proj")
    config = tmp_path / "strato.yaml"
    text = config.read_text()
    assert "engine: duckdb" in text
    config.write_text(
        text.replace("engine: duckdb", "engine: duckdb\n  sql_timeout_seconds: 0.5\n  sql_memory_limit: 64MB")
    )
    with FeatureStore(tmp_path) as store:
        store.apply([USER, stats_view()])
        with pytest.raises(UserError, match=r"sql_timeout_seconds=0\.5"):
            store.sql("SELECT sum(hash(i)) FROM range(100000000000) t(i)")
        limit = store.sql("SELECT current_setting('memory_limit') AS m").column("m")[0].as_py()
        assert limit.endswith("MiB"), limit
        assert store.sql("SELECT count(*) AS n FROM stats").to_pylist() == [{"n": 0}]
        # The limits hold for the names issue 8 adds: older versions and training sets.
        store.write("stats", _rows([1], T0, [1]))
        store.apply([USER, stats_view(extra=[Field("extra", Int64)]), FeatureService("svc", [stats_view()])])
        store.create_training_set("t", "svc", pd.DataFrame({"user_id": [1], "event_timestamp": [T0]}))
        for table in ("stats__v1", "training_sets.t"):
            with pytest.raises(UserError, match=r"sql_timeout_seconds=0\.5"):
                store.sql(f"SELECT sum(hash(i)) FROM range(100000000000) t(i), {table}")
            big = f"SELECT count(*) AS n FROM (SELECT i, count(*) FROM range(20000000) r(i), {table} GROUP BY i)"
            with pytest.raises(UserError, match="needs more than sql_memory_limit='64MB'"):
                store.sql(big)
            assert store.sql(f"SELECT count(*) AS n FROM {table}").to_pylist() == [{"n": 1}]
