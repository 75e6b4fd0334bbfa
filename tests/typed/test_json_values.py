"""``json`` values: round trip into typed Avro, tombstones, and non-conforming JSON to the dead-letter queue."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from archiver.values.base import schema_fingerprint
from tests.kafka_events import BASE_TIMESTAMP, kafka_event, kafka_record
from tests.typed.conftest import TypedAws, make_archiver, write_schema
from tests.typed.schemas import HEADER_LIKE, ORDER_V1, order


def json_bytes(document: object) -> bytes:
    return json.dumps(document).encode()


def test_json_values_round_trip_into_typed_records(aws: TypedAws, schemas_dir: Path) -> None:
    write_schema(schemas_dir, "orders.avsc", ORDER_V1)
    records = [
        kafka_record("orders", 0, n, value=json_bytes(order(n)), headers=[("trace", b"\x00\xff"), ("trace", b"2")])
        for n in (10, 11)
    ]
    records.append(kafka_record("orders", 0, 12, value=None))  # a tombstone stays a null value
    archiver = make_archiver(aws, {"orders": {"format": "json", "schema": "orders.avsc"}}, schemas_dir)

    summary = archiver.archive(kafka_event(records))

    fingerprint = schema_fingerprint(ORDER_V1)
    (key,) = summary.keys_written
    assert key == f"topics/orders/partition=0/orders+0+{10:020d}+{fingerprint}.avro"
    assert summary.records_archived == 3
    assert aws.dead_letters() == []
    schema, archived = aws.read(key)
    assert schema["name"] == "kafka_s3_archiver.typed.v1.KafkaRecord"
    assert [r["offset"] for r in archived] == [10, 11, 12]
    for record, n in zip(archived[:2], (10, 11), strict=True):
        assert record["value"] == order(n)
        assert record["value_schema_id"] == f"avsc:{fingerprint}"
        assert record["topic"] == "orders"
        assert record["partition"] == 0
        assert record["key"] == f"order-{n}".encode()
        assert record["timestamp"].timestamp() * 1000 == BASE_TIMESTAMP + n * 1000
        assert record["timestamp_type"] == "CREATE_TIME"
        assert record["headers"] == [{"key": "trace", "value": b"\x00\xff"}, {"key": "trace", "value": b"2"}]
    assert archived[2]["value"] is None
    assert archived[2]["value_schema_id"] is None


def test_non_conforming_json_goes_to_the_dead_letter_queue_with_the_reason(aws: TypedAws, schemas_dir: Path) -> None:
    write_schema(schemas_dir, "orders.avsc", ORDER_V1)
    wrong_type = order(1, amount="a lot")
    missing = {k: v for k, v in order(2).items() if k != "country"}
    unknown_field = order(3, coupon="XMAS")
    bad_enum = order(4, status="LOST")
    values = {1: json_bytes(wrong_type), 2: json_bytes(missing), 3: json_bytes(unknown_field), 4: json_bytes(bad_enum)}
    values |= {5: b"{not json", 6: json_bytes(order(6))}
    event = kafka_event([kafka_record("orders", 0, n, value=value) for n, value in values.items()])

    summary = make_archiver(aws, {"orders": {"format": "json", "schema": "orders.avsc"}}, schemas_dir).archive(event)

    assert summary.records_archived == 1
    assert summary.records_dead_lettered == 5
    letters = {letter["offset"]: letter for letter in aws.dead_letters()}
    assert sorted(letters) == [1, 2, 3, 4, 5]
    assert {letters[n]["reason"] for n in (1, 2, 3, 4)} == {"non-conforming-value"}
    assert "Order.amount" in letters[1]["errorMessage"]
    assert "Order.country" in letters[2]["errorMessage"]
    assert "coupon" in letters[3]["errorMessage"]
    assert "Order.status" in letters[4]["errorMessage"]
    assert letters[5]["reason"] == "undecodable-value"
    assert letters[5]["errorClass"] == "ValueDecodeError"
    # The dead letter carries the value exactly as delivered, ready to replay once the schema is fixed.
    assert base64.b64decode(letters[3]["record"]["value"]) == json_bytes(unknown_field)
    (key,) = summary.keys_written
    assert [r["value"] for r in aws.read(key)[1]] == [order(6)]


def test_a_record_without_namespace_named_header_does_not_clash(aws: TypedAws, schemas_dir: Path) -> None:
    write_schema(schemas_dir, "sensors.avsc", HEADER_LIKE)
    event = kafka_event([kafka_record("sensors", 0, 0, value=json_bytes({"sensor": "s1", "reading": 0.5}))])

    summary = make_archiver(aws, {"sensors": {"format": "json", "schema": "sensors.avsc"}}, schemas_dir).archive(event)

    schema, archived = aws.read(summary.keys_written[0])
    assert archived[0]["value"] == {"sensor": "s1", "reading": 0.5}
    value_type = next(f["type"] for f in schema["fields"] if f["name"] == "value")
    assert value_type[1]["name"] == "Header"  # its own full name, not kafka_s3_archiver.typed.v1.Header


def test_raw_topics_next_to_typed_ones_keep_the_envelope(aws: TypedAws, schemas_dir: Path) -> None:
    write_schema(schemas_dir, "orders.avsc", ORDER_V1)
    event = kafka_event(
        [kafka_record("orders", 0, 0, value=json_bytes(order(0))), kafka_record("audit", 0, 0, value=b"\x01raw")]
    )
    formats = {"orders": {"format": "json", "schema": "orders.avsc"}, "audit": {"format": "raw"}}

    summary = make_archiver(aws, formats, schemas_dir).archive(event)

    raw_key = next(k for k in summary.keys_written if "/audit/" in k)
    assert raw_key.endswith(f"audit+0+{0:020d}.avro")  # no fingerprint: the envelope schema
    schema, archived = aws.read(raw_key)
    assert schema["name"] == "kafka_s3_archiver.envelope.v1.KafkaRecord"
    assert archived[0]["value"] == b"\x01raw"


def test_tombstones_lead_into_the_first_run_and_alone_get_the_null_schema(aws: TypedAws, schemas_dir: Path) -> None:
    write_schema(schemas_dir, "orders.avsc", ORDER_V1)
    hour = 3_600_000
    records = [kafka_record("orders", 0, 0, value=None, timestamp=BASE_TIMESTAMP)]
    records.append(kafka_record("orders", 0, 1, value=json_bytes(order(1)), timestamp=BASE_TIMESTAMP))
    records.append(kafka_record("orders", 0, 2, value=None, timestamp=BASE_TIMESTAMP + hour))  # next hour, alone
    formats = {"orders": {"format": "json", "schema": "orders.avsc"}}

    summary = make_archiver(aws, formats, schemas_dir, partitioner="time").archive(kafka_event(records))

    first, second = summary.keys_written
    hour_12 = "topics/orders/year=2024/month=05/day=01/hour=12"
    assert first == f"{hour_12}/orders+0+{0:020d}+{schema_fingerprint(ORDER_V1)}.avro"
    assert [r["value"] for r in aws.read(first)[1]] == [None, order(1)]
    assert second.endswith(f"hour=13/orders+0+{2:020d}+{schema_fingerprint('null')}.avro")
    schema, archived = aws.read(second)
    assert next(f["type"] for f in schema["fields"] if f["name"] == "value") == "null"
    assert archived[0]["value"] is None
