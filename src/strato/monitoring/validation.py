"""Check a batch against its view's data-quality rules, in one vectorized pass.

`screen` answers, for a batch already cast to the view's types (and not yet reduced to one
row per (keys, event time)), which rows break which rule. The store then refuses the batch
whole or, for a view with ``on_invalid="quarantine"``, sets those rows aside and writes the
rest. Every rule runs as an Arrow compute kernel over the whole column, so a clean batch
costs one pass per rule, not one Python call per value.

What counts as an offending row, per rule:

- a range (``ge``/``le``/``gt``/``lt``): a non-null value outside it, or NaN;
- ``allowed``: a non-null value not in the list;
- ``regex``: a non-null string the pattern does not match in full;
- ``max_null_fraction``: when the batch's share of nulls in the field exceeds it, every row
  whose value is null (setting them aside leaves a batch that meets the rule);
- ``unique_events``: every row whose (join keys, event time) appears more than once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from strato.definitions.expectations import Expect
from strato.definitions.feature_view import FeatureView
from strato.types import TIMESTAMP_ARROW

SAMPLE_ROWS = 5
EVENT_TIMESTAMP = "event_timestamp"


@dataclass(frozen=True)
class Failure:
    """One broken rule: which field, which rule, how many rows, and the first few of them
    (row number in the written batch, and the offending value as ``name=value``)."""

    field: str
    rule: str
    rows: int
    sample: tuple[tuple[int, str], ...]

    def describe(self, total: int) -> str:
        """One line for a person: the field, the rule, the count, and a sample of rows."""
        shown = ", ".join(f"row {i} ({value})" for i, value in self.sample)
        more = ", ..." if self.rows > len(self.sample) else ""
        if self.rule == "unique_events":
            return f"({self.field}) repeats within the batch (unique_events): {self.rows} of {total} rows, e.g. {shown}{more}"
        return f"field {self.field!r} breaks {self.rule}: {self.rows} of {total} rows, e.g. {shown}{more}"


@dataclass(frozen=True)
class Verdict:
    """The outcome of `screen`: the broken rules, and a mask of the rows that broke any."""

    failures: tuple[Failure, ...]
    offending: npt.NDArray[np.bool_]
    total: int
    reasons: tuple[str, ...] = ()
    """Per offending row, in row order, the rules it broke, joined by ``; ``."""

    @property
    def ok(self) -> bool:
        """True when every row meets every rule."""
        return not self.failures

    def message(self, view: str) -> str:
        """The refusal a person reads: the view, then one clause per broken rule."""
        parts = "; ".join(f.describe(self.total) for f in self.failures)
        return f"feature view {view!r}: batch refused, nothing written: {parts}"


def screen(view: FeatureView, rows: pa.Table) -> Verdict:
    """Which rows of `rows` (cast to the view's types, keys and ``event_timestamp``
    included) break the view's rules. A view without rules costs nothing."""
    total = rows.num_rows
    offending = np.zeros(total, dtype=bool)
    failures: list[Failure] = []
    per_row: dict[int, list[str]] = {}
    for field in view.schema:
        if field.expect is None:
            continue
        column = rows.column(field.name)
        for rule, mask in _field_rules(field.expect, column):
            bad = np.flatnonzero(mask)
            if not len(bad):
                continue
            sample = tuple((int(i), f"{field.name}={_show(column[int(i)])}") for i in bad[:SAMPLE_ROWS])
            failures.append(Failure(field.name, rule, len(bad), sample))
            offending |= mask
            for i in bad:
                per_row.setdefault(int(i), []).append(f"{field.name}: {rule}")
    if view.unique_events:
        identity = [*view.join_key_names, EVENT_TIMESTAMP]
        mask = _duplicated(rows.select(identity))
        bad = np.flatnonzero(mask)
        if len(bad):
            sample = tuple(
                (int(i), ", ".join(f"{c}={_show(rows.column(c)[int(i)])}" for c in identity)) for i in bad[:SAMPLE_ROWS]
            )
            failures.append(Failure(", ".join(identity), "unique_events", len(bad), sample))
            offending |= mask
            for i in bad:
                per_row.setdefault(int(i), []).append("unique_events: (keys, event time) repeated in the batch")
    return Verdict(tuple(failures), offending, total, tuple("; ".join(per_row[i]) for i in sorted(per_row)))


