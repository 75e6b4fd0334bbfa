"""Compaction of a real archive (written by the pipeline into moto S3): block copy, re-encode, retry duplicates,
conflicts, crashes, races."""

from __future__ import annotations

import io
import itertools
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import fastavro
import pytest

from archive_ops import verify
from archive_ops.archive_audit import ArchiveAuditor
from archive_ops.archive_index import fetch, list_archive, parse_key, read_envelopes, read_offsets
from archive_ops.avro_blocks import read_container, write_container
from archive_ops.cli.options import parse_duration, parse_size
from archive_ops.compact import CompactionConfig, Compactor
from archiver.encoding import encode_records, sync_marker_for
from tests.kafka_events import kafka_event, kafka_record
from tests.ops.archive_builder import archive_batches, archived_records, varied_record
from tests.unit.aws_fakes import BUCKET, FakeAws, make_archiver

ALL_OFFSETS = {("orders", partition): set(range(200)) for partition in (0, 1)}
MERGED = "topics/orders/partition=0/orders+0+00000000000000000000+00000000000000000199.avro"


def compactor(s3: Any, **overrides: Any) -> Compactor:
    return Compactor(s3, CompactionConfig(bucket=BUCKET, **overrides))


def held_offsets(aws: FakeAws) -> dict[tuple[str, int], set[int]]:
    found: dict[tuple[str, int], set[int]] = {}
    for item in list_archive(aws.s3, BUCKET, "topics/"):
        fetched = fetch(aws.s3, BUCKET, item.key)
        assert fetched is not None
        found.setdefault((item.ref.topic_segment, item.ref.partition), set()).update(read_offsets(fetched.body))
    return found


def assert_no_gap(aws: FakeAws, expected: dict[tuple[str, int], set[int]] = ALL_OFFSETS) -> None:
    assert held_offsets(aws) == expected


def assert_verify_clean(aws: FakeAws) -> None:
    """Both audits agree: every offset once, no duplicate, no conflict, nothing left for compaction."""
    audit = ArchiveAuditor(aws.s3, BUCKET, "topics/").run()
    assert audit.clean
    assert [(p.duplicate_offsets, p.conflicts, p.redundant_objects) for p in audit.partitions] == [
        (0, [], 0) for _ in audit.partitions
    ]
    result = verify.audit(s3=aws.s3, bucket=BUCKET)
    assert result["complete"]
    assert (result["duplicateCount"], result["conflictCount"]) == (0, 0)


def retry_duplicates(aws: FakeAws) -> None:
    """What a smaller retry leaves with conditional writes (tests/unit/test_conditional_writes.py): a try archived
    0-19 and failed, the retry committed 0-9, the next batch 10-29 archived 10-19 again."""
    archiver = make_archiver(aws)
    archiver.archive(kafka_event([varied_record("orders", 0, offset) for offset in range(0, 20)]))
    archiver.archive(kafka_event([varied_record("orders", 0, offset) for offset in range(0, 10)]))
    archiver.archive(kafka_event([varied_record("orders", 0, offset) for offset in range(10, 30)]))


def test_verify_reports_leftover_inputs_as_identical_duplicates(aws: FakeAws) -> None:
    archive_batches(aws, partitions=(0,))
    with pytest.raises(Crash):
        compactor(CrashingS3(aws.s3, "delete_objects", nth=1)).run()  # merged object written, no input deleted

    result = verify.audit(s3=aws.s3, bucket=BUCKET)

    assert result["complete"]
    assert result["duplicateCount"] == 200
    assert result["conflictCount"] == 0
    (partition,) = result["partitions"]
    assert partition["archived"] == [[0, 199]]
    assert MERGED in partition["duplicateObjects"]
    assert "compaction keeps one" in verify.text_summary(result)


def test_retry_duplicates_are_reported_then_removed_by_compaction(aws: FakeAws) -> None:
    retry_duplicates(aws)
    before, copies = archived_records(aws)
    assert copies == 2

    result = verify.audit(s3=aws.s3, bucket=BUCKET)
    assert result["complete"]  # identical copies of the same records: nothing lost or conflicting
    assert result["duplicateCount"] == 10

    report = compactor(aws.s3).run()

    assert report.duplicates_removed == 10
    assert report.conflicts == []
    assert aws.keys("topics/") == ["topics/orders/partition=0/orders+0+00000000000000000000+00000000000000000029.avro"]
    assert archived_records(aws) == (before, 1)
    assert_verify_clean(aws)


