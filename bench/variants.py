"""The implementations the benchmark compares, each from one invocation event to S3 PUT bodies in memory.

* ``ours``: ``archiver.pipeline.Archiver`` with in-memory S3 and SQS clients (the network is out of the picture).
* ``ours_before``: the same archiver with the hot path as it was before the optimisations measured here (checked
  decoder helpers for every record, ``fastavro.writer`` for every object), for the gain.
* ``raw``: the raw limit: base64-decode every key and value, then one plain ``fastavro.writer`` call over the
  envelope records. No validation, no grouping, no keys: the least work that produces the same records.
* ``floor``: only the work no implementation can skip, all of it in C: base64-decoding every key and value and
  compressing the decoded bytes with the codec in 1 MiB blocks. Its output is not Avro; it bounds what any
  Python handler can reach, and so what ratio over ``naive`` is possible at all.
* ``naive``: what a typical user writes: a Powertools ``@kafka_consumer`` handler that builds a dict per record
  from ``ConsumerRecords`` and calls ``fastavro.writer`` once per batch.

Decode-only references (for the claim in ``archiver/decoding.py``): ``decode_event`` versus walking Powertools'
``KafkaEvent`` data class into the same envelope dicts.
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

from archiver import decoding, encoding, pipeline
from archiver.decoding import Envelope, decode_event
from archiver.encoding import ENVELOPE_SCHEMA, SYNC_INTERVAL, block_compressor
from archiver.pipeline import Archiver
from archiver.settings import Codec, Partitioner, Settings

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
def _original_hot_path() -> Iterator[None]:
    """Swap in the hot path as it was before the measured optimisations: every record through the checked decoder's
    per-field helpers, every object through the general ``fastavro.writer``. The output is byte-identical."""
    saved = decoding.decode_record, pipeline.__dict__["encode_records"]
    decoding.decode_record = decoding._decode_checked
    setattr(pipeline, "encode_records", encoding.fastavro_encode_records)  # noqa: B010 -- not re-exported
    try:
        yield
    finally:
        decoding.decode_record = saved[0]
        setattr(pipeline, "encode_records", saved[1])  # noqa: B010


def ours_before(codec: Codec, partitioner: Partitioner = "default") -> Variant:
    """``ours`` with the hot path as it was before this benchmark's optimisations (for their measured gain)."""
    run_ours = ours(codec, partitioner)

    def run(event: dict[str, Any]) -> Bodies:
        with _original_hot_path():
            return run_ours(event)

    return run


def raw(codec: Codec) -> Variant:
    """The raw limit: base64 decoding plus one plain fastavro.writer call of the same envelope records."""

    def run(event: dict[str, Any]) -> Bodies:
        records = [
            {
                "topic": record["topic"],
                "partition": record["partition"],
                "offset": record["offset"],
                "timestamp": record["timestamp"],
                "timestamp_type": record["timestampType"],
                "key": None if record.get("key") is None else b64decode(record["key"]),
                "value": None if record["value"] is None else b64decode(record["value"]),
                "headers": [
                    {"key": name, "value": bytes(data)} for pair in record["headers"] for name, data in pair.items()
                ],
            }
            for chunk in event["records"].values()
            for record in chunk
        ]
        buffer = io.BytesIO()
        # The archiver's block size, so that both write the same container layout (fastavro's default is 16 KB).
        fastavro.writer(buffer, ENVELOPE_SCHEMA, records, codec=codec, sync_interval=SYNC_INTERVAL)
        return [buffer.getvalue()]

    return run


def floor(codec: Codec) -> Callable[[dict[str, Any]], int]:
    """Base64 decoding plus compression of the decoded bytes: a lower bound, not an archiver (returns a size)."""
    compress = block_compressor(codec)

    def run(event: dict[str, Any]) -> int:
        payload = b"".join(
            [
                a2b_base64(record[name])
                for chunk in event["records"].values()
                for record in chunk
                for name in ("key", "value")
            ]
        )
        return sum(
            len(compress(payload[start : start + SYNC_INTERVAL])) for start in range(0, len(payload), SYNC_INTERVAL)
        )

    return run


def naive(codec: Codec) -> Variant:
    """A typical user's handler: Powertools' Kafka consumer decorator, a dict per record, fastavro.writer.

    It keeps fastavro's default block size (16 KB), as a typical user would; its files are therefore somewhat larger
    than the archiver's (results.json has the sizes).

    ``ConsumerRecords`` decodes key and value to ``str`` (base64, then UTF-8) by default, so the user encodes them
    back to bytes for Avro's ``bytes``. Its ``headers`` is a case-insensitive dict: names come out lower-cased and
    repeated names collapse, which the benchmark data (one lower-case header) does not exercise.
    """
    s3 = MemoryS3()

    @kafka_consumer
    def handler(event: ConsumerRecords, context: LambdaContext) -> dict[str, int]:
        rows = consumer_rows(event)
        buffer = io.BytesIO()
        fastavro.writer(buffer, ENVELOPE_SCHEMA, rows, codec=codec)
        s3.put_object(Bucket=BUCKET, Key=f"naive/{rows[0]['topic']}/{rows[0]['offset']}.avro", Body=buffer.getvalue())
        return {"records": len(rows)}

    def run(event: dict[str, Any]) -> Bodies:
        s3.objects.clear()
        handler(event, cast("LambdaContext", None))  # the handler never reads its context
        return list(s3.objects.values())

    return run


def decode_ours(event: dict[str, Any]) -> list[Envelope]:
    return decode_event(event).records


def decode_checked(event: dict[str, Any]) -> list[Envelope]:
    """Our decoder as it was before the inline fast path: per-field helper functions for every record."""
    with _original_hot_path():
        return decode_event(event).records


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
