"""The archive tools on composed layouts (moto S3): compaction merges per directory + topic + partition and keeps the
storage class and tags of the objects it merges; the audit, verify and replay's reader see every offset once."""

from __future__ import annotations

import json
from typing import Any

from archive_ops import verify
from archive_ops.archive_audit import ArchiveAuditor
from archive_ops.archive_index import list_archive, parse_key
from archive_ops.compact import CompactionConfig, Compactor
from archive_ops.replay import Selection, partition_records
from tests.ops.archive_builder import archive_batches, archived_records
from tests.unit.aws_fakes import BUCKET, FakeAws

# country from the value, a bucket of the key, the record's hour: one Kafka partition spreads over many directories.
SEGMENTS = [
    {"kind": "field", "field": "country"},
    {"kind": "key", "buckets": 2},
    {"kind": "time", "pattern": "hour=%H"},
]
LAYOUT: dict[str, Any] = {"partitioner": "segments", "partition_segments": json.dumps(SEGMENTS)}
TAGS = {"team": "data-platform", "retention": "7 years"}


def storage_of(aws: FakeAws, key: str) -> tuple[str, dict[str, str]]:
    head = aws.s3.head_object(Bucket=BUCKET, Key=key)
    tags = aws.s3.get_object_tagging(Bucket=BUCKET, Key=key)["TagSet"]
    return head.get("StorageClass", "STANDARD"), {tag["Key"]: tag["Value"] for tag in tags}


def test_compaction_merges_each_directory_and_keeps_storage_class_and_tags(aws: FakeAws) -> None:
    written = archive_batches(aws, batches=6, storage_class="GLACIER_IR", object_tags=json.dumps(TAGS), **LAYOUT)
    before, copies = archived_records(aws)
    assert copies == 1
    directories = {key.rsplit("/", 1)[0] for key in written}
    assert len(directories) > 4  # the layout really spreads each partition
    assert all(storage_of(aws, key) == ("GLACIER_IR", TAGS) for key in written)

    report = Compactor(aws.s3, CompactionConfig(bucket=BUCKET)).run()
    assert report.merges
    assert not report.failed
    assert not report.conflicts
    merged = [merge.key for merge in report.merges]
    assert {key.rsplit("/", 1)[0] for key in merged} <= directories  # never across directories
    for key in merged:
        assert storage_of(aws, key) == ("GLACIER_IR", TAGS)
    after, copies = archived_records(aws)
    assert copies == 1
    assert after == before  # every record, field for field

    audit = ArchiveAuditor(aws.s3, BUCKET, "topics/").run()
    assert audit.clean
    result = verify.audit(s3=aws.s3, bucket=BUCKET)
    assert result["complete"]
    assert (result["duplicateCount"], result["conflictCount"]) == (0, 0)


def test_the_newest_inputs_storage_class_and_tags_win(aws: FakeAws) -> None:
    """A configuration change between writes: the merged object takes what the function writes now."""
    archive_batches(aws, partitions=(0,), batches=2, **LAYOUT)
    archive_batches(
        aws, partitions=(0,), batches=2, start=40, storage_class="STANDARD_IA", object_tags=json.dumps(TAGS), **LAYOUT
    )
    report = Compactor(aws.s3, CompactionConfig(bucket=BUCKET)).run()
    kinds = set()
    for merge in report.merges:
        ref = parse_key(merge.key)
        assert ref is not None
        assert ref.last_offset is not None
        newest_is_new = ref.last_offset >= 40
        kinds.add("mixed" if ref.first_offset < 40 <= ref.last_offset else newest_is_new)
        assert storage_of(aws, merge.key) == (("STANDARD_IA", TAGS) if newest_is_new else ("STANDARD", {}))
    assert "mixed" in kinds  # some merge had inputs of both configurations


def test_untagged_inputs_cost_no_tag_request(aws: FakeAws) -> None:
    archive_batches(aws, partitions=(0,), batches=3, **LAYOUT)
    calls: list[str] = []
    aws.s3.meta.events.register("before-call.s3.*", lambda model, **_: calls.append(model.name))
    report = Compactor(aws.s3, CompactionConfig(bucket=BUCKET)).run()
    assert report.merges
    assert "GetObjectTagging" not in calls
    for merge in report.merges:
        assert storage_of(aws, merge.key) == ("STANDARD", {})


def test_replay_reads_a_partition_across_its_directories_in_offset_order(aws: FakeAws) -> None:
    archive_batches(aws, batches=5, **LAYOUT)
    Compactor(aws.s3, CompactionConfig(bucket=BUCKET)).run()

    for partition in (0, 1):

        def objects(partition: int = partition) -> list[Any]:
            return list_archive(aws.s3, BUCKET, "topics/", topic="orders", partitions=[partition])

        duplicates: list[int] = []
        records = list(partition_records(aws.s3, BUCKET, objects, Selection("orders"), on_duplicate=duplicates.append))
        assert [record["offset"] for record in records] == list(range(100))
        assert {record["partition"] for record in records} == {partition}
        assert duplicates == []
