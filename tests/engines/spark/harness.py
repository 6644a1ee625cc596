"""Harness of the Spark offline engine: one SparkSession for the whole pytest session.

Spark's start-up (JVM, delta-spark jars from the Ivy cache) takes seconds, so every test that
needs Spark — the offline contract suite and tests/engines/spark — shares one engine on the
process's one session, small enough for a shared 2-core machine (local[2], 1 GB driver,
2 shuffle partitions), with Hadoop's S3A connector loaded for the object-storage runs. Without Java the tests skip, saying so; any other failure to start is
a test failure.
"""

from __future__ import annotations

import atexit
import os
import shutil

import pytest

from strato.offline.engines.spark import SparkOfflineEngine, SparkOptions, stop_session

OPTIONS = SparkOptions(master="local[2]", driver_memory="1g", shuffle_partitions=2)
_ENGINE: list[SparkOfflineEngine] = []


def engine() -> SparkOfflineEngine:
    """The shared engine, its session started on the first call (skips without Java)."""
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("Spark needs Java 17+: no java on PATH and no JAVA_HOME")
    if not _ENGINE:
        started = SparkOfflineEngine.open(OPTIONS)
        # With the S3A connector, so the offline contract suite runs on object storage too.
        started.serve_storage("s3://")
        started.spark  # noqa: B018 - start it now, once, rather than inside the first test's timing
        _ENGINE.append(started)
        atexit.register(stop_session)
    return _ENGINE[0]
