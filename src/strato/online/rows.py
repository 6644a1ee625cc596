"""Python values of some features of one view, read straight from the backend's bytes.

`to_dict()` is what most callers use (Feast's shape), so it must not cost more than the
lookup itself. Building an Arrow table per response and calling ``to_pydict`` paid Arrow's
per-column overhead 120 times for a one-entity lookup (~2 ms). Here each value is read
with one precompiled ``struct.unpack_from`` (event time plus every requested fixed-width
feature, whatever their mix of dtypes) and, if the view has variable-width features, one
``msgpack.unpackb``; an ``itemgetter`` then puts the requested features in order. The
values are the ones Arrow's ``to_pylist`` gives — float32 as the Python float of the
float32, timestamps as UTC datetimes, maps as lists of ``(key, value)`` tuples — which
`tests/unit/test_rows.py` checks value for value against the Arrow path.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from operator import itemgetter
from typing import Any, Final
from zoneinfo import ZoneInfo

import msgpack
import numpy as np
import numpy.typing as npt

from strato.online.codec import NULLS, ViewCodec
from strato.types import Kind

_STRUCT_CODES: Final[dict[Kind, str]] = {
    Kind.INT32: "i",
    Kind.INT64: "q",
    Kind.FLOAT32: "f",
    Kind.FLOAT64: "d",
    Kind.BOOL: "?",
    Kind.TIMESTAMP: "q",
}
# The tzinfo Arrow's to_pylist attaches to timestamp[us, tz=UTC], so both paths give equal objects.
_UTC: Final = ZoneInfo("UTC")
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=_UTC)
_US: Final = timedelta(microseconds=1)


def _datetime(us: int) -> datetime:
    return _EPOCH + us * _US


def _timestamps(items: list[Any]) -> list[Any]:
    return [None if x is None else _EPOCH + x * _US for x in items]


def _pairs(items: list[Any]) -> list[Any]:
    return [(k, v) for k, v in items]


def _timestamp_pairs(items: list[Any]) -> list[Any]:
    return [(k, None if v is None else _EPOCH + v * _US) for k, v in items]


class RowReader:
    """A precomputed plan to turn one view's raw values into Python values of some features.

    Built once per (view, features) request and cached with the store's plan. Rows that are
    absent or expired read None in every feature; a null feature reads None.
    """

    def __init__(self, codec: ViewCodec, features: Sequence[str]):
        self.features = tuple(features)
        self.width = len(self.features)
        self._getter: Callable[[tuple[Any, ...]], tuple[Any, ...]]
        fields = codec.record_dtype.fields
        assert fields is not None
        requested = set(self.features)
        # Event time first, then the requested fixed features in record order; the others
        # become pad bytes, which struct skips for free.
        fixed_start: int = fields[NULLS][1] + codec.null_bytes
        codes = ["<q", f"{fixed_start - 8}x"]
        position: dict[str, int] = {}
        at = 1
        pad = 0
        for f in codec.fixed:
            size: int = fields[f.name][0].itemsize
            if f.name not in requested:
                pad += size
                continue
            if pad:
                codes.append(f"{pad}x")
                pad = 0
            count = f.dtype.size if f.dtype.kind is Kind.VECTOR else 1
            assert count is not None
            codes.append(f"{count}f" if f.dtype.kind is Kind.VECTOR else _STRUCT_CODES[f.dtype.kind])
            position[f.name] = at
            at += count
        self._struct = struct.Struct("".join(codes))
        self._float64s = struct.Struct(f"<{self.width}d")  # a row of `fill_numpy`'s output
        self._var_start = codec.record_size if any(f in codec.var_slot for f in requested) else None
        for name, slot in codec.var_slot.items():
            position[name] = at + slot
        indexes = [position[f] for f in self.features]
        first = indexes[0] if indexes else 0
        if indexes == list(range(first, first + len(indexes))):
            # Requested in schema order (the usual case, and always for one feature): one
            # slice, always a tuple, no per-feature lookup.
            self._getter = itemgetter(slice(first, first + len(indexes)))
        else:
            self._getter = itemgetter(*indexes)  # two or more indexes: returns a tuple
        # Features whose stored form is not yet the Python value: (output index, convert).
        self._fixups: list[tuple[int, Callable[[tuple[Any, ...]], Any]]] = []
        for j, name in enumerate(self.features):
            fixup = _fixup(codec.fields[name].dtype, position[name])
            if fixup is not None:
                self._fixups.append((j, fixup))
        self._nulls = (fields[NULLS][1], fields[NULLS][1] + codec.null_bytes, bytes(codec.null_bytes))
        null_positions: dict[int, list[int]] = {}
        for j, name in enumerate(self.features):
            null_positions.setdefault(codec.index[name], []).append(j)
        self._null_positions = {bit: tuple(js) for bit, js in null_positions.items()}

    def columns(self, values: Sequence[bytes | None], expired_before_us: int | None) -> list[list[Any]]:
        """One list per requested feature, one entry per value: None where absent, expired or null."""
        absent = (None,) * self.width
        unpack = self._struct.unpack_from
        getter = self._getter
        var_start = self._var_start
        fixups = self._fixups
        nulls_start, nulls_end, no_nulls = self._nulls
        unpackb = msgpack.unpackb
        rows: list[Sequence[Any]] = []
        for value in values:
            if value is None:
                rows.append(absent)
                continue
            t = unpack(value)
            if expired_before_us is not None and t[0] < expired_before_us:
                rows.append(absent)
                continue
            if var_start is not None:
                t += tuple(unpackb(memoryview(value)[var_start:], raw=False))
            row: Sequence[Any] = getter(t)
            has_nulls = value[nulls_start:nulls_end] != no_nulls
            if fixups or has_nulls:
                row = list(row)
                for j, fixup in fixups:
                    row[j] = fixup(t)
                if has_nulls:
                    for j in self._null_features(value):
                        row[j] = None
            rows.append(row)
        if len(rows) == 1:  # one entity, the scoring service's lookup: skip the transposition
            return [[v] for v in rows[0]]
        if not rows:
            return [[] for _ in range(self.width)]
        return list(map(list, zip(*rows, strict=True)))

    def fill_numpy(
        self,
        values: Sequence[bytes | None],
        expired_before_us: int | None,
        out: npt.NDArray[np.float64],
        first_col: int,
        out_bytes: memoryview | None = None,
    ) -> None:
        """Numeric features into ``out[i, first_col:…]``, NaN where absent, expired or null.

        One unpack and one repack per row, whatever the mix of dtypes: the unpacked ints,
        floats and bools (timestamps as µs) are packed as float64 straight into `out`'s
        bytes (C-contiguous; `out_bytes` is them, from a caller filling several views) —
        the same values numpy's casts give, for a quarter less than assigning the tuple.
        """
        if out_bytes is None:
            out_bytes = out.data.cast("B")
        unpack = self._struct.unpack_from
        pack = self._float64s.pack_into
        getter = self._getter
        row_bytes = out.shape[1] * 8
        last_col = first_col + self.width
        nulls_start, nulls_end, no_nulls = self._nulls
        for i, value in enumerate(values):
            if value is None:
                out[i, first_col:last_col] = np.nan
                continue
            t = unpack(value)
            if expired_before_us is not None and t[0] < expired_before_us:
                out[i, first_col:last_col] = np.nan
                continue
            pack(out_bytes, i * row_bytes + first_col * 8, *getter(t))
            if value[nulls_start:nulls_end] != no_nulls:
                for j in self._null_features(value):
                    out[i, first_col + j] = np.nan

    def _null_features(self, value: bytes) -> list[int]:
        """Output indexes of the requested features whose null bit is set in `value`."""
        nulls_start, nulls_end, _ = self._nulls
        bits = int.from_bytes(value[nulls_start:nulls_end], "little")
        found: list[int] = []
        positions = self._null_positions
        while bits:
            low = bits & -bits
            found.extend(positions.get(low.bit_length() - 1, ()))
            bits ^= low
        return found


def _fixup(dtype: Any, at: int) -> Callable[[tuple[Any, ...]], Any] | None:
    """How to turn the unpacked form of a feature at tuple index `at` into its Python value."""
    kind = dtype.kind
    if kind is Kind.TIMESTAMP:
        return lambda t: _datetime(t[at])
    if kind is Kind.VECTOR:
        end = at + dtype.size
        return lambda t: list(t[at:end])
    item_is_ts = dtype.item is not None and dtype.item.kind is Kind.TIMESTAMP
    if kind is Kind.MAP:
        convert = _timestamp_pairs if item_is_ts else _pairs
        return lambda t: None if t[at] is None else convert(t[at])
    if kind is Kind.LIST and item_is_ts:
        return lambda t: None if t[at] is None else _timestamps(t[at])
    return None
