"""`Entity`: the thing features describe, identified by typed join keys."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from strato.definitions._naming import RESERVED_COLUMNS, check_name, check_tags
from strato.definitions.field import Field
from strato.errors import DefinitionError
from strato.types import KEY_KINDS, DType


@dataclass(frozen=True)
class Entity:
    """A thing features describe, e.g. a user, a card or a merchant.

    >>> from strato import Entity, Int64
    >>> user = Entity("user", join_keys={"user_id": Int64})
    >>> user.join_key_names
    ('user_id',)
    """

    name: str
    join_keys: tuple[Field, ...]
    description: str = ""
    owner: str = ""
    tags: dict[str, str] = field(default_factory=dict)

    def __init__(
        self,
        name: str,
        join_keys: Mapping[str, DType | str] | Sequence[Field],
        *,
        description: str = "",
        owner: str = "",
        tags: dict[str, str] | None = None,
    ):
        check_name("entity", name)
        where = f"entity {name!r}"
        if isinstance(join_keys, Mapping):
            keys = tuple(Field(key, dtype) for key, dtype in join_keys.items())
        elif isinstance(join_keys, Sequence) and all(isinstance(k, Field) for k in join_keys):
            keys = tuple(join_keys)
        else:
            raise DefinitionError(
                f"{where}: join_keys must be a dict of name to type or a list of Field, got {join_keys!r}"
            )
        if not keys:
            raise DefinitionError(f"{where}: needs at least one join key")
        seen: set[str] = set()
        for key in keys:
            if key.name in seen:
                raise DefinitionError(f"{where}: join key {key.name!r} appears twice")
            if key.name in RESERVED_COLUMNS:
                raise DefinitionError(f"{where}: join key {key.name!r} is a reserved column name")
            if key.dtype.kind not in KEY_KINDS:
                allowed = ", ".join(sorted(k.value for k in KEY_KINDS))
                raise DefinitionError(
                    f"{where}: join key {key.name!r} has type {key.dtype}; keys must be one of {allowed}"
                )
            seen.add(key.name)
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "join_keys", keys)
        object.__setattr__(self, "description", str(description))
        object.__setattr__(self, "owner", str(owner))
        object.__setattr__(self, "tags", check_tags(where, tags or {}))

    def __hash__(self) -> int:
        return hash((self.name, self.join_keys))

    @property
    def join_key_names(self) -> tuple[str, ...]:
        """The join keys' names, in order."""
        return tuple(k.name for k in self.join_keys)

    def to_spec(self) -> dict[str, Any]:
        """Plain data for the registry (JSON-serializable); the inverse of the registry's decoding."""
        return {
            "name": self.name,
            "join_keys": [k.to_spec() for k in self.join_keys],
            "description": self.description,
            "owner": self.owner,
            "tags": dict(self.tags),
        }

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Entity:
        """Rebuild the object from `to_spec` data; the registry's decoder, validated like a new one."""
        return cls(
            spec["name"],
            [Field.from_spec(k) for k in spec["join_keys"]],
            description=spec.get("description", ""),
            owner=spec.get("owner", ""),
            tags=spec.get("tags"),
        )
