"""``avro-glue``: AWS Glue Schema Registry wire format.

Byte 0 is the header version (3), byte 1 the compression (0 none, 5 zlib), bytes 2-17 the schema version id
(a UUID), then the Avro body -- zlib-compressed when byte 1 is 5. These are the constants of the
aws-glue-schema-registry serializer (``AWSSchemaRegistryConstants``: HEADER_VERSION_BYTE 3, COMPRESSION_BYTE 5,
COMPRESSION_DEFAULT_BYTE 0).
"""

from __future__ import annotations

import uuid
import zlib

from archiver.errors import ValueDecodeError
from archiver.values.base import AvroSchema
from archiver.values.glue_registry import GlueRegistryClient
from archiver.values.registry_avro import RegistryAvroDecoder

HEADER_VERSION = 3
COMPRESSION_NONE = 0
COMPRESSION_ZLIB = 5
HEADER_SIZE = 18
MAX_INFLATED_BYTES = 64 * 1024 * 1024  # a zlib bomb in one record must not exhaust the function's memory


class GlueAvroDecoder(RegistryAvroDecoder[GlueRegistryClient]):
    def split_wire_format(self, value: bytes) -> tuple[str, bytes]:
        if len(value) < HEADER_SIZE or value[0] != HEADER_VERSION:
            first = f"0x{value[0]:02x}" if value else "nothing"
            raise ValueDecodeError(
                f"value is not in Glue Schema Registry wire format (header version 0x03); it starts with {first}"
            )
        compression, schema_id, body = value[1], str(uuid.UUID(bytes=value[2:HEADER_SIZE])), value[HEADER_SIZE:]
        if compression == COMPRESSION_NONE:
            return schema_id, body
        if compression == COMPRESSION_ZLIB:
            return schema_id, _inflate(body)
        raise ValueDecodeError(f"unknown Glue Schema Registry compression byte {compression} (0 none, 5 zlib)")

    def normalise_id(self, schema_id: str | int) -> str:
        try:
            return str(uuid.UUID(str(schema_id)))
        except ValueError as error:
            raise ValueDecodeError(
                f"valueSchemaMetadata.schemaId {str(schema_id)[:40]!r} is not a Glue schema version id"
            ) from error

    def strip_header(self, value: bytes, schema_id: str) -> bytes:
        if (
            len(value) >= HEADER_SIZE
            and value[0] == HEADER_VERSION
            and value[2:HEADER_SIZE] == uuid.UUID(schema_id).bytes
        ):
            return self.split_wire_format(value)[1]
        return value

    def fetch(self, schema_id: str) -> AvroSchema:
        return self._registry.schema(schema_id)


def _inflate(body: bytes) -> bytes:
    inflater = zlib.decompressobj()
    try:
        data = inflater.decompress(body, MAX_INFLATED_BYTES)
    except zlib.error as error:
        raise ValueDecodeError(f"value's zlib-compressed Avro body does not inflate: {error}") from error
    if inflater.unconsumed_tail:
        raise ValueDecodeError(f"value inflates to more than {MAX_INFLATED_BYTES} bytes")
    return data
