"""Archive objects -> the offsets they hold, without building whole records.

The writer needs this when a key it wants to create already exists (a retried batch), and the archive tools use
the same function to audit and compact: one reader of offsets for both.
"""

from __future__ import annotations

import functools
import io
from typing import Any

import fastavro


def read_offsets(body: bytes) -> list[int]:
    """The offset of every record in an Avro container ``body``, in file order.

    fastavro decodes with a reader schema holding only ``offset``, so it skips the other fields instead of
    building them. Works for the envelope and for typed archive records: both name the field ``offset``.
    """
    writer_schema = fastavro.reader(io.BytesIO(body)).writer_schema  # parses the header only
    projection = _offsets_only(_full_name(writer_schema))
    return [int(record["offset"]) for record in fastavro.reader(io.BytesIO(body), reader_schema=projection)]  # type: ignore[index, call-overload]


def _full_name(schema: Any) -> str:
    name = str(schema["name"])
    namespace = schema.get("namespace")
    return name if "." in name or not namespace else f"{namespace}.{name}"


@functools.cache
def _offsets_only(record_name: str) -> Any:
    # Named like the writer's record, as Avro schema resolution requires.
    fields = [{"name": "offset", "type": "long"}]
    return fastavro.parse_schema({"type": "record", "name": record_name, "fields": fields})
