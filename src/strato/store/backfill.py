"""Batch transformations: computing a `SqlSource` view over the event times not computed yet.

`backfill(view, start, end)`:

1. reads the intervals already computed for the view's storage and its query's fingerprint
   (the registry's ``strato_computed_intervals``) and subtracts them from ``[start, end)``:
   what is left are the gaps (`strato.intervals`); nothing left means nothing to do, so no
   query runs and no Delta version is made;
2. pins the inputs once (each input view's latest snapshot), so every piece of one run reads
   the same data, and asks the engine for the result's schema (``LIMIT 0``), checked against
   the view before anything is written: a missing, extra or mistyped column is a
   `SchemaError` naming it;
3. per gap (cut into `step`-long pieces if asked), runs the query filtered to the piece and
   checks that it gives one row per (join keys, event time), and writes the rows like
   `store.write` (validation, expectations, one Delta commit, online,
   statistics), with an idempotency key naming the piece; then records the piece as computed.

A piece is all or nothing, and recorded only after its rows are durable: a run stopped
half-way leaves the pieces before it computed, and the next run computes the rest. If a run
dies between a piece's Delta commit and its record, the next run's write of that same piece
finds its idempotency key and appends nothing. A new version of the view filled from the old
one's history keeps the intervals its unchanged query computed (`carry_computed`). Backfills
of one repo take a file lock
(``.strato/backfill.lock``), so two never compute the same gap at once.

Intervals are keyed by the query's fingerprint: after changing the query (or its inputs), the
view counts as not computed, and a backfill writes rows that supersede the old ones (a later
write wins, design rule 2). An interval once computed is not recomputed when its inputs
change later: rows arriving late in an input need a new query fingerprint or a new version.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Final

import pyarrow as pa
import pyarrow.compute as pc

from strato import frames, intervals
from strato.definitions.feature_view import FeatureView, SqlSource
from strato.errors import SchemaError, UserError
from strato.intervals import Interval
from strato.offline.base import BatchQuery, FileInput, OfflineEngine, TableSnapshot, ViewInput
from strato.progress import row_progress
from strato.registry.base import RegistryStore
from strato.store.catalog import Catalog
from strato.store.results import ViewBackfill, WriteResult
from strato.types import cross_kind, value_kind

if TYPE_CHECKING:
    from strato.offline.delta import DeltaTables

try:
    import fcntl
except ImportError:  # Windows: no flock; backfills of one repo must then not overlap
    fcntl = None  # type: ignore[assignment]

LOCK_FILE: Final = "backfill.lock"

Write = Callable[..., WriteResult]
"""`FeatureStore.write`: ``write(view, rows, idempotency_key=...)``."""


def transformation(fv: FeatureView) -> SqlSource:
    """The view's `SqlSource`; a `UserError` naming the view if it has none."""
    if not isinstance(fv.source, SqlSource):
        raise UserError(
            f"feature view {fv.name!r} is not computed by a query (it has no SqlSource); "
            "backfill and computed intervals are for views with source=SqlSource(...)"
        )
    return fv.source


def in_input_order(views: list[FeatureView]) -> list[FeatureView]:
    """`views` ordered so a view comes after the views it reads (apply refused cycles)."""
    by_name = {v.name: v for v in views}
    ordered: list[FeatureView] = []
    seen: set[str] = set()

    def visit(fv: FeatureView) -> None:
        if fv.name in seen:
            return
        seen.add(fv.name)
        if isinstance(fv.source, SqlSource):
            for name in fv.source.view_names:
                if name in by_name:
                    visit(by_name[name])
        ordered.append(fv)

    for fv in views:
        visit(fv)
    return ordered


