"""The session's S3 server as a fixture (see harness.py); stopped by PID at session end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from . import harness
from .server import S3Server


@pytest.fixture(scope="session")
def s3() -> Iterator[S3Server]:
    yield harness.server()
    harness.stop()
