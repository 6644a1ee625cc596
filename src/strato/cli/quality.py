"""How the CLI shows data quality: a view's write statistics (in `strato describe`) and the
rows its writes set aside (`strato quarantine`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from strato.cli import files, render
from strato.registry.base import WriteStats


def describe_stats(stats: list[WriteStats], features: Sequence[str]) -> None:
    """The latest write's statistics per feature, beside the mean of the write before it,
    so a person sees at a glance whether a feature moved."""
    if not stats:
        return
    latest, previous = stats[0], stats[1] if len(stats) > 1 else None
    when = f"{latest.written_at:%Y-%m-%d %H:%M:%S} UTC"
    aside = f", {latest.quarantined:,} set aside" if latest.quarantined else ""
    title = f"  last write: table version {latest.version}, {latest.rows:,} rows{aside}, {when}"
    rows = []
    for name in [f for f in features if f in latest.columns]:
        s = latest.columns[name]
        before = previous.columns.get(name, {}) if previous else {}
        quantiles = s.get("quantiles") or {}
        rows.append(
            (
                name,
                _null_share(s),
                _num(s.get("min")),
                _num(quantiles.get("p50")),
                _num(s.get("max")),
                _num(s.get("mean")),
                _num(before.get("mean")) if before else "",
                _num(s.get("std")),
                s.get("distinct", ""),
            )
        )
    columns = ["feature", "nulls", "min", "p50", "max", "mean", "mean before", "std", "distinct"]
    render.table(title, columns, rows)


def write_quarantine(rows: pa.Table, out: Path) -> None:
    """Write set-aside rows to `out`, as CSV or Parquet by its suffix."""
    files.write_rows(rows, out)


def show_quarantine(view: str, rows: pa.Table, limit: int) -> None:
    """The set-aside rows as a table, newest first, at most `limit` of them."""
    if rows.num_rows == 0:
        render.console.print(f"no rows of {view!r} were set aside")
        return
    shown = rows.sort_by([("quarantined_at", "descending")]).slice(0, limit).to_pylist()
    columns = rows.column_names
    render.table(f"{view}: {rows.num_rows:,} rows set aside", columns, [[_cell(r[c]) for c in columns] for r in shown])
    if rows.num_rows > limit:
        render.console.print(f"… {rows.num_rows - limit:,} more rows (use --limit or --out)")


def _null_share(stats: dict[str, Any]) -> str:
    count = stats.get("count") or 0
    return f"{stats.get('nulls', 0) / count:.1%}" if count else ""


def _num(value: Any) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _cell(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    return "" if value is None else str(value)
