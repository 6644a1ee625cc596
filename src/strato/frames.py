"""Frames in, validated Arrow out: the one gate every batch passes before any write (rule 7).

`to_arrow` accepts what users hold (pandas, polars, pyarrow, a list of dicts); `conform`
checks a whole batch against a view's schema and returns it cast to the storage layout,
or raises a `SchemaError` naming the view, column and first bad row. Nothing is written
until this returns, so a rejected batch leaves every store untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from strato import clock
from strato.definitions.feature_view import FeatureView
from strato.definitions.field import Field
from strato.errors import SchemaError
from strato.types import TIMESTAMP_ARROW, Kind, cross_kind, show

EVENT_TIMESTAMP = "event_timestamp"
CREATED_TIMESTAMP = "created_timestamp"
_ROW = "__strato_row"


def to_arrow(data: Any, *, what: str = "data", types: Mapping[str, pa.DataType] | None = None) -> pa.Table:
    """Any supported frame as an Arrow table, without copying where the library allows.

    Values Arrow cannot put in one typed column (``"abc"`` among ints, an int too large for
    int64) raise a `SchemaError` naming the column and the first row whose value does not
    fit the column's expected type in `types` (or, for other columns, breaks type inference).
    """
    try:
        return _typed_maps(_to_arrow(data, what), data, types or {})
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError) as exc:
        where, typed = _locate_unconvertible(data, types or {})
        # Located against the column's type, the engine's own words (about whichever value it
        # tried first) would only mislead.
        raise SchemaError(f"{what}{where}" if typed else f"{what}{where}: {_first_line(exc)}") from None


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


def _first_line(exc: Exception, limit: int = 200) -> str:
    """The first line of an engine's message, at most `limit` characters (they may quote values)."""
    text = str(exc.args[0]) if exc.args else str(exc)
    line = text.splitlines()[0] if text else type(exc).__name__
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _locate_unconvertible(data: Any, types: Mapping[str, pa.DataType]) -> tuple[str, bool]:
    """``, column 'x', row 3: cannot convert 'abc'`` for the first value Arrow rejects, and
    whether it was checked against the column's expected type (error path only)."""
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
        # Times may come as text, cast later: checked value by value against the timestamp type,
        # every text would look bad. A column mixing kinds is what Arrow refused: name the odd one.
        mixed = _mixed_kinds(values) if name not in types or pa.types.is_timestamp(types[name]) else None
        if mixed is not None:
            return f", column {name!r}, {mixed}", True
        if name in types:
            for row, value in enumerate(values):
                if value is not None and not _converts([value], types[name]):
                    return f", column {name!r}, row {row}: cannot convert {show(value)} to {types[name]}", True
        low, high = 1, len(values)  # the shortest failing prefix ends at the first bad value
        while low < high:
            mid = (low + high) // 2
            if _converts(values[:mid]):
                low = mid + 1
            else:
                high = mid
        return f", column {name!r}, row {low - 1}: cannot convert {show(values[low - 1])}", False
    return "", False


