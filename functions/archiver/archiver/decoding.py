"""AWS Kafka event (MSK ``aws:kafka`` or ``SelfManagedKafka``) -> envelope records ready for Avro.

Each good record becomes a dict shaped like the envelope schema, so encoding needs no second conversion.
Each bad record becomes a ``RecordFailure`` that keeps the record exactly as it arrived, for the dead-letter queue.

Why not Powertools: its Kafka consumer utility (``ConsumerRecords``, what ``@kafka_consumer`` hands a handler)
wraps every record in an object and runs a deserializer per field; the same records take 2.8 to 4.2 times as long
to decode through it as through the dict walk below with 100 B to 1 KB values, 1.6 times with 10 KB values. The
older ``KafkaEvent`` data class is lighter, 1.1 to 1.3 times the dict walk, which unlike either also validates
every field (measured in bench/, see docs/benchmarks.md). Its field names and semantics are what we follow.
"""

from __future__ import annotations

import binascii
import reprlib
from base64 import b64decode, b64encode
from binascii import a2b_base64
from dataclasses import dataclass, field
from typing import Any

from archiver.errors import EventError, RecordDecodeError, RecordError

MSK_SOURCE = "aws:kafka"
SELF_MANAGED_SOURCE = "SelfManagedKafka"
# AWS's developer guide shows "SelfManagedKafka"; Powertools' and other SDKs' sample events use
# "aws:SelfManagedKafka". Both describe the same event shape, so both are accepted.
SELF_MANAGED_SOURCE_ALIAS = "aws:SelfManagedKafka"
EVENT_SOURCES = (MSK_SOURCE, SELF_MANAGED_SOURCE, SELF_MANAGED_SOURCE_ALIAS)
MAX_PARTITION = 2**31 - 1  # Kafka partitions are int32
MAX_OFFSET = 2**63 - 1  # Kafka offsets are int64

Envelope = dict[str, Any]


@dataclass(frozen=True, slots=True)
class RecordFailure:
    """A record that cannot be archived, with the record exactly as the event carried it."""

    error: RecordError
    raw: object
    records_key: str  # the event's "<topic>-<partition>" map key, the only coordinates a broken record may have

    @classmethod
    def of_envelope(cls, error: RecordError, envelope: Envelope, raw: object = None) -> RecordFailure:
        """A record that decoded but failed later: ``raw`` as delivered if known, else rebuilt from its envelope."""
        return cls(
            error=error,
            raw=raw or to_event_record(envelope),
            records_key=f"{envelope['topic']}-{envelope['partition']}",
        )


@dataclass(slots=True)
class DecodedBatch:
    """Everything in one invocation event."""

    event_source: str
    event_source_arn: str | None
    bootstrap_servers: str | None
    records: list[Envelope] = field(default_factory=list)
    # The delivered record and its "<topic>-<partition>" map key behind each of ``records``, in the same order: what
    # a dead letter of a record that fails later (a typed value) must hold.
    delivered: list[tuple[str, Any]] = field(default_factory=list)
    failures: list[RecordFailure] = field(default_factory=list)
    payload_bytes: int = 0  # decoded key + value bytes of the good records

    def add(self, envelope: Envelope, records_key: str, raw: object) -> None:
        """A good record, and the delivered record it came from."""
        self.records.append(envelope)
        self.delivered.append((records_key, raw))
        self.payload_bytes += len(envelope["key"] or b"") + len(envelope["value"] or b"")


def decode_event(event: object) -> DecodedBatch:
    """Decode an ESM invocation event. Raises ``EventError`` if it is not a Kafka batch at all."""
    batch = start_batch(event)
    for records_key, raw_records in record_lists(event):
        for raw in raw_records:
            try:
                envelope = decode_record(raw)
            except RecordError as error:
                batch.failures.append(RecordFailure(error=error, raw=raw, records_key=records_key))
                continue
            batch.add(envelope, records_key, raw)
    return batch


