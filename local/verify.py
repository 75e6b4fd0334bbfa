"""Completeness audit of the archive: per topic-partition, which offsets are in S3, in the DLQ, missing or duplicated.

    python -m local.verify                     # the deployed stack's bucket, DLQ and consumer group
    python -m local.verify --format text       # a human summary instead of JSON
    python -m local.verify --bucket B --queue-url Q --bootstrap-servers H:P --group G --topics T

It reads every archive object (``*.avro`` under the prefix) with fastavro, and every message on the dead-letter queue
without consuming it (messages become visible again after ``--visibility-timeout`` seconds). The expected offsets of a
partition run from the broker's low watermark to the consumer group's committed offset (``--expect high`` uses the
high watermark instead, to demand that everything produced is accounted for).

Compaction-aware (``tools.compact``): when a compacted object and some of its inputs both still exist (a compaction
that crashed before deleting them), the inputs are reported under ``pendingCompactions`` and not counted as
overlaps; rerunning ``compact`` removes them. Any other object overlap is reported under ``duplicates``.

Exit status: 0 complete; 1 gaps (an expected offset neither in S3 nor in the DLQ) or conflicting duplicates (one
offset archived twice with different contents); 2 usage or connection errors. Overlaps of byte-identical records are
reported but allowed: a retried batch may legitimately archive a record again.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from local import config
from tools.archive_index import (
    ObjectOffsets,
    OverlapReport,
    classify_overlaps,
    compacted_from,
    iter_chunks,
    list_objects,
    read_envelopes,
)


@dataclass
class PartitionReport:
    topic: str
    partition: int
    expected: tuple[int, int] | None = None  # [first, last] expected offsets, inclusive; None = nothing expected
    archived: dict[int, list[str]] = field(default_factory=dict)  # offset -> object keys
    contents: dict[int, set[bytes]] = field(default_factory=dict)  # offset -> distinct serialized records
    dead_lettered: set[int] = field(default_factory=set)

    def covered(self) -> set[int]:
        return set(self.archived) | self.dead_lettered

    def gaps(self) -> list[int]:
        if self.expected is None:
            return []
        first, last = self.expected
        covered = self.covered()
        return [offset for offset in range(first, last + 1) if offset not in covered]

    def overlaps(self) -> dict[int, list[str]]:
        return {offset: keys for offset, keys in self.archived.items() if len(keys) > 1}

    def conflicts(self) -> list[int]:
        return sorted(offset for offset, variants in self.contents.items() if len(variants) > 1)

    def as_dict(self) -> dict[str, Any]:
        overlaps = self.overlaps()
        return {
            "topic": self.topic,
            "partition": self.partition,
            "expected": list(self.expected) if self.expected else None,
            "archived": ranges(self.archived),
            "archivedRecords": len(self.archived),
            "deadLettered": ranges(self.dead_lettered),
            "deadLetteredRecords": len(self.dead_lettered),
            "gaps": ranges(self.gaps()),
            "overlaps": ranges(overlaps),
            "overlapObjects": sorted({key for keys in overlaps.values() for key in keys}),
            "conflicts": ranges(self.conflicts()),
            "alsoInDeadLetters": ranges(set(self.archived) & self.dead_lettered),
        }


def ranges(offsets: Iterable[int]) -> list[list[int]]:
    """[[first, last], ...] of consecutive runs."""
    result: list[list[int]] = []
    for offset in sorted(set(offsets)):
        if result and offset == result[-1][1] + 1:
            result[-1][1] = offset
        else:
            result.append([offset, offset])
    return result


def _report(reports: dict[tuple[str, int], PartitionReport], topic: str, partition: int) -> PartitionReport:
    """The report of one topic-partition, created on first use (not built and dropped for every record)."""
    report = reports.get((topic, partition))
    if report is None:
        report = reports[(topic, partition)] = PartitionReport(topic, partition)
    return report


def read_archive(
    s3: Any, bucket: str, prefix: str, reports: dict[tuple[str, int], PartitionReport]
) -> tuple[int, OverlapReport]:
    """Read every ``.avro`` object under ``prefix`` into ``reports``; leftover compaction inputs are set aside.

    Returns the number of objects and the overlap classification (pending compactions vs real duplicates).
    """
    objects: list[tuple[str, list[tuple[str, int, int, bytes]]]] = []
    offsets: list[ObjectOffsets] = []
    for item in list_objects(s3, bucket, prefix):
        key = item["Key"]
        if not key.endswith(".avro"):
            continue
        response = s3.get_object(Bucket=bucket, Key=key)
        rows = []
        # read_envelopes: exact timestamps, also from v1 objects that default readers cannot read (docs/schema.md)
        for record in read_envelopes(response["Body"].read()):
            content = json.dumps(record, sort_keys=True, default=repr).encode()
            rows.append((str(record["topic"]), int(record["partition"]), int(record["offset"]), content))
        objects.append((key, rows))
        offsets.append(ObjectOffsets(key, [row[2] for row in rows], compacted_from(response.get("Metadata", {}))))
    overlaps = classify_overlaps(offsets)
    redundant = overlaps.redundant_keys  # every offset they hold is in the compacted object that covers them
    for key, rows in objects:
        if key in redundant:
            continue
        for topic, partition, offset, content in rows:
            report = _report(reports, topic, partition)
            report.archived.setdefault(offset, []).append(key)
            report.contents.setdefault(offset, set()).add(content)
    return len(objects), overlaps


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
    """Offsets each DLQ message accounts for: the function's per-record letters, and the ESM's on-failure records."""
    found: dict[tuple[str, int], set[int]] = {}
    for body in messages:
        if isinstance(body.get("KafkaBatchInfo"), dict):
            for name, info in (body["KafkaBatchInfo"].get("recordsInfo") or {}).items():
                topic, _, partition = str(name).rpartition("-")
                first, last = int(info["firstRecordOffset"]), int(info["lastRecordOffset"])
                found.setdefault((topic, int(partition)), set()).update(range(first, last + 1))
        elif type(body.get("offset")) is int and type(body.get("partition")) is int and body.get("topic"):
            found.setdefault((str(body["topic"]), body["partition"]), set()).add(body["offset"])
    return found


def expected_offsets(
    bootstrap: str, topics: list[str], group: str | None, expect: str
) -> dict[tuple[str, int], tuple[int, int] | None]:
    """Per partition, [low watermark, committed - 1] (or high - 1 with ``expect='high'``)."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": group or "kafka-s3-archiver-verify", "enable.auto.commit": False}
    )
    try:
        metadata = consumer.list_topics(timeout=10)
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
        highs = log_end_offsets(bootstrap, partitions, lows) if expect == "high" else {}
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


