"""Backfill: read an offset range of one topic-partition from Kafka and archive it with the function's own code.

    kafka-s3-archiver backfill --config config/prod.json --topic orders --partition 3 \
        --from-offset 1200 --to-offset 1699

The remedy for a batch the event source gave up on (its on-failure record names the range) and for a gap the audit
reports. The consumer is assigned the partition and seeks to the first offset: it joins no group and commits
nothing (unless asked to, and then only forward). Records are cut into batches as the event source cuts them (at
most ``batch_size`` records, an event under 6 MB), each turned into the event the mapping would send, and handed to
``archiver.pipeline.Archiver`` with real S3 and SQS clients: the same decoding, partitioning, encoding, keys,
conditional writes and dead-lettering as the deployed function.

Safe to repeat: objects are created with conditional writes and named by their first offset, so running the same
backfill again writes nothing new (the records are counted as already archived). A range archived before with other
batch boundaries gets identical copies, which the audit counts as duplicates and compaction removes; never a
conflict.

It fails before writing anything if Kafka no longer has the first offset (retention deleted it: those records are
lost from Kafka, record the range), and stops with what it did if the partition ends before the last offset.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

MAX_PAYLOAD_BYTES = 6 * 1024 * 1024  # the event source mapping's invocation payload limit
EVENT_OVERHEAD_BYTES = 512
TIMESTAMP_TYPES = {0: "NO_TIMESTAMP_TYPE", 1: "CREATE_TIME", 2: "LOG_APPEND_TIME"}
POLL_TIMEOUT_S = 1.0


class BackfillError(RuntimeError):
    """The range cannot be (fully) read from Kafka; the message says what was archived and what is missing."""


@dataclass(frozen=True)
class BackfillRange:
    topic: str
    partition: int
    from_offset: int
    to_offset: int

    def __post_init__(self) -> None:
        if self.from_offset > self.to_offset:
            raise BackfillError(f"--from-offset {self.from_offset} is after --to-offset {self.to_offset}")


@dataclass
class BackfillSummary:
    topic: str
    partition: int
    from_offset: int
    to_offset: int
    records_read: int = 0
    batches: int = 0
    records_archived: int = 0
    records_already_archived: int = 0
    records_dead_lettered: int = 0
    first_offset_read: int | None = None
    last_offset_read: int | None = None
    keys_written: list[str] = field(default_factory=list)
    committed: int | None = None
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "partition": self.partition,
            "range": [self.from_offset, self.to_offset],
            "recordsRead": self.records_read,
            "firstOffsetRead": self.first_offset_read,
            "lastOffsetRead": self.last_offset_read,
            "batches": self.batches,
            "recordsArchived": self.records_archived,
            "recordsAlreadyArchived": self.records_already_archived,
            "recordsDeadLettered": self.records_dead_lettered,
            "objectsWritten": len(self.keys_written),
            "keysWritten": self.keys_written,
            "committed": self.committed,
            "seconds": round(self.seconds, 3),
        }


class Backfiller:
    """Archives one range. ``archiver`` is an ``archiver.pipeline.Archiver``; ``consumer_factory`` builds a
    confluent_kafka.Consumer from settings (tests may fake it)."""

    def __init__(
        self,
        archiver: Any,
        kafka_settings: dict[str, Any],
        *,
        batch_size: int = 500,
        max_payload_bytes: int = MAX_PAYLOAD_BYTES,
        commit_group: str | None = None,
        consumer_factory: Callable[[dict[str, Any]], Any] | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        if not 1 <= batch_size <= 10_000:
            raise BackfillError(f"--batch-size must be 1 to 10000 (the event source's range); got {batch_size}")
        self._archiver = archiver
        self._kafka = kafka_settings
        self._batch_size = batch_size
        self._max_payload = max_payload_bytes
        self._commit_group = commit_group
        self._consumer_factory = consumer_factory or _confluent_consumer
        self._log = log or (lambda _message: None)

    def run(self, wanted: BackfillRange) -> BackfillSummary:
        started = time.monotonic()
        summary = BackfillSummary(wanted.topic, wanted.partition, wanted.from_offset, wanted.to_offset)
        consumer = self._consumer_factory(
            {
                **self._kafka,
                # librdkafka wants a group id for a consumer; with assign() and no commits it joins no group.
                "group.id": self._commit_group or "kafka-s3-archiver-backfill",
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "enable.partition.eof": True,
                "auto.offset.reset": "error",
            }
        )
        try:
            batch: list[dict[str, Any]] = []
            size = EVENT_OVERHEAD_BYTES
            for record in self._read(consumer, wanted, summary):
                record_bytes = len(json.dumps(record, separators=(",", ":"))) + len(wanted.topic) + 16
                if batch and (len(batch) >= self._batch_size or size + record_bytes > self._max_payload):
                    self._archive(batch, summary)
                    batch, size = [], EVENT_OVERHEAD_BYTES
                batch.append(record)
                size += record_bytes
            if batch:
                self._archive(batch, summary)
            if summary.last_offset_read is None or summary.last_offset_read < wanted.to_offset:
                end = summary.last_offset_read
                raise BackfillError(
                    f"{wanted.topic}-{wanted.partition} ends at offset {end if end is not None else '(none)'}: "
                    f"archived {summary.records_read} record(s); offsets "
                    f"{(end + 1) if end is not None else wanted.from_offset}..{wanted.to_offset} are not in Kafka"
                )
            if self._commit_group is not None:
                summary.committed = self._commit_forward(consumer, wanted)
        finally:
            consumer.close()
        summary.seconds = time.monotonic() - started
        return summary

    def _read(self, consumer: Any, wanted: BackfillRange, summary: BackfillSummary) -> Iterator[dict[str, Any]]:
        from confluent_kafka import KafkaError, TopicPartition

        partition = TopicPartition(wanted.topic, wanted.partition)
        low, _high = consumer.get_watermark_offsets(partition, timeout=30, cached=False)
        if wanted.from_offset < low:
            raise BackfillError(
                f"Kafka no longer has offset {wanted.from_offset} of {wanted.topic}-{wanted.partition} (it starts at "
                f"{low}): offsets {wanted.from_offset}..{min(low - 1, wanted.to_offset)} are gone from Kafka, "
                "record the range; backfill what is left with --from-offset "
                f"{low}"
            )
        consumer.assign([TopicPartition(wanted.topic, wanted.partition, wanted.from_offset)])
        while True:
            message = consumer.poll(POLL_TIMEOUT_S)
            if message is None:
                continue
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    return
                raise BackfillError(f"reading {wanted.topic}-{wanted.partition} failed: {error.str()}")
            offset = int(message.offset())
            if offset > wanted.to_offset:
                return
            summary.records_read += 1
            if summary.first_offset_read is None:
                summary.first_offset_read = offset
            summary.last_offset_read = offset
            yield event_record(message)

    def _archive(self, records: list[dict[str, Any]], summary: BackfillSummary) -> None:
        first, last = records[0]["offset"], records[-1]["offset"]
        event = {
            "eventSource": "SelfManagedKafka",
            "bootstrapServers": str(self._kafka.get("bootstrap.servers", "")),
            "records": {f"{records[0]['topic']}-{records[0]['partition']}": records},
        }
        result = self._archiver.archive(event)
        summary.batches += 1
        summary.records_archived += result.records_archived
        summary.records_already_archived += result.records_already_archived
        summary.records_dead_lettered += result.records_dead_lettered
        summary.keys_written.extend(result.keys_written)
        self._log(
            f"offsets {first}..{last}: {result.records_archived} archived, {result.records_already_archived} already "
            f"archived, {result.records_dead_lettered} dead-lettered"
        )

    def _commit_forward(self, consumer: Any, wanted: BackfillRange) -> int | None:
        """Commit ``to + 1`` for the group, only if that moves its committed offset forward."""
        from confluent_kafka import TopicPartition

        (current,) = consumer.committed([TopicPartition(wanted.topic, wanted.partition)], timeout=30)
        target = wanted.to_offset + 1
        if current.offset is not None and current.offset >= target:
            self._log(f"group {self._commit_group} is at {current.offset} already: nothing committed")
            return None
        consumer.commit(offsets=[TopicPartition(wanted.topic, wanted.partition, target)], asynchronous=False)
        self._log(f"committed offset {target} for group {self._commit_group}")
        return target


def event_record(message: Any) -> dict[str, Any]:
    """One record of the event source's Kafka event (key and value base64, absent when null; headers as bytes)."""
    timestamp_type, timestamp = message.timestamp()
    record: dict[str, Any] = {
        "topic": message.topic(),
        "partition": message.partition(),
        "offset": message.offset(),
        "timestamp": timestamp,
        "timestampType": TIMESTAMP_TYPES.get(timestamp_type, "CREATE_TIME"),
    }
    key, value = message.key(), message.value()
    if key is not None:
        record["key"] = base64.b64encode(key).decode("ascii")
    if value is not None:
        record["value"] = base64.b64encode(value).decode("ascii")
    record["headers"] = [{name: list(data or b"")} for name, data in message.headers() or []]
    return record


def _confluent_consumer(settings: dict[str, Any]) -> Any:
    from confluent_kafka import Consumer

    return Consumer(settings)
