"""Record content that used to fail whole batches or leave unreadable objects (issue 11's measured cases).

Every test runs the real ``Archiver`` against in-memory S3 and SQS that enforce AWS's limits (aws_fakes), and
checks what came out: each record is in exactly one readable object or exactly one dead letter that holds the
record as delivered, and the batch never raises.
"""

from __future__ import annotations

import json
import tracemalloc
from typing import Any

import pytest

from archiver.errors import EventError
from archiver.partitioning import MAX_FIELD_NESTING, NULL_PARTITION
from tests.avro_readers import millis, read_both
from tests.kafka_events import kafka_event, kafka_record
from tests.unit.aws_fakes import (
    MAX_SQS_PAYLOAD,
    LimitedS3,
    LimitedSqs,
    client_error,
    limited_archiver,
)

MICROSECONDS = 1_714_567_890_123_456  # a producer writing microseconds into a millisecond field


def run(event: dict[str, Any], **settings: Any) -> tuple[dict[str, list[dict[str, Any]]], list[dict[str, Any]]]:
    """Archive ``event`` (sent through JSON, as the Lambda runtime delivers it); (records by key, dead letters)."""
    s3, sqs = LimitedS3(), LimitedSqs()
    limited_archiver(s3, sqs, **settings).archive(json.loads(json.dumps(event)))
    archived = {key: read_both(stored.body) for key, stored in s3.objects.items() if key.endswith(".avro")}
    letters = [json.loads(body) for body in sqs.bodies]
    return archived, letters


def test_deep_json_under_the_field_partitioner_is_archived_with_the_rest_of_the_batch() -> None:
    # A ~20 KB value, "[" nested 10,000 deep: json.loads raised RecursionError and nothing in the batch was
    # archived or dead-lettered, so the event source retried the batch forever.
    records = [
        kafka_record("t", 0, 0, value=b'{"country": "DE"}'),
        kafka_record("t", 0, 1, value=b"[" * 10_000 + b"]" * 10_000),
        kafka_record(
            "t", 0, 2, value=b'{"country": "DE", "deep": ' + b"[" * MAX_FIELD_NESTING + b"]" * MAX_FIELD_NESTING + b"}"
        ),
    ]
    archived, letters = run(kafka_event(records), partitioner="field", partition_field="country")
    assert letters == []
    offsets = {key.split("/")[2]: [r["offset"] for r in records] for key, records in archived.items()}
    assert offsets == {"country=DE": [0], f"country={NULL_PARTITION}": [1, 2]}


@pytest.mark.parametrize("partitioner", ["default", "time", "field"])
def test_out_of_range_timestamps_are_archived_exactly_and_readably_under_every_partitioner(partitioner: str) -> None:
    # Before: default and field archived such records into objects fastavro and Apache avro could not read; time
    # dead-lettered them. Now all three archive them, with the exact value in timestamp_raw.
    stamps = [MICROSECONDS, 1_714_567_890_123, -(2**63) + 1, 2**63 - 1, -1]
    records = [kafka_record("t", 0, n, timestamp=stamp) for n, stamp in enumerate(stamps)]
    settings = {"partition_field": "country"} if partitioner == "field" else {}
    archived, letters = run(kafka_event(records), partitioner=partitioner, **settings)

    assert letters == []
    back = {r["offset"]: r for records in archived.values() for r in records}
    assert [back[n]["timestamp_raw"] or millis(back[n]["timestamp"]) for n in range(5)] == stamps
    assert [back[n]["timestamp"] is None for n in range(5)] == [True, False, True, True, False]
    if partitioner == "time":
        null_keys = [key for key in archived if f"year={NULL_PARTITION}/month={NULL_PARTITION}" in key]
        assert [r["offset"] for key in null_keys for r in archived[key]] == [0, 2, 3]


