"""Feature value types and their Arrow mapping, plus the small value types shared by every layer.

A `DType` is what a `Field` holds. It prints and parses as a short string (``int64``,
``list<string>``, ``map<string,float64>``, ``vector<float32,128>``), so definitions
round-trip through the registry as plain text, and it maps one-to-one onto an Arrow type,
which is the only in-memory format the storage seams exchange.
"""

from __future__ import annotations

import enum
import re
import reprlib
from dataclasses import dataclass
from typing import Final

import pyarrow as pa

from strato.errors import DefinitionError


class Kind(enum.StrEnum):
    INT32 = "int32"
    INT64 = "int64"
    FLOAT32 = "float32"
    FLOAT64 = "float64"
    BOOL = "bool"
    STRING = "string"
    BYTES = "bytes"
    TIMESTAMP = "timestamp"
    LIST = "list"
    MAP = "map"
    VECTOR = "vector"


SCALAR_KINDS: Final = frozenset(
    {Kind.INT32, Kind.INT64, Kind.FLOAT32, Kind.FLOAT64, Kind.BOOL, Kind.STRING, Kind.BYTES, Kind.TIMESTAMP}
)
KEY_KINDS: Final = frozenset({Kind.INT32, Kind.INT64, Kind.STRING, Kind.BYTES})

# Timestamps are stored as microseconds since the epoch in UTC: Delta Lake, DuckDB and
# Spark all agree on that unit, and nanoseconds overflow before the year 2262.
TIMESTAMP_ARROW: Final = pa.timestamp("us", tz="UTC")

_SCALAR_ARROW: Final[dict[Kind, pa.DataType]] = {
    Kind.INT32: pa.int32(),
    Kind.INT64: pa.int64(),
    Kind.FLOAT32: pa.float32(),
    Kind.FLOAT64: pa.float64(),
    Kind.BOOL: pa.bool_(),
    Kind.STRING: pa.string(),
    Kind.BYTES: pa.binary(),
    Kind.TIMESTAMP: TIMESTAMP_ARROW,
}


@dataclass(frozen=True, slots=True)
class DType:
    """A feature's type: a scalar, a list of scalars, a map string→scalar, or a float32 vector."""

    kind: Kind
    item: DType | None = None
    size: int | None = None

    def __post_init__(self) -> None:
        if self.kind in (Kind.LIST, Kind.MAP):
            if self.item is None or self.item.kind not in SCALAR_KINDS:
                raise DefinitionError(f"{self.kind.value} items must be a scalar type, got {self.item}")
        elif self.kind is Kind.VECTOR:
            if self.size is None or self.size <= 0:
                raise DefinitionError(f"vector length must be a positive integer, got {self.size}")
        elif self.item is not None or self.size is not None:
            raise DefinitionError(f"scalar type {self.kind.value} takes no item type or size")

    def __str__(self) -> str:
        if self.kind is Kind.LIST:
            return f"list<{self.item}>"
        if self.kind is Kind.MAP:
            return f"map<string,{self.item}>"
        if self.kind is Kind.VECTOR:
            return f"vector<float32,{self.size}>"
        return self.kind.value

    def __repr__(self) -> str:
        return f"DType({str(self)!r})"

    @property
    def is_scalar(self) -> bool:
        """True for a single value (not a list, map or vector)."""
        return self.kind in SCALAR_KINDS

    @property
    def is_fixed_width(self) -> bool:
        """Whether every value has the same byte width (numbers, bools, timestamps, vectors)."""
        return self.kind not in (Kind.STRING, Kind.BYTES, Kind.LIST, Kind.MAP)

    def to_arrow(self) -> pa.DataType:
        """The Arrow type this type is stored and exchanged as."""
        if self.kind is Kind.LIST:
            assert self.item is not None
            return pa.list_(self.item.to_arrow())
        if self.kind is Kind.MAP:
            assert self.item is not None
            return pa.map_(pa.string(), self.item.to_arrow())
        if self.kind is Kind.VECTOR:
            assert self.size is not None
            return pa.list_(pa.float32(), self.size)
        return _SCALAR_ARROW[self.kind]

    @classmethod
    def parse(cls, text: str | DType) -> DType:
        """Parse ``int64``, ``list<string>``, ``map<string,float64>``, ``vector<float32,128>``."""
        if isinstance(text, DType):
            return text
        spec = re.sub(r"\s+", "", str(text)).lower()
        aliases = {"float": "float64", "double": "float64", "int": "int64", "str": "string", "boolean": "bool"}
        spec = aliases.get(spec, spec)
        if spec in Kind.__members__.values() and spec not in ("list", "map", "vector"):
            return cls(Kind(spec))
        if m := re.fullmatch(r"(?:list|array)<(\w+)>", spec):
            return cls(Kind.LIST, item=cls.parse(m.group(1)))
        if m := re.fullmatch(r"map<string,(\w+)>", spec):
            return cls(Kind.MAP, item=cls.parse(m.group(1)))
        if m := re.fullmatch(r"(?:vector|embedding)<(?:float32,)?(\d+)>", spec):
            return cls(Kind.VECTOR, size=int(m.group(1)))
        raise DefinitionError(
            f"unknown type {text!r}; expected one of {', '.join(sorted(k.value for k in SCALAR_KINDS))}, "
            "list<T>, map<string,T> or vector<float32,N>"
        )

    @classmethod
    def from_arrow(cls, arrow_type: pa.DataType) -> DType:
        """The Strato type of an Arrow type, used to infer a schema from a frame."""
        for kind, candidate in _SCALAR_ARROW.items():
            if arrow_type == candidate:
                return cls(kind)
        if pa.types.is_timestamp(arrow_type):
            return cls(Kind.TIMESTAMP)
        if pa.types.is_large_string(arrow_type) or pa.types.is_string_view(arrow_type):
            return cls(Kind.STRING)
        if pa.types.is_large_binary(arrow_type):
            return cls(Kind.BYTES)
        if pa.types.is_fixed_size_list(arrow_type) and pa.types.is_floating(arrow_type.value_type):
            return cls(Kind.VECTOR, size=arrow_type.list_size)
        if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
            return cls(Kind.LIST, item=cls.from_arrow(arrow_type.value_type))
        if pa.types.is_map(arrow_type):
            return cls(Kind.MAP, item=cls.from_arrow(arrow_type.item_type))
        raise DefinitionError(f"Arrow type {arrow_type} has no Strato equivalent")


