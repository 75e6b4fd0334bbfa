"""Stream archived records from S3 back into a Kafka topic, in offset order per partition.

    kafka-s3-archiver replay --bucket BUCKET --topic SOURCE --target-topic TARGET [...]   (archive_ops.cli)

Key, value (tombstones stay tombstones), headers (order, repeats and null values kept) and timestamp are produced
as archived. Each source partition goes to the same partition number of the target (``--partitioning same``, the
default) or wherever the key hashes to (``key``, murmur2 like the Java client). Progress goes to stderr, a JSON
summary to stdout.

Resume: with ``--checkpoint FILE`` the last source offset whose delivery the broker confirmed is recorded per
partition after every batch (producer flush, every delivery report checked, then an atomic file replace). A rerun
with the same file starts after those offsets. See docs/operations.md for the exact guarantee.
"""

from __future__ import annotations

import heapq
import itertools
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from archive_ops.archive_index import StoredObject, fetch, list_archive, read_envelopes
from archiver.settings import DEFAULT_PREFIX

Partitioning = Literal["same", "key"]
CHECKPOINT_VERSION = 1


class ReplayError(RuntimeError):
    """Replay stopped: the message says why and what was confirmed so far."""


@dataclass(frozen=True)
class Selection:
    """Which archived records to replay. Offsets are inclusive; ``until_ms`` is exclusive."""

    topic: str
    partitions: tuple[int, ...] | None = None
    from_offset: int | None = None
    to_offset: int | None = None
    since_ms: int | None = None
    until_ms: int | None = None

    def wants_range(self, first_offset: int, last_offset: int) -> bool:
        """Whether an object holding offsets within ``first_offset..last_offset`` may hold a wanted record."""
        return (self.to_offset is None or first_offset <= self.to_offset) and (
            self.from_offset is None or last_offset >= self.from_offset
        )

    def wants_time(self, timestamp: int) -> bool:
        return (self.since_ms is None or timestamp >= self.since_ms) and (
            self.until_ms is None or timestamp < self.until_ms
        )


@dataclass(frozen=True)
class ReplayConfig:
    bucket: str
    selection: Selection
    prefix: str = DEFAULT_PREFIX
    target_topic: str | None = None  # None: the source topic
    bootstrap_servers: str | None = None
    checkpoint: Path | None = None
    batch_size: int = 1000
    partitioning: Partitioning = "same"
    create_topic: bool = False
    dry_run: bool = False
    producer_config: dict[str, Any] = field(default_factory=dict)
    flush_timeout_s: float = 60.0

    @property
    def target(self) -> str:
        return self.target_topic or self.selection.topic


@dataclass
class PartitionProgress:
    records: int = 0
    bytes: int = 0
    first_offset: int | None = None
    last_offset: int | None = None  # last source offset sent (dry run) or confirmed delivered
    duplicates_skipped: int = 0  # same offset in two objects (pending compaction or a real duplicate)
    filtered_by_time: int = 0


@dataclass
class ReplaySummary:
    source_topic: str
    target_topic: str
    dry_run: bool
    resumed_from: dict[int, int] = field(default_factory=dict)
    partitions: dict[int, PartitionProgress] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def records(self) -> int:
        return sum(item.records for item in self.partitions.values())

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["records"] = self.records
        return data


# ---------------------------------------------------------------------------------------------------------------------
# reading the archive in offset order


