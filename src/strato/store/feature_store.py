"""The `FeatureStore` facade: one feature repo's definitions, history and online values."""

from __future__ import annotations

import dataclasses
import functools
import getpass
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from strato import clock, frames, plugins, sources
from strato.access import AccessControl, Caller, Resource
from strato.config import StratoConfig
from strato.definitions.entity import Entity
from strato.definitions.feature_service import FeatureService
from strato.definitions.feature_view import FeatureView, FileSource, SqlSource
from strato.definitions.on_demand import OnDemandFeatureView
from strato.definitions.plan import Action, Definition, ObjectKind, Plan, make_plan
from strato.errors import ConflictError, OnlineBehindError, UserError
from strato.intervals import Interval
from strato.offline.base import OfflineEngine
from strato.offline.pit import PitRequest
from strato.online.base import OnlineStore
from strato.online.expiry import expired_before_us
from strato.online.response import OnlineResponse
from strato.registry.base import OnlineProgress, RegistryStore, Revision, TrainingSetRecord, WriteStats, backend_name
from strato.store.aggregations import LOCK_FILE, TileWriter, historical_values, prune_tiles
from strato.store.backfill import Backfiller, carry_computed, in_input_order, transformation
from strato.store.catalog import Catalog
from strato.store.lineage import Node, lineage
from strato.store.materialize import Materializer, check_end
from strato.store.on_demand import OnDemand
from strato.store.online_limits import check_online_limits
from strato.store.online_reads import OnlineReader
from strato.store.quality import Screen, quarantine_schema, quarantine_table, record_stats, start_stats
from strato.store.repo import repo_config
from strato.store.results import (
    BackfillResult,
    MaterializeResult,
    TrainingSet,
    ViewBackfill,
    WriteResult,
    WriteTarget,
)
from strato.store.spines import spine_from_history
from strato.store.sql_tables import AsOf, sql_tables
from strato.store.threads import history_writer
from strato.store.training_sets import RebuildResult, SavedTrainingSet, TrainingSets
from strato.store.upkeep import Upkeep, VacuumReport
from strato.store.versions import VersionMover
from strato.store.write_clock import CLOCK_FILE, WriteClock
from strato.streaming.tiles import StreamPositions
from strato.types import TIMESTAMP_ARROW, TableVersion

if TYPE_CHECKING:
    from strato.offline.delta import DeltaTables
    from strato.offline.upkeep import Compaction

OVERLAP_MIN_ROWS = 20_000
"""From this many rows, `write` encodes online values while the Delta commit runs."""


