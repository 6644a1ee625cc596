"""The PostgreSQL server of these tests: the session's shared one (see tests/pg_server.py)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_TESTS = str(Path(__file__).resolve().parents[2])
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

import pg_server  # noqa: E402


@pytest.fixture(scope="session")
def postgresql_server() -> Iterator[pg_server.Server]:
    """One PostgreSQL server for the whole session (shared with the registry contract suite)."""
    try:
        server = pg_server.shared()
    except pg_server.Unavailable as exc:
        pytest.skip(f"PostgreSQL registry tests skipped: {exc}")
    yield server
    pg_server.release()


@pytest.fixture
def pg_url(postgresql_server: pg_server.Server) -> Iterator[str]:
    """The URL of a fresh, empty database on the shared server."""
    url = postgresql_server.create_database()
    yield url
    postgresql_server.drop_database(url)
