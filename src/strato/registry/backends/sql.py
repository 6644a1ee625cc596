"""`SQLRegistry`: the registry on any SQLAlchemy database, SQLite by default.

Everything is written through SQLAlchemy Core with portable statements, so the same code
runs on a ``sqlite:///`` file today and a ``postgresql://`` URL later. Three tables, all
keyed by project so projects sharing a database never see each other:

* ``strato_projects``   one row per project; its ``applies`` counter numbers each apply and,
                        being updated first, serializes concurrent applies of one project.
* ``strato_objects``    the history: one row per (kind, name, version), never updated.
* ``strato_online_progress`` per storage (a view version's table), how much of its
                        history is known to be online: a table version and an event-time bound.
* ``strato_write_stats`` per storage and Delta version, the statistics of the write that
                        committed it (JSON), so `strato describe` can show drift.
* ``strato_access``, ``strato_tokens``, ``strato_grants``, ``strato_audit``: access control
                        (on/off per project, API tokens stored as hashes with their grants,
                        the audit log); `strato.access` decides what they allow.
* ``strato_training_sets`` one row per registered training set version: its service, the
                        view and table versions it pinned, digests and statistics (JSON).
* ``strato_computed_intervals`` per storage and batch transformation (query fingerprint),
                        the event-time intervals already computed, normalized (disjoint).

SQLite gets WAL (readers never block the writer) and enforced foreign keys, and every
transaction is started by us: ``BEGIN IMMEDIATE`` for writes, so an apply takes the write
lock before it reads the state it checks, and a plain ``BEGIN`` for reads, so several
SELECTs see one snapshot (the sqlite3 driver's own transaction handling does neither).

PostgreSQL (``postgresql://`` URLs, driven by psycopg 3) gets the same guarantees its own way:
writes run at READ COMMITTED and an apply first updates its project's row, a row lock that
makes a second apply of that project wait until the first commits; each later statement
then sees what the first wrote, so the re-plan check refuses a stale plan. Reads run at
REPEATABLE READ, READ ONLY: one snapshot, never blocked, never a serialization failure.
Creating the tables takes a transaction-scoped advisory lock, so processes opening a new
database at once do not race on CREATE TABLE.

The schema is versioned (``strato_schema``); an open that may write upgrades an older
registry in the same transaction, by the steps in `migrations`.
"""

from __future__ import annotations

import builtins  # `SQLRegistry.list` shadows the builtin inside the class body
import difflib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Self

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    DateTime,
    Dialect,
    Engine,
    ForeignKey,
    ForeignKeyConstraint,
    Integer,
    MetaData,
    Row,
    String,
    Table,
    Text,
    and_,
    create_engine,
    delete,
    event,
    func,
    insert,
    inspect,
    select,
    update,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, make_url
from sqlalchemy.types import TypeDecorator

from strato import intervals
from strato.definitions.entity import Entity
from strato.definitions.feature_service import FeatureService
from strato.definitions.feature_view import FeatureView
from strato.definitions.on_demand import OnDemandFeatureView
from strato.definitions.plan import (
    Action,
    Basis,
    Definition,
    ObjectKind,
    Plan,
    fingerprint,
    kind_of,
    make_plan,
    split_view_ref,
)
from strato.errors import (
    BackendFailure,
    BackendUnavailable,
    ConfigError,
    ConflictError,
    DefinitionError,
    NotFoundError,
    RegistryNotFoundError,
    UserError,
)
from strato.intervals import Interval
from strato.registry.access_records import AuditRow, GrantRow, TokenRow
from strato.registry.backends import migrations
from strato.registry.base import (
    Head,
    OnlineProgress,
    RegistryStore,
    Revision,
    TrainingSetRecord,
    WriteStats,
    check_kind,
    describe,
    next_versions,
    not_found,
)

SQLITE_BUSY_TIMEOUT_S = 30.0
"""How long a SQLite registry call waits for another process's write transaction."""
_WRITE = "strato_write"  # execution option: this transaction writes, so BEGIN IMMEDIATE
_TRANSIENT = ("database is locked", "database is busy", "could not connect", "connection refused", "server closed")
#: PostgreSQL error codes worth a retry: connection exceptions (class 08), the server
#: shutting down or starting up, and the losers of a serialization or deadlock check.
_PG_TRANSIENT_CODES = ("57P01", "57P02", "57P03")
_PG_RETRY_CODES = ("40001", "40P01")
#: `pg_advisory_xact_lock` key held while creating the tables ("strato" in ASCII).
_PG_SCHEMA_LOCK = 0x73747261746F


