"""The emulator's pure parts: AWS event shapes, the on-failure record, payload-size batching, EMF parsing.

No stack needed (no ``e2e`` marker): these run in a second and pin the formats the end-to-end tests rely on.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

from local.esm import events
from local.esm.metrics import parse_emf, totals

RECORDS = [
    events.KafkaRecord("orders", 1, 7, 1545084650987, key=b"k1", value=b'{"a":1}', headers=(("h", b"v"),)),
    events.KafkaRecord("orders", 0, 3, 1545084650988, key=None, value=b"x"),
    events.KafkaRecord("orders", 1, 8, 1545084650989, key=b"k1", value=None),  # a tombstone
]


def test_self_managed_event_matches_aws_shape() -> None:
    event = events.build_event(RECORDS, events.EventSource(bootstrap_servers="b1:9092,b2:9092"))
    assert set(event) == {"eventSource", "bootstrapServers", "records"}
    assert event["eventSource"] == "SelfManagedKafka"
    assert event["bootstrapServers"] == "b1:9092,b2:9092"
    assert list(event["records"]) == ["orders-1", "orders-0"]
    first, tombstone = event["records"]["orders-1"]
    assert first == {
        "topic": "orders",
        "partition": 1,
        "offset": 7,
        "timestamp": 1545084650987,
        "timestampType": "CREATE_TIME",
        "key": base64.b64encode(b"k1").decode(),
        "value": base64.b64encode(b'{"a":1}').decode(),
        "headers": [{"h": [118]}],
    }
    assert "value" not in tombstone
    assert tombstone["offset"] == 8
    assert "key" not in event["records"]["orders-0"][0]


def test_msk_event_carries_the_cluster_arn() -> None:
    source = events.EventSource(format="msk", bootstrap_servers="b:9092", tombstones="null")
    event = events.build_event(RECORDS, source)
    assert event["eventSource"] == "aws:kafka"
    assert event["eventSourceArn"].startswith("arn:aws:kafka:")
    assert event["records"]["orders-1"][1]["value"] is None


def test_poison_header_hook_sends_a_value_that_is_not_base64() -> None:
    record = events.KafkaRecord("t", 0, 1, 1, value=b"ok", headers=(("x-archiver-test-poison", b"1"),))
    body = events.record_json(record, events.EventSource(poison_header="x-archiver-test-poison"))
    assert body["value"] == events.MALFORMED_VALUE


def test_on_failure_record_matches_aws_shape() -> None:
    document = events.on_failure_record(
        RECORDS,
        events.EventSource(bootstrap_servers="b:9092"),
        function_arn="arn:aws:lambda:us-east-1:0:function:f",
        condition="RetryAttemptsExhausted",
        invoke_count=3,
        payload_size=1234,
        now=datetime(2019, 11, 14, 0, 38, 6, 21000, tzinfo=UTC),
    )
    assert document["timestamp"] == "2019-11-14T00:38:06.021Z"
    assert document["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert document["responseContext"] == {
        "statusCode": 200,
        "executedVersion": "$LATEST",
        "functionError": "Unhandled",
    }
    assert document["KafkaBatchInfo"]["recordsInfo"]["orders-1"] == {
        "firstRecordOffset": "7",
        "lastRecordOffset": "8",
        "firstRecordTimestamp": "2018-12-17T22:10:50.987Z",
        "lastRecordTimestamp": "2018-12-17T22:10:50.989Z",
    }
    oversized = events.on_failure_record(
        RECORDS[:1],
        events.EventSource(),
        function_arn="a",
        condition="MaximumPayloadSizeExceeded",
        invoke_count=0,
        payload_size=7_000_000,
    )
    assert oversized["responseContext"] is None


def test_batches_stay_under_the_payload_limit() -> None:
    big = events.KafkaRecord("t", 0, 0, 0, value=b"x" * 1_000_000)
    source = events.EventSource()
    size = events.record_size(big, source)
    batch = events.Batch()
    while batch.fits(size, max_records=10_000):
        batch.add(big, size)
    assert len(batch) == 4  # 4 x ~1.33 MB of base64 fit in 6 MB, a fifth would not
    payload = events.encode_event(events.build_event(batch.records, source))
    assert len(payload) <= events.MAX_PAYLOAD_BYTES


def test_emf_lines_become_metric_points() -> None:
    line = json.dumps(
        {
            "_aws": {
                "Timestamp": 1700000000000,
                "CloudWatchMetrics": [
                    {
                        "Namespace": "KafkaS3Archiver",
                        "Dimensions": [["service"]],
                        "Metrics": [
                            {"Name": "RecordsArchived", "Unit": "Count"},
                            {"Name": "BatchLatency", "Unit": "Milliseconds"},
                        ],
                    }
                ],
            },
            "service": "svc",
            "RecordsArchived": [10.0],
            "BatchLatency": 12.5,
        }
    )
    points = parse_emf(f"START RequestId: x\n{line}\nnot json {{\n")
    assert {(p.name, p.values, p.dimensions) for p in points} == {
        ("RecordsArchived", (10.0,), (("service", "svc"),)),
        ("BatchLatency", (12.5,), (("service", "svc"),)),
    }
    assert totals(points)["RecordsArchived"] == 10.0
