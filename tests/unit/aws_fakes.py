"""Moto-backed S3 and SQS, an Archiver wired to them, and fault injection for what moto cannot do on its own;
in-memory S3 and SQS that enforce AWS's limits, for the hostile-input and fuzz tests (below).

moto serves S3 and SQS in-process with the real services' semantics (buckets, versions, queues, batch sends).
It never throttles and never fails single batch entries, so those two faults are injected here, at the botocore
layer the real errors come through, and each test that uses them says so.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from botocore.exceptions import ClientError

from archiver.pipeline import Archiver
from archiver.settings import Settings

BUCKET = "archive-bucket"
QUEUE_NAME = "archiver-dlq"
# Few, fast retries keep the fault tests quick; the handler itself uses more (see handler._SDK_CONFIG).
TEST_SDK_CONFIG = Config(retries={"max_attempts": 3, "mode": "standard"})


@dataclass
class FakeAws:
    s3: Any
    sqs: Any
    queue_url: str

    def keys(self, prefix: str = "") -> list[str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]

    def body(self, key: str) -> bytes:
        data: bytes = self.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        return data

    def dead_letters(self) -> list[dict[str, Any]]:
        """Every message on the DLQ (received and deleted), bodies parsed."""
        messages: list[dict[str, Any]] = []
        while True:
            response = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10)
            batch = response.get("Messages", [])
            if not batch:
                return messages
            for message in batch:
                messages.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])


def make_archiver(aws: FakeAws, *, s3: Any = None, sqs: Any = None, **settings: Any) -> Archiver:
    """An Archiver on ``aws`` (or on the given clients, e.g. a fault-injecting wrapper) with ``settings``."""
    config = Settings(archive_bucket=BUCKET, dead_letter_queue_url=aws.queue_url, **settings)
    return Archiver(config, s3_client=s3 or aws.s3, sqs_client=sqs or aws.sqs)


def create_fake_aws() -> FakeAws:
    s3 = boto3.client("s3", region_name="us-east-1", config=TEST_SDK_CONFIG)
    sqs = boto3.client("sqs", region_name="us-east-1", config=TEST_SDK_CONFIG)
    s3.create_bucket(Bucket=BUCKET)
    queue_url = sqs.create_queue(QueueName=QUEUE_NAME)["QueueUrl"]
    return FakeAws(s3=s3, sqs=sqs, queue_url=queue_url)


class _RawBody:
    def __init__(self, body: bytes) -> None:
        self._body = io.BytesIO(body)

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body.read()


def inject_s3_slowdown(s3_client: Any, *, failures: int) -> list[int]:
    """Answer the next ``failures`` PutObject calls with S3's real 503 SlowDown response. Returns a call counter."""
    calls = [0]
    body = (
        b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
        b"<Message>Please reduce your request rate.</Message></Error>"
    )

    def respond(request: Any, **_: Any) -> AWSResponse | None:
        calls[0] += 1
        if calls[0] > failures:
            return None  # let moto answer
        return AWSResponse(request.url, 503, {"Content-Type": "application/xml"}, _RawBody(body))

    s3_client.meta.events.register("before-send.s3.PutObject", respond)
    return calls


class PartiallyFailingSqs:
    """Wraps a real (moto) SQS client; the first SendMessageBatch reports its first entry as failed, as SQS can."""

    def __init__(self, sqs_client: Any, *, sender_fault: bool = False, always: bool = False) -> None:
        self._sqs = sqs_client
        self._sender_fault = sender_fault
        self._always = always
        self.calls: list[list[str]] = []

    def send_message_batch(self, *, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls.append([entry["Id"] for entry in Entries])
        if len(self.calls) > 1 and not self._always:
            response: dict[str, Any] = self._sqs.send_message_batch(QueueUrl=QueueUrl, Entries=Entries)
            return response
        first, rest = Entries[0], Entries[1:]
        response = self._sqs.send_message_batch(QueueUrl=QueueUrl, Entries=rest) if rest else {}
        failure = {"Id": first["Id"], "SenderFault": self._sender_fault, "Code": "InternalError", "Message": "retry"}
        return {"Successful": response.get("Successful", []), "Failed": [failure]}


# ---------------------------------------------------------------------------------------------------------------------
# In-memory S3 and SQS that enforce the service limits the archiver must stay within.
#
# moto does not enforce them (measured with moto 5.2.5: it stores a 1,100-byte key, accepts a 300 KB
# SendMessageBatch and a message holding U+0001), and each call costs 2-5 ms there, which a fuzz run of 100,000
# events cannot afford. These fakes implement only the calls the archiver makes, keep what it wrote, and answer a
# request that breaks a limit with the error code AWS returns for it:
# * S3 (user guide, "Naming Amazon S3 objects" and "Working with object metadata"): a key is 1 to 1,024 bytes of
#   UTF-8; user-defined metadata is at most 2 KB (names plus values, UTF-8) and travels in HTTP headers (US-ASCII).
# * SQS (API reference, SendMessageBatch): 1 to 10 entries with distinct ids of at most 80 characters of
#   A-Z a-z 0-9 - _; each message and the sum of all of them at most 262,144 bytes; only the characters
#   #x9 #xA #xD #x20-#xD7FF #xE000-#xFFFD #x10000-#x10FFFF.

MAX_KEY_BYTES = 1024
MAX_METADATA_BYTES = 2048
MAX_SQS_PAYLOAD = 262_144
MAX_SQS_ENTRIES = 10
_BATCH_ENTRY_ID = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
_SQS_INVALID_CHARACTER = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def client_error(operation: str, code: str, message: str, status: int = 400) -> ClientError:
    """The exception botocore raises for an error response from AWS."""
    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}, operation
    )