Int32: Final = DType(Kind.INT32)
Int64: Final = DType(Kind.INT64)
Float32: Final = DType(Kind.FLOAT32)
Float64: Final = DType(Kind.FLOAT64)
Bool: Final = DType(Kind.BOOL)
String: Final = DType(Kind.STRING)
Bytes: Final = DType(Kind.BYTES)
Timestamp: Final = DType(Kind.TIMESTAMP)


def List(item: DType | str) -> DType:
    """A list of scalars, e.g. ``List(String)``."""
    return DType(Kind.LIST, item=DType.parse(item))


def Map(value: DType | str) -> DType:
    """A map from string keys to scalars, e.g. ``Map(Float64)``."""
    return DType(Kind.MAP, item=DType.parse(value))


def Vector(size: int) -> DType:
    """A fixed-length float32 vector (an embedding), e.g. ``Vector(128)``."""
    return DType(Kind.VECTOR, size=size)


class ReadStatus(enum.IntEnum):
    """Per (entity, feature) outcome of an online read (design rule 4)."""

    PRESENT = 0
    NOT_FOUND = 1
    EXPIRED = 2


#: A Delta table version: an integer that grows by one with every commit.
TableVersion = int


# ---------------------------------------------------------------------- coercion

_SHOW = reprlib.Repr()  # Python 3.11's Repr takes no keyword arguments
_SHOW.maxlevel, _SHOW.maxlist, _SHOW.maxtuple, _SHOW.maxdict, _SHOW.maxset = 2, 6, 6, 6, 6
_SHOW.maxstring, _SHOW.maxother, _SHOW.maxlong = 60, 60, 40


def show(value: object) -> str:
    """A value for an error message, bounded: a 1M-element list prints as ``[1.0, 1.0, ...]``."""
    return _SHOW.repr(value)


def value_kind(t: pa.DataType) -> str:
    """The kind of values an Arrow type holds, as the coercion rule sees them.

    Numbers (any int or float width), bool, text (strings and bytes: Parquet writers often
    store strings as bytes), timestamp (and date), list, map, null; anything else by name.
    """
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "number"
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "text"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_binary_view(t):
        return "text"
    if pa.types.is_fixed_size_binary(t):
        return "text"
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        return "timestamp"
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t) or pa.types.is_list_view(t):
        return "list"
    if pa.types.is_map(t):
        return "map"
    if pa.types.is_null(t):
        return "null"
    return str(t)


def cross_kind(source: pa.DataType, target: pa.DataType, *, key: bool = False) -> tuple[pa.DataType, str] | None:
    """Where a cast from `source` to `target` would change the kind of a value, else None.

    The one coercion rule of every path (writes, pushes, entity frames; online lookups apply
    the same to Python values): a value converts only within its kind. Numbers convert
    between widths, and between int and float where exact (1 → 1.0; 2.0 → 2, while 2.5
    into an int is refused by the cast itself), text and bytes convert where the bytes are
    UTF-8, and timestamps also take dates and ISO 8601 text. Nothing else: 7 never becomes
    ``"7"``, ``"1.5"`` never becomes 1.5, 2 never becomes True. A join key (`key`) is exact:
    an integer key takes integers only, as a float id has already lost digits past 2**53.
    Lists and maps are checked item by item. Returns (the offending source type, why).
    """
    have, want = value_kind(source), value_kind(target)
    if have == "null":
        return None
    if want == "timestamp" and have in ("timestamp", "text"):
        return None
    if have != want:
        return source, f"{have} values cannot become {want}"
    if key and pa.types.is_integer(target) and not pa.types.is_integer(source):
        return source, "an integer join key takes integers only"
    if want == "list":
        return cross_kind(source.value_type, target.value_type)
    if want == "map":
        return cross_kind(source.key_type, target.key_type) or cross_kind(source.item_type, target.item_type)
    return None
