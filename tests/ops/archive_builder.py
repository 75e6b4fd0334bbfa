"""A real archive, written by the pipeline itself: many small Lambda invocations against (moto) S3."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from archive_ops.archive_index import fetch, list_archive, read_envelopes
from tests.kafka_events import kafka_event, kafka_record
from tests.unit.aws_fakes import BUCKET, FakeAws, make_archiver

COUNTRIES = ("DE", "FR", "IT")
Coordinates = tuple[str, int, int]


def varied_record(topic: str, partition: int, offset: int) -> dict[str, Any]:
    """Records that exercise every envelope field: null keys, tombstones, repeated and null-valued headers."""
    value: bytes | None = json.dumps(
        {"order_id": offset, "country": COUNTRIES[offset % len(COUNTRIES)], "note": "x" * (offset % 50)}
    ).encode()
    if offset % 11 == 5:
        value = None  # tombstone
    key = None if offset % 7 == 3 else f"order-{offset}".encode()
    headers = [("trace", f"t-{offset}".encode()), ("trace", b"")] if offset % 2 else []
    return kafka_record(topic, partition, offset, value=value, key=key, headers=headers)


def archive_batches(
    aws: FakeAws,
    *,
    topic: str = "orders",
    partitions: Iterable[int] = (0, 1),
    batches: int = 10,
    batch_size: int = 20,
    start: int = 0,
    **settings: Any,
) -> list[str]:
    """Run the Archiver on ``batches`` consecutive invocations per partition; returns the keys it wrote."""
    archiver = make_archiver(aws, **settings)
    keys: list[str] = []
    for batch in range(batches):
        first = start + batch * batch_size
        records = [
            varied_record(topic, partition, offset)
            for partition in partitions
            for offset in range(first, first + batch_size)
        ]
        keys += archiver.archive(kafka_event(records)).keys_written
    return keys


def archived_records(aws: FakeAws, prefix: str = "topics/") -> tuple[dict[Coordinates, dict[str, Any]], int]:
    """Every archived record by (topic, partition, offset), and the most copies any one of them has."""
    by_offset: dict[Coordinates, dict[str, Any]] = {}
    copies: dict[Coordinates, int] = {}
    for item in list_archive(aws.s3, BUCKET, prefix):
        fetched = fetch(aws.s3, BUCKET, item.key)
        assert fetched is not None
        for record in read_envelopes(fetched.body):
            coordinates = (record["topic"], record["partition"], record["offset"])
            by_offset[coordinates] = record
            copies[coordinates] = copies.get(coordinates, 0) + 1
    return by_offset, max(copies.values(), default=0)
