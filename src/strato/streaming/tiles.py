"""Windowed-aggregation tiles: pure math, shared by the online tiles and the offline computation.

The semantics are written once, in docs/concepts.md ("Windowed aggregations"); this module
is their one implementation. In short, for an aggregation with window ``w`` and tile size
``s`` (``n = w / s`` tiles), the value at time ``t`` aggregates the accepted events whose event
time lies in ``[(floor(t / s) - n + 1) * s, t]`` — both ends inclusive — and an event is
accepted when ``event_time >= created_time - allowed_lateness`` (always, without a lateness).

Partial aggregates (*states*) are plain data, so they pack as msgpack:

====== ======================== ===========================================================
slot   state                    merge
====== ======================== ===========================================================
count  int                      sum
isum   int (exact)              sum
fsum   list of float partials   Shewchuk's exact partials: the window's sum is
                                ``math.fsum`` of every partial, the correctly rounded sum
                                of the raw values whatever order they arrived in
min    value or None            min (NaN ignored)
max    value or None            max (NaN ignored)
last   [ts, created, value]     the greatest (event time, created time, value)
hll    256 bytes or None        HyperLogLog registers (approx_count_distinct): elementwise max
====== ======================== ===========================================================

Because every merge is exact and order-free, tiles built from writes in any batches and any
order evaluate to the same value as folding the raw events of the window directly, which
is what the offline side does (`fold` + `final`).
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import math
import operator
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final

import numpy as np

from strato.definitions.aggregation import Aggregation
from strato.definitions.feature_view import FeatureView
from strato.types import Kind

SlotKind = str
"""One of count, isum, fsum, min, max, last, hll."""
Slot = tuple[str, SlotKind]
"""(raw column, slot kind): the partial aggregate tiles keep for it."""

FORMAT: Final = 1
"""Version of the packed per-entity tile row (`pack` / `unpack` callers check it)."""

_FLOATS: Final = frozenset({Kind.FLOAT32, Kind.FLOAT64})
_US: Final = timedelta(microseconds=1)


def slots_of(agg: Aggregation, column_kind: Kind) -> tuple[Slot, ...]:
    """The partial aggregates an aggregation needs: mean keeps a sum and a count."""
    sum_kind = "fsum" if column_kind in _FLOATS else "isum"
    if agg.function == "mean":
        return ((agg.column, "count"), (agg.column, sum_kind))
    if agg.function == "sum":
        return ((agg.column, sum_kind),)
    if agg.function == "approx_count_distinct":
        return ((agg.column, "hll"),)
    return ((agg.column, agg.function),)


def window_start_us(t_us: int, tile_us: int, tiles: int) -> int:
    """The first instant of the window at `t_us`: the start of the oldest of its `tiles` tiles."""
    return (t_us // tile_us - tiles + 1) * tile_us


# ---------------------------------------------------------------------- states


def empty(kind: SlotKind) -> Any:
    if kind in ("count", "isum"):
        return 0
    if kind == "fsum":
        return []
    return None


def _grow(partials: list[float], x: float) -> list[float]:
    """Add `x` to exact partials (Shewchuk; what `math.fsum` does inside). Non-finite values
    are kept aside untouched: `math.fsum` of the result decides inf and NaN as IEEE does."""
    if not math.isfinite(x):
        return [*partials, x]
    out: list[float] = []
    special: list[float] = []
    for y in partials:
        if not math.isfinite(y):
            special.append(y)
            continue
        if abs(x) < abs(y):
            x, y = y, x
        hi = x + y
        lo = y - (hi - x)
        if lo:
            out.append(lo)
        x = hi
    out.append(x)
    return out + special


def exact_sum(partials: Sequence[float]) -> float:
    """The correctly rounded sum of `fsum` partials; inf and NaN as IEEE addition gives them
    (``math.fsum`` raises on inf + -inf, which a read must not)."""
    try:
        return math.fsum(partials)
    except ValueError:  # -inf + inf
        return math.nan


def add(kind: SlotKind, state: Any, value: Any, event_us: int, created_us: int) -> Any:
    """`state` with one non-null raw `value` added (the event's times are for `last`)."""
    if kind == "count":
        return state + 1
    if kind == "isum":
        return state + value
    if kind == "fsum":
        return _grow(state, float(value))
    if kind in ("min", "max"):
        if isinstance(value, float) and math.isnan(value):
            return state
        if state is None:
            return value
        return min(state, value) if kind == "min" else max(state, value)
    if kind == "hll":
        return merge("hll", state, hll_of([value]))
    # last
    candidate = [event_us, created_us, value]
    return candidate if state is None or _later(candidate, state) else state


def _later(a: Sequence[Any], b: Sequence[Any]) -> bool:
    return (a[0], a[1]) > (b[0], b[1]) or ((a[0], a[1]) == (b[0], b[1]) and a[2] > b[2])


def merge(kind: SlotKind, a: Any, b: Any) -> Any:
    """Two partial aggregates of the same slot as one (exact, order-free)."""
    if kind in ("count", "isum"):
        return a + b
    if kind == "fsum":
        # Concatenated partials still sum exactly to the total; compact them when they pile up.
        out = [*a, *b]
        return partials_of(out) if len(out) > _MAX_PARTIALS else out
    if a is None:
        return b
    if b is None:
        return a
    if kind == "hll":
        return np.maximum(np.frombuffer(a, np.uint8), np.frombuffer(b, np.uint8)).tobytes()
    if kind == "min":
        return min(a, b)
    if kind == "max":
        return max(a, b)
    return b if _later(b, a) else a


def fold(kind: SlotKind, events: Iterable[tuple[int, int, Any]]) -> Any:
    """One state from raw (event time, created time, value) events; null values are skipped.

    The batch form of `add`, with builtins doing the per-value work (the write path and the
    offline side both fold whole runs of events).
    """
    if kind == "last":
        present = [e for e in events if e[2] is not None]
        return list(max(present)) if present else None  # greatest (event time, created time, value)
    values = [e[2] for e in events if e[2] is not None]
    if kind == "count":
        return len(values)
    if kind == "isum":
        return sum(values)
    if kind == "fsum":
        return partials_of([float(v) for v in values])
    if kind == "hll":
        return hll_of(values) if values else None
    values = [v for v in values if v == v]  # NaN is ignored by min and max
    if not values:
        return None
    return min(values) if kind == "min" else max(values)


_MAX_PARTIALS: Final = 12


def partials_of(values: Sequence[float]) -> list[float]:
    """Floats whose exact sum is the exact sum of `values` (few of them: one `math.fsum` per
    partial, each taking the correctly rounded rest). Non-finite values are kept as they are."""
    finite = [v for v in values if math.isfinite(v)]
    special = [v for v in values if not math.isfinite(v)] if len(finite) != len(values) else []
    out: list[float] = []
    rest = finite
    while rest:
        head = math.fsum(rest)
        if head == 0.0:  # the exact rest is a multiple of the smallest subnormal: zero rounds to zero only if zero
            break
        out.append(head)
        rest = [*rest, -head]
    return out + special


def final(agg: Aggregation, states: dict[SlotKind, Any]) -> Any:
    """The aggregation's value from its slots' states (`slots_of` order): empty windows give
    count 0 and sum 0, and null for mean, min, max and last."""
    fn = agg.function
    if fn == "count":
        return states["count"]
    if fn in ("sum", "mean"):
        if "fsum" in states:
            total: float | int = exact_sum(states["fsum"])
        else:
            total = states["isum"]
        if fn == "sum":
            return total
        count = states["count"]
        return total / count if count else None
    if fn == "last":
        state = states["last"]
        return None if state is None else state[2]
    if fn == "approx_count_distinct":
        return hll_estimate(states["hll"])
    return states[fn]


# ---------------------------------------------------------------------- approximate distinct counts

HLL_PRECISION: Final = 8
"""HyperLogLog with 2^8 = 256 one-byte registers per tile: about 6.5 % standard error."""
_HLL_M: Final = 1 << HLL_PRECISION
_HLL_REST: Final = 64 - HLL_PRECISION
_HLL_ALPHA: Final = 0.7213 / (1 + 1.079 / _HLL_M)


def _hash64(value: Any) -> int:
    """A hash stable across processes and machines (Python's `hash` is salted per process)."""
    if isinstance(value, bytes):
        data = b"b" + value
    elif isinstance(value, str):
        data = b"s" + value.encode()
    else:
        data = b"i" + int(value).to_bytes(16, "little", signed=True)
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


def hll_of(values: Iterable[Any]) -> bytes:
    """HyperLogLog registers of non-null `values` (ints, strings or bytes)."""
    registers = bytearray(_HLL_M)
    for value in values:
        h = _hash64(value)
        index, rest = h >> _HLL_REST, h & ((1 << _HLL_REST) - 1)
        rank = _HLL_REST - rest.bit_length() + 1
        if rank > registers[index]:
            registers[index] = rank
    return bytes(registers)


def hll_estimate(registers: bytes | None) -> int:
    """The distinct count the registers estimate (0 for none), with the small-range
    correction; the same registers always give the same number, online and offline."""
    if registers is None:
        return 0
    regs = np.frombuffer(registers, np.uint8)
    zeros = int(np.count_nonzero(regs == 0))
    estimate = _HLL_ALPHA * _HLL_M * _HLL_M / float(np.ldexp(1.0, -regs.astype(np.int64)).sum())
    if estimate <= 2.5 * _HLL_M and zeros:
        estimate = _HLL_M * math.log(_HLL_M / zeros)
    return round(estimate)


# ---------------------------------------------------------------------- a view's layout


@dataclass(frozen=True)
class TileGroup:
    """The tiles of one tile size: which slots each tile holds, and how many tiles to keep."""

    tile_us: int
    slots: tuple[Slot, ...]
    keep: int
    """The longest window of the group, in tiles: older tiles are never read again."""

    @functools.cached_property
    def slot_names(self) -> list[str]:
        """The slots as a packed row names them (``column:kind``)."""
        return [f"{c}:{k}" for c, k in self.slots]


@dataclass(frozen=True)
class Output:
    """How one aggregation is read: its group, window length in tiles and slot positions."""

    aggregation: Aggregation
    group: int
    tiles: int
    slot_index: tuple[tuple[SlotKind, int], ...]


@dataclass(frozen=True)
class TileLayout:
    """Everything the tiles of one view need from its definition, derived once."""

    groups: tuple[TileGroup, ...]
    outputs: tuple[Output, ...]
    columns: tuple[str, ...]
    lateness_us: int | None
    retention_us: int
    """The longest window plus the lateness: a row untouched for longer holds nothing readable."""

    @functools.cached_property
    def column_names(self) -> list[str]:
        """`columns` as a packed row lists them."""
        return list(self.columns)

    @classmethod
    def of(cls, view: FeatureView) -> TileLayout:
        kinds = {f.name: f.dtype.kind for f in view.schema}
        by_tile: dict[int, dict[Slot, None]] = {}
        keep: dict[int, int] = {}
        for agg in view.aggregations:
            tile_us = agg.tile_seconds * 1_000_000
            by_tile.setdefault(tile_us, {}).update(dict.fromkeys(slots_of(agg, kinds[agg.column])))
            keep[tile_us] = max(keep.get(tile_us, 0), int(agg.time_window.total_seconds()) // agg.tile_seconds)
        groups = tuple(TileGroup(t, tuple(slots), keep[t]) for t, slots in sorted(by_tile.items()))
        position = {t.tile_us: i for i, t in enumerate(groups)}
        outputs = []
        for agg in view.aggregations:
            tile_us = agg.tile_seconds * 1_000_000
            g = groups[position[tile_us]]
            index = tuple((kind, g.slots.index((col, kind))) for col, kind in slots_of(agg, kinds[agg.column]))
            outputs.append(
                Output(agg, position[tile_us], int(agg.time_window.total_seconds()) // agg.tile_seconds, index)
            )
        lateness_us = None if view.allowed_lateness is None else view.allowed_lateness // _US
        longest = max((g.tile_us * g.keep for g in groups), default=0)
        columns = tuple(dict.fromkeys(a.column for a in view.aggregations))
        return cls(groups, tuple(outputs), columns, lateness_us, longest + (lateness_us or 0))


# ---------------------------------------------------------------------- one entity's tiles


@dataclass(frozen=True)
class StreamPositions:
    """Where each row of a streamed batch came from: its source (``topic:partition``) and its
    offset in it, so the tiles merge every event once across replays (`EntityTiles.marks`)."""

    sources: list[str]
    offsets: list[int]

    def __post_init__(self) -> None:
        if len(self.sources) != len(self.offsets):
            raise ValueError(f"{len(self.sources)} sources for {len(self.offsets)} offsets")

    def where(self, mask: Iterable[bool]) -> StreamPositions:
        """The positions of the rows `mask` keeps."""
        keep = [i for i, chosen in enumerate(mask) if chosen]
        return StreamPositions([self.sources[i] for i in keep], [self.offsets[i] for i in keep])


class EntityTiles:
    """One entity's tiles and pending events, as kept in its online row.

    `groups[g]` maps tile index → list of slot states (in `TileLayout.groups[g].slots` order);
    `pending` holds events stamped later than the write that brought them (a producer clock
    ahead of this machine's): they join their tile once a write's clock passes them, and a
    read at ``t`` counts those with event time ``<= t``, so they never count early.

    `marks` maps a stream source (``topic:partition``) to the greatest offset of it merged
    into these tiles: a source delivers an entity's events in offset order, so an event at or
    below its source's mark is already counted, and a replay after a crash (`strato ingest`
    restarting from older committed offsets) skips it instead of counting it twice.
    """

    __slots__ = ("groups", "layout", "marks", "pending")

    def __init__(
        self,
        layout: TileLayout,
        groups: list[dict[int, list[Any]]],
        pending: list[list[Any]],
        marks: dict[str, int] | None = None,
    ):
        self.layout = layout
        self.groups = groups
        self.pending = pending
        self.marks: dict[str, int] = {} if marks is None else marks

    @classmethod
    def new(cls, layout: TileLayout) -> EntityTiles:
        return cls(layout, [{} for _ in layout.groups], [])

    # -- packing: [FORMAT, [[tile_us, [slot names], [[index, state, ...], ...]], ...], pending, columns, marks]
    # (rows written before marks existed have no fifth item: no source has been merged)

    def to_data(self) -> list[Any]:
        return [
            FORMAT,
            [
                [g.tile_us, [f"{c}:{k}" for c, k in g.slots], [[i, *states] for i, states in sorted(tiles.items())]]
                for g, tiles in zip(self.layout.groups, self.groups, strict=True)
            ],
            self.pending,
            list(self.layout.columns),
            self.marks,
        ]

    @classmethod
    def from_data(cls, layout: TileLayout, data: list[Any]) -> EntityTiles:
        """Read a packed row, written under this layout or an earlier one of the same view (an
        aggregation added or removed since: slots are matched by name, missing ones start empty)."""
        if not data or data[0] != FORMAT:
            raise ValueError(f"tile row format {data[0] if data else None!r} is not {FORMAT}")
        stored = {tile_us: (names, tiles) for tile_us, names, tiles in data[1]}
        groups: list[dict[int, list[Any]]] = []
        for g in layout.groups:
            names, tiles = stored.get(g.tile_us, ([], []))
            wanted = [f"{c}:{k}" for c, k in g.slots]
            if names == wanted:
                groups.append({t[0]: t[1:] for t in tiles})
                continue
            at = {name: i for i, name in enumerate(names)}
            groups.append(
                {
                    t[0]: [
                        t[1 + at[name]] if name in at else empty(k)
                        for name, (_, k) in zip(wanted, g.slots, strict=True)
                    ]
                    for t in tiles
                }
            )
        pending = data[2]
        if list(data[3]) != list(layout.columns):
            at = {c: i for i, c in enumerate(data[3])}
            pending = [[ts, cr, [vals[at[c]] if c in at else None for c in layout.columns]] for ts, cr, vals in pending]
        return cls(layout, groups, pending, dict(data[4]) if len(data) > 4 else {})

    def unmerged(self, indices: Sequence[int], sources: Sequence[str], offsets: Sequence[int]) -> list[int]:
        """The `indices` (into per-event `sources` and `offsets`, in offset order per source)
        of events not yet merged, by the marks; the marks then cover them all."""
        marks = self.marks
        fresh = [i for i in indices if offsets[i] > marks.get(sources[i], -1)]
        for i in fresh:
            marks[sources[i]] = max(marks.get(sources[i], -1), offsets[i])
        return fresh

    # -- writes

    def add_events(self, events: Iterable[tuple[int, int, Sequence[Any]]], now_us: int) -> None:
        """Merge accepted events (event time, created time, raw values in `layout.columns` order).

        Events later than `now_us` wait in `pending`; pending events now due join their tiles;
        tiles no read from `now_us` on can reach are dropped.
        """
        due = [e for e in self.pending if e[0] <= now_us]
        if due:
            self.pending = [e for e in self.pending if e[0] > now_us]
        ready: list[Sequence[Any]] = []
        for event in (*due, *events):
            if event[0] > now_us:
                self.pending.append([event[0], event[1], list(event[2])])
            else:
                ready.append(event)
        if ready:
            self._into_tiles(ready, now_us)
        self._drop_old(now_us)

    def _into_tiles(self, events: Sequence[Sequence[Any]], now_us: int) -> None:
        """Fold (event time, created time, values) events into their tiles, one run per tile."""
        col_at = {c: i for i, c in enumerate(self.layout.columns)}
        for g, tiles in zip(self.layout.groups, self.groups, strict=True):
            oldest = now_us // g.tile_us - g.keep + 1  # no window read from now on reaches older tiles
            runs: dict[int, list[Sequence[Any]]] = {}
            for event in events:
                index = event[0] // g.tile_us
                if index >= oldest:
                    runs.setdefault(index, []).append(event)
            for index, run in runs.items():
                states = tiles.get(index)
                if states is None:
                    states = tiles[index] = [empty(k) for _, k in g.slots]
                for j, (column, kind) in enumerate(g.slots):
                    c = col_at[column]
                    states[j] = merge(kind, states[j], fold(kind, [(e[0], e[1], e[2][c]) for e in run]))

    def _drop_old(self, now_us: int) -> None:
        for g, tiles in zip(self.layout.groups, self.groups, strict=True):
            oldest = now_us // g.tile_us - g.keep + 1
            for index in [i for i in tiles if i < oldest]:
                del tiles[index]

    # -- reads

    def values_at(self, t_us: int, wanted: Sequence[int] | None = None) -> list[Any]:
        """The aggregations' values at `t_us`: those at `wanted` positions of `layout.outputs`
        (default: all), in that order."""
        layout = self.layout
        outputs = layout.outputs if wanted is None else [layout.outputs[i] for i in wanted]
        tiles = [[[i, *states] for i, states in sorted(group.items())] for group in self.groups]
        return ReadPlan.of(layout, outputs).evaluate(tiles, self.pending, t_us)


@dataclass(frozen=True)
class ReadPlan:
    """How to evaluate some outputs of a layout, worked out once per reader.

    Each distinct window (group, length in tiles) is sliced once and each of its slots merged
    once, however many aggregations share them (a mean shares the count and the sum of a sum
    and a count over the same window): the read path does no planning of its own.
    """

    layout: TileLayout
    outputs: tuple[Output, ...]
    windows: tuple[tuple[int, int, int, tuple[tuple[int, SlotKind, Callable[[Sequence[Any]], Any]], ...]], ...]
    """(group, tile size in µs, tiles, ((slot position, slot kind, merge-and-total), ...)) per
    distinct window; the total (a float sum rounded once for every aggregation sharing it) is
    what the path of rows without pending events reads."""
    picks: tuple[tuple[tuple[SlotKind, int], ...], ...]
    """Per output: (slot kind, position in the flat list of merged states) of its slots."""
    columns: tuple[int, ...]
    """Per output: the position of its raw column in `layout.columns` (for pending events)."""
    finishers: tuple[Callable[[list[Any]], Any], ...]
    """Per output: its value from the flat list of totals."""

    @classmethod
    def of(cls, layout: TileLayout, outputs: Sequence[Output]) -> ReadPlan:
        windows: dict[tuple[int, int], dict[int, SlotKind]] = {}
        for o in outputs:
            slots = windows.setdefault((o.group, o.tiles), {})
            for kind, j in o.slot_index:
                slots[j] = kind
        flat: dict[tuple[int, int, int], int] = {}
        for (group, tiles), slots in windows.items():
            for j in slots:
                flat[(group, tiles, j)] = len(flat)
        picks = tuple(tuple((kind, flat[(o.group, o.tiles, j)]) for kind, j in o.slot_index) for o in outputs)
        return cls(
            layout,
            tuple(outputs),
            tuple(
                (group, layout.groups[group].tile_us, tiles, tuple((j, k, _TOTALS[k]) for j, k in slots.items()))
                for (group, tiles), slots in windows.items()
            ),
            picks,
            tuple(layout.columns.index(o.aggregation.column) for o in outputs),
            tuple(_finisher(o.aggregation, dict(p)) for o, p in zip(outputs, picks, strict=True)),
        )

    def evaluate_packed(self, data: list[Any], t_us: int) -> list[Any]:
        """`EntityTiles.from_data(layout, data).values_at(t_us, …)` without building the object:
        the online read path, on the unpacked row as it is when its layout is the current one."""
        layout = self.layout
        if data and data[0] == FORMAT and data[3] == layout.column_names:
            stored = data[1]
            if len(stored) == len(layout.groups) and all(
                s[0] == g.tile_us and s[1] == g.slot_names for s, g in zip(stored, layout.groups, strict=True)
            ):
                return self.evaluate([s[2] for s in stored], data[2], t_us)
        tiles = EntityTiles.from_data(layout, data)
        lists = [[[i, *states] for i, states in sorted(group.items())] for group in tiles.groups]
        return self.evaluate(lists, tiles.pending, t_us)

    def evaluate(self, tiles: list[list[list[Any]]], pending: list[list[Any]], t_us: int) -> list[Any]:
        """The window values at `t_us` from each group's tiles (sorted by index, ``[index, *states]``)."""
        if pending:
            return self._evaluate_with_pending(tiles, pending, t_us)
        totals: list[Any] = []
        append = totals.append
        for group, tile_us, length, slots in self.windows:
            columns = _window_columns(tiles[group], t_us // tile_us, length)
            for j, _, total in slots:
                append(total(columns[1 + j] if columns is not None else ()))
        return [finish(totals) for finish in self.finishers]

    def _evaluate_with_pending(self, tiles: list[list[list[Any]]], pending: list[list[Any]], t_us: int) -> list[Any]:
        """`evaluate` when events wait in `pending`: each output's merged states take the due
        pending events of its window before their final value is taken."""
        merged: list[Any] = []
        for group, tile_us, length, slots in self.windows:
            columns = _window_columns(tiles[group], t_us // tile_us, length)
            merged.extend(_combine(kind, columns[1 + j] if columns is not None else ()) for j, kind, _ in slots)
        out = []
        for o, picks, column in zip(self.outputs, self.picks, self.columns, strict=True):
            states = {kind: merged[at] for kind, at in picks}
            tile_us = self.layout.groups[o.group].tile_us
            start = (t_us // tile_us - o.tiles + 1) * tile_us
            for event_us, created_us, values in pending:
                value = values[column]
                if start <= event_us <= t_us and value is not None:
                    for kind in states:
                        states[kind] = add(kind, states[kind], value, event_us, created_us)
            out.append(final(o.aggregation, states))
        return out


def _tile_index(tile: list[Any]) -> int:
    return tile[0]  # type: ignore[no-any-return]


def _window_columns(rows: list[list[Any]], current: int, length: int) -> list[tuple[Any, ...]] | None:
    """The tiles of a window of `length` tiles ending at tile `current`, transposed (index,
    then each slot's states); None when the window holds no tile."""
    lo = bisect.bisect_left(rows, current - length + 1, key=_tile_index)
    hi = bisect.bisect_right(rows, current, lo=lo, key=_tile_index)
    return list(zip(*rows[lo:hi], strict=True)) if hi > lo else None


def _combine(kind: SlotKind, states: Sequence[Any]) -> Any:
    """Many states of one slot as one, in a single pass (the read path's `merge`)."""
    if kind in ("count", "isum"):
        return sum(states)
    if kind == "fsum":
        return [x for partials in states for x in partials]  # exact_sum is exact on any partials
    present = [s for s in states if s is not None]
    if not present:
        return None
    if kind == "min":
        return min(present)
    if kind == "max":
        return max(present)
    if kind == "hll":
        return np.maximum.reduce([np.frombuffer(p, np.uint8) for p in present]).tobytes()
    best = present[0]
    for state in present[1:]:
        if _later(state, best):
            best = state
    return best


def _fsum_total(states: Sequence[Any]) -> float:
    return exact_sum([x for partials in states for x in partials])


def _min_total(states: Sequence[Any]) -> Any:
    if None in states:
        states = [s for s in states if s is not None]
    return min(states) if states else None


def _max_total(states: Sequence[Any]) -> Any:
    if None in states:
        states = [s for s in states if s is not None]
    return max(states) if states else None


_TOTALS: Final[dict[SlotKind, Callable[[Sequence[Any]], Any]]] = {
    "count": sum,
    "isum": sum,
    "fsum": _fsum_total,
    "min": _min_total,
    "max": _max_total,
    "hll": functools.partial(_combine, "hll"),
    "last": functools.partial(_combine, "last"),
}
"""Per slot kind: many tiles' states of one slot as the value `final` reads (a float sum
rounded, the others as `_combine` gives them)."""


def _finisher(agg: Aggregation, at: dict[SlotKind, int]) -> Callable[[list[Any]], Any]:
    """The function taking `agg`'s value from the flat totals (`at`: slot kind → position);
    the same results as `final` on the same states."""
    fn = agg.function
    if fn == "mean":
        total, count = at["fsum"] if "fsum" in at else at["isum"], at["count"]

        def mean(totals: list[Any]) -> Any:
            n = totals[count]
            return totals[total] / n if n else None

        return mean
    if fn == "last":
        last = at["last"]
        return lambda totals: None if totals[last] is None else totals[last][2]
    if fn == "approx_count_distinct":
        hll = at["hll"]
        return lambda totals: hll_estimate(totals[hll])
    (position,) = at.values()
    return operator.itemgetter(position)
