"""`KafkaSource`: a Kafka topic whose messages are a view's rows (consumed by `strato ingest`).

Pure data, checked on construction and stored in the registry like `FileSource`; nothing
here talks to a broker or reads a file (an Avro schema file is read when ingest starts).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

from strato.errors import DefinitionError

ValueFormat = Literal["json", "avro"]
TimestampUnit = Literal["s", "ms", "us"]

#: Client settings Strato sets itself: passing them in `config` would break its guarantees.
_OWNED_SETTINGS = frozenset(
    {"bootstrap.servers", "group.id", "enable.auto.commit", "enable.auto.offset.store", "isolation.level"}
)

DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024


@dataclass(frozen=True)
class KafkaSource:
    """Rows of a view arrive as messages on a Kafka topic, one row per message.

    - `topic`, `bootstrap_servers`: where to read. `config` is passed to the Kafka client as
      is (librdkafka names: ``security.protocol``, ``sasl.mechanism``, ``sasl.username``,
      ``ssl.ca.location``…); a value written ``${NAME}`` is read from the environment variable
      NAME when ingest starts, so secrets need not be stored in the registry.
    - `format`: ``json`` (one object per message) or ``avro`` (one binary datum per message,
      schemaless, in `avro_schema`, given inline as JSON or as `avro_schema_file`, a path
      relative to the feature repo).
    - `field_mapping`: message field → view column, for fields named differently; unmapped
      fields are matched by name and extra fields are ignored.
    - `timestamp_field`: the message field holding the event time (default: the view's
      event time column): an ISO-8601 string, or a number in `timestamp_unit` since the epoch.
    - `allowed_lateness`: an event older than the newest event time seen on its partition
      minus this goes to the dead-letter topic (reason ``late``); None accepts any lateness.
    - `dead_letter_topic` (default ``<topic>.dlq``) receives every message that cannot
      become a row, with the reason and its source topic, partition and offset as headers.
    - `max_message_bytes`: larger messages are refused (dead-lettered without their
      payload), never decoded.
    """

    topic: str
    bootstrap_servers: str
    format: ValueFormat = "json"
    avro_schema: str | None = None
    avro_schema_file: str | None = None
    field_mapping: Mapping[str, str] = field(default_factory=dict)
    timestamp_field: str | None = None
    timestamp_unit: TimestampUnit = "ms"
    allowed_lateness: timedelta | None = None
    dead_letter_topic: str | None = None
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    config: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        where = f"KafkaSource {self.topic!r}"
        for name in ("topic", "bootstrap_servers"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise DefinitionError(f"KafkaSource: {name} must be a non-empty string, got {value!r}")
        if self.format not in ("json", "avro"):
            raise DefinitionError(f"{where}: format must be 'json' or 'avro', got {self.format!r}")
        if self.format == "avro":
            if (self.avro_schema is None) == (self.avro_schema_file is None):
                raise DefinitionError(f"{where}: format 'avro' needs exactly one of avro_schema or avro_schema_file")
            if self.avro_schema is not None:
                try:
                    json.loads(self.avro_schema)
                except (TypeError, ValueError) as exc:
                    raise DefinitionError(f"{where}: avro_schema is not valid JSON ({exc})") from None
        elif self.avro_schema is not None or self.avro_schema_file is not None:
            raise DefinitionError(f"{where}: avro_schema is only for format 'avro'")
        if not isinstance(self.field_mapping, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in self.field_mapping.items()
        ):
            raise DefinitionError(f"{where}: field_mapping must map message field names to column names")
        if len(set(self.field_mapping.values())) != len(self.field_mapping):
            raise DefinitionError(f"{where}: field_mapping maps two fields to the same column")
        if self.timestamp_field is not None and (not isinstance(self.timestamp_field, str) or not self.timestamp_field):
            raise DefinitionError(f"{where}: timestamp_field must be a non-empty string or None")
        if self.timestamp_unit not in ("s", "ms", "us"):
            raise DefinitionError(f"{where}: timestamp_unit must be 's', 'ms' or 'us', got {self.timestamp_unit!r}")
        if self.allowed_lateness is not None and (
            not isinstance(self.allowed_lateness, timedelta) or self.allowed_lateness < timedelta(0)
        ):
            raise DefinitionError(f"{where}: allowed_lateness must be a timedelta >= 0 or None")
        if not isinstance(self.max_message_bytes, int) or self.max_message_bytes < 1:
            raise DefinitionError(f"{where}: max_message_bytes must be a positive integer")
        if not isinstance(self.config, Mapping) or not all(isinstance(k, str) for k in self.config):
            raise DefinitionError(f"{where}: config must map client setting names to values")
        owned = sorted(set(self.config) & _OWNED_SETTINGS)
        if owned:
            raise DefinitionError(f"{where}: config may not set {owned}: strato ingest sets them itself")
        object.__setattr__(self, "field_mapping", dict(self.field_mapping))
        object.__setattr__(self, "config", {k: str(v) for k, v in self.config.items()})

    def __hash__(self) -> int:
        return hash((self.topic, self.bootstrap_servers))

    @property
    def dead_letters(self) -> str:
        """The dead-letter topic: `dead_letter_topic`, else ``<topic>.dlq``."""
        return self.dead_letter_topic or f"{self.topic}.dlq"

    def to_spec(self) -> dict[str, Any]:
        """Plain data for the registry (JSON-serializable)."""
        return {
            "type": "kafka",
            "topic": self.topic,
            "bootstrap_servers": self.bootstrap_servers,
            "format": self.format,
            "avro_schema": self.avro_schema,
            "avro_schema_file": self.avro_schema_file,
            "field_mapping": dict(self.field_mapping),
            "timestamp_field": self.timestamp_field,
            "timestamp_unit": self.timestamp_unit,
            "allowed_lateness_seconds": (
                self.allowed_lateness.total_seconds() if self.allowed_lateness is not None else None
            ),
            "dead_letter_topic": self.dead_letter_topic,
            "max_message_bytes": self.max_message_bytes,
            "config": dict(self.config),
        }

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> KafkaSource:
        """Rebuild from `to_spec` data, validated like a new one."""
        lateness = spec.get("allowed_lateness_seconds")
        return cls(
            topic=spec["topic"],
            bootstrap_servers=spec["bootstrap_servers"],
            format=spec.get("format", "json"),
            avro_schema=spec.get("avro_schema"),
            avro_schema_file=spec.get("avro_schema_file"),
            field_mapping=spec.get("field_mapping") or {},
            timestamp_field=spec.get("timestamp_field"),
            timestamp_unit=spec.get("timestamp_unit", "ms"),
            allowed_lateness=timedelta(seconds=lateness) if lateness is not None else None,
            dead_letter_topic=spec.get("dead_letter_topic"),
            max_message_bytes=spec.get("max_message_bytes", DEFAULT_MAX_MESSAGE_BYTES),
            config=spec.get("config") or {},
        )
