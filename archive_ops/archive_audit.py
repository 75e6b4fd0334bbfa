"""The archive audit, from S3 alone: per topic-partition, which offsets are archived, dead-lettered, missing (gaps),
held twice identically (duplicates) or held twice differently (conflicts); objects compaction has yet to process;
and freshness (now minus the newest archived record's timestamp).

It reads the archive objects and the dead-letter ledger (``dead-letter/<topic>/partition=<p>/ledger/``, written by
the function for every dead-lettered record), never the dead-letter queue, which it must not consume. It needs no
Kafka broker, so it runs anywhere, including as the stack's scheduled Lambda.

Incremental: with a ``state_prefix`` it keeps one manifest per topic-partition in the bucket, remembering what each
object holds (offset runs, record count, newest timestamp, ETag). A run lists the archive, reads only objects it has
not seen (or whose ETag changed), forgets deleted ones, and compares contents only where two objects share offsets
(that verdict is remembered too). Without a ``state_prefix`` it reads everything (``compact --audit``, tests).

With a ``settle_age`` (the deployed audit, next to the deployed compaction) it leaves the objects the function wrote
less than that long ago unread: compaction is about to replace them, so reading them would double the audit's
GETs for nothing. They are counted (``unsettled_objects``), the newest one's metadata still gives freshness, and
their offsets are audited once compaction has merged them or they have settled: gaps show up that much later.

What a gap is: an offset between a partition's first and last accounted offset that is neither in an object nor
in the ledger. Kafka itself leaves offsets without records (transaction markers, compacted topics): on such topics
gaps at batch boundaries are expected; docs/operations.md says how to tell them apart.
"""

from __future__ import annotations

import itertools
import json
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from archive_ops.archive_index import (
    StoredObject,
    fetch,
    find_copies,
    list_archive,
    list_objects,
    read_envelopes,
    read_offsets,
    record_digests,
)
from archiver.keys import LEDGER_DIRECTORY
from archiver.partitioning import encode_topic
from archiver.settings import DEAD_LETTER_PREFIX
from archiver.writing import MAX_TIMESTAMP

MANIFEST_VERSION = 1
DEFAULT_STATE_PREFIX = "archiver-state/audit/"
TopicPartition = tuple[str, int]  # encoded topic segment, partition
Runs = list[list[int]]  # [[first, last], ...] inclusive, sorted, disjoint


# ---------------------------------------------------------------------------------------------------------------------
# offset runs


def to_runs(offsets: Iterable[int]) -> Runs:
    """[[first, last], ...] of consecutive offsets."""
    runs: Runs = []
    for offset in sorted(set(offsets)):
        if runs and offset == runs[-1][1] + 1:
            runs[-1][1] = offset
        else:
            runs.append([offset, offset])
    return runs


def merge_runs(*many: Sequence[Sequence[int]]) -> Runs:
    """The union of runs, as runs."""
    spans = sorted((int(first), int(last)) for runs in many for first, last in runs)
    merged: Runs = []
    for first, last in spans:
        if merged and first <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], last)
        else:
            merged.append([first, last])
    return merged


def run_count(runs: Sequence[Sequence[int]]) -> int:
    return sum(last - first + 1 for first, last in runs)


def gaps_of(runs: Sequence[Sequence[int]]) -> Runs:
    """The holes between consecutive runs."""
    return [[a[1] + 1, b[0] - 1] for a, b in itertools.pairwise(runs) if b[0] > a[1] + 1]


def intersect_runs(a: Sequence[Sequence[int]], b: Sequence[Sequence[int]]) -> Runs:
    found: Runs = []
    i = j = 0
    while i < len(a) and j < len(b):
        low, high = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if low <= high:
            found.append([low, high])
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return found


# ---------------------------------------------------------------------------------------------------------------------
# the manifest


@dataclass
class ObjectSummary:
    """What one archive object holds, as far as the audit needs to know."""

    etag: str
    size: int
    offsets: Runs
    records: int
    compacted: bool  # named by its range (compaction's name); False: as the function wrote it
    newest_timestamp: int | None
    last_modified: str