def test_copies_that_differ_are_a_conflict_both_kept_and_reported(aws: FakeAws) -> None:
    archive_batches(aws, partitions=(0,), batches=3)
    # An object no retry could make: offset 25 again, with another value (e.g. written by hand or another tool).
    forged = _envelope(varied_record("orders", 0, 25) | {"value": "Zm9yZ2Vk"})  # base64 of "forged"
    key = "topics/orders/partition=0/orders+0+00000000000000000025.avro"
    aws.s3.put_object(Bucket=BUCKET, Key=key, Body=encode_records([forged], codec="null", key=key))
    written = aws.keys("topics/")

    report = compactor(aws.s3).run()

    assert [(c.offset, c.keys) for c in report.conflicts] == [
        (25, ["topics/orders/partition=0/orders+0+00000000000000000020.avro", key])
    ]
    assert set(written) <= set(aws.keys("topics/"))  # neither copy deleted
    assert [record["value"] for record in read_envelopes(aws.body(key))] == [b"forged"]
    audit = ArchiveAuditor(aws.s3, BUCKET, "topics/").run()
    assert not audit.clean
    assert audit.partitions[0].conflicts == [
        {"offset": 25, "keys": sorted(c for conflict in report.conflicts for c in conflict.keys)}
    ]
    assert not verify.audit(s3=aws.s3, bucket=BUCKET)["complete"]


def _envelope(raw: dict[str, Any]) -> dict[str, Any]:
    from archiver.decoding import decode_record

    return decode_record(raw)


@pytest.mark.parametrize("verify_offsets", [False, True])
def test_block_copy_merges_a_pipeline_archive_into_one_object_per_partition(aws: FakeAws, verify_offsets: bool) -> None:
    written = archive_batches(aws)
    assert len(written) == 20
    before, _ = archived_records(aws)

    report = compactor(aws.s3, verify_offsets=verify_offsets).run()

    assert [merge.method for merge in report.merges] == ["copy", "copy"]
    assert aws.keys("topics/") == [
        "topics/orders/partition=0/orders+0+00000000000000000000+00000000000000000199.avro",
        "topics/orders/partition=1/orders+1+00000000000000000000+00000000000000000199.avro",
    ]
    after, copies = archived_records(aws)
    assert after == before  # every field of every record, including null keys, tombstones and headers
    assert copies == 1
    key = aws.keys()[0]
    head = aws.s3.head_object(Bucket=BUCKET, Key=key)
    assert head["ContentType"] == "application/avro"
    assert head["Metadata"] == {
        "partition": "0",
        "first-offset": "0",
        "last-offset": "199",
        "record-count": "200",
        "codec": "zstandard",
        "compacted-from": "10",
        "compaction-method": "copy",
        "max-timestamp": head["Metadata"]["max-timestamp"],  # tested on its own below
    }
    container = read_container(aws.body(key))
    assert container.sync == sync_marker_for(key)
    assert len(container.blocks) == 10  # the inputs' blocks, copied as they were
    assert_verify_clean(aws)


def test_re_encode_when_the_inputs_codecs_differ(aws: FakeAws) -> None:
    archive_batches(aws, batches=5, codec="deflate")
    archive_batches(aws, batches=5, start=100, codec="zstandard")
    before, _ = archived_records(aws)

    report = compactor(aws.s3).run()

    assert {(merge.method, merge.fallback_reason) for merge in report.merges} == {
        ("reencode", "inputs differ in schema, codec or header metadata")
    }
    after, copies = archived_records(aws)
    assert after == before
    assert copies == 1
    key = aws.keys()[0]
    assert read_container(aws.body(key)).codec == "zstandard"  # the newest input's codec: the current setting
    assert aws.s3.head_object(Bucket=BUCKET, Key=key)["Metadata"]["compaction-method"] == "reencode"
    assert_no_gap(aws)
    assert_verify_clean(aws)


@pytest.mark.parametrize("method", ["copy", "reencode"])
def test_both_methods_hold_the_same_records_under_the_same_key(aws: FakeAws, method: str) -> None:
    archive_batches(aws, partitions=(0,))
    before, _ = archived_records(aws)
    report = compactor(aws.s3, method=method).run()
    assert [merge.method for merge in report.merges] == [method]
    assert aws.keys() == ["topics/orders/partition=0/orders+0+00000000000000000000+00000000000000000199.avro"]
    assert archived_records(aws) == (before, 1)


