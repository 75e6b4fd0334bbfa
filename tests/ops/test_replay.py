"""Replay from the archive back into Kafka: selection, order, dry run, and (on the local broker) the real thing."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from archive_ops.archive_index import StoredObject, list_archive
from archive_ops.cli.options import parse_time
from archive_ops.compact import CompactionConfig, Compactor
from archive_ops.replay import ReplayConfig, Replayer, ReplayError, Selection, partition_records
from tests.kafka_events import BASE_TIMESTAMP, kafka_event
from tests.ops.archive_builder import archive_batches, archived_records, varied_record
from tests.unit.aws_fakes import BUCKET, FakeAws, make_archiver


def replay_config(**overrides: Any) -> ReplayConfig:
    selection = overrides.pop("selection", Selection(topic="orders"))
    return ReplayConfig(bucket=BUCKET, selection=selection, **overrides)


def messy_archive(aws: FakeAws) -> None:
    """Small objects, a compacted object, and a leftover input a compaction has not deleted yet."""
    archive_batches(aws, partitions=(0, 1))
    Compactor(aws.s3, CompactionConfig(bucket=BUCKET, partitions=(0,))).run()
    archive_batches(aws, partitions=(0,), batches=1, start=60)  # a Lambda retry rewrites an old batch


# -- without a broker -------------------------------------------------------------------------------------------------


def test_partition_records_are_in_offset_order_once_each_across_field_partition_paths(aws: FakeAws) -> None:
    archive_batches(aws, partitions=(0,), partitioner="field", partition_field="country")
    archive_batches(aws, partitions=(0,), batches=1, start=40, partitioner="field", partition_field="country")

    def objects() -> list[StoredObject]:
        return list_archive(aws.s3, BUCKET, "topics/", topic="orders")

    duplicates: list[int] = []
    records = list(partition_records(aws.s3, BUCKET, objects, Selection("orders"), on_duplicate=duplicates.append))
    assert [record["offset"] for record in records] == list(range(200))
    assert duplicates == []  # the rewrite was byte-identical to what was there: same keys, nothing doubled

    make_archiver(aws).archive(kafka_event([varied_record("orders", 0, offset) for offset in range(40, 70)]))
    records = list(partition_records(aws.s3, BUCKET, objects, Selection("orders"), on_duplicate=duplicates.append))
    assert [record["offset"] for record in records] == list(range(200))
    assert sorted(duplicates) == list(range(40, 70))  # a real duplicate in the archive, replayed once


def test_objects_compacted_away_during_a_replay_are_found_in_the_new_listing(aws: FakeAws) -> None:
    archive_batches(aws, partitions=(0,))

    class CompactOnFirstRead:
        """S3 that lets a compactor run just before the replay reads its first object."""

        def __init__(self) -> None:
            self.compacted = False

        def __getattr__(self, name: str) -> Any:
            return getattr(aws.s3, name)

        def get_object(self, **kwargs: Any) -> Any:
            if not self.compacted:
                self.compacted = True
                Compactor(aws.s3, CompactionConfig(bucket=BUCKET)).run()
            return aws.s3.get_object(**kwargs)

    summary = Replayer(CompactOnFirstRead(), replay_config(dry_run=True)).run()
    assert len(aws.keys()) == 1
    assert summary.records == 200
    assert (summary.partitions[0].first_offset, summary.partitions[0].last_offset) == (0, 199)
    assert summary.partitions[0].duplicates_skipped == 0


def test_dry_run_counts_what_a_selection_would_send(aws: FakeAws) -> None:
    messy_archive(aws)
    summary = Replayer(aws.s3, replay_config(dry_run=True)).run()
    assert summary.records == 400
    assert summary.partitions[0].duplicates_skipped == 20  # the leftover input
    assert summary.partitions[1].duplicates_skipped == 0

    selection = Selection(
        topic="orders",
        partitions=(1,),
        from_offset=10,
        to_offset=99,
        since_ms=BASE_TIMESTAMP + 20_000,  # offset n has timestamp BASE + n seconds
        until_ms=BASE_TIMESTAMP + 50_000,
    )
    summary = Replayer(aws.s3, replay_config(dry_run=True, selection=selection)).run()
    assert list(summary.partitions) == [1]
    progress = summary.partitions[1]
    assert (progress.records, progress.first_offset, progress.last_offset) == (30, 20, 49)
    assert progress.filtered_by_time == 60


def test_a_checkpoint_from_another_replay_is_refused(aws: FakeAws, tmp_path: Path) -> None:
    archive_batches(aws, partitions=(0,), batches=1)
    checkpoint = tmp_path / "replay.json"
    checkpoint.write_text('{"version": 1, "identity": {"source_topic": "other"}, "partitions": {}}')
    with pytest.raises(ReplayError, match="belongs to another replay"):
        Replayer(aws.s3, replay_config(dry_run=True, checkpoint=checkpoint)).run()


def test_parse_time() -> None:
    assert parse_time("1714567890123") == 1714567890123
    assert parse_time("2024-05-01T12:51:30.123Z") == 1714567890123
    assert parse_time("2024-05-01T12:51:30.123") == 1714567890123


# -- on the local broker ----------------------------------------------------------------------------------------------


def consume_all(bootstrap: str, topic: str, partitions: int, expected: int, timeout_s: float = 60) -> list[Any]:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"check-{uuid.uuid4()}", "enable.auto.commit": False}
    )
    # Manual assignment: no group join, which takes ~23 s on Tansu with librdkafka's defaults.
    consumer.assign([TopicPartition(topic, partition, 0) for partition in range(partitions)])
    messages: list[Any] = []
    try:
        import time

        deadline = time.monotonic() + timeout_s
        while len(messages) < expected and time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is None or message.error():
                continue
            messages.append(message)
        # A little longer, to catch anything produced twice.
        extra_until = time.monotonic() + 2
        while time.monotonic() < extra_until:
            message = consumer.poll(0.5)
            if message is not None and not message.error():
                messages.append(message)
    finally:
        consumer.close()
    return messages


def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    from confluent_kafka.admin import AdminClient
    from confluent_kafka.cimpl import NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)]).values():
        future.result(timeout=30)


def assert_replayed_equals_archive(messages: list[Any], archive: dict[Any, dict[str, Any]], topic: str) -> None:
    by_partition: dict[int, list[Any]] = {}
    for message in messages:
        by_partition.setdefault(message.partition(), []).append(message)
    assert sum(len(items) for items in by_partition.values()) == len(archive)
    for partition, items in by_partition.items():
        originals = sorted(
            (record for (_, p, _), record in archive.items() if p == partition), key=lambda r: r["offset"]
        )
        assert len(items) == len(originals)
        for message, original in zip(items, originals, strict=True):  # offset order per partition
            assert message.topic() == topic
            assert message.key() == original["key"]
            assert message.value() == original["value"]
            assert (message.headers() or []) == [(h["key"], h["value"]) for h in original["headers"]]
            assert message.timestamp()[1] == original["timestamp"]


@pytest.mark.e2e
def test_replay_into_a_fresh_topic_equals_the_archive_field_by_field(aws: FakeAws, kafka_bootstrap: str) -> None:
    messy_archive(aws)
    archive, _ = archived_records(aws)
    target = f"replayed-{uuid.uuid4().hex[:8]}"
    create_topic(kafka_bootstrap, target, 2)

    summary = Replayer(aws.s3, replay_config(target_topic=target, bootstrap_servers=kafka_bootstrap)).run()

    assert summary.records == 400
    messages = consume_all(kafka_bootstrap, target, 2, 400)
    assert_replayed_equals_archive(messages, archive, target)


class CrashingProducer:
    """A real producer that 'dies' on its nth produce: queued, unsent records are purged, as a killed process loses
    them, and the call raises."""

    def __init__(self, settings: dict[str, Any], crash_at: int) -> None:
        from confluent_kafka import Producer

        self._producer = Producer(settings)
        self._crash_at = crash_at
        self.produced = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._producer, name)

    def produce(self, topic: str, **kwargs: Any) -> None:
        self.produced += 1
        if self.produced == self._crash_at:
            self._producer.purge()
            self._producer.flush(5)
            raise KeyboardInterrupt("injected crash")
        self._producer.produce(topic, **kwargs)


@pytest.mark.e2e
def test_an_interrupted_replay_resumes_from_its_checkpoint_without_producing_twice(
    aws: FakeAws, kafka_bootstrap: str, tmp_path: Path
) -> None:
    archive_batches(aws, partitions=(0, 1))
    archive, _ = archived_records(aws)
    target = f"resumed-{uuid.uuid4().hex[:8]}"
    create_topic(kafka_bootstrap, target, 2)
    checkpoint = tmp_path / "replay.json"
    config = replay_config(
        target_topic=target,
        bootstrap_servers=kafka_bootstrap,
        checkpoint=checkpoint,
        batch_size=50,
        # Nothing leaves the producer's queue before the batch's flush, so the crash below deterministically loses
        # the unflushed records (a crash after they reached the broker is the documented at-least-once window).
        producer_config={"linger.ms": 60_000},
    )

    with pytest.raises(KeyboardInterrupt):
        Replayer(aws.s3, config, producer_factory=lambda settings: CrashingProducer(settings, 275)).run()
    # Partition 0 (4 batches) and the first batch of partition 1 were confirmed; the second was lost mid-way.
    assert checkpoint.exists()
    assert '"0": 199' in checkpoint.read_text()
    assert '"1": 49' in checkpoint.read_text()

    summary = Replayer(aws.s3, config).run()

    assert summary.resumed_from == {0: 199, 1: 49}
    assert summary.records == 150
    messages = consume_all(kafka_bootstrap, target, 2, 400)
    assert_replayed_equals_archive(messages, archive, target)


@pytest.mark.e2e
def test_replay_by_key_into_a_topic_with_other_partitions_keeps_per_key_order(
    aws: FakeAws, kafka_bootstrap: str
) -> None:
    archive_batches(aws, partitions=(0, 1), batches=2)
    archive, _ = archived_records(aws)
    target = f"by-key-{uuid.uuid4().hex[:8]}"
    create_topic(kafka_bootstrap, target, 3)

    config = replay_config(target_topic=target, bootstrap_servers=kafka_bootstrap, partitioning="key")
    assert Replayer(aws.s3, config).run().records == 80

    messages = consume_all(kafka_bootstrap, target, 3, 80)
    assert len(messages) == 80
    by_key: dict[bytes | None, list[int]] = {}
    for message in messages:
        by_key.setdefault(message.key(), []).append(message.timestamp()[1])
    for key, timestamps in by_key.items():
        if key is not None:  # null keys are spread over partitions, with no order to keep
            assert timestamps == sorted(timestamps)
            assert len({m.partition() for m in messages if m.key() == key}) == 1
    assert sorted(m.timestamp()[1] for m in messages) == sorted(r["timestamp"] for r in archive.values())


@pytest.mark.e2e
def test_replay_into_the_source_topic_needs_its_flag_and_announces_itself_first(
    aws: FakeAws, kafka_bootstrap: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Through the command: the archive of topic T written back into T, only with --into-source-topic, and the
    plan printed before anything is produced."""
    from archive_ops.cli import main

    source = f"live-{uuid.uuid4().hex[:8]}"
    archive_batches(aws, topic=source, partitions=(0,), batches=2)
    create_topic(kafka_bootstrap, source, 1)
    argv = ["replay", "--bucket", BUCKET, "--topic", source, "--bootstrap-servers", kafka_bootstrap]
    assert main(argv) == 2  # no target: refused, nothing produced
    assert "needs --target-topic" in capsys.readouterr().err

    assert main([*argv, "--into-source-topic", "--from-offset", "10", "--to-offset", "29"]) == 0
    err = capsys.readouterr().err.splitlines()
    banner = next(index for index, line in enumerate(err) if line.startswith("WRITING INTO THE SOURCE TOPIC"))
    sent = next(index for index, line in enumerate(err) if line.startswith("partition 0: sent"))
    assert banner < sent
    assert f"{source!r}" in err[banner]
    assert "offsets 10..29" in err[banner]
    assert len(consume_all(kafka_bootstrap, source, 1, 20)) == 20
