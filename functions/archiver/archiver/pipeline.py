"""One batch, end to end: decode -> group by partition path -> encode -> write to S3 -> dead-letter the rest.

The batch succeeds only when every record is either in an S3 object or in the dead-letter queue; any S3 or SQS
failure raises ``InfrastructureError`` so that the event source retries the batch and commits no offset.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from archiver.deadletter import DeadLetterQueue, dead_letters_for
from archiver.decoding import Envelope, RecordFailure, decode_event
from archiver.encoding import encode_records
from archiver.errors import ArchiveWriteError, RecordError
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
    # Records of this batch that objects written before (by an earlier try of a retried batch) already hold.
    records_already_archived: int = 0
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
            "recordsAlreadyArchived": self.records_already_archived,
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
        self._writer = ArchiveWriter(
            s3_client, settings.archive_bucket, storage_class=settings.storage_class, tags=settings.tags
        )
        self._dead_letters = DeadLetterQueue(
            sqs_client, s3_client, queue_url=settings.dead_letter_queue_url, bucket=settings.archive_bucket
        )

    def archive(self, event: object) -> BatchSummary:
        batch = decode_event(event)
        if self._values is not None:
            self._values.decode_batch(batch, event)  # values that cannot be typed join batch.failures
        groups, placement_failures = group_by_path(batch.records, self._partition_path)
        failures = batch.failures + placement_failures
        runs = [run for group_key, records in groups.items() for run in self._runs(group_key, records)]
        objects, already_archived = self._create_objects(runs)
        letters = dead_letters_for(batch, failures)
        spilled = self._dead_letters.send_all(letters)

        summary = BatchSummary(
            event_source=batch.event_source,
            records_received=len(batch.records) + len(batch.failures),
            records_dead_lettered=len(letters),
            records_already_archived=already_archived,
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

    def _runs(self, group_key: GroupKey, records: list[Envelope]) -> list[Run]:
        if self._values is None or not self._values.is_typed(group_key[0]):
            return [Run(group_key, records)]
        # One schema per object: a writer-schema change inside the group starts a new object.
        return [Run(group_key, run, schema) for schema, run in self._values.runs(records)]

    def _create_objects(self, runs: list[Run]) -> tuple[list[ArchiveObject], int]:
        """Create one object per run; where a retried batch finds its key taken, write only what is missing.

        Returns the objects created and how many records objects written earlier already held. Each round either
        creates a run's object or drops at least the run's first record (the object at the taken key is named by
        that offset and holds it), so the loop ends; an object that does not hold it is not ours, and raises.
        """
        created: list[ArchiveObject] = []
        already_archived = 0
        pending = runs
        while pending:
            objects = [self._encode(run) for run in pending]
            retry: list[Run] = []
            for run, item, made in zip(pending, objects, self._writer.create_all(objects), strict=True):
                if made:
                    created.append(item)
                    continue
                body, held = self._writer.existing(item.key)
                if body == item.body:
                    # This very object: an earlier try wrote it, or S3 stored our PUT but its answer was lost and
                    # the SDK's retry of it found the key taken.
                    created.append(item)
                    continue
                if item.first_offset not in held:
                    raise ArchiveWriteError(
                        f"s3://{self._settings.archive_bucket}/{item.key} exists but does not hold offset "
                        f"{item.first_offset}: it was not written by this archiver; move it away"
                    )
                missing = [record for record in run.records if record["offset"] not in held]
                already_archived += len(run.records) - len(missing)
                if missing:
                    retry.append(Run(run.group_key, missing, run.schema))
            pending = retry
        return created, already_archived

    def _encode(self, run: Run) -> ArchiveObject:
        topic, partition, path = run.group_key
        records, schema = run.records, run.schema
        first, last = records[0]["offset"], records[-1]["offset"]
        fingerprint = None if schema is None else schema.fingerprint
        key = archive_key(self._settings.archive_prefix, path, topic, partition, first, fingerprint)
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
            newest_timestamp=newest_timestamp(records, now_ms=int(time.time() * 1000)),
        )


@dataclass(frozen=True, slots=True)
class Run:
    """The records of one object: a group in offset order, and the writer schema of a typed topic's run."""

    group_key: GroupKey
    records: Sequence[Envelope]
    schema: ValueSchema | None = None


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


def newest_timestamp(records: Sequence[Envelope], *, now_ms: int) -> int | None:
    """The newest record timestamp no later than ``now_ms`` + 5 minutes, or None.

    Freshness (the archive audit) is "now minus the newest archived timestamp"; a producer's clock running ahead,
    or garbage such as microseconds written as milliseconds, must not make a stalled archive look fresh.
    """
    limit = now_ms + FUTURE_TOLERANCE_MS
    return max((ts for record in records if 0 <= (ts := record["timestamp"]) <= limit), default=None)


FUTURE_TOLERANCE_MS = 5 * 60 * 1000


def _offset(record: Envelope) -> int:
    offset: int = record["offset"]
    return offset
