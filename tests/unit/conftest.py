from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

from archiver.pipeline import Archiver
from archiver.settings import Settings
from tests.unit.aws_fakes import BUCKET, FakeAws, create_fake_aws


@pytest.fixture
def aws(fake_aws_env: None) -> Iterator[FakeAws]:
    """S3 bucket and SQS queue served by moto, in-process."""
    with mock_aws():
        yield create_fake_aws()


def make_archiver(aws: FakeAws, *, s3: Any = None, sqs: Any = None, **settings: Any) -> Archiver:
    config = Settings(archive_bucket=BUCKET, dead_letter_queue_url=aws.queue_url, **settings)
    return Archiver(config, s3_client=s3 or aws.s3, sqs_client=sqs or aws.sqs)