def log_end_offsets(
    bootstrap: str, partitions: list[Any], watermarks: dict[tuple[str, int], tuple[int, int]], timeout: float = 20.0
) -> dict[tuple[str, int], int]:
    """The true end of each partition's log, read by fetching to the end (partition EOF).

    ListOffsets can't be trusted for this on every broker: Tansu 0.6 was seen answering with the last record batch's
    base offset + 1. A fetch that reaches the end of the log reports the end itself.
    """
    from confluent_kafka import Consumer, KafkaError, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
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
    bootstrap: str | None = None,
    topics: list[str] | None = None,
    group: str | None = None,
    expect: str = "committed",
    visibility_timeout: int = 5,
) -> dict[str, Any]:
    """The machine-readable audit (see the module doc). ``complete`` is False on gaps or conflicts."""
    reports: dict[tuple[str, int], PartitionReport] = {}
    started = time.monotonic()
    objects, overlaps = read_archive(s3, bucket, prefix, reports)
    messages = peek_queue(sqs, queue_url, visibility_timeout) if sqs is not None and queue_url else []
    for (topic, partition), offsets in dead_lettered_offsets(messages).items():
        _report(reports, topic, partition).dead_lettered |= offsets
    if bootstrap and topics:
        for (topic, partition), span in expected_offsets(bootstrap, topics, group, expect).items():
            _report(reports, topic, partition).expected = span
    if topics:
        reports = {key: report for key, report in reports.items() if key[0] in topics}
    partitions = [reports[key].as_dict() for key in sorted(reports)]
    gaps = sum(len(reports[key].gaps()) for key in reports)
    conflicts = sum(len(reports[key].conflicts()) for key in reports)
    return {
        "complete": gaps == 0 and conflicts == 0,
        "bucket": bucket,
        "prefix": prefix,
        "objects": objects,
        "deadLetterMessages": len(messages),
        "expectation": expect if bootstrap and topics else "none (no broker given: archive and DLQ only)",
        "gapCount": gaps,
        "conflictCount": conflicts,
        "overlapCount": sum(len(reports[key].overlaps()) for key in reports),
        **overlaps.as_dict(),
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
            f"overlaps {_fmt(part['overlaps'])}",
        ]
        if part["conflicts"]:
            fields.append(f"CONFLICTS {_fmt(part['conflicts'])}")
        lines.append(f"  {part['topic']}-{part['partition']}: " + "; ".join(fields))
    if result["pendingCompactions"]:
        lines.append(
            f"  {len(result['pendingCompactions'])} leftover compaction input(s), covered by their compacted object: "
            "run `python -m tools.compact` again to delete them"
        )
    lines.append(
        "COMPLETE: every expected offset is in S3 or in the DLQ, no gaps"
        if result["complete"]
        else f"INCOMPLETE: {result['gapCount']} missing offset(s), {result['conflictCount']} conflict(s)"
    )
    return "\n".join(lines)


