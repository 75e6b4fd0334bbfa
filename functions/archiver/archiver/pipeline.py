"""One batch, end to end: decode -> group by partition path -> encode -> write to S3 -> dead-letter the rest.

The batch succeeds only when every record is either in an S3 object or in the dead-letter queue; any S3 or SQS
failure raises ``InfrastructureError`` so that the event source retries the batch and commits no offset.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from archiver.deadletter import DeadLetterQueue, dead_letters_for
from archiver.decoding import Envelope, RecordFailure, decode_event
from archiver.encoding import encode_records
from archiver.errors import RecordError
from archiver.keys import archive_key
from archiver.partitioning import PartitionPath, build_partitioner
from archiver.settings import Settings
from archiver.writing import ArchiveObject, ArchiveWriter

if TYPE_CHECKING:
    from archiver.values.base import ValueSchema
    from archiver.values.factory import ClientFactory
    from archiver.values.stage import TypedValues

GroupKey = tuple[str, int, str]  # topic, partition, partition path


@dataclass
class PartitionRange:
    """What one topic-partition of the batch contributed to the archive."""

    first_offset: int
    last_offset: int
    records: int = 0


@dataclass
class BatchSummary:
    """The outcome of one invocation, for the log line, the metrics and the function's return value."""

    event_source: str
    records_received: int = 0
    records_archived: int = 0
    records_dead_lettered: int = 0
    payload_bytes: int = 0
    bytes_written: int = 0
    keys_written: list[str] = field(default_factory=list)
    dead_letter_ids: list[str] = field(default_factory=list)
    dead_letter_payload_keys: list[str] = field(default_factory=list)
    partitions: dict[str, PartitionRange] = field(default_factory=dict)

    @property
    def objects_written(self) -> int:
        return len(self.keys_written)

    def as_dict(self) -> dict[str, Any]:
        return {
            "eventSource": self.event_source,
            "topics": sorted({name.rpartition("-")[0] for name in self.partitions}),
            "partitions": {
                name: {"firstOffset": span.first_offset, "lastOffset": span.last_offset, "records": span.records}
                for name, span in sorted(self.partitions.items())
            },
            "recordsReceived": self.records_received,
            "recordsArchived": self.records_archived,
            "recordsDeadLettered": self.records_dead_lettered,
            "payloadBytes": self.payload_bytes,
            "bytesWritten": self.bytes_written,
            "objectsWritten": self.objects_written,
            "keysWritten": self.keys_written,
            "deadLetterIds": self.dead_letter_ids,
            "deadLetterPayloadKeys": self.dead_letter_payload_keys,
        }


class Archiver:
    """Archives event batches with one configuration and the S3 and SQS clients it is given."""

    def __init__(
        self, settings: Settings, *, s3_client: Any, sqs_client: Any, value_clients: ClientFactory | None = None
    ) -> None:
        self._settings = settings
        # Typed archives (docs/typed-archives.md); raw-only deployments never import that code.
        self._values: TypedValues | None = None
        if settings.typed_topics:
            from archiver.values.stage import TypedValues

            self._values = TypedValues(settings.typed_topics, clients=value_clients)
        self._partition_path = build_partitioner(settings)
        self._writer = ArchiveWriter(s3_client, settings.archive_bucket)
        self._dead_letters = DeadLetterQueue(
            sqs_client, s3_client, queue_url=settings.dead_letter_queue_url, bucket=settings.archive_bucket
        )

    def archive(self, event: object) -> BatchSummary:
        batch = decode_event(event)
        if self._values is not None:
            self._values.decode_batch(batch, event)  # values that cannot be typed join batch.failures
        groups, placement_failures = group_by_path(batch.records, self._partition_path)
        failures = batch.failures + placement_failures
        objects = [item for group_key, records in groups.items() for item in self._encode_group(group_key, records)]

        self._writer.write_all(objects)
        letters = dead_letters_for(batch, failures)
        spilled = self._dead_letters.send_all(letters)

        summary = BatchSummary(
            event_source=batch.event_source,
            records_received=len(batch.records) + len(batch.failures),
            records_dead_lettered=len(letters),
            payload_bytes=batch.payload_bytes,
            dead_letter_ids=[letter.record_id for letter in letters],
            dead_letter_payload_keys=spilled,
        )
        for item in objects:
            summary.records_archived += item.record_count
            summary.bytes_written += len(item.body)
            summary.keys_written.append(item.key)
            span = summary.partitions.setdefault(
                f"{item.topic}-{item.partition}", PartitionRange(item.first_offset, item.last_offset)
            )
            span.first_offset = min(span.first_offset, item.first_offset)
            span.last_offset = max(span.last_offset, item.last_offset)
            span.records += item.record_count
        return summary

    def _encode_group(self, group_key: GroupKey, records: Sequence[Envelope]) -> list[ArchiveObject]:
        if self._values is None or not self._values.is_typed(group_key[0]):
            return [self._encode(group_key, records)]
        # One schema per object: a writer-schema change inside the group starts a new object.
        return [self._encode(group_key, run, schema) for schema, run in self._values.runs(records)]

    def _encode(
        self, group_key: GroupKey, records: Sequence[Envelope], schema: ValueSchema | None = None
    ) -> ArchiveObject:
        topic, partition, path = group_key
        first, last = records[0]["offset"], records[-1]["offset"]
        fingerprint = None if schema is None else schema.fingerprint
        key = archive_key(self._settings.archive_prefix, path, topic, partition, first, last, fingerprint)
        if schema is None:
            body = encode_records(records, codec=self._settings.codec, key=key)
        else:
            body = schema.encode(records, codec=self._settings.codec, key=key)
        return ArchiveObject(
            key=key,
            body=body,
            topic=topic,
            partition=partition,
            first_offset=first,
            last_offset=last,
            record_count=len(records),
            codec=self._settings.codec,
        )


def group_by_path(
    records: Sequence[Envelope], partition_path: PartitionPath
) -> tuple[dict[GroupKey, list[Envelope]], list[RecordFailure]]:
    """Group records by (topic, partition, path), each group in offset order; unplaceable records are failures."""
    groups: dict[GroupKey, list[Envelope]] = {}
    failures: list[RecordFailure] = []
    for record in records:
        try:
            path = partition_path(record)
        except RecordError as error:
            failures.append(RecordFailure.of_envelope(error, record))
            continue
        groups.setdefault((record["topic"], record["partition"], path), []).append(record)
    for group in groups.values():
        group.sort(key=_offset)  # AWS delivers each partition in order; sorting makes that a guarantee
    return groups, failures


def _offset(record: Envelope) -> int:
    offset: int = record["offset"]
    return offset
