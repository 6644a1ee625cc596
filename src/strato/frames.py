"""Frames in, validated Arrow out: the one gate every batch passes before any write (rule 7).

`to_arrow` accepts what users hold (pandas, polars, pyarrow, a list of dicts); `conform`
checks a whole batch against a view's schema and returns it cast to the storage layout,
or raises a `SchemaError` naming the view, column and first bad row. Nothing is written
until this returns, so a rejected batch leaves every store untouched.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from strato.definitions.feature_view import FeatureView
from strato.definitions.field import Field
from strato.errors import SchemaError
from strato.types import TIMESTAMP_ARROW, Kind

EVENT_TIMESTAMP = "event_timestamp"
CREATED_TIMESTAMP = "created_timestamp"


def to_arrow(data: Any, *, what: str = "data", types: Mapping[str, pa.DataType] | None = None) -> pa.Table:
    """Any supported frame as an Arrow table, without copying where the library allows.

    Values Arrow cannot put in one typed column (``"abc"`` among ints, an int too large for
    int64) raise a `SchemaError` naming the column and the first row whose value does not
    fit the column's expected type in `types` (or, for other columns, breaks type inference).
    """
    try:
        return _typed_maps(_to_arrow(data, what), data, types or {})
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError) as exc:
        raise SchemaError(f"{what}{_locate_unconvertible(data, types or {})}: {_first_line(exc)}") from None


def _typed_maps(table: pa.Table, data: Any, types: Mapping[str, pa.DataType]) -> pa.Table:
    """Rebuild the columns whose inferred type loses data, from the original Python values.

    Maps: Python dicts infer as one struct of every dict's keys, which cannot be cast to a map
    (and would turn absent keys into null values). Vectors from pandas: its conversion turns
    NaN elements into nulls, which a vector refuses, so NaN is kept as NaN.
    """
    pandas = type(data).__module__.split(".")[0] == "pandas"
    for name, target in types.items():
        if name not in table.column_names or table.column(name).type == target:
            continue
        vector = pa.types.is_fixed_size_list(target)
        if not (pa.types.is_map(target) or (vector and pandas)):
            continue
        values = _python_column(data, name)
        if values is None:
            continue
        try:
            rebuilt = pa.array(values, type=target, from_pandas=not vector)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError):
            continue  # left as inferred: the cast to the view's type names the bad row
        table = table.set_column(table.column_names.index(name), name, rebuilt)
    return table


def _python_column(data: Any, name: str) -> list[Any] | None:
    """The Python values of one column of a pandas frame, a dict of columns or a list of dicts."""
    if type(data).__module__.split(".")[0] == "pandas":
        return data[name].tolist()  # type: ignore[no-any-return]
    if isinstance(data, Mapping):
        return list(data[name])
    if isinstance(data, Sequence) and not isinstance(data, (str, bytes)):
        return [row.get(name) for row in data]
    return None


def _first_line(exc: Exception) -> str:
    text = str(exc.args[0]) if exc.args else str(exc)
    return text.splitlines()[0] if text else type(exc).__name__


def _locate_unconvertible(data: Any, types: Mapping[str, pa.DataType]) -> str:
    """``, column 'x', row 3: cannot convert 'abc'`` for the first value Arrow rejects (error path only)."""
    columns: dict[str, list[Any]] = {}
    if type(data).__module__.split(".")[0] == "pandas":
        columns = {str(name): data[name].tolist() for name in data.columns}
    elif isinstance(data, Mapping):
        columns = {str(name): list(values) for name, values in data.items()}
    elif isinstance(data, Sequence):
        for row in data:
            for name in row:
                columns.setdefault(str(name), [])
        columns = {name: [row.get(name) for row in data] for name in columns}
    for name, values in columns.items():
        if _converts(values):
            continue
        if name in types:
            for row, value in enumerate(values):
                if value is not None and not _converts([value], types[name]):
                    return f", column {name!r}, row {row}: cannot convert {value!r} to {types[name]}"
        low, high = 1, len(values)  # the shortest failing prefix ends at the first bad value
        while low < high:
            mid = (low + high) // 2
            if _converts(values[:mid]):
                low = mid + 1
            else:
                high = mid
        return f", column {name!r}, row {low - 1}: cannot convert {values[low - 1]!r}"
    return ""


def _converts(values: list[Any], type: pa.DataType | None = None) -> bool:
    try:
        pa.array(values, type=type)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError):
        return False
    return True


def _to_arrow(data: Any, what: str) -> pa.Table:
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    module = type(data).__module__.split(".")[0]
    if module == "pandas":
        return pa.Table.from_pandas(data, preserve_index=False)
    if module == "polars":
        return data.to_arrow()
    if isinstance(data, Mapping):
        return pa.table(dict(data))
    if isinstance(data, Sequence) and not isinstance(data, (str, bytes)):
        if data and not all(isinstance(row, Mapping) for row in data):
            raise SchemaError(f"{what}: a list must hold one dict per row")
        _check_same_keys(data, what)
        return pa.Table.from_pylist(list(data))
    raise SchemaError(
        f"{what}: expected a pandas or polars DataFrame, a pyarrow Table, or a list of dicts; got {type(data).__name__}"
    )


def _check_same_keys(rows: Sequence[Mapping[str, Any]], what: str) -> None:
    """Every dict has the first one's keys: Arrow takes the columns from the first row alone,
    so a key only a later row has would vanish, and one it lacks would read null."""
    if not rows:
        return
    first = rows[0].keys()
    for i, row in enumerate(rows):
        keys = row.keys()
        if keys != first:
            extra, missing = sorted(set(keys) - set(first)), sorted(set(first) - set(keys))
            problems = ([f"has {extra} that row 0 lacks"] if extra else []) + (
                [f"lacks {missing} that row 0 has"] if missing else []
            )
            raise SchemaError(f"{what}, row {i}: {' and '.join(problems)}; every row needs the same columns")


def _first_bad_row(column: pa.ChunkedArray, target: pa.DataType) -> tuple[int, Any]:
    """Locate the first value that does not cast, for the error message (error path only)."""
    values = column.to_pylist()
    for i, value in enumerate(values):
        try:
            pa.array([value], type=column.type).cast(target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            return i, value
    return -1, None


def _cast_timestamp(column: pa.ChunkedArray, where: str) -> pa.ChunkedArray:
    """Any timestamp-like column as timestamp[us, UTC]; naive times are taken as UTC."""
    typ = column.type
    if pa.types.is_null(typ):  # all null: a null feature, or a null event time reported by the caller
        return pa.chunked_array([pa.nulls(len(column), TIMESTAMP_ARROW)], type=TIMESTAMP_ARROW)
    if pa.types.is_timestamp(typ):
        if typ.tz is None:
            column = (
                pc.assume_timezone(column, "UTC") if column.num_chunks else column.cast(pa.timestamp(typ.unit, "UTC"))
            )
        return column.cast(TIMESTAMP_ARROW)
    if pa.types.is_date(typ):
        return column.cast(pa.timestamp("us")).cast(TIMESTAMP_ARROW)
    if pa.types.is_string(typ) or pa.types.is_large_string(typ):
        # ISO 8601 text: with an offset it casts straight to UTC, without one it is taken as UTC.
        for target in (TIMESTAMP_ARROW, pa.timestamp("us")):
            try:
                return _cast_timestamp(column.cast(target), where)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                continue
        for row, value in enumerate(column.to_pylist()):  # error path only: find the culprit
            if value is not None and not _parses_as_time(value):
                raise SchemaError(f"{where}, row {row}: cannot parse {value!r} as an ISO 8601 timestamp")
        raise SchemaError(f"{where}: cannot parse {column.type} values as ISO 8601 timestamps")
    raise SchemaError(f"{where}: expected timestamps, got {typ}")


def _parses_as_time(text: str) -> bool:
    for target in (TIMESTAMP_ARROW, pa.timestamp("us")):
        try:
            pa.array([text], pa.string()).cast(target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        return True
    return False


def _cast_column(column: pa.ChunkedArray, field: Field, where: str) -> pa.ChunkedArray:
    target = field.dtype.to_arrow()
    if field.dtype.kind is Kind.TIMESTAMP:
        return _cast_timestamp(column, where)
    if column.type == target:
        out = column
    else:
        if pa.types.is_null(column.type):
            return pa.chunked_array([pa.nulls(len(column), target)], type=target)
        if _is_text(target) and _is_number_like(column.type):
            # Arrow would print the numbers, quietly: 7 → "7", and "007" read as a number is lost.
            raise SchemaError(
                f"{where}: holds {column.type} values but {field.name!r} is {field.dtype}; "
                "convert them to text first if that is what you mean"
            )
        try:
            out = column.cast(target, safe=True)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
            row, value = _first_bad_row(column, target)
            at = f", row {row}: cannot convert {value!r}" if row >= 0 else ""
            raise SchemaError(f"{where}{at} to {field.dtype} (column type {column.type}; {exc})") from None
    if field.dtype.kind is Kind.VECTOR:
        _check_vector(out, where)
    return out


def _is_text(t: pa.DataType) -> bool:
    return bool(pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t))


def _is_number_like(t: pa.DataType) -> bool:
    return bool(
        pa.types.is_integer(t)
        or pa.types.is_floating(t)
        or pa.types.is_boolean(t)
        or pa.types.is_decimal(t)
        or pa.types.is_temporal(t)
    )


def _check_vector(column: pa.ChunkedArray, where: str) -> None:
    """Embeddings hold numbers only: a null element would not survive the online layout."""
    for offset, chunk in _chunks_with_offsets(column):
        values = chunk.flatten()
        if values.null_count:
            size = chunk.type.list_size
            flat_nulls = np.flatnonzero(values.is_null().to_numpy(zero_copy_only=False))
            valid_rows = np.flatnonzero(chunk.is_valid().to_numpy(zero_copy_only=False))
            row = offset + int(valid_rows[flat_nulls[0] // size])
            raise SchemaError(f"{where}, row {row}: vector elements cannot be null (use NaN)")


def _chunks_with_offsets(column: pa.ChunkedArray) -> list[tuple[int, pa.Array]]:
    out, offset = [], 0
    for chunk in column.chunks:
        out.append((offset, chunk))
        offset += len(chunk)
    return out


def _first_null(column: pa.ChunkedArray) -> int:
    return int(np.flatnonzero(column.is_null().to_numpy())[0])


def conform(view: FeatureView, data: Any) -> pa.Table:
    """Validate a batch for `view` and return it as: join keys, event_timestamp, features.

    Within the batch, rows with the same (keys, event time) keep only the last one: it is
    the latest write (rule 2), and dropping the others keeps row identity unique on disk.
    """
    types = {f.name: f.dtype.to_arrow() for f in (*view.join_keys, *view.schema)}
    table = to_arrow(data, what=f"feature view {view.name!r}", types={**types, view.timestamp_field: TIMESTAMP_ARROW})
    where = f"feature view {view.name!r}"
    names = set(table.column_names)
    if len(names) != len(table.column_names):
        raise SchemaError(f"{where}: duplicate column names in {table.column_names}")
    ts_name = view.timestamp_field
    expected = {*view.join_key_names, ts_name, *view.feature_names}
    unknown = [c for c in table.column_names if c not in expected and c != CREATED_TIMESTAMP]
    if unknown:
        raise SchemaError(f"{where}: unknown columns {unknown}; the view has {sorted(expected)}")
    missing_keys = [k for k in view.join_key_names if k not in names]
    if missing_keys:
        raise SchemaError(f"{where}: missing join key columns {missing_keys}")
    if ts_name not in names:
        raise SchemaError(f"{where}: missing event time column {ts_name!r}")
    missing_features = [f for f in view.feature_names if f not in names]
    if missing_features:
        raise SchemaError(f"{where}: missing feature columns {missing_features}")

    columns: dict[str, pa.ChunkedArray] = {}
    for key in view.join_keys:
        col = table.column(key.name)
        if col.null_count:
            raise SchemaError(f"{where}, column {key.name!r}, row {_first_null(col)}: join key is null")
        columns[key.name] = _cast_column(col, key, f"{where}, join key {key.name!r}")
    ts = _cast_timestamp(table.column(ts_name), f"{where}, column {ts_name!r}")
    if ts.null_count:
        raise SchemaError(f"{where}, column {ts_name!r}, row {_first_null(ts)}: event time is null")
    columns[EVENT_TIMESTAMP] = ts
    for feature in view.schema:
        columns[feature.name] = _cast_column(table.column(feature.name), feature, f"{where}, column {feature.name!r}")
    out = pa.table(columns)
    return _keep_last_per_identity(out, [*view.join_key_names, EVENT_TIMESTAMP])


def _keep_last_per_identity(table: pa.Table, identity: list[str]) -> pa.Table:
    if table.num_rows < 2:
        return table
    indexed = table.select(identity).append_column("__row", pa.array(np.arange(table.num_rows)))
    last = indexed.group_by(identity, use_threads=False).aggregate([("__row", "max")])
    if last.num_rows == table.num_rows:
        return table
    keep = np.sort(last.column("__row_max").to_numpy())
    return table.take(pa.array(keep))


def conform_spine(entity_df: Any, key_fields: Sequence[Field], timestamp_field: str) -> pa.Table:
    """Validate an entity frame for a training set: join keys and event times, never null.

    Other columns (labels, request data) are carried through untouched.
    """
    types = {k.name: k.dtype.to_arrow() for k in key_fields}
    table = to_arrow(entity_df, what="entity_df", types={**types, timestamp_field: TIMESTAMP_ARROW})
    where = "entity_df"
    if timestamp_field not in table.column_names:
        raise SchemaError(f"{where}: missing event time column {timestamp_field!r}")
    columns: dict[str, pa.ChunkedArray] = {}
    for name in table.column_names:
        columns[name] = table.column(name)
    for key in key_fields:
        if key.name not in columns:
            raise SchemaError(f"{where}: missing join key column {key.name!r}")
        col = columns[key.name]
        if col.null_count:
            raise SchemaError(f"{where}, column {key.name!r}, row {_first_null(col)}: join key is null")
        columns[key.name] = _cast_column(col, key, f"{where}, join key {key.name!r}")
    ts = _cast_timestamp(columns[timestamp_field], f"{where}, column {timestamp_field!r}")
    if ts.null_count:
        raise SchemaError(f"{where}, column {timestamp_field!r}, row {_first_null(ts)}: event time is null")
    columns[timestamp_field] = ts
    return pa.table(columns)