def _fmt(spans: list[list[int]], empty: str = "none") -> str:
    return ",".join(f"{a}" if a == b else f"{a}-{b}" for a, b in spans) or empty


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m local.verify", description=__doc__.split("\n\n")[0])
    p.add_argument("--instance", default=None)
    p.add_argument("--bucket", default=None, help="default: the deployed stack's archive bucket")
    p.add_argument("--prefix", default="topics/")
    p.add_argument("--queue-url", default=None, help="default: the deployed dead-letter queue ('' to skip)")
    p.add_argument("--bootstrap-servers", default=None, help="default: $KAFKA_BOOTSTRAP_SERVERS or the local broker")
    p.add_argument("--topics", default=None, help="comma-separated (default: the deployed config's topics)")
    p.add_argument(
        "--group", default=None, help="consumer group whose committed offsets are expected (default: config)"
    )
    p.add_argument(
        "--expect",
        choices=["committed", "high"],
        default="committed",
        help="expected offsets end at the group's committed offset or at the high watermark",
    )
    p.add_argument("--visibility-timeout", type=int, default=5)
    p.add_argument("--format", choices=["json", "text"], default="json")
    args = p.parse_args(argv)

    from local import deploy, stack
    from local.aws import client as aws_client

    try:
        state = stack.load_state(args.instance or stack.default_instance())
        outputs: dict[str, Any] = {}
        if not args.bucket:
            outputs = deploy.load_outputs(args.instance)
        aws_endpoint = os.environ.get("AWS_ENDPOINT_URL") or (state.localstack_url if state else None)
        if not aws_endpoint:
            raise RuntimeError("no LocalStack known: run `make local-up` or set AWS_ENDPOINT_URL")
        bootstrap = (
            args.bootstrap_servers or os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or (state.kafka_url if state else None)
        )
        endpoints = config.Endpoints(kafka_bootstrap=bootstrap or "", aws_endpoint=aws_endpoint.rstrip("/"))
        source = outputs.get("event_source", {})
        topics = args.topics.split(",") if args.topics else source.get("topics")
        queue_url = outputs.get("queue_url") if args.queue_url is None else args.queue_url
        result = audit(
            s3=aws_client("s3", endpoints),
            bucket=args.bucket or outputs["bucket"],
            prefix=args.prefix,
            sqs=aws_client("sqs", endpoints) if queue_url else None,
            queue_url=queue_url or None,
            bootstrap=bootstrap,
            topics=topics,
            group=args.group or source.get("consumerGroupId"),
            expect=args.expect,
            visibility_timeout=args.visibility_timeout,
        )
    except (RuntimeError, KeyError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(text_summary(result) if args.format == "text" else json.dumps(result, indent=2))
    return 0 if result["complete"] else 1


if __name__ == "__main__":
    sys.exit(main())
