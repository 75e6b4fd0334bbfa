"""The implementations the benchmark compares, each from one invocation event to S3 PUT bodies in memory.

* ``ours``: ``archiver.pipeline.Archiver`` with in-memory S3 and SQS clients (the network is out of the picture).
* ``ours_envelope``: the same archiver with every record taking the general route: ``decode_record`` to an
  envelope dict, the partitioner, the envelope encoder -- the work the pipeline did per record before the fused
  pass (issue 14), for its measured gain. Byte-identical output.
* ``floor``: only the work no implementation can skip, all of it in C: ``a2b_base64`` of every key and value and
  compressing the decoded bytes with the codec in 1 MiB blocks. Its output is not Avro; it is the limit every ratio
  is read against (the headers' byte lists, 2-6% of the payload here, are left out of it, as in issue 14).
* ``fastavro_encode``: the library reference: ``fastavro.writer`` encoding records already decoded to envelope
  dicts (decoding not timed), with the archiver's block size.
* ``powertools_exact``: what a user would write who needs the exact bytes: a Powertools ``@kafka_consumer``
  handler reading ``original_key``, ``original_value`` and ``original_headers`` and decoding them by hand (base64,
  byte lists), then one ``fastavro.writer`` call per batch.
* ``powertools_lossy``: the same handler using Powertools' decoded ``key``, ``value`` and ``headers``. Labelled
  lossy: tombstones raise ``TypeError``, non-UTF-8 values ``UnicodeDecodeError``, an empty key becomes ``None`` and
  repeated header names collapse (``lossy_failures`` shows each); the benchmark data avoids all four.

Decode-only references (for the claim in ``archiver/decoding.py``): ``decode_event`` versus walking Powertools'
``KafkaEvent`` data class or ``ConsumerRecords`` into the same envelope dicts.
"""

from __future__ import annotations

import io
from base64 import b64decode
from binascii import a2b_base64
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, cast

import fastavro
from aws_lambda_powertools.utilities.data_classes import KafkaEvent
from aws_lambda_powertools.utilities.kafka import ConsumerRecords, kafka_consumer
from aws_lambda_powertools.utilities.typing import LambdaContext

from archiver import decoding, fused
from archiver.decoding import Envelope, decode_event
from archiver.encoding import ENVELOPE_SCHEMA, SYNC_INTERVAL, block_compressor
from archiver.pipeline import Archiver
from archiver.settings import Codec, Partitioner, Settings
from tests.kafka_events import kafka_event, kafka_record

BUCKET = "bench-archive"
QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/bench-dlq"
FIELD = "country"  # the field partitioner's field: 8 values in bench.data

Bodies = list[bytes]
Variant = Callable[[dict[str, Any]], Bodies]


