"""``json`` values: parse the JSON text, check it against the topic's ``.avsc``, archive it as that Avro type.

Conformance is strict in both directions: a missing field without a default, a wrong type *and* a field the
schema does not name all send the record to the dead-letter queue. Dropping unknown fields silently would lose
data from the archive the moment a producer ships a field before the ``.avsc`` is updated; the dead letter keeps
the record, and the validation message says which field to add.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

import fastavro
from fastavro.validation import ValidationError, validate

from archiver.errors import ValueDecodeError, ValueSchemaError
from archiver.jsontext import load_json
from archiver.values.base import AvroSchema, TypedValue, ValueDecoder, ValueSchema, schema_fingerprint

MAX_MESSAGE = 600  # characters of validation detail kept in the dead-letter message
_UNKNOWN = object()  # in unknown_fields' stack: the path of a field the schema does not name
_OBJECT_KINDS = ("record", "error", "map")  # the Avro types a JSON object can be


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
            # raise_errors=False first: it builds no error objects for the union branches a value does not take,
            # which costs more than the check itself; only a failing value is validated again for the message.
            if not validate(datum, self._parsed, raise_errors=False):
                validate(datum, self._parsed, raise_errors=True)
        except ValidationError as error:
            detail = "; ".join(str(item) for item in error.errors)
            raise ValueSchemaError(
                f"value does not conform to the topic's Avro schema: {detail[:MAX_MESSAGE]}"
            ) from error
        extra = unknown_fields(datum, self._parsed, self._named)
        if extra:
            listed = ", ".join(extra)
            raise ValueSchemaError(f"value has fields the topic's Avro schema does not define: {listed[:MAX_MESSAGE]}")
        try:
            # validate() passes what the writer then refuses, e.g. an integer too large for a double; the archive
            # object is written after the whole batch is decoded, where one such value would fail every record.
            fastavro.schemaless_writer(io.BytesIO(), self._parsed, datum)
        except Exception as error:  # fastavro raises OverflowError, ValueError, TypeError, ... per type
            detail = f"{type(error).__name__}: {error}"
            raise ValueSchemaError(
                f"value cannot be written as the topic's Avro schema: {detail[:MAX_MESSAGE]}"
            ) from error
        return datum


def parse_json(value: bytes) -> Any:
    """JSON text -> Python value; ``ValueDecodeError`` unless it is JSON of Unicode text nesting at most
    ``jsontext.MAX_NESTING`` levels (deeper values are not parsed; fastavro recurses over them unchecked)."""
    try:
        return load_json(value, unicode_text=True)
    except ValueError as error:  # JSONDecodeError, UnicodeDecodeError, JsonNestingError, too many digits, ...
        raise ValueDecodeError(f"value is not JSON: {str(error)[:MAX_MESSAGE]}") from error


def unknown_fields(datum: Any, schema: Any, named: Mapping[str, Any]) -> list[str]:
    """Dotted paths of object keys that ``schema`` has no field for (``datum`` already validated), in document
    order. Walked with an explicit stack, so the value's depth never meets Python's recursion limit."""
    found: list[str] = []
    pending: list[tuple[Any, Any, str]] = [(datum, schema, "")]
    while pending:
        item, item_schema, path = pending.pop()
        if item_schema is _UNKNOWN:
            found.append(path)
            continue
        if isinstance(item_schema, str):
            item_schema = named.get(item_schema, item_schema)
        if isinstance(item_schema, list):
            if not isinstance(item, (dict, list)):
                continue  # a scalar holds no fields, whichever branch it took
            kinds = _OBJECT_KINDS if isinstance(item, dict) else ("array",)
            branches = [named.get(branch, branch) if isinstance(branch, str) else branch for branch in item_schema]
            candidates = [branch for branch in branches if isinstance(branch, dict) and branch.get("type") in kinds]
            # The value validated, so it took one of these; only several of one kind need validating to choose
            # (validating each level's branch against the rest of a recursive value would be quadratic).
            match = candidates[0] if len(candidates) == 1 else None
            if len(candidates) > 1:
                match = next((branch for branch in candidates if validate(item, branch, raise_errors=False)), None)
            if match is not None:
                pending.append((item, match, path))
            continue
        if not isinstance(item_schema, dict) or not isinstance(item, (dict, list)):
            continue
        kind = item_schema.get("type")
        children: list[tuple[Any, Any, str]] = []
        if kind == "record" and isinstance(item, dict):
            fields = {field["name"]: field["type"] for field in item_schema["fields"]}
            children = [
                (value, fields[name], f"{path}{name}.") if name in fields else (None, _UNKNOWN, f"{path}{name}")
                for name, value in item.items()
            ]
        elif kind == "array" and isinstance(item, list):
            children = [(value, item_schema["items"], f"{path}[{index}].") for index, value in enumerate(item)]
        elif kind == "map" and isinstance(item, dict):
            children = [(value, item_schema["values"], f"{path}{name}.") for name, value in item.items()]
        pending += reversed(children)
    return found
