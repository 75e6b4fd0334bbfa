"""Composed layouts on typed topics: an ``avro-confluent`` topic's fields are read from the decoded record (nested
records, enums, timestamp-millis), a ``json`` topic's from its JSON bytes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from archiver.values.base import schema_fingerprint
from tests.kafka_events import kafka_event, kafka_record
from tests.typed.conftest import Registry, TypedAws, confluent_value, make_archiver

NULL = "__HIVE_DEFAULT_PARTITION__"
SHIPMENT: dict[str, Any] = {
    "type": "record",
    "name": "Shipment",
    "namespace": "shop.shipping",
    "fields": [
        {"name": "id", "type": "long"},
        {
            "name": "customer",
            "type": [
                "null",
                {
                    "type": "record",
                    "name": "Customer",
                    "fields": [
                        {"name": "country", "type": "string"},
                        {"name": "tier", "type": {"type": "enum", "name": "Tier", "symbols": ["GOLD", "BASIC"]}},
                    ],
                },
            ],
            "default": None,
        },
        {"name": "shipped_at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    ],
}
SEGMENTS = [
    {"kind": "field", "field": "customer.country", "name": "country"},
    {"kind": "field", "field": "customer.tier", "name": "tier"},
    {"kind": "time", "field": "shipped_at", "pattern": "dt=%Y-%m-%d", "timezone": "America/New_York"},
]


def test_an_avro_topic_is_partitioned_by_its_decoded_fields(
    aws: TypedAws, registry: Registry, schemas_dir: Path
) -> None:
    registry.register(3, SHIPMENT)
    formats = {"shipments": {"format": "avro-confluent", "registryUrl": registry.url}}
    archiver = make_archiver(aws, formats, schemas_dir, partitioner="segments", partition_segments=json.dumps(SEGMENTS))
    at = 1_795_908_600_000  # 2026-11-28T23:30Z: 18:30 on the 28th in New York
    values = [
        {"id": 1, "customer": {"country": "DE", "tier": "GOLD"}, "shipped_at": at},
        {"id": 2, "customer": None, "shipped_at": at},
    ]
    event = kafka_event(
        [kafka_record("shipments", 0, n, value=confluent_value(3, SHIPMENT, v)) for n, v in enumerate(values)]
    )
    summary = archiver.archive(event)
    fingerprint = schema_fingerprint(SHIPMENT)
    assert sorted(summary.keys_written) == [
        f"topics/shipments/country=DE/tier=GOLD/dt=2026-11-28/shipments+0+{0:020d}+{fingerprint}.avro",
        f"topics/shipments/country={NULL}/tier={NULL}/dt=2026-11-28/shipments+0+{1:020d}+{fingerprint}.avro",
    ]
    ids = {key.split("/")[2]: [record["value"]["id"] for record in aws.read(key)[1]] for key in summary.keys_written}
    assert ids == {"country=DE": [1], f"country={NULL}": [2]}
    assert aws.dead_letters() == []


def test_a_json_topic_is_partitioned_by_its_json_fields(aws: TypedAws, registry: Registry, schemas_dir: Path) -> None:
    del registry
    formats = {"orders": {"format": "json", "schema": "orders.avsc"}}
    (schemas_dir / "orders.avsc").write_text(
        json.dumps(
            {
                "type": "record",
                "name": "Order",
                "fields": [{"name": "customer", "type": {"type": "map", "values": "string"}}],
            }
        )
    )
    archiver = make_archiver(aws, formats, schemas_dir, partitioner="field", partition_field="customer.country")
    summary = archiver.archive(kafka_event([kafka_record("orders", 0, 0, value=b'{"customer": {"country": "PT"}}')]))
    (key,) = summary.keys_written
    assert key.startswith("topics/orders/customer.country=PT/orders+0+")
