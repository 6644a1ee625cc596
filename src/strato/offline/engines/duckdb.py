"""DuckDB offline engine: point-in-time joins, latest values and SQL over Delta snapshots, in process.

DuckDB cannot load its Delta extension here, so every read goes through a snapshot's exact
file list (``read_parquet([...], union_by_name=true)``; union by name so files written
before a column was added read it as null, design rule 6). Never a glob: files a later
commit replaced are still on disk. The point-in-time join drops ``union_by_name`` when every
file has the same columns (`_file_layout`), since it costs about 1 s per scan of 1,000 files.

Point-in-time join (design rule 3), one query per view, in two passes over its files:

1. *narrow*: dedupe history on (keys, event_timestamp) keeping max(created_timestamp), then
   ``ASOF JOIN`` the spine's (row id, keys, t) against it. Deduping first is what makes the
   ASOF deterministic: ASOF picks arbitrarily among equal timestamps, rule 2 wants the latest
   write. The ttl filter applies here, to the matches only.
2. *wide*: hash-join the matches (at most one per spine row) back to the history on
   (keys, event_timestamp, created_timestamp) to fetch the feature columns. The matches are
   the build side; the wide history only streams past it, so its 100+ columns are never
   sorted or held in memory, which is why this beats a plain ASOF JOIN that drags every
   feature through its sort (see bench/historical.py).

The matches are then LEFT JOINed to the spine's row ids and ordered by them, so DuckDB
returns each view's columns already in spine order, and they are appended to the caller's
spine table untouched: spine rows are never dropped, duplicated or retyped. `latest` uses
the same narrow-then-wide shape with a max over (event, created).
"""

from __future__ import annotations

import contextlib
import importlib
import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar, Self

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from strato.errors import BackendFailure, BackendUnavailable, ConfigError, SchemaError, UserError
from strato.offline import storage
from strato.offline.base import BatchQuery, Capabilities, EngineOptions, OfflineEngine, TableSnapshot
from strato.offline.pit import PitRequest


