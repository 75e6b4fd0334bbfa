"""One batch, end to end: decode and encode into groups by partition path -> write to S3 -> dead-letter the rest.

Raw topics' records go from the event to their object's Avro blocks in one pass (``archiver.fused``), and each
object is uploaded as soon as it is complete, while the next ones are encoded; typed topics' records are decoded to
envelopes, typed (``archiver.values``), grouped and encoded after. The dead letters are sent while the objects
upload. The batch succeeds only when every record is either in an S3 object or in the dead-letter queue; any S3 or
SQS failure raises ``InfrastructureError`` (once every request of the batch has finished) so that the event source
retries the batch and commits no offset.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, wait
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from archiver.deadletter import DeadLetterQueue, dead_letters_for
from archiver.decoding import Envelope, RecordFailure
from archiver.encoding import container, encode_records
from archiver.errors import ArchiveWriteError, DeadLetterError, RecordError
from archiver.fused import PATH_KEYS, EncodedGroup, RawScan
from archiver.keys import archive_key
from archiver.parallel import RequestPool, parallel_requests, results
from archiver.partitioning import PartitionPath, build_partitioner
from archiver.settings import Settings
from archiver.writing import ArchiveObject, ArchiveWriter

if TYPE_CHECKING:
    from archiver.values.base import ValueSchema
    from archiver.values.factory import ClientFactory
    from archiver.values.stage import TypedValues

GroupKey = tuple[str, int, str]  # topic, partition, partition path


@dataclass
class PartitionRange:
    """What one topic-partition of the batch contributed to the archive."""

    first_offset: int
    last_offset: int
    records: int = 0


@dataclass
class BatchSummary:
    """The outcome of one invocation, for the log line, the metrics and the function's return value."""

    event_source: str
    records_received: int = 0
    records_archived: int = 0
    records_dead_lettered: int = 0
    # Records of this batch that objects written before (by an earlier try of a retried batch) already hold.
    records_already_archived: int = 0
    payload_bytes: int = 0
    bytes_written: int = 0
    keys_written: list[str] = field(default_factory=list)
    dead_letter_ids: list[str] = field(default_factory=list)
    dead_letter_payload_keys: list[str] = field(default_factory=list)
    partitions: dict[str, PartitionRange] = field(default_factory=dict)

    @property
    def objects_written(self) -> int:
        return len(self.keys_written)

    def as_dict(self) -> dict[str, Any]:
        return {
            "eventSource": self.event_source,
            "topics": sorted({name.rpartition("-")[0] for name in self.partitions}),
            "partitions": {
                name: {"firstOffset": span.first_offset, "lastOffset": span.last_offset, "records": span.records}
                for name, span in sorted(self.partitions.items())
            },
            "recordsReceived": self.records_received,
            "recordsArchived": self.records_archived,
            "recordsDeadLettered": self.records_dead_lettered,
            "recordsAlreadyArchived": self.records_already_archived,
            "payloadBytes": self.payload_bytes,
            "bytesWritten": self.bytes_written,
            "objectsWritten": self.objects_written,
            "keysWritten": self.keys_written,
            "deadLetterIds": self.dead_letter_ids,
            "deadLetterPayloadKeys": self.dead_letter_payload_keys,
        }


