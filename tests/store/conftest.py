"""Fixtures of the store-level suite: a real feature repo in `tmp_path` (SQLite registry,
Delta history read by DuckDB, LMDB online store) behind `strato.FeatureStore`."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# `import oracles` from tests/, as the offline contract suite does.
_TESTS = str(Path(__file__).resolve().parents[1])
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

from strato import FeatureStore  # noqa: E402
from strato.config import write_default_config  # noqa: E402


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    write_default_config(tmp_path, "proj")
    return tmp_path


@pytest.fixture
def store(repo: Path) -> Iterator[FeatureStore]:
    with FeatureStore(repo) as s:
        assert s.config.online_type == "lmdb"
        yield s
