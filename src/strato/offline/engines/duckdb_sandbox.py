"""The SQL face's sandbox: user SQL runs read-only, contained, and limited in time and memory.

`store.sql` and `strato sql` take SQL from whoever holds the repo, so that SQL must not be
able to write a file (a ``COPY ... TO`` over a committed parquet file forges history), read
outside the store (``read_csv('/etc/passwd')``), or change how the process behaves later
(``SET GLOBAL memory_limit``). Every call therefore:

1. opens a **fresh in-memory DuckDB connection**, never the one the store's own verbs use, so
   nothing a query does outlives it (~20 ms per call, measured in docs/backends.md);
2. accepts **exactly one SELECT-like statement**, decided by DuckDB's own parser
   (``extract_statements``), then walks its ``json_serialize_sql`` tree and allows only
   SELECT / set-operation / CTE query nodes, which catches data-changing nodes hidden inside
   a WITH (``WITH x AS (COPY ... TO ...)``, ``WITH x AS (DELETE ... RETURNING *)``);
3. registers each snapshot as a pyarrow dataset over its exact file list (so DuckDB itself
   never opens a file; a ``schema.table`` name becomes a view in that schema), then turns **external access off** and **locks the configuration**:
   file-reading table functions (read_csv, read_text, glob, read_parquet...) fail, and SET
   cannot undo the memory limit or re-enable file access;
4. runs the query on a worker thread while the caller waits in short slices: after
   ``sql_timeout_seconds`` it calls ``connection.interrupt()``; a Ctrl-C in the caller also
   interrupts the query and is re-raised as `KeyboardInterrupt` (DuckDB alone would finish
   the query before Python saw the signal).

Spilling is off (no temp directory): a query that needs more than ``sql_memory_limit`` fails
with a one-line error instead of writing to disk.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.dataset as pads

from strato.errors import BackendFailure, BackendUnavailable, ConfigError, UserError
from strato.offline import storage
from strato.offline.base import TableSnapshot

#: Query-node types a read-only query is made of; anything else (COPY_QUERY_NODE,
#: INSERT_QUERY_NODE, DELETE_QUERY_NODE, node types a later DuckDB adds...) is refused.
_READ_ONLY_NODES = frozenset({"SELECT_NODE", "SET_OPERATION_NODE", "RECURSIVE_CTE_NODE", "CTE_NODE"})
#: How often the waiting caller wakes to let Python deliver a Ctrl-C.
_POLL_SECONDS = 0.05
#: After a Ctrl-C, how long to wait for DuckDB to stop before leaving it to stop on its own.
_INTERRUPT_GRACE_SECONDS = 5.0


@dataclass(frozen=True)
class SandboxLimits:
    """What one user query may use."""

    memory_limit: str
    timeout_seconds: float
    threads: int | None = None


def run_user_sql(
    query: str,
    tables: Sequence[TableSnapshot],
    limits: SandboxLimits,
    *,
    datasets: Mapping[str, pads.Dataset | pa.Table] | None = None,
    user_query: str | None = None,
    params: Mapping[str, Any] | None = None,
) -> pa.Table:
    """`query` over `tables` (each visible under its `name`) on a fresh, locked-down connection.

    `datasets` are more tables (pyarrow datasets or tables, read by pyarrow, never by DuckDB).
    `user_query`, when `query` wraps the user's text in SQL of Strato's own (`duckdb_batch`),
    is checked too: it alone must already be one read-only SELECT. `params` are the values of
    named parameters (``$start``) the query uses, bound by DuckDB, never spliced into the text.
    """
    names = [t.name for t in tables] + list(datasets or {})
    if len({n.lower() for n in names}) != len(names):
        raise UserError(f"sql: two tables share a name in {names}")
    con = _connect(limits)
    try:
        if user_query is not None:
            check_read_only(con, user_query)
        check_read_only(con, query)
        for i, snapshot in enumerate(tables):
            schema, dot, table = snapshot.name.partition(".")
            if not dot:
                con.register(snapshot.name, _dataset(snapshot))
                continue
            # ``schema.table`` (the training sets): a view in that schema over a registered name.
            hidden = f"__strato_sql_{i}"
            con.register(hidden, _dataset(snapshot))
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {_q(schema)}")
            con.execute(f"CREATE VIEW {_q(schema)}.{_q(table)} AS SELECT * FROM {_q(hidden)}")
        for name, dataset in (datasets or {}).items():
            con.register(name, dataset)
        # Last, once the tables are in: from here on no file can be opened, no setting changed.
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
    except BaseException:
        con.close()
        raise
    return _run_limited(con, query, limits, params)


def check_read_only(con: duckdb.DuckDBPyConnection, query: str) -> None:
    """Refuse, in one line, anything but one read-only SELECT (DuckDB's parser decides)."""
    try:
        statements = con.extract_statements(query)
    except duckdb.Error as exc:
        raise _translate(exc, None) from exc
    if len(statements) != 1:
        kinds = ", ".join(_kind(s) for s in statements) or "no statement"
        raise UserError(f"strato sql runs one read-only SELECT; got {len(statements)} statements ({kinds})")
    kind = _kind(statements[0])
    if kind != "SELECT":
        hint = " (a PIVOT without an IN (...) list counts as several statements)" if kind == "MULTI" else ""
        raise UserError(f"strato sql runs one read-only SELECT; got {kind}{hint}")
    tree = json.loads(con.execute("SELECT json_serialize_sql(?::VARCHAR)", [query]).fetchall()[0][0])
    if tree.get("error"):
        raise UserError(f"strato sql cannot check this SELECT, so it is refused: {tree.get('error_message')}")
    refused = sorted({n for n in _node_types(tree) if n not in _READ_ONLY_NODES})
    if refused:
        got = ", ".join(n.removesuffix("_QUERY_NODE").removesuffix("_NODE") for n in refused)
        raise UserError(f"strato sql runs one read-only SELECT; got {got} inside it")


def _connect(limits: SandboxLimits) -> duckdb.DuckDBPyConnection:
    config: dict[str, Any] = {
        "memory_limit": limits.memory_limit,
        "temp_directory": "",  # no spilling: nothing is written, memory_limit is a hard cap
        "autoload_known_extensions": False,
        "autoinstall_known_extensions": False,
        "allow_community_extensions": False,
        "python_enable_replacements": False,  # no reading the caller's Python variables by name
    }
    if limits.threads is not None:
        config["threads"] = int(limits.threads)
    try:
        con = duckdb.connect(":memory:", config=config)
    except duckdb.Error as exc:
        raise ConfigError(
            f"offline engine duckdb: invalid sql_memory_limit {limits.memory_limit!r} or threads: {_line(exc)}"
        ) from exc
    try:
        con.execute("SET TimeZone = 'UTC'")  # timestamps leave as UTC, as in the engine's own reads
    except BaseException:
        con.close()
        raise
    return con


def _dataset(snapshot: TableSnapshot) -> pads.Dataset | pa.Table:
    """The snapshot's exact files, read by pyarrow (never by DuckDB), columns as in its schema.

    Files written before a column was added read it as null (design rule 6).
    """
    if not snapshot.files:
        return snapshot.schema.empty_table()
    return storage.dataset(snapshot)  # a folder or an object store, with the snapshot's options


def _run_limited(
    con: duckdb.DuckDBPyConnection, query: str, limits: SandboxLimits, params: Mapping[str, Any] | None = None
) -> pa.Table:
    """Run on a worker thread; interrupt it on timeout or on the caller's Ctrl-C; close `con`.

    The caller waits on an event in short slices, never in `Thread.join` (a Ctrl-C inside
    join marks a running thread as stopped on Python < 3.13) nor in DuckDB itself (which
    would only see the Ctrl-C once the query is over).
    """
    outcome: dict[str, Any] = {}
    done = threading.Event()
    guard = threading.Lock()
    abandoned = False  # the caller left early (second Ctrl-C): the worker closes `con`

    def work() -> None:
        try:
            relation = con.sql(query, params=dict(params)) if params else con.sql(query)
            outcome["table"] = relation.to_arrow_table() if relation is not None else pa.table({})
        except BaseException as exc:  # handed to the caller below
            outcome["error"] = exc
        finally:
            with guard:
                done.set()
                if abandoned:
                    con.close()

    deadline = time.monotonic() + limits.timeout_seconds
    timed_out = False
    threading.Thread(target=work, name="strato-sql", daemon=True).start()
    try:
        while not done.wait(min(max(deadline - time.monotonic(), 0.0), _POLL_SECONDS)):
            if time.monotonic() >= deadline:
                timed_out = True
                con.interrupt()
                done.wait()
    except KeyboardInterrupt:
        con.interrupt()
        done.wait(_INTERRUPT_GRACE_SECONDS)
        raise
    finally:
        with guard:
            if done.is_set():
                con.close()
            else:
                abandoned = True
    if "table" in outcome:
        table: pa.Table = outcome["table"]
        return table
    error = outcome.get("error")
    if isinstance(error, duckdb.InterruptException) and timed_out:
        raise UserError(
            f"sql: query stopped after sql_timeout_seconds={limits.timeout_seconds:g}; "
            "narrow it or raise offline.sql_timeout_seconds"
        ) from error
    if isinstance(error, duckdb.InterruptException):
        raise KeyboardInterrupt from error
    if error is None:  # pragma: no cover - the worker always sets one of the two
        raise BackendFailure("sql: the query ended without a result")
    translated = _translate(error, limits)
    if translated is error:
        raise error
    raise translated from error


def _translate(exc: BaseException, limits: SandboxLimits | None) -> BaseException:
    """A duckdb error of a user query as a one-line Strato error; anything else unchanged."""
    if not isinstance(exc, duckdb.Error):
        return exc
    if isinstance(exc, duckdb.PermissionException):
        return UserError(f"strato sql reads only the store's views; files are out of reach: {_line(exc)}")
    if isinstance(exc, duckdb.OutOfMemoryException):
        limit = limits.memory_limit if limits else "?"
        return UserError(
            f"sql: query needs more than sql_memory_limit={limit!r}; "
            f"narrow it or raise offline.sql_memory_limit ({_line(exc)})"
        )
    if isinstance(exc, duckdb.IOException):
        return BackendUnavailable(f"duckdb: {_line(exc)}")
    if isinstance(exc, _USER_MISTAKES):
        return UserError(f"SQL error: {_line(exc)}")
    return BackendFailure(f"duckdb: {_line(exc)}")


_USER_MISTAKES = (
    duckdb.ProgrammingError,  # parser, binder, catalog errors
    duckdb.DataError,  # conversion, out of range
    duckdb.NotSupportedError,
    duckdb.IntegrityError,
    duckdb.InvalidInputException,
)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _kind(statement: Any) -> str:
    return str(statement.type.name)


def _node_types(tree: Any) -> Iterator[str]:
    """Every query-node type (``..._NODE``) anywhere in a serialized statement."""
    stack = [tree]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            kind = item.get("type")
            if isinstance(kind, str) and kind.endswith("_NODE"):
                yield kind
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _line(exc: BaseException) -> str:
    """DuckDB's message on one line: its first line plus a "Did you mean" hint if any."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    hints = [line for line in lines[1:] if line.startswith("Did you mean")]
    return " ".join([lines[0], *hints])