def partition_records(
    s3: Any,
    bucket: str,
    list_objects: Callable[[], Iterable[StoredObject]],
    selection: Selection,
    start_after: int | None = None,
    on_duplicate: Callable[[int], None] | None = None,
) -> Iterator[dict[str, Any]]:
    """Records of one topic-partition in offset order, each offset once, across all its partition paths.

    ``list_objects`` lists the partition's objects. An offset held by two objects (an input compaction has not
    deleted yet, or a real duplicate) is yielded once; ``on_duplicate`` hears about the other copies. The time
    range is not applied here.

    Objects are opened lazily, in order of their first offset, only when the next record could come from them; so
    with the default partitioner one object is in memory at a time, and with time or field partitioning one per
    path whose offset range overlaps the current position. If an object vanished since the listing (a compaction
    merged it into an object the listing does not know), the partition is listed again and reading goes on after
    the last offset yielded.
    """
    last_emitted = start_after
    sequence = itertools.count()  # ties on offset pop in a stable order, never comparing the dicts
    while True:
        low = selection.from_offset
        if last_emitted is not None:
            low = last_emitted + 1 if low is None else max(low, last_emitted + 1)
        candidates = sorted(
            (
                item
                for item in list_objects()
                if (low is None or item.ref.upper_bound >= low)
                and selection.wants_range(item.ref.first_offset, item.ref.upper_bound)
            ),
            key=lambda item: (item.ref.first_offset, item.ref.key),
        )
        heap: list[_Head] = []
        opened = 0
        vanished = False
        while heap or opened < len(candidates):
            # Open every object that might hold an offset no greater than the smallest one buffered.
            while opened < len(candidates) and (not heap or candidates[opened].ref.first_offset <= heap[0][0]):
                fetched = fetch(s3, bucket, candidates[opened].key)
                opened += 1
                if fetched is None:
                    vanished = True
                    break
                _push_next(heap, read_envelopes(fetched.body), low, sequence)
            if vanished:
                break
            if not heap:
                continue  # the objects opened hold nothing at or after ``low`` (a key without its last offset)
            offset, _, record, records = heapq.heappop(heap)
            if selection.to_offset is not None and offset > selection.to_offset:
                return
            _push_next(heap, records, low, sequence)
            if offset == last_emitted:
                if on_duplicate is not None:
                    on_duplicate(offset)
                continue
            last_emitted = offset
            yield record
        if not vanished:
            return


_Head = tuple[int, int, dict[str, Any], Iterator[dict[str, Any]]]  # offset, tie-breaker, record, rest of its object


def _push_next(heap: list[_Head], records: Iterator[dict[str, Any]], low: int | None, sequence: Iterator[int]) -> None:
    """Buffer the next record at or after ``low`` from one object's record stream, if there is one."""
    for record in records:
        if low is None or record["offset"] >= low:
            heapq.heappush(heap, (record["offset"], next(sequence), record, records))
            return


# ---------------------------------------------------------------------------------------------------------------------
# checkpoint


def load_checkpoint(path: Path, config: ReplayConfig) -> dict[int, int]:
    """Per source partition, the last offset confirmed delivered by an earlier run with the same file."""
    if not path.exists():
        return {}
    data = json.loads(path.read_text())
    if data.get("version") != CHECKPOINT_VERSION:
        raise ReplayError(f"{path} is not a version {CHECKPOINT_VERSION} replay checkpoint")
    expected = _checkpoint_identity(config)
    if data.get("identity") != expected:
        raise ReplayError(
            f"{path} belongs to another replay ({data.get('identity')}), not {expected}; use another file"
        )
    return {int(partition): int(offset) for partition, offset in data["partitions"].items()}


def save_checkpoint(path: Path, config: ReplayConfig, confirmed: dict[int, int]) -> None:
    """Atomically replace the checkpoint: a crash leaves the old file or the new one, never half of one."""
    data = {
        "version": CHECKPOINT_VERSION,
        "identity": _checkpoint_identity(config),
        "partitions": {str(partition): offset for partition, offset in sorted(confirmed.items())},
    }
    temporary = path.with_name(f".{path.name}.tmp")
    with temporary.open("w") as out:
        json.dump(data, out, indent=2)
        out.flush()
        os.fsync(out.fileno())
    temporary.replace(path)


def _checkpoint_identity(config: ReplayConfig) -> dict[str, Any]:
    return {
        "bucket": config.bucket,
        "prefix": config.prefix,
        "source_topic": config.selection.topic,
        "target_topic": config.target,
    }


# ---------------------------------------------------------------------------------------------------------------------
# replay