def _field_rules(expect: Expect, column: pa.ChunkedArray) -> list[tuple[str, npt.NDArray[np.bool_]]]:
    """(rule as text, offending-row mask) for each rule set on one field."""
    out: list[tuple[str, npt.NDArray[np.bool_]]] = []
    valid = _mask(pc.is_valid(column))
    lower, lower_in, upper, upper_in = expect.bounds
    if lower is not None or upper is not None:
        outside = np.zeros(len(column), dtype=bool)
        if pa.types.is_integer(column.type):
            lower, lower_in, upper, upper_in = _integer_bounds(column.type, lower, lower_in, upper, upper_in)
        if lower is _NOTHING or upper is _NOTHING:
            outside[:] = True  # no value of the column's type is in range
        if lower is not None and lower is not _NOTHING:
            low = _scalar(lower, column.type)
            outside |= _mask(pc.less(column, low) if lower_in else pc.less_equal(column, low))
        if upper is not None and upper is not _NOTHING:
            high = _scalar(upper, column.type)
            outside |= _mask(pc.greater(column, high) if upper_in else pc.greater_equal(column, high))
        if pa.types.is_floating(column.type):
            outside |= _mask(pc.is_nan(column))
        out.append((_range_text(expect), outside & valid))
    if expect.allowed is not None:
        values = pa.array([_scalar(v, column.type).as_py() for v in expect.allowed], column.type)
        out.append((f"allowed={list(expect.allowed)!r}", ~_mask(pc.is_in(column, value_set=values)) & valid))
    if expect.regex is not None:
        matches = pc.match_substring_regex(column, f"^(?:{expect.regex})$")
        out.append((f"regex={expect.regex!r}", ~_mask(matches) & valid))
    if expect.max_null_fraction is not None and len(column):
        nulls = column.null_count
        if nulls / len(column) > expect.max_null_fraction:
            rule = f"max_null_fraction={expect.max_null_fraction:g} (batch has {nulls / len(column):.1%} nulls)"
            out.append((rule, ~valid))
    return out


_NOTHING: Any = object()
"""A bound no value of the column's type can meet (an int column with ``ge=1e30``)."""


def _integer_bounds(
    type_: pa.DataType, lower: Any, lower_in: bool, upper: Any, upper_in: bool
) -> tuple[Any, bool, Any, bool]:
    """The same range as inclusive integer bounds within the column's type, so an int
    column never compares through float64 (which loses integers past 2**53): ``ge=2.5``
    is ``ge=3``, ``lt=3`` is ``le=2``. A bound beyond the type's range drops out (every
    value meets it) or becomes `_NOTHING` (none does)."""
    info = np.iinfo(type_.to_pandas_dtype())
    low: Any = None
    high: Any = None
    if lower is not None:
        low = math.ceil(lower) if lower_in else math.floor(lower) + 1
        low = None if low <= info.min else _NOTHING if low > info.max else low
    if upper is not None:
        high = math.floor(upper) if upper_in else math.ceil(upper) - 1
        high = None if high >= info.max else _NOTHING if high < info.min else high
    return low, True, high, True


def _show(value: pa.Scalar) -> str:
    """A value as a person reads it in a report: timestamps in ISO form, the rest as repr."""
    py = value.as_py()
    return py.isoformat() if isinstance(py, datetime) else repr(py)


def _range_text(expect: Expect) -> str:
    parts = [
        f"{name}={getattr(expect, name)!r}" for name in ("ge", "gt", "le", "lt") if getattr(expect, name) is not None
    ]
    return " ".join(parts)


def _scalar(value: Any, type_: pa.DataType) -> pa.Scalar:
    if isinstance(value, datetime):
        return pa.scalar(value, TIMESTAMP_ARROW).cast(type_)
    return pa.scalar(value).cast(type_) if not isinstance(value, bool) else pa.scalar(value, pa.bool_())


def _mask(result: pa.ChunkedArray | pa.Array) -> npt.NDArray[np.bool_]:
    """An Arrow boolean result as a numpy mask, null counted as False."""
    filled = pc.fill_null(result, False)
    if isinstance(filled, pa.ChunkedArray):
        filled = filled.combine_chunks()
    return np.asarray(filled.to_numpy(zero_copy_only=False), dtype=bool)


def _duplicated(identity: pa.Table) -> npt.NDArray[np.bool_]:
    """Rows whose identity columns appear more than once in the table."""
    row = "__strato_row"
    indexed = identity.append_column(row, pa.array(np.arange(identity.num_rows)))
    counts = indexed.group_by(identity.column_names, use_threads=False).aggregate([(row, "count")])
    repeated = counts.filter(pc.greater(counts.column(f"{row}_count"), 1))
    if not repeated.num_rows:
        return np.zeros(identity.num_rows, dtype=bool)
    joined = indexed.join(repeated.select(identity.column_names), identity.column_names, join_type="inner")
    mask = np.zeros(identity.num_rows, dtype=bool)
    mask[joined.column(row).to_numpy()] = True
    return mask
