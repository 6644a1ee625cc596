"""The access-control matrix shared by the SDK and the server tests: roles x scopes x objects.

The expected answer is written out here by hand (a role's rank and what a scope covers), not
taken from `strato.access.policy`, so the tests check the code against the rules in the docs.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from strato import FeatureStore
from strato.access import admin
from strato.cli.loader import load_definitions

RANK = {"reader": 1, "writer": 2, "admin": 3}
NEEDS = {"read": "reader", "list": "reader", "write": "writer", "apply": "admin"}
ROLES = ("reader", "writer", "admin")
#: (scope kind, scope name): what a token is granted on. "stats" and "svc" exist; "recent" is another view;
#: "doubled" is an on-demand view reading "stats" (granted as a feature view: Feast counts them as views).
SCOPES = (("project", None), ("feature_view", "stats"), ("feature_service", "svc"), ("feature_view", "doubled"))

ON_DEMAND = textwrap.dedent(
    """
    from strato import Entity, FeatureView, Field, Float64, Int64, String, on_demand_feature_view

    user = Entity("user", join_keys={"user_id": Int64})
    stats = FeatureView("stats", entities=[user], schema=[Field("x", Int64), Field("score", Float64), Field("tag", String)])


    @on_demand_feature_view(sources=[stats], schema=[Field("double_x", Int64)], mode="python", singleton=True)
    def doubled(row):
        return {"double_x": None if row["x"] is None else 2 * row["x"]}
    """
)
#: What reading the on-demand view needs: read on itself and on each view it reads from.
ON_DEMAND_NEEDS = (("feature_view", "doubled"), ("feature_view", "stats"))


def add_on_demand(repo: Path) -> None:
    """Apply the on-demand view "doubled" to a `make_repo` repo, from a module in the repo
    (``doubled.py``), so a server on the repo finds its function by importing it."""
    (repo / "doubled.py").write_text(ON_DEMAND)
    with FeatureStore(repo) as store:
        store.apply(load_definitions(repo))


@dataclass(frozen=True)
class Grantee:
    role: str
    scope_kind: str
    scope_name: str | None

    @property
    def id(self) -> str:
        return f"{self.role}@{self.scope_kind}" + (f":{self.scope_name}" if self.scope_name else "")


GRANTEES = [Grantee(role, kind, name) for role in ROLES for kind, name in SCOPES]


def expected(grantee: Grantee, action: str, kind: str, name: str) -> bool:
    """Whether `grantee` may `action` the object (`kind`, `name`), by the documented rules."""
    if RANK[grantee.role] < RANK[NEEDS[action]]:
        return False
    if grantee.scope_kind == "project":
        return True
    return (grantee.scope_kind, grantee.scope_name) == (kind, name)


def first_refused(grantee: Grantee, action: str, objects: Sequence[tuple[str, str]]) -> tuple[str, str] | None:
    """The first of `objects` `grantee` may not `action` (None: all allowed): an action on
    several objects (an on-demand read) needs every one of them."""
    for kind, name in objects:
        if not expected(grantee, action, kind, name):
            return kind, name
    return None


def enable_with_tokens(repo: Path) -> tuple[str, dict[str, str]]:
    """Turn access control on in `repo`; (the admin token, a token per grantee id)."""
    with FeatureStore(repo) as store:
        first = admin.enable(store.access, created_by="test")
    made: dict[str, str] = {}
    with FeatureStore(repo, token=first.text) as store:
        for g in GRANTEES:
            token = admin.create_token(
                store.access,
                g.role,
                name=g.id,
                created_by="test",
                view=g.scope_name if g.scope_kind == "feature_view" else None,
                service=g.scope_name if g.scope_kind == "feature_service" else None,
            )
            made[g.id] = token.text
    return first.text, made
