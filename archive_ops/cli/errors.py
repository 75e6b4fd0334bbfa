"""Exit codes and the one-line messages an operator gets instead of a traceback.

0: success. 1: findings (gaps, offsets only in Kafka, conflicts, merges that failed). 2: usage, configuration or
connection errors: what is wrong and how to fix it, on one line, on stderr.
"""

from __future__ import annotations

import re
import socket
from typing import Any

OK, FINDINGS, ERROR = 0, 1, 2


class CliError(Exception):
    """An operator mistake or an unreachable service: exit 2 with this message (it says what to do)."""


def explain(error: BaseException) -> str | None:
    """A one-line explanation of an AWS, Kafka or configuration error, or None for a bug (which keeps its traceback)."""
    from botocore import exceptions as aws

    from archive_ops.backfill import BackfillError
    from archive_ops.kafka_client import KafkaSettingsError
    from archive_ops.replay import ReplayError
    from archive_ops.verify import UnknownTopicsError

    if isinstance(error, CliError | KafkaSettingsError | ReplayError | UnknownTopicsError | BackfillError):
        return str(error)
    if isinstance(error, aws.NoCredentialsError | aws.PartialCredentialsError):
        return "no AWS credentials found: set AWS_PROFILE (aws sso login) or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
    if isinstance(error, aws.NoRegionError):
        return "no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION, or a region in your AWS profile)"
    if isinstance(error, aws.ProfileNotFound):
        return f"{error}: check AWS_PROFILE"
    if isinstance(error, aws.EndpointConnectionError | aws.ConnectTimeoutError | aws.ReadTimeoutError):
        url = getattr(error, "kwargs", {}).get("endpoint_url", "")
        return f"cannot reach the AWS endpoint {url}: check the network, AWS_REGION and AWS_ENDPOINT_URL".replace(
            "  ", " "
        )
    if isinstance(error, aws.ClientError):
        return _client_error(error)
    if isinstance(error, aws.BotoCoreError):
        return f"AWS SDK error: {error}"
    if _is_kafka_exception(error):
        return f"Kafka error: {_kafka_message(error)}: check --bootstrap-servers and the security settings"
    if isinstance(error, ConnectionError | socket.gaierror | TimeoutError):
        return f"connection failed: {error}"
    if isinstance(error, FileNotFoundError):
        return f"no such file: {error.filename}"
    return None


def _client_error(error: Any) -> str:
    details = error.response.get("Error", {})
    code = str(details.get("Code", ""))
    message = str(details.get("Message", ""))
    operation = getattr(error, "operation_name", "")
    bucket = details.get("BucketName")
    if code == "NoSuchBucket":
        return f"bucket {bucket or ''} does not exist (or is in another account/region): check --bucket".replace(
            "bucket  ", "bucket "
        )
    if code in ("AccessDenied", "AccessDeniedException", "403", "Forbidden"):
        return f"access denied ({operation}): the AWS credentials in use lack the permission; {message}".rstrip("; ")
    if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "ExpiredTokenException"):
        return f"the AWS credentials were rejected ({code}): refresh them (aws sso login) or check AWS_PROFILE"
    if code in ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"):
        return f"the SQS queue does not exist: check the queue URL ({message})"
    if code == "ResourceNotFoundException":
        return f"not found ({operation}): {message}"
    if code == "ValidationError" and "does not exist" in message:
        return f"{message}: deploy it first, or check stackName in --config and AWS_REGION"
    return f"AWS error {code} in {operation}: {message}"


def _is_kafka_exception(error: BaseException) -> bool:
    return type(error).__module__.startswith(("confluent_kafka", "cimpl"))


def _kafka_message(error: BaseException) -> str:
    text = str(error.args[0]) if error.args else str(error)
    found = re.search(r'str="([^"]*)"', text)
    return found.group(1) if found else text
