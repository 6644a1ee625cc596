"""Engine-neutral Arrow checks and conversions around a point-in-time join.

Every engine must refuse the same bad spines with the same one-line errors, read the spine's
times the same way (naive = UTC, ns floored to µs) and hand back columns of exactly the
requested types; keeping that here, not in each engine, is what makes their results
comparable row by row (the DuckDB-vs-Spark parity test).
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc

from strato.errors import SchemaError, UserError
from strato.offline.base import TableSnapshot
from strato.offline.pit import PitRequest

EVENT_TS = "event_timestamp"
CREATED_TS = "created_timestamp"
TS = pa.timestamp("us", tz="UTC")


def check_outputs(spine: pa.Table, requests: Sequence[PitRequest]) -> None:
    """Every join key is in the spine and no output column name appears twice."""
    names = list(spine.column_names)
    for request in requests:
        for key in request.join_keys:
            if key not in spine.column_names:
                raise SchemaError(f"entity_df has no join key column {key!r}; it has {spine.column_names}")
        if not (len(request.features) == len(request.output_names) == len(request.output_types)):
            raise UserError("PitRequest: features, output_names and output_types differ in length")
        names += request.output_names
    clash = sorted({n for n in names if names.count(n) > 1})
    if clash:
        raise UserError(f"point-in-time join: output column(s) {clash} appear twice")


def check_key_types(spine: pa.Schema, request: PitRequest, snapshot: TableSnapshot) -> None:
    """Join keys must compare: both integers, both strings or both bytes (widths may differ)."""
    for key in request.join_keys:
        ours, theirs = spine.field(key).type, snapshot.schema.field(key).type
        if key_kind(ours) != key_kind(theirs):
            raise SchemaError(f"join key {key!r} is {ours} in entity_df but {theirs} in table {snapshot.name!r}")


def key_kind(t: pa.DataType) -> str:
    if pa.types.is_integer(t):
        return "integer"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "string"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_binary_view(t):
        return "binary"
    return str(t)


def utc_times(spine: pa.Table) -> pa.ChunkedArray:
    """The spine's event times as timestamp[us, UTC]; naive times are taken as UTC."""
    if EVENT_TS not in spine.column_names:
        raise SchemaError(f"entity_df has no {EVENT_TS!r} column; it has {spine.column_names}")
    column = spine.column(EVENT_TS)
    if not pa.types.is_timestamp(column.type):
        raise SchemaError(f"entity_df column {EVENT_TS!r} must be a timestamp, got {column.type}")
    if column.null_count:
        raise SchemaError(f"entity_df column {EVENT_TS!r} has null event times")
    if column.type.unit == "ns":  # floor to µs: history times are whole µs, so `<=` is unchanged
        column = pc.floor_temporal(column, unit="microsecond")
    return column.cast(pa.timestamp(column.type.unit, tz="UTC")).cast(TS)


def conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """`batch` with exactly `schema`'s columns and types: absent columns read as null."""
    if batch.schema == schema:
        return batch
    columns = [
        batch.column(f.name) if f.name in batch.schema.names else pa.nulls(batch.num_rows, f.type) for f in schema
    ]
    columns = [c if c.type == f.type else cast(c, f.type, f.name) for c, f in zip(columns, schema, strict=True)]
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def cast(column: pa.Array | pa.ChunkedArray, to: pa.DataType, what: str) -> pa.Array | pa.ChunkedArray:
    """`column` as `to`; a stored type that cannot be read so is a `SchemaError` naming `what`."""
    try:
        return column.cast(to)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        raise SchemaError(f"{what}: stored type {column.type} cannot be read as {to}: {exc}") from exc
