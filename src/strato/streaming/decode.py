"""Kafka message values → a view's typed rows, one message at a time; the rest → dead letters.

Each message is checked on its own (size, JSON or Avro, join keys, event time, feature
types, lateness), so a bad message never rejects the good ones around it (design rule 7).
What passes is gathered column by column into one Arrow table that `FeatureStore.write`
accepts as a whole; a message that still fails the store's own batch check is found by
`frames.conform_batch` on halves of the batch and dead-lettered too.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from strato import frames
from strato.definitions.feature_view import FeatureView
from strato.definitions.kafka_source import KafkaSource
from strato.errors import SchemaError, UserError
from strato.types import TIMESTAMP_ARROW, Kind

_INT_RANGE = {Kind.INT32: (-(2**31), 2**31 - 1), Kind.INT64: (-(2**63), 2**63 - 1)}
_UNIT_US = {"s": 1_000_000, "ms": 1_000, "us": 1}
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass
class DeadLetter:
    """One message that cannot become a row: its index in the decoded batch and why."""

    index: int
    reason: str


@dataclass
class Decoded:
    """The rows a batch of messages made (`rows`, from the messages at `kept`) and its dead letters."""

    rows: pa.Table
    kept: list[int]
    dead: list[DeadLetter] = field(default_factory=list)


def client_config(source: KafkaSource) -> dict[str, str]:
    """The source's client settings with ``${NAME}`` replaced by environment variable NAME."""

    def expand(value: str) -> str:
        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in os.environ:
                raise UserError(f"KafkaSource {source.topic!r}: config refers to ${{{name}}}, which is not set")
            return os.environ[name]

        return _ENV.sub(one, value)

    return {key: expand(value) for key, value in source.config.items()}


def _checker(kind: Kind) -> Callable[[Any], Any] | None:
    """A function returning the value as the column stores it, or raising TypeError/ValueError."""
    if kind in _INT_RANGE:
        low, high = _INT_RANGE[kind]

        def integer(v: Any) -> int:
            if type(v) is not int:
                if isinstance(v, float) and v.is_integer():
                    v = int(v)
                else:
                    raise TypeError(f"expected an integer, got {_show(v)}")
            if not low <= v <= high:
                raise ValueError(f"{v} is out of range for {kind}")
            return int(v)

        return integer
    if kind in (Kind.FLOAT32, Kind.FLOAT64):

        def number(v: Any) -> float:
            if type(v) is float:
                return v
            if type(v) is int:
                return float(v)
            raise TypeError(f"expected a number, got {_show(v)}")

        return number
    if kind == Kind.BOOL:

        def boolean(v: Any) -> bool:
            if type(v) is not bool:
                raise TypeError(f"expected true or false, got {_show(v)}")
            return v

        return boolean
    if kind == Kind.STRING:

        def text(v: Any) -> str:
            if type(v) is not str:
                raise TypeError(f"expected a string, got {_show(v)}")
            return v

        return text
    if kind == Kind.BYTES:

        def binary(v: Any) -> bytes:
            if isinstance(v, (bytes, bytearray)):
                return bytes(v)
            if isinstance(v, str):
                return v.encode()
            raise TypeError(f"expected bytes or a string, got {_show(v)}")

        return binary
    return None  # timestamps, lists, maps, vectors: checked by Arrow, value by value


def _show(value: Any) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, (bytes, bytearray)) else repr(bytes(value[:20]))
    return text if len(text) <= 40 else text[:37] + "..."