class FeatureStore:
    """The entry point: one feature repo's registry, history and online values.

    >>> store = FeatureStore("feature_repo")  # doctest: +SKIP
    >>> store.apply([user, user_stats])  # doctest: +SKIP
    >>> store.write("user_stats", df)  # doctest: +SKIP
    >>> store.get_online_features(["user_stats:amount_mean_7d"], [{"user_id": 7}]).to_dict()  # doctest: +SKIP
    """

    def __init__(
        self,
        repo_path: str | Path | None = None,
        *,
        config: StratoConfig | None = None,
        create: bool = False,
        read_only: bool = False,
        token: str | None = None,
        **overrides: Any,
    ):
        """Open the store of the feature repo at `repo_path` (default: found from the cwd).

        The folder must hold a ``strato.yaml`` (`strato init` writes one); ``create=True``
        writes a default one (project named after the folder) where there is none, so a typo
        in the path is an error rather than a new, empty repo. ``read_only=True`` never
        creates the registry (`RegistryNotFoundError` if nothing was applied yet) and
        refuses every write. Keyword arguments override configuration by dotted key, with
        ``__`` for dots: ``FeatureStore(".", online__type="memory")``.

        `token` (else ``STRATO_TOKEN``) is the API token every verb is checked against once
        the project has access control on (`strato access enable`); with it off, a store
        needs no token and may do everything, as an embedded single-user store always has.
        """
        dotted = {k.replace("__", "."): v for k, v in overrides.items()}
        self.config = config or repo_config(repo_path, dotted, create=create and not read_only)
        self.read_only = read_only
        registry_cls: type[RegistryStore] = plugins.load("registry", backend_name(self.config.registry_url))
        self.registry = registry_cls.open(self.config.registry_url, project=self.config.project, create=not read_only)
        self._delta: DeltaTables | None = None
        self._online: OnlineStore | None = None
        self._offline: OfflineEngine | None = None
        self.catalog = Catalog(self.registry)
        #: Access checks of this store's token (`strato.access`); the server `delegate`s them.
        self.access = Caller(AccessControl(self.registry, self.config.project), token or self.config.token)
        self._reader = OnlineReader(self.catalog, lambda: self.online_store, self.access.check)
        self._on_demand = OnDemand(self.catalog, self._reader, self.config.repo_path)
        self._materializer_: Materializer | None = None
        # One write order for every writer of this repo (design rule 10): see write_clock.
        self._clock = WriteClock(self.config.repo_path / ".strato" / CLOCK_FILE)
        self._tiles = TileWriter(self.config.repo_path / ".strato" / LOCK_FILE)  # windowed aggregations
        self._closed = False

    # ------------------------------------------------------------------ lifecycle

    @property
    def project(self) -> str:
        """The project this store reads and writes (from `strato.yaml`)."""
        return self.config.project

    @property
    def online_store(self) -> OnlineStore:
        """The configured online backend, opened on first use."""
        if self._online is None:
            self._check_open()
            cls: type[OnlineStore] = plugins.load("online", self.config.online_type)
            self._online = cls.open(self.config.online_options, project=self.project)  # type: ignore[arg-type]
        return self._online

    @property
    def delta(self) -> DeltaTables:
        """The view history tables (Delta Lake), opened on first use: online reads never import deltalake."""
        if self._delta is None:
            from strato.offline.delta import DeltaTables

            self._delta = DeltaTables(
                self.config.offline_path, self.config.project, self.config.offline_storage_options
            )
        return self._delta

    @property
    def _materializer(self) -> Materializer:
        """Materialization and online progress, made on first use (it needs `delta`)."""
        if self._materializer_ is None:
            self._materializer_ = Materializer(
                self.delta, self.registry, self.catalog, lambda: self.offline_engine, lambda: self.online_store
            )
        return self._materializer_

    @property
    def offline_engine(self) -> OfflineEngine:
        """The configured offline query engine, opened on first use."""
        if self._offline is None:
            self._check_open()
            cls: type[OfflineEngine] = plugins.load("offline", self.config.offline_engine)
            engine = cls.open(self.config.offline_options)  # type: ignore[arg-type]
            engine.serve_storage(self.config.offline_path)
            self._offline = engine
        return self._offline

    def close(self) -> None:
        """Release the registry, online store and offline engine; the store is unusable afterwards."""
        if self._closed:
            return
        self._closed = True
        self.access.flush()
        self.access.access.close()
        for resource in (self._online, self._offline, self.registry, self._clock, self._tiles):
            if resource is not None:
                resource.close()
        self._online = self._offline = None

    def _check_open(self) -> None:
        if self._closed:
            raise UserError(f"this FeatureStore (project {self.project!r}) is closed; open a new one")

    def _check_writable(self, verb: str) -> None:
        self._check_open()
        if self.read_only:
            raise UserError(f"{verb}: this FeatureStore (project {self.project!r}) was opened read_only=True")

    def __enter__(self) -> FeatureStore:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------------ definitions

    def plan(
        self,
        objects: Iterable[Definition],
        *,
        new_version: Sequence[str] = (),
        delete: Sequence[tuple[ObjectKind, str]] = (),
    ) -> Plan:
        """What `apply` would change, without changing anything."""
        self._check("list", self._project_resource)
        return make_plan(objects, self.registry.current(), new_version=new_version, delete=delete)

    def apply(
        self,
        objects: Iterable[Definition] | Plan,
        *,
        new_version: Sequence[str] = (),
        delete: Sequence[tuple[ObjectKind, str]] = (),
        author: str | None = None,
        start_empty: Sequence[str] = (),
    ) -> Plan:
        """Register definitions (or apply a `Plan` from `plan`): new ones get version 1,
        changed ones a new version.

        A breaking change to a view (a removed or retyped field, other join keys) is refused
        with `BreakingChangeError` unless the view is named in `new_version`; it then gets
        fresh storage, filled from the old version's history (online too) before it becomes
        current, so serving never goes blank (`strato.store.versions`). A new version that
        cannot take the old rows (a retyped field, other keys) is refused unless named in
        `start_empty`. Old versions stay readable as ``view@vN:feature``. Objects missing
        from `objects` are kept; remove them with `delete=[("feature_view", name)]`. A plan
        made before another apply changed what it covers is refused with `ConflictError`.
        """
        self._check_writable("apply")
        if isinstance(objects, Plan):
            if new_version or delete:
                raise UserError("apply(plan): new_version and delete belong to plan(), which made the plan")
            plan = objects
        else:
            plan = make_plan(objects, self.registry.current(), new_version=new_version, delete=delete)
        self._check("apply", *(Resource(c.kind, c.name) for c in plan.changes if c.action is not Action.UNCHANGED))
        plan.raise_if_breaking()
        if plan.has_changes:
            mover = VersionMover(
                plan,
                start_empty,
                catalog=self.catalog,
                delta=self.delta,
                offline_engine=lambda: self.offline_engine,
                online_store=lambda: self.online_store,
                history_schema=_history_schema,
            )
            self.registry.apply(
                plan, author=author or _whoami(), before_commit=mover.before_commit if mover.needed else None
            )
            for table, version in mover.loaded_online.items():
                # Recorded after the registry commit (the fill ran inside its transaction). A
                # write that landed in between does not extend a claim that did not exist yet,
                # so this claim is still true: every row of the copied commits is online.
                self.registry.advance_online_progress(table, OnlineProgress(version), expected=None)
            for old, new in mover.filled:  # the copied history keeps what its query computed
                carry_computed(self.registry, old, new)
            self.refresh()
        return plan

    def list_entities(self) -> list[Entity]:
        """Every registered entity, by name."""
        self._check("list", self._project_resource)
        return [e for e in self.registry.list("entity") if isinstance(e, Entity)]

    def list_feature_views(self) -> list[FeatureView]:
        """The current version of every registered feature view, by name."""
        self._check("list", self._project_resource)
        return [v for v in self.registry.list("feature_view") if isinstance(v, FeatureView)]

    def list_feature_services(self) -> list[FeatureService]:
        """The current version of every registered feature service, by name."""
        self._check("list", self._project_resource)
        return [s for s in self.registry.list("feature_service") if isinstance(s, FeatureService)]

    def get_entity(self, name: str) -> Entity:
        """One entity; `NotFoundError` (with close names suggested) if there is none."""
        self._check("list", self._project_resource)
        return self.catalog.entity(name)

    def get_feature_view(self, name: str, *, version: int | None = None) -> FeatureView:
        """A feature view: its current version, or `version`."""
        self._check("read", Resource("feature_view", name))
        return self.catalog.view(name, version=version)

    def list_on_demand_feature_views(self) -> list[OnDemandFeatureView]:
        """The current version of every registered on-demand feature view, by name."""
        self._check("list", self._project_resource)
        return [v for v in self.registry.list("on_demand_feature_view") if isinstance(v, OnDemandFeatureView)]

    def get_feature_service(self, name: str, *, version: int | None = None) -> FeatureService:
        """A feature service: its current version, or `version`."""
        self._check("read", Resource("feature_service", name))
        return self.catalog.service(name, version=version)

    def history(self, kind: ObjectKind, name: str) -> list[Revision]:
        """Every version of one object, oldest first: when, by whom, what changed."""
        self._check("list", self._project_resource)
        return self.registry.history(kind, name)

    # ------------------------------------------------------------------ writes

    def write(
        self,
        view: str | FeatureView,
        data: Any,
        *,
        to: WriteTarget | None = None,
        idempotency_key: str | None = None,
        stream_offsets: Mapping[str, int] | None = None,
        expected_offsets: Mapping[str, int | None] | None = None,
        stream_positions: StreamPositions | None = None,
    ) -> WriteResult:
        """Validate `data` against the view, append it to history, upsert the online store.

        `data` is a pandas or polars DataFrame, a pyarrow Table, or a list of dicts, with the
        join keys, the view's event time column and its features. The whole batch is checked
        first, online engine limits (key length, room) included; on a `SchemaError` nothing is
        written anywhere. History gets one atomic Delta commit; the online store keeps, per
        key, the newest event (design rule 4). If the online step fails or is interrupted
        after the commit, the error says so (`OnlineBehindError`, or a note on the
        interrupt) and `materialize_incremental` finishes it.

        `idempotency_key` (the CLI passes the input file's content hash) is recorded in the
        Delta commit: a batch written again with the same key is not appended twice; its
        online step is redone, and the result says `already_written`.

        `stream_offsets` (application id → version; `strato ingest` gives its consumed Kafka
        offsets) are recorded in the same Delta commit as the rows (`DeltaTables.append`);
        `expected_offsets` (application id → the version the writer read) fence them: if
        history moved on meanwhile (another consumer wrote them), `OffsetsMovedError` and
        nothing is written. `stream_positions` (one per row of `data`, an Arrow table) say where each streamed row
        came from, so windowed-aggregation tiles merge each event once across replays.
        """
        self._check_writable("write")
        fv = self.catalog.current(view)
        self._check("write", Resource("feature_view", fv.name))
        if to is not None and to not in ("online", "offline", "online_and_offline"):
            raise UserError(f"write to {to!r}: expected 'online', 'offline' or 'online_and_offline'")
        to = to or ("online_and_offline" if fv.online and fv.offline else "online" if fv.online else "offline")
        if "online" in to and not fv.online:
            raise UserError(f"feature view {fv.name!r} is offline only (online=False): cannot write online")
        if "offline" in to and not fv.offline:
            raise UserError(f"feature view {fv.name!r} is online only (offline=False): cannot write offline")
        if idempotency_key is not None and (not isinstance(idempotency_key, str) or not idempotency_key):
            raise UserError(f"idempotency_key must be a non-empty string, got {idempotency_key!r}")
        quality = Screen(fv) if fv.has_expectations else None
        carry: tuple[str, ...] = ()
        if stream_positions is not None:
            data, carry = _with_positions(fv, data, stream_positions)
        batch = frames.conform_batch(
            fv, data, max_future_seconds=self.config.max_future_seconds, screen=quality, carry=carry
        )
        positions = None
        if carry:
            rows = batch.rows
            positions = StreamPositions(rows.column(carry[0]).to_pylist(), rows.column(carry[1]).to_pylist())
            batch = dataclasses.replace(batch, rows=rows.drop_columns(list(carry)))
            if quality is not None and quality.set_aside is not None:
                quality.set_aside = quality.set_aside.drop_columns(list(carry))
        rows = batch.rows
        if quality is not None:
            quality.keep_aside(self.delta, idempotency_key)  # before the batch: if it fails, nothing is written
        if rows.num_rows == 0:  # nothing to store: no empty Delta commit, no online call
            return WriteResult(fv.name, 0, None, 0, quarantined=quality.quarantined if quality else 0)
        if "online" in to:
            check_online_limits(self.online_store, fv, self.catalog.codec(fv), rows)
        earlier = None
        if "offline" in to and idempotency_key is not None:
            earlier = self.delta.written_as(fv.table_name, idempotency_key)
        if earlier is not None:
            earlier_version, earlier_created_us = earlier[0], earlier[1] or self._next_created_us()
            redone = 0
            if "online" in to:
                _, created = batch.stamped(earlier_created_us)
                # Tiles are not idempotent: merge them again only if that write's online step
                # is not known to have finished (docs/concepts.md, "Windowed aggregations").
                progress = self._materializer.status(fv)[0] if fv.aggregations else None
                tiles = progress is None or progress.version < earlier_version
                redone, _ = self._write_online(
                    fv, rows, created, earlier_version, None, tiles=tiles, positions=positions
                )
            return WriteResult(
                fv.name, rows.num_rows, earlier_version, redone, already_written=True, superseded=batch.superseded
            )
        created_us = self._next_created_us()
        stamped, created = batch.stamped(created_us)
        stats = start_stats(fv, rows) if "offline" in to else None
        version: TableVersion | None = None
        history: Future[TableVersion] | None = None
        if "offline" in to:
            append = functools.partial(
                self._append, fv, stamped, idempotency_key, created_us, stream_offsets, expected_offsets
            )
            if "online" in to and rows.num_rows >= OVERLAP_MIN_ROWS:
                # The Delta commit (Parquet encoding, in Rust, without the GIL) runs while this
                # thread encodes the online values; the online store is written only once the
                # commit has succeeded, so a failed commit still leaves nothing anywhere.
                history = history_writer().submit(append)
            else:
                version = append()
        changed = 0
        if "online" in to:
            changed, version = self._write_online(fv, rows, created, version, history, positions=positions)
        quarantined = quality.quarantined if quality else 0
        if stats is not None and version is not None:
            record_stats(self.registry, fv, version, rows.num_rows, stats, quarantined)
        return WriteResult(
            fv.name, rows.num_rows, version, changed, superseded=batch.superseded, quarantined=quarantined
        )

    def check_write(self, view: str | FeatureView, data: Any) -> None:
        """Validate `data` as `write` would (schema, times, online engine limits), writing nothing.

        `strato ingest` calls it on parts of a refused micro-batch to find the rows at fault.
        """
        fv = self.catalog.current(view)
        batch = frames.conform_batch(fv, data, max_future_seconds=self.config.max_future_seconds)
        if fv.online and batch.rows.num_rows:
            check_online_limits(self.online_store, fv, self.catalog.codec(fv), batch.rows)

    def _write_online(
        self,
        fv: FeatureView,
        rows: pa.Table,
        created: int | npt.NDArray[np.int64],
        version: TableVersion | None,
        history: Future[TableVersion] | None,
        *,
        tiles: bool = True,
        positions: StreamPositions | None = None,
    ) -> tuple[int, TableVersion | None]:
        """The online step of a write, after (or while) its history commit lands: (keys
        changed, the table version committed).

        Once history holds the batch, any failure or interrupt must say so, since the two
        stores now disagree until the named command runs.
        """
        try:
            try:
                keys, values = self.catalog.codec(fv).encode(rows, created)
            finally:
                if history is not None:
                    version = _committed(history)
            changed = self.online_store.write(fv.table_name, keys, values, ttl=fv.ttl)
            if fv.aggregations and tiles:
                self._tiles.apply(self.online_store, fv, rows, created, positions)
        except BaseException as exc:
            if version is None:
                raise  # history untouched (or none asked for): nothing is out of step
            finish = (
                f"history of {fv.name!r} committed as table version {version}; online not updated; "
                f"run `strato materialize --incremental --view {fv.name}` to finish"
            )
            if isinstance(exc, Exception):
                raise OnlineBehindError(f"{finish} ({exc})", view=fv.name, table_version=version) from exc
            exc.add_note(finish)  # KeyboardInterrupt, SystemExit: keep their meaning, add the truth
            raise
        if version is not None:
            self._materializer.after_write(fv, version)
        return changed, version

    def ingest(
        self,
        view: str | FeatureView,
        path: str | Path | None = None,
        *,
        to: WriteTarget | None = None,
        idempotency_key: str | None = None,
    ) -> WriteResult:
        """`write` a file's rows: `path`, else the view's `FileSource` (Parquet, CSV or Delta).

        A relative source path is read from the feature repo's folder. CSV columns are read as
        the view's types, not guessed. The file is read whole and written as one batch, so the
        same rules hold: all rows or none, rule 4 online.
        """
        fv = self.catalog.current(view)
        self._check("write", Resource("feature_view", fv.name))  # before reading any file
        types = sources.text_column_types(fv)
        if path is not None:
            rows = sources.read_file(Path(path), types=types)
        elif isinstance(fv.source, SqlSource):
            raise UserError(
                f"feature view {fv.name!r} is computed by its SqlSource query: run `strato backfill START END {fv.name}`"
            )
        elif not isinstance(fv.source, FileSource):
            if fv.source is not None:  # a KafkaSource
                raise UserError(f"feature view {fv.name!r} reads from Kafka: run `strato ingest {fv.name}`")
            raise UserError(f"feature view {fv.name!r} has no source; give it source=FileSource(...) or use write()")
        else:
            rows = sources.read_source(fv.source, self.config.repo_path, types=types)
        return self.write(fv, rows, to=to, idempotency_key=idempotency_key)

    def quarantined(self, view: str | FeatureView) -> pa.Table:
        """The rows writes of `view` set aside for breaking its data-quality rules (views with
        ``on_invalid="quarantine"``): the written columns plus ``quarantine_reason`` (the rules
        each row broke) and ``quarantined_at``; no rows when none were set aside."""
        fv = self.catalog.current(view)
        self._check("read", Resource("feature_view", fv.name))
        snapshot = self.delta.snapshot(quarantine_table(fv))
        if snapshot is None:
            return quarantine_schema(fv).empty_table()
        return self.offline_engine.read(snapshot)

    def write_stats(self, view: str | FeatureView, *, limit: int = 20) -> list[WriteStats]:
        """Per-feature statistics of the view's latest `limit` history writes, newest first."""
        fv = self.catalog.current(view)
        self._check("read", Resource("feature_view", fv.name))
        return self.registry.write_stats(fv.table_name, limit=limit)

    def source_path(self, view: str | FeatureView) -> Path | None:
        """The local file or folder of the view's `FileSource`, or None (no source, or a URI)."""
        fv = self.catalog.current(view)
        if not isinstance(fv.source, FileSource) or "://" in str(fv.source.path):
            return None
        path = Path(fv.source.path).expanduser()
        return path if path.is_absolute() else self.config.repo_path / path

    def push(self, view: str | FeatureView, data: Any, *, to: WriteTarget = "online") -> WriteResult:
        """Feast's push: write fresh rows straight to the online store (or wherever `to` says)."""
        return self.write(view, data, to=to)

    def materialize(
        self,
        start: datetime | None,
        end: datetime,
        *,
        views: Sequence[str] | None = None,
        progress: bool = True,
    ) -> MaterializeResult:
        """Load, per key, the latest row with ``start <= event time < end`` from history online.

        Rule 4 holds: a materialized row never overwrites a newer online value, so this is
        safe to run again, in any order, alongside live writes. A window does not move the
        incremental progress past rows it did not load (only a run from the beginning of
        history can widen it).
        """
        self._check_writable("materialize")
        began = time.perf_counter()
        start_utc, end_utc = _utc(start, "materialize start") if start else None, _utc(end, "materialize end")
        if start_utc is not None and start_utc >= end_utc:
            raise UserError(f"materialize: start {start_utc.isoformat()} must be before end {end_utc.isoformat()}")
        check_end(end_utc, allowance_seconds=self.config.max_future_seconds)
        chosen = self._views_to_materialize(views)
        computed = self._compute_transformed(chosen, start_utc, end_utc, progress)
        loaded = {fv.name: self._materializer.window(fv, start_utc, end_utc, progress) for fv in chosen}
        return MaterializeResult(loaded, start_utc, end_utc, time.perf_counter() - began, computed)

    def materialize_incremental(
        self, end: datetime, *, views: Sequence[str] | None = None, progress: bool = True
    ) -> MaterializeResult:
        """Load every row committed to history since the last run (event time before `end`).

        What was loaded is tracked per storage by Delta table version, not by event time: a
        late row, an offline-only write, or a write whose online step failed after its
        history commit is loaded by the next run, whatever its event time.
        """
        self._check_writable("materialize_incremental")
        began = time.perf_counter()
        end_utc = _utc(end, "materialize end")
        check_end(end_utc, allowance_seconds=self.config.max_future_seconds)
        chosen = self._views_to_materialize(views)
        computed = self._compute_transformed(chosen, None, end_utc, progress)
        loaded = {fv.name: self._materializer.incremental(fv, end_utc, progress) for fv in chosen}
        return MaterializeResult(loaded, None, end_utc, time.perf_counter() - began, computed)

    def backfill(
        self,
        start: datetime,
        end: datetime,
        views: Sequence[str] | None = None,
        *,
        step: timedelta | None = None,
        progress: bool = True,
        dry_run: bool = False,
    ) -> BackfillResult:
        """Compute views fed by a `SqlSource` over the event times ``[start, end)`` not computed yet.

        Each gap's query result is written like `write` (history and online, all or nothing
        per piece) and recorded as computed, so running it again does nothing (no query, no
        Delta version) and an overlapping range computes only what is missing
        (`strato.store.backfill`). `views` default to every view with a SqlSource; inputs are
        computed before the views that read them. `step` cuts each gap into pieces of that
        length (bounded memory, progress, and a stop loses at most one piece). `dry_run`
        returns the gaps that would be computed, running no query and writing nothing.
        """
        self._check_writable("backfill")
        began = time.perf_counter()
        start_utc, end_utc = _utc(start, "backfill start"), _utc(end, "backfill end")
        if start_utc >= end_utc:
            raise UserError(f"backfill: start {start_utc.isoformat()} must be before end {end_utc.isoformat()}")
        clock.check_not_future(end_utc, "backfill: end", allowance_seconds=self.config.max_future_seconds)
        if step is not None and (not isinstance(step, timedelta) or step <= timedelta(0)):
            raise UserError(f"backfill: step must be a positive duration, got {step!r}")
        chosen = self._transformed_views(views)
        backfiller = self._backfiller
        done = {
            fv.name: backfiller.run(fv, start_utc, end_utc, step=step, progress=progress, dry_run=dry_run)
            for fv in chosen
        }
        return BackfillResult(done, start_utc, end_utc, time.perf_counter() - began)

    def computed_intervals(self, view: str | FeatureView) -> list[Interval]:
        """The event-time intervals of a SqlSource view that its current query has computed."""
        fv = self.catalog.current(view)
        self._check("read", Resource("feature_view", fv.name))
        return self._backfiller.computed(fv)

    def _transformed_views(self, names: Sequence[str] | None) -> list[FeatureView]:
        """The views to compute (checked: write on each, read on what its query reads)."""
        if names is None:
            chosen = [v for v in self._all_views() if isinstance(v.source, SqlSource)]
        else:
            chosen = [self.catalog.current(n) for n in names]
            for fv in chosen:
                transformation(fv)
        self._check_transform_access(chosen)
        return in_input_order(chosen)

    def _check_transform_access(self, chosen: Sequence[FeatureView]) -> None:
        self._check("write", *(Resource("feature_view", fv.name) for fv in chosen))
        reads = [n for fv in chosen if isinstance(fv.source, SqlSource) for n in fv.source.view_names]
        if reads:
            self._check("read", *(Resource("feature_view", n) for n in dict.fromkeys(reads)))

    def _compute_transformed(
        self, chosen: Sequence[FeatureView], start: datetime | None, end: datetime, progress: bool
    ) -> dict[str, ViewBackfill]:
        """Before materializing, compute the SqlSource views among `chosen` up to `end`: from
        `start`, or without one from where their computed intervals begin. A view never
        computed, asked without a start, is left for `backfill` to begin."""
        transformed = in_input_order([fv for fv in chosen if isinstance(fv.source, SqlSource)])
        self._check_transform_access(transformed)
        backfiller = self._backfiller
        caught_up = {fv.name: backfiller.catch_up(fv, start, end, progress=progress) for fv in transformed}
        return {name: done for name, done in caught_up.items() if done is not None}

    @property
    def _backfiller(self) -> Backfiller:
        return Backfiller(
            self.catalog, self.registry, self.delta, lambda: self.offline_engine, self.write, self.config.repo_path
        )

    def online_status(self, view: str | FeatureView) -> tuple[OnlineProgress | None, TableVersion | None]:
        """(what of the view's history is known to be online, its latest table version)."""
        fv = self.catalog.current(view)
        self._check("read", Resource("feature_view", fv.name))
        return self._materializer.status(fv)

    def _views_to_materialize(self, names: Sequence[str] | None) -> list[FeatureView]:
        if names is None:
            chosen = [v for v in self._all_views() if v.online and v.offline]
        else:
            chosen = [self.catalog.current(n) for n in names]
        for fv in chosen:
            if not (fv.online and fv.offline):
                raise UserError(f"feature view {fv.name!r} must be both online and offline to be materialized")
        self._check("write", *(Resource("feature_view", fv.name) for fv in chosen))
        return chosen

    def prune_expired(self, views: Sequence[str] | None = None) -> dict[str, int]:
        """Delete online values older than their view's ttl; how many, per view.

        Reads already return such values as EXPIRED (rule 4): this frees their space, for
        entities that stopped receiving updates. Views without a ttl keep everything.
        """
        self._check_writable("prune_expired")
        chosen = [self.catalog.current(n) for n in views] if views is not None else self._all_views()
        self._check("write", *(Resource("feature_view", fv.name) for fv in chosen))
        now_us = time.time_ns() // 1000
        pruned: dict[str, int] = {}
        for fv in chosen:
            cut = expired_before_us(fv.ttl, now_us)
            if fv.online and cut is not None:
                pruned[fv.name] = self.online_store.prune(fv.table_name, cut)
            if fv.online and fv.aggregations:  # idle entities' tiles (their rows, not counted above)
                prune_tiles(self.online_store, fv, now_us)
        return pruned

    # ------------------------------------------------------------------ reads

    def get_online_features(
        self,
        features: Sequence[str] | FeatureService,
        entity_rows: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]],
        *,
        full_feature_names: bool = False,
    ) -> OnlineResponse:
        """The latest value of each feature for each entity row, one engine call per view.

        `entity_rows` is a list of dicts of join keys (or a dict of key columns). Values older
        than the view's ttl come back missing with status EXPIRED; absent keys NOT_FOUND.
        On-demand features (``odfv:feature``) are computed from the same read and the rows'
        request fields (`strato.store.on_demand`).
        """
        return self._on_demand.get(features, entity_rows, full_feature_names)

    def read_resources(self, features: Sequence[str] | FeatureService) -> tuple[Resource, ...]:
        """What reading `features` needs read access on: the service, or each view named and,
        for an on-demand view, the views it reads from. The SDK's reads check exactly these,
        and `strato serve` asks here too, so both decide alike."""
        return self._on_demand.resources(features)

    def refresh(self) -> None:
        """Forget cached definitions and request plans, so the next calls follow the registry.

        A store re-checks the registry by itself at most once a second
        (`strato.store.catalog.RECHECK_SECONDS`): an `apply` from another process reaches a
        long-running server or writer within that time. Call this to make it immediate.
        """
        self.catalog.invalidate()

    def get_historical_features(
        self,
        entity_df: Any = None,
        features: Sequence[str] | FeatureService | None = None,
        *,
        full_feature_names: bool = False,
        timestamp_field: str = "event_timestamp",
        as_of: datetime | None = None,
        versions: Mapping[str, TableVersion | None] | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        spine_view: str | None = None,
        engine_result: bool = False,
    ) -> TrainingSet:
        """A training set: `entity_df` plus each feature as of each row's event time (rule 3).

        Row order and every column of `entity_df` are kept. `as_of` reads history as it was
        at that time; `versions` (from an earlier `TrainingSet.versions`) pins each view's
        table version exactly. On-demand features are computed over the joined columns, with
        request fields taken from `entity_df`'s columns.
        Without an `entity_df`, the entities come from history
        (`strato.store.spines`): every entity of the views at each of its event times with
        ``start <= t < end``, or, with ``spine_view="labels"``, that view's rows (labels joined
        to features).
        ``engine_result=True`` leaves the rows in the offline engine (`TrainingSet.frame`, a Spark
        DataFrame on engine spark) instead of collecting them here; windowed-aggregation and
        on-demand features, computed in this process, are refused with it.
        """
        if features is None:
            raise UserError("get_historical_features: features are required (a list of 'view:feature' or a service)")
        spine_versions: dict[str, TableVersion | None] = {}
        if spine_view is not None:
            self._check("read", Resource("feature_view", spine_view))
        if entity_df is None:
            made = spine_from_history(
                self.catalog,
                self.delta,
                self.offline_engine,
                features,
                start=start,
                end=end,
                spine=spine_view,
                as_of=as_of,
                versions=versions,
            )
            entity_df, timestamp_field, spine_versions = made.table, frames.EVENT_TIMESTAMP, made.versions
            versions = {**made.versions, **(versions or {})}
        elif start is not None or end is not None or spine_view is not None:
            raise UserError("get_historical_features: start, end and spine_view are for calls without an entity_df")
        if self._on_demand.involves(features, full_feature_names):
            if engine_result:
                raise UserError(
                    "get_historical_features: engine_result=True cannot include on-demand features "
                    "(they are computed in this process); request their sources and compute them in the engine"
                )
            # Checked as a whole (the on-demand views and their sources, or the service): the
            # joins the on-demand path makes for its inputs are then not checked again.
            self._check("read", *self._on_demand.resources(features))
            return self._on_demand.historical(
                functools.partial(self._join_history, check=False),
                entity_df,
                features,
                full_feature_names,
                timestamp_field=timestamp_field,
                as_of=as_of,
                versions=versions,
            )
        return self._join_history(
            entity_df,
            features,
            full_feature_names=full_feature_names,
            timestamp_field=timestamp_field,
            as_of=as_of,
            versions=versions,
            spine_versions=spine_versions,
            engine_result=engine_result,
        )

    def _join_history(
        self,
        entity_df: Any,
        features: Sequence[str] | FeatureService,
        *,
        full_feature_names: bool,
        timestamp_field: str,
        as_of: datetime | None,
        versions: Mapping[str, TableVersion | None] | None,
        spine_versions: Mapping[str, TableVersion | None] | None = None,
        check: bool = True,
        engine_result: bool = False,
    ) -> TrainingSet:
        """The point-in-time join of stored features (rule 3), `get_historical_features`' core."""
        spine_versions = spine_versions or {}
        selections = self.catalog.select(features, full_feature_names)
        if check and isinstance(features, FeatureService):
            self._check("read", Resource("feature_service", features.name))
        elif check:
            self._check("read", *dict.fromkeys(Resource("feature_view", fv.name) for _, fv, _ in selections))
        key_fields = {k.name: k for _, fv, _ in selections for k in fv.join_keys}
        spine = frames.conform_spine(entity_df, list(key_fields.values()), timestamp_field)
        if timestamp_field != frames.EVENT_TIMESTAMP:
            if frames.EVENT_TIMESTAMP in spine.column_names:
                raise UserError(f"entity_df has both {timestamp_field!r} and 'event_timestamp' columns")
            spine = spine.rename_columns(
                [frames.EVENT_TIMESTAMP if c == timestamp_field else c for c in spine.column_names]
            )
        taken = set(spine.column_names)
        requests: list[PitRequest] = []
        used_versions: dict[str, TableVersion | None] = {}
        output: list[str] = []
        aggregated: dict[str, pa.Array] = {}
        for selection, fv, names in selections:
            if not fv.offline:
                raise UserError(f"feature view {fv.name!r} is online only (offline=False): it has no history")
            clash = taken & set(names)
            if clash:
                raise UserError(
                    f"feature names {sorted(clash)} appear twice in the training set; "
                    "pass full_feature_names=True to prefix them with their view name"
                )
            taken |= set(names)
            # Keyed by storage, not view version: a compatible change (v1 → v2) keeps the
            # table, so a training set built before it can still be rebuilt after it.
            label = f"{fv.name}@v{fv.data_version or 1}"
            pinned = versions.get(label) if versions is not None else None
            if versions is not None and label not in versions:
                raise UserError(f"versions has no entry for {label}; it has {sorted(versions)}")
            snapshot = self.delta.snapshot(fv.table_name, as_of=pinned if pinned is not None else as_of)
            if versions is not None and pinned is None and snapshot is not None:
                snapshot = None  # pinned as "no data yet"
            used_versions[label] = snapshot.version if snapshot else None
            output.extend(names)
            windowed = [(f, n) for f, n in zip(selection.features, names, strict=True) if f in fv.aggregation_names]
            if windowed:  # computed from the raw history, as the online tiles would serve them
                columns = historical_values(self.offline_engine, fv, snapshot, spine, [f for f, _ in windowed])
                aggregated.update(zip((n for _, n in windowed), columns, strict=True))
            stored = [(f, n) for f, n in zip(selection.features, names, strict=True) if f not in fv.aggregation_names]
            if stored:
                features, stored_names = [f for f, _ in stored], [n for _, n in stored]
                types = [fv.feature(f).dtype.to_arrow() for f in features]
                requests.append(PitRequest(snapshot, fv.join_key_names, features, stored_names, types, fv.ttl))
        if engine_result:
            if aggregated:
                raise UserError(
                    "get_historical_features: engine_result=True cannot include windowed aggregations "
                    f"({sorted(aggregated)}): they are computed in this process"
                )
            rename = {frames.EVENT_TIMESTAMP: timestamp_field} if timestamp_field != frames.EVENT_TIMESTAMP else {}
            frame = self.offline_engine.point_in_time_frame(spine, requests, rename=rename)
            empty = _append_empty(spine.slice(0, 0), requests)
            if rename:
                empty = empty.rename_columns([rename.get(c, c) for c in empty.column_names])
            return TrainingSet(empty, {**spine_versions, **used_versions}, tuple(output), frame=frame)
        table = self.offline_engine.point_in_time_join(spine, requests)
        if aggregated:
            table = pa.table(
                {c: table.column(c) for c in spine.column_names}
                | {n: aggregated[n] if n in aggregated else table.column(n) for n in output}
            )
        if timestamp_field != frames.EVENT_TIMESTAMP:
            table = table.rename_columns(
                [timestamp_field if c == frames.EVENT_TIMESTAMP else c for c in table.column_names]
            )
        return TrainingSet(table, {**spine_versions, **used_versions}, tuple(output))

    def sql(self, query: str, *, as_of: AsOf = None) -> pa.Table:
        """Run SQL over history: each view is a table named after it, older versions are
        ``VIEW__vN``, training sets ``training_sets.NAME`` (`strato.store.sql_tables`).

        `as_of` a datetime reads every table as it was then; a mapping pins single tables
        (by SQL name) to a table version or a time.
        """
        self._check("read", self._project_resource)  # SQL sees every view: a project-wide read
        tables = sql_tables(
            query,
            as_of,
            catalog=self.catalog,
            registry=self.registry,
            delta=self.delta,
            repo_path=self.config.repo_path,
            current_views=self._all_views(),
            history_schema=_history_schema,
        )
        return self.offline_engine.sql(query, tables)

    # ------------------------------------------------------------------ training sets

    def create_training_set(
        self,
        name: str,
        service: str,
        entity_df: Any = None,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        spine_view: str | None = None,
        full_feature_names: bool = False,
        timestamp_field: str = "event_timestamp",
        author: str | None = None,
    ) -> SavedTrainingSet:
        """Build a training set from `service` (``name`` or ``name@vN``), save its rows under the
        repo and register it with everything needed to rebuild it (`strato.store.training_sets`).

        The entities come from `entity_df`, or from history between `start` and `end` (every
        entity of the service's views, or the rows of the `spine_view`, e.g. labels).
        """
        self._check_writable("create_training_set")
        self._check("read", Resource("feature_service", service.partition("@")[0]))
        self._check("write", self._project_resource)  # registers a new object in the project
        return self._training_sets.create(
            name,
            service,
            entity_df,
            start=start,
            end=end,
            spine_view=spine_view,
            full_feature_names=full_feature_names,
            timestamp_field=timestamp_field,
            author=author or _whoami(),
        )

    def get_training_set(self, name: str, *, version: int | None = None) -> SavedTrainingSet:
        """A registered training set (its latest version, or `version`): record and rows."""
        self._check("list", self._project_resource)
        return self._training_sets.get(name, version)

    def list_training_sets(self, name: str | None = None) -> list[TrainingSetRecord]:
        """Every version of every registered training set (or of `name`)."""
        self._check("list", self._project_resource)
        return self._training_sets.list(name)

    def rebuild_training_set(self, name: str, version: int | None = None) -> RebuildResult:
        """Recompute a training set from its pinned versions; `.matches` says if it is bit for bit the same."""
        self._check("list", self._project_resource)
        return self._training_sets.rebuild(name, version, save=not self.read_only)

    def lineage(self, target: str) -> Node:
        """What `target` (``training-set:NAME``, ``service:NAME``, ``view:NAME`` or a bare name)
        comes from and what uses it, as a tree (`strato.store.lineage`)."""
        self._check("list", self._project_resource)
        return lineage(self.catalog, self.registry, target)

    # ------------------------------------------------------------------ table upkeep

    def compact(self, views: Sequence[str] | None = None) -> list[Compaction]:
        """Rewrite small history files into larger ones (every storage of `views`, default all);
        every table version stays readable, so training sets still rebuild."""
        self._check_writable("compact")
        chosen = views if views is not None else [v.name for v in self._all_views()]
        self._check("write", *(Resource("feature_view", name) for name in chosen))
        return Upkeep(self.catalog, self.registry, self.delta).compact(views)

    def vacuum(
        self, retain: timedelta, views: Sequence[str] | None = None, *, force: bool = False, dry_run: bool = False
    ) -> VacuumReport:
        """Delete history files no version younger than `retain` reads, never those a registered
        training set pins: if any would go, refuse naming them (`force`: delete the rest)."""
        self._check_writable("vacuum")
        self._check("admin", self._project_resource)  # deletes files for good: past versions go
        return Upkeep(self.catalog, self.registry, self.delta).vacuum(retain, views, force=force, dry_run=dry_run)

    @property
    def _training_sets(self) -> TrainingSets:
        return TrainingSets(self.catalog, self.registry, self.config.repo_path, self.get_historical_features)

    # ------------------------------------------------------------------ helpers

    @property
    def _project_resource(self) -> Resource:
        return Resource("project", self.config.project)

    def _check(self, action: str, *resources: Resource) -> None:
        """Access control (`strato.access`): raise unless this store's token may `action` these."""
        self.access.check(action, resources)

    def _all_views(self) -> list[FeatureView]:
        """Every current view, for verbs that act on all of them (checked per view by the caller)."""
        return [v for v in self.registry.list("feature_view") if isinstance(v, FeatureView)]

    def _append(
        self,
        fv: FeatureView,
        rows: pa.Table,
        idempotency_key: str | None,
        created_us: int,
        transactions: Mapping[str, int] | None = None,
        expected_transactions: Mapping[str, int | None] | None = None,
    ) -> TableVersion:
        """One history commit; if a newer version of the view retired this storage meanwhile,
        the definitions are re-read at once, so the caller's next write goes to it."""
        try:
            return self.delta.append(
                fv.table_name,
                rows,
                idempotency_key=idempotency_key,
                created_us=created_us,
                transactions=transactions,
                expected_transactions=expected_transactions,
            )
        except ConflictError:
            self.catalog.invalidate()
            raise

    def _next_created_us(self) -> int:
        """Write time, unique and increasing across every writer of the repo (rule 10)."""
        return self._clock.next_us()


