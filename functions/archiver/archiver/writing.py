"""Archive objects -> S3, each created once with a conditional write. Failures after the SDK's retries raise
``ArchiveWriteError``.

Every object is put with ``If-None-Match: *``, so it is created only if its key is free: nothing the function writes
ever replaces an object, and an object can never be replaced by one with fewer records. A key that is taken means a
retry of a batch that was partly or wholly archived before (keys are named by the first offset, ``archiver.keys``);
``existing`` tells the pipeline which of its records that object already holds.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import quote, urlencode

from botocore.exceptions import BotoCoreError, ClientError

from archiver.errors import ArchiveWriteError
from archiver.parallel import RequestPool, parallel_requests
from archiver.reading import read_offsets

CONTENT_TYPE = "application/avro"
# S3 answers 409 ConditionalRequestConflict when a conditional write races another write or delete of the same key;
# AWS's guidance is to retry. Three short tries, then the batch fails and the event source retries it.
CONFLICT_ATTEMPTS = 3
CONFLICT_BACKOFF_S = 0.2


@dataclass(frozen=True, slots=True)
class ArchiveObject:
    """One encoded object and what it holds, for the key, the object's metadata and the batch summary."""

    key: str
    body: bytes
    topic: str  # not in the S3 metadata: topics may be non-ASCII, which HTTP headers cannot carry
    partition: int
    first_offset: int
    last_offset: int
    record_count: int
    codec: str
    newest_timestamp: int | None = None  # for the object's metadata (see object_metadata)


class ArchiveWriter:
    """Writes archive objects to one bucket with a boto3 S3 client the caller provides."""

    def __init__(
        self,
        s3_client: Any,
        bucket: str,
        *,
        pool: RequestPool | None = None,
        storage_class: str = "STANDARD",
        tags: Mapping[str, str] | None = None,
    ) -> None:
        self._s3 = s3_client
        self._bucket = bucket
        # Objects of one batch are independent: their PUTs run side by side (archiver.parallel).
        self._pool = pool or RequestPool(parallel_requests())
        self._put_options = put_options(storage_class, tags or {})

    def create_all(self, objects: Sequence[ArchiveObject]) -> list[bool]:
        """Create every object whose key is free; per object, True if created, False if the key was taken.

        Raises ``ArchiveWriteError`` for the first that failed otherwise.
        """
        return self._pool.run_all([partial(self.create, item) for item in objects])

    def create(self, item: ArchiveObject) -> bool:
        """Put ``item`` if its key is free: True if this call created it, False if an object already had the key."""
        for attempt in range(1, CONFLICT_ATTEMPTS + 1):
            try:
                self._s3.put_object(
                    Bucket=self._bucket,
                    Key=item.key,
                    Body=item.body,
                    ContentType=CONTENT_TYPE,
                    IfNoneMatch="*",
                    Metadata=object_metadata(
                        item.partition,
                        item.first_offset,
                        item.last_offset,
                        item.record_count,
                        item.codec,
                        newest_timestamp=item.newest_timestamp,
                    ),
                    **self._put_options,
                )
                return True
            except ClientError as error:
                code = _error_code(error)
                if code == "PreconditionFailed":
                    return False
                if code == "ConditionalRequestConflict" and attempt < CONFLICT_ATTEMPTS:
                    time.sleep(CONFLICT_BACKOFF_S * attempt)
                    continue
                raise ArchiveWriteError(f"could not write s3://{self._bucket}/{item.key}: {error}") from error
            except BotoCoreError as error:
                raise ArchiveWriteError(f"could not write s3://{self._bucket}/{item.key}: {error}") from error
        raise AssertionError("unreachable: the last attempt returns or raises")

    def existing(self, key: str) -> tuple[bytes, set[int]]:
        """The bytes of the object at ``key`` (a conditional write just found it) and the offsets it holds."""
        try:
            body: bytes = self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].read()
        except (ClientError, BotoCoreError) as error:
            raise ArchiveWriteError(f"could not read s3://{self._bucket}/{key}, which exists: {error}") from error
        try:
            return body, set(read_offsets(body))
        except Exception as error:  # any decoding failure: a foreign or damaged object
            # Not ours to judge or replace: fail the batch so a person looks, rather than guess what it holds.
            raise ArchiveWriteError(f"s3://{self._bucket}/{key} exists but is not a readable archive object") from error


def put_options(storage_class: str, tags: Mapping[str, str]) -> dict[str, str]:
    """PutObject's ``StorageClass`` and ``Tagging`` (URL-query encoded, spaces as %20) for an archive object; STANDARD
    and no tags add nothing, so such a PUT is what it always was."""
    options = {}
    if storage_class != "STANDARD":
        options["StorageClass"] = storage_class
    if tags:
        options["Tagging"] = urlencode(tags, quote_via=quote)
    return options


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def object_metadata(
    partition: int,
    first_offset: int,
    last_offset: int,
    record_count: int,
    codec: str,
    *,
    newest_timestamp: int | None = None,
) -> dict[str, str]:
    """An archive object's S3 user metadata: lets verify, compaction, the audit and operators see what it holds
    without reading it. ``max-timestamp`` is the newest record timestamp (ms) not in the future when written: the
    audit's freshness."""
    metadata = {
        "partition": str(partition),
        "first-offset": str(first_offset),
        "last-offset": str(last_offset),
        "record-count": str(record_count),
        "codec": codec,
    }
    if newest_timestamp is not None:
        metadata[MAX_TIMESTAMP] = str(newest_timestamp)
    return metadata


MAX_TIMESTAMP = "max-timestamp"
