"""``avro-confluent``: Confluent wire format -- magic byte 0, a 4-byte big-endian schema id, the Avro body."""

from __future__ import annotations

from archiver.errors import ValueDecodeError
from archiver.values.base import AvroSchema
from archiver.values.confluent_registry import ConfluentRegistryClient
from archiver.values.registry_avro import RegistryAvroDecoder

MAGIC_BYTE = 0
HEADER_SIZE = 5
MAX_SCHEMA_ID = 2**31 - 1  # Confluent ids are Java ints


class ConfluentAvroDecoder(RegistryAvroDecoder[ConfluentRegistryClient]):
    def split_wire_format(self, value: bytes) -> tuple[str, bytes]:
        if len(value) < HEADER_SIZE or value[0] != MAGIC_BYTE:
            first = f"0x{value[0]:02x}" if value else "nothing"
            raise ValueDecodeError(
                f"value is not in Confluent wire format (magic byte 0x00 + 4-byte schema id); it starts with {first}"
            )
        return str(int.from_bytes(value[1:HEADER_SIZE], "big")), value[HEADER_SIZE:]

    def normalise_id(self, schema_id: str | int) -> str:
        text = str(schema_id).strip()
        # ASCII digits only: str.isdigit() also accepts "²", which int() refuses, and int() refuses 5,000 digits.
        if (
            not (text.isascii() and text.isdigit() and len(text) <= len(str(MAX_SCHEMA_ID)))
            or int(text) > MAX_SCHEMA_ID
        ):
            raise ValueDecodeError(f"valueSchemaMetadata.schemaId {text[:40]!r} is not a Confluent schema id")
        return str(int(text))

    def strip_header(self, value: bytes, schema_id: str) -> bytes:
        has_header = len(value) >= HEADER_SIZE and value[0] == MAGIC_BYTE
        if has_header and int.from_bytes(value[1:HEADER_SIZE], "big") == int(schema_id):
            return value[HEADER_SIZE:]
        return value

    def fetch(self, schema_id: str) -> AvroSchema:
        return self._registry.schema(int(schema_id))
