"""Batch files → Arrow: what `write` from a file and `ingest` from a view's `FileSource` read.

One reader per format, each failure a `UserError` naming the file, so a bad path or a
corrupt file never surfaces as an engine traceback.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pyarrow as pa

from strato.definitions.feature_view import FeatureView, FileSource
from strato.errors import SchemaError, UserError
from strato.types import Kind, show

_TEXT_KINDS = {Kind.INT32, Kind.INT64, Kind.FLOAT32, Kind.FLOAT64, Kind.BOOL, Kind.STRING}

_SUFFIXES = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}


def format_of(path: Path) -> str:
    """The format a file's suffix implies (``parquet`` or ``csv``); a folder is a Delta table."""
    if path.is_dir():
        return "delta"
    try:
        return _SUFFIXES[path.suffix.lower()]
    except KeyError:
        raise UserError(
            f"{path}: unsupported file type {path.suffix!r}; use .parquet, .csv or a Delta table folder"
        ) from None


def read_file(
    path: Path, file_format: str | None = None, *, types: Mapping[str, pa.DataType] | None = None
) -> pa.Table:
    """The whole file (or Delta table, at its latest version) as one Arrow table.

    `types` tells the CSV reader what a column holds instead of letting it guess, so a
    string column of digits keeps its leading zeros ("007" stays "007", not 7).
    """
    if not path.exists():
        raise UserError(f"{path}: no such file or folder")
    kind = file_format or format_of(path)
    try:
        if kind == "parquet":
            import pyarrow.parquet as pq

            return pq.read_table(path)
        if kind == "csv":
            import pyarrow.csv as pacsv

            if types:
                try:
                    return pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(column_types=dict(types)))
                except pa.ArrowInvalid as exc:
                    raise SchemaError(_unparsed_csv_value(path, types) or f"{path}: {_first_line(exc)}") from None
            return pacsv.read_csv(path)
        if kind == "delta":
            from deltalake import DeltaTable

            return DeltaTable(str(path)).to_pyarrow_table()
    except UserError:
        raise
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise UserError(f"{path}: cannot read as {kind} ({str(exc).splitlines()[0]})") from None
    except Exception as exc:  # deltalake raises its own exception types
        raise UserError(f"{path}: cannot read as {kind} ({type(exc).__name__}: {str(exc).splitlines()[0]})") from None
    raise UserError(f"{path}: unsupported format {kind!r}; use parquet, csv or delta")


def _unparsed_csv_value(path: Path, types: Mapping[str, pa.DataType]) -> str | None:
    """``file, column 'x', row 3: cannot read 'lots' as int64`` for the first value the CSV
    reader could not parse as its column's type (error path only; rows count from 0 after
    the header, as everywhere else)."""
    import pyarrow.csv as pacsv

    as_text = pacsv.ConvertOptions(column_types=dict.fromkeys(types, pa.string()), strings_can_be_null=True)
    table = pacsv.read_csv(path, convert_options=as_text)
    for name, target in types.items():
        if name not in table.column_names:
            continue
        column = table.column(name)
        try:
            column.cast(target)
            continue
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
        for row, value in enumerate(column.to_pylist()):
            try:
                pa.array([value], pa.string()).cast(target)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                return f"{path}, column {name!r}, row {row}: cannot read {show(value)} as {target}"
    return None


def _first_line(exc: Exception) -> str:
    line = (str(exc).splitlines() or [type(exc).__name__])[0]
    return line if len(line) <= 200 else line[:197] + "..."


def read_source(source: FileSource, repo: Path, *, types: Mapping[str, pa.DataType] | None = None) -> pa.Table:
    """A view's `FileSource`, a relative path resolved against the feature repo."""
    path = Path(source.path).expanduser()
    return read_file(path if path.is_absolute() else repo / path, source.format, types=types)


def text_column_types(view: FeatureView) -> dict[str, pa.DataType]:
    """Arrow types for the view's scalar columns that a text format can spell (not times, lists, maps)."""
    fields = [*view.join_keys, *view.schema]
    return {f.name: f.dtype.to_arrow() for f in fields if f.dtype.kind in _TEXT_KINDS}
