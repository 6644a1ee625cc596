"""Fixtures of the registry contract suite: every registered registry backend, real databases.

Each test that takes `registry` (or `open_registry`) runs once per backend registered under
the ``strato.registry`` entry-point group, against a fresh database in `tmp_path`. A backend
is reached through a harness that turns the test's request and a temporary folder into the
URL of a fresh database; a registered backend without a harness fails its tests rather than
being silently skipped. PostgreSQL runs on one real server per session (`pg_server`), a new
database per test; where no server can be had its tests skip, saying why.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from registry_samples import OpenRegistry

# `import pg_server` from tests/, whichever conftest files exist above this one.
_TESTS = str(Path(__file__).resolve().parents[2])
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

import pg_server  # noqa: E402
from strato import plugins  # noqa: E402
from strato.registry.base import RegistryStore  # noqa: E402

BACKENDS = sorted(plugins.available("registry"))


@pytest.fixture(scope="session")
def postgresql_server() -> Iterator[pg_server.Server]:
    """One PostgreSQL server for the whole session, stopped by PID at its end."""
    try:
        server = pg_server.shared()
    except pg_server.Unavailable as exc:
        pytest.skip(f"PostgreSQL registry tests skipped: {exc}")
    yield server
    pg_server.release()


def _postgresql(request: pytest.FixtureRequest, _folder: Path) -> str:
    server: pg_server.Server = request.getfixturevalue("postgresql_server")
    url = server.create_database()
    request.addfinalizer(lambda: server.drop_database(url))
    return url


#: backend name → the URL of a fresh, empty database (for the test asking, under a temporary folder).
HARNESSES: dict[str, Callable[[pytest.FixtureRequest, Path], str]] = {
    "sqlite": lambda _request, folder: f"sqlite:///{folder / 'registry' / 'registry.db'}",
    "postgresql": _postgresql,
}


@pytest.fixture(params=BACKENDS)  # select one with `-k sqlite`
def backend(request: pytest.FixtureRequest) -> str:
    """The name of the registry backend under test."""
    name: str = request.param
    return name


@pytest.fixture
def registry_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """The URL of one empty database; every registry opened on it shares it."""
    name = backend
    if name not in HARNESSES:
        pytest.fail(f"registry backend {name!r} is registered but has no harness in {__file__}; add one to HARNESSES")
    return HARNESSES[name](request, tmp_path)


@pytest.fixture
def open_registry(backend: str, registry_url: str) -> Iterator[OpenRegistry]:
    """Open the backend under test on the shared database, for a project; closed at teardown."""
    cls: type[RegistryStore] = plugins.load("registry", backend)
    opened: list[RegistryStore] = []

    def open_(project: str = "test") -> RegistryStore:
        registry = cls.open(registry_url, project=project)
        opened.append(registry)
        return registry

    yield open_
    for registry in opened:
        registry.close()


@pytest.fixture
def registry(open_registry: OpenRegistry) -> RegistryStore:
    return open_registry()
