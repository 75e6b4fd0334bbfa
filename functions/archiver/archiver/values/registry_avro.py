"""What the two schema-registry Avro formats share: find the writer schema, decode, resolve to the reader schema.

A value reaches the function in one of three shapes:

1. **Wire format** (no ESM schema-registry integration): the registry's header, then the Avro body. The subclass
   parses the header (``split_wire_format``).
2. **ESM integration, ``EventRecordFormat: SOURCE``**: the record carries ``valueSchemaMetadata`` with
   ``schemaId`` and ``dataFormat``; AWS removes the header, so the value is the bare Avro body. (A header that is
   still there and names the same id is stripped too, so either reading of "removes schema metadata" works.)
3. **ESM integration, ``EventRecordFormat: JSON``**: ``valueSchemaMetadata`` as above and the value is the record
   as JSON text. It is checked against the writer schema (plain JSON first, then Avro's JSON encoding, which wraps
   union values as ``{"type": value}``), re-encoded to Avro binary and then resolved exactly like shape 2.

Which of 2 and 3 applies is the topic's ``esmRecordFormat`` setting: it must match the mapping's own setting,
because a JSON text and an Avro body cannot be told apart reliably from the bytes.
"""

from __future__ import annotations

import io
import time
from abc import abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import fastavro

from archiver.errors import (
    RecordError,
    SchemaLookupLimitError,
    UnknownSchemaError,
    ValueDecodeError,
    ValueSchemaError,
)
from archiver.values.avro_bounds import BodyCheck, body_checker
from archiver.values.base import AvroSchema, TypedValue, ValueDecoder, ValueSchema, schema_fingerprint
from archiver.values.config import EsmRecordFormat
from archiver.values.json_schema import parse_json

# An id the registry did not know is asked again after this long, not for every record of a batch that carries it:
# a schema registered moments after its first record is still found, and a bad producer cannot flood the registry.
MISSING_TTL_SECONDS = 60.0
# Registry lookups of schema ids this container has not seen, per topic and batch. A topic has a handful of writer
# schemas, looked up once per container; values with random headers (a producer writing plain bytes into a typed
# topic) would otherwise cost one registry call each -- 10,000 calls can outlast the invocation's timeout or be
# throttled, and either way the batch would fail again on every retry. Values past the budget are dead-lettered.
MAX_LOOKUPS_PER_BATCH = 16


@dataclass(frozen=True, slots=True)
class _Writer:
    schema: ValueSchema
    writer: Any  # parsed writer schema
    reader: Any  # parsed reader schema, or None to read as written
    check: BodyCheck | None  # for schemas whose bodies do not bound their own decoding (values/avro_bounds.py)


