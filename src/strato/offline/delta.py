"""History tables: one Delta Lake table per view, and the only code that writes them.

Every `append` is one Delta commit, so a write lands whole or not at all (design rule 1),
and every commit is a version that reads can be pinned to (rule 5). Engines never see a
folder, only a `TableSnapshot`: the version and its exact file list, because files a later
commit replaced stay on disk until vacuum and a glob would read them again.

The root may be an object store (``s3://bucket/prefix`` and the other URIs delta-rs
supports), reached with the storage options `strato.config` resolved; snapshots carry them to
the engines (`offline.storage`), so every reader sees the same files.

Tables are not partitioned. A point-in-time join reads every row of a view whatever the
spine's time range, and partitioning by event date would split each write into one small
file per day touched; pruning by date can come later, with compaction, when tables outgrow
one machine's scan speed.
"""

from __future__ import annotations

import contextlib
import operator
import shutil
import uuid
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute
from deltalake import ColumnProperties, CommitProperties, DeltaTable, Transaction, WriterProperties, write_deltalake
from deltalake.exceptions import CommitFailedError, DeltaError, SchemaMismatchError, TableNotFoundError

from strato.errors import (
    BackendFailure,
    BackendUnavailable,
    ConflictError,
    NotFoundError,
    OffsetsMovedError,
    SchemaError,
    StratoError,
    UserError,
)
from strato.offline import storage
from strato.offline.base import TableSnapshot
from strato.types import TableVersion

#: Commit-info key holding a random id per append, to find our own commit in the log.
_WRITE_ID = "strato.write_id"
#: Commit-info key holding the caller's idempotency key of a write, to find its commit again.
_IDEMPOTENCY_KEY = "strato.idempotency_key"
#: Commit-info key holding the write time (µs) stamped on every row of the commit.
_CREATED_US = "strato.created_us"

#: Table property set when a newer view version replaced this storage: ``view@vN``.
#: Committing it is a metadata change, which Delta makes every concurrent append fail
#: (delta-rs: "Metadata changed since last commit"), so no write lands after it.
_MOVED_TO = "strato.moved_to"

#: Reader features that change what a file list means; a plain Parquet reader cannot honour them.
_UNREADABLE_FEATURES = frozenset({"deletionVectors", "columnMapping"})


def _writer_properties(schema: pa.Schema) -> WriterProperties:
    """Parquet settings per column: no dictionary for floating-point columns.

    Feature values in floating point are nearly all distinct, so a dictionary page never
    pays off, yet building and then abandoning it made writes 3-4x slower (measured: 100K
    rows x 100 float64 features, 1.9-2.4 s with dictionaries, 0.6-0.9 s without).
    """
    no_dictionary = ColumnProperties(dictionary_enabled=False)
    floats = {
        f.name: no_dictionary
        for f in schema
        if pa.types.is_floating(f.type)
        or (pa.types.is_fixed_size_list(f.type) and pa.types.is_floating(f.type.value_type))
    }
    return WriterProperties(column_properties=floats or None)


