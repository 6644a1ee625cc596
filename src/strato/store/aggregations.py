"""Windowed aggregations in the store: tiles kept online on `write`, evaluated on lookups,
and the same values computed from history for training sets.

The semantics live in docs/concepts.md ("Windowed aggregations") and the math in
`strato.streaming.tiles`; this module moves tiles between that math and the two stores.

**Online.** Each entity of a view with aggregations has one packed row in a companion table,
``{table_name}__tiles``, written through the ordinary `OnlineStore` interface (every backend
has it): a codec header (event time = the newest event merged, write time) and the msgpack
of its `EntityTiles`. A write of raw events is a read-merge-write of those rows. Rule 4 stays
intact: each new row's header is (at least the old event time, a strictly greater write
time), so it always replaces the row it was merged from. Each new row is stored with
`OnlineStore.write_if`, expecting the exact bytes it was merged from: if another writer (on
this machine or any other sharing the Redis, Redis Cluster or Aerospike) stored the row in
between, the CAS fails for that entity only, and its row is read and merged again, so no
writer ever loses another's events. Merges of one repo are also ordered by an exclusive
lock (``.strato/aggregates.lock``, flock plus a thread lock), a cheap fast path that spares
writers on one machine lost CAS rounds; on a backend without `Capabilities.compare_and_set`
the lock alone orders merges, so only one machine may write a view's aggregations there.

**Offline.** `historical_values` reads the view's history snapshot and folds, for each spine
row, the accepted raw events of its window with the same state functions the tiles use.
"""

from __future__ import annotations

import bisect
import functools
import os
import random
import struct
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import msgpack
import numpy as np
import numpy.typing as npt
import pyarrow as pa

from strato import clock
from strato.definitions.feature_view import FeatureView
from strato.definitions.field import Field
from strato.errors import BackendUnavailable
from strato.offline.base import OfflineEngine, TableSnapshot
from strato.online.base import OnlineStore
from strato.online.codec import HEADER, HEADER_SIZE, KeyCodec, ViewCodec
from strato.online.response import FeatureGather, ViewResult
from strato.streaming.tiles import (
    EntityTiles,
    ReadPlan,
    StreamPositions,
    TileLayout,
    final,
    fold,
    slots_of,
    window_start_us,
)
from strato.types import Kind

try:
    import fcntl
except ImportError:  # Windows: no flock; the thread lock still orders one process's merges
    fcntl = None  # type: ignore[assignment]

LOCK_FILE: Final = "aggregates.lock"
#: Rounds of read-merge-`write_if` one apply tries before giving up: each round at least one
#: of the racing writers wins every contested row, so losing them all means a pile-up.
CAS_ATTEMPTS: Final = 64
_BACKOFF_S: Final = 0.000_5
_BACKOFF_CAP_S: Final = 0.05
_STRUCT_CODES: Final = {
    Kind.INT32: "i",
    Kind.INT64: "q",
    Kind.FLOAT32: "f",
    Kind.FLOAT64: "d",
    Kind.BOOL: "?",
    Kind.TIMESTAMP: "q",
}


def tiles_table(view: FeatureView) -> str:
    """The online table holding a view version's tiles, beside its values."""
    return f"{view.table_name}__tiles"


@functools.lru_cache(maxsize=256)
def layout_of(view: FeatureView) -> TileLayout:
    """The view version's `TileLayout`, derived once per definition (views compare by value,
    so two repos' "txns" version 1 never share a layout unless they are the same)."""
    return TileLayout.of(view)


# ---------------------------------------------------------------------- writes


