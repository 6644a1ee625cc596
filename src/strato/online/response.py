"""What `get_online_features` returns: the backend's raw values per view, shaped on demand.

Nothing is converted until asked, and each shape takes its own short path from the bytes:
`to_dict` reads Python values straight from each value (`online.rows.RowReader`), never
through an Arrow table; `to_numpy` copies out of the record buffer, one strided copy per run
of same-typed features when there are few runs (the common "120 float64 features" case is a
single copy) and one gather per dtype when dtypes are mixed; `to_arrow` and `to_df` build
typed Arrow columns from the batch decoder.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from strato.errors import UserError
from strato.online.codec import NULLS, DecodedRows, ViewCodec
from strato.online.expiry import expired_before_us, statuses
from strato.online.rows import RowReader
from strato.types import Kind, ReadStatus

if TYPE_CHECKING:
    import pandas as pd

_NUMERIC = {Kind.INT32, Kind.INT64, Kind.FLOAT32, Kind.FLOAT64, Kind.BOOL, Kind.TIMESTAMP}
_PRESENT: Final = int(ReadStatus.PRESENT)
_NATIVE_FLOAT64: Final = np.dtype(np.float64)
_EVENT_TS: Final = struct.Struct("<q")
_ROW_BY_ROW_MAX: Final = 32
"""Up to this many entities, `to_numpy` copies row by row from the raw values (measured crossover)."""
_PLAIN_KEY_TYPES: Final = frozenset({int, str, bytes})
_THREADED_PANDAS_MIN: Final = 10_000
"""From this many entities, `to_df` lets Arrow convert columns on its thread pool."""
_MAX_RUNS: Final = 4
"""Beyond this many runs of same-typed features, `to_numpy` gathers per dtype instead of per run."""


class FeatureGather:
    """A precomputed plan to copy some features of one view into columns of a float matrix.

    Built once per (view, features) request and cached by the store: it groups the
    requested features into runs that sit next to each other in the record with one dtype,
    so each run is one strided numpy copy. A schema that cycles dtypes (float32, float64,
    int64, …) has as many runs as features; then the features are gathered per dtype
    instead, one fancy-indexed copy per dtype (`groups`), and rows are read by `rows`.
    """

    def __init__(self, codec: ViewCodec, features: Sequence[str]):
        self.codec = codec
        self.features = tuple(features)
        self.width = len(self.features)
        self.rows = RowReader(codec, self.features)
        # (output columns, record byte offsets, dtype) per dtype of the requested features.
        self.groups: list[tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], np.dtype[Any]]] = []
        self.null_index = np.array([codec.index[f] for f in features], dtype=np.intp)
        self.numeric = all(codec.fields[f].dtype.kind in _NUMERIC for f in features)
        nulls_start: int = codec.record_dtype.fields[NULLS][1]  # type: ignore[index]
        self._nulls_slice = (nulls_start, nulls_start + codec.null_bytes, bytes(codec.null_bytes))
        # (out_col, count, offset, dtype, width, as_bytes): as_bytes when the run is already
        # float64, the output's format, so the row path copies its bytes unconverted.
        self.runs: list[tuple[int, int, int, np.dtype[Any], int, bool]] = []
        self.by_runs = True
        if not self.numeric:
            return
        fields = codec.record_dtype.fields
        assert fields is not None
        col = 0
        for name in features:
            dtype, offset = fields[name][0], fields[name][1]
            if self.runs:
                start, count, first, run_dtype, width, as_bytes = self.runs[-1]
                if dtype == run_dtype and offset == first + count * width:
                    self.runs[-1] = (start, count + 1, first, run_dtype, width, as_bytes)
                    col += 1
                    continue
            self.runs.append((col, 1, offset, dtype, dtype.itemsize, dtype == _NATIVE_FLOAT64))
            col += 1
        self.by_runs = len(self.runs) <= _MAX_RUNS
        by_dtype: dict[np.dtype[Any], tuple[list[int], list[int]]] = {}
        for col, name in enumerate(features):
            dtype, offset = fields[name][0], fields[name][1]
            cols, byte_offsets = by_dtype.setdefault(dtype, ([], []))
            cols.append(col)
            byte_offsets.extend(range(offset, offset + dtype.itemsize))
        for dtype, (cols, byte_offsets) in by_dtype.items():
            self.groups.append((np.array(cols, dtype=np.intp), np.array(byte_offsets, dtype=np.intp), dtype))

    def to_numpy(
        self, decoded: DecodedRows, present: npt.NDArray[np.bool_], out: npt.NDArray[np.float64], first_col: int
    ) -> None:
        """Vectorized copy of N decoded records into ``out[:, first_col:…]``: best for large batches."""
        records = decoded.records
        n = len(records)
        if n == 0:
            return
        itemsize = records.dtype.itemsize
        block = out[:, first_col : first_col + len(self.features)]
        if self.by_runs:
            for col, count, offset, dtype, width, _ in self.runs:
                view: npt.NDArray[Any] = np.ndarray(
                    (n, count), dtype=dtype, buffer=records, offset=offset, strides=(itemsize, width)
                )
                block[:, col : col + count] = view
        else:
            raw = np.ndarray((n, itemsize), dtype=np.uint8, buffer=records)
            for cols, byte_offsets, dtype in self.groups:
                block[:, cols] = raw.take(byte_offsets, axis=1).view(dtype)  # take: C order, unlike raw[:, idx]
        if decoded.any_nulls():
            bits = np.unpackbits(records[NULLS], axis=1, bitorder="little")[:, self.null_index].astype(bool)
            block[bits] = np.nan
        if not present.all():
            block[~present] = np.nan

    def to_numpy_rows(
        self,
        values: Sequence[bytes | None],
        expired_before_us: int | None,
        out: npt.NDArray[np.float64],
        first_col: int,
        out_bytes: memoryview | None = None,
    ) -> None:
        """Row-by-row copy straight from the backend's bytes: best for a few entities.

        A whole-batch numpy decode costs a dozen array operations whatever N is; for the
        single-entity lookup of a scoring service, copying each run out of the value bytes
        is several times cheaper. A run of float64 features is already in the output's
        format, so it is one byte copy into `out` (C-contiguous; `out_bytes` is its bytes,
        passed by a caller filling several views). Same result as `to_numpy`: absent,
        expired and null → NaN. Mixed dtypes (many runs) take `RowReader.fill_numpy`: one
        unpack and one repack per value instead of one copy per run.
        """
        if not self.by_runs:
            self.rows.fill_numpy(values, expired_before_us, out, first_col, out_bytes)
            return
        if out_bytes is None:
            out_bytes = out.data.cast("B")
        row_bytes = out.shape[1] * 8
        last_col = first_col + len(self.features)
        nulls_start, nulls_end, no_nulls = self._nulls_slice
        for i, value in enumerate(values):
            if value is None or (expired_before_us is not None and _EVENT_TS.unpack_from(value)[0] < expired_before_us):
                out[i, first_col:last_col] = np.nan
                continue
            base = i * row_bytes + first_col * 8
            for col, count, offset, dtype, _, as_bytes in self.runs:
                if as_bytes:
                    at = base + col * 8
                    out_bytes[at : at + count * 8] = value[offset : offset + count * 8]
                else:
                    out[i, first_col + col : first_col + col + count] = np.frombuffer(value, dtype, count, offset)
            if value[nulls_start:nulls_end] != no_nulls:
                for j, index in enumerate(self.null_index.tolist()):
                    if value[nulls_start + (index >> 3)] >> (index & 7) & 1:
                        out[i, first_col + j] = np.nan


class ViewResult:
    """One view's part of an online response: the backend's raw values, decoded on demand.

    Decoding waits for the first conversion, so a caller that only wants `to_numpy` for one
    entity never pays for the batch decoder (see `FeatureGather.to_numpy_rows`).
    """

    __slots__ = ("_decoded", "_status", "gather", "now_us", "output_names", "ttl", "values")

    def __init__(
        self,
        gather: FeatureGather,
        output_names: tuple[str, ...],
        values: list[bytes | None],
        ttl: timedelta | None,
        now_us: int,
    ):
        self.gather = gather
        self.output_names = output_names
        self.values = values
        self.ttl = ttl
        self.now_us = now_us
        self._decoded: DecodedRows | None = None
        self._status: npt.NDArray[np.int8] | None = None

    @property
    def decoded(self) -> DecodedRows:
        if self._decoded is None:
            self._decoded = self.gather.codec.decode(self.values)
        return self._decoded

    @property
    def status(self) -> npt.NDArray[np.int8]:
        """PRESENT / EXPIRED / NOT_FOUND per entity row, as of the read (design rule 4)."""
        if self._status is None:
            decoded = self.decoded
            self._status = statuses(decoded.found, decoded.event_ts_us, self.ttl, self.now_us)
        return self._status

    @property
    def expired_before_us(self) -> int | None:
        """Event times below this are expired (None: the view has no ttl)."""
        return expired_before_us(self.ttl, self.now_us)


class OnlineResponse:
    """Features for a batch of entity rows, in request order.

    >>> response = store.get_online_features(["user_stats:amount_mean_7d"], [{"user_id": 7}])  # doctest: +SKIP
    >>> response.to_dict()  # doctest: +SKIP
    {'user_id': [7], 'amount_mean_7d': [12.5]}
    """

    def __init__(
        self,
        entity_rows: Sequence[Mapping[str, Any]],
        key_names: Sequence[str],
        parts: Sequence[ViewResult],
        width: int | None = None,
    ):
        self._entity_rows = entity_rows
        self._key_names = tuple(key_names)
        self._parts = tuple(parts)
        # The store passes the feature count it planned, sparing a sum on every lookup.
        self._width = sum(len(p.output_names) for p in parts) if width is None else width

    def __len__(self) -> int:
        return len(self._entity_rows)

    @property
    def key_names(self) -> tuple[str, ...]:
        """The join keys of the requested views, in the order `to_dict` puts them first."""
        return self._key_names

    @property
    def feature_names(self) -> list[str]:
        """The output column of every requested feature, in request order."""
        return [name for part in self._parts for name in part.output_names]

    def to_numpy(self) -> npt.NDArray[np.float64]:
        """A float64 matrix (entities × features), NaN where missing, null or expired.

        The shape a model's ``predict`` takes. Only numeric, bool and timestamp (µs) features
        fit in it; use `to_dict` or `to_arrow` for strings, lists, maps and vectors.
        """
        n = len(self._entity_rows)
        out = np.empty((n, self._width), dtype=np.float64)
        row_by_row = 0 < n <= _ROW_BY_ROW_MAX
        out_bytes = out.data.cast("B") if row_by_row else None
        col = 0
        for part in self._parts:
            gather = part.gather
            if not gather.numeric:
                bad = [f for f in gather.features if gather.codec.fields[f].dtype.kind not in _NUMERIC]
                raise UserError(f"to_numpy() takes numeric features only; {bad} are not: use to_dict() or to_arrow()")
            if row_by_row and part._decoded is None:
                gather.to_numpy_rows(part.values, part.expired_before_us, out, col, out_bytes)
            else:
                gather.to_numpy(part.decoded, part.status == _PRESENT, out, col)
            col += gather.width
        return out

    def to_arrow(self) -> pa.Table:
        """Join keys as given, then every requested feature as a typed Arrow column."""
        names = list(self._key_names)
        arrays: list[Any] = [pa.array([row[name] for row in self._entity_rows]) for name in self._key_names]
        for part in self._parts:
            present = part.status == _PRESENT
            for feature, name in zip(part.gather.features, part.output_names, strict=True):
                names.append(name)
                arrays.append(part.decoded.column(feature, present))
        return pa.Table.from_arrays(arrays, names=names)

    def to_dict(self) -> dict[str, list[Any]]:
        """``{column: [value per entity row]}``, None where missing — Feast's shape.

        Built straight from the raw values (`RowReader`), with the same Python values as
        ``to_arrow().to_pydict()``.
        """
        out: dict[str, list[Any]] = {}
        for name in self._key_names:
            column = [row[name] for row in self._entity_rows]
            if not all(type(v) in _PLAIN_KEY_TYPES for v in column):  # numpy scalars: Arrow's values
                column = pa.array(column).to_pylist()
            out[name] = column
        for part in self._parts:
            columns = part.gather.rows.columns(part.values, part.expired_before_us)
            out.update(zip(part.output_names, columns, strict=True))
        return out

    def to_df(self) -> pd.DataFrame:
        """A pandas DataFrame with one row per entity row (column dtypes as Arrow's ``to_pandas``).

        For a few entities the Arrow columns are built from `to_dict`'s values, which is
        cheaper than the batch decoder; Arrow's thread pool only pays off on large tables.
        """
        n = len(self._entity_rows)
        table = self._arrow_from_rows() if n <= _ROW_BY_ROW_MAX else self.to_arrow()
        return table.to_pandas(use_threads=n >= _THREADED_PANDAS_MIN)  # type: ignore[no-any-return]

    def _arrow_from_rows(self) -> pa.Table:
        """`to_arrow`'s table, built from the Python values of `RowReader`."""
        names = list(self._key_names)
        arrays: list[Any] = [pa.array([row[name] for row in self._entity_rows]) for name in self._key_names]
        for part in self._parts:
            gather = part.gather
            columns = gather.rows.columns(part.values, part.expired_before_us)
            for feature, name, column in zip(gather.features, part.output_names, columns, strict=True):
                names.append(name)
                arrays.append(pa.array(column, type=gather.codec.fields[feature].dtype.to_arrow()))
        return pa.Table.from_arrays(arrays, names=names)

    def serving_parts(self) -> list[tuple[tuple[str, ...], list[list[Any]], list[int | None], int | None]]:
        """Per view: output names, `to_dict`'s value columns, each row's event time (µs, None
        where absent) and the expiry threshold (µs, None without ttl).

        What a server needs to render values, statuses and event times without the batch
        decoder: one struct unpack per value, as `to_dict`.
        """
        out = []
        for part in self._parts:
            threshold = part.expired_before_us
            columns = part.gather.rows.columns(part.values, threshold)
            unpack = _EVENT_TS.unpack_from
            times = [None if v is None else unpack(v)[0] for v in part.values]
            out.append((part.output_names, columns, times, threshold))
        return out

    def statuses(self) -> dict[str, list[ReadStatus]]:
        """Per feature, PRESENT / NOT_FOUND / EXPIRED for each entity row (design rule 4).

        A PRESENT value can still be null when the row was written with a null feature.
        """
        out: dict[str, list[ReadStatus]] = {}
        for part in self._parts:
            codes = [ReadStatus(int(s)) for s in part.status]
            for name in part.output_names:
                out[name] = codes
        return out
