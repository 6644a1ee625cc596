"""Harness of the Kafka tests: one real single-node broker (`broker.KafkaBroker`) per test session.

The broker starts on first use, on free loopback ports in a temporary directory, and is
stopped by its PID when the session ends. Each test makes its own topics (`new_topic`), so
tests never see each other's messages. Where Java or Maven is missing, the tests using it
skip and say why.
"""

from __future__ import annotations

import itertools
import sys
import types
import uuid

import pytest

from .broker import BrokerUnavailable, KafkaBroker, free_port

__all__ = ["broker", "free_port", "new_topic", "stop"]

_STATE = sys.modules.setdefault("_strato_kafka_harness_state", types.ModuleType("_strato_kafka_harness_state"))
if not hasattr(_STATE, "counter"):
    _STATE.broker = None
    _STATE.counter = itertools.count()
    _STATE.run = uuid.uuid4().hex[:8]


def broker() -> KafkaBroker:
    """The session's shared broker, started on first use."""
    shared: KafkaBroker | None = _STATE.broker
    if shared is None or shared.process is None or shared.process.poll() is not None:
        try:
            shared = _STATE.broker = KafkaBroker().start()
        except BrokerUnavailable as exc:
            pytest.skip(str(exc))
    return shared


def stop() -> None:
    shared: KafkaBroker | None = _STATE.broker
    _STATE.broker = None
    if shared is not None:
        shared.stop()


def new_topic(partitions: int = 1, prefix: str = "t") -> str:
    """A fresh topic on the session's broker, created with `partitions` partitions."""
    from confluent_kafka.admin import AdminClient, NewTopic

    name = f"{prefix}-{_STATE.run}-{next(_STATE.counter)}"
    admin = AdminClient({"bootstrap.servers": broker().bootstrap_servers})
    for future in admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)]).values():
        future.result(timeout=30)
    return name
