"""Loading history into the online store, and knowing how much of it is there.

Progress is kept per storage (a view version's Delta table) as an `OnlineProgress`: "every
row of commits up to version V whose event time is before U is online". It tracks what was
*committed*, not event times, so a row committed late with an old event time (an offline
backfill, a write whose online step failed after its Delta commit) is still loaded by the
next incremental run: that run reads every file added since V, whatever its rows' event
times, plus the rows of older files with event times in [U, end).

Every claim is a lower bound. A write to both stores advances it only when it is the next
commit after the claimed one; a run that cannot prove more leaves it alone; a compare-and-set
keeps two runs from widening each other's claims. Rows loaded twice cost time, never
correctness: the online store keeps the newest event per key (design rule 4).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import pyarrow as pa

from strato import clock, frames
from strato.definitions.feature_view import FeatureView
from strato.errors import NotFoundError
from strato.offline.base import OfflineEngine, TableSnapshot
from strato.online.base import OnlineStore
from strato.progress import row_progress
from strato.registry.base import OnlineProgress, RegistryStore
from strato.store.catalog import Catalog
from strato.store.threads import prefetched
from strato.types import TableVersion

if TYPE_CHECKING:
    from strato.offline.delta import DeltaTables  # deltalake waits for the first history read


@dataclass(frozen=True)
class Slice:
    """Part of one snapshot to load: some of its files, and the event times to take from them."""

    snapshot: TableSnapshot
    start: datetime | None


def unloaded_slices(
    latest: TableSnapshot, done: OnlineProgress | None, done_files: frozenset[str] | None
) -> list[Slice]:
    """What of `latest` may not be online yet, given progress `done` over the files `done_files`.

    Files committed after the claimed version are read whole (any event time before the
    end); files the claim covers only from its `until` on. Files a later commit removed
    (compaction) are gone from `latest`, and their rows live on in files it added.
    """
    if done is None or done_files is None or done.version > latest.version:
        return [Slice(latest, None)]
    new = tuple(f for f in latest.files if f not in done_files)
    old = tuple(f for f in latest.files if f in done_files)
    slices = []
    if new:
        slices.append(Slice(dataclasses.replace(latest, files=new), None))
    if old and done.until is not None:
        slices.append(Slice(dataclasses.replace(latest, files=old), done.until))
    return slices


class Materializer:
    """Moves history rows into the online store and keeps each storage's online progress."""

    def __init__(
        self,
        delta: DeltaTables,
        registry: RegistryStore,
        catalog: Catalog,
        engine: Callable[[], OfflineEngine],
        online: Callable[[], OnlineStore],
    ):
        self._delta, self._registry, self._catalog = delta, registry, catalog
        self._engine, self._online = engine, online

    def window(self, fv: FeatureView, start: datetime | None, end: datetime, progress: bool) -> int:
        """Load the latest row per key with ``start <= event < end`` from the latest snapshot.

        Progress moves only when the run proves a wider claim than the stored one: from the
        beginning of history, over at least the claimed commits and event times.
        """
        snapshot = self._delta.snapshot(fv.table_name)
        if snapshot is None:
            return 0
        loaded = self._load(fv, [Slice(snapshot, start)], end, progress)
        if start is None:
            done = self._registry.online_progress(fv.table_name)
            if done is None or (done.version <= snapshot.version and done.until is not None and done.until <= end):
                self._registry.advance_online_progress(
                    fv.table_name, OnlineProgress(snapshot.version, end), expected=done
                )
        return loaded

    def incremental(self, fv: FeatureView, end: datetime, progress: bool) -> int:
        """Load every row committed since the storage's progress (event time before `end`)."""
        latest = self._delta.snapshot(fv.table_name)
        if latest is None:
            return 0
        done = self._registry.online_progress(fv.table_name)
        loaded = self._load(fv, unloaded_slices(latest, done, self._files_at(fv, done)), end, progress)
        claim = OnlineProgress(latest.version, end)
        if done is None or (claim.version, claim.until) != (done.version, done.until):
            # Lost to a concurrent run: its claim is as true as ours, so keep it.
            self._registry.advance_online_progress(fv.table_name, claim, expected=done)
        return loaded

    def after_write(self, fv: FeatureView, version: TableVersion) -> None:
        """A write put commit `version` online in full: extend a claim that ends just before it."""
        done = self._registry.online_progress(fv.table_name)
        if done is None and version == 0:
            self._registry.advance_online_progress(fv.table_name, OnlineProgress(0), expected=None)
        elif done is not None and done.version == version - 1:
            self._registry.advance_online_progress(fv.table_name, OnlineProgress(version, done.until), expected=done)

    def status(self, fv: FeatureView) -> tuple[OnlineProgress | None, TableVersion | None]:
        """(online progress, latest table version) of the view's storage."""
        return self._registry.online_progress(fv.table_name), self._delta.version(fv.table_name)

    def _files_at(self, fv: FeatureView, done: OnlineProgress | None) -> frozenset[str] | None:
        if done is None:
            return None
        try:
            snapshot = self._delta.snapshot(fv.table_name, as_of=done.version)
        except NotFoundError:  # its log was cleaned up: fall back to loading everything
            return None
        return None if snapshot is None else frozenset(snapshot.files)

    def _load(self, fv: FeatureView, slices: list[Slice], end: datetime, progress: bool) -> int:
        codec = self._catalog.codec(fv)
        online = self._online()
        total = 0
        with row_progress(f"materialize {fv.name}", None, enabled=progress) as bar:
            for batch in self._batches(fv, slices, end):
                table = pa.Table.from_batches([batch])
                created = table.column(frames.CREATED_TIMESTAMP).cast(pa.int64()).to_numpy()
                keys, values = codec.encode(table, created)
                online.write(fv.table_name, keys, values, ttl=fv.ttl)
                total += batch.num_rows
                bar.advance(batch.num_rows)
        return total

    def _batches(self, fv: FeatureView, slices: list[Slice], end: datetime) -> Iterator[pa.RecordBatch]:
        engine = self._engine()
        for part in slices:
            if part.start is not None and part.start >= end:
                continue
            reader = engine.latest(part.snapshot, fv.join_key_names, start=part.start, end=end)
            for batch in prefetched(reader):
                if batch.num_rows:
                    yield batch


def check_end(end: datetime, *, allowance_seconds: float = clock.DEFAULT_MAX_FUTURE_SECONDS) -> None:
    """Refuse a materialization that ends beyond the clock plus the write allowance.

    Ending in the future would claim, in the online progress, rows that do not exist yet
    as loaded: they would be skipped when they arrive.
    """
    clock.check_not_future(end, "materialize: end", allowance_seconds=allowance_seconds)
