"""The S3-only archive audit against a real archive written by the pipeline into (moto) S3: gaps, dead letters from
the ledger, duplicates, conflicts, pending compactions, freshness, and what the incremental manifest saves."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from archive_ops.archive_audit import ArchiveAuditor, gaps_of, intersect_runs, merge_runs, to_runs
from archiver.encoding import encode_records
from tests.kafka_events import kafka_event, kafka_record
from tests.ops.archive_builder import archive_batches, varied_record
from tests.ops.test_compact import _envelope, compactor, retry_duplicates
from tests.unit.aws_fakes import BUCKET, FakeAws, make_archiver

STATE = "archiver-state/audit/"


def auditor(aws: FakeAws, **kwargs: Any) -> ArchiveAuditor:
    return ArchiveAuditor(aws.s3, BUCKET, "topics/", **kwargs)


def test_runs() -> None:
    assert to_runs([5, 1, 2, 3, 9, 10]) == [[1, 3], [5, 5], [9, 10]]
    assert merge_runs([[1, 3]], [[4, 6], [10, 12]], [[2, 5]]) == [[1, 6], [10, 12]]
    assert gaps_of([[1, 3], [5, 5], [9, 10]]) == [[4, 4], [6, 8]]
    assert intersect_runs([[0, 10], [20, 30]], [[5, 25]]) == [[5, 10], [20, 25]]


def test_a_complete_archive_with_dead_letters_has_no_gap(aws: FakeAws) -> None:
    archive_batches(aws, partitions=(0, 1), batches=5)  # offsets 0-99 of two partitions
    poison = [kafka_record("orders", 0, offset) | {"value": "not base64!"} for offset in (100, 101)]
    make_archiver(aws).archive(kafka_event([*poison, varied_record("orders", 0, 102)]))
    now = datetime(2024, 5, 1, 13, 0, tzinfo=UTC)

    report = auditor(aws, now=lambda: now).run()

    assert report.clean
    p0, p1 = report.partitions
    assert (p0.archived_records, p0.dead_lettered_records, p0.first_offset, p0.last_offset) == (101, 2, 0, 102)
    assert (p0.gaps, p0.duplicate_offsets, p0.conflicts) == ([], 0, [])
    assert p0.pending_compactions == 6  # every object the function wrote, compaction has not seen any
    assert p0.small_objects == 6  # all under the default 128 MiB target
    newest = max(varied_record("orders", 0, offset)["timestamp"] for offset in range(103))
    assert p0.newest_timestamp == newest
    assert p0.freshness_seconds == pytest.approx(now.timestamp() - newest / 1000)
    assert (p1.archived_records, p1.last_offset) == (100, 99)
    assert report.by_topic()["orders"]["ArchivedRecords"] == 201


def test_a_batch_that_never_reached_s3_is_a_gap(aws: FakeAws) -> None:
    archive_batches(aws, partitions=(0,), batches=2)  # 0-39
    archive_batches(aws, partitions=(0,), batches=1, start=60)  # 60-79: 40-59 given up by the event source
    report = auditor(aws).run()
    assert not report.clean
    assert report.partitions[0].gaps == [[40, 59]]
    assert report.partitions[0].gap_offsets == 20
    assert report.by_topic()["orders"]["GapOffsets"] == 20


def test_duplicates_and_redundant_objects_until_compaction_removes_them(aws: FakeAws) -> None:
    retry_duplicates(aws)
    before = auditor(aws).run().partitions[0]
    assert (before.duplicate_offsets, before.redundant_objects, before.conflicts) == (10, 0, [])

    compactor(aws.s3).run()
    after = auditor(aws).run().partitions[0]
    assert (after.duplicate_offsets, after.redundant_objects, after.pending_compactions) == (0, 0, 0)
    assert after.archived_records == 30


def test_a_conflict_names_both_objects(aws: FakeAws) -> None:
    archive_batches(aws, partitions=(0,), batches=2)
    forged = _envelope(varied_record("orders", 0, 5) | {"value": "Zm9yZ2Vk"})
    key = "topics/orders/partition=0/orders+0+00000000000000000005.avro"
    aws.s3.put_object(Bucket=BUCKET, Key=key, Body=encode_records([forged], codec="null", key=key))

    report = auditor(aws).run()

    assert not report.clean
    (partition,) = report.partitions
    assert partition.conflicts == [
        {"offset": 5, "keys": ["topics/orders/partition=0/orders+0+00000000000000000000.avro", key]}
    ]
    assert partition.duplicate_offsets == 0
    assert report.by_topic()["orders"]["ConflictOffsets"] == 1


def test_the_manifest_makes_each_run_read_only_what_changed(aws: FakeAws) -> None:
    archive_batches(aws, partitions=(0, 1), batches=5)
    first = auditor(aws, state_prefix=STATE).run()
    assert first.objects_read == 10
    assert aws.keys(STATE) == [f"{STATE}orders/partition=0.json", f"{STATE}orders/partition=1.json"]

    assert auditor(aws, state_prefix=STATE).run().objects_read == 0  # nothing new: nothing read

    archive_batches(aws, partitions=(0,), batches=1, start=100)
    third = auditor(aws, state_prefix=STATE).run()
    assert third.objects_read == 1
    assert third.partitions[0].archived_records == 120

    compactor(aws.s3).run()
    fourth = auditor(aws, state_prefix=STATE).run()
    assert fourth.objects_read == 2  # the two compacted objects; the deleted inputs are forgotten
    assert [p.objects for p in fourth.partitions] == [1, 1]
    assert fourth.clean
    manifest = json.loads(aws.body(f"{STATE}orders/partition=0.json"))
    assert list(manifest["objects"]) == [
        "topics/orders/partition=0/orders+0+00000000000000000000+00000000000000000119.avro"
    ]


def test_a_conflict_verdict_is_remembered(aws: FakeAws) -> None:
    retry_duplicates(aws)
    auditor(aws, state_prefix=STATE).run()
    again = auditor(aws, state_prefix=STATE).run()
    assert again.objects_read == 0  # the pair's contents were compared once
    assert again.partitions[0].duplicate_offsets == 10


def test_pending_compactions_count_only_objects_older_than_the_compaction_window(aws: FakeAws) -> None:
    archive_batches(aws, partitions=(0,), batches=3)
    now = datetime.now(UTC)
    fresh = auditor(aws, compaction_age=timedelta(hours=1), now=lambda: now).run()
    assert fresh.partitions[0].pending_compactions == 0
    later = auditor(aws, compaction_age=timedelta(hours=1), now=lambda: now + timedelta(hours=2)).run()
    assert later.partitions[0].pending_compactions == 3


def test_a_time_budget_stops_between_partitions_and_the_next_run_goes_on(aws: FakeAws) -> None:
    archive_batches(aws, partitions=(0, 1), batches=2)
    budget = iter([100.0, 0.0])
    report = auditor(aws, state_prefix=STATE, seconds_left=lambda: next(budget, 0.0)).run()
    assert report.incomplete
    assert [p.partition for p in report.partitions] == [0]
    assert auditor(aws, state_prefix=STATE).run().objects_read == 2  # partition 1 now; partition 0 remembered


def test_the_state_prefix_must_lie_outside_the_archive(aws: FakeAws) -> None:
    with pytest.raises(ValueError, match="outside the archive prefix"):
        auditor(aws, state_prefix="topics/state/")


def test_with_a_settle_age_recent_objects_are_counted_not_read(aws: FakeAws) -> None:
    archive_batches(aws, partitions=(0,), batches=3)  # 0-59, objects the function wrote
    compactor(aws.s3).run()
    archive_batches(aws, partitions=(0,), batches=2, start=60)  # 60-99, just written
    newest = max(varied_record("orders", 0, offset)["timestamp"] for offset in range(100))
    report = auditor(aws, state_prefix=STATE, settle_age=timedelta(hours=3)).run()
    (partition,) = report.partitions
    assert report.objects_read == 1  # the compacted object only
    assert report.objects_headed == 1  # the newest recent object's metadata, for freshness
    assert (partition.unsettled_objects, partition.archived_records, partition.last_offset) == (2, 60, 59)
    assert partition.newest_timestamp == newest
    later = auditor(
        aws, state_prefix=STATE, settle_age=timedelta(hours=3), now=lambda: datetime.now(UTC) + timedelta(hours=4)
    )
    assert later.run().partitions[0].archived_records == 100  # settled: read now
