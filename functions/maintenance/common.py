"""What the three maintenance handlers share: settings and clients built once per container, Powertools logging and
metrics in the archiver's namespace, and the time budget of one invocation."""

from __future__ import annotations

import os
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from botocore.config import Config

from archive_ops.maintenance import MaintenanceSettings

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "kafka-s3-archiver")
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "KafkaS3Archiver")
# Stop this long before the Lambda timeout: what is left is picked up by the next message or run.
SAFETY_MARGIN_S = 60.0

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
settings = MaintenanceSettings.from_env(os.environ)
_SDK_CONFIG = Config(retries={"max_attempts": 8, "mode": "standard"}, max_pool_connections=16)


def client(service: str) -> Any:
    return boto3.client(service, config=_SDK_CONFIG)


def seconds_left(context: Any) -> float:
    """Seconds this invocation may still work, keeping the safety margin."""
    return float(context.get_remaining_time_in_millis()) / 1000 - SAFETY_MARGIN_S