@dataclass
class StoredObject:
    body: bytes
    metadata: dict[str, str]
    content_type: str | None


@dataclass
class LimitedS3:
    """One bucket in memory; PutObject and GetObject as S3 answers them, limits included."""

    bucket: str = BUCKET
    objects: dict[str, StoredObject] = field(default_factory=dict)
    puts: int = 0

    def put_object(
        self,
        *,
        Bucket: str,
        Key: str,
        Body: bytes,
        ContentType: str | None = None,
        Metadata: dict[str, str] | None = None,
        IfNoneMatch: str | None = None,
        **_: Any,
    ) -> dict[str, Any]:
        self._check_bucket("PutObject", Bucket)
        try:
            size = len(Key.encode("utf-8"))
        except UnicodeEncodeError as error:  # botocore cannot even put it in a URL
            raise client_error("PutObject", "InvalidURI", f"key is not UTF-8 text: {error}") from error
        if not 1 <= size <= MAX_KEY_BYTES:
            raise client_error("PutObject", "KeyTooLongError", f"Your key is too long ({size} bytes)")
        metadata = dict(Metadata or {})
        for text in (*metadata, *metadata.values()):
            if not text.isascii() or not text.isprintable():
                raise client_error("PutObject", "InvalidArgument", f"metadata is not printable US-ASCII: {text[:80]!r}")
        if sum(len(name) + len(value) for name, value in metadata.items()) > MAX_METADATA_BYTES:
            raise client_error("PutObject", "MetadataTooLarge", "Your metadata headers exceed the maximum allowed size")
        if IfNoneMatch == "*" and Key in self.objects:
            raise client_error("PutObject", "PreconditionFailed", "At least one precondition failed", 412)
        self.objects[Key] = StoredObject(bytes(Body), metadata, ContentType)
        self.puts += 1
        return {"ETag": f'"{hashlib.md5(Body, usedforsecurity=False).hexdigest()}"'}

    def get_object(self, *, Bucket: str, Key: str, **_: Any) -> dict[str, Any]:
        self._check_bucket("GetObject", Bucket)
        stored = self.objects.get(Key)
        if stored is None:
            raise client_error("GetObject", "NoSuchKey", "The specified key does not exist.", 404)
        return {"Body": io.BytesIO(stored.body), "Metadata": dict(stored.metadata), "ContentType": stored.content_type}

    def _check_bucket(self, operation: str, bucket: str) -> None:
        if bucket != self.bucket:
            raise client_error(operation, "NoSuchBucket", "The specified bucket does not exist", 404)


@dataclass
class LimitedSqs:
    """One queue in memory; SendMessageBatch as SQS answers it, limits included. ``bodies`` in arrival order."""

    queue_url: str = "https://sqs.us-east-1.amazonaws.com/123456789012/archiver-dlq"
    bodies: list[str] = field(default_factory=list)
    requests: int = 0

    def send_message_batch(self, *, QueueUrl: str, Entries: list[dict[str, Any]], **_: Any) -> dict[str, Any]:
        operation = "SendMessageBatch"
        if QueueUrl != self.queue_url:
            raise client_error(operation, "AWS.SimpleQueueService.NonExistentQueue", "The queue does not exist")
        if not Entries:
            raise client_error(operation, "AWS.SimpleQueueService.EmptyBatchRequest", "no entries")
        if len(Entries) > MAX_SQS_ENTRIES:
            raise client_error(operation, "AWS.SimpleQueueService.TooManyEntriesInBatchRequest", f"{len(Entries)}")
        ids = [entry["Id"] for entry in Entries]
        if len(set(ids)) != len(ids):
            raise client_error(operation, "AWS.SimpleQueueService.BatchEntryIdsNotDistinct", "ids repeat")
        if not all(_BATCH_ENTRY_ID.match(entry_id) for entry_id in ids):
            raise client_error(operation, "AWS.SimpleQueueService.InvalidBatchEntryId", f"{ids}")
        total = 0
        for entry in Entries:
            body = entry["MessageBody"]
            if not body or _SQS_INVALID_CHARACTER.search(body):
                raise client_error(operation, "InvalidMessageContents", "Invalid characters found in the message")
            total += len(body.encode("utf-8"))
        if total > MAX_SQS_PAYLOAD:
            raise client_error(operation, "AWS.SimpleQueueService.BatchRequestTooLong", f"{total} bytes in the batch")
        self.requests += 1
        self.bodies += [entry["MessageBody"] for entry in Entries]
        return {
            "Successful": [{"Id": entry_id, "MessageId": f"m-{len(self.bodies)}-{entry_id}"} for entry_id in ids],
            "Failed": [],
        }


def limited_archiver(s3: LimitedS3, sqs: LimitedSqs, **settings: Any) -> Archiver:
    """An Archiver on the in-memory, limit-enforcing S3 and SQS."""
    config = Settings(archive_bucket=s3.bucket, dead_letter_queue_url=sqs.queue_url, **settings)
    return Archiver(config, s3_client=s3, sqs_client=sqs)
