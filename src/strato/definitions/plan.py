"""The diff between the definitions in a feature repo and those in the registry.

`make_plan` is pure: it decides, for each object, whether applying it adds it, leaves it
alone, changes it compatibly (same storage, new version), or breaks it (refused unless a new
version is asked for, which then gets fresh storage). Deleting is never implied by absence:
it must be asked for by name.
"""

from __future__ import annotations

import enum
import hashlib
import json
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from strato.definitions.entity import Entity
from strato.definitions.feature_service import FeatureService
from strato.definitions.feature_view import FeatureView, SqlSource
from strato.definitions.field import Field
from strato.definitions.on_demand import OnDemandFeatureView
from strato.errors import BreakingChangeError, DefinitionError
from strato.types import DType

Definition = Entity | FeatureView | FeatureService | OnDemandFeatureView
ObjectKind = Literal["entity", "feature_view", "feature_service", "on_demand_feature_view"]
OBJECT_KINDS: tuple[ObjectKind, ...] = ("entity", "feature_view", "feature_service", "on_demand_feature_view")


def kind_of(obj: Definition) -> ObjectKind:
    if isinstance(obj, Entity):
        return "entity"
    if isinstance(obj, FeatureView):
        return "feature_view"
    if isinstance(obj, FeatureService):
        return "feature_service"
    if isinstance(obj, OnDemandFeatureView):
        return "on_demand_feature_view"
    raise DefinitionError(f"not a Strato definition: {obj!r}")


class Action(enum.StrEnum):
    ADD = "add"
    UNCHANGED = "unchanged"
    UPDATE = "update"  # compatible: a new version sharing the old storage
    NEW_VERSION = "new version"  # breaking, asked for: a new version with fresh storage
    BREAKING = "breaking"  # breaking, not asked for: apply refuses the whole plan
    DELETE = "delete"


@dataclass(frozen=True)
class Change:
    kind: ObjectKind
    name: str
    action: Action
    details: tuple[str, ...] = ()
    definition: Definition | None = None

    def describe(self) -> str:
        text = f"{self.action.value:<11} {self.kind.replace('_', ' ')} {self.name}"
        return text + (f": {'; '.join(self.details)}" if self.details else "")


@dataclass(frozen=True)
class Basis:
    """What the registry held for one object when a plan was made: its `fingerprint`, or
    None if it did not exist. Apply compares it with the registry, inside its transaction."""

    kind: ObjectKind
    name: str
    fingerprint: str | None
    version: int | None = None


@dataclass(frozen=True)
class Plan:
    """The changes an apply would make, and the registry state they were decided against.

    `basis` covers every object the plan touches or depends on (a changed view's entities,
    a changed service's views). Applying a plan whose basis no longer matches the registry
    is refused (`ConflictError`), so a stale plan can never revert someone else's change.
    A hand-made plan without a basis is checked only by re-planning its actions.
    """

    changes: tuple[Change, ...] = field(default_factory=tuple)
    basis: tuple[Basis, ...] = ()

    @property
    def has_changes(self) -> bool:
        return any(c.action is not Action.UNCHANGED for c in self.changes)

    @property
    def breaking(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.action is Action.BREAKING)

    def raise_if_breaking(self) -> None:
        if self.breaking:
            lines = "; ".join(c.describe() for c in self.breaking)
            raise BreakingChangeError(
                f"refusing a breaking change ({lines}). Apply it as a new version "
                "(strato apply --new-version NAME, or store.apply(..., new_version=[NAME])); "
                "the old version's data stays readable as NAME@vN."
            )


def fingerprint(obj: Definition | None) -> str | None:
    """A digest of a stored definition: its spec and registry versions (None if absent).

    Versions count, not only content: a view deleted and re-added with the same spec has
    new storage, and a plan made before that must not apply after it.
    """
    if obj is None:
        return None
    data = {
        "kind": kind_of(obj),
        "spec": obj.to_spec(),
        "version": getattr(obj, "version", None),
        "data_version": getattr(obj, "data_version", None),
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:32]


_PINNED = re.compile(r"(?P<view>[A-Za-z_]\w*)(?:@v(?P<version>\d+))?")


def split_view_ref(view: str) -> tuple[str, int | None]:
    """``"user_stats@v2"`` → ``("user_stats", 2)``; ``"user_stats"`` → ``("user_stats", None)``.

    A feature service names its views this way: a pinned one keeps reading that version
    (and its storage) after the view moves on, until the service is changed.
    """
    match = _PINNED.fullmatch(view)
    if match is None:
        return view, None
    return match["view"], int(match["version"]) if match["version"] else None


