"""Fixtures of the registry contract suite: every registered registry backend, real databases.

Each test that takes `registry` (or `open_registry`) runs once per backend registered under
the ``strato.registry`` entry-point group, against a fresh database in `tmp_path`. A backend
is reached through a harness that turns a temporary folder into its URL; a registered
backend without a harness fails its tests rather than being silently skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from registry_samples import OpenRegistry

from strato import plugins
from strato.registry.base import RegistryStore

BACKENDS = sorted(plugins.available("registry"))

#: backend name → the URL of a fresh, empty database under a temporary folder.
HARNESSES: dict[str, Callable[[Path], str]] = {
    "sqlite": lambda folder: f"sqlite:///{folder / 'registry' / 'registry.db'}",
}


@pytest.fixture(params=BACKENDS)  # select one with `-k sqlite`
def backend(request: pytest.FixtureRequest) -> str:
    """The name of the registry backend under test."""
    name: str = request.param
    return name


@pytest.fixture
def registry_url(backend: str, tmp_path: Path) -> str:
    """The URL of one empty database; every registry opened on it shares it."""
    name = backend
    if name not in HARNESSES:
        pytest.fail(f"registry backend {name!r} is registered but has no harness in {__file__}; add one to HARNESSES")
    return HARNESSES[name](tmp_path)


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
