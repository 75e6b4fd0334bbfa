"""Lambda entry point: a thin shell around ``archiver.pipeline.Archiver``.

Settings and clients are built once per container, at cold start, so a misconfigured function fails its init
with every bad setting named; the clients are built again after a batch fails on infrastructure (see
``RebuiltAfterFailure``). S3 and SQS endpoints follow the standard ``AWS_ENDPOINT_URL*`` variables, which is all
LocalStack needs.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config

from archiver.errors import InfrastructureError
from archiver.parallel import DEFAULT_MEMORY_MIB, parallel_requests
from archiver.pipeline import Archiver, BatchSummary
from archiver.settings import Settings

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "kafka-s3-archiver")
logger = Logger(service=SERVICE)
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "KafkaS3Archiver"), service=SERVICE)
Handler = Callable[[dict[str, Any], LambdaContext], dict[str, Any]]


def traced(handler: Handler) -> Handler:
    """Powertools Tracer around the handler when tracing is on; it patches botocore, so S3 and SQS calls are traced.

    Built only when tracing is on: ``Tracer()`` imports the X-Ray SDK even when disabled, which measured 118-142 ms
    of a 378 ms cold start (bench/coldstart.py, docs/benchmarks.md).
    """
    if os.environ.get("POWERTOOLS_TRACE_DISABLED", "").lower() in ("1", "true"):
        return handler
    from aws_lambda_powertools import Tracer

    traced_handler: Handler = Tracer().capture_lambda_handler(capture_response=False)(handler)
    return traced_handler


# botocore's standard retry mode, 9 attempts per request ("max_attempts" would count retries): jittered exponential
# backoff capped at 20 s, which rides out throttling (S3 503 SlowDown, SQS throttling) and network blips inside one
# invocation -- while the client's retry quota lasts. The quota (500 per client) pays for every retry and is given
# back only when that request then succeeds, +1 per clean success; an outage drains it, and a warm client then does
# not retry at all (docs/benchmarks.md, "SDK retries after an outage"). RebuiltAfterFailure restores it. Costs and
# backoff bases depend on the botocore version: the AWS runtime's own (this bundle does not ship one) may differ
# from the 1.44 measured here; the quota and how an outage drains it are the same.
# The batch's requests run side by side, as many as the function's memory allows (archiver.parallel); each needs a
# connection of its own, or urllib3 opens and drops extra ones with a warning.
PARALLEL_REQUESTS = parallel_requests(int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", DEFAULT_MEMORY_MIB)))
_SDK_CONFIG = Config(retries={"total_max_attempts": 9, "mode": "standard"}, max_pool_connections=PARALLEL_REQUESTS)


class RebuiltAfterFailure:
    """The container's ``Archiver``, built again -- new S3 and SQS clients, so full retry quotas -- after a batch
    failed on infrastructure. The event source retries that batch, and the retry gets every SDK retry the policy
    above promises, however long the outage that failed it."""

    def __init__(self, build: Callable[[], Archiver]) -> None:
        self._build = build
        self.current = build()
        self.rebuilds = 0

    def archive(self, event: dict[str, Any]) -> BatchSummary:
        try:
            return self.current.archive(event)
        except InfrastructureError:
            self.current = self._build()
            self.rebuilds += 1
            raise


def build_archiver() -> Archiver:
    return Archiver(
        settings,
        s3_client=boto3.client("s3", config=_SDK_CONFIG),
        sqs_client=boto3.client("sqs", config=_SDK_CONFIG),
        # Glue and Secrets Manager clients for typed archives, created only if a topic's value format needs one.
        value_clients=lambda service, **kwargs: boto3.client(service, config=_SDK_CONFIG, **kwargs),
        parallel=PARALLEL_REQUESTS,
    )


settings = Settings.from_env(os.environ)
archiver = RebuiltAfterFailure(build_archiver)


@logger.inject_lambda_context
@traced
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        summary = archiver.archive(event)
    except Exception:
        # The event source retries the batch; this count shows how often that happens.
        metrics.add_metric(name="BatchesFailed", unit=MetricUnit.Count, value=1)
        raise
    record_metrics(summary, latency_ms=(time.perf_counter() - started) * 1000)
    result = summary.as_dict()
    logger.info("batch archived", extra={"batch": result})
    return result


def record_metrics(summary: BatchSummary, *, latency_ms: float) -> None:
    metrics.add_metric(name="RecordsArchived", unit=MetricUnit.Count, value=summary.records_archived)
    metrics.add_metric(name="BytesWritten", unit=MetricUnit.Bytes, value=summary.bytes_written)
    metrics.add_metric(name="ObjectsWritten", unit=MetricUnit.Count, value=summary.objects_written)
    metrics.add_metric(name="RecordsDeadLettered", unit=MetricUnit.Count, value=summary.records_dead_lettered)
    # Records a retried batch found already archived by an earlier try (conditional writes: not written twice).
    metrics.add_metric(name="RecordsAlreadyArchived", unit=MetricUnit.Count, value=summary.records_already_archived)
    metrics.add_metric(name="BatchLatency", unit=MetricUnit.Milliseconds, value=latency_ms)