@dataclass
class Manifest:
    """Everything the audit remembers about one topic-partition between runs."""

    objects: dict[str, ObjectSummary] = field(default_factory=dict)
    ledger: dict[str, Runs] = field(default_factory=dict)  # ledger key -> dead-lettered offsets
    # "<key>@<etag> <key>@<etag>" -> offsets the two hold with different contents (empty: identical copies).
    verdicts: dict[str, list[int]] = field(default_factory=dict)

    def to_json(self) -> bytes:
        document = {
            "version": MANIFEST_VERSION,
            "objects": {key: asdict(summary) for key, summary in sorted(self.objects.items())},
            "ledger": dict(sorted(self.ledger.items())),
            "verdicts": dict(sorted(self.verdicts.items())),
        }
        return json.dumps(document, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        document = json.loads(data)
        if document.get("version") != MANIFEST_VERSION:
            return cls()  # an unknown layout is rebuilt from the archive rather than misread
        return cls(
            objects={key: ObjectSummary(**value) for key, value in document["objects"].items()},
            ledger={key: [list(run) for run in runs] for key, runs in document["ledger"].items()},
            verdicts=dict(document["verdicts"]),
        )


# ---------------------------------------------------------------------------------------------------------------------
# findings


@dataclass
class PartitionFindings:
    topic: str  # the topic as encoded in keys (the topic name itself for every legal Kafka name)
    partition: int
    objects: int
    archived_records: int  # offsets archived, each counted once
    dead_lettered_records: int
    first_offset: int | None
    last_offset: int | None
    gaps: Runs
    duplicate_offsets: int  # offsets more than one object holds, with identical copies
    conflicts: list[dict[str, Any]]  # offsets whose copies differ: [{"offset", "keys"}]
    pending_compactions: int  # objects older than the compaction window that compaction has not processed
    small_objects: int  # objects under the compaction target size: a layout that is slow to query when there are many
    redundant_objects: int  # objects every record of which another object holds
    unsettled_objects: int  # recent objects the function wrote, left unread until compaction merges them
    newest_timestamp: int | None
    freshness_seconds: float | None

    @property
    def gap_offsets(self) -> int:
        return run_count(self.gaps)

    @property
    def conflict_offsets(self) -> int:
        return len(self.conflicts)


@dataclass
class AuditReport:
    partitions: list[PartitionFindings] = field(default_factory=list)
    objects_listed: int = 0
    objects_read: int = 0
    objects_headed: int = 0
    bytes_read: int = 0
    incomplete: bool = False  # stopped for time: the partitions not listed were not audited this run
    seconds: float = 0.0

    @property
    def clean(self) -> bool:
        """No gap and no conflict (duplicates and pending compactions are compaction's work, not failures)."""
        return not any(p.gap_offsets or p.conflict_offsets for p in self.partitions)

    def by_topic(self) -> dict[str, dict[str, float]]:
        """Per topic: the sums (and, for freshness, the stalest partition) the deployed audit publishes as metrics."""
        topics: dict[str, dict[str, float]] = {}
        for p in self.partitions:
            totals = topics.setdefault(
                p.topic,
                {
                    "GapOffsets": 0,
                    "DuplicateOffsets": 0,
                    "ConflictOffsets": 0,
                    "PendingCompactions": 0,
                    "SmallObjects": 0,
                    "RedundantObjects": 0,
                    "ArchivedRecords": 0,
                    "Objects": 0,
                },
            )
            totals["GapOffsets"] += p.gap_offsets
            totals["DuplicateOffsets"] += p.duplicate_offsets
            totals["ConflictOffsets"] += p.conflict_offsets
            totals["PendingCompactions"] += p.pending_compactions
            totals["SmallObjects"] += p.small_objects
            totals["RedundantObjects"] += p.redundant_objects
            totals["ArchivedRecords"] += p.archived_records
            totals["Objects"] += p.objects
            if p.freshness_seconds is not None:
                totals["FreshnessSeconds"] = max(totals.get("FreshnessSeconds", 0.0), p.freshness_seconds)
        return topics

    def as_dict(self) -> dict[str, Any]:
        return {
            "clean": self.clean,
            "incomplete": self.incomplete,
            "objectsListed": self.objects_listed,
            "objectsRead": self.objects_read,
            "objectsHeaded": self.objects_headed,
            "bytesRead": self.bytes_read,
            "seconds": round(self.seconds, 3),
            "gapOffsets": sum(p.gap_offsets for p in self.partitions),
            "duplicateOffsets": sum(p.duplicate_offsets for p in self.partitions),
            "conflictOffsets": sum(p.conflict_offsets for p in self.partitions),
            "pendingCompactions": sum(p.pending_compactions for p in self.partitions),
            "smallObjects": sum(p.small_objects for p in self.partitions),
            "redundantObjects": sum(p.redundant_objects for p in self.partitions),
            "unsettledObjects": sum(p.unsettled_objects for p in self.partitions),
            "topics": self.by_topic(),
            "partitions": [
                {**asdict(p), "gapOffsets": p.gap_offsets, "conflictOffsets": p.conflict_offsets}
                for p in self.partitions
            ],
        }


# ---------------------------------------------------------------------------------------------------------------------
# the auditor


class ArchiveAuditor:
    """Audits one bucket/prefix with a boto3 S3 client the caller provides."""

    def __init__(
        self,
        s3: Any,
        bucket: str,
        prefix: str,
        *,
        state_prefix: str | None = None,
        compaction_age: timedelta | None = None,
        small_object_bytes: int = 128 * 1024 * 1024,
        settle_age: timedelta | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        seconds_left: Callable[[], float] | None = None,
        seconds_per_partition: float = 30.0,
        log: Callable[[str], None] | None = None,
    ) -> None:
        if state_prefix is not None and (not state_prefix.endswith("/") or state_prefix.startswith(prefix or "\0")):
            raise ValueError(f"state prefix must end in '/' and lie outside the archive prefix, got {state_prefix!r}")
        self._s3 = s3
        self._bucket = bucket
        self._prefix = prefix
        self._state_prefix = state_prefix
        self._compaction_age = compaction_age
        self._small_object_bytes = small_object_bytes
        self._settle_age = settle_age
        self._now = now
        self._seconds_left = seconds_left
        self._seconds_per_partition = seconds_per_partition
        self._log = log or (lambda _message: None)

    def run(self, *, topic: str | None = None) -> AuditReport:
        started = time.monotonic()
        report = AuditReport()
        listed = list_archive(self._s3, self._bucket, self._prefix, topic=topic)
        report.objects_listed = len(listed)
        objects: dict[TopicPartition, list[StoredObject]] = defaultdict(list)
        for item in listed:
            objects[(item.ref.topic_segment, item.ref.partition)].append(item)
        ledgers = self._list_ledgers(topic)
        for tp in sorted(set(objects) | set(ledgers)):
            if self._seconds_left is not None and self._seconds_left() < self._seconds_per_partition:
                report.incomplete = True
                self._log("stopping: not enough time left; the next run carries on from the saved manifests")
                break
            report.partitions.append(self._audit_partition(tp, objects.get(tp, []), ledgers.get(tp, {}), report))
        report.seconds = time.monotonic() - started
        return report

    def _list_ledgers(self, topic: str | None) -> dict[TopicPartition, dict[str, str]]:
        """Ledger keys (and ETags) by topic-partition: ``dead-letter/<topic>/partition=<p>/ledger/<range>.json``."""
        found: dict[TopicPartition, dict[str, str]] = defaultdict(dict)
        prefix = DEAD_LETTER_PREFIX if topic is None else f"{DEAD_LETTER_PREFIX}{encode_topic(topic)}/"
        for item in list_objects(self._s3, self._bucket, prefix):
            parts = item["Key"][len(DEAD_LETTER_PREFIX) :].split("/")
            if len(parts) != 4 or parts[2] != LEDGER_DIRECTORY or not parts[1].startswith("partition="):
                continue
            partition = parts[1].removeprefix("partition=")
            if partition.isdigit():
                found[(parts[0], int(partition))][item["Key"]] = item["ETag"]
        return found

    # -- one topic-partition --------------------------------------------------------------------------------------

    def _audit_partition(
        self, tp: TopicPartition, listed: Sequence[StoredObject], ledger_keys: Mapping[str, str], report: AuditReport
    ) -> PartitionFindings:
        manifest, original = self._load(tp)
        settled_before = None if self._settle_age is None else self._now() - self._settle_age
        unsettled = [
            item
            for item in listed
            if settled_before is not None and item.ref.last_offset is None and item.last_modified > settled_before
        ]
        settled = [item for item in listed if item not in unsettled]
        for key in set(manifest.objects) - {item.key for item in settled}:
            del manifest.objects[key]
        for item in settled:
            known = manifest.objects.get(item.key)
            if known is None or known.etag != item.etag:
                summary = self._summarize(item, report)
                if summary is not None:
                    manifest.objects[item.key] = summary
        for key in set(manifest.ledger) - set(ledger_keys):
            del manifest.ledger[key]
        for key in sorted(set(ledger_keys) - set(manifest.ledger)):
            runs = self._read_ledger(key, report)
            if runs is not None:
                manifest.ledger[key] = runs
        findings = self._findings(tp, manifest, listed, unsettled, report)
        if self._state_prefix is not None and manifest.to_json() != original:
            self._s3.put_object(
                Bucket=self._bucket, Key=self._manifest_key(tp), Body=manifest.to_json(), ContentType="application/json"
            )
        return findings

    def _summarize(self, item: StoredObject, report: AuditReport) -> ObjectSummary | None:
        fetched = fetch(self._s3, self._bucket, item.key)
        if fetched is None:
            return None  # deleted since the listing (compaction): the next run sees what replaced it
        report.objects_read += 1
        report.bytes_read += len(fetched.body)
        offsets = read_offsets(fetched.body)
        newest = fetched.metadata.get(MAX_TIMESTAMP, "")
        return ObjectSummary(
            etag=fetched.etag,
            size=item.size,
            offsets=to_runs(offsets),
            records=len(offsets),
            compacted=item.ref.last_offset is not None,
            newest_timestamp=int(newest) if newest.lstrip("-").isdigit() else _newest_in(fetched.body),
            last_modified=item.last_modified.isoformat(),
        )

    def _read_ledger(self, key: str, report: AuditReport) -> Runs | None:
        fetched = fetch(self._s3, self._bucket, key)
        if fetched is None:
            return None
        report.objects_read += 1
        try:
            entries = json.loads(fetched.body)["deadLettered"]
            return to_runs(int(entry["offset"]) for entry in entries)
        except (ValueError, KeyError, TypeError):
            self._log(f"{key} is not a dead-letter ledger entry; ignored")
            return None

    def _findings(
        self,
        tp: TopicPartition,
        manifest: Manifest,
        listed: Sequence[StoredObject],
        unsettled: Sequence[StoredObject],
        report: AuditReport,
    ) -> PartitionFindings:
        objects = manifest.objects
        archived = merge_runs(*(summary.offsets for summary in objects.values()))
        dead_lettered = merge_runs(*manifest.ledger.values())
        accounted = merge_runs(archived, dead_lettered)
        held_twice, conflicts, redundant = self._copies(manifest, report)
        now = self._now()
        cutoff = None if self._compaction_age is None else now - self._compaction_age
        # From the listing alone: objects the function wrote that compaction should have merged by now.
        pending = sum(
            1 for item in listed if item.ref.last_offset is None and (cutoff is None or item.last_modified <= cutoff)
        )
        timestamps = [s.newest_timestamp for s in objects.values() if s.newest_timestamp is not None]
        if unsettled:
            # S3 times have one-second resolution: of objects written in the same second, the later offsets win.
            newest_object = max(unsettled, key=lambda item: (item.last_modified, item.ref.first_offset))
            timestamps += [t for t in [self._newest_timestamp_of(newest_object.key, report)] if t is not None]
        newest = max(timestamps, default=None)
        freshness = None if newest is None else max(0.0, now.timestamp() - newest / 1000)
        return PartitionFindings(
            topic=tp[0],
            partition=tp[1],
            objects=len(listed),
            archived_records=run_count(archived),
            dead_lettered_records=run_count(dead_lettered),
            first_offset=accounted[0][0] if accounted else None,
            last_offset=accounted[-1][1] if accounted else None,
            gaps=gaps_of(accounted),
            duplicate_offsets=run_count(held_twice) - len(conflicts),
            conflicts=conflicts,
            pending_compactions=pending,
            small_objects=sum(1 for item in listed if item.size < self._small_object_bytes),
            redundant_objects=len(redundant),
            unsettled_objects=len(unsettled),
            newest_timestamp=newest,
            freshness_seconds=freshness,
        )

    def _newest_timestamp_of(self, key: str, report: AuditReport) -> int | None:
        """The ``max-timestamp`` metadata of one object (a HEAD, no body)."""
        try:
            head = self._s3.head_object(Bucket=self._bucket, Key=key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                return None
            raise
        report.objects_headed += 1
        value = str(head.get("Metadata", {}).get(MAX_TIMESTAMP, ""))
        return int(value) if value.lstrip("-").isdigit() else None

    def _copies(self, manifest: Manifest, report: AuditReport) -> tuple[Runs, list[dict[str, Any]], set[str]]:
        """Offsets held by more than one object; which of them differ (compared once per pair of objects); and the
        redundant objects: those another single object holds entirely, with identical copies (compaction deletes
        them; of two identical objects, the one with the later key counts)."""
        items = sorted(manifest.objects.items(), key=lambda pair: pair[1].offsets[0][0] if pair[1].offsets else -1)
        shared_by_pair: list[tuple[str, str, Runs]] = []
        for index, (key, summary) in enumerate(items):
            if not summary.offsets:
                continue
            last = summary.offsets[-1][1]
            for other_key, other in items[index + 1 :]:
                if not other.offsets or other.offsets[0][0] > last:
                    break
                shared = intersect_runs(summary.offsets, other.offsets)
                if shared:
                    shared_by_pair.append((key, other_key, shared))
        duplicated = merge_runs(*(shared for _, _, shared in shared_by_pair))
        conflicting: dict[int, set[str]] = defaultdict(set)
        redundant: set[str] = set()
        live = set()
        for key, other_key, shared in shared_by_pair:
            pair = " ".join(sorted(f"{k}@{manifest.objects[k].etag}" for k in (key, other_key)))
            live.add(pair)
            if pair not in manifest.verdicts:
                manifest.verdicts[pair] = self._compare(key, other_key, report)
            for offset in manifest.verdicts[pair]:
                conflicting[offset] |= {key, other_key}
            if manifest.verdicts[pair]:
                continue
            mine, theirs = manifest.objects[key], manifest.objects[other_key]
            held = run_count(shared)
            if held == mine.records and (theirs.records > held or other_key < key):
                redundant.add(key)
            elif held == theirs.records and (mine.records > held or key < other_key):
                redundant.add(other_key)
        for pair in set(manifest.verdicts) - live:
            del manifest.verdicts[pair]  # one of the two objects is gone or changed
        conflicts = [{"offset": offset, "keys": sorted(keys)} for offset, keys in sorted(conflicting.items())]
        return duplicated, conflicts, redundant

    def _compare(self, key: str, other_key: str, report: AuditReport) -> list[int]:
        """Offsets the two objects hold with different contents."""
        digests = {}
        for name in (key, other_key):
            fetched = fetch(self._s3, self._bucket, name)
            if fetched is None:
                return []  # gone since the listing: the next run compares what is there then
            report.objects_read += 1
            report.bytes_read += len(fetched.body)
            digests[name] = record_digests(fetched.body)
        return sorted(find_copies(digests).conflicts)

    # -- manifests ------------------------------------------------------------------------------------------------

    def _manifest_key(self, tp: TopicPartition) -> str:
        assert self._state_prefix is not None
        return f"{self._state_prefix}{tp[0]}/partition={tp[1]}.json"

    def _load(self, tp: TopicPartition) -> tuple[Manifest, bytes]:
        if self._state_prefix is None:
            return Manifest(), b""
        try:
            body: bytes = self._s3.get_object(Bucket=self._bucket, Key=self._manifest_key(tp))["Body"].read()
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return Manifest(), b""
            raise
        try:
            return Manifest.from_json(body), body
        except (ValueError, KeyError, TypeError):
            self._log(f"manifest of {tp[0]}-{tp[1]} unreadable: rebuilt from the archive")
            return Manifest(), b""


def _newest_in(body: bytes) -> int | None:
    """The newest record timestamp of an object without ``max-timestamp`` metadata (older archiver versions)."""
    newest = None
    for record in read_envelopes(body):
        timestamp = record.get("timestamp")
        if isinstance(timestamp, int) and (newest is None or timestamp > newest):
            newest = timestamp
    return newest
