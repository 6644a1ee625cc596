"""The session's Kafka broker as a fixture (see harness.py); stopped by PID at session end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from . import harness
from .broker import KafkaBroker


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[KafkaBroker]:
    yield harness.broker()
    harness.stop()