class DeltaTables:
    """The Delta tables of one project under `root`: ``{root}/{project}/{table_name}``.

    `root` is a folder or any URI delta-rs supports (``s3://bucket/prefix``…), reached with
    `storage_options` (delta-rs's keys, resolved by `strato.config`; see `offline.storage`).
    """

    def __init__(self, root: str, project: str, storage_options: Mapping[str, str] | None = None) -> None:
        self.root = str(root).rstrip("/")
        self.project = project
        self.storage_options: dict[str, str] = dict(storage_options or {})

    def __repr__(self) -> str:
        return f"DeltaTables({self.root!r}, {self.project!r})"  # never the options: they hold secrets

    def open(self, table_name: str, *, version: TableVersion | None = None) -> DeltaTable | None:
        """The table as delta-rs sees it (at `version`), or None if it does not exist."""
        return _open(self.path(table_name), self._options, version=version)

    @property
    def _options(self) -> dict[str, str] | None:
        return self.storage_options or None

    def path(self, table_name: str) -> str:
        if not table_name or "/" in table_name or table_name in (".", ".."):
            raise UserError(f"invalid table name {table_name!r}")
        return f"{self.root}/{self.project}/{table_name}"

    # ------------------------------------------------------------------ writes

    def append(
        self,
        table_name: str,
        rows: pa.Table | pa.RecordBatchReader,
        *,
        idempotency_key: str | None = None,
        created_us: int | None = None,
        transactions: Mapping[str, int] | None = None,
        expected_transactions: Mapping[str, int | None] | None = None,
    ) -> TableVersion:
        """Append `rows` in one atomic commit and return the version it created.

        Creates the table on its first write. Nullable columns the table lacks are added
        to its schema (old rows read null, design rule 6); a missing or retyped column is a
        `SchemaError` and nothing is written. An `idempotency_key` is recorded in the commit
        itself, as a Delta application transaction, so `written_as` finds it however the
        writer ended; `created_us` (the write time on the rows) is recorded beside it.
        `transactions` (application id → version) go into the same commit: the Kafka consumer
        records the next offset per topic-partition there, so rows and offsets land together.
        `expected_transactions` (application id → the version the writer read, None: none) fence
        that: if the table holds another version for one of them, `OffsetsMovedError` and
        nothing is written; a commit racing this one on the same ids fails Delta's own
        concurrent-transaction check (a retryable `BackendUnavailable`). A table `retire`d by a newer view version takes no more rows: `ConflictError`, and
        nothing is written.
        """
        path = self.path(table_name)
        write_id = uuid.uuid4().hex
        metadata = {_WRITE_ID: write_id}
        app_transactions: list[Transaction] = []
        if idempotency_key is not None:
            metadata[_IDEMPOTENCY_KEY] = idempotency_key
            app_transactions.append(Transaction(_app_id(idempotency_key), 1))
        app_transactions.extend(Transaction(app_id, v) for app_id, v in (transactions or {}).items())
        if created_us is not None:
            metadata[_CREATED_US] = str(created_us)
        commit = CommitProperties(custom_metadata=metadata, app_transactions=app_transactions or None)
        properties = _writer_properties(rows.schema)
        with _mapped_errors(table_name):
            table = _open(path, self._options)
            if table is None:
                _check_transactions(table_name, None, expected_transactions)
                write_deltalake(
                    path,
                    rows,
                    mode="append",
                    commit_properties=commit,
                    writer_properties=properties,
                    storage_options=self._options,
                )
                created = DeltaTable(path, storage_options=self._options)
                version = _find_commit(created, write_id)
                moved_to = _moved_to(created)
                if moved_to:  # retired while this write created it: the rows are there, but stranded
                    raise ConflictError(
                        f"{_moved_message(moved_to)} while writing; this batch landed in the retired "
                        f"storage {table_name!r} (version {version}), not in the current one: write it again"
                    )
                return version
            _refuse_if_moved(table)
            _check_transactions(table_name, table, expected_transactions)
            existing = pa.schema(table.schema().to_arrow())
            added = _check_schema(table_name, existing, rows.schema)
            # A table object's state moves to exactly the version its own write committed,
            # even if other writers committed in between.
            try:
                write_deltalake(
                    table,
                    rows,
                    mode="append",
                    schema_mode="merge" if added else None,
                    commit_properties=commit,
                    writer_properties=properties,
                )
            except CommitFailedError:
                fresh = _open(path, self._options)
                if fresh is not None:
                    _refuse_if_moved(fresh)  # the conflict was the retire commit
                raise
            return table.version()

    def written_as(self, table_name: str, idempotency_key: str) -> tuple[TableVersion, int | None] | None:
        """(version, write time µs) of the commit that recorded `idempotency_key`, or None."""
        with _mapped_errors(table_name):
            table = self.open(table_name)
            if table is None or table.transaction_version(_app_id(idempotency_key)) is None:
                return None
            for commit in table.history():
                if commit.get(_IDEMPOTENCY_KEY) == idempotency_key:
                    created = commit.get(_CREATED_US)
                    return int(commit["version"]), int(created) if created is not None else None
        raise BackendFailure(
            f"Delta table {table_name!r}: write {idempotency_key!r} is recorded as a transaction "
            "but its commit is missing from the log"
        )

    def transaction_versions(self, table_name: str, app_ids: Iterable[str]) -> dict[str, int | None]:
        """The version each application id last committed to the table (None: never, or no table)."""
        ids = list(app_ids)
        with _mapped_errors(table_name):
            table = self.open(table_name)
            if table is None:
                return dict.fromkeys(ids)
            return {app_id: table.transaction_version(app_id) for app_id in ids}

    def compact(self, table_name: str) -> int:
        """Merge the table's small files (Delta OPTIMIZE, compact): how many files it replaced.

        One new version holding the same rows, so every reader sees the same data before and
        after; older versions keep their files (until a vacuum), so time travel still works.
        Many small ingest commits would otherwise make every read open thousands of files.
        """
        with _mapped_errors(table_name):
            table = self.open(table_name)
            if table is None or len(table.file_uris()) < 2:
                return 0
            _refuse_if_moved(table)
            metrics = table.optimize.compact()
            return int(metrics.get("numFilesRemoved", 0))

    def retire(self, table_name: str, moved_to: str, schema: pa.Schema) -> TableVersion:
        """Close the table to writes because view version `moved_to` (``view@vN``) replaced it.

        From the returned version on, every `append` fails, including those already under
        way (Delta refuses an append committed over a metadata change). A table that does
        not exist yet is created empty with `schema`, so a late first write is fenced too.
        """
        path = self.path(table_name)
        with _mapped_errors(table_name):
            if _open(path, self._options) is None:
                with contextlib.suppress(Exception):  # a concurrent first write may create it first
                    write_deltalake(path, schema.empty_table(), mode="append", storage_options=self._options)
            return self._set_moved_to(path, moved_to)

    def reopen(self, table_name: str) -> None:
        """Undo `retire` (an apply that failed before it was committed); a no-op if not retired."""
        path = self.path(table_name)
        with _mapped_errors(table_name):
            table = _open(path, self._options)
            if table is not None and _moved_to(table):
                self._set_moved_to(path, "")

    def _set_moved_to(self, path: str, value: str) -> TableVersion:
        for attempt in range(20):  # a metadata commit can lose a race to concurrent appends
            table = DeltaTable(path, storage_options=self._options)
            try:
                # Strato's own key is not a Delta property, hence not raise_if_not_exists.
                table.alter.set_table_properties({_MOVED_TO: value}, raise_if_not_exists=False)
                return table.version()
            except CommitFailedError:
                if attempt == 19:
                    raise
        raise AssertionError("unreachable")

    def drop(self, table_name: str) -> None:
        """Delete the table and all its history; a missing table is not an error."""
        path = self.path(table_name)
        if storage.is_remote(path):
            with _mapped_errors(table_name):
                storage.delete_tree(path, self.storage_options)
            return
        shutil.rmtree(path.removeprefix("file://"), ignore_errors=True)

    # ------------------------------------------------------------------ reads

    def snapshot(self, table_name: str, *, as_of: TableVersion | datetime | None = None) -> TableSnapshot | None:
        """One committed version of the table, or None if it did not exist (yet).

        `as_of` an int pins that version (unknown → `NotFoundError`); a datetime picks the
        version current at that time, and None if the table was created after it.
        """
        path = self.path(table_name)
        with _mapped_errors(table_name):
            table = _open(path, self._options)
            if table is None:
                return None
            if isinstance(as_of, datetime):
                when = as_of if as_of.tzinfo else as_of.replace(tzinfo=UTC)
                if storage.is_remote(path):
                    # Object stores date files in whole seconds (S3's Last-Modified), which is what
                    # delta-rs's timestamp lookup reads; the commits' own times are in ms.
                    current = _version_at(table, when)
                    if current is None:
                        return None
                    table.load_as_version(current)
                else:
                    table.load_as_version(when)
                    if table.version() == 0 and _commit_time(path, 0, self._options) > when:
                        return None
            elif as_of is not None:
                as_of = _version_number(as_of)
                if as_of < 0 or as_of > table.version():
                    raise NotFoundError(f"table {table_name!r} has no version {as_of}; latest is {table.version()}")
                try:
                    table.load_as_version(as_of)
                except DeltaError as exc:  # its log was cleaned up
                    raise NotFoundError(f"table {table_name!r} has no version {as_of} any more: {exc}") from exc
            _check_readable(table_name, table)
            return TableSnapshot(
                name=table_name,
                path=path,
                version=table.version(),
                files=tuple(table.file_uris()),
                schema=pa.schema(table.schema().to_arrow()),
                storage_options=self.storage_options,
            )

    def version(self, table_name: str) -> TableVersion | None:
        """The latest committed version, or None if the table does not exist."""
        with _mapped_errors(table_name):
            table = self.open(table_name)
            return None if table is None else table.version()

    def newest(self, table_name: str, column: str) -> Any:
        """The greatest value of `column` in the latest version, from the files' statistics
        (no data read); None for no table, no rows or no statistics."""
        with _mapped_errors(table_name):
            table = self.open(table_name)
            if table is None:
                return None
            actions = pa.table(table.get_add_actions(flatten=True))
            name = f"max.{column}"
            if name not in actions.column_names or actions.num_rows == 0:
                return None
            return pa.compute.max(actions.column(name)).as_py()

    def history(self, table_name: str) -> list[dict[str, Any]]:
        """The commit log, oldest first: version, timestamp (UTC), operation, rows_added."""
        with _mapped_errors(table_name):
            table = self.open(table_name)
            if table is None:
                return []
            return [
                {
                    "version": commit["version"],
                    "timestamp": datetime.fromtimestamp(commit["timestamp"] / 1000, tz=UTC),
                    "operation": commit.get("operation"),
                    "rows_added": (commit.get("operationMetrics") or {}).get("num_added_rows"),
                }
                for commit in reversed(table.history())
            ]


