"""Lineage (issue 8, item 2): where a training set's columns came from, and who uses a view.

Everything is read from the registry: a training set records its service version and the
view and table versions it pinned; a service lists its views; a view names its entities and
its source. `lineage` turns that into a tree of `Node`s that the CLI prints.

* from a training set: its service, then each view (definition version, storage, table
  version read), then each view's source and entities; a spine view is listed too.
* from a service: its views and their sources, and the training sets built from it.
* from a view: its source (for a SqlSource, the views and files its query reads) and
  entities, the services that use it, the views computed from it, and the training sets
  that read it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from strato.definitions.feature_service import FeatureService
from strato.definitions.feature_view import FeatureView, FileSource, SqlSource
from strato.definitions.plan import split_view_ref
from strato.errors import NotFoundError, UserError
from strato.registry.base import RegistryStore, TrainingSetRecord
from strato.store.catalog import Catalog

KINDS = {
    "training-set": "training_set",
    "training_set": "training_set",
    "ts": "training_set",
    "service": "feature_service",
    "feature_service": "feature_service",
    "view": "feature_view",
    "feature_view": "feature_view",
}


@dataclass(frozen=True)
class Node:
    """One object in a lineage tree: `kind` (training_set, feature_service, feature_view,
    source, entity, group), a one-line `label`, and what it leads to."""

    kind: str
    label: str
    children: tuple[Node, ...] = ()


def lineage(catalog: Catalog, registry: RegistryStore, target: str) -> Node:
    """The lineage tree of `target`: ``KIND:NAME[@vN]`` (training-set, service, view) or a bare
    name, looked up as a training set, then a service, then a view."""
    kind, _, rest = target.partition(":") if ":" in target else ("", "", target)
    name, version = split_view_ref(rest)
    if kind:
        if kind not in KINDS:
            raise UserError(f"lineage {target!r}: unknown kind {kind!r}; use training-set:, service: or view:")
        return _by_kind(catalog, registry, KINDS[kind], name, version)
    for guess in ("training_set", "feature_service", "feature_view"):
        try:
            return _by_kind(catalog, registry, guess, name, version)
        except NotFoundError:
            continue
    raise NotFoundError(f"no training set, feature service or feature view is named {name!r}")


def _by_kind(catalog: Catalog, registry: RegistryStore, kind: str, name: str, version: int | None) -> Node:
    if kind == "training_set":
        return _training_set(catalog, registry.get_training_set(name, version=version))
    if kind == "feature_service":
        service = catalog.service(name, version=version)
        children = [_view(_pinned_view(catalog, v)) for v, _ in service.features]
        children += _training_sets_of(registry, lambda r: r.service == service.name)
        return Node("feature_service", f"feature service {service.name} v{service.version}", tuple(children))
    fv = catalog.view(name, version=version)
    users = [
        Node("feature_service", f"feature service {s.name} v{s.version}")
        for s in registry.list("feature_service")
        if isinstance(s, FeatureService) and any(split_view_ref(v)[0] == fv.name for v, _ in s.features)
    ]
    node = _view(fv)
    used_by = _training_sets_of(registry, lambda r: any(t.view == fv.name for t in r.tables))
    computed_from = [
        Node("feature_view", f"feature view {v.name} v{v.version}")
        for v in registry.list("feature_view")
        if isinstance(v, FeatureView) and isinstance(v.source, SqlSource) and fv.name in v.source.view_names
    ]
    groups = []
    if users:
        groups.append(Node("group", "used by services", tuple(users)))
    if computed_from:
        groups.append(Node("group", "read by batch transformations", tuple(computed_from)))
    if used_by:
        groups.append(Node("group", "read by training sets", tuple(used_by)))
    return Node(node.kind, node.label, node.children + tuple(groups))


def _training_set(catalog: Catalog, record: TrainingSetRecord) -> Node:
    spine_view = split_view_ref(record.spine["view"])[0] if record.spine.get("view") else None
    views = []
    for table in record.tables:
        fv = catalog.view(table.view, version=table.view_version)
        read = "no data yet" if table.table_version is None else f"table version {table.table_version}"
        role = " (spine)" if fv.name == spine_view else ""
        base = _view(fv)
        views.append(Node(base.kind, f"{base.label}{role} · {table.table} @ {read}", base.children))
    service = Node("feature_service", f"feature service {record.service} v{record.service_version}", tuple(views))
    when = record.created_at.strftime("%Y-%m-%d %H:%M UTC") if record.created_at else "?"
    label = f"training set {record.name} v{record.version} · {record.row_count:,} rows · {when} by {record.author}"
    return Node("training_set", label, (service,))


def _pinned_view(catalog: Catalog, ref: str) -> FeatureView:
    name, version = split_view_ref(ref)
    return catalog.view(name, version=version)


def _view(fv: FeatureView) -> Node:
    if isinstance(fv.source, FileSource):
        source = Node("source", f"source {fv.source.path} ({fv.source.format})")
    elif isinstance(fv.source, SqlSource):
        reads = [Node("feature_view", f"feature view {name}") for name in fv.source.view_names]
        reads += [Node("source", f"file {f.name} = {f.path} ({f.format})") for f in fv.source.files]
        source = Node("source", f"source sql transformation {fv.source.fingerprint}", tuple(reads))
    elif fv.source is not None:  # a KafkaSource
        source = Node("source", f"source kafka topic {fv.source.topic} ({fv.source.format})")
    else:
        source = Node("source", "source: rows written by store.write / strato write")
    entities = tuple(Node("entity", f"entity {e.name} ({', '.join(k.name for k in e.join_keys)})") for e in fv.entities)
    return Node("feature_view", f"feature view {fv.name} v{fv.version}", (source, *entities))


def _training_sets_of(registry: RegistryStore, wanted: Callable[[TrainingSetRecord], bool]) -> list[Node]:
    return [
        Node("training_set", f"training set {r.name} v{r.version} · {r.row_count:,} rows")
        for r in registry.list_training_sets()
        if wanted(r)
    ]