def test_a_codec_change_re_encodes_into_the_requested_codec(aws: FakeAws) -> None:
    archive_batches(aws, partitions=(0,))
    report = compactor(aws.s3, codec="deflate").run()
    assert report.merges[0].method == "reencode"
    assert report.merges[0].fallback_reason == "codec change zstandard -> deflate"
    assert read_container(aws.body(aws.keys()[0])).codec == "deflate"


def test_compaction_is_deterministic_byte_for_byte(aws: FakeAws) -> None:
    bodies = []
    for method in ("copy", "reencode", "copy", "reencode"):
        existing = aws.keys()
        for key in existing:
            aws.s3.delete_object(Bucket=BUCKET, Key=key)
        archive_batches(aws, partitions=(0,))
        compactor(aws.s3, method=method).run()
        bodies.append((method, aws.keys(), aws.body(aws.keys()[0])))
    assert bodies[0] == bodies[2]
    assert bodies[1] == bodies[3]
    assert bodies[0][1] == bodies[1][1]  # the key does not depend on the method


def test_target_size_packs_consecutive_objects_and_never_crosses_partition_paths(aws: FakeAws) -> None:
    archive_batches(aws, partitions=(0, 1), codec="null")  # records, not headers, dominate sizes
    sizes = [obj.size for obj in list_archive(aws.s3, BUCKET, "topics/orders/partition=0/")]
    target = sum(sizes[:4]) + 1  # room for about four inputs

    for _ in range(3):  # later runs merge merged objects with what is left, still within the target
        report = compactor(aws.s3, target_bytes=target).run()
        for merge in report.merges:
            assert merge.bytes_in <= target
            assert merge.bytes_out <= merge.bytes_in  # one header instead of several
        assert_no_gap(aws)
        assert_verify_clean(aws)

    for partition in (0, 1):
        refs = [ref for ref in map(parse_key, aws.keys(f"topics/orders/partition={partition}/")) if ref]
        assert 2 <= len(refs) < 10
        # Consecutive, non-overlapping ranges that tile 0..199: nothing crossed into the other partition.
        assert refs[0].first_offset == 0
        assert refs[-1].last_offset == 199
        assert all(ref.last_offset is not None for ref in refs)  # every object renamed by its range
        assert all(a.upper_bound + 1 == b.first_offset for a, b in itertools.pairwise(refs))
        assert {ref.partition for ref in refs} == {partition}


def test_field_partitioned_archive_compacts_per_value_with_non_contiguous_offsets(aws: FakeAws) -> None:
    archive_batches(aws, partitions=(0,), partitioner="field", partition_field="country")
    before, _ = archived_records(aws)
    # Tombstones go to the NULL partition; each path holds interleaved, non-contiguous offsets.
    directories = {ref.directory for ref in map(parse_key, aws.keys()) if ref}
    assert directories == {
        "topics/orders/country=DE",
        "topics/orders/country=FR",
        "topics/orders/country=IT",
        "topics/orders/country=__HIVE_DEFAULT_PARTITION__",
    }

    report = compactor(aws.s3).run()

    assert len(report.merges) == 4
    assert {merge.method for merge in report.merges} == {"copy"}
    assert len(aws.keys()) == 4
    assert archived_records(aws) == (before, 1)
    assert_no_gap(aws, {("orders", 0): set(range(200))})
    assert_verify_clean(aws)


def test_time_partitioned_archive_compacts_each_hour_on_its_own(aws: FakeAws) -> None:
    # Records are one second apart from 12:51:30 (offset 0): offsets 300..699 span the hours 12 and 13.
    archive_batches(aws, partitions=(0,), partitioner="time", start=300, batch_size=40)
    hours = {ref.directory for ref in map(parse_key, aws.keys()) if ref}
    assert hours == {
        "topics/orders/year=2024/month=05/day=01/hour=12",
        "topics/orders/year=2024/month=05/day=01/hour=13",
    }
    compactor(aws.s3).run()
    assert {ref.directory for ref in map(parse_key, aws.keys()) if ref} == hours
    assert len(aws.keys()) == 2
    assert_no_gap(aws, {("orders", 0): set(range(300, 700))})


