"""Shared fixtures: AWS credentials that can never reach a real account, moto S3/SQS, and a fake Lambda context."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from moto import mock_aws

from tests.unit.aws_fakes import FakeAws, create_fake_aws


@dataclass
class FakeLambdaContext:
    function_name: str = "kafka-s3-archiver"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:kafka-s3-archiver"
    aws_request_id: str = "52fdfc07-2182-154f-163f-5f0f9a621d72"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()


@pytest.fixture
def fake_aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials and region, and no endpoint overrides, so nothing can talk to a real account."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_SQS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "1")


@pytest.fixture
def aws(fake_aws_env: None) -> Iterator[FakeAws]:
    """S3 bucket and SQS queue served by moto, in-process (tests/typed overrides it with Glue and Secrets Manager)."""
    with mock_aws():
        yield create_fake_aws()
