"""Fixtures of the offline contract suite: every registered offline engine, real Delta tables.

Each test that takes `offline_engine` runs once per engine registered under the
``strato.offline`` entry-point group, so a new engine (Spark) is tested by this suite as
soon as it is registered. History tables live in a fresh place per test, once in a local
folder (`tmp_path`) and once in an object store: a prefix of a bucket on the session's real
S3-compatible server (tests/engines/s3), skipped, saying why, where Java or Maven is missing.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


#: pyspark leaves the loopback socket of every collect to the garbage collector (pyspark.util.
#: local_connect_and_auth); that is pyspark's, not Strato's, so Spark's tests ignore just that.
SPARK_SOCKETS = pytest.mark.filterwarnings("ignore:unclosed <socket.socket:ResourceWarning")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "[spark" in item.nodeid:
            item.add_marker(SPARK_SOCKETS)


@pytest.fixture(scope="session", params=ENGINES)
def offline_engine(request: pytest.FixtureRequest) -> Iterator[OfflineEngine]:
    if request.param == "spark":
        # One SparkSession for the whole pytest session, shared with tests/engines/spark.
        from engines.spark import harness

        yield harness.engine()
        return
    with open_engine(request.param) as engine:
        yield engine


@pytest.fixture
def sql_engine(offline_engine: OfflineEngine) -> OfflineEngine:
    """`offline_engine`, for tests of `sql`: skipped, saying why, on an engine without it."""
    if not offline_engine.capabilities.sql:
        pytest.skip(f"offline engine {offline_engine.name} declares no sql capability (no sandbox for user SQL)")
    return offline_engine


@pytest.fixture(scope="session")
def s3_server() -> Iterator[Any]:
    from engines.s3 import harness

    yield harness.server()
    harness.stop()


@pytest.fixture(params=["local", "s3"])
def tables(request: pytest.FixtureRequest, tmp_path: Path) -> DeltaTables:
    if request.param == "local":
        return DeltaTables(str(tmp_path / "offline"), "proj")
    from engines.s3 import harness

    server = request.getfixturevalue("s3_server")
    return DeltaTables(harness.new_root("contract"), "proj", server.storage_options)
