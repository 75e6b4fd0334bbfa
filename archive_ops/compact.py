"""Merge the archive's small objects into large ones and remove retry duplicates, per topic-partition and
partition path.

Run it as ``kafka-s3-archiver compact`` (``archive_ops.cli``); the deployed maintenance runs the same engine.

Per group (one directory + topic + partition [+ value schema]) the compactor takes the objects older than
``--older-than``: those under the target size are *inputs*, larger ones stay as they are but count as *coverers*.
It packs consecutive inputs (by first offset) into chunks up to the target size, and for each chunk:

1. reads the inputs; where their offset ranges intersect each other's or a coverer's, it compares the records at
   the shared offsets (``archive_index.record_digest``). Identical copies -- what retried batches leave -- are kept
   once; copies that differ are a *conflict*: the chunk is left alone and reported, nothing deleted.
2. builds one object with every record the chunk holds that no coverer holds, each offset once, in offset order:
   by copying Avro blocks when nothing is dropped and ranges do not interleave, by re-encoding otherwise. A lone
   object the function wrote is rewritten under the compacted name too, so a closed window ends up holding only
   objects whose keys name their offset range.
3. creates it under ``<first>+<last>`` with a conditional write (never replacing an object), reads it back and
   checks it, and only then deletes the inputs whose ETag is still the one that was read (and, where records were
   dropped because a coverer holds them, only while that coverer is unchanged).

A crash anywhere leaves every record in at least one object: the only destructive step is a delete, justified by
an object that holds identical copies of everything deleted. See docs/operations.md for the argument.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from botocore.exceptions import ClientError

from archive_ops.archive_index import (
    COMPACTED_FROM,
    COMPACTION_METHOD,
    FetchedObject,
    GroupId,
    StoredObject,
    compacted_key,
    fetch,
    find_copies,
    group_objects,
    intersecting_ranges,
    iter_chunks,
    list_archive,
    read_envelopes,
    read_offsets,
    record_digests,
)
from archive_ops.avro_blocks import Block, Container, read_container, read_records, write_container
from archiver.encoding import encode_records, encode_with_schema, load_envelope_schema, sync_marker_for
from archiver.settings import CODECS, DEFAULT_PREFIX
from archiver.writing import CONTENT_TYPE, MAX_TIMESTAMP, object_metadata, put_options

Method = Literal["auto", "copy", "reencode"]
DEFAULT_TARGET_BYTES = 128 * 1024 * 1024
MAX_TARGET_BYTES = 5 * 1024**3  # a merged object is one PUT, which S3 caps at 5 GB
MAX_DELETE_BATCH = 1000  # DeleteObjects' limit


class CompactionError(RuntimeError):
    """A merge could not be verified; its inputs were left in place."""


@dataclass(frozen=True)
class CompactionConfig:
    bucket: str
    prefix: str = DEFAULT_PREFIX
    target_bytes: int = DEFAULT_TARGET_BYTES
    older_than: timedelta | None = None
    topic: str | None = None
    partitions: tuple[int, ...] | None = None
    method: Method = "auto"
    codec: str | None = None  # None: keep the inputs' codec
    dry_run: bool = False
    # Copy merges are verified by reading the new object's blocks back byte for byte; this also decodes offsets.
    verify_offsets: bool = False


@dataclass
class MergeResult:
    key: str
    inputs: int
    records: int
    bytes_in: int
    bytes_out: int
    method: str
    fallback_reason: str | None
    build_seconds: float
    verify_seconds: float
    duplicates_dropped: int = 0  # records left out because another copy was kept
    deleted: int = 0
    kept: list[str] = field(default_factory=list)  # inputs not deleted because they changed since they were read


@dataclass
class Conflict:
    """One offset held by objects whose copies differ: both kept, reported, never merged."""

    offset: int
    keys: list[str]


@dataclass
class CompactionReport:
    groups: int = 0
    conflicts: list[Conflict] = field(default_factory=list)
    redundant_deleted: list[str] = field(default_factory=list)  # every record held identically by a kept object
    merges: list[MergeResult] = field(default_factory=list)
    planned: list[dict[str, Any]] = field(default_factory=list)  # dry run: what would be merged or deleted
    skipped: list[str] = field(default_factory=list)  # merges abandoned because an input vanished meanwhile
    failed: list[str] = field(default_factory=list)  # merges whose new object did not verify; inputs kept
    incomplete: bool = False  # stopped early (time budget): a rerun carries on

    @property
    def duplicates_removed(self) -> int:
        return sum(merge.duplicates_dropped for merge in self.merges)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "duplicatesRemoved": self.duplicates_removed}


@dataclass(frozen=True)
class _Input:
    stored: StoredObject
    fetched: FetchedObject
    container: Container
    first_offset: int
    last_offset: int


@dataclass
class _Coverer:
    """An object that stays as it is (large, or written by this run) and may hold records the inputs also hold."""

    key: str
    first_offset: int
    last_offset: int
    etag: str | None = None
    digests: dict[int, bytes] | None = None  # read only when an input's range intersects this one


@dataclass
class _Plan:
    """What one chunk becomes. ``keep`` is None when no two inputs or coverers can share an offset: every record of
    every input is kept, and nothing needs decoding. Otherwise it maps each kept offset to the input whose copy is
    kept (and that copy's digest)."""

    keep: dict[int, tuple[int, bytes]] | None
    covered_by: set[str] = field(default_factory=set)  # coverers holding identical copies of dropped records
    dropped: int = 0  # duplicate copies left out (among the inputs, or held by a coverer)


class Compactor:
    """Compacts one bucket/prefix with a boto3 S3 client the caller provides (tests pass fault-injecting ones)."""

    def __init__(
        self,
        s3: Any,
        config: CompactionConfig,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        log: Callable[[str], None] | None = None,
        seconds_left: Callable[[], float] | None = None,
        seconds_per_chunk: float = 120.0,
    ) -> None:
        if config.codec is not None and config.codec not in CODECS:
            raise ValueError(f"codec must be one of {', '.join(CODECS)}, got {config.codec!r}")
        if not 1 <= config.target_bytes <= MAX_TARGET_BYTES:
            raise ValueError(f"target size must be 1 byte to 5 GiB (one PUT), got {config.target_bytes}")
        self._s3 = s3
        self._config = config
        self._now = now
        self._log = log or (lambda _message: None)
        # A deployed worker stops before its Lambda timeout, leaving the rest of the group for the next message.
        self._seconds_left = seconds_left
        self._seconds_per_chunk = seconds_per_chunk

    def run(self) -> CompactionReport:
        config = self._config
        report = CompactionReport()
        listed = list_archive(self._s3, config.bucket, config.prefix, topic=config.topic, partitions=config.partitions)
        for group, members in group_objects(listed).items():
            if report.incomplete:
                break
            self.compact_group(group, members, report)
        return report

    def run_group(self, group: GroupId) -> CompactionReport:
        """Compact one group, listing only its directory: the deployed worker's unit of work."""
        report = CompactionReport()
        listed = list_archive(self._s3, self._config.bucket, f"{group[0]}/")
        members = [item for item in listed if item.ref.group == group]
        if members:
            self.compact_group(group, members, report)
        return report

    def groups_with_work(self) -> list[GroupId]:
        """The groups a run would change: what the deployed planner queues, one work item each.

        Decided from the listing alone (names and sizes), so planning a large archive reads no object.
        """
        config = self._config
        listed = list_archive(self._s3, config.bucket, config.prefix, topic=config.topic, partitions=config.partitions)
        cutoff = self._now() - config.older_than if config.older_than is not None else None
        found = []
        for group, members in group_objects(listed).items():
            known = [
                _Coverer(item.key, item.ref.first_offset, item.ref.last_offset, item.etag)
                for item in members
                if item.ref.last_offset is not None
                and item.size >= config.target_bytes
                and (cutoff is None or item.last_modified <= cutoff)
            ]
            if any(not self._needs_nothing(chunk, members, known) for chunk in self.plan(members)):
                found.append(group)
        return found

    def compact_group(self, group: GroupId, members: Sequence[StoredObject], report: CompactionReport) -> None:
        """Compact one group's objects (as listed, in key order) into ``report``."""
        report.groups += 1
        cutoff = self._now() - self._config.older_than if self._config.older_than is not None else None
        old = [item for item in members if cutoff is None or item.last_modified <= cutoff]
        coverers = [self._coverer(item) for item in old if item.size >= self._config.target_bytes]
        for chunk in self.plan(members):
            if self._out_of_time():
                report.incomplete = True
                self._log("stopping: not enough time left for another merge; a rerun carries on")
                return
            if self._needs_nothing(chunk, members, coverers):
                continue
            output = self._compact_chunk(group, chunk, coverers, report)
            if output is not None:
                coverers.append(output)

    def plan(self, members: Sequence[StoredObject]) -> list[list[StoredObject]]:
        """Consecutive runs of eligible objects (small and old enough), packed greedily up to the target size."""
        config = self._config
        cutoff = self._now() - config.older_than if config.older_than is not None else None
        chunks: list[list[StoredObject]] = []
        current: list[StoredObject] = []
        current_bytes = 0
        for item in sorted(members, key=lambda member: member.ref):
            eligible = item.size < config.target_bytes and (cutoff is None or item.last_modified <= cutoff)
            if not eligible or (current and current_bytes + item.size > config.target_bytes):
                chunks.append(current)
                current, current_bytes = [], 0
            if eligible:
                current.append(item)
                current_bytes += item.size
        chunks.append(current)
        return [chunk for chunk in chunks if chunk]

    def _needs_nothing(
        self, chunk: Sequence[StoredObject], members: Sequence[StoredObject], coverers: Sequence[_Coverer]
    ) -> bool:
        """A lone object that compaction already named by its range, and that no other object can overlap."""
        ref = chunk[0].ref
        first, last = ref.first_offset, ref.last_offset
        if len(chunk) != 1 or last is None:
            return False
        overlapping_coverer = any(c.first_offset <= last and first <= c.last_offset for c in coverers)
        # Another object whose first offset falls inside this range may share offsets with it.
        overlapping_member = any(other.key != ref.key and first <= other.ref.first_offset <= last for other in members)
        return not (overlapping_coverer or overlapping_member)

    def _out_of_time(self) -> bool:
        return self._seconds_left is not None and self._seconds_left() < self._seconds_per_chunk

    def _coverer(self, item: StoredObject) -> _Coverer:
        ref = item.ref
        if ref.last_offset is not None:
            return _Coverer(item.key, ref.first_offset, ref.last_offset, item.etag)
        # A large object the function wrote (only with a target below its batch size): its metadata has the range.
        head = self._s3.head_object(Bucket=self._config.bucket, Key=item.key)
        metadata = head.get("Metadata", {})
        last = metadata.get("last-offset", "")
        return _Coverer(item.key, ref.first_offset, int(last) if last.isdigit() else ref.upper_bound, head["ETag"])

    # -- one chunk -----------------------------------------------------------------------------------------------

    def _compact_chunk(
        self, group: GroupId, chunk: Sequence[StoredObject], coverers: Sequence[_Coverer], report: CompactionReport
    ) -> _Coverer | None:
        if self._config.dry_run:
            report.planned.append({"inputs": [item.key for item in chunk], "bytes": sum(item.size for item in chunk)})
            return None
        try:
            result = self.merge(group, chunk, coverers)
        except CompactionError as error:
            # Nothing of this merge was deleted; other chunks and groups can still be compacted.
            report.failed.append(str(error))
            self._log(f"merge failed, inputs kept: {error}")
            return None
        except _ConflictFound as found:
            report.conflicts.extend(found.conflicts)
            self._log(
                f"conflicting copies in {group[0]}: {len(found.conflicts)} offset(s); inputs kept, see the report"
            )
            return None
        if result is None:
            report.skipped.append(", ".join(item.key for item in chunk))
            return None
        if isinstance(result, _Redundant):
            report.redundant_deleted.extend(result.deleted)
            self._log(f"deleted {len(result.deleted)} object(s) whose records other objects hold identically")
            return None
        report.merges.append(result)
        self._log(
            f"merged {result.inputs} objects ({result.records} records, {result.duplicates_dropped} duplicate copies "
            f"dropped, {result.bytes_in} -> {result.bytes_out} bytes, {result.method}) into {result.key}"
        )
        first, last = _range_of(result.key)
        return _Coverer(result.key, first, last)

    def merge(
        self, group: GroupId, chunk: Sequence[StoredObject], coverers: Sequence[_Coverer] = ()
    ) -> MergeResult | _Redundant | None:
        """Write, verify, then delete. None (nothing deleted) if an input vanished meanwhile."""
        inputs: list[_Input] = []
        for item in chunk:
            got = fetch(self._s3, self._config.bucket, item.key)
            if got is None:
                self._log(f"{item.key} vanished (another compactor?): merge abandoned, nothing deleted")
                return None
            first, last = got.offset_range()
            inputs.append(_Input(item, got, read_container(got.body), first, last))

        started = time.perf_counter()
        plan = self._plan_records(inputs, coverers)
        candidates = [(item.stored.key, item.fetched.etag) for item in inputs]
        if plan.keep == {}:
            # Every record is held identically by a coverer: the inputs are redundant.
            self._confirm_unchanged(coverers, plan.covered_by)
            return _Redundant(self._delete_unchanged(candidates))

        method, reason = self._choose_method(inputs, plan)
        if plan.keep is None:
            records = sum(item.container.record_count for item in inputs)
            first = min(item.first_offset for item in inputs)
            last = max(item.last_offset for item in inputs)
            expected = None
        else:
            expected = sorted(plan.keep)
            records, first, last = len(expected), expected[0], expected[-1]
        key = compacted_key(group, first, last)
        if len(inputs) == 1 and key == inputs[0].stored.key and not plan.dropped:
            return None  # a lone object already under its compacted name
        if method == "copy":
            codec = inputs[0].container.codec
            blocks = tuple(block for item in inputs for block in item.container.blocks)
            body = write_container(inputs[0].container.metadata, sync_marker_for(key), blocks)
            if self._config.verify_offsets and expected is None:
                expected = [offset for item in inputs for offset in read_offsets(item.fetched.body)]
        else:
            # Without a requested codec, the newest input's codec is the one the Lambda is configured with now.
            codec = self._config.codec or inputs[-1].container.codec
            decoded, encode = self._decoder_encoder(inputs, plan)
            body = encode(decoded, codec, key)
            blocks = ()
            expected = [int(record["offset"]) for record in decoded]
        if expected is not None and any(a >= b for a, b in itertools.pairwise(expected)):
            raise CompactionError(f"inputs of {key} share offsets or are out of order; refusing to merge them")
        built = time.perf_counter()

        newest = _newest_timestamp([item.fetched.metadata for item in inputs])
        metadata = {
            **object_metadata(group[2], first, last, records, codec, newest_timestamp=newest),
            COMPACTED_FROM: str(len(inputs)),
            COMPACTION_METHOD: method,
        }
        created = self._create(key, body, metadata, self._put_options(inputs[-1].fetched))
        verify_started = time.perf_counter()
        if not created:
            # Another run (or an input) already has the merged key: if it holds every kept record identically, the
            # inputs are redundant next to it.
            self._check_existing_holds(key, inputs, plan)
            self._confirm_unchanged(coverers, plan.covered_by)
            return _Redundant(self._delete_unchanged([(k, etag) for k, etag in candidates if k != key]))
        self._verify(key, records, blocks if method == "copy" else None, expected)
        verified = time.perf_counter()

        result = MergeResult(
            key=key,
            inputs=len(inputs),
            records=records,
            bytes_in=sum(len(item.fetched.body) for item in inputs),
            bytes_out=len(body),
            method=method,
            fallback_reason=reason,
            build_seconds=built - started,
            verify_seconds=verified - verify_started,
            duplicates_dropped=plan.dropped,
        )
        self._confirm_unchanged(coverers, plan.covered_by)
        deleted = self._delete_unchanged(candidates)
        result.deleted = len(deleted)
        result.kept = sorted({k for k, _ in candidates} - set(deleted))
        return result

    def _plan_records(self, inputs: Sequence[_Input], coverers: Sequence[_Coverer]) -> _Plan:
        """Which records the merged object holds, comparing contents only where offset ranges intersect."""
        spans = [(item.first_offset, item.last_offset) for item in inputs]
        touching = [c for c in coverers if any(_meet((c.first_offset, c.last_offset), span) for span in spans)]
        ordered = sorted(range(len(inputs)), key=lambda index: spans[index])
        shared = {index for pair in intersecting_ranges(ordered, lambda index: spans[index]) for index in pair}
        for coverer in touching:
            shared |= {i for i, span in enumerate(spans) if _meet((coverer.first_offset, coverer.last_offset), span)}
        if not shared:
            return _Plan(keep=None)

        digests = {index: record_digests(inputs[index].fetched.body) for index in sorted(shared)}
        for coverer in touching:
            if coverer.digests is None:
                got = fetch(self._s3, self._config.bucket, coverer.key)
                if got is None:
                    raise CompactionError(f"{coverer.key} vanished while compacting next to it; inputs kept")
                coverer.digests, coverer.etag = record_digests(got.body), got.etag
        by_key = {inputs[index].stored.key: found for index, found in digests.items()}
        by_key |= {coverer.key: coverer.digests or {} for coverer in touching}
        conflicts = find_copies(by_key).conflicts
        if conflicts:
            raise _ConflictFound([Conflict(offset, keys) for offset, keys in sorted(conflicts.items())])

        held = {offset: coverer.key for coverer in touching for offset in coverer.digests or {}}
        plan = _Plan(keep={})
        assert plan.keep is not None
        for index, item in enumerate(inputs):
            found = digests.get(index) or record_digests(item.fetched.body)
            for offset, digest in found.items():
                if offset in held:
                    plan.covered_by.add(held[offset])
                elif offset not in plan.keep:
                    plan.keep[offset] = (index, digest)
                    continue
                plan.dropped += 1
        return plan

    def _choose_method(self, inputs: Sequence[_Input], plan: _Plan) -> tuple[Literal["copy", "reencode"], str | None]:
        """Block copy when it gives exactly the kept records in offset order; otherwise re-encode, saying why."""
        wanted = self._config.method
        if wanted == "reencode":
            return "reencode", "requested"
        reason = None
        head = inputs[0].container
        if plan.dropped:
            reason = f"{plan.dropped} duplicate record copies are left out"
        elif any(item.container.metadata != head.metadata for item in inputs[1:]):
            reason = "inputs differ in schema, codec or header metadata"
        elif self._config.codec is not None and self._config.codec != head.codec:
            reason = f"codec change {head.codec} -> {self._config.codec}"
        elif _is_envelope_v1(head.schema):
            reason = "envelope schema v1 -> v2 (timestamps outside years 1-9999 become readable, docs/schema.md)"
        elif any(a.last_offset >= b.first_offset for a, b in itertools.pairwise(inputs)):
            reason = "offset ranges interleave, so concatenated blocks would be out of order"
        if reason is None:
            return "copy", None
        if wanted == "copy":
            self._log(f"block copy not possible ({reason}); re-encoding")
        return "reencode", reason

    @staticmethod
    def _decoder_encoder(
        inputs: Sequence[_Input], plan: _Plan
    ) -> tuple[list[dict[str, Any]], Callable[[list[dict[str, Any]], str, str], bytes]]:
        """The kept records of all inputs in offset order, and how to encode them again.

        Raw envelopes (any version of the envelope schema) are re-encoded with the Lambda's own encoder, into the
        current envelope schema. Typed archive objects are re-encoded with their writer schema, which must then be
        the same for all inputs.
        """
        schemas = {item.container.schema for item in inputs}
        raw = all(_is_envelope(schema) for schema in schemas)
        if not raw and len(schemas) != 1:
            raise CompactionError("inputs have different writer schemas and are not raw envelopes: not merging them")
        decoded: list[dict[str, Any]] = []
        for index, item in enumerate(inputs):
            records = read_envelopes(item.fetched.body) if raw else read_records(item.fetched.body)
            if plan.keep is None:
                decoded.extend(records)
            else:
                decoded.extend(record for record in records if plan.keep.get(int(record["offset"]), (-1,))[0] == index)
        decoded.sort(key=lambda record: int(record["offset"]))
        if raw:
            return decoded, lambda records, codec, key: encode_records(records, codec=codec, key=key)
        schema = json.loads(schemas.pop())
        return decoded, lambda records, codec, key: encode_with_schema(schema, records, codec=codec, key=key)

    def _put_options(self, newest: FetchedObject) -> dict[str, str]:
        """The merged object keeps the storage class and tags of its newest input, as it keeps its codec: what the
        function is configured to write now, with no configuration here (the CLI and the deployed worker agree).
        The class comes with the GET already made; the tags cost one GetObjectTagging, only if the input has any."""
        tags: dict[str, str] = {}
        if newest.tag_count:
            response = self._s3.get_object_tagging(Bucket=self._config.bucket, Key=newest.key)
            tags = {tag["Key"]: tag["Value"] for tag in response.get("TagSet", [])}
        return put_options(newest.storage_class, tags)

    def _create(self, key: str, body: bytes, metadata: Mapping[str, str], options: Mapping[str, str]) -> bool:
        """PUT the merged object only if its key is free. False if an object already has the key."""
        try:
            self._s3.put_object(
                Bucket=self._config.bucket,
                Key=key,
                Body=body,
                ContentType=CONTENT_TYPE,
                Metadata=dict(metadata),
                IfNoneMatch="*",
                **options,
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "PreconditionFailed":
                return False
            raise
        return True

    def _check_existing_holds(self, key: str, inputs: Sequence[_Input], plan: _Plan) -> None:
        """Another run (or an input) already has the merged key: it must hold identical copies of every kept record."""
        existing = fetch(self._s3, self._config.bucket, key)
        if existing is None:
            raise CompactionError(f"{key} existed a moment ago and is gone now; inputs left in place")
        theirs = record_digests(existing.body)
        if plan.keep is None:
            mine = {offset: digest for item in inputs for offset, digest in record_digests(item.fetched.body).items()}
        else:
            mine = {offset: digest for offset, (_, digest) in plan.keep.items()}
        for offset, digest in mine.items():
            if theirs.get(offset) != digest:
                raise CompactionError(f"{key} exists and does not hold offset {offset} as the inputs do; inputs kept")

    def _verify(self, key: str, records: int, blocks: tuple[Block, ...] | None, offsets: list[int] | None) -> None:
        """Read the new object back. Copied blocks must come back byte for byte (so every record, and with it the
        record count and offset set, equals the inputs'); decoded offsets, when known, must equal the inputs'."""
        stored = fetch(self._s3, self._config.bucket, key)
        if stored is None:
            raise CompactionError(f"{key} is missing right after it was written; inputs left in place")
        try:
            container = read_container(stored.body)
            found = read_offsets(stored.body) if offsets is not None else None
        except Exception as error:  # any decoding failure means the object is not what was meant to be written
            raise CompactionError(f"{key} cannot be read back ({error}); inputs left in place") from error
        if container.record_count != records:
            raise CompactionError(f"{key} holds {container.record_count} records, the inputs {records}")
        if blocks is not None and (container.blocks != blocks or container.sync != sync_marker_for(key)):
            raise CompactionError(f"{key} does not hold the inputs' blocks as copied; inputs left in place")
        if offsets is not None and found != offsets:
            raise CompactionError(f"{key} does not hold the inputs' offsets; inputs left in place")

    def _confirm_unchanged(self, coverers: Sequence[_Coverer], keys: set[str]) -> None:
        """Records dropped because a coverer holds them may only go while that coverer is as it was read."""
        for coverer in coverers:
            if coverer.key in keys and coverer.etag is not None and not self._unchanged(coverer.key, coverer.etag):
                raise CompactionError(f"{coverer.key} changed or vanished meanwhile; inputs kept for the next run")

    def _unchanged(self, key: str, etag: str) -> bool:
        try:
            head = self._s3.head_object(Bucket=self._config.bucket, Key=key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                return False
            raise
        return bool(head["ETag"] == etag)

    def _delete_unchanged(self, candidates: Sequence[tuple[str, str]]) -> list[str]:
        """Delete each key whose ETag is still the one that was read. Returns the keys deleted."""
        # An object rewritten since it was read (e.g. a Lambda retry) is left for the next run to reclassify.
        doomed = [key for key, etag in candidates if self._unchanged(key, etag)]
        deleted: list[str] = []
        for batch in iter_chunks(doomed, MAX_DELETE_BATCH):
            response = self._s3.delete_objects(
                Bucket=self._config.bucket, Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True}
            )
            failed = {error["Key"] for error in response.get("Errors", [])}
            deleted.extend(key for key in batch if key not in failed)
        return deleted


@dataclass
class _Redundant:
    """A chunk whose every record a coverer holds identically: its inputs were deleted."""

    deleted: list[str]


class _ConflictFound(Exception):
    def __init__(self, conflicts: list[Conflict]) -> None:
        super().__init__(f"{len(conflicts)} conflicting offset(s)")
        self.conflicts = conflicts


def _meet(a: tuple[int, int], b: tuple[int, int]) -> bool:
    """Whether two inclusive offset ranges intersect."""
    return a[0] <= b[1] and b[0] <= a[1]


def _range_of(key: str) -> tuple[int, int]:
    name = key.rpartition("/")[2].removesuffix(".avro").split("+")
    return int(name[2]), int(name[3])


def _newest_timestamp(metadata: Sequence[Mapping[str, str]]) -> int | None:
    """The largest ``max-timestamp`` of the inputs, or None unless every input has one."""
    values = [m.get(MAX_TIMESTAMP, "") for m in metadata]
    if not values or not all(v.lstrip("-").isdigit() for v in values):
        return None
    return max(int(v) for v in values)


def _is_envelope(schema: bytes) -> bool:
    """Whether a container's writer schema is the envelope (any version): its record's full name says so. fastavro
    writes the full name into ``name`` and drops ``namespace``; other writers keep them apart."""
    try:
        parsed = json.loads(schema)
    except ValueError:
        return False
    if not isinstance(parsed, dict) or not isinstance(parsed.get("name"), str):
        return False
    name, namespace = parsed["name"], parsed.get("namespace")
    return (name if "." in name or not namespace else f"{namespace}.{name}") == _ENVELOPE_NAME


_ENVELOPE_NAME = "{namespace}.{name}".format(**load_envelope_schema())


def _is_envelope_v1(schema: bytes) -> bool:
    """A raw envelope object written before ``timestamp_raw`` existed; copying its blocks would keep timestamps
    that timestamp-millis readers cannot read, so it is re-encoded instead."""
    return _is_envelope(schema) and all(item.get("name") != "timestamp_raw" for item in json.loads(schema)["fields"])