@pytest.mark.parametrize(
    "headers",
    [
        [{"h": 3}],  # bytes(3) invented three zero bytes
        [{"h": True}],  # bytes(True) invented one: "AA=="
        [{"h": [True, False]}],  # a list of JSON booleans is not a list of bytes either
        [{"h": 10**30}],  # bytes(10**30) raised OverflowError and failed the batch
        [{"h": 2147483648}],  # bytes(2**31) allocated 2 GiB
        [{"h": [1, 2]}, {"g": 2**62}],  # one good header does not make the rest convertible
        [{"h": "AQ=="}],
        [{"h": {"nested": [1]}}],
        [{"a": [1], "b": [2]}],
        [{}],
        [[1, 2]],
        "headers",
    ],
)
def test_malformed_headers_are_dead_lettered_exactly_as_delivered_without_building_bytes(headers: object) -> None:
    record = kafka_record("t", 0, 7) | {"headers": headers}
    tracemalloc.start()
    try:
        archived, letters = run(kafka_event([record, kafka_record("t", 0, 8)]))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 << 20  # nothing the size of a header value's integer was ever allocated
    (letter,) = letters
    assert (letter["offset"], letter["reason"]) == (7, "undecodable-record")
    assert letter["record"] == record
    assert [r["offset"] for records in archived.values() for r in records] == [8]


@pytest.mark.parametrize("records_key", ["t-\u00b2", "t-\u0663", "t-" + "9" * 5_000, "t-99999999999", "t-", "-", ""])
def test_a_records_key_whose_partition_is_not_a_number_int_reads_never_fails_the_batch(records_key: str) -> None:
    # "t-²": str.isdigit() said yes, int() raised ValueError, and the batch failed.
    event = {"eventSource": "SelfManagedKafka", "records": {records_key: [{"topic": "t", "offset": 1}, "junk"]}}
    _, letters = run(event)
    assert [(letter["partition"], letter["recordsKey"]) for letter in letters] == [(None, records_key)] * 2
    assert [letter["record"] for letter in letters] == [{"topic": "t", "offset": 1}, "junk"]


def test_a_records_key_that_names_a_partition_gives_the_coordinates_of_a_broken_record() -> None:
    event = {"eventSource": "SelfManagedKafka", "records": {"orders.eu-1-12": [{"value": "x"}]}}
    (letter,) = run(event)[1]
    assert (letter["topic"], letter["partition"], letter["offset"]) == ("orders.eu-1", 12, None)
    assert letter["id"].startswith("orders.eu-1+12+sha256-")


@pytest.mark.parametrize(
    "change",
    [
        {"partition": 10**40},
        {"partition": -1},
        {"offset": 10**40},
        {"offset": -(2**70)},
        {"topic": ["t"]},
        {"topic": "\ud800"},
        {"timestamp": 2**64},
        {"timestamp": 1e308},
        {"key": ["n", "o", "t"]},
        {"value": {"deep": [[[[[[[[[[[[]]]]]]]]]]]]}},
    ],
)
def test_fields_that_are_not_valid_values_reach_the_dead_letter_exactly(change: dict[str, Any]) -> None:
    record = kafka_record("t", 0, 3) | change
    _, letters = run(kafka_event([kafka_record("t", 0, 3)]) | {"records": {"t-0": [record]}})
    (letter,) = letters
    assert letter["record"] == record
    assert letter["partition"] in (0, None)
    assert letter["offset"] in (3, None)


def test_a_dead_letter_that_needs_the_pointer_message_stays_within_sqs_limits_whatever_the_event_carried() -> None:
    # A megabyte-long map key and ARN are delivered fields too: they are in the stored body, and the message that
    # points to it drops them rather than exceed SQS's limit.
    huge_key = "t" * 600_000 + "-0"
    event = {"eventSource": "aws:kafka", "eventSourceArn": "arn:" + "x" * 300_000, "records": {huge_key: [{"a": 1}]}}
    s3, sqs = LimitedS3(), LimitedSqs()
    limited_archiver(s3, sqs).archive(event)
    (body,) = sqs.bodies
    assert len(body) <= MAX_SQS_PAYLOAD
    pointer = json.loads(body)
    stored = json.loads(s3.objects[pointer["payloadLocation"]["key"]].body)
    assert (stored["record"], stored["recordsKey"], stored["eventSourceArn"]) == (
        {"a": 1},
        huge_key,
        event["eventSourceArn"],
    )


