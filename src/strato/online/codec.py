"""Rows ↔ bytes for every key-value online backend, so that a backend only moves bytes.

Value layout (little-endian), one value per (view version, entity key)::

    event_ts_us  int64      design rule 4 compares these 16 bytes and nothing else
    created_us   int64      write time: breaks ties between equal event times
    layout       uint32     fingerprint of the schema that wrote the value (see `ViewCodec.layout_id`)
    nulls        ceil(n/8)  one bit per feature, in schema order; 1 = null
    fixed part   the fixed-width features (numbers, bools, timestamps as µs, vectors) packed
    var part     msgpack list of the variable-width features (strings, bytes, lists, maps)

The header and fixed part form one numpy structured record, so a batch of N values decodes
with a single ``np.frombuffer`` — no per-feature Python objects on the read path. Keys are
the join-key values only (the backend adds project and table): a lone integer key packs to
8 big-endian bytes, a lone string to its UTF-8; composite keys length-prefix each part.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import msgpack
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from strato.definitions.feature_view import FeatureView
from strato.definitions.field import Field
from strato.errors import SchemaError
from strato.types import Kind, show

HEADER: Final = struct.Struct("<qq")
HEADER_SIZE: Final = HEADER.size
EVENT_TS: Final = "::event_ts"
CREATED: Final = "::created"
NULLS: Final = "::nulls"
LAYOUT: Final = "::layout"
_LAYOUT_AT: Final = struct.Struct("<I")

_NUMPY_DTYPES: Final[dict[Kind, str]] = {
    Kind.INT32: "<i4",
    Kind.INT64: "<i8",
    Kind.FLOAT32: "<f4",
    Kind.FLOAT64: "<f8",
    Kind.BOOL: "?",
    Kind.TIMESTAMP: "<i8",
}
_INT_KEY: Final = struct.Struct(">q")
_LEN: Final = struct.Struct(">I")


def is_newer(candidate: bytes | memoryview, stored: bytes | memoryview) -> bool:
    """Rule 4: does `candidate` replace `stored`? Greater event time wins; ties go to the later write.

    Either may be a memoryview, so a backend can compare a value in place in the engine's buffer.
    """
    return HEADER.unpack_from(candidate) >= HEADER.unpack_from(stored)


def newest_per_key(keys: Sequence[bytes], values: Sequence[bytes]) -> dict[bytes, bytes]:
    """Key → value for one write batch, repeated keys resolved by rule 4 (a later item wins a tie).

    Every value is checked to be an encoded value first, so a backend that calls this before
    touching its engine leaves nothing to undo when the batch is malformed.
    """
    for i, value in enumerate(values):
        if not isinstance(value, bytes) or len(value) < HEADER_SIZE:
            raise TypeError(
                f"write: value {i} is not an encoded value (bytes of at least {HEADER_SIZE}): {value!r:.40}"
            )
    batch = dict(zip(keys, values, strict=True))
    if len(batch) == len(keys):
        return batch  # no repeated key: the common case, resolved by one dict build
    batch = {}
    for key, value in zip(keys, values, strict=True):
        current = batch.get(key)
        if current is None or is_newer(value, current):
            batch[key] = value
    return batch


def check_cas_batch(
    keys: Sequence[bytes], expected: Sequence[bytes | None], values: Sequence[bytes]
) -> list[tuple[bytes, bytes | None, bytes]]:
    """The (key, expected, value) items of one `OnlineStore.write_if` call, checked in full first.

    Lengths must agree, keys be distinct bytes, each expected value bytes or None and each new
    value an encoded value; so a backend that calls this before its engine sends nothing for a
    malformed batch.
    """
    if not (len(keys) == len(expected) == len(values)):
        raise ValueError(f"write_if: {len(keys)} keys, {len(expected)} expected values and {len(values)} values")
    items = list(zip(keys, expected, values, strict=True))
    seen: set[bytes] = set()
    for i, (key, old, value) in enumerate(items):
        if not isinstance(key, bytes):
            raise TypeError(f"write_if: key {i} is not bytes: {key!r:.40}")
        if key in seen:
            raise ValueError(f"write_if: key {i} ({key!r:.40}) appears twice; each key may be compared once")
        seen.add(key)
        if old is not None and not isinstance(old, bytes):
            raise TypeError(f"write_if: expected value {i} is neither bytes nor None: {old!r:.40}")
        if not isinstance(value, bytes) or len(value) < HEADER_SIZE:
            raise TypeError(
                f"write_if: value {i} is not an encoded value (bytes of at least {HEADER_SIZE}): {value!r:.40}"
            )
    return items


def header(value: bytes) -> tuple[int, int]:
    """(event_ts_us, created_us) of an encoded value."""
    event_ts, created = HEADER.unpack_from(value)
    return int(event_ts), int(created)


def _fixed_numpy_dtype(f: Field) -> Any:
    if f.dtype.kind is Kind.VECTOR:
        return ("<f4", (f.dtype.size,))
    return _NUMPY_DTYPES[f.dtype.kind]


def _var_arrow_type(f: Field) -> pa.DataType:
    """The Arrow type a var-width column travels as: timestamps inside lists/maps as int64 µs."""
    dtype = f.dtype
    if dtype.item is not None and dtype.item.kind is Kind.TIMESTAMP:
        return pa.map_(pa.string(), pa.int64()) if dtype.kind is Kind.MAP else pa.list_(pa.int64())
    return dtype.to_arrow()


class KeyCodec:
    """Join-key values → key bytes, for whole columns (writes) or one entity row (reads)."""

    def __init__(self, join_keys: Sequence[Field]):
        self.join_keys = tuple(join_keys)
        self.names = tuple(k.name for k in join_keys)
        self._int = tuple(k.dtype.kind in (Kind.INT32, Kind.INT64) for k in join_keys)
        self._kinds = tuple(k.dtype.kind for k in join_keys)
        self._single_int = len(join_keys) == 1 and self._int[0]

    def encode_columns(self, columns: Sequence[pa.Array | pa.ChunkedArray]) -> list[bytes]:
        """Keys for whole columns; the columns are already validated (typed, no nulls)."""
        parts: list[list[bytes]] = []
        for is_int, column in zip(self._int, columns, strict=True):
            if is_int:
                raw = np.asarray(column.to_numpy(), dtype=">i8").tobytes()
                parts.append([raw[i : i + 8] for i in range(0, len(raw), 8)])
            else:
                values = column.to_pylist()
                parts.append([v.encode() if isinstance(v, str) else bytes(v) for v in values])
        if len(parts) == 1:
            return parts[0]
        return [self._join(row) for row in zip(*parts, strict=True)]

    def lengths(self, columns: Sequence[pa.Array | pa.ChunkedArray]) -> npt.NDArray[np.int64]:
        """The byte length of each row's key as `encode_columns` builds it, without building it."""
        total: npt.NDArray[np.int64] | None = None
        composite = len(self._int) > 1
        for is_int, column in zip(self._int, columns, strict=True):
            if is_int:
                part = np.full(len(column), _INT_KEY.size, dtype=np.int64)
            else:
                binary = pc.binary_length(column.cast(pa.binary()) if pa.types.is_string(column.type) else column)
                part = np.asarray(binary.to_numpy(zero_copy_only=False), dtype=np.int64)
                if composite:
                    part = part + _LEN.size
            total = part if total is None else total + part
        assert total is not None
        return total

    def _join(self, row: Sequence[bytes]) -> bytes:
        return b"".join(p if is_int else _LEN.pack(len(p)) + p for is_int, p in zip(self._int, row, strict=True))

    def encode_rows(self, rows: Sequence[Mapping[str, Any]]) -> list[bytes]:
        """The keys of many entity rows; same result and errors as `encode_row` on each.

        A lone integer key — the common case — packs in one comprehension; anything the fast
        path can't take (a missing key, a bool, a float, a numpy integer) falls back to
        `encode_row`, which names the offending row.
        """
        if self._single_int:
            name = self.names[0]
            if len(rows) == 1:  # one entity: the scoring service's lookup
                row = rows[0]
                value = row.get(name) if isinstance(row, dict) else None
                if type(value) is int and -(2**63) <= value < 2**63:
                    return [_INT_KEY.pack(value)]
                return [self.encode_row(row, 0)]
            try:
                values = [row[name] for row in rows]
            except (KeyError, TypeError, IndexError):
                values = None
            if values is not None and all(type(v) is int for v in values):  # bool, numpy ints: slow path
                try:
                    return list(map(_INT_KEY.pack, values))
                except struct.error:
                    pass  # out of range: encode_row names the row
        return [self.encode_row(row, i) for i, row in enumerate(rows)]

    def encode_row(self, row: Mapping[str, Any], index: int) -> bytes:
        """The key of one entity row (a dict of join-key values); errors name the row and key."""
        parts: list[bytes] = []
        for name, is_int, kind in zip(self.names, self._int, self._kinds, strict=True):
            try:
                value = row[name]
            except KeyError:
                raise SchemaError(f"entity row {index}: missing join key {name!r}") from None
            except TypeError:
                raise SchemaError(f"entity row {index}: expected a dict of join keys, got {show(row)}") from None
            if is_int:
                if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                    raise SchemaError(f"entity row {index}: join key {name!r} must be an integer, got {show(value)}")
                try:
                    parts.append(_INT_KEY.pack(int(value)))
                except struct.error:
                    raise SchemaError(
                        f"entity row {index}: join key {name!r} is outside the 64-bit integer range: {show(value)}"
                    ) from None
            elif isinstance(value, str):
                try:
                    parts.append(value.encode())
                except UnicodeEncodeError:
                    raise SchemaError(
                        f"entity row {index}: join key {name!r} is not valid text: {show(value)}"
                    ) from None
            elif isinstance(value, bytes):
                parts.append(value)
            else:
                expected = "bytes or a string" if kind is Kind.BYTES else "a string"
                raise SchemaError(f"entity row {index}: join key {name!r} must be {expected}, got {show(value)}")
        return parts[0] if len(parts) == 1 else self._join(parts)


