"""The one place the server decides whether a request may do what it asks.

Access control (tokens, roles, audit) plugs in here: every route calls `authorize` before it
touches the store, with the action and the objects it names. Until then every request is
allowed; the function exists so the routes never need to change when it stops being so.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from starlette.requests import Request

Action = Literal["read", "write", "list", "health", "metrics"]


def authorize(request: Request, action: Action, objects: Sequence[str] = ()) -> None:
    """Return when `request` may perform `action` on `objects` (view or service names); raise
    `strato.server.error_responses.HTTPError` (401/403) when not."""
    del request, action, objects
