"""The archive as a set of objects: list and parse archive keys, read offsets and records, group objects, and find
records held more than once.

An archive key is ``<prefix><partition path>/<topic>+<partition>+<first offset>[+<last offset>][+<fingerprint>].avro``
(``archiver.keys``): the function names an object by its first offset, compaction by its first and last. The
partition path starts with the encoded topic. The *group* of an object is everything that decides which records it
may hold: its directory (prefix + partition path), its encoded topic, its partition and, for typed archives, its
value-schema fingerprint. Compaction never merges across groups.

Offsets inside one object are in increasing order but not necessarily contiguous (the field partitioner sends
interleaved records to different paths), so "which offsets does this object hold" is answered from its contents,
never from ``first..last`` alone. A known range is still useful: objects whose ranges do not intersect cannot share
an offset, so contents are only compared where ranges do.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from archive_ops.avro_blocks import SCHEMA_KEY, read_header, read_records, write_container
from archiver.decoding import MAX_OFFSET
from archiver.keys import ARCHIVE_SUFFIX, OFFSET_WIDTH, archive_name
from archiver.partitioning import encode_topic
from archiver.reading import read_offsets as read_offsets
from archiver.settings import DEAD_LETTER_PREFIX

COMPACTED_FROM = "compacted-from"  # S3 metadata on a compacted object: how many objects it merged
COMPACTION_METHOD = "compaction-method"  # "copy" or "reencode"

# Directory (prefix + partition path), encoded topic, partition, and the value-schema fingerprint of a typed archive
# object (None for raw envelopes). Compaction merges within one group.
GroupId = tuple[str, str, int, str | None]
FINGERPRINT_LENGTH = 16  # hex digits of a CRC-64-AVRO fingerprint (archiver.values.base.schema_fingerprint)


@dataclass(frozen=True, slots=True, order=True)
class ArchiveKey:
    """The coordinates an archive key spells out. Orders by group, then first offset, then key."""

    directory: str  # prefix + partition path, no trailing slash
    topic_segment: str  # the topic as encoded in the key (archiver.partitioning.encode_topic)
    partition: int
    first_offset: int
    key: str
    fingerprint: str | None = None  # typed archives: the writer schema's fingerprint after the offsets
    # Known for compacted objects (and objects of archiver versions that named both offsets); None for the ones the
    # function names by their first offset: their last offset is in their metadata and contents.
    last_offset: int | None = None

    @property
    def group(self) -> GroupId:
        return (self.directory, self.topic_segment, self.partition, self.fingerprint)

    @property
    def topic_partition_path(self) -> tuple[str, str, int]:
        return (self.directory, self.topic_segment, self.partition)

    @property
    def upper_bound(self) -> int:
        """No offset in the object is above this: its last offset when the key names it."""
        return MAX_OFFSET if self.last_offset is None else self.last_offset

    def path(self, prefix: str) -> str:
        """The partition path, i.e. the directory without ``prefix``."""
        return self.directory[len(prefix) :]


def parse_key(key: str) -> ArchiveKey | None:
    """The coordinates of an archive key, or None for anything else (dead-letter payloads, stray files)."""
    if not key.endswith(ARCHIVE_SUFFIX) or key.startswith(DEAD_LETTER_PREFIX):
        return None
    directory, slash, name = key.rpartition("/")
    parts = name[: -len(ARCHIVE_SUFFIX)].split("+")
    # encode_topic never leaves a literal "+" in a topic segment (it becomes %2B), so the parts are: topic,
    # partition, first offset, then an optional last offset (20 digits) and an optional fingerprint (16 hex).
    if not slash or not 3 <= len(parts) <= 5:
        return None
    topic_segment, partition, first, *rest = parts
    last = rest.pop(0) if rest and _is_offset(rest[0]) else None
    fingerprint = rest.pop(0) if rest else None
    if rest or (fingerprint is not None and not _is_fingerprint(fingerprint)):
        return None
    if not (partition.isdigit() and _is_offset(first)):
        return None
    if topic_segment not in directory.split("/"):
        return None  # every partition path starts with the encoded topic
    first_offset = int(first)
    last_offset = int(last) if last is not None else None
    if last_offset is not None and first_offset > last_offset:
        return None
    return ArchiveKey(directory, topic_segment, int(partition), first_offset, key, fingerprint, last_offset)


def _is_offset(text: str) -> bool:
    return len(text) == OFFSET_WIDTH and text.isdigit()


def _is_fingerprint(text: str) -> bool:
    return len(text) == FINGERPRINT_LENGTH and all(c in "0123456789abcdef" for c in text)


def compacted_key(group: GroupId, first_offset: int, last_offset: int) -> str:
    """The key compaction gives a merged range of one group: first and last offset, raw or typed."""
    directory, topic_segment, partition, fingerprint = group
    return f"{directory}/{archive_name(topic_segment, partition, first_offset, last_offset, fingerprint)}"


@dataclass(frozen=True, slots=True)
class StoredObject:
    """An archive object as listed: its parsed key plus size, ETag and modification time."""

    ref: ArchiveKey
    size: int
    etag: str
    last_modified: datetime

    @property
    def key(self) -> str:
        return self.ref.key


@dataclass(frozen=True, slots=True)
class FetchedObject:
    """An object's bytes with the ETag and user metadata they came with."""

    key: str
    body: bytes
    etag: str
    metadata: Mapping[str, str]
    storage_class: str = "STANDARD"  # GetObject names every class but STANDARD
    tag_count: int = 0  # S3 reports it only to callers allowed s3:GetObjectTagging

    @property
    def compacted_from(self) -> int | None:
        return compacted_from(self.metadata)

    def offset_range(self) -> tuple[int, int]:
        """First and last offset: from the metadata the function and compaction write, else from the contents."""
        first, last = self.metadata.get("first-offset", ""), self.metadata.get("last-offset", "")
        if first.isdigit() and last.isdigit() and int(first) <= int(last):
            return int(first), int(last)
        offsets = read_offsets(self.body)
        return min(offsets), max(offsets)


