"""Envelope records -> Avro object container bytes.

The schema is parsed once per container. The sync marker, normally random, is derived from the object key, and
no metadata varies between runs, so encoding the same records under the same key gives byte-identical objects.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Sequence
from importlib import resources
from typing import Any

import fastavro

from archiver.decoding import Envelope

SCHEMA_RESOURCE = "envelope.avsc"
# Bytes per Avro block before compression. Larger blocks compress better (see docs/benchmarks.md); a batch is at
# most 6 MB, so a 1 MiB block bounds the memory a reader needs while keeping the codec effective.
SYNC_INTERVAL = 1 << 20


def load_envelope_schema() -> dict[str, Any]:
    """The envelope schema as shipped in ``archiver/schemas/envelope.avsc``."""
    text = resources.files("archiver.schemas").joinpath(SCHEMA_RESOURCE).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


ENVELOPE_SCHEMA = fastavro.parse_schema(load_envelope_schema())


def sync_marker_for(key: str) -> bytes:
    """A 16-byte sync marker that depends only on the object key."""
    return hashlib.sha256(key.encode("utf-8")).digest()[:16]


def encode_records(records: Sequence[Envelope], *, codec: str, key: str) -> bytes:
    """One Avro object container file holding ``records`` in order."""
    buffer = io.BytesIO()
    fastavro.writer(
        buffer, ENVELOPE_SCHEMA, records, codec=codec, sync_marker=sync_marker_for(key), sync_interval=SYNC_INTERVAL
    )
    return buffer.getvalue()
