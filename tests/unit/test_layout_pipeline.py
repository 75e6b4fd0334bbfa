"""Composed layouts through the whole pipeline (moto S3 and SQS): the keys docs/configuration.md shows for each
segment kind, the dead letter of a record whose time is wrong, and storage class and tags on every archive PUT."""

from __future__ import annotations

import io
import json
from typing import Any

import fastavro
import pytest

from tests.kafka_events import kafka_event, kafka_record
from tests.unit.aws_fakes import BUCKET, FakeAws, make_archiver

NULL = "__HIVE_DEFAULT_PARTITION__"
OBJECT = "orders+3+00000000000000000042.avro"


def read_records(aws: FakeAws, key: str) -> list[dict[str, Any]]:
    return [dict(item) for item in fastavro.reader(io.BytesIO(aws.body(key)))]  # type: ignore[arg-type]


def archive_one(aws: FakeAws, segments: list[dict[str, Any]], **record: Any) -> list[str]:
    archiver = make_archiver(aws, partitioner="segments", partition_segments=json.dumps(segments))
    summary = archiver.archive(kafka_event([kafka_record("orders", 3, 42, **record)]))
    assert summary.records_archived == 1
    return aws.keys("topics/")


# The worked examples of docs/configuration.md ("Layouts"), one per segment kind, with the keys they show.
EXAMPLES: list[tuple[str, list[dict[str, Any]], dict[str, Any], str]] = [
    (
        "field",
        [{"kind": "field", "field": "customer.country", "name": "country"}],
        {"value": b'{"customer": {"country": "DE"}}'},
        f"topics/orders/country=DE/{OBJECT}",
    ),
    (
        "field-missing",
        [{"kind": "field", "field": "customer.country", "name": "country"}],
        {"value": b'{"customer": {}}'},
        f"topics/orders/country={NULL}/{OBJECT}",
    ),
    (
        "header",
        [{"kind": "header", "header": "tenant"}],
        {"headers": [("tenant", b"acme")]},
        f"topics/orders/tenant=acme/{OBJECT}",
    ),
    ("key", [{"kind": "key"}], {"key": b"user-7"}, f"topics/orders/key=user-7/{OBJECT}"),
    ("key-bucket", [{"kind": "key", "buckets": 16}], {"key": b"user-7"}, f"topics/orders/key_bucket=5/{OBJECT}"),
    ("key-bucket-null", [{"kind": "key", "buckets": 16}], {"key": None}, f"topics/orders/key_bucket={NULL}/{OBJECT}"),
    ("partition", [{"kind": "partition", "name": "p"}], {}, f"topics/orders/p=3/{OBJECT}"),
    (
        "time-field-iso",
        [{"kind": "time", "field": "created_at", "pattern": "dt=%Y-%m-%d", "timezone": "Europe/Berlin"}],
        {"value": b'{"created_at": "2026-11-28T23:30:00Z"}'},
        f"topics/orders/dt=2026-11-29/{OBJECT}",
    ),
    (
        "time-field-millis",
        [{"kind": "time", "field": "created_at", "pattern": "dt=%Y-%m-%d", "timezone": "Europe/Berlin"}],
        {"value": b'{"created_at": 1795908600000}'},
        f"topics/orders/dt=2026-11-29/{OBJECT}",
    ),
    (
        "composed",
        [
            {"kind": "field", "field": "customer.country", "name": "country"},
            {"kind": "time", "field": "created_at", "pattern": "year=%Y/month=%m/day=%d"},
        ],
        {"value": b'{"customer": {"country": "DE"}, "created_at": "2026-11-29T10:00:00Z"}'},
        f"topics/orders/country=DE/year=2026/month=11/day=29/{OBJECT}",
    ),
]


@pytest.mark.parametrize(("segments", "record", "expected"), [e[1:] for e in EXAMPLES], ids=[e[0] for e in EXAMPLES])
def test_the_documented_examples_write_the_documented_keys(
    aws: FakeAws, segments: list[dict[str, Any]], record: dict[str, Any], expected: str
) -> None:
    assert archive_one(aws, segments, **record) == [expected]


def test_the_documented_examples_are_in_the_docs() -> None:
    from infra import PROJECT_ROOT

    docs = (PROJECT_ROOT / "docs" / "configuration.md").read_text()
    for name, segments, _record, expected in EXAMPLES:
        assert expected.split("/orders/", 1)[1].rsplit("/", 1)[0] in docs, name  # the path after the topic
        for segment in segments:
            assert json.dumps(segment)[1:-1].split(", ")[0] in docs, (name, segment)