class Archiver:
    """Archives event batches with one configuration and the S3 and SQS clients it is given."""

    def __init__(
        self,
        settings: Settings,
        *,
        s3_client: Any,
        sqs_client: Any,
        value_clients: ClientFactory | None = None,
        parallel: int | None = None,
    ) -> None:
        self._settings = settings
        # Typed archives (docs/typed-archives.md); raw-only deployments never import that code.
        self._values: TypedValues | None = None
        if settings.typed_topics:
            from archiver.values.stage import TypedValues

            self._values = TypedValues(settings.typed_topics, clients=value_clients)
        self._partition_path = build_partitioner(settings)
        # One pool of request threads for the container's lifetime, shared by the object and dead-letter writes.
        self._pool = RequestPool(parallel or parallel_requests())
        self._writer = ArchiveWriter(
            s3_client,
            settings.archive_bucket,
            pool=self._pool,
            storage_class=settings.storage_class,
            tags=settings.tags,
        )
        self._dead_letters = DeadLetterQueue(
            sqs_client,
            s3_client,
            queue_url=settings.dead_letter_queue_url,
            bucket=settings.archive_bucket,
            pool=self._pool,
        )

    def archive(self, event: object) -> BatchSummary:
        now_ms = int(time.time() * 1000)
        scan = RawScan(
            event,
            partition_path=self._partition_path,
            path_key=PATH_KEYS.get(self._settings.partitioner),
            typed_topics=self._settings.typed_topics,
            codec=self._settings.codec,
            newest_limit=now_ms + FUTURE_TOLERANCE_MS,
            release_early_above=self._pool.max_workers,
        )  # EventError here, before anything is written
        uploads = _Uploads(self._writer, self._pool)
        try:
            # Raw topics: each object is uploaded as soon as its records are encoded, while the next are encoded.
            for group in scan.groups():
                uploads.add(self._group_object(group), partial(_run_of_group, group))
            batch = scan.batch
            if self._values is not None:
                self._values.decode_batch(batch)  # values that cannot be typed join batch.failures
            groups, placement_failures = group_by_path(batch.records, batch.delivered, self._partition_path)
            for group_key, records in groups.items():
                for run in self._runs(group_key, records):
                    uploads.add(self._encode(run), partial(_same, run))
            letters = dead_letters_for(batch, batch.failures + placement_failures)
            uploads.start(more_work=bool(letters))
            # The dead letters go out while the objects upload; the batch succeeds only if both do.
            dead_letter_error: DeadLetterError | None = None
            spilled: list[str] = []
            try:
                spilled = self._dead_letters.send_all(letters)
            except DeadLetterError as error:
                dead_letter_error = error
            first_round = uploads.results()
        finally:
            uploads.wait()  # whatever failed, no request of this batch runs on into the next
        objects, already_archived = self._settle(first_round)
        if dead_letter_error is not None:
            raise dead_letter_error

        summary = BatchSummary(
            event_source=batch.event_source,
            records_received=scan.records_received,
            records_dead_lettered=len(letters),
            records_already_archived=already_archived,
            payload_bytes=batch.payload_bytes,
            dead_letter_ids=[letter.record_id for letter in letters],
            dead_letter_payload_keys=spilled,
        )
        for item in objects:
            summary.records_archived += item.record_count
            summary.bytes_written += len(item.body)
            summary.keys_written.append(item.key)
            span = summary.partitions.setdefault(
                f"{item.topic}-{item.partition}", PartitionRange(item.first_offset, item.last_offset)
            )
            span.first_offset = min(span.first_offset, item.first_offset)
            span.last_offset = max(span.last_offset, item.last_offset)
            span.records += item.record_count
        return summary

    def _runs(self, group_key: GroupKey, records: list[Envelope]) -> list[Run]:
        if self._values is None or not self._values.is_typed(group_key[0]):
            return [Run(group_key, records)]
        # One schema per object: a writer-schema change inside the group starts a new object.
        return [Run(group_key, run, schema) for schema, run in self._values.runs(records)]

    def _settle(
        self, first_round: list[tuple[ArchiveObject, bool, Callable[[], Run]]]
    ) -> tuple[list[ArchiveObject], int]:
        """The objects created, and how many records objects written earlier already held: where a retried batch
        found a key taken, write only what that object lacks.

        Each round either creates a run's object or drops at least the run's first record (the object at the taken
        key is named by that offset and holds it), so the loop ends; an object that does not hold it is not ours,
        and raises.
        """
        created: list[ArchiveObject] = []
        already_archived = 0
        outcomes = first_round
        while outcomes:
            retry: list[Run] = []
            for item, made, run_of in outcomes:
                if made:
                    created.append(item)
                    continue
                body, held = self._writer.existing(item.key)
                if body == item.body:
                    # This very object: an earlier try wrote it, or S3 stored our PUT but its answer was lost and
                    # the SDK's retry of it found the key taken.
                    created.append(item)
                    continue
                if item.first_offset not in held:
                    raise ArchiveWriteError(
                        f"s3://{self._settings.archive_bucket}/{item.key} exists but does not hold offset "
                        f"{item.first_offset}: it was not written by this archiver; move it away"
                    )
                run = run_of()
                missing = [record for record in run.records if record["offset"] not in held]
                already_archived += len(run.records) - len(missing)
                if missing:
                    retry.append(Run(run.group_key, missing, run.schema))
            objects = [self._encode(run) for run in retry]
            made_all = self._writer.create_all(objects)
            outcomes = [
                (item, made, partial(_same, run)) for item, made, run in zip(objects, made_all, retry, strict=True)
            ]
        return created, already_archived

    def _group_object(self, group: EncodedGroup) -> ArchiveObject:
        """The object of a raw topic's group, its blocks already compressed."""
        key = archive_key(self._settings.archive_prefix, group.path, group.topic, group.partition, group.first_offset)
        return ArchiveObject(
            key=key,
            body=container(group.blocks, codec=self._settings.codec, key=key),
            topic=group.topic,
            partition=group.partition,
            first_offset=group.first_offset,
            last_offset=group.last_offset,
            record_count=group.records,
            codec=self._settings.codec,
            newest_timestamp=group.newest_or_none,
        )

    def _encode(self, run: Run) -> ArchiveObject:
        topic, partition, path = run.group_key
        records, schema = run.records, run.schema
        first, last = records[0]["offset"], records[-1]["offset"]
        fingerprint = None if schema is None else schema.fingerprint
        key = archive_key(self._settings.archive_prefix, path, topic, partition, first, fingerprint)
        if schema is None:
            body = encode_records(records, codec=self._settings.codec, key=key)
        else:
            body = schema.encode(records, codec=self._settings.codec, key=key)
        return ArchiveObject(
            key=key,
            body=body,
            topic=topic,
            partition=partition,
            first_offset=first,
            last_offset=last,
            record_count=len(records),
            codec=self._settings.codec,
            newest_timestamp=newest_timestamp(records, now_ms=int(time.time() * 1000)),
        )