def _basis(
    keys: Iterable[tuple[ObjectKind, str]], current: Mapping[tuple[ObjectKind, str], Definition]
) -> tuple[Basis, ...]:
    unique = dict.fromkeys(keys)
    return tuple(
        Basis(kind, name, fingerprint(current.get((kind, name))), getattr(current.get((kind, name)), "version", None))
        for kind, name in unique
    )


def _depends_on(obj: Definition, objects: Mapping[tuple[ObjectKind, str], Definition]) -> list[tuple[ObjectKind, str]]:
    """The objects whose stored state `obj`'s change was decided with."""
    if isinstance(obj, FeatureView):
        return [("entity", e.name) for e in obj.entities]
    if isinstance(obj, FeatureService):
        names = [split_view_ref(view)[0] for view, _ in obj.features]
        return [
            ("on_demand_feature_view", n) if ("on_demand_feature_view", n) in objects else ("feature_view", n)
            for n in names
        ]
    if isinstance(obj, OnDemandFeatureView):
        return [("feature_view", s.view) for s in obj.view_inputs]
    return []


def _key_signature(keys: Iterable[Field]) -> tuple[tuple[str, DType], ...]:
    """What storage depends on in join keys: names, types and order, not descriptions or tags."""
    return tuple((k.name, k.dtype) for k in keys)


def _view_diff(old: FeatureView, new: FeatureView) -> tuple[list[str], list[str]]:
    """(compatible changes, breaking changes) between two versions of a view."""
    compatible: list[str] = []
    breaking: list[str] = []
    if _key_signature(old.join_keys) != _key_signature(new.join_keys):
        breaking.append(f"join keys {list(old.join_key_names)} -> {list(new.join_key_names)}")
    old_fields = {f.name: f for f in old.schema}
    new_fields = {f.name: f for f in new.schema}
    for name, f in old_fields.items():
        if name not in new_fields:
            breaking.append(f"removes field {name}")
        elif new_fields[name].dtype != f.dtype:
            breaking.append(f"retypes field {name} {f.dtype} -> {new_fields[name].dtype}")
        elif new_fields[name] != f or new_fields[name].to_spec() != f.to_spec():
            compatible.append(f"updates field {name}")
    compatible.extend(f"adds field {name}" for name in new_fields if name not in old_fields)
    old_spec, new_spec = old.to_spec(), new.to_spec()
    attrs = ("ttl_seconds", "source", "timestamp_field", "online", "offline", "description", "owner", "tags")
    # Entries a spec leaves out when they hold their default (FeatureView._optional_spec).
    defaults = {
        "created_timestamp_column": None,
        "on_invalid": "reject",
        "unique_events": False,
        "aggregations": None,
        "allowed_lateness_seconds": None,
    }
    for attr in (*attrs, *defaults):
        before, after = old_spec.get(attr, defaults.get(attr)), new_spec.get(attr, defaults.get(attr))
        if before != after:
            if attr == "source" and isinstance(old.source, SqlSource) and isinstance(new.source, SqlSource):
                compatible.append(_sql_source_diff(old.source, new.source))
                continue
            compatible.append(f"{attr} {before!r} -> {after!r}")
    if old_spec["entities"] != new_spec["entities"] and not breaking:
        compatible.append(f"entities {old_spec['entities']} -> {new_spec['entities']}")
    return compatible, breaking


def _sql_source_diff(old: SqlSource, new: SqlSource) -> str:
    """A changed batch transformation, readably: its fingerprint, and which parts changed.

    The new fingerprint has computed nothing yet: the next backfill computes its range again.
    """
    parts = []
    if old.query != new.query:
        parts.append("query")
    if old.inputs != new.inputs:
        parts.append(f"inputs {list(old.view_names + old.file_names)} -> {list(new.view_names + new.file_names)}")
    return f"SqlSource {' and '.join(parts) or 'changed'} (fingerprint {old.fingerprint} -> {new.fingerprint})"


def _on_demand_diff(old: OnDemandFeatureView, new: OnDemandFeatureView) -> list[str]:
    """What changed in an on-demand view, readably (the function as its fingerprint, not its text).

    Every change is compatible: the view has no storage, so a new version just computes
    differently from then on.
    """
    details: list[str] = []
    if old.udf_ref.fingerprint != new.udf_ref.fingerprint:
        details.append(
            f"function changed (fingerprint {old.udf_ref.fingerprint[:12]} -> {new.udf_ref.fingerprint[:12]})"
        )
    elif (old.udf_ref.module, old.udf_ref.qualname) != (new.udf_ref.module, new.udf_ref.qualname):
        details.append(
            f"function moved {old.udf_ref.module}.{old.udf_ref.qualname} -> {new.udf_ref.module}.{new.udf_ref.qualname}"
        )
    old_fields = {f.name: f for f in old.schema}
    new_fields = {f.name: f for f in new.schema}
    for name, f in old_fields.items():
        if name not in new_fields:
            details.append(f"removes output {name}")
        elif new_fields[name].to_spec() != f.to_spec():
            details.append(f"updates output {name}")
    details.extend(f"adds output {name}" for name in new_fields if name not in old_fields)
    old_spec, new_spec = old.to_spec(), new.to_spec()
    for attr in ("sources", "mode", "singleton", "description", "owner", "tags"):
        if old_spec.get(attr) != new_spec.get(attr):
            shown = "changed" if attr == "sources" else f"{old_spec.get(attr)!r} -> {new_spec.get(attr)!r}"
            details.append(f"{attr} {shown}")
    return details


