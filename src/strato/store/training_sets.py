"""Training sets as registered, versioned objects (issue 8, item 1).

`create` builds a training set from a feature service, saves its rows as Parquet under the
feature repo (``.strato/training_sets/<name>/<id>/``) and records in the registry what it was
built from: the service version, each view's definition version and the table version of
its storage, digests of the entity frame and of the rows, the row count and per-column
statistics. `rebuild` recomputes it from those pins (Delta time travel), so the same rows
come back bit for bit after later writes, compatible schema changes and compaction; only a
vacuum that deleted the pinned files could break that, and `strato.store.upkeep` refuses one.

Features are read by pinned reference (``view@vN:feature``): the service may have moved on,
or its views gained fields, and a rebuild must read what the original read.

"Bit for bit" is checked by `digest`: SHA-256 of the rows written as Parquet with fixed
settings, after joining chunks, so it sees values, types and order, not how Arrow happened
to chunk them.
"""

from __future__ import annotations

import io
import math
import re
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from strato import clock
from strato.definitions.plan import split_view_ref
from strato.errors import BackendFailure, NotFoundError, UserError
from strato.registry.base import PinnedTable, RegistryStore, TrainingSetRecord
from strato.store.catalog import Catalog
from strato.store.results import TrainingSet
from strato.store.spines import storage_label

if TYPE_CHECKING:
    import pandas as pd

FOLDER = Path(".strato") / "training_sets"
"""Where the rows of training sets are saved, relative to the feature repo."""
ROWS_FILE = "rows.parquet"
ENTITIES_FILE = "entities.parquet"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,127}")

Historical = Callable[..., TrainingSet]
"""`FeatureStore.get_historical_features`, which does the joining."""


@dataclass(frozen=True)
class SavedTrainingSet:
    """A registered training set: its record and its rows."""

    record: TrainingSetRecord
    table: pa.Table

    def to_arrow(self) -> pa.Table:
        return self.table

    def to_df(self) -> pd.DataFrame:
        return self.table.to_pandas()  # type: ignore[no-any-return]


@dataclass(frozen=True)
class RebuildResult:
    """A training set recomputed from its pins: whether it matches the saved one bit for bit."""

    record: TrainingSetRecord
    table: pa.Table
    digest: str
    seconds: float

    @property
    def matches(self) -> bool:
        return self.digest == self.record.content_digest


def digest(table: pa.Table) -> str:
    """SHA-256 of `table`'s columns, types and values in order (see the module doc)."""
    import hashlib

    plain = table.replace_schema_metadata(None).combine_chunks()
    sink = io.BytesIO()
    pq.write_table(plain, sink, compression="none", use_dictionary=False, write_statistics=False)
    return hashlib.sha256(sink.getvalue()).hexdigest()


def column_statistics(table: pa.Table) -> dict[str, dict[str, Any]]:
    """Per column: count (non-null), nulls; min, max and mean where the type has them."""
    stats: dict[str, dict[str, Any]] = {}
    for name in table.column_names:
        column = table.column(name)
        entry: dict[str, Any] = {"type": str(column.type), "count": len(column) - column.null_count}
        entry["nulls"] = column.null_count
        kind = column.type
        if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind):
            numbers = column.cast(pa.float64()) if pa.types.is_boolean(kind) else column
            bounds = pc.min_max(numbers).as_py()
            entry.update(min=_plain(bounds["min"]), max=_plain(bounds["max"]), mean=_plain(pc.mean(numbers).as_py()))
        elif pa.types.is_timestamp(kind) or pa.types.is_string(kind) or pa.types.is_large_string(kind):
            bounds = pc.min_max(column).as_py()
            entry.update(min=_plain(bounds["min"]), max=_plain(bounds["max"]))
        stats[name] = entry
    return stats


