"""Deterministic S3 object keys.

``<prefix><partition path>/<topic>+<partition>+<first offset>+<last offset>.avro``, offsets zero-padded to 20
digits (the width of the largest int64) so that lexical order is offset order. The same records always give the
same key, which is what makes a retried batch overwrite its own objects instead of duplicating them.
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
    last_offset: int,
    fingerprint: str | None = None,
) -> str:
    """The key of the archive object holding offsets ``first_offset..last_offset`` of one group; a typed archive
    object's key also names its writer schema's ``fingerprint``, so objects of different schemas never share one."""
    name = archive_name(encode_topic(topic), partition, first_offset, last_offset, fingerprint)
    return checked_key(f"{prefix}{path}/{name}")


def archive_name(
    topic_segment: str, partition: int, first_offset: int, last_offset: int, fingerprint: str | None = None
) -> str:
    """``<topic>+<partition>+<first>+<last>[+<fingerprint>].avro``: the last segment of an archive key.

    ``topic_segment`` is the already encoded topic. A typed archive object's value-schema fingerprint comes after
    the offsets, so keys stay in lexical offset order.
    """
    name = f"{topic_segment}+{partition}+{offset_label(first_offset)}+{offset_label(last_offset)}"
    return f"{name}{'' if fingerprint is None else '+' + fingerprint}{ARCHIVE_SUFFIX}"


def dead_letter_key(topic: str, partition: int | None, record_id: str) -> str:
    """Where an oversized dead-letter payload goes: under the reserved prefix, one object per record."""
    topic_segment = encode_topic(topic)
    partition_segment = "unknown" if partition is None else str(partition)
    return checked_key(f"{DEAD_LETTER_PREFIX}{topic_segment}/partition={partition_segment}/{record_id}.json")


def offset_label(offset: int) -> str:
    return f"{offset:0{OFFSET_WIDTH}d}"


def checked_key(key: str) -> str:
    """``key``, or ``ObjectKeyError`` if it is longer than S3 allows."""
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise ObjectKeyError(f"object key would exceed S3's {MAX_KEY_BYTES}-byte limit: {key[:120]}...")
    return key
