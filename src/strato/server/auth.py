"""The one place the server decides whether a request may do what it asks.

Every route calls `authorize` before it touches the store, with the action and the objects it
names. The decision is `strato.access`'s, the same code every `FeatureStore` verb asks, fed
with the request's ``Authorization: Bearer <token>``:

* no token, a malformed, unknown or revoked one: 401; a valid token whose grants do not
  cover the action: 403 (the status mapping lives in `error_responses`). Both are audited.
* ``GET /health`` needs no token, so load balancers and orchestrators can probe it.
* listings and ``/metrics`` are project-wide: they need a project grant (reader or more).
* a client address that keeps sending bad tokens is slowed down: after
  `FREE_FAILURES` failures (a missing token guesses nothing and does not count), each further one locks it out for twice as long as the last (up
  to `MAX_LOCKOUT_SECONDS`), answering 429 without checking anything; a success forgives it.
  At most `MAX_CLIENTS` addresses are remembered (the oldest are forgotten first).

With `ServerSettings.auth` off (`strato serve --no-auth`, loopback only) every request is
allowed, as before access control existed. Tokens are never logged: not here, not in the
audit log (which names a token by its public id), not in error messages.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Literal

from starlette.requests import Request

from strato.access import AccessControl, Principal, Resource
from strato.errors import AuthenticationError
from strato.server.error_responses import HTTPError

Action = Literal["read", "write", "list", "health", "metrics"]

FREE_FAILURES = 5
"""Failed authentications a client address may make before it is slowed down."""
MAX_LOCKOUT_SECONDS = 60.0
MAX_CLIENTS = 10_000
_FORGET_SECONDS = 600.0  # a client quiet this long after its last failure starts afresh
_HINT = "send the header `Authorization: Bearer <token>` (`strato token create` makes one)"


class FailureThrottle:
    """Per client address: how many authentications failed, and until when it is locked out."""

    def __init__(self, *, free: int = FREE_FAILURES, max_lockout: float = MAX_LOCKOUT_SECONDS):
        self._free = free
        self._max_lockout = max_lockout
        self._clients: OrderedDict[str, tuple[int, float, float]] = OrderedDict()  # failures, last, locked until
        self._lock = threading.Lock()

    def locked_for(self, client: str, now: float | None = None) -> float:
        """Seconds `client` is still locked out (0: it may try)."""
        entry = self._clients.get(client)
        if entry is None:
            return 0.0
        now = time.monotonic() if now is None else now
        return max(0.0, entry[2] - now)

    def failed(self, client: str, now: float | None = None) -> float:
        """Count a failure; the lockout it starts, in seconds (0: none yet)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            count, last, _ = self._clients.pop(client, (0, now, 0.0))
            if now - last > _FORGET_SECONDS:
                count = 0
            count += 1
            lockout = 0.0
            if count > self._free:
                lockout = min(self._max_lockout, 0.5 * 2 ** (count - self._free - 1))
            self._clients[client] = (count, now, now + lockout)
            while len(self._clients) > MAX_CLIENTS:
                self._clients.popitem(last=False)
        return lockout

    def succeeded(self, client: str) -> None:
        if client in self._clients:
            with self._lock:
                self._clients.pop(client, None)

    def __len__(self) -> int:
        return len(self._clients)


class Authorizer:
    """The server's access checks: one per app, around the store's `AccessControl`."""

    def __init__(self, required: bool):
        self.required = required
        self.throttle = FailureThrottle()

    def check(self, request: Request, access: AccessControl, action: Action, objects: Sequence[Resource]) -> None:
        if action == "health" or not self.required:
            return
        client = request.client.host if request.client is not None else "unknown"
        if action in ("list", "metrics"):
            objects, verb = [Resource("project", access.project)], "list" if action == "list" else "read"
        else:
            verb = action
        wait = self.throttle.locked_for(client)
        if wait > 0:
            raise HTTPError(429, f"too many failed authentications from {client}; retry in {wait:.1f} s")
        if not access.enabled:
            raise HTTPError(
                503,
                f"the server requires tokens but access control is off for project {access.project!r}; "
                "run `strato access enable`, or serve with --no-auth on loopback",
            )
        principal = self._principal(request, access, verb, objects, client)
        access.authorize(principal, verb, objects, via="http", client=client)

    def _principal(
        self, request: Request, access: AccessControl, verb: str, objects: Sequence[Resource], client: str
    ) -> Principal:
        header = request.headers.get("authorization", "")
        scheme, _, credential = header.partition(" ")
        token = credential.strip() if scheme.lower() == "bearer" else None
        try:
            principal = access.authenticate(token, verb, objects, via="http", client=client, hint=_HINT)
        except AuthenticationError:
            if not token:
                raise  # nothing was guessed: a misconfigured client, not worth slowing down
            lockout = self.throttle.failed(client)
            if lockout > 0:
                access.deny(
                    "anonymous",
                    verb,
                    objects,
                    f"client locked out for {lockout:.1f} s after repeated failed authentications",
                    "http",
                    client,
                )
            raise
        self.throttle.succeeded(client)
        return principal


def authorize(request: Request, action: Action, objects: Sequence[Resource] = ()) -> None:
    """Return when `request` may perform `action` on `objects`; raise (401/403/429) when not."""
    server = request.app.state.server
    server.authorizer.check(request, server.store.access.access, action, objects)
