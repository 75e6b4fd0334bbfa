"""The typed archive record: the envelope with ``value`` replaced by the topic's own (nullable) Avro type.

Built from ``envelope.avsc`` so the coordinates, key, headers and timestamp stay exactly as documented in
docs/schema.md; only the namespace (``kafka_s3_archiver.typed.v1``), ``value`` and the added ``value_schema_id``
differ. docs/typed-archives.md documents the shape.
"""

from __future__ import annotations

import copy
from typing import Any

from archiver.encoding import load_envelope_schema

TYPED_NAMESPACE = "kafka_s3_archiver.typed.v1"
_NAMED = ("record", "enum", "fixed")


def typed_archive_schema(value_schema: dict[str, Any] | list[Any] | str) -> dict[str, Any]:
    """The archive schema for values of ``value_schema``; tombstones stay representable as null."""
    schema = load_envelope_schema()
    schema["namespace"] = TYPED_NAMESPACE
    schema["doc"] = (
        "One Kafka record with its value decoded into the topic's Avro type: coordinates, timestamp, key and "
        "headers as delivered. A null value is a tombstone."
    )
    fields: list[dict[str, Any]] = []
    for item in schema["fields"]:
        if item["name"] != "value":
            fields.append(item)
            continue
        fields.append(
            {
                "name": "value",
                "type": _nullable(_own_namespace(value_schema)),
                "default": None,
                "doc": "The decoded value; null for a tombstone.",
            }
        )
        fields.append(
            {
                "name": "value_schema_id",
                "type": ["null", "string"],
                "default": None,
                "doc": "The writer schema of the value: Confluent schema id, Glue schema version id, or "
                "'avsc:<fingerprint>' for JSON values; null for a tombstone.",
            }
        )
    schema["fields"] = fields
    return schema


def _nullable(value_schema: dict[str, Any] | list[Any] | str) -> list[Any] | str:
    # Avro forbids a union directly inside a union, so a union value schema gains "null" instead of being wrapped.
    if isinstance(value_schema, list):
        return value_schema if "null" in value_schema else ["null", *value_schema]
    if value_schema == "null":
        return "null"
    return ["null", value_schema]


def _own_namespace(value_schema: dict[str, Any] | list[Any] | str) -> dict[str, Any] | list[Any] | str:
    """Pin a named type without a namespace to the null namespace ("").

    Nested inside the archive record it would otherwise inherit ``kafka_s3_archiver.typed.v1``: its full name
    would change (readers resolve records by full name) and a user type called ``Header`` would clash with ours.
    """
    if isinstance(value_schema, list):
        return [_own_namespace(branch) for branch in value_schema]
    if isinstance(value_schema, dict) and value_schema.get("type") in _NAMED:
        name = str(value_schema.get("name", ""))
        if "namespace" not in value_schema and "." not in name:
            pinned = copy.copy(value_schema)
            pinned["namespace"] = ""
            return pinned
    return value_schema
