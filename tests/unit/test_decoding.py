"""Decoding AWS Kafka events: both sources, tombstones, missing keys, headers, topics with dashes, bad input."""

from __future__ import annotations

import base64

import pytest

from archiver.decoding import decode_event, decode_record, to_event_record
from archiver.errors import EventError, RecordDecodeError
from tests.kafka_events import MSK_ARN, b64, kafka_event, kafka_record, load_event


@pytest.mark.parametrize(
    ("fixture", "source", "arn"),
    [
        ("msk.json", "aws:kafka", load_event("msk.json")["eventSourceArn"]),
        ("self_managed.json", "SelfManagedKafka", None),
    ],
)
def test_decodes_the_documented_aws_events(fixture: str, source: str, arn: str | None) -> None:
    batch = decode_event(load_event(fixture))

    assert batch.event_source == source
    assert batch.event_source_arn == arn
    assert batch.bootstrap_servers is not None
    assert batch.bootstrap_servers.startswith("b-2.demo-cluster-1")
    assert batch.failures == []
    (record,) = batch.records
    assert record == {
        "topic": "mytopic",
        "partition": 0,
        "offset": 15,
        "timestamp": 1545084650987,
        "timestamp_type": "CREATE_TIME",
        "key": base64.b64decode("abcDEFghiJKLmnoPQRstuVWXyz1234=="),  # the documented key
        "value": b"Hello, this is a test.",
        "headers": [{"key": "headerKey", "value": b"headerValue"}],
    }
    assert batch.payload_bytes == len(record["key"]) + len(record["value"])


def test_accepts_the_aws_prefixed_self_managed_source_name() -> None:
    event = kafka_event([kafka_record("t", 0, 1)], source="aws:SelfManagedKafka")
    assert decode_event(event).event_source == "aws:SelfManagedKafka"


def test_topic_and_partition_come_from_the_record_not_the_map_key() -> None:
    record = kafka_record("orders.eu-west-1-v2", 11, 7)
    event = {"eventSource": "SelfManagedKafka", "records": {"orders.eu-west-1-v2-11": [record]}}
    (decoded,) = decode_event(event).records
    assert (decoded["topic"], decoded["partition"]) == ("orders.eu-west-1-v2", 11)


def test_tombstones_and_missing_keys_are_kept_as_nulls() -> None:
    tombstone = kafka_record("t", 0, 1, value=None)
    keyless = kafka_record("t", 0, 2, key=None)
    assert "key" not in keyless  # absent, not null
    explicit_null_key = kafka_record("t", 0, 3)
    explicit_null_key["key"] = None

    records = decode_event(kafka_event([tombstone, keyless, explicit_null_key])).records

    assert [r["offset"] for r in records] == [1, 2, 3]
    assert records[0]["value"] is None
    assert records[0]["key"] == b"order-1"
    assert records[1]["key"] is None
    assert records[2]["key"] is None


def test_headers_keep_order_repeats_binary_and_empty_values() -> None:
    binary = bytes(range(256))
    record = kafka_record("t", 0, 1, headers=[("trace", b"a"), ("bin", binary), ("trace", b"b"), ("empty", b"")])
    (decoded,) = decode_event(kafka_event([record])).records
    assert decoded["headers"] == [
        {"key": "trace", "value": b"a"},
        {"key": "bin", "value": binary},
        {"key": "trace", "value": b"b"},
        {"key": "empty", "value": b""},
    ]


def test_null_header_value_is_kept_as_null() -> None:
    record = kafka_record("t", 0, 1)
    record["headers"] = [{"h": None}]
    assert decode_record(record)["headers"] == [{"key": "h", "value": None}]


def test_missing_headers_field_means_no_headers() -> None:
    record = kafka_record("t", 0, 1)
    del record["headers"]
    assert decode_record(record)["headers"] == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"value": "not base64!"}, "'value' is not valid base64"),
        ({"key": "abc"}, "'key' is not valid base64"),  # wrong padding
        ({"value": 12}, "'value' must be a base64 string or null"),
        ({"offset": None}, "'offset' must be an integer"),
        ({"offset": -1}, "'offset' must be an integer"),
        ({"offset": "15"}, "'offset' must be an integer"),
        ({"offset": True}, "'offset' must be an integer"),
        ({"partition": 2**31}, "'partition' must be an integer"),
        ({"topic": ""}, "'topic' must be a non-empty string"),
        ({"topic": "bad\ud800"}, "'topic' is not valid Unicode"),
        ({"timestamp": 1.5}, "'timestamp' must be integer milliseconds"),
        ({"headers": {"a": [1]}}, "'headers' must be a list"),
        ({"headers": [{"a": [1], "b": [2]}]}, "exactly one entry"),
        ({"headers": [{"a": [256]}]}, "byte values 0-255"),
        ({"headers": [{"a": "text"}]}, "list of byte values"),
        ({"headers": [{"\udcff": [1]}]}, "not valid Unicode"),
    ],
)
def test_malformed_records_raise_a_record_error_naming_the_field(change: dict[str, object], message: str) -> None:
    record = kafka_record("t", 0, 1) | change
    with pytest.raises(RecordDecodeError, match=message):
        decode_record(record)


def test_missing_offset_is_a_record_error() -> None:
    record = kafka_record("t", 0, 1)
    del record["offset"]
    with pytest.raises(RecordDecodeError, match="'offset'"):
        decode_record(record)


def test_a_bad_record_is_a_failure_and_the_rest_of_the_batch_decodes() -> None:
    good = [kafka_record("t", 0, offset) for offset in range(3)]
    bad = kafka_record("t", 0, 3) | {"value": "%%%"}
    event = kafka_event([*good, bad])
    event["records"]["t-0"].append("not a record")
    batch = decode_event(event)

    assert [r["offset"] for r in batch.records] == [0, 1, 2]
    assert [f.error.reason for f in batch.failures] == ["undecodable-record", "undecodable-record"]
    assert batch.failures[0].raw is bad
    assert batch.failures[0].records_key == "t-0"


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ([], "expected a Kafka event object"),
        ({"eventSource": "aws:sqs", "records": {}}, "eventSource must be one of"),
        ({"eventSource": "aws:kafka", "eventSourceArn": MSK_ARN}, "'records' must be an object"),
        ({"eventSource": "SelfManagedKafka", "records": []}, "'records' must be an object"),
        ({"eventSource": "aws:kafka", "records": {}}, "eventSourceArn"),
        ({"eventSource": "SelfManagedKafka", "records": {"t-0": {"offset": 1}}}, "must be a list of records"),
    ],
)
def test_malformed_events_raise_event_error(event: object, message: str) -> None:
    with pytest.raises(EventError, match=message):
        decode_event(event)


def test_to_event_record_is_the_inverse_of_decoding() -> None:
    original = kafka_record("t", 3, 9, headers=[("h", b"\x00\xff"), ("h", b"")], key=None)
    original["key"] = None
    assert to_event_record(decode_record(original)) == original
    assert to_event_record(decode_record(original))["value"] == b64(b'{"order_id": 9, "country": "DE", "amount": 90}')