def _app_id(idempotency_key: str) -> str:
    return f"strato.write:{idempotency_key}"


def _version_number(value: object) -> int:
    """An int-like version (numpy integers too, as versions come back from frames), never a bool."""
    try:
        if isinstance(value, bool):
            raise TypeError
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise UserError(f"as_of must be a table version (int) or a datetime, got {value!r}") from None


def _open(
    path: str, options: Mapping[str, str] | None = None, *, version: TableVersion | None = None
) -> DeltaTable | None:
    try:
        return DeltaTable(path, version=version, storage_options=dict(options) if options else None)
    except TableNotFoundError:
        return None


def _moved_to(table: DeltaTable) -> str:
    return str(table.metadata().configuration.get(_MOVED_TO) or "")


def _moved_message(moved_to: str) -> str:
    view, _, version = moved_to.rpartition("@v")
    return f"feature view {view!r} moved to version {version}"


def _refuse_if_moved(table: DeltaTable) -> None:
    moved_to = _moved_to(table)
    if moved_to:
        raise ConflictError(
            f"{_moved_message(moved_to)} while writing; nothing written. Write again: the next attempt "
            f"goes to version {moved_to.rpartition('@v')[2]} (if this repeats, the apply that made it was "
            "interrupted: run it again)"
        )


