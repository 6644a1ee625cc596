"""Issue 7 item 3: a stale plan must not silently revert a concurrent change.

Process A plans "add field y"; process B applies an owner (or ttl) change; A's apply of its
plan is refused with a clear "registry changed since this plan; re-plan", B's change intact.
"""

from __future__ import annotations

import multiprocessing as mp
from datetime import timedelta
from pathlib import Path

import pytest

from strato import FeatureStore, FeatureView, Field, Int64
from strato.errors import ConflictError

from .helpers import USER


def k_view(*, y: bool = False, owner: str = "", ttl: timedelta | None = None) -> FeatureView:
    schema = [Field("x", Int64), *([Field("y", Int64)] if y else [])]
    return FeatureView("k", entities=[USER], schema=schema, owner=owner, ttl=ttl)


def _apply_elsewhere(repo: str, owner: str, ttl_hours: int | None) -> None:
    with FeatureStore(repo) as b:
        b.apply([USER, k_view(owner=owner, ttl=timedelta(hours=ttl_hours) if ttl_hours else None)])


@pytest.mark.parametrize(("owner", "ttl_hours"), [("bob", None), ("", 6)], ids=["owner", "ttl"])
def test_a_stale_plan_is_refused_after_another_processs_apply(
    store: FeatureStore, repo: Path, owner: str, ttl_hours: int | None
) -> None:
    store.apply([USER, k_view()])
    plan = store.plan([USER, k_view(y=True)])  # A: "add field y"
    b = mp.get_context("spawn").Process(target=_apply_elsewhere, args=(str(repo), owner, ttl_hours))
    b.start()
    b.join(timeout=120)
    assert b.exitcode == 0

    with pytest.raises(ConflictError, match=r"^registry changed since this plan; re-plan \(feature view 'k' is now"):
        store.apply(plan)

    store.refresh()
    current = store.get_feature_view("k")
    assert (current.version, current.owner, current.feature_names) == (2, owner, ("x",))
    assert current.ttl == (timedelta(hours=ttl_hours) if ttl_hours else None)


def test_a_plan_with_no_concurrent_change_applies(store: FeatureStore, repo: Path) -> None:
    store.apply([USER, k_view()])
    plan = store.plan([USER, k_view(y=True)])
    with FeatureStore(repo) as other:  # reads only: nothing the plan covers changes
        assert other.get_feature_view("k").version == 1
    store.apply(plan)
    assert store.get_feature_view("k").feature_names == ("x", "y")