class _UTCDateTime(TypeDecorator[datetime]):
    """Timestamps stored in UTC and read back timezone-aware, whatever the database keeps.

    SQLite has no timezone type: it stores the naive UTC clock, which we re-tag on read.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = _as_utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else _as_utc(value)


def _as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


_metadata = MetaData()
_projects = Table(
    "strato_projects",
    _metadata,
    Column("project", String(128), primary_key=True),
    Column("applies", Integer, nullable=False),
    Column("created_at", _UTCDateTime, nullable=False),
)
_objects = Table(
    "strato_objects",
    _metadata,
    Column("project", String(128), ForeignKey("strato_projects.project"), primary_key=True),
    Column("kind", String(32), primary_key=True),
    Column("name", String(128), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("action", String(16), nullable=False),
    Column("data_version", Integer, nullable=True),
    Column("spec_json", Text, nullable=False),
    Column("author", String(256), nullable=False),
    Column("applied_at", _UTCDateTime, nullable=False),
    Column("apply_id", Integer, nullable=False),  # the project's apply counter when written
)
_online_progress = Table(
    "strato_online_progress",
    _metadata,
    Column("project", String(128), ForeignKey("strato_projects.project"), primary_key=True),
    Column("storage", String(256), primary_key=True),
    Column("table_version", Integer, nullable=False),
    Column("until", _UTCDateTime, nullable=True),
)
_write_stats = Table(
    "strato_write_stats",
    _metadata,
    Column("project", String(128), ForeignKey("strato_projects.project"), primary_key=True),
    Column("storage", String(256), primary_key=True),
    Column("table_version", Integer, primary_key=True),
    Column("written_at", _UTCDateTime, nullable=False),
    Column("row_count", Integer, nullable=False),
    Column("quarantined", Integer, nullable=False),
    Column("stats_json", Text, nullable=False),
)

_access = Table(
    "strato_access",
    _metadata,
    Column("project", String(128), ForeignKey("strato_projects.project"), primary_key=True),
    Column("enabled", Boolean, nullable=False),
    Column("changed_at", _UTCDateTime, nullable=False),
)
_tokens = Table(
    "strato_tokens",
    _metadata,
    Column("project", String(128), ForeignKey("strato_projects.project"), primary_key=True),
    Column("id", String(32), primary_key=True),
    Column("name", String(128), nullable=False),
    Column("secret_sha256", String(64), nullable=False),
    Column("created_at", _UTCDateTime, nullable=False),
    Column("created_by", String(256), nullable=False),
    Column("revoked_at", _UTCDateTime, nullable=True),
)
_grants = Table(
    "strato_grants",
    _metadata,
    Column("project", String(128), primary_key=True),
    Column("token_id", String(32), primary_key=True),
    Column("position", Integer, primary_key=True, autoincrement=False),
    Column("role", String(16), nullable=False),
    Column("scope_kind", String(32), nullable=False),
    Column("scope_name", String(128), nullable=True),
    ForeignKeyConstraint(["project", "token_id"], ["strato_tokens.project", "strato_tokens.id"]),
)
_audit = Table(
    "strato_audit",
    _metadata,
    Column("id", Integer, primary_key=True),
    Column("project", String(128), nullable=False, index=True),
    Column("at", _UTCDateTime, nullable=False),
    Column("principal", String(256), nullable=False),
    Column("action", String(32), nullable=False),
    Column("object", String(300), nullable=False),
    Column("allowed", Boolean, nullable=False),
    Column("reason", Text, nullable=False),
    Column("via", String(16), nullable=False),
    Column("client", String(64), nullable=False),
    Column("count", Integer, nullable=False),
)

_training_sets = Table(
    "strato_training_sets",
    _metadata,
    Column("project", String(128), ForeignKey("strato_projects.project"), primary_key=True),
    Column("name", String(128), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("service", String(128), nullable=False),
    Column("service_version", Integer, nullable=False),
    Column("row_count", Integer, nullable=False),
    Column("spec_json", Text, nullable=False),  # the rest of the `TrainingSetRecord`
    Column("created_at", _UTCDateTime, nullable=False),
)

_computed_intervals = Table(
    "strato_computed_intervals",
    _metadata,
    Column("project", String(128), ForeignKey("strato_projects.project"), primary_key=True),
    Column("storage", String(256), primary_key=True),
    Column("transform", String(64), primary_key=True),
    Column("start_at", _UTCDateTime, primary_key=True),
    Column("end_at", _UTCDateTime, nullable=False),
)


@contextmanager
def _mapped_errors() -> Iterator[None]:
    """Turn SQLAlchemy errors into Strato's: transient ones (a lock, a dropped connection)
    into `BackendUnavailable`, which callers may retry; everything else into `BackendFailure`.
    """
    try:
        yield
    except sa_exc.IntegrityError as exc:
        # Two writers racing (PostgreSQL: two applies on one object, two first opens of a
        # project) collide on a primary key; the loser succeeds when it replans and retries.
        raise BackendUnavailable(
            f"registry: a concurrent write conflicted with this one; plan and apply again ({exc.orig})"
        ) from exc
    except sa_exc.DBAPIError as exc:
        message = str(exc.orig).lower()
        first_line = (str(exc.orig).strip().splitlines() or [""])[0]  # libpq adds hints on more lines
        code = str(getattr(exc.orig, "sqlstate", "") or "")
        if code in _PG_RETRY_CODES:
            raise BackendUnavailable(
                f"registry: a concurrent transaction conflicted with this one; retry ({first_line})"
            ) from exc
        if code.startswith("08") or code in _PG_TRANSIENT_CODES:
            raise BackendUnavailable(f"registry database is unavailable: {first_line}") from exc
        if exc.connection_invalidated or any(marker in message for marker in _TRANSIENT):
            raise BackendUnavailable(f"registry database is unavailable: {first_line}") from exc
        raise BackendFailure(f"registry database failed: {exc.orig}") from exc
    except sa_exc.SQLAlchemyError as exc:
        raise BackendFailure(f"registry database failed: {exc}") from exc


def _url(target: str) -> URL:
    """A SQLAlchemy URL from a URL, or from a plain path (taken as a SQLite file).

    ``postgresql://`` (and ``postgres://``, as libpq spells it) means psycopg 3, the driver
    Strato installs; an explicit ``postgresql+driver://`` is kept as given.
    """
    if not isinstance(target, str) or not target:
        raise ConfigError(f"registry: expected a database URL or a file path, got {target!r}")
    if "://" not in target:
        return URL.create("sqlite", database=str(Path(target).expanduser()))
    try:
        url = make_url(target)
    except sa_exc.ArgumentError as exc:
        raise ConfigError(f"registry URL {target!r} is invalid: {exc}") from None
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    return url


def _sqlite_file(url: URL) -> Path | None:
    """The file a SQLite URL names; None for an in-memory database or another dialect."""
    database = url.database or ""
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def _create_engine(url: URL, *, create: bool = True) -> Engine:
    file = _sqlite_file(url)
    if file is not None:
        if not create and not file.is_file():
            # sqlite3 would create an empty file on connect: check before connecting.
            raise RegistryNotFoundError(f"no registry at {file} yet; run `strato apply` first")
        if create:
            file.parent.mkdir(parents=True, exist_ok=True)
    options: dict[str, Any] = {}
    if url.get_backend_name() == "postgresql":
        # A pooled connection may outlive a server restart: test it before use, so the
        # first call after the server is back succeeds instead of failing on a dead socket.
        options["pool_pre_ping"] = True
        if url.get_driver_name() == "psycopg":
            options["connect_args"] = {"connect_timeout": 5, "application_name": "strato"}
    elif url.get_backend_name() == "sqlite":
        # Wait for another process's write (an apply, a schema upgrade) instead of failing
        # with "database is locked" after sqlite3's default 5 s, which a loaded machine reaches.
        options["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_S}
    try:
        engine = create_engine(url, **options)
    except sa_exc.NoSuchModuleError:
        raise ConfigError(
            f"registry URL {url.render_as_string(hide_password=True)!r}: unsupported database; "
            "use sqlite:///path or postgresql://..."
        ) from None
    except ImportError as exc:
        raise ConfigError(
            f"registry URL {url.render_as_string()!r} needs a driver that is not installed: {exc}"
        ) from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_connect if create else _sqlite_connect_as_is)
        event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy, not the sqlite3 driver, decide where transactions begin (see `_sqlite_begin`).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def _sqlite_connect_as_is(dbapi_connection: Any, _record: Any) -> None:
    # As `_sqlite_connect`, but without switching the journal mode: that writes the file's
    # header, and an open that may not create must leave a file that is no registry untouched.
    # A registry made by `create` is in WAL mode already (the mode is stored in the file).
    dbapi_connection.isolation_level = None
    dbapi_connection.execute("PRAGMA foreign_keys=ON")


def _sqlite_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(_WRITE) else "BEGIN")


class SQLRegistry(RegistryStore):
    """The registry in a SQL database; see the module docstring for its tables."""

    name: ClassVar[str] = "sqlite"

    def __init__(self, engine: Engine, project: str):
        self._engine = engine
        self._project = project
        self._closed = False
        self._has_progress = True  # False only for a read-only open of a registry older than it
        self._has_stats = True  # likewise for write statistics
        self._has_access = True  # likewise for the access-control tables (access is then off)
        self._has_training_sets = True  # likewise
        self._has_intervals = True  # likewise for batch transformations' computed intervals
        #: The schema version this open upgraded the registry from; None when it upgraded nothing.
        self.upgraded_from: int | None = None

    @classmethod
    def open(cls, url: str, *, project: str, create: bool = True) -> Self:
        if not isinstance(project, str) or not project or len(project) > 128:
            raise ConfigError(
                f"registry: project must be a non-empty string of at most 128 characters, got {project!r}"
            )
        parsed = _url(url)
        engine = _create_engine(parsed, create=create)
        registry = cls(engine, project)
        try:
            if not create:
                # Read as is: no tables made, no project row added. Reads of a project that was
                # never applied find no rows, which is the truth.
                with registry._transaction() as conn:
                    if not inspect(conn).has_table(_projects.name):
                        where = _sqlite_file(parsed) or parsed.render_as_string(hide_password=True)
                        raise RegistryNotFoundError(f"no registry at {where} yet; run `strato apply` first")
                    # An older schema is read as far as it goes (nothing written); a newer one is refused.
                    migrations.check_known(migrations.stored_version(conn) or 1)
                    # A registry made before online progress existed gets its table on the next write.
                    registry._has_progress = inspect(conn).has_table(_online_progress.name)
                    registry._has_stats = inspect(conn).has_table(_write_stats.name)
                    registry._has_access = inspect(conn).has_table(_access.name)
                    registry._has_training_sets = inspect(conn).has_table(_training_sets.name)
                    registry._has_intervals = inspect(conn).has_table(_computed_intervals.name)
                return registry
            with registry._transaction(write=True) as conn:
                if conn.dialect.name == "postgresql":
                    conn.execute(select(func.pg_advisory_xact_lock(_PG_SCHEMA_LOCK)))
                found = migrations.upgrade(conn, _metadata.create_all)
                registry.upgraded_from = found if found is not None and found < migrations.LATEST else None
                known = conn.execute(select(_projects.c.project).where(_projects.c.project == project)).first()
                if known is None:
                    conn.execute(insert(_projects).values(project=project, applies=0, created_at=datetime.now(UTC)))
        except BaseException:
            engine.dispose()
            raise
        return registry

    def check(self) -> builtins.list[str]:
        problems: builtins.list[str] = []
        with self._transaction() as conn:
            inspector = inspect(conn)
            missing = [t.name for t in _metadata.sorted_tables if not inspector.has_table(t.name)]
            if missing:
                problems.append(f"tables {', '.join(missing)} are missing; run `strato apply` to create them")
            version = migrations.stored_version(conn) or 1
            if version < migrations.LATEST:
                problems.append(
                    f"registry schema version {version} is older than this Strato's ({migrations.LATEST}); "
                    "run `strato apply` to upgrade it"
                )
            if _projects.name not in missing:
                known = conn.execute(select(_projects.c.project).where(_projects.c.project == self._project)).first()
                if known is None:
                    problems.append(
                        f"project {self._project!r} is not in this registry; check `project:` in strato.yaml, "
                        "or run `strato apply` to register it"
                    )
        return problems

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._engine.dispose()

    @property
    def project(self) -> str:
        return self._project

    @contextmanager
    def _transaction(self, *, write: bool = False) -> Iterator[Connection]:
        """One transaction: committed if the block succeeds, rolled back if it raises."""
        if self._closed:
            raise BackendFailure(f"registry of project {self._project!r} is closed")
        with _mapped_errors(), self._engine.connect() as conn:
            if write:
                conn.execution_options(**{_WRITE: True})
            if conn.dialect.name == "postgresql":
                # See the module docstring: row locks order writes, a snapshot serves reads.
                if write:
                    conn.execution_options(isolation_level="READ COMMITTED")
                else:
                    conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
            with conn.begin():
                yield conn

    # ------------------------------------------------------------------ writes

    def apply(
        self,
        plan: Plan,
        *,
        author: str,
        before_commit: Callable[[builtins.list[Revision]], None] | None = None,
    ) -> builtins.list[Revision]:
        plan.raise_if_breaking()
        if not isinstance(author, str) or not author.strip():
            raise UserError(f"apply: author must be a non-empty string, got {author!r}")
        for change in plan.changes:
            _check_change_shape(change.kind, change.name, change.action, change.definition)
        writes = [c for c in plan.changes if c.action is not Action.UNCHANGED]
        if not writes:
            return []
        with self._transaction(write=True) as conn:
            apply_id = self._next_apply_id(conn)  # first: on PostgreSQL this row lock serializes applies
            heads = self._heads(conn)
            self._check_plan_is_current(plan, conn, heads)
            applied_at = datetime.now(UTC)
            revisions: list[Revision] = []
            for change in writes:
                head_row = heads.get((change.kind, change.name))
                head = _head(head_row) if head_row is not None else None
                version, data_version = next_versions(change.kind, change.action, head)
                if change.definition is not None:
                    spec = change.definition.to_spec()
                else:
                    assert head_row is not None  # checked by _check_plan_is_current
                    spec = json.loads(head_row.spec_json)
                revisions.append(
                    Revision(
                        change.kind, change.name, version, change.action.value, author, applied_at, spec, data_version
                    )
                )
            conn.execute(
                insert(_objects),
                [
                    {
                        "project": self._project,
                        "kind": r.kind,
                        "name": r.name,
                        "version": r.version,
                        "action": r.action,
                        "data_version": r.data_version,
                        "spec_json": json.dumps(r.spec, sort_keys=True),
                        "author": r.author,
                        "applied_at": r.applied_at,
                        "apply_id": apply_id,
                    }
                    for r in revisions
                ],
            )
            # After the insert, so a service may pin a version this very plan creates.
            self._check_pinned_services(conn, [c.definition for c in writes if c.definition is not None])
            if before_commit is not None:
                before_commit(revisions)  # holding the write lock: no other apply can interleave
        return revisions

    def _next_apply_id(self, conn: Connection) -> int:
        where = _projects.c.project == self._project
        conn.execute(update(_projects).where(where).values(applies=_projects.c.applies + 1))
        return int(conn.execute(select(_projects.c.applies).where(where)).scalar_one())

    def _check_plan_is_current(self, plan: Plan, conn: Connection, heads: Mapping[tuple[str, str], Row[Any]]) -> None:
        """Re-plan inside the transaction and refuse `plan` unless it comes out the same.

        A plan is computed from `current()` before `apply`; another apply may land in
        between. Replanning against what the registry holds now catches that (and hand-made
        plans that do not match the registry), so versions never skip a check.
        """
        desired = [c.definition for c in plan.changes if c.definition is not None]
        new_version = [c.name for c in plan.changes if c.action is Action.NEW_VERSION]
        deletes = [(c.kind, c.name) for c in plan.changes if c.action is Action.DELETE]
        live = self._definitions(conn, [row for row in heads.values() if row.action != Action.DELETE.value])
        where = f"cannot apply this plan to project {self._project!r}"
        moved = [b for b in plan.basis if fingerprint(live.get((b.kind, b.name))) != b.fingerprint]
        if moved:
            details = "; ".join(_moved(b, live.get((b.kind, b.name))) for b in moved)
            raise ConflictError(f"registry changed since this plan; re-plan ({details})")
        try:
            fresh = make_plan(desired, live, new_version=new_version, delete=deletes)
        except DefinitionError as exc:
            raise UserError(f"{where}: {exc}. Plan again against the current registry.") from None
        expected = sorted((c.kind, c.name, c.action.value) for c in fresh.changes)
        given = sorted((c.kind, c.name, c.action.value) for c in plan.changes)
        if expected != given:
            stale = sorted(set(given) - set(expected))
            now = {(k, n): a for k, n, a in expected}
            details = "; ".join(
                f"{describe(k, n)}: plan says {a!r}, registry now says {now.get((k, n), 'nothing')!r}"
                for k, n, a in stale
            )
            raise ConflictError(f"registry changed since this plan; re-plan ({details})")

    def _check_pinned_services(self, conn: Connection, desired: builtins.list[Definition]) -> None:
        """A service pinning ``view@vN`` needs that version to exist and to have its features.

        `make_plan` sees only current versions, so older pinned ones are checked here.
        """
        for service in desired:
            if not isinstance(service, FeatureService):
                continue
            for ref, features in service.features:
                name, pinned = split_view_ref(ref)
                if pinned is None:
                    continue
                row = next((r for r in self._rows(conn, "feature_view", name) if r.version == pinned), None)
                if row is None or row.action == Action.DELETE.value:
                    raise NotFoundError(
                        f"feature service {service.name!r} pins {describe('feature_view', name, pinned)}, "
                        "which does not exist"
                    )
                have = [f["name"] for f in json.loads(row.spec_json)["schema"]]
                missing = [f for f in features if f not in have]
                if missing:
                    raise NotFoundError(
                        f"feature service {service.name!r} uses {ref}:{missing[0]}, "
                        f"but that version has no such feature; it has {have}"
                    )

    # ------------------------------------------------------------------ reads

    def current(self) -> dict[tuple[ObjectKind, str], Definition]:
        with self._transaction() as conn:
            rows = [row for row in self._heads(conn).values() if row.action != Action.DELETE.value]
            return self._definitions(conn, rows)

    def list(self, kind: ObjectKind) -> builtins.list[Definition]:
        kind = check_kind(kind)
        with self._transaction() as conn:
            rows = [row for row in self._heads(conn, kind).values() if row.action != Action.DELETE.value]
            loaded = self._definitions(conn, rows)
        return [loaded[key] for key in sorted(loaded, key=lambda key: key[1])]

    def get(self, kind: ObjectKind, name: str, *, version: int | None = None) -> Definition:
        kind = check_kind(kind)
        if version is not None and (not isinstance(version, int) or isinstance(version, bool) or version < 1):
            raise UserError(f"{describe(kind, name)}: version must be a positive integer, got {version!r}")
        with self._transaction() as conn:
            rows = self._rows(conn, kind, name)
            if not rows:
                live = [k[1] for k, row in self._heads(conn, kind).items() if row.action != Action.DELETE.value]
                raise not_found(kind, name, live, version=version)
            head = rows[-1]
            if version is None or version == head.version:
                if head.action == Action.DELETE.value:
                    raise _deleted(kind, name, head, rows)
                return self._definitions(conn, [head])[(kind, name)]
            wanted = next((row for row in rows if row.version == version), None)
            if wanted is None or wanted.action == Action.DELETE.value:
                readable = [row.version for row in rows if row.action != Action.DELETE.value]
                raise NotFoundError(
                    f"{describe(kind, name, version)} does not exist"
                    + (" (that version is its deletion)" if wanted is not None else "")
                    + f"; readable versions: {', '.join(map(str, readable))}"
                )
            # An old version is read with the entities as they were when it was applied.
            return self._definitions(conn, [wanted], as_of=wanted.apply_id)[(kind, name)]

    def history(self, kind: ObjectKind, name: str) -> builtins.list[Revision]:
        kind = check_kind(kind)
        with self._transaction() as conn:
            rows = self._rows(conn, kind, name)
            if not rows:
                names = conn.execute(
                    select(_objects.c.name)
                    .distinct()
                    .where(_objects.c.project == self._project, _objects.c.kind == kind)
                ).scalars()
                raise not_found(kind, name, names)
        return [_revision(row) for row in rows]

    def revision(self) -> int:
        with self._transaction() as conn:
            applies: int | None = conn.execute(
                select(_projects.c.applies).where(_projects.c.project == self._project)
            ).scalar_one_or_none()
        return applies or 0

    def online_progress(self, table: str) -> OnlineProgress | None:
        if not self._has_progress:
            return None
        with self._transaction() as conn:
            row = conn.execute(
                select(_online_progress.c.table_version, _online_progress.c.until).where(self._progress_key(table))
            ).one_or_none()
        return None if row is None else OnlineProgress(row.table_version, row.until)

    def advance_online_progress(self, table: str, progress: OnlineProgress, *, expected: OnlineProgress | None) -> bool:
        if not isinstance(progress, OnlineProgress):
            raise UserError(f"online progress of {table!r} must be an OnlineProgress, got {progress!r}")
        values = {"table_version": progress.version, "until": progress.until}
        with self._transaction(write=True) as conn:
            if expected is None:
                # Lock the project's row first (a no-op on SQLite, whose BEGIN IMMEDIATE did),
                # so two first claims do not both find nothing and collide on the insert.
                conn.execute(select(_projects.c.project).where(_projects.c.project == self._project).with_for_update())
                if conn.execute(select(_online_progress.c.storage).where(self._progress_key(table))).first():
                    return False
                conn.execute(insert(_online_progress).values(project=self._project, storage=table, **values))
                return True
            same = and_(
                self._progress_key(table),
                _online_progress.c.table_version == expected.version,
                _online_progress.c.until.is_(None)
                if expected.until is None
                else _online_progress.c.until == expected.until,
            )
            return bool(conn.execute(update(_online_progress).where(same).values(**values)).rowcount)

    def computed_intervals(self, table: str, transform: str) -> builtins.list[Interval]:
        if not self._has_intervals:
            return []
        with self._transaction() as conn:
            return self._intervals(conn, table, transform)

    def add_computed_interval(self, table: str, transform: str, interval: Interval) -> builtins.list[Interval]:
        start, end = interval
        if start.tzinfo is None or end.tzinfo is None:
            raise UserError(f"computed interval of {table!r} must be timezone-aware, got {interval!r}")
        with self._transaction(write=True) as conn:
            # The project's row first (SQLite's BEGIN IMMEDIATE already did): two recorders of
            # one storage then merge one after the other, never over each other's reads.
            conn.execute(select(_projects.c.project).where(_projects.c.project == self._project).with_for_update())
            merged = intervals.union(self._intervals(conn, table, transform), [interval])
            conn.execute(delete(_computed_intervals).where(self._intervals_key(table, transform)))
            if merged:
                row = {"project": self._project, "storage": table, "transform": transform}
                conn.execute(insert(_computed_intervals), [{**row, "start_at": s, "end_at": e} for s, e in merged])
        return merged

    def _intervals(self, conn: Connection, table: str, transform: str) -> builtins.list[Interval]:
        rows = conn.execute(
            select(_computed_intervals.c.start_at, _computed_intervals.c.end_at)
            .where(self._intervals_key(table, transform))
            .order_by(_computed_intervals.c.start_at)
        ).all()
        return intervals.normalize((r.start_at, r.end_at) for r in rows)

    def _intervals_key(self, table: str, transform: str) -> Any:
        return and_(
            _computed_intervals.c.project == self._project,
            _computed_intervals.c.storage == table,
            _computed_intervals.c.transform == transform,
        )

    def record_write_stats(self, table: str, stats: WriteStats) -> None:
        if not isinstance(stats, WriteStats):
            raise UserError(f"write statistics of {table!r} must be a WriteStats, got {stats!r}")
        key = and_(
            _write_stats.c.project == self._project,
            _write_stats.c.storage == table,
            _write_stats.c.table_version == stats.version,
        )
        values = {
            "written_at": stats.written_at,
            "row_count": stats.rows,
            "quarantined": stats.quarantined,
            "stats_json": json.dumps(stats.columns, sort_keys=True, allow_nan=False),
        }
        with self._transaction(write=True) as conn:
            if not conn.execute(update(_write_stats).where(key).values(**values)).rowcount:
                row = {"project": self._project, "storage": table, "table_version": stats.version}
                conn.execute(insert(_write_stats).values(**row, **values))

    def write_stats(self, table: str, *, limit: int = 20) -> builtins.list[WriteStats]:
        if not self._has_stats:
            return []
        with self._transaction() as conn:
            rows = conn.execute(
                select(_write_stats)
                .where(_write_stats.c.project == self._project, _write_stats.c.storage == table)
                .order_by(_write_stats.c.table_version.desc())
                .limit(limit)
            ).all()
        return [
            WriteStats(r.table_version, r.written_at, r.row_count, json.loads(r.stats_json), r.quarantined)
            for r in rows
        ]

    # ------------------------------------------------------------------ access control

    def access_enabled(self) -> bool:
        if not self._has_access:
            return False
        with self._transaction() as conn:
            enabled = conn.execute(
                select(_access.c.enabled).where(_access.c.project == self._project)
            ).scalar_one_or_none()
        return bool(enabled)

    def set_access(self, enabled: bool, *, first_token: TokenRow | None = None) -> None:
        with self._transaction(write=True) as conn:
            where = _access.c.project == self._project
            values = {"enabled": bool(enabled), "changed_at": datetime.now(UTC)}
            if conn.execute(select(_access.c.project).where(where)).first() is None:
                conn.execute(insert(_access).values(project=self._project, **values))
            else:
                conn.execute(update(_access).where(where).values(**values))
            if first_token is not None:
                self._insert_token(conn, first_token)

    def add_token(self, token: TokenRow) -> None:
        with self._transaction(write=True) as conn:
            self._insert_token(conn, token)

    def _insert_token(self, conn: Connection, token: TokenRow) -> None:
        conn.execute(
            insert(_tokens).values(
                project=self._project,
                id=token.id,
                name=token.name,
                secret_sha256=token.secret_sha256,
                created_at=token.created_at,
                created_by=token.created_by,
                revoked_at=token.revoked_at,
            )
        )
        if token.grants:
            conn.execute(
                insert(_grants),
                [
                    {
                        "project": self._project,
                        "token_id": token.id,
                        "position": i,
                        "role": g.role,
                        "scope_kind": g.scope_kind,
                        "scope_name": g.scope_name,
                    }
                    for i, g in enumerate(token.grants)
                ],
            )

    def token(self, token_id: str) -> TokenRow | None:
        found = self._load_tokens(token_id)
        return found[0] if found else None

    def tokens(self) -> builtins.list[TokenRow]:
        return self._load_tokens(None)

    def _load_tokens(self, token_id: str | None) -> builtins.list[TokenRow]:
        """Every token (or the one with `token_id`) with its grants, in one snapshot."""
        if not self._has_access:
            return []
        with self._transaction() as conn:
            query = select(_tokens).where(_tokens.c.project == self._project)
            grants_query = select(_grants).where(_grants.c.project == self._project)
            if token_id is not None:
                query = query.where(_tokens.c.id == token_id)
                grants_query = grants_query.where(_grants.c.token_id == token_id)
            rows = builtins.list(conn.execute(query.order_by(_tokens.c.created_at, _tokens.c.id)))
            grants: dict[str, builtins.list[GrantRow]] = {}
            for g in conn.execute(grants_query.order_by(_grants.c.token_id, _grants.c.position)):
                grants.setdefault(g.token_id, []).append(GrantRow(g.role, g.scope_kind, g.scope_name))
        return [
            TokenRow(
                id=r.id,
                name=r.name,
                secret_sha256=r.secret_sha256,
                created_at=r.created_at,
                created_by=r.created_by,
                grants=tuple(grants.get(r.id, ())),
                revoked_at=r.revoked_at,
            )
            for r in rows
        ]

    def revoke_token(self, token_id: str, at: datetime) -> bool:
        with self._transaction(write=True) as conn:
            live = and_(_tokens.c.project == self._project, _tokens.c.id == token_id, _tokens.c.revoked_at.is_(None))
            return bool(conn.execute(update(_tokens).where(live).values(revoked_at=at)).rowcount)

    def record_audit(self, rows: Iterable[AuditRow]) -> None:
        batch = [
            {
                "project": self._project,
                "at": r.at,
                "principal": r.principal[:256],
                "action": r.action[:32],
                "object": r.object[:300],
                "allowed": r.allowed,
                "reason": r.reason,
                "via": r.via[:16],
                "client": r.client[:64],
                "count": r.count,
            }
            for r in rows
        ]
        if not batch or not self._has_access:
            return
        with self._transaction(write=True) as conn:
            conn.execute(insert(_audit), batch)

    def audit(
        self, *, denied_only: bool = False, since: datetime | None = None, limit: int = 100
    ) -> builtins.list[AuditRow]:
        if not self._has_access:
            return []
        query = select(_audit).where(_audit.c.project == self._project)
        if denied_only:
            query = query.where(_audit.c.allowed.is_(False))
        if since is not None:
            query = query.where(_audit.c.at >= since)
        with self._transaction() as conn:
            rows = builtins.list(conn.execute(query.order_by(_audit.c.id.desc()).limit(limit)))
        return [
            AuditRow(
                r.at, r.principal, r.action, r.object, bool(r.allowed), r.reason, r.via, r.client, r._mapping["count"]
            )
            for r in rows
        ]

    def add_training_set(self, record: TrainingSetRecord) -> TrainingSetRecord:
        if not isinstance(record, TrainingSetRecord):
            raise UserError(f"add_training_set: expected a TrainingSetRecord, got {record!r}")
        if not isinstance(record.name, str) or not record.name or len(record.name) > 128:
            raise UserError(f"training set name must be 1-128 characters, got {record.name!r}")
        created_at = datetime.now(UTC)
        with self._transaction(write=True) as conn:
            # Lock the project's row (PostgreSQL), so two adds of one name number apart.
            conn.execute(select(_projects.c.project).where(_projects.c.project == self._project).with_for_update())
            last = conn.execute(
                select(func.max(_training_sets.c.version)).where(
                    _training_sets.c.project == self._project, _training_sets.c.name == record.name
                )
            ).scalar_one_or_none()
            version = (last or 0) + 1
            conn.execute(
                insert(_training_sets).values(
                    project=self._project,
                    name=record.name,
                    version=version,
                    service=record.service,
                    service_version=record.service_version,
                    row_count=record.row_count,
                    spec_json=json.dumps(record.to_spec()),  # column order kept (statistics)
                    created_at=created_at,
                )
            )
        return TrainingSetRecord.from_spec(record.name, version, created_at, record.to_spec())

    def get_training_set(self, name: str, *, version: int | None = None) -> TrainingSetRecord:
        if version is not None and (not isinstance(version, int) or isinstance(version, bool) or version < 1):
            raise UserError(f"training set {name!r}: version must be a positive integer, got {version!r}")
        found = self.list_training_sets(name)
        if not found:
            names = {r.name for r in self.list_training_sets()}
            close = difflib.get_close_matches(name, sorted(names), n=3, cutoff=0.6)
            hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            raise NotFoundError(f"training set {name!r} does not exist{hint}")
        if version is None:
            return found[-1]
        for record in found:
            if record.version == version:
                return record
        raise NotFoundError(
            f"training set {name!r} has no version {version}; it has {', '.join(str(r.version) for r in found)}"
        )

    def list_training_sets(self, name: str | None = None) -> builtins.list[TrainingSetRecord]:
        if not self._has_training_sets:
            return []
        filters = [_training_sets.c.project == self._project]
        if name is not None:
            filters.append(_training_sets.c.name == name)
        query = select(_training_sets).where(*filters).order_by(_training_sets.c.name, _training_sets.c.version)
        with self._transaction() as conn:
            rows = builtins.list(conn.execute(query))
        try:
            return [TrainingSetRecord.from_spec(r.name, r.version, r.created_at, json.loads(r.spec_json)) for r in rows]
        except (KeyError, TypeError, ValueError) as exc:
            raise BackendFailure(f"registry holds an unreadable training set record: {exc}") from exc

    def _progress_key(self, table: str) -> Any:
        return and_(_online_progress.c.project == self._project, _online_progress.c.storage == table)

    # ------------------------------------------------------------------ row helpers

    def _heads(self, conn: Connection, kind: ObjectKind | None = None) -> dict[tuple[str, str], Row[Any]]:
        """The latest row of every object (deleted ones included), keyed by (kind, name)."""
        filters = [_objects.c.project == self._project]
        if kind is not None:
            filters.append(_objects.c.kind == kind)
        latest = (
            select(_objects.c.kind, _objects.c.name, func.max(_objects.c.version).label("version"))
            .where(*filters)
            .group_by(_objects.c.kind, _objects.c.name)
            .subquery()
        )
        query = select(_objects).join(
            latest,
            and_(
                _objects.c.project == self._project,
                _objects.c.kind == latest.c.kind,
                _objects.c.name == latest.c.name,
                _objects.c.version == latest.c.version,
            ),
        )
        return {(row.kind, row.name): row for row in conn.execute(query)}

    def _rows(self, conn: Connection, kind: ObjectKind, name: str) -> builtins.list[Row[Any]]:
        """Every row of one object, oldest first."""
        query = (
            select(_objects)
            .where(_objects.c.project == self._project, _objects.c.kind == kind, _objects.c.name == name)
            .order_by(_objects.c.version)
        )
        return builtins.list(conn.execute(query))

    def _entities(self, conn: Connection, names: set[str], as_of: int | None) -> dict[str, Entity]:
        """Entities by name: their latest stored version, or the latest applied by apply `as_of`.

        A view's spec names its entities; the plan refuses changing an entity's join keys,
        so a current view reads the current entities. An old version reads them as they were.
        """
        if not names:
            return {}
        filters = [
            _objects.c.project == self._project,
            _objects.c.kind == "entity",
            _objects.c.name.in_(sorted(names)),
            _objects.c.action != Action.DELETE.value,
        ]
        if as_of is not None:
            filters.append(_objects.c.apply_id <= as_of)
        found: dict[str, Entity] = {}
        for row in conn.execute(select(_objects).where(*filters).order_by(_objects.c.version)):
            entity = _load(row, {})
            assert isinstance(entity, Entity)
            found[row.name] = entity  # later versions overwrite earlier ones
        return found

    def _definitions(
        self, conn: Connection, rows: builtins.list[Row[Any]], *, as_of: int | None = None
    ) -> dict[tuple[ObjectKind, str], Definition]:
        """Load `rows` (ordered entities, views, services) with the entities their views name."""
        needed = {
            entity for row in rows if row.kind == "feature_view" for entity in json.loads(row.spec_json)["entities"]
        }
        entities = self._entities(conn, needed, as_of)
        order = {"entity": 0, "feature_view": 1, "feature_service": 2, "on_demand_feature_view": 3}
        loaded: dict[tuple[ObjectKind, str], Definition] = {}
        for row in sorted(rows, key=lambda r: (order.get(r.kind, 3), r.name)):
            loaded[(check_kind(row.kind), row.name)] = _load(row, entities)
        return loaded


def _check_change_shape(kind: ObjectKind, name: str, action: Action, definition: Definition | None) -> None:
    """A change must carry the definition it writes, of its own kind and name."""
    if action is Action.DELETE:
        return
    if definition is None:
        raise UserError(f"plan change {action.value} {describe(kind, name)} carries no definition")
    if kind_of(definition) != kind or definition.name != name:
        raise UserError(
            f"plan change {action.value} {describe(kind, name)} carries "
            f"{describe(kind_of(definition), definition.name)}"
        )


def _moved(basis: Basis, now: Definition | None) -> str:
    """How one object differs from what a plan was made against, for the refusal message."""
    kind, name, planned = basis.kind, basis.name, basis.version
    if now is None:
        return f"{describe(kind, name)} was removed"
    if basis.fingerprint is None:
        return f"{describe(kind, name)} was added"
    version = getattr(now, "version", None)
    if version is not None and planned is not None and version != planned:
        return f"{describe(kind, name)} is now version {version}, the plan was made against version {planned}"
    return f"{describe(kind, name)} changed"


def _head(row: Row[Any]) -> Head:
    return Head(version=row.version, action=row.action, data_version=row.data_version)


def _revision(row: Row[Any]) -> Revision:
    return Revision(
        kind=check_kind(row.kind),
        name=row.name,
        version=row.version,
        action=row.action,
        author=row.author,
        applied_at=row.applied_at,
        spec=json.loads(row.spec_json),
        data_version=row.data_version,
    )


def _load(row: Row[Any], entities: dict[str, Entity]) -> Definition:
    """One stored row back as a definition, with the registry's versions set."""
    try:
        spec = json.loads(row.spec_json)
        if row.kind == "entity":
            return Entity.from_spec(spec)
        if row.kind == "feature_view":
            return FeatureView.from_spec(spec, entities, version=row.version, data_version=row.data_version)
        if row.kind == "feature_service":
            return FeatureService.from_spec(spec, version=row.version)
        if row.kind == "on_demand_feature_view":
            return OnDemandFeatureView.from_spec(spec, version=row.version)
    except (DefinitionError, KeyError, TypeError, ValueError) as exc:
        raise BackendFailure(
            f"registry holds an unreadable {describe(row.kind, row.name, row.version)}: {exc}"
        ) from exc
    raise BackendFailure(f"registry holds an object of unknown kind {row.kind!r} named {row.name!r}")


def _deleted(kind: ObjectKind, name: str, head: Row[Any], rows: builtins.list[Row[Any]]) -> NotFoundError:
    readable = [str(row.version) for row in rows if row.action != Action.DELETE.value]
    when = head.applied_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    return NotFoundError(
        f"{describe(kind, name)} was deleted (version {head.version}, by {head.author} at {when}); "
        f"its earlier versions ({', '.join(readable)}) stay readable with version=N"
    )
