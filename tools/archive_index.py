"""The archive as a set of objects: list and parse archive keys, read offset sets, group them, and classify overlaps.

An archive key is ``<prefix><partition path>/<topic>+<partition>+<first offset>+<last offset>.avro`` (see
``archiver.keys``); the partition path starts with the encoded topic. The *group* of an object is everything that
decides which records it may hold: its directory (prefix + partition path), its encoded topic and its partition.
Compaction never merges across groups, and overlaps only matter inside one.

Offsets inside one object are in increasing order but not necessarily contiguous (the field partitioner sends
interleaved records to different paths), so "which offsets does this object hold" is answered from its contents,
never from ``first..last`` alone. The key's range is still useful: objects whose ranges do not intersect cannot
share an offset, so contents are only read for the few pairs whose ranges do.
"""

from __future__ import annotations

import functools
import io
import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

import fastavro
from botocore.exceptions import ClientError

from archiver.keys import ARCHIVE_SUFFIX, OFFSET_WIDTH, archive_name
from archiver.partitioning import encode_topic
from archiver.settings import DEAD_LETTER_PREFIX
from tools.avro_blocks import SCHEMA_KEY, read_header, read_records, write_container

COMPACTED_FROM = "compacted-from"  # S3 metadata on a compacted object: how many objects it merged
COMPACTION_METHOD = "compaction-method"  # "copy" or "reencode"

# Directory (prefix + partition path), encoded topic, partition, and the value-schema fingerprint of a typed archive
# object (None for raw envelopes). Compaction merges within one group; overlaps are looked for across fingerprints.
GroupId = tuple[str, str, int, str | None]


@dataclass(frozen=True, slots=True, order=True)
class ArchiveKey:
    """The coordinates an archive key spells out. Orders by group, then offset range, then key."""

    directory: str  # prefix + partition path, no trailing slash
    topic_segment: str  # the topic as encoded in the key (archiver.partitioning.encode_topic)
    partition: int
    first_offset: int
    last_offset: int
    key: str
    fingerprint: str | None = None  # typed archives: the writer schema's fingerprint after the offsets

    @property
    def group(self) -> GroupId:
        return (self.directory, self.topic_segment, self.partition, self.fingerprint)

    @property
    def topic_partition_path(self) -> tuple[str, str, int]:
        return (self.directory, self.topic_segment, self.partition)

    def path(self, prefix: str) -> str:
        """The partition path, i.e. the directory without ``prefix``."""
        return self.directory[len(prefix) :]


def parse_key(key: str) -> ArchiveKey | None:
    """The coordinates of an archive key, or None for anything else (dead-letter payloads, stray files)."""
    if not key.endswith(ARCHIVE_SUFFIX) or key.startswith(DEAD_LETTER_PREFIX):
        return None
    directory, slash, name = key.rpartition("/")
    parts = name[: -len(ARCHIVE_SUFFIX)].split("+")
    # encode_topic never leaves a literal "+" in a topic segment (it becomes %2B), so a key has exactly 4 parts,
    # or 5 for a typed archive object (the value schema's fingerprint comes last).
    if not slash or len(parts) not in (4, 5):
        return None
    topic_segment, partition, first, last = parts[:4]
    fingerprint = parts[4] if len(parts) == 5 else None
    if fingerprint is not None and not (fingerprint and all(c in "0123456789abcdef" for c in fingerprint)):
        return None
    if not (partition.isdigit() and _is_offset(first) and _is_offset(last)):
        return None
    if topic_segment not in directory.split("/"):
        return None  # every partition path starts with the encoded topic
    first_offset, last_offset = int(first), int(last)
    if first_offset > last_offset:
        return None
    return ArchiveKey(directory, topic_segment, int(partition), first_offset, last_offset, key, fingerprint)


def _is_offset(text: str) -> bool:
    return len(text) == OFFSET_WIDTH and text.isdigit()


def make_key(group: GroupId, first_offset: int, last_offset: int) -> str:
    """The archive key for a range of one group: the scheme of ``archiver.keys.archive_key``, raw or typed."""
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

    @property
    def compacted_from(self) -> int | None:
        return compacted_from(self.metadata)


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
    """Objects by group, each group ordered by (first offset, last offset, key)."""
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
    return FetchedObject(key, response["Body"].read(), response["ETag"], response.get("Metadata", {}))


