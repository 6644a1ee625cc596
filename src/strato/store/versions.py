"""Moving a view to a new version without an outage.

A new version of a view (``apply(new_version=[name])``) gets fresh storage. Made current
empty, every online read of it would turn NOT_FOUND and every training set would lose its
history until someone rewrote the data. So `FeatureStore.apply` fills the new storage
*before* the registry makes it current, from inside the registry's apply transaction
(`RegistryStore.apply(before_commit=...)`), where no other apply can land:

1. history: the old storage's rows are copied in one Delta commit: the columns both
   versions share, null for fields the new version adds; event and write times are kept,
   so point-in-time joins and ties (rules 2-3) come out as before;
2. online: the latest row per key of that history is loaded (rule 4);
3. the old storage is retired: from that Delta commit on, no write lands in it (a writer
   still holding the old definition gets `ConflictError`, "moved to version N"), and the
   rows committed to it while 1-2 ran are copied over, history and online;
4. the registry commits: readers and writers move to the new version.

If anything fails, the old storage is reopened, the new one dropped, and nothing applied.

A version whose schema cannot take the old rows (a retyped field, other join keys, no
history to copy) is refused with what to do instead, unless named in ``start_empty``: then
it starts empty (the old storage is still retired, so no write is lost there). Values
written only online (``to="online"``) have no history and are not carried over.
Readers that must not move yet pin the old version: ``view@vN:feature``, in a feature
service too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pyarrow as pa

from strato import frames
from strato.definitions.feature_view import FeatureView
from strato.definitions.plan import Action, Plan
from strato.errors import BreakingChangeError
from strato.offline.base import OfflineEngine, TableSnapshot
from strato.online.base import OnlineStore
from strato.registry.base import Revision
from strato.store.catalog import Catalog

if TYPE_CHECKING:
    from strato.offline.delta import DeltaTables  # deltalake waits for the first history read

_FILES_PER_CHUNK = 16
"""History is copied this many Parquet files at a time, so memory stays bounded."""

_END_OF_TIME = datetime(9999, 12, 31, tzinfo=UTC)


def cannot_fill(old: FeatureView, new: FeatureView) -> str | None:
    """Why `new`'s storage cannot be filled from `old`'s history, or None if it can."""
    if not old.offline:
        return f"version {old.version} keeps no history (offline=False)"
    if not new.offline:
        return f"version {new.version} keeps no history (offline=False)"
    if [(k.name, k.dtype) for k in old.join_keys] != [(k.name, k.dtype) for k in new.join_keys]:
        return f"join keys {list(old.join_key_names)} -> {list(new.join_key_names)}"
    old_fields = {f.name: f.dtype for f in old.schema}
    retyped = [
        f"{f.name} {old_fields[f.name]} -> {f.dtype}" for f in new.schema if old_fields.get(f.name, f.dtype) != f.dtype
    ]
    if retyped:
        return "retypes " + ", ".join(retyped)
    return None


@dataclass
class _Move:
    old: FeatureView
    new: FeatureView
    fill: bool
    retired: bool = False


class VersionMover:
    """Fills and switches the storage of the new view versions of one apply (module doc)."""

    def __init__(
        self,
        plan: Plan,
        start_empty: Collection[str],
        *,
        catalog: Catalog,
        delta: DeltaTables,
        offline_engine: Callable[[], OfflineEngine],
        online_store: Callable[[], OnlineStore],
        history_schema: Callable[[FeatureView], pa.Schema],
    ):
        self._plan = plan
        self._start_empty = set(start_empty)
        self._catalog = catalog
        self._delta = delta
        self._offline_engine = offline_engine
        self._online_store = online_store
        self._history_schema = history_schema  # of a table that was never written, to retire it
        self._moves: list[_Move] = []
        self.loaded_online: dict[str, int] = {}
        """Storage → the table version whose every row this apply put online (for `OnlineProgress`)."""
        self.filled: list[tuple[FeatureView, FeatureView]] = []
        """(old, new) of every view whose new storage was filled from the old one's history."""

    @property
    def needed(self) -> bool:
        return any(c.kind == "feature_view" and c.action is Action.NEW_VERSION for c in self._plan.changes)

    def before_commit(self, revisions: list[Revision]) -> None:
        """Fill every new version's storage and retire the old one; undo all of it on failure."""
        definitions = {c.name: c.definition for c in self._plan.changes if isinstance(c.definition, FeatureView)}
        moves = []
        for revision in revisions:
            if revision.kind != "feature_view" or revision.action != Action.NEW_VERSION.value:
                continue
            defined = definitions[revision.name]
            assert revision.data_version is not None
            new = defined.with_versions(revision.version, revision.data_version)
            old = self._catalog.registry.get("feature_view", revision.name)  # not yet replaced: we hold the lock
            assert isinstance(old, FeatureView)
            reason = cannot_fill(old, new)
            if reason is not None and new.name not in self._start_empty:
                raise BreakingChangeError(_refusal(old, new, reason))
            moves.append(_Move(old, new, fill=reason is None))
        try:
            for move in moves:
                self._moves.append(move)
                self._move(move)
        except BaseException:
            self.undo()
            raise

    def undo(self) -> None:
        """Put the old storages back in service and drop the new ones (the apply failed)."""
        for move in reversed(self._moves):
            if move.retired:
                self._delta.reopen(move.old.table_name)
            self._drop(move.new)
        self._moves.clear()
        self.filled.clear()

    def _move(self, move: _Move) -> None:
        old, new = move.old, move.new
        self._drop(new)  # leftovers of an interrupted attempt: no registry version names this storage yet
        before = self._delta.snapshot(old.table_name) if move.fill else None
        if before is not None:
            self._copy(before, before.files, old, new)
        if old.offline:
            self._delta.retire(old.table_name, f"{new.name}@v{new.version}", self._history_schema(old))
            move.retired = True
        if move.fill:
            after = self._delta.snapshot(old.table_name)
            assert after is not None
            copied = set(before.files) if before is not None else set()
            late = tuple(f for f in after.files if f not in copied)  # committed while we copied
            if late:
                self._copy(after, late, old, new)
        if move.fill:
            self.filled.append((old, new))
        target = self._delta.snapshot(new.table_name)
        if move.fill and new.online and target is not None:
            self._load_online(new, target)
            self.loaded_online[new.table_name] = target.version

    def _copy(self, source: TableSnapshot, files: Sequence[str], old: FeatureView, new: FeatureView) -> None:
        """Append `files` of `source` to `new`'s history, in one commit, shaped for `new`."""
        schema = _target_schema(source.schema, old, new)
        engine = self._offline_engine()

        def batches() -> Iterator[pa.RecordBatch]:
            for i in range(0, len(files), _FILES_PER_CHUNK):
                chunk = engine.read(dataclasses.replace(source, files=tuple(files[i : i + _FILES_PER_CHUNK])))
                for batch in chunk.to_batches():
                    yield _reshape(batch, schema)

        self._delta.append(new.table_name, pa.RecordBatchReader.from_batches(schema, batches()))

    def _load_online(self, new: FeatureView, snapshot: TableSnapshot) -> None:
        """The latest row per key of the new history, online (as materialization does)."""
        codec = self._catalog.codec(new)
        store = self._online_store()
        reader = self._offline_engine().latest(snapshot, new.join_key_names, start=None, end=_END_OF_TIME)
        for batch in reader:
            if batch.num_rows == 0:
                continue
            table = pa.Table.from_batches([batch])
            created = table.column(frames.CREATED_TIMESTAMP).cast(pa.int64()).to_numpy()
            keys, values = codec.encode(table, created)
            store.write(new.table_name, keys, values, ttl=new.ttl)

    def _drop(self, new: FeatureView) -> None:
        self._delta.drop(new.table_name)
        if new.online:
            self._online_store().drop(new.table_name)


