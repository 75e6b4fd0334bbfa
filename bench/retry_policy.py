"""SDK retries after an outage: how each retry policy for the function's S3/SQS clients fares in a warm container.

botocore's standard retry mode keeps a retry quota per client (500; 14 per retried error, 5 per retried throttle,
given back only when that request then succeeds; +1 per clean success). An outage drains it; afterwards a warm
client does not retry at all. This measures the policies one could choose, each with *one* container across all
batches, against ``local/faults.py`` in front of LocalStack S3/SQS:

* ``keep``: standard mode, 9 attempts, the clients of the cold start kept forever (the handler before issue 16);
* ``rebuild``: the same clients, built again after a batch failed on infrastructure (the handler's
  ``RebuiltAfterFailure``, the chosen policy);
* ``per-batch``: new clients for every batch;
* ``legacy``: legacy retry mode (no quota; exponential backoff of ``rand * 2**n`` seconds, uncapped), 9 attempts;
* ``in-invocation``: ``rebuild`` plus retrying a failed batch inside the same invocation while time is left.

Scenarios (8 objects per batch, 20 records each):

* ``outage``: one batch while every S3 connection is dropped, then 6 batches whose every object's first PUT gets
  ``503 SlowDown``;
* ``throttling``: 16 batches whose every object's first *two* PUTs get ``503 SlowDown`` -- every request still
  succeeds within its 9 attempts, but each nets the quota -5.

A batch runs under a 60 s "function timeout"; one that passes it counts as timed out and, as on Lambda, the next
batch gets a new container (new clients). Starts its own local stack instance (``bench-retry``) and stops it.

    python -m bench.retry_policy            # prints a table and one JSON line
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

from botocore.config import Config

from archiver.errors import InfrastructureError
from archiver.pipeline import Archiver, BatchSummary
from archiver.settings import DEFAULT_CODEC, Settings
from local import aws, stack
from local.esm import events
from local.faults import S3_SLOW_DOWN, FaultProxy, Rule, s3_put, s3_request

ROOT = Path(__file__).resolve().parent.parent
INSTANCE = "bench-retry"
BUCKET = "bench-retry-archive"
FUNCTION_TIMEOUT_S = 60.0
OBJECTS_PER_BATCH = 8
RECORDS_PER_OBJECT = 20


class Policy(Protocol):
    def archive(self, event: dict[str, Any]) -> BatchSummary: ...


@dataclass
class Kept:
    archiver: Archiver

    def archive(self, event: dict[str, Any]) -> BatchSummary:
        return self.archiver.archive(event)


@dataclass
class PerBatch:
    build: Callable[[], Archiver]

    def archive(self, event: dict[str, Any]) -> BatchSummary:
        return self.build().archive(event)


@dataclass
class InInvocation:
    """Retry the batch in the same invocation (with rebuilt clients) while more than ``reserve_s`` of it is left."""

    inner: Policy
    reserve_s: float = 20.0
    retries: int = 0

    def archive(self, event: dict[str, Any]) -> BatchSummary:
        deadline = time.monotonic() + FUNCTION_TIMEOUT_S
        backoff = 1.0
        while True:
            try:
                return self.inner.archive(event)
            except InfrastructureError:
                if deadline - time.monotonic() < self.reserve_s + backoff:
                    raise
                self.retries += 1
                time.sleep(backoff)
                backoff = min(backoff * 2, 8.0)


@dataclass
class Phase:
    batches: int = 0
    failed: int = 0
    timed_out: int = 0
    seconds: float = 0.0
    outcomes: list[str] = field(default_factory=list)


def batch_event(batch: int) -> dict[str, Any]:
    records = [
        events.KafkaRecord(
            topic="bench-retry",
            partition=partition,
            offset=batch * RECORDS_PER_OBJECT + n,
            timestamp=1_700_000_000_000 + n,
            key=b"k",
            value=json.dumps({"batch": batch, "n": n, "pad": "x" * 200}).encode(),
        )
        for partition in range(OBJECTS_PER_BATCH)
        for n in range(RECORDS_PER_OBJECT)
    ]
    return events.build_event(records, events.EventSource(bootstrap_servers="127.0.0.1:9092"))


def run_batch(policy: Policy, event: dict[str, Any]) -> str:
    """ "ok", "failed" or "timed out" (still running after the function timeout; left to finish in the background)."""
    outcome: list[str] = []

    def target() -> None:
        try:
            policy.archive(event)
            outcome.append("ok")
        except InfrastructureError:
            outcome.append("failed")

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(FUNCTION_TIMEOUT_S)
    return outcome[0] if outcome else "timed out"


class Bench:
    def __init__(self, handler: ModuleType, proxy: FaultProxy, queue_url: str) -> None:
        self.handler = handler
        self.proxy = proxy
        self.settings = Settings(archive_bucket=BUCKET, dead_letter_queue_url=queue_url, codec=DEFAULT_CODEC)
        self.next_batch = 0

    def build(self, mode: str = "standard") -> Archiver:
        if mode == "standard":
            built: Archiver = self.handler.build_archiver()  # exactly the handler's clients and configuration
            return built
        import boto3

        legacy = Config(retries={"total_max_attempts": 9, "mode": "legacy"}, max_pool_connections=16)
        return Archiver(
            self.settings, s3_client=boto3.client("s3", config=legacy), sqs_client=boto3.client("sqs", config=legacy)
        )

    def policies(self) -> dict[str, Callable[[], Policy]]:
        return {
            "keep": lambda: Kept(self.build()),
            "rebuild": lambda: self.handler.RebuiltAfterFailure(self.build),
            "per-batch": lambda: PerBatch(self.build),
            "legacy": lambda: Kept(self.build("legacy")),
            "in-invocation": lambda: InInvocation(self.handler.RebuiltAfterFailure(self.build)),
        }

    def phase(self, new: Callable[[], Policy], policy: Policy, batches: int) -> tuple[Phase, Policy]:
        result = Phase()
        started = time.monotonic()
        for _ in range(batches):
            outcome = run_batch(policy, batch_event(self.next_batch))
            self.next_batch += 1
            result.batches += 1
            result.outcomes.append(outcome)
            if outcome == "failed":
                result.failed += 1
            elif outcome == "timed out":
                result.timed_out += 1
                policy = new()  # Lambda killed the container: the next batch gets a cold one
        result.seconds = round(time.monotonic() - started, 1)
        return result, policy

    def outage(self, new: Callable[[], Policy]) -> dict[str, Phase]:
        policy = new()
        warm, policy = self.phase(new, policy, 1)
        down = self.proxy.add(Rule(s3_request, drop=True))
        outage, policy = self.phase(new, policy, 1)
        self.proxy.remove(down)
        self.proxy.add(Rule(s3_put, S3_SLOW_DOWN, once_per_path=True))
        recovery, policy = self.phase(new, policy, 6)
        self.proxy.clear()
        return {"warm": warm, "outage": outage, "recovery (each first PUT: SlowDown)": recovery}

    def throttling(self, new: Callable[[], Policy]) -> dict[str, Phase]:
        policy = new()
        self.proxy.add(Rule(s3_put, S3_SLOW_DOWN, once_per_path=True))
        self.proxy.add(Rule(s3_put, S3_SLOW_DOWN, once_per_path=True))  # ... and each second PUT
        throttled, policy = self.phase(new, policy, 16)
        self.proxy.clear()
        return {"throttled (first two PUTs: SlowDown)": throttled}


def measure() -> dict[str, Any]:
    from local.config import Endpoints

    state = stack.up(INSTANCE, only="localstack")
    localstack = Endpoints(kafka_bootstrap="", aws_endpoint=state.localstack_url or "")
    proxy = FaultProxy(localstack.aws_endpoint)
    proxy.start()
    try:
        aws.client("s3", localstack).create_bucket(Bucket=BUCKET)
        queue_url = aws.client("sqs", localstack).create_queue(QueueName="bench-retry-dlq")["QueueUrl"]
        # The handler's clients (boto3's default session) reach LocalStack through the proxy, as in the function.
        os.environ.update(
            {
                **Endpoints(kafka_bootstrap="", aws_endpoint=proxy.url).aws_env(),
                "ARCHIVE_BUCKET": BUCKET,
                "DEAD_LETTER_QUEUE_URL": queue_url,
                "POWERTOOLS_TRACE_DISABLED": "1",
                "POWERTOOLS_METRICS_NAMESPACE": "BenchRetry",
            }
        )
        bench = Bench(importlib.import_module("handler"), proxy, queue_url)
        results: dict[str, Any] = {}
        for name, new in bench.policies().items():
            print(f"{name}:", file=sys.stderr)
            phases = {**bench.outage(new), **bench.throttling(new)}
            for phase, result in phases.items():
                print(
                    f"  {phase}: {result.failed} failed, {result.timed_out} timed out of {result.batches} "
                    f"in {result.seconds} s ({' '.join(result.outcomes)})",
                    file=sys.stderr,
                )
            results[name] = {phase: vars(result) for phase, result in phases.items()}
        return {"function_timeout_s": FUNCTION_TIMEOUT_S, "objects_per_batch": OBJECTS_PER_BATCH, "policies": results}
    finally:
        proxy.stop()
        stack.down(INSTANCE)


if __name__ == "__main__":
    os.chdir(ROOT)
    print(json.dumps(measure()))