def compacted_from(metadata: Mapping[str, str]) -> int | None:
    """An object's ``compacted-from`` S3 metadata: how many objects compaction merged into it; None if not set."""
    value = metadata.get(COMPACTED_FROM)
    return int(value) if value and value.isdigit() else None


def list_objects(s3: Any, bucket: str, prefix: str = "") -> Iterator[dict[str, Any]]:
    """Every ``ListObjectsV2`` entry under ``prefix``, across all pages, in key order."""
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        yield from page.get("Contents", [])


def list_archive(
    s3: Any,
    bucket: str,
    prefix: str,
    *,
    topic: str | None = None,
    partitions: Iterable[int] | None = None,
) -> list[StoredObject]:
    """Every archive object under ``prefix`` (optionally of one topic and some partitions), in key order."""
    topic_segment = encode_topic(topic) if topic is not None else None
    # Listing under the topic's own directory keeps a one-topic operation from paging through the whole archive.
    list_prefix = f"{prefix}{topic_segment}/" if topic_segment is not None else prefix
    directory_prefix = prefix.rstrip("/")
    wanted = set(partitions) if partitions is not None else None
    found: list[StoredObject] = []
    for item in list_objects(s3, bucket, list_prefix):
        ref = parse_key(item["Key"])
        if ref is None or not ref.directory.startswith(directory_prefix):
            continue
        if topic_segment is not None and ref.topic_segment != topic_segment:
            continue
        if wanted is not None and ref.partition not in wanted:
            continue
        found.append(StoredObject(ref, int(item["Size"]), item["ETag"], item["LastModified"]))
    found.sort(key=lambda item: item.ref)
    return found


def group_objects(objects: Iterable[StoredObject]) -> dict[GroupId, list[StoredObject]]:
    """Objects by group, each group ordered by (first offset, key)."""
    groups: dict[GroupId, list[StoredObject]] = defaultdict(list)
    for item in objects:
        groups[item.ref.group].append(item)
    for members in groups.values():
        members.sort(key=lambda item: item.ref)
    return dict(sorted(groups.items()))


def fetch(s3: Any, bucket: str, key: str) -> FetchedObject | None:
    """GET one object, or None if it no longer exists (another compactor may have deleted it)."""
    try:
        response = s3.get_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return None
        raise
    return FetchedObject(
        key,
        response["Body"].read(),
        response["ETag"],
        response.get("Metadata", {}),
        response.get("StorageClass", "STANDARD"),
        int(response.get("TagCount", 0)),
    )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)


