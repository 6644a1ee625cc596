"""`FeatureService`: the named list of features one model consumes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from strato.definitions._naming import check_name, check_tags
from strato.definitions.feature_view import FeatureView, FeatureViewProjection
from strato.definitions.on_demand import OnDemandFeatureView, OnDemandProjection
from strato.errors import DefinitionError


@dataclass(frozen=True)
class FeatureService:
    """Features from one or more views that one model consumes, under one name.

    It is the unit of training-set generation and online serving: pass it where a list of
    feature references is accepted.

    >>> from strato import Entity, FeatureService, FeatureView, Field, Float64, Int64
    >>> user = Entity("user", join_keys={"user_id": Int64})
    >>> stats = FeatureView("user_stats", entities=[user], schema=[Field("a", Float64), Field("b", Float64)])
    >>> FeatureService("fraud_v1", features=[stats[["a"]]]).feature_refs
    ('user_stats:a',)
    """

    name: str
    features: tuple[tuple[str, tuple[str, ...]], ...]
    description: str = ""
    owner: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    version: int | None = None

    def __init__(
        self,
        name: str,
        features: Sequence[FeatureView | FeatureViewProjection | OnDemandFeatureView | OnDemandProjection | str],
        *,
        description: str = "",
        owner: str = "",
        tags: dict[str, str] | None = None,
        version: int | None = None,
    ):
        check_name("feature service", name)
        where = f"feature service {name!r}"
        selected: dict[str, list[str]] = {}
        for item in features:
            if isinstance(item, FeatureView):
                view, names = item.name, list(item.readable_names)
            elif isinstance(item, OnDemandFeatureView):
                view, names = item.name, list(item.feature_names)
            elif isinstance(item, (FeatureViewProjection, OnDemandProjection)):
                view, names = item.view.name, list(item.features)
            elif isinstance(item, str) and item.count(":") == 1:
                view, feature = item.split(":")
                names = [feature]
            else:
                raise DefinitionError(
                    f"{where}: features must be FeatureView, view[[...]] or 'view:feature' strings "
                    f"(or OnDemandFeatureView), got {item!r}"
                )
            bucket = selected.setdefault(view, [])
            bucket.extend(n for n in names if n not in bucket)
        if not selected:
            raise DefinitionError(f"{where}: needs at least one feature")
        set_ = object.__setattr__
        set_(self, "name", name)
        set_(self, "features", tuple((view, tuple(names)) for view, names in selected.items()))
        set_(self, "description", str(description))
        set_(self, "owner", str(owner))
        set_(self, "tags", check_tags(where, tags or {}))
        set_(self, "version", version)

    def __hash__(self) -> int:
        return hash((self.name, self.features))

    @property
    def feature_refs(self) -> tuple[str, ...]:
        """Every feature as a ``view:feature`` reference, in order."""
        return tuple(f"{view}:{name}" for view, names in self.features for name in names)

    def to_spec(self) -> dict[str, Any]:
        """Plain data for the registry (JSON-serializable)."""
        return {
            "name": self.name,
            "features": [{"view": view, "features": list(names)} for view, names in self.features],
            "description": self.description,
            "owner": self.owner,
            "tags": dict(self.tags),
        }

    @classmethod
    def from_spec(cls, spec: dict[str, Any], *, version: int | None = None) -> FeatureService:
        """Rebuild the object from `to_spec` data; the registry's decoder, validated like a new one."""
        refs = [f"{item['view']}:{name}" for item in spec["features"] for name in item["features"]]
        return cls(
            spec["name"],
            refs,
            description=spec.get("description", ""),
            owner=spec.get("owner", ""),
            tags=spec.get("tags"),
            version=version,
        )
