"""Half-open event-time intervals ``[start, end)``: what a batch transformation has computed.

`strato backfill START END` computes only what is not computed yet: the requested interval
minus the recorded ones (`subtract`), each gap cut into steps (`split`), and each step, once
written, merged into the record (`union`). Half-open, so adjacent intervals join without
overlap: ``[a, b) + [b, c) = [a, c)``, and a row at exactly ``b`` belongs to one of them.

Pure and small on purpose: the hypothesis tests in ``tests/unit/test_intervals.py`` check it
against a brute-force model over points, and the registry stores its `normalize`d output.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

Interval = tuple[datetime, datetime]
"""``(start, end)``: the event times ``start <= t < end``; empty when ``start >= end``."""


def normalize(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted, disjoint, non-adjacent, non-empty intervals covering exactly the same times."""
    merged: list[Interval] = []
    for start, end in sorted(i for i in intervals if i[0] < i[1]):
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def union(*parts: Iterable[Interval]) -> list[Interval]:
    """Every time in any of `parts`, normalized."""
    return normalize(i for part in parts for i in part)


def subtract(wanted: Iterable[Interval], done: Iterable[Interval]) -> list[Interval]:
    """The times of `wanted` not in `done` (the gaps still to compute), normalized."""
    gaps: list[Interval] = []
    covered = normalize(done)
    for start, end in normalize(wanted):
        cursor = start
        for low, high in covered:
            if high <= cursor or low >= end:
                continue
            if low > cursor:
                gaps.append((cursor, low))
            cursor = max(cursor, high)
            if cursor >= end:
                break
        if cursor < end:
            gaps.append((cursor, end))
    return gaps


def split(interval: Interval, step: timedelta | None) -> list[Interval]:
    """`interval` cut into consecutive pieces of `step` (the last may be shorter); None: whole."""
    start, end = interval
    if start >= end:
        return []
    if step is None:
        return [interval]
    if step <= timedelta(0):
        raise ValueError(f"step must be a positive duration, got {step!r}")
    pieces: list[Interval] = []
    while start < end:
        stop = min(start + step, end)
        pieces.append((start, stop))
        start = stop
    return pieces


def total(intervals: Iterable[Interval]) -> timedelta:
    """How much time the (normalized) intervals cover."""
    return sum((end - start for start, end in normalize(intervals)), start=timedelta(0))