@dataclass(frozen=True)
class DecodedRows:
    """N decoded values of one view: a structured array plus the variable-width columns."""

    codec: ViewCodec
    records: npt.NDArray[Any]
    found: npt.NDArray[np.bool_]
    var_rows: list[list[Any] | None] | None

    @property
    def event_ts_us(self) -> npt.NDArray[np.int64]:
        return self.records[EVENT_TS]

    def nulls(self, feature: str) -> npt.NDArray[np.bool_]:
        """True where the feature is null in a found value (absent values are not counted)."""
        index = self.codec.index[feature]
        byte = self.records[NULLS][:, index >> 3]
        return ((byte >> (index & 7)) & 1).astype(bool)

    def any_nulls(self) -> bool:
        return bool(self.records[NULLS].any())

    def column(self, feature: str, valid: npt.NDArray[np.bool_]) -> pa.Array:
        """One feature as an Arrow array; entries where `valid` is False become null."""
        f = self.codec.fields[feature]
        mask = ~valid | self.nulls(feature)
        if f.dtype.is_fixed_width:
            data = self.records[feature]
            if f.dtype.kind is Kind.VECTOR:
                size = f.dtype.size
                assert size is not None
                flat = pa.array(np.ascontiguousarray(data).reshape(-1), type=pa.float32())
                return pa.FixedSizeListArray.from_arrays(flat, size, mask=pa.array(mask))
            arr = pa.array(data, mask=mask)
            return arr.cast(f.dtype.to_arrow()) if f.dtype.kind is Kind.TIMESTAMP else arr
        slot = self.codec.var_slot[feature]
        rows = self.var_rows or []
        values = [None if m or row is None else row[slot] for m, row in zip(mask.tolist(), rows, strict=True)]
        if f.dtype.kind is Kind.MAP:
            values = [None if v is None else list(map(tuple, v)) for v in values]
        arr = pa.array(values, type=_var_arrow_type(f))
        return arr.cast(f.dtype.to_arrow()) if arr.type != f.dtype.to_arrow() else arr