class MemoryS3:
    """Just enough of an S3 client: keeps every PUT body, keyed like S3."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put_object(self, *, Bucket: str, Key: str, Body: bytes, **_: Any) -> dict[str, Any]:
        self.objects[Key] = Body
        return {}


class MemorySqs:
    """An SQS client that accepts every message (the benchmark batches have no poison records)."""

    def __init__(self) -> None:
        self.sent = 0

    def send_message_batch(self, *, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.sent += len(Entries)
        return {"Successful": [{"Id": entry["Id"]} for entry in Entries], "Failed": []}


def settings(codec: Codec, partitioner: Partitioner = "default") -> Settings:
    field = FIELD if partitioner == "field" else None
    return Settings(
        archive_bucket=BUCKET,
        dead_letter_queue_url=QUEUE_URL,
        codec=codec,
        partitioner=partitioner,
        partition_field=field,
    )


def ours(codec: Codec, partitioner: Partitioner = "default") -> Variant:
    """The archiver, built once (as at cold start); each call archives one event and returns the PUT bodies."""
    s3 = MemoryS3()
    archiver = Archiver(settings(codec, partitioner), s3_client=s3, sqs_client=MemorySqs())

    def run(event: dict[str, Any]) -> Bodies:
        s3.objects.clear()
        summary = archiver.archive(event)
        assert summary.records_dead_lettered == 0, "benchmark batches must archive cleanly"
        return [s3.objects[key] for key in sorted(s3.objects)]  # PUTs run in parallel: order them by key

    return run


@contextmanager
def _general_route_only() -> Iterator[None]:
    """Every record through the general route: no partitioner has a path key, so none takes the inline path."""
    saved = dict(fused.PATH_KEYS)
    fused.PATH_KEYS.clear()
    try:
        yield
    finally:
        fused.PATH_KEYS.update(saved)


def ours_envelope(codec: Codec, partitioner: Partitioner = "default") -> Variant:
    """``ours`` with every record decoded to an envelope dict and encoded from it, as before the fused pass."""
    run_ours = ours(codec, partitioner)

    def run(event: dict[str, Any]) -> Bodies:
        with _general_route_only():
            return run_ours(event)

    return run


def floor(codec: Codec) -> Callable[[dict[str, Any]], int]:
    """Base64 decoding plus compression of the decoded bytes: a lower bound, not an archiver (returns a size)."""
    compress = block_compressor(codec)

    def run(event: dict[str, Any]) -> int:
        payload = b"".join(decode_payload(event))
        return sum(
            len(compress(payload[start : start + SYNC_INTERVAL])) for start in range(0, len(payload), SYNC_INTERVAL)
        )

    return run


def decode_payload(event: dict[str, Any]) -> list[bytes]:
    """Every key and value of the event, base64-decoded in C: the floor's decoding."""
    return [
        a2b_base64(record[name]) for chunk in event["records"].values() for record in chunk for name in ("key", "value")
    ]


def fastavro_encode(codec: Codec, records: list[Envelope]) -> Callable[[], bytes]:
    """``fastavro.writer`` over already decoded envelope records, the archiver's block size: the library reference."""

    def run() -> bytes:
        buffer = io.BytesIO()
        fastavro.writer(buffer, ENVELOPE_SCHEMA, records, codec=codec, sync_interval=SYNC_INTERVAL)
        return buffer.getvalue()

    return run


def powertools_exact(codec: Codec) -> Variant:
    """What a user would write who needs the exact bytes: Powertools' ``@kafka_consumer``, the ``original_*``
    fields decoded by hand, a dict per record, one ``fastavro.writer`` call per batch (its default block size)."""
    s3 = MemoryS3()

    @kafka_consumer
    def handler(event: ConsumerRecords, context: LambdaContext) -> dict[str, int]:
        rows = [
            {
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
                "timestamp": record.timestamp,
                "timestamp_type": record.timestamp_type,
                "key": None if record.original_key is None else b64decode(record.original_key),
                "value": None if record.original_value is None else b64decode(record.original_value),
                "headers": [
                    {"key": name, "value": bytes(data)}
                    for pair in record.original_headers
                    for name, data in pair.items()
                ],
            }
            for record in event.records
        ]
        buffer = io.BytesIO()
        fastavro.writer(buffer, ENVELOPE_SCHEMA, rows, codec=codec)
        s3.put_object(Bucket=BUCKET, Key="exact.avro", Body=buffer.getvalue())
        return {"records": len(rows)}

    return _handler_variant(handler, s3)


def powertools_lossy(codec: Codec) -> Variant:
    """The same handler with Powertools' decoded ``key``, ``value`` and ``headers``: lossy (``lossy_failures``).

    ``ConsumerRecords`` decodes key and value to ``str`` (base64, then UTF-8), so the user encodes them back to bytes
    for Avro's ``bytes``. Its ``headers`` is a case-insensitive dict: names come out lower-cased and repeated names
    collapse. It keeps fastavro's default block size (16 KB), as a typical user would.
    """
    s3 = MemoryS3()

    @kafka_consumer
    def handler(event: ConsumerRecords, context: LambdaContext) -> dict[str, int]:
        rows = consumer_rows(event)
        buffer = io.BytesIO()
        fastavro.writer(buffer, ENVELOPE_SCHEMA, rows, codec=codec)
        s3.put_object(Bucket=BUCKET, Key="lossy.avro", Body=buffer.getvalue())
        return {"records": len(rows)}

    return _handler_variant(handler, s3)


