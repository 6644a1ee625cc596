"""`Expect`: the data-quality rules a field's values must meet before a write stores them.

Rules are declared on the `Field` (``Field("amount", Float64, expect=Expect(ge=0))``) and
checked on every write of the view, in both stores' one validation pass
(`strato.monitoring.validation`). They are definitions like any other: stored in the
registry, diffed by `plan`, versioned with the view. This module only describes and
validates the rules; it never looks at data.

Numbers compare with the bound's type: ``ge``/``le`` (inclusive) and ``gt``/``lt``
(exclusive) apply to numeric and timestamp fields (timestamps given as aware datetimes).
``allowed`` lists the only values a scalar field may take; ``regex`` must match the whole
value of a string field; ``max_null_fraction`` bounds the share of nulls in one batch
(0 means no null at all).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from strato.errors import DefinitionError
from strato.types import DType, Kind

_NUMERIC = frozenset({Kind.INT32, Kind.INT64, Kind.FLOAT32, Kind.FLOAT64})
Bound = int | float | datetime


@dataclass(frozen=True)
class Expect:
    """What every value of one field must satisfy; a batch that breaks a rule is rejected
    whole, or its offending rows quarantined when the view says ``on_invalid="quarantine"``.

    >>> Expect(ge=0, le=10_000, max_null_fraction=0.01)
    Expect(ge=0, le=10000, gt=None, lt=None, allowed=None, regex=None, max_null_fraction=0.01)
    """

    ge: Bound | None = None
    le: Bound | None = None
    gt: Bound | None = None
    lt: Bound | None = None
    allowed: tuple[Any, ...] | None = None
    regex: str | None = None
    max_null_fraction: float | None = None

    def __init__(
        self,
        *,
        ge: Bound | None = None,
        le: Bound | None = None,
        gt: Bound | None = None,
        lt: Bound | None = None,
        allowed: Iterable[Any] | None = None,
        regex: str | None = None,
        max_null_fraction: float | None = None,
    ):
        for name, bound in (("ge", ge), ("le", le), ("gt", gt), ("lt", lt)):
            if bound is None:
                continue
            if isinstance(bound, bool) or not isinstance(bound, int | float | datetime):
                raise DefinitionError(f"Expect: {name} must be a number or a datetime, got {bound!r}")
            if isinstance(bound, float) and math.isnan(bound):
                raise DefinitionError(f"Expect: {name} must not be NaN")
            if isinstance(bound, datetime) and bound.tzinfo is None:
                raise DefinitionError(f"Expect: {name} must be a timezone-aware datetime, got {bound!r}")
        if ge is not None and gt is not None:
            raise DefinitionError("Expect: give ge or gt, not both")
        if le is not None and lt is not None:
            raise DefinitionError("Expect: give le or lt, not both")
        low = ge if ge is not None else gt
        high = le if le is not None else lt
        if low is not None and high is not None:
            if isinstance(low, datetime) != isinstance(high, datetime):
                raise DefinitionError("Expect: lower and upper bounds must both be numbers or both datetimes")
            if low > high or (low == high and (gt is not None or lt is not None)):  # type: ignore[operator]
                raise DefinitionError(f"Expect: the range from {low!r} to {high!r} holds no value")
        object.__setattr__(self, "ge", ge)
        object.__setattr__(self, "le", le)
        object.__setattr__(self, "gt", gt)
        object.__setattr__(self, "lt", lt)
        if allowed is not None:
            if isinstance(allowed, str | bytes) or not isinstance(allowed, Iterable):
                raise DefinitionError(f"Expect: allowed must be a list of values, got {allowed!r}")
            values = tuple(allowed)
            if not values:
                raise DefinitionError("Expect: allowed must name at least one value")
            object.__setattr__(self, "allowed", values)
        else:
            object.__setattr__(self, "allowed", None)
        if regex is not None:
            if not isinstance(regex, str):
                raise DefinitionError(f"Expect: regex must be a string, got {regex!r}")
            try:
                re.compile(regex)
            except re.error as exc:
                raise DefinitionError(f"Expect: regex {regex!r} is invalid: {exc}") from None
        object.__setattr__(self, "regex", regex)
        if max_null_fraction is not None:
            if isinstance(max_null_fraction, bool) or not isinstance(max_null_fraction, int | float):
                raise DefinitionError(f"Expect: max_null_fraction must be a number, got {max_null_fraction!r}")
            if not 0 <= max_null_fraction <= 1:
                raise DefinitionError(f"Expect: max_null_fraction must be between 0 and 1, got {max_null_fraction}")
            max_null_fraction = float(max_null_fraction)
        object.__setattr__(self, "max_null_fraction", max_null_fraction)

    @property
    def is_empty(self) -> bool:
        """True when no rule is set (the value `Field` stores as None)."""
        return all(v is None for v in self.to_spec().values())

    @property
    def bounds(self) -> tuple[Bound | None, bool, Bound | None, bool]:
        """(lower, lower inclusive, upper, upper inclusive); None where unbounded."""
        lower, lower_in = (self.ge, True) if self.ge is not None else (self.gt, False)
        upper, upper_in = (self.le, True) if self.le is not None else (self.lt, False)
        return lower, lower_in, upper, upper_in

    def check_for(self, field_name: str, dtype: DType) -> Expect:
        """Return self when every rule fits a field of `dtype`; else a `DefinitionError`
        naming the field and the rule (a regex on a number, a range on a list)."""
        where = f"field {field_name!r}"
        lower, _, upper, _ = self.bounds
        for bound in (lower, upper):
            if bound is None:
                continue
            if isinstance(bound, datetime):
                if dtype.kind is not Kind.TIMESTAMP:
                    raise DefinitionError(f"{where}: a datetime bound needs a timestamp field, not {dtype}")
            elif dtype.kind not in _NUMERIC:
                raise DefinitionError(f"{where}: range rules (ge/le/gt/lt) need a numeric field, not {dtype}")
        if self.regex is not None and dtype.kind is not Kind.STRING:
            raise DefinitionError(f"{where}: regex needs a string field, not {dtype}")
        if self.allowed is not None:
            if not dtype.is_scalar:
                raise DefinitionError(f"{where}: allowed values need a scalar field, not {dtype}")
            ok = {
                Kind.STRING: (str,),
                Kind.BYTES: (bytes,),
                Kind.BOOL: (bool,),
                Kind.TIMESTAMP: (datetime,),
            }.get(dtype.kind, (int, float))
            wrong = [v for v in self.allowed if not isinstance(v, ok) or (ok == (int, float) and isinstance(v, bool))]
            if wrong:
                raise DefinitionError(f"{where}: allowed values {wrong!r} are not {dtype} values")
        return self

    def to_spec(self) -> dict[str, Any]:
        """Plain data for the registry (JSON-serializable): only the rules that are set."""
        spec: dict[str, Any] = {}
        for name in ("ge", "le", "gt", "lt"):
            bound = getattr(self, name)
            if bound is not None:
                spec[name] = {"datetime": bound.isoformat()} if isinstance(bound, datetime) else bound
        if self.allowed is not None:
            spec["allowed"] = [{"datetime": v.isoformat()} if isinstance(v, datetime) else v for v in self.allowed]
        if self.regex is not None:
            spec["regex"] = self.regex
        if self.max_null_fraction is not None:
            spec["max_null_fraction"] = self.max_null_fraction
        return spec

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Expect:
        """Rebuild the object from `to_spec` data, validated like a new one."""

        def value(v: Any) -> Any:
            if isinstance(v, dict) and set(v) == {"datetime"}:
                return datetime.fromisoformat(v["datetime"]).astimezone(UTC)
            return v

        args: dict[str, Any] = {k: value(spec[k]) for k in ("ge", "le", "gt", "lt") if k in spec}
        if "allowed" in spec:
            args["allowed"] = [value(v) for v in spec["allowed"]]
        return cls(**args, regex=spec.get("regex"), max_null_fraction=spec.get("max_null_fraction"))
