"""`KafkaSource` definitions and the per-message decoder of `strato ingest` (no broker needed)."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import fastavro
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strato import Entity, FeatureStore, FeatureView, Field, Float64, Int32, Int64, KafkaSource, List, String
from strato.config import write_default_config
from strato.errors import DefinitionError, UserError
from strato.streaming.decode import MessageDecoder, client_config

USER = Entity("user", join_keys={"user_id": Int64})
AVRO = {
    "type": "record",
    "name": "Swipe",
    "fields": [
        {"name": "uid", "type": "long"},
        {"name": "amount", "type": "double"},
        {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    ],
}


def view(source: KafkaSource, *extra: Field) -> FeatureView:
    return FeatureView(
        "swipes", entities=[USER], schema=[Field("amount", Float64), *extra], source=source, timestamp_field="ts"
    )


def decoder(source: KafkaSource, *extra: Field, repo: Path = Path(".")) -> MessageDecoder:
    return MessageDecoder(view(source, *extra), source, repo=repo, max_future_seconds=3600)


NOW_US = int(datetime(2026, 6, 1, tzinfo=UTC).timestamp() * 1e6)


def test_kafka_source_round_trips_through_the_registry(tmp_path: Path) -> None:
    write_default_config(tmp_path, "proj")
    source = KafkaSource(
        "swipes",
        "127.0.0.1:9092",
        format="avro",
        avro_schema=json.dumps(AVRO),
        field_mapping={"uid": "user_id"},
        timestamp_field="ts",
        allowed_lateness=timedelta(minutes=5),
        dead_letter_topic="swipes-bad",
        config={"security.protocol": "SASL_SSL", "sasl.password": "${KAFKA_PASSWORD}"},
    )
    with FeatureStore(tmp_path) as store:
        store.apply([USER, view(source)])
        stored = store.get_feature_view("swipes").source
    assert stored == source
    assert isinstance(stored, KafkaSource)
    assert stored.dead_letters == "swipes-bad"
    assert KafkaSource("t", "h:1").dead_letters == "t.dlq"


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: KafkaSource("", "h:1"), "topic must be a non-empty string"),
        (lambda: KafkaSource("t", "h:1", format="xml"), "format must be 'json' or 'avro'"),  # type: ignore[arg-type]
        (lambda: KafkaSource("t", "h:1", format="avro"), "needs exactly one of avro_schema"),
        (lambda: KafkaSource("t", "h:1", format="avro", avro_schema="{"), "avro_schema is not valid JSON"),
        (lambda: KafkaSource("t", "h:1", avro_schema="{}"), "only for format 'avro'"),
        (lambda: KafkaSource("t", "h:1", field_mapping={"a": "x", "b": "x"}), "same column"),
        (lambda: KafkaSource("t", "h:1", allowed_lateness=timedelta(-1)), "allowed_lateness"),
        (lambda: KafkaSource("t", "h:1", config={"group.id": "g"}), "may not set ['group.id']"),
        (lambda: KafkaSource("t", "h:1", max_message_bytes=0), "max_message_bytes"),
    ],
)
def test_kafka_source_refuses_bad_settings(build: Any, message: str) -> None:
    with pytest.raises(DefinitionError, match=message.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(")):
        build()


def test_client_config_reads_secrets_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    source = KafkaSource("t", "h:1", config={"sasl.password": "${KP}", "sasl.username": "u"})
    monkeypatch.setenv("KP", "s3cret")
    assert client_config(source) == {"sasl.password": "s3cret", "sasl.username": "u"}
    monkeypatch.delenv("KP")
    with pytest.raises(UserError, match=r"\$\{KP\}, which is not set"):
        client_config(source)


def test_json_rows_keep_good_messages_beside_bad_ones() -> None:
    d = decoder(KafkaSource("t", "h:1", field_mapping={"uid": "user_id"}, max_message_bytes=200), Field("n", Int32))
    good = {"uid": 1, "amount": 2.5, "ts": "2026-05-01T00:00:00Z", "n": 3}
    values = [
        json.dumps(good).encode(),
        b"{oops",
        json.dumps({**good, "n": 2**40}).encode(),  # out of int32 range
        json.dumps({**good, "amount": True}).encode(),
        json.dumps({**good, "ts": 1_777_593_600_000}).encode(),  # epoch ms
        b"x" * 201,
        None,
        json.dumps({**good, "ts": "2036-01-01T00:00:00"}).encode(),  # too far in the future
        json.dumps({"uid": 2, "ts": "2026-05-01T00:00:01+02:00"}).encode(),  # absent feature: null
    ]
    out = d.decode(values, [0] * len(values), {}, now_us=NOW_US)
    assert out.kept == [0, 4, 8]
    assert [x.index for x in out.dead] == [1, 2, 3, 5, 6, 7]
    reasons = [x.reason for x in out.dead]
    assert reasons[0].startswith("bad JSON")
    assert "out of range for int32" in reasons[1]
    assert "field 'amount': expected a number" in reasons[2]
    assert reasons[3].startswith("oversized: 201 bytes")
    assert reasons[4].startswith("empty")
    assert "in the future" in reasons[5]
    rows = out.rows.to_pylist()
    assert [r["user_id"] for r in rows] == [1, 1, 2]
    assert rows[0]["ts"] == rows[1]["ts"] == datetime(2026, 5, 1, tzinfo=UTC)
    assert rows[2]["amount"] is None
    assert rows[2]["ts"] == datetime(2026, 4, 30, 22, 0, 1, tzinfo=UTC)


def test_nested_values_arrow_refuses_drop_only_their_row() -> None:
    d = decoder(KafkaSource("t", "h:1", timestamp_unit="s"), Field("tags", List(String)))
    values = [
        json.dumps({"user_id": 1, "amount": 1.0, "ts": 1_777_000_000, "tags": ["a"]}).encode(),
        json.dumps({"user_id": 2, "amount": 1.0, "ts": 1_777_000_000, "tags": [1, {"x": 2}]}).encode(),
    ]
    out = d.decode(values, [0, 0], {}, now_us=NOW_US)
    assert out.kept == [0]
    assert out.dead[0].index == 1
    assert "field 'tags'" in out.dead[0].reason


def test_avro_inline_and_from_a_file(tmp_path: Path) -> None:
    def datum(record: dict[str, Any]) -> bytes:
        buffer = io.BytesIO()
        fastavro.schemaless_writer(buffer, fastavro.parse_schema(AVRO), record)
        return buffer.getvalue()

    (tmp_path / "swipe.avsc").write_text(json.dumps(AVRO))
    record = {"uid": 7, "amount": 9.5, "ts": datetime(2026, 5, 2, tzinfo=UTC)}
    for source in (
        KafkaSource("t", "h:1", format="avro", avro_schema=json.dumps(AVRO), field_mapping={"uid": "user_id"}),
        KafkaSource("t", "h:1", format="avro", avro_schema_file="swipe.avsc", field_mapping={"uid": "user_id"}),
    ):
        out = decoder(source, repo=tmp_path).decode([datum(record), b"\x01"], [0, 0], {}, now_us=NOW_US)
        assert out.rows.to_pylist() == [{"user_id": 7, "amount": 9.5, "ts": record["ts"]}]
        assert out.dead[0].reason.startswith("bad Avro")
    missing = KafkaSource("t", "h:1", format="avro", avro_schema_file="nope.avsc")
    with pytest.raises(UserError, match="cannot read avro_schema_file"):
        decoder(missing, repo=tmp_path)
    with pytest.raises(UserError, match="invalid Avro schema"):
        decoder(KafkaSource("t", "h:1", format="avro", avro_schema='{"type": "nope"}'))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 1), st.integers(0, 100)), max_size=40),
    st.integers(0, 30),
    st.booleans(),
)
def test_lateness_follows_the_newest_event_per_partition(
    events: list[tuple[int, int]], lateness: int, one_bad: bool
) -> None:
    """Per column (a clean batch) or message by message (one bad message in it): same rows."""
    d = decoder(KafkaSource("t", "h:1", timestamp_unit="s", allowed_lateness=timedelta(seconds=lateness)))
    base = 1_777_000_000
    values = [json.dumps({"user_id": 1, "amount": 1.0, "ts": base + s}).encode() for _, s in events]
    partitions = [p for p, _ in events]
    if one_bad:
        values.append(json.dumps({"user_id": "x", "amount": 1.0, "ts": base}).encode())
        partitions.append(0)
    out = d.decode(values, partitions, {}, now_us=NOW_US)
    newest: dict[int, int] = {}
    expected_kept = []
    for i, (p, s) in enumerate(events):
        if p in newest and s < newest[p] - lateness:
            continue
        newest[p] = max(newest.get(p, s), s)
        expected_kept.append(i)
    assert out.kept == expected_kept
    assert out.rows.num_rows == len(expected_kept)
    late = [x for x in out.dead if x.index < len(events)]
    assert all(x.reason.startswith("late:") for x in late)
    assert len(late) == len(events) - len(expected_kept)