class TileWriter:
    """Merges written raw events into the online tiles: by compare-and-set where the backend
    has it (safe across machines), one repo-wide merge at a time on this machine."""

    def __init__(self, lock_path: Path):
        self._lock_path = lock_path
        self._lock = threading.Lock()
        self._fd: int | None = None
        #: Tile rows whose `write_if` lost to another writer and were merged again (a figure of
        #: cross-machine contention, for tests and benchmarks).
        self.lost_races = 0

    def apply(
        self,
        store: OnlineStore,
        view: FeatureView,
        rows: pa.Table,
        created: int | npt.NDArray[np.int64],
        positions: StreamPositions | None = None,
    ) -> int:
        """Merge the accepted events of validated `rows` into their entities' tiles; how many
        events were merged. `created` is the batch's write time, or one per row. With
        `positions` (one per row: streamed rows), events the tiles already merged from the
        same source are skipped, so a replay counts nothing twice."""
        layout = layout_of(view)
        n = rows.num_rows
        event_us = rows.column("event_timestamp").cast(pa.int64()).to_numpy()
        created_us = np.broadcast_to(np.asarray(created, dtype=np.int64), (n,))
        keep = np.ones(n, dtype=bool)
        if layout.lateness_us is not None:
            keep = event_us >= created_us - layout.lateness_us
        if not keep.any():
            return 0
        keys = KeyCodec(view.join_keys).encode_columns([rows.column(k.name) for k in view.join_keys])
        columns = [_python_values(rows.column(c), view.feature(c).dtype.kind) for c in layout.columns]
        by_key: dict[bytes, list[int]] = {}
        for i in np.flatnonzero(keep).tolist():
            by_key.setdefault(keys[i], []).append(i)
        table = tiles_table(view)
        pending = list(by_key)
        cas = store.capabilities.compare_and_set
        merged = 0
        rng: random.Random | None = None
        # The lock orders this machine's merges (cheap, and no CAS round is lost to a
        # neighbour); across machines, `write_if` alone keeps every merge.
        with self._locked():
            for attempt in range(1, CAS_ATTEMPTS + 1):
                changed, expected, values, counts = self._merge(
                    store.read(table, pending), pending, by_key, layout, event_us, created_us, columns, positions
                )
                if not changed:
                    break
                # No native ttl: the engine's clock is not Strato's; `prune_expired` drops idle rows.
                if not cas:
                    store.write(table, changed, values)
                    merged += sum(counts)
                    break
                won = store.write_if(table, changed, expected, values)
                merged += sum(n for n, ok in zip(counts, won, strict=True) if ok)
                # Another writer changed these rows since they were read: merge again into theirs.
                pending = [key for key, ok in zip(changed, won, strict=True) if not ok]
                self.lost_races += len(pending)
                if not pending:
                    break
                if attempt == CAS_ATTEMPTS:
                    raise BackendUnavailable(
                        f"windowed aggregations of view {view.name!r}: {len(pending)} entities' tile rows were "
                        f"changed by other writers in each of {CAS_ATTEMPTS} tries (too many writers on the same "
                        f"entities); {merged} events of the other entities were merged. A streamed batch may be "
                        "retried (its offsets skip what is merged); a batch write retried whole counts those twice"
                    )
                rng = rng or random.Random()
                time.sleep(rng.random() * min(_BACKOFF_CAP_S, _BACKOFF_S * 2**attempt))
        return merged

    @staticmethod
    def _merge(
        stored: list[bytes | None],
        keys: list[bytes],
        by_key: dict[bytes, list[int]],
        layout: TileLayout,
        event_us: npt.NDArray[np.int64],
        created_us: npt.NDArray[np.int64],
        columns: list[list[Any]],
        positions: StreamPositions | None,
    ) -> tuple[list[bytes], list[bytes | None], list[bytes], list[int]]:
        """Each key's new row merged from its `stored` one: (keys that change, the rows they were
        merged from, the new rows, events merged into each)."""
        now_us = clock.now_us()
        changed: list[bytes] = []
        expected: list[bytes | None] = []
        values: list[bytes] = []
        counts: list[int] = []
        for key, old in zip(keys, stored, strict=True):
            if old is None:
                tiles, newest, written = EntityTiles.new(layout), None, 0
            else:
                newest, written = HEADER.unpack_from(old)
                tiles = EntityTiles.from_data(layout, msgpack.unpackb(old[HEADER_SIZE:], raw=False))
            idx = by_key[key]
            if positions is not None:
                # Against the marks of the row just read: after a lost race, another writer may
                # have merged some of these events (a replay on another machine).
                idx = tiles.unmerged(idx, positions.sources, positions.offsets)
                if not idx:
                    continue
            tiles.add_events(((int(event_us[i]), int(created_us[i]), [col[i] for col in columns]) for i in idx), now_us)
            top = max(int(event_us[i]) for i in idx)
            newest = top if newest is None else max(newest, top)
            # A strictly later write time: the new row replaces its source under rule 4 too.
            header = HEADER.pack(newest, max(written + 1, now_us))
            changed.append(key)
            expected.append(old)
            values.append(header + msgpack.packb(tiles.to_data(), use_bin_type=True))
            counts.append(len(idx))
        return changed, expected, values, counts

    def _locked(self) -> _Locked:
        if self._fd is None and fcntl is not None:
            self._lock_path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        return _Locked(self._lock, self._fd)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class _Locked:
    def __init__(self, lock: threading.Lock, fd: int | None):
        self._lock, self._fd = lock, fd

    def __enter__(self) -> None:
        self._lock.acquire()
        if self._fd is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            except BaseException:
                self._lock.release()
                raise

    def __exit__(self, *exc: object) -> None:
        try:
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._lock.release()


