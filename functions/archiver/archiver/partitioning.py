"""Record -> partition path under the archive prefix: the encoded topic, then the layout's segments in order.

The layout (``archiver.layout``) composes segments from a field of the value (a nested path, in JSON values and in
the decoded values of Avro topics), a header, the key (its value or a hash bucket), the Kafka partition and a time
(the record timestamp, or a field), e.g. ``orders/country=DE/year=2026/month=11/day=29``. The named partitioners
are presets of it and give the paths they always gave:

* ``default``: ``<topic>/partition=<p>``
* ``time``:    ``<topic>/<pattern of the record timestamp>``, e.g. ``orders/year=2024/month=05/day=01/hour=13``
* ``field``:   ``<topic>/<field>=<value of a field of a JSON value>``

What a segment cannot find goes to Hive's NULL partition (``__HIVE_DEFAULT_PARTITION__``) and the record is archived
like any other: a tombstone, a value that is not a JSON object (or nests deeper than ``MAX_FIELD_NESTING``), a
missing field or a null one, a missing header or one without a value, a record without a key, and a time outside
the calendar (years 1 to 9999 in the pattern's zone). Only a value that is there but cannot be what its segment
needs rejects a record: a time field holding neither epoch milliseconds nor ISO-8601 text raises
``PartitionValueError`` and the record is dead-lettered (reason ``unpartitionable-record``), because its time is not
"unknown", it is wrong, and a NULL partition would hide the producer's bug.

Paths are built from hostile input (topic names from the event, values, keys and headers from records), so every
value goes through ``encode_segment``: the result only ever contains ``A-Z a-z 0-9 _ - . % ~ =`` and can never be
empty, ``.``, ``..`` or contain ``/``. It therefore cannot escape the prefix or make an invalid S3 key. Labels (the
text before ``=``) are checked at configuration time to need no encoding.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from archiver.decoding import MAX_PARTITION, Envelope
from archiver.errors import PartitionValueError
from archiver.jsontext import load_json
from archiver.layout import (
    FieldSegment,
    HeaderSegment,
    KeySegment,
    PartitionSegment,
    Segment,
    TimeSegment,
)
from archiver.settings import MAX_TIME_PATTERN_LENGTH, Settings
from archiver.values.base import TYPED_VALUE

# How deep a JSON value may nest for the field partitioner to read it; deeper ones go to the NULL partition. It
# only needs json.loads to finish, so it allows more than typed values do (jsontext.MAX_NESTING), and it stays far
# below json's own RecursionError (about 10,000 levels, fewer the deeper its caller), so where a record lands never
# depends on the call stack. Values with fewer brackets than this are never scanned at all.
MAX_FIELD_NESTING = 1_000
# Hive and Athena read this name as the NULL partition.
NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"
# Encoded values longer than this are cut and suffixed with a hash of the whole value, so they stay distinct.
MAX_SEGMENT_LENGTH = 96
# Legal Kafka topic names (at most 249 of A-Z a-z 0-9 . _ -) encode to themselves and are never cut.
MAX_TOPIC_SEGMENT_LENGTH = 255
_KEEP_PREFIX = 64
_SAFE_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.")

PartitionPath = Callable[[Envelope], str]


def encode_segment(text: str | bytes, max_length: int = MAX_SEGMENT_LENGTH) -> str:
    """Percent-encode ``text`` into one safe path segment (UTF-8; lone surrogates kept via surrogatepass; bytes, such
    as keys and header values, as they are)."""
    raw = text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass")
    # Past max_length + 1 bytes the encoding is cut anyway and only its first _KEEP_PREFIX characters are kept, so a
    # megabyte-long field value costs one hash, not a Python step per byte.
    encoded = "".join(chr(b) if b in _SAFE_BYTES else f"%{b:02X}" for b in raw[: max_length + 1])
    if encoded in ("", ".", ".."):
        # Empty and dot segments would vanish or climb in any tool that normalises paths.
        encoded = "%2E" * len(encoded) if encoded else NULL_PARTITION
    if len(encoded) > max_length:
        digest = hashlib.sha256(raw).hexdigest()[:16]
        head = encoded[:_KEEP_PREFIX]
        head = head[: head.rfind("%")] if "%" in head[-2:] else head  # never cut an escape in half
        encoded = f"{head}~{digest}"
    return encoded


def encode_topic(topic: str) -> str:
    """A topic name as a path segment: unchanged when it is a legal Kafka name, safely encoded otherwise."""
    return encode_segment(topic, MAX_TOPIC_SEGMENT_LENGTH)


def build_partitioner(settings: Settings) -> PartitionPath:
    """The partition-path function of ``settings``' layout (its segments, or the preset its partitioner names)."""
    avro_topics = frozenset(topic for topic, item in settings.typed_topics.items() if item.format.startswith("avro"))
    return compose(settings.segments, avro_topics=avro_topics)


