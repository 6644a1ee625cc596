"""Access checks with the registry behind them: tokens resolved, decisions made, audit written.

`AccessControl` is one per open registry (one per `FeatureStore`) and serves every caller of
the process: the store's own token (`Caller`, for the SDK) and each HTTP request's bearer
token (`strato.server.auth`). Both end in `AccessControl.check`, which asks `policy.decide`.

What it costs: whether access control is on, and the tokens looked up, are cached for
`REFRESH_SECONDS`; a revoked token or a newly enabled project is seen within that time, and
between refreshes a check touches no database. `Caller` also remembers what its token was
allowed, so a scoring loop's `get_online_features` pays a dict lookup per call.

What is audited (`strato audit`): every denial and every failed authentication, one row
each, at once; every allowed write, apply and admin action, one row each; allowed reads and
listings are counted per (principal, action, object) and written as one row with a count
at each refresh (and on close), since a server answers thousands a second.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime

from strato.access import tokens
from strato.access.policy import Grant, Principal, Resource, first_denial
from strato.errors import AccessDeniedError, AuthenticationError, BackendError
from strato.registry.access_records import AuditRow, TokenRow
from strato.registry.base import RegistryStore

REFRESH_SECONDS = 2.0
"""How long a process trusts what it read about access control: a revocation, or a project
turning access control on, reaches running stores and servers within this time."""

_MAX_TOKENS = 4096  # cached token lookups per process (unknown ids included): bounded memory
_SAMPLED = frozenset({"read", "list"})  # allowed ones are counted, not written one by one
_DUMMY_SHA256 = tokens.digest("no such token")

log = logging.getLogger("strato.access")


def _now() -> datetime:
    return datetime.now(UTC)


def _objects(resources: Sequence[Resource]) -> str:
    return ", ".join(str(r) for r in resources) or "-"


def _what(action: str, resources: Sequence[Resource]) -> str:
    return f"{action} on {_objects(resources)}"


class AccessControl:
    """Access decisions for one project's registry, shared by every caller in the process."""

    def __init__(self, registry: RegistryStore, project: str, *, refresh_seconds: float = REFRESH_SECONDS):
        self.registry = registry
        self.project = project
        self._refresh_seconds = refresh_seconds
        self._lock = threading.Lock()
        self._enabled = False
        self._valid_until = 0.0
        self.generation = 0
        """Grows at every refresh; callers caching decisions compare it."""
        self._tokens: dict[str, tuple[TokenRow | None, Principal | None]] = {}
        self._reads: Counter[tuple[str, str, tuple[Resource, ...], str, str]] = Counter()

    # ------------------------------------------------------------------ state

    def fresh(self) -> int:
        """Re-read the project's access state if it is time to; the current `generation`."""
        if time.monotonic() >= self._valid_until:
            self.refresh()
        return self.generation

    def refresh(self) -> None:
        """Forget cached tokens and re-read whether access control is on; write counted reads."""
        with self._lock:
            self._enabled = self.registry.access_enabled()
            self._tokens.clear()
            self._flush_reads()
            self._valid_until = time.monotonic() + self._refresh_seconds
            self.generation += 1

    @property
    def enabled(self) -> bool:
        """Whether access control is on for the project (as of the last refresh)."""
        self.fresh()
        return self._enabled

    def close(self) -> None:
        """Write the reads counted since the last refresh."""
        with self._lock:
            self._flush_reads()

    # ------------------------------------------------------------------ checks

    def authenticate(
        self, text: str | None, action: str, resources: Sequence[Resource], *, via: str, client: str = "", hint: str
    ) -> Principal:
        """The principal `text` (a token) stands for; `AuthenticationError` (audited) when none.

        `action` and `resources` are what the caller was trying to do, for the message and
        the audit row. `hint` says how this kind of caller gives a token.
        """
        if not text:
            self.deny("anonymous", action, resources, "no token", via, client)
            raise AuthenticationError(
                f"project {self.project!r} has access control on: {_what(action, resources)} needs a token; {hint}"
            )
        parsed = tokens.parse(text)
        if parsed is None:
            self.deny("anonymous", action, resources, "malformed token", via, client)
            raise AuthenticationError(
                f"{_what(action, resources)}: the token is malformed (expected strato_<id>_<secret>); {hint}"
            )
        token_id, secret = parsed
        row, principal = self._token(token_id)
        # Compare even for an unknown id, so timing does not tell known ids from unknown ones.
        if not tokens.matches(secret, row.secret_sha256 if row is not None else _DUMMY_SHA256) or row is None:
            self.deny(f"unknown ({token_id})", action, resources, "unknown token or wrong secret", via, client)
            raise AuthenticationError(
                f"{_what(action, resources)}: token {token_id} is not valid for project {self.project!r}; {hint}"
            )
        if principal is None:
            assert row.revoked_at is not None
            self.deny(f"{row.name} ({row.id})", action, resources, "revoked token", via, client)
            when = row.revoked_at.strftime("%Y-%m-%d %H:%M:%S UTC")
            raise AuthenticationError(
                f"{_what(action, resources)}: token {token_id} ({row.name}) was revoked at {when}"
            )
        return principal

    def authorize(
        self, principal: Principal, action: str, resources: Sequence[Resource], *, via: str, client: str = ""
    ) -> None:
        """Return when `principal` may `action` every resource; else `AccessDeniedError` (audited)."""
        denial = first_denial(principal, action, resources)
        if denial is not None:
            resource, reason = denial
            self.deny(principal.label, action, [resource], reason, via, client)
            raise AccessDeniedError(f"token {principal.label}: {reason}")
        self.allowed(principal, action, tuple(resources), via=via, client=client)

    def allowed(
        self,
        principal: Principal,
        action: str,
        resources: tuple[Resource, ...],
        *,
        via: str,
        client: str = "",
        count: int = 1,
    ) -> None:
        """Audit an allowed action: reads counted (written at the next refresh), the rest at once."""
        if action in _SAMPLED:
            with self._lock:
                self._reads[(principal.label, action, resources, via, client)] += count
            return
        at = _now()
        self.registry.record_audit(
            [
                AuditRow(at, principal.label, action, str(r), True, "", via, client)
                for r in resources or [_project_of(self)]
            ]
        )

    # ------------------------------------------------------------------ helpers

    def _token(self, token_id: str) -> tuple[TokenRow | None, Principal | None]:
        """The stored token and, unless it is revoked, its principal; cached until the next refresh."""
        cached = self._tokens.get(token_id)
        if cached is not None:
            return cached
        row = self.registry.token(token_id)
        principal = None
        if row is not None and row.revoked_at is None:
            principal = Principal(row.id, row.name, tuple(Grant.from_row(g) for g in row.grants))
        with self._lock:
            if len(self._tokens) >= _MAX_TOKENS:
                self._tokens.clear()
            self._tokens[token_id] = (row, principal)
        return row, principal

    def deny(
        self, principal: str, action: str, resources: Sequence[Resource], reason: str, via: str, client: str
    ) -> None:
        """Write the audit record of a denial (a failure to write it is logged, never raised)."""
        row = AuditRow(_now(), principal, action, _objects(resources), False, reason, via, client)
        try:
            self.registry.record_audit([row])
        except BackendError as exc:  # the denial stands either way; say that its record is missing
            log.warning("could not write the audit record of a denied %s: %s", action, exc)

    def _flush_reads(self) -> None:
        """Write the counted reads (caller holds the lock)."""
        if not self._reads:
            return
        at = _now()
        rows = [
            AuditRow(at, who, action, _objects(resources), True, "", via, client, count)
            for (who, action, resources, via, client), count in self._reads.items()
        ]
        self._reads.clear()
        try:
            self.registry.record_audit(rows)
        except BackendError as exc:
            log.warning("could not write %d audit records of allowed reads: %s", len(rows), exc)