def _describe_keys(keys: Iterable[Field]) -> str:
    return "[" + ", ".join(f"{k.name}: {k.dtype}" for k in keys) + "]"


def _generic_diff(old: Definition, new: Definition) -> list[str]:
    old_spec, new_spec = old.to_spec(), new.to_spec()
    return [f"{k} {old_spec.get(k)!r} -> {new_spec.get(k)!r}" for k in new_spec if old_spec.get(k) != new_spec.get(k)]


def make_plan(
    desired: Iterable[Definition],
    current: Mapping[tuple[ObjectKind, str], Definition],
    *,
    new_version: Collection[str] = (),
    delete: Collection[tuple[ObjectKind, str]] = (),
) -> Plan:
    """Diff `desired` against `current` (the registry's latest versions).

    `new_version` names views whose breaking change is wanted as a new version; `delete`
    names objects to remove. Objects in `current` but not in `desired` are left alone.
    """
    wanted: dict[tuple[ObjectKind, str], Definition] = {}
    for obj in desired:
        key = (kind_of(obj), obj.name)
        if key in wanted:
            raise DefinitionError(f"{key[0].replace('_', ' ')} {obj.name!r} is defined twice")
        wanted[key] = obj
    delete = list(dict.fromkeys(delete))  # naming an object twice deletes it once
    for key in delete:
        if key in wanted:
            raise DefinitionError(f"{key[0].replace('_', ' ')} {key[1]!r} is both defined and asked to be deleted")
        if key not in current:
            raise DefinitionError(f"cannot delete {key[0].replace('_', ' ')} {key[1]!r}: it is not in the registry")

    after = {k: v for k, v in current.items() if k not in delete} | wanted
    _check_references(after)

    changes: list[Change] = []
    for key, obj in wanted.items():
        kind, name = key
        old = current.get(key)
        if old is None:
            changes.append(Change(kind, name, Action.ADD, definition=obj))
            continue
        if isinstance(obj, FeatureView):
            assert isinstance(old, FeatureView)
            compatible, breaking = _view_diff(old, obj)
            if breaking:
                action = Action.NEW_VERSION if name in new_version else Action.BREAKING
                changes.append(Change(kind, name, action, tuple(breaking + compatible), obj))
            elif name in new_version:
                changes.append(Change(kind, name, Action.NEW_VERSION, tuple(compatible), obj))
            elif compatible:
                changes.append(Change(kind, name, Action.UPDATE, tuple(compatible), obj))
            else:
                changes.append(Change(kind, name, Action.UNCHANGED, definition=obj))
            continue
        if isinstance(obj, OnDemandFeatureView):
            assert isinstance(old, OnDemandFeatureView)
            details = _on_demand_diff(old, obj)
            changes.append(Change(kind, name, Action.UPDATE if details else Action.UNCHANGED, tuple(details), obj))
            continue
        details = _generic_diff(old, obj)
        if (
            isinstance(obj, Entity)
            and isinstance(old, Entity)
            and _key_signature(obj.join_keys) != _key_signature(old.join_keys)
        ):
            changes.append(Change(kind, name, Action.BREAKING, ("changes join keys", *details), obj))
        elif details:
            changes.append(Change(kind, name, Action.UPDATE, tuple(details), obj))
        else:
            changes.append(Change(kind, name, Action.UNCHANGED, definition=obj))
    changes.extend(Change(kind, name, Action.DELETE) for kind, name in delete)
    touched = [(c.kind, c.name) for c in changes]
    depends = [key for obj in wanted.values() for key in _depends_on(obj, after)]
    plan = Plan(tuple(changes), _basis([*touched, *depends], current))
    if not plan.breaking:  # a changed entity's keys are reported as breaking, not as a mismatch
        _check_entity_keys(after)
    return plan