def start_batch(event: object) -> DecodedBatch:
    """An empty batch for ``event``, once the event is known to be a Kafka batch: ``EventError`` otherwise.

    Every check that can fail the whole event runs here, before any record is looked at, so that nothing is
    written for an event that is then refused.
    """
    if not isinstance(event, dict):
        raise EventError(f"expected a Kafka event object, got {type(event).__name__}")
    source = event.get("eventSource")
    if source not in EVENT_SOURCES:
        raise EventError(f"eventSource must be one of {', '.join(EVENT_SOURCES)}; got {_short(source)}")
    records_by_partition = event.get("records")
    if not isinstance(records_by_partition, dict):
        raise EventError(
            f"'records' must be an object of '<topic>-<partition>' to lists, got {_short(records_by_partition)}"
        )
    if source == MSK_SOURCE and not isinstance(event.get("eventSourceArn"), str):
        raise EventError("an aws:kafka event must carry its MSK cluster ARN in 'eventSourceArn'")
    for records_key, raw_records in records_by_partition.items():
        if type(records_key) is not str:  # JSON object keys always are; anything else was not an event at all
            raise EventError(f"'records' keys must be '<topic>-<partition>' strings, got {type(records_key).__name__}")
        if not isinstance(raw_records, list):
            raise EventError(
                f"records[{_short(records_key)}] must be a list of records, got {type(raw_records).__name__}"
            )
    return DecodedBatch(
        event_source=source,
        event_source_arn=event.get("eventSourceArn"),
        bootstrap_servers=event.get("bootstrapServers"),
    )


def record_lists(event: object) -> list[tuple[str, list[Any]]]:
    """The event's ``(map key, records)`` pairs, in delivery order (``start_batch`` has checked their types)."""
    assert isinstance(event, dict)
    return list(event["records"].items())


def decode_record(raw: object) -> Envelope:
    """One event record -> envelope dict. Raises ``RecordDecodeError`` naming the first bad field."""
    envelope = _decode_common(raw)
    return envelope if envelope is not None else _decode_checked(raw)


def _decode_common(raw: object) -> Envelope | None:
    """The record as AWS normally sends it, checked inline; None for anything else, which ``_decode_checked`` handles.

    Same rules as ``_decode_checked``, without a function call per field: the checked path alone takes 1.4 times as
    long on a 10,000-record batch of 100 B values (bench/, docs/benchmarks.md). Anything unusual (a missing
    timestamp type, a non-ASCII topic, bad base64, a null header value, ...) goes the checked way, which names the
    problem or accepts the record.
    """
    if type(raw) is not dict:
        return None
    topic = raw.get("topic")
    partition = raw.get("partition")
    offset = raw.get("offset")
    timestamp = raw.get("timestamp")
    timestamp_type = raw.get("timestampType")
    key = raw.get("key")
    value = raw.get("value")
    headers = raw.get("headers")
    if not (
        type(topic) is str
        and topic
        and topic.isascii()
        and type(partition) is int
        and 0 <= partition <= MAX_PARTITION
        and type(offset) is int
        and 0 <= offset <= MAX_OFFSET
        and type(timestamp) is int
        and -MAX_OFFSET <= timestamp <= MAX_OFFSET
        and type(timestamp_type) is str
        and timestamp_type.isascii()
        and (key is None or type(key) is str)
        and (value is None or type(value) is str)
        and type(headers) is list
    ):
        return None
    try:
        return {
            "topic": topic,
            "partition": partition,
            "offset": offset,
            "timestamp": timestamp,
            "timestamp_type": timestamp_type,
            # b64decode(text, validate=True) is exactly this call on Python >= 3.11, minus a copy of the text and a
            # Python-level function call per field.
            "key": None if key is None else a2b_base64(key, strict_mode=True),
            "value": None if value is None else a2b_base64(value, strict_mode=True),
            "headers": [_header_common(entry) for entry in headers],
        }
    except (binascii.Error, ValueError, TypeError, RecordError):
        return None  # let the checked path say exactly what is wrong


def _header_common(entry: object) -> Envelope:
    """``{name: [byte ints]}`` with an ASCII name; raises ``TypeError`` for anything else (checked path decides)."""
    if type(entry) is not dict or len(entry) != 1:
        raise TypeError
    ((name, value),) = entry.items()
    if type(name) is not str or not name.isascii() or type(value) is not list:
        raise TypeError
    data = bytes(value)  # ValueError or TypeError unless every item is an int 0-255 (or a bool, see below)
    if (0 in data or 1 in data) and _has_bool(value):
        raise TypeError
    return {"key": name, "value": data}


def _has_bool(items: list[Any]) -> bool:
    """``bytes()`` takes JSON's true and false for 1 and 0; the record did not deliver those bytes.

    Only a value holding a 0 or 1 byte can contain one, so text headers (trace ids, content types) skip this walk.
    """
    return bool in map(type, items)


def _decode_checked(raw: object) -> Envelope:
    if not isinstance(raw, dict):
        raise RecordDecodeError(f"record must be an object, got {type(raw).__name__}")
    return {
        "topic": _text(raw, "topic", required=True),
        "partition": _integer(raw, "partition", MAX_PARTITION),
        "offset": _integer(raw, "offset", MAX_OFFSET),
        "timestamp": _timestamp(raw),
        "timestamp_type": _text(raw, "timestampType", required=False),
        "key": _base64(raw, "key"),
        "value": _base64(raw, "value"),
        "headers": _headers(raw.get("headers")),
    }


