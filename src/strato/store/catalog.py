"""The registry as the store's verbs need it: views by name, feature references resolved
to views, and one cached `ViewCodec` per view version (including the earlier versions whose
layouts may still sit in the online store after a compatible change).

Current view definitions are cached too, so a write or a lookup does not query the registry:
the cache is checked against the registry's revision at most every `RECHECK_SECONDS`, which
bounds how long another process's `apply` takes to reach a long-lived store.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from strato.definitions.entity import Entity
from strato.definitions.feature_service import FeatureService
from strato.definitions.feature_view import FeatureView
from strato.errors import NotFoundError, UserError
from strato.online.codec import ViewCodec
from strato.refs import ViewSelection, parse_refs
from strato.registry.base import RegistryStore

RECHECK_SECONDS = 1.0
"""How stale a store's view of the registry may get: another process's `apply` is seen at
most this long after it (`FeatureStore.refresh` makes it immediate)."""

Selection = tuple[ViewSelection, FeatureView, tuple[str, ...]]
"""A feature request for one view: what was asked, the view version, the output column names."""


class Catalog:
    """Definitions read from the registry, with the codecs built from them."""

    def __init__(self, registry: RegistryStore):
        self.registry = registry
        self._codecs: dict[tuple[str, int | None], ViewCodec] = {}
        self._layouts: dict[tuple[str, str], dict[int, ViewCodec]] = {}
        self._views: dict[str, FeatureView] = {}
        self._revision = -1  # the registry revision the caches were filled at
        self.valid_until = 0.0  # monotonic time of the next check of that revision
        self.generation = 0
        """Grows whenever cached definitions are dropped; callers caching more compare it."""

    def fresh(self) -> int:
        """Re-check the registry's revision if it is time to; the current `generation`."""
        if time.monotonic() >= self.valid_until:
            revision = self.registry.revision()
            if revision != self._revision:
                self._forget(revision)
            self.valid_until = time.monotonic() + RECHECK_SECONDS
        return self.generation

    def invalidate(self) -> None:
        """Drop every cached definition now (after an `apply`, or on `FeatureStore.refresh`)."""
        self._forget(self.registry.revision())
        self.valid_until = time.monotonic() + RECHECK_SECONDS

    def _forget(self, revision: int) -> None:
        self._views.clear()
        self._layouts.clear()
        self._revision = revision
        self.generation += 1

    def entity(self, name: str) -> Entity:
        obj = self.registry.get("entity", name)
        assert isinstance(obj, Entity)
        return obj

    def view(self, name: str, *, version: int | None = None) -> FeatureView:
        """A view's current version (cached, see the module doc), or a past `version`."""
        if version is None:
            self.fresh()
            cached = self._views.get(name)
            if cached is not None:
                return cached
        obj = self.registry.get("feature_view", name, version=version)
        assert isinstance(obj, FeatureView)
        if version is None:
            self._views[name] = obj
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
            if selection.version is None and not set(selection.features) <= set(fv.readable_names):
                # The request may be newer than the cached view: a service is read fresh, and
                # another process may have just added the feature. Serving must not fail
                # because of a compatible change, so look again before calling it missing.
                self.invalidate()
                fv = self.view(selection.view)
            for feature in selection.features:
                if feature not in fv.readable_names:
                    raise NotFoundError(
                        f"feature view {fv.name!r} (version {fv.version}) has no feature {feature!r}; "
                        f"it has {list(fv.readable_names)}"
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