class Backfiller:
    """Runs batch transformations and keeps their computed intervals."""

    def __init__(
        self,
        catalog: Catalog,
        registry: RegistryStore,
        delta: DeltaTables,
        engine: Callable[[], OfflineEngine],
        write: Write,
        repo_path: Path,
    ):
        self._catalog, self._registry, self._delta = catalog, registry, delta
        self._engine, self._write, self._repo = engine, write, repo_path

    def computed(self, fv: FeatureView) -> list[Interval]:
        """The event-time intervals of the view's current query already computed."""
        return self._registry.computed_intervals(fv.table_name, transformation(fv).fingerprint)

    def run(
        self,
        fv: FeatureView,
        start: datetime,
        end: datetime,
        *,
        step: timedelta | None,
        progress: bool,
        dry_run: bool = False,
    ) -> ViewBackfill:
        """Compute and write the gaps of ``[start, end)`` (see the module docstring); with
        `dry_run`, only say what the gaps are (no query, nothing written)."""
        source = transformation(fv)
        engine = self._engine()
        with self._exclusive():
            fingerprint = source.fingerprint
            gaps = intervals.subtract([(start, end)], self._registry.computed_intervals(fv.table_name, fingerprint))
            if not gaps or dry_run:
                return ViewBackfill(fv.name, tuple(gaps), 0, ())
            batch = self._batch(fv, source)
            pieces = [piece for gap in gaps for piece in intervals.split(gap, step)]
            check_result_schema(fv, _run(engine, fv, batch, *pieces[0], limit=0).schema)
            rows, versions = 0, []
            with row_progress(f"backfill {fv.name} ({len(pieces)} pieces)", None, enabled=progress) as bar:
                for low, high in pieces:
                    table = _run(engine, fv, batch, low, high)
                    check_one_row_per_identity(fv, table)
                    written = self._write(fv, table, idempotency_key=_key(fingerprint, (low, high)))
                    self._registry.add_computed_interval(fv.table_name, fingerprint, (low, high))
                    if written.table_version is not None and not written.already_written:
                        rows += written.rows
                        versions.append(written.table_version)
                    bar.advance(table.num_rows)
        return ViewBackfill(fv.name, tuple(gaps), rows, tuple(versions))

    def _batch(self, fv: FeatureView, source: SqlSource) -> BatchQuery:
        """The query with its inputs pinned: each view's latest snapshot, each file's path."""
        views = []
        for name in source.view_names:
            input_view = self._catalog.current(name)
            snapshot = self._delta.snapshot(input_view.table_name)
            if snapshot is None:  # no data yet: an empty table, so the query still binds
                snapshot = TableSnapshot(name, "", -1, (), frames.history_schema(input_view, with_created=True))
            views.append(ViewInput(_renamed(snapshot, name), input_view.join_key_names))
        files = []
        for file in source.files:
            path = Path(file.path).expanduser()
            resolved = path if path.is_absolute() or "://" in file.path else self._repo / path
            files.append(FileInput(str(file.name), str(resolved), file.format))
        return BatchQuery(source.query, tuple(views), tuple(files), fv.timestamp_field)

    def catch_up(
        self, fv: FeatureView, start: datetime | None, end: datetime, *, progress: bool
    ) -> ViewBackfill | None:
        """Before a materialization: compute up to `end` from `start`, or without one from
        where the view's computed intervals begin; None for a view never computed and given no
        start (`backfill` begins it), or one with nothing before `end`."""
        begin = start
        if begin is None:
            done = self.computed(fv)
            begin = done[0][0] if done else None
        if begin is None or begin >= end:
            return None
        return self.run(fv, begin, end, step=None, progress=progress)

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        """One backfill at a time per repo (any process): the gaps read are still gaps when written."""
        if fcntl is None:
            yield
            return
        path = self._repo / ".strato" / LOCK_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock


def carry_computed(registry: RegistryStore, old: FeatureView, new: FeatureView) -> None:
    """A new version whose storage was filled with the old one's history keeps the intervals
    the same query computed there (a backfill would otherwise write those rows again). A
    changed query has a new fingerprint, so nothing carries over and it computes afresh."""
    if not (isinstance(old.source, SqlSource) and isinstance(new.source, SqlSource)):
        return
    fingerprint = old.source.fingerprint
    if new.source.fingerprint != fingerprint:
        return
    for interval in registry.computed_intervals(old.table_name, fingerprint):
        registry.add_computed_interval(new.table_name, fingerprint, interval)


