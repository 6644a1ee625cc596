"""Definitions and small readers shared by the store-level tests."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from strato import Entity, FeatureStore, FeatureView, Field, Float64, Int64, String, Vector

USER = Entity("user", join_keys={"user_id": Int64})


def stats_view(name: str = "stats", *, ttl: timedelta | None = None, extra: Sequence[Field] = ()) -> FeatureView:
    return FeatureView(
        name,
        entities=[USER],
        ttl=ttl,
        schema=[Field("x", Int64), Field("tag", String), Field("score", Float64), *extra],
    )


def vector_view(name: str = "emb") -> FeatureView:
    return FeatureView(name, entities=[USER], schema=[Field("x", Int64), Field("v", Vector(3))])


def online(store: FeatureStore, refs: Sequence[str], user_ids: Sequence[int]) -> dict[str, list[Any]]:
    return store.get_online_features(list(refs), [{"user_id": u} for u in user_ids]).to_dict()


def same(a: Any, b: Any) -> bool:
    """Equality where NaN equals NaN, through lists, tuples and dicts."""
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b)
