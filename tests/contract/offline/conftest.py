"""Fixtures of the offline contract suite: every registered offline engine, real Delta tables.

Each test that takes `offline_engine` runs once per engine registered under the
``strato.offline`` entry-point group, so a new engine (Spark) is tested by this suite as
soon as it is registered. History tables live in a fresh `tmp_path` per test.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# `import oracles` from tests/, whichever conftest files exist above this one.
_TESTS = str(Path(__file__).resolve().parents[2])
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

from strato import plugins  # noqa: E402
from strato.offline.base import OfflineEngine  # noqa: E402
from strato.offline.delta import DeltaTables  # noqa: E402

ENGINES = sorted(plugins.available("offline"))


def open_engine(name: str) -> OfflineEngine:
    cls: type[OfflineEngine] = plugins.load("offline", name)
    return cls.open(cls.options_model())


@pytest.fixture(scope="session", params=ENGINES)
def offline_engine(request: pytest.FixtureRequest) -> Iterator[OfflineEngine]:
    with open_engine(request.param) as engine:
        yield engine


@pytest.fixture
def tables(tmp_path: Path) -> DeltaTables:
    return DeltaTables(str(tmp_path / "offline"), "proj")
