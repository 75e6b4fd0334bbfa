"""Deterministic S3 object keys.

The function names each object by the *first* offset it holds:
``<prefix><partition path>/<topic>+<partition>+<first offset>[+<fingerprint>].avro``. A retried batch starts again
at the same committed offset, so its objects get the same keys whatever their batch boundaries; the writer puts
them with S3 conditional writes (``If-None-Match: *``) and a key that already exists tells it which records are
already archived (``archiver.writing``). Compaction names what it merges by first *and* last offset
(``compacted_name``), so a merged object never takes the key of an object the function may still write.

Offsets are zero-padded to 20 digits (the width of the largest int64) so that lexical order is offset order.
"""

from __future__ import annotations

from archiver.errors import ObjectKeyError
from archiver.partitioning import encode_topic
from archiver.settings import DEAD_LETTER_PREFIX

MAX_KEY_BYTES = 1024  # S3's limit on a key's UTF-8 length
OFFSET_WIDTH = 20
ARCHIVE_SUFFIX = ".avro"


def archive_key(
    prefix: str,
    path: str,
    topic: str,
    partition: int,
    first_offset: int,
    fingerprint: str | None = None,
) -> str:
    """The key of the object the function writes for one group, starting at ``first_offset``; a typed archive
    object's key also names its writer schema's ``fingerprint``, so objects of different schemas never share one."""
    name = archive_name(encode_topic(topic), partition, first_offset, None, fingerprint)
    return checked_key(f"{prefix}{path}/{name}")


def archive_name(
    topic_segment: str,
    partition: int,
    first_offset: int,
    last_offset: int | None = None,
    fingerprint: str | None = None,
) -> str:
    """``<topic>+<partition>+<first>[+<last>][+<fingerprint>].avro``: the last segment of an archive key.

    ``topic_segment`` is the already encoded topic. ``last_offset`` is given for compacted objects only. A typed
    archive object's value-schema fingerprint (16 hex digits, never a 20-digit offset) comes last, so keys stay in
    lexical offset order.
    """
    name = f"{topic_segment}+{partition}+{offset_label(first_offset)}"
    if last_offset is not None:
        name += f"+{offset_label(last_offset)}"
    return f"{name}{'' if fingerprint is None else '+' + fingerprint}{ARCHIVE_SUFFIX}"


def dead_letter_key(topic: str, partition: int | None, record_id: str) -> str:
    """Where an oversized dead-letter payload goes: under the reserved prefix, one object per record."""
    return checked_key(f"{dead_letter_directory(topic, partition)}/{record_id}.json")


def dead_letter_ledger_key(topic: str, partition: int, first_offset: int, last_offset: int) -> str:
    """The ledger entry of the records of one topic-partition a batch dead-lettered (``archiver.deadletter``).

    Named by the first and last dead-lettered offset: a retry with other batch boundaries dead-letters a different
    range and writes a new entry instead of replacing one with fewer offsets.
    """
    span = f"{offset_label(first_offset)}-{offset_label(last_offset)}"
    return checked_key(f"{dead_letter_directory(topic, partition)}/{LEDGER_DIRECTORY}/{span}.json")


# dead-letter/<topic>/partition=<p>/ledger/: the record ids in the directory above it never contain a "/".
LEDGER_DIRECTORY = "ledger"


def dead_letter_directory(topic: str, partition: int | None) -> str:
    """``dead-letter/<topic>/partition=<p>``: where a topic-partition's dead-letter payloads and ledger live."""
    partition_segment = "unknown" if partition is None else str(partition)
    return f"{DEAD_LETTER_PREFIX}{encode_topic(topic)}/partition={partition_segment}"


def offset_label(offset: int) -> str:
    return f"{offset:0{OFFSET_WIDTH}d}"


def checked_key(key: str) -> str:
    """``key``, or ``ObjectKeyError`` if it is longer than S3 allows."""
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise ObjectKeyError(f"object key would exceed S3's {MAX_KEY_BYTES}-byte limit: {key[:120]}...")
    return key