def compose(segments: Sequence[Segment], *, avro_topics: frozenset[str] = frozenset()) -> PartitionPath:
    """``<topic>/<segment>/...`` for these segments. Fields of ``avro_topics`` are read from their decoded values."""
    if len(segments) == 1:
        # The presets' paths, on their own fast paths (what most deployments run).
        (only,) = segments
        if only == PartitionSegment():
            return _default_partitioner
        if isinstance(only, TimeSegment) and only.field is None:
            return _time_partitioner(only.pattern, only.zone)
        if isinstance(only, FieldSegment):
            return _field_partitioner(only, avro_topics)
    renderers = [_renderer(segment) for segment in segments]
    reads_value = any(isinstance(s, FieldSegment) or (isinstance(s, TimeSegment) and s.field) for s in segments)

    def path(record: Envelope) -> str:
        document = value_document(record, record["topic"] in avro_topics) if reads_value else _ABSENT
        return "/".join([_topic_segment(record["topic"]), *(render(record, document) for render in renderers)])

    return path


def _field_partitioner(segment: FieldSegment, avro_topics: frozenset[str]) -> PartitionPath:
    label, path = segment.label, segment.field_path

    def partition_path(record: Envelope) -> str:
        document = value_document(record, record["topic"] in avro_topics)
        return f"{_topic_segment(record['topic'])}/{label}={encode_segment(segment_text(lookup(document, path)))}"

    return partition_path


# A segment renders one record, given its value document (read once per record for all segments).
_Renderer = Callable[[Envelope, Any], str]
_ABSENT: Any = object()  # no value document: a tombstone, or a value that is not a JSON object


def value_document(record: Envelope, avro: bool) -> Any:
    """The object fields are read from: an Avro topic's decoded value, else the value parsed as JSON (bounded)."""
    if avro:
        typed = record.get(TYPED_VALUE)
        return typed if isinstance(typed, dict) else _ABSENT  # fastavro reads records as dicts
    value = record["value"]
    if value is None:
        return _ABSENT
    try:
        document = load_json(value, max_nesting=MAX_FIELD_NESTING)
    except ValueError:  # not JSON, not text, too deep, or an integer with more digits than Python reads
        return _ABSENT
    return document if isinstance(document, dict) else _ABSENT


def lookup(document: Any, path: Sequence[str]) -> Any:
    """The value at ``path`` (field names, outermost first), or None when any step is missing or not an object."""
    found = document
    for name in path:
        if not isinstance(found, dict):  # not the Mapping ABC: it made the field preset ~10% slower (timeit)
            return None
        found = found.get(name)
    return found


def _renderer(segment: Segment) -> _Renderer:
    if isinstance(segment, PartitionSegment):
        label = segment.label
        return lambda record, _document: f"{label}={record['partition']}"
    if isinstance(segment, FieldSegment):
        label, path = segment.label, segment.field_path
        return lambda _record, document: f"{label}={encode_segment(segment_text(lookup(document, path)))}"
    if isinstance(segment, HeaderSegment):
        return _header_renderer(segment.label, segment.header)
    if isinstance(segment, KeySegment):
        return _key_renderer(segment.label, segment.buckets)
    return _time_renderer(segment)


