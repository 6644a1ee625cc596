"""Feature references: ``view:feature`` (current version) or ``view@v2:feature`` (pinned)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from strato.definitions.feature_service import FeatureService
from strato.errors import UserError

_REF = re.compile(r"(?P<view>[A-Za-z_]\w*)(?:@v(?P<version>\d+))?:(?P<feature>[A-Za-z_]\w*)")


@dataclass(frozen=True)
class ViewSelection:
    """The features wanted from one view (version None = the current one), in request order."""

    view: str
    version: int | None
    features: tuple[str, ...]


def parse_refs(features: Sequence[str] | FeatureService) -> list[ViewSelection]:
    """Group references by view, keeping the order in which views and features first appear."""
    refs = features.feature_refs if isinstance(features, FeatureService) else features
    if isinstance(refs, str):
        raise UserError(f"features must be a list of 'view:feature' strings, got the string {refs!r}")
    grouped: dict[tuple[str, int | None], list[str]] = {}
    for ref in refs:
        match = _REF.fullmatch(ref) if isinstance(ref, str) else None
        if match is None:
            raise UserError(f"feature reference {ref!r} is invalid: expected 'view:feature' or 'view@v2:feature'")
        version = int(match["version"]) if match["version"] else None
        bucket = grouped.setdefault((match["view"], version), [])
        if match["feature"] in bucket:
            raise UserError(f"feature reference {ref!r} is requested twice")
        bucket.append(match["feature"])
    if not grouped:
        raise UserError("no features requested")
    return [ViewSelection(view, version, tuple(names)) for (view, version), names in grouped.items()]
