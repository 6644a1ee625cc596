"""The development broker itself: a real Kafka that takes and returns messages."""

from __future__ import annotations

from confluent_kafka import Consumer, Producer

from . import harness
from .broker import KafkaBroker, cache_dir


def test_broker_round_trips_messages_and_reuses_its_jar_cache(kafka_broker: KafkaBroker) -> None:
    assert (cache_dir() / ".complete").exists()
    topic = harness.new_topic(partitions=2)
    producer = Producer({"bootstrap.servers": kafka_broker.bootstrap_servers})
    for i in range(10):
        producer.produce(topic, value=str(i).encode(), key=str(i).encode())
    assert producer.flush(10) == 0
    consumer = Consumer(
        {"bootstrap.servers": kafka_broker.bootstrap_servers, "group.id": "g", "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([topic])
    seen: set[bytes] = set()
    for _ in range(100):
        message = consumer.poll(0.5)
        if message is not None and message.error() is None:
            seen.add(message.value())
        if len(seen) == 10:
            break
    consumer.close()
    assert seen == {str(i).encode() for i in range(10)}
