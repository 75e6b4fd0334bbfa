"""Record -> partition path under the archive prefix. Every path starts with the (encoded) topic.

* ``default``: ``<topic>/partition=<p>``
* ``time``:    ``<topic>/<pattern of the record timestamp>``, e.g. ``orders/year=2024/month=05/day=01/hour=13``
* ``field``:   ``<topic>/<field>=<value of a top-level field of a JSON value>``

No partitioner rejects a record: what it cannot read goes to Hive's NULL partition and is archived like any other
record. That is a timestamp outside the calendar (years 1 to 9999 in the pattern's zone) for ``time``, and for
``field`` a tombstone, a value that is not a JSON object (or nests deeper than ``MAX_FIELD_NESTING``), or an object
without the field.

Paths are built from hostile input (topic names from the event, field values from record payloads), so every
segment goes through ``encode_segment``: the result only ever contains ``A-Z a-z 0-9 _ - . % ~ =`` and can never be
empty, ``.``, ``..`` or contain ``/``. It therefore cannot escape the prefix or make an invalid S3 key.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from archiver.decoding import Envelope
from archiver.jsontext import load_json
from archiver.settings import MAX_TIME_PATTERN_LENGTH, Settings

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


def encode_segment(text: str, max_length: int = MAX_SEGMENT_LENGTH) -> str:
    """Percent-encode ``text`` into one safe path segment (UTF-8; lone surrogates kept via surrogatepass)."""
    raw = text.encode("utf-8", "surrogatepass")
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
    """The partition-path function that ``settings`` selects."""
    if settings.partitioner == "time":
        return _time_partitioner(settings.time_pattern, settings.zone)
    if settings.partitioner == "field":
        assert settings.partition_field is not None  # guaranteed by Settings validation
        return _field_partitioner(settings.partition_field)
    return _default_partitioner


def _topic_segment(topic: str, cache: dict[str, str] = {}) -> str:  # noqa: B006 -- deliberate per-container memo
    segment = cache.get(topic)
    if segment is None:
        segment = cache[topic] = encode_topic(topic)
    return segment


def _default_partitioner(record: Envelope) -> str:
    return f"{_topic_segment(record['topic'])}/partition={record['partition']}"


def _time_partitioner(pattern: str, zone: ZoneInfo) -> PartitionPath:
    # Patterns only use directives down to the minute, so one formatted path serves a whole minute.
    by_minute: dict[int, str] = {}
    outside_calendar = null_time_path(pattern)

    def path(record: Envelope) -> str:
        minute = record["timestamp"] // 60_000
        formatted = by_minute.get(minute)
        if formatted is None:
            if len(by_minute) > 100_000:
                by_minute.clear()  # bound the memo on a long-lived container
            try:
                formatted = datetime.fromtimestamp(minute * 60, zone).strftime(pattern)
            except (OverflowError, OSError, ValueError):
                # Producers writing microseconds or garbage: the record is archived with its exact timestamp
                # (docs/schema.md), in the NULL partition, like the field partitioner's records without the field.
                formatted = outside_calendar
            by_minute[minute] = formatted
        return f"{_topic_segment(record['topic'])}/{formatted}"

    return path


def null_time_path(pattern: str) -> str:
    """The time path of a record whose timestamp has no calendar date: every directive is the NULL partition.

    ``year=%Y/month=%m`` becomes ``year=__HIVE_DEFAULT_PARTITION__/month=__HIVE_DEFAULT_PARTITION__``, so the path
    has the shape of every other path and each partition column reads as NULL. Adjacent directives share one NULL
    (``%Y%m`` is one column), and a pattern crowded with directives falls back to a single NULL segment, so the path
    is never longer than the longest dated one (two characters per directive on top of the pattern).
    """
    path = re.sub(r"(?:%[A-Za-z])+", NULL_PARTITION, pattern)
    return path if len(path) <= 2 * MAX_TIME_PATTERN_LENGTH else NULL_PARTITION


def _field_partitioner(field_name: str) -> PartitionPath:
    def path(record: Envelope) -> str:
        return (
            f"{_topic_segment(record['topic'])}/{field_name}={encode_segment(field_text(record['value'], field_name))}"
        )

    return path


def field_text(value: bytes | None, field_name: str) -> str:
    """The text of a top-level JSON field, or "" (the NULL partition) when there is none to read.

    Tombstones, values that are not JSON objects (including JSON nested deeper than ``MAX_FIELD_NESTING``, which is
    not parsed at all) and objects without the field are still archived: they land in the NULL partition rather
    than the dead-letter queue, because nothing about them is wrong for an archive.
    """
    if value is None:
        return ""
    try:
        document = load_json(value, max_nesting=MAX_FIELD_NESTING)
    except ValueError:  # not JSON, not text, too deep, or an integer with more digits than Python reads
        return ""
    if not isinstance(document, dict):
        return ""
    found = document.get(field_name)
    if found is None:
        return ""
    if isinstance(found, str):
        return found
    # Numbers, booleans, lists and objects partition by their compact JSON text.
    return json.dumps(found, separators=(",", ":"), sort_keys=True)