def _target_schema(source: pa.Schema, old: FeatureView, new: FeatureView) -> pa.Schema:
    """`new`'s history columns: keys and event time as stored, the new features (stored type
    where the old history has them), then every other stored column (write time and the like)."""
    features = {f.name: f for f in new.schema}
    keys = [*new.join_key_names, frames.EVENT_TIMESTAMP]
    fields = [source.field(k) for k in keys]
    for name, f in features.items():
        fields.append(source.field(name) if name in source.names else pa.field(name, f.dtype.to_arrow()))
    # Columns that are neither keys nor features (old or new) are Strato's own: keep them.
    skip = {*keys, *features, *old.feature_names}
    return pa.schema(fields + [source.field(n) for n in source.names if n not in skip])


def _reshape(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    columns = [
        batch.column(f.name) if f.name in batch.schema.names else pa.nulls(batch.num_rows, f.type) for f in schema
    ]
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def _refusal(old: FeatureView, new: FeatureView, reason: str) -> str:
    name, was = new.name, old.version
    return (
        f"feature view {name!r} version {new.version} cannot be filled from version {was}'s history ({reason}); "
        f"made current empty, its online reads would be NOT_FOUND until its history is rewritten. "
        f"Pin readers that must keep serving to {name}@v{was}:FEATURE (in feature services too), then apply "
        f"with start_empty=[{name!r}] (strato apply --new-version {name} --start-empty {name}) and write its "
        f"history again (strato write {name} FILE); the old version stays current until then"
    )