class MessageDecoder:
    """Turns message values into rows of one view, following its `KafkaSource`."""

    def __init__(
        self, view: FeatureView, source: KafkaSource, *, repo: Path, max_future_seconds: float | None = None
    ) -> None:
        self.view = view
        self.source = source
        self.max_future_seconds = max_future_seconds
        renamed = {column: name for name, column in source.field_mapping.items()}
        self.time_field = source.timestamp_field or renamed.get(view.timestamp_field, view.timestamp_field)
        self.keys = [
            (k.name, renamed.get(k.name, k.name), _checker(k.dtype.kind), k.dtype.to_arrow()) for k in view.join_keys
        ]
        self.features = [
            (f.name, renamed.get(f.name, f.name), _checker(f.dtype.kind), f.dtype.to_arrow()) for f in view.schema
        ]
        self.unit_us = _UNIT_US[source.timestamp_unit]
        self.lateness_us = (
            None if source.allowed_lateness is None else int(source.allowed_lateness.total_seconds() * 1_000_000)
        )
        self._parse = self._json_parser() if source.format == "json" else self._avro_parser(repo)

    @staticmethod
    def _json_parser() -> Callable[[bytes], Any]:
        try:
            import orjson

            return orjson.loads
        except ImportError:  # pragma: no cover - orjson comes with the kafka and server extras
            return json.loads

    def _avro_parser(self, repo: Path) -> Callable[[bytes], Any]:
        import fastavro

        where = f"KafkaSource {self.source.topic!r}"
        text = self.source.avro_schema
        if text is None:
            path = Path(str(self.source.avro_schema_file)).expanduser()
            path = path if path.is_absolute() else repo / path
            try:
                text = path.read_text()
            except OSError as exc:
                raise UserError(f"{where}: cannot read avro_schema_file {str(path)!r} ({exc.strerror})") from None
        try:
            schema = fastavro.parse_schema(json.loads(text))
        except Exception as exc:  # fastavro raises SchemaParseException, UnknownType, ValueError…
            raise UserError(f"{where}: invalid Avro schema ({type(exc).__name__}: {exc})") from None
        reader = fastavro.schemaless_reader

        def parse(value: bytes) -> Any:
            stream = io.BytesIO(value)
            datum = reader(stream, schema, None)
            if stream.tell() != len(value):
                raise ValueError(f"{len(value) - stream.tell()} bytes left after the Avro datum")
            return datum

        return parse

    def event_us(self, value: Any) -> int:
        """An event time (ISO-8601 text, epoch number in the source's unit, or datetime) in µs UTC."""
        if isinstance(value, bool):
            raise TypeError(f"expected a time, got {_show(value)}")
        if isinstance(value, (int, float)):
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"{value} is not a time")
            return int(value * self.unit_us)
        if isinstance(value, str):
            try:
                moment = datetime.fromisoformat(value)
            except ValueError:
                raise ValueError(f"{_show(value)} is not an ISO-8601 time") from None
        elif isinstance(value, datetime):
            moment = value
        else:
            raise TypeError(f"expected a time, got {_show(value)}")
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        delta = moment - _EPOCH
        return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds

    def decode(
        self,
        values: Sequence[bytes | None],
        partitions: Sequence[int],
        watermarks: dict[int, int],
        *,
        now_us: int,
    ) -> Decoded:
        """Rows from `values` (messages of the source's topic, in offset order per partition).

        `watermarks` (partition → newest event time seen, µs) is updated in place; an event
        older than its partition's watermark minus the allowed lateness is dead-lettered.

        Parsing is per message; the type checks then run per column (C speed) when the whole
        batch is clean, and fall back to checking message by message when it is not, so
        one bad message costs that batch a slower path, never its neighbours.
        """
        dead: list[DeadLetter] = []
        records: list[dict[str, Any]] = []
        indexes: list[int] = []
        limit = self.source.max_message_bytes
        parse = self._parse
        for index, value in enumerate(values):
            if value is None:
                dead.append(DeadLetter(index, "empty: the message has no value"))
                continue
            if len(value) > limit:
                dead.append(DeadLetter(index, f"oversized: {len(value)} bytes > max_message_bytes {limit}"))
                continue
            try:
                record = parse(value)
            except Exception as exc:
                kind = "bad JSON" if self.source.format == "json" else "bad Avro"
                text = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
                dead.append(DeadLetter(index, f"{kind}: {text}"))
                continue
            if type(record) is not dict:
                dead.append(DeadLetter(index, f"not an object: {_show(record)}"))
                continue
            records.append(record)
            indexes.append(index)
        future = None if self.max_future_seconds is None else now_us + int(self.max_future_seconds * 1_000_000)
        fast = self._fast(records, future)
        if fast is not None:
            table, times = fast
            kept = self._watermark(times, [partitions[i] for i in indexes], watermarks, indexes, dead)
            if len(kept) != len(indexes):
                positions = {index: i for i, index in enumerate(indexes)}
                table = table.take(pa.array([positions[i] for i in kept], pa.int64()))
            return Decoded(table, kept, sorted(dead, key=lambda d: d.index))
        return self._slow(records, indexes, partitions, watermarks, future, dead)

    def _fast(self, records: list[dict[str, Any]], future: int | None) -> tuple[pa.Table, Any] | None:
        """The batch as columns, or None if any value needs a closer look (then `_slow`)."""
        import numpy as np
        import pyarrow.compute as pc

        arrays = []
        for is_key, (_column, name, _check, arrow_type) in [(True, k) for k in self.keys] + [
            (False, f) for f in self.features
        ]:
            values = [r.get(name) for r in records]
            allowed = _FAST_TYPES.get(arrow_type)
            if allowed is None:
                return None
            found = set(map(type, values))
            if is_key and type(None) in found:
                return None
            if not found <= allowed:
                return None
            try:
                arrays.append(pa.array(values, type=arrow_type))
            except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
                return None
        stamps = [r.get(self.time_field) for r in records]
        found = set(map(type, stamps))
        try:
            if found <= {int}:
                times = np.asarray(pa.array(stamps, pa.int64())) * self.unit_us
            elif found <= {float, int}:
                as_float = np.asarray(pa.array(stamps, pa.float64())) * self.unit_us
                if not np.isfinite(as_float).all():
                    return None
                times = as_float.astype(np.int64)
            elif found == {str}:
                parsed = pc.cast(pa.array(stamps, pa.string()), TIMESTAMP_ARROW)
                times = np.asarray(parsed.cast(pa.int64()))
            elif not records:
                times = np.empty(0, np.int64)
            else:
                return None
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, ValueError):
            return None
        if future is not None and times.size and int(times.max()) > future:
            return None
        names = [k[0] for k in self.keys] + [f[0] for f in self.features] + [self.view.timestamp_field]
        arrays.append(pa.array(times, pa.int64()).cast(TIMESTAMP_ARROW))
        return pa.Table.from_arrays(arrays, names=names), times

    def _watermark(
        self,
        times: Any,
        partitions: list[int],
        watermarks: dict[int, int],
        indexes: list[int],
        dead: list[DeadLetter],
    ) -> list[int]:
        """Update each partition's newest event time; dead-letter events past the lateness."""
        import numpy as np

        parts = np.asarray(partitions, dtype=np.int64)
        late = np.zeros(len(indexes), dtype=bool)
        for partition in np.unique(parts).tolist():
            where = np.flatnonzero(parts == partition)
            ev = times[where]
            mark = watermarks.get(partition)
            if self.lateness_us is not None:
                before = np.maximum.accumulate(np.concatenate([[mark if mark is not None else ev[0]], ev]))[:-1]
                late_here = ev < before - self.lateness_us
                late[where] = late_here
                for i in np.flatnonzero(late_here).tolist():
                    behind = (int(before[i]) - int(ev[i])) / 1e6
                    dead.append(DeadLetter(indexes[int(where[i])], self._late(behind)))
            newest = int(ev.max())
            watermarks[partition] = newest if mark is None else max(mark, newest)
        if not late.any():
            return indexes
        return [index for index, is_late in zip(indexes, late.tolist(), strict=True) if not is_late]

    def _late(self, behind_seconds: float) -> str:
        lateness = (self.lateness_us or 0) / 1e6
        return (
            f"late: event time {behind_seconds:g} s behind the newest on its partition, allowed_lateness {lateness:g} s"
        )

    def _slow(
        self,
        records: list[dict[str, Any]],
        indexes: list[int],
        partitions: Sequence[int],
        watermarks: dict[int, int],
        future: int | None,
        dead: list[DeadLetter],
    ) -> Decoded:
        """Message by message: each check names the field at fault."""
        keys, features = self.keys, self.features
        columns: list[list[Any]] = [[] for _ in range(len(keys) + len(features))]
        times: list[int] = []
        kept: list[int] = []
        lateness = self.lateness_us
        for index, record in zip(indexes, records, strict=True):
            row: list[Any] = []
            try:
                for _column, name, check, _ in keys:
                    v = record.get(name)
                    if v is None:
                        raise _Bad(f"missing join key {name!r}" if name not in record else f"null join key {name!r}")
                    row.append(_checked(check, v, name))
                for _column, name, check, _ in features:
                    v = record.get(name)
                    row.append(None if v is None else _checked(check, v, name))
                t = record.get(self.time_field)
                if t is None:
                    raise _Bad(f"missing event time {self.time_field!r}")
                try:
                    event = self.event_us(t)
                except (TypeError, ValueError, OverflowError) as exc:
                    raise _Bad(f"field {self.time_field!r}: {exc}") from None
                if future is not None and event > future:
                    raise _Bad(
                        f"field {self.time_field!r}: event time is more than "
                        f"{self.max_future_seconds:g} s in the future"
                    )
            except _Bad as exc:
                dead.append(DeadLetter(index, f"invalid: {exc}"))
                continue
            partition = partitions[index]
            mark = watermarks.get(partition)
            if lateness is not None and mark is not None and event < mark - lateness:
                dead.append(DeadLetter(index, self._late((mark - event) / 1e6)))
                continue
            if mark is None or event > mark:
                watermarks[partition] = event
            for i, v in enumerate(row):
                columns[i].append(v)
            times.append(event)
            kept.append(index)
        table, extra_dead = self._table(columns, times, kept)
        dead.extend(extra_dead)
        if extra_dead:
            gone = {d.index for d in extra_dead}
            kept = [i for i in kept if i not in gone]
        return Decoded(table, kept, sorted(dead, key=lambda d: d.index))

    def _table(self, columns: list[list[Any]], times: list[int], kept: list[int]) -> tuple[pa.Table, list[DeadLetter]]:
        """Columns → one Arrow table; values Arrow refuses (nested types) drop their row."""
        specs = [*self.keys, *self.features]
        bad: dict[int, str] = {}
        for i, (_column, name, check, arrow_type) in enumerate(specs):
            if check is not None:
                continue
            try:
                pa.array(columns[i], type=arrow_type)
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
                for row, v in enumerate(columns[i]):
                    if row in bad:
                        continue
                    try:
                        pa.array([v], type=arrow_type)
                    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError) as exc:
                        bad[row] = f"invalid: field {name!r}: {str(exc).splitlines()[0][:120]}"
        if bad:
            keep = [r for r in range(len(times)) if r not in bad]
            columns = [[col[r] for r in keep] for col in columns]
            dead = [DeadLetter(kept[r], reason) for r, reason in bad.items()]
            times = [times[r] for r in keep]
        else:
            dead = []
        arrays = [pa.array(columns[i], type=spec[3]) for i, spec in enumerate(specs)]
        arrays.append(pa.array(times, type=pa.int64()).cast(TIMESTAMP_ARROW))
        names = [spec[0] for spec in specs] + [self.view.timestamp_field]
        return pa.Table.from_arrays(arrays, names=names), dead

    def refuse_in_batch(
        self, table: pa.Table, check: Callable[[pa.Table], None] | None = None
    ) -> list[tuple[int, str]]:
        """Rows (positions in `table`) the store's batch check refuses, each with its reason.

        `check` raises `SchemaError` for a batch the store would refuse (default: the schema
        check, `frames.conform_batch`). Halves the batch until each refused part is one row:
        about log2(n) checks per bad row.
        """
        found: list[tuple[int, str]] = []

        def default(part: pa.Table) -> None:
            frames.conform_batch(self.view, part, max_future_seconds=self.max_future_seconds)

        refuses = check or default

        def search(start: int, stop: int) -> None:
            try:
                refuses(table.slice(start, stop - start))
            except SchemaError as exc:
                if stop - start == 1:
                    found.append((start, f"invalid: {str(exc).splitlines()[0][:200]}"))
                    return
                middle = (start + stop) // 2
                search(start, middle)
                search(middle, stop)

        search(0, table.num_rows)
        return found


class _Bad(Exception):
    """A message that cannot become a row (the reason is its text)."""


def _checked(check: Callable[[Any], Any] | None, value: Any, name: str) -> Any:
    if check is None:
        return value
    try:
        return check(value)
    except (TypeError, ValueError) as exc:
        raise _Bad(f"field {name!r}: {exc}") from None


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_NONE = type(None)
#: Python types a column may hold for the per-column fast path (exactly what `_checker` accepts).
_FAST_TYPES: dict[pa.DataType, set[type]] = {
    pa.int32(): {int, _NONE},
    pa.int64(): {int, _NONE},
    pa.float32(): {float, int, _NONE},
    pa.float64(): {float, int, _NONE},
    pa.bool_(): {bool, _NONE},
    pa.string(): {str, _NONE},
    pa.binary(): {bytes, str, _NONE},
}
