"""``avro-confluent`` against a local Confluent-compatible registry: round trip, caching, unknown ids, registry
outages, basic auth from Secrets Manager, and evolution between two compatible schema versions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from archiver.errors import SchemaRegistryError
from archiver.values.base import schema_fingerprint
from tests.kafka_events import kafka_event, kafka_record
from tests.typed.conftest import Registry, TypedAws, confluent_value, make_archiver, write_schema
from tests.typed.schemas import ORDER_V1, ORDER_V2, order

SECRET_ARN_NAME = "registry-auth"


def formats(registry: Registry, **extra: str) -> dict[str, Any]:
    return {"payments": {"format": "avro-confluent", "registryUrl": registry.url, **extra}}


def test_round_trip_and_one_registry_request_per_schema_id_per_container(
    aws: TypedAws, registry: Registry, schemas_dir: Path
) -> None:
    registry.register(7, ORDER_V1)
    archiver = make_archiver(aws, formats(registry), schemas_dir)
    first = kafka_event(
        [kafka_record("payments", 1, n, value=confluent_value(7, ORDER_V1, order(n))) for n in range(5)]
    )
    second = kafka_event([kafka_record("payments", 1, n, value=confluent_value(7, ORDER_V1, order(n))) for n in (5, 6)])

    keys = archiver.archive(first).keys_written + archiver.archive(second).keys_written

    assert registry.lookups(7) == 1  # seven records over two batches: the schema was fetched once
    assert keys == [
        f"topics/payments/partition=1/payments+1+{0:020d}+{schema_fingerprint(ORDER_V1)}.avro",
        f"topics/payments/partition=1/payments+1+{5:020d}+{schema_fingerprint(ORDER_V1)}.avro",
    ]
    schema, archived = aws.read(keys[0])
    assert [r["value"] for r in archived] == [order(n) for n in range(5)]
    assert {r["value_schema_id"] for r in archived} == {"7"}
    value_type = next(f["type"] for f in schema["fields"] if f["name"] == "value")
    assert value_type[1]["name"] == "shop.orders.Order"  # the object carries its value schema
    assert aws.dead_letters() == []


def test_an_unknown_schema_id_dead_letters_the_record_and_the_batch_succeeds(
    aws: TypedAws, registry: Registry, schemas_dir: Path
) -> None:
    registry.register(7, ORDER_V1)
    values = [confluent_value(7, ORDER_V1, order(0)), confluent_value(99, ORDER_V1, order(1))]
    values += [confluent_value(99, ORDER_V1, order(2)), confluent_value(7, ORDER_V1, order(3))]
    event = kafka_event([kafka_record("payments", 0, n, value=value) for n, value in enumerate(values)])

    summary = make_archiver(aws, formats(registry), schemas_dir).archive(event)

    letters = sorted(aws.dead_letters(), key=lambda letter: letter["offset"])
    assert [(letter["offset"], letter["reason"]) for letter in letters] == [
        (1, "unknown-schema"),
        (2, "unknown-schema"),
    ]
    assert letters[0]["errorClass"] == "UnknownSchemaError"
    assert f"schema id 99 is not in the schema registry {registry.url} (HTTP 404)" in letters[0]["errorMessage"]
    assert registry.lookups(99) == 1  # the miss is remembered for a while, not asked again for every record
    assert summary.records_archived == 2
    # Offsets 0 and 3 share a schema but are not contiguous once 1-2 left: still one object, 0..3.
    (key,) = summary.keys_written
    assert [r["offset"] for r in aws.read(key)[1]] == [0, 3]


def test_a_registry_outage_raises_so_the_batch_is_retried(aws: TypedAws, registry: Registry, schemas_dir: Path) -> None:
    registry.register(7, ORDER_V1)
    registry.failures = [503, 503, 503]
    event = kafka_event([kafka_record("payments", 0, 0, value=confluent_value(7, ORDER_V1, order(0)))])
    archiver = make_archiver(aws, formats(registry), schemas_dir)

    with pytest.raises(SchemaRegistryError, match="HTTP 503"):
        archiver.archive(event)
    assert aws.keys() == []
    assert aws.dead_letters() == []

    # The event source's retry, with the registry back: the same batch archives normally.
    assert archiver.archive(event).records_archived == 1


def test_transient_registry_errors_are_retried_within_the_invocation(
    aws: TypedAws, registry: Registry, schemas_dir: Path
) -> None:
    registry.register(7, ORDER_V1)
    registry.failures = [503, 429]
    event = kafka_event([kafka_record("payments", 0, 0, value=confluent_value(7, ORDER_V1, order(0)))])

    assert make_archiver(aws, formats(registry), schemas_dir).archive(event).records_archived == 1
    assert registry.lookups(7) == 3


def test_an_unreachable_registry_raises(aws: TypedAws, registry: Registry, schemas_dir: Path) -> None:
    dead = {"payments": {"format": "avro-confluent", "registryUrl": "http://127.0.0.1:9"}}  # discard port: refused
    event = kafka_event([kafka_record("payments", 0, 0, value=confluent_value(7, ORDER_V1, order(0)))])

    with pytest.raises(SchemaRegistryError, match="could not answer for schema id 7"):
        make_archiver(aws, dead, schemas_dir).archive(event)


def test_basic_auth_credentials_come_from_secrets_manager(aws: TypedAws, registry: Registry, schemas_dir: Path) -> None:
    registry.register(7, ORDER_V1)
    registry.credentials = ("archiver", "s3cr3t:with-colon")
    secret = aws.secrets.create_secret(
        Name=SECRET_ARN_NAME, SecretString=json.dumps({"username": "archiver", "password": "s3cr3t:with-colon"})
    )
    event = kafka_event([kafka_record("payments", 0, 0, value=confluent_value(7, ORDER_V1, order(0)))])

    archiver = make_archiver(aws, formats(registry, registryAuthSecretArn=secret["ARN"]), schemas_dir)

    assert archiver.archive(event).records_archived == 1


def test_wrong_credentials_raise_rather_than_dead_letter(aws: TypedAws, registry: Registry, schemas_dir: Path) -> None:
    registry.register(7, ORDER_V1)
    registry.credentials = ("archiver", "right")
    secret = aws.secrets.create_secret(Name=SECRET_ARN_NAME, SecretString="archiver:wrong")
    event = kafka_event([kafka_record("payments", 0, 0, value=confluent_value(7, ORDER_V1, order(0)))])

    with pytest.raises(SchemaRegistryError, match="HTTP 401"):
        make_archiver(aws, formats(registry, registryAuthSecretArn=secret["ARN"]), schemas_dir).archive(event)
    assert registry.lookups(7) == 1  # 401 is not transient: no retries


def test_values_not_in_confluent_wire_format_are_dead_lettered(
    aws: TypedAws, registry: Registry, schemas_dir: Path
) -> None:
    registry.register(7, ORDER_V1)
    good = confluent_value(7, ORDER_V1, order(2))
    values = [b'{"order_id": 1}', b"\x00\x00", good[:-3], good + b"\x00\x00"]
    event = kafka_event([kafka_record("payments", 0, n, value=value) for n, value in enumerate(values)])

    summary = make_archiver(aws, formats(registry), schemas_dir).archive(event)

    letters = {letter["offset"]: letter for letter in aws.dead_letters()}
    assert {n: letters[n]["reason"] for n in letters} == dict.fromkeys(range(4), "undecodable-value")
    assert "starts with 0x7b" in letters[0]["errorMessage"]
    assert "bytes after the Avro body" in letters[3]["errorMessage"]
    assert summary.keys_written == []


def test_a_writer_schema_change_splits_the_batch_one_schema_per_object(
    aws: TypedAws, registry: Registry, schemas_dir: Path
) -> None:
    registry.register(7, ORDER_V1)
    registry.register(8, ORDER_V2)
    writers = {0: 7, 1: 7, 2: 8, 3: 8, 4: 7, 5: 8}  # a rolling producer deploy: v1 and v2 interleave
    values = {
        n: confluent_value(
            sid, ORDER_V1 if sid == 7 else ORDER_V2, order(n, **({"channel": "app"} if sid == 8 else {}))
        )
        for n, sid in writers.items()
    }
    event = kafka_event([kafka_record("payments", 0, n, value=value) for n, value in values.items()])
    event["records"]["payments-0"].insert(3, kafka_record("payments", 0, 6, value=None))  # a tombstone in a v2 run

    summary = make_archiver(aws, formats(registry), schemas_dir).archive(event)

    v1, v2 = schema_fingerprint(ORDER_V1), schema_fingerprint(ORDER_V2)
    prefix = "topics/payments/partition=0/payments+0+"
    assert summary.keys_written == [
        f"{prefix}{0:020d}+{v1}.avro",
        f"{prefix}{2:020d}+{v2}.avro",
        f"{prefix}{4:020d}+{v1}.avro",
        f"{prefix}{5:020d}+{v2}.avro",
    ]
    assert summary.keys_written == sorted(summary.keys_written)  # lexical order is offset order
    for key, (schema_id, has_channel) in zip(
        summary.keys_written, [("7", 0), ("8", 1), ("7", 0), ("8", 1)], strict=True
    ):
        schema, archived = aws.read(key)
        fields = [f["name"] for f in next(f["type"] for f in schema["fields"] if f["name"] == "value")[1]["fields"]]
        assert ("channel" in fields) == bool(has_channel)
        assert {r["value_schema_id"] for r in archived if r["value"] is not None} == {schema_id}
    tail = aws.read(summary.keys_written[3])[1]
    assert [(r["offset"], r["value"]) for r in tail] == [(5, order(5, channel="app")), (6, None)]


def test_a_reader_schema_resolves_both_versions_to_one_shape(
    aws: TypedAws, registry: Registry, schemas_dir: Path
) -> None:
    registry.register(7, ORDER_V1)
    registry.register(8, ORDER_V2)
    write_schema(schemas_dir, "orders-v2.avsc", ORDER_V2)
    values = [confluent_value(7, ORDER_V1, order(0)), confluent_value(8, ORDER_V2, order(1, channel="app"))]
    event = kafka_event([kafka_record("payments", 0, n, value=value) for n, value in enumerate(values)])

    archiver = make_archiver(aws, formats(registry, readerSchema="orders-v2.avsc"), schemas_dir)
    summary = archiver.archive(event)

    # Still one object per writer schema (the key says which), but every object is written with the reader schema.
    assert len(summary.keys_written) == 2
    records = [record for key in summary.keys_written for record in aws.read(key)[1]]
    assert [r["value"] for r in records] == [order(0, channel="web"), order(1, channel="app")]  # v1 gets the default
    assert [r["value_schema_id"] for r in records] == ["7", "8"]
    schemas = [aws.read(key)[0] for key in summary.keys_written]
    assert schemas[0] == schemas[1]


def test_non_avro_and_referencing_schemas_are_record_problems(
    aws: TypedAws, registry: Registry, schemas_dir: Path
) -> None:
    registry.register(3, {"type": "object"}, schemaType="JSON")
    registry.register(4, ORDER_V1, references=[{"name": "x", "subject": "y", "version": 1}])
    event = kafka_event(
        [kafka_record("payments", 0, n, value=confluent_value(sid, "null", None)) for n, sid in ((0, 3), (1, 4))]
    )

    make_archiver(aws, formats(registry), schemas_dir).archive(event)

    letters = {letter["offset"]: letter["errorMessage"] for letter in aws.dead_letters()}
    assert "schema id 3 is a JSON schema, not Avro" in letters[0]
    assert "schema references" in letters[1]
