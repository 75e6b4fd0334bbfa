"""A bare Powertools handler: what a Python Lambda that archives Kafka records to S3 builds before any code of its
own -- Powertools' Logger and Metrics, and S3 and SQS clients with the archiver's SDK configuration -- and nothing
else. bench/coldstart.py times its import next to ``handler.py``'s, in the same run, so that the difference is what
the archiver itself adds to a cold start.
"""

from __future__ import annotations

import os
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "kafka-s3-archiver")
logger = Logger(service=SERVICE)
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "KafkaS3Archiver"), service=SERVICE)
_SDK_CONFIG = Config(retries={"total_max_attempts": 9, "mode": "standard"}, max_pool_connections=256)
s3 = boto3.client("s3", config=_SDK_CONFIG)
sqs = boto3.client("sqs", config=_SDK_CONFIG)


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return {"records": sum(len(records) for records in event.get("records", {}).values())}