def test_older_than_leaves_recent_objects_alone(aws: FakeAws) -> None:
    archive_batches(aws, partitions=(0,))
    now = datetime.now(UTC)
    report = Compactor(aws.s3, CompactionConfig(bucket=BUCKET, older_than=timedelta(hours=1)), now=lambda: now).run()
    assert report.merges == []
    later = now + timedelta(hours=2)
    report = Compactor(aws.s3, CompactionConfig(bucket=BUCKET, older_than=timedelta(hours=1)), now=lambda: later).run()
    assert len(report.merges) == 1


def test_dry_run_plans_without_changing_anything(aws: FakeAws) -> None:
    written = archive_batches(aws)
    report = compactor(aws.s3, dry_run=True).run()
    assert [len(plan["inputs"]) for plan in report.planned] == [10, 10]
    assert report.merges == []
    assert sorted(aws.keys()) == sorted(written)


# -- crashes ----------------------------------------------------------------------------------------------------------


class Crash(Exception):
    pass


class CrashingS3:
    """Wraps the moto client; raises ``Crash`` on the ``nth`` call of ``operation`` (after running it if ``after``)."""

    def __init__(self, s3: Any, operation: str, *, nth: int = 1, after: bool = False) -> None:
        self._s3 = s3
        self._operation = operation
        self._nth = nth
        self._after = after
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        real = getattr(self._s3, name)
        if name != self._operation:
            return real

        def call(**kwargs: Any) -> Any:
            self.calls += 1
            if self.calls == self._nth:
                if self._after:
                    real(**kwargs)
                raise Crash(f"injected crash {'after' if self._after else 'before'} {name} #{self.calls}")
            return real(**kwargs)

        return call


@pytest.mark.parametrize(
    ("operation", "nth", "after"),
    [
        ("put_object", 1, False),  # before the new object exists
        ("put_object", 1, True),  # new object written, not verified
        ("get_object", 11, False),  # reading the new object back to verify it (10 inputs were read first)
        ("delete_objects", 1, False),  # verified, nothing deleted
        ("delete_objects", 1, True),  # first batch of inputs deleted, the rest not
    ],
)
def test_a_crash_at_any_step_leaves_no_gap_and_a_rerun_cleans_up(
    aws: FakeAws, monkeypatch: pytest.MonkeyPatch, operation: str, nth: int, after: bool
) -> None:
    monkeypatch.setattr("archive_ops.compact.MAX_DELETE_BATCH", 3)  # so a crash can fall between delete batches
    archive_batches(aws, partitions=(0,))
    before, _ = archived_records(aws)
    crashing = CrashingS3(aws.s3, operation, nth=nth, after=after)

    with pytest.raises(Crash):
        compactor(crashing).run()

    assert crashing.calls == nth
    assert_no_gap(aws, {("orders", 0): set(range(200))})
    audit = ArchiveAuditor(aws.s3, BUCKET, "topics/").run()
    assert audit.partitions[0].conflicts == []  # leftovers are identical copies, never conflicts
    remaining = aws.keys()
    if MERGED in remaining:
        assert audit.partitions[0].redundant_objects == len(remaining) - 1

    report = compactor(aws.s3).run()

    assert aws.keys() == [MERGED]
    assert archived_records(aws) == (before, 1)
    assert_verify_clean(aws)
    if after and operation == "delete_objects":
        assert len(report.redundant_deleted) == 7  # 10 inputs, 3 deleted before the crash


def _drop_last_block(body: bytes, *, keep_count: bool = False) -> bytes:
    """A well-formed container missing its last block (or, with ``keep_count``, with its last two blocks swapped)."""
    container = read_container(body)
    blocks = list(container.blocks)
    if keep_count:
        blocks[-1], blocks[-2] = blocks[-2], blocks[-1]
    else:
        blocks.pop()
    return write_container(container.metadata, container.sync, blocks)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda body: body[: len(body) // 2], "cannot be read back"),  # torn
        (_drop_last_block, "records, the inputs"),
        (lambda body: _drop_last_block(body, keep_count=True), "blocks as copied"),
    ],
)
def test_an_unverifiable_merge_deletes_nothing(aws: FakeAws, damage: Any, message: str) -> None:
    archive_batches(aws, partitions=(0,))
    written = aws.keys()

    class DamagingS3(CrashingS3):
        def put_object(self, **kwargs: Any) -> Any:
            kwargs["Body"] = damage(kwargs["Body"])  # what S3 would never do; verification must catch it anyway
            return self._s3.put_object(**kwargs)

    report = compactor(DamagingS3(aws.s3, "none")).run()
    assert report.merges == []
    assert len(report.failed) == 1
    assert message in report.failed[0]
    assert set(written) <= set(aws.keys())
    held = set()
    for key in written:
        fetched = fetch(aws.s3, BUCKET, key)
        assert fetched is not None
        held.update(read_offsets(fetched.body))
    assert held == set(range(200))


