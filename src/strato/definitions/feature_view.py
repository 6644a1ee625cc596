"""`FeatureView`: a named, versioned, typed table of features about one or more entities."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

from strato.definitions._naming import RESERVED_COLUMNS, check_name, check_tags
from strato.definitions.aggregation import Aggregation, check_aggregations
from strato.definitions.batch_source import FileFormat, FileSource, SqlSource
from strato.definitions.entity import Entity
from strato.definitions.field import Field
from strato.definitions.kafka_source import KafkaSource
from strato.errors import DefinitionError

__all__ = ["QUARANTINE_COLUMNS", "FeatureView", "FeatureViewProjection", "FileFormat", "FileSource", "SqlSource"]

OnInvalid = Literal["reject", "quarantine"]
QUARANTINE_COLUMNS = ("quarantine_reason", "quarantined_at")
"""The columns a quarantine table adds to the written ones: why each row was set aside, and when."""


@dataclass(frozen=True)
class FeatureView:
    """A named, versioned table of features about one or more entities.

    Rows are keyed by the entities' join keys and stamped with an event time (the
    column named by `timestamp_field` in written frames). With a `ttl`, a value older
    than `ttl` is treated as missing, both online and in point-in-time joins.

    `version` and `data_version` are set by the registry on `apply`: `version` counts every
    change; `data_version` names the version whose storage this one shares (it moves only
    when a breaking change is applied as a new version).

    `created_timestamp_column` (Feast's name) names a column of written frames holding the
    rows' own ingestion time. It is stored as each row's created time instead of the write
    time, every row of a batch is kept in history, and ties at equal (keys, event time) go
    to the greater created time, offline and online alike (design rule 10).

    `source`: a `FileSource` (`store.ingest` reads it), a `KafkaSource` (`strato ingest`), or a
    `SqlSource`: the view is then computed by a query over other views and named files, over
    the event times not computed yet (`store.backfill`, `strato backfill`); it needs history
    (offline=True), and may not read itself.

    Data quality: each field's `Expect` rules, and `unique_events` (each (keys, event time)
    at most once per batch), are checked on every write. A batch that breaks one is refused
    whole (`on_invalid="reject"`, the default), or its offending rows are set aside in the
    view's quarantine table and the rest written (`on_invalid="quarantine"`).

    >>> from datetime import timedelta
    >>> from strato import Entity, FeatureView, Field, Float64, Int64
    >>> user = Entity("user", join_keys={"user_id": Int64})
    >>> stats = FeatureView("user_stats", entities=[user], ttl=timedelta(days=7),
    ...                     schema=[Field("amount_mean_7d", Float64)])
    >>> stats.feature_names
    ('amount_mean_7d',)
    """

    name: str
    entities: tuple[Entity, ...]
    schema: tuple[Field, ...]
    ttl: timedelta | None = None
    source: FileSource | KafkaSource | SqlSource | None = None
    timestamp_field: str = "event_timestamp"
    online: bool = True
    offline: bool = True
    description: str = ""
    owner: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    version: int | None = None
    data_version: int | None = None
    created_timestamp_column: str | None = None
    on_invalid: OnInvalid = "reject"
    unique_events: bool = False
    aggregations: tuple[Aggregation, ...] = ()
    allowed_lateness: timedelta | None = None

    def __init__(
        self,
        name: str,
        *,
        entities: Sequence[Entity],
        schema: Sequence[Field],
        ttl: timedelta | None = None,
        source: FileSource | KafkaSource | SqlSource | None = None,
        timestamp_field: str = "event_timestamp",
        online: bool = True,
        offline: bool = True,
        description: str = "",
        owner: str = "",
        tags: dict[str, str] | None = None,
        version: int | None = None,
        data_version: int | None = None,
        created_timestamp_column: str | None = None,
        on_invalid: OnInvalid = "reject",
        unique_events: bool = False,
        aggregations: Sequence[Aggregation] = (),
        allowed_lateness: timedelta | None = None,
    ):
        check_name("feature view", name)
        where = f"feature view {name!r}"
        if not isinstance(entities, Sequence) or not entities or not all(isinstance(e, Entity) for e in entities):
            raise DefinitionError(f"{where}: entities must be a non-empty list of Entity")
        key_fields: dict[str, Field] = {}
        for entity in entities:
            for key in entity.join_keys:
                if key.name in key_fields and key_fields[key.name].dtype != key.dtype:
                    raise DefinitionError(f"{where}: join key {key.name!r} has two different types")
                key_fields[key.name] = key
        if not isinstance(schema, Sequence) or not all(isinstance(f, Field) for f in schema):
            raise DefinitionError(f"{where}: schema must be a list of Field")
        features: list[Field] = []
        seen: set[str] = set()
        for feature in schema:
            if feature.name in key_fields:
                # Feast lets the schema repeat join keys; accept it when the types agree.
                if feature.dtype != key_fields[feature.name].dtype:
                    raise DefinitionError(
                        f"{where}: field {feature.name!r} is a join key of type "
                        f"{key_fields[feature.name].dtype}, but the schema says {feature.dtype}"
                    )
                continue
            if feature.name in seen:
                raise DefinitionError(f"{where}: field {feature.name!r} appears twice in the schema")
            if feature.name in RESERVED_COLUMNS or feature.name == timestamp_field:
                raise DefinitionError(f"{where}: field {feature.name!r} is a reserved column name")
            seen.add(feature.name)
            features.append(feature)
        if not features:
            raise DefinitionError(f"{where}: schema needs at least one feature besides the join keys")
        check_name("timestamp_field", timestamp_field, where=where)
        if timestamp_field in key_fields:
            raise DefinitionError(f"{where}: timestamp_field {timestamp_field!r} is also a join key")
        if created_timestamp_column is not None:
            check_name("created_timestamp_column", created_timestamp_column, where=where)
            taken = {*key_fields, *seen, timestamp_field, "event_timestamp"}
            if created_timestamp_column in taken:
                raise DefinitionError(
                    f"{where}: created_timestamp_column {created_timestamp_column!r} is already "
                    "a join key, a feature or the event time column"
                )
        if ttl is not None and (not isinstance(ttl, timedelta) or ttl <= timedelta(0)):
            raise DefinitionError(f"{where}: ttl must be a positive timedelta or None, got {ttl!r}")
        if source is not None and not isinstance(source, (FileSource, KafkaSource, SqlSource)):
            raise DefinitionError(f"{where}: source must be a FileSource, a KafkaSource, a SqlSource or None")
        if isinstance(source, SqlSource):
            if not offline:
                raise DefinitionError(f"{where}: a SqlSource view needs offline=True: its computed rows are history")
            if name in source.view_names:
                raise DefinitionError(f"{where}: its SqlSource reads the view itself")
        if not (online or offline):
            raise DefinitionError(f"{where}: a view must be online, offline or both")
        if on_invalid not in ("reject", "quarantine"):
            raise DefinitionError(f"{where}: on_invalid must be 'reject' or 'quarantine', got {on_invalid!r}")
        if on_invalid == "quarantine":
            clash = [f.name for f in features if f.name in QUARANTINE_COLUMNS]
            if clash:
                raise DefinitionError(
                    f"{where}: a quarantining view cannot have fields named {clash}: they are the quarantine table's own"
                )
        if not isinstance(unique_events, bool):
            raise DefinitionError(f"{where}: unique_events must be True or False, got {unique_events!r}")
        if unique_events and created_timestamp_column is not None:
            raise DefinitionError(
                f"{where}: unique_events contradicts created_timestamp_column, which keeps every row of an event"
            )
        for attr, value in (("version", version), ("data_version", data_version)):
            if value is not None and (not isinstance(value, int) or value < 1):
                raise DefinitionError(f"{where}: {attr} must be a positive integer, got {value!r}")
        # Windowed aggregates of raw features (docs/concepts.md, "Windowed aggregations").
        taken = {*key_fields, *seen, timestamp_field}
        aggregations = check_aggregations(where, aggregations, features, taken, allowed_lateness)
        set_ = object.__setattr__
        set_(self, "name", name)
        set_(self, "entities", tuple(entities))
        set_(self, "schema", tuple(features))
        set_(self, "ttl", ttl)
        set_(self, "source", source)
        set_(self, "timestamp_field", timestamp_field)
        set_(self, "online", bool(online))
        set_(self, "offline", bool(offline))
        set_(self, "description", str(description))
        set_(self, "owner", str(owner))
        set_(self, "tags", check_tags(where, tags or {}))
        set_(self, "version", version)
        set_(self, "data_version", data_version)
        set_(self, "created_timestamp_column", created_timestamp_column)
        set_(self, "on_invalid", on_invalid)
        set_(self, "unique_events", unique_events)
        set_(self, "aggregations", aggregations)
        set_(self, "allowed_lateness", allowed_lateness)

    def __hash__(self) -> int:
        return hash((self.name, self.version))

    def __getitem__(self, features: Sequence[str]) -> FeatureViewProjection:
        """Select some features, Feast style: ``view[["a", "b"]]``."""
        return FeatureViewProjection(self, tuple(features))

    @property
    def join_keys(self) -> tuple[Field, ...]:
        """The join keys of all the view's entities, in order."""
        seen: dict[str, Field] = {}
        for entity in self.entities:
            for key in entity.join_keys:
                seen.setdefault(key.name, key)
        return tuple(seen.values())

    @property
    def join_key_names(self) -> tuple[str, ...]:
        """The join keys' names, in order."""
        return tuple(k.name for k in self.join_keys)

    @property
    def feature_names(self) -> tuple[str, ...]:
        """The features' names, in schema order."""
        return tuple(f.name for f in self.schema)

    @property
    def aggregation_names(self) -> tuple[str, ...]:
        """The names of the view's windowed aggregates, readable as features."""
        return tuple(a.name for a in self.aggregations)

    @property
    def readable_names(self) -> tuple[str, ...]:
        """Everything a feature reference may name: the features, then the aggregates."""
        return self.feature_names + self.aggregation_names

    def feature(self, name: str) -> Field:
        """One feature's `Field`; a `DefinitionError` if the view has no feature of that name."""
        for f in self.schema:
            if f.name == name:
                return f
        raise DefinitionError(f"feature view {self.name!r} has no feature {name!r}")

    @property
    def table_name(self) -> str:
        """Storage name shared by the offline table and the online keyspace of this version."""
        return f"{self.name}__v{self.data_version or 1}"

    def with_versions(self, version: int, data_version: int) -> FeatureView:
        """A copy stamped with registry versions (what `apply` stores)."""
        return dataclasses.replace(self, version=version, data_version=data_version)

    def to_spec(self) -> dict[str, Any]:
        """The definition as plain data; registry-assigned versions are left out."""
        return {
            "name": self.name,
            "entities": [e.name for e in self.entities],
            "schema": [f.to_spec() for f in self.schema],
            "ttl_seconds": self.ttl.total_seconds() if self.ttl is not None else None,
            "source": self.source.to_spec() if self.source else None,
            "timestamp_field": self.timestamp_field,
            "online": self.online,
            "offline": self.offline,
            "description": self.description,
            "owner": self.owner,
            "tags": dict(self.tags),
        } | _optional_spec(self)

    @classmethod
    def from_spec(
        cls,
        spec: dict[str, Any],
        entities: dict[str, Entity],
        *,
        version: int | None = None,
        data_version: int | None = None,
    ) -> FeatureView:
        """Rebuild the object from `to_spec` data; the registry's decoder, validated like a new one."""
        missing = [e for e in spec["entities"] if e not in entities]
        if missing:
            raise DefinitionError(f"feature view {spec['name']!r} refers to unknown entities {missing}")
        source = spec.get("source")
        return cls(
            spec["name"],
            entities=[entities[e] for e in spec["entities"]],
            schema=[Field.from_spec(f) for f in spec["schema"]],
            ttl=timedelta(seconds=spec["ttl_seconds"]) if spec.get("ttl_seconds") is not None else None,
            source=_source_from_spec(source),
            timestamp_field=spec.get("timestamp_field", "event_timestamp"),
            online=spec.get("online", True),
            offline=spec.get("offline", True),
            description=spec.get("description", ""),
            owner=spec.get("owner", ""),
            tags=spec.get("tags"),
            version=version,
            data_version=data_version,
            created_timestamp_column=spec.get("created_timestamp_column"),
            on_invalid=spec.get("on_invalid", "reject"),
            unique_events=spec.get("unique_events", False),
            aggregations=[Aggregation.from_spec(a) for a in spec.get("aggregations", ())],
            allowed_lateness=(
                timedelta(seconds=spec["allowed_lateness_seconds"])
                if spec.get("allowed_lateness_seconds") is not None
                else None
            ),
        )

    @property
    def has_expectations(self) -> bool:
        """Whether a write must run the data-quality pass (any field rule, or unique_events)."""
        return self.unique_events or any(f.expect is not None for f in self.schema)


