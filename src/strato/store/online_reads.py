"""`get_online_features`, the hot path: a cached plan per request, one engine call for all
its views (`OnlineStore.read_tables`), values decoded only when the caller converts the response.

A plan (views, codecs, output columns) is built once per feature list and reused until the
catalog's definitions change (`Catalog.generation`), so a long-running server follows another
process's `apply` within `catalog.RECHECK_SECONDS`. Values written under an earlier
compatible schema are upgraded on the way out (design rule 6).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from strato import clock
from strato.access import Resource
from strato.definitions.feature_service import FeatureService
from strato.definitions.feature_view import FeatureView
from strato.errors import BackendFailure, UserError
from strato.online.base import OnlineStore
from strato.online.codec import ViewCodec
from strato.online.response import FeatureGather, OnlineResponse, ViewResult
from strato.store.aggregations import AggregateReader
from strato.store.catalog import Catalog


@dataclass(frozen=True)
class _ViewPlan:
    view: FeatureView
    codec: ViewCodec
    gather: FeatureGather
    output_names: tuple[str, ...]
    table_name: str
    key_group: int
    """Views with equal join keys (names and types) share a group and one key encoding."""
    aggregate: AggregateReader | None = None
    """Set for a run of windowed aggregations: `table_name` then holds the view's tiles."""


@dataclass(frozen=True)
class _Plan:
    views: tuple[_ViewPlan, ...]
    key_names: tuple[str, ...]
    width: int
    resources: tuple[Resource, ...]
    """The views read, as access control names them (checked on every call, from a cache)."""


