"""`Aggregation`: a windowed aggregate of one raw column of a view (Feast's noun and fields).

Pure definitions and their validation. The window semantics (boundaries, tiles, lateness)
are written once in docs/concepts.md ("Windowed aggregations") and implemented once in
`strato.streaming.tiles`; this module only decides names, output types and tile sizes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final, Literal

from strato.definitions._naming import check_name
from strato.definitions.field import Field
from strato.errors import DefinitionError
from strato.types import DType, Kind

AggregationFunction = Literal["count", "sum", "mean", "min", "max", "last", "approx_count_distinct"]
FUNCTIONS: Final = ("count", "sum", "mean", "min", "max", "last", "approx_count_distinct")

_NUMBERS: Final = frozenset({Kind.INT32, Kind.INT64, Kind.FLOAT32, Kind.FLOAT64})
_ACCEPTS: Final[dict[str, frozenset[Kind]]] = {
    "count": frozenset({*_NUMBERS, Kind.BOOL, Kind.STRING, Kind.BYTES, Kind.TIMESTAMP}),
    "sum": _NUMBERS,
    "mean": _NUMBERS,
    "min": frozenset({*_NUMBERS, Kind.TIMESTAMP}),
    "max": frozenset({*_NUMBERS, Kind.TIMESTAMP}),
    "last": frozenset({*_NUMBERS, Kind.BOOL, Kind.STRING, Kind.TIMESTAMP}),
    "approx_count_distinct": frozenset({Kind.INT32, Kind.INT64, Kind.STRING, Kind.BYTES}),
}

TILE_LADDER_SECONDS: Final = (1, 5, 10, 30, 60, 300, 600, 1800, 3600, 6 * 3600, 86400)
"""Tile sizes a window may get: the largest one that divides the window into at least
`MIN_TILES` tiles (so the oldest tile, read whole, is at most a tenth of the window)."""
MIN_TILES: Final = 10

_UNITS: Final = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def window_label(window: timedelta) -> str:
    """``timedelta(minutes=10)`` → ``"10m"``: the largest unit that divides the window."""
    seconds = int(window.total_seconds())
    for unit, size in _UNITS:
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    raise AssertionError("unreachable: every whole-second window divides by 1 s")


def tile_seconds(window: timedelta) -> int:
    """The tile size of a window, in seconds (see `TILE_LADDER_SECONDS`)."""
    seconds = int(window.total_seconds())
    fitting = [t for t in TILE_LADDER_SECONDS if seconds % t == 0 and seconds // t >= MIN_TILES]
    return fitting[-1] if fitting else 1


@dataclass(frozen=True)
class Aggregation:
    """An aggregate of `column` over a sliding window of event time, per entity.

    Its value is a feature of the view named `name` (default ``{column}_{function}_{window}``,
    e.g. ``amount_sum_10m``), read like any other (``"txns:amount_sum_10m"``) online and in
    training sets; both compute it by the one definition in docs/concepts.md.

    >>> from datetime import timedelta
    >>> Aggregation("amount", "sum", timedelta(minutes=10)).name
    'amount_sum_10m'
    """

    column: str
    function: AggregationFunction
    time_window: timedelta
    name: str

    def __init__(
        self,
        column: str,
        function: AggregationFunction,
        time_window: timedelta | None = None,
        *,
        window: timedelta | None = None,
        name: str | None = None,
    ):
        check_name("aggregation column", column)
        if function not in FUNCTIONS:
            raise DefinitionError(
                f"aggregation of {column!r}: function must be one of {', '.join(FUNCTIONS)}, got {function!r}"
            )
        if time_window is not None and window is not None:
            raise DefinitionError(f"aggregation of {column!r}: give time_window or window, not both")
        span = time_window if time_window is not None else window
        if not isinstance(span, timedelta) or span <= timedelta(0):
            raise DefinitionError(f"aggregation of {column!r}: time_window must be a positive timedelta, got {span!r}")
        if span % timedelta(seconds=1):
            raise DefinitionError(f"aggregation of {column!r}: time_window must be whole seconds, got {span}")
        label = name if name is not None else f"{column}_{function}_{window_label(span)}"
        check_name("aggregation", label)
        object.__setattr__(self, "column", column)
        object.__setattr__(self, "function", function)
        object.__setattr__(self, "time_window", span)
        object.__setattr__(self, "name", label)

    @property
    def tile_seconds(self) -> int:
        """The tile size of this aggregation's window (see docs/concepts.md)."""
        return tile_seconds(self.time_window)

    def output_dtype(self, column_dtype: DType) -> DType:
        """The feature type of the result: count int64; sum int64 or float64; mean float64;
        min, max and last the column's type; approx_count_distinct int64."""
        if self.function in ("count", "approx_count_distinct"):
            return DType.parse("int64")
        if self.function == "mean":
            return DType.parse("float64")
        if self.function == "sum":
            return DType.parse("float64" if column_dtype.kind in (Kind.FLOAT32, Kind.FLOAT64) else "int64")
        return column_dtype

    def check(self, where: str, column: Field | None) -> None:
        """Validate against the view's raw `column` (None: the view has no such feature)."""
        if column is None:
            raise DefinitionError(
                f"{where}: aggregation {self.name!r} uses column {self.column!r}, which is not a feature"
            )
        if column.dtype.kind not in _ACCEPTS[self.function]:
            raise DefinitionError(
                f"{where}: aggregation {self.name!r}: {self.function} does not take column "
                f"{self.column!r} of type {column.dtype}"
            )

    def to_spec(self) -> dict[str, Any]:
        """Plain data for the registry (JSON-serializable)."""
        return {
            "column": self.column,
            "function": self.function,
            "time_window_seconds": int(self.time_window.total_seconds()),
            "name": self.name,
        }

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Aggregation:
        """Rebuild the object from `to_spec` data; the registry's decoder, validated like a new one."""
        return cls(spec["column"], spec["function"], timedelta(seconds=spec["time_window_seconds"]), name=spec["name"])


def check_aggregations(
    where: str,
    aggregations: Sequence[Aggregation],
    features: Sequence[Field],
    taken: set[str],
    allowed_lateness: timedelta | None,
) -> tuple[Aggregation, ...]:
    """Validate a view's aggregations: known columns of fitting types, names unused elsewhere."""
    if not isinstance(aggregations, Sequence) or not all(isinstance(a, Aggregation) for a in aggregations):
        raise DefinitionError(f"{where}: aggregations must be a list of Aggregation")
    by_name = {f.name: f for f in features}
    seen: set[str] = set()
    for agg in aggregations:
        agg.check(where, by_name.get(agg.column))
        if agg.name in taken or agg.name in seen:
            raise DefinitionError(f"{where}: aggregation name {agg.name!r} is already a feature, key or aggregation")
        seen.add(agg.name)
    if allowed_lateness is not None:
        if not isinstance(allowed_lateness, timedelta) or allowed_lateness < timedelta(0):
            raise DefinitionError(
                f"{where}: allowed_lateness must be a timedelta >= 0 or None, got {allowed_lateness!r}"
            )
        if not aggregations:
            raise DefinitionError(f"{where}: allowed_lateness applies to aggregations, and the view has none")
    return tuple(aggregations)
