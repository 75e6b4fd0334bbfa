"""Backfill's engine with the function's real Archiver on moto S3/SQS and a scripted consumer in place of the broker
(the local-broker end-to-end test is tests/e2e/test_backfill.py): batches like the event source, exact bytes,
already-archived records recognised, a range Kafka no longer has refused before anything is written, commits only
forward and only when asked."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from confluent_kafka import KafkaError, TopicPartition

from archive_ops.archive_index import list_archive, read_envelopes
from archive_ops.backfill import Backfiller, BackfillError, BackfillRange
from tests.unit.aws_fakes import BUCKET, FakeAws, make_archiver


@dataclass
class Message:
    offset_: int
    value_: bytes | None
    key_: bytes | None = b"k"
    headers_: list[tuple[str, bytes]] = field(default_factory=lambda: [("h", b"\x00\xff")])
    eof: bool = False

    def error(self) -> Any:
        if not self.eof:
            return None

        class Eof:
            def code(self) -> int:
                return KafkaError._PARTITION_EOF

        return Eof()

    def offset(self) -> int:
        return self.offset_

    def topic(self) -> str:
        return "orders"

    def partition(self) -> int:
        return 2

    def timestamp(self) -> tuple[int, int]:
        return (1, 1_714_567_890_000 + self.offset_)

    def key(self) -> bytes | None:
        return self.key_

    def value(self) -> bytes | None:
        return self.value_

    def headers(self) -> list[tuple[str, bytes]]:
        return self.headers_


class ScriptedConsumer:
    """A partition holding offsets ``low..high-1``; polls from the assigned offset, then EOF."""

    def __init__(self, low: int, high: int, committed: int | None = None) -> None:
        self.low, self.high = low, high
        self.position: int | None = None
        self.settings: dict[str, Any] = {}
        self.committed_offset = committed
        self.commits: list[int] = []

    def __call__(self, settings: dict[str, Any]) -> ScriptedConsumer:
        self.settings = settings
        return self

    def get_watermark_offsets(self, _partition: Any, timeout: float, cached: bool) -> tuple[int, int]:
        return self.low, self.high

    def assign(self, partitions: list[TopicPartition]) -> None:
        self.position = partitions[0].offset

    def poll(self, _timeout: float) -> Message:
        assert self.position is not None
        if self.position >= self.high:
            return Message(self.position, None, eof=True)
        self.position += 1
        offset = self.position - 1
        return Message(offset, None if offset % 10 == 3 else f"value-{offset}".encode())

    def committed(self, partitions: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        return [TopicPartition(partitions[0].topic, partitions[0].partition, self.committed_offset or -1001)]

    def commit(self, offsets: list[TopicPartition], asynchronous: bool) -> None:
        self.commits.append(offsets[0].offset)

    def close(self) -> None:
        pass


def test_backfill_archives_the_range_in_event_source_batches_with_exact_bytes(aws: FakeAws) -> None:
    consumer = ScriptedConsumer(low=0, high=100)
    backfiller = Backfiller(
        make_archiver(aws), {"bootstrap.servers": "b:9092"}, batch_size=7, consumer_factory=consumer
    )
    summary = backfiller.run(BackfillRange("orders", 2, 10, 29))
    assert (summary.records_read, summary.batches, summary.records_archived) == (20, 3, 20)
    assert consumer.settings["enable.auto.commit"] is False
    records = [r for item in list_archive(aws.s3, BUCKET, "topics/") for r in read_envelopes(aws.body(item.key))]
    assert sorted(r["offset"] for r in records) == list(range(10, 30))
    by_offset = {r["offset"]: r for r in records}
    assert by_offset[13]["value"] is None  # a tombstone stays a tombstone
    assert by_offset[14]["value"] == b"value-14"
    assert by_offset[14]["headers"] == [{"key": "h", "value": b"\x00\xff"}]
    assert by_offset[14]["timestamp"] == 1_714_567_890_014
    assert sorted(key.rsplit("+", 1)[1] for key in summary.keys_written) == [
        "00000000000000000010.avro",
        "00000000000000000017.avro",
        "00000000000000000024.avro",
    ]  # named by each batch's first offset, as the function names them

    before = listing(aws)
    again = Backfiller(make_archiver(aws), {}, batch_size=7, consumer_factory=ScriptedConsumer(0, 100)).run(
        BackfillRange("orders", 2, 10, 29)
    )
    assert again.records_read == 20
    assert listing(aws) == before  # same keys, same bytes: the conditional writes created nothing new


def listing(aws: FakeAws) -> list[tuple[str, str, Any]]:
    """Every object's key, ETag and modification time: a rewritten object would change the time."""
    pages = aws.s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
    return sorted((o["Key"], o["ETag"], o["LastModified"]) for page in pages for o in page.get("Contents", []))


def test_a_range_kafka_no_longer_has_is_refused_before_anything_is_written(aws: FakeAws) -> None:
    backfiller = Backfiller(make_archiver(aws), {}, consumer_factory=ScriptedConsumer(low=50, high=100))
    with pytest.raises(BackfillError, match=r"no longer has offset 10 .* starts at 50.* 10\.\.49 are gone"):
        backfiller.run(BackfillRange("orders", 2, 10, 60))
    assert aws.keys() == []


def test_commit_only_when_asked_and_only_forward(aws: FakeAws) -> None:
    behind = ScriptedConsumer(0, 100, committed=5)
    Backfiller(make_archiver(aws), {}, commit_group="g", consumer_factory=behind).run(BackfillRange("orders", 2, 0, 9))
    assert behind.commits == [10]
    assert behind.settings["group.id"] == "g"
    ahead = ScriptedConsumer(0, 100, committed=80)
    summary = Backfiller(make_archiver(aws), {}, commit_group="g", consumer_factory=ahead).run(
        BackfillRange("orders", 2, 0, 9)
    )
    assert (ahead.commits, summary.committed) == ([], None)
    never = ScriptedConsumer(0, 100)
    Backfiller(make_archiver(aws), {}, consumer_factory=never).run(BackfillRange("orders", 2, 0, 9))
    assert never.commits == []


def test_batches_stay_under_the_payload_limit(aws: FakeAws) -> None:
    consumer = ScriptedConsumer(0, 100)
    summary = Backfiller(
        make_archiver(aws), {}, batch_size=10_000, max_payload_bytes=2_000, consumer_factory=consumer
    ).run(BackfillRange("orders", 2, 0, 49))
    assert summary.records_archived == 50
    assert summary.batches > 5  # ~250 bytes per record as event JSON: a few per 2,000-byte event
