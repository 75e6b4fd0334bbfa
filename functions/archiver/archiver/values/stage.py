"""The pipeline's hook into typed archives: decode the values of typed topics, then split groups by schema.

``TypedValues.decode_batch`` runs once the event is decoded: each record of a typed topic gets its typed value and
``ValueSchema`` beside its bytes; a record whose value cannot be typed becomes a ``RecordFailure`` carrying the
record exactly as the event delivered it, and leaves the batch. ``runs`` then cuts each (topic, partition, path)
group into runs of consecutive records with one writer schema, so every object holds one schema and covers one
contiguous offset range.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from archiver.decoding import DecodedBatch, Envelope, RecordFailure
from archiver.errors import RecordError
from archiver.values.base import TOMBSTONES, TYPED_VALUE, VALUE_SCHEMA, ValueDecoder, ValueSchema
from archiver.values.config import ValueFormats
from archiver.values.factory import ClientFactory, DecoderFactory


class TypedValues:
    """Decoders for the typed topics of one deployment, built at cold start."""

    def __init__(self, formats: ValueFormats, *, clients: ClientFactory | None = None) -> None:
        factory = DecoderFactory(clients)
        self._decoders: dict[str, ValueDecoder] = {topic: factory.decoder(item) for topic, item in formats.items()}

    def is_typed(self, topic: str) -> bool:
        return topic in self._decoders

    def decode_batch(self, batch: DecodedBatch) -> None:
        """Type every typed topic's values in place; move records that cannot be typed to ``batch.failures``."""
        if not any(record["topic"] in self._decoders for record in batch.records):
            return
        for typed in self._decoders.values():
            typed.start_batch()
        kept: list[Envelope] = []
        delivered: list[tuple[str, Any]] = []
        # batch.delivered holds the event's own record behind each envelope, with its map key: it carries
        # valueSchemaMetadata, which the envelope does not keep, and is what a dead letter must contain.
        for record, (records_key, raw) in zip(batch.records, batch.delivered, strict=True):
            decoder = self._decoders.get(record["topic"])
            if decoder is not None and record["value"] is None:  # a tombstone has no schema; it stays a null value
                record[TYPED_VALUE] = record[VALUE_SCHEMA] = None
            elif decoder is not None:
                metadata = raw.get("valueSchemaMetadata")
                try:
                    record[TYPED_VALUE], record[VALUE_SCHEMA] = decoder.decode(
                        record["value"], metadata if isinstance(metadata, Mapping) else None
                    )
                except RecordError as error:
                    batch.failures.append(RecordFailure(error=error, raw=raw, records_key=records_key))
                    batch.payload_bytes -= len(record["key"] or b"") + len(record["value"])
                    continue
            kept.append(record)
            delivered.append((records_key, raw))
        batch.records, batch.delivered = kept, delivered

    @staticmethod
    def runs(records: Sequence[Envelope]) -> list[tuple[ValueSchema, list[Envelope]]]:
        """Consecutive records of one writer schema, in order. Tombstones join the run they sit in (or the first
        run, if they lead); a group of tombstones only is written with the ``null`` value schema."""
        runs: list[tuple[ValueSchema, list[Envelope]]] = []
        leading: list[Envelope] = []
        for record in records:
            schema = record[VALUE_SCHEMA]
            if schema is None:
                (runs[-1][1] if runs else leading).append(record)
            elif runs and runs[-1][0] is schema:
                runs[-1][1].append(record)
            else:
                runs.append((schema, [*leading, record]))
                leading = []
        if leading:
            runs.append((TOMBSTONES, leading))
        return runs