def test_a_composed_batch_groups_interleaved_records_and_keeps_every_record(aws: FakeAws) -> None:
    segments = [
        {"kind": "field", "field": "customer.country", "name": "country"},
        {"kind": "header", "header": "tenant"},
        {"kind": "time", "pattern": "hour=%H"},
    ]
    records = [
        kafka_record(
            "orders",
            0,
            offset,
            value=json.dumps({"customer": {"country": ["DE", "FR"][offset % 2]}}).encode(),
            headers=[("tenant", [b"a", b"b"][offset // 2 % 2])],
            timestamp=1_795_945_200_000,  # 2026-11-29T09:40Z
        )
        for offset in range(8)
    ]
    archiver = make_archiver(aws, partitioner="segments", partition_segments=json.dumps(segments))
    summary = archiver.archive(kafka_event(records))
    assert summary.records_archived == 8
    keys = aws.keys("topics/")
    assert [key.rsplit("/", 1)[0] for key in keys] == [
        "topics/orders/country=DE/tenant=a/hour=09",
        "topics/orders/country=DE/tenant=b/hour=09",
        "topics/orders/country=FR/tenant=a/hour=09",
        "topics/orders/country=FR/tenant=b/hour=09",
    ]
    offsets = {key: [r["offset"] for r in read_records(aws, key)] for key in keys}
    assert sorted(o for held in offsets.values() for o in held) == list(range(8))
    assert offsets[keys[0]] == [0, 4]  # offset order inside an object, not contiguous


def test_a_time_field_that_is_no_time_is_dead_lettered_with_its_reason(aws: FakeAws) -> None:
    segments = [{"kind": "time", "field": "created_at", "pattern": "dt=%Y-%m-%d"}]
    archiver = make_archiver(aws, partitioner="segments", partition_segments=json.dumps(segments))
    good = kafka_record("orders", 0, 1, value=b'{"created_at": 0}')
    bad = kafka_record("orders", 0, 2, value=b'{"created_at": "next tuesday"}')
    missing = kafka_record("orders", 0, 3, value=b"{}")
    summary = archiver.archive(kafka_event([good, bad, missing]))
    assert (summary.records_archived, summary.records_dead_lettered) == (2, 1)
    assert [key.rsplit("/", 1)[0] for key in aws.keys("topics/")] == [
        "topics/orders/dt=1970-01-01",
        f"topics/orders/dt={NULL}-{NULL}-{NULL}",  # every directive NULL, as the time partitioner always did
    ]
    (letter,) = aws.dead_letters()
    assert letter["reason"] == "unpartitionable-record"
    assert "time field 'created_at' holds 'next tuesday'" in letter["errorMessage"]
    assert letter["record"]["offset"] == 2


def test_storage_class_and_tags_go_on_every_archive_object_and_not_on_dead_letters(aws: FakeAws) -> None:
    tags = {"team": "data platform", "cost-center": "4/2", "note": "ä+=@:._-"}
    archiver = make_archiver(aws, storage_class="STANDARD_IA", object_tags=json.dumps(tags))
    summary = archiver.archive(
        kafka_event([kafka_record("orders", 0, 1), kafka_record("orders", 1, 5), {"topic": "orders", "partition": 1}])
    )
    assert (summary.objects_written, summary.records_dead_lettered) == (2, 1)
    for key in aws.keys("topics/"):
        head = aws.s3.head_object(Bucket=BUCKET, Key=key)
        assert head["StorageClass"] == "STANDARD_IA"
        found = aws.s3.get_object_tagging(Bucket=BUCKET, Key=key)["TagSet"]
        assert {tag["Key"]: tag["Value"] for tag in found} == tags
    for key in aws.keys("dead-letter/"):
        assert "StorageClass" not in aws.s3.head_object(Bucket=BUCKET, Key=key)
        assert aws.s3.get_object_tagging(Bucket=BUCKET, Key=key)["TagSet"] == []


def test_the_default_storage_class_and_no_tags_add_nothing_to_the_put(aws: FakeAws) -> None:
    puts: list[dict[str, Any]] = []
    aws.s3.meta.events.register("provide-client-params.s3.PutObject", lambda params, **_: puts.append(dict(params)))
    make_archiver(aws).archive(kafka_event([kafka_record("orders", 0, 1)]))
    (put,) = puts
    assert "StorageClass" not in put
    assert "Tagging" not in put
    assert put["IfNoneMatch"] == "*"  # the exactly-once write stays a conditional create
