"""The engine-neutral description of one view's part in a point-in-time join (design rule 3)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

import pyarrow as pa

if TYPE_CHECKING:
    from strato.offline.base import TableSnapshot


@dataclass(frozen=True)
class PitRequest:
    """Join `features` of `snapshot` onto the spine by `join_keys`, as of each spine row's time.

    For a spine row (keys, t) the matching history row is the one with the greatest
    event_timestamp ≤ t, ties going to the greatest created_timestamp; with a `ttl`, the match
    must also have event_timestamp ≥ t − ttl, otherwise every feature is null. The spine row
    is never dropped. `output_names[i]` / `output_types[i]` name and type the column for `features[i]`.
    A `snapshot` of None means the view has no data yet: all its features are null.
    """

    snapshot: TableSnapshot | None
    join_keys: Sequence[str]
    features: Sequence[str]
    output_names: Sequence[str]
    output_types: Sequence[pa.DataType]
    ttl: timedelta | None = None