def _find_commit(table: DeltaTable, write_id: str) -> TableVersion:
    """The version of the commit carrying `write_id`, looked up in the newest commits first."""
    for limit in (8, None):
        for commit in table.history(limit):
            if commit.get(_WRITE_ID) == write_id:
                return int(commit["version"])
    raise BackendFailure(f"Delta table {table.table_uri}: committed write {write_id} is missing from its log")


def _version_at(table: DeltaTable, when: datetime) -> TableVersion | None:
    """The newest version whose commit time (commitInfo, ms) is at or before `when`; None: none is."""
    limit = when.timestamp() * 1000
    found = [int(c["version"]) for c in table.history() if c.get("timestamp") is not None and c["timestamp"] <= limit]
    return max(found) if found else None


def _commit_time(path: str, version: TableVersion, options: Mapping[str, str] | None = None) -> datetime:
    # Only a table loaded at its latest version numbers its history correctly (delta-rs 1.6).
    for commit in DeltaTable(path, storage_options=dict(options) if options else None).history():
        if commit["version"] == version:
            return datetime.fromtimestamp(commit["timestamp"] / 1000, tz=UTC)
    raise NotFoundError(f"Delta table at {path}: version {version} is no longer in its log")


def _check_readable(table_name: str, table: DeltaTable) -> None:
    features = set(table.protocol().reader_features or ()) & _UNREADABLE_FEATURES
    if features:
        raise BackendFailure(
            f"table {table_name!r} uses Delta reader features {sorted(features)}, "
            "which a snapshot's plain file list cannot express"
        )


