"""PostgreSQL specifics of the registry: applies from several processes, readers in others,
a server that goes away and comes back, and a FeatureStore configured with a postgresql URL.

The registry contract suite already runs on PostgreSQL; these are what only a shared server
can show. Workers run in spawned processes (module-level functions, so they pickle).
"""

from __future__ import annotations

import json
import multiprocessing
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from multiprocessing.synchronize import Barrier, Event
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

import pg_server
from strato import Entity, FeatureStore, FeatureView, Field, Float64, Int64
from strato.definitions.plan import make_plan
from strato.errors import BackendUnavailable, ConflictError
from strato.registry.backends.postgresql import PostgreSQLRegistry
from strato.registry.backends.sql import _mapped_errors
from strato.registry.base import RegistryStore

USER = Entity("user", join_keys={"user_id": Int64})
SPAWN = multiprocessing.get_context("spawn")


def log_view(tags: list[str], name: str = "log") -> FeatureView:
    """A view whose description carries every tag applied so far (a lost update loses one)."""
    return FeatureView(name, entities=[USER], schema=[Field("amount", Float64)], description=json.dumps(tags))


@pytest.fixture
def opened() -> Iterator[list[RegistryStore]]:
    registries: list[RegistryStore] = []
    yield registries
    for registry in registries:
        registry.close()


# ---------------------------------------------------------------- workers (spawned processes)


def _append_tags(url: str, worker: int, rounds: int, start: Barrier, results: Any) -> None:
    """Append `rounds` tags to the log view, re-planning whenever another apply got there first."""
    conflicts = 0
    with PostgreSQLRegistry.open(url, project="p") as registry:
        start.wait()
        for k in range(rounds):
            while True:
                current = registry.current()
                view = current[("feature_view", "log")]
                assert isinstance(view, FeatureView)
                plan = make_plan([USER, log_view([*json.loads(view.description), f"w{worker}-{k}"])], current)
                try:
                    registry.apply(plan, author=f"worker{worker}")
                    break
                except ConflictError:
                    conflicts += 1
    results.put((worker, conflicts))


def _slow_apply(url: str, holding: Event) -> None:
    """Apply a new view, holding the project's apply lock for a second before committing."""

    def hold(_revisions: object) -> None:
        holding.set()
        time.sleep(1.0)

    with PostgreSQLRegistry.open(url, project="p") as registry:
        registry.apply(make_plan([USER, log_view(["slow"])], registry.current()), author="slow", before_commit=hold)


def _watch(url: str, ready: Event, seen: Any) -> None:
    """Wait for the revision to move, then report when and which views are listed."""
    with PostgreSQLRegistry.open(url, project="p", create=False) as registry:
        before = registry.revision()
        ready.set()
        deadline = time.monotonic() + 20
        while registry.revision() == before and time.monotonic() < deadline:
            time.sleep(0.005)
        seen.put((time.time(), [v.name for v in registry.list("feature_view")]))


# ---------------------------------------------------------------- tests


