"""The registry's schema version and the ordered steps that upgrade an older registry.

A registry records the version of its schema in ``strato_schema`` (one row, one column).
Version 1 is the schema Strato shipped before the table existed, so a database with
``strato_projects`` but no ``strato_schema`` is version 1. `STEPS[i]` upgrades version
``i + 1`` to ``i + 2``; `LATEST` is the version this Strato writes.

`SQLRegistry.open` calls `upgrade` inside its one write transaction, which already serializes
concurrent openers (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: an advisory lock), so a step runs
once however many processes open an old registry at the same moment, and a failing step
leaves the registry as it was (both databases run DDL inside the transaction).

Steps carry their own table definitions instead of importing `sql.py`'s: the current tables
may change again later, and a step must keep doing exactly what it did when it was written.

Adding a step: change the tables in `sql.py`, append a function ``(conn, dialect) -> None``
to `STEPS` whose docstring says what it changes, and extend the contract test
(`tests/contract/registry/test_schema_migrations.py`) so a registry of the previous version
is upgraded and still reads.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    DateTime,
    Dialect,
    ForeignKey,
    ForeignKeyConstraint,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    insert,
    inspect,
    select,
)

from strato.errors import BackendFailure

SCHEMA_TABLE = "strato_schema"
_schema_metadata = MetaData()
schema_table = Table(SCHEMA_TABLE, _schema_metadata, Column("version", Integer, nullable=False))

Step = Callable[[Connection, Dialect], None]


def _v2_online_progress(conn: Connection, dialect: Dialect) -> None:
    """Version 1 → 2: add ``strato_online_progress``, drop ``strato_watermarks``.

    A watermark was the event time where a view's last materialization ended; progress is
    now kept per storage (a view version's table) as a table version and an event-time
    bound, which a watermark cannot be turned into. The watermarks are discarded: the next
    incremental materialization of each view finds no progress and reloads, which is harmless.
    Registries made between the two releases may already have the new table and lack the old
    one, so both changes are made only where needed.
    """
    del dialect  # portable DDL; kept for steps that need dialect-specific statements
    metadata = MetaData()
    Table("strato_projects", metadata, Column("project", String(128), primary_key=True))
    progress = Table(
        "strato_online_progress",
        metadata,
        Column("project", String(128), ForeignKey("strato_projects.project"), primary_key=True),
        Column("storage", String(256), primary_key=True),
        Column("table_version", Integer, nullable=False),
        Column("until", DateTime(timezone=True), nullable=True),
    )
    progress.create(conn, checkfirst=True)
    if inspect(conn).has_table("strato_watermarks"):
        Table("strato_watermarks", metadata).drop(conn)


def _write_stats(conn: Connection, dialect: Dialect) -> None:
    """Add ``strato_write_stats`` (per storage and Delta version, the
    statistics of the write that committed it). Older writes simply have none."""
    del dialect
    metadata = MetaData()
    Table("strato_projects", metadata, Column("project", String(128), primary_key=True))
    Table(
        "strato_write_stats",
        metadata,
        Column("project", String(128), ForeignKey("strato_projects.project"), primary_key=True),
        Column("storage", String(256), primary_key=True),
        Column("table_version", Integer, primary_key=True),
        Column("written_at", DateTime(timezone=True), nullable=False),
        Column("row_count", Integer, nullable=False),
        Column("quarantined", Integer, nullable=False),
        Column("stats_json", Text, nullable=False),
    ).create(conn, checkfirst=True)


def _access_control(conn: Connection, dialect: Dialect) -> None:
    """Add the access-control tables: ``strato_access`` (on/off per project), ``strato_tokens``
    (hashed API tokens), ``strato_grants`` (each token's roles) and ``strato_audit``.

    Purely additive: every project of an upgraded registry starts with access control off,
    which is how it behaved before (`strato access enable` turns it on).
    """
    del dialect  # portable DDL
    metadata = MetaData()
    Table("strato_projects", metadata, Column("project", String(128), primary_key=True))
    Table(
        "strato_access",
        metadata,
        Column("project", String(128), ForeignKey("strato_projects.project"), primary_key=True),
        Column("enabled", Boolean, nullable=False),
        Column("changed_at", DateTime(timezone=True), nullable=False),
    )
    Table(
        "strato_tokens",
        metadata,
        Column("project", String(128), ForeignKey("strato_projects.project"), primary_key=True),
        Column("id", String(32), primary_key=True),
        Column("name", String(128), nullable=False),
        Column("secret_sha256", String(64), nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("created_by", String(256), nullable=False),
        Column("revoked_at", DateTime(timezone=True), nullable=True),
    )
    Table(
        "strato_grants",
        metadata,
        Column("project", String(128), primary_key=True),
        Column("token_id", String(32), primary_key=True),
        Column("position", Integer, primary_key=True, autoincrement=False),
        Column("role", String(16), nullable=False),
        Column("scope_kind", String(32), nullable=False),
        Column("scope_name", String(128), nullable=True),
        ForeignKeyConstraint(["project", "token_id"], ["strato_tokens.project", "strato_tokens.id"]),
    )
    Table(
        "strato_audit",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("project", String(128), nullable=False, index=True),
        Column("at", DateTime(timezone=True), nullable=False),
        Column("principal", String(256), nullable=False),
        Column("action", String(32), nullable=False),
        Column("object", String(300), nullable=False),
        Column("allowed", Boolean, nullable=False),
        Column("reason", Text, nullable=False),
        Column("via", String(16), nullable=False),
        Column("client", String(64), nullable=False),
        Column("count", Integer, nullable=False),
    )
    for name in ("strato_access", "strato_tokens", "strato_grants", "strato_audit"):
        metadata.tables[name].create(conn, checkfirst=True)


def _training_sets(conn: Connection, dialect: Dialect) -> None:
    """Add ``strato_training_sets``, one row per registered training set version.

    Nothing existing changes: a registry without training sets simply has none.
    """
    del dialect  # portable DDL
    metadata = MetaData()
    Table("strato_projects", metadata, Column("project", String(128), primary_key=True))
    Table(
        "strato_training_sets",
        metadata,
        Column("project", String(128), ForeignKey("strato_projects.project"), primary_key=True),
        Column("name", String(128), primary_key=True),
        Column("version", Integer, primary_key=True, autoincrement=False),
        Column("service", String(128), nullable=False),
        Column("service_version", Integer, nullable=False),
        Column("row_count", Integer, nullable=False),
        Column("spec_json", Text, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
    ).create(conn, checkfirst=True)


def _computed_intervals(conn: Connection, dialect: Dialect) -> None:
    """Add ``strato_computed_intervals``: per storage and batch transformation (its query's
    fingerprint), the event-time intervals ``[start_at, end_at)`` already computed and written.

    Purely additive: views without a SqlSource have none, and `strato backfill` on an upgraded
    registry finds nothing computed yet.
    """
    del dialect  # portable DDL
    metadata = MetaData()
    Table("strato_projects", metadata, Column("project", String(128), primary_key=True))
    Table(
        "strato_computed_intervals",
        metadata,
        Column("project", String(128), ForeignKey("strato_projects.project"), primary_key=True),
        Column("storage", String(256), primary_key=True),
        Column("transform", String(64), primary_key=True),
        Column("start_at", DateTime(timezone=True), primary_key=True),
        Column("end_at", DateTime(timezone=True), nullable=False),
    ).create(conn, checkfirst=True)


#: The upgrade steps, oldest first: `STEPS[i]` takes version ``i + 1`` to ``i + 2``.
STEPS: list[Step] = [_v2_online_progress, _access_control, _write_stats, _training_sets, _computed_intervals]
LATEST = len(STEPS) + 1


def stored_version(conn: Connection) -> int | None:
    """The schema version of the registry on `conn`; None when there is no registry yet."""
    tables = inspect(conn)
    if not tables.has_table(SCHEMA_TABLE):
        return 1 if tables.has_table("strato_projects") else None
    versions = list(conn.execute(select(schema_table.c.version)).scalars())
    if len(versions) != 1:
        raise BackendFailure(
            f"registry table {SCHEMA_TABLE} holds {len(versions)} rows, expected one; the registry is damaged"
        )
    version: int = versions[0]
    return version


def check_known(version: int) -> None:
    """Refuse a registry written by a newer Strato: its tables may mean something else."""
    if version > LATEST:
        raise BackendFailure(
            f"registry schema version {version} is newer than this Strato (knows {LATEST}); upgrade strato"
        )


def upgrade(conn: Connection, create_latest: Callable[[Connection], None]) -> int | None:
    """Bring the registry on `conn` to `LATEST`, inside the caller's write transaction.

    A database without a registry gets the current tables from `create_latest` and is
    stamped `LATEST`; an older registry runs the steps after its version. Returns the
    version found (None for a new registry), so callers and tests can tell what was done.
    """
    found = stored_version(conn)
    if found is None:
        create_latest(conn)
        schema_table.create(conn, checkfirst=True)
        conn.execute(insert(schema_table).values(version=LATEST))
        return None
    check_known(found)
    if found == LATEST:
        return found
    for step in STEPS[found - 1 :]:
        step(conn, conn.dialect)
    schema_table.create(conn, checkfirst=True)
    conn.execute(delete(schema_table))
    conn.execute(insert(schema_table).values(version=LATEST))
    return found
