"""Batch transformations on DuckDB: a SqlSource's query, run inside the SQL sandbox.

The query is user SQL like `strato sql`'s, so it runs in `duckdb_sandbox` on a fresh,
locked-down connection (read-only, no file access, time and memory limits). Around it, Strato
adds SQL of its own:

* each input **view** is registered under a hidden name and shown to the query, under the
  view's name, through a CTE keeping one row per (join keys, event time): its latest write
  (design rule 2), so a rewritten row is never counted twice;
* each input **file** is opened by pyarrow (a dataset: Parquet file or folder, CSV, or a Delta
  table's latest version) and registered under its declared name; DuckDB itself never opens
  a file, so external access stays off;
* the result is filtered on its event column to ``[start, end)`` (the gap being computed) and
  cut to `limit` rows (``LIMIT 0`` tells the result's schema without computing it);
* ``$start`` and ``$end``, where the query names them, are bound (by DuckDB, as TIMESTAMPTZ
  parameters) to the same bounds, so the query can narrow its inputs to what a piece needs:
  ``WHERE p.event_timestamp >= $start - INTERVAL 7 DAY AND p.event_timestamp < $end``.

The user's text is checked alone first (exactly one read-only SELECT) and then wrapped on
lines of its own, so a trailing ``-- comment`` cannot swallow the wrapper.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.dataset as pads

from strato.errors import UserError
from strato.offline.base import BatchQuery, FileInput
from strato.offline.engines.duckdb_sandbox import SandboxLimits, run_user_sql

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def run_batch_query(
    batch: BatchQuery, limits: SandboxLimits, *, start: datetime | None, end: datetime | None, limit: int | None
) -> pa.Table:
    """`batch.query`'s rows with ``start <= event < end``, at most `limit` of them."""
    tables = []
    ctes = []
    for i, view in enumerate(batch.views):
        hidden = f"__strato_view_{i}"
        tables.append(dataclasses.replace(view.snapshot, name=hidden))
        identity = ", ".join(_q(k) for k in (*view.key_names, "event_timestamp"))
        ctes.append(
            f"{_q(view.snapshot.name)} AS (SELECT * FROM {_q(hidden)} QUALIFY row_number() OVER "
            f"(PARTITION BY {identity} ORDER BY created_timestamp DESC) = 1)"
        )
    datasets = {f.name: _open(f) for f in batch.files}
    user = batch.query.strip().rstrip(";").rstrip()
    where = []  # none for a schema probe: a mistyped event column is then the caller's clear error
    if start is not None and limit != 0:
        where.append(f"{_q(batch.event_column)} >= make_timestamptz({_micros(start)}::BIGINT)")
    if end is not None and limit != 0:
        where.append(f"{_q(batch.event_column)} < make_timestamptz({_micros(end)}::BIGINT)")
    wrapped = "\n".join(
        [
            *(["WITH " + ",\n".join(ctes)] if ctes else []),
            "SELECT * FROM (",
            user,
            ") AS __strato_q",
            *(["WHERE " + " AND ".join(where)] if where else []),
            *([f"LIMIT {int(limit)}"] if limit is not None else []),
        ]
    )
    params = _parameters(batch.query, start, end)
    return run_user_sql(wrapped, tables, limits, datasets=datasets, user_query=batch.query, params=params)


def _parameters(query: str, start: datetime | None, end: datetime | None) -> dict[str, datetime]:
    """The values of ``$start`` and ``$end`` where the query names them (DuckDB's parser says)."""
    import duckdb

    con = duckdb.connect(":memory:")
    try:
        statements = con.extract_statements(query)
    except duckdb.Error:
        return {}  # the sandbox reports the syntax error in its own words
    finally:
        con.close()
    named: set[str] = set().union(*(s.named_parameters for s in statements)) if statements else set()
    unknown = sorted(named - {"start", "end"})
    if unknown:
        raise UserError(f"SqlSource query uses parameter ${unknown[0]}; the parameters it may use are $start and $end")
    values = {"start": start, "end": end}
    missing = [n for n in ("start", "end") if n in named and values[n] is None]
    if missing:
        raise UserError(f"SqlSource query uses ${missing[0]}, which needs a bounded range to run")
    return {n: v for n in named if (v := values[n]) is not None}


def _open(source: FileInput) -> pads.Dataset | pa.Table:
    """The file as a pyarrow dataset (lazy, so the query's filters and projections reach it)."""
    where = f"SqlSource input {source.name!r} ({source.path})"
    try:
        if source.format == "delta":
            from deltalake import DeltaTable

            return DeltaTable(source.path).to_pyarrow_dataset()
        if source.format in ("parquet", "csv"):
            return pads.dataset(source.path, format=source.format)
    except FileNotFoundError:
        raise UserError(f"{where}: no such file or folder") from None
    except Exception as exc:  # pyarrow and deltalake raise their own types
        line = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise UserError(f"{where}: cannot read as {source.format} ({line})") from None
    raise UserError(f"{where}: unsupported format {source.format!r}; use parquet, csv or delta")


def _micros(moment: datetime) -> int:
    delta = moment.astimezone(UTC) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