# -- concurrency and the Lambda writing meanwhile ---------------------------------------------------------------------


def test_a_second_compactor_running_meanwhile_causes_no_loss(aws: FakeAws) -> None:
    archive_batches(aws, partitions=(0,))
    before, _ = archived_records(aws)

    class RaceAtDelete(CrashingS3):
        """Runs a whole second compactor just before the first one deletes its inputs."""

        def delete_objects(self, **kwargs: Any) -> Any:
            if not self.calls:
                self.calls += 1
                compactor(aws.s3).run()
            return self._s3.delete_objects(**kwargs)

    compactor(RaceAtDelete(aws.s3, "none")).run()
    assert archived_records(aws) == (before, 1)
    assert len(aws.keys()) == 1


def test_a_compactor_with_a_stale_listing_abandons_the_merge(aws: FakeAws) -> None:
    archive_batches(aws, partitions=(0,))
    before, _ = archived_records(aws)

    class RaceAtFirstRead(CrashingS3):
        """Lets a second compactor finish right after the first listed the objects."""

        def get_object(self, **kwargs: Any) -> Any:
            if not self.calls:
                self.calls += 1
                compactor(aws.s3).run()
            return self._s3.get_object(**kwargs)

    report = compactor(RaceAtFirstRead(aws.s3, "none")).run()
    assert report.merges == []
    assert len(report.skipped) == 1
    assert archived_records(aws) == (before, 1)


def test_a_late_retry_after_compaction_is_removed_by_the_next_run(aws: FakeAws) -> None:
    archive_batches(aws, partitions=(0,))
    compactor(aws.s3).run()
    # The event source retries an old batch: the function writes one of the (deleted) small objects again.
    archive_batches(aws, partitions=(0,), batches=1, start=40)
    audit = ArchiveAuditor(aws.s3, BUCKET, "topics/").run()
    assert (audit.partitions[0].duplicate_offsets, audit.partitions[0].redundant_objects) == (20, 1)

    report = compactor(aws.s3).run()
    assert report.redundant_deleted == ["topics/orders/partition=0/orders+0+00000000000000000040.avro"]
    assert aws.keys() == [MERGED]
    assert_verify_clean(aws)


def test_a_lone_object_the_function_wrote_is_renamed_by_its_range_once(aws: FakeAws) -> None:
    make_archiver(aws).archive(kafka_event([kafka_record("solo", 3, offset) for offset in range(5)]))
    before, _ = archived_records(aws)
    report = compactor(aws.s3).run()
    assert [(merge.inputs, merge.method) for merge in report.merges] == [(1, "copy")]
    assert aws.keys("topics/") == ["topics/solo/partition=3/solo+3+00000000000000000000+00000000000000000004.avro"]
    assert archived_records(aws) == (before, 1)

    again = compactor(aws.s3).run()  # a compacted archive is left as it is
    assert (again.merges, again.redundant_deleted, again.skipped) == ([], [], [])


def test_a_merge_another_run_already_made_is_accepted(aws: FakeAws) -> None:
    archive_batches(aws, partitions=(0,))
    before, _ = archived_records(aws)

    class OtherRunFirst(CrashingS3):
        """Another compactor writes the very same merged object just before this one does."""

        def put_object(self, **kwargs: Any) -> Any:
            if not self.calls:
                self.calls += 1
                self._s3.put_object(**kwargs)
            return self._s3.put_object(**kwargs)

    report = compactor(OtherRunFirst(aws.s3, "none")).run()
    assert report.merges == []
    assert len(report.redundant_deleted) == 10  # its inputs, next to the identical object the other run made
    assert aws.keys() == [MERGED]
    assert archived_records(aws) == (before, 1)


