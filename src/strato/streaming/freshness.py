"""How fresh a Kafka-fed view is: the consumer group's lag, asked of the broker.

Shown by `strato describe` beside the view's newest event time and last write (both read
from its Delta table); `strato ingest` exports the same figures live as Prometheus metrics.
"""

from __future__ import annotations

from strato.definitions.kafka_source import KafkaSource
from strato.streaming.decode import client_config


def consumer_lag(source: KafkaSource, group: str, *, timeout: float = 5.0) -> tuple[int | None, str]:
    """(messages on the topic the group has not committed yet, a note); None when unknown.

    A group that never committed counts the whole topic (from its low watermark) as lag.
    """
    from confluent_kafka import Consumer, KafkaException, TopicPartition

    consumer = Consumer(
        {
            **client_config(source),
            "bootstrap.servers": source.bootstrap_servers,
            "group.id": group,
            "enable.auto.commit": False,
            "socket.timeout.ms": int(timeout * 1000),
            "log_level": 0,
        }
    )
    try:
        metadata = consumer.list_topics(source.topic, timeout=timeout)
        topic = metadata.topics.get(source.topic)
        if topic is None or topic.error is not None or not topic.partitions:
            return None, f"topic {source.topic!r} not found"
        partitions = [TopicPartition(source.topic, p) for p in sorted(topic.partitions)]
        committed = consumer.committed(partitions, timeout=timeout)
        lag = 0
        for tp in committed:
            low, high = consumer.get_watermark_offsets(tp, timeout=timeout)
            lag += max(high - (tp.offset if tp.offset >= 0 else low), 0)
        return lag, f"group {group}, {len(partitions)} partition(s)"
    except KafkaException as exc:
        return None, f"broker {source.bootstrap_servers} unavailable ({exc.args[0].str() if exc.args else exc})"
    finally:
        consumer.close()
