"""Fixtures for the archive-operations tests: moto S3/SQS for compaction, the local broker for replay."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto import mock_aws

from local import stack
from tests.unit.aws_fakes import FakeAws, create_fake_aws


@pytest.fixture
def aws(fake_aws_env: None) -> Iterator[FakeAws]:
    """S3 bucket and SQS queue served by moto, in-process."""
    with mock_aws():
        yield create_fake_aws()


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """A Kafka-protocol broker for the whole session: local.stack's Tansu (instance "ops"), or $KAFKA_BOOTSTRAP_SERVERS.

    Started and stopped (by PID) through local.stack's own helpers, so the ops tests never touch another
    instance's broker.
    """
    service = stack.start_kafka("ops", None)
    try:
        yield service.url
    finally:
        stack.stop_service(service)
