"""Harness of the object-storage tests: one real S3-compatible server (`server.S3Server`) per test session.

The server starts on first use, on a free loopback port, in memory, and is stopped by its PID
when the session ends. Each test writes under its own prefix (`new_root`), so tests never see
each other's tables. Where Java or Maven is missing, the tests using it skip and say why.
"""

from __future__ import annotations

import itertools
import sys
import types
import uuid

import pytest

from .server import S3Server, S3Unavailable

__all__ = ["new_root", "server", "stop"]

_STATE = sys.modules.setdefault("_strato_s3_harness_state", types.ModuleType("_strato_s3_harness_state"))
if not hasattr(_STATE, "counter"):
    _STATE.server = None
    _STATE.counter = itertools.count()
    _STATE.run = uuid.uuid4().hex[:8]


def server() -> S3Server:
    """The session's shared server, started on first use (skips without Java or Maven)."""
    shared: S3Server | None = _STATE.server
    if shared is None or shared.process is None or shared.process.poll() is not None:
        try:
            shared = _STATE.server = S3Server().start()
        except S3Unavailable as exc:
            pytest.skip(str(exc))
    return shared


def stop() -> None:
    shared: S3Server | None = _STATE.server
    _STATE.server = None
    if shared is not None:
        shared.stop()


def new_root(prefix: str = "t") -> str:
    """A fresh ``s3://bucket/prefix`` on the session's server, for one test's tables."""
    return server().uri(f"{prefix}-{_STATE.run}-{next(_STATE.counter)}")