def test_concurrent_applies_from_processes_lose_no_update(pg_url: str, opened: list[RegistryStore]) -> None:
    registry = PostgreSQLRegistry.open(pg_url, project="p")
    opened.append(registry)
    registry.apply(make_plan([USER, log_view([])], registry.current()), author="setup")
    workers, rounds = 4, 6
    start, results = SPAWN.Barrier(workers), SPAWN.Queue()
    procs = [SPAWN.Process(target=_append_tags, args=(pg_url, w, rounds, start, results)) for w in range(workers)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
        assert proc.exitcode == 0
    conflicts = dict(results.get(timeout=5) for _ in procs)

    final = registry.get("feature_view", "log")
    assert isinstance(final, FeatureView)
    tags = json.loads(final.description)
    assert sorted(tags) == sorted(f"w{w}-{k}" for w in range(workers) for k in range(rounds))  # none lost
    for w in range(workers):  # each worker's tags in its own order
        assert [t for t in tags if t.startswith(f"w{w}-")] == [f"w{w}-{k}" for k in range(rounds)]
    versions = [r.version for r in registry.history("feature_view", "log")]
    assert versions == list(range(1, workers * rounds + 2))  # contiguous: one per apply
    assert registry.revision() == workers * rounds + 1
    assert sorted(conflicts) == list(range(workers))  # every worker finished (stale plans were re-planned)


def test_a_plan_made_before_a_concurrent_apply_waits_for_it_and_is_refused(
    pg_url: str, opened: list[RegistryStore]
) -> None:
    registry = PostgreSQLRegistry.open(pg_url, project="p")
    opened.append(registry)
    registry.apply(make_plan([USER], registry.current()), author="setup")
    stale = make_plan([USER, log_view(["mine"])], registry.current())  # made before the other apply
    holding = SPAWN.Event()
    other = SPAWN.Process(target=_slow_apply, args=(pg_url, holding))
    other.start()
    try:
        assert holding.wait(60), "the other apply never reached its commit"
        began = time.monotonic()
        with pytest.raises(ConflictError, match="registry changed since this plan"):
            registry.apply(stale, author="me")
        waited = time.monotonic() - began
    finally:
        other.join(60)
    assert other.exitcode == 0
    assert waited > 0.3  # it queued behind the other apply's lock instead of reading around it
    history = registry.history("feature_view", "log")
    assert [(r.version, r.author) for r in history] == [(1, "slow")]
    assert registry.revision() == 2


def test_a_reader_in_another_process_sees_an_apply_promptly(pg_url: str, opened: list[RegistryStore]) -> None:
    registry = PostgreSQLRegistry.open(pg_url, project="p")
    opened.append(registry)
    registry.apply(make_plan([USER], registry.current()), author="setup")
    ready, seen = SPAWN.Event(), SPAWN.Queue()
    watcher = SPAWN.Process(target=_watch, args=(pg_url, ready, seen))
    watcher.start()
    try:
        assert ready.wait(60)
        applied = time.time()
        registry.apply(make_plan([USER, log_view([])], registry.current()), author="me")
        committed = time.time()
        when, views = seen.get(timeout=30)
    finally:
        watcher.join(30)
    assert views == ["log"]
    assert when - committed < 2.0, f"the reader saw the apply {when - applied:.3f}s after it began"


@pytest.fixture
def own_server() -> Iterator[pg_server.Server]:
    """A server of this test's own, so stopping it disturbs no other test."""
    try:
        server = pg_server.Server()
        server.start()
    except pg_server.Unavailable as exc:
        pytest.skip(f"PostgreSQL registry tests skipped: {exc}")
    yield server
    server.destroy()


def test_a_stopped_server_is_backend_unavailable_and_recovers(
    own_server: pg_server.Server, opened: list[RegistryStore]
) -> None:
    url = own_server.create_database()
    registry = PostgreSQLRegistry.open(url, project="p")
    opened.append(registry)
    registry.apply(make_plan([USER], registry.current()), author="setup")
    plan = make_plan([USER, log_view([])], registry.current())

    own_server.stop()
    with pytest.raises(BackendUnavailable, match="registry database is unavailable") as raised:
        registry.list("entity")
    assert "\n" not in str(raised.value)
    with pytest.raises(BackendUnavailable, match="unavailable"):
        registry.apply(plan, author="me")
    with pytest.raises(BackendUnavailable, match=r"(?i)connection refused"):
        PostgreSQLRegistry.open(url, project="p")

    own_server.start()
    assert [e.name for e in registry.list("entity")] == ["user"]
    assert registry.revision() == 1  # the apply while it was down wrote nothing
    registry.apply(plan, author="me")
    assert [v.name for v in registry.list("feature_view")] == ["log"]


def test_a_serialization_failure_is_backend_unavailable_saying_retry(pg_url: str) -> None:
    engine = create_engine(pg_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.begin() as setup:
            setup.execute(text("CREATE TABLE t (id int PRIMARY KEY, n int)"))
            setup.execute(text("INSERT INTO t VALUES (1, 0)"))
        with engine.connect() as first, engine.connect() as second:
            first = first.execution_options(isolation_level="REPEATABLE READ")
            second = second.execution_options(isolation_level="REPEATABLE READ")
            first.begin()
            second.begin()
            second.execute(text("SELECT n FROM t"))  # its snapshot predates the first's commit
            first.execute(text("UPDATE t SET n = n + 1"))
            first.commit()
            with pytest.raises(BackendUnavailable, match="retry"), _mapped_errors():
                second.execute(text("UPDATE t SET n = n + 1"))
    finally:
        engine.dispose()


def test_a_feature_store_with_a_postgresql_registry_applies_writes_and_reads(pg_url: str, tmp_path: Path) -> None:
    (tmp_path / "strato.yaml").write_text(f"project: p\nregistry: {pg_url}\n")
    view = FeatureView("stats", entities=[USER], schema=[Field("x", Int64), Field("score", Float64)])
    with FeatureStore(tmp_path) as store:
        assert store.registry.name == "postgresql"
        store.apply([USER, view])
        store.write("stats", [{"user_id": 1, "x": 7, "score": 0.5, "event_timestamp": datetime.now(UTC)}])
        assert store.get_online_features(["stats:x", "stats:score"], [{"user_id": 1}]).to_dict() == {
            "user_id": [1],
            "x": [7],
            "score": [0.5],
        }
        assert store.sql("select x from stats").to_pylist() == [{"x": 7}]
    assert not (tmp_path / ".strato" / "registry.db").exists()
    with FeatureStore(tmp_path, read_only=True) as reader:
        assert [v.name for v in reader.list_feature_views()] == ["stats"]
        assert [r.version for r in reader.history("feature_view", "stats")] == [1]


def test_a_backfill_with_a_postgresql_registry_computes_each_range_once(pg_url: str, tmp_path: Path) -> None:
    from datetime import timedelta

    from strato import SqlSource

    (tmp_path / "strato.yaml").write_text(f"project: p\nregistry: {pg_url}\n")
    raw = FeatureView("raw", entities=[USER], schema=[Field("score", Float64)])
    doubled = FeatureView(
        "doubled",
        entities=[USER],
        schema=[Field("score", Float64)],
        source=SqlSource("SELECT user_id, event_timestamp, 2 * score AS score FROM raw", inputs=[raw]),
    )
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    with FeatureStore(tmp_path) as store:
        store.apply([USER, raw, doubled])
        store.write(
            "raw", [{"user_id": u, "score": float(u), "event_timestamp": t0 + timedelta(hours=u)} for u in range(6)]
        )
        first = store.backfill(t0, t0 + timedelta(hours=3), progress=False).views["doubled"]
        assert (first.rows, first.table_versions) == (3, (0,))
        again = store.backfill(t0 + timedelta(hours=1), t0 + timedelta(hours=6), progress=False).views["doubled"]
        assert again.computed == ((t0 + timedelta(hours=3), t0 + timedelta(hours=6)),)
        assert store.computed_intervals("doubled") == [(t0, t0 + timedelta(hours=6))]
        assert store.sql("SELECT score FROM doubled ORDER BY score").column("score").to_pylist() == [
            2.0 * u for u in range(6)
        ]
    assert not (tmp_path / ".strato" / "registry.db").exists()
