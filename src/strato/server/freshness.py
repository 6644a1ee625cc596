"""Freshness per feature view for `/metrics`: the newest event time, the last write, their ages.

Two sources, merged per view (the later of each wins):

* the view's history table, shared by every process that writes it (`strato write`,
  materialization, `strato ingest`, another worker's pushes to offline): the newest event
  time from the Delta files' statistics and the time of the last commit, both read from the
  log, never the data. Read at most once every `REFRESH_SECONDS` per worker, so a scrape
  costs a few log reads, not a table scan;
* this worker's own writes (`/push`, `/write-to-online-store`), recorded as they succeed, so
  an online-only push shows at once. Online-only writes by other processes appear only in
  their own metrics (the online store keeps no per-view write log).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from strato.errors import StratoError
from strato.frames import newest_time
from strato.store import FeatureStore

REFRESH_SECONDS = 2.0
"""How stale the history tables' part may be: they are re-read at most this often."""


@dataclass
class ViewFreshness:
    last_event_s: float | None = None
    """Newest event time written, seconds since the epoch."""
    last_write_s: float | None = None
    """When the view was last written (ingested, materialized, pushed), seconds since the epoch."""


def _later(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)


class Freshness:
    """Per-view freshness of one worker (thread-safe: writes record from the backend pool)."""

    def __init__(self) -> None:
        self._own: dict[str, ViewFreshness] = {}
        self._tables: dict[str, ViewFreshness] = {}
        self._read_at = float("-inf")
        self._lock = threading.Lock()

    def wrote(self, view: str, times: Sequence[Any] | None) -> None:
        """Record a successful write of `view` now, with its column of event times."""
        newest = None if times is None else newest_time(times)
        now = time.time()
        with self._lock:
            own = self._own.setdefault(view, ViewFreshness())
            own.last_write_s = now
            if newest is not None:
                own.last_event_s = _later(own.last_event_s, newest / 1e6)

    def views(self, store: FeatureStore) -> dict[str, ViewFreshness]:
        """Freshness of every view with data, re-reading the history tables when due."""
        if time.monotonic() - self._read_at >= REFRESH_SECONDS:
            self._tables = _from_tables(store)
            self._read_at = time.monotonic()
        with self._lock:
            merged = {name: ViewFreshness(f.last_event_s, f.last_write_s) for name, f in self._tables.items()}
            for name, own in self._own.items():
                f = merged.setdefault(name, ViewFreshness())
                f.last_event_s = _later(f.last_event_s, own.last_event_s)
                f.last_write_s = _later(f.last_write_s, own.last_write_s)
        return merged


def _seconds(value: Any) -> float | None:
    if not isinstance(value, datetime):
        return None
    return (value if value.tzinfo is not None else value.replace(tzinfo=UTC)).timestamp()


def _from_tables(store: FeatureStore) -> dict[str, ViewFreshness]:
    found: dict[str, ViewFreshness] = {}
    for fv in store.list_feature_views():
        if not fv.offline:
            continue
        try:
            newest = store.delta.newest(fv.table_name, "event_timestamp")
            commits = [c for c in store.delta.history(fv.table_name) if c["operation"] != "OPTIMIZE"]
        except StratoError:
            continue  # a table that cannot be read now: no figure rather than a failed scrape
        last_write = _seconds(commits[-1]["timestamp"]) if commits else None
        if newest is not None or last_write is not None:
            found[fv.name] = ViewFreshness(_seconds(newest), last_write)
    return found