class _Uploads:
    """The batch's object PUTs, each started on the request pool as soon as the next object is encoded.

    The latest object is held back: when nothing follows it (no other object, no dead letters to send), the
    caller's thread, which would only wait, puts it itself. A batch of one object and no dead letters therefore
    never touches the pool, as the small batches of a quiet topic do not need it.
    """

    def __init__(self, writer: ArchiveWriter, pool: RequestPool) -> None:
        self._writer = writer
        self._pool = pool
        self._held: tuple[ArchiveObject, Callable[[], Run]] | None = None
        # In the order the objects were added: the PUT's future, or (for the one put here) its outcome.
        self._puts: list[tuple[ArchiveObject, Future[bool] | bool, Callable[[], Run]]] = []

    def add(self, item: ArchiveObject, run_of: Callable[[], Run]) -> None:
        self.start(more_work=True)
        self._held = (item, run_of)

    def start(self, *, more_work: bool) -> None:
        """Start the held object: on the pool if more work follows on this thread, else here and now."""
        if self._held is None:
            return
        item, run_of = self._held
        self._held = None
        if more_work:
            self._puts.append((item, self._pool.submit(partial(self._writer.create, item)), run_of))
            return
        self._puts.append((item, False, run_of))  # a place in the order; the outcome replaces it below
        made = self._writer.create(item)  # raises as a PUT on the pool would; wait() still waits for those
        self._puts[-1] = (item, made, run_of)

    def results(self) -> list[tuple[ArchiveObject, bool, Callable[[], Run]]]:
        """Per object, whether this batch created it; raises the first failure once every PUT has finished."""
        futures = [outcome for _, outcome, _ in self._puts if isinstance(outcome, Future)]
        made = iter(results(futures))
        return [
            (item, next(made) if isinstance(outcome, Future) else outcome, run_of)
            for item, outcome, run_of in self._puts
        ]

    def wait(self) -> None:
        wait([outcome for _, outcome, _ in self._puts if isinstance(outcome, Future)])


def _run_of_group(group: EncodedGroup) -> Run:
    return Run((group.topic, group.partition, group.path), group.envelopes())


def _same(run: Run) -> Run:
    return run


@dataclass(frozen=True, slots=True)
class Run:
    """The records of one object: a group in offset order, and the writer schema of a typed topic's run."""

    group_key: GroupKey
    records: Sequence[Envelope]
    schema: ValueSchema | None = None


def group_by_path(
    records: Sequence[Envelope], delivered: Sequence[tuple[str, Any]], partition_path: PartitionPath
) -> tuple[dict[GroupKey, list[Envelope]], list[RecordFailure]]:
    """Group records by (topic, partition, path), each group in offset order; unplaceable records are failures
    (``delivered``: the delivered record behind each of ``records``, for the dead letter)."""
    groups: dict[GroupKey, list[Envelope]] = {}
    failures: list[RecordFailure] = []
    for record, (_, raw) in zip(records, delivered, strict=True):
        try:
            path = partition_path(record)
        except RecordError as error:
            failures.append(RecordFailure.of_envelope(error, record, raw))
            continue
        groups.setdefault((record["topic"], record["partition"], path), []).append(record)
    for group in groups.values():
        group.sort(key=_offset)  # AWS delivers each partition in order; sorting makes that a guarantee
    return groups, failures


def newest_timestamp(records: Sequence[Envelope], *, now_ms: int) -> int | None:
    """The newest record timestamp no later than ``now_ms`` + 5 minutes, or None.

    Freshness (the archive audit) is "now minus the newest archived timestamp"; a producer's clock running ahead,
    or garbage such as microseconds written as milliseconds, must not make a stalled archive look fresh.
    """
    limit = now_ms + FUTURE_TOLERANCE_MS
    return max((ts for record in records if 0 <= (ts := record["timestamp"]) <= limit), default=None)


FUTURE_TOLERANCE_MS = 5 * 60 * 1000


def _offset(record: Envelope) -> int:
    offset: int = record["offset"]
    return offset
