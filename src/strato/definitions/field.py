"""`Field`: a named, typed column of a view (a feature or a join key)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from strato.definitions._naming import check_name, check_tags
from strato.definitions.expectations import Expect
from strato.errors import DefinitionError
from strato.types import DType


@dataclass(frozen=True)
class Field:
    """A typed feature or join key, with optional data-quality rules (`expect`) that every
    write of the view checks.

    >>> from strato import Field, Float64
    >>> Field("amount_mean_7d", Float64, description="mean card amount over 7 days")
    Field(name='amount_mean_7d', dtype=DType('float64'), description='mean card amount over 7 days', tags={}, expect=None)
    """

    name: str
    dtype: DType
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    expect: Expect | None = None

    def __init__(
        self,
        name: str,
        dtype: DType | str,
        description: str = "",
        tags: dict[str, str] | None = None,
        *,
        expect: Expect | None = None,
    ):
        check_name("field", name)
        object.__setattr__(self, "name", name)
        try:
            object.__setattr__(self, "dtype", DType.parse(dtype))
        except Exception as exc:
            raise type(exc)(f"field {name!r}: {exc}") from None
        object.__setattr__(self, "description", str(description))
        object.__setattr__(self, "tags", check_tags(f"field {name!r}", tags or {}))
        if expect is not None and not isinstance(expect, Expect):
            raise DefinitionError(f"field {name!r}: expect must be an Expect(...), got {expect!r}")
        if expect is not None and expect.is_empty:
            expect = None
        object.__setattr__(self, "expect", expect.check_for(name, self.dtype) if expect is not None else None)

    def __hash__(self) -> int:
        return hash((self.name, self.dtype))

    def to_spec(self) -> dict[str, Any]:
        """Plain data for the registry (JSON-serializable)."""
        spec: dict[str, Any] = {"name": self.name, "dtype": str(self.dtype)}
        if self.description:
            spec["description"] = self.description
        if self.tags:
            spec["tags"] = dict(self.tags)
        if self.expect is not None:
            spec["expect"] = self.expect.to_spec()
        return spec

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Field:
        """Rebuild the object from `to_spec` data; the registry's decoder, validated like a new one."""
        expect = Expect.from_spec(spec["expect"]) if spec.get("expect") else None
        return cls(spec["name"], spec["dtype"], spec.get("description", ""), spec.get("tags"), expect=expect)
