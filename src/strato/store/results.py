"""What the store's verbs return: plain, frozen results a caller can keep."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa

from strato.types import TableVersion

if TYPE_CHECKING:
    import pandas as pd

WriteTarget = Literal["online", "offline", "online_and_offline"]


@dataclass(frozen=True)
class WriteResult:
    """What one `write` stored.

    `rows` counts the rows stored in history (and offered online). Without a declared
    `created_timestamp_column`, rows of one batch with the same (keys, event time) are
    reduced to the last one: `superseded` counts the others, which are not stored, so
    ``rows + superseded`` is the batch's length. `table_version` is None when nothing was
    committed (an online-only write, or an empty batch).
    """

    view: str
    rows: int
    table_version: TableVersion | None
    online_rows: int
    already_written: bool = False
    """The idempotency key was already in history: nothing was appended again (`table_version`
    is that earlier commit), and the online step was redone, which changes nothing if it had
    finished."""
    superseded: int = 0
    quarantined: int = 0
    """Rows that broke the view's data-quality rules and were set aside in its quarantine
    table instead (views with ``on_invalid="quarantine"``); not counted in `rows`."""


@dataclass(frozen=True)
class MaterializeResult:
    """Rows loaded into the online store per view, and the time window they came from.

    For `materialize_incremental`, `start` is None: it loads every row committed since the
    last run, whatever its event time, up to `end`.
    """

    rows: dict[str, int]
    start: datetime | None
    end: datetime
    seconds: float
    computed: dict[str, ViewBackfill] = field(default_factory=dict)
    """Views computed by a SqlSource: what this run computed for them first (`backfill`)."""


@dataclass(frozen=True)
class ViewBackfill:
    """What one backfill computed for one view: the event-time intervals it ran the query
    over (the gaps; empty when everything asked was computed already), the rows it wrote and
    the Delta versions it committed."""

    view: str
    computed: tuple[tuple[datetime, datetime], ...]
    rows: int
    table_versions: tuple[TableVersion, ...]


@dataclass(frozen=True)
class BackfillResult:
    """Per view, in the order computed (inputs before the views reading them), what
    `backfill` did over ``[start, end)``."""

    views: dict[str, ViewBackfill]
    start: datetime
    end: datetime
    seconds: float


@dataclass(frozen=True)
class TrainingSet:
    """A point-in-time-correct training set and the table versions it was read from.

    Passing `versions` back to `get_historical_features(..., versions=ts.versions)`
    rebuilds the same rows bit for bit (design rule 5). Keys name each view's storage,
    ``view@vN`` with N the view version that created it, so they survive compatible changes.
    """

    table: pa.Table
    versions: dict[str, TableVersion | None]
    feature_names: tuple[str, ...]
    frame: Any = None
    """With ``engine_result=True``: the rows left in the offline engine, as its own frame (a
    Spark DataFrame), never pulled through this process; `table` is then empty, with the
    result's columns, and `to_arrow` collects the frame."""

    def to_arrow(self) -> pa.Table:
        """The training set as a pyarrow Table (no copy; an engine frame is collected first)."""
        if self.frame is not None:
            collected: pa.Table = self.frame.toArrow()
            return collected
        return self.table

    def to_df(self) -> pd.DataFrame:
        """The training set as a pandas DataFrame."""
        return self.to_arrow().to_pandas()  # type: ignore[no-any-return]