def _header_renderer(label: str, header: str) -> _Renderer:
    def render(record: Envelope, _document: Any) -> str:
        # The last header of that name, as Kafka's Headers.lastHeader reads it; none, or no value: NULL.
        value = next((item["value"] for item in reversed(record["headers"]) if item["key"] == header), None)
        return f"{label}={encode_segment(value or b'')}"

    return render


def _key_renderer(label: str, buckets: int | None) -> _Renderer:
    def render(record: Envelope, _document: Any) -> str:
        key: bytes | None = record["key"]
        if not key:
            return f"{label}={NULL_PARTITION}"
        if buckets is None:
            return f"{label}={encode_segment(key)}"
        return f"{label}={key_bucket(key, buckets)}"

    return render


def key_bucket(key: bytes, buckets: int) -> int:
    """The bucket of a key: the first 8 bytes of its SHA-256 as a big-endian number, modulo ``buckets``. Stable across
    processes and languages (Python's own hash() is salted per process)."""
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") % buckets


def _time_renderer(segment: TimeSegment) -> _Renderer:
    if segment.field is None:
        by_record_time = _time_formatter(segment.pattern, segment.zone)
        return lambda record, _document: by_record_time(record["timestamp"])
    by_millis = _time_formatter(segment.pattern, segment.zone)
    outside_calendar = null_time_path(segment.pattern)
    path, name, zone, pattern = segment.field_path, segment.field, segment.zone, segment.pattern

    def render(_record: Envelope, document: Any) -> str:
        found = lookup(document, path)
        if found is None:
            return outside_calendar  # no time: the NULL partition, like a record without the field
        millis = _epoch_millis(found)
        if millis is not None:
            return by_millis(millis)
        moment = _moment(found, name)
        try:
            return moment.astimezone(zone).strftime(pattern)
        except (OverflowError, OSError, ValueError):
            return outside_calendar

    return render


def _epoch_millis(found: Any) -> int | None:
    """A number of epoch milliseconds as an int (floats cut to whole milliseconds); None if ``found`` is not one."""
    if type(found) is int:
        return found
    if type(found) is float:
        # NaN and infinities are numbers outside any calendar, like 1e300: the NULL partition, not a dead letter.
        return int(found) if math.isfinite(found) else _OUTSIDE_CALENDAR_MS
    return None


_OUTSIDE_CALENDAR_MS = 2**80


MAX_ISO_TIME_LENGTH = 64  # longer text is no ISO-8601 time; never parsed


def _moment(found: Any, name: str) -> datetime:
    """A time field's value as an aware datetime (text without an offset is UTC), or ``PartitionValueError``."""
    if isinstance(found, datetime):  # an Avro timestamp logical type, decoded
        return found if found.tzinfo else found.replace(tzinfo=UTC)
    if isinstance(found, date):  # an Avro date: its midnight UTC
        return datetime(found.year, found.month, found.day, tzinfo=UTC)
    if isinstance(found, str) and len(found) <= MAX_ISO_TIME_LENGTH:
        try:
            moment = datetime.fromisoformat(found)
        except ValueError:
            pass
        else:
            return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    shown = found[:MAX_ISO_TIME_LENGTH] if isinstance(found, str | bytes) else type(found).__name__
    raise PartitionValueError(
        f"time field {name!r} holds {shown!r}, not epoch milliseconds (a number) or an ISO-8601 time (text)"
    )


def segment_text(found: Any) -> str | bytes:
    """A field's value as segment text: strings and bytes as they are, "" (NULL) for none, JSON text for the rest."""
    if type(found) is str:
        return found
    if found is None or isinstance(found, str | bytes):
        return found or ""
    if isinstance(found, datetime | date):
        return found.isoformat()
    # Numbers, booleans, lists and objects partition by their compact JSON text (Avro's decimals and UUIDs as str).
    return json.dumps(found, separators=(",", ":"), sort_keys=True, default=str)


