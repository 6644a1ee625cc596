"""What a `store.sql` query sees: the tables it may name, each pinned to one committed version.

The names (docs/concepts.md, "SQL access"):

* ``VIEW``: the view's current version, over its storage's latest table version;
* ``VIEW__vN``: the view as its definition version N declared it, which is what ``VIEW@vN``
  names elsewhere. It reads the storage that version reads, with that version's columns.
  The storage of a version is the Delta table ``VIEW__vK`` (K is the version whose data it
  shares, shown by `strato describe`), so a storage name is also a valid SQL name and reads
  the same table. A view whose own name ends in ``__vN`` keeps its name;
* ``training_sets.NAME``: a registered training set's latest version (its saved rows), and
  ``training_sets.NAME__vN`` its version N. Names with ``.`` or ``-`` are quoted:
  ``training_sets."churn-2026"``. They live in a schema of their own so they never shadow a
  view.

Pins: `as_of` a datetime reads every table as it was then (a training set as its latest
version created by then); a mapping pins single tables by SQL name to a table version or a
time, the rest reading their latest.

Current views are always registered, so ``SHOW TABLES`` lists them. Older versions and
training sets are registered only when the query text mentions their name (a superset found
by scanning the text: a name inside a string literal costs one snapshot, nothing more), so a
call costs the same however long the history grows. Which names exist is the registry's
answer; an unknown one is left to the engine, which says the table does not exist.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from strato import clock
from strato.definitions.feature_view import FeatureView
from strato.errors import NotFoundError, UserError
from strato.offline.base import TableSnapshot
from strato.registry.base import RegistryStore, TrainingSetRecord
from strato.store.catalog import Catalog
from strato.store.training_sets import ROWS_FILE
from strato.types import TableVersion

if TYPE_CHECKING:  # deltalake is imported on first use: a lookup never needs it
    from strato.offline.delta import DeltaTables

TRAINING_SETS = "training_sets"
"""The SQL schema that holds the training sets."""

Pin = TableVersion | datetime
AsOf = datetime | Mapping[str, Pin] | None

_OLD_VIEW = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*?)__v([0-9]+)\b", re.IGNORECASE)
_TRAINING_SET = re.compile(
    rf"\b{TRAINING_SETS}\s*\.\s*(?:\"((?:[^\"]|\"\")+)\"|([A-Za-z_][A-Za-z0-9_]*))", re.IGNORECASE
)
_VERSIONED = re.compile(r"(.+)__v([0-9]+)", re.IGNORECASE)


def sql_tables(
    query: str,
    as_of: AsOf,
    *,
    catalog: Catalog,
    registry: RegistryStore,
    delta: DeltaTables,
    repo_path: Path,
    current_views: Iterable[FeatureView],
    history_schema: Callable[[FeatureView], pa.Schema],
) -> list[TableSnapshot]:
    """The snapshots `query` may read, each under its SQL name (see the module doc)."""
    pins = _pins(as_of)
    views = {fv.name: fv for fv in current_views if fv.offline}
    chosen: dict[str, FeatureView] = dict(views)
    for name, fv in _old_views(query, views, catalog).items():
        chosen.setdefault(name, fv)
    unknown = sorted(set(pins) - set(chosen))
    if unknown:
        raise UserError(
            f"as_of pins {unknown}, which the query does not read as views; pin a view by its SQL name "
            f"(one of {sorted(chosen)}), and a training set by its version (training_sets.NAME__vN)"
        )
    tables = []
    for name, fv in chosen.items():
        pin = pins.get(name, as_of if isinstance(as_of, datetime) else None)
        snapshot = delta.snapshot(fv.table_name, as_of=pin)
        if snapshot is None:  # no data yet (or not at that time): an empty table, so queries still bind
            snapshot = TableSnapshot(fv.name, "", -1, (), history_schema(fv))
        else:
            snapshot = dataclasses.replace(snapshot, schema=_columns_of(history_schema(fv), snapshot.schema))
        tables.append(dataclasses.replace(snapshot, name=name))  # SQL sees the view's name
    when = clock.to_utc(as_of, "as_of") if isinstance(as_of, datetime) else None
    tables += _training_sets(query, when, registry, repo_path)
    return tables


def _pins(as_of: AsOf) -> dict[str, Pin]:
    if as_of is None or isinstance(as_of, datetime):
        return {}
    if not isinstance(as_of, Mapping):
        raise UserError(f"as_of must be a datetime or a mapping of table name to version or time, got {as_of!r}")
    pins: dict[str, Pin] = {}
    for name, pin in as_of.items():
        if isinstance(pin, bool) or not isinstance(pin, int | datetime):
            raise UserError(f"as_of[{name!r}] must be a table version (int) or a datetime, got {pin!r}")
        if isinstance(pin, int) and pin < 0:
            raise UserError(f"as_of[{name!r}]: table versions start at 0, got {pin}")
        pins[str(name)] = clock.to_utc(pin, f"as_of[{name!r}]") if isinstance(pin, datetime) else pin
    return pins


def _old_views(query: str, views: Mapping[str, FeatureView], catalog: Catalog) -> dict[str, FeatureView]:
    """``VIEW__vN`` names the query mentions, as the definition versions they name."""
    by_lower = {name.lower(): name for name in views}
    found: dict[str, FeatureView] = {}
    for match in _OLD_VIEW.finditer(query):
        base, number = by_lower.get(match.group(1).lower()), int(match.group(2))
        sql_name = f"{base}__v{number}"
        if base is None or sql_name in views or sql_name in found or number < 1:
            continue
        try:
            found[sql_name] = catalog.view(base, version=number)
        except NotFoundError:
            continue  # no such version: the engine says the table does not exist
    return found


def _columns_of(declared: pa.Schema, stored: pa.Schema) -> pa.Schema:
    """The columns a version declared, typed as stored: its storage may have gained fields
    since, and a field it declared that the table version predates reads null (rule 6)."""
    return pa.schema([stored.field(f.name) if f.name in stored.names else f for f in declared])


def _training_sets(query: str, when: datetime | None, registry: RegistryStore, repo: Path) -> list[TableSnapshot]:
    mentioned = {(quoted.replace('""', '"') if quoted else bare) for quoted, bare in _TRAINING_SET.findall(query)}
    if not mentioned:
        return []
    records: dict[str, list[TrainingSetRecord]] = {}
    for each in registry.list_training_sets():
        records.setdefault(each.name, []).append(each)
    by_lower = {name.lower(): name for name in records}
    tables = []
    for sql_name in sorted(mentioned):
        record = _training_set(sql_name, when, records, by_lower)
        if record is None:
            continue
        path = repo / record.location / ROWS_FILE
        if not path.is_file():
            raise UserError(
                f"training set {record.name!r} version {record.version}: its rows are missing ({path}); "
                f"`strato training-set rebuild {record.name} --version {record.version}` recomputes them"
            )
        tables.append(
            TableSnapshot(
                f"{TRAINING_SETS}.{sql_name}", str(path.parent), record.version, (str(path),), pq.read_schema(path)
            )
        )
    return tables


def _training_set(
    sql_name: str,
    when: datetime | None,
    records: Mapping[str, list[TrainingSetRecord]],
    by_lower: Mapping[str, str],
) -> TrainingSetRecord | None:
    """The record `sql_name` names: ``NAME`` (latest, or latest by `when`) or ``NAME__vN``."""
    name = by_lower.get(sql_name.lower())
    if name is not None:
        versions = [r for r in records[name] if when is None or r.created_at is None or r.created_at <= when]
        if not versions:
            raise UserError(f"training set {name!r} had no version yet at as_of={when.isoformat() if when else ''}")
        return max(versions, key=lambda r: r.version)
    versioned = _VERSIONED.fullmatch(sql_name)
    name = by_lower.get(versioned.group(1).lower()) if versioned else None
    if versioned is None or name is None:
        return None
    number = int(versioned.group(2))
    return next((r for r in records[name] if r.version == number), None)
