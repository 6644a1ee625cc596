"""The registry as the store's verbs need it: views by name, feature references resolved
to views, and one cached `ViewCodec` per view version (including the earlier versions whose
layouts may still sit in the online store after a compatible change)."""

from __future__ import annotations

from collections.abc import Sequence

from strato.definitions.entity import Entity
from strato.definitions.feature_service import FeatureService
from strato.definitions.feature_view import FeatureView
from strato.errors import NotFoundError, UserError
from strato.online.codec import ViewCodec
from strato.refs import ViewSelection, parse_refs
from strato.registry.base import RegistryStore

Selection = tuple[ViewSelection, FeatureView, tuple[str, ...]]
"""A feature request for one view: what was asked, the view version, the output column names."""


class Catalog:
    """Definitions read from the registry, with the codecs built from them."""

    def __init__(self, registry: RegistryStore):
        self.registry = registry
        self._codecs: dict[tuple[str, int | None], ViewCodec] = {}
        self._layouts: dict[tuple[str, str], dict[int, ViewCodec]] = {}

    def entity(self, name: str) -> Entity:
        obj = self.registry.get("entity", name)
        assert isinstance(obj, Entity)
        return obj

    def view(self, name: str, *, version: int | None = None) -> FeatureView:
        obj = self.registry.get("feature_view", name, version=version)
        assert isinstance(obj, FeatureView)
        return obj

    def service(self, name: str, *, version: int | None = None) -> FeatureService:
        obj = self.registry.get("feature_service", name, version=version)
        assert isinstance(obj, FeatureService)
        return obj

    def current(self, view: str | FeatureView) -> FeatureView:
        """The current version of a view given by name or by (possibly stale) object."""
        name = view.name if isinstance(view, FeatureView) else view
        if not isinstance(name, str):
            raise UserError(f"expected a feature view or its name, got {view!r}")
        return self.view(name)

    def select(self, features: Sequence[str] | FeatureService, full_names: bool) -> list[Selection]:
        """Resolve ``view:feature`` references (or a service) to view versions and output names."""
        out = []
        for selection in parse_refs(features):
            fv = self.view(selection.view, version=selection.version)
            for feature in selection.features:
                if feature not in fv.feature_names:
                    raise NotFoundError(
                        f"feature view {fv.name!r} (version {fv.version}) has no feature {feature!r}; "
                        f"it has {list(fv.feature_names)}"
                    )
            # A pinned version gets its own prefix, so two versions of one view fit side by side.
            pinned = f"_v{fv.version}" if selection.version is not None else ""
            prefix = f"{fv.name}{pinned}__" if full_names else ""
            out.append((selection, fv, tuple(prefix + f for f in selection.features)))
        return out

    def codec(self, fv: FeatureView) -> ViewCodec:
        """The codec of one view version; built once (a version never changes)."""
        key = (fv.name, fv.version)
        codec = self._codecs.get(key)
        if codec is None:
            codec = self._codecs[key] = ViewCodec(fv)
        return codec

    def codec_for_layout(self, fv: FeatureView, layout: int) -> ViewCodec | None:
        """The codec of the version of `fv`, sharing its storage, whose layout is `layout`."""
        cached = self._layouts.get((fv.name, fv.table_name))
        if cached is None or layout not in cached:
            cached = {}
            for revision in self.registry.history("feature_view", fv.name):
                if revision.action == "delete":
                    continue
                old = self.view(fv.name, version=revision.version)
                if old.table_name == fv.table_name:
                    codec = self.codec(old)
                    cached[codec.layout_id] = codec
            self._layouts[(fv.name, fv.table_name)] = cached
        return cached.get(layout)

    def forget_layouts(self) -> None:
        """Drop what `codec_for_layout` learned: the registry has changed."""
        self._layouts.clear()