def _python_values(column: pa.ChunkedArray | pa.Array, kind: Kind) -> list[Any]:
    """A raw column as the Python values states hold: timestamps as int µs."""
    if kind is Kind.TIMESTAMP:
        column = column.cast(pa.int64())
    return column.to_pylist()  # type: ignore[no-any-return]


# ---------------------------------------------------------------------- online reads


class AggregateReader:
    """Reads some aggregations of one view: tile rows in, a `ViewResult` out.

    The values are packed in the online codec's layout of a view made of just the requested
    aggregations, so every shape of `OnlineResponse` (`to_dict`, `to_numpy`, …) reads them
    like stored features.
    """

    def __init__(self, view: FeatureView, features: Sequence[str], output_names: tuple[str, ...]):
        self.layout = layout_of(view)
        self.table_name = tiles_table(view)
        positions = {o.aggregation.name: i for i, o in enumerate(self.layout.outputs)}
        self.wanted = [positions[f] for f in features]
        kinds = {f.name: f.dtype for f in view.schema}
        fields = [
            Field(o.aggregation.name, o.aggregation.output_dtype(kinds[o.aggregation.column]))
            for o in (self.layout.outputs[i] for i in self.wanted)
        ]
        synthetic = FeatureView(view.name, entities=list(view.entities), schema=fields)
        self.codec = ViewCodec(synthetic)
        self.gather = FeatureGather(self.codec, [f.name for f in fields])
        self.output_names = output_names
        codec = self.codec
        fixed_at = {f.name: i for i, f in enumerate(codec.fixed)}
        self._fixed = struct.Struct("<" + "".join(_STRUCT_CODES[f.dtype.kind] for f in codec.fixed))
        # per output: (slot in the fixed tuple or -1, slot in the var list or -1, null bit index)
        self._slots = [(fixed_at.get(f.name, -1), codec.var_slot.get(f.name, -1), codec.index[f.name]) for f in fields]
        self._fixed_zero = [False if f.dtype.kind is Kind.BOOL else 0 for f in codec.fixed]
        self._plan = ReadPlan.of(self.layout, [self.layout.outputs[i] for i in self.wanted])
        self._empty = EntityTiles.new(self.layout).to_data()

    def result(self, values: list[bytes | None], now_us: int) -> ViewResult:
        """Evaluate each entity's windows at `now_us` into a view part of the response."""
        out: list[bytes | None] = []
        evaluate, unpackb = self._plan.evaluate_packed, msgpack.unpackb
        for value in values:
            data = self._empty if value is None else unpackb(value[HEADER_SIZE:], raw=False)
            # Stamped with the read time: an aggregate is the window's value as of now.
            out.append(self._pack(now_us, evaluate(data, now_us)))
        return ViewResult(self.gather, self.output_names, out, None, now_us)

    def _pack(self, as_of_us: int, results: list[Any]) -> bytes:
        codec = self.codec
        fixed = list(self._fixed_zero)
        var: list[Any] = [None] * len(codec.var)
        nulls = bytearray(codec.null_bytes)
        for (f, v, bit), result in zip(self._slots, results, strict=True):
            if result is None:
                nulls[bit >> 3] |= 1 << (bit & 7)
            elif f >= 0:
                fixed[f] = result
            else:
                var[v] = result
        head = HEADER.pack(as_of_us, 0) + codec.layout_tag + bytes(nulls) + self._fixed.pack(*fixed)
        return head + msgpack.packb(var, use_bin_type=True) if var else head