class RegistryAvroDecoder[Registry](ValueDecoder):
    """Avro values whose writer schema lives in a registry, optionally resolved against a reader schema."""

    def __init__(
        self,
        registry: Registry,
        *,
        reader_schema: AvroSchema | None = None,
        esm_record_format: EsmRecordFormat = "SOURCE",
    ) -> None:
        self._registry = registry
        self._reader_schema = reader_schema
        self._reader = None if reader_schema is None else fastavro.parse_schema(reader_schema)
        self._esm_record_format = esm_record_format
        self._writers: dict[str, _Writer] = {}  # per container, like the registry client's cache
        self._missing: dict[str, tuple[float, UnknownSchemaError]] = {}
        self._lookups_left = MAX_LOOKUPS_PER_BATCH

    def start_batch(self) -> None:
        self._lookups_left = MAX_LOOKUPS_PER_BATCH

    @abstractmethod
    def split_wire_format(self, value: bytes) -> tuple[str, bytes]:
        """(writer schema id, Avro body) from a value in the registry's wire format."""

    @abstractmethod
    def normalise_id(self, schema_id: str | int) -> str:
        """The canonical text of a ``valueSchemaMetadata.schemaId``; ``ValueDecodeError`` if it cannot be one."""

    @abstractmethod
    def strip_header(self, value: bytes, schema_id: str) -> bytes:
        """``value`` without a wire-format header naming ``schema_id``, if it has one."""

    @abstractmethod
    def fetch(self, schema_id: str) -> AvroSchema:
        """The writer schema registered under ``schema_id`` (the registry client caches it)."""

    def decode(self, value: bytes, schema_metadata: Mapping[str, Any] | None) -> tuple[TypedValue, ValueSchema]:
        esm_id = None if schema_metadata is None else schema_metadata.get("schemaId")
        if esm_id is None:
            schema_id, body = self.split_wire_format(value)
            writer = self._writer(schema_id)
        else:
            if type(esm_id) not in (str, int):  # the ESM sends a string; JSON lists, objects and booleans are no id
                raise ValueDecodeError(f"valueSchemaMetadata.schemaId must be a string, got {type(esm_id).__name__}")
            schema_id = self.normalise_id(esm_id)
            writer = self._writer(schema_id)
            if self._esm_record_format == "JSON":
                body = self._json_to_avro(value, writer)
            else:
                body = self.strip_header(value, schema_id)
        return self._read(body, writer), writer.schema

    def _writer(self, schema_id: str) -> _Writer:
        found = self._writers.get(schema_id)
        if found is None:
            missing = self._missing.get(schema_id)
            if missing is not None and time.monotonic() - missing[0] < MISSING_TTL_SECONDS:
                raise UnknownSchemaError(str(missing[1]))
            if self._lookups_left <= 0:
                raise SchemaLookupLimitError(
                    f"schema id {schema_id[:40]} was not looked up: this batch already asked the registry about "
                    f"{MAX_LOOKUPS_PER_BATCH} new schema ids for the topic"
                )
            self._lookups_left -= 1
            try:
                schema = self.fetch(schema_id)
            except UnknownSchemaError as error:
                self._missing[schema_id] = (time.monotonic(), error)
                raise
            try:
                named: dict[str, Any] = {}
                parsed = fastavro.parse_schema(schema, named_schemas=named)
                check = body_checker(parsed, named)
                value_schema = ValueSchema(
                    schema_id=schema_id,
                    fingerprint=schema_fingerprint(schema),
                    value_schema=schema if self._reader_schema is None else self._reader_schema,
                )
            except Exception as error:  # fastavro raises several types for a malformed schema
                raise ValueDecodeError(f"writer schema {schema_id} is not a usable Avro schema: {error}") from error
            found = self._writers[schema_id] = _Writer(value_schema, parsed, self._reader, check)
        return found

    @staticmethod
    def _read(body: bytes, writer: _Writer) -> TypedValue:
        if writer.check is not None:
            writer.check(body)  # before fastavro, which would crash or run out of memory on such a body
        stream = io.BytesIO(body)
        try:
            typed = fastavro.schemaless_reader(stream, writer.writer, writer.reader)
        except RecordError:
            raise
        except Exception as error:  # corrupt bodies surface as EOFError, IndexError, UnicodeDecodeError, ...
            raise ValueDecodeError(
                f"value is not an Avro body of schema {writer.schema.schema_id}: {type(error).__name__}: {error}"
            ) from error
        if stream.tell() != len(body):
            # Bytes left over mean the body was written with another schema: archiving it would be wrong data.
            raise ValueDecodeError(
                f"value has {len(body) - stream.tell()} bytes after the Avro body of schema {writer.schema.schema_id}"
            )
        return typed

    @staticmethod
    def _json_to_avro(value: bytes, writer: _Writer) -> bytes:
        datum = parse_json(value)
        if not fastavro.validation.validate(datum, writer.writer, raise_errors=False):
            datum = _from_avro_json(value, writer.writer, writer.schema.schema_id)
        stream = io.BytesIO()
        try:
            fastavro.schemaless_writer(stream, writer.writer, datum)
        except Exception as error:
            raise ValueSchemaError(
                f"value does not conform to writer schema {writer.schema.schema_id}: {error}"
            ) from error
        return stream.getvalue()


def _from_avro_json(value: bytes, parsed: Any, schema_id: str | None) -> Any:
    """Read ``value`` as Avro's own JSON encoding (unions as ``{"type": value}``), or raise ``ValueSchemaError``."""
    try:
        return next(iter(fastavro.json_reader(io.StringIO(value.decode("utf-8")), parsed)))
    except Exception as error:
        raise ValueSchemaError(
            f"JSON value conforms to writer schema {schema_id} neither as plain JSON nor in Avro's JSON encoding: "
            f"{type(error).__name__}: {error}"
        ) from error
