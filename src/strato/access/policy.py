"""Who may do what: roles, grants and the one decision function.

Pure code, no I/O: `decide` takes a principal (its grants) and an action on a resource and
says whether it is allowed, and if not, why. The SDK (`strato.access.guard`, called by every
`FeatureStore` verb) and the server (`strato.server.auth`) both ask it, so a rule cannot hold
in one and not the other.

Roles are ordered, each including the ones below it::

    reader   read features (online, historical, SQL), list definitions, scrape metrics
    writer   + write, push, ingest, materialize, prune
    admin    + apply definitions, manage tokens, read the audit log, turn access control off

A grant gives one role on one scope: the whole project, or one feature view or feature
service by name. A resource is covered by a project grant, or by a grant on exactly that
view or service. Reading through a service needs a grant on the service (or the project),
not on the views it draws from; naming a view's features directly needs a grant on the view.
Entities, SQL over every view, listings, metrics and token management are project-wide, so
only project grants cover them.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from strato.errors import UserError
from strato.registry.access_records import SCOPE_KINDS, GrantRow


class Role(enum.IntEnum):
    """Roles, ordered: a higher role may do everything a lower one may."""

    READER = 1
    WRITER = 2
    ADMIN = 3

    @classmethod
    def parse(cls, text: str) -> Role:
        try:
            return cls[text.upper()]
        except KeyError:
            raise UserError(f"role {text!r}: expected one of reader, writer, admin") from None

    @property
    def label(self) -> str:
        return self.name.lower()


#: The lowest role each action needs.
REQUIRED_ROLE: dict[str, Role] = {
    "read": Role.READER,
    "list": Role.READER,
    "write": Role.WRITER,
    "apply": Role.ADMIN,
    "admin": Role.ADMIN,
}

ResourceKind = str
"""``project``, ``feature_view``, ``feature_service`` or ``entity``."""


class Resource(NamedTuple):
    """What an action is done to: a project, or one object in it.

    A named tuple rather than a dataclass: it is hashed on every checked online read.
    """

    kind: ResourceKind
    name: str

    def __str__(self) -> str:
        return f"{self.kind.replace('_', ' ')} {self.name!r}"


def project(name: str) -> Resource:
    return Resource("project", name)


def view(name: str) -> Resource:
    return Resource("feature_view", name)


def service(name: str) -> Resource:
    return Resource("feature_service", name)


@dataclass(frozen=True)
class Grant:
    """One role on one scope (`scope_name` None: the whole project)."""

    role: Role
    scope_kind: str = "project"
    scope_name: str | None = None

    def __post_init__(self) -> None:
        if self.scope_kind not in SCOPE_KINDS:
            raise UserError(f"grant scope {self.scope_kind!r}: expected one of {', '.join(SCOPE_KINDS)}")
        if (self.scope_kind == "project") != (self.scope_name is None):
            raise UserError("a project grant names no object; a view or service grant names one")

    def covers(self, resource: Resource) -> bool:
        return self.scope_kind == "project" or (self.scope_kind == resource.kind and self.scope_name == resource.name)

    def __str__(self) -> str:
        where = "project" if self.scope_name is None else f"{self.scope_kind.replace('_', ' ')} {self.scope_name}"
        return f"{self.role.label} on {where}"

    def to_row(self) -> GrantRow:
        return GrantRow(self.role.label, self.scope_kind, self.scope_name)

    @classmethod
    def from_row(cls, row: GrantRow) -> Grant:
        return cls(Role.parse(row.role), row.scope_kind, row.scope_name)


@dataclass(frozen=True)
class Principal:
    """Who is calling: a token's holder, with the token's grants."""

    id: str
    name: str
    grants: tuple[Grant, ...]

    @property
    def label(self) -> str:
        """``name (token id)``, as the audit log and messages show it."""
        return f"{self.name} ({self.id})"


def check_action(action: str) -> Role:
    try:
        return REQUIRED_ROLE[action]
    except KeyError:
        raise UserError(f"unknown action {action!r}; expected one of {', '.join(REQUIRED_ROLE)}") from None


def decide(principal: Principal, action: str, resource: Resource) -> str | None:
    """None when `principal` may do `action` on `resource`; else why not, one sentence."""
    needed = check_action(action)
    best: Role | None = None
    for grant in principal.grants:
        if grant.covers(resource):
            if grant.role >= needed:
                return None
            best = grant.role if best is None else max(best, grant.role)
    if best is not None:
        return f"{action} on {resource} needs role {needed.label}; the token has {best.label} there"
    held = ", ".join(str(g) for g in principal.grants) or "no grants"
    return f"{action} on {resource} needs role {needed.label}; the token has no grant covering it (it has: {held})"


def first_denial(principal: Principal, action: str, resources: Iterable[Resource]) -> tuple[Resource, str] | None:
    """The first resource `principal` may not `action`, with the reason; None when all are allowed."""
    for resource in resources:
        reason = decide(principal, action, resource)
        if reason is not None:
            return resource, reason
    return None
