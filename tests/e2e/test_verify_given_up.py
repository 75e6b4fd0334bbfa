"""The audit (``archive_ops/verify``) calls a batch the event source gave up on what it is: not archived, only in Kafka.

No stack: the archive is written by the real ``Archiver`` into moto S3, the queue is moto SQS, and the on-failure
record is built by the emulator's ``events.on_failure_record`` exactly as AWS shapes it (``KafkaBatchInfo``).
"""

from __future__ import annotations

import json

from archive_ops import verify
from archiver.pipeline import Archiver
from archiver.settings import Settings
from local.esm import events
from tests.kafka_events import kafka_event, kafka_record
from tests.unit.aws_fakes import BUCKET, FakeAws


def archive(aws: FakeAws, offsets: range) -> None:
    archiver = Archiver(
        Settings(archive_bucket=BUCKET, dead_letter_queue_url=aws.queue_url), s3_client=aws.s3, sqs_client=aws.sqs
    )
    archiver.archive(kafka_event([kafka_record("orders", 0, o) for o in offsets], source="SelfManagedKafka"))


def give_up(aws: FakeAws, queue_url: str, first: int, last: int) -> None:
    records = [events.KafkaRecord("orders", 0, o, 1_700_000_000_000 + o) for o in range(first, last + 1)]
    document = events.on_failure_record(
        records,
        events.EventSource(bootstrap_servers="b:9092"),
        function_arn="arn:aws:lambda:us-east-1:123456789012:function:archiver",
        condition="RetryAttemptsExhausted",
        invoke_count=3,
        payload_size=1234,
    )
    aws.sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(document))


def test_a_given_up_batch_is_not_archived_only_in_kafka_and_never_complete(aws: FakeAws) -> None:
    archive(aws, range(0, 10))
    give_up(aws, aws.queue_url, 10, 19)  # the event source discarded 10-19 and committed past them
    archive(aws, range(20, 30))

    result = verify.audit(s3=aws.s3, bucket=BUCKET, sqs=aws.sqs, queue_url=aws.queue_url)

    assert result["complete"] is False
    assert result["notArchivedCount"] == 10
    assert result["gapCount"] == 0  # accounted for, but not archived: that is not the same as a gap
    (partition,) = result["partitions"]
    assert partition["notArchived"] == [[10, 19]]
    assert partition["givenUp"] == [[10, 19]]
    assert partition["archived"] == [[0, 9], [20, 29]]
    summary = verify.text_summary(result)
    assert "NOT ARCHIVED, ONLY IN KAFKA 10-19" in summary
    assert "kafka-s3-archiver backfill" in summary
    assert "COMPLETE:" not in summary.replace("INCOMPLETE:", "")
    assert "10 offset(s) not archived, only in Kafka" in summary.splitlines()[-1]


def test_given_up_records_the_function_archived_anyway_are_not_flagged(aws: FakeAws) -> None:
    """A batch the function half-wrote before failing (objects written, then the DLQ failed): its archived records
    are archived; only the rest of the given-up range is only in Kafka."""
    archive(aws, range(0, 15))
    give_up(aws, aws.queue_url, 10, 19)

    result = verify.audit(s3=aws.s3, bucket=BUCKET, sqs=aws.sqs, queue_url=aws.queue_url)

    (partition,) = result["partitions"]
    assert partition["notArchived"] == [[15, 19]]
    assert result["complete"] is False


def test_on_failure_records_on_their_own_queue_are_read_too(aws: FakeAws) -> None:
    on_failure = aws.sqs.create_queue(QueueName="on-failure")["QueueUrl"]
    archive(aws, range(0, 10))
    give_up(aws, on_failure, 10, 12)

    result = verify.audit(
        s3=aws.s3, bucket=BUCKET, sqs=aws.sqs, queue_url=aws.queue_url, on_failure_queue_url=on_failure
    )

    assert result["partitions"][0]["notArchived"] == [[10, 12]]
    assert result["complete"] is False


def test_an_archive_with_only_dead_letters_is_complete(aws: FakeAws) -> None:
    """Per-record dead letters hold their record: those offsets are accounted for and the audit is complete."""
    archiver = Archiver(
        Settings(archive_bucket=BUCKET, dead_letter_queue_url=aws.queue_url), s3_client=aws.s3, sqs_client=aws.sqs
    )
    records = [kafka_record("orders", 0, o) for o in range(5)] + [kafka_record("orders", 0, 5) | {"value": "?"}]
    archiver.archive(kafka_event(records, source="SelfManagedKafka"))

    result = verify.audit(s3=aws.s3, bucket=BUCKET, sqs=aws.sqs, queue_url=aws.queue_url)

    assert result["complete"] is True
    assert result["partitions"][0]["deadLettered"] == [[5, 5]]
    assert result["partitions"][0]["notArchived"] == []