def check_result_schema(fv: FeatureView, result: pa.Schema) -> None:
    """The query must give the view's join keys, event time column and features (and its
    created time column if it declares one), each of a type the write would take, and
    nothing else."""
    where = f"feature view {fv.name!r}: its SqlSource query"
    names = result.names
    if len({n.lower() for n in names}) != len(names):
        raise SchemaError(f"{where} gives two columns of one name: {names}")
    created = fv.created_timestamp_column
    wanted: dict[str, tuple[str, pa.DataType | None]] = {k.name: ("join key", k.dtype.to_arrow()) for k in fv.join_keys}
    wanted[fv.timestamp_field] = ("event time column", None)
    if created:
        wanted[created] = ("created time column", None)
    for f in fv.schema:
        wanted[f.name] = ("feature", f.dtype.to_arrow())
    missing = [n for n in wanted if n not in names]
    if missing:
        role = wanted[missing[0]][0]
        raise SchemaError(
            f"{where} gives no column {missing[0]!r} (the view's {role}); it gives {names}, "
            f"the view needs {list(wanted)}"
        )
    extra = [n for n in names if n not in wanted]
    if extra:
        raise SchemaError(f"{where} gives columns {extra} the view does not have; select only {list(wanted)}")
    for name, (role, target) in wanted.items():
        have = result.field(name).type
        if target is None:
            if value_kind(have) != "timestamp":
                raise SchemaError(
                    f"{where} gives {role} {name!r} as {have}; it must be a TIMESTAMP (cast it in the query)"
                )
            continue
        problem = cross_kind(have, target, key=role == "join key")
        if problem is not None:
            raise SchemaError(
                f"{where} gives {role} {name!r} as {have}, but the view declares {target} ({problem[1]}); "
                "cast it in the query"
            )


def check_one_row_per_identity(fv: FeatureView, table: pa.Table) -> None:
    """A query's result gives each (join keys, event time) once (with a created time column,
    once per created time): a write would keep an arbitrary one of several, so a rerun could
    compute something else. Usually a join that fans out; refused naming the first."""
    identity = [*fv.join_key_names, fv.timestamp_field]
    if fv.created_timestamp_column:
        identity.append(fv.created_timestamp_column)
    if table.num_rows < 2:
        return
    counts = table.select(identity).group_by(identity, use_threads=False).aggregate([([], "count_all")])
    repeated = counts.filter(pc.greater(counts.column("count_all"), 1))
    if repeated.num_rows:
        first = repeated.slice(0, 1).to_pylist()[0]
        shown = ", ".join(f"{k}={first[k]!s}" for k in identity)
        raise SchemaError(
            f"feature view {fv.name!r}: its SqlSource query gives {first['count_all']} rows for ({shown}); "
            "it must give one row per join keys and event time (a join that fans out?)"
        )


def _run(
    engine: OfflineEngine,
    fv: FeatureView,
    batch: BatchQuery,
    start: datetime | None,
    end: datetime | None,
    *,
    limit: int | None = None,
) -> pa.Table:
    try:
        return engine.batch_query(batch, start=start, end=end, limit=limit)
    except UserError as exc:
        raise UserError(f"feature view {fv.name!r}: its SqlSource query failed: {exc}") from exc


def _renamed(snapshot: TableSnapshot, name: str) -> TableSnapshot:
    import dataclasses

    return dataclasses.replace(snapshot, name=name)


def _key(fingerprint: str, piece: Interval) -> str:
    """The idempotency key of one piece: a retried piece is not appended twice."""
    low, high = piece
    return f"backfill:{fingerprint}:{low.isoformat()}/{high.isoformat()}"