class ViewCodec:
    """Encodes and decodes the online values of one view version. Build once per view, reuse."""

    def __init__(self, view: FeatureView):
        self.view = view
        self.keys = KeyCodec(view.join_keys)
        self.fields = {f.name: f for f in view.schema}
        self.index = {f.name: i for i, f in enumerate(view.schema)}
        self.fixed = [f for f in view.schema if f.dtype.is_fixed_width]
        self.var = [f for f in view.schema if not f.dtype.is_fixed_width]
        self.var_slot = {f.name: i for i, f in enumerate(self.var)}
        self.null_bytes = (len(view.schema) + 7) // 8
        self.record_dtype = np.dtype(
            [(EVENT_TS, "<i8"), (CREATED, "<i8"), (LAYOUT, "<u4"), (NULLS, "u1", (self.null_bytes,))]
            + [(f.name, _fixed_numpy_dtype(f)) for f in self.fixed]
        )
        self.record_size = self.record_dtype.itemsize
        self._empty_record = bytes(self.record_size)
        fingerprint = ";".join(f"{f.name}:{f.dtype}" for f in view.schema)
        self.layout_id: int = zlib.crc32(fingerprint.encode())
        """Which schema wrote a value. A compatible change (an added nullable field) keeps the
        view's storage but changes the layout, so values written before it are recognised
        and read through `upgrade` (design rule 6: old rows read the new field as null)."""
        self.layout_tag = _LAYOUT_AT.pack(self.layout_id)

    def stale(self, values: Sequence[bytes | None]) -> list[int]:
        """Indexes of the values written under another layout than this codec's."""
        tag = self.layout_tag
        if len(values) == 1:
            v = values[0]
            return [0] if v is not None and v[HEADER_SIZE : HEADER_SIZE + 4] != tag else []
        return [i for i, v in enumerate(values) if v is not None and v[HEADER_SIZE : HEADER_SIZE + 4] != tag]

    @staticmethod
    def layout_of(value: bytes) -> int:
        return int(_LAYOUT_AT.unpack_from(value, HEADER_SIZE)[0])

    def upgrade(self, value: bytes, written_by: ViewCodec) -> bytes:
        """Re-encode a value `written_by` an earlier compatible schema into this layout.

        Features the old schema had keep their value; features added since read null. The
        header (event and write time) is kept, so rule 4 orders the value as before.
        """
        old = written_by.decode([value])
        found = np.ones(1, dtype=bool)
        event_us, created_us = HEADER.unpack_from(value)
        columns: dict[str, Any] = {"event_timestamp": pa.array([event_us], pa.int64()).cast(pa.timestamp("us"))}
        for f in self.view.schema:
            before = written_by.fields.get(f.name)
            if before is not None and before.dtype == f.dtype:
                columns[f.name] = old.column(f.name, found)
            else:
                columns[f.name] = pa.nulls(1, f.dtype.to_arrow())
        return self.encode_values(pa.table(columns), created_us)[0]

    def encode(self, table: pa.Table, created_us: int | npt.NDArray[np.int64]) -> tuple[list[bytes], list[bytes]]:
        """(keys, values) for validated rows with columns: join keys, ``event_timestamp``, features.

        `created_us` is the write time, one for the batch or one per row (materialization
        carries each row's offline write time, so ties resolve online as they do offline).
        """
        keys = self.keys.encode_columns([table.column(k) for k in self.keys.names])
        return keys, self.encode_values(table, created_us)

    def encode_values(self, table: pa.Table, created_us: int | npt.NDArray[np.int64]) -> list[bytes]:
        """The values alone (no keys) of validated rows; a feature column missing from `table`
        reads null — history written before a compatible change lacks the added fields."""
        n = table.num_rows
        records = np.zeros(n, dtype=self.record_dtype)
        records[EVENT_TS] = table.column("event_timestamp").cast(pa.int64()).to_numpy()
        records[CREATED] = created_us
        records[LAYOUT] = self.layout_id
        names = set(table.column_names)
        null_matrix = np.zeros((n, self.null_bytes * 8), dtype=bool)
        for f in self.fixed:
            if f.name not in names:
                null_matrix[:, self.index[f.name]] = True
                continue
            column = table.column(f.name).combine_chunks()
            null_matrix[:, self.index[f.name]] = column.is_null().to_numpy(zero_copy_only=False)
            records[f.name] = self._fixed_values(f, column)
        var_columns: list[list[Any]] = []
        for f in self.var:
            if f.name not in names:
                null_matrix[:, self.index[f.name]] = True
                var_columns.append([None] * n)
                continue
            column = table.column(f.name).combine_chunks()
            null_matrix[:, self.index[f.name]] = column.is_null().to_numpy(zero_copy_only=False)
            var_columns.append(column.cast(_var_arrow_type(f)).to_pylist())
        records[NULLS] = np.packbits(null_matrix, axis=1, bitorder="little")
        raw = records.tobytes()
        size = self.record_size
        fixed_parts = [raw[i : i + size] for i in range(0, n * size, size)]
        if not var_columns:
            return fixed_parts
        packb = msgpack.packb
        return [
            part + packb(list(row), use_bin_type=True)
            for part, row in zip(fixed_parts, zip(*var_columns, strict=True), strict=True)
        ]

    @staticmethod
    def _fixed_values(f: Field, column: pa.Array) -> npt.NDArray[Any]:
        kind = f.dtype.kind
        if kind is Kind.VECTOR:
            size = f.dtype.size
            assert size is not None
            if not pa.types.is_fixed_size_list(column.type):  # history hands vectors back as variable lists
                column = column.cast(f.dtype.to_arrow())
            values = column.values.slice(column.offset * size, len(column) * size)
            flat = values.fill_null(np.nan).to_numpy(zero_copy_only=False)
            return flat.reshape(len(column), size)  # type: ignore[no-any-return]
        if kind is Kind.TIMESTAMP:
            column = column.cast(pa.int64())
        fill = False if kind is Kind.BOOL else 0
        return column.fill_null(fill).to_numpy(zero_copy_only=False)  # type: ignore[no-any-return]

    def decode(self, values: Sequence[bytes | None]) -> DecodedRows:
        """Decode the backend's answer for N keys (None = absent) in one numpy call."""
        size = self.record_size
        found = np.fromiter((v is not None for v in values), dtype=bool, count=len(values))
        if self.var:
            buf = b"".join(v[:size] if v is not None else self._empty_record for v in values)
            unpackb = msgpack.unpackb
            var_rows: list[list[Any] | None] | None = [
                unpackb(v[size:], raw=False) if v is not None else None for v in values
            ]
        else:
            buf = b"".join(v if v is not None else self._empty_record for v in values)
            var_rows = None
        records = np.frombuffer(buf, dtype=self.record_dtype)
        return DecodedRows(self, records, found, var_rows)
