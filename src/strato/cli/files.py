"""Rows a command writes to a file (``--out``): CSV or Parquet, chosen by the file's suffix.

The suffix is checked before any work is done, so a typo costs nothing, and the file is
written beside its target and renamed into place, so a failed or interrupted write never
leaves a partial file where a complete one was expected.
"""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa

from strato.cli import render
from strato.errors import UserError

SUFFIXES = (".csv", ".parquet")


def check_out(out: Path) -> str:
    """The format `out` asks for (``csv`` or ``parquet``), or a `UserError` naming the choices."""
    suffix = out.suffix.lower()
    if suffix not in SUFFIXES:
        got = f"{suffix!r}" if suffix else "no suffix"
        raise UserError(f"--out {out}: give a .csv or .parquet file name (got {got})")
    if out.is_dir():
        raise UserError(f"--out {out} is a folder; give a .csv or .parquet file name")
    if not out.parent.is_dir():
        raise UserError(f"--out {out}: folder {out.parent} does not exist")
    return suffix.removeprefix(".")


def check_outside(out: Path, *places: str | Path) -> None:
    """Refuse an `out` inside the store's own data (its history, training sets, registry):
    writing a query's rows over a committed file would forge what SQL itself may not."""
    target = out.resolve()
    for place in places:
        if "://" in str(place) and not str(place).startswith("file://"):
            continue  # object storage: a local --out can never land there
        folder = Path(str(place).removeprefix("file://")).resolve()
        if target == folder or folder in target.parents:
            raise UserError(f"--out {out} is inside the store's data ({folder}); write it somewhere else")


def write_rows(rows: pa.Table, out: Path) -> None:
    """Write `rows` to `out` whole (see the module doc) and say how many."""
    kind = check_out(out)
    staging = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        if kind == "parquet":
            import pyarrow.parquet as pq

            pq.write_table(rows, staging)
        else:
            import pyarrow.csv as csv

            csv.write_csv(_csv_ready(rows), staging)
        staging.replace(out)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise
    render.console.print(f"wrote {render.count(rows.num_rows, 'row')} to {out}")


def _csv_ready(rows: pa.Table) -> pa.Table:
    """CSV holds scalars only: lists, maps and structs are written as their JSON-like text."""
    columns = []
    for column in rows.columns:
        if pa.types.is_nested(column.type):
            column = pa.chunked_array([pa.array([None if v is None else str(v) for v in column.to_pylist()])])
        columns.append(column)
    return pa.table(columns, names=rows.column_names)