class OnlineReader:
    """Online lookups of one store: plans cached per feature list, kept in step with the registry."""

    def __init__(
        self,
        catalog: Catalog,
        online_store: Callable[[], OnlineStore],
        check: Callable[[str, tuple[Resource, ...]], None] | None = None,
    ):
        self._catalog = catalog
        self._online_store = online_store
        self._check = check
        self._plans: dict[tuple[tuple[str, ...], bool], _Plan] = {}
        self._last: tuple[object, bool, object, _Plan] | None = None
        self._generation = -1  # the catalog generation the cached plans were made at

    def get(
        self,
        features: Sequence[str] | FeatureService,
        entity_rows: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]],
        full_feature_names: bool,
        *,
        checked: bool = False,
    ) -> OnlineResponse:
        """The latest values; `checked`: the caller has already authorized the whole request
        (an on-demand read, checked as a whole by `OnDemand.resources`)."""
        rows = _entity_rows(entity_rows)
        if self._catalog.fresh() != self._generation:
            self._drop_plans()
        plan = self._plan_for(features, full_feature_names)
        if self._check is not None and not checked:
            # A service is granted as itself; a list of references needs each view it reads.
            resources = (
                (Resource("feature_service", features.name),)
                if isinstance(features, FeatureService)
                else plan.resources
            )
            self._check("read", resources)
        now_us = clock.now_us()
        store = self._online_store()
        parts = []
        keys_by_group: dict[int, list[bytes]] = {}
        requests = []
        for vp in plan.views:
            # Views sharing join keys (the usual case) share one encoding of the entity rows.
            keys = keys_by_group.get(vp.key_group)
            if keys is None:
                keys = keys_by_group[vp.key_group] = vp.codec.keys.encode_rows(rows)
            requests.append((vp.table_name, keys))
        # Every view in one call: one round trip (or one snapshot) where the backend can.
        answers = [store.read(*requests[0])] if len(requests) == 1 else store.read_tables(requests)
        for vp, values in zip(plan.views, answers, strict=True):
            if vp.aggregate is not None:
                parts.append(vp.aggregate.result(values, now_us))
                continue
            stale = vp.codec.stale(values)
            if stale:
                self._upgrade(vp, values, stale)
            parts.append(ViewResult(vp.gather, vp.output_names, values, vp.view.ttl, now_us))
        return OnlineResponse(rows, plan.key_names, parts, plan.width)

    def authorize(self, resources: tuple[Resource, ...]) -> None:
        """Check a read of `resources` with this store's access checks (no-op without them)."""
        if self._check is not None:
            self._check("read", resources)

    def _drop_plans(self) -> None:
        self._plans.clear()
        self._last = None
        self._generation = self._catalog.generation

    def _plan_for(self, features: Sequence[str] | FeatureService, full_names: bool) -> _Plan:
        last = self._last
        # A scoring loop asks for the same feature list object every time: recognising it
        # (and checking it wasn't edited in place) skips hashing 100+ references per call.
        if last is not None and last[0] is features and last[1] == full_names and last[2] == features:
            return last[3]
        refs = tuple(features.feature_refs) if isinstance(features, FeatureService) else tuple(features)
        plan = self._plans.get((refs, full_names))
        if plan is None:
            plan = self._plans[(refs, full_names)] = self._build(features, full_names)
        snapshot = features if isinstance(features, (FeatureService, tuple)) else list(features)
        self._last = (features, full_names, snapshot, plan)
        return plan

    def _build(self, features: Sequence[str] | FeatureService, full_names: bool) -> _Plan:
        views = []
        key_names: dict[str, None] = {}
        key_groups: dict[tuple[tuple[str, str], ...], int] = {}
        for selection, fv, names in self._catalog.select(features, full_names):
            if not fv.online:
                raise UserError(f"feature view {fv.name!r} is offline only (online=False)")
            codec = self._catalog.codec(fv)
            group = key_groups.setdefault(tuple((k.name, str(k.dtype)) for k in fv.join_keys), len(key_groups))
            for features, output_names, aggregate in _runs(fv, selection.features, names):
                if aggregate:
                    reader = AggregateReader(fv, features, output_names)
                    views.append(_ViewPlan(fv, codec, reader.gather, output_names, reader.table_name, group, reader))
                else:
                    gather = FeatureGather(codec, features)
                    views.append(_ViewPlan(fv, codec, gather, output_names, fv.table_name, group))
            key_names.update(dict.fromkeys(fv.join_key_names))
        resources = tuple(dict.fromkeys(Resource("feature_view", v.view.name) for v in views))
        return _Plan(tuple(views), tuple(key_names), sum(len(v.output_names) for v in views), resources)

    def _upgrade(self, vp: _ViewPlan, values: list[bytes | None], stale: list[int]) -> None:
        """Re-encode, in place, values written before a compatible change of the view (rule 6).

        They stay as they are in the online store until the next write or materialization
        of their key replaces them; reading them costs one decode per stale value.
        """
        for i in stale:
            value = values[i]
            assert value is not None
            layout = vp.codec.layout_of(value)
            writer = self._catalog.codec_for_layout(vp.view, layout)
            if writer is None:
                raise BackendFailure(
                    f"feature view {vp.view.name!r}: an online value was written under an unknown schema "
                    f"(layout {layout:#010x}); run `strato materialize` to rewrite the online values"
                )
            values[i] = vp.codec.upgrade(value, writer)


def _runs(
    fv: FeatureView, features: Sequence[str], names: Sequence[str]
) -> list[tuple[tuple[str, ...], tuple[str, ...], bool]]:
    """Split one view's requested features into runs of stored features and of aggregations,
    keeping request order: (features, output names, is an aggregation run)."""
    runs: list[tuple[list[str], list[str], bool]] = []
    aggregates = set(fv.aggregation_names)
    for feature, name in zip(features, names, strict=True):
        kind = feature in aggregates
        if not runs or runs[-1][2] != kind:
            runs.append(([], [], kind))
        runs[-1][0].append(feature)
        runs[-1][1].append(name)
    return [(tuple(f), tuple(n), kind) for f, n, kind in runs]


def _entity_rows(entity_rows: Any) -> Sequence[Mapping[str, Any]]:
    if isinstance(entity_rows, Mapping):
        columns = {k: list(v) for k, v in entity_rows.items()}
        lengths = {len(v) for v in columns.values()}
        if len(lengths) > 1:
            raise UserError(f"entity_rows columns have different lengths: { {k: len(v) for k, v in columns.items()} }")
        n = lengths.pop() if lengths else 0
        return [{k: v[i] for k, v in columns.items()} for i in range(n)]
    if isinstance(entity_rows, Sequence) and not isinstance(entity_rows, (str, bytes)):
        return entity_rows
    raise UserError(f"entity_rows must be a list of dicts of join keys, got {type(entity_rows).__name__}")
