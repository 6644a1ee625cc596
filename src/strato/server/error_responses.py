"""Exceptions → HTTP status and a JSON body ``{"error": "..."}``: the only place that knows HTTP.

A user's mistake is a 4xx whose message names the problem; an engine that is down is a 503
(the client may retry); anything else is a 500 that says only that the server failed — the
traceback goes to the server's log, never to the client.
"""

from __future__ import annotations

import logging

import orjson
from starlette.responses import Response

from strato.errors import (
    AccessDeniedError,
    AuthenticationError,
    BackendUnavailable,
    NotFoundError,
    PluginNotFoundError,
    StratoError,
    TransformationError,
    UserError,
)

log = logging.getLogger("strato.server")


class HTTPError(Exception):
    """A request the server refuses, with the status to answer."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def error_response(status: int, message: str) -> Response:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return Response(
        orjson.dumps({"error": message}), status_code=status, media_type="application/json", headers=headers
    )


def status_of(exc: BaseException) -> tuple[int, str]:
    """The HTTP status and message for `exc`."""
    if isinstance(exc, HTTPError):
        return exc.status, exc.message
    message = " ".join(str(exc).splitlines()) or type(exc).__name__
    if isinstance(exc, AuthenticationError):
        return 401, message
    if isinstance(exc, AccessDeniedError):
        return 403, message
    if isinstance(exc, NotFoundError) and not isinstance(exc, PluginNotFoundError):
        return 404, message
    if isinstance(exc, TransformationError):  # the applied on-demand view failed, not the request
        log.error("on-demand feature view %r failed: %s", exc.view, message)
        return 500, message
    if isinstance(exc, UserError):
        return 400, message
    if isinstance(exc, BackendUnavailable):
        return 503, message
    if isinstance(exc, StratoError):
        log.error("backend error: %s", message)
        return 500, f"backend error: {message}"
    log.exception("internal error")
    return 500, "internal server error"