def _topic_segment(topic: str, cache: dict[str, str] = {}) -> str:  # noqa: B006 -- deliberate per-container memo
    segment = cache.get(topic)
    if segment is None:
        segment = cache[topic] = encode_topic(topic)
    return segment


def _default_partitioner(record: Envelope) -> str:
    return f"{_topic_segment(record['topic'])}/partition={record['partition']}"


def _time_partitioner(pattern: str, zone: ZoneInfo) -> PartitionPath:
    by_record_time = _time_formatter(pattern, zone)

    def path(record: Envelope) -> str:
        return f"{_topic_segment(record['topic'])}/{by_record_time(record['timestamp'])}"

    return path


def _time_formatter(pattern: str, zone: ZoneInfo) -> Callable[[int], str]:
    """Epoch milliseconds -> ``pattern`` in ``zone``; a time outside the calendar -> the NULL time path."""
    # Patterns only use directives down to the minute, so one formatted path serves a whole minute.
    by_minute: dict[int, str] = {}
    outside_calendar = null_time_path(pattern)

    def formatted(millis: int) -> str:
        minute = millis // 60_000
        text = by_minute.get(minute)
        if text is None:
            if len(by_minute) > 100_000:
                by_minute.clear()  # bound the memo on a long-lived container
            try:
                text = datetime.fromtimestamp(minute * 60, zone).strftime(pattern)
            except (OverflowError, OSError, ValueError):
                # Producers writing microseconds or garbage: the record is archived with its exact timestamp
                # (docs/schema.md), in the NULL partition, like the field partitioner's records without the field.
                text = outside_calendar
            by_minute[minute] = text
        return text

    return formatted


def longest_path(segments: Sequence[Segment]) -> int:
    """An upper bound of the length of the segments' path (after the topic and its '/'): for the longest-key check
    at synth time (infra/config.py), so no configured topic can make a key longer than S3 allows."""
    lengths = []
    for segment in segments:
        if isinstance(segment, TimeSegment):
            # %Y is up to 4 digits for its 2 characters, the other directives 2 for 2; NULL adds 24 per directive run.
            dated = len(segment.pattern) + 2 * segment.pattern.count("%Y")
            lengths.append(max(dated, len(null_time_path(segment.pattern))))
        elif isinstance(segment, PartitionSegment):
            lengths.append(len(segment.label) + 1 + len(str(MAX_PARTITION)))
        elif isinstance(segment, KeySegment) and segment.buckets is not None:
            lengths.append(len(segment.label) + 1 + max(len(str(segment.buckets - 1)), len(NULL_PARTITION)))
        else:
            lengths.append(len(segment.label) + 1 + MAX_SEGMENT_LENGTH)
    return sum(lengths) + len(lengths) - 1


def null_time_path(pattern: str) -> str:
    """The time path of a record whose timestamp has no calendar date: every directive is the NULL partition.

    ``year=%Y/month=%m`` becomes ``year=__HIVE_DEFAULT_PARTITION__/month=__HIVE_DEFAULT_PARTITION__``, so the path
    has the shape of every other path and each partition column reads as NULL. Adjacent directives share one NULL
    (``%Y%m`` is one column), and a pattern crowded with directives falls back to a single NULL segment, so the path
    is never longer than the longest dated one (two characters per directive on top of the pattern).
    """
    path = re.sub(r"(?:%[A-Za-z])+", NULL_PARTITION, pattern)
    return path if len(path) <= 2 * MAX_TIME_PATTERN_LENGTH else NULL_PARTITION


def field_text(value: bytes | None, field_name: str) -> str:
    """The text of a top-level JSON field, or "" (the NULL partition) when there is none to read.

    Tombstones, values that are not JSON objects (including JSON nested deeper than ``MAX_FIELD_NESTING``, which is
    not parsed at all) and objects without the field are still archived: they land in the NULL partition rather
    than the dead-letter queue, because nothing about them is wrong for an archive.
    """
    document = value_document({"value": value}, avro=False)
    text = segment_text(lookup(document, (field_name,)))
    return text.decode("utf-8", "surrogateescape") if isinstance(text, bytes) else text
