"""Archive objects -> S3. Any failure after the SDK's own retries raises ``ArchiveWriteError``."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from archiver.errors import ArchiveWriteError

CONTENT_TYPE = "application/avro"
# Objects of one batch are independent; a few parallel PUTs hide S3's per-request latency.
MAX_PARALLEL_PUTS = 8


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


class ArchiveWriter:
    """Writes archive objects to one bucket with a boto3 S3 client the caller provides."""

    def __init__(self, s3_client: Any, bucket: str) -> None:
        self._s3 = s3_client
        self._bucket = bucket

    def write_all(self, objects: Sequence[ArchiveObject]) -> None:
        """Put every object, or raise ``ArchiveWriteError`` for the first that failed."""
        if len(objects) <= 1:
            for item in objects:
                self.put(item)
            return
        with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_PUTS, len(objects))) as pool:
            # list() re-raises the first exception from any worker.
            list(pool.map(self.put, objects))

    def put(self, item: ArchiveObject) -> None:
        try:
            self._s3.put_object(
                Bucket=self._bucket,
                Key=item.key,
                Body=item.body,
                ContentType=CONTENT_TYPE,
                Metadata=object_metadata(
                    item.partition, item.first_offset, item.last_offset, item.record_count, item.codec
                ),
            )
        except (ClientError, BotoCoreError) as error:
            raise ArchiveWriteError(f"could not write s3://{self._bucket}/{item.key}: {error}") from error


def object_metadata(
    partition: int, first_offset: int, last_offset: int, record_count: int, codec: str
) -> dict[str, str]:
    """An archive object's S3 user metadata: lets verify and operators see its contents without reading it."""
    return {
        "partition": str(partition),
        "first-offset": str(first_offset),
        "last-offset": str(last_offset),
        "record-count": str(record_count),
        "codec": codec,
    }
