"""``json`` values: parse the JSON text, check it against the topic's ``.avsc``, archive it as that Avro type.

Conformance is strict in both directions: a missing field without a default, a wrong type *and* a field the
schema does not name all send the record to the dead-letter queue. Dropping unknown fields silently would lose
data from the archive the moment a producer ships a field before the ``.avsc`` is updated; the dead letter keeps
the record, and the validation message says which field to add.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import fastavro
from fastavro.validation import ValidationError, validate

from archiver.errors import ValueDecodeError, ValueSchemaError
from archiver.values.base import AvroSchema, TypedValue, ValueDecoder, ValueSchema, schema_fingerprint

MAX_MESSAGE = 600  # characters of validation detail kept in the dead-letter message


class JsonSchemaDecoder(ValueDecoder):
    """JSON values checked against one Avro schema shipped with the deployment."""

    def __init__(self, schema: AvroSchema) -> None:
        self._named: dict[str, Any] = {}
        self._parsed = fastavro.parse_schema(schema, named_schemas=self._named)
        digest = schema_fingerprint(schema)
        self.schema = ValueSchema(schema_id=f"avsc:{digest}", fingerprint=digest, value_schema=schema)

    def decode(self, value: bytes, schema_metadata: Mapping[str, Any] | None) -> tuple[TypedValue, ValueSchema]:
        return self.conform(parse_json(value)), self.schema

    def conform(self, datum: Any) -> TypedValue:
        """``datum`` if it is an instance of the schema, else ``ValueSchemaError`` naming what is wrong."""
        try:
            validate(datum, self._parsed, raise_errors=True)
        except ValidationError as error:
            detail = "; ".join(str(item) for item in error.errors)
            raise ValueSchemaError(
                f"value does not conform to the topic's Avro schema: {detail[:MAX_MESSAGE]}"
            ) from error
        extra = unknown_fields(datum, self._parsed, self._named)
        if extra:
            raise ValueSchemaError(f"value has fields the topic's Avro schema does not define: {', '.join(extra)}")
        return datum


def parse_json(value: bytes) -> Any:
    try:
        return json.loads(value)
    except ValueError as error:  # JSONDecodeError and UnicodeDecodeError
        raise ValueDecodeError(f"value is not JSON: {error}") from error


def unknown_fields(datum: Any, schema: Any, named: Mapping[str, Any], path: str = "") -> list[str]:
    """Dotted paths of object keys that ``schema`` has no field for (``datum`` already validated)."""
    if isinstance(schema, str):
        schema = named.get(schema, schema)
    if isinstance(schema, list):
        for branch in (named.get(item, item) if isinstance(item, str) else item for item in schema):
            if validate(datum, branch, raise_errors=False):
                return unknown_fields(datum, branch, named, path)
        return []
    if not isinstance(schema, dict) or not isinstance(datum, (dict, list)):
        return []
    kind = schema.get("type")
    found: list[str] = []
    if kind == "record" and isinstance(datum, dict):
        fields = {item["name"]: item["type"] for item in schema["fields"]}
        for name, item in datum.items():
            where = f"{path}{name}"
            if name not in fields:
                found.append(where)
            else:
                found += unknown_fields(item, fields[name], named, f"{where}.")
    elif kind == "array" and isinstance(datum, list):
        for index, item in enumerate(datum):
            found += unknown_fields(item, schema["items"], named, f"{path}[{index}].")
    elif kind == "map" and isinstance(datum, dict):
        for name, item in datum.items():
            found += unknown_fields(item, schema["values"], named, f"{path}{name}.")
    return found