@functools.cache
def _offsets_only_schema(writer_schema: bytes) -> Any:
    # A reader schema with only "offset": fastavro skips the other fields instead of building them. Named like the
    # writer's record (the envelope, or a typed archive record), as schema resolution requires.
    writer = json.loads(writer_schema)
    offset_field = {"name": "offset", "type": "long"}
    projected = {"type": "record", "name": writer["name"], "namespace": writer.get("namespace", "")}
    return fastavro.parse_schema({**projected, "fields": [offset_field]})


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


def read_offsets(body: bytes) -> list[int]:
    """The offsets of every record in an archive object, in file order."""
    metadata, _, _ = read_header(body)
    records = fastavro.reader(io.BytesIO(body), reader_schema=_offsets_only_schema(dict(metadata)[SCHEMA_KEY]))
    return [int(cast("dict[str, Any]", record)["offset"]) for record in records]


# ---------------------------------------------------------------------------------------------------------------------
# overlaps


def intersecting_ranges[T](members: Sequence[T], ref: Callable[[T], ArchiveKey]) -> Iterator[tuple[T, T]]:
    """Every pair of ``members`` (sorted by first offset) whose key ranges ``first..last`` intersect."""
    for index, item in enumerate(members):
        last_offset = ref(item).last_offset
        for other in members[index + 1 :]:
            if ref(other).first_offset > last_offset:
                break  # sorted by first offset: no later object can intersect this one's range
            yield item, other


@dataclass(frozen=True, slots=True)
class ObjectOffsets:
    """What ``classify_overlaps`` needs to know about one object."""

    key: str
    offsets: Sequence[int]
    # The object's S3 metadata "compacted-from" (None for objects the Lambda wrote).
    compacted_from: int | None = None


@dataclass(frozen=True, slots=True)
class PendingCompaction:
    """``key`` is redundant: every offset it holds is in the compacted object ``covered_by``. Safe to delete."""

    key: str
    covered_by: str


@dataclass(frozen=True, slots=True)
class Duplicate:
    """Two objects hold some of the same offsets and neither is a leftover input of a compaction."""

    keys: tuple[str, str]
    shared_offsets: int
    first_shared: int
    last_shared: int


