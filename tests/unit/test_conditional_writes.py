"""Write-time exactly-once: objects are created with ``If-None-Match: *`` and named by their first offset, so a retried
batch -- the same one, a larger one or a smaller one, as the event source may deliver after a failure -- writes only
the records no object holds yet. Read back from (moto) S3 with fastavro; object versions prove nothing is replaced.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from typing import Any

import fastavro
import pytest
from botocore.exceptions import ClientError

from archiver.errors import ArchiveWriteError
from tests.kafka_events import kafka_event, kafka_record
from tests.unit.aws_fakes import BUCKET, FakeAws, make_archiver


def batch(offsets: range, *, partitions: tuple[int, ...] = (0,), countries: bool = False) -> dict[str, Any]:
    records = []
    for partition in partitions:
        for offset in offsets:
            value = json.dumps({"n": offset, "country": "DE" if offset % 3 else "FR"}).encode() if countries else None
            records.append(kafka_record("orders", partition, offset, value=value or f"v{offset}".encode()))
    return kafka_event(records)


def copies_per_offset(aws: FakeAws) -> Counter[tuple[int, int]]:
    counts: Counter[tuple[int, int]] = Counter()
    for key in aws.keys("topics/"):
        for record in fastavro.reader(io.BytesIO(aws.body(key))):
            assert isinstance(record, dict)
            counts[(record["partition"], record["offset"])] += 1
    return counts


def versions(aws: FakeAws) -> int:
    return len(aws.s3.list_object_versions(Bucket=BUCKET, Prefix="topics/").get("Versions", []))


@pytest.fixture
def versioned(aws: FakeAws) -> FakeAws:
    aws.s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return aws


def test_the_same_batch_again_replaces_nothing(versioned: FakeAws) -> None:
    first = make_archiver(versioned).archive(batch(range(0, 50), partitions=(0, 1)))
    again = make_archiver(versioned).archive(batch(range(0, 50), partitions=(0, 1)))

    assert again.keys_written == first.keys_written  # the identical objects are recognised as this batch's own
    assert versions(versioned) == 2  # one version per object: nothing was put twice
    assert set(copies_per_offset(versioned).values()) == {1}


def test_a_larger_retry_writes_only_the_records_after_the_existing_object(versioned: FakeAws) -> None:
    make_archiver(versioned).archive(batch(range(0, 50)))
    retry = make_archiver(versioned).archive(batch(range(0, 120)))

    assert retry.records_already_archived == 50
    assert retry.records_archived == 70
    assert retry.keys_written == ["topics/orders/partition=0/orders+0+00000000000000000050.avro"]
    counts = copies_per_offset(versioned)
    assert sorted(counts) == [(0, offset) for offset in range(120)]
    assert set(counts.values()) == {1}


def test_a_smaller_retry_writes_nothing(versioned: FakeAws) -> None:
    make_archiver(versioned).archive(batch(range(0, 100)))
    retry = make_archiver(versioned).archive(batch(range(0, 30)))

    assert (retry.records_archived, retry.records_already_archived, retry.keys_written) == (0, 30, [])
    assert versions(versioned) == 1


def test_retries_with_other_boundaries_under_the_field_partitioner_duplicate_nothing(versioned: FakeAws) -> None:
    # Records of one partition go to two paths, interleaved: each path's object is named by its own first offset.
    archiver = make_archiver(versioned, partitioner="field", partition_field="country")
    archiver.archive(batch(range(0, 40), countries=True))
    archiver.archive(batch(range(0, 90), countries=True))
    archiver.archive(batch(range(0, 20), countries=True))
    counts = copies_per_offset(versioned)
    assert sorted(counts) == [(0, offset) for offset in range(90)]
    assert set(counts.values()) == {1}


def test_what_still_duplicates_is_a_smaller_retry_followed_by_the_next_batch(versioned: FakeAws) -> None:
    """Measured limit of write-time dedup (compaction removes the rest, tests/ops): after a smaller retry commits
    offsets 0-29 while an earlier try had archived 0-99, the next batch starts at 30, a key no object has."""
    make_archiver(versioned).archive(batch(range(0, 100)))  # a try that archived everything, then failed
    make_archiver(versioned).archive(batch(range(0, 30)))  # the smaller retry: nothing new, commits 0-29
    make_archiver(versioned).archive(batch(range(30, 130)))  # the next batch

    counts = copies_per_offset(versioned)
    assert sorted(counts) == [(0, offset) for offset in range(130)]
    assert sorted(offset for (_, offset), copies in counts.items() if copies == 2) == list(range(30, 100))


def test_an_object_at_the_key_that_does_not_hold_its_offset_fails_the_batch(aws: FakeAws) -> None:
    key = "topics/orders/partition=0/orders+0+00000000000000000000.avro"
    aws.s3.put_object(Bucket=BUCKET, Key=key, Body=b"not avro")
    with pytest.raises(ArchiveWriteError, match="not a readable archive object"):
        make_archiver(aws).archive(batch(range(0, 5)))
    assert aws.body(key) == b"not avro"  # never replaced


def test_a_conditional_request_conflict_is_retried(aws: FakeAws) -> None:
    # moto never races writes; S3's 409 ConditionalRequestConflict is injected at the client (mocked: says so here).
    real = aws.s3
    calls = {"put": 0}

    class Racing:
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def put_object(self, **kwargs: Any) -> Any:
            calls["put"] += 1
            if calls["put"] == 1:
                error = {"Error": {"Code": "ConditionalRequestConflict", "Message": "in progress"}}
                raise ClientError(error, "PutObject")
            return real.put_object(**kwargs)

    summary = make_archiver(aws, s3=Racing()).archive(batch(range(0, 5)))
    assert calls["put"] == 2
    assert summary.records_archived == 5


def test_dead_lettered_offsets_are_recorded_in_a_ledger_in_s3(aws: FakeAws) -> None:
    bad = [kafka_record("orders", 0, offset) | {"value": "not base64!"} for offset in (3, 7)]
    other = kafka_record("orders", 1, 12) | {"value": "!"}
    event = kafka_event([kafka_record("orders", 0, 1), *bad, kafka_record("orders", 0, 9), other])
    make_archiver(aws).archive(event)

    ledger = aws.keys("dead-letter/orders/partition=0/ledger/")
    assert ledger == ["dead-letter/orders/partition=0/ledger/00000000000000000003-00000000000000000007.json"]
    entry = json.loads(aws.body(ledger[0]))
    assert entry["topic"] == "orders"
    assert entry["partition"] == 0
    assert [(item["offset"], item["reason"]) for item in entry["deadLettered"]] == [
        (3, "undecodable-record"),
        (7, "undecodable-record"),
    ]
    assert aws.keys("dead-letter/orders/partition=1/ledger/") == [
        "dead-letter/orders/partition=1/ledger/00000000000000000012-00000000000000000012.json"
    ]
    assert {letter["offset"] for letter in aws.dead_letters()} == {3, 7, 12}