def _text(raw: dict[str, Any], name: str, *, required: bool) -> str:
    value = raw.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise RecordDecodeError(f"'{name}' must be a non-empty string, got {_short(value)}")
    _check_utf8(value, name)
    return value


def _integer(raw: dict[str, Any], name: str, maximum: int) -> int:
    value = raw.get(name)
    # bool is an int subclass; a JSON true is never a valid partition or offset.
    if type(value) is not int or not 0 <= value <= maximum:
        raise RecordDecodeError(f"'{name}' must be an integer from 0 to {maximum}, got {_short(value)}")
    return value


def _timestamp(raw: dict[str, Any]) -> int:
    value = raw.get("timestamp")
    # -1 is what Kafka reports for NO_TIMESTAMP_TYPE; anything outside int64 cannot be stored.
    if type(value) is not int or not -MAX_OFFSET <= value <= MAX_OFFSET:
        raise RecordDecodeError(f"'timestamp' must be integer milliseconds since the epoch, got {_short(value)}")
    return value


def _base64(raw: dict[str, Any], name: str) -> bytes | None:
    value = raw.get(name)
    if value is None:
        return None  # absent key, or a tombstone value: both are kept as null
    if not isinstance(value, str):
        raise RecordDecodeError(f"'{name}' must be a base64 string or null, got {type(value).__name__}")
    try:
        return b64decode(value, validate=True)
    except (binascii.Error, ValueError) as error:
        raise RecordDecodeError(f"'{name}' is not valid base64: {error}") from error


def _headers(raw_headers: object) -> list[Envelope]:
    """AWS sends headers as ``[{name: [byte ints]}, ...]``; order and repeated names are kept."""
    if raw_headers is None:
        return []
    if not isinstance(raw_headers, list):
        raise RecordDecodeError(f"'headers' must be a list, got {type(raw_headers).__name__}")
    headers = []
    for position, entry in enumerate(raw_headers):
        if not isinstance(entry, dict) or len(entry) != 1:
            raise RecordDecodeError(
                f"headers[{position}] must be an object with exactly one entry, got {_short(entry)}"
            )
        ((name, value),) = entry.items()
        if not isinstance(name, str):
            raise RecordDecodeError(f"headers[{position}] name must be a string, got {type(name).__name__}")
        _check_utf8(name, f"headers[{position}] name")
        headers.append({"key": name, "value": _header_value(value, position)})
    return headers


def _header_value(value: object, position: int) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, list):
        try:
            data = bytes(value)
        except (TypeError, ValueError) as error:
            raise RecordDecodeError(f"headers[{position}] value must be a list of byte values 0-255") from error
        if _has_bool(value):
            raise RecordDecodeError(f"headers[{position}] value must be a list of byte values 0-255, not booleans")
        return data
    # Never bytes(value) on anything else: bytes(3) is three invented zero bytes, bytes(2**31) allocates 2 GiB.
    raise RecordDecodeError(f"headers[{position}] value must be a list of byte values, got {type(value).__name__}")


def _check_utf8(text: str, name: str) -> None:
    # JSON allows lone surrogates (\ud800) that Avro strings cannot hold. ASCII, the common case, is checked fast.
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise RecordDecodeError(f"'{name}' is not valid Unicode text") from error


# Error messages quote what arrived, cut short: a record field may be megabytes long or nested thousands deep.
_QUOTE = reprlib.Repr(maxlevel=2, maxstring=80, maxlong=80, maxother=80, maxlist=6, maxdict=6)


def _short(value: object) -> str:
    """A bounded ``repr`` of a delivered value, for error messages."""
    try:
        return _QUOTE.repr(value)
    except (ValueError, RecursionError):  # an int with more digits than Python prints, or a pathological nesting
        return f"<{type(value).__name__}>"


def to_event_record(envelope: Envelope) -> dict[str, Any]:
    """The inverse of ``decode_record``: an envelope back in the shape AWS delivers (base64, byte-int headers)."""
    return {
        "topic": envelope["topic"],
        "partition": envelope["partition"],
        "offset": envelope["offset"],
        "timestamp": envelope["timestamp"],
        "timestampType": envelope["timestamp_type"],
        "key": _base64_text(envelope["key"]),
        "value": _base64_text(envelope["value"]),
        "headers": [
            {header["key"]: None if header["value"] is None else list(header["value"])}
            for header in envelope["headers"]
        ],
    }


def _base64_text(data: bytes | None) -> str | None:
    return None if data is None else b64encode(data).decode("ascii")