def _optional_spec(view: FeatureView) -> dict[str, Any]:
    """Spec entries written only when set, so a view that does not use them keeps the spec
    (and the registry fingerprint) it had before they existed."""
    spec: dict[str, Any] = {}
    if view.created_timestamp_column:
        spec["created_timestamp_column"] = view.created_timestamp_column
    if view.on_invalid != "reject":
        spec["on_invalid"] = view.on_invalid
    if view.unique_events:
        spec["unique_events"] = True
    if view.aggregations:
        spec["aggregations"] = [a.to_spec() for a in view.aggregations]
        lateness = view.allowed_lateness
        spec["allowed_lateness_seconds"] = lateness.total_seconds() if lateness is not None else None
    return spec


def _source_from_spec(spec: dict[str, Any] | None) -> FileSource | KafkaSource | SqlSource | None:
    if not spec:
        return None
    if spec.get("type") == "kafka":
        return KafkaSource.from_spec(spec)
    if spec.get("type") == "sql":
        return SqlSource.from_spec(spec)
    return FileSource.from_spec(spec)


@dataclass(frozen=True)
class FeatureViewProjection:
    """Some features of one view, as selected by ``view[["a", "b"]]``."""

    view: FeatureView
    features: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.features:
            raise DefinitionError(f"selection of feature view {self.view.name!r} is empty")
        for name in self.features:
            if name not in self.view.aggregation_names:
                self.view.feature(name)
