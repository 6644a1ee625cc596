"""Data quality on the write path: the rules a batch must meet, the rows set aside, the
statistics kept.

`Screen` is handed to `frames.conform_batch`, which calls it on the batch once it is cast to
the view's types and before rows of one (keys, event time) are reduced to the last, so
`unique_events` sees the batch as written. A batch that breaks a rule is refused whole
(`ValidationError`, nothing written anywhere) unless the view says
``on_invalid="quarantine"``: then the offending rows, each with the rules it broke, go to the
view's quarantine table (``{table}__quarantine``, a Delta table beside its history) and the
rest is written as usual.

After each history commit the write's per-feature statistics (`strato.monitoring.stats`) are
recorded in the registry under the Delta version they describe; `strato describe` shows them.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from strato import clock, frames
from strato.definitions.feature_view import QUARANTINE_COLUMNS, FeatureView
from strato.errors import ValidationError
from strato.monitoring.stats import batch_stats
from strato.monitoring.validation import screen
from strato.registry.base import RegistryStore, WriteStats
from strato.types import TIMESTAMP_ARROW

if TYPE_CHECKING:  # deltalake is imported only by a store that writes, not by one that reads online
    from strato.offline.delta import DeltaTables

QUARANTINE_SUFFIX = "__quarantine"
REASON_COLUMN, QUARANTINED_AT_COLUMN = QUARANTINE_COLUMNS

_stats_pool: dict[str, ThreadPoolExecutor] = {}


def quarantine_table(view: FeatureView) -> str:
    """The storage name of `view`'s quarantine table: one per view version's storage."""
    return view.table_name + QUARANTINE_SUFFIX


def quarantine_schema(view: FeatureView) -> pa.Schema:
    """The quarantine table's columns: the view's history columns as written, then why and when."""
    schema = frames.history_schema(view, with_created=bool(view.created_timestamp_column))
    return schema.append(pa.field(REASON_COLUMN, pa.string())).append(pa.field(QUARANTINED_AT_COLUMN, TIMESTAMP_ARROW))


@dataclass
class Screen:
    """The data-quality pass of one write; call it with the cast batch, read `set_aside` after."""

    view: FeatureView
    set_aside: pa.Table | None = field(default=None, init=False)

    def __call__(self, rows: pa.Table) -> pa.Table:
        verdict = screen(self.view, rows)
        if verdict.ok:
            return rows
        if self.view.on_invalid != "quarantine":
            raise ValidationError(verdict.message(self.view.name), failures=verdict.failures)
        bad = np.flatnonzero(verdict.offending)
        aside = rows.take(pa.array(bad))
        now = pa.array(np.full(len(bad), clock.now_us(), dtype="int64")).cast(TIMESTAMP_ARROW)
        self.set_aside = aside.append_column(REASON_COLUMN, pa.array(verdict.reasons, pa.string())).append_column(
            QUARANTINED_AT_COLUMN, now
        )
        return rows.filter(pa.array(~verdict.offending))

    @property
    def quarantined(self) -> int:
        """How many rows this write set aside."""
        return 0 if self.set_aside is None else self.set_aside.num_rows

    def keep_aside(self, delta: DeltaTables, idempotency_key: str | None) -> None:
        """Append the set-aside rows to the quarantine table (one commit), before the batch
        itself is written: if this fails, nothing of the batch is anywhere. With an
        idempotency key, a retried write does not quarantine its rows twice."""
        if self.set_aside is None:
            return
        key = None if idempotency_key is None else f"quarantine:{idempotency_key}"
        if key is not None and delta.written_as(quarantine_table(self.view), key) is not None:
            return
        delta.append(quarantine_table(self.view), self.set_aside, idempotency_key=key)


def start_stats(view: FeatureView, rows: pa.Table) -> Future[dict[str, dict[str, Any]]]:
    """Compute the batch's statistics on a background thread (Arrow kernels release the
    GIL), while the caller commits history and encodes online values."""
    pool = _stats_pool.get("pool")
    if pool is None:
        pool = _stats_pool["pool"] = ThreadPoolExecutor(max_workers=1, thread_name_prefix="strato-stats")
    return pool.submit(batch_stats, rows, view.schema)


def record_stats(
    registry: RegistryStore,
    view: FeatureView,
    version: int,
    rows: int,
    stats: Future[dict[str, dict[str, Any]]],
    quarantined: int,
) -> None:
    """Keep the statistics of the write that committed `version` of the view's history."""
    registry.record_write_stats(
        view.table_name,
        WriteStats(version, datetime.fromtimestamp(clock.now_us() / 1e6, UTC), rows, stats.result(), quarantined),
    )
