"""Fixtures of the online contract suite: every registered online backend, on its real engine.

Each test taking `online_store` (or `online_backend`) runs once per name registered under
the ``strato.online`` entry-point group, marked ``pytest.mark.<name>`` so ``-m lmdb``
selects one engine. A backend is built from its harness, ``tests/engines/<name>/harness.py``,
whose ``options(tmp_path) -> dict`` gives the options of a fresh, empty store. A registered
backend without a harness fails collection here rather than being silently skipped.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import pytest

from strato import plugins
from strato.online.base import OnlineStore, StoreOptions

ENGINES_DIR = Path(__file__).resolve().parents[2] / "engines"


class MissingHarnessError(Exception):
    """A registered online backend has no test harness."""


def load_harness(name: str) -> ModuleType:
    """Import ``tests/engines/<name>/harness.py`` by path; fail loudly if it is missing or incomplete."""
    path = ENGINES_DIR / name / "harness.py"
    if not path.is_file():
        raise MissingHarnessError(
            f"online backend {name!r} is registered (entry point strato.online) but has no test harness: "
            f"create {path} with `def options(tmp_path: Path) -> dict[str, Any]` returning the options "
            "of a fresh, empty store, so the online contract suite can run against it"
        )
    spec = importlib.util.spec_from_file_location(f"_strato_online_harness_{name}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not callable(getattr(module, "options", None)):
        raise MissingHarnessError(f"{path} must define `options(tmp_path) -> dict` for online backend {name!r}")
    return module


BACKENDS = sorted(plugins.available("online"))
HARNESSES = {name: load_harness(name) for name in BACKENDS}


def backend_params() -> list[object]:
    """One pytest param per registered backend, marked with its name."""
    return [pytest.param(name, marks=getattr(pytest.mark, name), id=name) for name in BACKENDS]


@dataclass
class Backend:
    """One registered backend with the options of a fresh store; opens stores and closes them after the test."""

    name: str
    cls: type[OnlineStore]
    options: StoreOptions
    opened: list[OnlineStore] = field(default_factory=list)

    def open(self, project: str = "contract") -> OnlineStore:
        """A store on this test's storage; every call with the same options reaches the same data."""
        store = self.cls.open(self.options, project=project)
        self.opened.append(store)
        return store

    def close_all(self) -> None:
        for store in reversed(self.opened):
            store.close()


@pytest.fixture(params=backend_params())
def online_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    name: str = request.param
    cls: type[OnlineStore] = plugins.load("online", name)
    options = cls.options_model(**HARNESSES[name].options(tmp_path))
    backend = Backend(name, cls, options)
    try:
        yield backend
    finally:
        backend.close_all()


@pytest.fixture
def online_store(online_backend: Backend) -> OnlineStore:
    """A fresh, empty store of project ``contract``, closed after the test."""
    return online_backend.open()
