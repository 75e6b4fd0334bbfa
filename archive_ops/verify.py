"""Completeness audit of the archive: per topic-partition, which offsets are in S3, in the DLQ, missing or duplicated.

    kafka-s3-archiver verify --config config/prod.json                 # the deployed stack's bucket, queues, topics
    kafka-s3-archiver verify --bucket B --dead-letter-queue-url Q --on-failure-queue-url F --topic T --group G

It reads every archive object (``*.avro`` under the prefix) with fastavro, and every message on the dead-letter queue
and on the on-failure queue without consuming them (messages become visible again after ``visibility_timeout``
seconds). The expected offsets of a partition run from the broker's low watermark to the consumer group's committed
offset (``expect="high"`` uses the high watermark instead, to demand that everything produced is accounted for).

A batch the event source gave up on (AWS's on-failure record, ``KafkaBatchInfo``) holds offsets, not records: its
offsets that no object holds are reported as ``notArchived``, "not archived, only in Kafka", and the audit is never
complete while there are any. The remedy is ``kafka-s3-archiver backfill`` over that range.

An offset held by more than one object is a *duplicate* when every copy is the same record (what a retried batch,
or a compaction interrupted before deleting its inputs, leaves; ``archive_ops.compact`` keeps one copy) and a
*conflict* when the copies differ, which no retry can cause.

Complete means: no gaps (an expected offset neither in S3 nor dead-lettered), nothing only in Kafka, no conflicts.
Duplicates are reported but allowed: compaction removes them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from archive_ops.archive_audit import to_runs
from archive_ops.archive_index import iter_chunks, list_objects, read_envelopes, record_digest


@dataclass
class PartitionReport:
    topic: str
    partition: int
    expected: tuple[int, int] | None = None  # [first, last] expected offsets, inclusive; None = nothing expected
    archived: dict[int, list[str]] = field(default_factory=dict)  # offset -> object keys
    contents: dict[int, set[bytes]] = field(default_factory=dict)  # offset -> digests of its distinct copies
    dead_lettered: set[int] = field(default_factory=set)
    given_up: set[int] = field(default_factory=set)  # offsets of batches the event source gave up on

    def covered(self) -> set[int]:
        return set(self.archived) | self.dead_lettered

    def not_archived(self) -> list[int]:
        """Offsets of given-up batches that no object holds: not archived, only in Kafka (until retention)."""
        return sorted(self.given_up - self.covered())

    def gaps(self) -> list[int]:
        """Expected offsets nothing accounts for (those of given-up batches are ``not_archived`` instead)."""
        if self.expected is None:
            return []
        first, last = self.expected
        covered = self.covered() | self.given_up
        return [offset for offset in range(first, last + 1) if offset not in covered]

    def conflicts(self) -> list[int]:
        return sorted(offset for offset, variants in self.contents.items() if len(variants) > 1)

    def duplicates(self) -> dict[int, list[str]]:
        """Offsets more than one object holds, every copy the same record."""
        return {
            offset: keys for offset, keys in self.archived.items() if len(keys) > 1 and len(self.contents[offset]) == 1
        }

    def as_dict(self) -> dict[str, Any]:
        duplicates = self.duplicates()
        conflicts = self.conflicts()
        return {
            "topic": self.topic,
            "partition": self.partition,
            "expected": list(self.expected) if self.expected else None,
            "archived": ranges(self.archived),
            "archivedRecords": len(self.archived),
            "deadLettered": ranges(self.dead_lettered),
            "deadLetteredRecords": len(self.dead_lettered),
            "givenUp": ranges(self.given_up),
            "notArchived": ranges(self.not_archived()),
            "givenUpSinceArchived": ranges(self.given_up & self.covered()),
            "gaps": ranges(self.gaps()),
            "duplicates": ranges(duplicates),
            "duplicateObjects": sorted({key for keys in duplicates.values() for key in keys}),
            "conflicts": ranges(conflicts),
            "conflictObjects": {str(offset): sorted(self.archived[offset]) for offset in conflicts},
            "alsoInDeadLetters": ranges(set(self.archived) & self.dead_lettered),
        }


def ranges(offsets: Iterable[int]) -> list[list[int]]:
    """[[first, last], ...] of consecutive runs (the audit's offset runs)."""
    return to_runs(offsets)


def _report(reports: dict[tuple[str, int], PartitionReport], topic: str, partition: int) -> PartitionReport:
    """The report of one topic-partition, created on first use (not built and dropped for every record)."""
    report = reports.get((topic, partition))
    if report is None:
        report = reports[(topic, partition)] = PartitionReport(topic, partition)
    return report


def read_archive(s3: Any, bucket: str, prefix: str, reports: dict[tuple[str, int], PartitionReport]) -> int:
    """Read every ``.avro`` object under ``prefix`` into ``reports``; returns the number of objects."""
    objects = 0
    for item in list_objects(s3, bucket, prefix):
        key = item["Key"]
        if not key.endswith(".avro"):
            continue
        objects += 1
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        for record in read_envelopes(body):
            report = _report(reports, str(record["topic"]), int(record["partition"]))
            offset = int(record["offset"])
            report.archived.setdefault(offset, []).append(key)
            report.contents.setdefault(offset, set()).add(record_digest(record))
    return objects


def peek_queue(sqs: Any, queue_url: str, visibility_timeout: int = 5, max_empty: int = 2) -> list[dict[str, Any]]:
    """Every message body on the queue (parsed JSON), without deleting any."""
    seen: dict[str, dict[str, Any]] = {}
    handles: list[str] = []
    empty = 0
    while empty < max_empty:
        response = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=visibility_timeout, WaitTimeSeconds=0
        )
        messages = response.get("Messages", [])
        fresh = [m for m in messages if m["MessageId"] not in seen]
        if not fresh:
            empty += 1
            continue
        empty = 0
        handles.extend(m["ReceiptHandle"] for m in fresh)
        for message in fresh:
            try:
                body = json.loads(message["Body"])
            except ValueError:
                body = {"unparsed": message["Body"]}
            seen[message["MessageId"]] = body if isinstance(body, dict) else {"unparsed": body}
    # Make them visible again at once: the audit only looks.
    for chunk in iter_chunks(handles, 10):
        entries = [{"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0} for i, h in enumerate(chunk)]
        sqs.change_message_visibility_batch(QueueUrl=queue_url, Entries=entries)
    return list(seen.values())


def dead_lettered_offsets(messages: Iterable[dict[str, Any]]) -> dict[tuple[str, int], set[int]]:
    """Offsets the function dead-lettered: one per-record letter each (their payload is in the message)."""
    found: dict[tuple[str, int], set[int]] = {}
    for body in messages:
        if type(body.get("offset")) is int and type(body.get("partition")) is int and body.get("topic"):
            found.setdefault((str(body["topic"]), body["partition"]), set()).add(body["offset"])
    return found


def given_up_offsets(messages: Iterable[dict[str, Any]]) -> dict[tuple[str, int], set[int]]:
    """Offsets of batches the event source gave up on (AWS's on-failure records, ``KafkaBatchInfo``).

    Those records were not archived: the message holds their offsets, not the records. ``recordsInfo`` is keyed
    ``<topic>-<partition>`` (topics may contain '-': the partition is after the last one).
    """
    found: dict[tuple[str, int], set[int]] = {}
    for body in messages:
        if isinstance(body.get("KafkaBatchInfo"), dict):
            for name, info in (body["KafkaBatchInfo"].get("recordsInfo") or {}).items():
                topic, _, partition = str(name).rpartition("-")
                first, last = int(info["firstRecordOffset"]), int(info["lastRecordOffset"])
                found.setdefault((topic, int(partition)), set()).update(range(first, last + 1))
    return found


class UnknownTopicsError(LookupError):
    """Topics the broker does not know: a typo, or the wrong cluster."""

    def __init__(self, topics: list[str]) -> None:
        super().__init__(f"topic(s) {', '.join(topics)} not found in Kafka: check --topic and --bootstrap-servers")
        self.topics = topics


def expected_offsets(
    kafka: str | Mapping[str, Any], topics: list[str], group: str | None, expect: str
) -> dict[tuple[str, int], tuple[int, int] | None]:
    """Per partition, [low watermark, committed - 1] (or high - 1 with ``expect='high'``).

    ``kafka`` is the bootstrap servers or the client settings (``archive_ops.kafka_client``, with security).
    """
    from confluent_kafka import Consumer, TopicPartition

    settings = _client_settings(kafka)
    consumer = Consumer({**settings, "group.id": group or "kafka-s3-archiver-verify", "enable.auto.commit": False})
    try:
        metadata = consumer.list_topics(timeout=10)
        unknown = [topic for topic in topics if topic not in metadata.topics]
        if unknown:
            raise UnknownTopicsError(unknown)
        partitions = [
            TopicPartition(topic, partition)
            for topic in topics
            if topic in metadata.topics
            for partition in sorted(metadata.topics[topic].partitions)
        ]
        committed = (
            {(tp.topic, tp.partition): tp.offset for tp in consumer.committed(partitions, timeout=10)} if group else {}
        )
        result: dict[tuple[str, int], tuple[int, int] | None] = {}
        lows = {
            (tp.topic, tp.partition): consumer.get_watermark_offsets(tp, timeout=10, cached=False) for tp in partitions
        }
        highs = log_end_offsets(settings, partitions, lows) if expect == "high" else {}
        for tp in partitions:
            low, _ = lows[(tp.topic, tp.partition)]
            end = (
                highs.get((tp.topic, tp.partition), -1)
                if expect == "high"
                else committed.get((tp.topic, tp.partition), -1)
            )
            end = end if end is not None and end >= 0 else low
            result[(tp.topic, tp.partition)] = (low, end - 1) if end > low else None
        return result
    finally:
        consumer.close()


def _client_settings(kafka: str | Mapping[str, Any]) -> dict[str, Any]:
    return {"bootstrap.servers": kafka} if isinstance(kafka, str) else dict(kafka)


def log_end_offsets(
    kafka: str | Mapping[str, Any],
    partitions: list[Any],
    watermarks: dict[tuple[str, int], tuple[int, int]],
    timeout: float = 20.0,
) -> dict[tuple[str, int], int]:
    """The true end of each partition's log, read by fetching to the end (partition EOF).

    ListOffsets can't be trusted for this on every broker: Tansu 0.6 was seen answering with the last record batch's
    base offset + 1. A fetch that reaches the end of the log reports the end itself.
    """
    from confluent_kafka import Consumer, KafkaError, TopicPartition

    consumer = Consumer(
        {
            **_client_settings(kafka),
            "group.id": "kafka-s3-archiver-verify-eof",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    ends: dict[tuple[str, int], int] = {}
    try:
        starts = []
        for tp in partitions:
            low, high = watermarks[(tp.topic, tp.partition)]
            if high <= low:
                ends[(tp.topic, tp.partition)] = low
                continue
            starts.append(TopicPartition(tp.topic, tp.partition, max(low, high - 1)))
        if starts:
            consumer.assign(starts)
        deadline = time.monotonic() + timeout
        while len(ends) < len(partitions) and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            key = (str(message.topic()), int(message.partition() or 0))
            error = message.error()
            if error is not None and error.code() == KafkaError._PARTITION_EOF:
                ends[key] = int(message.offset() or 0)
    finally:
        consumer.close()
    return ends


def audit(
    *,
    s3: Any,
    bucket: str,
    prefix: str = "topics/",
    sqs: Any | None = None,
    queue_url: str | None = None,
    on_failure_queue_url: str | None = None,
    bootstrap: str | None = None,
    kafka: Mapping[str, Any] | None = None,
    topics: list[str] | None = None,
    group: str | None = None,
    groups: Mapping[str, str] | None = None,
    expect: str = "committed",
    visibility_timeout: int = 5,
) -> dict[str, Any]:
    """The machine-readable audit (see the module doc). ``complete`` is False on gaps, offsets only in Kafka, or
    conflicts.

    ``queue_url`` is the dead-letter queue, ``on_failure_queue_url`` the on-failure queue (an on-failure record on
    either counts as given up). ``kafka`` (client settings, with security) or ``bootstrap`` finds the expected
    offsets; ``groups`` gives each topic its own consumer group (the stack's ``<group>-<topic>``), ``group`` one for
    all.
    """
    reports: dict[tuple[str, int], PartitionReport] = {}
    started = time.monotonic()
    objects = read_archive(s3, bucket, prefix, reports)
    messages = peek_queue(sqs, queue_url, visibility_timeout) if sqs is not None and queue_url else []
    on_failure = (
        peek_queue(sqs, on_failure_queue_url, visibility_timeout) if sqs is not None and on_failure_queue_url else []
    )
    for (topic, partition), offsets in dead_lettered_offsets(messages).items():
        _report(reports, topic, partition).dead_lettered |= offsets
    for (topic, partition), offsets in given_up_offsets(messages + on_failure).items():
        _report(reports, topic, partition).given_up |= offsets
    client = kafka if kafka is not None else ({"bootstrap.servers": bootstrap} if bootstrap else None)
    if client and topics:
        for topic in topics:
            topic_group = (groups or {}).get(topic, group)
            for (name, partition), span in expected_offsets(client, [topic], topic_group, expect).items():
                _report(reports, name, partition).expected = span
    if topics:
        reports = {key: report for key, report in reports.items() if key[0] in topics}
    partitions = [reports[key].as_dict() for key in sorted(reports)]
    gaps = sum(len(reports[key].gaps()) for key in reports)
    only_in_kafka = sum(len(reports[key].not_archived()) for key in reports)
    conflicts = sum(len(reports[key].conflicts()) for key in reports)
    return {
        "complete": gaps == 0 and conflicts == 0 and only_in_kafka == 0,
        "bucket": bucket,
        "prefix": prefix,
        "objects": objects,
        "deadLetterMessages": len(messages),
        "onFailureMessages": len(on_failure),
        "expectation": expect if client and topics else "none (no broker given: archive and queues only)",
        "gapCount": gaps,
        "notArchivedCount": only_in_kafka,
        "conflictCount": conflicts,
        "duplicateCount": sum(len(reports[key].duplicates()) for key in reports),
        "partitions": partitions,
        "seconds": round(time.monotonic() - started, 2),
    }


def text_summary(result: dict[str, Any]) -> str:
    lines = [
        f"archive s3://{result['bucket']}/{result['prefix']}: {result['objects']} objects, "
        f"{result['deadLetterMessages']} dead-letter messages, expected offsets: {result['expectation']}"
    ]
    for part in result["partitions"]:
        expected = "-" if part["expected"] is None else f"{part['expected'][0]}..{part['expected'][1]}"
        fields = [
            f"expected {expected}",
            f"archived {part['archivedRecords']} {_fmt(part['archived'], '')}".rstrip(),
            f"dead-lettered {part['deadLetteredRecords']} {_fmt(part['deadLettered'], '')}".rstrip(),
            f"gaps {_fmt(part['gaps'])}",
            f"duplicates {_fmt(part['duplicates'])}",
        ]
        if part["notArchived"]:
            fields.append(f"NOT ARCHIVED, ONLY IN KAFKA {_fmt(part['notArchived'])}")
        if part["conflicts"]:
            fields.append(f"CONFLICTS {_fmt(part['conflicts'])}")
        lines.append(f"  {part['topic']}-{part['partition']}: " + "; ".join(fields))
    for part in result["partitions"]:
        for first, last in part["notArchived"]:
            lines.append(
                f"  {part['topic']}-{part['partition']} offsets {first}-{last}: a batch the event source gave up on, "
                "not archived, only in Kafka until retention deletes it; re-archive it with: kafka-s3-archiver "
                f"backfill --topic {part['topic']} --partition {part['partition']} --from-offset {first} "
                f"--to-offset {last} (then delete its on-failure message)"
            )
        if part["givenUpSinceArchived"]:
            lines.append(
                f"  {part['topic']}-{part['partition']}: given-up offsets {_fmt(part['givenUpSinceArchived'])} are "
                "archived now (backfilled): their on-failure message can be deleted"
            )
    if result["duplicateCount"]:
        lines.append(
            f"  {result['duplicateCount']} offset(s) archived more than once, every copy identical: "
            "compaction keeps one (kafka-s3-archiver compact)"
        )
    if result["complete"]:
        lines.append("COMPLETE: every expected offset is in S3 or dead-lettered, no gaps")
    else:
        lines.append(
            f"INCOMPLETE: {result['gapCount']} missing offset(s), {result['notArchivedCount']} offset(s) not "
            f"archived, only in Kafka, {result['conflictCount']} conflict(s)"
        )
    return "\n".join(lines)


def _fmt(spans: list[list[int]], empty: str = "none") -> str:
    return ",".join(f"{a}" if a == b else f"{a}-{b}" for a, b in spans) or empty
