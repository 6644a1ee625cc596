"""The access-control matrix shared by the SDK and the server tests: roles x scopes x objects.

The expected answer is written out here by hand (a role's rank and what a scope covers), not
taken from `strato.access.policy`, so the tests check the code against the rules in the docs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from strato import FeatureStore
from strato.access import admin

RANK = {"reader": 1, "writer": 2, "admin": 3}
NEEDS = {"read": "reader", "list": "reader", "write": "writer", "apply": "admin"}
ROLES = ("reader", "writer", "admin")
#: (scope kind, scope name): what a token is granted on. "stats" and "svc" exist; "recent" is another view.
SCOPES = (("project", None), ("feature_view", "stats"), ("feature_service", "svc"))


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
