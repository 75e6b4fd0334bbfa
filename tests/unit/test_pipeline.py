"""The archiver against S3 and SQS (moto): layout, contents, dead letters, failures and idempotent retries."""

from __future__ import annotations

import io
import json
from typing import Any

import fastavro
import pytest

from archiver.errors import ArchiveWriteError, DeadLetterError, EventError
from archiver.pipeline import newest_timestamp
from tests.kafka_events import kafka_event, kafka_record
from tests.unit.aws_fakes import BUCKET, FakeAws, PartiallyFailingSqs, inject_s3_slowdown, make_archiver


def read_avro(aws: FakeAws, key: str) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = list(fastavro.reader(io.BytesIO(aws.body(key))))  # type: ignore[arg-type]
    return records


def multi_partition_batch() -> dict[str, Any]:
    records = [kafka_record("orders.eu-west-1", partition, offset) for partition in (0, 1) for offset in (5, 6, 7)]
    records += [kafka_record("payments", 2, offset, value=None) for offset in (100, 101)]  # tombstones
    return kafka_event(records)


def test_a_multi_partition_batch_becomes_one_object_per_partition(aws: FakeAws) -> None:
    event = multi_partition_batch()
    summary = make_archiver(aws).archive(event)

    expected = [
        "topics/orders.eu-west-1/partition=0/orders.eu-west-1+0+00000000000000000005.avro",
        "topics/orders.eu-west-1/partition=1/orders.eu-west-1+1+00000000000000000005.avro",
        "topics/payments/partition=2/payments+2+00000000000000000100.avro",
    ]
    assert aws.keys() == expected
    assert sorted(summary.keys_written) == expected
    assert summary.records_received == summary.records_archived == 8
    assert summary.records_dead_lettered == 0
    assert summary.bytes_written == sum(len(aws.body(key)) for key in expected)
    assert aws.dead_letters() == []

    orders = read_avro(aws, expected[1])
    assert [(r["topic"], r["partition"], r["offset"]) for r in orders] == [
        ("orders.eu-west-1", 1, n) for n in (5, 6, 7)
    ]
    assert json.loads(orders[0]["value"]) == {"order_id": 5, "country": "DE", "amount": 50}
    assert orders[0]["key"] == b"order-5"
    assert [r["value"] for r in read_avro(aws, expected[2])] == [None, None]

    head = aws.s3.head_object(Bucket=BUCKET, Key=expected[2])
    assert head["ContentType"] == "application/avro"
    assert head["Metadata"] == {
        "partition": "2",
        "first-offset": "100",
        "last-offset": "101",
        "record-count": "2",
        "codec": "zstandard",
        "max-timestamp": str(max(record["timestamp"] for record in event["records"]["payments-2"])),
    }
    assert summary.as_dict()["partitions"]["payments-2"] == {"firstOffset": 100, "lastOffset": 101, "records": 2}


def test_records_out_of_order_in_the_event_are_archived_in_offset_order(aws: FakeAws) -> None:
    event = kafka_event([kafka_record("t", 0, offset) for offset in (3, 1, 2)])
    (key,) = make_archiver(aws).archive(event).keys_written
    assert key.endswith("t+0+00000000000000000001.avro")
    assert [r["offset"] for r in read_avro(aws, key)] == [1, 2, 3]