class _OnFirstUse:
    """A module imported on first attribute access.

    Loading configuration imports this engine for its options model; importing duckdb
    itself (~0.1 s) waits until a query runs, so online-only commands such as
    `strato get` never pay for it.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attr: str) -> Any:
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return getattr(self._module, attr)


if TYPE_CHECKING:
    import duckdb

else:
    duckdb = _OnFirstUse("duckdb")

EVENT_TS = "event_timestamp"
CREATED_TS = "created_timestamp"
_TS = pa.timestamp("us", tz="UTC")
# Internal names all start with "__strato", which no user name may (definitions._naming).
_RID = "__strato_rid"
_T = "__strato_t"
_SPINE = "__strato_spine"
#: Rows per batch of `latest`'s stream: large, so the online bulk load gets few big writes.
_BATCH_ROWS = 131_072
_MICROSECOND = timedelta(microseconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class DuckDBOptions(EngineOptions):
    """Options of the ``duckdb`` offline engine (``offline:`` in strato.yaml)."""

    threads: int | None = None
    """Worker threads; None lets DuckDB use one per core."""

    memory_limit: str | None = None
    """Cap on DuckDB's memory, such as ``"4GB"``; None keeps DuckDB's default (80 % of RAM)."""

    sql_memory_limit: str = "4GB"
    """Cap on the memory of one `store.sql` / `strato sql` query (no spilling to disk)."""

    sql_timeout_seconds: float = Field(default=300.0, gt=0)
    """A `store.sql` / `strato sql` query running longer than this is stopped."""


class DuckDBOfflineEngine(OfflineEngine):
    """An in-process DuckDB database; each call runs on its own cursor, so calls may overlap.

    User SQL (`sql`) never touches this database: it runs in a sandbox of its own
    (`duckdb_sandbox`), so it cannot change what the store's own verbs see or do.
    """

    name: ClassVar[str] = "duckdb"
    options_model: ClassVar[type[EngineOptions]] = DuckDBOptions
    capabilities: ClassVar[Capabilities] = Capabilities(sql=True, batch_queries=True)

    def __init__(self, con: duckdb.DuckDBPyConnection, options: DuckDBOptions | None = None) -> None:
        self._con: duckdb.DuckDBPyConnection | None = con
        self._lock = threading.Lock()
        opts = options or DuckDBOptions()
        from strato.offline.engines.duckdb_sandbox import SandboxLimits  # imports duckdb: only once it runs

        self._sql_limits = SandboxLimits(opts.sql_memory_limit, opts.sql_timeout_seconds, opts.threads)

    @classmethod
    def open(cls, options: EngineOptions | None = None) -> Self:
        opts = options if isinstance(options, DuckDBOptions) else DuckDBOptions.model_validate(dict(options or {}))
        con = duckdb.connect(":memory:")
        try:
            # Session time zone UTC: TIMESTAMPTZ values leave as timestamp[us, tz=UTC] and any
            # TIMESTAMP ↔ TIMESTAMPTZ cast is the identity, whatever the machine's zone.
            con.execute("SET GLOBAL TimeZone = 'UTC'")
            if opts.threads is not None:
                con.execute(f"SET threads = {int(opts.threads)}")
            if opts.memory_limit is not None:
                con.execute(f"SET memory_limit = {_literal(opts.memory_limit)}")
        except duckdb.Error as exc:
            con.close()
            raise ConfigError(f"offline engine duckdb: invalid options: {exc}") from exc
        return cls(con, opts)

    def close(self) -> None:
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None

    # ------------------------------------------------------------------ point-in-time join

    def point_in_time_join(self, spine: pa.Table, requests: Sequence[PitRequest]) -> pa.Table:
        _check_outputs(spine, requests)
        times = _utc_times(spine)
        n = spine.num_rows
        keys = list(dict.fromkeys(k for r in requests for k in r.join_keys))
        narrow = pa.table(
            {_RID: pa.array(np.arange(n, dtype=np.int64)), **{k: spine.column(k) for k in keys}, _T: times}
        )
        bounds = pc.min_max(times.cast(pa.int64())).as_py() if n else {"min": 0, "max": 0}
        out = spine
        with self._cursor() as cur, _mapped_errors():
            cur.register(_SPINE, narrow)
            for request in requests:
                for name, column in zip(
                    request.output_names,
                    _join_view(cur, request, spine.schema, n, bounds["min"], bounds["max"]),
                    strict=True,
                ):
                    out = out.append_column(name, column)
        return out

    # ------------------------------------------------------------------ latest, read, sql

    def latest(
        self, snapshot: TableSnapshot, key_names: Sequence[str], *, start: datetime | None, end: datetime
    ) -> pa.RecordBatchReader:
        schema = snapshot.schema
        for name in (*key_names, EVENT_TS, CREATED_TS):
            if name not in schema.names:
                raise SchemaError(f"table {snapshot.name!r} has no column {name!r}; it has {schema.names}")
        if not snapshot.files:
            return pa.RecordBatchReader.from_batches(schema, iter(()))
        cur = self._connection().cursor()
        src = _source(cur, snapshot)
        low, high = (None if start is None else _micros(start)), _micros(end)
        on = " AND ".join(f"h.{_q(k)} = w.{_q(k)}" for k in key_names)
        query = f"""
            WITH w AS (
                SELECT {_cols(key_names)}, max({{'e': {EVENT_TS}, 'c': {CREATED_TS}}}) AS __strato_w
                FROM {src} WHERE {_between("", low, high, inclusive=False)} GROUP BY ALL)
            SELECT h.* FROM {src} h JOIN w ON {on}
                AND h.{EVENT_TS} = w.__strato_w.e AND h.{CREATED_TS} = w.__strato_w.c
            WHERE {_between("h.", low, high, inclusive=False)}
        """
        with _mapped_errors():
            reader = cur.sql(query).to_arrow_reader(_BATCH_ROWS)

        def batches() -> Iterator[pa.RecordBatch]:
            try:
                with _mapped_errors():
                    for batch in reader:
                        yield _conform(batch, schema)
            finally:
                cur.close()

        return pa.RecordBatchReader.from_batches(schema, batches())

    def rows_between(
        self,
        snapshot: TableSnapshot,
        key_names: Sequence[str],
        columns: Sequence[str],
        *,
        start: datetime | None,
        end: datetime | None,
    ) -> pa.Table:
        wanted = list(dict.fromkeys([*key_names, EVENT_TS, *columns]))
        for name in wanted:
            if name not in snapshot.schema.names:
                raise SchemaError(f"table {snapshot.name!r} has no column {name!r}; it has {snapshot.schema.names}")
        schema = pa.schema([snapshot.schema.field(n) for n in wanted])
        if not snapshot.files:
            return schema.empty_table()
        where = [] if start is None else [f"{EVENT_TS} >= make_timestamptz({_micros(start)}::BIGINT)"]
        if end is not None:
            where.append(f"{EVENT_TS} < make_timestamptz({_micros(end)}::BIGINT)")
        with self._cursor() as cur, _mapped_errors():
            present = _file_columns(cur, snapshot)
            names = [n for n in wanted if n in present]
            query = f"""
                SELECT {_cols(names)} FROM {_source(cur, snapshot)}
                {"WHERE " + " AND ".join(where) if where else ""}
                QUALIFY row_number() OVER (
                    PARTITION BY {_cols([*key_names, EVENT_TS])} ORDER BY {CREATED_TS} DESC) = 1
                ORDER BY {_cols([EVENT_TS, *key_names])}
            """
            table = cur.sql(query).to_arrow_table()
        return pa.Table.from_batches([_conform(b, schema) for b in table.to_batches()], schema)

    def read(self, snapshot: TableSnapshot) -> pa.Table:
        if not snapshot.files:
            return snapshot.schema.empty_table()
        with self._cursor() as cur, _mapped_errors():
            present = _file_columns(cur, snapshot)
            names = [n for n in snapshot.schema.names if n in present]
            table = cur.sql(f"SELECT {_cols(names)} FROM {_source(cur, snapshot)}").to_arrow_table()
        return pa.Table.from_batches([_conform(b, snapshot.schema) for b in table.to_batches()], snapshot.schema)

    def sql(self, query: str, tables: Sequence[TableSnapshot]) -> pa.Table:
        """One read-only SELECT on a fresh, locked-down connection (see `duckdb_sandbox`)."""
        self._connection()  # a closed engine refuses, as its other calls do
        from strato.offline.engines.duckdb_sandbox import run_user_sql

        return run_user_sql(query, tables, self._sql_limits)

    def batch_query(
        self, batch: BatchQuery, *, start: datetime | None, end: datetime | None, limit: int | None = None
    ) -> pa.Table:
        """A SqlSource's query in the same sandbox as `sql` (see `duckdb_batch`)."""
        self._connection()
        from strato.offline.engines.duckdb_batch import run_batch_query

        return run_batch_query(batch, self._sql_limits, start=start, end=end, limit=limit)

    # ------------------------------------------------------------------ helpers

    def _connection(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            raise BackendFailure("the duckdb offline engine is closed")
        return self._con

    @contextlib.contextmanager
    def _cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor of its own per call: registered tables and temp views never collide."""
        with self._lock:
            cur = self._connection().cursor()
        try:
            yield cur
        finally:
            cur.close()


def _join_view(
    cur: duckdb.DuckDBPyConnection, request: PitRequest, spine: pa.Schema, n: int, low: int, high: int
) -> list[pa.ChunkedArray | pa.Array]:
    """One request's output columns, in spine order, as Arrow arrays of the requested types."""
    snapshot = request.snapshot
    if snapshot is None or not snapshot.files or n == 0:
        return [pa.nulls(n, t) for t in request.output_types]
    present, same = _file_layout(cur, snapshot)
    for name in (*request.join_keys, EVENT_TS, CREATED_TS):
        if name not in present:
            raise SchemaError(f"table {snapshot.name!r} has no column {name!r}; it has {sorted(present)}")
    _check_key_types(spine, request, snapshot)
    fetch = list(dict.fromkeys(f for f in request.features if f in present))
    if not fetch:
        return [pa.nulls(n, t) for t in request.output_types]
    src = _source(cur, snapshot, union=not same)
    result = cur.sql(_pit_sql(src, request, fetch, low, high)).to_arrow_table()
    if result.num_rows != n:
        # Only when (keys, event_timestamp, created_timestamp) repeats in history (two writes
        # in one microsecond): keep one row per spine row rather than duplicating it.
        result = cur.sql(_pit_sql(src, request, fetch, low, high, unique=False)).to_arrow_table()
    columns: list[pa.ChunkedArray | pa.Array] = []
    for feature, name, out_type in zip(request.features, request.output_names, request.output_types, strict=True):
        if feature not in present:
            columns.append(pa.nulls(n, out_type))
            continue
        column = result.column(fetch.index(feature))
        columns.append(column if column.type == out_type else _cast(column, out_type, f"{snapshot.name}.{name}"))
    return columns


def _pit_sql(src: str, request: PitRequest, fetch: Sequence[str], low: int, high: int, *, unique: bool = True) -> str:
    """Narrow dedup → ASOF JOIN → hash join back for the features → spine order (see module doc).

    `src` is the history's table expression (`_source`).
    """
    keys = request.join_keys
    # Rows after the last spine time (or, with a ttl, too old for the first) can never match;
    # saying so lets DuckDB skip row groups by their statistics.
    ttl_us = None if request.ttl is None else request.ttl // _MICROSECOND
    since = None if ttl_us is None else low - ttl_us
    ttl = "" if ttl_us is None else f"WHERE epoch_us(h.__strato_ev) >= epoch_us(s.{_T}) - {ttl_us}"
    asof_on = " AND ".join(f"s.{_q(k)} = h.{_q(k)}" for k in keys)
    back_on = " AND ".join(f"h.{_q(k)} = m.{_q(k)}" for k in keys)
    dedup = "" if unique else f"QUALIFY row_number() OVER (PARTITION BY m.{_RID}) = 1"
    return f"""
        WITH h AS (
            SELECT {_cols(keys)}, {EVENT_TS} AS __strato_ev, max({CREATED_TS}) AS __strato_c
            FROM {src} WHERE {_between("", since, high, inclusive=True)} GROUP BY ALL),
        m AS (
            SELECT s.{_RID}, {", ".join(f"s.{_q(k)}" for k in keys)}, h.__strato_ev, h.__strato_c
            FROM {_SPINE} s ASOF JOIN h ON {asof_on} AND s.{_T} >= h.__strato_ev {ttl}),
        w AS (
            SELECT m.{_RID}, {", ".join(f"h.{_q(f)}" for f in fetch)}
            FROM {src} h JOIN m ON {back_on} AND h.{EVENT_TS} = m.__strato_ev AND h.{CREATED_TS} = m.__strato_c
            WHERE {_between("h.", since, high, inclusive=True)} {dedup})
        SELECT {", ".join(f"w.{_q(f)}" for f in fetch)}
        FROM {_SPINE} s LEFT JOIN w ON s.{_RID} = w.{_RID}
        ORDER BY s.{_RID}
    """


def _check_outputs(spine: pa.Table, requests: Sequence[PitRequest]) -> None:
    names = list(spine.column_names)
    for request in requests:
        for key in request.join_keys:
            if key not in spine.column_names:
                raise SchemaError(f"entity_df has no join key column {key!r}; it has {spine.column_names}")
        if not (len(request.features) == len(request.output_names) == len(request.output_types)):
            raise UserError("PitRequest: features, output_names and output_types differ in length")
        names += request.output_names
    clash = sorted({n for n in names if names.count(n) > 1})
    if clash:
        raise UserError(f"point-in-time join: output column(s) {clash} appear twice")


def _check_key_types(spine: pa.Schema, request: PitRequest, snapshot: TableSnapshot) -> None:
    """Join keys must compare: both integers, both strings or both bytes (widths may differ)."""
    for key in request.join_keys:
        ours, theirs = spine.field(key).type, snapshot.schema.field(key).type
        if _key_kind(ours) != _key_kind(theirs):
            raise SchemaError(f"join key {key!r} is {ours} in entity_df but {theirs} in table {snapshot.name!r}")


def _key_kind(t: pa.DataType) -> str:
    if pa.types.is_integer(t):
        return "integer"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "string"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_binary_view(t):
        return "binary"
    return str(t)


def _utc_times(spine: pa.Table) -> pa.ChunkedArray:
    """The spine's event times as timestamp[us, UTC]; naive times are taken as UTC."""
    if EVENT_TS not in spine.column_names:
        raise SchemaError(f"entity_df has no {EVENT_TS!r} column; it has {spine.column_names}")
    column = spine.column(EVENT_TS)
    if not pa.types.is_timestamp(column.type):
        raise SchemaError(f"entity_df column {EVENT_TS!r} must be a timestamp, got {column.type}")
    if column.null_count:
        raise SchemaError(f"entity_df column {EVENT_TS!r} has null event times")
    if column.type.unit == "ns":  # floor to µs: history times are whole µs, so `<=` is unchanged
        column = pc.floor_temporal(column, unit="microsecond")
    return column.cast(pa.timestamp(column.type.unit, tz="UTC")).cast(_TS)


def _file_columns(cur: duckdb.DuckDBPyConnection, snapshot: TableSnapshot) -> frozenset[str]:
    """Columns present in at least one file; a column added by an empty write is in none."""
    rows = cur.execute(f"DESCRIBE SELECT * FROM {_source(cur, snapshot)}").fetchall()
    return frozenset(str(r[0]) for r in rows)


def _conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """`batch` with exactly `schema`'s columns and types: absent columns read as null."""
    if batch.schema == schema:
        return batch
    columns = [
        batch.column(f.name) if f.name in batch.schema.names else pa.nulls(batch.num_rows, f.type) for f in schema
    ]
    columns = [c if c.type == f.type else _cast(c, f.type, f.name) for c, f in zip(columns, schema, strict=True)]
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def _cast(column: pa.Array, to: pa.DataType, what: str) -> pa.Array:
    try:
        return column.cast(to)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        raise SchemaError(f"{what}: stored type {column.type} cannot be read as {to}: {exc}") from exc


def _file_layout(cur: duckdb.DuckDBPyConnection, snapshot: TableSnapshot) -> tuple[frozenset[str], bool]:
    """(columns present in at least one file, whether every file has the same columns).

    For local files the footers are read by pyarrow, which is cheap; when every file has the
    same columns the scans can skip ``union_by_name``, whose per-file schema work costs about
    1 s per scan of 1,000 small files (bench/README.md). Remote files, and any file pyarrow
    cannot read here, take the DuckDB path: `_file_columns` and ``union_by_name`` scans.
    """
    local = [f.removeprefix("file://") for f in snapshot.files if "://" not in f or f.startswith("file://")]
    if len(local) == len(snapshot.files) and len(local) > 1:
        import pyarrow.parquet as pq

        try:
            layouts = {tuple(pq.read_schema(path).names) for path in local}
        except (OSError, pa.ArrowException):
            layouts = set()
        if len(layouts) == 1:
            return frozenset(next(iter(layouts))), True
    return _file_columns(cur, snapshot), False


def _scan(files: Sequence[str], *, union: bool = True) -> str:
    """A scan of exactly `files`; `union` matches columns by name across files (rule 6)."""
    listed = ", ".join(_literal(f) for f in files)
    return f"read_parquet([{listed}], union_by_name = true)" if union else f"read_parquet([{listed}])"


def _source(cur: duckdb.DuckDBPyConnection, snapshot: TableSnapshot, *, union: bool = True) -> str:
    """The snapshot's rows as a table expression on `cur`: DuckDB's own Parquet reader over its
    exact files (`union`: columns matched by name across files, rule 6), or, for an object
    store, a pyarrow dataset registered on the cursor.

    DuckDB reads ``s3://`` only through its httpfs extension, which it downloads on first use
    (not possible on machines without its extension repository); pyarrow's filesystems read
    every store delta-rs writes, with the same options (`strato.offline.storage`).
    """
    if not storage.is_remote(snapshot.path):
        return _scan(snapshot.files, union=union)
    name = f"__strato_src_{id(snapshot):x}_{snapshot.version}"
    cur.register(name, storage.dataset(snapshot))
    return _q(name)


def _between(prefix: str, low_us: int | None, high_us: int, *, inclusive: bool) -> str:
    """``low <= event_timestamp <(=) high`` in SQL, with exact µs TIMESTAMPTZ constants."""
    column = f"{prefix}{EVENT_TS}"
    text = f"{column} {'<=' if inclusive else '<'} make_timestamptz({high_us}::BIGINT)"
    if low_us is not None:
        text += f" AND {column} >= make_timestamptz({low_us}::BIGINT)"
    return text


def _micros(value: datetime) -> int:
    """Microseconds since the epoch; a naive datetime is taken as UTC."""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return (aware - _EPOCH) // _MICROSECOND


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _cols(names: Sequence[str]) -> str:
    return ", ".join(_q(n) for n in names)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@contextlib.contextmanager
def _mapped_errors() -> Iterator[None]:
    """duckdb errors → Strato's: IO transient, the rest terminal (user SQL maps its own)."""
    try:
        yield
    except (
        duckdb.ProgrammingError,
        duckdb.DataError,
        duckdb.NotSupportedError,
        duckdb.IntegrityError,
    ) as exc:
        raise BackendFailure(f"duckdb: {exc}") from exc
    except duckdb.OutOfMemoryException as exc:
        raise BackendFailure(f"duckdb ran out of memory (set offline memory_limit?): {exc}") from exc
    except (duckdb.IOException, duckdb.OperationalError, duckdb.InterruptException) as exc:
        raise BackendUnavailable(f"duckdb: {exc}") from exc
    except duckdb.Error as exc:
        raise BackendFailure(f"duckdb: {exc}") from exc
