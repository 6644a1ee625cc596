"""Entity frames made from history: the spine of a historical read that was given none.

Two shapes (issue 8, item 3):

* *every entity over a time range*: the distinct (join keys, event time) of every view asked
  for, with ``start <= event_timestamp < end``: each entity at each moment one of its views
  changed. All views must share one set of join keys, or the moments of one would be
  meaningless keys for another.
* *another view as the spine* (labels joined to features): that view's rows in the range, one
  per (keys, event time), its latest write (rule 2), with its features carried as columns.

Either way the rows are ordered by event time, then keys, and read from pinned table
versions, which are handed back so the join reads the very same versions: a spine made this
way is rebuilt exactly from the versions a training set records.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import pyarrow as pa

from strato import clock, frames
from strato.definitions.feature_service import FeatureService
from strato.definitions.feature_view import FeatureView
from strato.definitions.plan import split_view_ref
from strato.errors import UserError
from strato.offline.base import OfflineEngine, TableSnapshot
from strato.store.catalog import Catalog
from strato.types import TIMESTAMP_ARROW, TableVersion

if TYPE_CHECKING:
    from strato.offline.delta import DeltaTables


@dataclass(frozen=True)
class Spine:
    """An entity frame read from history, and the table version of every view it was read at
    (keys ``view@vN`` as in `TrainingSet.versions`: the features' views and the spine view)."""

    table: pa.Table
    versions: dict[str, TableVersion | None]


def storage_label(fv: FeatureView) -> str:
    """The key of a view's storage in `TrainingSet.versions`: ``view@vN``, N its data version."""
    return f"{fv.name}@v{fv.data_version or 1}"


def spine_from_history(
    catalog: Catalog,
    delta: DeltaTables,
    engine: OfflineEngine,
    features: Sequence[str] | FeatureService,
    *,
    start: datetime | None,
    end: datetime | None,
    spine: str | None,
    as_of: datetime | None,
    versions: Mapping[str, TableVersion | None] | None,
) -> Spine:
    """The spine of `get_historical_features` called without an entity frame (see the module doc)."""
    start_utc = clock.to_utc(start, "start") if start is not None else None
    end_utc = clock.to_utc(end, "end") if end is not None else None
    if start_utc is not None and end_utc is not None and start_utc >= end_utc:
        raise UserError(f"start {start_utc.isoformat()} must be before end {end_utc.isoformat()}")
    views = list({fv.table_name: fv for _, fv, _ in catalog.select(features, False)}.values())
    pinned: dict[str, TableVersion | None] = {}

    def snapshot_of(fv: FeatureView) -> TableSnapshot | None:
        label = storage_label(fv)
        if versions is not None and label in versions:
            chosen = versions[label]
            snap = delta.snapshot(fv.table_name, as_of=chosen) if chosen is not None else None
        else:
            snap = delta.snapshot(fv.table_name, as_of=as_of)
        pinned[label] = snap.version if snap is not None else None
        return snap

    for fv in views:
        snapshot_of(fv)
    if spine is not None:
        name, version = split_view_ref(spine)
        source = catalog.view(name, version=version)
        if not source.offline:
            raise UserError(f"spine view {source.name!r} is online only (offline=False): it has no history")
        columns = list(source.feature_names)
        snap = snapshot_of(source)
        table = (
            engine.rows_between(snap, source.join_key_names, columns, start=start_utc, end=end_utc)
            if snap is not None
            else _empty(source, columns)
        )
        return Spine(table, pinned)
    keys = {tuple(fv.join_key_names) for fv in views}
    if len(keys) != 1:
        raise UserError(
            f"the views asked for have different join keys ({' vs '.join(', '.join(k) for k in sorted(keys))}): "
            "pass an entity_df, or spine_view=VIEW to take the entities from one view"
        )
    key_names = list(next(iter(keys)))
    first = views[0]
    parts: list[pa.Table] = []
    for fv in views:
        label = storage_label(fv)
        version = pinned[label]
        if version is None:
            continue
        snap = delta.snapshot(fv.table_name, as_of=version)
        assert snap is not None
        part = engine.rows_between(snap, key_names, [], start=start_utc, end=end_utc)
        parts.append(part.cast(_empty(first, []).schema))
    if not parts:
        return Spine(_empty(first, []), pinned)
    merged = pa.concat_tables(parts).group_by([*key_names, frames.EVENT_TIMESTAMP], use_threads=False).aggregate([])
    order = [(frames.EVENT_TIMESTAMP, "ascending"), *((k, "ascending") for k in key_names)]
    return Spine(merged.sort_by(order).select([*key_names, frames.EVENT_TIMESTAMP]), pinned)


def _empty(fv: FeatureView, columns: Sequence[str]) -> pa.Table:
    fields = [pa.field(k.name, k.dtype.to_arrow(), nullable=False) for k in fv.join_keys]
    fields.append(pa.field(frames.EVENT_TIMESTAMP, TIMESTAMP_ARROW, nullable=False))
    fields += [pa.field(c, fv.feature(c).dtype.to_arrow()) for c in columns]
    return pa.schema(fields).empty_table()
