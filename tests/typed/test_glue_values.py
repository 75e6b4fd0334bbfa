"""``avro-glue`` against moto's Glue Schema Registry: wire format (plain and zlib), caching, unknown version ids,
evolution, and Glue outages (which raise)."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from archiver.errors import SchemaRegistryError
from archiver.values.base import schema_fingerprint
from tests.kafka_events import kafka_event, kafka_record
from tests.typed.conftest import REGION, TypedAws, glue_value, make_archiver, write_schema
from tests.typed.schemas import ORDER_V1, ORDER_V2, order

REGISTRY = "streams"


def registry_arn() -> str:
    return f"arn:aws:glue:{REGION}:123456789012:registry/{REGISTRY}"


def register_versions(aws: TypedAws) -> tuple[str, str]:
    """Schema "orders" with v1 then v2 (BACKWARD compatible), as a producer's serializer would register them."""
    aws.glue.create_registry(RegistryName=REGISTRY)
    v1 = aws.glue.create_schema(
        RegistryId={"RegistryName": REGISTRY},
        SchemaName="orders",
        DataFormat="AVRO",
        Compatibility="BACKWARD",
        SchemaDefinition=json.dumps(ORDER_V1),
    )["SchemaVersionId"]
    v2 = aws.glue.register_schema_version(
        SchemaId={"RegistryName": REGISTRY, "SchemaName": "orders"}, SchemaDefinition=json.dumps(ORDER_V2)
    )["SchemaVersionId"]
    return v1, v2


def formats(**extra: str) -> dict[str, Any]:
    return {"clicks": {"format": "avro-glue", "registryArn": registry_arn(), **extra}}


def test_glue_wire_format_round_trip_plain_and_zlib_with_caching(aws: TypedAws, schemas_dir: Path) -> None:
    v1, _ = register_versions(aws)
    values = [glue_value(v1, ORDER_V1, order(n), compress=n % 2 == 1) for n in range(4)]
    archiver = make_archiver(aws, formats(), schemas_dir)

    first = archiver.archive(kafka_event([kafka_record("clicks", 2, n, value=v) for n, v in enumerate(values)]))
    archiver.archive(kafka_event([kafka_record("clicks", 2, 4, value=glue_value(v1, ORDER_V1, order(4)))]))

    assert aws.glue_calls == [v1]  # five records, two batches: one GetSchemaVersion
    (key,) = first.keys_written
    assert key.endswith(f"clicks+2+{0:020d}+{schema_fingerprint(ORDER_V1)}.avro")
    archived = aws.read(key)[1]
    assert [r["value"] for r in archived] == [order(n) for n in range(4)]
    assert {r["value_schema_id"] for r in archived} == {v1}


def test_the_powertools_sample_glue_value_decodes(aws: TypedAws, schemas_dir: Path) -> None:
    # The value of Powertools' examples/kafka/consumer/events/kafka_event_avro.json: header 03 00, a UUID, then
    # the Avro body of {"name": "Powertools", "age": 5}.
    sample = "AwBXT2qalUhN6oaj2CwEeaEWFFBvd2VydG9vbHMK"
    user = {
        "type": "record",
        "name": "User",
        "fields": [{"name": "name", "type": "string"}, {"name": "age", "type": "int"}],
    }
    aws.glue.create_registry(RegistryName=REGISTRY)
    version = aws.glue.create_schema(
        RegistryId={"RegistryName": REGISTRY},
        SchemaName="users",
        DataFormat="AVRO",
        Compatibility="NONE",
        SchemaDefinition=json.dumps(user),
    )["SchemaVersionId"]
    record = kafka_record("clicks", 0, 0)
    # Swap the sample's schema version id for the one moto assigned; the header and the body stay as published.
    raw = bytearray(base64.b64decode(sample))
    assert (raw[0], raw[1]) == (3, 0)
    raw[2:18] = uuid.UUID(version).bytes
    record["value"] = base64.b64encode(bytes(raw)).decode()

    summary = make_archiver(aws, formats(), schemas_dir).archive(kafka_event([record]))

    assert aws.read(summary.keys_written[0])[1][0]["value"] == {"name": "Powertools", "age": 5}


def test_an_unknown_schema_version_is_dead_lettered(aws: TypedAws, schemas_dir: Path) -> None:
    v1, _ = register_versions(aws)
    unknown = str(uuid.uuid4())
    values = [glue_value(v1, ORDER_V1, order(0)), glue_value(unknown, ORDER_V1, order(1))]
    event = kafka_event([kafka_record("clicks", 0, n, value=value) for n, value in enumerate(values)])

    summary = make_archiver(aws, formats(), schemas_dir).archive(event)

    (letter,) = aws.dead_letters()
    assert (letter["offset"], letter["reason"]) == (1, "unknown-schema")
    assert f"schema version {unknown} is not in the Glue Schema Registry" in letter["errorMessage"]
    assert summary.records_archived == 1


def test_evolution_between_two_versions_with_and_without_a_reader_schema(aws: TypedAws, schemas_dir: Path) -> None:
    v1, v2 = register_versions(aws)
    write_schema(schemas_dir, "orders-v2.avsc", ORDER_V2)
    values = [glue_value(v1, ORDER_V1, order(0)), glue_value(v2, ORDER_V2, order(1, channel="app"))]
    event = kafka_event([kafka_record("clicks", 0, n, value=value) for n, value in enumerate(values)])

    as_written = make_archiver(aws, formats(), schemas_dir).archive(event).keys_written
    resolved = make_archiver(aws, formats(readerSchema="orders-v2.avsc"), schemas_dir, archive_prefix="resolved/")
    with_reader = resolved.archive(event).keys_written

    assert [key.rsplit("+", 1)[1] for key in as_written] == [
        f"{schema_fingerprint(s)}.avro" for s in (ORDER_V1, ORDER_V2)
    ]
    assert [r["value"] for key in as_written for r in aws.read(key)[1]] == [order(0), order(1, channel="app")]
    assert [r["value"] for key in with_reader for r in aws.read(key)[1]] == [
        order(0, channel="web"),
        order(1, channel="app"),
    ]


def test_glue_errors_other_than_not_found_raise(aws: TypedAws, schemas_dir: Path) -> None:
    v1, _ = register_versions(aws)

    def throttled(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "GetSchemaVersion")

    aws.glue.meta.events.register("before-call.glue.GetSchemaVersion", throttled)
    event = kafka_event([kafka_record("clicks", 0, 0, value=glue_value(v1, ORDER_V1, order(0)))])

    with pytest.raises(SchemaRegistryError, match="ThrottlingException"):
        make_archiver(aws, formats(), schemas_dir).archive(event)
    assert aws.keys() == []


def test_bad_glue_headers_are_dead_lettered(aws: TypedAws, schemas_dir: Path) -> None:
    v1, _ = register_versions(aws)
    good = glue_value(v1, ORDER_V1, order(0))
    values = [b"\x00" + good[1:], bytes([3, 9]) + good[2:], bytes([3, 5]) + good[2:], good[:10]]
    event = kafka_event([kafka_record("clicks", 0, n, value=value) for n, value in enumerate(values)])

    make_archiver(aws, formats(), schemas_dir).archive(event)

    letters = {letter["offset"]: letter for letter in aws.dead_letters()}
    assert {letters[n]["reason"] for n in range(4)} == {"undecodable-value"}
    assert "compression byte 9" in letters[1]["errorMessage"]
    assert "does not inflate" in letters[2]["errorMessage"]