def test_a_time_budget_stops_between_chunks_and_a_rerun_finishes(aws: FakeAws) -> None:
    archive_batches(aws, partitions=(0, 1))
    budget = iter([600.0, 0.0])  # enough for partition 0's merge, then nothing
    first = Compactor(aws.s3, CompactionConfig(bucket=BUCKET), seconds_left=lambda: next(budget, 0.0)).run()
    assert first.incomplete
    assert len(first.merges) == 1
    second = compactor(aws.s3).run()
    assert not second.incomplete
    assert len(aws.keys()) == 2
    assert_no_gap(aws)


def test_compaction_carries_the_newest_timestamp(aws: FakeAws) -> None:
    archive_batches(aws, partitions=(0,))
    heads = [aws.s3.head_object(Bucket=BUCKET, Key=key) for key in aws.keys("topics/")]
    newest = max(int(head["Metadata"]["max-timestamp"]) for head in heads)
    compactor(aws.s3).run()
    assert aws.s3.head_object(Bucket=BUCKET, Key=MERGED)["Metadata"]["max-timestamp"] == str(newest)


def test_cli_parsers() -> None:
    assert parse_size("128MiB") == 128 * 1024 * 1024
    assert parse_size("1000") == 1000
    assert parse_duration("2h") == timedelta(hours=2)
    assert parse_duration("30m") == timedelta(minutes=30)
    with pytest.raises(ValueError, match="5 GiB"):
        compactor(None, target_bytes=6 * 1024**3)


# -- typed archives (values decoded with a schema; keys carry the schema fingerprint) --------------------------------

ORDER = {
    "type": "record",
    "name": "Order",
    "namespace": "shop",
    "fields": [{"name": "order_id", "type": "long"}, {"name": "country", "type": "string"}],
}


@pytest.mark.parametrize("method", ["copy", "reencode"])
def test_typed_archive_objects_compact_within_one_writer_schema(aws: FakeAws, tmp_path: Path, method: str) -> None:
    (tmp_path / "orders.avsc").write_text(json.dumps(ORDER))
    archiver = make_archiver(
        aws,
        value_formats=json.dumps({"orders": {"format": "json", "schema": "orders.avsc"}}),
        value_schemas_dir=str(tmp_path),
    )
    for batch in range(5):
        records = [
            kafka_record("orders", 0, n, value=json.dumps({"order_id": n, "country": "DE"}).encode())
            for n in range(batch * 10, batch * 10 + 10)
        ]
        archiver.archive(kafka_event(records))
    written = aws.keys()
    (fingerprint,) = {ref.fingerprint for ref in map(parse_key, written) if ref}
    assert fingerprint is not None
    before = [record for key in written for record in fastavro.reader(io.BytesIO(aws.body(key)))]

    report = compactor(aws.s3, method=method).run()

    assert [merge.method for merge in report.merges] == [method]
    (key,) = aws.keys()
    assert key == f"topics/orders/partition=0/orders+0+{0:020d}+{49:020d}+{fingerprint}.avro"
    reader = fastavro.reader(io.BytesIO(aws.body(key)))
    assert list(reader) == before
    assert reader.writer_schema["name"] == "kafka_s3_archiver.typed.v1.KafkaRecord"  # type: ignore[index,call-overload]
    assert_verify_clean(aws)


def test_envelope_objects_with_different_headers_are_re_encoded_as_envelopes(aws: FakeAws) -> None:
    """Raw envelopes whose headers differ (written by another archiver version, or before the header's schema was
    written canonically, when its key order followed the hash seed) are merged by the envelope encoder."""
    written = archive_batches(aws, partitions=(0,), batches=2)
    container = read_container(aws.body(written[0]))
    shuffled = json.dumps(dict(reversed(list(json.loads(container.schema).items())))).encode()
    metadata = tuple((name, shuffled if name == "avro.schema" else value) for name, value in container.metadata)
    aws.s3.put_object(Bucket=BUCKET, Key=written[0], Body=write_container(metadata, container.sync, container.blocks))
    before, _ = archived_records(aws)

    report = compactor(aws.s3).run()

    assert report.failed == []
    assert [merge.method for merge in report.merges] == ["reencode"]
    assert archived_records(aws) == (before, 1)
    (key,) = aws.keys("topics/")
    assert read_container(aws.body(key)).schema == read_container(encode_records([], codec="null", key="x")).schema
