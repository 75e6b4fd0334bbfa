"""Merge the archive's small objects into large ones, per topic-partition and partition path.

    python -m tools.compact --bucket BUCKET [--prefix topics/] [--topic T] [--partition N ...]
                            [--target-size 128MiB] [--older-than 2h] [--method auto|copy|reencode]
                            [--codec CODEC] [--dry-run] [--audit]

Per group (one directory + topic + partition) the compactor:

1. lists the objects, reads the offsets of those whose key ranges intersect, and classifies overlaps
   (``archive_index.classify_overlaps``). Leftover inputs of an earlier compaction ("pending") are deleted once the
   compacted object that covers them is confirmed unchanged. A group with real duplicates is left alone.
2. plans merges: consecutive objects (by first offset) smaller than the target, older than ``--older-than``,
   packed greedily up to the target size. A merge needs at least two objects.
3. for each merge: reads the inputs, builds the new object (block copy when schema and codec match and the offset
   ranges do not interleave, re-encode otherwise), PUTs it under the key for the merged range, GETs it back and
   checks that its record count and offset list equal the inputs', and only then deletes the inputs whose ETag is
   still the one that was read.

A crash anywhere leaves the inputs, or the new object plus some inputs that step 1 of the next run deletes: never a
gap. See docs/operations.md for the argument, concurrency, and measurements.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from botocore.exceptions import ClientError

from archiver.encoding import encode_records, encode_with_schema, load_envelope_schema, sync_marker_for
from archiver.settings import CODECS, DEFAULT_PREFIX
from archiver.writing import CONTENT_TYPE, object_metadata
from tools.archive_index import (
    COMPACTED_FROM,
    COMPACTION_METHOD,
    FetchedObject,
    GroupId,
    ObjectOffsets,
    StoredObject,
    audit_archive,
    classify_overlaps,
    fetch,
    group_objects,
    intersecting_ranges,
    iter_chunks,
    list_archive,
    make_key,
    read_envelopes,
    read_offsets,
)
from tools.avro_blocks import Block, Container, read_container, read_records, write_container

Method = Literal["auto", "copy", "reencode"]
DEFAULT_TARGET_BYTES = 128 * 1024 * 1024
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
    deleted: int = 0
    kept: list[str] = field(default_factory=list)  # inputs not deleted because they changed since they were read


@dataclass
class CompactionReport:
    groups: int = 0
    groups_with_duplicates: list[str] = field(default_factory=list)
    redundant_deleted: list[str] = field(default_factory=list)
    merges: list[MergeResult] = field(default_factory=list)
    planned: list[dict[str, Any]] = field(default_factory=list)  # dry run: what would be merged or deleted
    skipped: list[str] = field(default_factory=list)  # merges abandoned because an input vanished meanwhile
    failed: list[str] = field(default_factory=list)  # merges whose new object did not verify; inputs kept

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _Input:
    stored: StoredObject
    fetched: FetchedObject
    container: Container


class Compactor:
    """Compacts one bucket/prefix with a boto3 S3 client the caller provides (tests pass fault-injecting ones)."""

    def __init__(
        self,
        s3: Any,
        config: CompactionConfig,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        log: Callable[[str], None] | None = None,
    ) -> None:
        if config.codec is not None and config.codec not in CODECS:
            raise ValueError(f"codec must be one of {', '.join(CODECS)}, got {config.codec!r}")
        self._s3 = s3
        self._config = config
        self._now = now
        self._log = log or (lambda _message: None)

    def run(self) -> CompactionReport:
        config = self._config
        report = CompactionReport()
        listed = list_archive(self._s3, config.bucket, config.prefix, topic=config.topic, partitions=config.partitions)
        for group, members in group_objects(listed).items():
            report.groups += 1
            self._compact_group(group, members, report)
        return report

    # -- one group -----------------------------------------------------------------------------------------------

    def _compact_group(self, group: GroupId, members: list[StoredObject], report: CompactionReport) -> None:
        remaining = self._drop_redundant(group, members, report)
        if remaining is None:
            return
        for chunk in self.plan(remaining):
            key = make_key(group, chunk[0].ref.first_offset, max(item.ref.last_offset for item in chunk))
            if self._config.dry_run:
                report.planned.append(
                    {"key": key, "inputs": [item.key for item in chunk], "bytes": sum(item.size for item in chunk)}
                )
                continue
            try:
                result = self.merge(group, chunk)
            except CompactionError as error:
                # Nothing of this merge was deleted; other groups can still be compacted.
                report.failed.append(f"{key}: {error}")
                self._log(f"merge failed, inputs kept: {error}")
                continue
            if result is None:
                report.skipped.append(key)
            else:
                report.merges.append(result)
                self._log(
                    f"merged {result.inputs} objects ({result.records} records, {result.bytes_in} -> "
                    f"{result.bytes_out} bytes, {result.method}) into {result.key}"
                )

    def _drop_redundant(
        self, group: GroupId, members: list[StoredObject], report: CompactionReport
    ) -> list[StoredObject] | None:
        """Delete leftover inputs of earlier compactions; None if the group has real duplicates."""
        suspects: dict[str, StoredObject] = {}
        for item, other in intersecting_ranges(members, lambda member: member.ref):
            suspects[item.key] = item
            suspects[other.key] = other
        if not suspects:
            return members
        fetched: dict[str, FetchedObject] = {}
        entries = []
        for key in sorted(suspects):
            got = fetch(self._s3, self._config.bucket, key)
            if got is not None:
                fetched[key] = got
                entries.append(ObjectOffsets(key, read_offsets(got.body), got.compacted_from))
        overlaps = classify_overlaps(entries)
        if overlaps.duplicates:
            # Deduplicating would mean choosing between two copies of a record; that is an operator's call.
            report.groups_with_duplicates.append(f"{group[0]} (partition {group[2]})")
            self._log(f"skipping {group[0]}: {len(overlaps.duplicates)} duplicate pair(s), see `--audit`")
            return None
        redundant = []
        for pending in overlaps.pending:
            if self._unchanged(pending.covered_by, fetched[pending.covered_by].etag):
                redundant.append((pending.key, fetched[pending.key].etag))
        if redundant and self._config.dry_run:
            report.planned.extend({"delete": key, "reason": "pending compaction"} for key, _ in redundant)
        elif redundant:
            deleted = self._delete_unchanged(redundant)
            report.redundant_deleted.extend(deleted)
            self._log(f"deleted {len(deleted)} leftover input(s) of earlier compactions in {group[0]}")
        gone = {key for key, _ in redundant}
        # Objects that vanished since the listing (another compactor) are no longer ours to merge either.
        return [item for item in members if item.key not in gone and (item.key in fetched or item.key not in suspects)]

    def plan(self, members: Sequence[StoredObject]) -> list[list[StoredObject]]:
        """Consecutive runs of eligible objects, packed greedily up to the target size; only runs of two or more."""
        config = self._config
        cutoff = self._now() - config.older_than if config.older_than is not None else None
        chunks: list[list[StoredObject]] = []
        current: list[StoredObject] = []
        current_bytes = 0
        for item in members:
            eligible = item.size < config.target_bytes and (cutoff is None or item.last_modified <= cutoff)
            if not eligible or (current and current_bytes + item.size > config.target_bytes):
                chunks.append(current)
                current, current_bytes = [], 0
            if eligible:
                current.append(item)
                current_bytes += item.size
        chunks.append(current)
        return [chunk for chunk in chunks if len(chunk) >= 2]

    # -- one merge -----------------------------------------------------------------------------------------------

    def merge(self, group: GroupId, chunk: Sequence[StoredObject]) -> MergeResult | None:
        """Write, verify, then delete. Returns None (nothing deleted) if an input vanished meanwhile."""
        inputs: list[_Input] = []
        for item in chunk:
            got = fetch(self._s3, self._config.bucket, item.key)
            if got is None:
                self._log(f"{item.key} vanished (another compactor?): merge abandoned, nothing deleted")
                return None
            inputs.append(_Input(item, got, read_container(got.body)))

        started = time.perf_counter()
        method, reason = self._choose_method(inputs)
        expected: list[int] | None = None  # the offsets the new object must hold, when they are known
        if method == "copy":
            codec = inputs[0].container.codec
            first, last = inputs[0].stored.ref.first_offset, inputs[-1].stored.ref.last_offset
            key = make_key(group, first, last)
            blocks = tuple(block for item in inputs for block in item.container.blocks)
            body = write_container(inputs[0].container.metadata, sync_marker_for(key), blocks)
            records = sum(block.count for block in blocks)
            if self._config.verify_offsets:
                expected = [offset for item in inputs for offset in read_offsets(item.fetched.body)]
        else:
            # Without a requested codec, the newest input's codec is the one the Lambda is configured with now.
            codec = self._config.codec or inputs[-1].container.codec
            decoded, encode = self._decoder_encoder(inputs)
            decoded.sort(key=lambda record: int(record["offset"]))
            expected = [int(record["offset"]) for record in decoded]
            first, last = expected[0], expected[-1]
            key = make_key(group, first, last)
            body = encode(decoded, codec, key)
            records = len(decoded)
            blocks = ()
        if expected is not None and any(a >= b for a, b in itertools.pairwise(expected)):
            raise CompactionError(f"inputs of {key} share offsets or are out of order; refusing to merge them")
        built = time.perf_counter()

        self._s3.put_object(
            Bucket=self._config.bucket,
            Key=key,
            Body=body,
            ContentType=CONTENT_TYPE,
            Metadata={
                **object_metadata(group[2], first, last, records, codec),
                COMPACTED_FROM: str(len(inputs)),
                COMPACTION_METHOD: method,
            },
        )
        verify_started = time.perf_counter()
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
        )
        # The new object never counts as its own input: with interleaved ranges it can reuse an input's key.
        candidates = [(item.stored.key, item.fetched.etag) for item in inputs if item.stored.key != key]
        deleted = self._delete_unchanged(candidates)
        result.deleted = len(deleted) + (len(inputs) - len(candidates))
        result.kept = sorted({k for k, _ in candidates} - set(deleted))
        return result

    def _choose_method(self, inputs: Sequence[_Input]) -> tuple[Literal["copy", "reencode"], str | None]:
        """Block copy when it gives the same records in offset order; otherwise re-encode, saying why."""
        wanted = self._config.method
        if wanted == "reencode":
            return "reencode", "requested"
        reason = None
        head = inputs[0].container
        refs = [item.stored.ref for item in inputs]
        if any(item.container.metadata != head.metadata for item in inputs[1:]):
            reason = "inputs differ in schema, codec or header metadata"
        elif self._config.codec is not None and self._config.codec != head.codec:
            reason = f"codec change {head.codec} -> {self._config.codec}"
        elif _is_envelope_v1(head.schema):
            reason = "envelope schema v1 -> v2 (timestamps outside years 1-9999 become readable, docs/schema.md)"
        elif any(a.last_offset >= b.first_offset for a, b in itertools.pairwise(refs)):
            reason = "offset ranges interleave, so concatenated blocks would be out of order"
        if reason is None:
            return "copy", None
        if wanted == "copy":
            self._log(f"block copy not possible ({reason}); re-encoding")
        return "reencode", reason

    @staticmethod
    def _decoder_encoder(
        inputs: Sequence[_Input],
    ) -> tuple[list[dict[str, Any]], Callable[[list[dict[str, Any]], str, str], bytes]]:
        """Decoded records of all inputs, and how to encode them again.

        Raw envelopes (any version of the envelope schema) are re-encoded with the Lambda's own encoder, into the
        current envelope schema. Typed archive objects are re-encoded with their writer schema, which must then be
        the same for all inputs.
        """
        schemas = {item.container.schema for item in inputs}
        if all(_is_envelope(schema) for schema in schemas):
            decoded = [record for item in inputs for record in read_envelopes(item.fetched.body)]
            return decoded, lambda records, codec, key: encode_records(records, codec=codec, key=key)
        if len(schemas) != 1:
            raise CompactionError("inputs have different writer schemas and are not raw envelopes: not merging them")
        schema = json.loads(schemas.pop())
        decoded = [record for item in inputs for record in read_records(item.fetched.body)]
        return decoded, lambda records, codec, key: encode_with_schema(schema, records, codec=codec, key=key)

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


def _is_envelope(schema: bytes) -> bool:
    try:
        parsed = json.loads(schema)
    except ValueError:
        return False
    return isinstance(parsed, dict) and _full_name(parsed) == _full_name(load_envelope_schema())


def _full_name(schema: dict[str, Any]) -> str:
    # fastavro writes the parsed schema into the header: a full name and no "namespace"; the .avsc has both parts.
    name = str(schema.get("name", ""))
    return name if "." in name or not schema.get("namespace") else f"{schema['namespace']}.{name}"


def _is_envelope_v1(schema: bytes) -> bool:
    """A raw envelope object written before ``timestamp_raw`` existed; copying its blocks would keep timestamps
    that timestamp-millis readers cannot read, so it is re-encoded instead."""
    return _is_envelope(schema) and all(item.get("name") != "timestamp_raw" for item in json.loads(schema)["fields"])


# ---------------------------------------------------------------------------------------------------------------------
# CLI

_SIZE = re.compile(r"^(\d+)\s*(b|kb|kib|mb|mib|gb|gib)?$", re.IGNORECASE)
_SIZE_UNITS = {"b": 1, "kb": 1000, "kib": 1024, "mb": 1000**2, "mib": 1024**2, "gb": 1000**3, "gib": 1024**3}
_DURATION = re.compile(r"^(\d+)\s*([smhd])$")
_DURATION_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_size(text: str) -> int:
    match = _SIZE.match(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"expected a size like 128MiB or 1000000, got {text!r}")
    return int(match.group(1)) * _SIZE_UNITS[(match.group(2) or "b").lower()]


def parse_duration(text: str) -> timedelta:
    match = _DURATION.match(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"expected a duration like 90s, 30m, 2h or 1d, got {text!r}")
    return timedelta(**{_DURATION_UNITS[match.group(2)]: int(match.group(1))})


def s3_client() -> Any:
    """A boto3 S3 client; ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` point it at LocalStack."""
    import boto3  # imported here: keeps `--help` fast
    from botocore.config import Config

    return boto3.client("s3", config=Config(retries={"max_attempts": 8, "mode": "standard"}))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.compact", description=__doc__.split("\n\n")[0])
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--prefix", default=DEFAULT_PREFIX, help="archive prefix (default %(default)r)")
    parser.add_argument("--topic", help="only this topic")
    parser.add_argument("--partition", type=int, action="append", help="only this partition (repeatable)")
    parser.add_argument("--target-size", type=parse_size, default=DEFAULT_TARGET_BYTES, help="default 128MiB")
    parser.add_argument("--older-than", type=parse_duration, help="only objects last written before now - this")
    parser.add_argument("--method", choices=["auto", "copy", "reencode"], default="auto")
    parser.add_argument("--codec", choices=CODECS, help="re-encode into this codec (default: keep the inputs')")
    parser.add_argument("--dry-run", action="store_true", help="plan and print, change nothing")
    parser.add_argument(
        "--verify-offsets", action="store_true", help="also decode offsets to verify block-copy merges (slower)"
    )
    parser.add_argument("--audit", action="store_true", help="only audit the archive (offsets, overlaps); no changes")
    args = parser.parse_args(argv)
    s3 = s3_client()

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    if args.audit:
        audit = audit_archive(s3, args.bucket, args.prefix, topic=args.topic)
        print(json.dumps(audit.as_dict(), indent=2))
        return 0 if audit.overlaps.clean else 1
    config = CompactionConfig(
        bucket=args.bucket,
        prefix=args.prefix,
        target_bytes=args.target_size,
        older_than=args.older_than,
        topic=args.topic,
        partitions=tuple(args.partition) if args.partition else None,
        method=args.method,
        codec=args.codec,
        dry_run=args.dry_run,
        verify_offsets=args.verify_offsets,
    )
    started = time.perf_counter()
    report = Compactor(s3, config, log=log).run()
    summary = report.as_dict()
    summary["seconds"] = round(time.perf_counter() - started, 3)
    print(json.dumps(summary, indent=2))
    return 1 if report.groups_with_duplicates or report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