class Replayer:
    """Replays one selection. ``producer_factory`` builds a confluent_kafka.Producer-like object (tests may fake it)."""

    def __init__(
        self,
        s3: Any,
        config: ReplayConfig,
        *,
        producer_factory: Callable[[dict[str, Any]], Any] | None = None,
        log: Callable[[str], None] | None = None,
        progress_every_s: float = 5.0,
    ) -> None:
        if config.batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self._s3 = s3
        self._config = config
        self._producer_factory = producer_factory or _confluent_producer
        self._log = log or (lambda _message: None)
        self._progress_every_s = progress_every_s

    def run(self) -> ReplaySummary:
        config = self._config
        started = time.monotonic()
        summary = ReplaySummary(config.selection.topic, config.target, config.dry_run)
        confirmed = load_checkpoint(config.checkpoint, config) if config.checkpoint else {}
        summary.resumed_from = dict(confirmed)

        listed = list_archive(
            self._s3, config.bucket, config.prefix, topic=config.selection.topic, partitions=config.selection.partitions
        )
        if not listed:
            partitions = config.selection.partitions
            raise ReplayError(
                f"no archived objects of topic {config.selection.topic!r}"
                + (f" partition(s) {', '.join(map(str, partitions))}" if partitions else "")
                + f" under s3://{config.bucket}/{config.prefix}: check --topic, --partition and --prefix"
            )
        typed = [item.key for item in listed if item.ref.fingerprint is not None]
        if typed:
            # Their values were decoded into the topic's Avro type; the delivered bytes are not in the archive.
            raise ReplayError(
                f"{len(typed)} typed archive object(s) (e.g. {typed[0]}) hold decoded values, not the delivered bytes,"
                " so they cannot be replayed byte for byte; replay works on raw (envelope) archives"
            )
        by_partition: dict[int, list[StoredObject]] = {}
        for item in listed:
            by_partition.setdefault(item.ref.partition, []).append(item)

        producer = None
        if not config.dry_run:
            producer = self._producer_factory(self._producer_settings())
            self._prepare_target(producer, max(by_partition, default=-1) + 1)
        last_log = time.monotonic()
        for partition in sorted(by_partition):
            progress = summary.partitions.setdefault(partition, PartitionProgress())

            def duplicate(_offset: int, progress: PartitionProgress = progress) -> None:
                progress.duplicates_skipped += 1

            def relist(partition: int = partition) -> list[StoredObject]:
                return list_archive(
                    self._s3, config.bucket, config.prefix, topic=config.selection.topic, partitions=(partition,)
                )

            records = partition_records(
                self._s3,
                config.bucket,
                _first_then(by_partition[partition], relist),
                config.selection,
                confirmed.get(partition),
                duplicate,
            )
            batch: list[dict[str, Any]] = []
            for record in records:
                if not config.selection.wants_time(record["timestamp"]):
                    progress.filtered_by_time += 1
                    continue
                batch.append(record)
                if len(batch) >= config.batch_size:
                    self._send(producer, partition, batch, progress, confirmed)
                    batch = []
                if time.monotonic() - last_log >= self._progress_every_s:
                    last_log = time.monotonic()
                    self._log(f"partition {partition}: up to offset {progress.last_offset}, {progress.records} records")
            if batch:
                self._send(producer, partition, batch, progress, confirmed)
            self._log(
                f"partition {partition}: {'would send' if config.dry_run else 'sent'} {progress.records} records"
                + (f", offsets {progress.first_offset}..{progress.last_offset}" if progress.records else "")
            )
        summary.seconds = round(time.monotonic() - started, 3)
        return summary

    def _producer_settings(self) -> dict[str, Any]:
        settings: dict[str, Any] = {
            "bootstrap.servers": self._config.bootstrap_servers or os.environ.get("KAFKA_BOOTSTRAP_SERVERS", ""),
            # Idempotence: librdkafka's internal retries neither duplicate nor reorder records in a partition.
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 20,
            # The Java client's key hashing, so `--partitioning key` places keys where Java producers would.
            "partitioner": "murmur2_random",
        }
        if not settings["bootstrap.servers"]:
            raise ReplayError("no Kafka to replay into: set KAFKA_BOOTSTRAP_SERVERS or pass --bootstrap-servers")
        settings.update(self._config.producer_config)
        return settings

    def _prepare_target(self, producer: Any, partitions_needed: int) -> None:
        topic = self._config.target
        metadata = producer.list_topics(topic, timeout=30)
        described = metadata.topics.get(topic)
        exists = described is not None and described.error is None and described.partitions
        if not exists and self._config.create_topic:
            _create_topic(producer, self._settings_for_admin(), topic, max(partitions_needed, 1))
            return
        if not exists:
            raise ReplayError(f"target topic {topic!r} does not exist: create it, or pass --create-topic")
        if self._config.partitioning == "same" and len(described.partitions) < partitions_needed:
            raise ReplayError(
                f"target topic {topic!r} has {len(described.partitions)} partitions, the archive {partitions_needed}:"
                " use --partitioning key, or a target with enough partitions"
            )

    def _settings_for_admin(self) -> dict[str, Any]:
        settings = self._producer_settings()
        return {
            name: value
            for name, value in settings.items()
            if name not in ("enable.idempotence", "acks", "linger.ms", "partitioner")
        }

    def _send(
        self,
        producer: Any,
        partition: int,
        batch: list[dict[str, Any]],
        progress: PartitionProgress,
        confirmed: dict[int, int],
    ) -> None:
        if producer is None:  # dry run: count only
            for record in batch:
                self._count(progress, record)
            return
        results: dict[int, Any] = {}

        def delivered(offset: int) -> Callable[[Any, Any], None]:
            def report(error: Any, _message: Any) -> None:
                results[offset] = error

            return report

        target = self._config.target
        for record in batch:
            kwargs: dict[str, Any] = {
                "key": record["key"],
                "value": record["value"],
                "headers": [(header["key"], header["value"]) for header in record["headers"]],
                "on_delivery": delivered(record["offset"]),
            }
            if self._config.partitioning == "same":
                kwargs["partition"] = partition
            if record["timestamp"] > 0:  # 0 would mean "now" to librdkafka; -1 is Kafka's "no timestamp"
                kwargs["timestamp"] = record["timestamp"]
            while True:
                try:
                    producer.produce(target, **kwargs)
                    break
                except BufferError:  # the local queue is full: serve delivery reports, then try again
                    producer.poll(0.5)
            producer.poll(0)
        remaining = producer.flush(self._config.flush_timeout_s)

        # Records of one partition are delivered in order, so the confirmed prefix is exact.
        for record in batch:
            offset = record["offset"]
            if offset not in results or results[offset] is not None:
                if self._config.checkpoint:
                    save_checkpoint(self._config.checkpoint, self._config, confirmed)
                problem = results.get(offset, f"no delivery report after {self._config.flush_timeout_s} s")
                raise ReplayError(
                    f"delivery of partition {partition} offset {offset} failed ({problem}; {remaining} undelivered);"
                    f" confirmed up to offset {confirmed.get(partition)} - rerun with the same checkpoint to resume"
                )
            self._count(progress, record)
            confirmed[partition] = offset
        if self._config.checkpoint:
            save_checkpoint(self._config.checkpoint, self._config, confirmed)

    @staticmethod
    def _count(progress: PartitionProgress, record: dict[str, Any]) -> None:
        progress.records += 1
        progress.bytes += len(record["key"] or b"") + len(record["value"] or b"")
        if progress.first_offset is None:
            progress.first_offset = record["offset"]
        progress.last_offset = record["offset"]


def _first_then(first: list[StoredObject], later: Callable[[], list[StoredObject]]) -> Callable[[], list[StoredObject]]:
    """A lister that returns ``first`` once (the listing already made), then calls ``later``."""
    pending = [first]

    def lister() -> list[StoredObject]:
        return pending.pop() if pending else later()

    return lister


def _confluent_producer(settings: dict[str, Any]) -> Any:
    from confluent_kafka import Producer  # imported here: only a real replay needs librdkafka

    return Producer(settings)


def _create_topic(producer: Any, settings: dict[str, Any], topic: str, partitions: int) -> None:
    from confluent_kafka.admin import AdminClient
    from confluent_kafka.cimpl import NewTopic

    admin = AdminClient(settings)
    for future in admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)]).values():
        future.result(timeout=30)
    producer.list_topics(topic, timeout=30)  # refresh the producer's metadata
