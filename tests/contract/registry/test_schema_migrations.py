"""Schema versions: a registry made by an older Strato opens (and is upgraded) in this one.

Version 1 is built here by hand, with the tables as Strato created them before
``strato_schema`` existed (``strato_projects``, ``strato_objects``, ``strato_watermarks``),
so the test does not depend on the code that upgrades it.
"""

from __future__ import annotations

import json
import multiprocessing
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from registry_samples import USER, apply, service, view

from strato import plugins
from strato.errors import BackendFailure
from strato.registry.backends import migrations
from strato.registry.backends.sql import _metadata
from strato.registry.base import OnlineProgress, RegistryStore, TrainingSetRecord

SPAWN = multiprocessing.get_context("spawn")
APPLIED_AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@contextmanager
def _engine(url: str) -> Iterator[sa.Engine]:
    """A plain SQLAlchemy engine on the test's database, outside Strato's code."""
    parsed = sa.make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        Path(parsed.database or "").parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(parsed)
    try:
        yield engine
    finally:
        engine.dispose()


def _moment(engine: sa.Engine) -> datetime:
    # Strato keeps SQLite's timestamps as the naive UTC clock, PostgreSQL's as timestamptz.
    return APPLIED_AT.replace(tzinfo=None) if engine.dialect.name == "sqlite" else APPLIED_AT