def test_time_partitioner_splits_a_batch_by_record_hour(aws: FakeAws) -> None:
    hour = 3_600_000
    records = [kafka_record("t", 0, n, timestamp=1_714_561_200_000 + (n // 2) * hour) for n in range(4)]
    summary = make_archiver(aws, partitioner="time", archive_prefix="").archive(kafka_event(records))
    assert sorted(summary.keys_written) == [
        "t/year=2024/month=05/day=01/hour=11/t+0+00000000000000000000.avro",
        "t/year=2024/month=05/day=01/hour=12/t+0+00000000000000000002.avro",
    ]


def test_field_partitioner_groups_interleaved_values(aws: FakeAws) -> None:
    records = [
        kafka_record("t", 0, n, value=json.dumps({"country": "DE" if n % 2 else "../FR"}).encode()) for n in range(6)
    ]
    summary = make_archiver(aws, partitioner="field", partition_field="country").archive(kafka_event(records))
    assert sorted(summary.keys_written) == [
        "topics/t/country=..%2FFR/t+0+00000000000000000000.avro",
        "topics/t/country=DE/t+0+00000000000000000001.avro",
    ]
    assert [r["offset"] for r in read_avro(aws, sorted(summary.keys_written)[0])] == [0, 2, 4]


def test_bad_records_go_to_the_dead_letter_queue_and_the_rest_is_archived(aws: FakeAws) -> None:
    bad_value = kafka_record("orders", 0, 2, headers=[("h", b"\x01")]) | {"value": "not base64!"}
    no_offset = kafka_record("orders", 0, 3)
    del no_offset["offset"]
    event = kafka_event([kafka_record("orders", 0, 1), bad_value, no_offset, kafka_record("orders", 0, 4)])

    summary = make_archiver(aws).archive(event)

    (key,) = aws.keys("topics/")
    assert [r["offset"] for r in read_avro(aws, key)] == [1, 4]
    assert summary.records_archived == 2
    assert summary.records_dead_lettered == 2
    letters = sorted(aws.dead_letters(), key=lambda body: str(body["offset"]))
    assert len(letters) == 2
    first = next(body for body in letters if body["offset"] == 2)
    assert first | {"errorMessage": "..."} == {
        "version": 2,
        "id": "orders+0+00000000000000000002",
        "reason": "undecodable-record",
        "errorClass": "RecordDecodeError",
        "errorMessage": "...",
        "topic": "orders",
        "partition": 0,
        "offset": 2,
        "record": bad_value,  # exactly as delivered: base64 key, the invalid value, headers as byte lists
        "eventSource": "aws:kafka",
        "eventSourceArn": event["eventSourceArn"],
        "bootstrapServers": event["bootstrapServers"],
        "recordsKey": "orders-0",
    }
    assert first["record"]["headers"] == [{"h": [1]}]
    assert "'value' is not valid base64" in first["errorMessage"]
    second = next(body for body in letters if body["offset"] is None)
    assert second["id"].startswith("orders+0+sha256-")
    assert "'offset'" in second["errorMessage"]
    assert second["record"] == no_offset


def test_an_oversized_dead_letter_is_stored_in_s3_and_the_message_points_to_it(aws: FakeAws) -> None:
    huge = kafka_record("orders", 0, 9) | {"value": "!" * 300_000}  # invalid base64, and too big for SQS
    summary = make_archiver(aws).archive(kafka_event([huge]))

    payload_key = "dead-letter/orders/partition=0/orders+0+00000000000000000009.json"
    assert summary.dead_letter_payload_keys == [payload_key]
    assert aws.keys("dead-letter/orders/partition=0/orders") == [payload_key]
    (message,) = aws.dead_letters()
    assert message["payloadLocation"] == {"bucket": BUCKET, "key": payload_key, "bytes": len(aws.body(payload_key))}
    assert "record" not in message
    assert (message["offset"], message["reason"]) == (9, "undecodable-record")
    stored = json.loads(aws.body(payload_key))
    assert stored["record"] == huge
    pointer = {name: value for name, value in message.items() if name != "payloadLocation"}
    assert stored == pointer | {"record": huge}  # the message is the stored body less the record


def test_many_dead_letters_are_sent_in_batches_within_sqs_limits(aws: FakeAws) -> None:
    records = [kafka_record("t", 0, n) | {"value": "*" + "A" * 60_000} for n in range(25)]
    summary = make_archiver(aws).archive(kafka_event(records))
    assert summary.records_dead_lettered == 25
    assert sorted(body["offset"] for body in aws.dead_letters()) == list(range(25))


def test_entries_sqs_fails_on_its_side_are_retried(aws: FakeAws) -> None:
    # moto never fails single entries; the wrapper reports one failed entry like SQS's partial batch failure.
    sqs = PartiallyFailingSqs(aws.sqs)
    records = [kafka_record("t", 0, n) | {"value": "?"} for n in range(3)]
    make_archiver(aws, sqs=sqs).archive(kafka_event(records))
    assert sqs.calls == [["m0", "m1", "m2"], ["m0"]]
    assert sorted(body["offset"] for body in aws.dead_letters()) == [0, 1, 2]


@pytest.mark.parametrize("sender_fault", [True, False])
def test_entries_sqs_keeps_failing_raise(aws: FakeAws, sender_fault: bool) -> None:
    sqs = PartiallyFailingSqs(aws.sqs, sender_fault=sender_fault, always=True)
    with pytest.raises(DeadLetterError):
        make_archiver(aws, sqs=sqs).archive(kafka_event([kafka_record("t", 0, 1) | {"value": "?"}]))


def test_dead_letter_queue_unavailable_raises(aws: FakeAws) -> None:
    aws.sqs.delete_queue(QueueUrl=aws.queue_url)
    with pytest.raises(DeadLetterError, match="could not send to the dead-letter queue"):
        make_archiver(aws).archive(kafka_event([kafka_record("t", 0, 1) | {"value": "?"}]))


def test_s3_failure_raises_and_nothing_is_dead_lettered(aws: FakeAws) -> None:
    aws.s3.delete_bucket(Bucket=BUCKET)
    bad = kafka_record("t", 0, 2) | {"value": "?"}
    with pytest.raises(ArchiveWriteError, match="NoSuchBucket"):
        make_archiver(aws).archive(kafka_event([kafka_record("t", 0, 1), bad]))
    assert aws.dead_letters() == []  # the retry will send it; nothing is reported done before S3 succeeded


def test_s3_slowdown_is_retried_by_the_sdk(aws: FakeAws) -> None:
    # moto never throttles; S3's real 503 SlowDown response is injected below botocore's retry handler.
    calls = inject_s3_slowdown(aws.s3, failures=2)
    summary = make_archiver(aws).archive(kafka_event([kafka_record("t", 0, 1)]))
    assert calls[0] == 3
    assert aws.keys() == summary.keys_written


def test_persistent_s3_slowdown_raises(aws: FakeAws) -> None:
    inject_s3_slowdown(aws.s3, failures=100)
    with pytest.raises(ArchiveWriteError, match="SlowDown"):
        make_archiver(aws).archive(multi_partition_batch())


def test_an_empty_batch_writes_nothing(aws: FakeAws) -> None:
    summary = make_archiver(aws).archive({"eventSource": "SelfManagedKafka", "records": {}})
    assert (summary.records_received, summary.objects_written, aws.keys()) == (0, 0, [])


def test_a_malformed_event_raises_before_anything_is_written(aws: FakeAws) -> None:
    with pytest.raises(EventError):
        make_archiver(aws).archive({"eventSource": "aws:sqs", "Records": []})
    assert aws.keys() == []


def test_max_timestamp_metadata_ignores_timestamps_in_the_future() -> None:
    now = 1_714_567_890_000
    records = [{"timestamp": ts} for ts in (now - 5_000, now + 60_000, now + 10**9, 1714567890123456, -1)]
    # A minute ahead is clock skew and counts; 11 days ahead and microseconds written as milliseconds do not.
    assert newest_timestamp(records, now_ms=now) == now + 60_000
    assert newest_timestamp([{"timestamp": -1}], now_ms=now) is None