# ---------------------------------------------------------------------- training sets


def historical_values(
    engine: OfflineEngine,
    view: FeatureView,
    snapshot: TableSnapshot | None,
    spine: pa.Table,
    features: Sequence[str],
) -> list[pa.Array]:
    """Each aggregation in `features` at each spine row's time, from the raw history.

    Folds the window's accepted events with the tiles' own state functions, so the result is
    what the online tiles serve at that time given the same events.
    """
    layout = layout_of(view)
    by_name = {o.aggregation.name: o for o in layout.outputs}
    outputs = [by_name[f] for f in features]
    kinds = {f.name: f.dtype for f in view.schema}
    key_names = view.join_key_names
    events: dict[tuple[Any, ...], tuple[list[int], list[int], dict[str, list[Any]]]] = {}
    if snapshot is not None and snapshot.files:
        history = engine.read(snapshot)
        ts = history.column("event_timestamp").cast(pa.int64()).to_numpy()
        created = history.column("created_timestamp").cast(pa.int64()).to_numpy()
        keep = np.ones(len(ts), dtype=bool) if layout.lateness_us is None else ts >= created - layout.lateness_us
        order = np.lexsort((created, ts))
        order = order[keep[order]].tolist()
        key_columns = [history.column(k).to_pylist() for k in key_names]
        raw = {c: _python_values(history.column(c), kinds[c].kind) for c in layout.columns if c in history.column_names}
        for i in order:
            key = tuple(col[i] for col in key_columns)
            entry = events.get(key)
            if entry is None:
                entry = events[key] = ([], [], {c: [] for c in layout.columns})
            entry[0].append(int(ts[i]))
            entry[1].append(int(created[i]))
            for c in layout.columns:
                entry[2][c].append(raw[c][i] if c in raw else None)
    spine_keys = list(zip(*[spine.column(k).to_pylist() for k in key_names], strict=True))
    spine_ts = spine.column("event_timestamp").cast(pa.int64()).to_pylist()
    results: list[list[Any]] = [[] for _ in outputs]
    for key, t in zip(spine_keys, spine_ts, strict=True):
        entry = events.get(key)
        for out, o in zip(results, outputs, strict=True):
            agg = o.aggregation
            g = layout.groups[o.group]
            if entry is None:
                lo = hi = 0
            else:
                lo = bisect.bisect_left(entry[0], window_start_us(t, g.tile_us, o.tiles))
                hi = bisect.bisect_right(entry[0], t)
            triples = (
                []
                if entry is None
                else list(zip(entry[0][lo:hi], entry[1][lo:hi], entry[2][agg.column][lo:hi], strict=True))
            )
            states = {kind: fold(kind, triples) for _, kind in slots_of(agg, kinds[agg.column].kind)}
            out.append(final(agg, states))
    arrays = []
    for values, o in zip(results, outputs, strict=True):
        dtype = o.aggregation.output_dtype(kinds[o.aggregation.column])
        if dtype.kind is Kind.TIMESTAMP:
            arrays.append(pa.array(values, pa.int64()).cast(dtype.to_arrow()))
        else:
            arrays.append(pa.array(values, dtype.to_arrow()))
    return arrays


def prune_tiles(store: OnlineStore, view: FeatureView, now_us: int) -> int:
    """Delete the tile rows whose newest event is older than the view's longest window plus
    its lateness: nothing in them is readable any more (a late event starts a fresh row)."""
    return store.prune(tiles_table(view), now_us - layout_of(view).retention_us)