def _build_version_1(url: str) -> None:
    """The schema and rows of a registry made by Strato before schema versions existed."""
    metadata = sa.MetaData()
    projects = sa.Table(
        "strato_projects",
        metadata,
        sa.Column("project", sa.String(128), primary_key=True),
        sa.Column("applies", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    objects = sa.Table(
        "strato_objects",
        metadata,
        sa.Column("project", sa.String(128), sa.ForeignKey("strato_projects.project"), primary_key=True),
        sa.Column("kind", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("data_version", sa.Integer, nullable=True),
        sa.Column("spec_json", sa.Text, nullable=False),
        sa.Column("author", sa.String(256), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("apply_id", sa.Integer, nullable=False),
    )
    watermarks = sa.Table(
        "strato_watermarks",
        metadata,
        sa.Column("project", sa.String(128), sa.ForeignKey("strato_projects.project"), primary_key=True),
        sa.Column("view", sa.String(128), primary_key=True),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
    )
    with _engine(url) as engine, engine.begin() as conn:
        metadata.create_all(conn)
        at = _moment(engine)
        conn.execute(sa.insert(projects).values(project="p", applies=2, created_at=at))
        common = {"project": "p", "version": 1, "action": "add", "author": "alice", "applied_at": at}
        conn.execute(
            sa.insert(objects),
            [
                {**common, "kind": "entity", "name": "user", "data_version": None, "apply_id": 1}
                | {"spec_json": json.dumps(USER.to_spec())},
                {**common, "kind": "feature_view", "name": "user_stats", "data_version": 1, "apply_id": 2}
                | {"spec_json": json.dumps(view().to_spec())},
            ],
        )
        conn.execute(sa.insert(watermarks).values(project="p", view="user_stats", until=at))


def _tables(url: str) -> dict[str, set[str]]:
    with _engine(url) as engine, engine.connect() as conn:
        found = sa.inspect(conn)
        return {table: {c["name"] for c in found.get_columns(table)} for table in found.get_table_names()}


def _versions(url: str) -> list[int]:
    with _engine(url) as engine, engine.connect() as conn:
        if not sa.inspect(conn).has_table(migrations.SCHEMA_TABLE):
            return []
        return list(conn.execute(sa.select(migrations.schema_table.c.version)).scalars())


@pytest.fixture
def cls(backend: str) -> type[RegistryStore]:
    loaded: type[RegistryStore] = plugins.load("registry", backend)
    return loaded


@pytest.fixture
def v1_url(registry_url: str) -> str:
    _build_version_1(registry_url)
    return registry_url


def test_a_new_registry_is_stamped_with_the_latest_version(cls: type[RegistryStore], registry_url: str) -> None:
    with cls.open(registry_url, project="p") as registry:
        assert getattr(registry, "upgraded_from", None) is None
    assert _versions(registry_url) == [migrations.LATEST]


def test_a_version_1_registry_is_upgraded_and_reads_as_before(cls: type[RegistryStore], v1_url: str) -> None:
    with cls.open(v1_url, project="p") as registry:
        assert getattr(registry, "upgraded_from", None) == 1
        assert _versions(v1_url) == [migrations.LATEST]
        tables = _tables(v1_url)
        assert "strato_watermarks" not in tables
        # The upgraded tables are the ones a new registry gets, column for column.
        expected = {table.name: {c.name for c in table.columns} for table in _metadata.tables.values()}
        assert {name: tables[name] for name in expected} == expected
        assert tables[migrations.SCHEMA_TABLE] == {"version"}
        # Objects intact: listed, read, with their history and the apply counter.
        assert [v.name for v in registry.list("feature_view")] == ["user_stats"]
        assert registry.get("entity", "user") == USER
        assert registry.get("feature_view", "user_stats").version == 1
        [revision] = registry.history("feature_view", "user_stats")
        assert (revision.author, revision.applied_at) == ("alice", APPLIED_AT)
        assert registry.revision() == 2
        # The watermark was discarded (the next incremental run reloads); progress is usable.
        assert registry.online_progress("user_stats__v1") is None
        assert registry.advance_online_progress("user_stats__v1", OnlineProgress(3, APPLIED_AT), expected=None)
        assert registry.online_progress("user_stats__v1") == OnlineProgress(3, APPLIED_AT)
        # And it takes applies as usual.
        apply(registry, [USER, view(), service()])
        assert registry.revision() == 3


def test_opening_an_upgraded_registry_again_changes_nothing(cls: type[RegistryStore], v1_url: str) -> None:
    with cls.open(v1_url, project="p") as first:
        assert getattr(first, "upgraded_from", None) == 1
    tables = _tables(v1_url)
    with cls.open(v1_url, project="p") as second:
        assert getattr(second, "upgraded_from", None) is None
        assert [v.name for v in second.list("feature_view")] == ["user_stats"]
    assert _tables(v1_url) == tables
    assert _versions(v1_url) == [migrations.LATEST]


def test_a_read_only_open_reads_a_version_1_registry_without_upgrading_it(
    cls: type[RegistryStore], v1_url: str
) -> None:
    before = _tables(v1_url)
    with cls.open(v1_url, project="p", create=False) as reader:
        assert [v.name for v in reader.list("feature_view")] == ["user_stats"]
        assert reader.revision() == 2
        assert reader.online_progress("user_stats__v1") is None
    assert _tables(v1_url) == before
    assert _versions(v1_url) == []


@pytest.mark.parametrize("create", [True, False], ids=["create", "read-only"])
def test_a_schema_newer_than_this_strato_is_refused(cls: type[RegistryStore], registry_url: str, create: bool) -> None:
    with cls.open(registry_url, project="p") as registry:
        apply(registry, [USER])
    newer = migrations.LATEST + 1
    with _engine(registry_url) as engine, engine.begin() as conn:
        conn.execute(sa.update(migrations.schema_table).values(version=newer))
    message = f"registry schema version {newer} is newer than this Strato \\(knows {migrations.LATEST}\\); upgrade"
    with pytest.raises(BackendFailure, match=message):
        cls.open(registry_url, project="other", create=create)
    # Nothing written by the refused open: no project row, the version untouched.
    assert _versions(registry_url) == [newer]
    with _engine(registry_url) as engine, engine.connect() as conn:
        projects = conn.execute(sa.text("SELECT project FROM strato_projects")).scalars().all()
    assert projects == ["p"]


def _open_at_once(name: str, url: str, start: Barrier, results: Any) -> None:
    cls: type[RegistryStore] = plugins.load("registry", name)
    start.wait(timeout=30)
    with cls.open(url, project="p") as registry:
        results.put((getattr(registry, "upgraded_from", None), [v.name for v in registry.list("feature_view")]))


def test_processes_opening_an_old_registry_at_once_upgrade_it_once(backend: str, v1_url: str) -> None:
    workers = 3
    start, results = SPAWN.Barrier(workers), SPAWN.Queue()
    procs = [SPAWN.Process(target=_open_at_once, args=(backend, v1_url, start, results)) for _ in range(workers)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=60)
    assert [proc.exitcode for proc in procs] == [0] * workers
    seen = [results.get(timeout=5) for _ in range(workers)]
    # Exactly one process found version 1 and upgraded it; the others found it done.
    assert sorted(seen, key=repr) == sorted([(1, ["user_stats"])] + [(None, ["user_stats"])] * (workers - 1), key=repr)
    assert _versions(v1_url) == [migrations.LATEST]


_ACCESS_TABLES = ("strato_audit", "strato_grants", "strato_tokens", "strato_access")


def test_a_registry_without_access_tables_gets_them_with_access_off(
    cls: type[RegistryStore], registry_url: str
) -> None:
    """The step before access control: its tables are added, every project starts with it off,
    definitions read as before, and tokens and audit records can then be stored."""
    from datetime import timedelta

    from strato.registry.access_records import AuditRow, GrantRow, TokenRow

    with cls.open(registry_url, project="p") as registry:
        apply(registry, [USER, view()])
    access_step = migrations.STEPS.index(migrations._access_control)
    with _engine(registry_url) as engine, engine.begin() as conn:
        for table in _ACCESS_TABLES:
            conn.execute(sa.text(f"DROP TABLE {table}"))
        conn.execute(sa.update(migrations.schema_table).values(version=access_step + 1))
    before = _tables(registry_url)
    assert not set(_ACCESS_TABLES) & before.keys()
    with cls.open(registry_url, project="p", create=False) as reader:  # read-only: nothing upgraded
        assert not reader.access_enabled()
        assert reader.tokens() == []
    assert _tables(registry_url) == before
    with cls.open(registry_url, project="p") as registry:
        assert getattr(registry, "upgraded_from", None) == access_step + 1
        assert set(_ACCESS_TABLES) <= _tables(registry_url).keys()
        assert [v.name for v in registry.list("feature_view")] == ["user_stats"]
        assert not registry.access_enabled()
        token = TokenRow("0123456789ab", "ci", "f" * 64, APPLIED_AT, "alice", (GrantRow("reader", "project"),))
        registry.set_access(True, first_token=token)
        assert registry.access_enabled()
        assert registry.token("0123456789ab") == token
        assert registry.revoke_token("0123456789ab", APPLIED_AT + timedelta(hours=1))
        assert not registry.revoke_token("0123456789ab", APPLIED_AT)
        registry.record_audit([AuditRow(APPLIED_AT, "ci (0123456789ab)", "read", "project 'p'", False, "why")])
        assert [r.reason for r in registry.audit(denied_only=True)] == ["why"]
    assert _versions(registry_url) == [migrations.LATEST]


def test_a_registry_from_before_training_sets_gets_their_table(cls: type[RegistryStore], v1_url: str) -> None:
    # The version just before the training-sets step: version 1 taken through the steps before it.
    before = migrations.STEPS.index(migrations._training_sets) + 1
    with _engine(v1_url) as engine, engine.begin() as conn:
        for step in migrations.STEPS[: before - 1]:
            step(conn, conn.dialect)
        migrations.schema_table.create(conn)
        conn.execute(sa.insert(migrations.schema_table).values(version=before))
    assert "strato_training_sets" not in _tables(v1_url)
    with cls.open(v1_url, project="p", create=False) as reader:  # read-only: read as is, none there
        assert reader.list_training_sets() == []
    with cls.open(v1_url, project="p") as registry:
        assert getattr(registry, "upgraded_from", None) == before
        assert "strato_training_sets" in _tables(v1_url)
        record = TrainingSetRecord(
            name="ts", service="s", service_version=1, tables=(), features=(), spine={"kind": "entity_df"},
            timestamp_field="event_timestamp", entity_fingerprint="", content_digest="", row_count=0,
            statistics={}, location="x", format="parquet", author="a",
        )  # fmt: skip
        assert registry.add_training_set(record).version == 1
        assert [r.name for r in registry.list_training_sets()] == ["ts"]
        assert [v.name for v in registry.list("feature_view")] == ["user_stats"]


def test_a_registry_from_before_computed_intervals_gets_their_table(cls: type[RegistryStore], v1_url: str) -> None:
    before = migrations.STEPS.index(migrations._computed_intervals) + 1
    with _engine(v1_url) as engine, engine.begin() as conn:
        for step in migrations.STEPS[: before - 1]:
            step(conn, conn.dialect)
        migrations.schema_table.create(conn)
        conn.execute(sa.insert(migrations.schema_table).values(version=before))
    assert "strato_computed_intervals" not in _tables(v1_url)
    with cls.open(v1_url, project="p", create=False) as reader:  # read-only: read as is, none there
        assert reader.computed_intervals("user_stats__v1", "f") == []
    assert "strato_computed_intervals" not in _tables(v1_url)
    with cls.open(v1_url, project="p") as registry:
        assert getattr(registry, "upgraded_from", None) == before
        assert "strato_computed_intervals" in _tables(v1_url)
        assert registry.computed_intervals("user_stats__v1", "f") == []
        registry.add_computed_interval("user_stats__v1", "f", (APPLIED_AT, APPLIED_AT.replace(year=2027)))
        assert registry.computed_intervals("user_stats__v1", "f") == [(APPLIED_AT, APPLIED_AT.replace(year=2027))]
        assert [v.name for v in registry.list("feature_view")] == ["user_stats"]
    assert _versions(v1_url) == [migrations.LATEST]
