"""Lambda entry point: a thin shell around ``archiver.pipeline.Archiver``.

Settings and clients are built once per container, at cold start, so a misconfigured function fails its init
with every bad setting named. S3 and SQS endpoints follow the standard ``AWS_ENDPOINT_URL*`` variables, which is
all LocalStack needs.
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


# Standard retry mode with more attempts than the default rides out S3 503 SlowDown and SQS throttling
# before the whole batch has to be retried by the event source.
_SDK_CONFIG = Config(retries={"max_attempts": 8, "mode": "standard"}, max_pool_connections=16)

settings = Settings.from_env(os.environ)
archiver = Archiver(
    settings,
    s3_client=boto3.client("s3", config=_SDK_CONFIG),
    sqs_client=boto3.client("sqs", config=_SDK_CONFIG),
    # Glue and Secrets Manager clients for typed archives, created only if a topic's value format needs one.
    value_clients=lambda service, **kwargs: boto3.client(service, config=_SDK_CONFIG, **kwargs),
)


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