def _kind_of(value: Any) -> str:
    """A value's kind for `_mixed_kinds`: ints and floats are both numbers, as Arrow reads them."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return type(value).__name__


def _mixed_kinds(values: list[Any]) -> str | None:
    """``row 3: holds 5, a number, where row 0 holds a str`` for a column mixing kinds of values
    (JSON's ``["2026-01-01", 5]``), or None."""
    first: tuple[int, str] | None = None
    for row, value in enumerate(values):
        if value is None:
            continue
        kind = _kind_of(value)
        if first is None:
            first = (row, kind)
        elif kind != first[1]:
            return (
                f"row {row}: holds {show(value)}, a {kind}, where row {first[0]} holds a {first[1]}; "
                "a column holds one kind of value"
            )
    return None


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
        return _check_python_nanos(pa.table(dict(data)), data, what)
    if isinstance(data, Sequence) and not isinstance(data, (str, bytes)):
        if data and not all(isinstance(row, Mapping) for row in data):
            raise SchemaError(f"{what}: a list must hold one dict per row")
        _check_same_keys(data, what)
        return _check_python_nanos(pa.Table.from_pylist(list(data)), data, what)
    raise SchemaError(
        f"{what}: expected a pandas or polars DataFrame, a pyarrow Table, or a list of dicts; got {type(data).__name__}"
    )


def _check_python_nanos(table: pa.Table, data: Any, what: str) -> pa.Table:
    """Refuse `pandas.Timestamp` values with nanoseconds: Arrow would truncate them silently."""
    for name in table.column_names:
        if pa.types.is_timestamp(table.column(name).type):
            for row, value in enumerate(_python_column(data, name) or ()):
                if getattr(value, "nanosecond", 0):
                    raise SchemaError(_nanos_message(f"{what}, column {name!r}", row, str(value), value.nanosecond))
    return table


def _nanos_message(where: str, row: int, shown: str, nanos: int) -> str:
    return (
        f"{where}, row {row}: {shown} has {nanos} ns past the microsecond; Strato keeps whole microseconds "
        "(floor the column first, e.g. df[col].dt.floor('us'))"
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


def _first_valid(column: pa.ChunkedArray) -> tuple[int, Any]:
    """The first row holding a value; for lists and maps, one holding a non-null item (error path only)."""
    for row, value in enumerate(_iter_values(column)):
        if value is None:
            continue
        if isinstance(value, list):  # a map comes back as a list of (key, value) pairs
            items = [v[1] if isinstance(v, tuple) else v for v in value]
            if all(v is None for v in items):
                continue
        return row, value
    return 0, None


def _iter_values(column: pa.ChunkedArray) -> Iterator[Any]:
    """Python values one at a time, so a search can stop early without converting the column."""
    for chunk in column.chunks:
        for i in range(len(chunk)):
            yield chunk[i].as_py()


def _as_micros(column: pa.ChunkedArray, where: str) -> pa.ChunkedArray:
    """A timestamp column in µs, refusing any value with a sub-microsecond part (see `strato.clock`)."""
    if column.type.unit != "ns":
        return column.cast(pa.timestamp("us", column.type.tz))
    nanos = column.cast(pa.int64()).fill_null(0).to_numpy()
    bad = np.flatnonzero(nanos % 1000)
    if bad.size:
        row = int(bad[0])
        raise SchemaError(_nanos_message(where, row, str(np.datetime64(int(nanos[row]), "ns")), int(nanos[row]) % 1000))
    return column.cast(pa.timestamp("us", column.type.tz))


def _cast_timestamp(column: pa.ChunkedArray, where: str) -> pa.ChunkedArray:
    """Any timestamp-like column as timestamp[us, UTC]; naive times are taken as UTC."""
    typ = column.type
    if pa.types.is_null(typ):  # all null: a null feature, or a null event time reported by the caller
        return pa.chunked_array([pa.nulls(len(column), TIMESTAMP_ARROW)], type=TIMESTAMP_ARROW)
    if pa.types.is_timestamp(typ):
        column = _as_micros(column, where)
        if typ.tz is None:
            column = pc.assume_timezone(column, "UTC") if column.num_chunks else column.cast(pa.timestamp("us", "UTC"))
        return column.cast(TIMESTAMP_ARROW)
    if pa.types.is_date(typ):
        return column.cast(pa.timestamp("us")).cast(TIMESTAMP_ARROW)
    if pa.types.is_string(typ) or pa.types.is_large_string(typ):
        # ISO 8601 text: with an offset it casts straight to UTC, without one it is taken as
        # UTC; nanosecond text parses only as ns, so that its sub-µs part is reported.
        for target in (TIMESTAMP_ARROW, pa.timestamp("us"), pa.timestamp("ns", "UTC"), pa.timestamp("ns")):
            try:
                parsed = column.cast(target)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                continue
            return _cast_timestamp(parsed, where)
        raise SchemaError(_unparsed_times(column, where))
    raise SchemaError(f"{where}: expected timestamps, got {typ}")


def _unparsed_times(column: pa.ChunkedArray, where: str) -> str:
    """Why a text column does not parse as one kind of time (error path only)."""
    first_form: tuple[int, bool] | None = None
    for row, value in enumerate(column.to_pylist()):
        if value is None:
            continue
        form = _time_form(value)
        if form is None:
            return f"{where}, row {row}: cannot parse {show(value)} as an ISO 8601 timestamp"
        if first_form is None:
            first_form = (row, form)
        elif form != first_form[1]:
            has, lacks = ("has", "lacks") if form else ("lacks", "has")
            return (
                f"{where}, row {row}: {show(value)} {has} a UTC offset but row {first_form[0]} {lacks} one; "
                "write every time of the column the same way"
            )
    return f"{where}: cannot parse {column.type} values as ISO 8601 timestamps"


def _time_form(text: str) -> bool | None:
    """True if `text` parses as a time with a UTC offset, False without one, None if not at all."""
    for target, with_offset in ((TIMESTAMP_ARROW, True), (pa.timestamp("ns", "UTC"), True)):
        try:
            pa.array([text], pa.string()).cast(target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        return with_offset
    for target in (pa.timestamp("us"), pa.timestamp("ns")):
        try:
            pa.array([text], pa.string()).cast(target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        return False
    return None


def _cast_column(column: pa.ChunkedArray, field: Field, where: str, *, key: bool = False) -> pa.ChunkedArray:
    """`column` as `field`'s Arrow type, under the one coercion rule (`strato.types.cross_kind`)."""
    target = field.dtype.to_arrow()
    if field.dtype.kind is Kind.TIMESTAMP:
        return _cast_timestamp(column, where)
    if column.type == target:
        out = column
    else:
        if pa.types.is_null(column.type):
            return pa.chunked_array([pa.nulls(len(column), target)], type=target)
        problem = cross_kind(column.type, target, key=key)
        if problem is not None:
            row, value = _first_valid(column)
            raise SchemaError(
                f"{where}, row {row}: holds {column.type} values but {field.name!r} is {field.dtype} "
                f"({problem[1]}: {show(value)}); Strato converts values only within their kind, so convert the column "
                "first if that is what you mean"
            )
        try:
            out = column.cast(target, safe=True)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
            row, value = _first_bad_row(column, target)
            at = f", row {row}: cannot convert {show(value)}" if row >= 0 else ""
            raise SchemaError(f"{where}{at} to {field.dtype} (column type {column.type}; {_first_line(exc)})") from None
    if field.dtype.kind is Kind.VECTOR:
        _check_vector(out, where)
    return out


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


def _check_not_future(column: pa.ChunkedArray, allowance_s: float | None, where: str, what: str) -> None:
    """Refuse times beyond now + the allowance (`strato.clock`): they would win rule 4 forever."""
    if allowance_s is None or len(column) == 0:
        return
    limit_us = clock.max_future_event_us(allowance_seconds=allowance_s)
    micros = column.cast(pa.int64()).to_numpy(zero_copy_only=False)
    late = np.flatnonzero(micros > limit_us)
    if late.size:
        row = int(late[0])
        raise SchemaError(
            f"{where}, row {row}: {what} {clock.iso_us(int(micros[row]))} is in the future (later than now + "
            f"{allowance_s:g} s, {clock.iso_us(limit_us)}), where it would outrank every later write of its key; "
            "set write.max_future_seconds in strato.yaml to allow more"
        )


#: Undeclared columns with these words in their name look like an ingestion time: say how to declare one.
_LOOKS_LIKE_WRITE_TIME = ("created", "ingest", "inserted", "updated", "loaded", "processed", "written")


@dataclass(frozen=True)
class Batch:
    """A validated batch for one view: what `write` stores, and what validation left out.

    `rows` has the join keys, ``event_timestamp`` and the features, plus ``created_timestamp``
    when the view declares a `created_timestamp_column` (then every input row is kept). Else
    rows of the batch with the same (keys, event time) are reduced to the last one, the
    latest write of that identity (rule 2); `superseded` counts the rows this dropped.
    """

    rows: pa.Table
    superseded: int = 0

    @property
    def has_created(self) -> bool:
        """Whether the rows carry their own created time (the view's `created_timestamp_column`)."""
        return CREATED_TIMESTAMP in self.rows.column_names

    def stamped(self, write_us: int) -> tuple[pa.Table, int | npt.NDArray[np.int64]]:
        """(rows for history, with ``created_timestamp``; the created time(s) for online values).

        Without a declared created column, every row is stamped `write_us`, the write time.
        """
        if self.has_created:
            created = self.rows.column(CREATED_TIMESTAMP).cast(pa.int64()).to_numpy()
            return self.rows, created
        column = pa.array(np.full(self.rows.num_rows, write_us, dtype="int64")).cast(TIMESTAMP_ARROW)
        return self.rows.append_column(CREATED_TIMESTAMP, column), write_us


def conform(view: FeatureView, data: Any, *, max_future_seconds: float | None = None) -> pa.Table:
    """`conform_batch(...).rows`: the validated rows alone."""
    return conform_batch(view, data, max_future_seconds=max_future_seconds).rows


def conform_batch(
    view: FeatureView,
    data: Any,
    *,
    max_future_seconds: float | None = None,
    screen: Callable[[pa.Table], pa.Table] | None = None,
    carry: Sequence[str] = (),
) -> Batch:
    """Validate a batch for `view`: join keys, event_timestamp, features (and created time).

    Event (and created) times later than now + `max_future_seconds` are refused (None: no
    limit). A batch of no rows is valid whatever columns it has, as long as none is unknown:
    it writes nothing. `screen` (the store's data-quality pass) sees the rows once they are
    cast, before rows of one (keys, event time) are reduced to the last, and returns the
    rows to keep (or raises).

    `carry` names columns of `data` that are no part of the view but must follow its rows
    (the store's own bookkeeping, e.g. where streamed rows came from): taken as they are,
    kept or dropped with their rows, last in `rows`; the caller takes them off.
    """
    types = {f.name: f.dtype.to_arrow() for f in (*view.join_keys, *view.schema)}
    created_name = view.created_timestamp_column
    time_types = {view.timestamp_field: TIMESTAMP_ARROW, **({created_name: TIMESTAMP_ARROW} if created_name else {})}
    table = to_arrow(data, what=f"feature view {view.name!r}", types={**types, **time_types})
    where = f"feature view {view.name!r}"
    names = set(table.column_names)
    if len(names) != len(table.column_names):
        raise SchemaError(f"{where}: duplicate column names in {table.column_names}")
    ts_name = view.timestamp_field
    expected = {*view.join_key_names, ts_name, *view.feature_names, *([created_name] if created_name else [])}
    unknown = [c for c in table.column_names if c not in expected and c not in carry]
    if unknown:
        hint = ""
        if any(word in c.lower() for c in unknown for word in _LOOKS_LIKE_WRITE_TIME):
            hint = (
                "; to keep your own ingestion time, declare it: FeatureView(..., created_timestamp_column=NAME)"
                if not created_name
                else f"; the view's created time column is {created_name!r}"
            )
        raise SchemaError(f"{where}: unknown columns {unknown}; the view has {sorted(expected)}{hint}")
    if table.num_rows == 0:
        return Batch(_history_schema(view, with_created=bool(created_name)).empty_table())
    missing_keys = [k for k in view.join_key_names if k not in names]
    if missing_keys:
        raise SchemaError(f"{where}: missing join key columns {missing_keys}")
    if ts_name not in names:
        raise SchemaError(f"{where}: missing event time column {ts_name!r}")
    if created_name and created_name not in names:
        raise SchemaError(
            f"{where}: missing created time column {created_name!r} (the view's created_timestamp_column)"
        )
    missing_features = [f for f in view.feature_names if f not in names]
    if missing_features:
        raise SchemaError(f"{where}: missing feature columns {missing_features}")

    columns: dict[str, pa.ChunkedArray] = {}
    for key in view.join_keys:
        col = table.column(key.name)
        if col.null_count:
            raise SchemaError(f"{where}, column {key.name!r}, row {_first_null(col)}: join key is null")
        columns[key.name] = _cast_column(col, key, f"{where}, join key {key.name!r}", key=True)
    columns[EVENT_TIMESTAMP] = _time_column(table, ts_name, where, "event time", max_future_seconds)
    for feature in view.schema:
        columns[feature.name] = _cast_column(table.column(feature.name), feature, f"{where}, column {feature.name!r}")
    identity = [*view.join_key_names, EVENT_TIMESTAMP]
    if created_name:
        columns[CREATED_TIMESTAMP] = _time_column(table, created_name, where, "created time", max_future_seconds)
        columns.update((name, table.column(name)) for name in carry)
        out = pa.table(columns)
        if screen is not None:
            out = screen(out)
        _refuse_exact_ties(out, [*identity, CREATED_TIMESTAMP], where, created_name)
        return Batch(out)
    columns.update((name, table.column(name)) for name in carry)
    out = pa.table(columns)
    if screen is not None:
        out = screen(out)
    kept = _keep_last_per_identity(out, identity)
    return Batch(kept, out.num_rows - kept.num_rows)


def _time_column(table: pa.Table, name: str, where: str, what: str, allowance_s: float | None) -> pa.ChunkedArray:
    at = f"{where}, column {name!r}"
    ts = _cast_timestamp(table.column(name), at)
    if ts.null_count:
        raise SchemaError(f"{at}, row {_first_null(ts)}: {what} is null")
    _check_not_future(ts, allowance_s, at, what)
    return ts


def _identity_groups(table: pa.Table, identity: list[str]) -> pa.Table:
    indexed = table.select(identity).append_column(_ROW, pa.array(np.arange(table.num_rows)))
    return indexed.group_by(identity, use_threads=False).aggregate([(_ROW, "min"), (_ROW, "max")])


def _keep_last_per_identity(table: pa.Table, identity: list[str]) -> pa.Table:
    if table.num_rows < 2:
        return table
    last = _identity_groups(table, identity)
    if last.num_rows == table.num_rows:
        return table
    keep = np.sort(last.column(f"{_ROW}_max").to_numpy())
    return table.take(pa.array(keep))


def _refuse_exact_ties(table: pa.Table, identity: list[str], where: str, created_name: str) -> None:
    """With a declared created time, two rows equal in keys, event and created time cannot be ordered."""
    if table.num_rows < 2:
        return
    groups = _identity_groups(table, identity)
    if groups.num_rows == table.num_rows:
        return
    first, last = groups.column(f"{_ROW}_min").to_numpy(), groups.column(f"{_ROW}_max").to_numpy()
    tied = np.flatnonzero(first != last)
    at = int(tied[np.argmin(last[tied])])  # the tie whose second row comes first
    raise SchemaError(
        f"{where}, row {int(last[at])}: same join keys, event time and {created_name!r} as row {int(first[at])}; "
        "nothing says which is newer, so give them distinct created times"
    )


def _history_schema(view: FeatureView, *, with_created: bool) -> pa.Schema:
    fields = [pa.field(k.name, k.dtype.to_arrow()) for k in view.join_keys]
    fields += [pa.field(EVENT_TIMESTAMP, TIMESTAMP_ARROW)] + [pa.field(f.name, f.dtype.to_arrow()) for f in view.schema]
    return pa.schema(fields + ([pa.field(CREATED_TIMESTAMP, TIMESTAMP_ARROW)] if with_created else []))


def history_schema(view: FeatureView, *, with_created: bool) -> pa.Schema:
    """The columns a conformed batch of `view` has: join keys, ``event_timestamp``, the
    features, and ``created_timestamp`` when `with_created`."""
    return _history_schema(view, with_created=with_created)


def conform_spine(entity_df: Any, key_fields: Sequence[Field], timestamp_field: str) -> pa.Table:
    """Validate an entity frame for a training set: join keys and event times, never null.

    Other columns (labels, request data) are carried through untouched. Keys and times follow
    the rules of writes: no cross-kind casts, whole microseconds.
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
        columns[key.name] = _cast_column(col, key, f"{where}, join key {key.name!r}", key=True)
    ts = _cast_timestamp(columns[timestamp_field], f"{where}, column {timestamp_field!r}")
    if ts.null_count:
        raise SchemaError(f"{where}, column {timestamp_field!r}, row {_first_null(ts)}: event time is null")
    columns[timestamp_field] = ts
    return pa.table(columns)


def newest_time(values: Sequence[Any]) -> int | None:
    """The latest of a written column of times (as `conform` reads them: ISO text, naive = UTC,
    datetimes, Arrow timestamps), in µs since the epoch; None when there is none or it does
    not parse (a caller that has already written the column has had it checked)."""
    try:
        column = _cast_timestamp(pa.chunked_array([pa.array(values)]), "times")
    except (SchemaError, pa.ArrowException):
        return None
    newest = pc.max(column.cast(pa.int64())).as_py()
    return None if newest is None else int(newest)
