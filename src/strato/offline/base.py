"""The offline-engine seam: read Delta snapshots, join them point-in-time, answer SQL.

Engines never write: `offline.delta` is the one writer, and it hands engines immutable
`TableSnapshot`s (a table version and its exact file list). An engine that reads Delta
natively (Spark) may use `path` and `version`; one that does not (DuckDB) reads `files` —
never a glob of the folder, which would resurrect files a later commit replaced.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Self

import pyarrow as pa
from pydantic import BaseModel, ConfigDict

from strato.errors import UserError
from strato.offline.pit import PitRequest
from strato.types import TableVersion


class EngineOptions(BaseModel):
    """Base of every engine's options model; unknown keys are an error, not ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


@dataclass(frozen=True)
class TableSnapshot:
    """One committed version of one view's history table.

    Columns: the join keys, ``event_timestamp``, the features, ``created_timestamp``.
    Within a snapshot (join keys, event_timestamp, created_timestamp) is unique, so rule 2
    ("ties go to the latest write") is: greatest created_timestamp wins.
    """

    name: str
    path: str
    version: TableVersion
    files: tuple[str, ...]
    schema: pa.Schema
    #: How to reach `files` when they are in an object store (`strato.offline.storage`);
    #: empty for a local folder. Secrets, so never in the repr.
    storage_options: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class ViewInput:
    """A view a batch transformation reads: its snapshot, visible under `snapshot.name`, and
    its join keys, so the engine can show each (keys, event time) once (its latest write)."""

    snapshot: TableSnapshot
    key_names: tuple[str, ...]


@dataclass(frozen=True)
class FileInput:
    """A batch file a transformation reads, visible under `name`: a Parquet file or folder, a
    CSV file, or a Delta table folder (its latest version). `path` is absolute."""

    name: str
    path: str
    format: str


@dataclass(frozen=True)
class BatchQuery:
    """One batch transformation: a SELECT over `views` and `files` whose result has an event
    time column `event_column`; the engine keeps the rows with ``start <= event < end``."""

    query: str
    views: tuple[ViewInput, ...]
    files: tuple[FileInput, ...]
    event_column: str


@dataclass(frozen=True)
class Capabilities:
    #: Can run `sql` over snapshots.
    sql: bool = True
    #: Each call answers in milliseconds, so a property test may make hundreds of them
    #: (Spark's jobs take a second or so each: its property tests run fewer examples).
    quick_calls: bool = True
    #: `point_in_time_frame` keeps results in the engine (a Spark DataFrame) instead of Arrow.
    frames: bool = False
    #: Can run `batch_query` (views computed by a SqlSource, `strato backfill`).
    batch_queries: bool = False


class OfflineEngine(abc.ABC):
    """Reads history tables; one instance per `FeatureStore`."""

    name: ClassVar[str]
    options_model: ClassVar[type[EngineOptions]]
    capabilities: ClassVar[Capabilities]

    @classmethod
    @abc.abstractmethod
    def open(cls, options: EngineOptions) -> Self:
        """Start (or connect to) the engine."""

    @abc.abstractmethod
    def point_in_time_join(self, spine: pa.Table, requests: Sequence[PitRequest]) -> pa.Table:
        """Design rule 3: `spine` plus, per request, its features as of each spine row.

        The spine holds the join keys and ``event_timestamp`` (timestamp µs UTC). Output: the
        spine's columns, in the spine's row order, then each request's output columns.
        """

    @abc.abstractmethod
    def latest(
        self, snapshot: TableSnapshot, key_names: Sequence[str], *, start: datetime | None, end: datetime
    ) -> pa.RecordBatchReader:
        """Per key, the winning row (rule 4) among rows with ``start <= event_timestamp < end``."""

    def rows_between(
        self,
        snapshot: TableSnapshot,
        key_names: Sequence[str],
        columns: Sequence[str],
        *,
        start: datetime | None,
        end: datetime | None,
    ) -> pa.Table:
        """Every (keys, event_timestamp) with ``start <= event_timestamp < end`` (None: unbounded),
        once, with `columns` of its latest write (rule 2), ordered by event_timestamp then keys.

        The spine of a historical read without an entity frame. Columns the files lack read as
        null; the output has the snapshot schema's types. This default filters `read` in
        Arrow; an engine overrides it with a query of its own.
        """
        import pyarrow.compute as pc

        event, created = "event_timestamp", "created_timestamp"
        table = self.read(snapshot)
        if start is not None:
            table = table.filter(
                pc.greater_equal(table.column(event), pa.scalar(start, table.schema.field(event).type))
            )
        if end is not None:
            table = table.filter(pc.less(table.column(event), pa.scalar(end, table.schema.field(event).type)))
        group = [*key_names, event]
        wanted = list(dict.fromkeys([*group, *columns]))
        winners = table.group_by(group, use_threads=False).aggregate([(created, "max")])
        winners = winners.rename_columns([*group, created])
        joined = table.select([*wanted, created]).join(winners, [*group, created], join_type="inner")
        order = [(event, "ascending"), *((k, "ascending") for k in key_names)]
        return joined.sort_by(order).select(wanted).cast(pa.schema([snapshot.schema.field(n) for n in wanted]))

    @abc.abstractmethod
    def read(self, snapshot: TableSnapshot) -> pa.Table:
        """The whole snapshot, as stored."""

    @abc.abstractmethod
    def sql(self, query: str, tables: Sequence[TableSnapshot]) -> pa.Table:
        """Run `query` with each snapshot visible as a table named by its `name`; a name
        ``schema.table`` (the split is at the first dot) puts the table in that schema."""

    def batch_query(
        self, batch: BatchQuery, *, start: datetime | None, end: datetime | None, limit: int | None = None
    ) -> pa.Table:
        """The rows of `batch.query` with ``start <= event_column < end`` (None: unbounded), at
        most `limit` of them. ``limit=0`` gives no rows, only the result's schema, cheaply, and
        does not apply the filter (so a mistyped event column reaches the caller's schema check
        rather than failing as SQL). ``$start`` and ``$end`` in the query are bound to the bounds.

        User SQL: an engine runs it as it runs `sql`, read-only and limited, and refuses
        anything but one SELECT. The filter applies to the query's *result*, so a window that
        looks back before `start` still sees its inputs.
        """
        raise UserError(
            f"offline engine {self.name} does not run batch transformations (SqlSource views); "
            "use offline engine duckdb for `strato backfill`"
        )

    def point_in_time_frame(
        self, spine: pa.Table, requests: Sequence[PitRequest], *, rename: Mapping[str, str] | None = None
    ) -> Any:
        """The join's result left in the engine (its own frame type), for engines with `frames`."""
        raise UserError(
            f"offline engine {self.name} returns Arrow tables only; engine_result=True needs an engine "
            "that keeps results in its own frames (offline engine spark)"
        )

    def serve_storage(self, root: str) -> None:
        """Told by the store, before its first call, where the tables live (a folder or an
        object-store URI), so an engine that needs a connector for it can load it at start
        (Spark's S3A jars). Storage options come with each snapshot. Default: nothing to do."""
        return None

    def check(self) -> list[str]:
        """What `strato doctor` reports as wrong (empty when the engine works); runs ``SELECT 1``."""
        answer = self.sql("SELECT 1 AS one", []).to_pylist()
        return [] if answer == [{"one": 1}] else [f"{self.name}: SELECT 1 answered {answer!r}"]

    @abc.abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