def _plain(value: Any) -> Any:
    """JSON-safe: NaN and infinities as None (JSON has neither), times as ISO 8601."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    return value


class TrainingSets:
    """The training-set verbs of one `FeatureStore` (it passes its parts in)."""

    def __init__(self, catalog: Catalog, registry: RegistryStore, repo_path: Path, historical: Historical):
        self._catalog = catalog
        self._registry = registry
        self._repo = repo_path
        self._historical = historical

    def create(
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
        format: Literal["parquet"] = "parquet",
        author: str,
    ) -> SavedTrainingSet:
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise UserError(
                f"training set name {name!r} is invalid: letters, digits, '_', '.', '-', starting with a letter or '_'"
            )
        if format != "parquet":
            raise UserError(f"training set format {format!r} is not supported; use 'parquet'")
        if not isinstance(service, str):
            raise UserError(f"service must be a feature service name, got {service!r}")
        service_name, service_version = split_view_ref(service)
        svc = self._catalog.service(service_name, version=service_version)
        selections = self._catalog.select(svc, full_feature_names)
        features = tuple(
            (f"{fv.name}@v{fv.version}:{feature}", column)
            for selection, fv, columns in selections
            for feature, column in zip(selection.features, columns, strict=True)
        )
        tables = {storage_label(fv): fv for _, fv, _ in selections}
        if entity_df is not None:
            if start is not None or end is not None or spine_view is not None:
                raise UserError("create_training_set: give either an entity_df or start/end (and spine_view), not both")
            spine_spec: dict[str, Any] = {"kind": "entity_df"}
        else:
            if start is None or end is None:
                raise UserError("create_training_set: give an entity_df, or both start and end")
            spine_spec = {
                "kind": "range",
                "start": clock.to_utc(start, "start").isoformat(),
                "end": clock.to_utc(end, "end").isoformat(),
                "view": None,
            }
            if spine_view is not None:
                spine_name, spine_version = split_view_ref(spine_view)
                source = self._catalog.view(spine_name, version=spine_version)
                spine_spec["view"] = f"{source.name}@v{source.version}"
                tables.setdefault(storage_label(source), source)
        built = self._build(features, spine_spec, timestamp_field, entity_df, versions=None)
        pinned = tuple(
            PinnedTable(fv.name, fv.version or 1, label, fv.table_name, built.versions.get(label))
            for label, fv in tables.items()
        )
        spine_columns = [c for c in built.table.column_names if c not in {col for _, col in features}]
        location = FOLDER / name / uuid.uuid4().hex
        record = TrainingSetRecord(
            name=name,
            service=svc.name,
            service_version=svc.version or 1,
            tables=pinned,
            features=features,
            spine=spine_spec,
            timestamp_field=timestamp_field,
            entity_fingerprint=digest(built.table.select(spine_columns)),
            content_digest=digest(built.table),
            row_count=built.table.num_rows,
            statistics=column_statistics(built.table),
            location=location.as_posix(),
            format=format,
            author=author,
        )
        folder = self._repo / location
        staging = folder.with_name(folder.name + ".tmp")
        staging.mkdir(parents=True)
        try:
            pq.write_table(built.table, staging / ROWS_FILE)
            if spine_spec["kind"] == "entity_df":
                pq.write_table(built.table.select(spine_columns), staging / ENTITIES_FILE)
            staging.rename(folder)
            stored = self._registry.add_training_set(record)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return SavedTrainingSet(stored, built.table)

    def get(self, name: str, version: int | None = None) -> SavedTrainingSet:
        record = self._registry.get_training_set(name, version=version)
        path = self._repo / record.location / ROWS_FILE
        if not path.is_file():
            raise NotFoundError(
                f"training set {name!r} version {record.version}: its rows are missing ({path}); "
                f"`strato training-set rebuild {name} --version {record.version}` recomputes them"
            )
        return SavedTrainingSet(record, pq.read_table(path))

    def list(self, name: str | None = None) -> list[TrainingSetRecord]:
        return self._registry.list_training_sets(name)

    def rebuild(self, name: str, version: int | None = None, *, save: bool = False) -> RebuildResult:
        """Recompute a training set from its pins; with `save`, write its rows back if they
        were missing (only when the digest matches)."""
        began = time.perf_counter()
        record = self._registry.get_training_set(name, version=version)
        versions = {t.storage: t.table_version for t in record.tables}
        entity_df = None
        if record.spine["kind"] == "entity_df":
            path = self._repo / record.location / ENTITIES_FILE
            if not path.is_file():
                raise NotFoundError(f"training set {name!r} version {record.version}: its entity frame {path} is gone")
            entity_df = pq.read_table(path)
            if digest(entity_df) != record.entity_fingerprint:
                raise BackendFailure(
                    f"training set {name!r} version {record.version}: the saved entity frame {path} "
                    "no longer matches its fingerprint"
                )
        built = self._build(record.features, record.spine, record.timestamp_field, entity_df, versions=versions)
        result = RebuildResult(record, built.table, digest(built.table), time.perf_counter() - began)
        rows = self._repo / record.location / ROWS_FILE
        if save and result.matches and not rows.is_file():
            rows.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(built.table, rows)
        return result

    def _build(
        self,
        features: tuple[tuple[str, str], ...],
        spine: dict[str, Any],
        timestamp_field: str,
        entity_df: Any,
        *,
        versions: dict[str, int | None] | None,
    ) -> TrainingSet:
        """The join itself, output columns renamed to the training set's names."""
        refs = [ref for ref, _ in features]
        if spine["kind"] == "entity_df":
            result = self._historical(
                entity_df, refs, full_feature_names=True, timestamp_field=timestamp_field, versions=versions
            )
        else:
            result = self._historical(
                None,
                refs,
                full_feature_names=True,
                versions=versions,
                start=datetime.fromisoformat(spine["start"]),
                end=datetime.fromisoformat(spine["end"]),
                spine_view=spine["view"],
            )
        renamed = dict(zip(result.feature_names, (column for _, column in features), strict=True))
        names = [renamed.get(c, c) for c in result.table.column_names]
        clash = sorted({n for n in names if names.count(n) > 1})
        if clash:
            raise UserError(
                f"training set columns {clash} appear twice (a spine column and a feature); "
                "pass full_feature_names=True to prefix features with their view name"
            )
        return TrainingSet(result.table.rename_columns(names), result.versions, tuple(c for _, c in features))
