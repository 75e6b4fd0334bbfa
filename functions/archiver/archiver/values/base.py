"""The small abstract base every value format implements, and the schema identity a decoded value carries.

A decoder turns one record's value bytes into ``(typed value, ValueSchema)``. The ``ValueSchema`` is what the
pipeline groups by (one schema per archive object) and what the object is written with; decoders cache one per
writer schema, so grouping compares identities and every record of a writer shares one parsed schema.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form

from archiver.encoding import encode_with_schema, with_timestamp_fields
from archiver.values.archive_schema import typed_archive_schema

AvroSchema = dict[str, Any] | list[Any] | str
TypedValue = Any  # whatever fastavro reads or json.loads gives: dict, list, str, int, ...

# Where the value stage leaves its results on an envelope. The envelope's "value" keeps the delivered bytes, so
# partitioners, payload accounting and dead letters see exactly what they always saw.
TYPED_VALUE = "_typed_value"
VALUE_SCHEMA = "_value_schema"


def schema_fingerprint(schema: AvroSchema) -> str:
    """The Avro spec's 64-bit Rabin fingerprint (CRC-64-AVRO) of the schema's Parsing Canonical Form, as hex."""
    text: str = fingerprint(to_parsing_canonical_form(fastavro.parse_schema(schema)), "CRC-64-AVRO")
    return text


@dataclass(eq=False)  # identity semantics: decoders hand out one instance per writer schema
class ValueSchema:
    """One writer schema: its registry id, its fingerprint, and the archive schema objects are written with.

    ``schema_id`` is what a record's ``value_schema_id`` holds: the Confluent schema id, the Glue schema version
    UUID, or ``avsc:<fingerprint>`` for the JSON format. ``fingerprint`` (of the *writer* schema) goes into the
    object key, so objects of different writer schemas never share a name.
    """

    schema_id: str | None
    fingerprint: str
    value_schema: AvroSchema  # what values are written as: the reader schema if one is configured, else the writer's
    archive: dict[str, Any] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.archive = typed_archive_schema(self.value_schema)
        fastavro.parse_schema(self.archive)  # fails here, once per schema, rather than in every encode

    def encode(self, records: Sequence[Mapping[str, Any]], *, codec: str, key: str) -> bytes:
        """One Avro container file of typed archive records, deterministic like ``encoding.encode_records``."""
        # The schema as JSON, not parsed: fastavro writes a parsed schema's header in its own fully-qualified form,
        # which drops the '"namespace": ""' that keeps the value's own type names (see archive_schema.py).
        return encode_with_schema(self.archive, (_archive_record(record) for record in records), codec=codec, key=key)


def _archive_record(envelope: Mapping[str, Any]) -> dict[str, Any]:
    schema = envelope[VALUE_SCHEMA]
    return {
        **with_timestamp_fields(envelope),  # the envelope's v2 timestamp policy, the same in typed archives
        "value": envelope[TYPED_VALUE],
        "value_schema_id": None if schema is None else schema.schema_id,
    }


# Objects whose every record is a tombstone have no writer schema: their value is written as Avro "null", which
# any reader schema of the topic (always a union with null) resolves.
TOMBSTONES = ValueSchema(schema_id=None, fingerprint=schema_fingerprint("null"), value_schema="null")


class ValueDecoder(ABC):
    """Decodes the values of one topic. Implementations raise ``RecordError`` subclasses for bad values and
    ``InfrastructureError`` subclasses when a registry cannot answer."""

    def start_batch(self) -> None:
        """Called before the values of each batch; decoders with per-batch limits reset them here."""
        return  # most decoders have none

    @abstractmethod
    def decode(self, value: bytes, schema_metadata: Mapping[str, Any] | None) -> tuple[TypedValue, ValueSchema]:
        """One value -> (typed value, its schema). ``schema_metadata`` is the record's ``valueSchemaMetadata``
        when the event source mapping's own schema-registry integration delivered the record, else None."""
