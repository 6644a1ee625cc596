"""Managing access control: turning it on, making and revoking tokens, reading the audit log.

Each function takes the `Caller` of the store doing it, so the same rule applies as for any
verb: once access control is on, only a token with ``admin`` on the project may manage it.
Turning it on is the one step without a token (there is none yet); it makes the first admin
token in the same transaction, so a project is never left with access control on and nobody
able to administer it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from strato.access import tokens
from strato.access.guard import Caller
from strato.access.policy import Grant, Resource, Role
from strato.errors import NotFoundError, UserError
from strato.registry.access_records import AuditRow, TokenRow

_NAME_LIMIT = 128


def _project(caller: Caller) -> Resource:
    return Resource("project", caller.access.project)


def _row(token: tokens.Token, name: str, grants: Sequence[Grant], created_by: str) -> TokenRow:
    if not isinstance(name, str) or not name.strip() or len(name) > _NAME_LIMIT:
        raise UserError(f"token name must be 1-{_NAME_LIMIT} characters, got {name!r}")
    rows = tuple(g.to_row() for g in grants)
    return TokenRow(token.id, name, token.secret_sha256, datetime.now(UTC), created_by, rows)


def _names(what: str, given: str | Sequence[str] | None) -> list[str]:
    """One name or several as a list (order kept, repeats dropped); each a non-empty string."""
    names = [given] if isinstance(given, str) else list(given or [])
    for name in names:
        if not isinstance(name, str) or not name:
            raise UserError(f"{what}: expected names, got {name!r}")
    return list(dict.fromkeys(names))


def enable(caller: Caller, *, created_by: str, name: str = "admin") -> tokens.Token:
    """Turn access control on for the project; the first admin token (its text is shown once)."""
    access = caller.access
    access.refresh()
    if access.enabled:
        raise UserError(
            f"access control is already on for project {access.project!r}; "
            "make more tokens with `strato token create` (with an admin token)"
        )
    token = tokens.new_token()
    access.registry.set_access(True, first_token=_row(token, name, [Grant(Role.ADMIN)], created_by))
    access.refresh()
    return token


def disable(caller: Caller) -> None:
    """Turn access control off (admin only): every store may then do everything again."""
    caller.check("admin", (_project(caller),))
    caller.access.registry.set_access(False)
    caller.access.refresh()


def create_token(
    caller: Caller,
    role: str,
    *,
    name: str,
    created_by: str,
    view: str | Sequence[str] | None = None,
    service: str | Sequence[str] | None = None,
) -> tokens.Token:
    """A new token granting `role` on the project, or on each of the given views and services
    (one grant each: e.g. an on-demand view and the views it reads, which a read of it needs)."""
    _require_enabled(caller)
    parsed = Role.parse(role)
    grants = [Grant(parsed, "feature_view", v) for v in _names("view", view)]
    grants += [Grant(parsed, "feature_service", s) for s in _names("service", service)]
    caller.check("admin", (_project(caller),))
    token = tokens.new_token()
    caller.access.registry.add_token(_row(token, name, grants or [Grant(parsed)], created_by))
    return token


def list_tokens(caller: Caller) -> list[TokenRow]:
    """Every token of the project (revoked ones too), oldest first; never a secret."""
    _require_enabled(caller)
    caller.check("admin", (_project(caller),))
    return caller.access.registry.tokens()


def revoke(caller: Caller, token_id: str) -> TokenRow:
    """Revoke a token by id; running stores and servers refuse it within `REFRESH_SECONDS`."""
    _require_enabled(caller)
    caller.check("admin", (_project(caller),))
    registry = caller.access.registry
    row = registry.token(token_id)
    if row is None:
        known = ", ".join(t.id for t in registry.tokens() if not t.revoked) or "none"
        raise NotFoundError(f"no token {token_id!r} in project {caller.access.project!r}; live tokens: {known}")
    if row.revoked_at is not None:
        raise UserError(f"token {token_id} ({row.name}) is already revoked")
    registry.revoke_token(token_id, datetime.now(UTC))
    caller.access.refresh()
    return row


def audit(
    caller: Caller, *, denied_only: bool = False, since: datetime | None = None, limit: int = 100
) -> list[AuditRow]:
    """The newest audit records first (admin only)."""
    if limit < 1:
        raise UserError(f"limit must be at least 1, got {limit}")
    _require_enabled(caller)
    caller.check("admin", (_project(caller),))
    caller.flush()  # write the counted reads first, so the log is up to date
    caller.access.close()
    return caller.access.registry.audit(denied_only=denied_only, since=since, limit=limit)


def _require_enabled(caller: Caller) -> None:
    caller.access.fresh()
    if not caller.access.enabled:
        raise UserError(
            f"access control is off for project {caller.access.project!r}; "
            "turn it on with `strato access enable`, which prints the first admin token"
        )
