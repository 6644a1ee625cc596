"""Per-write column statistics: what a batch looked like, kept so drift can be seen later.

`batch_stats` summarizes each feature of a written batch in one Arrow pass per measure:
count, nulls, and for numbers min, max, mean, standard deviation (exact) and approximate
quantiles (t-digest over a sample); for timestamps min and max; for strings and bytes a distinct count; for lists, maps
and vectors the mean length. The result is plain JSON-ready data, stored in the registry
beside the Delta version it describes (`strato describe` shows the latest and how it moved).

Distinct counts are exact within a batch (Arrow's hash kernel), which is what one write can
afford; across writes they are not additive, so they are reported per write only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from strato.definitions.field import Field

QUANTILES = (0.01, 0.25, 0.5, 0.75, 0.99)
QUANTILE_SAMPLE = 16_384
"""Quantiles are estimated from a uniform sample of this many values: the rank error of a
sample quantile is about 1/sqrt(n), under 1% here, well within what drift checks need."""


def batch_stats(rows: pa.Table, fields: Sequence[Field]) -> dict[str, dict[str, Any]]:
    """{feature name: {measure: value}} for the `fields` of `rows` (JSON-serializable)."""
    return {f.name: column_stats(rows.column(f.name)) for f in fields if f.name in rows.column_names}


def column_stats(column: pa.ChunkedArray) -> dict[str, Any]:
    """The measures that fit the column's type; floats that are NaN or infinite come out None."""
    kind = column.type
    out: dict[str, Any] = {"count": len(column), "nulls": column.null_count}
    if len(column) == column.null_count:
        return out
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind):
        numbers = column.cast(pa.float64()) if pa.types.is_boolean(kind) else column
        minmax = pc.min_max(numbers)
        out["min"] = _number(minmax["min"].as_py())
        out["max"] = _number(minmax["max"].as_py())
        out["mean"] = _number(pc.mean(numbers).as_py())
        out["std"] = _number(pc.stddev(numbers, ddof=0).as_py())
        if not pa.types.is_boolean(kind):
            digest = pc.tdigest(_sample(numbers), q=list(QUANTILES))
            out["quantiles"] = {
                f"p{round(q * 100):02d}": _number(v.as_py()) for q, v in zip(QUANTILES, digest, strict=True)
            }
    elif pa.types.is_timestamp(kind):
        minmax = pc.min_max(column)
        out["min"] = _time(minmax["min"].as_py())
        out["max"] = _time(minmax["max"].as_py())
    elif pa.types.is_string(kind) or pa.types.is_binary(kind) or pa.types.is_large_string(kind):
        out["distinct"] = pc.count_distinct(column, mode="only_valid").as_py()
        out["mean_length"] = _number(pc.mean(pc.binary_length(column)).as_py())
    elif pa.types.is_list(kind) or pa.types.is_fixed_size_list(kind) or pa.types.is_map(kind):
        out["mean_length"] = _number(pc.mean(pc.list_value_length(column)).as_py())
    return out


def _sample(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """At most `QUANTILE_SAMPLE` values drawn at random (a fixed seed: the same batch gives
    the same figures), so quantiles cost the same on a million rows as on sixteen thousand."""
    if len(column) <= QUANTILE_SAMPLE:
        return column
    picks = np.random.default_rng(0).integers(0, len(column), QUANTILE_SAMPLE)
    return column.take(pa.array(np.sort(picks)))


def _number(value: float | int | None) -> float | int | None:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    return value


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
