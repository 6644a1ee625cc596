"""`Field`: a named, typed column of a view (a feature or a join key)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from strato.definitions._naming import check_name, check_tags
from strato.types import DType


@dataclass(frozen=True)
class Field:
    """A typed feature or join key.

    >>> from strato import Field, Float64
    >>> Field("amount_mean_7d", Float64, description="mean card amount over 7 days")
    Field(name='amount_mean_7d', dtype=DType('float64'), description='mean card amount over 7 days', tags={})
    """

    name: str
    dtype: DType
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)

    def __init__(self, name: str, dtype: DType | str, description: str = "", tags: dict[str, str] | None = None):
        check_name("field", name)
        object.__setattr__(self, "name", name)
        try:
            object.__setattr__(self, "dtype", DType.parse(dtype))
        except Exception as exc:
            raise type(exc)(f"field {name!r}: {exc}") from None
        object.__setattr__(self, "description", str(description))
        object.__setattr__(self, "tags", check_tags(f"field {name!r}", tags or {}))

    def __hash__(self) -> int:
        return hash((self.name, self.dtype))

    def to_spec(self) -> dict[str, Any]:
        """Plain data for the registry (JSON-serializable)."""
        spec: dict[str, Any] = {"name": self.name, "dtype": str(self.dtype)}
        if self.description:
            spec["description"] = self.description
        if self.tags:
            spec["tags"] = dict(self.tags)
        return spec

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Field:
        """Rebuild the object from `to_spec` data; the registry's decoder, validated like a new one."""
        return cls(spec["name"], spec["dtype"], spec.get("description", ""), spec.get("tags"))
