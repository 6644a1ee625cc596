"""Access control: principals, roles, grants, API tokens and the audit log.

One decision function serves the SDK and the server alike, so a rule cannot hold in one and not
the other.
"""

from strato.access import tokens
from strato.access.guard import REFRESH_SECONDS, AccessControl, Caller
from strato.access.policy import Grant, Principal, Resource, Role, decide, project, service, view

__all__ = [
    "REFRESH_SECONDS",
    "AccessControl",
    "Caller",
    "Grant",
    "Principal",
    "Resource",
    "Role",
    "decide",
    "project",
    "service",
    "tokens",
    "view",
]
