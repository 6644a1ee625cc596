"""Batch files → Arrow: what `write` from a file and `ingest` from a view's `FileSource` read.

One reader per format, each failure a `UserError` naming the file, so a bad path or a
corrupt file never surfaces as an engine traceback.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from strato.definitions.feature_view import FileSource
from strato.errors import UserError

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


def read_file(path: Path, file_format: str | None = None) -> pa.Table:
    """The whole file (or Delta table, at its latest version) as one Arrow table."""
    if not path.exists():
        raise UserError(f"{path}: no such file or folder")
    kind = file_format or format_of(path)
    try:
        if kind == "parquet":
            import pyarrow.parquet as pq

            return pq.read_table(path)
        if kind == "csv":
            import pyarrow.csv as pacsv

            return pacsv.read_csv(path)
        if kind == "delta":
            from deltalake import DeltaTable

            return DeltaTable(str(path)).to_pyarrow_table()
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise UserError(f"{path}: cannot read as {kind} ({str(exc).splitlines()[0]})") from None
    except Exception as exc:  # deltalake raises its own exception types
        raise UserError(f"{path}: cannot read as {kind} ({type(exc).__name__}: {str(exc).splitlines()[0]})") from None
    raise UserError(f"{path}: unsupported format {kind!r}; use parquet, csv or delta")


def read_source(source: FileSource, repo: Path) -> pa.Table:
    """A view's `FileSource`, a relative path resolved against the feature repo."""
    path = Path(source.path).expanduser()
    return read_file(path if path.is_absolute() else repo / path, source.format)