def _committed(history: Future[TableVersion]) -> TableVersion:
    """Wait for a history commit, even through Ctrl-C: its version must be known to report it.

    A second interrupt while waiting gives up, with a note that the commit may have landed.
    """
    try:
        return history.result()
    except KeyboardInterrupt as exc:
        try:
            return history.result()
        except KeyboardInterrupt:
            exc.add_note("a history commit was in flight; `strato describe` shows whether it landed")
            raise exc from None


def _history_schema(fv: FeatureView) -> pa.Schema:
    """The columns of a view's history table: join keys, event time, features, write time."""
    return pa.schema(
        [pa.field(k.name, k.dtype.to_arrow(), nullable=False) for k in fv.join_keys]
        + [pa.field(frames.EVENT_TIMESTAMP, TIMESTAMP_ARROW, nullable=False)]
        + [pa.field(f.name, f.dtype.to_arrow()) for f in fv.schema]
        + [pa.field(frames.CREATED_TIMESTAMP, TIMESTAMP_ARROW, nullable=False)]
    )


def _utc(moment: datetime, what: str = "materialize") -> datetime:
    return clock.to_utc(moment, what)


def _whoami() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _append_empty(spine: pa.Table, requests: Sequence[PitRequest]) -> pa.Table:
    """`spine` (no rows) with each request's output columns: the schema of an engine result."""
    for request in requests:
        for name, out_type in zip(request.output_names, request.output_types, strict=True):
            spine = spine.append_column(name, pa.array([], out_type))
    return spine


_SOURCE_COLUMN, _OFFSET_COLUMN = "__strato_stream_source", "__strato_stream_offset"


def _with_positions(fv: FeatureView, data: Any, positions: StreamPositions) -> tuple[pa.Table, tuple[str, str]]:
    """`data` with its rows' stream positions as two columns `conform_batch` carries along."""
    if not isinstance(data, pa.Table):
        raise UserError(f"write to {fv.name!r}: stream_positions need the rows as a pyarrow Table")
    if len(positions.sources) != data.num_rows:
        raise UserError(f"write to {fv.name!r}: {len(positions.sources)} stream positions for {data.num_rows} rows")
    table = data.append_column(_SOURCE_COLUMN, pa.array(positions.sources, pa.string()))
    return table.append_column(_OFFSET_COLUMN, pa.array(positions.offsets, pa.int64())), (
        _SOURCE_COLUMN,
        _OFFSET_COLUMN,
    )
