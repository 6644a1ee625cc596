"""Per-write column statistics: what a batch looked like, kept so drift can be seen later.

`batch_stats` summarizes each feature of a written batch in one Arrow pass per measure:
count, nulls, and for numbers min, max, mean, standard deviation (exact) and approximate
quantiles (over a uniform sample); for timestamps min and max; for strings and bytes a distinct count; for lists, maps
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
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from strato.definitions.field import Field

QUANTILES = (0.01, 0.25, 0.5, 0.75, 0.99)
QUANTILE_SAMPLE = 16_384
"""Quantiles are estimated from a uniform sample of this many values: the rank error of a
sample quantile is about 1/sqrt(n), under 1% here, well within what drift checks need."""


def batch_stats(rows: pa.Table, fields: Sequence[Field]) -> dict[str, dict[str, Any]]:
    """{feature name: {measure: value}} for the `fields` of `rows` (JSON-serializable)."""
    picks = _sample_rows(rows.num_rows)
    return {f.name: column_stats(rows.column(f.name), picks) for f in fields if f.name in rows.column_names}


def column_stats(column: pa.ChunkedArray, picks: npt.NDArray[np.int64] | None = None) -> dict[str, Any]:
    """The measures that fit the column's type; floats that are NaN or infinite come out None.

    `picks` are the rows quantiles are estimated from (`_sample_rows`), shared by every
    column of a batch."""
    kind = column.type
    out: dict[str, Any] = {"count": len(column), "nulls": column.null_count}
    if len(column) == column.null_count:
        return out
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind):
        if picks is None:
            picks = _sample_rows(len(column))
        with np.errstate(all="ignore"):  # inf values: a mean or std of inf/nan is reported as None
            out.update(_numeric(column, picks))
    elif pa.types.is_timestamp(kind):
        minmax = pc.min_max(column)
        out["min"] = _time(minmax["min"].as_py())
        out["max"] = _time(minmax["max"].as_py())
    elif pa.types.is_string(kind) or pa.types.is_binary(kind) or pa.types.is_large_string(kind):
        out["distinct"] = pc.count_distinct(column, mode="only_valid").as_py()
        out["mean_length"] = _number(pc.mean(pc.binary_length(column)).as_py())
    elif pa.types.is_list(kind) or pa.types.is_fixed_size_list(kind) or pa.types.is_map(kind):
        out["mean_length"] = _mean_length(column)
    return out


def _mean_length(column: pa.ChunkedArray) -> float | int | None:
    """Mean number of items per non-null list, map or vector (Arrow has no length kernel for maps)."""
    if pa.types.is_map(column.type):
        valid = pc.drop_null(column).combine_chunks()
        return _number(float(np.diff(valid.offsets.to_numpy()).mean())) if len(valid) else None
    return _number(pc.mean(pc.list_value_length(column)).as_py())


def _numeric(column: pa.ChunkedArray, picks: npt.NDArray[np.int64] | None) -> dict[str, Any]:
    """min, max, mean, std (population) and sampled quantiles of a numeric or boolean column.

    NumPy over the column's own buffer where it has no nulls (one pass each, no copy: 10x
    faster than Arrow's min_max here); Arrow's null-aware kernels otherwise."""
    boolean = pa.types.is_boolean(column.type)
    if column.null_count == 0 and not boolean:
        native = column.combine_chunks().to_numpy(zero_copy_only=False)  # ints stay exact for min/max
        if pa.types.is_floating(column.type) and np.isnan(native).any():
            native = native[~np.isnan(native)]
            if not len(native):
                return {}
        values = native.astype(np.float64, copy=False)
        out: dict[str, Any] = {
            "min": _py(native.min()),
            "max": _py(native.max()),
            "mean": _number(float(values.mean())),
            "std": _number(float(values.std())),
        }
        sample = values if picks is None or len(values) != len(column) else values[picks]
    else:
        numbers = column.cast(pa.float64()) if boolean else column
        minmax = pc.min_max(numbers)
        out = {
            "min": _number(minmax["min"].as_py()),
            "max": _number(minmax["max"].as_py()),
            "mean": _number(pc.mean(numbers).as_py()),
            "std": _number(pc.stddev(numbers, ddof=0).as_py()),
        }
        if boolean:
            return out
        taken = numbers if picks is None else numbers.take(pa.array(picks))
        sample = np.asarray(pc.drop_null(taken).to_numpy(), dtype=np.float64)
        sample = sample[~np.isnan(sample)]
    if len(sample):
        marks = np.quantile(sample, QUANTILES)
        out["quantiles"] = {f"p{round(q * 100):02d}": _number(float(v)) for q, v in zip(QUANTILES, marks, strict=True)}
    return out


def _sample_rows(n: int) -> npt.NDArray[np.int64] | None:
    """At most `QUANTILE_SAMPLE` row numbers drawn at random (a fixed seed: the same batch
    gives the same figures), so quantiles cost the same on a million rows as on sixteen
    thousand; None when the batch is small enough to use whole."""
    if n <= QUANTILE_SAMPLE:
        return None
    return np.sort(np.random.default_rng(0).integers(0, n, QUANTILE_SAMPLE))


def _py(value: Any) -> float | int | None:
    return _number(value.item() if hasattr(value, "item") else value)


def _number(value: float | int | None) -> float | int | None:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    return value


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
