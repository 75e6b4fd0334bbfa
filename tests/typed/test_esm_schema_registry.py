"""Records delivered by the event source mapping's own schema-registry integration.

With a ``SchemaRegistryConfig`` on the mapping, each record carries ``valueSchemaMetadata`` (``dataFormat``,
``schemaId``) next to the usual fields. ``EventRecordFormat: SOURCE`` delivers the value in its source format with
the registry header removed (a bare Avro body); ``JSON`` delivers the record as JSON text. Both arrive base64 in
``value`` like any Kafka value, and the key stays as produced.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.kafka_events import kafka_event, kafka_record
from tests.typed.conftest import Registry, TypedAws, avro_body, confluent_value, make_archiver
from tests.typed.schemas import ORDER_V1, order
from tests.typed.test_glue_values import formats as glue_formats
from tests.typed.test_glue_values import register_versions


def esm_record(offset: int, value: bytes, schema_id: str, data_format: str = "AVRO") -> dict[str, Any]:
    record = kafka_record("payments", 0, offset, value=value)
    record["valueSchemaMetadata"] = {"dataFormat": data_format, "schemaId": schema_id}
    record["keySchemaMetadata"] = {"dataFormat": "STRING"}  # hypothetical for a plain string key; ignored
    return record


def confluent(registry: Registry, esm_record_format: str) -> dict[str, Any]:
    return {"payments": {"format": "avro-confluent", "registryUrl": registry.url, "esmRecordFormat": esm_record_format}}


def test_source_format_bare_avro_bodies(aws: TypedAws, registry: Registry, schemas_dir: Path) -> None:
    registry.register(7, ORDER_V1)
    records = [
        esm_record(0, avro_body(ORDER_V1, order(0)), "7"),
        esm_record(1, confluent_value(7, ORDER_V1, order(1)), "7"),  # header left in place: stripped as well
    ]

    summary = make_archiver(aws, confluent(registry, "SOURCE"), schemas_dir).archive(kafka_event(records))

    archived = aws.read(summary.keys_written[0])[1]
    assert [(r["value"], r["value_schema_id"]) for r in archived] == [(order(0), "7"), (order(1), "7")]
    assert [r["key"] for r in archived] == [b"order-0", b"order-1"]


def test_json_format_plain_and_avro_json_encodings(aws: TypedAws, registry: Registry, schemas_dir: Path) -> None:
    registry.register(7, ORDER_V1)
    plain = order(0)
    avro_json = {**order(1), "note": {"string": "wrapped union"}}  # Avro's JSON encoding of a union value
    records = [
        esm_record(0, json.dumps(plain).encode(), "7"),
        esm_record(1, json.dumps(avro_json).encode(), "7"),
        esm_record(2, json.dumps({"order_id": "two"}).encode(), "7"),
        esm_record(3, b"\x02not json", "7"),
    ]

    summary = make_archiver(aws, confluent(registry, "JSON"), schemas_dir).archive(kafka_event(records))

    archived = aws.read(summary.keys_written[0])[1]
    assert [r["value"] for r in archived] == [plain, {**order(1), "note": "wrapped union"}]
    letters = {letter["offset"]: letter["reason"] for letter in aws.dead_letters()}
    assert letters == {2: "non-conforming-value", 3: "undecodable-value"}


def test_glue_source_format_and_bad_schema_ids(aws: TypedAws, schemas_dir: Path) -> None:
    v1, _ = register_versions(aws)
    records = [esm_record(0, avro_body(ORDER_V1, order(0)), v1), esm_record(1, avro_body(ORDER_V1, order(1)), "7")]
    for record in records:
        record["topic"] = "clicks"
    event = kafka_event(records)

    summary = make_archiver(aws, glue_formats(), schemas_dir).archive(event)

    assert [r["value"] for r in aws.read(summary.keys_written[0])[1]] == [order(0)]
    (letter,) = aws.dead_letters()
    assert letter["reason"] == "undecodable-value"
    assert "'7' is not a Glue schema version id" in letter["errorMessage"]