def _project_of(access: AccessControl) -> Resource:
    return Resource("project", access.project)


class Caller:
    """The SDK's side: one store's token, checked by `AccessControl`, with its decisions cached.

    With access control off, `check` returns at once (today's embedded, single-user
    behaviour). A store opened by `strato serve` is `delegate`d: the server checks each
    request's own token before calling the store, so the store does not check again.
    """

    HINT = "pass FeatureStore(token=...) or set STRATO_TOKEN (`strato token create` makes one)"

    def __init__(self, access: AccessControl, token: str | None):
        self.access = access
        self._token = token
        self._principal: Principal | None = None
        #: Reads this token was allowed since the last refresh, and how many times (the audit count).
        self._allowed: dict[tuple[str, tuple[Resource, ...]], int] = {}
        self._generation = -1
        self._delegated = False

    def delegate(self) -> None:
        """Leave the checks to the caller of this store (the server, per request)."""
        self._delegated = True

    @property
    def principal(self) -> Principal | None:
        """The store's principal (None while access control is off or not checked yet)."""
        return self._principal

    def check(self, action: str, resources: tuple[Resource, ...]) -> None:
        """Return when this store's token may `action` every resource; raise (audited) when not."""
        access = self.access
        if time.monotonic() >= access._valid_until or access.generation != self._generation:
            self._renew()
        if not access._enabled or self._delegated:
            return
        key = (action, resources)
        allowed = self._allowed
        if key in allowed:  # the hot path: a read this token was already allowed
            allowed[key] += 1
            return
        principal = self._principal
        if principal is None:
            principal = self._principal = access.authenticate(self._token, action, resources, via="sdk", hint=self.HINT)
        if action in _SAMPLED:
            denial = first_denial(principal, action, resources)
            if denial is None:
                allowed[key] = 1
                return
        access.authorize(principal, action, resources, via="sdk")

    def flush(self) -> None:
        """Hand the counted reads to `AccessControl`, which writes them at its refresh or close."""
        principal, counted = self._principal, self._allowed
        self._allowed = {}
        if principal is not None:
            for (action, resources), count in counted.items():
                self.access.allowed(principal, action, resources, via="sdk", count=count)

    def _renew(self) -> None:
        """At each refresh: hand over the counts, re-read the access state, forget the token."""
        self.flush()
        self.access.fresh()
        self._generation = self.access.generation
        self._principal = None