def _handler_variant(handler: Callable[[dict[str, Any], LambdaContext], object], s3: MemoryS3) -> Variant:
    """A Lambda handler as a variant: each call runs it on one event and returns what it put."""

    def run(event: dict[str, Any]) -> Bodies:
        s3.objects.clear()
        handler(event, cast("LambdaContext", None))  # the handler never reads its context
        return list(s3.objects.values())

    return run


def lossy_failures() -> dict[str, str]:
    """What the lossy handler does with each kind of record it cannot keep exactly (run on one-record events)."""
    cases = {
        "tombstone": kafka_record("t", 0, 1, value=None),
        "non-UTF-8 value": kafka_record("t", 0, 2, value=b"\xff\xfe"),
        "empty key": kafka_record("t", 0, 3, key=b""),
        "repeated header names": kafka_record("t", 0, 4, headers=[("h", b"1"), ("h", b"2")]),
    }
    outcomes = {}
    for name, record in cases.items():
        exact = decoded_records(powertools_exact("null")(kafka_event([record])))
        try:
            lossy = decoded_records(powertools_lossy("null")(kafka_event([record])))
        except Exception as error:  # what the handler raises is the finding
            outcomes[name] = f"raises {type(error).__name__}"
            continue
        changed = [
            f"{field} {got!r} instead of {want!r}"
            for field, got, want in zip(("key", "value", "headers"), lossy[0][5:], exact[0][5:], strict=True)
            if got != want
        ]
        outcomes[name] = "; ".join(changed) or "exact"
    return outcomes


def decode_ours(event: dict[str, Any]) -> list[Envelope]:
    return decode_event(event).records


def decode_checked(event: dict[str, Any]) -> list[Envelope]:
    """Our decoder's checked path alone (a helper per field), without ``_decode_common``'s inline checks."""
    saved = decoding.decode_record
    decoding.decode_record = decoding._decode_checked
    try:
        return decode_event(event).records
    finally:
        decoding.decode_record = saved


def decode_kafka_event(event: dict[str, Any]) -> list[Envelope]:
    """The same envelope dicts through Powertools' ``KafkaEvent`` data class (no validation, as it does none)."""
    return [
        {
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "timestamp": record.timestamp,
            "timestamp_type": record.timestamp_type,
            "key": record.decoded_key,
            "value": record.decoded_value,
            "headers": [{"key": name, "value": bytes(data)} for pair in record.headers for name, data in pair.items()],
        }
        for record in KafkaEvent(event).records
    ]


def consumer_rows(records: ConsumerRecords) -> list[Envelope]:
    """A dict per record, the way a typical ``@kafka_consumer`` handler builds them (``naive``'s loop).

    ``ConsumerRecords`` decodes key and value to ``str``, so they are encoded back to bytes for Avro's ``bytes``.
    """
    envelopes: list[Envelope] = []
    for record in records.records:
        key, value = record.key, record.value
        envelopes.append(
            {
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
                "timestamp": record.timestamp,
                "timestamp_type": record.timestamp_type,
                "key": key.encode() if key is not None else None,
                "value": value.encode() if value is not None else None,
                "headers": [{"key": name, "value": data} for name, data in record.headers.items()],
            }
        )
    return envelopes


def decode_consumer_records(event: dict[str, Any]) -> list[Envelope]:
    """The same envelope dicts through the Kafka consumer utility's ``ConsumerRecords`` (what ``naive`` walks)."""
    return consumer_rows(ConsumerRecords(event))


def decoded_records(bodies: Bodies) -> list[tuple[Any, ...]]:
    """Every record of every Avro body, as comparable tuples in (topic, partition, offset) order."""
    rows: list[tuple[Any, ...]] = []
    for body in bodies:
        for record in fastavro.reader(io.BytesIO(body)):
            assert isinstance(record, dict)
            headers = tuple((header["key"], header["value"]) for header in record["headers"])
            rows.append(
                (
                    record["topic"],
                    record["partition"],
                    record["offset"],
                    record["timestamp"],
                    record["timestamp_type"],
                    record["key"],
                    record["value"],
                    headers,
                )
            )
    rows.sort(key=lambda row: (row[0], row[1], row[2]))
    return rows
