"""AWS's Kafka event-source-mapping payloads, built exactly as the poller builds them. Pure functions, no I/O.

Shapes (AWS Lambda Developer Guide: "Using Lambda with Amazon MSK", "... self-managed Apache Kafka", and
"Capturing discarded batches for Amazon MSK and self-managed Apache Kafka event sources"):

* MSK: ``{"eventSource": "aws:kafka", "eventSourceArn": <cluster ARN>, "bootstrapServers": "h1:9092,h2:9092",
  "records": {"<topic>-<partition>": [record, ...]}}``
* self-managed: ``{"eventSource": "SelfManagedKafka", "bootstrapServers": "...", "records": {...}}``
* record: ``{"topic", "partition", "offset", "timestamp", "timestampType", "key" (base64), "value" (base64),
  "headers": [{"<name>": [byte, ...]}]}``. A null key or a null value (a tombstone) is left out, which is what
  real events carry (aws-powertools/powertools-lambda-typescript#5016); ``tombstones="null"`` sends ``null`` instead.
* on-failure record for an SQS/SNS destination: ``requestContext``, ``responseContext``, ``version``, ``timestamp``,
  ``KafkaBatchInfo`` with ``recordsInfo`` per ``"<topic>-<partition>"`` (first/last offset as strings and ISO
  timestamps). ``condition`` is ``RetryAttemptsExhausted`` or ``MaximumPayloadSizeExceeded``.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

EventFormat = Literal["msk", "self-managed"]
TombstoneFormat = Literal["omit", "null"]

# The synchronous invocation payload limit caps an event-source-mapping batch (API_EventSourceMappingConfiguration:
# "up to the payload limit for synchronous invocation (6 MB)"). 6 MB = 6 * 1024 * 1024 bytes.
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
TIMESTAMP_TYPES = {0: "NO_TIMESTAMP_TYPE", 1: "CREATE_TIME", 2: "LOG_APPEND_TIME"}
# A record value that is not valid base64: the ESM never sends one, so this exists only for the test hook below.
MALFORMED_VALUE = "!!not-base64: injected by the emulator's --poison-header test hook!!"


@dataclass(frozen=True)
class KafkaRecord:
    """One consumed record, as the broker returned it."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    timestamp_type: str = "CREATE_TIME"
    key: bytes | None = None
    value: bytes | None = None
    headers: tuple[tuple[str, bytes | None], ...] = ()

    @property
    def partition_key(self) -> str:
        return f"{self.topic}-{self.partition}"

    def header(self, name: str) -> bytes | None:
        for header_name, value in self.headers:
            if header_name == name:
                return value
        return None


@dataclass(frozen=True)
class EventSource:
    """Which AWS event the emulator imitates and what it says about the cluster."""

    format: EventFormat = "self-managed"
    bootstrap_servers: str = ""
    cluster_arn: str = "arn:aws:kafka:us-east-1:000000000000:cluster/local/00000000-0000-0000-0000-000000000000-1"
    tombstones: TombstoneFormat = "omit"
    poison_header: str | None = None  # test hook: records carrying this header are sent with a malformed value


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def record_json(record: KafkaRecord, source: EventSource) -> dict[str, Any]:
    """One record in the event's ``records`` map, field for field as AWS sends it."""
    body: dict[str, Any] = {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "timestamp": record.timestamp,
        "timestampType": record.timestamp_type,
    }
    if record.key is not None:
        body["key"] = _b64(record.key)
    if record.value is not None:
        body["value"] = _b64(record.value)
    elif source.tombstones == "null":
        body["value"] = None
    body["headers"] = [{name: list(value or b"")} for name, value in record.headers]
    if source.poison_header and record.header(source.poison_header) is not None:
        body["value"] = MALFORMED_VALUE
    return body


def build_event(records: Sequence[KafkaRecord], source: EventSource) -> dict[str, Any]:
    """The invocation event for a batch. Records keep their order within each ``<topic>-<partition>`` list."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        grouped.setdefault(record.partition_key, []).append(record_json(record, source))
    if source.format == "msk":
        return {
            "eventSource": "aws:kafka",
            "eventSourceArn": source.cluster_arn,
            "bootstrapServers": source.bootstrap_servers,
            "records": grouped,
        }
    return {"eventSource": "SelfManagedKafka", "bootstrapServers": source.bootstrap_servers, "records": grouped}


def encode_event(event: dict[str, Any]) -> bytes:
    return json.dumps(event, separators=(",", ":")).encode()


def record_size(record: KafkaRecord, source: EventSource) -> int:
    """Bytes the record adds to the JSON payload (plus a comma), to keep batches under ``MAX_PAYLOAD_BYTES``."""
    return len(json.dumps(record_json(record, source), separators=(",", ":"))) + 1


EVENT_OVERHEAD_BYTES = 512  # envelope, ARNs and "<topic>-<partition>" keys: generous, so the cap is never crossed


@dataclass
class Batch:
    """Records collected for one invocation, and how big their event will be."""

    records: list[KafkaRecord] = field(default_factory=list)
    size: int = EVENT_OVERHEAD_BYTES

    def fits(self, extra: int, max_records: int, max_bytes: int = MAX_PAYLOAD_BYTES) -> bool:
        return len(self.records) < max_records and self.size + extra <= max_bytes

    def add(self, record: KafkaRecord, size: int) -> None:
        self.records.append(record)
        self.size += size + len(record.partition_key) + 8

    def __len__(self) -> int:
        return len(self.records)


def iso_millis(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{epoch_ms % 1000:03d}Z"


def records_info(records: Iterable[KafkaRecord]) -> dict[str, dict[str, str]]:
    """``KafkaBatchInfo.recordsInfo``: first/last offset and timestamp per ``<topic>-<partition>``."""
    info: dict[str, dict[str, str]] = {}
    for record in records:
        entry = info.get(record.partition_key)
        if entry is None:
            info[record.partition_key] = {
                "firstRecordOffset": str(record.offset),
                "lastRecordOffset": str(record.offset),
                "firstRecordTimestamp": iso_millis(record.timestamp),
                "lastRecordTimestamp": iso_millis(record.timestamp),
            }
        else:
            entry["lastRecordOffset"] = str(record.offset)
            entry["lastRecordTimestamp"] = iso_millis(record.timestamp)
    return info


def on_failure_record(
    records: Sequence[KafkaRecord],
    source: EventSource,
    *,
    function_arn: str,
    condition: Literal["RetryAttemptsExhausted", "MaximumPayloadSizeExceeded"],
    invoke_count: int,
    payload_size: int,
    function_error: str | None = "Unhandled",
    status_code: int = 200,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The JSON document AWS sends to an SQS or SNS on-failure destination for a discarded Kafka batch."""
    stamp = now or datetime.now(tz=UTC)
    batch_info: dict[str, Any] = {"batchSize": len(records)}
    if source.format == "msk":
        batch_info["eventSourceArn"] = source.cluster_arn
    batch_info.update(
        {
            "bootstrapServers": source.bootstrap_servers,
            "payloadSize": payload_size,
            "recordsInfo": records_info(records),
        }
    )
    response_context = (
        None
        if condition == "MaximumPayloadSizeExceeded"
        else {"statusCode": status_code, "executedVersion": "$LATEST", "functionError": function_error}
    )
    return {
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": function_arn,
            "condition": condition,
            "approximateInvokeCount": invoke_count,
        },
        "responseContext": response_context,
        "version": "1.0",
        "timestamp": stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z",
        "KafkaBatchInfo": batch_info,
    }