@dataclass
class OverlapReport:
    pending: list[PendingCompaction] = field(default_factory=list)
    duplicates: list[Duplicate] = field(default_factory=list)

    @property
    def redundant_keys(self) -> set[str]:
        return {item.key for item in self.pending}

    @property
    def clean(self) -> bool:
        """No real duplicates. Pending compactions are not a problem: a rerun of compact deletes them."""
        return not self.duplicates

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape ``compact --audit`` and ``local.verify`` report overlaps in."""
        return {
            "pendingCompactions": [{"key": p.key, "coveredBy": p.covered_by} for p in self.pending],
            "duplicates": [
                {
                    "keys": list(d.keys),
                    "sharedOffsets": d.shared_offsets,
                    "first": d.first_shared,
                    "last": d.last_shared,
                }
                for d in self.duplicates
            ],
        }


def classify_overlaps(objects: Iterable[ObjectOffsets]) -> OverlapReport:
    """Tell overlaps that are pending compactions from real duplicates.

    Objects are grouped by their key (directory + topic + partition, see ``parse_key``); keys that are not archive
    keys are ignored. Within a group, two objects overlap when they hold a common offset. Then:

    * ``A`` is a **pending compaction** when some object ``C`` of the group carries ``compacted-from`` metadata
      and A's offsets are a strict subset of C's: A is an input compaction has not deleted yet (crash, concurrent
      run) or an old batch the Lambda rewrote after compaction. Deleting A loses nothing.
    * Every other overlapping pair (partial overlaps, or a subset of an object the *Lambda* wrote, which is what a
      retry with different batch boundaries leaves) is a **duplicate**: those records are in the archive twice.
      Pairs involving a pending object are not reported: its offsets are all in C, so C's own pairs say it.

    How ``verify`` should call it: for every archive object (key under the archive prefix), pass
    ``ObjectOffsets(key, offsets_read_from_the_object, compacted_from=int(metadata["compacted-from"]) or None)``
    (``tools.archive_index.read_offsets(body)`` and ``FetchedObject.compacted_from`` do both). Treat
    ``report.duplicates`` as failures and ``report.pending`` as a warning ("run compact again to clean up"), and
    count each pending object's records once, as part of its ``covered_by`` object. Offsets are only compared for
    objects whose key ranges intersect, so passing a lazily computed ``offsets`` sequence is not needed; but the
    offsets must be the object's real contents, not ``first..last``.
    """
    groups: dict[tuple[str, str, int], list[tuple[ArchiveKey, ObjectOffsets]]] = defaultdict(list)
    for item in objects:
        ref = parse_key(item.key)
        if ref is not None:
            groups[ref.topic_partition_path].append((ref, item))

    report = OverlapReport()
    for members in groups.values():
        members.sort(key=lambda pair: pair[0])
        sets: dict[str, frozenset[int]] = {}
        pairs: list[tuple[ObjectOffsets, ObjectOffsets, frozenset[int]]] = []
        for (_, item), (_, other) in intersecting_ranges(members, lambda pair: pair[0]):
            mine = sets.setdefault(item.key, frozenset(item.offsets))
            theirs = sets.setdefault(other.key, frozenset(other.offsets))
            shared = mine & theirs
            if shared:
                pairs.append((item, other, shared))

        covered_by: dict[str, str] = {}
        for left, right, _ in pairs:
            for small, large in ((left, right), (right, left)):
                if large.compacted_from is not None and sets[small.key] < sets[large.key]:
                    # Prefer the largest coverer, so the report points at the object that will survive.
                    best = covered_by.get(small.key)
                    if best is None or len(sets[large.key]) > len(sets[best]):
                        covered_by[small.key] = large.key
        report.pending.extend(PendingCompaction(key, cover) for key, cover in sorted(covered_by.items()))
        for left, right, shared in pairs:
            if left.key in covered_by or right.key in covered_by:
                continue
            report.duplicates.append(Duplicate((left.key, right.key), len(shared), min(shared), max(shared)))
    return report


# ---------------------------------------------------------------------------------------------------------------------
# a whole-archive audit (what the ops tests and `python -m tools.compact --audit` use)


@dataclass
class PartitionAudit:
    """One topic-partition across all its partition paths."""

    objects: int = 0
    records: int = 0  # records counted once, redundant (pending) objects excluded
    first_offset: int | None = None
    last_offset: int | None = None
    missing_offsets: int = 0  # offsets between first and last held by no object (includes legitimate gaps)


@dataclass
class ArchiveAudit:
    objects: int
    records: int
    overlaps: OverlapReport
    partitions: dict[tuple[str, int], PartitionAudit]
    offsets: dict[tuple[str, int], set[int]]

    def as_dict(self) -> dict[str, Any]:
        return {
            "objects": self.objects,
            "records": self.records,
            **self.overlaps.as_dict(),
            "partitions": {
                f"{topic}-{partition}": vars(audit) for (topic, partition), audit in sorted(self.partitions.items())
            },
        }


def audit_archive(
    s3: Any, bucket: str, prefix: str, *, topic: str | None = None, on_object: Callable[[str], None] | None = None
) -> ArchiveAudit:
    """Read every archive object under ``prefix``: offsets per topic-partition, overlaps, missing offsets.

    "Missing" offsets are not necessarily lost: Kafka leaves offset gaps (transaction markers, compacted topics,
    dead-lettered records). Compare the audit before and after an operation to tell.
    """
    listed = list_archive(s3, bucket, prefix, topic=topic)
    entries: list[tuple[ArchiveKey, ObjectOffsets]] = []
    for item in listed:
        fetched = fetch(s3, bucket, item.key)
        if fetched is None:
            continue
        entries.append((item.ref, ObjectOffsets(item.key, read_offsets(fetched.body), fetched.compacted_from)))
        if on_object is not None:
            on_object(item.key)
    overlaps = classify_overlaps(entry for _, entry in entries)
    redundant = overlaps.redundant_keys
    partitions: dict[tuple[str, int], PartitionAudit] = defaultdict(PartitionAudit)
    offsets: dict[tuple[str, int], set[int]] = defaultdict(set)
    records = 0
    for ref, entry in entries:
        audit = partitions[(ref.topic_segment, ref.partition)]
        audit.objects += 1
        if entry.key in redundant:
            continue
        offsets[(ref.topic_segment, ref.partition)].update(entry.offsets)
        audit.records += len(entry.offsets)
        records += len(entry.offsets)
    for name, audit in partitions.items():
        held = offsets[name]
        if held:
            audit.first_offset, audit.last_offset = min(held), max(held)
            audit.missing_offsets = audit.last_offset - audit.first_offset + 1 - len(held)
    return ArchiveAudit(len(entries), records, overlaps, dict(partitions), dict(offsets))


def iter_chunks[T](items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