def _check_schema(table_name: str, existing: pa.Schema, incoming: pa.Schema) -> bool:
    """Refuse missing or retyped columns; return whether `incoming` adds (nullable) columns."""
    missing = [name for name in existing.names if name not in incoming.names]
    if missing:
        raise SchemaError(f"table {table_name!r}: rows lack the column(s) {missing}")
    added = False
    for field in incoming:
        if field.name not in existing.names:
            if not field.nullable:
                raise SchemaError(
                    f"table {table_name!r}: new column {field.name!r} must be nullable (old rows read null)"
                )
            added = True
            continue
        have = existing.field(field.name).type
        if _canonical(have) != _canonical(field.type):
            raise SchemaError(
                f"table {table_name!r}, column {field.name!r}: rows have type {field.type}, the table has {have}"
            )
    return added


def _canonical(t: pa.DataType) -> str:
    """A type as Delta stores it, ignoring Arrow-only distinctions (large/view/fixed-size, child names)."""
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "string"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_binary_view(t):
        return "binary"
    if pa.types.is_fixed_size_list(t) or pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_list_view(t):
        return f"list<{_canonical(t.value_type)}>"
    if pa.types.is_map(t):
        return f"map<{_canonical(t.key_type)},{_canonical(t.item_type)}>"
    if pa.types.is_struct(t):
        return "struct<" + ",".join(f"{f.name}:{_canonical(f.type)}" for f in t) + ">"
    return str(t)


#: delta-rs reports bad rows as generic errors; these phrases mark the caller's fault.
_BAD_INPUT = ("Invalid data found", "Schema error", "Invalid data type")


@contextlib.contextmanager
def _mapped_errors(table_name: str) -> Iterator[None]:
    """Turn delta-rs exceptions into Strato's: conflicts and IO are transient, the rest terminal."""
    try:
        yield
    except StratoError:
        raise
    except (CommitFailedError, OSError) as exc:
        raise BackendUnavailable(f"Delta table {table_name!r}: {exc}") from exc
    except SchemaMismatchError as exc:
        raise SchemaError(f"table {table_name!r}: {exc}") from exc
    except TableNotFoundError as exc:
        raise NotFoundError(f"Delta table {table_name!r} does not exist: {exc}") from exc
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        raise SchemaError(f"table {table_name!r}: rows cannot be stored: {exc}") from exc
    except Exception as exc:  # DeltaError, DeltaProtocolError, and the bare Exceptions delta-rs raises
        message = str(exc).split("\n   0:")[0]  # drop the Rust backtrace
        if any(phrase in message for phrase in _BAD_INPUT):
            raise SchemaError(f"table {table_name!r}: rows cannot be stored: {message}") from exc
        raise BackendFailure(f"Delta table {table_name!r}: {message}") from exc


def _check_transactions(table_name: str, table: DeltaTable | None, expected: Mapping[str, int | None] | None) -> None:
    """Refuse a fenced append whose application transactions moved since the writer read them."""
    for app_id, version in (expected or {}).items():
        found = None if table is None else table.transaction_version(app_id)
        if found != version:
            raise OffsetsMovedError(
                f"Delta table {table_name!r}: {app_id} is at {found} in history, not {version} as read; "
                "another writer recorded it first (nothing written)"
            )
