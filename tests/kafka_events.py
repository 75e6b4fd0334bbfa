"""Builders for Kafka ESM events shaped exactly like AWS's (see tests/events/*.json, from the AWS docs)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

EVENTS = Path(__file__).parent / "events"
MSK_ARN = "arn:aws:kafka:us-east-1:123456789012:cluster/demo-cluster-1/751d2973-a626-431c-9d4e-d7975eb44dd7-2"
BOOTSTRAP = "b-1.demo-cluster-1.a1bcde.c1.kafka.us-east-1.amazonaws.com:9098"
BASE_TIMESTAMP = 1_714_567_890_123  # 2024-05-01T12:51:30.123Z

_UNSET: Any = object()


def load_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return event


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def kafka_record(
    topic: str,
    partition: int,
    offset: int,
    *,
    value: bytes | None = _UNSET,
    key: bytes | None = _UNSET,
    headers: list[tuple[str, bytes]] | None = None,
    timestamp: int | None = None,
) -> dict[str, Any]:
    """One record as AWS delivers it. By default a small JSON order with a key."""
    if value is _UNSET:
        value = json.dumps({"order_id": offset, "country": "DE", "amount": offset * 10}).encode()
    if key is _UNSET:
        key = f"order-{offset}".encode()
    record: dict[str, Any] = {
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "timestamp": BASE_TIMESTAMP + offset * 1000 if timestamp is None else timestamp,
        "timestampType": "CREATE_TIME",
        "value": None if value is None else b64(value),
        "headers": [{name: list(data)} for name, data in (headers or [])],
    }
    if key is not None:
        record["key"] = b64(key)
    return record


def kafka_event(records: list[dict[str, Any]], *, source: str = "aws:kafka") -> dict[str, Any]:
    """Wrap records in an event, keyed "<topic>-<partition>" like AWS does."""
    by_partition: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_partition.setdefault(f"{record['topic']}-{record['partition']}", []).append(record)
    event: dict[str, Any] = {"eventSource": source, "bootstrapServers": BOOTSTRAP, "records": by_partition}
    if source == "aws:kafka":
        event["eventSourceArn"] = MSK_ARN
    return event