def _check_entity_keys(objects: Mapping[tuple[ObjectKind, str], Definition]) -> None:
    """Each view's entities must have the join keys of the entities defined under their names.

    The registry stores a view's entities by name and resolves them on load, so a view built
    with a stale or different `Entity` object would silently come back with other keys.
    """
    for name, view in ((n, v) for (_, n), v in objects.items() if isinstance(v, FeatureView)):
        for entity in view.entities:
            defined = objects.get(("entity", entity.name))
            if isinstance(defined, Entity) and _key_signature(defined.join_keys) != _key_signature(entity.join_keys):
                raise DefinitionError(
                    f"feature view {name!r} uses entity {entity.name!r} with join keys "
                    f"{_describe_keys(entity.join_keys)}, but entity {entity.name!r} is defined with "
                    f"{_describe_keys(defined.join_keys)}"
                )


def _check_references(objects: Mapping[tuple[ObjectKind, str], Definition]) -> None:
    """Every view's entities and every service's features must exist after the plan."""
    for (kind, name), obj in objects.items():
        if isinstance(obj, FeatureView):
            for entity in obj.entities:
                if ("entity", entity.name) not in objects:
                    raise DefinitionError(f"feature view {name!r} uses entity {entity.name!r}, which is not defined")
            if isinstance(obj.source, SqlSource):
                _check_sql_inputs(obj, objects)
        elif isinstance(obj, OnDemandFeatureView):
            _check_on_demand_sources(obj, objects)
        elif isinstance(obj, FeatureService):
            for ref, features in obj.features:
                view_name, pinned = split_view_ref(ref)
                on_demand = objects.get(("on_demand_feature_view", view_name))
                if isinstance(on_demand, OnDemandFeatureView):
                    if pinned is not None:
                        raise DefinitionError(
                            f"feature service {name!r} pins on-demand feature view {view_name!r}; "
                            "on-demand views cannot be pinned to a version"
                        )
                    unknown = [f for f in features if f not in on_demand.feature_names]
                    if unknown:
                        raise DefinitionError(
                            f"feature service {name!r} uses {ref}:{unknown[0]}, but the on-demand view has no such feature"
                        )
                    continue
                view = objects.get(("feature_view", view_name))
                if not isinstance(view, FeatureView):
                    raise DefinitionError(
                        f"feature service {name!r} uses feature view {view_name!r}, which is not defined"
                    )
                if pinned is not None and pinned != view.version:
                    continue  # an older version: the registry checks it, holding every version
                for feature in features:
                    if feature not in view.readable_names:
                        raise DefinitionError(
                            f"feature service {name!r} uses {ref}:{feature}, but the view has no such feature"
                        )
        elif kind == "entity":
            continue


def _check_sql_inputs(view: FeatureView, objects: Mapping[tuple[ObjectKind, str], Definition]) -> None:
    """A batch transformation reads views that exist and have history, and no view reads
    itself through others (each backfill would wait for its own result)."""
    where = f"feature view {view.name!r}"
    assert isinstance(view.source, SqlSource)
    for input_name in view.source.view_names:
        source = objects.get(("feature_view", input_name))
        if not isinstance(source, FeatureView):
            raise DefinitionError(f"{where}: its SqlSource reads feature view {input_name!r}, which is not defined")
        if not source.offline:
            raise DefinitionError(
                f"{where}: its SqlSource reads feature view {input_name!r}, which is online only (no history)"
            )
    found = _cycle_from([view.name], objects)  # depth-first; a name seen twice on one path
    if found is not None:
        raise DefinitionError(f"{where}: its SqlSource inputs form a cycle {' -> '.join(found)}")


def _cycle_from(path: list[str], objects: Mapping[tuple[ObjectKind, str], Definition]) -> list[str] | None:
    current = objects.get(("feature_view", path[-1]))
    if not isinstance(current, FeatureView) or not isinstance(current.source, SqlSource):
        return None
    for name in current.source.view_names:
        if name in path:
            return [*path, name]
        found = _cycle_from([*path, name], objects)
        if found is not None:
            return found
    return None


def _check_on_demand_sources(odfv: OnDemandFeatureView, objects: Mapping[tuple[ObjectKind, str], Definition]) -> None:
    """An on-demand view's source views must exist, with its input features at the same types,
    and its name must not also be a feature view's (``name:feature`` would be ambiguous)."""
    where = f"on-demand feature view {odfv.name!r}"
    if ("feature_view", odfv.name) in objects:
        raise DefinitionError(f"{where}: a feature view has the same name; feature references would be ambiguous")
    for source in odfv.view_inputs:
        view = objects.get(("feature_view", source.view))
        if not isinstance(view, FeatureView):
            raise DefinitionError(f"{where} reads feature view {source.view!r}, which is not defined")
        for feature in source.features:
            if feature.name not in view.feature_names:
                raise DefinitionError(f"{where} reads {source.view}:{feature.name}, but the view has no such feature")
            if view.feature(feature.name).dtype != feature.dtype:
                raise DefinitionError(
                    f"{where} reads {source.view}:{feature.name} as {feature.dtype}, "
                    f"but the view now declares {view.feature(feature.name).dtype}"
                )