def read_envelopes(body: bytes) -> Iterator[dict[str, Any]]:
    """The records of an archive object as the Lambda decoded them: ``timestamp`` is the delivered int, exactly.

    Envelope v1 wrote every timestamp as ``timestamp-millis``, and fastavro (like Apache avro) cannot turn one
    outside years 1-9999 into a datetime: such an object raises ``OverflowError`` on read. So the writer schema in
    the header is swapped for the same schema without the timestamp's logical type (blocks do not depend on the
    header), and fastavro hands back the stored long. Envelope v2 keeps those timestamps in ``timestamp_raw``
    (docs/schema.md); either way the record comes back with one int ``timestamp`` and no ``timestamp_raw``.
    """
    metadata, sync, start = read_header(body)
    header = write_container(tuple(_plain_timestamp(name, value) for name, value in metadata), sync, ())
    for record in read_records(header + body[start:]):
        raw = record.pop("timestamp_raw", None)
        if raw is not None:
            record["timestamp"] = raw
        yield record


def _plain_timestamp(name: str, value: bytes) -> tuple[str, bytes]:
    return (name, _plain_timestamp_schema(value)) if name == SCHEMA_KEY else (name, value)


@functools.cache
def _plain_timestamp_schema(writer_schema: bytes) -> bytes:
    schema = json.loads(writer_schema)
    for item in schema.get("fields", ()):
        if item.get("name") == "timestamp":
            item["type"] = _without_logical_type(item["type"])
    return json.dumps(schema).encode("utf-8")


def _without_logical_type(schema: Any) -> Any:
    if isinstance(schema, list):
        return [_without_logical_type(branch) for branch in schema]
    if isinstance(schema, dict) and "logicalType" in schema:
        return schema["type"]
    return schema


# ---------------------------------------------------------------------------------------------------------------------
# records held more than once


def record_digest(record: Mapping[str, Any]) -> bytes:
    """A digest of a whole archived record: coordinates, timestamp and its type, key, value and headers (a typed
    record's decoded value and schema id included). Two copies of one Kafka record have equal digests.

    A Kafka record at a given (topic, partition, offset) never changes, so copies that differ in anything are a
    *conflict*, never a harmless duplicate. Timestamps are compared as exact integers, however the object stored them.
    """
    normalized = dict(record)
    # Envelope v2 keeps a timestamp outside timestamp-millis's range in timestamp_raw (docs/schema.md): the exact
    # delivered value is that one, so a v1 and a v2 copy of one record compare equal.
    raw = normalized.pop("timestamp_raw", None)
    if raw is not None:
        normalized["timestamp"] = raw
    for name, value in normalized.items():
        if isinstance(value, datetime) and value.tzinfo is not None:
            normalized[name] = (value - _EPOCH) // _MILLISECOND
    text = json.dumps(normalized, sort_keys=True, default=repr, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


def record_digests(body: bytes) -> dict[int, bytes]:
    """Offset -> digest of every record of an archive object."""
    return {int(record["offset"]): record_digest(record) for record in read_envelopes(body)}


@dataclass
class Copies:
    """Offsets of one topic-partition held by more than one object, and whether the copies agree.

    ``duplicates``: every copy identical (a retried batch; compaction keeps one). ``conflicts``: the copies differ,
    which no retry can cause: both objects are kept and reported.
    """

    duplicates: dict[int, list[str]] = field(default_factory=dict)  # offset -> keys holding identical copies
    conflicts: dict[int, list[str]] = field(default_factory=dict)  # offset -> keys whose copies differ

    def as_dict(self) -> dict[str, Any]:
        return {
            "duplicateOffsets": len(self.duplicates),
            "conflictOffsets": len(self.conflicts),
            "conflicts": [{"offset": offset, "keys": keys} for offset, keys in sorted(self.conflicts.items())],
        }


def find_copies(digests_by_key: Mapping[str, Mapping[int, bytes]]) -> Copies:
    """Which offsets several of the given objects (of one topic-partition) hold, split into duplicates and conflicts."""
    holders: dict[int, list[tuple[str, bytes]]] = defaultdict(list)
    for key in sorted(digests_by_key):
        for offset, digest in digests_by_key[key].items():
            holders[offset].append((key, digest))
    copies = Copies()
    for offset, held in sorted(holders.items()):
        if len(held) < 2:
            continue
        keys = [key for key, _ in held]
        target = copies.duplicates if len({digest for _, digest in held}) == 1 else copies.conflicts
        target[offset] = keys
    return copies


def intersecting_ranges[T](members: Sequence[T], bounds: Callable[[T], tuple[int, int]]) -> Iterator[tuple[T, T]]:
    """Every pair of ``members`` (sorted by first offset) whose ranges ``first..last`` intersect."""
    for index, item in enumerate(members):
        last_offset = bounds(item)[1]
        for other in members[index + 1 :]:
            if bounds(other)[0] > last_offset:
                break  # sorted by first offset: no later object can intersect this one's range
            yield item, other


def iter_chunks[T](items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