@pytest.mark.parametrize("source", [json.loads("[" * 5_000 + "]" * 5_000), "x" * 1_000_000, 10**4000])
def test_a_hostile_event_source_is_a_malformed_event_with_a_short_message(source: object) -> None:
    with pytest.raises(EventError, match="eventSource must be one of") as raised:
        limited_archiver(LimitedS3(), LimitedSqs()).archive({"eventSource": source, "records": {}})
    assert len(str(raised.value)) < 300


def test_a_records_map_key_that_is_not_a_string_is_a_malformed_event() -> None:
    with pytest.raises(EventError, match="'records' keys"):
        limited_archiver(LimitedS3(), LimitedSqs()).archive({"eventSource": "SelfManagedKafka", "records": {5: []}})


def test_deeply_nested_junk_in_a_record_field_is_dead_lettered_exactly() -> None:
    deep: Any = []
    for _ in range(5_000):
        deep = [deep]
    record = kafka_record("t", 0, 1) | {"headers": deep}
    event = kafka_event([record])
    s3, sqs = LimitedS3(), LimitedSqs()
    limited_archiver(s3, sqs).archive(json.loads(json.dumps(event)))
    (body,) = sqs.bodies
    assert json.loads(body)["record"] == record


# -- the fakes enforce what they claim ----------------------------------------------------------------------------


def test_the_limited_fakes_answer_like_aws_when_a_limit_is_broken() -> None:
    s3, sqs = LimitedS3(), LimitedSqs()
    with pytest.raises(type(client_error("x", "y", "z")), match="KeyTooLongError"):
        s3.put_object(Bucket=s3.bucket, Key="k" * 1025, Body=b"")
    with pytest.raises(type(client_error("x", "y", "z")), match="MetadataTooLarge"):
        s3.put_object(Bucket=s3.bucket, Key="k", Body=b"", Metadata={"m": "v" * 2048})
    s3.put_object(Bucket=s3.bucket, Key="k", Body=b"", IfNoneMatch="*")
    with pytest.raises(type(client_error("x", "y", "z")), match="PreconditionFailed"):
        s3.put_object(Bucket=s3.bucket, Key="k", Body=b"", IfNoneMatch="*")
    entries = [{"Id": f"m{n}", "MessageBody": "x"} for n in range(11)]
    with pytest.raises(type(client_error("x", "y", "z")), match="TooManyEntriesInBatchRequest"):
        sqs.send_message_batch(QueueUrl=sqs.queue_url, Entries=entries)
    big = [{"Id": f"m{n}", "MessageBody": "x" * 100_000} for n in range(3)]
    with pytest.raises(type(client_error("x", "y", "z")), match="BatchRequestTooLong"):
        sqs.send_message_batch(QueueUrl=sqs.queue_url, Entries=big)
    with pytest.raises(type(client_error("x", "y", "z")), match="InvalidMessageContents"):
        sqs.send_message_batch(QueueUrl=sqs.queue_url, Entries=[{"Id": "a", "MessageBody": "\x01"}])
    assert (s3.puts, sqs.requests) == (1, 0)


def test_two_different_records_with_the_same_coordinates_get_two_dead_letters_and_two_spilled_bodies() -> None:
    # Found by the fuzz suite: both spilled to the same key, the second overwrote the first, and one record was lost.
    first = kafka_record("t", 0, 5) | {"value": "!" + "A" * 300_000}
    second = kafka_record("t", 0, 5) | {"value": "?" + "B" * 300_000}
    event = kafka_event([first, second, dict(first)])
    s3, sqs = LimitedS3(), LimitedSqs()
    archiver = limited_archiver(s3, sqs)

    archiver.archive(event)
    archiver.archive(json.loads(json.dumps(event)))  # the retried batch names everything the same way

    pointers = [json.loads(body) for body in sqs.bodies]
    ids = [pointer["id"] for pointer in pointers]
    assert ids[:3] == ids[3:]
    assert ids[0] == ids[2] == "t+0+00000000000000000005"  # the same record twice: one id, one stored body
    assert ids[1].startswith("t+0+00000000000000000005+")
    stored = [json.loads(s3.objects[pointer["payloadLocation"]["key"]].body) for pointer in pointers[:3]]
    assert [body["record"] for body in stored] == [first, second, first]
    assert len([key for key in s3.objects if "/ledger/" not in key]) == 2  # two spilled bodies (and the ledger)
