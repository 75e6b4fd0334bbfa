"""Moto-backed S3 and SQS, an Archiver wired to them, and fault injection for what moto cannot do on its own.

moto serves S3 and SQS in-process with the real services' semantics (buckets, versions, queues, batch sends).
It never throttles and never fails single batch entries, so those two faults are injected here, at the botocore
layer the real errors come through, and each test that uses them says so.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.awsrequest import AWSResponse
from botocore.config import Config

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
