"""Small definitions and an `apply` helper shared by the registry contract tests."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Protocol

from strato.definitions.entity import Entity
from strato.definitions.feature_service import FeatureService
from strato.definitions.feature_view import FeatureView
from strato.definitions.field import Field
from strato.definitions.plan import Definition, ObjectKind, make_plan
from strato.registry.base import RegistryStore, Revision


class OpenRegistry(Protocol):
    """The `open_registry` fixture: the backend under test on the test's database, for a project."""

    def __call__(self, project: str = ...) -> RegistryStore: ...


USER = Entity("user", join_keys={"user_id": "int64"}, description="a customer")
CARD = Entity("card", join_keys={"card_id": "string"})


def view(*fields: tuple[str, str], name: str = "user_stats", entity: Entity = USER, **options: object) -> FeatureView:
    """A view of `fields` (name, dtype) about `entity`; by default one float feature `amount`."""
    schema = [Field(n, t) for n, t in (fields or (("amount", "float64"),))]
    options.setdefault("ttl", timedelta(days=1))
    return FeatureView(name, entities=[entity], schema=schema, **options)  # type: ignore[arg-type]


def service(*refs: str, name: str = "fraud") -> FeatureService:
    return FeatureService(name, list(refs or ("user_stats:amount",)))


def apply(
    registry: RegistryStore,
    objects: Iterable[Definition],
    *,
    new_version: Sequence[str] = (),
    delete: Sequence[tuple[ObjectKind, str]] = (),
    author: str = "alice",
) -> list[Revision]:
    """Plan `objects` against the registry and apply the plan, as `FeatureStore.apply` does."""
    plan = make_plan(objects, registry.current(), new_version=new_version, delete=delete)
    return registry.apply(plan, author=author)
