"""Brute-force models of the data rules, to test the engines against.

Deliberately the slowest obvious code: every spine row scans every history row, so the
models are easy to check by eye against design.md (rules 2, 3 and 4) and share nothing
with the SQL they judge. Rows are plain dicts; timestamps are anything ordered that
supports ``t - ttl`` (timezone-aware datetimes with a timedelta ttl, in the tests).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

EVENT = "event_timestamp"
CREATED = "created_timestamp"

Row = Mapping[str, Any]


def _rank(row: Row) -> tuple[Any, Any]:
    """Rule 2: the later event wins; at equal event times, the later write."""
    return (row[EVENT], row[CREATED])


def pit_match(
    spine_row: Row, history_rows: Iterable[Row], join_keys: Sequence[str], ttl: timedelta | None
) -> Row | None:
    """Rule 3 for one spine row: the winning history row, or None (no match, or too old)."""
    t = spine_row[EVENT]
    candidates = [h for h in history_rows if all(h[k] == spine_row[k] for k in join_keys) and h[EVENT] <= t]
    if not candidates:
        return None
    best = max(candidates, key=_rank)
    if ttl is not None and best[EVENT] < t - ttl:
        return None
    return best


def pit_join_oracle(
    spine_rows: Sequence[Row],
    history_rows: Sequence[Row],
    ttl: timedelta | None = None,
    *,
    join_keys: Sequence[str],
    features: Sequence[str],
    output_names: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Per spine row, in spine order: the spine row's own values plus each feature as of its time.

    A feature missing from the matched history row (schema evolution) reads None, as does
    every feature of a spine row without a match.
    """
    names = list(output_names or features)
    out = []
    for spine_row in spine_rows:
        match = pit_match(spine_row, history_rows, join_keys, ttl)
        row = dict(spine_row)
        for feature, name in zip(features, names, strict=True):
            row[name] = None if match is None else match.get(feature)
        out.append(row)
    return out


def latest_oracle(
    history_rows: Iterable[Row],
    join_keys: Sequence[str],
    *,
    start: datetime | None = None,
    end: datetime,
) -> dict[tuple[Hashable, ...], Row]:
    """Rule 4 over ``start <= event_timestamp < end``: per key tuple, the winning history row."""
    best: dict[tuple[Hashable, ...], Row] = {}
    for row in history_rows:
        if row[EVENT] >= end or (start is not None and row[EVENT] < start):
            continue
        key = tuple(row[k] for k in join_keys)
        if key not in best or _rank(row) > _rank(best[key]):
            best[key] = row
    return best
